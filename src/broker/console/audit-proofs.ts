/**
 * Proof status for the events one Audit page shows: for each, the receipt `imp audit receipt` would
 * give (the event, its inclusion proof, the newest cosigned checkpoint), checked with the receipt
 * verifier's own parts — the checkpoint once (the broker's log key, then each policy witness key on
 * its own, so a forged line is counted and named), then each event's hash and inclusion proof.
 *
 * This is the broker checking its own store against signatures it cannot forge for the witnesses;
 * it is no substitute for `imp audit verify` run by the person with witness keys of their own.
 */
import type { AuditEvent } from '../../core/audit/event.js';
import {
  checkCosignedCheckpoint,
  receiptEventProblem,
  receiptInclusionProblem,
} from '../../core/audit/receipt.js';
import { ed25519Verifier, type NoteVerifier } from '../../core/audit/signed-note.js';
import { cosignatureVerifier } from '../../core/audit/tlog-cosignature.js';
import type { BrokerDeps } from '../context.js';
import { receiptsFor } from '../handlers/audit-tree.js';

/** What the page says about one event. */
export type ProofStatus =
  | { kind: 'verified'; size: number }
  | { kind: 'pending'; size: number }
  | { kind: 'failed'; reason: string };

/** The newest checkpoint as checked: its size and which witnesses' cosignatures verify. */
export interface CheckpointStatus {
  size: number;
  /** Witnesses (by key name) whose cosignature verifies with the key in policy. */
  cosigners: string[];
  /** Witnesses with a cosignature line that does not verify (edited or forged). */
  forged: string[];
  witnesses: number;
  quorum: number;
  /** Set when the checkpoint itself does not verify (then no event in it is verified). */
  problem?: string;
}

/** Proof status of each event (by id) against the newest checkpoint in the store. */
export async function proveEvents(
  deps: BrokerDeps,
  events: readonly AuditEvent[],
): Promise<{ checkpoint: CheckpointStatus | null; statuses: Map<string, ProofStatus> }> {
  const statuses = new Map<string, ProofStatus>();
  const latest = (await deps.store.listNotes()).at(-1);
  if (!latest || !deps.auditNote) {
    for (const e of events) statuses.set(e.id, { kind: 'pending', size: 0 });
    return { checkpoint: null, statuses };
  }
  const { witnesses, witnessQuorum } = deps.policy.audit;
  // Policy validation already refused keys that are not cosigner keys; this cannot throw for a loaded policy.
  const witnessKeys: NoteVerifier[] = witnesses.map((w) => cosignatureVerifier(w.key));
  const checked = checkCosignedCheckpoint(latest.note, [ed25519Verifier(deps.auditNote.vkey)], witnessKeys);
  const problem = !checked.ok
    ? checked.problem
    : !checked.logSigned
      ? 'the checkpoint is not signed by this broker’s audit key'
      : checked.body.size !== latest.size
        ? `the checkpoint stored as size ${latest.size} says size ${checked.body.size}`
        : undefined;
  const checkpoint: CheckpointStatus = {
    size: latest.size,
    cosigners: checked.ok ? checked.cosigners : [],
    forged: checked.ok ? checked.forged : [],
    witnesses: witnesses.length,
    quorum: witnessQuorum,
    ...(problem ? { problem } : {}),
  };
  const covered = events.filter((e) => Number.isSafeInteger(e.seq) && e.seq >= 1 && e.seq <= latest.size);
  const inCheckpoint = new Set(covered);
  for (const e of events)
    if (!inCheckpoint.has(e)) statuses.set(e.id, { kind: 'pending', size: latest.size });
  if (problem || !checked.ok) {
    for (const e of covered) statuses.set(e.id, { kind: 'failed', reason: problem ?? '' });
    return { checkpoint, statuses };
  }
  let receipts: Awaited<ReturnType<typeof receiptsFor>>;
  try {
    receipts = await receiptsFor(deps, covered, latest);
  } catch (error) {
    // A tree node the proof needs is gone: nothing in the checkpoint can be proven from this store.
    const reason = `the audit tree cannot give an inclusion proof: ${(error as Error).message}`;
    for (const e of covered) statuses.set(e.id, { kind: 'failed', reason });
    return { checkpoint, statuses };
  }
  for (const receipt of receipts) {
    const reason =
      receiptEventProblem(receipt.event) ?? receiptInclusionProblem(receipt, checked.body) ?? null;
    statuses.set(
      receipt.event.id,
      reason ? { kind: 'failed', reason } : { kind: 'verified', size: latest.size },
    );
  }
  return { checkpoint, statuses };
}
