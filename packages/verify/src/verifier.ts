/**
 * Verifies imp session tokens (RFC 9068 `at+jwt`, signed by the broker) for tenant services.
 *
 * Keys come from the broker's JWKS through jose (createRemoteJWKSet: fetched, cached, refetched on
 * an unknown `kid` with a cooldown; or createLocalJWKSet). The signature itself is checked with
 * node:crypto on a KeyObject cached per imported key: jose's WebCrypto path is asynchronous and
 * costs 1.5–3 times as much per token, and this runs on every request of a tenant service.
 * Everything the header says is distrusted: the algorithm list is fixed, `typ` must be `at+jwt`,
 * `crit` is refused, and `jku`/`x5u`/`jwk` never make us fetch or use another key.
 */
import { KeyObject, verify as verifySignature } from 'node:crypto';
import {
  type CryptoKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  errors as joseErrors,
} from 'jose';
import { contextFromClaims, decodeJsonPart, type ImpersonationContext, isBase64Url } from './claims.js';
import { ImpersonationError, invalidToken } from './errors.js';
import { createStatusCheck, type StatusCheckOptions } from './status.js';
import { DEFAULT_SESSION_AUDIENCE, SESSION_TOKEN_TYPE } from './token-contract.js';

export type { ImpersonationContext } from './claims.js';
export { ImpersonationError, type ImpersonationErrorCode } from './errors.js';
export type { StatusCheckOptions } from './status.js';

/** The `kid` prefix of the broker's session-token keys (`audit-…` keys sign checkpoints, never tokens). */
export const SESSION_KEY_PREFIX = 'session-';
/** Default clock skew tolerated on exp/iat/nbf, in seconds. */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;

/** The only algorithms accepted; `none` and HMAC (a public key used as a secret) can never pass. */
export const ALLOWED_ALGORITHMS = ['ES256', 'EdDSA'] as const;

/** How to verify session tokens of one broker. */
export interface VerifierOptions {
  /** The broker's URL: the `iss` of session tokens. */
  issuer: string;
  /** The expected `aud`; default {@link DEFAULT_SESSION_AUDIENCE} (policy: sessions.audience). */
  audience?: string;
  /** Default `${issuer}/.well-known/jwks.json`; fetched and cached with jose createRemoteJWKSet. */
  jwksUrl?: string;
  /** A local key set instead of jwksUrl (tests, air-gapped services). */
  jwks?: JSONWebKeySet;
  /** Clock skew tolerated on exp/iat/nbf; default 5. */
  clockToleranceSeconds?: number;
  /**
   * Ask the broker whether the session is still active, so an ended or revoked session is refused
   * within `cacheSeconds` (default 5) rather than at `exp`. On by default; `false` turns it off
   * (then revocation only takes effect when the token expires).
   */
  statusCheck?: StatusCheckOptions | false;
  /** Used for the JWKS and the status check. */
  fetch?: typeof fetch;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

/** A verifier bound to one broker. */
export interface Verifier {
  /** Verifies a raw session token. Throws {@link ImpersonationError}. */
  verify(token: string): Promise<ImpersonationContext>;
  /** Verifies the token of an `Authorization: Bearer …` header. Throws {@link ImpersonationError}. */
  verifyRequest(authorizationHeader: string | undefined): Promise<ImpersonationContext>;
}

type Algorithm = (typeof ALLOWED_ALGORITHMS)[number];
type KeySource = (header: JWSHeaderParameters) => Promise<CryptoKey>;

const MAX_TOKEN_LENGTH = 16_384;
const BEARER = /^Bearer +([^\s]+) *$/i;
const TYPES = [SESSION_TOKEN_TYPE, `application/${SESSION_TOKEN_TYPE}`];

/** Builds a verifier for session tokens of the broker at `options.issuer`. */
export function createVerifier(options: VerifierOptions): Verifier {
  if (typeof options.issuer !== 'string' || options.issuer === '') {
    throw new TypeError('createVerifier: `issuer` (the broker URL) is required.');
  }
  if (options.jwks && options.jwksUrl) {
    throw new TypeError('createVerifier: give either `jwks` or `jwksUrl`, not both.');
  }
  const issuer = options.issuer;
  const base = issuer.replace(/\/+$/, '');
  const audience = options.audience ?? DEFAULT_SESSION_AUDIENCE;
  const toleranceSeconds = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const now = options.now ?? Date.now;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const keySource: KeySource = options.jwks
    ? createLocalJWKSet(options.jwks)
    : createRemoteJWKSet(new URL(options.jwksUrl ?? `${base}/.well-known/jwks.json`), {
        timeoutDuration: 5000,
        cooldownDuration: 30_000,
        [customFetch]: fetchImpl,
      });
  // Fail safe: the status check is on unless the caller says `statusCheck: false`.
  const checkStatus =
    options.statusCheck === false
      ? undefined
      : createStatusCheck(options.statusCheck ?? {}, base, fetchImpl, now);

  async function verify(token: string): Promise<ImpersonationContext> {
    if (typeof token !== 'string' || token.length === 0) {
      throw new ImpersonationError('missing_token', 'No session token was presented.');
    }
    if (token.length > MAX_TOKEN_LENGTH) throw invalidToken('the token is too long');
    const parts = token.split('.');
    if (parts.length !== 3) throw invalidToken('the token is not a compact JWS');
    const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];

    const header = decodeJsonPart(encodedHeader, 'header');
    const alg = header.alg;
    if (typeof alg !== 'string' || !(ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) {
      const allowed = ALLOWED_ALGORITHMS.join(', ');
      throw invalidToken(`the algorithm ${JSON.stringify(alg)} is not allowed (only ${allowed})`);
    }
    if (typeof header.typ !== 'string' || !TYPES.includes(header.typ.toLowerCase())) {
      throw invalidToken(`the token type ${JSON.stringify(header.typ)} is not ${SESSION_TOKEN_TYPE}`);
    }
    // RFC 7515 §4.1.11: an extension we do not understand listed as critical must be refused.
    if (header.crit !== undefined) throw invalidToken('the token lists critical header extensions');
    if (typeof header.kid !== 'string' || header.kid === '')
      throw invalidToken('the token names no key (kid)');
    // The broker publishes session and audit-checkpoint keys in one JWKS, each kid prefixed by its
    // kind; only a session key may sign a session token (a leaked audit key opens no tenant).
    if (!header.kid.startsWith(SESSION_KEY_PREFIX))
      throw invalidToken(`the key ${JSON.stringify(header.kid)} is not a session-token key`);
    if (!isBase64Url(encodedPayload) || !isBase64Url(encodedSignature)) {
      throw invalidToken('the token is not base64url');
    }

    const key = await resolveKey(keySource, { alg, kid: header.kid }, alg as Algorithm);
    const signature = Buffer.from(encodedSignature, 'base64url');
    const signingInput = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'latin1');
    if (signature.length !== 64 || !checkSignature(alg as Algorithm, key, signingInput, signature)) {
      throw invalidToken('the signature does not verify');
    }

    const claims = decodeJsonPart(encodedPayload, 'payload');
    const context = contextFromClaims(claims, token, { issuer, audience, toleranceSeconds, nowMs: now() });
    if (checkStatus) await checkStatus(context.sessionId, token);
    return context;
  }

