/**
 * `imp prompt`, `imp --version` and `imp --help` are answered without the dispatcher (start-up time):
 * the answer must be exactly main's, and the real binary must really skip main and commander.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fastPath } from '../../src/cli/fast-path.js';
import { main } from '../../src/cli/main.js';
import { IMP_BIN, ROOT } from '../helpers/cli.js';
import { makeTestDeps } from '../helpers/cli-deps.js';
import { makeTempDir } from '../helpers/temp.js';

const inSession = {
  IMP_SESSION_ID: '3f1c2a9e-6b7d-4c1e-9a0f-2d5e8b7c6a41',
  IMP_TENANT: 'acme',
  IMP_ENV: 'prod',
  IMP_SCOPE: 'write',
  IMP_EXPIRES_AT: '2026-11-24T12:29:30.000Z', // FakeClock starts at 12:00:00
};

describe('fast path', () => {
  it.each([[['--version']], [['-v']], [['version']], [['--help']], [['-h']], [['help']], [['prompt']]])(
    'imp %j answers exactly as main does',
    async (argv) => {
      for (const env of [{}, inSession]) {
        const viaMain = makeTestDeps({ env });
        const viaFast = makeTestDeps({ env });
        const mainCode = await main(argv, viaMain.deps, '1.2.3');
        const fastCode = await fastPath(argv, '1.2.3', viaFast.deps);
        expect(fastCode).toBe(mainCode);
        expect(viaFast.io.stdoutText()).toBe(viaMain.io.stdoutText());
        expect(viaFast.io.stderrText()).toBe(viaMain.io.stderrText());
      }
    },
  );

  it.each([[[]], [['prompt', '--json']], [['--version', '--json']], [['help', 'login']], [['status']]])(
    'leaves imp %j to main',
    async (argv) => {
      expect(await fastPath(argv, '1.2.3', makeTestDeps().deps)).toBeUndefined();
    },
  );

  it.each([[['prompt']], [['--version']], [['--help']]])(
    'the real imp %j loads neither the dispatcher nor commander',
    (argv) => {
      const trace = join(makeTempDir('imp-fast-'), 'modules.txt');
      const result = spawnSync(
        process.execPath,
        [
          '--no-warnings',
          '--experimental-loader',
          join(ROOT, 'test/fixtures/trace-loader.mjs'),
          IMP_BIN,
          ...argv,
        ],
        {
          env: { PATH: process.env.PATH, HOME: tmpdir(), IMP_TRACE_FILE: trace, ...inSession },
          encoding: 'utf8',
        },
      );
      expect(result.status, result.stderr).toBe(0);
      const modules = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
      expect(modules.some((url) => url.endsWith('/dist/cli/fast-path.js'))).toBe(true);
      expect(modules.filter((url) => /\/dist\/cli\/(main|deps|command)\.js$|commander/.test(url))).toEqual(
        [],
      );
    },
  );
});
