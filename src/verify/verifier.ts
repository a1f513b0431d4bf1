/**
 * Verifies imp session tokens (RFC 9068 `at+jwt`, signed by the broker) for tenant services.
 *
 * Keys come from the broker's JWKS through jose (createRemoteJWKSet: fetched, cached, refetched on
 * an unknown `kid` with a cooldown; or createLocalJWKSet). The signature itself is checked with
 * node:crypto on a KeyObject cached per imported key: jose's WebCrypto path is asynchronous and
 * costs about three times as much per token, and this runs on every request of a tenant service.
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
import { DEFAULT_SESSION_AUDIENCE, SESSION_TOKEN_TYPE, type SessionMode } from '../core/session-token.js';

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
  /** Clock skew tolerated on exp/iat/nbf; default 30. */
  clockToleranceSeconds?: number;
  /** Ask the broker whether the session is still active (honours revocation at once); off unless given. */
  statusCheck?: StatusCheckOptions | false;
  /** Used for the JWKS and the status check. */
  fetch?: typeof fetch;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

/** Options of the broker status check. */
export interface StatusCheckOptions {
  /** Default `${issuer}/v1/token-status`. */
  url?: string;
  /** How long an answer is reused per session id; default 5. */
  cacheSeconds?: number;
  /** Give up on the broker after this long (then refuse: fail closed); default 2000. */
  timeoutMs?: number;
}

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

/** Why a request was refused. */
export type ImpersonationErrorCode =
  | 'missing_token'
  | 'invalid_token'
  | 'expired'
  | 'wrong_audience'
  | 'wrong_issuer'
  | 'insufficient_scope'
  | 'wrong_tenant'
  | 'revoked'
  | 'status_unavailable';

const STATUS_OF: Record<ImpersonationErrorCode, 401 | 403 | 503> = {
  missing_token: 401,
  invalid_token: 401,
  expired: 401,
  wrong_audience: 401,
  wrong_issuer: 401,
  revoked: 401,
  insufficient_scope: 403,
  wrong_tenant: 403,
  status_unavailable: 503,
};

/** A refused token or request; `status` is the HTTP status to answer with. */
export class ImpersonationError extends Error {
  readonly code: ImpersonationErrorCode;
  readonly status: 401 | 403 | 503;

  constructor(code: ImpersonationErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ImpersonationError';
    this.code = code;
    this.status = STATUS_OF[code];
  }
}

/** A verifier bound to one broker. */
export interface Verifier {
  /** Verifies a raw session token. Throws {@link ImpersonationError}. */
  verify(token: string): Promise<ImpersonationContext>;
  /** Verifies the token of an `Authorization: Bearer …` header. Throws {@link ImpersonationError}. */
  verifyRequest(authorizationHeader: string | undefined): Promise<ImpersonationContext>;
}

const MAX_TOKEN_LENGTH = 16_384;
const MAX_STATUS_ENTRIES = 10_000;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BEARER = /^Bearer +([^\s]+) *$/i;
const MODES: readonly string[] = ['standard', 'break_glass'] satisfies SessionMode[];

