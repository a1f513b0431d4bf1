/** Identity routes: what the CLI needs to log in, the login exchange itself, and whoami. */
import { createHash, randomUUID } from 'node:crypto';
import type { VerifiedIdentity } from '../../auth/id-token.js';
import type { BrokerConfig, LoginResponse, WhoamiResponse } from '../../core/api.js';
import { AuthFailedError, ImpError, InvalidInputError } from '../../core/errors.js';
import { rolesForGroups } from '../../core/policy/roles.js';
import type { HandlerContext, HandlerResult } from '../context.js';
import { mustHavePrincipal } from '../guards.js';
import { issueLoginToken } from '../login-tokens.js';

/** GET /v1/config — public: the IdP to log in with and the input rules to check locally. */
export async function getConfig(ctx: HandlerContext): Promise<HandlerResult> {
  const { policy } = ctx.deps;
  const body: BrokerConfig = {
    issuer: policy.identity.issuer,
    client_id: policy.identity.clientId,
    reauth_max_age: policy.reauth.maxAge,
    per_session_login: policy.reauth.perSession,
    reauth_method: policy.reauth.method,
    ticket_pattern: policy.tickets.pattern,
    reason_min_length: policy.reason.minLength,
    reason_max_length: policy.reason.maxLength,
    default_ttl: policy.sessions.defaultTtl,
    break_glass: { confirm_window: policy.breakGlass.confirmWindow, max_ttl: policy.breakGlass.maxTtl },
  };
  return { body };
}

/** GET /.well-known/jwks.json — the public keys of session tokens and audit checkpoints. */
export async function getJwks(ctx: HandlerContext): Promise<HandlerResult> {
  return {
    body: ctx.deps.keys.jwks(ctx.deps.clock.now()),
    headers: { 'cache-control': 'public, max-age=300' },
  };
}

/** GET /healthz — the store answers. */
export async function getHealth(ctx: HandlerContext): Promise<HandlerResult> {
  await ctx.deps.store.ping();
  return { body: { ok: true } };
}

/** POST /v1/login — exchanges a verified ID token for a short-lived broker token; every outcome is audited. */
export async function postLogin(ctx: HandlerContext): Promise<HandlerResult> {
  const idToken = (ctx.body as { id_token?: unknown } | null)?.id_token;
  if (typeof idToken !== 'string' || idToken === '')
    throw new InvalidInputError('Send {"id_token": "<the ID token from your identity provider>"}.');
  return { status: 200, body: await exchangeIdToken(ctx, idToken, ctx.deps.verifyIdToken) };
}

/**
 * The login exchange itself, shared by POST /v1/login (the CLI's client id) and the web console's
 * callback (its own client id, so `verify` checks that audience): one ID token buys one broker token,
 * every outcome audited.
 */
