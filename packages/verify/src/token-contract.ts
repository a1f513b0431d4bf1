/**
 * The session-token contract shared with the broker (src/core/session-token.ts in imp; a test keeps
 * the two equal). Written out here so a tenant service depends on this package and jose only.
 */

/** The JOSE `typ` of session tokens (RFC 9068). */
export const SESSION_TOKEN_TYPE = 'at+jwt';
/** The default `aud` of session tokens; a tenant service checks for it (policy: sessions.audience). */
export const DEFAULT_SESSION_AUDIENCE = 'imp-tenant-api';

/** Session modes. */
export type SessionMode = 'standard' | 'break_glass';
