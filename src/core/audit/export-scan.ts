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
 *
 * An export whose header says `canonical: true` promises that every event line is the event's RFC
 * 8785 canonical JSON, the exact bytes of its leaf. Those lines are not parsed at all: a strict
 * reader (canonical-line.ts) checks them and finds seq, prev, hash and where the hash member sits;
 * the leaf hash is taken over the line as stored and the chain hash over the same bytes with the
 * hash member cut out. A line the reader declines is parsed and must re-serialise to its own bytes.
 */
import { hash as digest } from 'node:crypto';
import {
  type CanonicalEventFields,
  canonicalEventFields,
  isCanonicalLine,
  readCanonicalEvent,
} from './canonical-line.js';
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
export function scanExportSlice(bytes: Uint8Array, start: number, end: number, canonical = false): SliceScan {
  const scanner = new SliceScanner(end - start, canonical);
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
  private readonly fields: CanonicalEventFields = canonicalEventFields();
  private input = Buffer.alloc(16 * 1024);

  /**
   * `bytes`: about how long the slice is, to size the digest arrays; `canonical`: the export's
   * header promises canonical event lines (see the top of this file).
   */
  constructor(
    bytes: number,
    private readonly canonical = false,
  ) {
    // Events are ~700–900 bytes; a low estimate only costs a copy when growing.
    const capacity = Math.max(16, Math.ceil(bytes / 600));
    this.hashes = Buffer.alloc(capacity * 32);
    this.leaves = Buffer.alloc(capacity * 32);
    const none = new Uint8Array(0);
    // biome-ignore format: one field a line would be longer than it says
    this.scan = { items: [], events: 0, first: null, last: null, hashes: none, leaves: none, blocks: [], kept: [], anomaly: null };
  }

  /**
   * Scans the whole lines of bytes[start, end); false once there is an anomaly (stop reading).
   * `scratch`: the caller's own buffer, which this may overwrite in place from start − 1 (≥ 0) to
   * end — a reader's buffer, never bytes another thread reads.
   */
  lines(bytes: Uint8Array, start: number, end: number, scratch = false): boolean {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = start;
    while (at < end && this.scan.anomaly === null) {
      const newline = buffer.indexOf(10, at);
      const lineEnd = newline < 0 || newline >= end ? end : newline;
      if (this.canonical && readCanonicalEvent(buffer, at, lineEnd, this.fields))
        this.scan.anomaly = this.canonicalLine(buffer, at, lineEnd, scratch && at > 0);
      else {
        const line = buffer.toString('utf8', at, lineEnd);
        const bytes = this.canonical ? buffer.subarray(at, lineEnd) : null;
        if (line.trim() !== '') this.scan.anomaly = this.line(line, bytes);
      }
      at = lineEnd + 1;
    }
    return this.scan.anomaly === null;
  }

  /** The result; the digest arrays are trimmed to the events seen. */
  finish(): SliceScan {
    const { scan } = this;
    if (scan.events > 0) {
      const at = (scan.events - 1) * 32;
      scan.last = { seq: this.lastSeq, hash: this.hashes.toString('hex', at, at + 32) };
    }
    scan.hashes = this.hashes.subarray(0, scan.events * 32);
    scan.leaves = this.leaves.subarray(0, scan.events * 32);
    return scan;
  }

  /**
   * A canonical event line the reader accepted: links, chain hash and leaf hash from its bytes.
   * `f` (this.fields) holds where its parts are.
   */
  private canonicalLine(line: Buffer, start: number, end: number, inPlace: boolean): string | null {
    const f = this.fields;
    const scan = this.scan;
    const offset = this.room();
    const hashes = this.hashes;
    if (!hexInto(line, f.hashAt, hashes, offset)) return `event ${f.seq} has a hash that is not hex`;
    if (scan.events === 0)
      scan.first = { seq: f.seq, prev: line.toString('latin1', f.prevAt, f.prevAt + 64) };
    else if (f.seq !== this.lastSeq + 1 || !hexEquals(line, f.prevAt, hashes, offset - 32))
      return `event ${f.seq} does not follow event ${this.lastSeq}`;
    const isChunk =
      f.typeEnd - f.typeAt === CHUNK_TYPE.length &&
      line.compare(CHUNK_TYPE, 0, CHUNK_TYPE.length, f.typeAt, f.typeEnd) === 0;
    // A canonical line means one thing to every parser: JSON.parse reads the event that was hashed.
    if (isChunk) scan.kept.push(JSON.parse(line.toString('utf8', start, end)) as AuditEvent);
    const leaf = inPlace ? this.leafInPlace(line, start, end) : this.leafCopied(line, start, end);
    this.leaves.set(leaf, offset);
    // Chain input: prev ‖ the line without its `,"hash":"…"` member (canonical JSON without hash).
    const chain = inPlace ? this.chainInPlace(line, start, end) : this.chainCopied(line, start, end);
    if (!digestEquals(digest('sha256', chain, 'buffer'), hashes, offset))
      return `event ${f.seq} does not match its hash`;
    this.lastHash = ''; // known from the hashes array if a parsed line follows
    this.commit(f.seq, offset);
    return null;
  }

  /** The leaf hash, 0x00 ‖ line (RFC 9162 §2.1.1), hashed where the line lies: the newline before it is 0x00 meanwhile. */
  private leafInPlace(line: Buffer, start: number, end: number): Uint8Array {
    const before = line[start - 1]!;
    line[start - 1] = 0;
    const leaf = digest('sha256', line.subarray(start - 1, end), 'buffer');
    line[start - 1] = before;
    return leaf;
  }

  private leafCopied(line: Buffer, start: number, end: number): Uint8Array {
    this.fit(end - start + 64);
    this.input[0] = 0;
    line.copy(this.input, 1, start, end);
    return digest('sha256', this.input.subarray(0, end - start + 1), 'buffer');
  }

  /**
   * The chain input built inside the line itself (it is not read again): the members before the
   * hash member move right over it (74 bytes: ,"hash":" + 64 digits + "), prev goes just before them.
   */
  private chainInPlace(line: Buffer, start: number, end: number): Buffer {
    const { hashCut, prevAt } = this.fields;
    line.copyWithin(start + HASH_MEMBER, start, hashCut);
    line.copyWithin(start + HASH_MEMBER - 64, prevAt, prevAt + 64);
    return line.subarray(start + HASH_MEMBER - 64, end);
  }

  private chainCopied(line: Buffer, start: number, end: number): Buffer {
    const { hashCut, prevAt } = this.fields;
    this.fit(end - start + 64);
    const input = this.input;
    line.copy(input, 0, prevAt, prevAt + 64);
    line.copy(input, 64, start, hashCut);
    line.copy(input, 64 + hashCut - start, hashCut + HASH_MEMBER, end);
    return input.subarray(0, 64 + end - start - HASH_MEMBER);
  }

  private fit(length: number): void {
    if (this.input.length < length) this.input = Buffer.alloc(length * 2);
  }

  /**
   * One non-blank line, parsed; the anomaly it shows, or null. `bytes`: the line's bytes when the
   * export promises canonical event lines (an event line must then re-serialise to exactly them).
   */
  private line(line: string, bytes: Uint8Array | null): string | null {
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
    if (bytes && !isCanonicalLine(bytes, value)) return `event ${event.seq} is not in canonical form`;
    if (scan.events > 0 && (event.seq !== this.lastSeq + 1 || event.prev !== this.previousHash()))
      return `event ${event.seq} does not follow event ${this.lastSeq}`;
    let digests: ReturnType<EventDigester['digest']>;
    try {
      digests = this.digester.digest(event);
    } catch {
      return `event ${event.seq} cannot be serialised`;
    }
    if (digests.chain !== event.hash) return `event ${event.seq} does not match its hash`;
    const offset = this.room();
    this.hashes.write(digests.chain, offset, 32, 'hex');
    this.leaves.set(digests.leaf, offset);
    if (scan.events === 0) scan.first = { seq: event.seq, prev: event.prev };
    this.lastHash = event.hash;
    if (event.type === 'recording.chunk') scan.kept.push(event);
    this.commit(event.seq, offset);
    return null;
  }

  /** The hash of the last event taken (hex). */
  private previousHash(): string {
    const at = (this.scan.events - 1) * 32;
    return this.lastHash || this.hashes.toString('hex', at, at + 32);
  }

  /** The byte offset of the next event's digests, growing both arrays when the estimate was low. */
  private room(): number {
    const offset = this.scan.events * 32;
    if (offset === this.hashes.length) {
      this.hashes = grow(this.hashes);
      this.leaves = grow(this.leaves);
    }
    return offset;
  }

  /** Counts an event whose digests are at `offset`; hashes the block it closes, if whole in this slice. */
  private commit(seq: number, offset: number): void {
    const scan = this.scan;
    this.lastSeq = seq;
    scan.events++;
    // Leaf index seq−1 closes a block: hash it if the whole block lies in this slice.
    if (seq % BLOCK === 0 && scan.events >= BLOCK)
      scan.blocks.push({ index: seq / BLOCK - 1, hash: subtreeHash(this.leaves, offset + 32 - BLOCK * 32) });
  }
}

