/**
 * POST /v1/login against a real oidc-provider's signing key: a token the IdP's key signed with the
 * right claims buys a broker token; every forgery, confusion and replay we know of is refused with
 * 401 IMP_AUTH_FAILED and an `auth.login_refused` audit event, and a hostile `jku`/`x5u` never makes
 * the broker fetch anything. Input errors (no token, wrong type, bad JSON, huge body) are 400s.
 */
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  base64url,
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker/server.js';
import { startBroker } from '../../src/broker/start.js';
import type { ErrorBody } from '../../src/core/api.js';
import type { AuditEvent } from '../../src/core/audit/event.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { systemClock } from '../../src/runtime/clock.js';
import { makeTempDir } from '../helpers/temp.js';

const CLIENT_ID = 'imp-cli';
/** The order of the P-256 group: (r, n - s) is as valid an ECDSA signature as (r, s). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

let idp: DevIdp;
let broker: Broker & { url: string };
let stateDir: string;
let idpKey: CryptoKey;
let idpJwk: JWK;
let idpAlg: string;
let idpKid: string;
let hostile: Server;
let hostileOrigin: string;
let hostileHits = 0;
const fetched: string[] = [];

beforeAll(async () => {
  idp = await startDevIdp();
  const signing = idp.signingKeys[0];
  if (!signing?.alg || !signing.kid)
    throw new Error('the dev IdP should expose a signing key with alg and kid');
  idpJwk = signing;
  idpAlg = signing.alg;
  idpKid = signing.kid;
  idpKey = (await importJWK(signing, idpAlg)) as CryptoKey;

  hostile = createServer((_req, res) => {
    hostileHits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
  });
  await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
  hostileOrigin = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;

  stateDir = makeTempDir('imp-login-test-');
  const recordingFetch: typeof fetch = (input, init) => {
    fetched.push(input instanceof Request ? input.url : String(input));
    return globalThis.fetch(input, init);
  };
  broker = await startBroker({
    policy: { text: devPolicyYaml(idp.issuer, 'http://127.0.0.1:9'), name: 'test' },
    stateDir,
    port: 0,
    clock: systemClock,
    log: () => {},
    fetch: recordingFetch,
  });
});

afterAll(async () => {
  await broker?.close();
  await idp?.close();
  await new Promise<void>((resolve) => (hostile ? hostile.close(() => resolve()) : resolve()));
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** ID-token claims the broker should accept, with overrides (`undefined` removes a claim). */
function claims(overrides: Record<string, unknown> = {}): JWTPayload {
  const now = nowSeconds();
  const base: Record<string, unknown> = {
    iss: idp.issuer,
    aud: CLIENT_ID,
    sub: 'user-alice',
    email: 'alice@example.test',
    name: 'Alice Example',
    groups: ['support'],
    auth_time: now,
    iat: now,
    exp: now + 600,
    // Unique per token, so two otherwise identical forgeries are never the same string.
    jti: crypto.randomUUID(),
  };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete base[name];
    else base[name] = value;
  }
  return base;
}

/** Signs `payload` (default: valid claims) with `key` (default: the IdP's own private key). */
async function forge(
  payload: JWTPayload = claims(),
  header: Partial<JWTHeaderParameters> = {},
  key: CryptoKey | Uint8Array = idpKey,
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: idpAlg, kid: idpKid, ...header }).sign(key);
}

