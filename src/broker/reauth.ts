/**
 * The one re-authentication guard. Every operation that needs a fresh re-authentication (open a
 * session, approve, deny, break-glass request / confirm / review, revoke, passkey changes) calls
 * `requireReauth` last, after every other check, so a request refused anyway never asks anyone to
 * authenticate. What it demands follows `reauth.method`:
 *   idp          the IdP's auth_time within max_age (and, per session, a login not used before);
 *                this only trusts what the IdP claims.
 *   passkey      a user-verified WebAuthn assertion, verified by the broker, made for this exact
 *                operation (the client names the ceremony in the `Imp-Step-Up` header), used once.
 *   idp+passkey  both.
 * Either way a missing proof is answered with RFC 9470's challenge (`acr_values` names the method).
 */
import type { AuditDraft } from '../core/audit/event.js';
import { StepUpRequiredError } from '../core/errors.js';
import { type ReauthMethod, usesIdp, usesPasskey } from '../core/policy/types.js';
import { actorOf, type HandlerContext, type Principal } from './context.js';
import { refuse } from './guards.js';
import { bindingOf, challengeInfo, type Operation, openCeremony } from './passkeys.js';

/** The request header that names a verified passkey ceremony. */
export const STEP_UP_HEADER = 'imp-step-up';

/** How a re-authentication was proven, as the audit records it. */
export interface ReauthProof {
  method: ReauthMethod | 'none';
  /** When: the passkey assertion's verification, or the auth_time the IdP claimed (ISO 8601). */
  at: string;
  /** The passkey credential id, or null when only the IdP's claim stands behind it. */
  credential: string | null;
}

/** What a guarded operation tells the guard. */
export interface ReauthRequest {
  /** The operation, exactly: an assertion made for it opens nothing else. */
  operation: Operation;
  /** What the ceremony page shows ("alice → acme/prod WRITE, ticket SUP-1, 30m"). */
  description: string;
  /** The audit fields of the operation (tenant, session, ticket …) for stepup.* events. */
  audited: Omit<AuditDraft, 'type' | 'data'>;
  /** Also demand an IdP login never used for a session before (policy reauth.per_session). */
  perSession?: boolean;
  /** Override the IdP freshness window (seconds). */
  maxAge?: number;
  /** The action as audit events name it (`approve`, `confirm` …); default: the operation's `op`. */
  action?: string;
  /** Demand this instead of the policy's method (passkey changes always need a passkey; `none`: nothing). */
  method?: ReauthMethod | 'none';
}

/** Demands the policy's re-authentication for one operation; returns how it was proven. */
export async function requireReauth(
  ctx: HandlerContext,
  principal: Principal,
  request: ReauthRequest,
): Promise<ReauthProof> {
  const method = request.method ?? ctx.deps.policy.reauth.method;
  if (method === 'none')
    return { method: 'none', at: new Date(ctx.deps.clock.now()).toISOString(), credential: null };
  if (usesIdp(method)) await requireIdpLogin(ctx, principal, request);
  if (!usesPasskey(method))
    return { method, at: new Date(principal.authTime * 1000).toISOString(), credential: null };
  const proof = await requirePasskey(ctx, principal, request);
  return { method, ...proof };
}

/**
 * For operations that never needed a fresh IdP login (deny, revoke: stopping something should not
 * wait for the IdP): the passkey part of the policy's method only, or nothing at all.
 */
export function passkeyPart(method: ReauthMethod): ReauthMethod | 'none' {
  return usesPasskey(method) ? 'passkey' : 'none';
}

async function audit(
  ctx: HandlerContext,
  principal: Principal,
  request: ReauthRequest,
  type: string,
  data: object,
) {
  await ctx.deps.store.transaction((tx) =>
    tx.appendAudit(
      {
        ...request.audited,
        actor: actorOf(principal),
        type,
        data: { action: request.action ?? request.operation.op, ...data },
      },
      ctx.deps.clock.now(),
    ),
  );
}

