/**
 * No anonymous flooding of the audit log: routes that need no login are limited per source address
 * (429 with Retry-After, before anything is parsed or written), and repeated refusals from one
 * address are folded into one access.refusals event per window with a count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
let erin = '';

beforeAll(async () => {
  t = await startTestBroker({
    policyYaml: (issuer) =>
      `${devPolicyYaml(issuer, 'http://127.0.0.1:9/api')}rate_limit: { window: 1m, login: 6, public: 3, fold_after: 2 }\n`,
  });
  erin = await t.loginAs('erin'); // one of the six logins this address may make in the window
});
afterAll(async () => {
  await t?.close();
});

const junkLogin = () =>
  fetch(`${t.broker.url}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id_token: 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA' }),
  });

describe('rate limits on anonymous routes', () => {
  it('junk logins: limited per address with 429 + Retry-After; refusals past fold_after are counted, not written', async () => {
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 20; i++) {
      const response = await junkLogin();
      statuses.push(response.status);
      if (response.status === 429) limited = response;
      else await response.text();
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited!.json()) as { error: { code: string } }).error.code).toBe('IMP_RATE_LIMITED');
    // 5 refusals reached the handler: 2 written as they happened, 3 folded.
    expect(await t.store.readAudit({ type: 'auth.login_refused' })).toHaveLength(2);
    expect(await t.store.readAudit({ type: 'access.refusals' })).toHaveLength(0);
    // When the window ends, one event carries the count.
    t.clock.advance(61_000);
    let folded = await t.store.readAudit({ type: 'access.refusals' });
    for (let i = 0; i < 100 && folded.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      folded = await t.store.readAudit({ type: 'access.refusals' });
    }
    expect(folded).toHaveLength(1);
    expect(folded[0]!.data).toMatchObject({ refused: 'auth.login_refused', ip: '127.0.0.1', count: 3 });
  });

  it('other public routes have their own limit; /healthz and logged-in routes are not limited', async () => {
    const config = [];
    for (let i = 0; i < 4; i++) config.push((await fetch(`${t.broker.url}/v1/config`)).status);
    expect(config).toEqual([200, 200, 200, 429]);
    for (let i = 0; i < 10; i++) expect((await fetch(`${t.broker.url}/healthz`)).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await t.call('GET', '/v1/whoami', erin)).status).toBe(200);
  });
});
