/**
 * Audit events and the hash that chains them: hash = sha256(prev ‖ canonical JSON of the event
 * without `hash`), with the first `prev` being 64 zeros. Changing any field of any event, or the
 * order of events, changes every later hash; signed checkpoints pin the hashes down.
 */
import { hash as digest } from 'node:crypto';
import { ImpError } from '../errors.js';
import { canonicalJson, canonicalString, isStringifyCanonical } from './canonical-json.js';

/** The `prev` of the first event: there is nothing before it to link to. */
export const GENESIS_PREV = '0'.repeat(64);

/** Who did it, as the identity provider vouched; null `iss` for broker-internal actors. */
export interface AuditActor {
  iss: string | null;
  sub: string;
  email: string | null;
  roles: string[];
}

/** One link of the chain, exactly as stored and exported. */
export interface AuditEvent {
  seq: number;
  id: string;
  /** ISO-8601 UTC with milliseconds, e.g. 2026-11-24T20:11:40.123Z. */
  ts: string;
  type: string;
  actor: AuditActor | null;
  tenant: string | null;
  environment: string | null;
  session: string | null;
  ticket: string | null;
  reason: string | null;
  data: Record<string, unknown>;
  prev: string;
  hash: string;
}

/** What a caller supplies; the store assigns seq, id, ts, prev, hash. */
export interface AuditDraft {
  type: string;
  actor?: AuditActor | null;
  tenant?: string | null;
  environment?: string | null;
  session?: string | null;
  ticket?: string | null;
  reason?: string | null;
  data?: Record<string, unknown>;
}

/** The event types imp writes; readers accept others so an older CLI can verify a newer broker's log. */
// biome-ignore format: one line per domain reads better than one line per type
export const AUDIT_EVENT_TYPES: readonly string[] = Object.freeze([
  'auth.login', 'auth.login_refused', 'auth.logout', 'auth.machine', 'auth.machine_refused',
  'policy.loaded',
  'session.requested', 'session.approved', 'session.denied', 'session.started', 'session.ended',
  'session.expired', 'session.revoked', 'session.cancelled', 'session.refused',
  'session.exec_credential', 'session.summary_read', 'sessions.listed',
  'request.expired',
  'action.requested', 'action.completed', 'action.failed', 'action.denied', 'action.cut',
  'breakglass.requested', 'breakglass.confirmed', 'breakglass.refused', 'breakglass.expired', 'breakglass.reviewed',
  'breakglass.read',
  'alert.delivered', 'alert.failed',
  'audit.read', 'audit.export', 'audit.checkpoint', 'sessions.read',
  'access.denied', 'access.refusals', 'stepup.required', 'stepup.passkey', 'stepup.refused',
  'keys.rotated', 'policy.explained',
  'passkey.added', 'passkey.removed', 'passkey.reset', 'passkey.clone_suspected', 'passkey.refused',
  'recording.chunk', 'recording.refused', 'recording.replayed',
]);

/** sha256 hex of prev ‖ canonical JSON of the event without `hash` (a `hash` property, if present, is ignored). */
export function hashEvent(event: Omit<AuditEvent, 'hash'>): string {
  const record = event as unknown as Record<string, unknown>;
  const count = Object.keys(record).length - (Object.hasOwn(record, 'hash') ? 1 : 0);
  // The fixed-order template equals canonicalJson only when exactly the known fields are present.
  const known =
    count === HASHED.length && HASHED.every((k) => Object.hasOwn(record, k) && record[k] !== undefined);
  const json = known ? eventJson(event) : canonicalJson({ ...record, hash: undefined });
  return sha256Hex(event.prev + json);
}

/** hashEvent for a value auditEventProblem accepted: its fields are known, so the census is skipped. */
export function hashWellFormedEvent(event: AuditEvent): string {
  return sha256Hex(event.prev + wellFormedEventJson(event));
}

function sha256Hex(text: string): string {
  // The one-shot digest: a Hash object per event costs more than hashing the event itself.
  return digest('sha256', text, 'hex');
}

