/**
 * Policy decisions, pure: could this person open this session, may this person approve that
 * request. Every "no" names the rule that said it, so the denial, the audit event and
 * `imp policy explain` all agree.
 */
import { formatDuration } from '../duration.js';
import { hasControlCharacters } from '../escape.js';
import { matchesPattern } from './roles.js';
import type { Policy, Role, Scope } from './types.js';

/** What someone asks for. */
export interface SessionAsk {
  tenant: string;
  environment: string;
  scope: Scope;
  /** Seconds. */
  ttl: number;
}

/** The outcome of a decision. */
export type Decision =
  | { outcome: 'allow' | 'approval'; rule: string; message: string; roles: Role[]; maxTtl: number }
  | { outcome: 'deny'; rule: string; message: string };

/** Checks ticket and reason against the policy; returns the rule broken, or null. */
export function checkTicketAndReason(
  policy: Policy,
  ticket: unknown,
  reason: unknown,
): { rule: string; message: string } | null {
  if (typeof ticket !== 'string' || ticket.length === 0)
    return { rule: 'ticket.required', message: 'A ticket id is required.' };
  if (
    ticket.length > 64 ||
    hasControlCharacters(ticket) ||
    !new RegExp(policy.tickets.pattern, 'u').test(ticket)
  ) {
    return {
      rule: 'ticket.pattern',
      message: `The ticket id does not match the required pattern ${policy.tickets.pattern}.`,
    };
  }
  if (typeof reason !== 'string') return { rule: 'reason.required', message: 'A reason is required.' };
  if (hasControlCharacters(reason))
    return { rule: 'reason.control_characters', message: 'The reason must not contain control characters.' };
  const length = [...reason.trim()].length;
  if (length < policy.reason.minLength) {
    return {
      rule: 'reason.min_length',
      message: `The reason must be at least ${policy.reason.minLength} characters (say what you will do and why).`,
    };
  }
  if (length > policy.reason.maxLength)
    return {
      rule: 'reason.max_length',
      message: `The reason must be at most ${policy.reason.maxLength} characters.`,
    };
  return null;
}

/** Decides a session request for someone holding `roles`. Deny wins; approval where the tenant demands it. */
export function decideSession(policy: Policy, roles: readonly Role[], ask: SessionAsk): Decision {
  const tenant = policy.tenants.find((t) => t.id === ask.tenant);
  if (!tenant)
    return { outcome: 'deny', rule: 'tenant.unknown', message: `There is no tenant "${ask.tenant}".` };
  if (!Object.hasOwn(tenant.upstream, ask.environment)) {
    return {
      outcome: 'deny',
      rule: 'tenant.environment',
      message: `Tenant ${tenant.id} has no environment "${ask.environment}" (it has: ${Object.keys(tenant.upstream).join(', ')}).`,
    };
  }
  if (roles.length === 0)
    return {
      outcome: 'deny',
      rule: 'role.none',
      message: 'You hold no role in the policy, so you may not open sessions.',
    };
  const forTenant = roles.filter(
    (role) =>
      role.tenants.some((p) => matchesPattern(p, ask.tenant)) &&
      role.environments.some((p) => matchesPattern(p, ask.environment)),
  );
  if (forTenant.length === 0) {
    return {
      outcome: 'deny',
      rule: 'role.tenant',
      message: `None of your roles covers tenant ${ask.tenant} in ${ask.environment}.`,
    };
  }
  const granting = forTenant.filter((role) => role.scopes.includes(ask.scope));
  if (granting.length === 0) {
    return {
      outcome: 'deny',
      rule: 'role.scope',
      message: `None of your roles allows ${ask.scope} sessions on ${ask.tenant}/${ask.environment}.`,
    };
  }
  // The most generous granting role sets the ceiling; never more than any role that grants this.
  const maxTtl = Math.max(...granting.map((role) => role.maxTtl));
  if (!Number.isInteger(ask.ttl) || ask.ttl <= 0)
    return {
      outcome: 'deny',
      rule: 'ttl.invalid',
      message: 'The time limit must be a positive number of seconds.',
    };
  if (ask.ttl > maxTtl) {
    return {
      outcome: 'deny',
      rule: 'ttl.max',
      message: `The time limit ${formatDuration(ask.ttl)} is over the maximum of ${formatDuration(maxTtl)} your roles allow on ${ask.tenant}/${ask.environment}.`,
    };
  }
  if (tenant.approvalRequired.includes(ask.scope)) {
    return {
      outcome: 'approval',
      rule: 'tenant.approval_required',
      message: `${ask.scope} sessions on ${tenant.id} need a second person's approval.`,
      roles: granting,
      maxTtl,
    };
  }
  return {
    outcome: 'allow',
    rule: `role.${granting[0]!.name}`,
    message: `Allowed by role ${granting[0]!.name}.`,
    roles: granting,
    maxTtl,
  };
}

/** Who is asking, compared by (iss, sub), never by email. */
export interface Subject {
  iss: string;
  sub: string;
}

/** True when two subjects are the same person. */
export function sameSubject(a: Subject, b: Subject): boolean {
  return a.iss === b.iss && a.sub === b.sub;
}

/** May `approver` (with roles) approve the request of `requester` for `ask`? */
export function decideApproval(
  roles: readonly Role[],
  approver: Subject,
  requester: Subject,
  ask: Omit<SessionAsk, 'ttl'>,
): { allowed: true; role: Role } | { allowed: false; rule: string; message: string } {
  if (sameSubject(approver, requester))
    return {
      allowed: false,
      rule: 'approval.self',
      message: 'You cannot approve your own request: a second person must.',
    };
  const role = roles.find(
    (r) =>
      r.approve &&
      r.tenants.some((p) => matchesPattern(p, ask.tenant)) &&
      r.environments.some((p) => matchesPattern(p, ask.environment)) &&
      r.scopes.includes(ask.scope),
  );
  if (!role) {
    return {
      allowed: false,
      rule: 'role.approve',
      message: `None of your roles may approve ${ask.scope} sessions on ${ask.tenant}/${ask.environment}.`,
    };
  }
  return { allowed: true, role };
}
