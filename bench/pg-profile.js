// Where the time of the PostgreSQL store goes (issue #16): for one audit append, one session open
// (what POST /v1/sessions does to the store, bench/store-ops.js) and the raw parallel INSERT baseline,
// with 1 and 2 brokers (store instances, each with its own pool, in this process):
//   - round trips per operation: every pg Client.query is one (node-postgres sends one query at a
//     time per connection), split into the callers' connections and the sequencer's;
//   - latency of one operation with one caller;
//   - at 16 callers per broker: the rate, CPU of this process (brokers and load generator) and of the
//     PostgreSQL server's processes (from /proc), the server's time per statement
//     (pg_stat_statements) and what its backends were waiting on (pg_stat_activity sampled every 5 ms).
// Same durable cluster settings as bench/store.js (fsync and synchronous_commit on, for both the store
// and the raw baseline).
//
// Run: npm run build && node bench/pg-profile.js [seconds per measurement, default 3] [append|open|raw ...]
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import pg from 'pg';
import { migratePostgres, openPostgresStore } from '../dist/store/postgres.js';
import { startCluster } from './pg-cluster.js';
import { append, insertLogins, openSession, PAYLOAD, rate } from './store-ops.js';

const SECONDS = Number(process.argv[2] ?? 3);
const ONLY = process.argv.slice(3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const TICK = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s

// ---- round trips: one per Client.query ----
const trips = new Map();
const originalQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function query(...args) {
  const who = this.connectionParameters?.application_name ?? 'other';
  trips.set(who, (trips.get(who) ?? 0) + 1);
  return originalQuery.apply(this, args);
};
const tripCount = (who) => trips.get(who) ?? 0;

const cluster = await startCluster({
  settings: ['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all'],
});
const admin = new pg.Client({ connectionString: cluster.url('postgres'), application_name: 'profile' });
await admin.connect();
let databases = 0;
async function freshDatabase() {
  const name = `profile_${++databases}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const pool = new pg.Pool({ connectionString: cluster.url(name), max: 1, application_name: 'profile' });
  await migratePostgres(pool);
  await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await pool.end();
  return { name, url: cluster.url(name) };
}

function cpuTicks(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // ended meanwhile
    }
  }
  return total;
}

/** Per-process CPU of the server (by pid, so backends that start during the run count from 0). */
function serverSnapshot() {
  return new Map(cluster.serverPids().map((pid) => [pid, cpuTicks([pid])]));
}
function serverDelta(before) {
  let total = 0;
  for (const [pid, ticks] of serverSnapshot()) total += ticks - (before.get(pid) ?? 0);
  return total / TICK;
}

/** Samples the wait events of active backends of `database` until stopped. */
function sampleWaits(database) {
  const counts = new Map();
  let samples = 0;
  let stop = false;
  const done = (async () => {
    const client = new pg.Client({ connectionString: cluster.url(database), application_name: 'profile' });
    await client.connect();
    while (!stop) {
      const result = await client.query(
        `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w, state, application_name AS app
         FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'imp-%' AND backend_type = 'client backend'`,
        [database],
      );
      samples++;
      for (const row of result.rows) {
        const key = `${row.app} ${row.state === 'active' ? row.w : `idle: ${row.state}${row.w === 'Client:ClientRead' ? '' : ` ${row.w}`}`}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await client.end();
  })();
  return async () => {
    stop = true;
    await done;
    return { samples, counts };
  };
}

async function statements(url) {
  const client = new pg.Client({ connectionString: url, application_name: 'profile' });
  await client.connect();
  const result = await client.query(
    `SELECT calls, total_exec_time AS total, mean_exec_time AS mean, regexp_replace(left(query, 90), '\\s+', ' ', 'g') AS q
     FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND query NOT LIKE '%pg_stat_%' ORDER BY total_exec_time DESC LIMIT 10`,
  );
  await client.end();
  return result.rows;
}

async function resetStatements(url) {
  const client = new pg.Client({ connectionString: url, application_name: 'profile' });
  await client.connect();
  await client.query('SELECT pg_stat_statements_reset()');
  await client.end();
}

const percent = (part, whole) => `${((100 * part) / whole).toFixed(0)}%`;

