/**
 * Break-glass: on-call opens emergency write access without an approver, but never alone.
 *   POST /v1/break-glass               the requester (role break_glass): input → policy → conflicts → fresh, per-session login
 *   GET  /v1/break-glass/:id           what the confirmer is about to confirm (the same checks as confirming, minus the login)
 *   POST /v1/break-glass/:id/confirm   a different person (role break_glass_confirm) within the window, fresh login → session opens
 * (The third person's review, POST /v1/break-glass/:id/review, is in ./review.ts.)
 * A request is a session row with mode break_glass, pending until confirmed; the incident id is its
 * ticket. Every refusal is audited with its rule; alerts go out after the confirmation commits.
 */
import type { BreakGlassRequestView } from '../../core/api.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../../core/errors.js';
import { decideBreakGlass } from '../../core/policy/break-glass.js';
import { checkTicketAndReason } from '../../core/policy/decide.js';
import type { SessionRecord } from '../../store/types.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { mustHavePrincipal, refuse } from '../guards.js';
import { recordingFacts } from '../recording.js';
import {
  applyExpiry,
  decisionOperation,
  describeDecision,
  insertNewSession,
  loadSession,
  newSession,
  personOf,
  sessionAudit,
  sessionChanges,
  sessionView,
} from '../sessions.js';
import { resolveId } from '../short-ids.js';
import { checkTicket } from '../tickets/check.js';
import { auditedRaceRefusal } from './session-check.js';
import { describeSession, refuseSecondSession, safeText } from './sessions.js';

const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The request as the requester and the confirmer see it. */
function requestView(session: SessionRecord): BreakGlassRequestView {
  return { ...sessionView(session), confirm_by: new Date(session.requestExpiresAt ?? 0).toISOString() };
}

/** POST /v1/break-glass {tenant, environment, incident, reason, ttl?} — 202 pending confirmation. */
export async function postBreakGlass(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const { policy } = deps;
  const body = (ctx.body ?? {}) as Record<string, unknown>;
  const now = deps.clock.now();
  const environment = body.environment ?? 'prod';
  const ttl = body.ttl ?? Math.min(policy.sessions.defaultTtl, policy.breakGlass.maxTtl);
  if (typeof body.tenant !== 'string' || !ID_PATTERN.test(body.tenant))
    throw new InvalidInputError('tenant must be a tenant id (lowercase letters, digits, dashes).');
  if (typeof environment !== 'string' || !ID_PATTERN.test(environment))
    throw new InvalidInputError('environment must be an environment name such as prod.');
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl <= 0 || ttl > 7 * 86400)
    throw new InvalidInputError('ttl must be a whole number of seconds.');
  const base = { tenant: body.tenant, environment, actor: actorOf(principal) };
  const event = 'breakglass.refused';

  const inputProblem = checkTicketAndReason(policy, body.incident, body.reason);
  if (inputProblem) {
    const message = inputProblem.rule.startsWith('ticket.')
      ? `The incident id must match ${policy.tickets.pattern} (for example INC-123).`
      : inputProblem.message;
    return refuse(ctx, {
      rule: inputProblem.rule,
      message: `Refused by rule ${inputProblem.rule}: ${message}`,
      as: 'invalid',
      event,
      about: { ...base, ticket: safeText(body.incident, 128), reason: safeText(body.reason) },
    });
  }
  const incident = body.incident as string;
  const reason = (body.reason as string).trim();
  const audited = { ...base, ticket: incident, reason };

  const verdict = decideBreakGlass(policy, principal.roles, { tenant: body.tenant, environment, ttl });
  if (!verdict.allowed)
    return refuse(ctx, {
      rule: verdict.rule,
      message: `Denied by rule ${verdict.rule}: ${verdict.message}`,
      as: 'policy',
      event,
      about: audited,
      data: { ttl },
    });

  await refuseSecondSession(ctx, principal, audited, event);
  // The incident id, as the policy's tickets.system.break_glass says: checked, only warned about, or skipped.
  const ticketCheck = await checkTicket(ctx, {
    ticket: incident,
    tenant: body.tenant,
    breakGlass: true,
    event,
    about: audited,
    data: { ttl },
  });
  const reauth = await ctx.guard.freshLogin({
    operation: { op: 'breakglass.request', tenant: body.tenant, environment, incident, reason, ttl },
    description: `BREAK-GLASS ${describeSession(principal.email ?? principal.sub, { tenant: body.tenant, environment, scope: 'write', ttl }, incident)}`,
    about: audited,
  });

  const session = newSession(principal, now, {
    state: 'pending',
    mode: 'break_glass',
    tenant: body.tenant,
    environment,
    scope: 'write',
    ticket: incident,
    reason,
    ttl,
    requestExpiresAt: now + policy.breakGlass.confirmWindow * 1000,
    startedAt: null,
    expiresAt: null,
  });
  await auditedRaceRefusal(ctx, audited, event, () =>
    ctx.guard.commit(async (tx) => {
      await insertNewSession(tx, policy, principal, session);
      await tx.appendAudit(
        sessionAudit(session, 'breakglass.requested', {
          ttl,
          incident,
          rule: `role.${verdict.role.name}`,
          confirm_by: new Date(session.requestExpiresAt!).toISOString(),
          reauth,
          ...ticketCheck.audit,
        }),
        now,
      );
    }),
  );
  return {
    status: 202,
    body: {
      request: requestView(session),
      confirm_command: `imp break-glass confirm ${session.id}`,
      ...(ticketCheck.warning ? { ticket_warning: ticketCheck.warning } : {}),
    },
  };
}

