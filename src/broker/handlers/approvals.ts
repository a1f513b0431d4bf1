/**
 * The second person: list what I may approve, approve, deny; and security's revoke. Who may is the
 * route table's guards (./routes.ts), decided by core/policy/decide.ts's one approval decision.
 * Approve and deny race safely: the conditional update lets exactly one decision through.
 */
import { ConflictError, ImpError, InvalidInputError } from '../../core/errors.js';
import { hasControlCharacters } from '../../core/escape.js';
import { decideApproval, decideTargetAccess, sameSubject } from '../../core/policy/decide.js';
import { machineNameOf } from '../../core/policy/machines.js';
import type { SessionRecord } from '../../store/types.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { mustHavePrincipal } from '../guards.js';
import { MAX_RECENT_ACCESS, withRecentAccess } from '../recent-access.js';
import { recordingFacts } from '../recording.js';
import {
  decisionOperation,
  describeDecision,
  loadSession,
  personOf,
  sessionAudit,
  sessionChanges,
  sessionView,
} from '../sessions.js';
import { resolveId } from '../short-ids.js';
import { checkTicket } from '../tickets/check.js';

/**
 * GET /v1/requests?state=pending[&kind=break_glass][&recent=N] — pending requests the caller may decide
 * (never their own): approvals by default; with kind=break_glass, break-glass requests they may
 * confirm. With recent=N each carries its requester's N newest other sessions on that tenant.
 */
export async function listRequests(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  if (ctx.query.state && ctx.query.state !== 'pending')
    throw new InvalidInputError('Only state=pending is supported.');
  const kind = ctx.query.kind ?? 'approval';
  if (kind !== 'approval' && kind !== 'break_glass')
    throw new InvalidInputError('kind must be "approval" or "break_glass".');
  const now = ctx.deps.clock.now();
  const pending = (await ctx.deps.store.listSessions({ states: ['pending'] })).filter(
    (s) => (s.requestExpiresAt ?? Infinity) > now,
  );
  const mine = pending.filter((s) =>
    kind === 'approval'
      ? decideApproval(principal.roles, principal, s.requester, s).allowed
      : s.mode === 'break_glass' &&
        decideTargetAccess(principal.roles, principal, targetOf(s), BREAK_GLASS_CONFIRM).allowed,
  );
  return { body: { requests: await withRecentAccess(ctx.deps, mine, recentLimit(ctx.query.recent)) } };
}

/** `recent=N` (0–20): how many of each requester's earlier sessions on that tenant to list with a request. */
function recentLimit(value: string | undefined): number {
  if (value === undefined) return 0;
  if (!/^[0-9]{1,2}$/.test(value) || Number(value) > MAX_RECENT_ACCESS)
    throw new InvalidInputError(`recent must be a number from 0 to ${MAX_RECENT_ACCESS}.`);
  return Number(value);
}

const BREAK_GLASS_CONFIRM = { capability: 'breakGlassConfirm', notSelf: ['requester'] } as const;

function targetOf(s: SessionRecord) {
  return { ...s, confirmer: s.decidedBy };
}

/** Loads a pending request; the route's guards (approver covering it, not its requester) decide on it. */
async function decidable(ctx: HandlerContext, verb: string): Promise<SessionRecord> {
  const id = await resolveId(ctx, { noun: 'request', verb, states: ['pending'], mode: 'standard' });
  const session = await loadSession(ctx.deps, id);
  if (!session) throw new ImpError('IMP_NOT_FOUND', `No request ${id.slice(0, 64)}.`);
  await ctx.guard.target(session);
  if (session.state !== 'pending') {
    const code = session.state === 'request_expired' ? 'IMP_SESSION_EXPIRED' : 'IMP_CONFLICT';
    throw new ImpError(code, `Request ${session.id} is no longer pending (it is ${session.state}).`, {
      details: { state: session.state },
    });
  }
  return session;
}

