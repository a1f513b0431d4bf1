/**
 * Sessions on the broker: the happy paths (read opens at once, write waits for a second person)
 * and every rule's refusal — each answered with the rule's name and each written to the audit log.
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
  ttl: 600,
  ...overrides,
});

type SessionBody = {
  session: { id: string; state: string; expires_at: string | null; scope: string };
  rule: string;
};
type ErrorBody = { error: { code: string; message: string; details?: { rule?: string } } };

async function lastEvent(type: string) {
  const events = await t.store.readAudit({ type });
  return events.at(-1);
}

/** A fresh login each time: per-session re-authentication needs a newer auth_time. */
async function freshLogin(user: string): Promise<string> {
  t.clock.advance(1100);
  return t.loginAs(user);
}

describe('opening sessions', () => {
  it('a read session on globex opens at once (201), audited as requested + started', async () => {
    const token = await freshLogin('alice');
    const answer = await t.call<SessionBody>('POST', '/v1/sessions', token, ask());
    expect(answer.status).toBe(201);
    expect(answer.body.session).toMatchObject({ state: 'active', scope: 'read' });
    const started = await lastEvent('session.started');
    expect(started).toMatchObject({
      session: answer.body.session.id,
      tenant: 'globex',
      ticket: 'SUP-101',
      actor: { sub: 'user-alice' },
    });
    // Ends by the owner; the session can't be ended twice.
    const end = await t.call('POST', `/v1/sessions/${answer.body.session.id}/end`, token);
    expect(end.status).toBe(200);
    const again = await t.call<ErrorBody>('POST', `/v1/sessions/${answer.body.session.id}/end`, token);
    expect(again.status).toBe(410);
    expect(again.body.error.code).toBe('IMP_SESSION_ENDED');
  });

  it('one login never opens two sessions: the second gets RFC 9470 step-up with max_age=1', async () => {
    const token = await freshLogin('alice');
    const first = await t.call<SessionBody>('POST', '/v1/sessions', token, ask({ tenant: 'initech' }));
    expect(first.status).toBe(201);
    const second = await t.call<ErrorBody>('POST', '/v1/sessions', token, ask({ tenant: 'globex' }));
    expect(second.status).toBe(401);
    expect(second.headers.get('www-authenticate')).toMatch(
      /error="insufficient_user_authentication".*max_age=1/,
    );
    expect(await lastEvent('stepup.required')).toMatchObject({ data: { why: 'login_already_used' } });
    await t.call('POST', `/v1/sessions/${first.body.session.id}/end`, token);
  });

  it('a stale login gets step-up with the policy max_age, and nothing is opened', async () => {
    const token = await t.loginAs('alice', { authAgeSeconds: 400 });
    const answer = await t.call<ErrorBody>('POST', '/v1/sessions', token, ask());
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_user_authentication", error_description="A fresh login is required", max_age=300',
    );
    expect(answer.body.error.code).toBe('IMP_STEP_UP_REQUIRED');
    expect(await lastEvent('stepup.required')).toMatchObject({ data: { why: 'stale' } });
  });

  it.each([
    ['an unknown tenant', { tenant: 'nosuch' }, 403, 'tenant.unknown'],
    ['an unknown environment', { environment: 'qa' }, 403, 'tenant.environment'],
    ['ttl over the max', { ttl: 7200 }, 403, 'ttl.max'],
    ['a ticket not matching', { ticket: 'not a ticket' }, 400, 'ticket.pattern'],
    ['a reason too short', { reason: 'because' }, 400, 'reason.min_length'],
    [
      'a reason with control characters',
      { reason: 'Fix the thing \u001b]0;pwned\u0007 now' },
      400,
      'reason.control_characters',
    ],
  ])(
    'refuses %s at once — even with a stale login, no step-up first — and audits it',
    async (_name, overrides, status, rule) => {
      const stale = await t.loginAs('alice', { authAgeSeconds: 4000 });
      const answer = await t.call<ErrorBody>('POST', '/v1/sessions', stale, ask(overrides));
      expect(answer.status).toBe(status);
      expect(answer.body.error.message).toContain(rule);
      expect(answer.headers.get('www-authenticate')).toBeNull();
      expect(await lastEvent('session.refused')).toMatchObject({ data: { rule } });
    },
  );

  it('mallory (no role) is refused for anything, naming role.none', async () => {
    const token = await freshLogin('mallory');
    for (const scope of ['read', 'write']) {
      const answer = await t.call<ErrorBody>('POST', '/v1/sessions', token, ask({ scope }));
      expect(answer.status).toBe(403);
      expect(answer.body.error.details?.rule).toBe('role.none');
    }
    const requests = await t.call<{ requests: unknown[] }>('GET', '/v1/requests?state=pending', token);
    expect(requests.body.requests).toEqual([]);
  });

  it('oncall may not open write sessions (role.scope)', async () => {
    const token = await freshLogin('carol');
    const answer = await t.call<ErrorBody>('POST', '/v1/sessions', token, ask({ scope: 'write' }));
    expect(answer.status).toBe(403);
    expect(answer.body.error.details?.rule).toBe('role.scope');
  });

  it('a second active session on the same tenant is refused (409, session.one_active)', async () => {
    const token = await freshLogin('dave');
    const first = await t.call<SessionBody>('POST', '/v1/sessions', token, ask());
    expect(first.status).toBe(201);
    const token2 = await freshLogin('dave');
    const second = await t.call<ErrorBody>('POST', '/v1/sessions', token2, ask());
    expect(second.status).toBe(409);
    expect(second.body.error.details?.rule).toBe('session.one_active');
    await t.call('POST', `/v1/sessions/${first.body.session.id}/end`, token);
  });

  it('rejects wrong types with 400 before any policy decision', async () => {
    const token = await freshLogin('alice');
    for (const body of [
      ask({ ttl: '10m' }),
      ask({ scope: 'admin' }),
      ask({ tenant: '../acme' }),
      ask({ tenant: 42 }),
    ]) {
      expect((await t.call('POST', '/v1/sessions', token, body)).status).toBe(400);
    }
  });
});

