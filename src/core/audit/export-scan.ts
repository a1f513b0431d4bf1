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
  const scanner = new SliceScanner(end - start);
  scanner.lines(bytes, start, end);
  return scanner.finish();
}

/**
 * A slice scanned in pieces, for a reader that streams its byte range through a small buffer:
 * `lines` takes whole lines (the caller keeps a partial last line for the next piece).
 */
export class SliceScanner {
  private readonly digester = new EventDigester();
  private hashes: Buffer;
  private leaves: Buffer;
  private readonly scan: SliceScan;
  private lastSeq = 0;
  private lastHash = '';

  /** `bytes`: about how long the slice is, to size the digest arrays. */
  constructor(bytes: number) {
    // Events are ~700–900 bytes; a low estimate only costs a copy when growing.
    const capacity = Math.max(16, Math.ceil(bytes / 600));
    this.hashes = Buffer.alloc(capacity * 32);
    this.leaves = Buffer.alloc(capacity * 32);
    const none = new Uint8Array(0);
    // biome-ignore format: one field a line would be longer than it says
    this.scan = { items: [], events: 0, first: null, last: null, hashes: none, leaves: none, blocks: [], kept: [], anomaly: null };
  }

  /** Scans the whole lines of bytes[start, end); false once there is an anomaly (stop reading). */
  lines(bytes: Uint8Array, start: number, end: number): boolean {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = start;
    while (at < end && this.scan.anomaly === null) {
      const newline = buffer.indexOf(10, at);
      const lineEnd = newline < 0 || newline >= end ? end : newline;
      const line = buffer.toString('utf8', at, lineEnd);
      at = lineEnd + 1;
      if (line.trim() !== '') this.scan.anomaly = this.line(line);
    }
    return this.scan.anomaly === null;
  }

  /** The result; the digest arrays are trimmed to the events seen. */
  finish(): SliceScan {
    const { scan } = this;
    if (scan.events > 0) scan.last = { seq: this.lastSeq, hash: this.lastHash };
    scan.hashes = this.hashes.subarray(0, scan.events * 32);
    scan.leaves = this.leaves.subarray(0, scan.events * 32);
    return scan;
  }

  /** One non-blank line; the anomaly it shows, or null. */
  private line(line: string): string | null {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return 'a line is not JSON';
    }
    const item = classifyExportValue(value);
    if (item.kind !== 'event') {
      this.scan.items.push(item);
      return null;
    }
    if (auditEventProblem(value, { hexHashes: false }) !== null) return 'an event is malformed';
    const event = value as AuditEvent;
    const scan = this.scan;
    if (scan.events > 0 && (event.seq !== this.lastSeq + 1 || event.prev !== this.lastHash))
      return `event ${event.seq} does not follow event ${this.lastSeq}`;
    let digests: ReturnType<EventDigester['digest']>;
    try {
      digests = this.digester.digest(event);
    } catch {
      return `event ${event.seq} cannot be serialised`;
    }
    if (digests.chain !== event.hash) return `event ${event.seq} does not match its hash`;
    if (scan.events * 32 === this.hashes.length) {
      // The estimate was low (short lines): grow both arrays.
      this.hashes = grow(this.hashes);
      this.leaves = grow(this.leaves);
    }
    const offset = scan.events * 32;
    this.hashes.write(digests.chain, offset, 32, 'hex');
    this.leaves.set(digests.leaf, offset);
    if (scan.events === 0) scan.first = { seq: event.seq, prev: event.prev };
    this.lastSeq = event.seq;
    this.lastHash = event.hash;
    scan.events++;
    if (event.type === 'recording.chunk') scan.kept.push(event);
    // Leaf index seq−1 closes a block: hash it if the whole block lies in this slice.
    if (event.seq % BLOCK === 0 && scan.events >= BLOCK)
      scan.blocks.push({
        index: event.seq / BLOCK - 1,
        hash: subtreeHash(this.leaves, offset + 32 - BLOCK * 32),
      });
    return null;
  }
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

function grow(array: Buffer): Buffer {
  const bigger = Buffer.alloc(array.length * 2);
  array.copy(bigger);
  return bigger;
}
