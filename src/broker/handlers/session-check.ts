/**
 * The checks before a session opens — input → policy → conflicts — shared by POST /v1/sessions and
 * its dry run POST /v1/sessions/check, which lets the CLI refuse bad input before its banner.
 */
import type { AuditDraft } from '../../core/audit/event.js';
import { ConflictError, InvalidInputError } from '../../core/errors.js';
import { boundedEscape } from '../../core/escape.js';
import { checkTicketAndReason, decideSession } from '../../core/policy/decide.js';
import { actorOf, type HandlerContext, type HandlerResult, type Principal } from '../context.js';
import { mustHavePrincipal, refuse } from '../guards.js';
import { checkTicket, type TicketCheckResult } from '../tickets/check.js';

const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** What a session request asks for, after input, policy and conflicts were checked. */
export interface CheckedAsk {
  ask: { tenant: string; environment: string; scope: 'read' | 'write'; ttl: number };
  ticket: string;
  reason: string;
  audited: Omit<AuditDraft, 'type' | 'data'> & { tenant: string };
  decision: Exclude<ReturnType<typeof decideSession>, { outcome: 'deny' }>;
  /** What the ticket system said (policy tickets.system), for the request's events and answer. */
  ticketCheck: TicketCheckResult;
}

/**
 * Input → policy → conflicts, for POST /v1/sessions and its dry run POST /v1/sessions/check; each
 * refusal audited as session.refused naming its rule (`check: true` in its data when only checking).
 * The ticket system (policy tickets.system) is asked last, so bad input never reaches it.
 */
export async function checkSessionAsk(ctx: HandlerContext, check: boolean): Promise<CheckedAsk> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const { policy } = deps;
  const body = (ctx.body ?? {}) as Record<string, unknown>;
  const environment = body.environment ?? 'prod';
  const scope = body.scope ?? 'read';
  const ttl = body.ttl ?? policy.sessions.defaultTtl;
  if (typeof body.tenant !== 'string' || !ID_PATTERN.test(body.tenant))
    throw new InvalidInputError('tenant must be a tenant id (lowercase letters, digits, dashes).');
  if (typeof environment !== 'string' || !ID_PATTERN.test(environment))
    throw new InvalidInputError('environment must be an environment name such as prod.');
  if (scope !== 'read' && scope !== 'write') throw new InvalidInputError('scope must be "read" or "write".');
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl <= 0 || ttl > 7 * 86400)
    throw new InvalidInputError('ttl must be a whole number of seconds.');
  const ask = { tenant: body.tenant, environment, scope, ttl } as const;
  const base = { tenant: ask.tenant, environment: ask.environment, actor: actorOf(principal) };
  const flag = check ? { check: true } : {};

  const inputProblem = checkTicketAndReason(policy, body.ticket, body.reason);
  if (inputProblem)
    return refuse(ctx, {
      rule: inputProblem.rule,
      message: `Refused by rule ${inputProblem.rule}: ${inputProblem.message}`,
      as: 'invalid',
      event: 'session.refused',
      about: { ...base, ticket: safeText(body.ticket, 128), reason: safeText(body.reason) },
      data: { scope, ...flag },
    });
  const ticket = body.ticket as string;
  const reason = (body.reason as string).trim();
  const audited = { ...base, ticket, reason };

  const decision = decideSession(policy, principal.roles, ask);
  if (decision.outcome === 'deny')
    return refuse(ctx, {
      rule: decision.rule,
      message: `Denied by rule ${decision.rule}: ${decision.message}`,
      as: 'policy',
      event: 'session.refused',
      about: audited,
      data: { scope, ttl, ...flag },
    });

  await refuseSecondSession(ctx, principal, audited, 'session.refused', flag);
  const ticketCheck = await checkTicket(ctx, {
    ticket,
    tenant: ask.tenant,
    breakGlass: false,
    event: 'session.refused',
    about: audited,
    data: { scope, ...flag },
  });
  return { ask, ticket, reason, audited, decision, ticketCheck };
}

/**
 * POST /v1/sessions/check — the same checks as opening, without opening or asking for a fresh
 * login, so the CLI refuses bad input before its banner promises anything. 200 with the decision.
 */
export async function checkSession(ctx: HandlerContext): Promise<HandlerResult> {
  const { ask, decision, ticketCheck } = await checkSessionAsk(ctx, true);
  return {
    body: {
      ...(ticketCheck.warning ? { ticket_warning: ticketCheck.warning } : {}),
      decision: decision.outcome,
      rule: decision.rule,
      message: decision.message,
      ttl: ask.ttl,
      max_ttl: decision.maxTtl,
    },
  };
}

/** Refuses (and audits) a second active or pending session of the caller on the same tenant. */
export async function refuseSecondSession(
  ctx: HandlerContext,
  principal: Principal,
  about: Omit<AuditDraft, 'type' | 'data'> & { tenant: string },
  event: 'session.refused' | 'breakglass.refused',
  extra: Record<string, unknown> = {},
): Promise<void> {
  const now = ctx.deps.clock.now();
  const open = await ctx.deps.store.listSessions({
    requesterIss: principal.iss,
    requesterSub: principal.sub,
    tenant: about.tenant,
    states: ['active', 'pending'],
  });
  const conflicting = open.find((s) => s.state === 'pending' || (s.expiresAt ?? 0) > now);
  if (conflicting)
    await refuse(ctx, {
      rule: 'session.one_active',
      message: `Refused by rule session.one_active: you already have a ${conflicting.state} session on ${about.tenant} (${conflicting.id}). End it first: imp end ${conflicting.id}`,
      as: 'conflict',
      event,
      about,
      data: { existing: conflicting.id, ...extra },
      details: { session: conflicting.id },
    });
}

/**
 * Runs `work` (the transaction that inserts a new session) and audits the refusal its in-transaction
 * re-check of session.one_active makes when this request raced another past refuseSecondSession:
 * that refusal was thrown inside the rolled-back transaction, so nothing of it was written yet.
 */
export async function auditedRaceRefusal<T>(
  ctx: HandlerContext,
  about: Omit<AuditDraft, 'type' | 'data'> & { tenant: string },
  event: 'session.refused' | 'breakglass.refused',
  work: () => Promise<T>,
  extra: Record<string, unknown> = {},
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof ConflictError) || error.details.rule !== 'session.one_active') throw error;
    return refuse(ctx, {
      rule: 'session.one_active',
      message: error.message,
      as: 'conflict',
      event,
      about,
      data: { existing: error.details.session, raced: true, ...extra },
      details: { session: error.details.session },
    });
  }
}

/**
 * Untrusted text as it may be kept (a refused request's ticket and reason, an id in a message):
 * strings only, escaped (controls, bidi and invisible characters made visible), bounded — the raw
 * text that was refused never reaches the log.
 */
export function safeText(value: unknown, max = 600): string | null {
  return typeof value === 'string' ? boundedEscape(value, max) : null;
}