export async function exchangeIdToken(
  ctx: HandlerContext,
  idToken: string,
  verify: (idToken: string) => Promise<VerifiedIdentity>,
): Promise<LoginResponse> {
  const { deps } = ctx;
  // Replays are keyed on the signed part (header.payload): decoders ignore base64url's spare bits and
  // ECDSA accepts (r, n - s), so one ID token has several valid spellings of its signature.
  const tokenHash = createHash('sha256').update(idToken.split('.').slice(0, 2).join('.')).digest('hex');
  const now = deps.clock.now();
  let identity: VerifiedIdentity;
  try {
    identity = await verify(idToken);
    checkAssurance(ctx, identity);
  } catch (error) {
    const reason = error instanceof ImpError ? String(error.details.reason ?? error.code) : 'invalid';
    const draft = {
      type: 'auth.login_refused',
      data: { reason, token_sha256: tokenHash, ip: ctx.ip, request_id: ctx.requestId },
    };
    // Anyone can send junk here: repeats from one address are folded into one counted event.
    if (deps.refusals) await deps.refusals.record(draft, { ip: ctx.ip, reason });
    else await deps.store.transaction((tx) => tx.appendAudit(draft, now));
    throw error;
  }
  const roles = rolesForGroups(deps.policy, identity.groups);
  const loginId = randomUUID();
  const expiresAt = Math.floor(now / 1000) + deps.policy.login.tokenTtl;
  const actor = {
    iss: identity.iss,
    sub: identity.sub,
    email: identity.email,
    roles: roles.map((r) => r.name),
  };
  await deps.store
    .transaction(async (tx) => {
      // A given ID token buys one broker token: a replayed one is refused (and the refusal audited).
      // The key lock holds the check until commit, so a replay racing on another replica is refused too.
      await tx.lockKey(`id-token\u0000${tokenHash}`);
      if (await tx.findLoginByTokenHash(tokenHash)) {
        await tx.appendAudit(
          {
            type: 'auth.login_refused',
            actor,
            data: { reason: 'replayed_id_token', ip: ctx.ip, request_id: ctx.requestId },
          },
          now,
        );
        return 'replayed';
      }
      await tx.insertLogin({
        id: loginId,
        iss: identity.iss,
        sub: identity.sub,
        email: identity.email,
        authTime: identity.authTime,
        createdAt: now,
        expiresAt: expiresAt * 1000,
        idTokenHash: tokenHash,
        groups: identity.groups,
      });
      await tx.appendAudit(
        {
          type: 'auth.login',
          actor,
          data: {
            login_id: loginId,
            // What the IdP claimed, kept as its claim: the broker cannot tell whether a password
            // was typed (many IdPs re-issue auth_time or amr without asking on the device grant).
            idp_claims: { auth_time: identity.authTime, amr: identity.amr, acr: identity.acr },
            groups: identity.groups,
            ip: ctx.ip,
          },
        },
        now,
      );
      return 'ok';
    })
    .then((outcome) => {
      if (outcome === 'replayed')
        throw new AuthFailedError('This ID token was already exchanged; log in again.', {
          details: { reason: 'replayed_id_token' },
        });
    });
  const token = await issueLoginToken(
    deps.keys,
    deps.issuer,
    {
      loginId,
      iss: identity.iss,
      sub: identity.sub,
      email: identity.email,
      name: identity.name,
      groups: identity.groups,
      person: identity.person,
      authTime: identity.authTime,
      expiresAt,
    },
    now,
  );
  const body: LoginResponse = {
    token,
    expires_at: new Date(expiresAt * 1000).toISOString(),
    auth_time: identity.authTime,
    user: {
      iss: identity.iss,
      sub: identity.sub,
      email: identity.email,
      name: identity.name,
      groups: identity.groups,
      roles: roles.map((r) => r.name),
    },
  };
  return body;
}

/** GET /v1/whoami. */
export async function getWhoami(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const body: WhoamiResponse = {
    user: {
      iss: principal.iss,
      sub: principal.sub,
      email: principal.email,
      name: principal.name,
      groups: principal.groups,
      roles: principal.roles.map((r) => r.name),
    },
    auth_time: principal.authTime,
    login_age_seconds: Math.max(0, Math.floor(ctx.deps.clock.now() / 1000 - principal.authTime)),
    expires_at: new Date(principal.expiresAt * 1000).toISOString(),
  };
  return { body };
}

// Where the policy demands authentication methods or levels the IdP reports (amr/acr), enforce them.
function checkAssurance(ctx: HandlerContext, identity: VerifiedIdentity): void {
  const { requireAmr, requireAcr } = ctx.deps.policy.identity;
  const missing = requireAmr.filter((method) => !identity.amr.includes(method));
  if (missing.length > 0)
    throw new AuthFailedError(`The login did not use the required method(s): ${missing.join(', ')}.`, {
      details: { reason: 'amr' },
    });
  if (requireAcr.length > 0 && (!identity.acr || !requireAcr.includes(identity.acr))) {
    throw new AuthFailedError(`The login's assurance level (acr) is not one of: ${requireAcr.join(', ')}.`, {
      details: { reason: 'acr' },
    });
  }
}

/** GET /v1/tenants — ids, names and environments, for prompts and shell completion. */
export async function getTenants(ctx: HandlerContext): Promise<HandlerResult> {
  mustHavePrincipal(ctx);
  return {
    body: {
      tenants: ctx.deps.policy.tenants.map((t) => ({
        id: t.id,
        name: t.name,
        environments: Object.keys(t.upstream),
      })),
    },
  };
}
