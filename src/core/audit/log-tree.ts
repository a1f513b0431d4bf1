/**
 * imp's audit log as an RFC 9162 tree: leaf i is event seq i+1, its bytes the RFC 8785 canonical
 * JSON of the whole event (prev and hash included, so the tree commits to the chain as well).
 *
 * Durability and integration are separate steps by design (issue #16): an event is durable once
 * its row commits; it gets its leaf index when a store integrates it into the tree. Today both
 * happen in the same transaction and leaf index = seq − 1; a sequencer integrating batches later
 * only changes who calls integrate, not this format.
 */
import { canonicalJson } from './canonical-json.js';
import type { AuditEvent } from './event.js';
import { type Hash, leafHash } from './merkle.js';

/** The leaf bytes of an event. */
export function eventLeafBytes(event: AuditEvent): Uint8Array {
  return Buffer.from(canonicalJson(event), 'utf8');
}

/** MTH({event}) — the hash stored at level 0. */
export function eventLeafHash(event: AuditEvent): Hash {
  return leafHash(eventLeafBytes(event));
}

/** A checkpoint as the store keeps it: the log-signed note, with any witness cosignature lines appended. */
export interface StoredNote {
  size: number;
  note: string;
}
