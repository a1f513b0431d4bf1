/**
 * Receipts: one event, its RFC 9162 inclusion proof, and a checkpoint cosigned by witnesses — proof,
 * offline, that the event was logged and cannot be unlogged. Checked with witness keys the holder
 * brings (the receipt's own log_key is only used to check the broker's signature).
 */
import { type AuditEvent, auditEventProblem, hashEvent } from './event.js';
import { eventLeafHash } from './log-tree.js';
import { verifyInclusion } from './merkle.js';
import { decodeBase64, ed25519Verifier, type NoteVerifier, openNote } from './signed-note.js';
import { parseCheckpoint } from './tlog-checkpoint.js';

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
  const problem = auditEventProblem(r.event);
  if (problem) return fail(`the event is malformed: ${problem}`);
  const event = r.event as AuditEvent;
  if (hashEvent(event) !== event.hash)
    return fail(`event ${event.seq} does not match its hash: it was edited`);
  if (options.witnessKeys.length === 0 || options.quorum < 1)
    return fail('a receipt is checked against witness keys: give at least one');
  let logKey: NoteVerifier[] = [];
  try {
    logKey = typeof r.log_key === 'string' ? [ed25519Verifier(r.log_key)] : [];
  } catch {
    return fail('the receipt log_key is not a note verifier key');
  }
  let opened: ReturnType<typeof openNote>;
  let body: ReturnType<typeof parseCheckpoint>;
  try {
    opened = openNote(r.checkpoint, [...logKey, ...options.witnessKeys]);
    body = parseCheckpoint(opened.note.text);
  } catch (error) {
    return fail(`the checkpoint does not verify: ${(error as Error).message}`);
  }
  const cosigners = opened.verified.filter((v) => options.witnessKeys.includes(v)).map((v) => v.name);
  if (cosigners.length < options.quorum)
    return fail(
      `the checkpoint is cosigned by ${cosigners.length} of your witnesses, ${options.quorum} needed`,
    );
  if (body.origin !== r.origin || body.size !== r.tree_size)
    return fail('the checkpoint is for another log or tree size than the receipt says');
  const proof = r.proof.map((p) => (typeof p === 'string' ? decodeBase64(p) : null));
  if (proof.some((p) => p === null)) return fail('the proof is not a list of base64 hashes');
  if (
    r.leaf_index !== event.seq - 1 ||
    !verifyInclusion(event.seq - 1, body.size, eventLeafHash(event), proof as Buffer[], body.root)
  )
    return fail(`the inclusion proof of event ${event.seq} does not verify against checkpoint ${body.size}`);
  return { ok: true, event, cosigners, treeSize: body.size };
}
