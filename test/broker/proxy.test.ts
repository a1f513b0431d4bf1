/**
 * The audited proxy against real upstreams: the demo tenant API (which verifies session tokens
 * through `imp/verify`) and an echo server that records exactly what reached it.
 */
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTenantApi, type TenantApi } from '../../src/dev/tenant-api.js';
import { systemClock } from '../../src/runtime/clock.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

interface Hit {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let t: TestBroker;
let demo: TenantApi;
let echo: Server;
let echoUrl: string;
const hits: Hit[] = [];

beforeAll(async () => {
  // The demo API shares the broker's (shifted) clock: its 5 s skew tolerance would refuse tokens otherwise.
  demo = await startTenantApi({ port: 0, now: () => (t ? t.clock.now() : Date.now()) });
  echo = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url?.startsWith('/api/v1/stream')) {
        // A long download: a chunk every 100 ms for a minute, unless the connection goes first.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const timer = setInterval(() => res.write(Buffer.alloc(1000, 1)), 100);
        const stop = setTimeout(() => res.end(), 60_000);
        res.on('close', () => {
          clearInterval(timer);
          clearTimeout(stop);
        });
        res.write(Buffer.alloc(1000, 1));
        return;
      }
      if (req.url?.startsWith('/big')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.alloc(300_000, 7));
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/json',
        connection: 'keep-alive',
        'set-cookie': 'upstream=1',
      });
      res.end(JSON.stringify({ ok: true, method: req.method, url: req.url }));
    });
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
  t = await startTestBroker({
    policyYaml: (issuer) => `
identity: { issuer: ${issuer}, client_id: imp-cli }
proxy: { timeout: 5s, max_body_bytes: 200000, export_paths: ['/v1/export/**'], forward_headers: [X-Custom] }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h }
  - { name: security, groups: [security], revoke: true }
tenants:
  - { id: acme, upstream: { prod: ${demo.url} } }
  - { id: globex, upstream: { prod: ${echoUrl}/api } }
`,
  });
  demo.configure({ issuer: t.broker.url, audience: 'imp-tenant-api' });
});
afterAll(async () => {
  await t?.close();
  await demo?.close();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

async function openSession(tenant: string, scope: 'read' | 'write'): Promise<{ token: string; id: string }> {
  t.clock.advance(1100);
  const token = await t.loginAs('alice');
  // One active session per tenant: end what the previous test left open.
  const open = await t.call<{ sessions: { id: string }[] }>('GET', '/v1/sessions?state=active', token);
  for (const s of open.body.sessions) await t.call('POST', `/v1/sessions/${s.id}/end`, token);
  const answer = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
    tenant,
    environment: 'prod',
    scope,
    ticket: 'SUP-5',
    reason: 'Proxy test for the tenant API',
    ttl: 600,
  });
  expect(answer.status).toBe(201);
  return { token, id: answer.body.session.id };
}

