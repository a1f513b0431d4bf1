/**
 * A corpus of hostile requests against the broker API: malformed JSON, huge bodies, wrong types,
 * unicode and control-character tricks, forged, mangled and replayed tokens, other people's ids,
 * path and method tricks on the proxy, header injection. Each must get a clear 4xx with a JSON
 * error body carrying a code, leave the broker answering /healthz, reach no upstream, change no
 * state, and write an audit event exactly where a denial is worth recording (and nothing else).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueLoginToken, LOGIN_TOKEN_AUDIENCE, LOGIN_TOKEN_TYPE } from '../../src/broker/login-tokens.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { exchange, idTokenSigner, type RawAnswer, rawRequest } from '../helpers/id-tokens.js';

let t: TestBroker;
let upstream: Server;
let upstreamHits = 0;
let signIdToken: Awaited<ReturnType<typeof idTokenSigner>>;

/** What the corpus refers to: people, their sessions and requests, captured tokens. */
const s = {
  alice: '',
  bob: '',
  mallory: '',
  erin: '',
  carol: '', // approves acme only; confirms break-glass
  aliceSession: '', // alice, read, globex
  bobSession: '', // bob, write, globex
  aliceRequest: '', // alice, pending write on acme
  sessionToken: '', // an at+jwt the proxy minted for alice's session
  usedIdToken: '', // already exchanged once
};

beforeAll(async () => {
  upstream = createServer((req, res) => {
    upstreamHits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ authorization: req.headers.authorization ?? null }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/api`;
  t = await startTestBroker({
    policyYaml: (issuer) => `
identity: { issuer: ${issuer}, client_id: imp-cli }
proxy: { timeout: 5s, max_body_bytes: 100000, export_scope: forbidden }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h }
  - { name: lead, groups: [support-leads], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h, approve: true }
  - { name: security, groups: [security], audit: true, review: true, revoke: true }
  - { name: acme-lead, groups: [sre-oncall], tenants: [acme], environments: ['*'], scopes: [read, write], max_ttl: 1h, approve: true, break_glass_confirm: true }
tenants:
  - { id: acme, approval_required: [write], upstream: { prod: ${upstreamUrl} } }
  - { id: globex, upstream: { prod: ${upstreamUrl} } }
  - { id: initech, upstream: { prod: ${upstreamUrl} } }
`,
  });
  signIdToken = await idTokenSigner(t.idp);
  const ask = { environment: 'prod', ticket: 'SUP-1', reason: 'Hostile input corpus setup', ttl: 3000 };
  s.alice = await t.loginAs('alice');
  const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', s.alice, {
    ...ask,
    tenant: 'globex',
  });
  s.aliceSession = opened.body.session.id;
  t.clock.advance(1100);
  s.alice = await t.loginAs('alice');
  const requested = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', s.alice, {
    ...ask,
    tenant: 'acme',
    scope: 'write',
  });
  expect(requested.status).toBe(202);
  s.aliceRequest = requested.body.session.id;
  s.bob = await t.loginAs('bob');
  const bobs = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', s.bob, {
    ...ask,
    tenant: 'globex',
    scope: 'write',
  });
  expect(bobs.status).toBe(201);
  s.bobSession = bobs.body.session.id;
  s.mallory = await t.loginAs('mallory');
  s.erin = await t.loginAs('erin');
  s.carol = await t.loginAs('carol');
  const proxied = await fetch(`${t.broker.url}/v1/sessions/${s.aliceSession}/proxy/v1/users`, {
    headers: { authorization: `Bearer ${s.alice}` },
  });
  s.sessionToken = ((await proxied.json()) as { authorization: string }).authorization.slice(
    'Bearer '.length,
  );
  s.usedIdToken = await signIdToken({ user: 'alice' });
  await exchange(t.broker.url, s.usedIdToken);
  upstreamHits = 0;
});

afterAll(async () => {
  await t?.close();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
});

interface Reply {
  status: number;
  body: unknown;
}

/** One hostile request and what the broker must do with it. */
interface HostileCase {
  name: string;
  send: () => Promise<Reply>;
  status: number;
  code: string;
  /** The denial that must be audited (type, and rule when the event names one); none otherwise. */
  audited?: { type: string; rule?: string; reason?: string; stored?: { ticket?: string; reason?: string } };
}

async function api(
  method: string,
  path: string,
  options: { token?: string; json?: unknown; body?: string | Buffer; type?: string; headers?: object } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...(options.headers as Record<string, string>) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | Uint8Array<ArrayBuffer> | undefined =
    typeof options.body === 'string' || options.body === undefined
      ? options.body
      : new Uint8Array(options.body);
  if (options.json !== undefined) body = JSON.stringify(options.json);
  if (body !== undefined) headers['content-type'] = options.type ?? 'application/json';
  const response = await fetch(t.broker.url + path, { method, headers, ...(body ? { body } : {}) });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed };
}

const raw = async (head: string, body?: string | Buffer): Promise<RawAnswer> =>
  rawRequest(t.broker.url, head, body);
const host = () => `Host: ${new URL(t.broker.url).host}`;
const proxyRaw = (target: string, token = s.alice, method = 'GET') =>
  raw(
    `${method} /v1/sessions/${s.aliceSession}/proxy${target} HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${token}`,
  );
const session = (extra: Record<string, unknown>) => ({
  tenant: 'initech',
  environment: 'prod',
  scope: 'read',
  ticket: 'SUP-2',
  reason: 'Looking at the customer invoices',
  ttl: 600,
  ...extra,
});
const postSession = (json: unknown, token = s.alice) => api('POST', '/v1/sessions', { token, json });
const login = (idToken: unknown) => api('POST', '/v1/login', { json: { id_token: idToken } });

/** A JWS with the given header and payload and a signature that means nothing. */
function unsigned(header: object, payload: object, signature = ''): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(payload)}.${signature}`;
}

/** The same ES256 token with s replaced by n − s: another valid encoding of one signature. */
function malleate(token: string): string {
  const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  const [head, payload, signature] = token.split('.') as [string, string, string];
  const bytes = Buffer.from(signature, 'base64url');
  const sValue = BigInt(`0x${bytes.subarray(32).toString('hex')}`);
  const flipped = Buffer.from((n - sValue).toString(16).padStart(64, '0'), 'hex');
  return `${head}.${payload}.${Buffer.concat([bytes.subarray(0, 32), flipped]).toString('base64url')}`;
}

function flipSignatureChar(token: string): string {
  const at = token.lastIndexOf('.') + 10;
  return token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);
}