/** A JWS whose header and payload are built by hand: `alg: none`, odd `typ`s. */
function handMade(header: Record<string, unknown>, payload: JWTPayload, signature = ''): string {
  const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${encode(header)}.${encode(payload)}.${signature}`;
}

async function call(path: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(`${broker.url}${path}`, init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Left as text: the assertions below then fail with the raw answer in view.
  }
  return { status: response.status, headers: response.headers, body };
}

function postLogin(idToken: unknown): Promise<Answer> {
  return call('/v1/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id_token: idToken }),
  });
}

async function auditEvents(type: string): Promise<AuditEvent[]> {
  return broker.deps.store.readAudit({ type });
}

/** Presents `idToken`; asserts a 401 IMP_AUTH_FAILED, exactly one new refusal event with `reason`, no new login. */
async function expectRefused(idToken: string, reason: string, message: RegExp): Promise<Answer> {
  const refusedBefore = await auditEvents('auth.login_refused');
  const loginsBefore = await auditEvents('auth.login');
  const answer = await postLogin(idToken);
  expect(answer.status, JSON.stringify(answer.body)).toBe(401);
  expect(answer.headers.get('content-type')).toMatch(/application\/json/);
  expect(answer.body).toMatchObject({
    error: { code: 'IMP_AUTH_FAILED', message: expect.stringMatching(message) },
  });
  const refusedAfter = await auditEvents('auth.login_refused');
  expect(refusedAfter).toHaveLength(refusedBefore.length + 1);
  expect(refusedAfter.at(-1)?.data.reason).toBe(reason);
  expect(await auditEvents('auth.login')).toHaveLength(loginsBefore.length);
  return answer;
}

function errorOf(answer: Answer): ErrorBody['error'] {
  return (answer.body as ErrorBody).error;
}

describe('POST /v1/login accepts an ID token signed by the IdP', () => {
  it('returns a broker token and the roles the policy grants, and audits the login', async () => {
    const loginsBefore = await auditEvents('auth.login');
    const answer = await postLogin(await forge());
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const body = answer.body as { token: string; user: { sub: string; iss: string; roles: string[] } };
    expect(body.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(body.user).toMatchObject({ iss: idp.issuer, sub: 'user-alice', roles: ['support'] });
    expect(answer.headers.get('cache-control')).toBe('no-store');
    const logins = await auditEvents('auth.login');
    expect(logins).toHaveLength(loginsBefore.length + 1);
    expect(logins.at(-1)?.actor).toMatchObject({ iss: idp.issuer, sub: 'user-alice', roles: ['support'] });
    // The IdP's auth_time, amr and acr are recorded as its claims, never as facts about the login.
    expect(Object.keys(logins.at(-1)?.data ?? {}).sort()).toEqual(['groups', 'idp_claims', 'ip', 'login_id']);
    expect(logins.at(-1)?.data.idp_claims).toMatchObject({
      auth_time: expect.any(Number),
      amr: expect.any(Array),
    });

    const whoami = await call('/v1/whoami', { headers: { authorization: `Bearer ${body.token}` } });
    expect(whoami.status, JSON.stringify(whoami.body)).toBe(200);
    expect(whoami.body).toMatchObject({
      user: { sub: 'user-alice', email: 'alice@example.test', roles: ['support'] },
    });
  });

  it('accepts several audiences when azp names imp-cli', async () => {
    const answer = await postLogin(await forge(claims({ aud: [CLIENT_ID, 'other-client'], azp: CLIENT_ID })));
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  });

  it("fetches only the IdP's own discovery document and jwks_uri, through the injected fetch", async () => {
    const discovery = `${idp.issuer}/.well-known/openid-configuration`;
    const { jwks_uri } = (await (await fetch(discovery)).json()) as { jwks_uri: string };
    expect(new Set(fetched)).toEqual(new Set([discovery, jwks_uri]));
  });
});

describe('POST /v1/login refuses, audits and explains', () => {
  it('1. an expired token (beyond the 120 s leeway)', async () => {
    const now = nowSeconds();
    await expectRefused(
      await forge(claims({ iat: now - 900, auth_time: now - 900, exp: now - 300 })),
      'expired',
      /expired/,
    );
  });

  it('2. a token for another audience', async () => {
    await expectRefused(await forge(claims({ aud: 'some-other-client' })), 'claim_aud', /"aud" claim/);
  });

  it('3. a token from another issuer', async () => {
    await expectRefused(await forge(claims({ iss: 'https://evil.example' })), 'claim_iss', /"iss" claim/);
    await expectRefused(await forge(claims({ iss: `${idp.issuer}/` })), 'claim_iss', /"iss" claim/);
  });

  it('4. an unsigned token (alg: none)', async () => {
    await expectRefused(
      handMade({ alg: 'none', typ: 'JWT' }, claims()),
      'algorithm_not_allowed',
      /algorithm is not allowed/,
    );
    await expectRefused(
      handMade({ alg: 'none', kid: idpKid }, claims()),
      'algorithm_not_allowed',
      /algorithm is not allowed/,
    );
  });

  it("5. HS256 with the IdP's public key as the HMAC secret (key confusion)", async () => {
    const { d: _private, ...publicJwk } = idpJwk;
    const asJson = new TextEncoder().encode(JSON.stringify(publicJwk));
    const pem = await exportSPKI(
      (await importJWK({ ...publicJwk, ext: true }, idpAlg, { extractable: true })) as CryptoKey,
    );
    const asPem = new TextEncoder().encode(pem);
    for (const secret of [asJson, asPem]) {
      await expectRefused(
        await forge(claims(), { alg: 'HS256' }, secret),
        'algorithm_not_allowed',
        /algorithm is not allowed/,
      );
    }
  });

  it("6. a token signed by another key that claims the IdP key's kid", async () => {
    const { privateKey } = await generateKeyPair(idpAlg);
    await expectRefused(
      await forge(claims(), { kid: idpKid }, privateKey),
      'bad_signature',
      /signature does not verify/,
    );
  });

  it('7. a token signed by another key with an unknown kid', async () => {
    const { privateKey } = await generateKeyPair(idpAlg);
    await expectRefused(
      await forge(claims(), { kid: 'attacker-key-1' }, privateKey),
      'unknown_key',
      /not signed by a key of the identity provider/,
    );
  });

  it('8. hostile jku / x5u / kid headers: refused and never fetched', async () => {
    const { privateKey, publicKey } = await generateKeyPair(idpAlg, { extractable: true });
    const attackerJwk = { ...(await exportJWK(publicKey)), kid: '../../etc/passwd', alg: idpAlg };
    expect(attackerJwk.kid).toBe('../../etc/passwd');
    const headers: Partial<JWTHeaderParameters>[] = [
      { kid: '../../etc/passwd', jku: `${hostileOrigin}/jwks.json` },
      { kid: '../../etc/passwd', x5u: `${hostileOrigin}/cert.pem` },
      {
        kid: '../../etc/passwd',
        jku: `${hostileOrigin}/jwks.json`,
        x5u: `${hostileOrigin}/cert.pem`,
        jwk: attackerJwk,
      },
    ];
    for (const header of headers) {
      const answer = await postLogin(await forge(claims(), header, privateKey));
      expect(answer.status, JSON.stringify(answer.body)).toBe(401);
      expect(errorOf(answer).code).toBe('IMP_AUTH_FAILED');
    }
    // The IdP's real kid with a hostile jku: the key still comes from the IdP, so the forgery fails.
    await expectRefused(
      await forge(claims(), { jku: `${hostileOrigin}/jwks.json` }, privateKey),
      'bad_signature',
      /signature/,
    );
    const refused = await auditEvents('auth.login_refused');
    expect(refused.slice(-4).map((e) => e.data.reason)).toEqual([
      'unknown_key',
      'unknown_key',
      'unknown_key',
      'bad_signature',
    ]);
    expect(hostileHits).toBe(0);
    expect(fetched.some((url) => url.startsWith(hostileOrigin))).toBe(false);
  });

  it('9. an access token (typ at+jwt) signed by the IdP', async () => {
    await expectRefused(
      await forge(claims(), { typ: 'at+jwt' }),
      'wrong_type',
      /"at\+jwt" is not an ID token/,
    );
    await expectRefused(
      await forge(claims(), { typ: 'application/at+jwt' }),
      'wrong_type',
      /not an ID token/,
    );
  });

  it("10. the broker's own tokens presented as ID tokens", async () => {
    const login = await postLogin(await forge());
    expect(login.status).toBe(200);
    const brokerToken = (login.body as { token: string }).token;
    await expectRefused(brokerToken, 'wrong_type', /"imp-login\+jwt" is not an ID token/);

    // A token made with the broker's session key, typed and shaped like an ID token.
    const session = broker.deps.keys.active('session');
    const sessionKind = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'ES256', kid: session.kid, typ: 'JWT' })
      .sign(session.privateKey);
    await expectRefused(sessionKind, 'unknown_key', /not signed by a key of the identity provider/);
  });

  it('11. a token without auth_time', async () => {
    await expectRefused(
      await forge(claims({ auth_time: undefined })),
      'claim_auth_time',
      /"auth_time" claim/,
    );
  });

  it('12. a token whose auth_time is in the future', async () => {
    await expectRefused(
      await forge(claims({ auth_time: nowSeconds() + 3600 })),
      'bad_auth_time',
      /auth_time/,
    );
  });

  it('12b. a token whose auth_time is a minute ahead: inside the token leeway, but not a fresh login', async () => {
    await expectRefused(await forge(claims({ auth_time: nowSeconds() + 60 })), 'bad_auth_time', /auth_time/);
  });

  it('13. the same ID token exchanged twice', async () => {
    const idToken = await forge();
    expect((await postLogin(idToken)).status).toBe(200);
    const answer = await expectRefused(idToken, 'replayed_id_token', /already exchanged/);
    expect(errorOf(answer).details).toMatchObject({ reason: 'replayed_id_token' });
  });

  it('13b. the same ID token replayed with an equivalent signature encoding', async () => {
    const idToken = await forge();
    expect((await postLogin(idToken)).status).toBe(200);
    const [header, payload, signature] = idToken.split('.') as [string, string, string];

    // base64url's last character carries spare bits decoders ignore: same bytes, different string.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(signature.at(-1)!);
    const sibling = alphabet[last ^ 1]!;
    const respelled = `${header}.${payload}.${signature.slice(0, -1)}${sibling}`;
    expect(base64url.decode(signature.slice(0, -1) + sibling)).toEqual(base64url.decode(signature));
    await expectRefused(respelled, 'replayed_id_token', /already exchanged/);

    // ECDSA malleability: (r, n - s) verifies as well as (r, s).
    if (idpAlg === 'ES256') {
      const bytes = base64url.decode(signature);
      const s = BigInt(`0x${Buffer.from(bytes.slice(32)).toString('hex')}`);
      const flipped = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex');
      const malleated = `${header}.${payload}.${base64url.encode(Buffer.concat([bytes.slice(0, 32), flipped]))}`;
      await expectRefused(malleated, 'replayed_id_token', /already exchanged/);
    }
  });

  it('15. several audiences without azp = imp-cli', async () => {
    await expectRefused(
      await forge(claims({ aud: [CLIENT_ID, 'other-client'] })),
      'wrong_audience',
      /another party/,
    );
    await expectRefused(
      await forge(claims({ aud: [CLIENT_ID, 'other-client'], azp: 'other-client' })),
      'wrong_audience',
      /another party/,
    );
  });

  it('garbage strings are refused as malformed tokens', async () => {
    for (const garbage of ['garbage', 'a.b.c', '..', 'x'.repeat(20_000), '€.€.€']) {
      await expectRefused(garbage, 'malformed', /malformed/);
    }
  });

  it('a header with a non-string typ is refused, not a server error', async () => {
    await expectRefused(
      handMade({ alg: idpAlg, kid: idpKid, typ: 1 }, claims(), 'AAAA'),
      'wrong_type',
      /not an ID token/,
    );
    await expectRefused(
      handMade({ alg: idpAlg, kid: idpKid, typ: ['JWT'] }, claims(), 'AAAA'),
      'wrong_type',
      /not an ID token/,
    );
  });
});

describe('POST /v1/login input errors are 400s, not auth refusals', () => {
  async function expectInvalid(init: RequestInit, message: RegExp): Promise<void> {
    const refusedBefore = await auditEvents('auth.login_refused');
    const answer = await call('/v1/login', { method: 'POST', ...init });
    expect(answer.status, JSON.stringify(answer.body)).toBe(400);
    expect(answer.body).toMatchObject({
      error: { code: 'IMP_INVALID_INPUT', message: expect.stringMatching(message) },
    });
    expect(await auditEvents('auth.login_refused')).toHaveLength(refusedBefore.length);
  }
  const json = { 'content-type': 'application/json' };

  it('14. no token, a token of the wrong type, bad JSON, a body over 64 KiB', async () => {
    await expectInvalid({ headers: json, body: '{}' }, /id_token/);
    await expectInvalid({ headers: json, body: '{"id_token": 42}' }, /id_token/);
    await expectInvalid({ headers: json, body: '{"id_token": ""}' }, /id_token/);
    await expectInvalid({ headers: json, body: '{"id_token": null}' }, /id_token/);
    await expectInvalid({ headers: json, body: '{"id_token": ["a.b.c"]}' }, /id_token/);
    await expectInvalid({ headers: json, body: '[]' }, /id_token/);
    await expectInvalid({ headers: json, body: '{"id_token": "a.b.c"' }, /Bad request/);
    await expectInvalid({ headers: json, body: 'not json at all' }, /Bad request/);
    await expectInvalid(
      { headers: json, body: JSON.stringify({ id_token: 'x'.repeat(65 * 1024) }) },
      /too large/,
    );
  });
});

describe('GET /v1/whoami refuses what is not a broker token', () => {
  async function expectUnauthenticated(authorization: string | undefined): Promise<void> {
    const answer = await call(
      '/v1/whoami',
      authorization === undefined ? {} : { headers: { authorization } },
    );
    expect(answer.status, JSON.stringify(answer.body)).toBe(401);
    expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(answer.body).toMatchObject({
      error: { code: 'IMP_AUTH_REQUIRED', message: expect.stringMatching(/imp login/) },
    });
  }

  it('no token, a tampered token, an IdP-signed token typed imp-login+jwt, an ID token', async () => {
    await expectUnauthenticated(undefined);
    await expectUnauthenticated('Bearer');
    await expectUnauthenticated('Basic dXNlcjpwYXNz');

    const login = await postLogin(await forge());
    expect(login.status).toBe(200);
    const token = (login.body as { token: string }).token;
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const middle = Math.floor(signature.length / 2);
    const tampered = `${signature.slice(0, middle)}${signature[middle] === 'A' ? 'B' : 'A'}${signature.slice(middle + 1)}`;
    await expectUnauthenticated(`Bearer ${header}.${payload}.${tampered}`);

    const idpSigned = await new SignJWT({ idp_iss: idp.issuer, groups: ['support'], auth_time: nowSeconds() })
      .setProtectedHeader({ alg: idpAlg, kid: idpKid, typ: 'imp-login+jwt' })
      .setIssuer(broker.url)
      .setAudience('imp-broker')
      .setSubject('user-alice')
      .setJti(crypto.randomUUID())
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(idpKey);
    await expectUnauthenticated(`Bearer ${idpSigned}`);
    await expectUnauthenticated(`Bearer ${await forge()}`);

    // The untampered token still works: the refusals above were about the tokens, not the login.
    expect((await call('/v1/whoami', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });
});

describe('public endpoints', () => {
  it('GET /v1/config names the IdP and the client id', async () => {
    const answer = await call('/v1/config');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ issuer: idp.issuer, client_id: CLIENT_ID });
  });

  it('GET /.well-known/jwks.json publishes session and audit public keys only', async () => {
    const answer = await call('/.well-known/jwks.json');
    expect(answer.status).toBe(200);
    const { keys } = answer.body as { keys: JWK[] };
    expect(keys.length).toBeGreaterThanOrEqual(2);
    for (const key of keys) {
      expect(key.kid).toMatch(/^(session|audit)-/);
      expect(key).not.toHaveProperty('d');
      for (const part of ['p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(part);
    }
    expect(keys.map((k) => k.kid)).not.toContain(broker.deps.keys.active('login').kid);
  });
});
