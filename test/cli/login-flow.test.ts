/** Step-up in the client: on an RFC 9470 challenge, log in again with max_age and retry exactly once. */
import { describe, expect, it } from 'vitest';
import { run as runApprove } from '../../src/cli/commands/approve.js';
import { main } from '../../src/cli/main.js';
import { makeTestDeps, stubBroker } from '../helpers/cli-deps.js';

const BROKER = 'http://127.0.0.1:7700';
const config = {
  issuer: 'http://127.0.0.1:7701',
  client_id: 'imp-cli',
  reauth_max_age: 300,
  per_session_login: true,
  ticket_pattern: '^[A-Z]+-[0-9]+$',
  reason_min_length: 10,
  reason_max_length: 500,
  default_ttl: 1800,
};
const login = (n: number) => ({
  token: `broker-token-${n}`,
  expires_at: '2026-11-24T20:00:00Z',
  auth_time: 1000 + n,
  user: { iss: 'x', sub: 'user-bob', email: 'bob@example.test', name: 'Bob', groups: [], roles: ['lead'] },
});
const stepUp = {
  status: 401,
  headers: { 'www-authenticate': 'Bearer error="insufficient_user_authentication", max_age=300' },
  body: { error: { code: 'IMP_STEP_UP_REQUIRED', message: 'stale' } },
};
const session = {
  id: 'req-1',
  state: 'active',
  scope: 'write',
  tenant: 'acme',
  environment: 'prod',
  requester: { sub: 'user-alice', email: 'alice@example.test' },
  expires_at: '2026-11-24T21:00:00Z',
};

describe('withLogin', () => {
  it('logs in, meets a step-up, logs in again with max_age, retries once, succeeds', async () => {
    const fetch = stubBroker([
      { method: 'GET', path: '/v1/config', status: 200, body: config },
      {
        method: 'POST',
        path: '/v1/login',
        status: 200,
        body: login(1),
        check: ({ body }) => expect(body).toEqual({ id_token: 'id-token-1' }),
      },
      {
        method: 'POST',
        path: '/v1/requests/req-1/approve',
        ...stepUp,
        check: ({ headers }) => expect(headers.get('authorization')).toBe('Bearer broker-token-1'),
      },
      { method: 'GET', path: '/v1/config', status: 200, body: config },
      { method: 'POST', path: '/v1/login', status: 200, body: login(2) },
      {
        method: 'POST',
        path: '/v1/requests/req-1/approve',
        status: 200,
        body: { session },
        check: ({ headers }) => expect(headers.get('authorization')).toBe('Bearer broker-token-2'),
      },
    ]);
    const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: BROKER } });
    const code = await runApprove(
      { id: 'req-1', comment: undefined, broker: undefined, noBrowser: true, json: true },
      t.deps,
    );
    expect(code).toBe(0);
    expect(t.logins.map((l) => l.maxAge)).toEqual([undefined, 300]);
    expect(fetch.remaining()).toEqual([]);
    expect(JSON.parse(t.io.stdoutText().trim().split('\n').at(-1)!)).toMatchObject({ event: 'approved' });
    // The token is stored, and never printed.
    expect(await t.credentials.get(BROKER)).toContain('broker-token-2');
    expect(t.io.stdoutText() + t.io.stderrText()).not.toContain('broker-token');
  });

  it('a second step-up after the fresh login is not retried again: exit 3', async () => {
    const fetch = stubBroker([
      { method: 'GET', path: '/v1/config', status: 200, body: config },
      { method: 'POST', path: '/v1/login', status: 200, body: login(1) },
      { method: 'POST', path: '/v1/requests/req-1/approve', ...stepUp },
      { method: 'GET', path: '/v1/config', status: 200, body: config },
      { method: 'POST', path: '/v1/login', status: 200, body: login(2) },
      { method: 'POST', path: '/v1/requests/req-1/approve', ...stepUp },
    ]);
    const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: BROKER } });
    const code = await main(['approve', 'req-1', '--no-browser'], t.deps, 'test');
    expect(code).toBe(3);
    expect(t.logins).toHaveLength(2);
    expect(fetch.remaining()).toEqual([]);
  });

  it('a policy refusal is never turned into a login prompt: exit 4, no device flow', async () => {
    const t = makeTestDeps({ env: { IMP_BROKER_URL: BROKER } });
    await t.credentials.set(BROKER, JSON.stringify(login(1)));
    t.deps.fetch = stubBroker([
      {
        method: 'POST',
        path: '/v1/requests/req-1/approve',
        status: 403,
        body: {
          error: {
            code: 'IMP_FORBIDDEN',
            message: 'Denied by rule approval.self: You cannot approve your own request',
            details: { rule: 'approval.self' },
          },
        },
      },
    ]);
    const code = await main(['approve', 'req-1'], t.deps, 'test');
    expect(code).toBe(4);
    expect(t.logins).toHaveLength(0);
    expect(t.io.stderrText()).toContain('approval.self');
  });
});
