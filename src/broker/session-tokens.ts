/** Session JWTs for tenant APIs: minted per proxied call, never stored, signed with the `session` key. */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { SESSION_TOKEN_TYPE, scopeClaim } from '../core/session-token.js';
import type { SessionRecord } from '../store/types.js';
import type { BrokerDeps } from './context.js';
import { BROKER_ALG } from './keys.js';

/** Signs a token for an active session; it expires with the session. */
export async function mintSessionToken(deps: BrokerDeps, session: SessionRecord): Promise<string> {
  const key = deps.keys.active('session');
  const now = Math.floor(deps.clock.now() / 1000);
  return new SignJWT({
    act: { sub: session.requester.sub, iss: session.requester.iss, email: session.requester.email },
    scope: scopeClaim(session.scope),
    env: session.environment,
    sid: session.id,
    ticket: session.ticket,
    mode: session.mode,
  })
    .setProtectedHeader({ alg: BROKER_ALG, kid: key.kid, typ: SESSION_TOKEN_TYPE })
    .setIssuer(deps.issuer)
    .setAudience(deps.policy.sessions.audience)
    .setSubject(session.tenant)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(Math.floor((session.expiresAt ?? 0) / 1000))
    .sign(key.privateKey);
}