const CHUNK_TYPE = Buffer.from('"recording.chunk"');
/** `,"hash":"` + 64 hex digits + `"`. */
const HASH_MEMBER = 74;

/** Lowercase hex digit values; −1 for every other byte. */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 16; c++) HEX['0123456789abcdef'.charCodeAt(c)] = c;

/** Decodes 64 lowercase hex digits at `at` into 32 bytes of `out` at `offset`; false if they are not. */
function hexInto(hex: Uint8Array, at: number, out: Uint8Array, offset: number): boolean {
  let bad = 0;
  for (let k = 0; k < 32; k++) {
    const hi = HEX[hex[at + 2 * k]!]!;
    const lo = HEX[hex[at + 2 * k + 1]!]!;
    bad |= hi | lo; // −1 sets the sign bit
    out[offset + k] = (hi << 4) | lo;
  }
  return bad >= 0;
}

/** True when the 64 characters at `at` are the lowercase hex of the 32 bytes of `bytes` at `offset`. */
function hexEquals(hex: Uint8Array, at: number, bytes: Uint8Array, offset: number): boolean {
  for (let k = 0; k < 32; k++) {
    const hi = HEX[hex[at + 2 * k]!]!;
    const lo = HEX[hex[at + 2 * k + 1]!]!;
    if (hi < 0 || lo < 0 || ((hi << 4) | lo) !== bytes[offset + k]) return false;
  }
  return true;
}

