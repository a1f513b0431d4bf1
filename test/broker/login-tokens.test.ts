/** Broker tokens verified once are remembered, but never past their expiry or their key's retirement. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/broker/keys.js';
import { issueLoginToken, verifyLoginToken } from '../../src/broker/login-tokens.js';
import { FakeClock } from '../../src/core/clock.js';
import { makeTempDir } from '../helpers/temp.js';

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

  it.each([
    ['a person', {}],
    [
      'a machine with a person claim',
      { machine: 'nightly-export', person: 'ops-team', email: null, name: null },
    ],
  ])(
    'a token this broker issued is known at once, with exactly the claims a verification of its bytes gives (%s)',
    async (_who, extra) => {
      const clock = new FakeClock();
      const file = join(makeTempDir('imp-login-tokens-'), 'keys.json');
      const issuing = await KeyRing.load(file, clock.now());
      const now = Math.floor(clock.now() / 1000);
      const token = await issueLoginToken(
        issuing,
        ISSUER,
        {
          loginId: 'login-2',
          iss: 'https://idp.example.com',
          sub: 'user-bob',
          email: 'bob@example.test',
          name: 'Bob',
          groups: ['support', 'oncall'],
          authTime: now - 5,
          expiresAt: now + 60,
          ...extra,
        },
        clock.now(),
      );
      // The same keys in another ring: nothing remembered there, so its answer comes from the signature.
      const verifying = await KeyRing.load(file, clock.now());
      const verified = await verifyLoginToken(verifying, ISSUER, token, clock);
      expect(await verifyLoginToken(issuing, ISSUER, token, clock)).toEqual(verified);
      // Remembered bytes only: any other bytes are verified, and a forged signature is refused.
      const [head, body, signature] = token.split('.');
      const forged = `${head}.${body}.${signature!.startsWith('A') ? 'B' : 'A'}${signature!.slice(1)}`;
      await expect(verifyLoginToken(issuing, ISSUER, forged, clock)).rejects.toMatchObject({
        code: 'IMP_AUTH_REQUIRED',
      });
      await clock.advance(60_000);
      await expect(verifyLoginToken(issuing, ISSUER, token, clock)).rejects.toMatchObject({
        code: 'IMP_AUTH_REQUIRED',
      });
    },
  );
});