type Algorithm = (typeof ALLOWED_ALGORITHMS)[number];
type KeySource = (header: JWSHeaderParameters) => Promise<CryptoKey>;
interface StatusAnswer {
  active: boolean;
  state: string;
  until: number;
}

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
  const tolerance = options.clockToleranceSeconds ?? 30;
  const now = options.now ?? Date.now;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const keySource: KeySource = options.jwks
    ? createLocalJWKSet(options.jwks)
    : createRemoteJWKSet(new URL(options.jwksUrl ?? `${base}/.well-known/jwks.json`), {
        timeoutDuration: 5000,
        cooldownDuration: 30_000,
        [customFetch]: fetchImpl,
      });
  const checkStatus = options.statusCheck
    ? statusChecker(options.statusCheck, base, fetchImpl, now)
    : undefined;

  async function verify(token: string): Promise<ImpersonationContext> {
    if (typeof token !== 'string' || token.length === 0) {
      throw new ImpersonationError('missing_token', 'No session token was presented.');
    }
    if (token.length > MAX_TOKEN_LENGTH) throw invalid('the token is too long');
    const parts = token.split('.');
    if (parts.length !== 3) throw invalid('the token is not a compact JWS');
    const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
    const header = decodeJson(encodedHeader, 'header');
    const alg = header.alg;
    if (typeof alg !== 'string' || !(ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) {
      throw invalid(
        `the algorithm ${JSON.stringify(alg)} is not allowed (only ${ALLOWED_ALGORITHMS.join(', ')})`,
      );
    }
    const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : undefined;
    if (typ !== SESSION_TOKEN_TYPE && typ !== `application/${SESSION_TOKEN_TYPE}`) {
      throw invalid(`the token type ${JSON.stringify(header.typ)} is not ${SESSION_TOKEN_TYPE}`);
    }
    // RFC 7515 §4.1.11: an extension we do not understand listed as critical must be refused.
    if (header.crit !== undefined) throw invalid('the token lists critical header extensions');
    if (typeof header.kid !== 'string' || header.kid === '') throw invalid('the token names no key (kid)');
    if (!BASE64URL.test(encodedPayload) || !BASE64URL.test(encodedSignature)) {
      throw invalid('the token is not base64url');
    }

    const key = await resolveKey(keySource, { alg, kid: header.kid }, alg as Algorithm);
    const signature = Buffer.from(encodedSignature, 'base64url');
    const signingInput = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'latin1');
    if (signature.length !== 64 || !checkSignature(alg as Algorithm, key, signingInput, signature)) {
      throw invalid('the signature does not verify');
    }

    const claims = decodeJson(encodedPayload, 'payload');
    if (claims.iss !== issuer) {
      throw new ImpersonationError(
        'wrong_issuer',
        `The token was issued by ${JSON.stringify(claims.iss)}, not ${issuer}.`,
      );
    }
    const aud = claims.aud;
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
      throw new ImpersonationError(
        'wrong_audience',
        `The token is not meant for this service (audience ${audience}).`,
      );
    }
    const nowSeconds = now() / 1000;
    const exp = numberClaim(claims, 'exp');
    if (exp <= nowSeconds - tolerance) {
      throw new ImpersonationError('expired', 'The impersonation session has expired.');
    }
    if (numberClaim(claims, 'iat') > nowSeconds + tolerance)
      throw invalid('the token is issued in the future');
    if (claims.nbf !== undefined && numberClaim(claims, 'nbf') > nowSeconds + tolerance) {
      throw invalid('the token is not valid yet');
    }

    const context: ImpersonationContext = {
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
    stringClaim(claims.jti, 'jti');
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
        if (/^Bearer\b/i.test(authorizationHeader)) throw invalid('the Authorization header is malformed');
        throw new ImpersonationError(
          'missing_token',
          'No bearer token was presented (Authorization: Bearer).',
        );
      }
      return verify(match[1]);
    },
  };
}

function invalid(reason: string, cause?: unknown): ImpersonationError {
  return new ImpersonationError('invalid_token', `The session token was refused: ${reason}.`, { cause });
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  // Buffer's decoder skips characters outside the alphabet; a token must not carry any.
  if (!BASE64URL.test(part)) throw invalid(`the ${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch (error) {
    throw invalid(`the ${what} is not JSON`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`the ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
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
      throw invalid(`no key of the broker matches kid ${JSON.stringify(header.kid)}`, error);
    }
    // The key set could not be fetched or read: the token may be fine, so this is not a 401.
    throw new ImpersonationError(
      'status_unavailable',
      `The broker's signing keys could not be fetched: ${(error as Error).message}`,
      { cause: error },
    );
  }
  let key = keyObjects.get(cryptoKey);
  if (!key) {
    key = KeyObject.from(cryptoKey);
    keyObjects.set(cryptoKey, key);
  }
  const expected =
    alg === 'ES256'
      ? key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
      : key.asymmetricKeyType === 'ed25519';
  if (key.type !== 'public' || !expected) throw invalid(`the key ${header.kid} does not fit ${alg}`);
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

