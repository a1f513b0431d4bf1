/**
 * The parallel fast pass of `imp audit verify`: the export's bytes (shared memory, never one
 * string) are cut at line boundaries into one slice per core; this thread scans the first slice
 * while worker threads scan the others (core/audit/export-scan.ts), then the slices are joined: the
 * first event of each slice must follow the last of the one before (seq and prev), exactly the
 * check the sequential walker makes between any two events. Anything a slice could not vouch for
 * makes `joinScans` return null and the caller verifies the sequential way, which names the first
 * bad seq or range as it always has.
 *
 * An export whose first line is a header with `canonical: true` is scanned in canonical mode: event
 * lines are hashed as stored (core/audit/export-scan.ts), and the sequential path, too, hashes the
 * lines as stored and names the first line that is not canonical as malformed.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type AuditEvent, GENESIS_PREV } from '../core/audit/event.js';
import {
  addExportItem,
  type ExportHeader,
  type ExportItem,
  emptyExport,
  isCanonicalExport,
  type ParsedExport,
  parseExportBytes,
} from '../core/audit/export-format.js';
import { BLOCK_LEVEL, type SliceScan } from '../core/audit/export-scan.js';
import { eventLeafHash } from '../core/audit/log-tree.js';
import {
  type ChainVerification,
  type CheckedRun,
  type CheckpointSignatureVerifier,
  verifyChain,
  verifyCheckedRun,
} from '../core/audit/verify-chain.js';
import { ImpError } from '../core/errors.js';
import { fileSliceBounds, type RangeJob, scanRanges } from './audit-export-reader.js';

/** Below this size one thread is quicker than starting workers. */
const PARALLEL_FROM_BYTES = 8 * 1024 * 1024;

/** Where the export is: a file each thread reads its own range of, or bytes already in memory. */
export type ExportSource = { file: string } | { bytes: Uint8Array };

/**
 * How many threads: IMP_VERIFY_WORKERS when set (1 = this thread only), else one per core (at most
 * 4) for exports large enough to pay for starting workers.
 */
export function sliceCount(env: NodeJS.ProcessEnv, bytes: number): number {
  const asked = env.IMP_VERIFY_WORKERS;
  if (asked && /^[1-9][0-9]?$/.test(asked)) return Number(asked);
  return bytes < PARALLEL_FROM_BYTES ? 1 : Math.min(4, availableParallelism());
}

/** Whether the export's first line is a header promising canonical event lines. */
export function canonicalSource(source: ExportSource): boolean {
  let head: Uint8Array;
  if ('file' in source) {
    // The header line holds at most a few dozen subtree hashes: 64 KiB is plenty.
    const fd = openSync(source.file, 'r');
    try {
      const window = Buffer.alloc(64 * 1024);
      head = window.subarray(0, readSync(fd, window, 0, window.length, 0));
    } finally {
      closeSync(fd);
    }
  } else head = source.bytes;
  const newline = Buffer.from(head.buffer, head.byteOffset, head.byteLength).indexOf(10);
  return newline >= 0 && isCanonicalExport(head.subarray(0, newline));
}

/** Ranges of at least this many bytes: each is one message from a worker and one link to check. */
const RANGE_BYTES = 16 * 1024 * 1024;

/**
 * How many byte ranges `threads` threads share: one each for a small export, up to eight each for a
 * large one, so a thread that starts late or gets less of a loaded CPU takes fewer ranges rather
 * than leaving the others waiting for its one big slice.
 */
export function rangeCount(threads: number, bytes: number): number {
  return Math.max(threads, Math.min(8 * threads, Math.floor(bytes / RANGE_BYTES)));
}

/**
 * Scans the export on `threads` threads (this one and workers), which take its ranges in turn
 * from a shared counter; `canonical`: in canonical mode. Returns one scan per range, in order; a
 * range nobody finished (a worker failed, or an anomaly stopped the others early) is an anomaly.
 */
