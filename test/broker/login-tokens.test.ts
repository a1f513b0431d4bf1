/** Broker tokens verified once are remembered, but never past their expiry or their key's retirement. */
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/broker/keys.js';
import { issueLoginToken, verifyLoginToken } from '../../src/broker/login-tokens.js';
import { FakeClock } from '../../src/core/clock.js';

const ISSUER = 'https://imp.example.com';

async function setUp() {
  const clock = new FakeClock();
  const keys = await KeyRing.load(null, clock.now());
  const now = Math.floor(clock.now() / 1000);
  const token = await issueLoginToken(
    keys,
    ISSUER,
    {
      loginId: 'login-1',
      iss: 'https://idp.example.com',
      sub: 'user-alice',
      email: 'alice@example.test',
      name: 'Alice',
      groups: ['support'],
      authTime: now,
      expiresAt: now + 60,
    },
    clock.now(),
  );
  return { clock, keys, token };
}

describe('verifyLoginToken (remembered verifications)', () => {
  it('answers a repeated token the same way, until it expires', async () => {
    const { clock, keys, token } = await setUp();
    const first = await verifyLoginToken(keys, ISSUER, token, clock);
    expect(first).toMatchObject({ loginId: 'login-1', sub: 'user-alice', groups: ['support'] });
    expect(await verifyLoginToken(keys, ISSUER, token, clock)).toEqual(first);
    await clock.advance(59_999);
    expect(await verifyLoginToken(keys, ISSUER, token, clock)).toEqual(first);
    await clock.advance(1);
    await expect(verifyLoginToken(keys, ISSUER, token, clock)).rejects.toMatchObject({
      code: 'IMP_AUTH_REQUIRED',
    });
  });

  it('refuses a remembered token once its key is retired', async () => {
    const { clock, keys, token } = await setUp();
    await verifyLoginToken(keys, ISSUER, token, clock);
    await keys.rotate('login', clock.now(), 1000);
    expect((await verifyLoginToken(keys, ISSUER, token, clock)).loginId).toBe('login-1'); // overlap
    await clock.advance(1000);
    await expect(verifyLoginToken(keys, ISSUER, token, clock)).rejects.toMatchObject({
      code: 'IMP_AUTH_REQUIRED',
    });
  });

  it('never answers for another issuer or another key ring', async () => {
    const { clock, keys, token } = await setUp();
    await verifyLoginToken(keys, ISSUER, token, clock);
    await expect(verifyLoginToken(keys, 'https://other.example.com', token, clock)).rejects.toMatchObject({
      code: 'IMP_AUTH_REQUIRED',
    });
    const otherKeys = await KeyRing.load(null, clock.now());
    await expect(verifyLoginToken(otherKeys, ISSUER, token, clock)).rejects.toMatchObject({
      code: 'IMP_AUTH_REQUIRED',
    });
  });
});
