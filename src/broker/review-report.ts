/**
 * The access review (`imp review`), computed from the store and the audit log: who opened which
 * sessions, the write and break-glass ones, refusals and step-ups, break-glass sessions still
 * waiting for their review, alerts that never arrived, and people whose groups grant a role they
 * did not use in the period (candidates to remove). Pure apart from its inputs.
 */
import type { ReportPerson, ReviewReport, ReviewSessionLine } from '../core/api.js';
import type { AuditEvent } from '../core/audit/event.js';
import { machineNameOf, machineRole } from '../core/policy/machines.js';
import { matchesPattern, rolesForGroups } from '../core/policy/roles.js';
import type { Policy, Role } from '../core/policy/types.js';
import type { LoginRecord, SessionRecord } from '../store/types.js';
import { sessionView } from './sessions.js';

/** Everything the report is computed from. */
export interface ReviewInput {
  policy: Policy;
  issuer: string;
  /** ms */
  now: number;
  /** Start of the period, ms. */
  since: number;
  /** Every session (awaiting-review looks past the period). */
  sessions: SessionRecord[];
  /** Audit events of the period. */
  events: AuditEvent[];
  /** The newest login of each person. */
  logins: LoginRecord[];
  /** A machine identity with no session in this many days is flagged unused. */
  unusedDays: number;
}

const DENIALS = new Set([
  'session.refused',
  'session.denied',
  'breakglass.refused',
  'access.denied',
  'action.denied',
]);
const STEP_UPS = new Set(['stepup.required', 'auth.login_refused']);

type Subject = { iss: string | null; sub: string };
const keyOf = (s: Subject) => `${s.iss ?? ''}\u0000${s.sub}`;
const personOf = (s: { sub: string; email: string | null }): ReportPerson => ({ sub: s.sub, email: s.email });
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** One session as a report line. */
export function reportLine(session: SessionRecord): ReviewSessionLine {
  return {
    id: session.id,
    mode: session.mode,
    state: session.state,
    requester: personOf(session.requester),
    decided_by: session.decidedBy ? personOf(session.decidedBy) : null,
    tenant: session.tenant,
    environment: session.environment,
    scope: session.scope,
    ticket: session.ticket,
    reason: session.reason,
    created_at: new Date(session.createdAt).toISOString(),
    started_at: iso(session.startedAt),
    ended_at: iso(session.endedAt),
    review: sessionView(session).review ?? null,
  };
}

/** Computes the report. */
export function buildReviewReport(input: ReviewInput): ReviewReport {
  const { since } = input;
  const started = input.sessions.filter((s) => s.startedAt !== null && s.startedAt >= since);
  const byPerson = new Map<string, ReviewReport['by_person'][number]>();
  const byTenant = new Map<string, ReviewReport['by_tenant'][number]>();
  for (const s of started) {
    const person = byPerson.get(keyOf(s.requester)) ?? {
      person: personOf(s.requester),
      sessions: 0,
      write: 0,
      break_glass: 0,
    };
    const tenant = byTenant.get(s.tenant) ?? { tenant: s.tenant, sessions: 0, write: 0, break_glass: 0 };
    for (const row of [person, tenant]) {
      row.sessions++;
      if (s.scope === 'write') row.write++;
      if (s.mode === 'break_glass') row.break_glass++;
    }
    byPerson.set(keyOf(s.requester), person);
    byTenant.set(s.tenant, tenant);
  }

  const denials: ReviewReport['denials'] = [];
  const stepUps: ReviewReport['step_ups'] = [];
  const alertFailures: ReviewReport['alert_failures'] = [];
  for (const event of input.events) {
    const data = event.data as Record<string, unknown>;
    const person = event.actor ? personOf(event.actor) : null;
    if (DENIALS.has(event.type)) {
      denials.push({
        ts: event.ts,
        type: event.type,
        person,
        tenant: event.tenant,
        session: event.session,
        rule: typeof data.rule === 'string' ? data.rule : event.type === 'session.denied' ? 'approver' : null,
      });
    } else if (STEP_UPS.has(event.type)) {
      const why = data.why ?? data.reason;
      stepUps.push({ ts: event.ts, type: event.type, person, why: typeof why === 'string' ? why : null });
    } else if (event.type === 'alert.failed') {
      alertFailures.push({
        ts: event.ts,
        session: event.session,
        url: String(data.url ?? ''),
        attempts: Number(data.attempts ?? 0),
        error: String(data.error ?? ''),
      });
    } else if (event.type === 'notify.failed') {
      // A notification nobody received is as much a gap as a lost alert; named by its channel, never a URL.
      alertFailures.push({
        ts: event.ts,
        session: event.session,
        url: `channel:${String(data.channel ?? '?')} (${String(data.kind ?? '?')})`,
        attempts: Number(data.attempts ?? 0),
        error: String(data.error ?? ''),
      });
    }
  }

  const breakGlass = input.sessions.filter((s) => s.mode === 'break_glass' && s.createdAt >= since);
  const awaiting = input.sessions.filter(
    (s) => s.mode === 'break_glass' && s.reviewRequired && !s.review && s.startedAt !== null,
  );
  const byCount = (a: { sessions: number }, b: { sessions: number }) => b.sessions - a.sessions;
  return {
    generated_at: new Date(input.now).toISOString(),
    since: new Date(since).toISOString(),
    broker: input.issuer,
    totals: {
      sessions: started.length,
      write: started.filter((s) => s.scope === 'write').length,
      break_glass: started.filter((s) => s.mode === 'break_glass').length,
      denials: denials.length,
      step_ups: stepUps.length,
      alert_failures: alertFailures.length,
    },
    by_person: [...byPerson.values()].sort(byCount),
    by_tenant: [...byTenant.values()].sort(byCount),
    write_sessions: started.filter((s) => s.scope === 'write' && s.mode === 'standard').map(reportLine),
    break_glass_sessions: breakGlass.map(reportLine),
    awaiting_review: awaiting.map(reportLine),
    denials,
    step_ups: stepUps,
    alert_failures: alertFailures,
    unused_roles: unusedRoles(input),
    machines: machineUse(input),
    unused_days: input.unusedDays,
  };
}

