/**
 * POST /v1/sessions/check: the checks of opening a session, without opening one and without a fresh
 * login — refusals name their rule and are audited (marked `check`), nothing is created.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
beforeAll(async () => {
  t = await startTestBroker();
});
afterAll(async () => {
  await t?.close();
});

const ask = (overrides: Record<string, unknown> = {}) => ({
  tenant: 'globex',
  environment: 'prod',
  scope: 'read',
  ticket: 'SUP-101',
  reason: 'Customer cannot see their invoices',
  ...overrides,
});
type Check = { decision: string; rule: string; ttl: number; max_ttl: number };
type ErrorBody = { error: { code: string; message: string; details?: { rule?: string } } };

describe('POST /v1/sessions/check', () => {
  it('answers the decision and the time limit, even with an old login, and opens nothing', async () => {
    const token = await t.loginAs('alice', { authAgeSeconds: 3600 });
    const read = await t.call<Check>('POST', '/v1/sessions/check', token, ask());
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ decision: 'allow', ttl: 1800, max_ttl: 3600 });
    const write = await t.call<Check>(
      'POST',
      '/v1/sessions/check',
      token,
      ask({ tenant: 'acme', scope: 'write' }),
    );
    expect(write.body).toMatchObject({ decision: 'approval', rule: 'tenant.approval_required' });
    expect(await t.store.listSessions({ requesterSub: 'user-alice' })).toEqual([]);
  });

  it.each([
    [
      'a time limit over the maximum',
      { ttl: 5 * 3600 },
      403,
      'ttl.max',
      'The time limit 5h is over the maximum of 1h',
    ],
    ['an unknown tenant', { tenant: 'nope' }, 403, 'tenant.unknown', 'There is no tenant "nope"'],
    ['an unknown environment', { environment: 'qa' }, 403, 'tenant.environment', 'no environment "qa"'],
    ['a bad ticket', { ticket: 'nope' }, 400, 'ticket.pattern', 'ticket'],
  ])(
    'refuses %s naming the rule, audited as session.refused (check)',
    async (_name, overrides, status, rule, text) => {
      const token = await t.loginAs('alice');
      const refused = await t.call<ErrorBody>('POST', '/v1/sessions/check', token, ask(overrides));
      expect(refused.status).toBe(status);
      expect(refused.body.error.details?.rule).toBe(rule);
      expect(refused.body.error.message).toContain(text);
      const event = (await t.store.readAudit({ type: 'session.refused' })).at(-1);
      expect(event).toMatchObject({ actor: { sub: 'user-alice' }, data: { rule, check: true } });
    },
  );

  it('needs a broker token', async () => {
    expect((await t.call('POST', '/v1/sessions/check', null, ask())).status).toBe(401);
  });
});

describe('the requester sees who decided', () => {
  it('a revoked session names who revoked it and why; an approved one who approved it and the comment', async () => {
    t.clock.advance(1100);
    const alice = await t.loginAs('alice');
    const opened = await t.call<{ session: { id: string } }>(
      'POST',
      '/v1/sessions',
      alice,
      ask({ tenant: 'acme', scope: 'write' }),
    );
    expect(opened.status).toBe(202);
    const id = opened.body.session.id;
    const bob = await t.loginAs('bob');
    expect(
      (await t.call('POST', `/v1/requests/${id}/approve`, bob, { comment: 'fine for SUP-101' })).status,
    ).toBe(200);
    const approved = await t.call<{ session: Record<string, unknown> }>('GET', `/v1/sessions/${id}`, alice);
    expect(approved.body.session).toMatchObject({
      state: 'active',
      decided_by: { email: 'bob@example.test' },
      decision_comment: 'fine for SUP-101',
    });
    const erin = await t.loginAs('erin');
    expect(
      (await t.call('POST', `/v1/sessions/${id}/revoke`, erin, { reason: 'Ticket was closed' })).status,
    ).toBe(200);
    const revoked = await t.call<{ session: Record<string, unknown> }>('GET', `/v1/sessions/${id}`, alice);
    expect(revoked.body.session).toMatchObject({
      state: 'revoked',
      ended_by: { email: 'erin@example.test' },
      decision_comment: 'Ticket was closed',
    });
  });
});
