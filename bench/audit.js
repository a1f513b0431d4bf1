// Audit log: durable appends through the Store (hash chain, sealed events, a signed checkpoint every
// 100 events as the broker does) against raw single-row INSERT transactions on a file with the
// same settings (WAL, synchronous=FULL), both in this run; then `imp audit verify --file` on a
// version-2 export of 1,000,000 events with checkpoints and witness cosignatures every 100,000.
// node bench/audit.js [--quick] [--verify-only] [--events N] [--runs N] [--export DIR] [--imp bin/imp.js]
import { spawn } from 'node:child_process';
import { hash, randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { signCheckpoint } from '../dist/broker/checkpoints.js';
import { KeyRing } from '../dist/broker/keys.js';
import { GENESIS_PREV, sealEvent } from '../dist/core/audit/event.js';
import { eventToRow, openSqliteStore } from '../dist/store/sqlite.js';
import { SQLITE_MIGRATIONS } from '../dist/store/sqlite-schema.js';
import { draft as exportDraft, writeExportFile } from './audit-export-file.js';
import { IMP_BIN, round } from './lib.js';

const quick = process.argv.includes('--quick');
const verifyOnly = process.argv.includes('--verify-only');
// --appends-only skips the million-event export (the appends rows alone, in seconds).
const appendsOnly = process.argv.includes('--appends-only');
const option = (name) => {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
};
const APPENDS = quick ? 500 : 3000;
const VERIFY_EVENTS = Number(option('--events') ?? (quick ? 100_000 : 1_000_000));
const VERIFY_RUNS = Number(option('--runs') ?? (quick ? 1 : 3));
const dir = mkdtempSync(join(tmpdir(), 'imp-bench-audit-'));
// --export DIR keeps the generated export there and reuses it (generating a million events takes a while).
const exportDir = option('--export') ?? dir;
// --imp PATH times another build of the CLI (a before/after comparison on the same file).
const impBin = option('--imp') ?? IMP_BIN;
const keys = await KeyRing.load(null, Date.now());

const session = randomUUID();
/** A proxied call's two events, as the broker writes them. */
const draft = (i) => exportDraft(i, session);

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

/**
 * The disk's ceiling for durable appends: each writer waits for its own append to be durable, so
 * with N writers a group holds at most N appends and costs at least one fdatasync. Median latency of
 * a 4 KiB write + fdatasync on the same file system, sampled beside the appends.
 */
function fdatasyncLatency() {
  const fd = openSync(join(dir, 'fdatasync-probe'), 'w');
  const block = Buffer.alloc(4096, 1);
  const samples = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    writeSync(fd, block, 0, block.length, (i % 64) * 4096);
    fdatasyncSync(fd);
    samples.push(performance.now() - t0);
  }
  closeSync(fd);
  samples.sort((a, b) => a - b);
  const p50 = samples[samples.length >> 1];
  return { p50_ms: round(p50, 3), ceiling_16: round(16 / (p50 / 1000), 0) };
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

/**
 * `imp audit verify --file` on an export of VERIFY_EVENTS events (bench/audit-export-file.js: JWS
 * checkpoints and witness-cosigned notes every 100,000, event lines canonical as the broker writes
 * them), as a user runs it: a child process, the file read, chain, checkpoints and tree. Baseline, same run: SHA-256 alone, one digest of each
 * event line, over the same bytes (read beforehand).
 */
async function verifyExport() {
  const file = join(exportDir, 'audit.jsonl');
  const jwks = join(exportDir, 'jwks.json');
  const keyFile = join(exportDir, 'witness.vkey');
  const t0 = performance.now();
  if (!existsSync(keyFile)) {
    const { witnessKey } = await writeExportFile(file, jwks, VERIFY_EVENTS);
    writeFileSync(keyFile, witnessKey);
  }
  const generated = (performance.now() - t0) / 1000;
  const witnessKey = readFileSync(keyFile, 'utf8');
  const hashOnly = sha256Lines(file);
  const runs = [];
  let result;
  for (let i = 0; i < VERIFY_RUNS; i++) {
    const t1 = performance.now();
    const { stdout, code } = await runCli(impBin, [
      'audit',
      'verify',
      '--file',
      file,
      '--jwks',
      jwks,
      '--witness-key',
      witnessKey,
      '--json',
    ]);
    runs.push((performance.now() - t1) / 1000);
    result = JSON.parse(stdout);
    if (code !== 0 || !result.ok || result.events !== VERIFY_EVENTS || !result.tree?.witnessed)
      throw new Error(`verify failed (exit ${code}): ${stdout.slice(0, 500)}`);
  }
  const seconds = runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)];
  return {
    events: VERIFY_EVENTS,
    checkpoints: result.checkpoints,
    cosigned: result.tree.cosigned,
    seconds: round(seconds, 3),
    runs: runs.map((r) => round(r, 3)),
    eventsPerSecond: round(VERIFY_EVENTS / seconds, 0),
    sha256_only_seconds: round(hashOnly, 3),
    generate_seconds: round(generated, 1),
  };
}

/** Seconds to SHA-256 every event line of the file once (the lines read and split beforehand). */
function sha256Lines(file) {
  const lines = [];
  const fd = openSync(file, 'r');
  const chunk = Buffer.alloc(64 * 1024 * 1024);
  let rest = Buffer.alloc(0);
  for (;;) {
    const n = readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    const bytes = Buffer.concat([rest, chunk.subarray(0, n)]);
    let at = 0;
    for (let nl = bytes.indexOf(10); nl >= 0; nl = bytes.indexOf(10, at)) {
      // Event lines: {"actor"… (canonical) or {"seq"… (older exports); not {"export", {"checkpoint", {"note".
      if (bytes[at + 2] === 0x61 || bytes[at + 2] === 0x73) lines.push(Buffer.from(bytes.subarray(at, nl)));
      at = nl + 1;
    }
    rest = Buffer.from(bytes.subarray(at));
  }
  closeSync(fd);
  const t = performance.now();
  for (const line of lines) hash('sha256', line, 'hex');
  return (performance.now() - t) / 1000;
}

/** Runs the CLI with a clean environment of its own; resolves with its stdout and exit code. */
function runCli(bin, args) {
  return new Promise((resolve, reject) => {
    const home = mkdtempSync(join(tmpdir(), 'imp-bench-home-'));
    const child = spawn(process.execPath, [bin, ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: home,
        XDG_CONFIG_HOME: join(home, 'config'),
        XDG_STATE_HOME: join(home, 'state'),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (text) => {
      stdout += text;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, code }));
  });
}

if (verifyOnly) {
  const verify = await verifyExport();
  rmSync(dir, { recursive: true, force: true }); // the export is ~740 MB (kept when --export names a directory)
  process.stdout.write(`${JSON.stringify({ audit: { verify } })}\n`);
  process.exit(0);
}
const raw = rawInserts();
const store1 = await storeAppends(1);
const store16 = await storeAppends(16);
const disk = fdatasyncLatency();
const verify = appendsOnly ? null : await verifyExport();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(
  `${JSON.stringify({ audit: { raw, store_1: store1, store_16: store16, disk, verify } })}\n`,
);