async function proxy(
  token: string,
  id: string,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${t.broker.url}/v1/sessions/${id}/proxy${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body ? { body } : {}),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const events = async (id: string, type: string) =>
  (await t.store.readAudit({ session: id })).filter((e) => e.type === type);

describe('read-only session', () => {
  it('GET reaches the demo tenant API with a session token it verifies; audited exactly once each', async () => {
    const { token, id } = await openSession('acme', 'read');
    const answer = await proxy(token, id, 'GET', '/v1/users');
    expect(answer.status, answer.text).toBe(200);
    const users = JSON.parse(answer.text);
    expect(JSON.stringify(users)).toContain('acme');
    expect(await events(id, 'action.requested')).toHaveLength(1);
    const completed = await events(id, 'action.completed');
    expect(completed).toHaveLength(1);
    expect(completed[0]!.data).toMatchObject({ method: 'GET', path: '/v1/users', kind: 'read', status: 200 });
    expect(Number(completed[0]!.data.bytes)).toBe(Buffer.byteLength(answer.text));
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])(
    '%s is refused with 403, never reaches the upstream, and is audited as denied',
    async (method) => {
      const { token, id } = await openSession('globex', 'read');
      const before = hits.length;
      const answer = await proxy(token, id, method, '/v1/users/1', '{"x":1}');
      expect(answer.status).toBe(403);
      expect(answer.text).toContain('scope.read_only');
      expect(hits.length).toBe(before);
      expect((await events(id, 'action.denied'))[0]!.data).toMatchObject({ method, rule: 'scope.read_only' });
    },
  );

  it('method-override headers are refused in read sessions', async () => {
    const { token, id } = await openSession('globex', 'read');
    const before = hits.length;
    const answer = await proxy(token, id, 'GET', '/v1/users', undefined, {
      'x-http-method-override': 'DELETE',
    });
    expect(answer.status).toBe(403);
    expect(hits.length).toBe(before);
  });

  it.each([
    '/../secret',
    '/%2e%2e/secret',
    '/v1%2f..%2fsecret',
    '//evil.example/',
    '/http://evil.example/x',
    '/v1/%2E%2E/%2E%2E/x',
  ])('path escape %j never leaves the upstream base', async (path) => {
    const { token, id } = await openSession('globex', 'read');
    const before = hits.length;
    // node:http sends the path byte for byte (fetch would normalise dot segments away first).
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(t.broker.url);
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method: 'GET',
          path: `/v1/sessions/${id}/proxy${path}`,
          headers: { authorization: `Bearer ${token}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(400);
    expect(hits.length).toBe(before);
    expect((await events(id, 'action.denied')).at(-1)!.data).toMatchObject({ rule: 'path.escape' });
  });
});

describe('forwarding', () => {
  it('sends the session token, never the broker token, and strips hop-by-hop and cookie headers', async () => {
    const { token, id } = await openSession('globex', 'write');
    const answer = await proxy(token, id, 'POST', '/v1/things?x=1', '{"name":"a"}', {
      cookie: 'sid=secret',
      'x-custom': 'kept',
    });
    expect(answer.status).toBe(200);
    const hit = hits.at(-1)!;
    expect(hit.url).toBe('/api/v1/things?x=1');
    expect(hit.body).toBe('{"name":"a"}');
    expect(hit.headers.authorization).toMatch(/^Bearer ey/);
    expect(hit.headers.authorization).not.toContain(token);
    expect(hit.headers.cookie).toBeUndefined();
    expect(hit.headers['x-custom']).toBe('kept');
    expect(hit.headers['x-imp-session']).toBe(id);
    expect(answer.headers.get('set-cookie')).toBeNull();
    expect((await events(id, 'action.completed'))[0]!.data).toMatchObject({ kind: 'write', status: 200 });
  });

  it('forwards request headers from an allow-list: path, method and client-address overrides never arrive', async () => {
    const { token, id } = await openSession('globex', 'read');
    const smuggled = {
      'x-original-url': '/admin/delete-all',
      'x-rewrite-url': '/admin/delete-all',
      'x-forwarded-prefix': '/admin',
      'x-forwarded-for': '10.0.0.1',
      'x-forwarded-host': 'internal.example',
      'x-real-ip': '10.0.0.1',
      'x-client-ip': '10.0.0.1',
      'true-client-ip': '10.0.0.1',
      forwarded: 'for=10.0.0.1',
      'x-original-method': 'DELETE',
      'x-unknown-to-imp': 'dropped',
    };
    const answer = await proxy(token, id, 'GET', '/v1/users', undefined, {
      ...smuggled,
      accept: 'application/json',
      'if-none-match': '"v1"',
    });
    expect(answer.status).toBe(200);
    const hit = hits.at(-1)!;
    expect(hit.url).toBe('/api/v1/users');
    for (const name of Object.keys(smuggled)) expect(hit.headers[name], name).toBeUndefined();
    expect(hit.headers.accept).toBe('application/json');
    expect(hit.headers['if-none-match']).toBe('"v1"');
  });

  it.each([
    ['?_method=DELETE', 'GET', undefined, 'scope.method_override'],
    ['?method=delete', 'GET', undefined, 'scope.method_override'],
    ['?a=1;_method=PUT', 'HEAD', undefined, 'scope.method_override'],
    ['?_method[]=PATCH', 'GET', undefined, 'scope.method_override'],
    ['', 'OPTIONS', '{"delete":true}', 'scope.read_body'],
  ] as const)(
    'read-only: %s on %s is refused before the upstream (%s)',
    async (query, method, body, rule) => {
      const { token, id } = await openSession('globex', 'read');
      const before = hits.length;
      const answer = await proxy(token, id, method, `/v1/users${query}`, body);
      expect(answer.status).toBe(403);
      if (method !== 'HEAD') expect(answer.text).toContain(rule);
      expect(hits.length).toBe(before);
      expect((await events(id, 'action.denied')).at(-1)!.data).toMatchObject({ method, rule });
    },
  );

  it('write sessions may still send ?method= (it is only a read-only rule)', async () => {
    const { token, id } = await openSession('globex', 'write');
    expect((await proxy(token, id, 'GET', '/v1/payments?method=card')).status).toBe(200);
    expect(hits.at(-1)!.url).toBe('/api/v1/payments?method=card');
  });

  it('classifies exports and audits downloads with their size', async () => {
    const { token, id } = await openSession('acme', 'read');
    const answer = await proxy(token, id, 'GET', '/v1/export/users.csv');
    expect(answer.status).toBe(200);
    expect((await events(id, 'action.completed'))[0]!.data).toMatchObject({
      kind: 'export',
      bytes: Buffer.byteLength(answer.text),
    });
  });

  it('refuses bodies over the limit', async () => {
    const { token, id } = await openSession('globex', 'write');
    const answer = await proxy(token, id, 'POST', '/v1/upload', 'x'.repeat(250_000));
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('proxy.max_body');
  });

  it('another person cannot use my session', async () => {
    const { id } = await openSession('globex', 'read');
    t.clock.advance(1100);
    const bob = await t.loginAs('bob');
    expect((await proxy(bob, id, 'GET', '/v1/users')).status).toBe(404);
  });

  it('an ended session is refused at once (410)', async () => {
    const { token, id } = await openSession('globex', 'read');
    await t.call('POST', `/v1/sessions/${id}/end`, token);
    const answer = await proxy(token, id, 'GET', '/v1/users');
    expect(answer.status).toBe(410);
    expect((await events(id, 'action.denied'))[0]!.data).toMatchObject({ rule: 'session.ended' });
  });
});

describe('ending cuts calls in flight', () => {
  /** Starts a streaming download and resolves once its first bytes arrived, with a promise of its end. */
  async function startDownload(token: string, id: string) {
    const response = await fetch(`${t.broker.url}/v1/sessions/${id}/proxy/v1/stream`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    await reader.read();
    const ended = (async () => {
      try {
        for (;;) if ((await reader.read()).done) return 'done';
      } catch {
        return 'cut';
      }
    })();
    return { ended };
  }

  /** Waits (bounded) for the cut to be audited. */
  async function cutEvent(id: string) {
    for (let i = 0; i < 100; i++) {
      const found = (await events(id, 'action.cut'))[0];
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error('no action.cut');
  }

  it.each([
    [
      'ended by its owner',
      'ended',
      async (token: string, id: string) => t.call('POST', `/v1/sessions/${id}/end`, token),
    ],
    [
      'revoked by security',
      'revoked',
      async (_token: string, id: string) =>
        t.call('POST', `/v1/sessions/${id}/revoke`, await t.loginAs('erin'), { reason: 'cut test' }),
    ],
    [
      'expired',
      'expired',
      async () => {
        t.clock.advance(601_000);
      },
    ],
  ] as const)(
    'a download is cut within a second when the session is %s, and audited as cut',
    async (_what, state, end) => {
      const { token, id } = await openSession('globex', 'read');
      const { ended } = await startDownload(token, id);
      const at = Date.now();
      await end(token, id);
      expect(await ended).toBe('cut');
      expect(Date.now() - at).toBeLessThan(1000);
      const cut = await cutEvent(id);
      expect(cut.data).toMatchObject({ state, method: 'GET', path: '/v1/stream', status: 200 });
      expect((cut.data as { bytes: number }).bytes).toBeGreaterThan(0);
      expect(await events(id, 'action.completed')).toEqual([]);
    },
  );
});

describe('one watch per session, whatever the calls in flight', () => {
  it('two downloads on one session are both cut by one end, each audited as cut; no watch is left behind', async () => {
    // Count the repeating timers started from here on, and the ones stopped.
    let live = 0;
    const every = vi.spyOn(t.clock, 'every').mockImplementation((ms, fn, options) => {
      live++;
      const cancel = systemClock.every(ms, fn, options);
      let cancelled = false;
      return () => {
        if (!cancelled) live--;
        cancelled = true;
        cancel();
      };
    });
    const { token, id } = await openSession('globex', 'read');
    const first = await fetch(`${t.broker.url}/v1/sessions/${id}/proxy/v1/stream`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const second = await fetch(`${t.broker.url}/v1/sessions/${id}/proxy/v1/stream`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const drain = async (response: Response) => {
      const reader = response.body!.getReader();
      await reader.read();
      try {
        for (;;) if ((await reader.read()).done) return 'done';
      } catch {
        return 'cut';
      }
    };
    const ended = Promise.all([drain(first), drain(second)]);
    // Both calls share one poll timer.
    expect(live).toBe(1);
    await t.call('POST', `/v1/sessions/${id}/end`, token);
    expect(await ended).toEqual(['cut', 'cut']);
    await expect.poll(async () => (await events(id, 'action.cut')).length).toBe(2);
    expect(live).toBe(0);
    every.mockRestore();
  });
});

describe('exec credential (what imp exec gives its child)', () => {
  async function mint(token: string, id: string) {
    return t.call<{ credential: string; expires_at: string }>(
      'POST',
      `/v1/sessions/${id}/exec-credential`,
      token,
    );
  }

  it("opens only its own session's proxy, audited as the person, and nothing else", async () => {
    const { token, id } = await openSession('globex', 'read');
    const minted = await mint(token, id);
    expect(minted.status).toBe(201);
    const credential = minted.body.credential;
    expect(credential).not.toBe(token);
    expect((await events(id, 'session.exec_credential'))[0]!.data).toMatchObject({
      expires_at: minted.body.expires_at,
    });
    const answer = await proxy(credential, id, 'GET', '/v1/users');
    expect(answer.status).toBe(200);
    expect(hits.at(-1)!.headers.authorization).not.toContain(credential);
    expect((await events(id, 'action.completed')).at(-1)!.actor).toMatchObject({ sub: 'user-alice' });
    // Not a broker token anywhere else.
    for (const [method, path] of [
      ['GET', '/v1/whoami'],
      ['GET', '/v1/sessions'],
      ['POST', `/v1/sessions/${id}/exec-credential`],
      ['POST', `/v1/sessions/${id}/end`],
      ['GET', `/v1/sessions/${id}/summary`],
    ] as const)
      expect((await t.call(method, path, credential)).status, path).toBe(401);
    // Nor for another session of the same person.
    const other = await openSession('acme', 'read');
    expect((await proxy(credential, other.id, 'GET', '/v1/users')).status).toBe(404);
  });

  it('dies with its session: refused once the session ends', async () => {
    const { token, id } = await openSession('globex', 'read');
    const { credential } = (await mint(token, id)).body;
    expect((await proxy(credential, id, 'GET', '/v1/users')).status).toBe(200);
    await t.call('POST', `/v1/sessions/${id}/end`, token);
    expect((await proxy(credential, id, 'GET', '/v1/users')).status).toBe(410);
  });

  it('expires when its session does', async () => {
    const { token, id } = await openSession('globex', 'read');
    const minted = await mint(token, id);
    const session = await t.call<{ session: { expires_at: string } }>('GET', `/v1/sessions/${id}`, token);
    expect(minted.body.expires_at).toBe(session.body.session.expires_at);
    const exp = JSON.parse(Buffer.from(minted.body.credential.split('.')[1]!, 'base64url').toString()).exp;
    const end = Date.parse(session.body.session.expires_at);
    expect(exp * 1000).toBeLessThanOrEqual(end);
    expect(exp * 1000).toBeGreaterThan(end - 1000);
  });

  it("only the session's owner can mint one, and only for an active session", async () => {
    const { token, id } = await openSession('globex', 'read');
    t.clock.advance(1100);
    const bob = await t.loginAs('bob');
    expect((await mint(bob, id)).status).toBe(403);
    expect((await events(id, 'access.denied')).at(-1)!.data).toMatchObject({ rule: 'session.owner' });
    await t.call('POST', `/v1/sessions/${id}/end`, token);
    expect((await mint(token, id)).status).toBe(410);
  });
});

describe('fail-closed', () => {
  it('when the audit log cannot be written the call is not made and the client gets 503', async () => {
    const { token, id } = await openSession('globex', 'read');
    const before = hits.length;
    const lock = new Database(join(t.stateDir, 'imp.db'));
    lock.exec('BEGIN EXCLUSIVE');
    try {
      const answer = await proxy(token, id, 'GET', '/v1/users');
      expect(answer.status).toBe(503);
      expect(JSON.parse(answer.text).error.code).toBe('IMP_AUDIT_UNAVAILABLE');
      expect(hits.length).toBe(before);
    } finally {
      lock.exec('ROLLBACK');
      lock.close();
    }
    expect((await proxy(token, id, 'GET', '/v1/users')).status).toBe(200);
  }, 20_000);
});
