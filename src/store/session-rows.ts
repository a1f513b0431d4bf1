/** Session records ↔ SQL rows, shared by the SQLite and PostgreSQL engines. */
import type { SessionRecord } from './types.js';

type Row = Record<string, unknown>;

const COLUMN_OF: Record<keyof SessionRecord, string> = {
  id: 'id',
  state: 'state',
  mode: 'mode',
  requester: 'requester',
  tenant: 'tenant',
  environment: 'environment',
  scope: 'scope',
  ticket: 'ticket',
  reason: 'reason',
  ttl: 'ttl',
  loginId: 'login_id',
  authTime: 'auth_time',
  createdAt: 'created_at',
  requestExpiresAt: 'request_expires_at',
  decidedBy: 'decided_by',
  decidedAt: 'decided_at',
  decisionComment: 'decision_comment',
  startedAt: 'started_at',
  expiresAt: 'expires_at',
  endedAt: 'ended_at',
  endedBy: 'ended_by',
  reviewRequired: 'review_required',
  review: 'review',
};

const JSON_FIELDS = new Set<keyof SessionRecord>(['requester', 'decidedBy', 'endedBy', 'review']);

/** The SQL column for a field. */
export function sessionColumn(field: keyof SessionRecord): string {
  return COLUMN_OF[field];
}

/** A field's value as stored. */
export function sessionValue(field: keyof SessionRecord, value: unknown): unknown {
  if (JSON_FIELDS.has(field)) return value === null || value === undefined ? null : JSON.stringify(value);
  if (field === 'reviewRequired') return value ? 1 : 0;
  return value ?? null;
}

/** A whole record as a column → value map (plus the indexed requester columns). */
export function sessionToRow(session: SessionRecord): Row {
  const row: Row = { requester_iss: session.requester.iss, requester_sub: session.requester.sub };
  for (const field of Object.keys(COLUMN_OF) as (keyof SessionRecord)[])
    row[COLUMN_OF[field]] = sessionValue(field, session[field]);
  return row;
}

const num = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
const json = <T>(value: unknown): T | null =>
  value === null || value === undefined ? null : (JSON.parse(String(value)) as T);

/** Rebuilds a record from a row. */
export function rowToSession(row: Row): SessionRecord {
  return {
    id: String(row.id),
    state: row.state as SessionRecord['state'],
    mode: row.mode as SessionRecord['mode'],
    requester: json<SessionRecord['requester']>(row.requester)!,
    tenant: String(row.tenant),
    environment: String(row.environment),
    scope: row.scope as SessionRecord['scope'],
    ticket: String(row.ticket),
    reason: String(row.reason),
    ttl: Number(row.ttl),
    loginId: String(row.login_id),
    authTime: Number(row.auth_time),
    createdAt: Number(row.created_at),
    requestExpiresAt: num(row.request_expires_at),
    decidedBy: json(row.decided_by),
    decidedAt: num(row.decided_at),
    decisionComment: (row.decision_comment as string | null) ?? null,
    startedAt: num(row.started_at),
    expiresAt: num(row.expires_at),
    endedAt: num(row.ended_at),
    endedBy: json(row.ended_by),
    reviewRequired: Boolean(Number(row.review_required)),
    review: json(row.review),
  };
}

/**
 * Indexes for the per-person checks of every session open (both engines, their last migration):
 * the newest auth_time (step-up: one login per session) and the person's sessions on one tenant
 * (session.one_active), each a few index entries instead of the person's whole history.
 */
export const SESSION_PERSON_INDEXES_SQL = `
  CREATE INDEX sessions_person_auth_time ON sessions (requester_iss, requester_sub, auth_time);
  CREATE INDEX sessions_person_tenant ON sessions (requester_iss, requester_sub, tenant, state);
`;
