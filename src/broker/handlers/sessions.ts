/**
 * Opening, watching and ending sessions. Order of checks in POST /v1/sessions: input → policy →
 * conflicts → fresh login. A request that would be refused anyway is refused without a step-up.
 */
import { parseDuration } from '../../core/duration.js';
import { ConflictError, ImpError, InvalidInputError, NotFoundError } from '../../core/errors.js';
import { decideSessionRead } from '../../core/policy/oversight.js';
import type { SessionRecord } from '../../store/types.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { mustHavePrincipal, refuse } from '../guards.js';
import { recordingFacts, recordingTerms } from '../recording.js';
import {
  insertNewSession,
  loadSession,
  newSession,
  ownsSession,
  personOf,
  sessionAudit,
  sessionChanges,
  sessionView,
} from '../sessions.js';
import { resolveId } from '../short-ids.js';
import { buildSummary } from '../summary.js';
import { currentSupervisors, supervisionTerms } from '../supervision.js';
import { auditedRaceRefusal, checkSessionAsk, safeText } from './session-check.js';

/** POST /v1/sessions — 201 active, 202 pending approval, 403 naming the rule, 401 step-up last. */
export async function postSession(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const { policy } = deps;
  const now = deps.clock.now();
  const { ask, ticket, reason, audited, decision, ticketCheck } = await checkSessionAsk(ctx, false);
  const { ttl } = ask;
  const reauth = await ctx.guard.freshLogin({
    operation: { op: 'session.open', ...ask, ticket, reason },
    description: describeSession(principal.email ?? principal.sub, ask, ticket),
    about: audited,
  });

  const pending = decision.outcome === 'approval';
  const session = newSession(principal, now, {
    state: pending ? 'pending' : 'active',
    mode: 'standard',
    tenant: ask.tenant,
    environment: ask.environment,
    scope: ask.scope,
    ticket,
    reason,
    ttl,
    requestExpiresAt: pending ? now + policy.approvals.requestTtl * 1000 : null,
    startedAt: pending ? null : now,
    expiresAt: pending ? null : now + ttl * 1000,
  });
  await auditedRaceRefusal(ctx, audited, 'session.refused', () =>
    ctx.guard.commit(async (tx) => {
      await insertNewSession(tx, policy, principal, session);
      await tx.appendAudit(
        sessionAudit(session, 'session.requested', {
          ttl,
          decision: decision.rule,
          reauth,
          ...ticketCheck.audit,
        }),
        now,
      );
      if (!pending)
        await tx.appendAudit(
          sessionAudit(session, 'session.started', {
            ttl,
            expires_at: new Date(session.expiresAt!).toISOString(),
            rule: decision.rule,
            reauth,
            ...ticketCheck.audit,
            ...recordingFacts(policy, session),
          }),
          now,
        );
    }),
  );
  return {
    status: pending ? 202 : 201,
    body: {
      session: await fullView(ctx, session),
      rule: decision.rule,
      message: decision.message,
      ...(ticketCheck.warning ? { ticket_warning: ticketCheck.warning } : {}),
    },
  };
}

/** What a person confirms for a session: "alice@example.test → acme/prod WRITE, ticket SUP-1, 30m". */
export function describeSession(
  who: string,
  ask: { tenant: string; environment: string; scope: string; ttl: number },
  ticket: string,
): string {
  const ttl =
    ask.ttl % 3600 === 0 ? `${ask.ttl / 3600}h` : ask.ttl % 60 === 0 ? `${ask.ttl / 60}m` : `${ask.ttl}s`;
  return `${who} → ${ask.tenant}/${ask.environment} ${ask.scope === 'write' ? 'WRITE' : 'READ'}, ticket ${ticket}, ${ttl}`;
}