// The hashed fields in RFC 8785 order, as the template below lists them.
const HASHED = 'actor data environment id prev reason seq session tenant ticket ts type'.split(' ');

/** canonicalJson(event without hash), byte for byte, without sorting keys: verification speed lives here. */
function eventJson(e: Omit<AuditEvent, 'hash'>): string {
  const j = canonicalJson;
  return `{"actor":${actorJson(e.actor)},"data":${j(e.data)},"environment":${j(e.environment)},"id":${j(e.id)},"prev":${j(e.prev)},"reason":${j(e.reason)},"seq":${j(e.seq)},"session":${j(e.session)},"tenant":${j(e.tenant)},"ticket":${j(e.ticket)},"ts":${j(e.ts)},"type":${j(e.type)}}`;
}

/**
 * eventJson for an event whose field types auditEventProblem checked: strings are quoted without
 * dispatching on their type, seq is a safe integer, roles a list of strings (for which
 * JSON.stringify is canonical). The hot loop of verification.
 */
function wellFormedEventJson(e: AuditEvent): string {
  const a = e.actor;
  // Usually one native JSON.stringify of the fields inserted in canonical order: a flat string,
  // cheaper to build and to hash than the template below, and the same text when data is
  // already in canonical form (as anything read back from the store or an export is).
  if (isStringifyCanonical(e.data)) {
    return JSON.stringify({
      actor: a === null ? null : { email: a.email, iss: a.iss, roles: a.roles, sub: a.sub },
      data: e.data,
      environment: e.environment,
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
  const s = (value: string | null) => (value === null ? 'null' : canonicalString(value));
  const actor =
    a === null
      ? 'null'
      : `{"email":${s(a.email)},"iss":${s(a.iss)},"roles":${JSON.stringify(a.roles)},"sub":${s(a.sub)}}`;
  return `{"actor":${actor},"data":${canonicalJson(e.data)},"environment":${s(e.environment)},"id":${s(e.id)},"prev":${s(e.prev)},"reason":${s(e.reason)},"seq":${e.seq},"session":${s(e.session)},"tenant":${s(e.tenant)},"ticket":${s(e.ticket)},"ts":${s(e.ts)},"type":${s(e.type)}}`;
}

function actorJson(a: AuditActor | null): string {
  const exact = a !== null && isRecord(a) && !actorKeysProblem(a) && !Object.values(a).includes(undefined);
  if (!exact) return canonicalJson(a);
  const j = canonicalJson;
  return `{"email":${j(a.email)},"iss":${j(a.iss)},"roles":${j(a.roles)},"sub":${j(a.sub)}}`;
}

/** Turns a draft into a chained event; throws IMP_INTERNAL when the draft or position is not storable. */
export function sealEvent(
  draft: AuditDraft,
  at: { seq: number; id: string; ts: string; prev: string },
): AuditEvent {
  let data: Record<string, unknown>;
  try {
    // Round-trip through canonical JSON so the sealed event is exactly what a reader will parse back
    // (Dates become strings, undefined properties vanish) and later mutation of the draft cannot
    // desynchronise the event from its hash.
    data = JSON.parse(canonicalJson(draft.data ?? {})) as Record<string, unknown>;
  } catch (cause) {
    throw new ImpError('IMP_INTERNAL', `audit event ${draft.type} has data that is not JSON`, { cause });
  }
  const actor = draft.actor ?? null;
  const body: Omit<AuditEvent, 'hash'> = {
    seq: at.seq,
    id: at.id,
    ts: at.ts,
    type: draft.type,
    actor: actor && { iss: actor.iss, sub: actor.sub, email: actor.email, roles: [...actor.roles] },
    tenant: draft.tenant ?? null,
    environment: draft.environment ?? null,
    session: draft.session ?? null,
    ticket: draft.ticket ?? null,
    reason: draft.reason ?? null,
    data,
    prev: at.prev,
  };
  const event: AuditEvent = Object.assign(body, { hash: hashEvent(body) });
  const problem = auditEventProblem(event);
  if (problem) throw new ImpError('IMP_INTERNAL', `cannot seal audit event ${at.seq}: ${problem}`);
  return event;
}

/** Shape check for parsing exports: every field present with the right type, and no others. */
export function isAuditEvent(value: unknown): value is AuditEvent {
  return auditEventProblem(value) === null;
}

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_UTC_MS = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;
const FIELDS: ReadonlySet<string> = new Set([...HASHED, 'hash']);

/**
 * Names the first way `value` is not an AuditEvent, or null. Unknown fields are refused: the
 * verifier must not vouch for content it cannot interpret. `hexHashes: false` skips the format check
 * of prev and hash, for callers that compare both with known-good digests anyway (a hot path).
 */
export function auditEventProblem(value: unknown, options: { hexHashes?: boolean } = {}): string | null {
  if (!isRecord(value)) return 'it is not a JSON object';
  const keys = Object.keys(value);
  for (const key of keys) if (!FIELDS.has(key)) return `it has an unknown field ${quote(key)}`;
  if (keys.length < FIELDS.size)
    return `it is missing ${[...FIELDS].filter((k) => !keys.includes(k)).join(', ')}`;
  const { seq, id, ts, type, actor, tenant, environment, session, ticket, reason, data, prev, hash } = value;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)
    return 'seq is not a positive integer';
  if (typeof id !== 'string' || id === '') return 'id is not a non-empty string';
  if (typeof ts !== 'string' || !ISO_UTC_MS.test(ts))
    return 'ts is not an ISO-8601 UTC time with milliseconds';
  if (typeof type !== 'string' || type === '') return 'type is not a non-empty string';
  if (actor !== null) {
    const problem = actorProblem(actor);
    if (problem) return problem;
  }
  if (!isNullableString(tenant)) return 'tenant is not a string or null';
  if (!isNullableString(environment)) return 'environment is not a string or null';
  if (!isNullableString(session)) return 'session is not a string or null';
  if (!isNullableString(ticket)) return 'ticket is not a string or null';
  if (!isNullableString(reason)) return 'reason is not a string or null';
  if (!isRecord(data)) return 'data is not a JSON object';
  const hexHashes = options.hexHashes ?? true;
  if (typeof prev !== 'string' || (hexHashes && !HEX64.test(prev)))
    return 'prev is not 64 lowercase hex digits';
  if (typeof hash !== 'string' || (hexHashes && !HEX64.test(hash)))
    return 'hash is not 64 lowercase hex digits';
  return null;
}

function actorProblem(actor: unknown): string | null {
  if (!isRecord(actor)) return 'actor is not an object or null';
  if (actorKeysProblem(actor)) return 'actor does not have exactly iss, sub, email and roles';
  const { iss, sub, email, roles } = actor;
  if (!isNullableString(iss)) return 'actor.iss is not a string or null';
  if (typeof sub !== 'string') return 'actor.sub is not a string';
  if (!isNullableString(email)) return 'actor.email is not a string or null';
  if (!Array.isArray(roles)) return 'actor.roles is not a list of strings';
  for (const role of roles) if (typeof role !== 'string') return 'actor.roles is not a list of strings';
  return null;
}

const ACTOR_FIELDS: ReadonlySet<string> = new Set(['email', 'iss', 'roles', 'sub']);

function actorKeysProblem(actor: Record<string, unknown>): boolean {
  const keys = Object.keys(actor);
  if (keys.length !== ACTOR_FIELDS.size) return true;
  for (const key of keys) if (!ACTOR_FIELDS.has(key)) return true;
  return false;
}

function isNullableString(value: unknown): boolean {
  return value === null || typeof value === 'string';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function quote(key: string): string {
  // The name comes from the file being verified: keep it short and escaped.
  return JSON.stringify(key.slice(0, 40));
}