export async function scanExport(
  source: ExportSource,
  threads: number,
  canonical = false,
): Promise<SliceScan[]> {
  let shared: ExportSource = source;
  let bounds: number[];
  if ('file' in source)
    bounds = fileSliceBounds(source.file, rangeCount(threads, (await stat(source.file)).size));
  else {
    // Workers read the same memory: bytes that are not shared yet are copied once.
    const bytes =
      source.bytes.buffer instanceof SharedArrayBuffer ? source.bytes : copyToShared(source.bytes);
    shared = { bytes };
    bounds = sliceBounds(bytes, rangeCount(threads, bytes.length));
  }
  const next = new Int32Array(new SharedArrayBuffer(4));
  const scans: (SliceScan | undefined)[] = new Array(bounds.length - 1);
  const take = (k: number, scan: SliceScan) => {
    scans[k] = scan;
  };
  const job: RangeJob = { source: shared, bounds, next, canonical };
  const workers = Array.from({ length: threads - 1 }, () => runWorker(job, take));
  // This thread takes ranges too, from the start, while the workers boot.
  scanRanges(job, take);
  const failures = (await Promise.all(workers)).filter((f) => f !== null);
  const unfinished = failures[0] ?? 'an earlier range stopped the scan';
  return scans.map((scan) => scan ?? { ...emptyScan(), anomaly: unfinished });
}

/** Where the slices start and end: near equal byte counts, each cut just after a newline. */
export function sliceBounds(bytes: Uint8Array, slices: number): number[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bounds = [0];
  for (let i = 1; i < slices; i++) {
    const newline = buffer.indexOf(10, Math.max(bounds[i - 1]!, Math.floor((buffer.length * i) / slices)));
    bounds.push(newline < 0 ? buffer.length : newline + 1);
  }
  bounds.push(buffer.length);
  return bounds;
}

function copyToShared(bytes: Uint8Array): Uint8Array {
  const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
  shared.set(bytes);
  return shared;
}

