/**
 * `imp prompt`, `imp --version` and `imp --help` are answered without the dispatcher (start-up time):
 * the answer must be exactly main's, and the real binary must really run them from the one bundled
 * file (dist/cli/fast-path.cjs), skipping main, commander and every ES module of ours.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fastPath } from '../../src/cli/fast-path.js';
import { main } from '../../src/cli/main.js';
import { ROOT } from '../helpers/cli.js';
import { makeTestDeps } from '../helpers/cli-deps.js';
import { tracedImp } from '../helpers/module-trace.js';

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
    'the real imp %j answers as main does, from the bundle alone: no dispatcher, no ES module of ours, no commander',
    async (argv) => {
      // Expired, so the segment reads 0s whatever the clock: the real clock and the fake one agree.
      const env = { ...inSession, IMP_EXPIRES_AT: '2020-01-01T00:00:00.000Z' };
      const result = tracedImp(argv, { HOME: tmpdir(), ...env });
      expect(result.status, result.stderr).toBe(0);
      const viaMain = makeTestDeps({ env });
      const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      expect(await main(argv, viaMain.deps, version)).toBe(0);
      expect(result.stdout).toBe(viaMain.io.stdoutText());
      expect(result.stderr).toBe('');
      const ours = result.modules.filter((url) => url.includes('/dist/'));
      expect(new Set(ours)).toEqual(new Set([pathToFileURL(join(ROOT, 'dist/cli/fast-path.cjs')).href]));
      expect(result.modules.filter((url) => url.includes('commander'))).toEqual([]);
    },
  );
});
