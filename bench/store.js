// Store throughput: audit appends per second and session opens per second on SQLite (one broker) and
// PostgreSQL (one broker, and two brokers on one database), each next to a raw INSERT baseline on the
// same engine measured in the same run. PostgreSQL runs in a throwaway durable cluster (fsync and
// synchronous_commit on); SQLite runs WAL with synchronous=FULL, as the broker does.
//
// A "broker" here is a store instance with its own connection pool, driven by BENCH_CONCURRENCY
// callers (default 16) at once, as a broker's request handlers would. Each PostgreSQL broker runs in
// a process of its own with its callers (bench/store-broker.js), as replicas do; BENCH_PG_IN_PROCESS=1
// runs them all in this process instead (how the rows were measured before issue #16's profile).
// What is measured is the store and the database, not HTTP or token signing. The PostgreSQL rows
// also print each process's CPU (bench/README.md, issue #16).
//
// Run: npx tsc -p tsconfig.build.json && node bench/store.js [seconds per measurement, default 3]
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { migratePostgres, openPostgresStore } from '../dist/store/postgres.js';
import { openSqliteStore } from '../dist/store/sqlite.js';
import { startCluster } from './pg-cluster.js';
import { append, insertLogins, openSession, PAYLOAD, rate as rateFor } from './store-ops.js';

const SECONDS = Number(process.argv[2] ?? process.env.BENCH_SECONDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const rate = (callers, op) => rateFor(SECONDS, callers, op);
const callersOf = (broker) => Array.from({ length: CONCURRENCY }, (_, caller) => broker * 1000 + caller);

// ---- SQLite ----
const dir = mkdtempSync(join(tmpdir(), 'imp-bench-store-'));
const results = [];
{
  const raw = new Database(join(dir, 'raw.db'));
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = FULL');
  raw.exec('CREATE TABLE raw (seq INTEGER PRIMARY KEY, event TEXT NOT NULL)');
  const insert = raw.prepare('INSERT INTO raw (seq, event) VALUES (?, ?)');
  let seq = 0;
  const rawRate = await rate(1, async () => {
    insert.run(++seq, PAYLOAD);
  });
  raw.close();
  const appendStore = openSqliteStore(join(dir, 'append.db'));
  const appends = await rate(CONCURRENCY, append(appendStore));
  await appendStore.close();
  const sessionStore = openSqliteStore(join(dir, 'sessions.db'));
  await insertLogins(sessionStore, callersOf(0));
  const opens = await rate(CONCURRENCY, (caller, n) => openSession(sessionStore, caller, n));
  await sessionStore.close();
  results.push({ engine: 'sqlite', brokers: 1, raw: rawRate, appends, opens });
}

// ---- PostgreSQL ----
const cluster = await startCluster({ durable: process.env.BENCH_DURABLE !== '0' });
let databases = 0;
async function freshDatabase() {
  const name = `bench_${++databases}`;
  const admin = new pg.Client({ connectionString: cluster.url('postgres') });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: cluster.url(name), max: 1 });
  await migratePostgres(pool);
  await pool.end();
  return cluster.url(name);
}

async function pgRaw(connections) {
  const url = await freshDatabase();
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  await clients[0].query('CREATE TABLE raw (seq BIGINT PRIMARY KEY, event TEXT NOT NULL)');
  let seq = 0;
  const result = await rate(connections, (caller) =>
    clients[caller].query('INSERT INTO raw (seq, event) VALUES ($1, $2)', [++seq, PAYLOAD]),
  );
  await Promise.all(clients.map((c) => c.end()));
  return result;
}

const pgRawSerial = await pgRaw(1);
const pgRawParallel = await pgRaw(CONCURRENCY);
/**
 * Runs `brokers` brokers, each in a process of its own (bench/store-broker.js) unless
 * BENCH_PG_IN_PROCESS=1 (all in this one, as before issue #16's profile); returns the summed rate,
 * the drain, and CPU per process over the run (cores: CPU seconds per wall second, from /proc for
 * the server).
 */
