/**
 * The identity provider goes down. `imp login` fails at once with a message naming the IdP and
 * exit 3 (authentication needed and impossible right now — a script that branches on "log in
 * again" should see that, not a generic error), while sessions opened before keep working through
 * the proxy until they expire: the broker never asks the IdP about an existing session.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { makeUserEnv, runImp } from '../helpers/cli.js';

let t: TestBroker;
let upstream: Server;
let idpUp = true;

beforeAll(async () => {
  upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"users":[]}');
  });
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
});

afterAll(async () => {
  await t?.broker.close();
  if (idpUp) await t?.idp.close();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
});

describe('identity provider down', () => {
  let token = '';
  let sessionId = '';

  it('a session opened while the IdP was up', async () => {
    token = await t.loginAs('alice');
    const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
      tenant: 'globex',
      environment: 'prod',
      ticket: 'INC-7',
      reason: 'Customer reports missing users',
      ttl: 600,
    });
    expect(opened.status).toBe(201);
    sessionId = opened.body.session.id;
    await t.idp.close();
    idpUp = false;
    expect(await fetch(`${t.idp.issuer}/.well-known/openid-configuration`).catch(() => null)).toBeNull();
  });

  it('imp login fails fast with a clear message and exit 3', async () => {
    const { env } = makeUserEnv();
    const started = Date.now();
    const result = await runImp(['login', '--broker', t.broker.url, '--no-browser', '--json'], env);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toContain(
      `error: Cannot log in: the identity provider at ${t.idp.issuer} cannot be reached`,
    );
    expect(result.stderr).toContain('ECONNREFUSED');
    const line = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    expect(line).toMatchObject({
      event: 'error',
      error: { code: 'IMP_AUTH_FAILED', details: { reason: 'idp_unreachable' } },
    });
  });

  it('the open session keeps working through the proxy', async () => {
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${t.broker.url}/v1/sessions/${sessionId}/proxy/v1/users`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ users: [] });
    }
    const whoami = await t.call('GET', '/v1/whoami', token);
    expect(whoami.status).toBe(200);
  });

  it('…until it expires: then it is refused like any other', async () => {
    t.clock.advance(601_000);
    const response = await fetch(`${t.broker.url}/v1/sessions/${sessionId}/proxy/v1/users`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(410);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('IMP_SESSION_EXPIRED');
    const types = (await t.store.readAudit({ session: sessionId })).map((e) => e.type);
    expect(types).toContain('session.expired');
    expect(types.filter((type) => type === 'action.completed')).toHaveLength(3);
  });
});