/** Audits and throws a confirmation that came too late. */
function refuseLate(ctx: HandlerContext, session: SessionRecord): Promise<never> {
  const rule = 'break_glass.confirm_window';
  return refuse(ctx, {
    rule,
    message: `Refused by rule ${rule}: ${lateMessage(session)}`,
    as: 'policy',
    event: 'breakglass.refused',
    about: session,
    data: { action: 'confirm' },
  });
}

const lateMessage = (session: SessionRecord) =>
  `the request expired unconfirmed at ${new Date(session.requestExpiresAt ?? 0).toISOString()}; the requester must ask again.`;

/** Loads a pending break-glass request; the route's guards (a confirmer covering it, not its requester) decide on it. */
async function confirmable(ctx: HandlerContext): Promise<SessionRecord> {
  const id = await resolveId(ctx, {
    noun: 'break-glass request',
    verb: 'confirm',
    states: ['pending'],
    mode: 'break_glass',
  });
  const session = await loadSession(ctx.deps, id);
  if (session?.mode !== 'break_glass')
    throw new NotFoundError(`No break-glass request ${safeText(id)?.slice(0, 64)}.`);
  await ctx.guard.target(session);
  if (session.state === 'request_expired') return refuseLate(ctx, session);
  if (session.state !== 'pending')
    throw new ConflictError(
      `Break-glass request ${session.id} is no longer pending (it is ${session.state}).`,
      {
        state: session.state,
      },
    );
  return session;
}

/** GET /v1/break-glass/:id — for the confirmer: who asks, where, why; refused exactly as confirming would be. */
export async function getBreakGlass(ctx: HandlerContext): Promise<HandlerResult> {
  const session = await confirmable(ctx);
  // A confirmer reading the incident, reason and requester before deciding: recorded.
  await ctx.deps.store.transaction((tx) =>
    tx.appendAudit(
      sessionAudit(
        session,
        'breakglass.read',
        { request_id: ctx.requestId },
        actorOf(mustHavePrincipal(ctx)),
      ),
      ctx.deps.clock.now(),
    ),
  );
  return { body: { request: requestView(session) } };
}

/** POST /v1/break-glass/:id/confirm — opens the write session, marks it for review, fires the alerts. */
export async function confirmBreakGlass(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const session = await confirmable(ctx);
  const reauth = await ctx.guard.freshLogin({
    operation: decisionOperation('breakglass.confirm', session),
    description: describeDecision('Confirm BREAK-GLASS for', session),
  });
  const now = deps.clock.now();
  const changes = {
    state: 'active',
    decidedBy: personOf(principal),
    decidedAt: now,
    startedAt: now,
    expiresAt: now + session.ttl * 1000,
    reviewRequired: true,
  } as const;
  const outcome = await ctx.guard.commit(async (tx) => {
    const fresh = await tx.getSession(session.id);
    // The window is checked again at the moment of the write, not only when the request was loaded.
    if (fresh?.state === 'pending' && (fresh.requestExpiresAt ?? 0) <= now) {
      await applyExpiry(tx, fresh, now);
      return 'late' as const;
    }
    if (!(await tx.updateSession(session.id, 'pending', changes)))
      throw new ConflictError(
        `Break-glass request ${session.id} changed meanwhile (withdrawn or confirmed).`,
      );
    const confirmed = { ...session, ...changes };
    const expiresAt = new Date(changes.expiresAt).toISOString();
    await tx.appendAudit(
      sessionAudit(
        confirmed,
        'breakglass.confirmed',
        { requester: session.requester.email ?? session.requester.sub, expires_at: expiresAt, reauth },
        actorOf(principal),
      ),
      now,
    );
    await tx.appendAudit(
      sessionAudit(confirmed, 'session.started', {
        ttl: session.ttl,
        expires_at: expiresAt,
        confirmed_by: principal.email ?? principal.sub,
        review_required: true,
        reauth,
        ...recordingFacts(ctx.deps.policy, confirmed),
      }),
      now,
    );
    return confirmed;
  });
  if (outcome === 'late') return refuseLate(ctx, session);
  sessionChanges.emit(session.id);
  deps.alerts?.dispatch(outcome);
  return { body: { session: sessionView(outcome) } };
}
