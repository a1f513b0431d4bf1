/**
 * Route guards: who may call what. Authentication reads the broker token; role guards name the
 * rule that denied; fresh-login demands a recent `auth_time` (RFC 9470 step-up). Denials are
 * audited before they are answered.
 */
import { AuthRequiredError, ForbiddenError, StepUpRequiredError } from '../core/errors.js';
import { rolesForGroups } from '../core/policy/roles.js';
import type { Role } from '../core/policy/types.js';
import { actorOf, type BrokerDeps, type HandlerContext, type Principal } from './context.js';
import { verifyLoginToken } from './login-tokens.js';

/** Reads `Authorization: Bearer <broker token>` into a principal, or throws 401. */
export async function authenticate(
  deps: BrokerDeps,
  authorization: string | string[] | undefined,
): Promise<Principal> {
  const header = Array.isArray(authorization) ? authorization[0] : authorization;
  const match = header ? /^Bearer ([A-Za-z0-9_\-.]{10,8192})$/.exec(header) : null;
  if (!match) throw new AuthRequiredError('Not logged in: this request needs a broker token. Run: imp login');
  const claims = await verifyLoginToken(deps.keys, deps.issuer, match[1]!, deps.clock);
  const login = await deps.store.transaction(async (tx) => tx.getLogin(claims.loginId));
  if (!login || login.sub !== claims.sub)
    throw new AuthRequiredError('This login is no longer valid. Run: imp login');
  // A machine holds no role, whatever groups it could claim: its rights are its `machines:` entry.
  const machine = claims.machine ?? null;
  return { ...claims, machine, roles: machine ? [] : rolesForGroups(deps.policy, claims.groups) };
}

/** A named capability a role grants. */
export type Capability = 'audit' | 'approve' | 'review' | 'revoke' | 'breakGlass' | 'breakGlassConfirm';

/** Throws 403 (audited as access.denied) unless one of the principal's roles grants `capability`. */
export async function requireCapability(
  ctx: HandlerContext,
  capability: Capability,
  action: string,
): Promise<Role[]> {
  const principal = mustHavePrincipal(ctx);
  const granting = principal.roles.filter((role) => role[capability]);
  if (granting.length > 0) return granting;
  const rule = `role.${capability}`;
  await ctx.deps.store.transaction((tx) =>
    tx.appendAudit(
      { type: 'access.denied', actor: actorOf(principal), data: { action, rule, request_id: ctx.requestId } },
      ctx.deps.clock.now(),
    ),
  );
  throw new ForbiddenError(
    `Denied by rule ${rule}: none of your roles (${principal.roles.map((r) => r.name).join(', ') || 'none'}) may ${action}.`,
    rule,
  );
}

/** Throws RFC 9470 step-up when the login is older than maxAge seconds (with a small leeway for clock skew). */
export function requireFreshLogin(
  deps: BrokerDeps,
  principal: Principal,
  maxAgeSeconds = deps.policy.reauth.maxAge,
): void {
  const ageSeconds = deps.clock.now() / 1000 - principal.authTime;
  if (ageSeconds > maxAgeSeconds)
    throw new StepUpRequiredError(
      maxAgeSeconds,
      `Your login is ${Math.round(ageSeconds)} s old; this needs one from the last ${maxAgeSeconds} s. Log in again.`,
    );
}

/** The principal of an authenticated route. */
export function mustHavePrincipal(ctx: HandlerContext): Principal {
  if (!ctx.principal) throw new AuthRequiredError();
  return ctx.principal;
}