async function requireIdpLogin(
  ctx: HandlerContext,
  principal: Principal,
  request: ReauthRequest,
): Promise<void> {
  const { deps } = ctx;
  const maxAge = request.maxAge ?? deps.policy.reauth.maxAge;
  const age = deps.clock.now() / 1000 - principal.authTime;
  let why: 'stale' | 'login_already_used' | null = null;
  let challengeMaxAge = maxAge;
  if (age > maxAge) why = 'stale';
  else if (request.perSession && deps.policy.reauth.perSession) {
    const lastUsed = await deps.store.lastUsedAuthTime(principal.iss, principal.sub);
    if (lastUsed !== null && lastUsed >= principal.authTime) {
      why = 'login_already_used';
      challengeMaxAge = 1; // the IdP should ask again now: the smallest max_age IdPs honour
    }
  }
  if (!why) return;
  await audit(ctx, principal, request, 'stepup.required', {
    method: 'idp',
    why,
    login_age_seconds: Math.round(age),
    max_age: challengeMaxAge,
  });
  throw new StepUpRequiredError(
    challengeMaxAge,
    why === 'stale'
      ? `Your login is ${Math.round(age)} s old; this needs one from the last ${maxAge} s.`
      : 'Each session needs a login of its own; log in again.',
  );
}

type Refusal = 'unknown' | 'other_person' | 'not_verified' | 'replayed' | 'operation_mismatch' | 'expired';

async function requirePasskey(
  ctx: HandlerContext,
  principal: Principal,
  request: ReauthRequest,
): Promise<Omit<ReauthProof, 'method'>> {
  const { deps } = ctx;
  const now = deps.clock.now();
  const passkeys = await deps.store.listPasskeys(principal.iss, principal.sub);
  if (passkeys.length === 0) {
    const rule = 'reauth.passkey_enrolment';
    return refuse(ctx, {
      rule,
      message: `Denied by rule ${rule}: this broker needs a passkey to confirm it is you, and you have none yet. Enrol one (it needs a fresh login): imp passkey add`,
      about: { ...request.audited, actor: actorOf(principal) },
      data: { action: request.action ?? request.operation.op },
    });
  }
  const binding = bindingOf(principal, request.operation);
  const presented = headerValue(ctx.headers[STEP_UP_HEADER]);
  let refused: Refusal | null = null;
  if (presented) {
    const outcome = await deps.store.transaction(async (tx) => {
      const c = await tx.getCeremony(presented);
      let why: Refusal | null = null;
      if (c?.kind !== 'assert') why = 'unknown';
      else if (c.iss !== principal.iss || c.sub !== principal.sub) why = 'other_person';
      else if (c.state === 'used') why = 'replayed';
      else if (c.state !== 'verified') why = 'not_verified';
      else if (c.binding !== binding) why = 'operation_mismatch';
      else if (c.expiresAt <= now) why = 'expired';
      else if (!(await tx.updateCeremony(c.id, 'verified', { state: 'used' }))) why = 'replayed';
      return why === null && c ? { ok: c, why: null } : { ok: null, why: why ?? 'unknown' };
    });
    if (outcome.ok)
      return {
        at: new Date(outcome.ok.verifiedAt ?? now).toISOString(),
        credential: outcome.ok.credentialId,
      };
    refused = outcome.why;
    await audit(ctx, principal, request, 'stepup.refused', {
      method: 'passkey',
      rule: `reauth.passkey.${refused}`,
      ceremony: presented,
    });
  }
  const ceremony = await deps.store.transaction(async (tx) => {
    const opened = await openCeremony(tx, deps, principal, 'assert', request.operation, request.description);
    await tx.appendAudit(
      {
        ...request.audited,
        actor: actorOf(principal),
        type: 'stepup.required',
        data: {
          action: request.action ?? request.operation.op,
          method: 'passkey',
          ceremony: opened.id,
          binding,
        },
      },
      now,
    );
    return opened;
  });
  const why = refused ? `The passkey confirmation you sent was refused (${refused}). ` : '';
  throw new StepUpRequiredError(
    deps.policy.reauth.maxAge,
    `${why}Confirm this with your passkey: open ${challengeInfo(deps, ceremony).verification_uri_complete} and check it shows the code ${ceremony.userCode}.`,
    { method: 'passkey', passkey: challengeInfo(deps, ceremony) },
  );
}

function headerValue(value: string | string[] | undefined): string | null {
  const one = Array.isArray(value) ? value[0] : value;
  return one && /^[0-9a-f-]{36}$/.test(one) ? one : null;
}
