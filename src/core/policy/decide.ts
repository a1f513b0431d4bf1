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
  return checkReason(policy, reason);
}

/** Checks the reason alone against the policy; returns the rule broken, or null. */
export function checkReason(policy: Policy, reason: unknown): { rule: string; message: string } | null {
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

/** Who is asking, compared by (iss, sub), never by email; `person` is policy identity.person_claim. */
export interface Subject {
  iss: string;
  sub: string;
  person?: string | null | undefined;
}

/** True when two subjects are the same account. */
export function sameSubject(a: Subject, b: Subject): boolean {
  return a.iss === b.iss && a.sub === b.sub;
}

/**
 * True when two subjects may be the same person: the same account, or two accounts carrying the
 * same person claim (one person with an admin and a normal IdP account). Used wherever a second
 * person is required; ownership stays per account.
 */
export function samePerson(a: Subject, b: Subject): boolean {
  return sameSubject(a, b) || (!!a.person && !!b.person && a.person === b.person);
}

/** A capability a role grants (the policy's approve, break_glass, … keys). */
export type Capability =
  | 'audit'
  | 'approve'
  | 'review'
  | 'revoke'
  | 'supervise'
  | 'breakGlass'
  | 'breakGlassConfirm'
  | 'passkeyReset';

/** The rule that names a missing capability: `role.<policy key>`. */
export const CAPABILITY_RULES: Readonly<Record<Capability, string>> = {
  audit: 'role.audit',
  approve: 'role.approve',
  review: 'role.review',
  revoke: 'role.revoke',
  supervise: 'role.supervise',
  breakGlass: 'role.break_glass',
  breakGlassConfirm: 'role.break_glass_confirm',
  passkeyReset: 'role.passkey_reset',
};

/** The people on a session or request whom a guard can exclude from acting on it. */
export type TargetPerson = 'requester' | 'confirmer';

/** What a route demands of its caller towards the session or request it acts on (the route table's fields). */
export interface TargetRequirement {
  /** A role with this capability; approve and break-glass capabilities must also cover the target. */
  capability?: Capability;
  /** These people may not act on it (four eyes, and a third pair for reviews). */
  notSelf?: readonly TargetPerson[];
  /** Only its requester may act on it. */
  owner?: boolean;
}

/** A session or request as access decisions see it. */
export interface AccessTarget extends Omit<SessionAsk, 'ttl'> {
  /** Its id, where a message should name it. */
  id?: string;
  mode: 'standard' | 'break_glass';
  requester: Subject;
  /** Who approved or confirmed it, once someone has. */
  confirmer: Subject | null;
}

/** Allowed (with the granting role, where a capability was asked for) or refused naming the rule. */
export type AccessVerdict =
  | { allowed: true; role: Role | null }
  | { allowed: false; rule: string; message: string };

// The four-eyes rules, named after what the excluded person tried to do.
const SELF_RULES: Partial<Record<Capability, { rule: string; message: string }>> = {
  approve: { rule: 'approval.self', message: 'You cannot approve your own request: a second person must.' },
  breakGlassConfirm: {
    rule: 'break_glass.self',
    message: 'You cannot confirm your own break-glass request: a second person must.',
  },
  supervise: {
    rule: 'supervision.self',
    message: 'You cannot supervise your own session: another person must.',
  },
  review: {
    rule: 'break_glass.review_self',
    message:
      'The people who asked for or confirmed a break-glass session cannot review it: a third person must.',
  },
};

const CAPABILITY_WORDS: Record<Capability, (t: AccessTarget) => string> = {
  audit: () => 'read the audit log',
  approve: (t) => `approve ${t.scope} sessions on ${t.tenant}/${t.environment}`,
  review: () => 'review break-glass sessions',
  revoke: () => 'revoke sessions',
  supervise: () => 'supervise sessions',
  breakGlass: (t) => `start break-glass on ${t.tenant}/${t.environment}`,
  breakGlassConfirm: (t) => `confirm break-glass on ${t.tenant}/${t.environment}`,
  passkeyReset: () => "reset other people's passkeys",
};

/**
 * May `caller` act on `target` as a route demands? In order: ownership, the approval route's
 * standard-requests-only rule, not-self, then a role whose capability covers the target.
 */
export function decideTargetAccess(
  roles: readonly Role[],
  caller: Subject,
  target: AccessTarget,
  requirement: TargetRequirement,
): AccessVerdict {
  if (requirement.owner && !sameSubject(caller, target.requester))
    return {
      allowed: false,
      rule: 'session.owner',
      message: 'Only the person who opened a session can end it (security staff can revoke it).',
    };
  const { capability } = requirement;
  // An approver must not be able to open (or quietly deny) a break-glass request: that takes a confirmer.
  if (capability === 'approve' && target.mode === 'break_glass')
    return {
      allowed: false,
      rule: 'break_glass.confirm_only',
      message: `This is a break-glass request: a second on-call person confirms it with imp break-glass confirm ${target.id ?? '<id>'}.`,
    };
  const excluded = (requirement.notSelf ?? []).some((person) => {
    const subject = person === 'requester' ? target.requester : target.confirmer;
    return subject !== null && samePerson(caller, subject);
  });
  if (excluded) {
    const named = capability ? SELF_RULES[capability] : undefined;
    return {
      allowed: false,
      rule: named?.rule ?? 'access.self',
      message: named?.message ?? 'You cannot do this to your own session: another person must.',
    };
  }
  if (!capability) return { allowed: true, role: null };
  const role = roles.find((r) => r[capability] && covers(r, capability, target));
  if (!role)
    return {
      allowed: false,
      rule: CAPABILITY_RULES[capability],
      message: `None of your roles may ${CAPABILITY_WORDS[capability](target)}.`,
    };
  return { allowed: true, role };
}

// Approving and break-glass are granted per tenant and environment (approving per scope too);
// auditing, reviewing and revoking span every tenant.
function covers(role: Role, capability: Capability, target: AccessTarget): boolean {
  if (capability !== 'approve' && capability !== 'breakGlass' && capability !== 'breakGlassConfirm')
    return true;
  return (
    role.tenants.some((p) => matchesPattern(p, target.tenant)) &&
    role.environments.some((p) => matchesPattern(p, target.environment)) &&
    (capability !== 'approve' || role.scopes.includes(target.scope))
  );
}

/** What POST /v1/requests/:id/approve and /deny demand: an approver covering the request, never its requester. */
export const APPROVAL: TargetRequirement = { capability: 'approve', notSelf: ['requester'] };

/**
 * The one approval decision: may `approver` (with roles) approve the request of `requester`?
 * Break-glass requests are never approved here (a confirmer opens them); never one's own request.
 */
export function decideApproval(
  roles: readonly Role[],
  approver: Subject,
  requester: Subject,
  ask: Omit<SessionAsk, 'ttl'> & { mode?: 'standard' | 'break_glass' },
): { allowed: true; role: Role } | { allowed: false; rule: string; message: string } {
  const verdict = decideTargetAccess(
    roles,
    approver,
    { ...ask, mode: ask.mode ?? 'standard', requester, confirmer: null },
    APPROVAL,
  );
  return verdict.allowed ? { allowed: true, role: verdict.role! } : verdict;
}
