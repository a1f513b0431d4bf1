/**
 * The CLI's side of OIDC: RFC 8628 device authorization through issuer discovery, with
 * openid-client doing the protocol (polling, interval, slow_down, ID-token validation).
 * No refresh token is ever requested: nothing long-lived lands on a laptop.
 */
import * as oidc from 'openid-client';
import { AuthFailedError, ImpError, InterruptedError } from '../core/errors.js';
import { isLoopbackHost } from '../core/policy/reader.js';

/** What the user must see to complete the login in a browser. */
export interface DeviceCode {
  verification_uri: string;
  verification_uri_complete: string | null;
  user_code: string;
  expires_in: number;
}

/** A completed login: the raw ID token (for the broker) and its validated claims. */
export interface DeviceLoginResult {
  idToken: string;
  claims: Record<string, unknown>;
}

/** Inputs of one device-flow login. */
export interface DeviceLoginOptions {
  issuer: string;
  clientId: string;
  /** Seconds: when set, the IdP must have authenticated the user this recently (step-up). */
  maxAge?: number;
  /** Called once the code is known, before polling starts. */
  onCode: (code: DeviceCode) => void | Promise<void>;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/** Runs the device flow to completion. Errors: AuthFailedError (IdP unreachable, denied, expired), InterruptedError. */
export async function runDeviceLogin(options: DeviceLoginOptions): Promise<DeviceLoginResult> {
  const issuerUrl = new URL(options.issuer);
  const execute =
    issuerUrl.protocol === 'http:' && isLoopbackHost(issuerUrl.hostname) ? [oidc.allowInsecureRequests] : [];
  let config: oidc.Configuration;
  try {
    config = await oidc.discovery(
      issuerUrl,
      options.clientId,
      { token_endpoint_auth_method: 'none' },
      oidc.None(),
      {
        execute,
        timeout: 10,
        ...(options.fetch ? { [oidc.customFetch]: adaptFetch(options.fetch) } : {}),
      },
    );
  } catch (error) {
    // Exit 3, not 1: the login cannot happen, and what the user needs is to authenticate once the
    // IdP answers again (open sessions keep working meanwhile: the broker does not ask the IdP).
    throw new AuthFailedError(
      `Cannot log in: the identity provider at ${options.issuer} cannot be reached (${describe(error)}). Try again when it is up; check the broker's identity.issuer if this persists.`,
      { cause: error, details: { reason: 'idp_unreachable' } },
    );
  }
  if (options.fetch) config[oidc.customFetch] = adaptFetch(options.fetch);

  const parameters: Record<string, string> = { scope: 'openid email profile groups' };
  if (options.maxAge !== undefined) parameters.max_age = String(Math.max(1, Math.floor(options.maxAge)));
  let authorization: oidc.DeviceAuthorizationResponse;
  try {
    authorization = await oidc.initiateDeviceAuthorization(config, parameters);
  } catch (error) {
    if (isNetworkError(error))
      throw new AuthFailedError(
        `Cannot log in: the identity provider at ${options.issuer} stopped answering (${describe(error)}). Try again when it is up.`,
        { cause: error, details: { reason: 'idp_unreachable' } },
      );
    throw new AuthFailedError(`The identity provider refused to start a device login: ${describe(error)}`, {
      cause: error,
    });
  }
  await options.onCode({
    verification_uri: authorization.verification_uri,
    verification_uri_complete: authorization.verification_uri_complete ?? null,
    user_code: authorization.user_code,
    expires_in: authorization.expires_in,
  });

  try {
    const tokens = await oidc.pollDeviceAuthorizationGrant(
      config,
      authorization,
      undefined,
      options.signal ? { signal: options.signal } : {},
    );
    const claims = tokens.claims();
    if (!tokens.id_token || !claims) throw new AuthFailedError('The identity provider returned no ID token.');
    if (options.maxAge !== undefined && typeof claims.auth_time !== 'number') {
      throw new AuthFailedError(
        'The identity provider did not report auth_time, which imp needs to prove a fresh login.',
      );
    }
    return { idToken: tokens.id_token, claims: { ...claims } };
  } catch (error) {
    if (error instanceof ImpError) throw error;
    if (options.signal?.aborted) throw new InterruptedError('Login interrupted.');
    const code = (error as { error?: string }).error;
    if (code === 'access_denied')
      throw new AuthFailedError('The login was denied in the browser.', { cause: error });
    if (code === 'expired_token')
      throw new AuthFailedError('The login code expired before it was confirmed. Run the command again.', {
        cause: error,
      });
    if ((error as Error).name === 'AbortError' || (error as Error).name === 'TimeoutError') {
      throw new AuthFailedError('The login code expired before it was confirmed. Run the command again.', {
        cause: error,
      });
    }
    throw new AuthFailedError(`The login failed: ${describe(error)}`, { cause: error });
  }
}

// openid-client's CustomFetch is fetch with a narrower options type.
function adaptFetch(fetchImpl: typeof fetch): oidc.CustomFetch {
  return (url, options) => fetchImpl(url, options as RequestInit);
}

// fetch rejects with a TypeError whose cause is the socket error (ECONNREFUSED, ENOTFOUND, …).
function isNetworkError(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return error instanceof TypeError && typeof cause?.code === 'string';
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const causeText = cause instanceof Error ? `: ${cause.message}` : '';
    return `${error.message}${causeText}`;
  }
  return String(error);
}