  return {
    verify,
    async verifyRequest(authorizationHeader) {
      if (typeof authorizationHeader !== 'string' || authorizationHeader === '') {
        throw new ImpersonationError(
          'missing_token',
          'No session token was presented (Authorization: Bearer).',
        );
      }
      const match = BEARER.exec(authorizationHeader);
      if (!match?.[1]) {
        if (/^Bearer\b/i.test(authorizationHeader))
          throw invalidToken('the Authorization header is malformed');
        throw new ImpersonationError(
          'missing_token',
          'No bearer token was presented (Authorization: Bearer).',
        );
      }
      return verify(match[1]);
    },
  };
}

/** KeyObjects per jose-imported key: jose replaces its CryptoKeys when the JWKS changes, so this follows. */
const keyObjects = new WeakMap<CryptoKey, KeyObject>();

async function resolveKey(
  source: KeySource,
  header: JWSHeaderParameters,
  alg: Algorithm,
): Promise<KeyObject> {
  let cryptoKey: CryptoKey;
  try {
    cryptoKey = await source(header);
  } catch (error) {
    if (
      error instanceof joseErrors.JWKSNoMatchingKey ||
      error instanceof joseErrors.JWKSMultipleMatchingKeys ||
      error instanceof joseErrors.JOSENotSupported
    ) {
      throw invalidToken(`no key of the broker matches kid ${JSON.stringify(header.kid)}`, error);
    }
    // The key set could not be fetched or read: the token may be fine, so this is a 503, not a 401.
    const message = `The broker's signing keys could not be fetched: ${(error as Error).message}`;
    throw new ImpersonationError('status_unavailable', message, { cause: error });
  }
  let key = keyObjects.get(cryptoKey);
  if (!key) {
    key = KeyObject.from(cryptoKey);
    keyObjects.set(cryptoKey, key);
  }
  const fits =
    alg === 'ES256'
      ? key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
      : key.asymmetricKeyType === 'ed25519';
  if (key.type !== 'public' || !fits) throw invalidToken(`the key ${header.kid} does not fit ${alg}`);
  return key;
}

function checkSignature(alg: Algorithm, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    return alg === 'ES256'
      ? verifySignature('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
      : verifySignature(null, data, key, signature);
  } catch {
    return false;
  }
}
