/**
 * The broker's check of a workload token (a CI job's OIDC token, a Kubernetes service-account
 * token) presented in a token exchange: signature by a key of the issuer the policy trusts (from its
 * OIDC discovery document, or the JWKS URL the policy names), `aud` = the broker, `exp`, `iat`,
 * `jti`, and a short lifetime. Keys only ever come from the policy's URLs, never from the token.
 */
import {
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { Clock } from '../core/clock.js';
import { AuthFailedError, UnreachableError } from '../core/errors.js';
import type { Machine } from '../core/policy/types.js';
import { ID_TOKEN_ALGORITHMS } from './id-token.js';

/** The longest-lived workload token accepted (exp − iat): these are meant to be minutes old. */
export const MAX_WORKLOAD_TOKEN_LIFETIME_SECONDS = 3600;

/** What a verified workload token says. */
export interface WorkloadIdentity {
  iss: string;
  sub: string;
  jti: string;
  iat: number;
  exp: number;
}

/** Claims read before verification, only to pick which policy entries (and keys) apply. */
export function peekWorkloadToken(token: string): { iss: string; sub: string } {
  if (typeof token !== 'string' || token.length > 16_384 || token.split('.').length !== 3)
    throw refused('malformed', 'The identity token is malformed.');
  let header: ReturnType<typeof decodeProtectedHeader>;
  let payload: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch {
    throw refused('malformed', 'The identity token is malformed.');
  }
  // Access tokens and imp's own tokens are not workload identity tokens, whoever signed them.
  if (header.typ !== undefined && (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'jwt'))
    throw refused(
      'wrong_type',
      `A token of type ${JSON.stringify(header.typ).slice(0, 40)} is not an identity token.`,
    );
  if (typeof payload.iss !== 'string' || typeof payload.sub !== 'string')
    throw refused('malformed', 'The identity token has no iss or sub.');
  return { iss: payload.iss, sub: payload.sub };
}

/** Verifies workload tokens; key sets are fetched lazily and cached per issuer. */
export interface WorkloadVerifier {
  verify(token: string, machine: Machine, audience: string): Promise<WorkloadIdentity>;
}

/** Builds a verifier on the broker's clock and fetch. */
export function createWorkloadVerifier(options: {
  clock: Clock;
  fetch: typeof fetch;
  leewaySeconds: number;
}): WorkloadVerifier {
  const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  async function keys(machine: Machine): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const cacheKey = `${machine.issuer} ${machine.jwksUri ?? ''}`;
    const known = keySets.get(cacheKey);
    if (known) return known;
    let jwksUri = machine.jwksUri;
    if (!jwksUri) {
      const url = `${machine.issuer}/.well-known/openid-configuration`;
      let metadata: { issuer?: string; jwks_uri?: string };
      try {
        const response = await options.fetch(url, { signal: AbortSignal.timeout(5000) });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        metadata = (await response.json()) as typeof metadata;
      } catch (error) {
        throw new UnreachableError(
          `Cannot read the discovery document of machine issuer ${machine.issuer}: ${(error as Error).message}`,
          error,
        );
      }
      if (metadata.issuer !== machine.issuer || typeof metadata.jwks_uri !== 'string')
        throw new UnreachableError(
          `The machine issuer ${machine.issuer} published a discovery document for another issuer or without jwks_uri.`,
        );
      jwksUri = metadata.jwks_uri;
    }
    const set = createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: 5000,
      cooldownDuration: 30_000,
      [customFetch]: options.fetch,
    });
    keySets.set(cacheKey, set);
    return set;
  }

  return {
    async verify(token, machine, audience) {
      const keySet = await keys(machine);
      let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
      try {
        ({ payload } = await jwtVerify(token, keySet, {
          issuer: machine.issuer,
          audience,
          algorithms: ID_TOKEN_ALGORITHMS,
          clockTolerance: options.leewaySeconds,
          currentDate: new Date(options.clock.now()),
          requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        }));
      } catch (error) {
        if (error instanceof UnreachableError) throw error;
        throw refused(joseReason(error), `The identity token was refused: ${describe(error)}.`, error);
      }
      const iat = payload.iat!;
      const exp = payload.exp!;
      if (exp - iat > MAX_WORKLOAD_TOKEN_LIFETIME_SECONDS)
        throw refused(
          'lifetime',
          `The identity token lives ${exp - iat}s; at most ${MAX_WORKLOAD_TOKEN_LIFETIME_SECONDS}s is accepted (use a short-lived token).`,
        );
      if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 256)
        throw refused('claim_jti', 'The identity token was refused: the "jti" claim is wrong.');
      return { iss: payload.iss!, sub: payload.sub!, jti: payload.jti, iat, exp };
    },
  };
}

function refused(reason: string, message: string, cause?: unknown): AuthFailedError {
  return new AuthFailedError(message, { details: { reason }, ...(cause ? { cause } : {}) });
}

function joseReason(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `claim_${error.claim}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'unknown_key';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm_not_allowed';
  return 'invalid';
}

function describe(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'it has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `the "${error.claim}" claim is wrong`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'the signature does not verify';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'it is not signed by a key of the trusted issuer';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'its algorithm is not allowed';
  return 'it is not a valid token';
}
