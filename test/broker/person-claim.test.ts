/**
 * One person, two accounts: with policy `identity.person_claim`, "a second person" means a second
 * person claim, not only a second (iss, sub). Logins without the claim are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { exchange, idTokenSigner } from '../helpers/id-tokens.js';

let t: TestBroker;
let sign: Awaited<ReturnType<typeof idTokenSigner>>;

beforeAll(async () => {
  t = await startTestBroker({
    policyYaml: (issuer) =>
      devPolicyYaml(issuer, 'http://127.0.0.1:9/api').replace(
        'groups_claim: groups }',
        'groups_claim: groups, person_claim: employee_id }',
      ),
  });
  sign = await idTokenSigner(t.idp);
});
afterAll(async () => {
  await t?.close();
});

/** Logs an account in with a fresh auth_time; `employee` is its person claim. */
async function login(user: string, groups: string[], employee: string): Promise<string> {
  t.clock.advance(1100);
  return exchange(
    t.broker.url,
    await sign({ user, groups, now: Math.floor(t.clock.now() / 1000), extra: { employee_id: employee } }),
  );
}

const denial = async (type: string, rule: string) =>
  (await t.store.readAudit({ type })).filter((e) => e.data.rule === rule);

describe('identity.person_claim', () => {
  it('refuses (and audits) a login whose ID token lacks the claim', async () => {
    const response = await fetch(`${t.broker.url}/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        id_token: await sign({ user: 'nobody', now: Math.floor(t.clock.now() / 1000) }),
      }),
    });
    expect(response.status).toBe(401);
    const refused = await t.store.readAudit({ type: 'auth.login_refused' });
    expect(refused.at(-1)!.data.reason).toBe('person_claim_missing');
  });

  it("a second account of the requester cannot approve the request; another person's can", async () => {
    const alice = await login('alice', ['support'], 'E-100');
    const asked = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', alice, {
      tenant: 'acme',
      environment: 'prod',
      scope: 'write',
      ticket: 'SUP-9',
      reason: 'Fix the invoice totals for the customer',
      ttl: 600,
    });
    expect(asked.status).toBe(202);
    const id = asked.body.session.id;
    const aliceAdmin = await login('alice-admin', ['support-leads'], 'E-100');
    const self = await t.call<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/requests/${id}/approve`,
      aliceAdmin,
      {},
    );
    expect(self.status).toBe(403);
    expect(self.body.error.message).toContain('your own request');
    expect(await denial('access.denied', 'approval.self')).toHaveLength(1);
    // Nor does it show among the requests that account may decide.
    const listed = await t.call<{ requests: { id: string }[] }>('GET', '/v1/requests', aliceAdmin);
    expect(listed.body.requests.map((r) => r.id)).not.toContain(id);
    const bob = await login('bob', ['support-leads'], 'E-200');
    expect((await t.call('POST', `/v1/requests/${id}/approve`, bob, {})).status).toBe(200);
  });

  it('a second account of the on-call engineer cannot confirm their break-glass request', async () => {
    const carol = await login('carol', ['sre-oncall'], 'E-300');
    const asked = await t.call<{ request: { id: string } }>('POST', '/v1/break-glass', carol, {
      tenant: 'globex',
      environment: 'prod',
      incident: 'INC-7',
      reason: 'Payments queue is stuck; requeue the failed jobs',
      ttl: 600,
    });
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const carolAlt = await login('carol-alt', ['sre-oncall'], 'E-300');
    const self = await t.call('POST', `/v1/break-glass/${asked.body.request.id}/confirm`, carolAlt);
    expect(self.status).toBe(403);
    expect(await denial('breakglass.refused', 'break_glass.self')).toHaveLength(1);
    const dave = await login('dave', ['sre-oncall'], 'E-400');
    expect((await t.call('POST', `/v1/break-glass/${asked.body.request.id}/confirm`, dave)).status).toBe(200);
  });
});
