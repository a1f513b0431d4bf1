/**
 * The person a broker-signed token (a broker token, an exec credential) speaks for, read from its
 * verified payload: one reading, so both kinds carry the same facts the same way.
 */
import type { JWTPayload } from 'jose';

/** Who the token's holder is, as the IdP said at login (idp_iss, sub, email, name, groups, auth_time). */
export function personClaims(payload: JWTPayload) {
  return {
    iss: String(payload.idp_iss),
    sub: payload.sub!,
    email: typeof payload.email === 'string' ? payload.email : null,
    name: typeof payload.name === 'string' ? payload.name : null,
    groups: Array.isArray(payload.groups)
      ? payload.groups.filter((g): g is string => typeof g === 'string')
      : [],
    authTime: Number(payload.auth_time),
    expiresAt: payload.exp!,
    machine: typeof payload.machine === 'string' ? payload.machine : null,
  };
}
