/**
 * Break-glass decisions, pure: may this person start one, may that person confirm it, may a third
 * review it. Two people at least, three for the review; people are compared by (iss, sub), never by
 * email, so a second account with the same address is still the same person only if the IdP says so.
 */
import { type Subject, samePerson } from './decide.js';
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

/** May `confirmer` (with roles) confirm the break-glass request of `requester`? */
export function decideBreakGlassConfirm(
  roles: readonly Role[],
  confirmer: Subject,
  requester: Subject,
  ask: Omit<BreakGlassAsk, 'ttl'>,
): BreakGlassVerdict {
  if (samePerson(confirmer, requester)) {
    return {
      allowed: false,
      rule: 'break_glass.self',
      message: 'You cannot confirm your own break-glass request: a second person must.',
    };
  }
  const role = roles.find((r) => r.breakGlassConfirm && covers(r, ask));
  if (!role) {
    return {
      allowed: false,
      rule: 'role.break_glass_confirm',
      message: `None of your roles may confirm break-glass on ${ask.tenant}/${ask.environment}.`,
    };
  }
  return { allowed: true, role };
}

/** May `reviewer` record the review of a break-glass session? Neither the requester nor the confirmer may. */
export function decideBreakGlassReview(
  roles: readonly Role[],
  reviewer: Subject,
  requester: Subject,
  confirmer: Subject | null,
): BreakGlassVerdict {
  if (samePerson(reviewer, requester) || (confirmer && samePerson(reviewer, confirmer))) {
    return {
      allowed: false,
      rule: 'break_glass.review_self',
      message:
        'The people who asked for or confirmed a break-glass session cannot review it: a third person must.',
    };
  }
  const role = roles.find((r) => r.review);
  if (!role)
    return {
      allowed: false,
      rule: 'role.review',
      message: 'None of your roles may review break-glass sessions.',
    };
  return { allowed: true, role };
}
