/**
 * Runs the real `imp` with every module it loads written down: ES modules through a resolve hook
 * (test/fixtures/trace-loader.mjs), CommonJS ones (bin/imp.js, the fast-path bundle, anything
 * `require`d) from require.cache at exit (test/fixtures/trace-require.cjs), since on Node 20 the
 * hook does not see `require()`. Used to prove which modules a command start pays for.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMP_BIN, ROOT } from './cli.js';
import { makeTempDir } from './temp.js';

/** What one traced run loaded (file and node: URLs, repeats possible) and printed. */
export interface TracedRun {
  /** Everything below, ES modules first. */
  modules: string[];
  /** Seen by the resolve hook: the entry point, every `import`. */
  esm: string[];
  /** In require.cache at exit: every `require`d file. */
  cjs: string[];
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `imp args…` once under the trace, with only PATH, HOME and `env` in its environment. */
export function tracedImp(args: readonly string[], env: NodeJS.ProcessEnv): TracedRun {
  const trace = join(makeTempDir('imp-trace-'), 'modules.txt');
  const result = spawnSync(
    process.execPath,
    [
      '--no-warnings',
      '--experimental-loader',
      join(ROOT, 'test/fixtures/trace-loader.mjs'),
      '--require',
      join(ROOT, 'test/fixtures/trace-require.cjs'),
      IMP_BIN,
      ...args,
    ],
    { env: { PATH: process.env.PATH, IMP_TRACE_FILE: trace, ...env }, encoding: 'utf8' },
  );
  let lines: string[] = [];
  try {
    lines = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
  } catch {
    lines = [];
  }
  const esm = lines.filter((line) => !line.startsWith('cjs '));
  const cjs = lines.filter((line) => line.startsWith('cjs ')).map((line) => line.slice('cjs '.length));
  return {
    modules: [...esm, ...cjs],
    esm,
    cjs,
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
  };
}
