import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createVerifier,
  fastifyImpersonation,
  type ImpersonationContext,
  ImpersonationError,
  requireImpersonation,
  requireWriteSession,
  type Verifier,
  type VerifierOptions,
} from '../../src/verify/index.js';
import {
  claimsFor,
  deadUrl,
  type FakeBroker,
  hmacToken,
  makeKey,
  NOW,
  sign,
  signRaw,
  startFakeBroker,
  type TestKey,
  unsignedToken,
} from './fixtures.js';

let key: TestKey;
let edKey: TestKey;
let strangerKey: TestKey;
let broker: FakeBroker;
let verifier: Verifier;

const make = (options: Partial<VerifierOptions> = {}): Verifier =>
  createVerifier({ issuer: broker.url, audience: 'imp-tenant-api', now: () => NOW, ...options });

async function refusal(promise: Promise<unknown>): Promise<ImpersonationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImpersonationError);
  return error as ImpersonationError;
}

beforeAll(async () => {
  key = await makeKey('session-1');
  edKey = await makeKey('session-ed', 'EdDSA');
  strangerKey = await makeKey('session-1'); // same kid, different key: a forger's guess
  broker = await startFakeBroker([key.publicJwk, edKey.publicJwk]);
  verifier = make();
});
afterAll(async () => {
  await broker.close();
});

describe('createVerifier: valid tokens', () => {
  it('returns the context of a valid ES256 token fetched through the remote JWKS', async () => {
    const token = await sign(key, claimsFor(broker.url));
    const context = await verifier.verify(token);
    expect(context).toEqual<ImpersonationContext>({
      tenant: 'acme',
      environment: 'prod',
      actor: { sub: 'alice-sub', iss: 'http://idp.test', email: 'alice@example.com' },
      scopes: ['read'],
      sessionId: 'ses_0001',
      mode: 'standard',
      ticket: 'SUP-1234',
      expiresAt: new Date(claimsFor(broker.url).exp * 1000),
      token,
    });
    expect(broker.jwksRequests).toBeGreaterThanOrEqual(1);
  });

  it('parses a write scope, break-glass mode, a null actor email and typ application/at+jwt', async () => {
    const claims = claimsFor(broker.url, {
      scope: 'tenant:read tenant:write',
      mode: 'break_glass',
      act: { sub: 'bob', iss: 'http://idp.test', email: null },
    });
    const context = await verifier.verify(await sign(key, claims, { header: { typ: 'application/AT+JWT' } }));
    expect(context.scopes).toEqual(['read', 'write']);
    expect(context.mode).toBe('break_glass');
    expect(context.actor.email).toBeNull();
  });

  it('accepts EdDSA and a local key set', async () => {
    const local = make({ jwks: { keys: [key.publicJwk, edKey.publicJwk] } });
    expect((await local.verify(await sign(edKey, claimsFor(broker.url)))).tenant).toBe('acme');
    expect((await local.verify(await sign(key, claimsFor(broker.url)))).tenant).toBe('acme');
  });

  it('tolerates 5 s of clock skew by default and no more', async () => {
    const iat = Math.floor(NOW / 1000);
    await expect(
      verifier.verify(await sign(key, claimsFor(broker.url, { exp: iat - 4 }))),
    ).resolves.toBeDefined();
    expect(
      (await refusal(verifier.verify(await sign(key, claimsFor(broker.url, { exp: iat - 6 }))))).code,
    ).toBe('expired');
    const lenient = make({ clockToleranceSeconds: 30 });
    await expect(
      lenient.verify(await sign(key, claimsFor(broker.url, { exp: iat - 20 }))),
    ).resolves.toBeDefined();
  });

  it('reads the token from an Authorization header', async () => {
    const token = await sign(key, claimsFor(broker.url));
    expect((await verifier.verifyRequest(`Bearer ${token}`)).token).toBe(token);
    expect((await verifier.verifyRequest(`bearer  ${token}`)).token).toBe(token);
    expect((await refusal(verifier.verifyRequest(undefined))).code).toBe('missing_token');
    expect((await refusal(verifier.verifyRequest(`Basic ${btoa('a:b')}`))).code).toBe('missing_token');
    expect((await refusal(verifier.verifyRequest('Bearer a b'))).code).toBe('invalid_token');
  });
});

