/**
 * `imp --help`, `imp --version`, `imp prompt` and usage errors must stay fast: they load no heavy module,
 * whether imported (ES modules) or required (the CommonJS launcher and fast-path bundle, commander).
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { type TracedRun, tracedImp } from '../helpers/module-trace.js';

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

function loadedModules(args: string[]): TracedRun {
  return tracedImp(args, { HOME: tmpdir() });
}

describe('startup cost', () => {
  it.each([[['--help']], [['--version']], [['login', '--help']], [['prompt']], [['nonsense']]])(
    'imp %j loads no heavy module',
    (args) => {
      const { modules, esm, cjs, status } = loadedModules(args);
      // Both tracers really ran: the hook saw the entry point, require.cache holds the launcher's package.json.
      expect(esm.some((url) => url.endsWith('/bin/imp.js'))).toBe(true);
      expect(cjs.some((url) => url.endsWith('/package.json'))).toBe(true);
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
