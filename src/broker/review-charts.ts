/**
 * The access review's aggregates behind its charts (the console's Access review page, `imp review
 * --json`): sessions per week by tenant and scope, approvals by approver with the median wait, and
 * write time per person. Pure apart from its inputs.
 */
import type { ReportPerson, ReviewReport } from '../core/api.js';
import type { SessionRecord } from '../store/types.js';

const DAY = 86400 * 1000;
const keyOf = (s: { iss: string | null; sub: string }) => `${s.iss ?? ''}\u0000${s.sub}`;
const personOf = (s: { sub: string; email: string | null }): ReportPerson => ({ sub: s.sub, email: s.email });

/** The Monday (UTC) of the week holding `ms`, as YYYY-MM-DD. */
export function weekOf(ms: number): string {
  const day = Math.floor(ms / DAY);
  // 1970-01-01 was a Thursday: day 0 is 3 days after a Monday.
  const monday = day - ((day + 3) % 7);
  return new Date(monday * DAY).toISOString().slice(0, 10);
}

/** The median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The chart aggregates of sessions started (or, for approvals, decided) since `since`. */
export function reviewCharts(
  sessions: SessionRecord[],
  since: number,
  now: number,
): Pick<ReviewReport, 'weekly' | 'approvals' | 'write_time'> {
  const weekly = new Map<string, ReviewReport['weekly'][number]>();
  const writeTime = new Map<string, ReviewReport['write_time'][number]>();
  const waits = new Map<string, { approver: ReportPerson; waits: number[] }>();
  for (const s of sessions) {
    if (s.startedAt !== null && s.startedAt >= since) {
      const week = weekOf(s.startedAt);
      const key = `${week}\u0000${s.tenant}\u0000${s.scope}`;
      const row = weekly.get(key) ?? { week, tenant: s.tenant, scope: s.scope, sessions: 0 };
      row.sessions++;
      weekly.set(key, row);
      if (s.scope === 'write') {
        // A live session counts up to now; never past its expiry.
        const end = Math.min(s.endedAt ?? now, s.expiresAt ?? now, now);
        const person = writeTime.get(keyOf(s.requester)) ?? { person: personOf(s.requester), seconds: 0 };
        person.seconds += Math.max(0, Math.round((end - s.startedAt) / 1000));
        writeTime.set(keyOf(s.requester), person);
      }
    }
    if (s.mode === 'standard' && s.decidedBy && s.decidedAt !== null && s.decidedAt >= since) {
      if (s.state === 'denied') continue;
      const found = waits.get(keyOf(s.decidedBy)) ?? { approver: personOf(s.decidedBy), waits: [] };
      found.waits.push(Math.max(0, (s.decidedAt - s.createdAt) / 1000));
      waits.set(keyOf(s.decidedBy), found);
    }
  }
  return {
    weekly: [...weekly.values()].sort(
      (a, b) =>
        a.week.localeCompare(b.week) || a.tenant.localeCompare(b.tenant) || a.scope.localeCompare(b.scope),
    ),
    approvals: [...waits.values()]
      .map((a) => ({
        approver: a.approver,
        approvals: a.waits.length,
        median_wait_seconds: Math.round(median(a.waits)),
      }))
      .sort((a, b) => b.approvals - a.approvals),
    write_time: [...writeTime.values()].sort((a, b) => b.seconds - a.seconds),
  };
}
