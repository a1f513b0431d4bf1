/**
 * What a queued notification says and to whom, gathered at delivery from the audit event it
 * announces and that event's session (read back from the store, so a restart loses nothing).
 *
 * People's addresses: the policy's people directory (by subject or by claimed e-mail) first, then —
 * unless `people.email_claim: false` — the e-mail claim the IdP sent at the person's latest login.
 * That claim is the IdP's word, not an address the broker verified. Approvers, confirmers, reviewers
 * and auditors are found among people who have logged in to this broker, by the groups of their
 * latest login (someone who never logged in is reached only through a channel's `to:` list).
 */
import type { AuditEvent } from '../../core/audit/event.js';
import { consoleLink } from '../../core/links.js';
import { AUDIENCES, type Audience, type NotificationKind } from '../../core/notify/kinds.js';
import type { NotificationFacts } from '../../core/notify/message.js';
import { decideTargetAccess, samePerson, type TargetRequirement } from '../../core/policy/decide.js';
import { rolesForGroups } from '../../core/policy/roles.js';
import { shortId } from '../../core/short-id.js';
import type { SessionRecord } from '../../store/types.js';
import type { BrokerDeps } from '../context.js';

const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);
const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);

/** The facts of a notification of `kind` about `event` (and its session, when it has one). */
export function gatherFacts(
  deps: Pick<BrokerDeps, 'policy' | 'issuer'>,
  kind: NotificationKind,
  event: AuditEvent,
  session: SessionRecord | null,
): NotificationFacts {
  const short = session ? shortId(session.id) : null;
  const base = deps.policy.notifications.consoleUrl ?? deps.issuer;
  const requestKind = kind === 'request.pending' || kind === 'breakglass.pending';
  const tenant = session?.tenant ?? event.tenant;
  return {
    kind,
    eventId: event.id,
    at: event.ts,
    actor: event.actor ? (event.actor.email ?? event.actor.sub) : null,
    requester: session ? (session.requester.email ?? session.requester.sub) : null,
    tenant,
    tenantName: deps.policy.tenants.find((t) => t.id === tenant)?.name ?? null,
    environment: session?.environment ?? event.environment,
    scope: session?.scope ?? null,
    mode: session?.mode ?? null,
    ticket: session?.ticket ?? event.ticket,
    reason: session?.reason ?? event.reason,
    sessionId: session?.id ?? null,
    shortId: short,
    minutes: session ? Math.round(session.ttl / 60) : null,
    until: requestKind ? iso(session?.requestExpiresAt) : iso(session?.expiresAt),
    detail: detailOf(kind, event),
    command: commandFor(kind, short),
    link: session ? consoleLink(base, requestKind ? 'request' : 'session', session.id) : null,
  };
}

function detailOf(kind: NotificationKind, event: AuditEvent): string | null {
  const data = event.data;
  switch (kind) {
    case 'request.approved':
      return text(data.comment);
    case 'request.denied':
      return text(data.denial_reason);
    case 'session.revoked':
      return text(data.revoke_reason) ?? '(no reason given)';
    case 'breakglass.reviewed':
      return `${text(data.outcome) ?? '?'}${text(data.notes) ? `: ${data.notes}` : ''}`;
    case 'audit.alarm':
      return event.type === 'audit.witness_unreachable'
        ? `witness ${text(data.witness_name) ?? '?'} (${text(data.witness) ?? '?'}) is unreachable`
        : `witness ${text(data.witness_name) ?? '?'} (${text(data.witness) ?? '?'}) refused checkpoint ${String(data.size ?? '?')}: ${text(data.why) ?? `HTTP ${String(data.status ?? '?')}`}`;
    default:
      return null;
  }
}

function commandFor(kind: NotificationKind, short: string | null): string | null {
  if (kind === 'audit.alarm') return 'imp audit verify';
  if (!short) return null;
  if (kind === 'request.pending') return `imp approve ${short}`;
  if (kind === 'breakglass.pending') return `imp break-glass confirm ${short}`;
  if (kind === 'breakglass.started') return `imp break-glass review ${short}`;
  return null;
}

type Person = { iss: string; sub: string; email: string | null };

/** The addresses of the people a kind concerns (deduplicated; unknown addresses are skipped). */
export async function peopleAddresses(
  deps: Pick<BrokerDeps, 'policy' | 'store'>,
  kind: NotificationKind,
  session: SessionRecord | null,
): Promise<string[]> {
  const { people } = deps.policy.notifications;
  const addressOf = (p: Person | null | undefined) =>
    p
      ? (people.directory[p.sub] ??
        (p.email ? people.directory[p.email] : undefined) ??
        (people.emailClaim ? p.email : null))
      : null;
  const found = new Set<string>();
  const audiences = AUDIENCES[kind];
  const byRole = audiences.filter(
    (a): a is Exclude<Audience, 'requester' | 'confirmer'> => a !== 'requester' && a !== 'confirmer',
  );
  if (byRole.length > 0) {
    for (const login of await deps.store.listLatestLogins()) {
      const roles = rolesForGroups(deps.policy, login.groups);
      if (byRole.some((audience) => mayBeTold(audience, roles, login, session))) {
        const address = addressOf(login);
        if (address) found.add(address);
      }
    }
  }
  if (audiences.includes('requester')) {
    const address = addressOf(session?.requester);
    if (address) found.add(address);
  }
  if (audiences.includes('confirmer') && session?.mode === 'break_glass') {
    const address = addressOf(session.decidedBy);
    if (address) found.add(address);
  }
  return [...found];
}

const REQUIREMENTS: Record<'approvers' | 'confirmers' | 'reviewers', TargetRequirement> = {
  approvers: { capability: 'approve', notSelf: ['requester'] },
  confirmers: { capability: 'breakGlassConfirm', notSelf: ['requester'] },
  reviewers: { capability: 'review', notSelf: ['requester', 'confirmer'] },
};

function mayBeTold(
  audience: Exclude<Audience, 'requester' | 'confirmer'>,
  roles: ReturnType<typeof rolesForGroups>,
  person: Person,
  session: SessionRecord | null,
): boolean {
  if (audience === 'auditors') return roles.some((role) => role.audit);
  if (!session || samePerson(person, session.requester)) return false;
  const target = { ...session, confirmer: session.decidedBy };
  return decideTargetAccess(roles, person, target, REQUIREMENTS[audience]).allowed;
}
