/** `imp --help`, `imp --version` and usage errors must stay fast: they load no heavy module. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMP_BIN, ROOT } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/temp.js';

const HEAVY = [
  'openid-client',
  'oidc-provider',
  '@inquirer',
  'ora',
  'fastify',
  'better-sqlite3',
  '@napi-rs/keyring',
  'jose',
  'undici',
  'open/',
  'chalk',
  'playwright',
  'yaml',
  '/broker/',
  '/dev/',
];

function loadedModules(args: string[]): { modules: string[]; status: number | null; stdout: string } {
  const trace = join(makeTempDir('imp-trace-'), 'modules.txt');
  const result = spawnSync(
    process.execPath,
    [
      '--no-warnings',
      '--experimental-loader',
      join(ROOT, 'test/fixtures/trace-loader.mjs'),
      IMP_BIN,
      ...args,
    ],
    {
      env: { PATH: process.env.PATH, HOME: tmpdir(), IMP_TRACE_FILE: trace },
      encoding: 'utf8',
    },
  );
  let modules: string[] = [];
  try {
    modules = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
  } catch {
    modules = [];
  }
  return { modules, status: result.status, stdout: result.stdout };
}

describe('startup cost', () => {
  it.each([[['--help']], [['--version']], [['login', '--help']], [['prompt']], [['nonsense']]])(
    'imp %j loads no heavy module',
    (args) => {
      const { modules, status } = loadedModules(args);
      expect(modules.some((url) => url.endsWith('/bin/imp.js'))).toBe(true); // the hook really ran
      const heavy = modules.filter((url) => HEAVY.some((name) => url.includes(name)));
      expect(heavy).toEqual([]);
      expect(status).toBe(args[0] === 'nonsense' ? 2 : 0);
    },
  );

  it('imp --version prints the package version', () => {
    const { stdout } = loadedModules(['--version']);
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(stdout.trim()).toBe(`imp ${version}`);
  });
});
