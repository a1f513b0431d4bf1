// How long the SQLite store keeps the event loop from other work: `writers` callers append audit
// events (a proxied call's action.requested) through the Store as fast as they are acknowledged,
// for SECONDS, while a request-like timer measures the event loop's delay (monitorEventLoopDelay).
// Prints appends/s, the loop's delay p50/p99/max and its utilisation, and the disk's own
// fdatasync latency measured in the same run (the floor of any durable acknowledgement).
//   node bench/sqlite-loop.js [seconds] [writers]
import { randomUUID } from 'node:crypto';
import { fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { openSqliteStore } from '../dist/store/sqlite.js';

const SECONDS = Number(process.argv[2] ?? 4);
const WRITERS = Number(process.argv[3] ?? 16);
const dir = mkdtempSync(join(tmpdir(), 'imp-bench-loop-'));

// The disk's fdatasync latency, 50 times 4 KiB appended and synced.
const probe = openSync(join(dir, 'probe'), 'w');
const syncs = [];
for (let i = 0; i < 50; i++) {
  writeSync(probe, Buffer.alloc(4096, i));
  const start = performance.now();
  fdatasyncSync(probe);
  syncs.push(performance.now() - start);
}
syncs.sort((a, b) => a - b);

const store = openSqliteStore(join(dir, 'imp.db'));
const session = randomUUID();
const draft = (i) => ({
  type: 'action.requested',
  actor: {
    iss: 'https://idp.example.com',
    sub: 'user-alice',
    email: 'alice@example.com',
    roles: ['support'],
  },
  tenant: 'acme',
  environment: 'prod',
  session,
  ticket: 'SUP-4711',
  reason: 'Customer cannot see their November invoice',
  data: { action_id: `act-${i}`, method: 'GET', path: '/v1/invoices?month=2026-11', kind: 'read' },
});

const delay = monitorEventLoopDelay({ resolution: 1 });
const elu = performance.eventLoopUtilization();
delay.enable();
const deadline = Date.now() + SECONDS * 1000;
let appended = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: WRITERS }, async () => {
    while (Date.now() < deadline) {
      await store.transaction((tx) => tx.appendAudit(draft(appended), Date.now()));
      appended++;
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
delay.disable();
const used = performance.eventLoopUtilization(elu);
await store.close();
rmSync(dir, { recursive: true, force: true });
const ms = (ns) => Math.round(ns / 1e4) / 100;
process.stdout.write(
  `${JSON.stringify({
    writers: WRITERS,
    appends_per_second: Math.round(appended / seconds),
    loop_delay_ms: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
    loop_utilisation: Math.round(used.utilization * 100) / 100,
    disk_fdatasync_ms: { p50: Math.round(syncs[25] * 100) / 100, p90: Math.round(syncs[45] * 100) / 100 },
  })}\n`,
);