describe('write sessions need a second person', () => {
  it('alice asks, bob approves; alice waiting by long-poll sees it at once', async () => {
    const alice = await freshLogin('alice');
    const request = await t.call<SessionBody>(
      'POST',
      '/v1/sessions',
      alice,
      ask({ tenant: 'acme', scope: 'write' }),
    );
    expect(request.status).toBe(202);
    expect(request.body.session.state).toBe('pending');
    const id = request.body.session.id;

    const waiting = t.call<SessionBody>('GET', `/v1/sessions/${id}?wait=20s`, alice);
    const bob = await freshLogin('bob');
    const list = await t.call<{ requests: { id: string }[] }>('GET', '/v1/requests?state=pending', bob);
    expect(list.body.requests.map((r) => r.id)).toContain(id);
    const started = Date.now();
    const approval = await t.call<SessionBody>('POST', `/v1/requests/${id}/approve`, bob, { comment: 'ok' });
    expect(approval.status).toBe(200);
    const seen = await waiting;
    expect(seen.body.session.state).toBe('active');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await lastEvent('session.approved')).toMatchObject({ session: id, actor: { sub: 'user-bob' } });
    await t.call('POST', `/v1/sessions/${id}/end`, alice);
  });

  it('refuses self-approval (approval.self) and approval without the approve role (role.approve), both audited', async () => {
    const erin = await freshLogin('erin');
    const request = await t.call<SessionBody>(
      'POST',
      '/v1/sessions',
      await freshLogin('alice'),
      ask({ tenant: 'acme', scope: 'write' }),
    );
    const id = request.body.session.id;
    const byErin = await t.call<ErrorBody>('POST', `/v1/requests/${id}/approve`, erin);
    expect(byErin.status).toBe(403);
    expect(byErin.body.error.details?.rule).toBe('role.approve');
    expect(await lastEvent('access.denied')).toMatchObject({ session: id, data: { rule: 'role.approve' } });

    // bob asks himself and tries to approve his own request
    const bob = await freshLogin('bob');
    const own = await t.call<SessionBody>(
      'POST',
      '/v1/sessions',
      bob,
      ask({ tenant: 'initech', scope: 'write' }),
    );
    expect(own.status).toBe(202);
    const bob2 = await freshLogin('bob');
    const self = await t.call<ErrorBody>('POST', `/v1/requests/${own.body.session.id}/approve`, bob2);
    expect(self.status).toBe(403);
    expect(self.body.error.details?.rule).toBe('approval.self');
    expect(await lastEvent('access.denied')).toMatchObject({ data: { rule: 'approval.self' } });
    // own requests are not listed as approvable
    const list = await t.call<{ requests: { id: string }[] }>('GET', '/v1/requests', bob2);
    expect(list.body.requests.map((r) => r.id)).not.toContain(own.body.session.id);
    await t.call('POST', `/v1/sessions/${own.body.session.id}/end`, bob2);
    await t.call('POST', `/v1/sessions/${id}/end`, await freshLogin('alice'));
  });

  it('an approver with a stale login gets step-up; a deny needs a reason and is final', async () => {
    const alice = await freshLogin('alice');
    const request = await t.call<SessionBody>(
      'POST',
      '/v1/sessions',
      alice,
      ask({ tenant: 'acme', scope: 'write' }),
    );
    const id = request.body.session.id;
    const staleBob = await t.loginAs('bob', { authAgeSeconds: 600 });
    const stale = await t.call('POST', `/v1/requests/${id}/approve`, staleBob);
    expect(stale.status).toBe(401);
    expect(stale.headers.get('www-authenticate')).toContain('insufficient_user_authentication');
    expect((await t.call('POST', `/v1/requests/${id}/deny`, staleBob, {})).status).toBe(400);
    const deny = await t.call<SessionBody>('POST', `/v1/requests/${id}/deny`, staleBob, {
      reason: 'Use a read session',
    });
    expect(deny.body.session.state).toBe('denied');
    const late = await t.call<ErrorBody>('POST', `/v1/requests/${id}/approve`, await freshLogin('bob'));
    expect(late.status).toBe(409);
  });

  it('an approve racing a deny yields exactly one outcome', async () => {
    const alice = await freshLogin('alice');
    const request = await t.call<SessionBody>(
      'POST',
      '/v1/sessions',
      alice,
      ask({ tenant: 'acme', scope: 'write' }),
    );
    const id = request.body.session.id;
    const bob = await freshLogin('bob');
    const results = await Promise.all([
      t.call('POST', `/v1/requests/${id}/approve`, bob),
      t.call('POST', `/v1/requests/${id}/deny`, bob, { reason: 'no' }),
      t.call('POST', `/v1/requests/${id}/approve`, bob),
    ]);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    const decisions = (await t.store.readAudit({ session: id })).filter(
      (e) => e.type === 'session.approved' || e.type === 'session.denied',
    );
    expect(decisions).toHaveLength(1);
    await t.call('POST', `/v1/sessions/${id}/end`, alice);
  });
});

