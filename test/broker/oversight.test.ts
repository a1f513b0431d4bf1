/**
 * GET /v1/sessions/live: security staff list everyone's live sessions with filters; everyone else is
 * refused by rule role.supervise, and both the read and the refusal are in the audit log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
// carol (sre-oncall) also gets a supervise-only role: she may watch, not revoke or audit.
beforeAll(async () => {
  t = await startTestBroker({
    policyYaml: (issuer) =>
      devPolicyYaml(issuer, 'http://127.0.0.1:9').replace(
        '  - { name: security',
        '  - { name: watch, groups: [sre-oncall], supervise: true }\n  - { name: security',
      ),
  });
});
afterAll(async () => {
  await t?.close();
});

type Live = { sessions: { id: string; state: string; tenant: string; requester: { email: string } }[] };
type ErrorBody = { error: { code: string; message: string; details?: { rule?: string } } };

async function open(user: string, overrides: Record<string, unknown>) {
  t.clock.advance(1100);
  const token = await t.loginAs(user);
  const answer = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
    tenant: 'globex',
    environment: 'prod',
    scope: 'read',
    ticket: 'SUP-7',
    reason: 'Customer cannot see their invoices',
    ttl: 600,
    ...overrides,
  });
  expect(answer.status).toBeLessThan(300);
  return answer.body.session.id;
}

describe('GET /v1/sessions/live', () => {
  let aliceGlobex: string;
  let daveAcme: string;
  let pendingAcme: string;
  beforeAll(async () => {
    aliceGlobex = await open('alice', { tenant: 'globex' });
    daveAcme = await open('dave', { tenant: 'acme' });
    pendingAcme = await open('alice', { tenant: 'acme', scope: 'write' });
  });

  it('lists active sessions and pending requests of every person to security (erin), audited with the filters', async () => {
    const erin = await t.loginAs('erin');
    const all = await t.call<Live>('GET', '/v1/sessions/live', erin);
    expect(all.status).toBe(200);
    expect(all.body.sessions.map((s) => s.id).sort()).toEqual([aliceGlobex, daveAcme, pendingAcme].sort());

    const acme = await t.call<Live>('GET', '/v1/sessions/live?tenant=acme&state=active', erin);
    expect(acme.body.sessions.map((s) => s.id)).toEqual([daveAcme]);
    const read = (await t.store.readAudit({ type: 'sessions.read' })).at(-1);
    expect(read).toMatchObject({
      actor: { sub: 'user-erin' },
      tenant: 'acme',
      data: { filters: { tenant: 'acme', state: 'active' } },
    });

    const byUser = await t.call<Live>('GET', '/v1/sessions/live?user=ALICE@example.test', erin);
    expect(byUser.body.sessions.map((s) => s.id).sort()).toEqual([aliceGlobex, pendingAcme].sort());
    const breakGlass = await t.call<Live>('GET', '/v1/sessions/live?mode=break_glass', erin);
    expect(breakGlass.body.sessions).toEqual([]);
    const staging = await t.call<Live>('GET', '/v1/sessions/live?environment=staging', erin);
    expect(staging.body.sessions).toEqual([]);
  });

  it('a supervise-only role may list; an ended session is no longer live', async () => {
    t.clock.advance(1100);
    const alice = await t.loginAs('alice');
    expect((await t.call('POST', `/v1/sessions/${aliceGlobex}/end`, alice)).status).toBe(200);
    const carol = await t.loginAs('carol');
    const live = await t.call<Live>('GET', '/v1/sessions/live', carol);
    expect(live.status).toBe(200);
    expect(live.body.sessions.map((s) => s.id)).not.toContain(aliceGlobex);
    expect(live.body.sessions.map((s) => s.id)).toContain(daveAcme);
  });

  it('refuses a support engineer by rule role.supervise, audited as access.denied', async () => {
    const alice = await t.loginAs('alice');
    const refused = await t.call<ErrorBody>('GET', '/v1/sessions/live', alice);
    expect(refused.status).toBe(403);
    expect(refused.body.error.details?.rule).toBe('role.supervise');
    const denied = (await t.store.readAudit({ type: 'access.denied' })).at(-1);
    expect(denied).toMatchObject({ actor: { sub: 'user-alice' }, data: { rule: 'role.supervise' } });
  });

  it('refuses unknown filters and malformed values (400) and anonymous callers (401)', async () => {
    const erin = await t.loginAs('erin');
    expect((await t.call('GET', '/v1/sessions/live?owner=x', erin)).status).toBe(400);
    expect((await t.call('GET', '/v1/sessions/live?mode=root', erin)).status).toBe(400);
    expect((await t.call('GET', '/v1/sessions/live?tenant=../x', erin)).status).toBe(400);
    expect((await t.call('GET', '/v1/sessions/live', null)).status).toBe(401);
  });
});
