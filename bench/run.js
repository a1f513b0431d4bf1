// `npm run bench`: every benchmark, each in a process of its own, each figure printed beside a
// baseline measured in the same run, and all of it written to bench/results.json. See bench/README.md.
// `node bench/run.js --quick` runs shorter versions (a smoke test, not figures to quote).
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { round, runJsonScript } from './lib.js';

const quick = process.argv.includes('--quick');
const here = (file) => fileURLToPath(new URL(file, import.meta.url));
const started = Date.now();

function section(name) {
  process.stderr.write(`bench: ${name}…\n`);
}

section('CLI start-up');
const cli = (await runJsonScript(here('./cli-start.js'), [quick ? '5' : '21'])).cli_start;
section('broker: session open and proxy');
const broker = await runJsonScript(here('./broker.js'), quick ? ['--quick', '--rss'] : ['--rss']);
section('audit: appends and verify');
const audit = (
  await runJsonScript(here('./audit.js'), quick ? ['--quick'] : [], ['--max-old-space-size=4096'])
).audit;
section('store: SQLite and PostgreSQL, one broker and two');
const store = await runJsonScript(here('./store.js'), [quick ? '1' : '3']);
section('verify library');
const verifyLib = (await runJsonScript(here('./verify.js'), [quick ? '5000' : '50000', '--json'])).verify_lib;
section('session recording: echo latency and broker CPU');
const recording = (await runJsonScript(here('./recording.js'), quick ? ['--quick'] : [])).recording;

const ms = (value) => `${value} ms`;
const perSecond = (value) => `${Math.round(value).toLocaleString('en-US')}/s`;
const rows = [];
const row = (area, what, figure, baseline, target, ok) =>
  rows.push({ area, what, figure, baseline, target, ok });

const node = cli.find((c) => c.name === 'node -e 0');
for (const c of cli.filter((c) => c !== node)) {
  row(
    'CLI start',
    `${c.name} (median of ${c.runs})`,
    `${ms(c.median_ms)} = ${c.ratio}×`,
    `node -e 0: ${ms(node.median_ms)}`,
    '≤ 1.3×', // issue #16: `imp prompt` runs at every shell prompt
    c.ratio <= 1.3,
  );
}
for (const [clients, s] of Object.entries(broker.sessions)) {
  row(
    'Session open',
    `${clients} concurrent client${clients === '1' ? '' : 's'} (n=${s.n})`,
    `p50 ${ms(s.p50)} / p99 ${ms(s.p99)}`,
    `GET /healthz: p50 ${ms(s.healthz.p50)} / p99 ${ms(s.healthz.p99)}`,
    clients === '16' ? 'p99 ≤ 20 ms' : '',
    clients === '16' ? s.p99 <= 20 : null,
  );
}
const p = broker.proxy;
row(
  'Proxy',
  `throughput, 16 connections (${p.throughput_16.proxied.seconds}s)`,
  `${perSecond(p.throughput_16.proxied.perSecond)} = ${Math.round(p.throughput_ratio * 100)}%`,
  `direct: ${perSecond(p.throughput_16.direct.perSecond)}`,
  '≥ 60% of direct',
  p.throughput_ratio >= 0.6,
);
if (p.throughput_16.nginx)
  row(
    'Proxy',
    'throughput vs nginx (reverse proxy, access log)',
    `${perSecond(p.throughput_16.proxied.perSecond)} = ${Math.round(p.nginx_ratio * 100)}% of nginx`,
    `nginx: ${perSecond(p.throughput_16.nginx.perSecond)} (${p.nginx_logged} log lines)`,
    '',
    null,
  );
