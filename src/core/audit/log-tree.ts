/**
 * imp's audit log as an RFC 9162 tree: leaf i is event seq i+1, its bytes the RFC 8785 canonical
 * JSON of the whole event (prev and hash included, so the tree commits to the chain as well).
 *
 * Durability and integration are separate steps by design (issue #16): an event is durable once
 * its row commits; it gets its leaf index when a store integrates it into the tree. Today both
 * happen in the same transaction and leaf index = seq − 1; a sequencer integrating batches later
 * only changes who calls integrate, not this format.
 */
import { canonicalJson, isStringifyCanonical } from './canonical-json.js';
import type { AuditEvent } from './event.js';
import { type Hash, leafHash } from './merkle.js';

/** The leaf bytes of an event: its RFC 8785 canonical JSON. */
export function eventLeafBytes(event: AuditEvent): Uint8Array {
  return Buffer.from(eventLeafJson(event), 'utf8');
}

const ACTOR_KEYS = 'email iss roles sub';

/**
 * canonicalJson(event), byte for byte. The hot path of verifying a large log: when the event has
 * exactly the known fields and its data is already canonical, one native JSON.stringify of the
 * fields inserted in RFC 8785 order gives the same text (as event.ts does for the chain hash).
 */
export function eventLeafJson(e: AuditEvent): string {
  const a = e.actor as unknown as Record<string, unknown> | null;
  const plainActor =
    a === null ||
    (typeof a === 'object' &&
      Object.keys(a).sort().join(' ') === ACTOR_KEYS &&
      Array.isArray(a.roles) &&
      a.roles.every((r) => typeof r === 'string') &&
      [a.email, a.iss, a.sub].every(isScalar));
  const scalars = [
    e.environment,
    e.hash,
    e.id,
    e.prev,
    e.reason,
    e.session,
    e.tenant,
    e.ticket,
    e.ts,
    e.type,
  ];
  if (
    Object.keys(e).length !== 13 ||
    !plainActor ||
    !Number.isSafeInteger(e.seq) ||
    !scalars.every(isScalar) ||
    typeof e.data !== 'object' ||
    e.data === null ||
    !isStringifyCanonical(e.data)
  )
    return canonicalJson(e);
  return JSON.stringify({
    actor: a === null ? null : { email: a.email, iss: a.iss, roles: a.roles, sub: a.sub },
    data: e.data,
    environment: e.environment,
    hash: e.hash,
    id: e.id,
    prev: e.prev,
    reason: e.reason,
    seq: e.seq,
    session: e.session,
    tenant: e.tenant,
    ticket: e.ticket,
    ts: e.ts,
    type: e.type,
  });
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

function isScalar(value: unknown): boolean {
  return value === null || typeof value === 'string';
}