// Machine identities, reviewed like people: what they did in the period, and those that have not
// opened a session for `unusedDays` (looked up over every session, not just the period's).
function machineUse(input: ReviewInput): ReviewReport['machines'] {
  const unusedSince = input.now - input.unusedDays * 86400 * 1000;
  return input.policy.machines.map((machine) => {
    const role = machineRole(machine.name);
    const sessions = input.sessions.filter(
      (s) => s.startedAt !== null && machineNameOf(s.requester.roles) === machine.name,
    );
    const last = Math.max(-1, ...sessions.map((s) => s.startedAt!));
    return {
      name: machine.name,
      issuer: machine.issuer,
      subject: machine.subject,
      sessions: sessions.filter((s) => s.startedAt! >= input.since).length,
      denials: input.events.filter(
        (e) => (DENIALS.has(e.type) || e.type === 'auth.machine_refused') && e.actor?.roles.includes(role),
      ).length,
      last_used: last < 0 ? null : new Date(last).toISOString(),
      unused: last < unusedSince,
    };
  });
}

/** What each person did in the period, as far as role use goes. */
interface Usage {
  sessions: SessionRecord[];
  events: Set<string>;
}

// Which audit events show a capability in use.
const CAPABILITY_EVENTS: [keyof Role, string[]][] = [
  ['approve', ['session.approved', 'session.denied']],
  ['breakGlassConfirm', ['breakglass.confirmed']],
  ['audit', ['audit.read', 'audit.export', 'audit.checkpoint']],
  ['review', ['breakglass.reviewed', 'audit.read']],
  ['revoke', ['session.revoked']],
  ['supervise', ['sessions.read']],
];

function unusedRoles(input: ReviewInput): ReviewReport['unused_roles'] {
  const usage = new Map<string, Usage>();
  const usageOf = (s: Subject) => {
    const found = usage.get(keyOf(s)) ?? { sessions: [], events: new Set<string>() };
    usage.set(keyOf(s), found);
    return found;
  };
  for (const s of input.sessions) if (s.createdAt >= input.since) usageOf(s.requester).sessions.push(s);
  for (const e of input.events) if (e.actor) usageOf(e.actor).events.add(e.type);

  const unused: ReviewReport['unused_roles'] = [];
  for (const login of input.logins) {
    const used = usage.get(keyOf(login)) ?? { sessions: [], events: new Set<string>() };
    for (const role of rolesForGroups(input.policy, login.groups)) {
      if (roleUsed(role, used)) continue;
      unused.push({
        person: personOf(login),
        role: role.name,
        groups: role.groups.filter((g) => login.groups.includes(g)),
        last_login: new Date(login.createdAt).toISOString(),
      });
    }
  }
  return unused;
}

function roleUsed(role: Role, used: Usage): boolean {
  const covers = (s: SessionRecord) =>
    role.tenants.some((p) => matchesPattern(p, s.tenant)) &&
    role.environments.some((p) => matchesPattern(p, s.environment));
  for (const s of used.sessions) {
    if (s.mode === 'standard' && role.scopes.includes(s.scope) && covers(s)) return true;
    if (s.mode === 'break_glass' && role.breakGlass && covers(s)) return true;
  }
  return CAPABILITY_EVENTS.some(
    ([capability, types]) => role[capability] === true && types.some((t) => used.events.has(t)),
  );
}
