/**
 * Session JWTs for tenant APIs: minted per proxied call, never stored, signed with the `session` key.
 * Signed with node:crypto directly rather than jose's SignJWT: this runs on every proxied call, and
 * WebCrypto's ECDSA costs about three times as much of the broker's one thread. The token is the
 * same compact JWS (ES256, IEEE P1363 signature) either way; tenant services verify it with jose
 * or `imp/verify` alike.
 */
import { KeyObject, randomUUID, sign } from 'node:crypto';
import type { CryptoKey } from 'jose';
import { machineNameOf } from '../core/policy/machines.js';
import { SESSION_TOKEN_TYPE, type SessionTokenClaims, scopeClaim } from '../core/session-token.js';
import type { SessionRecord } from '../store/types.js';
import type { BrokerDeps } from './context.js';
import { BROKER_ALG } from './keys.js';

const keyObjects = new WeakMap<CryptoKey, KeyObject>();

/** Signs a token for an active session; it expires with the session. */
export async function mintSessionToken(deps: BrokerDeps, session: SessionRecord): Promise<string> {
  const key = deps.keys.active('session');
  const now = Math.floor(deps.clock.now() / 1000);
  const claims: SessionTokenClaims = {
    act: actClaim(session),
    scope: scopeClaim(session.scope),
    env: session.environment,
    sid: session.id,
    ticket: session.ticket,
    mode: session.mode,
    iss: deps.issuer,
    aud: deps.policy.sessions.audience,
    sub: session.tenant,
    jti: randomUUID(),
    iat: now,
    exp: Math.floor((session.expiresAt ?? 0) / 1000),
  };
  const header = { alg: BROKER_ALG, kid: key.kid, typ: SESSION_TOKEN_TYPE };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  let privateKey = keyObjects.get(key.privateKey);
  if (!privateKey) {
    privateKey = KeyObject.from(key.privateKey);
    keyObjects.set(key.privateKey, privateKey);
  }
  const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}

// RFC 8693 §4.1: `act` names who acts; a machine identity also by its policy name.
function actClaim(session: SessionRecord): SessionTokenClaims['act'] {
  const { sub, iss, email, roles } = session.requester;
  const machine = machineNameOf(roles);
  return machine ? { sub, iss, email, machine } : { sub, iss, email };
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
