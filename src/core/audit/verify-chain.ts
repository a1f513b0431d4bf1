/**
 * Verifies an audit chain against signed checkpoints and names the first broken link.
 *
 * Checkpoints are checked first, as they are the trust anchors: a malformed one → malformed, a bad
 * signature or clear fields that differ from the signed payload → bad_signature (lowest seq first).
 * Then events are read once, in the given order, and the first problem wins. Per event:
 *  1. not an AuditEvent, or (an export that promises canonical lines) its line is not its
 *     canonical JSON → malformed.
 *  2. seq below the expected m → duplicate (reordered if below fromSeq). Above m (a jump): the rest of
 *     the log is scanned for m → reordered at m if it turns up later, else missing at m.
 *  3. hash does not match content → edited. Except: if the event links over its predecessor P
 *     (prev = P.prev) and its hash fits its content renumbered one lower, it is P's original pushed
 *     down by a forged row → inserted at P's seq.
 *  4. hash fits but prev is not P's hash (a self-consistent row that does not link): the next event
 *     breaks the tie. If it links to this one, the chain runs through this event and P is foreign →
 *     inserted at P's seq; otherwise, or at the end of the log → inserted at this seq. A row vouched
 *     for by a checkpoint is never the one blamed.
 *  5. a checkpoint at this seq with another hash → checkpoint_mismatch.
 * Then a checkpoint beyond the last event → truncated, at the newest such checkpoint's seq (it shows
 * how far the log reached). Deleting newest events that no checkpoint covers leaves a valid, shorter
 * chain: only a later checkpoint can show it.
 */

import { InvalidInputError } from '../errors.js';
import { type Checkpoint, type CheckpointClaims, verifyCheckpoints } from './checkpoint.js';
import { type AuditEvent, auditEventProblem, GENESIS_PREV, hashEvent, hashWellFormedEvent } from './event.js';

/** How a chain is broken; `audit verify` prints it and scripts branch on it. */
// biome-ignore format: the list reads better on two lines
export type ChainProblemKind = 'edited' | 'missing' | 'reordered' | 'inserted' | 'duplicate' | 'truncated'
  | 'bad_signature' | 'checkpoint_mismatch' | 'malformed';

/** The first broken link, with a sentence naming its seq. */
export interface ChainProblem {
  seq: number;
  kind: ChainProblemKind;
  message: string;
}

/** Outcome of a verification; counts and last* describe the prefix that verified. */
export interface ChainVerification {
  ok: boolean;
  events: number;
  /** Checkpoints whose hash was compared with the log and matched. */
  checkpoints: number;
  lastSeq: number;
  lastHash: string;
  problem: ChainProblem | null;
}

/** Verifies a checkpoint's JWS and returns its claims; throws when the signature is bad (injected so core stays free of key handling). */
export type CheckpointSignatureVerifier = (checkpoint: Checkpoint) => Promise<CheckpointClaims>;

/**
 * What is wrong with how an event was written down (not with its content), or null: an export that
 * promises canonical event lines names a line that is not (export-format.ts).
 */
export type FormProblem = (event: unknown) => string | null;

/** Checks events (ordered by seq, starting at fromSeq) and checkpoints; stops at the first problem. */
export async function verifyChain(
  events: Iterable<AuditEvent> | AsyncIterable<AuditEvent>,
  checkpoints: readonly Checkpoint[],
  verifySignature: CheckpointSignatureVerifier,
  options: { fromSeq?: number; fromPrev?: string; formProblem?: FormProblem } = {},
): Promise<ChainVerification> {
  const { fromSeq = 1, fromPrev = GENESIS_PREV } = options;
  checkRange(fromSeq, fromPrev);
  const anchors = await verifyCheckpoints(checkpoints, verifySignature);
  const walker = new ChainWalker(fromSeq, fromPrev, Array.isArray(anchors) ? anchors : []);
  walker.formProblem = options.formProblem ?? null;
  if (!Array.isArray(anchors)) walker.fail(anchors.kind, anchors.seq, anchors.message);
  else if (Symbol.iterator in events) {
    // Sync sources (arrays, better-sqlite3 iterators) run in a tight loop: no await per event.
    for (const event of events) if (!walker.push(event)) break;
  } else {
    for await (const event of events) if (!walker.push(event)) break;
  }
  return walker.finish();
}

