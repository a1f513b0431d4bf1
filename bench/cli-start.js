// CLI start-up: `imp --version`, `imp --help` and `imp prompt` (inside a session, as a shell prompt
// runs it) against `node -e 0` in the same run, hyperfine-style: warm-ups, then interleaved spawns.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMP_BIN, percentile, ROOT, round } from './lib.js';

const RUNS = Number(process.argv[2] ?? 21);
const home = mkdtempSync(join(tmpdir(), 'imp-bench-cli-'));
const env = {
  PATH: process.env.PATH,
  HOME: home,
  XDG_CONFIG_HOME: join(home, '.config'),
  XDG_STATE_HOME: join(home, '.state'),
  IMP_SESSION_ID: '3f1c2a9e-6b7d-4c1e-9a0f-2d5e8b7c6a41',
  IMP_TENANT: 'acme',
  IMP_ENV: 'prod',
  IMP_SCOPE: 'read',
  IMP_EXPIRES_AT: new Date(Date.now() + 29 * 60_000).toISOString(),
};
const cases = [
  { name: 'node -e 0', args: ['-e', '0'] },
  { name: 'imp --version', args: [IMP_BIN, '--version'] },
  { name: 'imp --help', args: [IMP_BIN, '--help'] },
  { name: 'imp prompt', args: [IMP_BIN, 'prompt'] },
];

function once(args) {
  const t = performance.now();
  const result = spawnSync(process.execPath, args, { env, cwd: ROOT, encoding: 'utf8' });
  const ms = performance.now() - t;
  if (result.status !== 0)
    throw new Error(`${args.join(' ')} exited with ${result.status}: ${result.stderr}`);
  return ms;
}

for (const c of cases) for (let i = 0; i < 3; i++) once(c.args);
const samples = new Map(cases.map((c) => [c.name, []]));
for (let i = 0; i < RUNS; i++) for (const c of cases) samples.get(c.name).push(once(c.args));
const baseline = percentile(samples.get('node -e 0'), 50);
const results = cases.map((c) => {
  const median = percentile(samples.get(c.name), 50);
  return { name: c.name, runs: RUNS, median_ms: round(median, 1), ratio: round(median / baseline) };
});
process.stdout.write(`${JSON.stringify({ cli_start: results })}\n`);
