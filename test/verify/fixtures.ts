/** Session-token fixtures for verify and tenant-API tests: keys, signed and forged tokens, a fake broker. */
import { KeyObject, sign as signBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { DEFAULT_SESSION_AUDIENCE, type SessionTokenClaims } from '../../src/core/session-token.js';

/** Fixed "now" of the tests (ms). */
export const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);

/** A key pair with its public JWK (kid and alg set). */
export interface TestKey {
  kid: string;
  alg: 'ES256' | 'EdDSA';
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicPem: string;
}

/** Generates a key like the broker's session key. */
export async function makeKey(kid = 'session-test', alg: 'ES256' | 'EdDSA' = 'ES256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

/** Claims of a valid read session for acme, issued by `issuer`. */
export function claimsFor(issuer: string, overrides: Partial<SessionTokenClaims> = {}): SessionTokenClaims {
  const iat = Math.floor(NOW / 1000);
  return {
    iss: issuer,
    aud: DEFAULT_SESSION_AUDIENCE,
    sub: 'acme',
    act: { sub: 'alice-sub', iss: 'http://idp.test', email: 'alice@example.com' },
    scope: 'tenant:read',
    env: 'prod',
    sid: 'ses_0001',
    jti: 'jti_0001',
    ticket: 'SUP-1234',
    mode: 'standard',
    iat,
    exp: iat + 1800,
    ...overrides,
  };
}

/** Signs claims (keys listed in `omit` removed) with a test key; header fields can be overridden. */
export async function sign(
  key: TestKey,
  claims: object,
  options: { omit?: string[]; header?: Record<string, unknown> } = {},
): Promise<string> {
  const payload: Record<string, unknown> = { ...claims };
  for (const name of options.omit ?? []) delete payload[name];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...options.header })
    .sign(key.privateKey);
}

/** Signs any header with node:crypto (jose refuses to produce some of the tokens we must refuse). */
export function signRaw(key: TestKey, header: Record<string, unknown>, claims: object): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${part(header)}.${part(claims)}`;
  const privateKey = KeyObject.from(key.privateKey);
  const signature =
    key.alg === 'ES256'
      ? signBytes('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
      : signBytes(null, Buffer.from(input), privateKey);
  return `${input}.${signature.toString('base64url')}`;
}

/** An unsecured token (`alg: none`), as an attacker would send it. */
export function unsignedToken(claims: object, kid = 'session-test'): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'at+jwt', kid })}.${part(claims)}.`;
}

/** An HS256 token whose HMAC secret is public material (the key-confusion attack). */
export async function hmacToken(secret: string, claims: object, kid = 'session-test'): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' })
    .sign(new TextEncoder().encode(secret));
}

/** A stand-in for the broker: its JWKS and its token-status endpoint, counting status requests. */
export interface FakeBroker {
  url: string;
  keys: JWK[];
  /** Session ids the broker considers revoked. */
  revoked: Set<string>;
  /** When set, the status endpoint answers this HTTP status instead. */
  statusOverride: number | undefined;
  statusRequests: { sid: string | undefined; authorization: string | undefined }[];
  jwksRequests: number;
  close(): Promise<void>;
}

/** Starts a fake broker on loopback serving `keys`. */
export async function startFakeBroker(keys: JWK[]): Promise<FakeBroker> {
  const broker: FakeBroker = {
    url: '',
    keys,
    revoked: new Set(),
    statusOverride: undefined,
    statusRequests: [],
    jwksRequests: 0,
    close: async () => {},
  };
  const server = createServer((request: IncomingMessage, response) => {
    const reply = (status: number, body: unknown) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (request.url === '/.well-known/jwks.json') {
      broker.jwksRequests++;
      return reply(200, { keys: broker.keys });
    }
    if (request.url === '/v1/token-status') {
      const authorization = request.headers.authorization;
      const token = authorization?.replace(/^Bearer /, '') ?? '';
      const payload = token.split('.')[1];
      let sid: string | undefined;
      try {
        sid = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()).sid;
      } catch {
        sid = undefined;
      }
      broker.statusRequests.push({ sid, authorization });
      if (broker.statusOverride !== undefined) return reply(broker.statusOverride, { error: 'nope' });
      if (!sid) return reply(401, { error: 'invalid_token' });
      const active = !broker.revoked.has(sid);
      return reply(200, { active, state: active ? 'active' : 'revoked' });
    }
    reply(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  broker.url = `http://127.0.0.1:${address.port}`;
  broker.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return broker;
}

/** A loopback URL where nothing listens. */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${address.port}`;
}