function checkRange(fromSeq: number, fromPrev: string): void {
  if (!Number.isSafeInteger(fromSeq) || fromSeq < 1) throw new InvalidInputError('fromSeq must be 1 or more');
  if (!/^[0-9a-f]{64}$/.test(fromPrev))
    throw new InvalidInputError('fromPrev must be 64 lowercase hex digits');
}

/**
 * A run of consecutive events already checked link by link elsewhere (export-scan.ts: each is
 * well-formed, its hash fits its content, its prev is the hash before it, its seq the one after).
 */
export interface CheckedRun {
  first: number;
  prev: string;
  count: number;
  lastHash: string;
  /** The hash of the event at `seq` (first ≤ seq < first + count). */
  hashAt(seq: number): string;
}

/**
 * What verifyChain gives for a checked run, or null when the run does not start where the range
 * starts or a checkpoint differs: the caller then runs verifyChain over the events, which names
 * the first problem exactly as it always has.
 */
export async function verifyCheckedRun(
  run: CheckedRun,
  checkpoints: readonly Checkpoint[],
  verifySignature: CheckpointSignatureVerifier,
  options: { fromSeq?: number; fromPrev?: string } = {},
): Promise<ChainVerification | null> {
  const { fromSeq = 1, fromPrev = GENESIS_PREV } = options;
  checkRange(fromSeq, fromPrev);
  const anchors = await verifyCheckpoints(checkpoints, verifySignature);
  const walker = new ChainWalker(fromSeq, fromPrev, Array.isArray(anchors) ? anchors : []);
  if (!Array.isArray(anchors)) walker.fail(anchors.kind, anchors.seq, anchors.message);
  else if (run.count > 0 && !walker.acceptRun(run)) return null;
  return walker.finish();
}

class ChainWalker {
  formProblem: FormProblem | null = null;
  private events = 0;
  private checkpoints = 0;
  private lastSeq: number;
  private lastHash: string;
  private problem: ChainProblem | null = null;
  private readonly pending: Checkpoint[];
  private next = 0;
  private vouchedSeq = 0;
  private last: AuditEvent | null = null;
  private suspect: AuditEvent | null = null;
  private gap: { seq: number; found: number } | null = null;

  constructor(
    private readonly fromSeq: number,
    fromPrev: string,
    anchors: Checkpoint[],
  ) {
    this.lastSeq = fromSeq - 1;
    this.lastHash = fromPrev;
    this.pending = anchors.filter((cp) => cp.seq >= fromSeq);
    // A checkpoint just before the range vouches for fromPrev, so incremental checks stay anchored.
    for (const cp of anchors.filter((c) => c.seq === this.lastSeq)) {
      if (cp.hash === fromPrev) this.vouch(cp.seq);
      else this.fail('checkpoint_mismatch', cp.seq, `the starting hash differs from checkpoint ${cp.seq}`);
    }
  }

  /** Takes the next value from the log; false once there is nothing more to learn. */
  push(value: unknown): boolean {
    if (this.problem) return false;
    if (this.gap) return this.scanGap(value);
    if (this.suspect) return this.blameSuspect(value);
    const expected = this.lastSeq + 1;
    // prev and hash are compared with known-good digests below; their format is checked only on failure.
    const problem = auditEventProblem(value, { hexHashes: false });
    if (problem) return this.failEvent('malformed', seqOf(value) ?? expected, `is malformed: ${problem}`);
    const form = this.formProblem?.(value);
    if (form) return this.failEvent('malformed', seqOf(value) ?? expected, `is malformed: ${form}`);
    const event = value as AuditEvent;
    const seq = event.seq;
    if (seq > expected) {
      this.gap = { seq: expected, found: seq };
      return true;
    }
    if (seq < this.fromSeq) return this.failEvent('reordered', seq, `comes before event ${this.fromSeq}`);
    if (seq < expected) return this.failEvent('duplicate', seq, 'appears more than once');
    let actual: string;
    try {
      actual = hashWellFormedEvent(event);
    } catch (error) {
      return this.failEvent('malformed', seq, `is malformed: ${(error as Error).message}`);
    }
    if (actual === event.hash && event.prev === this.lastHash) return this.accept(event);
    const hexProblem = auditEventProblem(event);
    if (hexProblem) return this.failEvent('malformed', seq, `is malformed: ${hexProblem}`);
    const last = this.last;
    const vouched = last?.seq === this.vouchedSeq;
    if (actual !== event.hash) {
      if (last && !vouched && event.prev === last.prev && isRenumbered(event)) {
        this.forget(last);
        return this.failEvent('inserted', last.seq, 'was inserted: the events after it were renumbered');
      }
      return this.failEvent('edited', seq, 'was edited: its hash does not match its content');
    }
    if (!last || vouched) return this.blame(event);
    this.suspect = event;
    return true;
  }

