/** Decoding a JWS part and turning verified session-token claims into an {@link ImpersonationContext}. */

import { ImpersonationError, invalidToken } from './errors.js';
import type { SessionMode } from './token-contract.js';

/** Who is acting as which tenant, with what rights, as established from a verified session token. */
export interface ImpersonationContext {
  tenant: string;
  environment: string;
  actor: { sub: string; iss: string; email: string | null };
  scopes: ('read' | 'write')[];
  sessionId: string;
  mode: SessionMode;
  ticket: string;
  expiresAt: Date;
  /** The raw token, for forwarding to downstream services. */
  token: string;
}

/** What the claims are checked against. */
export interface ClaimExpectations {
  issuer: string;
  audience: string;
  toleranceSeconds: number;
  nowMs: number;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const MODES: readonly string[] = ['standard', 'break_glass'] satisfies SessionMode[];
/** The scope values core's scopeClaim() writes. */
const READ = 'tenant:read';
const WRITE = 'tenant:write';

/** True when `part` is non-empty unpadded base64url (Buffer's decoder silently skips other characters). */
export function isBase64Url(part: string): boolean {
  return BASE64URL.test(part);
}

/** Decodes one JWS part as a JSON object, or refuses the token. */
export function decodeJsonPart(part: string, what: 'header' | 'payload'): Record<string, unknown> {
  if (!isBase64Url(part)) throw invalidToken(`the ${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch (error) {
    throw invalidToken(`the ${what} is not JSON`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidToken(`the ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Checks iss, aud, exp, iat, nbf and the required session claims of a signature-verified payload. */
export function contextFromClaims(
  claims: Record<string, unknown>,
  token: string,
  expect: ClaimExpectations,
): ImpersonationContext {
  if (claims.iss !== expect.issuer) {
    const issuer = JSON.stringify(claims.iss);
    throw new ImpersonationError('wrong_issuer', `The token was issued by ${issuer}, not ${expect.issuer}.`);
  }
  const aud = claims.aud;
  if (!(aud === expect.audience || (Array.isArray(aud) && aud.includes(expect.audience)))) {
    const message = `The token is not meant for this service (audience ${expect.audience}).`;
    throw new ImpersonationError('wrong_audience', message);
  }
  const nowSeconds = expect.nowMs / 1000;
  const exp = numberClaim(claims, 'exp');
  if (exp <= nowSeconds - expect.toleranceSeconds) {
    throw new ImpersonationError('expired', 'The impersonation session has expired.');
  }
  if (numberClaim(claims, 'iat') > nowSeconds + expect.toleranceSeconds) {
    throw invalidToken('the token is issued in the future');
  }
  if (claims.nbf !== undefined && numberClaim(claims, 'nbf') > nowSeconds + expect.toleranceSeconds) {
    throw invalidToken('the token is not valid yet');
  }
  stringClaim(claims.jti, 'jti');
  return {
    tenant: stringClaim(claims.sub, 'sub'),
    environment: stringClaim(claims.env, 'env'),
    actor: actorClaim(claims.act),
    scopes: scopesClaim(claims.scope),
    sessionId: stringClaim(claims.sid, 'sid'),
    mode: modeClaim(claims.mode),
    ticket: stringClaim(claims.ticket, 'ticket'),
    expiresAt: new Date(exp * 1000),
    token,
  };
}

function numberClaim(claims: Record<string, unknown>, name: string): number {
  const value = claims[name];
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw invalidToken(`the ${name} claim is missing`);
  return value;
}

function stringClaim(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw invalidToken(`the ${name} claim is missing`);
  return value;
}

function actorClaim(value: unknown): ImpersonationContext['actor'] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidToken('the act claim (the acting engineer) is missing');
  }
  const act = value as Record<string, unknown>;
  const email = act.email;
  if (email !== undefined && email !== null && typeof email !== 'string') {
    throw invalidToken('act.email is not a string');
  }
  return { sub: stringClaim(act.sub, 'act.sub'), iss: stringClaim(act.iss, 'act.iss'), email: email ?? null };
}

function scopesClaim(value: unknown): ('read' | 'write')[] {
  const scopes = stringClaim(value, 'scope').split(' ');
  // Unknown scopes are ignored (forward compatibility); a token must at least allow reading.
  if (!scopes.includes(READ)) throw invalidToken(`the scope claim does not include ${READ}`);
  return scopes.includes(WRITE) ? ['read', 'write'] : ['read'];
}

function modeClaim(value: unknown): SessionMode {
  if (typeof value !== 'string' || !MODES.includes(value))
    throw invalidToken('the mode claim is missing or unknown');
  return value as SessionMode;
}
