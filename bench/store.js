// Store throughput: audit appends per second and session opens per second on SQLite (one broker) and
// PostgreSQL (one broker, and two brokers on one database), each next to a raw INSERT baseline on the
// same engine measured in the same run. PostgreSQL runs in a throwaway durable cluster (fsync and
// synchronous_commit on); SQLite runs WAL with synchronous=FULL, as the broker does.
//
// A "broker" here is a store instance with its own connection pool, driven by BENCH_CONCURRENCY
// callers (default 16) at once, as a broker's request handlers would. Both brokers run in this one
// process: what is measured is the store and the database, not HTTP or token signing.
//
// Run: npx tsc -p tsconfig.build.json && node bench/store.js [seconds per measurement, default 3]
import { mkdtempSync, rmSync } from 'node:fs';
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
for (const brokers of [1, 2]) {
  const appendUrl = await freshDatabase();
  const appendStores = await Promise.all(Array.from({ length: brokers }, () => openPostgresStore(appendUrl)));
  const appendRates = await Promise.all(appendStores.map((store) => rate(CONCURRENCY, append(store))));
  // Acknowledged is durable, not yet sequenced: how long the sequencer still needs once the load stops.
  const drainStart = performance.now();
  await Promise.all(appendStores.map((store) => store.settle?.(120_000)));
  const drainMs = performance.now() - drainStart;
  await Promise.all(appendStores.map((store) => store.close()));
  const sessionUrl = await freshDatabase();
  const sessionStores = await Promise.all(
    Array.from({ length: brokers }, () => openPostgresStore(sessionUrl)),
  );
  // Callers of different brokers are different people.
  await Promise.all(sessionStores.map((store, b) => insertLogins(store, callersOf(b))));
  const openRates = await Promise.all(
    sessionStores.map((store, b) =>
      rate(CONCURRENCY, (caller, n) => openSession(store, b * 1000 + caller, n)),
    ),
  );
  await Promise.all(sessionStores.map((store) => store.close()));
  const sum = (list) => list.reduce((a, b) => a + b, 0);
  results.push({
    engine: 'postgres',
    brokers,
    raw: pgRawSerial,
    appends: sum(appendRates),
    // Every acknowledged append in the tree: the run's appends over the run plus the drain after it.
    sequenced: (sum(appendRates) * SECONDS) / (SECONDS + drainMs / 1000),
    drainMs,
    opens: sum(openRates),
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
for (const row of results.filter((r) => r.drainMs !== undefined))
  console.log(
    `postgres ${row.brokers} broker(s): appends ${((100 * row.appends) / pgRawParallel).toFixed(0)}% of parallel raw INSERTs; sequenced into the tree ${row.sequenced.toFixed(0)}/s (queue drained ${row.drainMs.toFixed(0)} ms after the load stopped)`,
  );
console.log(JSON.stringify({ seconds: SECONDS, concurrency: CONCURRENCY, results, pgRawParallel }));
