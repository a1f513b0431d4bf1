import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTenantApi, type TenantApi } from '../../src/dev/tenant-api.js';
import {
  claimsFor,
  type FakeBroker,
  hmacToken,
  makeKey,
  NOW,
  sign,
  startFakeBroker,
  type TestKey,
  unsignedToken,
} from '../verify/fixtures.js';

let key: TestKey;
let broker: FakeBroker;
let api: TenantApi;
let sessions = 0;

/** A token for a fresh session (own sid, so status answers never come from another test's cache). */
async function token(overrides: Parameters<typeof claimsFor>[1] = {}): Promise<string> {
  sessions++;
  return sign(key, claimsFor(broker.url, { sid: `ses_${sessions}`, jti: `jti_${sessions}`, ...overrides }));
}
const writeToken = (overrides: Parameters<typeof claimsFor>[1] = {}) =>
  token({ scope: 'tenant:read tenant:write', ...overrides });

async function call(
  method: string,
  path: string,
  bearer?: string,
  init: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; text: string; json: () => unknown }> {
  const response = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined
      ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }
      : {}),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

beforeAll(async () => {
  key = await makeKey('session-1');
  broker = await startFakeBroker([key.publicJwk]);
  api = await startTenantApi({
    port: 0,
    now: () => NOW,
    verifier: { issuer: broker.url, audience: 'imp-tenant-api', statusCheck: { cacheSeconds: 5 } },
  });
});
afterAll(async () => {
  await api.close();
  await broker.close();
});

