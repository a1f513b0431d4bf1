/**
 * Broker tokens: what `imp login` stores instead of any IdP token. Short-lived (policy caps it,
 * default 8 h), signed with the `login` key that never leaves the broker, typed so that no other
 * token (ID token, session token) can stand in for one.
 */

import { type JWTPayload, jwtVerify, SignJWT } from 'jose';
import type { Clock } from '../core/clock.js';
import { AuthRequiredError } from '../core/errors.js';
import { BROKER_ALG, type KeyRing } from './keys.js';
import { personClaims } from './token-claims.js';

/** The JOSE `typ` of a broker token. */
export const LOGIN_TOKEN_TYPE = 'imp-login+jwt';
/** The audience of broker tokens: the broker API itself. */
export const LOGIN_TOKEN_AUDIENCE = 'imp-broker';

/** What a broker token says about its holder. */
export interface LoginClaims {
  loginId: string;
  iss: string;
  sub: string;
  email: string | null;
  name: string | null;
  groups: string[];
  /** The person behind the account (policy identity.person_claim), when configured. */
  person?: string | null;
  authTime: number;
  expiresAt: number;
  /** The machine identity (policy `machines:`) for a token from a token exchange; absent for people. */
  machine?: string | null;
}

/** Signs a broker token. */
export async function issueLoginToken(
  keys: KeyRing,
  brokerIssuer: string,
  claims: LoginClaims,
  nowMs: number,
): Promise<string> {
  const key = keys.active('login');
  const payload = {
    idp_iss: claims.iss,
    email: claims.email,
    name: claims.name,
    groups: claims.groups,
    auth_time: claims.authTime,
    ...(claims.machine ? { machine: claims.machine } : {}),
    ...(claims.person ? { person: claims.person } : {}),
  };
  const token = await new SignJWT({ ...payload })
    .setProtectedHeader({ alg: BROKER_ALG, kid: key.kid, typ: LOGIN_TOKEN_TYPE })
    .setIssuer(brokerIssuer)
    .setAudience(LOGIN_TOKEN_AUDIENCE)
    .setSubject(claims.sub)
    .setJti(claims.loginId)
    .setIssuedAt(Math.floor(nowMs / 1000))
    .setExpirationTime(claims.expiresAt)
    .sign(key.privateKey);
  // This broker made these exact bytes with this key: they would verify to these claims (read back
  // through the same function verification uses). Remembering them spares the first use — a session
  // open right after a login, under per-session re-authentication — its ECDSA check. Expiry and the
  // key's retirement are still checked on every use, and the login row is looked up every time.
  remember(keys, `${brokerIssuer} ${token}`, {
    claims: claimsOf({ ...payload, jti: claims.loginId, sub: claims.sub, exp: claims.expiresAt }),
    kid: key.kid,
  });
  return token;
}

/** What a verified token's payload says, as LoginClaims (the one reading, for issued and presented tokens alike). */
function claimsOf(payload: JWTPayload): LoginClaims {
  return {
    loginId: payload.jti!,
    ...personClaims(payload),
    person: typeof payload.person === 'string' ? payload.person : null,
  };
}

function remember(keys: KeyRing, cacheKey: string, entry: { claims: LoginClaims; kid: string }): void {
  let cache = verifiedTokens.get(keys);
  if (!cache) {
    cache = new Map();
    verifiedTokens.set(keys, cache);
  }
  if (cache.size >= MAX_VERIFIED) cache.delete(cache.keys().next().value!);
  cache.set(cacheKey, entry);
}

// Tokens this broker verified, per key ring: a CLI presents the same token on every call (each
// proxied request), and an ECDSA check through WebCrypto costs ~0.2 ms of the broker's only thread.
// The same bytes verify the same way; what can change — expiry, the key being retired — is
// re-checked on every hit, and the login row is looked up by the caller every time regardless.
const verifiedTokens = new WeakMap<KeyRing, Map<string, { claims: LoginClaims; kid: string }>>();
const MAX_VERIFIED = 10_000;

/** Verifies a broker token's signature, type, issuer, audience and expiry. */
export async function verifyLoginToken(
  keys: KeyRing,
  brokerIssuer: string,
  token: string,
  clock: Clock,
): Promise<LoginClaims> {
  const now = clock.now();
  const candidates = keys.verifying('login', now);
  let cache = verifiedTokens.get(keys);
  if (!cache) {
    cache = new Map();
    verifiedTokens.set(keys, cache);
  }
  const cacheKey = `${brokerIssuer} ${token}`;
  const known = cache.get(cacheKey);
  if (known) {
    // jose's own test: exp must be after the current whole second.
    if (known.claims.expiresAt > Math.floor(now / 1000) && candidates.some((k) => k.kid === known.kid))
      return known.claims;
    cache.delete(cacheKey);
  }
  try {
    const { payload, protectedHeader } = await jwtVerify(
      token,
      async (header) => {
        const key = candidates.find((k) => k.kid === header.kid);
        if (!key) throw new Error('unknown key');
        return key.publicKey;
      },
      {
        issuer: brokerIssuer,
        audience: LOGIN_TOKEN_AUDIENCE,
        algorithms: [BROKER_ALG],
        typ: LOGIN_TOKEN_TYPE,
        currentDate: new Date(now),
        requiredClaims: ['sub', 'jti', 'exp', 'auth_time'],
      },
    );
    const claims = claimsOf(payload);
    remember(keys, cacheKey, { claims, kid: String(protectedHeader.kid) });
    return claims;
  } catch {
    throw new AuthRequiredError('Your login is invalid or has expired. Run: imp login');
  }
}