describe('createVerifier: refusals', () => {
  const cases: [string, () => Promise<string>, ImpersonationError['code']][] = [
    ['alg none', async () => unsignedToken(claimsFor(broker.url)), 'invalid_token'],
    [
      'HS256 keyed with the public JWK JSON',
      () => hmacToken(JSON.stringify(key.publicJwk), claimsFor(broker.url)),
      'invalid_token',
    ],
    [
      'HS256 keyed with the public key PEM',
      () => hmacToken(key.publicPem, claimsFor(broker.url)),
      'invalid_token',
    ],
    ['wrong audience', () => sign(key, claimsFor(broker.url, { aud: 'another-api' })), 'wrong_audience'],
    ['wrong issuer', () => sign(key, claimsFor('https://evil.example')), 'wrong_issuer'],
    ['expired', () => sign(key, claimsFor(broker.url, { exp: Math.floor(NOW / 1000) - 3600 })), 'expired'],
    [
      'issued in the future',
      () => sign(key, claimsFor(broker.url, { iat: Math.floor(NOW / 1000) + 600 })),
      'invalid_token',
    ],
    ['unknown kid', () => sign({ ...key, kid: 'session-unknown' }, claimsFor(broker.url)), 'invalid_token'],
    ['no kid', () => sign(key, claimsFor(broker.url), { header: { kid: undefined } }), 'invalid_token'],
    ['a forger key under a known kid', () => sign(strangerKey, claimsFor(broker.url)), 'invalid_token'],
    ['typ JWT', () => sign(key, claimsFor(broker.url), { header: { typ: 'JWT' } }), 'invalid_token'],
    ['no typ', () => sign(key, claimsFor(broker.url), { header: { typ: undefined } }), 'invalid_token'],
    [
      'crit header',
      async () =>
        signRaw(
          key,
          { alg: 'ES256', kid: 'session-1', typ: 'at+jwt', crit: ['x'], x: 1 },
          claimsFor(broker.url),
        ),
      'invalid_token',
    ],
    [
      'a raw-signed token with a wrong audience (control: signRaw makes verifiable tokens)',
      async () =>
        signRaw(key, { alg: 'ES256', kid: 'session-1', typ: 'at+jwt' }, claimsFor(broker.url, { aud: 'x' })),
      'wrong_audience',
    ],
    ['missing act', () => sign(key, claimsFor(broker.url), { omit: ['act'] }), 'invalid_token'],
    [
      'missing act.sub',
      () => sign(key, claimsFor(broker.url, { act: { iss: 'x', email: null } as never })),
      'invalid_token',
    ],
    ['missing sub', () => sign(key, claimsFor(broker.url), { omit: ['sub'] }), 'invalid_token'],
    ['missing scope', () => sign(key, claimsFor(broker.url), { omit: ['scope'] }), 'invalid_token'],
    ['missing sid', () => sign(key, claimsFor(broker.url), { omit: ['sid'] }), 'invalid_token'],
    ['missing jti', () => sign(key, claimsFor(broker.url), { omit: ['jti'] }), 'invalid_token'],
    ['missing env', () => sign(key, claimsFor(broker.url), { omit: ['env'] }), 'invalid_token'],
    ['missing mode', () => sign(key, claimsFor(broker.url), { omit: ['mode'] }), 'invalid_token'],
    ['unknown mode', () => sign(key, claimsFor(broker.url, { mode: 'god' as never })), 'invalid_token'],
    [
      'write without read',
      () => sign(key, claimsFor(broker.url, { scope: 'tenant:write' })),
      'invalid_token',
    ],
    ['missing exp', () => sign(key, claimsFor(broker.url), { omit: ['exp'] }), 'invalid_token'],
    [
      'EdDSA header on an ES256 key',
      async () => {
        const [, payload, signature] = (await sign(key, claimsFor(broker.url))).split('.');
        const header = Buffer.from(
          JSON.stringify({ alg: 'EdDSA', kid: 'session-1', typ: 'at+jwt' }),
        ).toString('base64url');
        return `${header}.${payload}.${signature}`;
      },
      'invalid_token',
    ],
    [
      'a payload swapped under a valid signature',
      async () => {
        const [header, , signature] = (await sign(key, claimsFor(broker.url))).split('.');
        const payload = Buffer.from(JSON.stringify(claimsFor(broker.url, { sub: 'globex' }))).toString(
          'base64url',
        );
        return `${header}.${payload}.${signature}`;
      },
      'invalid_token',
    ],
    ['not a JWS', async () => 'not-a-token', 'invalid_token'],
  ];

  it.each(cases.map(([name, build, code]) => [name, code, build] as const))(
    '%s → %s',
    async (_name, code, build) => {
      const error = await refusal(verifier.verify(await build()));
      expect(error.code).toBe(code);
      expect(error.status).toBe(401);
    },
  );

  it('refuses any string without throwing anything but ImpersonationError', async () => {
    const local = make({ jwks: { keys: [key.publicJwk] } });
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc
            .tuple(fc.jsonValue(), fc.jsonValue(), fc.base64String())
            .map(([h, p, s]) => `${part(h)}.${part(p)}.${s}`),
          fc
            .record({
              alg: fc.constantFrom('ES256', 'EdDSA', 'none', 'HS256'),
              typ: fc.string(),
              kid: fc.string(),
            })
            .map((h) => `${part(h)}.${part(claimsFor(broker.url))}.AAAA`),
        ),
        async (token) => {
          await refusal(local.verify(token));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('answers 503 status_unavailable when the JWKS cannot be fetched', async () => {
    const down = createVerifier({ issuer: broker.url, jwksUrl: `${await deadUrl()}/jwks`, now: () => NOW });
    const error = await refusal(down.verify(await sign(key, claimsFor(broker.url))));
    expect([error.code, error.status]).toEqual(['status_unavailable', 503]);
  });
});

describe('keys by kind', () => {
  it.each(['audit-1', 'login-1', 'checkpoint', 'sessionx-1'])(
    'refuses a token signed by a published key whose kid is %j (not a session-token key)',
    async (kid) => {
      const other = await makeKey(kid);
      const local = make({ jwks: { keys: [key.publicJwk, other.publicJwk] } });
      const error = await refusal(local.verify(await sign(other, claimsFor(broker.url))));
      expect(error.code).toBe('invalid_token');
      expect(error.message).toContain('not a session-token key');
    },
  );

  it('refuses a session-kid key published for encryption (use: enc)', async () => {
    const enc = await makeKey('session-enc');
    const local = make({ jwks: { keys: [{ ...enc.publicJwk, use: 'enc' }] } });
    expect((await refusal(local.verify(await sign(enc, claimsFor(broker.url))))).code).toBe('invalid_token');
  });
});

describe('status check', () => {
  it('is on by default: a revoked session is refused without asking for the check', async () => {
    broker.revoked.add('ses_default_revoked');
    const token = await sign(key, claimsFor(broker.url, { sid: 'ses_default_revoked' }));
    expect((await refusal(make().verify(token))).code).toBe('revoked');
    expect(broker.statusRequests.at(-1)?.sid).toBe('ses_default_revoked');
  });

  it('is off only when turned off explicitly (statusCheck: false)', async () => {
    broker.revoked.add('ses_unchecked');
    const before = broker.statusRequests.length;
    const token = await sign(key, claimsFor(broker.url, { sid: 'ses_unchecked' }));
    await expect(make({ statusCheck: false }).verify(token)).resolves.toBeDefined();
    expect(broker.statusRequests.length).toBe(before);
  });

  it('refuses a revoked session with 401 revoked, sending the token to the broker', async () => {
    broker.revoked.add('ses_revoked');
    const checked = make({ statusCheck: { cacheSeconds: 0 } });
    const token = await sign(key, claimsFor(broker.url, { sid: 'ses_revoked' }));
    const error = await refusal(checked.verify(token));
    expect([error.code, error.status]).toEqual(['revoked', 401]);
    expect(broker.statusRequests.at(-1)).toEqual({ sid: 'ses_revoked', authorization: `Bearer ${token}` });
  });

  it('treats a 401 from the broker as revoked and any other failure as 503 (fail closed)', async () => {
    const checked = make({ statusCheck: { cacheSeconds: 0 } });
    const token = await sign(key, claimsFor(broker.url, { sid: 'ses_odd' }));
    broker.statusOverride = 401;
    expect((await refusal(checked.verify(token))).code).toBe('revoked');
    broker.statusOverride = 500;
    expect((await refusal(checked.verify(token))).code).toBe('status_unavailable');
    broker.statusOverride = undefined;
    await expect(checked.verify(token)).resolves.toBeDefined();
  });

  it('answers 503 when the status endpoint is down', async () => {
    const checked = make({ statusCheck: { url: `${await deadUrl()}/v1/token-status` } });
    const error = await refusal(checked.verify(await sign(key, claimsFor(broker.url, { sid: 'ses_down' }))));
    expect([error.code, error.status]).toEqual(['status_unavailable', 503]);
  });

  it('caches an answer per session for cacheSeconds', async () => {
    let now = NOW;
    const checked = make({ statusCheck: { cacheSeconds: 5 }, now: () => now });
    const token = await sign(key, claimsFor(broker.url, { sid: 'ses_cached' }));
    const asked = () => broker.statusRequests.filter((r) => r.sid === 'ses_cached').length;
    await Promise.all([checked.verify(token), checked.verify(token)]);
    await checked.verify(token);
    expect(asked()).toBe(1);
    broker.revoked.add('ses_cached');
    now += 4_000;
    await expect(checked.verify(token)).resolves.toBeDefined(); // still within the cache window
    now += 2_000;
    expect((await refusal(checked.verify(token))).code).toBe('revoked');
    expect(asked()).toBe(2);
  });
});

describe('middleware', () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const readGuard = requireImpersonation(verifier, {
      tenant: (req) => req.headers['x-tenant-id'] as string,
    });
    const writeGuard = requireImpersonation(verifier, { scope: 'write' });
    const stateChangingGet = requireWriteSession(verifier);
    server = createServer((req, res) => {
      if (req.url === '/v1/cache/flush') {
        // A GET that changes state: the one-line guard keeps read-only sessions out.
        void stateChangingGet(req, res).then((context) => {
          if (context) res.writeHead(200).end(JSON.stringify({ flushed: context.tenant }));
        });
        return;
      }
      if (req.url === '/express-style') {
        // Express calls the guard with next; the route then reads req.impersonation.
        void writeGuard(req, res, (error?: unknown) => {
          if (error) return res.writeHead(500).end();
          res.writeHead(200).end(
            JSON.stringify({
              tenant: (req as { impersonation?: ImpersonationContext }).impersonation?.tenant,
            }),
          );
        });
        return;
      }
      void readGuard(req, res).then((context) => {
        if (context) res.writeHead(200).end(JSON.stringify({ tenant: context.tenant }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    url = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const call = (path: string, token?: string, headers: Record<string, string> = {}) =>
    fetch(`${url}${path}`, {
      headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });

  it('lets a valid token through (node:http and Express styles)', async () => {
    const read = await sign(key, claimsFor(broker.url));
    const write = await sign(key, claimsFor(broker.url, { scope: 'tenant:read tenant:write' }));
    expect(await (await call('/plain', read)).json()).toEqual({ tenant: 'acme' });
    expect(await (await call('/express-style', write)).json()).toEqual({ tenant: 'acme' });
  });

  it('answers 401 per RFC 6750 for a missing or invalid token', async () => {
    const missing = await call('/plain');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect((await missing.json()).error).toBe('missing_token');
    const bad = await call('/plain', unsignedToken(claimsFor(broker.url)));
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    expect(await bad.json()).toMatchObject({
      error: 'invalid_token',
      message: expect.stringMatching(/algorithm/),
    });
  });

  it('answers 403 insufficient_scope to a read token where write is required', async () => {
    const response = await call('/express-style', await sign(key, claimsFor(broker.url)));
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_scope"/);
    expect((await response.json()).error).toBe('insufficient_scope');
  });

  it('requireWriteSession keeps read-only sessions off a GET that changes state', async () => {
    const read = await call('/v1/cache/flush', await sign(key, claimsFor(broker.url)));
    expect(read.status).toBe(403);
    expect((await read.json()).error).toBe('insufficient_scope');
    const write = await sign(key, claimsFor(broker.url, { scope: 'tenant:read tenant:write' }));
    expect(await (await call('/v1/cache/flush', write)).json()).toEqual({ flushed: 'acme' });
  });

  it("answers 403 wrong_tenant to another tenant's token where the route demands a tenant", async () => {
    const globex = await sign(key, claimsFor(broker.url, { sub: 'globex' }));
    const response = await call('/plain', globex, { 'x-tenant-id': 'acme' });
    expect(response.status).toBe(403);
    expect((await response.json()).error).toBe('wrong_tenant');
    expect((await call('/plain', globex, { 'x-tenant-id': 'globex' })).status).toBe(200);
  });

  it('works as a Fastify preHandler', async () => {
    const app = Fastify();
    app.get('/v1/things', { preHandler: fastifyImpersonation(verifier) }, async (request) => ({
      tenant: (request as { impersonation?: ImpersonationContext }).impersonation?.tenant,
    }));
    app.post('/v1/things', { preHandler: fastifyImpersonation(verifier, { scope: 'write' }) }, async () => ({
      ok: true,
    }));
    app.get(
      '/v1/tenants/:tenant/things',
      {
        preHandler: fastifyImpersonation(verifier, {
          tenant: (r) => (r.params as { tenant?: string }).tenant,
        }),
      },
      async () => ({ ok: true }),
    );
    const read = await sign(key, claimsFor(broker.url));
    const auth = { authorization: `Bearer ${read}` };
    expect((await app.inject({ method: 'GET', url: '/v1/things', headers: auth })).json()).toEqual({
      tenant: 'acme',
    });
    const denied = await app.inject({ method: 'POST', url: '/v1/things', headers: auth });
    expect([denied.statusCode, denied.json().error]).toEqual([403, 'insufficient_scope']);
    const anonymous = await app.inject({ method: 'GET', url: '/v1/things' });
    expect([anonymous.statusCode, anonymous.headers['www-authenticate']]).toEqual([401, 'Bearer']);
    expect(
      (await app.inject({ method: 'GET', url: '/v1/tenants/acme/things', headers: auth })).statusCode,
    ).toBe(200);
    const other = await app.inject({ method: 'GET', url: '/v1/tenants/globex/things', headers: auth });
    expect([other.statusCode, other.json().error]).toEqual([403, 'wrong_tenant']);
    await app.close();
  });
});