async function pgBrokers(brokers, what) {
  const url = await freshDatabase();
  if (process.env.BENCH_PG_IN_PROCESS === '1') {
    const stores = await Promise.all(Array.from({ length: brokers }, () => openPostgresStore(url)));
    if (what === 'open') await Promise.all(stores.map((store, b) => insertLogins(store, callersOf(b))));
    const server0 = serverTicks();
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const rates = await Promise.all(
      stores.map((store, b) =>
        rate(
          CONCURRENCY,
          what === 'open' ? (caller, n) => openSession(store, b * 1000 + caller, n) : append(store),
        ),
      ),
    );
    const wall = (performance.now() - wall0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const server = serverCores(server0, wall);
    const drain0 = performance.now();
    await Promise.all(stores.map((store) => store.settle(120_000)));
    const drainMs = performance.now() - drain0;
    await Promise.all(stores.map((store) => store.close()));
    return { rate: sum(rates), drainMs, cores: { brokers: [(cpu.user + cpu.system) / 1e6 / wall], server } };
  }
  const children = Array.from({ length: brokers }, (_, b) =>
    fork(new URL('./store-broker.js', import.meta.url), [
      url,
      what,
      String(SECONDS),
      String(CONCURRENCY),
      String(b),
    ]),
  );
  // Each child's messages in order, whenever they arrive (a fast child's second one may come first).
  const inboxes = new Map(
    children.map((child) => {
      const messages = [];
      const waiting = [];
      child.on('message', (message) =>
        waiting.length > 0 ? waiting.shift().resolve(message) : messages.push(message),
      );
      child.once('exit', (code) => {
        for (const waiter of waiting.splice(0))
          waiter.reject(new Error(`a bench broker exited with ${code}`));
      });
      return [child, { messages, waiting }];
    }),
  );
  const next = (child) => {
    const inbox = inboxes.get(child);
    if (inbox.messages.length > 0) return Promise.resolve(inbox.messages.shift());
    if (child.exitCode !== null)
      return Promise.reject(new Error(`a bench broker exited with ${child.exitCode}`));
    return new Promise((resolve, reject) => inbox.waiting.push({ resolve, reject }));
  };
  await Promise.all(children.map(next));
  const server0 = serverTicks();
  const wall0 = performance.now();
  const reports = children.map(next);
  for (const child of children) child.send('go');
  const done = await Promise.all(reports);
  const server = serverCores(server0, (performance.now() - wall0) / 1000);
  const drained = await Promise.all(children.map(next));
  return {
    rate: sum(done.map((d) => d.rate)),
    drainMs: Math.max(...drained.map((d) => d.drainMs)),
    cores: { brokers: done.map((d) => d.cpu / d.wall), server },
  };
}

const sum = (list) => list.reduce((a, b) => a + b, 0);
function serverTicks() {
  return new Map(cluster.serverPids().map((pid) => [pid, ticksOf(pid)]));
}
// The server's CPU (postmaster, backends, WAL writer …) per wall second since `before`.
function serverCores(before, wall) {
  let ticks = 0;
  for (const pid of cluster.serverPids()) ticks += ticksOf(pid) - (before.get(pid) ?? 0);
  return ticks / 100 / wall;
}
function ticksOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime, 1/100 s
  } catch {
    return 0;
  }
}

for (const brokers of [1, 2]) {
  const appends = await pgBrokers(brokers, 'append');
  const opens = await pgBrokers(brokers, 'open');
  results.push({
    engine: 'postgres',
    brokers,
    raw: pgRawSerial,
    appends: appends.rate,
    // Every acknowledged append in the tree: the run's appends over the run plus the drain after it.
    sequenced: (appends.rate * SECONDS) / (SECONDS + appends.drainMs / 1000),
    drainMs: appends.drainMs,
    opens: opens.rate,
    cores: { appends: appends.cores, opens: opens.cores },
  });
}
cluster.stop();
rmSync(dir, { recursive: true, force: true });

// ---- Report ----
const f = (n) => n.toFixed(0).padStart(7);
const r = (n) => `${n.toFixed(2)}×`.padStart(7);
console.log(
  `imp store benchmark — node ${process.version}, ${availableParallelism()} × ${cpus()[0]?.model.trim()}, ${cluster.version}${process.env.BENCH_DURABLE === '0' ? ' (fsync off)' : ''}`,
);
console.log(
  `${SECONDS} s per measurement, ${CONCURRENCY} concurrent callers per broker; ratios are to the raw INSERT baseline of the same engine (one row per committed transaction, one connection)\n`,
);
console.log('engine     brokers   raw INSERT/s   appends/s  ratio   session opens/s  ratio');
for (const row of results)
  console.log(
    `${row.engine.padEnd(10)} ${String(row.brokers).padStart(7)}   ${f(row.raw)}        ${f(row.appends)} ${r(row.appends / row.raw)}   ${f(row.opens)}         ${r(row.opens / row.raw)}`,
  );
console.log(
  `\npostgres raw INSERT/s with ${CONCURRENCY} connections in parallel (group commit, no chain): ${pgRawParallel.toFixed(0)}`,
);
const cores = (c) =>
  `brokers ${c.brokers.map((n) => n.toFixed(2)).join(' + ')}, PostgreSQL ${c.server.toFixed(2)}`;
console.log(
  `postgres brokers ${process.env.BENCH_PG_IN_PROCESS === '1' ? 'all in this process' : 'each in a process of its own'}; CPU in cores (CPU s per wall s) — load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
);
for (const row of results.filter((r) => r.cores))
  console.log(
    `  ${row.brokers} broker(s): appends ${cores(row.cores.appends)}; session opens ${cores(row.cores.opens)}`,
  );
for (const row of results.filter((r) => r.drainMs !== undefined))
  console.log(
    `postgres ${row.brokers} broker(s): appends ${((100 * row.appends) / pgRawParallel).toFixed(0)}% of parallel raw INSERTs; sequenced into the tree ${row.sequenced.toFixed(0)}/s (queue drained ${row.drainMs.toFixed(0)} ms after the load stopped)`,
  );
console.log(JSON.stringify({ seconds: SECONDS, concurrency: CONCURRENCY, results, pgRawParallel }));
