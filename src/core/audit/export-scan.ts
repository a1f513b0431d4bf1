/**
 * The fast pass of verifying an export: one slice of its bytes (whole lines), scanned on its own so
 * that slices can run on several cores. For each event line it checks what verifyChain's walker
 * checks for an event it accepts — well-formed, seq one more than the event before, prev the hash
 * of the event before, hash matching the content — and keeps both digests (chain hash and RFC 9162
 * leaf hash, from one canonical text: event-digests.ts), plus the hash of every complete subtree of
 * BLOCK_LEVEL leaves, so the caller can compute tree roots without hashing a million leaves again.
 *
 * The scan never judges. The first thing it cannot vouch for (a line that is not JSON, a malformed
 * event, a break in seq or links, a hash that does not fit) ends it with an `anomaly`; the caller
 * then verifies the whole export the sequential way, which names the problem exactly as before.
 * Links across slices (the first event of one and the last of the one before) are the caller's.
 */
import { hash as digest } from 'node:crypto';
import { type AuditEvent, auditEventProblem } from './event.js';
import { EventDigester } from './event-digests.js';
import { classifyExportValue, type ExportItem } from './export-format.js';

/** Subtrees of 2^BLOCK_LEVEL leaves are hashed by the scan; the tree above them by the caller. */
export const BLOCK_LEVEL = 10;
const BLOCK = 2 ** BLOCK_LEVEL;

/** What a slice holds; plain data and typed arrays, so it crosses a worker boundary as it is. */
export interface SliceScan {
  /** Headers, checkpoints and notes, in file order. */
  items: Exclude<ExportItem, { kind: 'event' }>[];
  events: number;
  first: { seq: number; prev: string } | null;
  last: { seq: number; hash: string } | null;
  /** 32 bytes per event: its chain hash. */
  hashes: Uint8Array;
  /** 32 bytes per event: its leaf hash. */
  leaves: Uint8Array;
  /** Complete subtrees of BLOCK leaves inside the slice: index at BLOCK_LEVEL, hash (32 bytes). */
  blocks: { index: number; hash: Uint8Array }[];
  /** The recording.chunk events (an online verify compares the chunks they pin). */
  kept: AuditEvent[];
  /** Why the fast pass stopped, or null when every line passed. */
  anomaly: string | null;
}

/** Scans the lines of bytes[start, end); start is 0 or just after a newline. */
export function scanExportSlice(bytes: Uint8Array, start: number, end: number): SliceScan {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const capacity = estimateEvents(start, end);
  let hashes: Buffer = Buffer.alloc(capacity * 32);
  let leaves: Buffer = Buffer.alloc(capacity * 32);
  const scan: SliceScan = {
    items: [],
    events: 0,
    first: null,
    last: null,
    hashes,
    leaves,
    blocks: [],
    kept: [],
    anomaly: null,
  };
  const digester = new EventDigester();
  let at = start;
  while (at < end && scan.anomaly === null) {
    const newline = buffer.indexOf(10, at);
    const lineEnd = newline < 0 || newline >= end ? end : newline;
    const line = buffer.toString('utf8', at, lineEnd);
    at = lineEnd + 1;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      scan.anomaly = 'a line is not JSON';
      break;
    }
    const item = classifyExportValue(value);
    if (item.kind !== 'event') {
      scan.items.push(item);
      continue;
    }
    if (auditEventProblem(item.value, { hexHashes: false }) !== null) {
      scan.anomaly = 'an event is malformed';
      break;
    }
    const event = item.value as AuditEvent;
    const last = scan.last;
    if (last && (event.seq !== last.seq + 1 || event.prev !== last.hash)) {
      scan.anomaly = `event ${event.seq} does not follow event ${last.seq}`;
      break;
    }
    let digests: ReturnType<EventDigester['digest']>;
    try {
      digests = digester.digest(event);
    } catch {
      scan.anomaly = `event ${event.seq} cannot be serialised`;
      break;
    }
    const { chain, leaf } = digests;
    if (chain !== event.hash) {
      scan.anomaly = `event ${event.seq} does not match its hash`;
      break;
    }
    if (scan.events === hashes.length / 32) {
      // The estimate was low (short lines): grow both arrays.
      hashes = grow(hashes);
      leaves = grow(leaves);
    }
    const offset = scan.events * 32;
    hashes.write(chain, offset, 32, 'hex');
    leaves.set(leaf, offset);
    scan.first ??= { seq: event.seq, prev: event.prev };
    scan.last = { seq: event.seq, hash: event.hash };
    scan.events++;
    if (event.type === 'recording.chunk') scan.kept.push(event);
    // Leaf index seq−1 closes a block: hash it if the whole block lies in this slice.
    if (event.seq % BLOCK === 0 && scan.events >= BLOCK)
      scan.blocks.push({ index: event.seq / BLOCK - 1, hash: subtreeHash(leaves, offset + 32 - BLOCK * 32) });
  }
  scan.hashes = hashes.subarray(0, scan.events * 32);
  scan.leaves = leaves.subarray(0, scan.events * 32);
  return scan;
}

/** The MTH (§2.1.1) of BLOCK consecutive leaf hashes starting at byte `from` of `leaves`. */
function subtreeHash(leaves: Uint8Array, from: number): Uint8Array {
  // Folded in place, level by level, through one 65-byte input: 0x01 ‖ left ‖ right.
  const level = Buffer.from(leaves.slice(from, from + BLOCK * 32));
  const pair = Buffer.alloc(65);
  pair[0] = 1;
  for (let width = BLOCK; width > 1; width /= 2) {
    for (let i = 0; i < width; i += 2) {
      level.copy(pair, 1, i * 32, i * 32 + 64);
      digest('sha256', pair, 'buffer').copy(level, (i / 2) * 32);
    }
  }
  return level.subarray(0, 32);
}

function estimateEvents(start: number, end: number): number {
  // Events are ~700–900 bytes; a low estimate only costs a copy when growing.
  return Math.max(16, Math.ceil((end - start) / 600));
}

function grow(array: Buffer): Buffer {
  const bigger = Buffer.alloc(array.length * 2);
  array.copy(bigger);
  return bigger;
}