row(
  'Proxy',
  'latency at 16 connections',
  `p50 ${ms(p.throughput_16.proxied.p50)} / p99 ${ms(p.throughput_16.proxied.p99)}`,
  `direct: p50 ${ms(p.throughput_16.direct.p50)} / p99 ${ms(p.throughput_16.direct.p99)}`,
  '',
  null,
);
row(
  'Proxy',
  `latency, 1 connection (n=${p.latency_1.proxied.n})`,
  `p50 ${ms(p.latency_1.proxied.p50)} (+${ms(p.added_p50_ms)}) / p99 ${ms(p.latency_1.proxied.p99)}`,
  `direct: p50 ${ms(p.latency_1.direct.p50)} / p99 ${ms(p.latency_1.direct.p99)}`,
  '≤ +1 ms p50',
  p.added_p50_ms <= 1,
);
row(
  'Proxy',
  'auditing on: action.completed events',
  `${p.audited_calls}`,
  `proxied calls: ${p.proxied_calls}`,
  'all',
  p.audited_calls >= p.proxied_calls,
);
for (const [name, what] of [
  ['session_open_64', 'session open, 64 clients'],
  ['proxy_16', 'proxy, 16 connections'],
]) {
  const r = broker.rss?.[name];
  if (!r) continue;
  row(
    'Memory',
    `broker RSS under ${what}, ${r.seconds} s (${r.operations.toLocaleString('en-US')} calls)`,
    `${r.first_mib} → ${r.last_mib} MiB (${r.growth >= 0 ? '+' : ''}${Math.round(r.growth * 100)}%), max ${r.max_mib}`,
    'first vs last fifth of the run (medians)',
    'flat (≤ +10%)',
    quick ? null : r.growth <= 0.1,
  );
}
row(
  'Audit',
  'durable appends, 1 writer (Store)',
  perSecond(audit.store_1.perSecond),
  `raw INSERT: ${perSecond(audit.raw.perSecond)}`,
  '',
  null,
);
row(
  'Audit',
  'durable appends, 16 writers (Store)',
  perSecond(audit.store_16.perSecond),
  `raw INSERT: ${perSecond(audit.raw.perSecond)}; this disk's ceiling for 16 writers: ${perSecond(audit.disk.ceiling_16)} (fdatasync p50 ${audit.disk.p50_ms} ms)`,
  '≥ 10,000/s',
  audit.store_16.perSecond >= 10_000,
);
const engine = (name, brokers) => store.results.find((r) => r.engine === name && r.brokers === brokers);
const [lite, pg1, pg2] = [engine('sqlite', 1), engine('postgres', 1), engine('postgres', 2)];
row(
  'Store',
  `PostgreSQL appends/s, 2 brokers vs 1 (${store.concurrency} callers each)`,
  `${perSecond(pg2.appends)} = ${round(pg2.appends / pg1.appends)}×`,
  `1 broker: ${perSecond(pg1.appends)}`,
  '≥ 1.6×',
  pg2.appends / pg1.appends >= 1.6,
);
row(
  'Store',
  'PostgreSQL appends/s vs raw parallel INSERTs',
  `${perSecond(pg1.appends)} = ${Math.round((pg1.appends / store.pgRawParallel) * 100)}%`,
  `raw INSERT, ${store.concurrency} connections: ${perSecond(store.pgRawParallel)}`,
  '≥ 50%',
  pg1.appends / store.pgRawParallel >= 0.5,
);
row(
  'Store',
  'PostgreSQL session opens/s, 1 broker, vs SQLite',
  `${perSecond(pg1.opens)} = ${Math.round((pg1.opens / lite.opens) * 100)}%`,
  `SQLite: ${perSecond(lite.opens)}`,
  '≥ 50% of SQLite',
  pg1.opens / lite.opens >= 0.5,
);
row(
  'Audit',
  `imp audit verify --file, ${audit.verify.events.toLocaleString('en-US')} canonical events + ${audit.verify.checkpoints} checkpoints (chain + tree)`,
  `${audit.verify.seconds} s (${perSecond(audit.verify.eventsPerSecond)})`,
  `SHA-256 alone: ${audit.verify.sha256_only_seconds} s`,
  quick ? '' : '≤ 3 s',
  quick ? null : audit.verify.seconds <= 3,
);
row(
  'verify lib',
  'session tokens verified, one core',
  `${perSecond(verifyLib.ours.perSecond)} (${verifyLib.ours.microseconds} µs)`,
  `raw ES256 crypto.verify: ${perSecond(verifyLib.raw.perSecond)}; jose: ${perSecond(verifyLib.jose.perSecond)}`,
  '≥ 20,000/s',
  verifyLib.ours.perSecond >= 20_000,
);
const echo = recording.echo;
row(
  'Recording',
  `echo latency, imp start, recorded (n=${echo.imp_start_recording_required.n})`,
  `p50 ${ms(echo.imp_start_recording_required.p50)} / p99 ${ms(echo.imp_start_recording_required.p99)}`,
  `not recorded: p50 ${ms(echo.imp_start_recording_off.p50)} / p99 ${ms(echo.imp_start_recording_off.p99)}; bare sh: p50 ${ms(echo.bare_sh.p50)}`,
  'p50 ≤ 20 ms',
  echo.imp_start_recording_required.p50 <= 20,
);
row(
  'Recording',
  `broker CPU, yes | head -n ${recording.busy.lines.toLocaleString('en-US')} recorded`,
  `${Math.round(recording.busy.broker_cpu_share * 100)}% of a core`,
  `${recording.busy.chunks} chunks, ${Math.round(recording.busy.recorded_bytes / 1024)} KiB in ${round(recording.busy.wall_ms / 1000, 1)} s`,
  quick ? '' : '≤ 25% of a core',
  quick ? null : recording.busy.broker_cpu_share <= 0.25,
);

const headers = {
  area: 'area',
  what: 'what',
  figure: 'figure',
  baseline: 'baseline (same run)',
  target: 'target',
  ok: '',
};
const width = (key) => Math.max(...[headers, ...rows].map((r) => String(r[key]).length));
const mark = (ok) => (ok === null ? '' : ok ? 'met' : 'MISSED');
const line = (r, okText) =>
  ['area', 'what', 'figure', 'baseline', 'target'].map((k) => String(r[k]).padEnd(width(k))).join('  ') +
  `  ${okText}`;
const machine = `Node ${process.version} · ${cpus()[0]?.model ?? 'unknown CPU'} · ${availableParallelism()} cores · load ${loadavg()
  .map((l) => l.toFixed(1))
  .join(' ')}`;
console.log(`\nimp benchmarks${quick ? ' (--quick: smoke test only)' : ''} — ${machine}\n`);
console.log(line(headers, ''));
for (const r of rows) console.log(line(r, mark(r.ok)));
const missed = rows.filter((r) => r.ok === false);
console.log(
  `\n${missed.length === 0 ? 'every target met' : `${missed.length} target(s) missed — bench/README.md says what limits them`} · ${round((Date.now() - started) / 1000, 0)} s · results in bench/results.json`,
);

writeFileSync(
  here('./results.json'),
  `${JSON.stringify({ at: new Date().toISOString(), quick, machine, rows, raw: { cli, broker, audit, store, verifyLib, recording } }, null, 2)}
`,
);
