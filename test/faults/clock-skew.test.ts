/**
 * A broker whose clock is 60 s ahead of the IdP's (a shifted Clock injected into startBroker; the
 * IdP signs with real time) still accepts fresh logins — the ID-token leeway is 120 s and bounded:
 * further out, tokens are refused. Behind the IdP, only a few seconds pass: an auth_time in the
 * broker's future is refused (it would keep a login "fresh" for longer than max_age). Either way an
 * expired session is never accepted, not even when the broker's clock then steps back.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_TIME_SKEW_SECONDS } from '../../src/auth/id-token.js';
import { ID_TOKEN_LEEWAY_SECONDS } from '../../src/broker/start.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { idTokenSigner } from '../helpers/id-tokens.js';

let t: TestBroker;
let upstream: Server;
let sign: Awaited<ReturnType<typeof idTokenSigner>>;
let user = 0;

beforeAll(async () => {
  upstream = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
  );
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  t = await startTestBroker({
    policyYaml: (issuer) => `
identity: { issuer: ${issuer}, client_id: imp-cli }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h }
tenants:
  - { id: globex, upstream: { prod: ${upstreamUrl} } }
`,
  });
  sign = await idTokenSigner(t.idp);
});

afterAll(async () => {
  await t?.close();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
});

/** Logs a new person in with an ID token stamped by the IdP's (real) clock; returns the answer. */
async function freshLogin(lifetimeSeconds = 600) {
  user++;
  const idToken = await sign({ user: `skew-${user}`, groups: ['support'], lifetimeSeconds });
  return t.call<{ token: string; error?: { code: string } }>('POST', '/v1/login', null, {
    id_token: idToken,
  });
}

async function openSession(token: string, ttl: number) {
  return t.call<{ session: { id: string; expires_at: string } }>('POST', '/v1/sessions', token, {
    tenant: 'globex',
    environment: 'prod',
    ticket: 'INC-60',
    reason: 'Checking behaviour under clock skew',
    ttl,
  });
}

const proxy = (token: string, id: string) =>
  fetch(`${t.broker.url}/v1/sessions/${id}/proxy/v1/ping`, { headers: { authorization: `Bearer ${token}` } });

describe('a broker behind the IdP', () => {
  it(`refuses logins whose auth_time lies over ${AUTH_TIME_SKEW_SECONDS} s in its future (a login from the future would stay fresh too long)`, async () => {
    t.clock.offsetMs = -60_000;
    const login = await freshLogin();
    expect(login.status).toBe(401);
    const refusals = await t.store.readAudit({ type: 'auth.login_refused' });
    expect(refusals.at(-1)!.data.reason).toBe('bad_auth_time');
  });

  it('accepts them within a few seconds of skew', async () => {
    t.clock.offsetMs = -(AUTH_TIME_SKEW_SECONDS - 5) * 1000;
    const login = await freshLogin();
    expect(login.status, JSON.stringify(login.body)).toBe(200);
  });
});

describe.each([
  ['ahead', 60_000],
  ['behind', -(AUTH_TIME_SKEW_SECONDS - 5) * 1000],
])('broker clock %s of the IdP', (_label, offset) => {
  it('accepts a fresh login and opens a session with it', async () => {
    t.clock.offsetMs = offset;
    const login = await freshLogin();
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    const opened = await openSession(login.body.token, 120);
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    expect((await proxy(login.body.token, opened.body.session.id)).status).toBe(200);
  });

  it('never accepts an expired session, even when its clock then steps back', async () => {
    t.clock.offsetMs = offset;
    const login = await freshLogin();
    const opened = await openSession(login.body.token, 60);
    const id = opened.body.session.id;
    expect(Date.parse(opened.body.session.expires_at)).toBeCloseTo(t.clock.now() + 60_000, -3);
    t.clock.advance(59_000);
    expect((await proxy(login.body.token, id)).status).toBe(200);
    t.clock.advance(1_000); // exactly at expires_at: over
    const expired = await proxy(login.body.token, id);
    expect(expired.status).toBe(410);
    t.clock.advance(-120_000); // NTP steps the clock back
    expect((await proxy(login.body.token, id)).status).toBe(410);
    const session = await t.call<{ session: { state: string } }>(
      'GET',
      `/v1/sessions/${id}`,
      login.body.token,
    );
    expect(session.body.session.state).toBe('expired');
  });
});

describe('the leeway is bounded', () => {
  it(`refuses an ID token whose auth_time is over ${ID_TOKEN_LEEWAY_SECONDS} s in the broker's future`, async () => {
    t.clock.offsetMs = -(ID_TOKEN_LEEWAY_SECONDS + 60) * 1000;
    const login = await freshLogin();
    expect(login.status).toBe(401);
    expect(login.body.error?.code).toBe('IMP_AUTH_FAILED');
  });

  it(`refuses an ID token that expired over ${ID_TOKEN_LEEWAY_SECONDS} s ago by the broker's clock`, async () => {
    t.clock.offsetMs = (300 + ID_TOKEN_LEEWAY_SECONDS + 60) * 1000;
    const login = await freshLogin(300);
    expect(login.status).toBe(401);
    const refusals = await t.store.readAudit({ type: 'auth.login_refused' });
    expect(refusals.at(-1)!.data.reason).toBe('expired');
  });

  it('but within the leeway an expired-by-a-minute token still passes (skew, not a replay window)', async () => {
    t.clock.offsetMs = (300 + 60) * 1000;
    const login = await freshLogin(300);
    expect(login.status).toBe(200);
  });
});