describe('ending is final', () => {
  it('an expired session is refused on every call, audited once as session.expired', async () => {
    const token = await freshLogin('carol');
    const opened = await t.call<SessionBody>('POST', '/v1/sessions', token, ask({ ttl: 60 }));
    const id = opened.body.session.id;
    t.clock.advance(61_000);
    const seen = await t.call<SessionBody>('GET', `/v1/sessions/${id}`, token);
    expect(seen.body.session.state).toBe('expired');
    const end = await t.call<ErrorBody>('POST', `/v1/sessions/${id}/end`, token);
    expect(end.status).toBe(410);
    expect(end.body.error.code).toBe('IMP_SESSION_EXPIRED');
    expect(
      (await t.store.readAudit({ session: id })).filter((e) => e.type === 'session.expired'),
    ).toHaveLength(1);
  });

  it('security revokes; the owner cannot use or end it again; others may not revoke', async () => {
    const alice = await freshLogin('alice');
    const opened = await t.call<SessionBody>('POST', '/v1/sessions', alice, ask({ tenant: 'initech' }));
    const id = opened.body.session.id;
    const byAlice = await t.call<ErrorBody>('POST', `/v1/sessions/${id}/revoke`, alice);
    expect(byAlice.status).toBe(403);
    expect(byAlice.body.error.details?.rule).toBe('role.revoke');
    const erin = await freshLogin('erin');
    const revoked = await t.call<SessionBody>('POST', `/v1/sessions/${id}/revoke`, erin, {
      reason: 'suspicious',
    });
    expect(revoked.body.session.state).toBe('revoked');
    expect((await t.call('POST', `/v1/sessions/${id}/end`, alice)).status).toBe(410);
    expect((await t.call('POST', `/v1/sessions/${id}/revoke`, erin)).status).toBe(409);
    expect(await lastEvent('session.revoked')).toMatchObject({ session: id, actor: { sub: 'user-erin' } });
  });

  it('other people cannot see or end my session', async () => {
    const alice = await freshLogin('alice');
    const opened = await t.call<SessionBody>('POST', '/v1/sessions', alice, ask({ tenant: 'globex' }));
    const mallory = await freshLogin('mallory');
    expect((await t.call('GET', `/v1/sessions/${opened.body.session.id}`, mallory)).status).toBe(404);
    expect((await t.call('POST', `/v1/sessions/${opened.body.session.id}/end`, mallory)).status).toBe(404);
    // An overseer (bob approves) may look, but only the owner ends it; the refusal is audited.
    const bob = await freshLogin('bob');
    expect((await t.call('GET', `/v1/sessions/${opened.body.session.id}`, bob)).status).toBe(200);
    const byBob = await t.call<ErrorBody>('POST', `/v1/sessions/${opened.body.session.id}/end`, bob);
    expect(byBob.status).toBe(403);
    expect(byBob.body.error.details?.rule).toBe('session.owner');
    expect(await lastEvent('access.denied')).toMatchObject({
      session: opened.body.session.id,
      data: { rule: 'session.owner' },
    });
    await t.call('POST', `/v1/sessions/${opened.body.session.id}/end`, alice);
  });
});
