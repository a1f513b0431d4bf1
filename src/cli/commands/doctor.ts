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
  usage: 'imp doctor [--broker <url>] [--json]',
  flags: [{ name: 'broker', value: '<url>', description: 'Broker URL' }],
  examples: ['imp doctor', 'imp doctor --json'],
};

/** Typed options. */
export interface DoctorOptions {
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): DoctorOptions {
  return { broker: stringFlag(parsed, 'broker'), json: boolFlag(parsed, 'json') };
}

/** One check's outcome. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

const SKEW_LIMIT_SECONDS = 30;

/** Runs every check; exit 0 when all pass, 1 otherwise. */
export async function run(
  options: DoctorOptions,
  deps: Pick<Deps, 'io' | 'env' | 'paths' | 'fetch' | 'credentials' | 'clock'>,
): Promise<number> {
  const checks: Check[] = [];
  const add = (check: Check) => {
    checks.push(check);
    if (!options.json)
      deps.io.out(
        `${check.ok ? 'ok  ' : 'FAIL'}  ${check.name}: ${escapeUntrusted(check.detail)}${check.fix ? `\n      → ${check.fix}` : ''}`,
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
  if (broker) {
    const started = deps.clock.now();
    try {
      const response = await deps.fetch(`${broker}/v1/config`, { signal: AbortSignal.timeout(5000) });
      const config = (await response.json()) as { issuer?: string };
      issuer = config.issuer ?? null;
      add({
        name: 'broker reachable',
        ok: response.ok,
        detail: `HTTP ${response.status} in ${deps.clock.now() - started} ms`,
      });
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

  if (options.json) deps.io.out(JSON.stringify({ ok: checks.every((c) => c.ok), checks }));
  return checks.every((c) => c.ok) ? 0 : 1;
}
