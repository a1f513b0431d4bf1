/**
 * Exec tokens: the credential `imp exec` hands its child process instead of the person's broker
 * token. One token opens one thing — the audited proxy of one session — and dies with that session:
 * it expires when the session does, and the proxy refuses it as soon as the session is ended or
 * revoked (it checks the session on every call). It is signed with the `login` key, which never
 * leaves the broker, but typed and addressed so that neither kind can stand in for the other:
 * verifyLoginToken demands `typ: imp-login+jwt` and `aud: imp-broker`, this demands its own.
 */

import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import type { Clock } from '../core/clock.js';
import { AuthRequiredError } from '../core/errors.js';
import type { SessionRecord } from '../store/types.js';
import type { Principal } from './context.js';
import { BROKER_ALG, type KeyRing } from './keys.js';
import type { LoginClaims } from './login-tokens.js';
import { personClaims } from './token-claims.js';

/** The JOSE `typ` of an exec token. */
export const EXEC_TOKEN_TYPE = 'imp-exec+jwt';
/** Its audience: the broker's proxy only. */
export const EXEC_TOKEN_AUDIENCE = 'imp-broker-proxy';

/** What an exec token says: the person (as in their broker token) and the one session. */
export interface ExecClaims extends LoginClaims {
  sessionId: string;
}

/** True when a bearer token claims to be an exec token (the signature is checked by verifyExecToken). */
export function isExecToken(token: string): boolean {
  try {
    return decodeProtectedHeader(token).typ === EXEC_TOKEN_TYPE;
  } catch {
    return false;
  }
}

/** Signs an exec token for `session`, held by `principal`, expiring with the session. */
export async function issueExecToken(
  keys: KeyRing,
  brokerIssuer: string,
  principal: Principal,
  session: SessionRecord,
  nowMs: number,
): Promise<{ token: string; expiresAt: number }> {
  const key = keys.active('login');
  // Rounded down: the credential never outlives the session.
  const expiresAt = Math.floor((session.expiresAt ?? nowMs) / 1000);
  const token = await new SignJWT({
    idp_iss: principal.iss,
    email: principal.email,
    name: principal.name,
    groups: principal.groups,
    auth_time: principal.authTime,
    lid: principal.loginId,
    sid: session.id,
    ...(principal.machine ? { machine: principal.machine } : {}),
  })
    .setProtectedHeader({ alg: BROKER_ALG, kid: key.kid, typ: EXEC_TOKEN_TYPE })
    .setIssuer(brokerIssuer)
    .setAudience(EXEC_TOKEN_AUDIENCE)
    .setSubject(principal.sub)
    .setJti(randomUUID())
    .setIssuedAt(Math.floor(nowMs / 1000))
    .setExpirationTime(expiresAt)
    .sign(key.privateKey);
  return { token, expiresAt: session.expiresAt ?? nowMs };
}

/** Verifies an exec token's signature, type, issuer, audience and expiry. */
export async function verifyExecToken(
  keys: KeyRing,
  brokerIssuer: string,
  token: string,
  clock: Clock,
): Promise<ExecClaims> {
  const now = clock.now();
  const candidates = keys.verifying('login', now);
  try {
    const { payload } = await jwtVerify(
      token,
      async (header) => {
        const key = candidates.find((k) => k.kid === header.kid);
        if (!key) throw new Error('unknown key');
        return key.publicKey;
      },
      {
        issuer: brokerIssuer,
        audience: EXEC_TOKEN_AUDIENCE,
        algorithms: [BROKER_ALG],
        typ: EXEC_TOKEN_TYPE,
        currentDate: new Date(now),
        requiredClaims: ['sub', 'jti', 'exp', 'sid', 'lid'],
      },
    );
    return { loginId: String(payload.lid), sessionId: String(payload.sid), ...personClaims(payload) };
  } catch {
    throw new AuthRequiredError('This exec credential is invalid or its session is over.');
  }
}