async function profile(label, { setup, op, brokers }) {
  const db = await freshDatabase();
  const stores = await Promise.all(
    Array.from({ length: brokers }, () => openPostgresStore(db.url, { maxConnections: CONCURRENCY })),
  );
  await Promise.all(stores.map((store, b) => setup?.(store, b)));
  // Round trips and latency of one operation, one caller, after a warm-up.
  for (let n = 0; n < 20; n++) await op(stores[0], 0, 100_000 + n);
  await Promise.all(stores.map((store) => store.settle?.(60_000)));
  const before = { caller: tripCount('imp-broker'), seq: tripCount('imp-sequencer') };
  const N = 200;
  const t0 = performance.now();
  for (let n = 0; n < N; n++) await op(stores[0], 0, 200_000 + n);
  const latency = (performance.now() - t0) / N;
  await Promise.all(stores.map((store) => store.settle?.(60_000)));
  const perOp = {
    caller: (tripCount('imp-broker') - before.caller) / N,
    seq: (tripCount('imp-sequencer') - before.seq) / N,
  };
  // The load: CONCURRENCY callers per broker.
  await resetStatements(db.url);
  const stopWaits = sampleWaits(db.name);
  const server0 = serverSnapshot();
  await startCpuProfile();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const rates = await Promise.all(
    stores.map((store, b) => rate(SECONDS, CONCURRENCY, (caller, n) => op(store, b * 1000 + caller, n))),
  );
  const wall = (performance.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const serverCpu = serverDelta(server0);
  await stopCpuProfile(label);
  const waits = await stopWaits();
  const drain0 = performance.now();
  await Promise.all(stores.map((store) => store.settle?.(120_000)));
  const drainMs = performance.now() - drain0;
  const top = await statements(db.url);
  await Promise.all(stores.map((store) => store.close()));
  const total = rates.reduce((a, b) => a + b, 0);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(
    `\n== ${label}: ${total.toFixed(0)}/s (${brokers} broker(s) × ${CONCURRENCY} callers, ${SECONDS} s, load ${load})`,
  );
  console.log(
    `   one caller: ${latency.toFixed(2)} ms per operation; round trips per operation: ${perOp.caller.toFixed(2)} (callers) + ${perOp.seq.toFixed(2)} (sequencer)`,
  );
  console.log(
    `   CPU over ${wall.toFixed(1)} s: this process ${((cpu.user + cpu.system) / 1e6 / wall).toFixed(2)} cores (${((cpu.user + cpu.system) / 1e3 / (total * wall)).toFixed(3)} ms/op), PostgreSQL ${(serverCpu / wall).toFixed(2)} cores (${((1000 * serverCpu) / (total * wall)).toFixed(3)} ms/op); queue drained ${drainMs.toFixed(0)} ms after`,
  );
  const waitRows = [...waits.counts].sort((a, b) => b[1] - a[1]).slice(0, 8);
  console.log(
    `   backends (mean over ${waits.samples} samples): ${waitRows.map(([k, v]) => `${k} ${(v / waits.samples).toFixed(2)}`).join('; ')}`,
  );
  const execTotal = top.reduce((a, r) => a + r.total, 0);
  for (const row of top.slice(0, 7))
    console.log(
      `   ${String(row.calls).padStart(7)} calls ${row.mean.toFixed(3).padStart(7)} ms ${percent(row.total, execTotal).padStart(4)}  ${row.q}`,
    );
  return total;
}

async function raw(connections) {
  const db = await freshDatabase();
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = new pg.Client({ connectionString: db.url, application_name: 'imp-raw' });
      await client.connect();
      return client;
    }),
  );
  await clients[0].query('CREATE TABLE raw (seq BIGINT PRIMARY KEY, event TEXT NOT NULL)');
  let seq = 0;
  const server0 = serverSnapshot();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const stopWaits = sampleWaits(db.name);
  const result = await rate(SECONDS, connections, (caller) =>
    clients[caller].query('INSERT INTO raw (seq, event) VALUES ($1, $2)', [++seq, PAYLOAD]),
  );
  const wall = (performance.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const serverCpu = serverDelta(server0);
  const waits = await stopWaits();
  await Promise.all(clients.map((c) => c.end()));
  console.log(`\n== raw INSERT, ${connections} connections: ${result.toFixed(0)}/s`);
  console.log(
    `   CPU: this process ${((cpu.user + cpu.system) / 1e6 / wall).toFixed(2)} cores (${((cpu.user + cpu.system) / 1e3 / (result * wall)).toFixed(3)} ms/op), PostgreSQL ${(serverCpu / wall).toFixed(2)} cores (${((1000 * serverCpu) / (result * wall)).toFixed(3)} ms/op)`,
  );
  const waitRows = [...waits.counts].sort((a, b) => b[1] - a[1]).slice(0, 6);
  console.log(
    `   backends: ${waitRows.map(([k, v]) => `${k} ${(v / waits.samples).toFixed(2)}`).join('; ')}`,
  );
  return result;
}

/** BENCH_CPU_PROFILE=DIR: a V8 CPU profile of this process during each load phase, one file per measurement. */
const profileDir = process.env.BENCH_CPU_PROFILE;
let inspector = null;
async function startCpuProfile() {
  if (!profileDir) return;
  inspector ??= new Session();
  inspector.connect?.();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.start');
}
async function stopCpuProfile(label) {
  if (!profileDir) return;
  const { profile } = await inspector.post('Profiler.stop');
  writeFileSync(`${profileDir}/${label.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`, JSON.stringify(profile));
  inspector.disconnect();
  inspector = null;
}

const want = (name) => ONLY.length === 0 || ONLY.includes(name);
console.log(`pg-profile — ${cluster.version}, node ${process.version}, ${SECONDS} s per measurement`);
const sync = await admin.query(
  "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'commit_delay', 'wal_sync_method')",
);
console.log(
  `server: ${sync.rows.map((r) => `${r.name}=${r.setting}`).join(', ')} (the same for the store and the raw baseline)`,
);
if (want('raw')) await raw(CONCURRENCY);
for (const brokers of [1, 2]) {
  if (want('append'))
    await profile(`append, ${brokers} broker(s)`, { op: (store) => append(store)(), brokers });
  if (want('open'))
    await profile(`session open, ${brokers} broker(s)`, {
      brokers,
      setup: (store, b) =>
        insertLogins(
          store,
          Array.from({ length: CONCURRENCY }, (_, c) => b * 1000 + c),
        ),
      op: (store, caller, n) => openSession(store, caller, n),
    });
}
await admin.end();
cluster.stop();