describe('demo tenant API: data', () => {
  it('answers /healthz without a token', async () => {
    const response = await call('GET', '/healthz');
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({ ok: true, configured: true });
  });

  it("serves only the token's tenant", async () => {
    const acme = (await call('GET', '/v1/users', await token())).json() as {
      tenant: string;
      users: { email: string }[];
    };
    expect(acme.tenant).toBe('acme');
    expect(acme.users.length).toBeGreaterThan(2);
    expect(acme.users.every((u) => u.email.endsWith('@acme.example'))).toBe(true);

    const globexToken = await token({ sub: 'globex' });
    const globex = (await call('GET', '/v1/invoices', globexToken)).json() as { invoices: { id: string }[] };
    expect(globex.invoices.every((i) => i.id.startsWith('inv_gx_'))).toBe(true);
    // A globex user id with an acme token does not exist as far as acme's session can see.
    expect((await call('GET', '/v1/users/usr_gx01', await token())).status).toBe(404);
    expect((await call('GET', '/v1/users/usr_gx01', globexToken)).json()).toMatchObject({
      name: 'Hank Scorpio',
    });
  });

  it('refuses a tenant header naming another tenant, and a tenant it does not host', async () => {
    const response = await call('GET', '/v1/users', await token(), { headers: { 'x-tenant-id': 'globex' } });
    expect([response.status, (response.json() as { error: string }).error]).toEqual([403, 'wrong_tenant']);
    expect(
      (await call('GET', '/v1/users', await token(), { headers: { 'x-tenant-id': 'acme' } })).status,
    ).toBe(200);
    const unknown = await call('GET', '/v1/users', await token({ sub: 'umbrella' }));
    expect([unknown.status, (unknown.json() as { error: string }).error]).toEqual([403, 'wrong_tenant']);
  });

  it('refuses writes with a read token (403 insufficient_scope) and changes nothing', async () => {
    const read = await token({ sub: 'initech' });
    const response = await call('POST', '/v1/users/usr_in01/reset-mfa', read);
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
    expect((response.json() as { error: string }).error).toBe('insufficient_scope');
    const patch = await call('PATCH', '/v1/settings', read, { body: { sso_required: true } });
    expect(patch.status).toBe(403);
    expect((await call('GET', '/v1/users/usr_in01', read)).json()).toMatchObject({ mfa_enabled: true });
    expect((await call('GET', '/v1/settings', read)).json()).toMatchObject({
      settings: { sso_required: false },
    });
  });

  it('resets MFA with a write token', async () => {
    const write = await writeToken();
    const response = await call('POST', '/v1/users/usr_ac01/reset-mfa', write);
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({ id: 'usr_ac01', mfa_enabled: false });
    expect((await call('GET', '/v1/users/usr_ac01', write)).json()).toMatchObject({ mfa_enabled: false });
    expect((await call('POST', '/v1/users/usr_gx01/reset-mfa', write)).status).toBe(404);
  });

  it('merges a valid settings patch and refuses an invalid one', async () => {
    const write = await writeToken({ sub: 'globex' });
    const ok = await call('PATCH', '/v1/settings', write, {
      body: { session_timeout_minutes: 120, notifications: { weekly_digest: true } },
    });
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({
      settings: {
        session_timeout_minutes: 120,
        display_name: 'Globex Corporation',
        notifications: { weekly_digest: true, billing_email: 'finance@globex.example' },
      },
    });
    for (const body of [
      { session_timeout_minutes: 1 },
      { sso_required: 'yes' },
      { allowed_ip_ranges: ['0.0.0.0/99'] },
      { notifications: { billing_email: 'not-an-email' } },
      { owner: 'mallory' },
      [1, 2],
    ]) {
      const refused = await call('PATCH', '/v1/settings', write, { body });
      expect([refused.status, (refused.json() as { error: string }).error]).toEqual([
        400,
        'invalid_settings',
      ]);
    }
    expect((await call('PATCH', '/v1/settings', write, { body: '{not json' })).status).toBe(400);
    const wrongType = await call('PATCH', '/v1/settings', write, {
      body: 'sso_required=true',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(wrongType.status).toBe(415);
    expect((await call('GET', '/v1/settings', write)).json()).toMatchObject({
      settings: { session_timeout_minutes: 120 },
    });
  });

  it('exports users as CSV', async () => {
    const response = await call('GET', '/v1/export/users.csv', await token());
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="acme-users.csv"');
    const lines = response.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe('id,name,email,role,mfa_enabled');
    expect(lines.slice(1).every((line) => line.includes('@acme.example'))).toBe(true);
  });

  it("keeps the tenant's own record of what impersonating engineers did", async () => {
    const write = await writeToken({
      sub: 'initech',
      ticket: 'SUP-77',
      act: { sub: 'bob', iss: 'idp', email: 'bob@x.test' },
    });
    await call('POST', '/v1/users/usr_in02/reset-mfa', write);
    const entries = ((await call('GET', '/v1/audit', write)).json() as { entries: Record<string, unknown>[] })
      .entries;
    expect(entries.at(-1)).toMatchObject({
      actor_email: 'bob@x.test',
      session_id: `ses_${sessions}`,
      ticket: 'SUP-77',
      method: 'POST',
      path: '/v1/users/usr_in02/reset-mfa',
      status: 200,
    });
    // The read refused earlier in this file was recorded too, with its 403.
    expect(entries.some((e) => e.status === 403 && e.path === '/v1/users/usr_in01/reset-mfa')).toBe(true);
    // Nothing of initech's record leaks into acme's.
    const acme = ((await call('GET', '/v1/audit', await token())).json() as { entries: { path: string }[] })
      .entries;
    expect(acme.some((e) => e.path.includes('usr_in'))).toBe(false);
  });

  it('answers 404 for unknown routes and 405 with Allow for a wrong method', async () => {
    expect((await call('GET', '/v1/nope', await token())).status).toBe(404);
    const response = await call('DELETE', '/v1/settings', await writeToken());
    expect([response.status, response.headers.get('allow')]).toEqual([405, 'GET, PATCH']);
  });
});

describe('demo tenant API: refusals over HTTP', () => {
  const cases: [string, () => Promise<string | undefined>, number, string][] = [
    ['no token', async () => undefined, 401, 'missing_token'],
    ['alg none', async () => unsignedToken(claimsFor(broker.url)), 401, 'invalid_token'],
    [
      'HS256 keyed with the public JWK',
      () => hmacToken(JSON.stringify(key.publicJwk), claimsFor(broker.url)),
      401,
      'invalid_token',
    ],
    [
      'HS256 keyed with the public PEM',
      () => hmacToken(key.publicPem, claimsFor(broker.url)),
      401,
      'invalid_token',
    ],
    ['wrong audience', () => token({ aud: 'billing-api' }), 401, 'wrong_audience'],
    ['wrong issuer', () => sign(key, claimsFor('http://127.0.0.1:1')), 401, 'wrong_issuer'],
    ['expired', () => token({ exp: Math.floor(NOW / 1000) - 120 }), 401, 'expired'],
    [
      'unknown kid',
      () => sign({ ...key, kid: 'session-rotated-away' }, claimsFor(broker.url)),
      401,
      'invalid_token',
    ],
    ['typ JWT', () => sign(key, claimsFor(broker.url), { header: { typ: 'JWT' } }), 401, 'invalid_token'],
    ['missing act', () => sign(key, claimsFor(broker.url), { omit: ['act'] }), 401, 'invalid_token'],
  ];

  it.each(cases.map(([name, build, status, code]) => [name, status, code, build] as const))(
    '%s → %s %s',
    async (_name, status, code, build) => {
      const response = await call('GET', '/v1/users', await build());
      expect(response.status).toBe(status);
      expect((response.json() as { error: string }).error).toBe(code);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    },
  );

  it('refuses a revoked session at once with the status check on', async () => {
    const revoked = await token();
    broker.revoked.add(`ses_${sessions}`);
    const response = await call('GET', '/v1/users', revoked);
    expect([response.status, (response.json() as { error: string }).error]).toEqual([401, 'revoked']);
    expect(broker.statusRequests.at(-1)?.authorization).toBe(`Bearer ${revoked}`);
  });

  it('fails closed (503) when the broker status endpoint fails', async () => {
    broker.statusOverride = 502;
    try {
      const response = await call('GET', '/v1/users', await token());
      expect([response.status, (response.json() as { error: string }).error]).toEqual([
        503,
        'status_unavailable',
      ]);
    } finally {
      broker.statusOverride = undefined;
    }
  });

  it('answers 503 until configured, then verifies with the configuration given later', async () => {
    const late = await startTenantApi({ port: 0, now: () => NOW });
    try {
      const bearer = await token();
      const before = await fetch(`${late.url}/v1/users`, { headers: { authorization: `Bearer ${bearer}` } });
      expect(before.status).toBe(503);
      late.configure({ issuer: broker.url });
      const after = await fetch(`${late.url}/v1/users`, { headers: { authorization: `Bearer ${bearer}` } });
      expect(after.status).toBe(200);
    } finally {
      await late.close();
    }
  });
});