async function loginClaims(): Promise<Parameters<typeof issueLoginToken>[2]> {
  const now = Math.floor(t.clock.now() / 1000);
  const me = await t.call<{ user: { sub: string; iss: string } }>('GET', '/v1/whoami', s.alice);
  const { payload } = JSON.parse(
    `{"payload":${Buffer.from(s.alice.split('.')[1]!, 'base64url').toString('utf8')}}`,
  ) as { payload: { jti: string } };
  return {
    loginId: payload.jti,
    iss: me.body.user.iss,
    sub: me.body.user.sub,
    email: 'alice@example.test',
    name: null,
    groups: ['support', 'support-leads', 'security'],
    authTime: now,
    expiresAt: now + 3600,
  };
}

const INVALID = 'IMP_INVALID_INPUT';
const AUTH = 'IMP_AUTH_REQUIRED';
const REFUSED_LOGIN = { type: 'auth.login_refused' };

const corpus: HostileCase[] = [
  // Malformed JSON and wrong content types
  {
    name: 'truncated JSON',
    send: () => api('POST', '/v1/sessions', { token: s.alice, body: '{"tenant":' }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'not JSON at all',
    send: () => api('POST', '/v1/login', { body: 'id_token=abc' }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'JSON sent as text/plain',
    send: () => api('POST', '/v1/sessions', { token: s.alice, body: '{}', type: 'text/plain' }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'empty JSON body',
    send: () => api('POST', '/v1/login', { body: ' ', type: 'application/json' }),
    status: 400,
    code: INVALID,
  },
  {
    name: '__proto__ pollution',
    send: () =>
      api('POST', '/v1/sessions', {
        token: s.alice,
        body: '{"__proto__":{"scope":"write"},"tenant":"globex"}',
      }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'constructor.prototype pollution',
    send: () => api('POST', '/v1/login', { body: '{"constructor":{"prototype":{"id_token":"x"}}}' }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'deeply nested JSON',
    send: () =>
      api('POST', '/v1/sessions', {
        token: s.alice,
        body: `{"tenant":${'['.repeat(20000)}${']'.repeat(20000)}}`,
      }),
    status: 400,
    code: INVALID,
  },
  { name: 'JSON array body', send: () => postSession([session({})]), status: 400, code: INVALID },
  // Huge bodies
  {
    name: '100 KB session request',
    send: () => postSession(session({ reason: 'x'.repeat(100_000) })),
    status: 400,
    code: INVALID,
  },
  {
    name: '1 MB login body',
    send: () => api('POST', '/v1/login', { body: Buffer.alloc(1_000_000, 0x61) }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'proxied upload declaring more than max_body_bytes',
    send: () =>
      raw(
        `PUT /v1/sessions/${s.bobSession}/proxy/v1/files HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${s.bob}\r\nContent-Type: application/octet-stream\r\nContent-Length: 300000`,
        'x'.repeat(1000),
      ),
    status: 400,
    code: INVALID,
    audited: { type: 'action.denied', rule: 'proxy.max_body' },
  },
  {
    name: 'ID token over 16 KiB',
    send: () => login('a'.repeat(20_000)),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  // Wrong types
  {
    name: 'tenant as a number',
    send: () => postSession(session({ tenant: 42 })),
    status: 400,
    code: INVALID,
  },
  { name: 'unknown scope', send: () => postSession(session({ scope: 'admin' })), status: 400, code: INVALID },
  {
    name: 'scope as a list',
    send: () => postSession(session({ scope: ['write'] })),
    status: 400,
    code: INVALID,
  },
  {
    name: 'ttl as a duration string',
    send: () => postSession(session({ ttl: '30m' })),
    status: 400,
    code: INVALID,
  },
  {
    name: 'ttl of 1e400 (Infinity)',
    send: () =>
      api('POST', '/v1/sessions', {
        token: s.alice,
        body: JSON.stringify(session({})).replace('"ttl":600', '"ttl":1e400'),
      }),
    status: 400,
    code: INVALID,
  },
  { name: 'negative ttl', send: () => postSession(session({ ttl: -5 })), status: 400, code: INVALID },
  { name: 'fractional ttl', send: () => postSession(session({ ttl: 1.5 })), status: 400, code: INVALID },
  {
    name: 'ticket as a number',
    send: () => postSession(session({ ticket: 12345 })),
    status: 400,
    code: INVALID,
    audited: { type: 'session.refused', rule: 'ticket.required' },
  },
  {
    name: 'reason as an object',
    send: () => postSession(session({ reason: { text: 'long enough reason' } })),
    status: 400,
    code: INVALID,
    audited: { type: 'session.refused', rule: 'reason.required' },
  },
  { name: 'id_token as a number', send: () => login(42), status: 400, code: INVALID },
  { name: 'id_token as a list', send: () => login(['a.b.c']), status: 400, code: INVALID },
  {
    name: 'approval comment as an object',
    send: () =>
      api('POST', `/v1/requests/${s.aliceRequest}/approve`, { token: s.bob, json: { comment: { x: 1 } } }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'denial reason as a number',
    send: () => api('POST', `/v1/requests/${s.aliceRequest}/deny`, { token: s.bob, json: { reason: 12 } }),
    status: 400,
    code: INVALID,
  },
  // Unicode tricks and control characters
  {
    name: 'bidi override in the reason',
    send: () => postSession(session({ reason: 'Fix invoices \u202eesrever ni' })),
    status: 400,
    code: INVALID,
    audited: {
      type: 'session.refused',
      rule: 'reason.control_characters',
      stored: { reason: 'Fix invoices \\u202eesrever ni' },
    },
  },
  ...(
    [
      ['a zero-width space', '\u200b'],
      ['a right-to-left mark', '\u200f'],
      ['an Arabic letter mark', '\u061c'],
      ['a word joiner', '\u2060'],
      ['an invisible separator', '\u2063'],
      ['a byte-order mark', '\ufeff'],
      ['a first-strong isolate', '\u2068'],
    ] as const
  ).map(
    ([what, ch]): HostileCase => ({
      name: `${what} in the reason`,
      send: () => postSession(session({ reason: `Looking at the${ch} invoices` })),
      status: 400,
      code: INVALID,
      audited: {
        type: 'session.refused',
        rule: 'reason.control_characters',
        stored: { reason: `Looking at the\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')} invoices` },
      },
    }),
  ),
  {
    name: 'a zero-width joiner in the ticket',
    send: () => postSession(session({ ticket: 'SUP-\u200d2' })),
    status: 400,
    code: INVALID,
    audited: { type: 'session.refused', rule: 'ticket.pattern', stored: { ticket: 'SUP-\\u200d2' } },
  },
  {
    name: 'a 100 KB ticket with escapes is stored escaped and bounded',
    send: () => postSession(session({ ticket: `\u001b[2J${'9'.repeat(5000)}` })),
    status: 400,
    code: INVALID,
    audited: {
      type: 'session.refused',
      rule: 'ticket.pattern',
      stored: { ticket: `\\x1b[2J${'9'.repeat(120)}…` },
    },
  },
  {
    name: 'NUL in the reason',
    send: () => postSession(session({ reason: 'Looking at\u0000 the invoices' })),
    status: 400,
    code: INVALID,
    audited: { type: 'session.refused', rule: 'reason.control_characters' },
  },
  {
    name: 'terminal escape in the reason',
    send: () => postSession(session({ reason: 'Invoices \u001b]0;pwned\u0007 check' })),
    status: 400,
    code: INVALID,
    audited: { type: 'session.refused', rule: 'reason.control_characters' },
  },
  {
    name: 'U+2028 line separator in the reason',
    send: () => postSession(session({ reason: 'Invoices\u2028Approved: yes' })),
    status: 400,
    code: INVALID,
    audited: { type: 'session.refused', rule: 'reason.control_characters' },
  },
  {
    name: 'newline after the ticket',
    send: () => postSession(session({ ticket: 'SUP-2\n' })),
    status: 400,
    code: INVALID,
    audited: { type: 'session.refused', rule: 'ticket.pattern' },
  },
  {
    name: 'full-width digits in the ticket',
    send: () => postSession(session({ ticket: 'SUP-１２３' })),
    status: 400,
    code: INVALID,
    audited: { type: 'session.refused', rule: 'ticket.pattern' },
  },
  {
    name: 'overlong ticket',
    send: () => postSession(session({ ticket: `SUP-${'1'.repeat(100)}` })),
    status: 400,
    code: INVALID,
    audited: { type: 'session.refused', rule: 'ticket.pattern' },
  },
  {
    name: 'Cyrillic homoglyph in the tenant',
    send: () => postSession(session({ tenant: 'glob\u0435x' })),
    status: 400,
    code: INVALID,
  },
  {
    name: 'NUL after the tenant',
    send: () => postSession(session({ tenant: 'globex\u0000' })),
    status: 400,
    code: INVALID,
  },
  {
    name: 'overlong UTF-8 bytes in the tenant',
    send: () =>
      api('POST', '/v1/sessions', {
        token: s.alice,
        body: Buffer.concat([
          Buffer.from('{"tenant":"glob'),
          Buffer.from([0xc0, 0xaf, 0xe0, 0x80, 0xae]),
          Buffer.from('ex","ticket":"SUP-2","reason":"Looking at the invoices"}'),
        ]),
      }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'CR/LF in an approval comment',
    send: () =>
      api('POST', `/v1/requests/${s.aliceRequest}/approve`, {
        token: s.bob,
        json: { comment: 'ok\r\nApproved-By: ceo' },
      }),
    status: 400,
    code: INVALID,
  },
  // Forged and mangled broker tokens
  {
    name: 'broker token with a flipped signature character',
    send: () => api('GET', '/v1/whoami', { token: flipSignatureChar(s.alice) }),
    status: 401,
    code: AUTH,
  },
  {
    name: 'broker token with alg none',
    send: () =>
      api('GET', '/v1/whoami', {
        token: unsigned(
          { alg: 'none', typ: LOGIN_TOKEN_TYPE },
          JSON.parse(Buffer.from(s.alice.split('.')[1]!, 'base64url').toString()),
        ),
      }),
    status: 401,
    code: AUTH,
  },
  {
    name: 'broker token HMAC-signed with the public JWKS',
    send: async () => {
      const jwks = JSON.stringify((await api('GET', '/.well-known/jwks.json')).body);
      const claims = JSON.parse(Buffer.from(s.alice.split('.')[1]!, 'base64url').toString());
      const forged = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: LOGIN_TOKEN_TYPE })
        .sign(new TextEncoder().encode(jwks));
      return api('GET', '/v1/whoami', { token: forged });
    },
    status: 401,
    code: AUTH,
  },
  {
    name: 'broker token signed by a foreign key under the real kid',
    send: async () => {
      const { privateKey } = await generateKeyPair('ES256');
      const kid = JSON.parse(Buffer.from(s.alice.split('.')[0]!, 'base64url').toString()).kid as string;
      const claims = JSON.parse(Buffer.from(s.alice.split('.')[1]!, 'base64url').toString());
      const forged = await new SignJWT({ ...claims, groups: ['security'] })
        .setProtectedHeader({ alg: 'ES256', kid, typ: LOGIN_TOKEN_TYPE })
        .sign(privateKey);
      return api('GET', '/v1/audit/events', { token: forged });
    },
    status: 401,
    code: AUTH,
  },
  {
    name: 'expired broker token signed with the real login key',
    send: async () => {
      const claims = await loginClaims();
      const now = Math.floor(t.clock.now() / 1000);
      const token = await issueLoginToken(
        t.broker.deps.keys,
        t.broker.url,
        { ...claims, expiresAt: now - 60 },
        t.clock.now() - 3600_000,
      );
      return api('GET', '/v1/whoami', { token });
    },
    status: 401,
    code: AUTH,
  },
  {
    name: 'broker token for another audience (real key)',
    send: async () => {
      const key = t.broker.deps.keys.active('login');
      const claims = JSON.parse(Buffer.from(s.alice.split('.')[1]!, 'base64url').toString());
      const forged = await new SignJWT({ ...claims, aud: `${LOGIN_TOKEN_AUDIENCE}-admin` })
        .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: LOGIN_TOKEN_TYPE })
        .sign(key.privateKey);
      return api('GET', '/v1/whoami', { token: forged });
    },
    status: 401,
    code: AUTH,
  },
  {
    name: 'session token (at+jwt) used as a broker token',
    send: () => api('GET', '/v1/sessions', { token: s.sessionToken }),
    status: 401,
    code: AUTH,
  },
  {
    name: 'ID token used as a broker token',
    send: async () => api('GET', '/v1/whoami', { token: await signIdToken({ user: 'erin' }) }),
    status: 401,
    code: AUTH,
  },
  {
    name: 'Basic credentials',
    send: () => api('GET', '/v1/whoami', { headers: { authorization: 'Basic YWxpY2U6YWxpY2U=' } }),
    status: 401,
    code: AUTH,
  },
  {
    name: 'a 9000-character bearer token',
    send: () => api('GET', '/v1/whoami', { token: 'a'.repeat(9000) }),
    status: 401,
    code: AUTH,
  },
  {
    name: 'token in the query string',
    send: () => api('GET', `/v1/whoami?access_token=${s.alice}`),
    status: 401,
    code: AUTH,
  },
  // Forged, mangled and replayed ID tokens (every refusal audited)
  {
    name: 'ID token with alg none',
    send: async () =>
      login(
        unsigned(
          { alg: 'none', typ: 'JWT' },
          JSON.parse(
            Buffer.from((await signIdToken({ user: 'erin' })).split('.')[1]!, 'base64url').toString(),
          ),
        ),
      ),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  {
    name: "ID token HMAC-signed with the IdP's public key",
    send: async () => {
      const { d: _d, ...publicJwk } = t.idp.signingKeys[0]!;
      const claims = JSON.parse(
        Buffer.from((await signIdToken({ user: 'erin' })).split('.')[1]!, 'base64url').toString(),
      );
      const forged = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', kid: publicJwk.kid! })
        .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
      return login(forged);
    },
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  {
    name: 'ID token signed by an attacker key named in jku',
    send: async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwk = await exportJWK(publicKey);
      const claims = JSON.parse(
        Buffer.from((await signIdToken({ user: 'erin' })).split('.')[1]!, 'base64url').toString(),
      );
      const forged = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'attacker', jku: 'http://127.0.0.1:9/jwks.json', jwk })
        .sign(privateKey);
      return login(forged);
    },
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  {
    name: 'ID token for another client',
    send: async () => login(await signIdToken({ user: 'erin', audience: 'another-app' })),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  {
    name: 'ID token expired beyond the leeway',
    send: async () => login(await signIdToken({ user: 'erin', now: Math.floor(Date.now() / 1000) - 1200 })),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  {
    name: 'ID token with auth_time in the future',
    send: async () => login(await signIdToken({ user: 'erin', authAgeSeconds: -600 })),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  {
    name: 'session token (at+jwt) used as an ID token',
    send: () => login(s.sessionToken),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  {
    name: 'broker token used as an ID token',
    send: () => login(s.alice),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  {
    name: 'a two-part token',
    send: () => login('eyJhbGciOiJFUzI1NiJ9.e30'),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: REFUSED_LOGIN,
  },
  {
    name: 'replayed ID token',
    send: () => login(s.usedIdToken),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: { type: 'auth.login_refused', reason: 'replayed_id_token' },
  },
  {
    name: 'replayed ID token with a malleated signature (s → n − s)',
    send: () => login(malleate(s.usedIdToken)),
    status: 401,
    code: 'IMP_AUTH_FAILED',
    audited: { type: 'auth.login_refused', reason: 'replayed_id_token' },
  },
  // Other people's sessions and requests
  {
    name: "mallory reads alice's session",
    send: () => api('GET', `/v1/sessions/${s.aliceSession}`, { token: s.mallory }),
    status: 404,
    code: 'IMP_NOT_FOUND',
  },
  {
    name: "mallory reads alice's session summary",
    send: () => api('GET', `/v1/sessions/${s.aliceSession}/summary`, { token: s.mallory }),
    status: 404,
    code: 'IMP_NOT_FOUND',
  },
  // Overseers read only what they oversee.
  ...(
    [
      ["alice's globex session", () => `/v1/sessions/${s.aliceSession}`],
      ["alice's globex session summary", () => `/v1/sessions/${s.aliceSession}/summary`],
      ["bob's globex session", () => `/v1/sessions/${s.bobSession}`],
    ] as const
  ).map(
    ([what, path]): HostileCase => ({
      name: `carol (approver for acme, confirmer) reads ${what}`,
      send: () => api('GET', path(), { token: s.carol }),
      status: 403,
      code: 'IMP_FORBIDDEN',
      audited: { type: 'access.denied', rule: 'oversee.scope' },
    }),
  ),
  {
    name: "alice ends bob's session",
    send: () => api('POST', `/v1/sessions/${s.bobSession}/end`, { token: s.alice }),
    status: 404,
    code: 'IMP_NOT_FOUND',
  },
  {
    name: "bob (an approver) ends alice's session",
    send: () => api('POST', `/v1/sessions/${s.aliceSession}/end`, { token: s.bob }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'access.denied', rule: 'session.owner' },
  },
  {
    name: "alice proxies through bob's session",
    send: () => api('GET', `/v1/sessions/${s.bobSession}/proxy/v1/users`, { token: s.alice }),
    status: 404,
    code: 'IMP_NOT_FOUND',
    audited: { type: 'action.denied', rule: 'session.owner' },
  },
  {
    name: 'alice approves her own request',
    send: () => api('POST', `/v1/requests/${s.aliceRequest}/approve`, { token: s.alice, json: {} }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'access.denied', rule: 'approval.self' },
  },
  {
    name: "mallory approves alice's request",
    send: () => api('POST', `/v1/requests/${s.aliceRequest}/approve`, { token: s.mallory, json: {} }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'access.denied', rule: 'role.approve' },
  },
  {
    name: "mallory denies alice's request",
    send: () =>
      api('POST', `/v1/requests/${s.aliceRequest}/deny`, { token: s.mallory, json: { reason: 'no' } }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'access.denied', rule: 'role.approve' },
  },
  {
    name: "alice revokes bob's session",
    send: () => api('POST', `/v1/sessions/${s.bobSession}/revoke`, { token: s.alice, json: {} }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'access.denied', rule: 'role.revoke' },
  },
  {
    name: 'mallory reads the audit log',
    send: () => api('GET', '/v1/audit/events', { token: s.mallory }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'access.denied', rule: 'role.audit' },
  },
  {
    name: 'mallory exports the audit log',
    send: () => api('GET', '/v1/audit/export', { token: s.mallory }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'access.denied', rule: 'role.audit' },
  },
  {
    name: 'approving a request id that does not exist',
    send: () =>
      api('POST', '/v1/requests/00000000-0000-4000-8000-000000000000/approve', { token: s.bob, json: {} }),
    status: 404,
    code: 'IMP_NOT_FOUND',
  },
  // Query tricks
  {
    name: 'a repeated state filter',
    send: () => api('GET', '/v1/sessions?state=active&state=pending', { token: s.alice }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'a repeated audit tenant filter',
    send: () => api('GET', '/v1/audit/events?tenant=acme&tenant=globex', { token: s.erin }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'a repeated groups list in policy explain',
    send: () => api('GET', '/v1/policy/explain?tenant=acme&groups=a&groups=b', { token: s.erin }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'an unknown session state',
    send: () => api('GET', '/v1/sessions?state=active,pwned', { token: s.alice }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'audit limit 0',
    send: () => api('GET', '/v1/audit/events?limit=0', { token: s.erin }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'audit since that is not a time',
    send: () => api('GET', '/v1/audit/events?since=yesterday', { token: s.erin }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'a long-poll wait of "forever"',
    send: () => api('GET', `/v1/sessions/${s.aliceSession}?wait=forever`, { token: s.alice }),
    status: 400,
    code: INVALID,
  },
  {
    name: 'invalid percent-encoding in a route',
    send: () => raw(`GET /v1/sessions/%E0%A4%A HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${s.alice}`),
    status: 400,
    code: INVALID,
  },
  // Path tricks on the proxy (sent raw: fetch would normalise them)
  ...(
    [
      ['a dot-dot segment', '/../secret'],
      ['an encoded dot-dot', '/%2e%2e/secret'],
      ['encoded slashes', '/v1%2f..%2fsecret'],
      ['a protocol-relative path', '//evil.example/'],
      ['an absolute URL', '/http://evil.example/x'],
      ['a servlet path parameter dot-dot', '/..;/admin'],
      ['backslashes', '/v1\\..\\secret'],
      ['an encoded NUL', '/v1/users%00.json'],
      ['a 5000-character path', `/${'a/'.repeat(2500)}`],
      ['a percent-encoded letter in an export path', '/v1/%65xport/users.csv'],
      ['an encoded slash before an export', '/v1%2Fexport/users.csv'],
      ['a double-encoded export path', '/v1/%2565xport/users.csv'],
      ['an encoded hyphen', '/v1/users/u%2Dl'],
    ] as const
  ).map(
    ([what, path]): HostileCase => ({
      name: `proxy path with ${what}`,
      send: () => proxyRaw(path),
      status: 400,
      code: INVALID,
      audited: { type: 'action.denied', rule: 'path.escape' },
    }),
  ),
  // Spellings a router reads as the export path: classified on the canonical form.
  ...(
    [
      ['upper case', '/v1/EXPORT/users.csv'],
      ['a doubled slash', '/v1//export/users.csv'],
      ['a path parameter', '/v1/export;jsessionid=1/users.csv'],
    ] as const
  ).map(
    ([what, path]): HostileCase => ({
      name: `export with ${what} (export_scope: forbidden)`,
      send: () => proxyRaw(path),
      status: 403,
      code: 'IMP_FORBIDDEN',
      audited: { type: 'action.denied', rule: 'export.forbidden' },
    }),
  ),
  // The router refuses a URL it cannot decode before any session is looked up: nothing to audit.
  {
    name: 'proxy path with overlong UTF-8 dots',
    send: () => proxyRaw('/%C0%AE%C0%AE/secret'),
    status: 400,
    code: INVALID,
  },
  // Method tricks
  {
    name: 'POST through a read-only session',
    send: () =>
      api('POST', `/v1/sessions/${s.aliceSession}/proxy/v1/users`, { token: s.alice, json: { name: 'x' } }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'action.denied', rule: 'scope.read_only' },
  },
  {
    name: 'X-HTTP-Method-Override in a read-only session',
    send: () =>
      api('GET', `/v1/sessions/${s.aliceSession}/proxy/v1/users`, {
        token: s.alice,
        headers: { 'x-http-method-override': 'DELETE' },
      }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'action.denied', rule: 'scope.method_override' },
  },
  ...(
    [
      ['?_method=DELETE', '/v1/users/1?_method=DELETE'],
      ['?method=DELETE', '/v1/users/1?method=DELETE'],
      ['an encoded ?_%6Dethod=', '/v1/users/1?_%6Dethod=DELETE'],
      ['?_method after a ;', '/v1/users/1?a=1;_method=DELETE'],
    ] as const
  ).map(
    ([what, path]): HostileCase => ({
      name: `${what} in a read-only session`,
      send: () => proxyRaw(path),
      status: 403,
      code: 'IMP_FORBIDDEN',
      audited: { type: 'action.denied', rule: 'scope.method_override' },
    }),
  ),
  {
    name: 'X-HTTP-Method in a read-only session',
    send: () =>
      api('GET', `/v1/sessions/${s.aliceSession}/proxy/v1/users`, {
        token: s.alice,
        headers: { 'x-http-method': 'DELETE' },
      }),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'action.denied', rule: 'scope.method_override' },
  },
  {
    name: 'OPTIONS with a body in a read-only session',
    send: () =>
      raw(
        `OPTIONS /v1/sessions/${s.aliceSession}/proxy/v1/users HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${s.alice}\r\nContent-Type: application/json\r\nContent-Length: 15`,
        '{"delete":true}',
      ),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'action.denied', rule: 'scope.read_body' },
  },
  {
    name: 'GET with a chunked body in a read-only session',
    send: () =>
      raw(
        `GET /v1/sessions/${s.aliceSession}/proxy/v1/users HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${s.alice}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked`,
        'f\r\n{"delete":true}\r\n0\r\n\r\n',
      ),
    status: 403,
    code: 'IMP_FORBIDDEN',
    audited: { type: 'action.denied', rule: 'scope.read_body' },
  },
  {
    name: 'PROPFIND through the proxy',
    send: () => proxyRaw('/v1/users', s.alice, 'PROPFIND'),
    status: 404,
    code: 'IMP_NOT_FOUND',
  },
  {
    name: 'TRACE on the API',
    send: () => raw(`TRACE /v1/sessions HTTP/1.1\r\n${host()}`),
    status: 404,
    code: 'IMP_NOT_FOUND',
  },
  {
    name: 'DELETE on a session',
    send: () => api('DELETE', `/v1/sessions/${s.aliceSession}`, { token: s.alice }),
    status: 404,
    code: 'IMP_NOT_FOUND',
  },
  {
    name: 'an invented method',
    send: () => raw(`FROB /healthz HTTP/1.1\r\n${host()}`),
    status: 400,
    code: INVALID,
  },
  {
    name: 'a lower-case method',
    send: () => raw(`get /healthz HTTP/1.1\r\n${host()}`),
    status: 400,
    code: INVALID,
  },
  // Header injection and request smuggling
  {
    name: 'CR inside a header value',
    send: () =>
      raw(`GET /v1/whoami HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${s.alice}\rX-Injected: 1`),
    status: 400,
    code: INVALID,
  },
  {
    name: 'LF inside a header value',
    send: () => raw(`GET /v1/whoami HTTP/1.1\r\n${host()}\r\nX-Note: a\nAuthorization: Bearer ${s.erin}`),
    status: 400,
    code: INVALID,
  },
  {
    name: 'NUL inside a header value',
    send: () => raw(`GET /v1/whoami HTTP/1.1\r\n${host()}\r\nX-Note: a\u0000b`),
    status: 400,
    code: INVALID,
  },
  {
    name: 'a space before the header colon',
    send: () => raw(`GET /v1/whoami HTTP/1.1\r\n${host()}\r\nAuthorization : Bearer ${s.alice}`),
    status: 400,
    code: INVALID,
  },
  {
    name: 'Content-Length and Transfer-Encoding together',
    send: () =>
      raw(
        `POST /v1/login HTTP/1.1\r\n${host()}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked`,
        '0\r\n\r\nGET /v1/whoami HTTP/1.1\r\n\r\n',
      ),
    status: 400,
    code: INVALID,
  },
  {
    name: 'a control character in the request target',
    send: () => raw(`GET /v1/whoami\u0001 HTTP/1.1\r\n${host()}`),
    status: 400,
    code: INVALID,
  },
  {
    name: '20 KB of headers',
    send: () => raw(`GET /v1/whoami HTTP/1.1\r\n${host()}\r\nX-Padding: ${'p'.repeat(20_000)}`),
    status: 431,
    code: INVALID,
  },
];

async function auditHead(): Promise<number> {
  return (await t.store.auditHead())?.seq ?? 0;
}

async function sessionsSnapshot(): Promise<string> {
  return JSON.stringify(await t.store.listSessions({}));
}

describe('hostile input', () => {
  let sessionsBefore = '';
  let loginsBefore = 0;

  it('the corpus is at least 40 requests', async () => {
    console.log(`hostile corpus: ${corpus.length} requests`);
    expect(corpus.length).toBeGreaterThanOrEqual(40);
    sessionsBefore = await sessionsSnapshot();
    loginsBefore = (await t.store.readAudit({ type: 'auth.login' })).length;
  });

  it.each(corpus.map((c) => [c.name, c] as const))('%s', async (_name, hostile) => {
    const seq = await auditHead();
    const hits = upstreamHits;
    const answer = await hostile.send();
    const error = (answer.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    expect(answer.status, JSON.stringify(answer.body)).toBe(hostile.status);
    expect(error?.code, JSON.stringify(answer.body)).toBe(hostile.code);
    expect(typeof error?.message).toBe('string');
    expect((await fetch(`${t.broker.url}/healthz`)).status).toBe(200);
    expect(upstreamHits).toBe(hits);
    const written = await t.store.readAudit({ fromSeq: seq + 1 });
    if (!hostile.audited) {
      expect(written.map((e) => e.type)).toEqual([]);
      return;
    }
    expect(written.map((e) => e.type)).toEqual([hostile.audited.type]);
    const data = written[0]!.data;
    if (hostile.audited.rule) expect(data.rule).toBe(hostile.audited.rule);
    if (hostile.audited.reason) expect(data.reason).toBe(hostile.audited.reason);
    if (hostile.audited.stored?.ticket !== undefined)
      expect(written[0]!.ticket).toBe(hostile.audited.stored.ticket);
    if (hostile.audited.stored?.reason !== undefined)
      expect(written[0]!.reason).toBe(hostile.audited.stored.reason);
  });

  it('an approver still reads the requests of the tenants they approve', async () => {
    const answer = await api('GET', `/v1/sessions/${s.aliceRequest}`, { token: s.carol });
    expect(answer.status).toBe(200);
    expect((answer.body as { session: { tenant: string } }).session.tenant).toBe('acme');
  });

  it('changed no state: sessions, requests and logins are as before', async () => {
    expect(await sessionsSnapshot()).toBe(sessionsBefore);
    expect((await t.store.readAudit({ type: 'auth.login' })).length).toBe(loginsBefore);
    const session = await t.call<{ session: { state: string } }>(
      'GET',
      `/v1/sessions/${s.aliceSession}`,
      s.alice,
    );
    expect(session.body.session.state).toBe('active');
  });
});
