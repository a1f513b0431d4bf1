// Audit log: durable appends through the Store (hash chain, sealed events, a signed checkpoint every
// 100 events as the broker does) against raw single-row INSERT transactions on a file with the
// same settings (WAL, synchronous=FULL), both in this run; then verification of 1,000,000 chained
// events generated in memory with sealEvent, with signed checkpoints every 100,000.
// Run with a larger heap: node --max-old-space-size=4096 bench/audit.js [--quick]
import { hash, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { checkpointVerifier } from '../dist/auth/checkpoints.js';
import { signCheckpoint } from '../dist/broker/checkpoints.js';
import { KeyRing } from '../dist/broker/keys.js';
import { canonicalJson } from '../dist/core/audit/canonical-json.js';
import { GENESIS_PREV, sealEvent } from '../dist/core/audit/event.js';
import { eventLeafHash } from '../dist/core/audit/log-tree.js';
import { Frontier } from '../dist/core/audit/merkle.js';
import { verifyChain } from '../dist/core/audit/verify-chain.js';
import { eventToRow, openSqliteStore } from '../dist/store/sqlite.js';
import { SQLITE_MIGRATIONS } from '../dist/store/sqlite-schema.js';
import { round } from './lib.js';

const quick = process.argv.includes('--quick');
const APPENDS = quick ? 500 : 3000;
const VERIFY_EVENTS = quick ? 100_000 : 1_000_000;
const dir = mkdtempSync(join(tmpdir(), 'imp-bench-audit-'));
const keys = await KeyRing.load(null, Date.now());

const actor = {
  iss: 'https://idp.example.com',
  sub: 'user-alice',
  email: 'alice@example.com',
  roles: ['support'],
};
const session = randomUUID();
/** A proxied call's two events, as the broker writes them. */
function draft(i) {
  const completed = i % 2 === 1;
  return {
    type: completed ? 'action.completed' : 'action.requested',
    actor,
    tenant: 'acme',
    environment: 'prod',
    session,
    ticket: 'SUP-4711',
    reason: 'Customer cannot see their November invoice',
    data: {
      scope: 'read',
      mode: 'standard',
      action_id: `act-${i >> 1}`,
      method: 'GET',
      path: '/v1/invoices?month=2026-11',
      kind: 'read',
      request_id: randomUUID(),
      ...(completed ? { status: 200, bytes: 2048, duration_ms: 4 } : {}),
    },
  };
}

/** Appends through the Store, `writers` at a time, checkpointing every 100 events. */
async function storeAppends(writers) {
  const store = openSqliteStore(join(dir, `store-${writers}.db`));
  let next = 0;
  let checkpointing = Promise.resolve();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < APPENDS) {
        const i = next++;
        const event = await store.transaction((tx) => tx.appendAudit(draft(i), Date.now()));
        if (event.seq % 100 === 0) {
          checkpointing = checkpointing.then(async () => {
            const head = await store.auditHead();
            await store.insertCheckpoint(await signCheckpoint({ keys }, head, new Date().toISOString()));
          });
        }
      }
    }),
  );
  await checkpointing;
  const seconds = (performance.now() - t0) / 1000;
  const checkpoints = (await store.listCheckpoints()).length;
  await store.close();
  return { appends: APPENDS, writers, perSecond: round(APPENDS / seconds, 0), checkpoints };
}

/** The floor: one INSERT per transaction, same file settings, rows sealed beforehand. */
function rawInserts() {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(SQLITE_MIGRATIONS[0]);
  const insert = db.prepare(
    `INSERT INTO audit_events (seq, id, ts, type, actor, tenant, environment, session, ticket, reason, data, prev, hash)
     VALUES (@seq, @id, @ts, @type, @actor, @tenant, @environment, @session, @ticket, @reason, @data, @prev, @hash)`,
  );
  const rows = [];
  let prev = GENESIS_PREV;
  for (let i = 0; i < APPENDS; i++) {
    const event = sealEvent(draft(i), { seq: i + 1, id: randomUUID(), ts: new Date().toISOString(), prev });
    prev = event.hash;
    rows.push(eventToRow(event));
  }
  const t0 = performance.now();
  for (const row of rows) insert.run(row);
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  return { inserts: APPENDS, perSecond: round(APPENDS / seconds, 0) };
}

async function verifyMillion() {
  const t0 = performance.now();
  const events = new Array(VERIFY_EVENTS);
  const checkpoints = [];
  const base = Date.UTC(2026, 10, 24, 12);
  let prev = GENESIS_PREV;
  for (let i = 0; i < VERIFY_EVENTS; i++) {
    const event = sealEvent(draft(i), {
      seq: i + 1,
      id: randomUUID(),
      ts: new Date(base + i).toISOString(),
      prev,
    });
    events[i] = event;
    prev = event.hash;
    if ((i + 1) % 100_000 === 0)
      checkpoints.push(await signCheckpoint({ keys }, event, new Date(base + i).toISOString()));
  }
  const generated = (performance.now() - t0) / 1000;
  // Baseline: SHA-256 alone over the same bytes verification hashes (the first 100,000 events'
  // prev ‖ canonical JSON, built beforehand), scaled to the whole log.
  const sample = Math.min(100_000, VERIFY_EVENTS);
  // (Made flat strings first, so the figure is hashing only, not the joining of pieces.)
  const texts = events
    .slice(0, sample)
    .map(({ hash: _hash, ...rest }) => Buffer.from(rest.prev + canonicalJson(rest)).toString('utf8'));
  const th = performance.now();
  for (const text of texts) hash('sha256', text, 'hex');
  const hashOnly = ((performance.now() - th) / 1000) * (VERIFY_EVENTS / sample);
  const verifier = checkpointVerifier(keys.jwks(Date.now()));
  const t1 = performance.now();
  const result = await verifyChain(events, checkpoints, verifier);
  const seconds = (performance.now() - t1) / 1000;
  if (!result.ok || result.events !== VERIFY_EVENTS)
    throw new Error(`verify failed: ${JSON.stringify(result)}`);
  // The RFC 9162 tree over the same events, as `imp audit verify` recomputes it: leaf hashes
  // (canonical JSON of each event) folded with a frontier, one root at the end.
  const tt = performance.now();
  const frontier = new Frontier();
  for (const event of events) frontier.append(eventLeafHash(event));
  frontier.root();
  const treeSeconds = (performance.now() - tt) / 1000;
  return {
    tree_seconds: round(treeSeconds, 3),
    events: VERIFY_EVENTS,
    checkpoints: result.checkpoints,
    seconds: round(seconds, 3),
    eventsPerSecond: round(VERIFY_EVENTS / seconds, 0),
    sha256_only_seconds: round(hashOnly, 3),
    generate_seconds: round(generated, 1),
  };
}

const raw = rawInserts();
const store1 = await storeAppends(1);
const store16 = await storeAppends(16);
const verify = await verifyMillion();
process.stdout.write(`${JSON.stringify({ audit: { raw, store_1: store1, store_16: store16, verify } })}\n`);