/** POST /v1/requests/:id/approve {comment?} — opens the session. */
export async function approveRequest(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const comment = optionalText((ctx.body as { comment?: unknown } | null)?.comment, 'comment');
  const session = await decidable(ctx, 'approve');
  // The ticket again, as it is now: closed, reassigned or moved to another tenant while the request
  // waited, it opens nothing (refused by its rule, audited; the request stays pending).
  // A runbook's request may carry no ticket; its ticket is checked without the person rule.
  const machine = machineNameOf(session.requester.roles) !== null;
  const ticketCheck = session.ticket
    ? await checkTicket(ctx, {
        ticket: session.ticket,
        tenant: session.tenant,
        machine,
        person: session.requester.email,
        breakGlass: false,
        event: 'access.denied',
        about: session,
        data: { action: 'approve' },
      })
    : { audit: {} };
  const reauth = await ctx.guard.freshLogin({
    operation: decisionOperation('session.approve', session, { comment }),
    description: describeDecision('Approve', session),
  });
  const now = ctx.deps.clock.now();
  const changes = {
    state: 'active',
    decidedBy: personOf(principal),
    decidedAt: now,
    decisionComment: comment,
    startedAt: now,
    expiresAt: now + session.ttl * 1000,
  } as const;
  await ctx.guard.commit(async (tx) => {
    if (!(await tx.updateSession(session.id, 'pending', changes)))
      throw new ConflictError(`Request ${session.id} was decided meanwhile.`);
    await tx.appendAudit(
      sessionAudit(
        session,
        'session.approved',
        { comment, reauth, ...ticketCheck.audit },
        actorOf(principal),
      ),
      now,
    );
    await tx.appendAudit(
      sessionAudit(session, 'session.started', {
        ttl: session.ttl,
        expires_at: new Date(changes.expiresAt).toISOString(),
        approved_by: principal.email ?? principal.sub,
        reauth,
        ...recordingFacts(ctx.deps.policy, session),
      }),
      now,
    );
  });
  sessionChanges.emit(session.id);
  return { body: { session: sessionView({ ...session, ...changes }) } };
}

/** POST /v1/requests/:id/deny {reason} — final; the requester sees the reason. */
export async function denyRequest(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const reason = optionalText((ctx.body as { reason?: unknown } | null)?.reason, 'reason');
  if (!reason) throw new InvalidInputError('Say why you deny the request: {"reason": "..."}.');
  const session = await decidable(ctx, 'deny');
  const reauth = await ctx.guard.freshLogin({
    operation: decisionOperation('session.deny', session, { reason }),
    description: describeDecision('Deny', session),
  });
  const now = ctx.deps.clock.now();
  const changes = {
    state: 'denied',
    decidedBy: personOf(principal),
    decidedAt: now,
    decisionComment: reason,
    endedAt: now,
  } as const;
  await ctx.guard.commit(async (tx) => {
    if (!(await tx.updateSession(session.id, 'pending', changes)))
      throw new ConflictError(`Request ${session.id} was decided meanwhile.`);
    await tx.appendAudit(
      sessionAudit(session, 'session.denied', { denial_reason: reason, reauth }, actorOf(principal)),
      now,
    );
  });
  sessionChanges.emit(session.id);
  return { body: { session: sessionView({ ...session, ...changes }) } };
}

/** POST /v1/sessions/:id/revoke {reason?} — security ends someone's session at once. */
export async function revokeSession(ctx: HandlerContext): Promise<HandlerResult> {
  mustHavePrincipal(ctx);
  const id = await resolveId(ctx, { noun: 'session', verb: 'revoke', states: ['active', 'pending'] });
  const session = await loadSession(ctx.deps, id);
  if (!session) throw new ImpError('IMP_NOT_FOUND', `No session ${id.slice(0, 64)}.`);
  await ctx.guard.target(session);
  if (session.state !== 'active' && session.state !== 'pending') {
    throw new ImpError('IMP_CONFLICT', `Session ${session.id} is already ${session.state}.`, {
      details: { state: session.state },
    });
  }
  const reason = optionalText((ctx.body as { reason?: unknown } | null)?.reason, 'reason');
  return revokeTarget(ctx, session, reason);
}

/**
 * Revokes `session` (its guards already passed), after the route's fresh login; audited as
 * session.revoked with `extra` (a supervisor's terminate adds `via: 'watch'`).
 */
export async function revokeTarget(
  ctx: HandlerContext,
  session: SessionRecord,
  reason: string | null,
  extra: Record<string, unknown> = {},
): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const reauth = await ctx.guard.freshLogin({
    operation: decisionOperation('session.revoke', session, { reason }),
    description: describeDecision('REVOKE the session of', session),
  });
  const now = ctx.deps.clock.now();
  await ctx.guard.commit(async (tx) => {
    if (
      !(await tx.updateSession(session.id, session.state, {
        state: 'revoked',
        endedAt: now,
        endedBy: personOf(principal),
        decisionComment: reason,
      }))
    ) {
      throw new ConflictError(`Session ${session.id} changed meanwhile; try again.`);
    }
    await tx.appendAudit(
      sessionAudit(
        session,
        'session.revoked',
        { revoke_reason: reason, self: sameSubject(principal, session.requester), reauth, ...extra },
        actorOf(principal),
      ),
      now,
    );
  });
  sessionChanges.emit(session.id);
  if (session.state === 'active')
    ctx.deps.tickets?.sessionEnded({
      ...session,
      state: 'revoked',
      endedAt: now,
      endedBy: personOf(principal),
    });
  return {
    body: {
      session: sessionView({
        ...session,
        state: 'revoked',
        endedAt: now,
        endedBy: personOf(principal),
        decisionComment: reason,
      }),
    },
  };
}

function optionalText(value: unknown, name: string): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || value.length > 500 || hasControlCharacters(value)) {
    throw new InvalidInputError(`${name} must be text of at most 500 characters without control characters.`);
  }
  return value.trim();
}
