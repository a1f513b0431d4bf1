/**
 * The web console's login: OIDC authorization code with PKCE (RFC 7636, S256), state and nonce, via
 * openid-client. The console is its own client (policy console.client_id): public with PKCE, or
 * confidential when console.client_secret_env names a secret. The ID token it returns is verified
 * again by the broker's own ID-token check (signature, issuer, audience = the console's client id)
 * before any broker token is minted, exactly like the CLI's.
 */
import * as oidc from 'openid-client';
import { AuthFailedError } from '../core/errors.js';
import { isLoopbackHost } from '../core/policy/reader.js';

/** Settings of the console's OIDC client. */
export interface CodeFlowOptions {
  issuer: string;
  clientId: string;
  /** null: a public client (PKCE only). */
  clientSecret: string | null;
  redirectUri: string;
  fetch?: typeof fetch;
}

/** The secrets one login attempt keeps server-side. */
export interface CodeFlowChecks {
  state: string;
  nonce: string;
  verifier: string;
}

/** One console OIDC client, discovery cached. */
export interface CodeFlow {
  /** Fresh state, nonce and PKCE verifier. */
  newChecks(): CodeFlowChecks;
  /** The IdP URL to send the browser to; `maxAge: 0` demands a fresh login. */
  authorizationUrl(checks: CodeFlowChecks, options?: { maxAge?: number }): Promise<string>;
  /** Redeems the code at the callback URL; returns the raw ID token. */
  finish(callbackUrl: URL, checks: CodeFlowChecks): Promise<string>;
}

/** Builds the console's client; discovery happens on first use, so the broker starts while the IdP is down. */
export function createCodeFlow(options: CodeFlowOptions): CodeFlow {
  let config: Promise<oidc.Configuration> | undefined;
  const issuerUrl = new URL(options.issuer);
  const execute =
    issuerUrl.protocol === 'http:' && isLoopbackHost(issuerUrl.hostname) ? [oidc.allowInsecureRequests] : [];
  const customFetch: oidc.CustomFetch | undefined = options.fetch
    ? (url, init) => (options.fetch as typeof fetch)(url, init as RequestInit)
    : undefined;

  const configuration = (): Promise<oidc.Configuration> => {
    config ??= oidc
      .discovery(
        issuerUrl,
        options.clientId,
        { redirect_uris: [options.redirectUri], response_types: ['code'] },
        options.clientSecret ? oidc.ClientSecretPost(options.clientSecret) : oidc.None(),
        { execute, timeout: 10, ...(customFetch ? { [oidc.customFetch]: customFetch } : {}) },
      )
      .then((found) => {
        if (customFetch) found[oidc.customFetch] = customFetch;
        return found;
      })
      .catch((error: unknown) => {
        config = undefined; // try discovery again next time
        throw new AuthFailedError(
          `The identity provider at ${options.issuer} cannot be reached; try again in a moment.`,
          { cause: error, details: { reason: 'idp_unreachable' } },
        );
      });
    return config;
  };

  return {
    newChecks: () => ({
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      verifier: oidc.randomPKCECodeVerifier(),
    }),
    async authorizationUrl(checks, extra = {}) {
      const parameters: Record<string, string> = {
        redirect_uri: options.redirectUri,
        scope: 'openid email profile groups',
        code_challenge: await oidc.calculatePKCECodeChallenge(checks.verifier),
        code_challenge_method: 'S256',
        state: checks.state,
        nonce: checks.nonce,
      };
      if (extra.maxAge !== undefined) {
        parameters.max_age = String(extra.maxAge);
        if (extra.maxAge === 0) parameters.prompt = 'login';
      }
      return oidc.buildAuthorizationUrl(await configuration(), parameters).href;
    },
    async finish(callbackUrl, checks) {
      let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
      try {
        tokens = await oidc.authorizationCodeGrant(await configuration(), callbackUrl, {
          pkceCodeVerifier: checks.verifier,
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          idTokenExpected: true,
        });
      } catch (error) {
        if (error instanceof AuthFailedError) throw error;
        const described = error instanceof Error ? error.message : String(error);
        throw new AuthFailedError(`The login did not complete: ${described}`, {
          cause: error,
          details: { reason: 'code_flow' },
        });
      }
      if (!tokens.id_token)
        throw new AuthFailedError('The identity provider returned no ID token.', {
          details: { reason: 'no_id_token' },
        });
      return tokens.id_token;
    },
  };
}
