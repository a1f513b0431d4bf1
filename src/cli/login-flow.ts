/**
 * Logging in and staying logged in, for every command that talks to the broker: run the device flow,
 * exchange the ID token at the broker, store the broker token; on an RFC 9470 challenge log in again
 * with max_age and retry once. The broker decides what is fresh enough; this only helps.
 */

import { BrokerClient } from '../client/broker-client.js';
import { loadConfig, resolveBrokerUrl, saveConfig } from '../client/config.js';
import { readLogin, type StoredLogin, saveLogin } from '../client/login-state.js';
import type { LoginResponse } from '../core/api.js';
import { AuthRequiredError, ImpError, StepUpRequiredError } from '../core/errors.js';
import { escapeUntrusted } from '../core/escape.js';
import type { Deps } from './deps.js';
import { canOpenBrowser, confirmWithPasskey } from './passkey-flow.js';
import { startSpinner } from './spinner.js';

/** The broker a command talks to, and how it was chosen. */
export interface BrokerTarget {
  url: string;
  client: BrokerClient;
}

/** Resolves the broker URL (flag > IMP_BROKER_URL > config.json). */
export async function brokerTarget(
  deps: Pick<Deps, 'env' | 'paths' | 'fetch'>,
  flag: string | undefined,
): Promise<BrokerTarget> {
  const url = resolveBrokerUrl(flag, deps.env, await loadConfig(deps.paths.configFile));
  return { url, client: new BrokerClient(url, deps.fetch) };
}

/** How a login shows itself. */
export interface LoginUx {
  json: boolean;
  noBrowser: boolean;
  /** Why the login is needed, shown before the code ("This needs a fresh login"). */
  reason?: string;
  /**
   * Where JSON events go when a command's stdout is not its own (exec's child writes there): the
   * `device_authorization` event is sent here instead of stdout.
   */
  events?: (event: Record<string, unknown>) => void;
  /** Unattended (--no-login): never start a login; fail at once with exit 3 naming the missing identity. */
  noLogin?: boolean;
}

/** Runs the device flow against the broker's IdP and stores the broker token. */
export async function performLogin(
  deps: Pick<
    Deps,
    'io' | 'env' | 'paths' | 'credentials' | 'deviceLogin' | 'openUrl' | 'fetch' | 'interrupt'
  >,
  target: BrokerTarget,
  ux: LoginUx,
  maxAge?: number,
): Promise<LoginResponse> {
  const { io } = deps;
  const brokerConfig = await target.client.config();
  // Said on stderr at once, --json or not: a run that waits for a person must never wait silently.
  if (ux.reason) io.err(ux.reason);
  const result = await deps.deviceLogin({
    issuer: brokerConfig.issuer,
    clientId: brokerConfig.client_id,
    ...(maxAge !== undefined ? { maxAge } : {}),
    fetch: deps.fetch,
    signal: deps.interrupt,
    onCode: async (code) => {
      const url = code.verification_uri_complete ?? code.verification_uri;
      if (ux.events) ux.events({ event: 'device_authorization', ...code });
      else if (ux.json) io.out(JSON.stringify({ event: 'device_authorization', ...code }));
      // The complete URI carries the code, so nothing needs typing; the code is still shown to compare.
      io.err(
        code.verification_uri_complete
          ? `To log in, open ${escapeUntrusted(code.verification_uri_complete)} (or ${escapeUntrusted(code.verification_uri)} and enter the code ${escapeUntrusted(code.user_code)})`
          : `To log in, open ${escapeUntrusted(code.verification_uri)} and enter the code ${escapeUntrusted(code.user_code)}`,
      );
      io.err(
        `Only confirm if the page shows this same code and you started this login (it expires in ${Math.round(code.expires_in / 60)} min).`,
      );
      if (!ux.noBrowser && canOpenBrowser(deps.env)) {
        await deps
          .openUrl(url)
          .catch(() => io.err('Could not open a browser; open the link above yourself.'));
      }
    },
  });
  const login = await target.client.login(result.idToken);
  const store = await deps.credentials();
  await saveLogin(store, target.url, login);
  await saveConfig(deps.paths.configFile, {
    ...(await loadConfig(deps.paths.configFile)),
    broker_url: target.url,
  });
  if (!ux.json)
    io.err(
      `Logged in as ${escapeUntrusted(login.user.email ?? login.user.sub)} (roles: ${login.user.roles.map(escapeUntrusted).join(', ') || 'none'}).`,
    );
  return login;
}

