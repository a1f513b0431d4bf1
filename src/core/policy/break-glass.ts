/**
 * Break-glass decisions, pure: may this person start one, may that person confirm it, may a third
 * review it. Two people at least, three for the review; people are compared by (iss, sub), never by
 * email, so a second account with the same address is still the same person only if the IdP says so.
 */
import { type AccessVerdict, decideTargetAccess, type Subject, type TargetRequirement } from './decide.js';
import { matchesPattern } from './roles.js';
import type { Policy, Role } from './types.js';

/** What an on-call engineer asks for: emergency write access to one tenant environment. */
export interface BreakGlassAsk {
  tenant: string;
  environment: string;
  /** Seconds. */
  ttl: number;
}

/** Allowed (with the granting role) or refused naming the rule. */
export type BreakGlassVerdict =
  | { allowed: true; role: Role }
  | { allowed: false; rule: string; message: string };

const covers = (role: Role, ask: Omit<BreakGlassAsk, 'ttl'>): boolean =>
  role.tenants.some((p) => matchesPattern(p, ask.tenant)) &&
  role.environments.some((p) => matchesPattern(p, ask.environment));

/** May someone holding `roles` start break-glass on `ask`? Tenant, environment, role, TTL — in that order. */
export function decideBreakGlass(
  policy: Policy,
  roles: readonly Role[],
  ask: BreakGlassAsk,
): BreakGlassVerdict {
  const tenant = policy.tenants.find((t) => t.id === ask.tenant);
  if (!tenant)
    return { allowed: false, rule: 'tenant.unknown', message: `There is no tenant "${ask.tenant}".` };
  if (!Object.hasOwn(tenant.upstream, ask.environment)) {
    return {
      allowed: false,
      rule: 'tenant.environment',
      message: `Tenant ${tenant.id} has no environment "${ask.environment}" (it has: ${Object.keys(tenant.upstream).join(', ')}).`,
    };
  }
  const role = roles.find((r) => r.breakGlass && covers(r, ask));
  if (!role) {
    return {
      allowed: false,
      rule: 'role.break_glass',
      message: `None of your roles may start break-glass on ${ask.tenant}/${ask.environment}.`,
    };
  }
  if (!Number.isInteger(ask.ttl) || ask.ttl <= 0 || ask.ttl > policy.breakGlass.maxTtl) {
    return {
      allowed: false,
      rule: 'break_glass.max_ttl',
      message: `A break-glass session lasts at most ${policy.breakGlass.maxTtl}s (asked: ${ask.ttl}s).`,
    };
  }
  return { allowed: true, role };
}

/** What confirming (and looking at) a break-glass request demands: a second person who may confirm there. */
export const BREAK_GLASS_CONFIRM: TargetRequirement = {
  capability: 'breakGlassConfirm',
  notSelf: ['requester'],
};

/** What reviewing a break-glass session demands: a reviewer who neither asked for nor confirmed it. */
export const BREAK_GLASS_REVIEW: TargetRequirement = {
  capability: 'review',
  notSelf: ['requester', 'confirmer'],
};

/** May `confirmer` (with roles) confirm the break-glass request of `requester`? */
export function decideBreakGlassConfirm(
  roles: readonly Role[],
  confirmer: Subject,
  requester: Subject,
  ask: Omit<BreakGlassAsk, 'ttl'>,
): BreakGlassVerdict {
  const target = { ...ask, scope: 'write', mode: 'break_glass', requester, confirmer: null } as const;
  return withRole(decideTargetAccess(roles, confirmer, target, BREAK_GLASS_CONFIRM));
}

/** May `reviewer` record the review of a break-glass session? Neither the requester nor the confirmer may. */
export function decideBreakGlassReview(
  roles: readonly Role[],
  reviewer: Subject,
  requester: Subject,
  confirmer: Subject | null,
): BreakGlassVerdict {
  // Reviewing is granted across tenants, so where the session ran does not enter the decision.
  const target = {
    tenant: '',
    environment: '',
    scope: 'write',
    mode: 'break_glass',
    requester,
    confirmer,
  } as const;
  return withRole(decideTargetAccess(roles, reviewer, target, BREAK_GLASS_REVIEW));
}

function withRole(verdict: AccessVerdict): BreakGlassVerdict {
  return verdict.allowed ? { allowed: true, role: verdict.role! } : verdict;
}
