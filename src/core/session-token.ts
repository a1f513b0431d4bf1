/**
 * The session token a tenant API receives (through the broker's proxy): an RFC 9068 access token
 * (`typ: at+jwt`) whose subject is the tenant and whose `act` (RFC 8693) is the engineer.
 */

/** The JOSE `typ` of session tokens. */
export const SESSION_TOKEN_TYPE = 'at+jwt';
/** The default `aud` of session tokens; a tenant service checks for it (policy: sessions.audience). */
export const DEFAULT_SESSION_AUDIENCE = 'imp-tenant-api';

/** Session modes. */
export type SessionMode = 'standard' | 'break_glass';

/** The claims of a session token. */
export interface SessionTokenClaims {
  iss: string;
  aud: string;
  /** The tenant id. */
  sub: string;
  /** The engineer (or, with `machine`, the machine identity) acting as the tenant. */
  act: { sub: string; iss: string; email: string | null; machine?: string };
  /** `tenant:read` or `tenant:read tenant:write`. */
  scope: string;
  /** The environment (prod, staging …). */
  env: string;
  sid: string;
  jti: string;
  ticket: string;
  mode: SessionMode;
  iat: number;
  exp: number;
}

/** The scope string for a session scope. */
export function scopeClaim(scope: 'read' | 'write'): string {
  return scope === 'write' ? 'tenant:read tenant:write' : 'tenant:read';
}