/** Runs the device flow with a waiting indicator (the polling happens inside deviceLogin). */
export async function loginWithProgress(
  deps: Parameters<typeof performLogin>[0],
  target: BrokerTarget,
  ux: LoginUx,
  maxAge?: number,
): Promise<LoginResponse> {
  if (ux.json || !deps.io.stderrIsTTY) return performLogin(deps, target, ux, maxAge);
  let spinner: Awaited<ReturnType<typeof startSpinner>> | undefined;
  const wrapped = {
    ...deps,
    deviceLogin: (options: Parameters<Deps['deviceLogin']>[0]) =>
      deps.deviceLogin({
        ...options,
        onCode: async (code) => {
          await options.onCode(code);
          spinner = await startSpinner(deps.io, 'Waiting for you to confirm in the browser…');
        },
      }),
  };
  try {
    return await performLogin(wrapped, target, ux, maxAge);
  } finally {
    spinner?.stop();
  }
}

/**
 * Calls `fn` with a broker token, logging in first when needed. On an RFC 9470 challenge it does what
 * the challenge names and retries once per kind: a fresh IdP login (`max_age`), or a passkey
 * confirmation on the broker's page (`acr_values`), or, with `idp+passkey`, one then the other.
 */
export async function withLogin<T>(
  deps: Parameters<typeof performLogin>[0],
  target: BrokerTarget,
  ux: LoginUx,
  fn: (token: string) => Promise<T>,
): Promise<T> {
  const store = await deps.credentials();
  let stored: StoredLogin | null = await readLogin(store, target.url);
  const who = stored ? escapeUntrusted(stored.user.email ?? stored.user.sub) : null;
  if (!stored) {
    if (ux.noLogin)
      throw new AuthRequiredError(
        `Not logged in to ${target.url} and --no-login was given: no identity to act as. Run imp login first, or use a machine identity (--identity-token-file).`,
      );
    stored = await loginWithProgress(deps, target, { ...ux, reason: ux.reason ?? 'You are not logged in.' });
  }
  let token = stored.token;
  const done = { idp: false, passkey: false, expired: false };
  for (;;) {
    try {
      return await fn(token);
    } catch (error) {
      if (
        ux.noLogin &&
        (error instanceof StepUpRequiredError ||
          (error instanceof ImpError && error.code === 'IMP_AUTH_REQUIRED'))
      )
        throw new AuthRequiredError(
          `The login of ${who ?? 'this user'} at ${target.url} cannot open this (${error instanceof StepUpRequiredError ? (error.method === 'passkey' ? 'the broker asks for your passkey' : 'the broker asks for a fresh login') : 'it has expired'}) and --no-login was given. Run imp login first, or use a machine identity (--identity-token-file).`,
          { cause: error },
        );
      if (
        error instanceof StepUpRequiredError &&
        error.method === 'passkey' &&
        error.passkey &&
        !done.passkey
      ) {
        done.passkey = true;
        await confirmWithPasskey(deps, target, ux, token, error.passkey);
        target.client.stepUp = error.passkey.id;
        try {
          return await fn(token);
        } finally {
          target.client.stepUp = null;
        }
      }
      if (error instanceof StepUpRequiredError && error.method === 'idp' && !done.idp) {
        done.idp = true;
        token = (
          await loginWithProgress(
            deps,
            target,
            {
              ...ux,
              // The broker cannot check what the IdP does: it asks; the IdP should, and may not.
              reason: 'This needs a fresh login: your identity provider should ask you to sign in again.',
            },
            error.maxAge || 1,
          )
        ).token;
        continue;
      }
      if (error instanceof ImpError && error.code === 'IMP_AUTH_REQUIRED' && !done.expired) {
        done.expired = true;
        token = (await loginWithProgress(deps, target, { ...ux, reason: 'Your login has expired.' })).token;
        continue;
      }
      throw error;
    }
  }
}

/** The stored login, or AuthRequiredError telling the user to log in. */
export async function requireStoredLogin(
  deps: Pick<Deps, 'credentials'>,
  target: BrokerTarget,
): Promise<StoredLogin> {
  const stored = await readLogin(await deps.credentials(), target.url);
  if (!stored) throw new AuthRequiredError(`Not logged in to ${target.url}. Run: imp login`);
  return stored;
}
