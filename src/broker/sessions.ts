/**
 * Session lifecycle on the broker: load with expiry applied (an expired session is refused on
 * every call, whether or not the sweeper ran), the sweeper, wake-ups for long-polls, and views.
 */

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { SessionView } from '../core/api.js';
import type { AuditDraft } from '../core/audit/event.js';
import { ConflictError, StepUpRequiredError } from '../core/errors.js';
import { type Policy, usesIdp } from '../core/policy/types.js';
import type { SessionRecord, StoreTx } from '../store/types.js';
import { actorOf, type BrokerDeps, type Principal } from './context.js';

/** Tells long-polls on this broker that a session changed (other replicas are found by polling). */
export const sessionChanges = new EventEmitter().setMaxListeners(0);

/** The audit fields every session event carries. */
export function sessionAudit(
  session: SessionRecord,
  type: string,
  data: Record<string, unknown> = {},
  actor?: AuditDraft['actor'],
): AuditDraft {
  return {
    type,
    actor: actor === undefined ? { ...session.requester } : actor,
    tenant: session.tenant,
    environment: session.environment,
    session: session.id,
    ticket: session.ticket,
    reason: session.reason,
    data: { scope: session.scope, mode: session.mode, ...data },
  };
}

/** The audit fields naming a session, for events about it by someone else (a step-up of its approver). */
export function sessionFields(session: SessionRecord): Omit<AuditDraft, 'type' | 'data' | 'actor'> {
  return {
    tenant: session.tenant,
    environment: session.environment,
    session: session.id,
    ticket: session.ticket,
    reason: session.reason,
  };
}

/** What the approver or confirmer of a session confirms ("approve bob → acme/prod WRITE, ticket SUP-1, 1800 s"). */
export function describeDecision(verb: string, session: SessionRecord): string {
  return `${verb} ${session.requester.email ?? session.requester.sub} → ${session.tenant}/${session.environment} ${session.scope === 'write' ? 'WRITE' : 'READ'}, ticket ${session.ticket}, ${Math.round(session.ttl / 60)}m`;
}

/** The operation a decision about a session is bound to. */
export function decisionOperation(
  op: string,
  session: SessionRecord,
  extra: Record<string, string | null> = {},
) {
  return {
    op,
    session: session.id,
    tenant: session.tenant,
    environment: session.environment,
    scope: session.scope,
    ...extra,
  };
}

/**
 * Applies due expiry to one session inside a transaction; returns the session as it now is. An
 * active session this call expired (not one another replica already did) is pushed to `expired`,
 * so the caller can act on it once the transaction commits (the summary on the ticket).
 */
export async function applyExpiry(
  tx: StoreTx,
  session: SessionRecord,
  nowMs: number,
  expired?: SessionRecord[],
): Promise<SessionRecord> {
  if (session.state === 'active' && session.expiresAt !== null && session.expiresAt <= nowMs) {
    if (await tx.updateSession(session.id, 'active', { state: 'expired', endedAt: session.expiresAt })) {
      expired?.push({ ...session, state: 'expired', endedAt: session.expiresAt });
      await tx.appendAudit(
        sessionAudit(
          session,
          'session.expired',
          { expired_at: new Date(session.expiresAt).toISOString() },
          null,
        ),
        nowMs,
      );
      sessionChanges.emit(session.id);
    }
    return { ...session, state: 'expired', endedAt: session.expiresAt };
  }
  if (session.state === 'pending' && session.requestExpiresAt !== null && session.requestExpiresAt <= nowMs) {
    if (await tx.updateSession(session.id, 'pending', { state: 'request_expired', endedAt: nowMs })) {
      // An unconfirmed break-glass request is its own fact: someone pulled the handle and nobody confirmed.
      const type = session.mode === 'break_glass' ? 'breakglass.expired' : 'request.expired';
      await tx.appendAudit(sessionAudit(session, type, {}, null), nowMs);
      sessionChanges.emit(session.id);
    }
    return { ...session, state: 'request_expired', endedAt: nowMs };
  }
  return session;
}

/** Loads a session with due expiry applied (fail-closed: if the expiry can't be audited, the call fails). */
export async function loadSession(deps: BrokerDeps, id: string): Promise<SessionRecord | null> {
  if (!/^[0-9a-f-]{36}$/.test(id)) return null;
  const current = await deps.store.getSession(id);
  if (!current || !isDue(current, deps.clock.now())) return current;
  const expired: SessionRecord[] = [];
  const loaded = await deps.store.transaction(async (tx) => {
    const fresh = await tx.getSession(id);
    return fresh ? applyExpiry(tx, fresh, deps.clock.now(), expired) : null;
  });
  for (const session of expired) deps.tickets?.sessionEnded(session);
  return loaded;
}

function isDue(session: SessionRecord, nowMs: number): boolean {
  return (
    (session.state === 'active' && session.expiresAt !== null && session.expiresAt <= nowMs) ||
    (session.state === 'pending' && session.requestExpiresAt !== null && session.requestExpiresAt <= nowMs)
  );
}

