/** Session tokens as tenant services see them: a compact ES256 JWS that jose and imp/verify accept. */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { BrokerDeps } from '../../src/broker/context.js';
import { KeyRing } from '../../src/broker/keys.js';
import { mintSessionToken } from '../../src/broker/session-tokens.js';
import { FakeClock } from '../../src/core/clock.js';
import type { SessionRecord } from '../../src/store/types.js';
import { createVerifier } from '../../src/verify/index.js';

const clock = new FakeClock();
const session = {
  id: '0b9c7a52-3c1e-4f7e-9d36-6a0c2f1e8b11',
  mode: 'standard',
  requester: { iss: 'https://idp.example.com', sub: 'user-alice', email: 'alice@example.test', roles: [] },
  tenant: 'acme',
  environment: 'prod',
  scope: 'write',
  ticket: 'SUP-1',
  expiresAt: clock.now() + 600_000,
} as unknown as SessionRecord;

describe('mintSessionToken', () => {
  it('signs an at+jwt that jose and imp/verify accept, with every claim a tenant service relies on', async () => {
    const keys = await KeyRing.load(null, clock.now());
    const deps = {
      keys,
      clock,
      issuer: 'https://imp.example.com',
      policy: { sessions: { audience: 'imp-tenant-api' } },
    } as unknown as BrokerDeps;
    const token = await mintSessionToken(deps, session);
    expect(decodeProtectedHeader(token)).toEqual({
      alg: 'ES256',
      kid: keys.active('session').kid,
      typ: 'at+jwt',
    });
    const { payload } = await jwtVerify(token, createLocalJWKSet(keys.jwks(clock.now())), {
      issuer: 'https://imp.example.com',
      audience: 'imp-tenant-api',
      typ: 'at+jwt',
      algorithms: ['ES256'],
      currentDate: new Date(clock.now()),
    });
    expect(payload).toMatchObject({
      sub: 'acme',
      act: { sub: 'user-alice', iss: 'https://idp.example.com', email: 'alice@example.test' },
      scope: 'tenant:read tenant:write',
      env: 'prod',
      sid: session.id,
      ticket: 'SUP-1',
      mode: 'standard',
      iat: Math.floor(clock.now() / 1000),
      exp: Math.floor((clock.now() + 600_000) / 1000),
    });
    const context = await createVerifier({
      issuer: 'https://imp.example.com',
      jwks: keys.jwks(clock.now()),
      statusCheck: false,
      now: () => clock.now(),
    }).verify(token);
    expect(context).toMatchObject({ tenant: 'acme', scopes: ['read', 'write'], sessionId: session.id });
    // The JWKS marks each key's kind in its kid (imp/verify takes session tokens from session-… only).
    const published = keys.jwks(clock.now()).keys;
    expect(published.map((k) => k.kid!.split('-')[0]).sort()).toEqual(['audit', 'session']);
    expect(published.every((k) => k.use === 'sig')).toBe(true);
    const again = await mintSessionToken(deps, session);
    expect(decodeProtectedHeader(again).kid).toBe(keys.active('session').kid);
    expect(JSON.parse(Buffer.from(again.split('.')[1]!, 'base64url').toString()).jti).not.toBe(payload.jti);
  });
});
