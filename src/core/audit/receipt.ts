/**
 * Receipts: one event, its RFC 9162 inclusion proof, and a checkpoint cosigned by witnesses — proof,
 * offline, that the event was logged and cannot be unlogged. Checked with witness keys the holder
 * brings (the receipt's own log_key is only used to check the broker's signature).
 */
import { type AuditEvent, auditEventProblem, hashEvent } from './event.js';
import { eventLeafHash } from './log-tree.js';
import { verifyInclusion } from './merkle.js';
import {
  decodeBase64,
  ed25519Verifier,
  NoteError,
  type NoteVerifier,
  openNote,
  parseNote,
} from './signed-note.js';
import { type CheckpointBody, parseCheckpoint } from './tlog-checkpoint.js';

/** The receipt file's content. */
export interface AuditReceipt {
  version: 1;
  origin: string;
  log_key: string;
  event: AuditEvent;
  leaf_index: number;
  tree_size: number;
  /** Base64 hashes, leaf side first. */
  proof: string[];
  /** The checkpoint note of tree_size with its cosignatures. */
  checkpoint: string;
}

/** Outcome: ok, or why not. */
export type ReceiptVerification =
  | { ok: true; event: AuditEvent; cosigners: string[]; treeSize: number }
  | { ok: false; problem: string };

/** Verifies a receipt against the given witness keys (at least `quorum` must have cosigned). */
export function verifyReceipt(
  value: unknown,
  options: { witnessKeys: readonly NoteVerifier[]; quorum: number },
): ReceiptVerification {
  const fail = (problem: string): ReceiptVerification => ({ ok: false, problem });
  if (typeof value !== 'object' || value === null) return fail('the receipt is not a JSON object');
  const r = value as Partial<AuditReceipt>;
  if (
    r.version !== 1 ||
    typeof r.origin !== 'string' ||
    typeof r.checkpoint !== 'string' ||
    !Array.isArray(r.proof)
  )
    return fail('the receipt is not an imp audit receipt (version 1)');
  const problem = receiptEventProblem(r.event);
  if (problem) return fail(problem);
  const event = r.event as AuditEvent;
  if (options.witnessKeys.length === 0 || options.quorum < 1)
    return fail('a receipt is checked against witness keys: give at least one');
  let logKey: NoteVerifier[] = [];
  try {
    logKey = typeof r.log_key === 'string' ? [ed25519Verifier(r.log_key)] : [];
  } catch {
    return fail('the receipt log_key is not a note verifier key');
  }
  const checked = checkCosignedCheckpoint(r.checkpoint, logKey, options.witnessKeys);
  if (!checked.ok) return fail(checked.problem);
  // A signature of a known key that does not verify fails the whole note (signed-note "Signatures").
  if (checked.forged.length > 0)
    return fail(`the checkpoint does not verify: the signature of ${checked.forged[0]} does not verify`);
  if (!checked.logSigned && checked.cosigners.length === 0)
    return fail('the checkpoint does not verify: no signature from a known key');
  const { cosigners } = checked;
  if (cosigners.length < options.quorum)
    return fail(
      `the checkpoint is cosigned by ${cosigners.length} of your witnesses, ${options.quorum} needed`,
    );
  const inclusion = receiptInclusionProblem(r as AuditReceipt, checked.body);
  if (inclusion) return fail(inclusion);
  return { ok: true, event, cosigners, treeSize: checked.body.size };
}

/** A checkpoint note checked against the log's key(s) and, one at a time, each witness's key. */
export type CheckedCheckpoint =
  | {
      ok: true;
      body: CheckpointBody;
      /** Whether a log key's signature is on it (and verifies). */
      logSigned: boolean;
      /** Names of the witnesses whose cosignature verifies. */
      cosigners: string[];
      /** Names of the witnesses with a cosignature line that does not verify (edited or forged). */
      forged: string[];
    }
  | { ok: false; problem: string };

/**
 * Opens `note` with the log keys, then with each witness key on its own, so one bad cosignature is
 * named and counted instead of hiding the others. A log signature that does not verify, or a note
 * that is not a checkpoint, fails it.
 */
export function checkCosignedCheckpoint(
  note: string,
  logKeys: readonly NoteVerifier[],
  witnessKeys: readonly NoteVerifier[],
): CheckedCheckpoint {
  const fail = (error: unknown): CheckedCheckpoint => ({
    ok: false,
    problem: `the checkpoint does not verify: ${(error as Error).message}`,
  });
  let body: CheckpointBody;
  let logSigned = false;
  try {
    body = parseCheckpoint(parseNote(note).text);
    if (logKeys.length > 0) {
      openNote(note, logKeys);
      logSigned = true;
    }
  } catch (error) {
    if (!(error instanceof NoteError && error.reason === 'unverified')) return fail(error);
    body = parseCheckpoint(parseNote(note).text);
  }
  const cosigners: string[] = [];
  const forged: string[] = [];
  for (const key of witnessKeys) {
    try {
      openNote(note, [key]);
      if (!cosigners.includes(key.name)) cosigners.push(key.name);
    } catch (error) {
      if (error instanceof NoteError && error.reason === 'bad_signature') forged.push(key.name);
      else if (!(error instanceof NoteError && error.reason === 'unverified')) return fail(error);
    }
  }
  return { ok: true, body, logSigned, cosigners, forged };
}

/** Why a receipt's event cannot be trusted as is (malformed, or its bytes not its hash), or null. */
export function receiptEventProblem(value: unknown): string | null {
  const problem = auditEventProblem(value);
  if (problem) return `the event is malformed: ${problem}`;
  const event = value as AuditEvent;
  if (hashEvent(event) !== event.hash) return `event ${event.seq} does not match its hash: it was edited`;
  return null;
}

/** Why the receipt's inclusion proof does not put its event's leaf under `body`'s root, or null. */
export function receiptInclusionProblem(
  r: Pick<AuditReceipt, 'origin' | 'tree_size' | 'leaf_index' | 'proof' | 'event'>,
  body: CheckpointBody,
): string | null {
  const { event } = r;
  if (body.origin !== r.origin || body.size !== r.tree_size)
    return 'the checkpoint is for another log or tree size than the receipt says';
  const proof = r.proof.map((p) => (typeof p === 'string' ? decodeBase64(p) : null));
  if (proof.some((p) => p === null)) return 'the proof is not a list of base64 hashes';
  if (
    r.leaf_index !== event.seq - 1 ||
    !verifyInclusion(event.seq - 1, body.size, eventLeafHash(event), proof as Buffer[], body.root)
  )
    return `the inclusion proof of event ${event.seq} does not verify against checkpoint ${body.size}`;
  return null;
}
