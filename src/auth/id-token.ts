/**
 * The broker's check of an ID token from the IdP (OIDC Core §3.1.3.7). Identity is (iss, sub),
 * never the email. Only asymmetric algorithms are accepted, keys come only from the IdP's own
 * jwks_uri (a token's `jku`/`x5u`/`kid` never makes us fetch anything else).
 */
import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { Clock } from '../core/clock.js';
import { AuthFailedError, UnreachableError } from '../core/errors.js';

/** Algorithms an IdP may sign ID tokens with; never `none`, never HMAC (a public key is not a secret). */
export const ID_TOKEN_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

/** The claims the broker relies on, verified. */
export interface VerifiedIdentity {
  iss: string;
  sub: string;
  email: string | null;
  name: string | null;
  groups: string[];
  /** The policy's `identity.person_claim` as a string (null when no claim is configured). */
  person: string | null;
  authTime: number;
  amr: string[];
  acr: string | null;
  /** The ID token's own `jti` or a hash of it, to spot replays. */
  tokenId: string;
  expiresAt: number;
}

/** Settings for {@link createIdTokenVerifier}. */
export interface IdTokenVerifierOptions {
  issuer: string;
  clientId: string;
  groupsClaim: string;
  /** A claim naming the person behind the account (employee id, …); required in every ID token when set. */
  personClaim?: string | null;
  clock: Clock;
  /** Seconds of clock skew tolerated between IdP and broker. */
  leewaySeconds: number;
  fetch?: typeof fetch;
}

/** Verifies ID tokens for one IdP. */
export type IdTokenVerifier = (idToken: string) => Promise<VerifiedIdentity>;

/** Builds a verifier; discovery is lazy and cached, so the broker starts while the IdP is down. */
export function createIdTokenVerifier(options: IdTokenVerifierOptions): IdTokenVerifier {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  async function keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (jwks) return jwks;
    const url = `${options.issuer}/.well-known/openid-configuration`;
    let metadata: { issuer?: string; jwks_uri?: string };
    try {
      const response = await fetchImpl(url, { signal: AbortSignal.timeout(5000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      metadata = (await response.json()) as typeof metadata;
    } catch (error) {
      throw new UnreachableError(
        `Cannot read the identity provider's discovery document at ${url}: ${(error as Error).message}`,
        error,
      );
    }
    if (metadata.issuer !== options.issuer || typeof metadata.jwks_uri !== 'string') {
      throw new UnreachableError(
        `The identity provider at ${options.issuer} published a discovery document for another issuer or without jwks_uri.`,
      );
    }
    jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), {
      timeoutDuration: 5000,
      cooldownDuration: 30_000,
      // Keys are fetched with the injected fetch too, like the discovery document.
      [customFetch]: fetchImpl,
    });
    return jwks;
  }

  return async (idToken) => {
    if (typeof idToken !== 'string' || idToken.length > 16_384 || idToken.split('.').length !== 3) {
      throw new AuthFailedError('The ID token is malformed.', { details: { reason: 'malformed' } });
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(idToken);
    } catch {
      throw new AuthFailedError('The ID token is malformed.', { details: { reason: 'malformed' } });
    }
    // Access tokens (RFC 9068 at+jwt) and our own session tokens must never pass as ID tokens.
    // The header is the sender's JSON: a typ that is not a string is a refusal, not a TypeError (500).
    if (header.typ !== undefined && (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'jwt')) {
      throw new AuthFailedError(`A token of type ${JSON.stringify(header.typ)} is not an ID token.`, {
        details: { reason: 'wrong_type' },
      });
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, await keys(), {
        issuer: options.issuer,
        audience: options.clientId,
        algorithms: ID_TOKEN_ALGORITHMS,
        clockTolerance: options.leewaySeconds,
        currentDate: new Date(options.clock.now()),
        requiredClaims: ['sub', 'exp', 'iat', 'auth_time'],
      }));
    } catch (error) {
      if (error instanceof UnreachableError) throw error;
      throw new AuthFailedError(`The ID token was refused: ${describeJoseError(error)}.`, {
        cause: error,
        details: { reason: joseReason(error) },
      });
    }
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== options.clientId) {
      throw new AuthFailedError('The ID token was refused: it was issued to another party (azp).', {
        details: { reason: 'wrong_audience' },
      });
    }
    const nowSeconds = options.clock.now() / 1000;
    const authTime = payload.auth_time;
    if (typeof authTime !== 'number' || authTime > nowSeconds + options.leewaySeconds) {
      throw new AuthFailedError('The ID token was refused: auth_time is missing or in the future.', {
        details: { reason: 'bad_auth_time' },
      });
    }
    const groups = payload[options.groupsClaim];
    let person: string | null = null;
    if (options.personClaim) {
      const value = payload[options.personClaim];
      // Without it, "not the same person" could only compare accounts: refuse rather than weaken.
      if ((typeof value !== 'string' || value === '') && typeof value !== 'number')
        throw new AuthFailedError(
          `The ID token was refused: it has no "${options.personClaim}" claim (policy identity.person_claim).`,
          { details: { reason: 'person_claim_missing' } },
        );
      person = String(value);
    }
    return {
      iss: payload.iss!,
      sub: payload.sub!,
      email: typeof payload.email === 'string' ? payload.email : null,
      name: typeof payload.name === 'string' ? payload.name : null,
      groups: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [],
      person,
      authTime,
      amr: Array.isArray(payload.amr) ? payload.amr.filter((v): v is string => typeof v === 'string') : [],
      acr: typeof payload.acr === 'string' ? payload.acr : null,
      tokenId: typeof payload.jti === 'string' ? payload.jti : `${payload.iat}:${payload.sub}`,
      expiresAt: payload.exp!,
    };
  };
}

function joseReason(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `claim_${error.claim}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'unknown_key';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm_not_allowed';
  return 'invalid';
}

function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'it has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `the "${error.claim}" claim is wrong`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'the signature does not verify';
  if (error instanceof joseErrors.JWKSNoMatchingKey)
    return 'it is not signed by a key of the identity provider';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'its algorithm is not allowed';
  return 'it is not a valid token';
}
