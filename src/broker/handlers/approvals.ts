/**
 * The second person: list what I may approve, approve (fresh login, never my own request), deny.
 * Approve and deny race safely: the conditional update lets exactly one decision through.
 */
import { ConflictError, ForbiddenError, ImpError, InvalidInputError } from '../../core/errors.js';
import { hasControlCharacters } from '../../core/escape.js';
import { decideApproval, sameSubject } from '../../core/policy/decide.js';
import type { SessionRecord } from '../../store/types.js';
import { actorOf, type HandlerContext, type HandlerResult, type Principal } from '../context.js';
import { mustHavePrincipal, requireFreshLogin } from '../guards.js';
import { loadSession, personOf, sessionAudit, sessionChanges, sessionView } from '../sessions.js';

/** GET /v1/requests?state=pending — pending requests the caller may approve (never their own). */
export async function listRequests(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  if (ctx.query.state && ctx.query.state !== 'pending')
    throw new InvalidInputError('Only state=pending is supported.');
  const now = ctx.deps.clock.now();
  const pending = (await ctx.deps.store.listSessions({ states: ['pending'] })).filter(
    (s) => (s.requestExpiresAt ?? Infinity) > now,
  );
  // Break-glass requests are confirmed through their own route, never approved here.
  const mine = pending.filter(
    (s) => s.mode === 'standard' && decideApproval(principal.roles, principal, s.requester, s).allowed,
  );
  return { body: { requests: mine.map(sessionView) } };
}

/** Loads a pending request the caller may decide, or throws (and audits) why not. */
async function decidable(
  ctx: HandlerContext,
  principal: Principal,
  action: 'approve' | 'deny',
): Promise<SessionRecord> {
  const id = ctx.params.id ?? '';
  const session = await loadSession(ctx.deps, id);
  if (!session) throw new ImpError('IMP_NOT_FOUND', `No request ${id.slice(0, 64)}.`);
  // An approver must not be able to open (or quietly deny) a break-glass request: that takes a confirmer.
  const verdict =
    session.mode === 'break_glass'
      ? ({
          allowed: false,
          rule: 'break_glass.confirm_only',
          message: `This is a break-glass request: a second on-call person confirms it with imp break-glass confirm ${session.id}.`,
        } as const)
      : decideApproval(principal.roles, principal, session.requester, session);
  if (!verdict.allowed) {
    await ctx.deps.store.transaction((tx) =>
      tx.appendAudit(
        sessionAudit(session, 'access.denied', { action, rule: verdict.rule }, actorOf(principal)),
        ctx.deps.clock.now(),
      ),
    );
    throw new ForbiddenError(`Denied by rule ${verdict.rule}: ${verdict.message}`, verdict.rule);
  }
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
  const session = await decidable(ctx, principal, 'approve');
  try {
    requireFreshLogin(ctx.deps, principal);
  } catch (error) {
    await ctx.deps.store.transaction((tx) =>
      tx.appendAudit(
        sessionAudit(session, 'stepup.required', { action: 'approve', why: 'stale' }, actorOf(principal)),
        ctx.deps.clock.now(),
      ),
    );
    throw error;
  }
  const now = ctx.deps.clock.now();
  const changes = {
    state: 'active',
    decidedBy: personOf(principal),
    decidedAt: now,
    decisionComment: comment,
    startedAt: now,
    expiresAt: now + session.ttl * 1000,
  } as const;
  await ctx.deps.store.transaction(async (tx) => {
    if (!(await tx.updateSession(session.id, 'pending', changes)))
      throw new ConflictError(`Request ${session.id} was decided meanwhile.`);
    await tx.appendAudit(sessionAudit(session, 'session.approved', { comment }, actorOf(principal)), now);
    await tx.appendAudit(
      sessionAudit(session, 'session.started', {
        ttl: session.ttl,
        expires_at: new Date(changes.expiresAt).toISOString(),
        approved_by: principal.email ?? principal.sub,
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
  const session = await decidable(ctx, principal, 'deny');
  const now = ctx.deps.clock.now();
  const changes = {
    state: 'denied',
    decidedBy: personOf(principal),
    decidedAt: now,
    decisionComment: reason,
    endedAt: now,
  } as const;
  await ctx.deps.store.transaction(async (tx) => {
    if (!(await tx.updateSession(session.id, 'pending', changes)))
      throw new ConflictError(`Request ${session.id} was decided meanwhile.`);
    await tx.appendAudit(
      sessionAudit(session, 'session.denied', { denial_reason: reason }, actorOf(principal)),
      now,
    );
  });
  sessionChanges.emit(session.id);
  return { body: { session: sessionView({ ...session, ...changes }) } };
}

/** POST /v1/sessions/:id/revoke {reason?} — security ends someone's session at once. */
export async function revokeSession(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const id = ctx.params.id ?? '';
  const session = await loadSession(ctx.deps, id);
  if (!session) throw new ImpError('IMP_NOT_FOUND', `No session ${id.slice(0, 64)}.`);
  if (!principal.roles.some((r) => r.revoke)) {
    await ctx.deps.store.transaction((tx) =>
      tx.appendAudit(
        sessionAudit(session, 'access.denied', { action: 'revoke', rule: 'role.revoke' }, actorOf(principal)),
        ctx.deps.clock.now(),
      ),
    );
    throw new ForbiddenError(
      'Denied by rule role.revoke: none of your roles may revoke sessions.',
      'role.revoke',
    );
  }
  if (session.state !== 'active' && session.state !== 'pending') {
    throw new ImpError('IMP_CONFLICT', `Session ${session.id} is already ${session.state}.`, {
      details: { state: session.state },
    });
  }
  const reason = optionalText((ctx.body as { reason?: unknown } | null)?.reason, 'reason');
  const now = ctx.deps.clock.now();
  await ctx.deps.store.transaction(async (tx) => {
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
        { revoke_reason: reason, self: sameSubject(principal, session.requester) },
        actorOf(principal),
      ),
      now,
    );
  });
  sessionChanges.emit(session.id);
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