/** GET /v1/sessions — my sessions (`?state=active,pending`); `?all=1` for audit/revoke roles. */
export async function listSessions(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const states = parseStates(ctx.query.state);
  const all = ctx.query.all === '1' && principal.roles.some((r) => r.audit || r.revoke);
  const rows = await ctx.deps.store.listSessions({
    ...(states ? { states } : {}),
    ...(all ? {} : { requesterIss: principal.iss, requesterSub: principal.sub }),
  });
  const now = ctx.deps.clock.now();
  const fresh = await Promise.all(
    rows.map((row) => (isDueLater(row, now) ? loadSession(ctx.deps, row.id) : row)),
  );
  const visible = fresh.filter(
    (s): s is SessionRecord => s !== null && (!states || states.includes(s.state)),
  );
  // Everyone's sessions (reasons, tickets, tenants) is a read of sensitive data: recorded before it is answered.
  if (all)
    await ctx.deps.store.transaction((tx) =>
      tx.appendAudit(
        {
          type: 'sessions.listed',
          actor: actorOf(principal),
          data: { all: true, states: states ?? null, count: visible.length, request_id: ctx.requestId },
        },
        ctx.deps.clock.now(),
      ),
    );
  return { body: { sessions: visible.map(sessionView) } };
}

function isDueLater(session: SessionRecord, now: number): boolean {
  return (
    (session.state === 'active' && (session.expiresAt ?? 0) <= now) ||
    (session.state === 'pending' && (session.requestExpiresAt ?? 0) <= now)
  );
}

const STATES = new Set([
  'pending',
  'active',
  'denied',
  'cancelled',
  'request_expired',
  'ended',
  'expired',
  'revoked',
]);
function parseStates(value: string | undefined): SessionRecord['state'][] | undefined {
  if (!value) return undefined;
  const states = value.split(',');
  if (states.some((s) => !STATES.has(s)))
    throw new InvalidInputError(`state must be a comma-separated list of: ${[...STATES].join(', ')}.`);
  return states as SessionRecord['state'][];
}

/** The whole id of a session the caller may see (`:id` may be a short id). */
function resolveReadable(ctx: HandlerContext, verb: string): Promise<string> {
  const principal = mustHavePrincipal(ctx);
  return resolveId(ctx, {
    noun: 'session',
    verb,
    may: (s) =>
      (principal.machine === null || ownsSession(principal, s)) &&
      decideSessionRead(principal.roles, principal, s).allowed,
  });
}

/** A session the caller may see: its owner, an approver for it, or an auditor/revoker. */
export async function visibleSession(
  ctx: HandlerContext,
  id: string,
  action = 'read',
): Promise<SessionRecord> {
  const principal = mustHavePrincipal(ctx);
  const session = await loadSession(ctx.deps, id);
  if (!session) throw new NotFoundError(`No session ${safeText(id)} that you can see.`);
  // A machine's token sees the one session its exchange opened, never a sibling of the same identity.
  if (principal.machine !== null && !ownsSession(principal, session))
    throw new NotFoundError(`No session ${safeText(id)} that you can see.`);
  const verdict = decideSessionRead(principal.roles, principal, session);
  if (verdict.allowed) return session;
  // Someone with no oversight role gets no oracle; an overseer reading outside their remit is told
  // which rule, and it is recorded.
  if (!verdict.overseer) throw new NotFoundError(`No session ${safeText(id)} that you can see.`);
  return refuse(ctx, { rule: verdict.rule, message: verdict.message, about: session, data: { action } });
}

/** GET /v1/sessions/:id[?wait=25s] — long-polls while pending, so the requester sees approval at once. */
export async function getSession(ctx: HandlerContext): Promise<HandlerResult> {
  let session = await visibleSession(ctx, await resolveReadable(ctx, 'read'));
  const waitSeconds = ctx.query.wait ? Math.min(parseWait(ctx.query.wait), 60) : 0;
  const deadline = ctx.deps.clock.now() + waitSeconds * 1000;
  while (session.state === 'pending' && ctx.deps.clock.now() < deadline && !ctx.signal.aborted) {
    await waitForChange(ctx, session.id, Math.min(1000, deadline - ctx.deps.clock.now()));
    session = await visibleSession(ctx, session.id);
  }
  return { body: { session: await fullView(ctx, session) } };
}

/** The session view with its recording and supervision terms (who watches now, where it must be watched). */
async function fullView(ctx: HandlerContext, session: SessionRecord) {
  const terms = supervisionTerms(ctx.deps.policy, session);
  const supervisors =
    terms.required && session.state === 'active'
      ? (await currentSupervisors(ctx.deps, session.id)).supervisors
      : [];
  return {
    ...sessionView(session),
    recording: recordingTerms(ctx.deps.policy, session),
    supervision: { ...terms, supervisors },
  };
}