/** Expires every due session and request once; the conditional update makes replicas agree on who audits. */
export async function sweepExpired(deps: BrokerDeps): Promise<number> {
  const now = deps.clock.now();
  const candidates = (await deps.store.listSessions({ states: ['active', 'pending'] })).filter((s) =>
    isDue(s, now),
  );
  let expired = 0;
  for (const candidate of candidates) {
    const ended: SessionRecord[] = [];
    await deps.store.transaction(async (tx) => {
      const fresh = await tx.getSession(candidate.id);
      if (fresh && isDue(fresh, now)) {
        await applyExpiry(tx, fresh, now, ended);
        expired++;
      }
    });
    for (const session of ended) deps.tickets?.sessionEnded(session);
  }
  return expired;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The API's view of a session. */
export function sessionView(session: SessionRecord): SessionView {
  return {
    id: session.id,
    state: session.state,
    mode: session.mode,
    tenant: session.tenant,
    environment: session.environment,
    scope: session.scope,
    ticket: session.ticket,
    reason: session.reason,
    ttl: session.ttl,
    requester: { sub: session.requester.sub, email: session.requester.email },
    created_at: new Date(session.createdAt).toISOString(),
    request_expires_at: iso(session.requestExpiresAt),
    decided_by: session.decidedBy ? { sub: session.decidedBy.sub, email: session.decidedBy.email } : null,
    decision_comment: session.decisionComment,
    started_at: iso(session.startedAt),
    expires_at: iso(session.expiresAt),
    ended_at: iso(session.endedAt),
    ended_by: session.endedBy ? { sub: session.endedBy.sub, email: session.endedBy.email } : null,
    review_required: session.reviewRequired,
    review: session.review
      ? {
          outcome: session.review.outcome,
          by: { sub: session.review.by.sub, email: session.review.by.email },
          at: new Date(session.review.at).toISOString(),
          notes: session.review.notes,
        }
      : null,
  };
}

/** The person (with roles) as a session record keeps them. */
export function personOf(principal: Principal): SessionRecord['requester'] {
  const { iss, sub, email, roles } = actorOf(principal);
  return {
    iss: iss ?? '',
    sub,
    email,
    roles,
    ...(principal.person ? { person: principal.person } : {}),
  };
}

/**
 * True when `principal` may act on `session` as its owner: the same (iss, sub), and for a machine
 * also the very exchange that opened it — one workload token, one session, whatever else that
 * identity runs in parallel.
 */
export function ownsSession(principal: Principal, session: SessionRecord): boolean {
  if (session.requester.iss !== principal.iss || session.requester.sub !== principal.sub) return false;
  return principal.machine === null || session.loginId === principal.loginId;
}

/** What differs between a standard session, a pending request and a break-glass request. */
export type NewSessionFields = Pick<
  SessionRecord,
  | 'state'
  | 'mode'
  | 'tenant'
  | 'environment'
  | 'scope'
  | 'ticket'
  | 'reason'
  | 'ttl'
  | 'requestExpiresAt'
  | 'startedAt'
  | 'expiresAt'
>;

/** A new session record for `principal`, opened with the login it authenticated with. */
export function newSession(principal: Principal, nowMs: number, fields: NewSessionFields): SessionRecord {
  return {
    id: randomUUID(),
    requester: personOf(principal),
    loginId: principal.loginId,
    authTime: principal.authTime,
    createdAt: nowMs,
    decidedBy: null,
    decidedAt: null,
    decisionComment: null,
    endedAt: null,
    endedBy: null,
    reviewRequired: false,
    review: null,
    ...fields,
  };
}

/**
 * Inserts a new session inside a transaction, re-checking what a racing request could have changed
 * since the handler's first checks: the login is not already used (per-session re-authentication)
 * and there is no other pending request or live session on the tenant. The person's key lock makes
 * the check and the insert one step across replicas (nothing else serialises writes).
 */
export async function insertNewSession(
  tx: StoreTx,
  policy: Policy,
  principal: Principal,
  session: SessionRecord,
): Promise<void> {
  await tx.lockKey(`person\u0000${principal.iss}\u0000${principal.sub}`);
  // Both reads at once (after the lock): on PostgreSQL they share one round trip with the BEGIN and the lock.
  const [lastUsedAt, open] = await Promise.all([
    tx.lastUsedAuthTime(principal.iss, principal.sub),
    tx.listSessions({
      requesterIss: principal.iss,
      requesterSub: principal.sub,
      tenant: session.tenant,
      states: ['pending', 'active'],
    }),
  ]);
  const lastUsed = lastUsedAt ?? -1;
  // Only where the IdP's login is the proof: with passkeys each session has an assertion of its own.
  if (usesIdp(policy.reauth.method) && policy.reauth.perSession && lastUsed >= principal.authTime) {
    throw new StepUpRequiredError(1, 'Each session needs a login of its own. Log in again.');
  }
  // The handler's audited session.one_active check ran before; this is the same rule for a request
  // that raced another one past it. The handler audits this refusal once the transaction has rolled
  // back (auditedRaceRefusal), since nothing written in here survives the throw.
  const conflicting =
    open.find((s) => s.state === 'pending') ?? open.find((s) => (s.expiresAt ?? 0) > session.createdAt);
  if (conflicting)
    throw new ConflictError(
      `Refused by rule session.one_active: you already have a ${conflicting.state} session on ${session.tenant} (${conflicting.id}). End it first: imp end ${conflicting.id}`,
      { rule: 'session.one_active', session: conflicting.id },
    );
  await tx.insertSession(session);
}