function digestEquals(digest: Uint8Array, bytes: Uint8Array, offset: number): boolean {
  for (let k = 0; k < 32; k++) if (digest[k] !== bytes[offset + k]) return false;
  return true;
}

/** The MTH (§2.1.1) of BLOCK consecutive leaf hashes starting at byte `from` of `leaves`. */
function subtreeHash(leaves: Uint8Array, from: number): Uint8Array {
  // Folded in place, level by level, through one 65-byte input: 0x01 ‖ left ‖ right. The pair is
  // filled byte by byte and each digest set back whole: no view object per node (a million nodes).
  const level = new Uint8Array(leaves.subarray(from, from + BLOCK * 32)); // a copy (Buffer#slice is a view)
  const pair = PAIR;
  for (let width = BLOCK; width > 1; width /= 2) {
    for (let i = 0; i < width; i += 2) {
      const at = i * 32;
      for (let k = 0; k < 64; k++) pair[1 + k] = level[at + k]!;
      level.set(digest('sha256', pair, 'buffer'), at / 2);
    }
  }
  return level.slice(0, 32); // its own 32 bytes: a view would carry the whole block to the main thread
}

const PAIR = Buffer.alloc(65, 1);

function grow(array: Buffer): Buffer {
  const bigger = Buffer.alloc(array.length * 2);
  array.copy(bigger);
  return bigger;
}
