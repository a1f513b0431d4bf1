/** `imp doctor`: what is wrong with this machine's imp setup, and what to do about it. */

import { BrokerClient } from '../../client/broker-client.js';
import { loadConfig, resolveBrokerUrl } from '../../client/config.js';
import { readLogin } from '../../client/login-state.js';
import { formatDuration } from '../../core/duration.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'doctor',
  group: 'admin',
  summary: 'Check broker, identity provider, keychain, clock and login, and say what to fix',
  usage: 'imp doctor [--reauth] [--no-browser] [--broker <url>] [--json]',
  flags: [
    { name: 'reauth', description: 'Also test whether the IdP proves re-authentication (two logins)' },
    { name: 'no-browser', description: 'With --reauth: do not open a browser; print the links and codes' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp doctor', 'imp doctor --json', 'imp doctor --reauth'],
};

/** Typed options. */
export interface DoctorOptions {
  broker: string | undefined;
  json: boolean;
  reauth: boolean;
  noBrowser: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): DoctorOptions {
  return {
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
    reauth: boolFlag(parsed, 'reauth'),
    noBrowser: boolFlag(parsed, 'no-browser'),
  };
}

/** One check's outcome. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** Passes, but the person should know (idp re-authentication rests on the IdP's word). */
  warn?: boolean;
}

const SKEW_LIMIT_SECONDS = 30;

/** Runs every check; exit 0 when all pass, 1 otherwise. */
export async function run(
  options: DoctorOptions,
  deps: Pick<
    Deps,
    | 'io'
    | 'env'
    | 'paths'
    | 'fetch'
    | 'credentials'
    | 'clock'
    | 'deviceLogin'
    | 'openUrl'
    | 'prompter'
    | 'interrupt'
  >,
): Promise<number> {
  const checks: Check[] = [];
  const add = (check: Check) => {
    checks.push(check);
    if (!options.json)
      deps.io.out(
        `${check.ok ? (check.warn ? 'warn' : 'ok  ') : 'FAIL'}  ${check.name}: ${escapeUntrusted(check.detail)}${check.fix ? `\n      → ${check.fix}` : ''}`,
      );
  };

  let broker: string | null = null;
  try {
    broker = resolveBrokerUrl(options.broker, deps.env, await loadConfig(deps.paths.configFile));
    add({
      name: 'broker configured',
      ok: true,
      detail: `${broker}${deps.paths.profile ? ` (profile ${deps.paths.profile})` : ''}`,
    });
  } catch (error) {
    add({
      name: 'broker configured',
      ok: false,
      detail: (error as Error).message,
      fix: 'imp login --broker <url>',
    });
  }

  let issuer: string | null = null;
  let clientId: string | null = null;
  if (broker) {
    const started = deps.clock.now();
    try {
      const response = await deps.fetch(`${broker}/v1/config`, { signal: AbortSignal.timeout(5000) });
      const config = (await response.json()) as {
        issuer?: string;
        client_id?: string;
        reauth_method?: string;
      };
      issuer = config.issuer ?? null;
      clientId = config.client_id ?? null;
      add({
        name: 'broker reachable',
        ok: response.ok,
        detail: `HTTP ${response.status} in ${deps.clock.now() - started} ms`,
      });
      if (response.ok) add(reauthCheck(config.reauth_method ?? 'idp'));
      const date = response.headers.get('date');
      if (date) {
        const skew = Math.round((deps.clock.now() - Date.parse(date)) / 1000);
        const ok = Math.abs(skew) <= SKEW_LIMIT_SECONDS;
        add({
          name: 'clock',
          ok,
          detail: `${skew >= 0 ? 'ahead of' : 'behind'} the broker by ${Math.abs(skew)} s`,
          ...(ok ? {} : { fix: 'Turn on time synchronisation (NTP): logins and sessions are time-bound.' }),
        });
      }
    } catch (error) {
      add({
        name: 'broker reachable',
        ok: false,
        detail: `${broker}: ${(error as Error).message}`,
        fix: 'Check the URL, that the broker runs, VPN/proxy settings.',
      });
    }
  }

  if (issuer) {
    try {
      const response = await deps.fetch(`${issuer}/.well-known/openid-configuration`, {
        signal: AbortSignal.timeout(5000),
      });
      const metadata = (await response.json()) as { device_authorization_endpoint?: string };
      const ok = response.ok && Boolean(metadata.device_authorization_endpoint);
      add({
        name: 'identity provider',
        ok,
        detail: ok ? `${issuer} supports the device flow` : `${issuer} has no device_authorization_endpoint`,
        ...(ok ? {} : { fix: 'Enable the device authorization grant for the imp client at your IdP.' }),
      });
    } catch (error) {
      add({
        name: 'identity provider',
        ok: false,
        detail: `${issuer}: ${(error as Error).message}`,
        fix: 'The broker names this issuer in its policy (identity.issuer); check it is reachable from here.',
      });
    }
  }

  try {
    const store = await deps.credentials();
    add({
      name: 'credential store',
      ok: true,
      detail:
        store.kind === 'keychain'
          ? 'OS keychain'
          : `${store.kind} (${deps.paths.credentialsFile}, mode 0600)${
              store.fallbackReason
                ? ` because no OS keychain is available (${store.fallbackReason.replace(/\s+/g, ' ').trim()}); imp warned once — IMP_CREDENTIAL_STORE=file makes the file the choice`
                : ''
            }`,
    });
    if (broker) {
      const login = await readLogin(store, broker);
      if (!login) add({ name: 'login', ok: false, detail: 'not logged in', fix: 'imp login' });
      else {
        try {
          const me = await new BrokerClient(broker, deps.fetch).whoami(login.token);
          add({
            name: 'login',
            ok: true,
            detail: `${me.user.email ?? me.user.sub}, ${formatDuration(me.login_age_seconds)} old, roles: ${me.user.roles.join(', ') || 'none'}`,
          });
        } catch (error) {
          add({ name: 'login', ok: false, detail: (error as Error).message, fix: 'imp login' });
        }
      }
    }
  } catch (error) {
    add({
      name: 'credential store',
      ok: false,
      detail: (error as Error).message,
      fix: 'Unset IMP_CREDENTIAL_STORE or start a Secret Service (gnome-keyring).',
    });
  }

  if (options.reauth && issuer && clientId) {
    const { probeReauth } = await import('../reauth-probe.js');
    add(await probeReauth(deps, { issuer, clientId }, { json: options.json, noBrowser: options.noBrowser }));
  }
  if (options.json) deps.io.out(JSON.stringify({ ok: checks.every((c) => c.ok), checks }));
  return checks.every((c) => c.ok) ? 0 : 1;
}

// What the broker can prove about re-authentication: with idp, only what the IdP claims.
function reauthCheck(method: string): Check {
  if (method === 'idp')
    return {
      name: 're-authentication',
      ok: true,
      warn: true,
      detail:
        'idp: the broker trusts the identity provider to ask again (auth_time); many IdPs ignore max_age on the device grant, so this rests on the IdP',
      fix: 'Check your IdP: imp doctor --reauth. To have the broker prove it: reauth.method: passkey in the policy.',
    };
  return {
    name: 're-authentication',
    ok: true,
    detail: `${method}: the broker verifies a passkey made for each session, approval and break-glass step`,
  };
}