/** Runs one worker over the job; resolves with null, or why it failed. */
function runWorker(job: RangeJob, take: (k: number, scan: SliceScan) => void): Promise<string | null> {
  const worker = new Worker(new URL('./audit-verify-worker.js', import.meta.url), { workerData: job });
  return new Promise<string | null>((resolve, reject) => {
    worker.on('message', (message: { k: number; scan: SliceScan } | { done: true }) => {
      if ('done' in message) resolve(null);
      else take(message.k, message.scan);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the verify worker exited with code ${code}`)));
  })
    .catch((error: Error) => `a verify worker failed: ${error.message}`)
    .finally(() => void worker.terminate());
}

/** A scan that vouches for nothing: the sequential path then does all the work. */
function emptyScan(): SliceScan {
  const none = new Uint8Array(0);
  return {
    items: [],
    events: 0,
    first: null,
    last: null,
    hashes: none,
    leaves: none,
    blocks: [],
    kept: [],
    anomaly: null,
  };
}

/** The slices joined: what the chain and tree checks need, or null when the fast pass cannot vouch. */
export interface JoinedScan {
  items: Exclude<ExportItem, { kind: 'event' }>[];
  run: CheckedRun;
  lastSeq: number | null;
  /** Leaf hashes of every event, in order (made when read). */
  leaves: Uint8Array[];
  /** Complete subtrees of BLOCK_LEVEL leaves, by index. */
  blocks: Map<number, Uint8Array>;
  kept: AuditEvent[];
}

/** Joins slices whose events link across the cuts; null if any slice stopped or a cut does not link. */
export function joinScans(scans: readonly SliceScan[]): JoinedScan | null {
  if (scans.some((scan) => scan.anomaly !== null)) return null;
  const withEvents = scans.filter((scan) => scan.events > 0);
  for (let i = 1; i < withEvents.length; i++) {
    const before = withEvents[i - 1]!.last!;
    const after = withEvents[i]!.first!;
    if (after.seq !== before.seq + 1 || after.prev !== before.hash) return null;
  }
  const head = withEvents[0];
  const tail = withEvents.at(-1);
  const count = withEvents.reduce((sum, scan) => sum + scan.events, 0);
  const blocks = new Map(scans.flatMap((scan) => scan.blocks.map((b) => [b.index, b.hash] as const)));
  return {
    items: scans.flatMap((scan) => scan.items),
    run: {
      first: head?.first?.seq ?? 0,
      prev: head?.first?.prev ?? '',
      count,
      lastHash: tail?.last?.hash ?? '',
      hashAt: (seq) => hashAt(withEvents, seq),
    },
    lastSeq: tail?.last?.seq ?? null,
    leaves: lazyLeaves(withEvents, count),
    blocks,
    kept: scans.flatMap((scan) => scan.kept),
  };
}

function hashAt(scans: readonly SliceScan[], seq: number): string {
  const scan = scans.find((s) => seq >= s.first!.seq && seq <= s.last!.seq)!;
  const i = seq - scan.first!.seq;
  return Buffer.from(scan.hashes.subarray(i * 32, i * 32 + 32)).toString('hex');
}

/**
 * The leaf hashes of the scans as an array whose items are made when read. The tree is computed
 * from the blocks' subtree hashes and reads only the few thousand leaves outside them; a million
 * views of 32 bytes, kept to the end, cost more in garbage collection than the whole tree.
 */
function lazyLeaves(scans: readonly SliceScan[], count: number): Uint8Array[] {
  const starts: number[] = [];
  let n = 0;
  for (const scan of scans) {
    starts.push(n);
    n += scan.events;
  }
  const leafAt = (i: number): Uint8Array | undefined => {
    let k = scans.length - 1;
    while (k > 0 && starts[k]! > i) k--;
    const at = (i - starts[k]!) * 32;
    return i < count ? scans[k]!.leaves.subarray(at, at + 32) : undefined;
  };
  return new Proxy([] as Uint8Array[], {
    get(target, key, receiver) {
      if (key === 'length') return count;
      if (typeof key === 'string' && /^(0|[1-9][0-9]*)$/.test(key)) return leafAt(Number(key));
      return Reflect.get(target, key, receiver);
    },
  });
}
/** The export read and its chain verified, by the fast pass where it can vouch, else sequentially. */
export interface ChainChecked {
  /** Header, checkpoints and notes; `events` only when the sequential path ran. */
  parsed: ParsedExport;
  result: ChainVerification;
  /** The events an online verify compares recordings against (recording.chunk at least). */
  recorded: readonly AuditEvent[];
  /** The last event's seq, the leaf hashes and any precomputed subtrees, for the tree check. */
  tree: TreeLeaves;
  /** How many slices the fast pass vouched with; 0 when the events were walked one by one. */
  slices: number;
}

/** What checkTree needs of the events. */
export interface TreeLeaves {
  lastSeq: number;
  leaves: readonly Uint8Array[];
  blocks?: { level: number; hashes: ReadonlyMap<number, Uint8Array> };
}

/**
 * Verifies the chain of an export. `verifierFor` gives the checkpoint signature check once the
 * export's checkpoints are known; `needEvents`: the caller needs every parsed event (a version-1
 * export tied to the witnesses' tree), so the sequential path runs.
 */
export async function checkExportChain(
  source: ExportSource,
  env: NodeJS.ProcessEnv,
  verifierFor: (parsed: ParsedExport) => Promise<CheckpointSignatureVerifier>,
  needEvents: (header: ExportHeader | null) => boolean,
): Promise<ChainChecked> {
  const size = 'file' in source ? (await stat(source.file)).size : source.bytes.length;
  const slices = sliceCount(env, size);
  const canonical = canonicalSource(source);
  const joined = joinScans(await scanExport(source, slices, canonical));
  if (joined) {
    const parsed = emptyExport();
    for (const item of joined.items) addExportItem(parsed, item);
    const header = parsed.header;
    const range = { fromSeq: header?.from_seq ?? 1, fromPrev: header?.prev ?? GENESIS_PREV };
    const result = needEvents(header)
      ? null
      : await verifyCheckedRun(joined.run, parsed.checkpoints, await verifierFor(parsed), range);
    if (result) {
      const blocks = { level: BLOCK_LEVEL, hashes: joined.blocks };
      const tree = { lastSeq: joined.lastSeq ?? 0, leaves: joined.leaves, blocks };
      return { parsed, result, recorded: joined.kept, tree, slices };
    }
  }
  // The sequential path: every event parsed and walked in order, naming the first problem.
  const parsed = parseExportBytes('file' in source ? await readFile(source.file) : source.bytes);
  if (parsed.badLines.length > 0)
    throw new ImpError('IMP_AUDIT_BROKEN', `The export is damaged: line ${parsed.badLines[0]} is not JSON.`);
  const header = parsed.header;
  const events = parsed.events as AuditEvent[];
  const lines = parsed.lines;
  // A canonical export: a line that is not its event's canonical JSON is the problem at its seq,
  // and the tree gets the leaves of the lines as stored (what the export says it hashed).
  const notCanonical = new Set(lines ? events.filter((_, i) => !lines[i]!.canonical) : []);
  const result = await verifyChain(events, parsed.checkpoints, await verifierFor(parsed), {
    fromSeq: header?.from_seq ?? 1,
    fromPrev: header?.prev ?? GENESIS_PREV,
    formProblem: (event) =>
      notCanonical.has(event as AuditEvent)
        ? 'its line is not its canonical JSON (RFC 8785), which the export header promises'
        : null,
  });
  const leaves = lines ? lines.map((line) => line.leaf) : events.map(eventLeafHash);
  const tree = { lastSeq: events.at(-1)?.seq ?? 0, leaves };
  return { parsed, result, recorded: events, tree, slices: 0 };
}
