/**
 * Machine sessions at the broker, against real HTTP: a workload issuer (its own key, discovery
 * document and JWKS on loopback) trusted by the policy, and an echo upstream that records what
 * reached it. What the end-to-end tests cannot see from the CLI: one token is bound to its one
 * session, the session token's `act` names the machine, the allow-list sees the path the upstream
 * routes on, and the audit records every refusal.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

const SUBJECT = 'repo:org/runbooks:ref:refs/heads/main';
let t: TestBroker;
let issuerServer: Server;
let issuer: string;
let key: CryptoKey;
let echo: Server;
const hits: { url: string; headers: IncomingHttpHeaders }[] = [];

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  issuerServer = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/jwks' ? { keys: [jwk] } : { issuer, jwks_uri: `${issuer}/jwks` }));
  });
  issuer = await listen(issuerServer);
  echo = createServer((req, res) => {
    hits.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  const echoUrl = await listen(echo);
  t = await startTestBroker({
    policyYaml: (idp) => `
identity: { issuer: ${idp}, client_id: imp-cli }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h }
tenants:
  - { id: globex, upstream: { prod: ${echoUrl}/api } }
machines:
  - { name: ci-diag, issuer: ${issuer}, subject: '${SUBJECT}', tenants: [globex], allow: ['GET /v1/users', 'GET /v1/queue/*'], ticket_required: false }
`,
  });
}, 30_000);

afterAll(async () => {
  await t?.close();
  issuerServer?.close();
  echo?.close();
});

async function workloadToken(): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
    .setIssuer(issuer)
    .setSubject(SUBJECT)
    .setAudience(t.broker.url)
    .setIssuedAt()
    .setExpirationTime('5m')
    .setJti(randomUUID())
    .sign(key);
}

async function open(grant: 'exchange' | 'bearer' = 'exchange') {
  const token = await workloadToken();
  const params: Record<string, string> =
    grant === 'exchange'
      ? {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: token,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        }
      : { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: token };
  const response = await fetch(`${t.broker.url}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...params, tenant: 'globex', reason: 'Nightly queue diagnostics' }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { access_token: string; session: { id: string; ticket: string } };
}

const proxy = (token: string, session: string, path: string, method = 'GET') =>
  fetch(`${t.broker.url}/v1/sessions/${session}/proxy${path}`, {
    method,
    headers: { authorization: `Bearer ${token}` },
  });

// node:http sends the path as written: fetch (WHATWG URL) would resolve `..` and `%2e%2e` itself.
function rawGet(token: string, session: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${t.broker.url}/v1/sessions/${session}/proxy`,
      { path: `/v1/sessions/${session}/proxy${path}`, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('machine sessions', () => {
  it('opens by token exchange or JWT bearer grant, without a ticket where the entry allows, and the session token names the machine', async () => {
    const a = await open('exchange');
    const b = await open('bearer');
    expect(a.session.ticket).toBe('');
    const response = await proxy(b.access_token, b.session.id, '/v1/users');
    expect(response.status).toBe(200);
    const forwarded = String(hits.at(-1)!.headers.authorization).replace('Bearer ', '');
    const claims = decodeJwt(forwarded);
    expect(claims.act).toEqual({ sub: SUBJECT, iss: issuer, email: null, machine: 'ci-diag' });
    expect(claims.scope).toBe('tenant:read');
    expect(claims.sid).toBe(b.session.id);
  });

  it("one token is bound to its own session: the same machine's other session is not its to read, use or end", async () => {
    const a = await open();
    const b = await open();
    expect((await proxy(a.access_token, b.session.id, '/v1/users')).status).toBe(404);
    const read = await fetch(`${t.broker.url}/v1/sessions/${b.session.id}`, {
      headers: { authorization: `Bearer ${a.access_token}` },
    });
    expect(read.status).toBe(404);
    const end = await fetch(`${t.broker.url}/v1/sessions/${b.session.id}/end`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.access_token}` },
    });
    expect(end.status).toBe(404);
    const denied = await t.store.readAudit({ session: b.session.id, type: 'action.denied' });
    expect(denied.map((e) => e.data.rule)).toEqual(['session.owner']);
    expect((await proxy(b.access_token, b.session.id, '/v1/users')).status).toBe(200);
  });

  it('the allow-list is checked on the path the upstream routes on, and every refusal is audited with its rule', async () => {
    const { access_token: token, session } = await open();
    const before = hits.length;
    const cases: [string, number, string][] = [
      ['/v1/queue/jobs', 200, ''],
      ['/v1/users?x=1', 200, ''],
      ['/v1/queue/jobs/17', 403, 'machine.path_allowlist'],
      ['/v1/invoices', 403, 'machine.path_allowlist'],
      ['/v1/queue/../invoices', 400, 'path.escape'],
      ['/v1/queue/%2e%2e/invoices', 400, 'path.escape'],
      ['/v1/queue/x%2Finvoices', 400, 'path.escape'],
      ['/v1/%75sers', 400, 'path.escape'],
      // Canonically /v1/users, but not as sent: an allow-list refuses rather than guess what routes where.
      ['/v1/users;x=1', 403, 'machine.path_allowlist'],
    ];
    for (const [path, status] of cases) expect(await rawGet(token, session.id, path), path).toBe(status);
    expect(hits.slice(before).map((h) => h.url)).toEqual(['/api/v1/queue/jobs', '/api/v1/users?x=1']);
    const denied = await t.store.readAudit({ session: session.id, type: 'action.denied' });
    expect(denied.map((e) => e.data.rule)).toEqual(
      cases.filter(([, s]) => s !== 200).map(([, , rule]) => rule),
    );
    expect(denied.every((e) => e.actor?.sub === SUBJECT && e.actor.roles[0] === 'machine:ci-diag')).toBe(
      true,
    );
  });

  it("the exec credential of a machine session is that machine's: same allow-list, same one session", async () => {
    const a = await open();
    const b = await open();
    const mint = (token: string, id: string) =>
      fetch(`${t.broker.url}/v1/sessions/${id}/exec-credential`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    expect((await mint(a.access_token, b.session.id)).status).toBe(403);
    const minted = await mint(a.access_token, a.session.id);
    expect(minted.status).toBe(201);
    const { credential } = (await minted.json()) as { credential: string };
    expect((await proxy(credential, a.session.id, '/v1/users')).status).toBe(200);
    expect((await proxy(credential, a.session.id, '/v1/invoices')).status).toBe(403);
    expect((await proxy(credential, b.session.id, '/v1/users')).status).toBe(404);
    const denied = await t.store.readAudit({ session: a.session.id, type: 'action.denied' });
    expect(denied.map((e) => [e.data.rule, e.actor?.roles])).toEqual([
      ['machine.path_allowlist', ['machine:ci-diag']],
    ]);
    const refused = await t.store.readAudit({ session: b.session.id, type: 'access.denied' });
    expect(refused.map((e) => e.data.rule)).toEqual(['session.owner']);
  });

  it('a write is refused by scope before the allow-list, and the machine token opens nothing else', async () => {
    const { access_token: token, session } = await open();
    const write = await proxy(token, session.id, '/v1/users', 'POST');
    expect(write.status).toBe(403);
    expect(JSON.stringify(await write.json())).toContain('scope.read_only');
    for (const [method, path] of [
      ['GET', '/v1/sessions'],
      ['GET', '/v1/audit/events'],
      ['GET', '/v1/review'],
      ['GET', '/v1/tenants'],
    ]) {
      const response = await fetch(`${t.broker.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status, path).toBe(403);
      expect(JSON.stringify(await response.json())).toContain('machine.route');
    }
    const whoami = await fetch(`${t.broker.url}/v1/whoami`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(((await whoami.json()) as { user: { sub: string; roles: string[] } }).user).toMatchObject({
      sub: SUBJECT,
      roles: [],
    });
    const routeDenials = await t.store.readAudit({ type: 'access.denied', actor: SUBJECT });
    expect(routeDenials.filter((e) => e.data.rule === 'machine.route')).toHaveLength(4);
  });

  it('refuses a parameter given twice and an unknown grant, before looking at any token', async () => {
    const twice = await fetch(`${t.broker.url}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=a&grant_type=b',
    });
    expect(twice.status).toBe(400);
    const unknown = await fetch(`${t.broker.url}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(await unknown.json())).toContain('grant_type must be');
  });
});