function numberClaim(claims: Record<string, unknown>, name: string): number {
  const value = claims[name];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`the ${name} claim is missing`);
  return value;
}

function stringClaim(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(`the ${name} claim is missing`);
  return value;
}

function actorClaim(value: unknown): ImpersonationContext['actor'] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('the act claim (the acting engineer) is missing');
  }
  const act = value as Record<string, unknown>;
  const email = act.email;
  if (email !== undefined && email !== null && typeof email !== 'string')
    throw invalid('act.email is not a string');
  return { sub: stringClaim(act.sub, 'act.sub'), iss: stringClaim(act.iss, 'act.iss'), email: email ?? null };
}

function scopesClaim(value: unknown): ('read' | 'write')[] {
  const scopes = stringClaim(value, 'scope').split(' ');
  // Unknown scopes are ignored (forward compatibility); a token must at least allow reading.
  if (!scopes.includes('tenant:read')) throw invalid('the scope claim does not include tenant:read');
  return scopes.includes('tenant:write') ? ['read', 'write'] : ['read'];
}

function modeClaim(value: unknown): SessionMode {
  if (typeof value !== 'string' || !MODES.includes(value))
    throw invalid('the mode claim is missing or unknown');
  return value as SessionMode;
}

/** The broker status check, cached per session id; in-flight questions are shared. */
function statusChecker(
  options: StatusCheckOptions,
  base: string,
  fetchImpl: typeof fetch,
  now: () => number,
): (sid: string, token: string) => Promise<void> {
  const url = options.url ?? `${base}/v1/token-status`;
  const ttl = (options.cacheSeconds ?? 5) * 1000;
  const timeout = options.timeoutMs ?? 2000;
  const cache = new Map<string, StatusAnswer>();
  const pending = new Map<string, Promise<StatusAnswer>>();

  async function ask(token: string): Promise<StatusAnswer> {
    let response: Response;
    try {
      // redirect: manual — the session token is never replayed to wherever a redirect points.
      response = await fetchImpl(url, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(timeout),
      });
    } catch (error) {
      throw unavailable(`${(error as Error).message}`, error);
    }
    // The broker refuses the token outright: it does not know it as a live session.
    if (response.status === 401) {
      await response.body?.cancel();
      return { active: false, state: 'revoked', until: now() + ttl };
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw unavailable(`HTTP ${response.status}`);
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      throw unavailable('the answer is not JSON', error);
    }
    const { active, state } = (body ?? {}) as { active?: unknown; state?: unknown };
    if (typeof active !== 'boolean') throw unavailable('the answer has no boolean `active`');
    return {
      active,
      state: typeof state === 'string' ? state : active ? 'active' : 'revoked',
      until: now() + ttl,
    };
  }

  return async (sid, token) => {
    let answer = cache.get(sid);
    if (!answer || answer.until <= now()) {
      let question = pending.get(sid);
      if (!question) {
        question = ask(token).finally(() => pending.delete(sid));
        pending.set(sid, question);
      }
      answer = await question;
      cache.delete(sid);
      if (cache.size >= MAX_STATUS_ENTRIES) cache.delete(cache.keys().next().value as string);
      cache.set(sid, answer);
    }
    if (!answer.active) {
      throw new ImpersonationError(
        'revoked',
        `The impersonation session is no longer active (${answer.state}).`,
      );
    }
  };

  function unavailable(reason: string, cause?: unknown): ImpersonationError {
    return new ImpersonationError(
      'status_unavailable',
      `The broker's session status could not be checked (${reason}); refusing until it can.`,
      { cause },
    );
  }
}
