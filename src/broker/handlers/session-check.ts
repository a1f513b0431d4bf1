/**
 * The checks before a session opens — input → policy → conflicts — shared by POST /v1/sessions and
 * its dry run POST /v1/sessions/check, which lets the CLI refuse bad input before the banner.
 */
import { ConflictError, InvalidInputError, PolicyDeniedError } from '../../core/errors.js';
import { checkTicketAndReason, decideSession } from '../../core/policy/decide.js';
import { actorOf, type HandlerContext, type HandlerResult, type Principal } from '../context.js';
import { mustHavePrincipal } from '../guards.js';

const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** What a session request asks for, checked: input, policy and conflicts (no fresh login yet). */
export interface CheckedAsk {
  ask: { tenant: string; environment: string; scope: 'read' | 'write'; ttl: number };
  ticket: string;
  reason: string;
  audited: Record<string, unknown>;
  decision: Exclude<ReturnType<typeof decideSession>, { outcome: 'deny' }>;
}

/**
 * Input → policy → conflicts for POST /v1/sessions and its dry run; each refusal audited as
 * session.refused naming its rule (`check: true` when only checking).
 */
export async function checkSessionAsk(
  ctx: HandlerContext,
  principal: Principal,
  check: boolean,
): Promise<CheckedAsk> {
  const { deps } = ctx;
  const { policy } = deps;
  const body = (ctx.body ?? {}) as Record<string, unknown>;
  const now = deps.clock.now();
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
  if (inputProblem) {
    await deps.store.transaction((tx) =>
      tx.appendAudit(
        {
          ...base,
          type: 'session.refused',
          ticket: safeText(body.ticket),
          reason: safeText(body.reason),
          data: { rule: inputProblem.rule, scope, ...flag },
        },
        now,
      ),
    );
    throw new InvalidInputError(`Refused by rule ${inputProblem.rule}: ${inputProblem.message}`, {
      rule: inputProblem.rule,
    });
  }
  const ticket = body.ticket as string;
  const reason = (body.reason as string).trim();
  const audited = { ...base, ticket, reason };

  const decision = decideSession(policy, principal.roles, ask);
  if (decision.outcome === 'deny') {
    await deps.store.transaction((tx) =>
      tx.appendAudit(
        { ...audited, type: 'session.refused', data: { rule: decision.rule, scope, ttl, ...flag } },
        now,
      ),
    );
    throw new PolicyDeniedError(decision.rule, `Denied by rule ${decision.rule}: ${decision.message}`);
  }

  const open = await deps.store.listSessions({
    requesterIss: principal.iss,
    requesterSub: principal.sub,
    tenant: ask.tenant,
    states: ['active', 'pending'],
  });
  const conflicting = open.find((s) => s.state === 'pending' || (s.expiresAt ?? 0) > now);
  if (conflicting) {
    await deps.store.transaction((tx) =>
      tx.appendAudit(
        {
          ...audited,
          type: 'session.refused',
          data: { rule: 'session.one_active', existing: conflicting.id, ...flag },
        },
        now,
      ),
    );
    throw new ConflictError(
      `Refused by rule session.one_active: you already have a ${conflicting.state} session on ${ask.tenant} (${conflicting.id}). End it first: imp end ${conflicting.id}`,
      {
        rule: 'session.one_active',
        session: conflicting.id,
      },
    );
  }
  return { ask, ticket, reason, audited, decision };
}

/**
 * POST /v1/sessions/check — the same checks as opening, without opening or asking for a fresh
 * login, so the CLI can refuse bad input before it shows the banner. 200 with the decision.
 */
export async function checkSession(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { ask, decision } = await checkSessionAsk(ctx, principal, true);
  return {
    body: {
      decision: decision.outcome,
      rule: decision.rule,
      message: decision.message,
      ttl: ask.ttl,
      max_ttl: decision.maxTtl,
    },
  };
}

/** Untrusted text as it may be audited: strings only, bounded. */
export function safeText(value: unknown): string | null {
  return typeof value === 'string' ? value.slice(0, 600) : null;
}
