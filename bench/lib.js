// Shared pieces of the benchmarks: statistics, a closed-loop load generator, and the real processes
// (the broker as `imp broker serve`, the demo tenant API) the broker benchmarks run against.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const IMP_BIN = fileURLToPath(new URL('../bin/imp.js', import.meta.url));

/** The p-th percentile (0–100) of numbers, nearest-rank. */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Median, p50, p99 and count of latencies in milliseconds. */
export function latency(samples) {
  return {
    n: samples.length,
    p50: round(percentile(samples, 50)),
    p99: round(percentile(samples, 99)),
    mean: round(samples.reduce((a, b) => a + b, 0) / (samples.length || 1)),
  };
}

export function round(value, digits = 2) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Runs `concurrency` closed loops calling `once()` until `durationMs` passed or `total` calls were
 * made; returns throughput and latency. `once` throws on a wrong answer, which aborts the run.
 */
export async function closedLoop({
  concurrency,
  durationMs = Number.POSITIVE_INFINITY,
  total = Number.POSITIVE_INFINITY,
  once,
}) {
  const samples = [];
  let started = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  async function worker(index) {
    while (started < total && performance.now() < deadline) {
      const n = started++;
      const t = performance.now();
      await once(index, n);
      samples.push(performance.now() - t);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  const seconds = (performance.now() - t0) / 1000;
  return {
    count: samples.length,
    seconds: round(seconds, 3),
    perSecond: round(samples.length / seconds, 0),
    ...latency(samples),
  };
}

/** Runs a node script and resolves with the last JSON line it printed on stdout. */
export function runJsonScript(script, args = [], nodeFlags = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, script, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .at(-1);
      if (code !== 0 || !line) return reject(new Error(`${script} exited with ${code}\n${stdout}`));
      resolve(JSON.parse(line));
    });
  });
}

/** Starts a child process and resolves once a stdout line satisfies `ready` (returns the parsed line). */
export function startChild(args, { env = process.env, ready, name }) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk.toString();
    if (process.env.BENCH_STDERR) process.stderr.write(chunk);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start\n${stderr}`)), 20_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk.toString();
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        const value = JSON.parse(line);
        if (ready(value)) {
          clearTimeout(timer);
          resolve({
            child,
            info: value,
            stderr: () => stderr,
            stop: () =>
              new Promise((done) => {
                if (child.exitCode !== null) return done();
                child.once('exit', () => done());
                child.kill('SIGTERM');
              }),
          });
          return;
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}\n${stderr}`)));
  });
}