function parseWait(value: string): number {
  try {
    return /^\d+$/.test(value) ? Number(value) : parseDuration(value, 'wait');
  } catch (error) {
    throw error instanceof ImpError ? error : new InvalidInputError('wait must be a duration such as 25s.');
  }
}

// Wakes on a change made by this broker, or after `ms` to poll for changes made by another replica.
function waitForChange(ctx: HandlerContext, id: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      sessionChanges.off(id, done);
      ctx.signal.removeEventListener('abort', done);
      cancel();
      resolve();
    };
    const cancel = ctx.deps.clock.after(Math.max(10, ms), done);
    sessionChanges.on(id, done);
    ctx.signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * POST /v1/sessions/:id/end {post_summary?} — the owner ends an active session, or withdraws a
 * pending request. The summary goes on the ticket when the policy says so (tickets.post_summary) or
 * the owner asks (`imp end --post`); `ticket_note: "posting"` says it is under way.
 */
export async function endSession(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const postSummary = (ctx.body as { post_summary?: unknown } | null)?.post_summary;
  if (postSummary !== undefined && typeof postSummary !== 'boolean')
    throw new InvalidInputError('post_summary must be true or false.');
  if (postSummary === true && !ctx.deps.policy.tickets.system)
    throw new InvalidInputError(
      'This broker has no ticket system (policy tickets.system): there is nowhere to post the summary.',
    );
  const session = await visibleSession(
    ctx,
    await resolveId(ctx, { noun: 'session', verb: 'end', states: ['active', 'pending'] }),
    'end',
  );
  await ctx.guard.target(session);
  const now = ctx.deps.clock.now();
  const nextState = session.state === 'pending' ? 'cancelled' : 'ended';
  if (session.state !== 'active' && session.state !== 'pending') {
    throw new ImpError(
      session.state === 'expired' ? 'IMP_SESSION_EXPIRED' : 'IMP_SESSION_ENDED',
      `Session ${session.id} is already ${session.state}.`,
      { details: { state: session.state } },
    );
  }
  await ctx.guard.commit(async (tx) => {
    if (
      !(await tx.updateSession(session.id, session.state, {
        state: nextState,
        endedAt: now,
        endedBy: personOf(principal),
      }))
    ) {
      throw new ConflictError(`Session ${session.id} changed meanwhile; try again.`);
    }
    await tx.appendAudit(
      sessionAudit(session, nextState === 'cancelled' ? 'session.cancelled' : 'session.ended', {
        by: 'owner',
      }),
      now,
    );
  });
  sessionChanges.emit(session.id);
  const ended = { ...session, state: nextState, endedAt: now, endedBy: personOf(principal) } as const;
  const posting =
    nextState === 'ended' && (ctx.deps.tickets?.sessionEnded(ended, postSummary === true) ?? false);
  return { body: { session: sessionView(ended), ticket_note: posting ? 'posting' : null } };
}

/** GET /v1/sessions/:id/summary — what happened in a session, from the audit log. */
export async function getSummary(ctx: HandlerContext): Promise<HandlerResult> {
  const session = await visibleSession(ctx, await resolveReadable(ctx, 'summarise'), 'summary');
  // The session's last events (its end, a call that just finished) may still be queued for the sequencer.
  await ctx.deps.store.settle();
  const events = await ctx.deps.store.readAudit({ session: session.id });
  const summary = buildSummary(session, events, ctx.deps.clock.now());
  const { calls } = summary;
  // Who read what happened in a session is itself a fact (the calls list paths and outcomes).
  await ctx.deps.store.transaction((tx) =>
    tx.appendAudit(
      sessionAudit(
        session,
        'session.summary_read',
        { calls: calls.length, request_id: ctx.requestId },
        actorOf(mustHavePrincipal(ctx)),
      ),
      ctx.deps.clock.now(),
    ),
  );
  return { body: summary };
}

export { refuseSecondSession, safeText } from './session-check.js';
