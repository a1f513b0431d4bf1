/** The access review's chart aggregates: weeks, approval waits and write time from session rows. */
import { describe, expect, it } from 'vitest';
import { median, reviewCharts, weekOf } from '../../src/broker/review-charts.js';
import type { SessionRecord } from '../../src/store/types.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const H = 3600_000;
const person = (name: string) => ({ iss: 'https://idp', sub: `user-${name}`, email: `${name}@example.test` });

function session(over: Partial<SessionRecord>): SessionRecord {
  return {
    id: `s-${Math.random()}`,
    state: 'ended',
    mode: 'standard',
    requester: { ...person('alice'), roles: ['support'] },
    tenant: 'acme',
    environment: 'prod',
    scope: 'read',
    ticket: 'SUP-1',
    reason: 'a reason long enough',
    ttl: 3600,
    loginId: 'l',
    authTime: T0,
    createdAt: T0,
    requestExpiresAt: null,
    decidedBy: null,
    decidedAt: null,
    decisionComment: null,
    startedAt: T0,
    expiresAt: T0 + H,
    endedAt: T0 + H,
    endedBy: null,
    reviewRequired: false,
    ...over,
  };
}

describe('review charts', () => {
  it('weeks start on Monday (UTC)', () => {
    expect(weekOf(Date.parse('2026-11-29T23:59:59Z'))).toBe('2026-11-23'); // a Sunday
    expect(weekOf(Date.parse('2026-11-30T00:00:00Z'))).toBe('2026-11-30'); // a Monday
    expect(weekOf(Date.parse('1970-01-01T00:00:00Z'))).toBe('1969-12-29');
  });

  it('the median of odd and even lists', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('counts sessions per week, tenant and scope; approvals with the median wait; write time, live ones up to now', () => {
    const now = T0 + 10 * 24 * H;
    const sessions = [
      session({ scope: 'write', startedAt: T0, endedAt: T0 + 2 * H, expiresAt: T0 + 3 * H }),
      session({
        scope: 'write',
        startedAt: T0 + 8 * 24 * H,
        endedAt: null,
        state: 'active',
        expiresAt: now + H,
      }),
      session({ tenant: 'globex', startedAt: T0 + H }),
      // Approved by bob after 60 s and 180 s and 600 s: median 180 s.
      ...[60, 180, 600].map((wait) =>
        session({ decidedBy: person('bob'), createdAt: T0, decidedAt: T0 + wait * 1000 }),
      ),
      // A denial is not an approval; a session before the period counts nowhere.
      session({ state: 'denied', startedAt: null, decidedBy: person('carol'), decidedAt: T0 + 1000 }),
      session({
        scope: 'write',
        createdAt: T0 - 40 * 24 * H,
        startedAt: T0 - 40 * 24 * H,
        decidedBy: person('carol'),
        decidedAt: T0 - 40 * 24 * H,
      }),
    ];
    const charts = reviewCharts(sessions, T0 - 24 * H, now);
    expect(charts.weekly).toEqual([
      { week: '2026-10-26', tenant: 'acme', scope: 'read', sessions: 3 },
      { week: '2026-10-26', tenant: 'acme', scope: 'write', sessions: 1 },
      { week: '2026-10-26', tenant: 'globex', scope: 'read', sessions: 1 },
      { week: '2026-11-09', tenant: 'acme', scope: 'write', sessions: 1 },
    ]);
    expect(charts.approvals).toEqual([
      { approver: { sub: 'user-bob', email: 'bob@example.test' }, approvals: 3, median_wait_seconds: 180 },
    ]);
    // 2 h ended + 2 days live (up to now) = 50 h.
    expect(charts.write_time).toEqual([
      { person: { sub: 'user-alice', email: 'alice@example.test' }, seconds: 50 * 3600 },
    ]);
  });
});