  /** accept() for every event of a checked run; false where accept() would not pass them all. */
  acceptRun(run: CheckedRun): boolean {
    if (this.problem || run.first !== this.lastSeq + 1 || run.prev !== this.lastHash) return false;
    const last = run.first + run.count - 1;
    // The checkpoints accept() would meet, in the order it meets them (pending is sorted by seq).
    let at = run.first;
    for (
      let cp = this.pending[this.next];
      cp && cp.seq >= at && cp.seq <= last;
      cp = this.pending[++this.next]
    ) {
      if (cp.hash !== run.hashAt(cp.seq)) return false;
      at = cp.seq;
      this.vouch(cp.seq);
    }
    this.events += run.count;
    this.lastSeq = last;
    this.lastHash = run.lastHash;
    return true;
  }

  finish(): ChainVerification {
    const { gap, suspect, pending } = this;
    if (gap) {
      this.failEvent('missing', gap.seq, `is missing: the log jumps from ${gap.seq - 1} to ${gap.found}`);
    } else if (suspect) {
      this.blame(suspect);
    } else if (this.next < pending.length) {
      const [x, n] = [this.lastSeq, pending[pending.length - 1]!.seq];
      const message = `the log ends at seq ${x} but checkpoint ${n} covers seq ${n}: events after ${x} were deleted`;
      this.fail('truncated', n, message);
    }
    const { events, checkpoints, lastSeq, lastHash, problem } = this;
    return { ok: problem === null, events, checkpoints, lastSeq, lastHash, problem };
  }

  private accept(event: AuditEvent): boolean {
    this.events++;
    this.lastSeq = event.seq;
    this.lastHash = event.hash;
    this.last = event;
    for (let cp = this.pending[this.next]; cp?.seq === event.seq; cp = this.pending[++this.next]) {
      if (cp.hash !== event.hash) {
        const message = 'differs from its signed checkpoint: the log was rewritten at or before it';
        return this.failEvent('checkpoint_mismatch', cp.seq, message);
      }
      this.vouch(cp.seq);
    }
    return true;
  }

  private vouch(seq: number): void {
    this.checkpoints++;
    this.vouchedSeq = seq;
  }

  private scanGap(value: unknown): boolean {
    const gap = this.gap!;
    if (seqOf(value) !== gap.seq) return true;
    this.gap = null;
    return this.failEvent('reordered', gap.seq, `is out of order: it appears after event ${gap.found}`);
  }

  private blameSuspect(next: unknown): boolean {
    const suspect = this.suspect!;
    const foreign = this.last!;
    this.suspect = null;
    if (!isRecord(next) || next.prev !== suspect.hash) return this.blame(suspect);
    this.forget(foreign);
    const message = `was inserted or replaced: event ${suspect.seq} does not link to it`;
    return this.failEvent('inserted', foreign.seq, message);
  }

  private blame(event: AuditEvent): boolean {
    const before = event.seq === 1 ? 'the start of the log' : `event ${event.seq - 1}`;
    return this.failEvent('inserted', event.seq, `was inserted or replaced: it does not link to ${before}`);
  }

  /** Takes back an accepted event that turned out to be the foreign one. */
  private forget(event: AuditEvent): void {
    this.events--;
    this.lastSeq = event.seq - 1;
    this.lastHash = event.prev;
  }

  private failEvent(kind: ChainProblemKind, seq: number, what: string): false {
    return this.fail(kind, seq, `event ${seq} ${what}`);
  }

  fail(kind: ChainProblemKind, seq: number, message: string): false {
    this.problem ??= { seq, kind, message };
    this.gap = null;
    this.suspect = null;
    return false;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** True when the event's hash matches its content with seq one lower: an original pushed down by an insert. */
function isRenumbered(event: AuditEvent): boolean {
  return hashEvent({ ...event, seq: event.seq - 1 }) === event.hash;
}

function seqOf(value: unknown): number | undefined {
  const seq = isRecord(value) ? value.seq : undefined;
  return typeof seq === 'number' && Number.isSafeInteger(seq) ? seq : undefined;
}
