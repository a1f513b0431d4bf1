/** `imp login`: device-flow login against the broker's identity provider. */
import { loadConfig } from '../../client/config.js';
import { UsageError } from '../../core/errors.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, loginWithProgress } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'login',
  group: 'auth',
  summary: 'Log in with your identity provider (OIDC device flow)',
  usage: 'imp login [--broker <url>] [--no-browser] [--fresh] [--json]',
  flags: [
    {
      name: 'fresh',
      description: 'Make the identity provider ask for your password again, even if the browser is signed in',
    },
    {
      name: 'broker',
      value: '<url>',
      description: 'Broker URL (else IMP_BROKER_URL, else the remembered one)',
    },
    { name: 'no-browser', description: 'Do not open a browser; print the link and code only' },
  ],
  examples: ['imp login --broker https://imp.example.com', 'imp login --no-browser', 'imp login --fresh'],
};

/** Typed options. */
export interface LoginOptions {
  broker: string | undefined;
  noBrowser: boolean;
  fresh: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): LoginOptions {
  return {
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    fresh: boolFlag(parsed, 'fresh'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Logs in and prints who. */
export async function run(options: LoginOptions, deps: Deps): Promise<number> {
  if (!options.broker && !deps.env.IMP_BROKER_URL && !(await loadConfig(deps.paths.configFile)).broker_url) {
    throw new UsageError(
      'Which broker? Pass --broker <url> (or set IMP_BROKER_URL); imp remembers it after the first login.',
    );
  }
  const target = await brokerTarget(deps, options.broker);
  // max_age=1: the smallest value oidc-provider honours in the device flow (it ignores 0 and prompt=login).
  const login = await loginWithProgress(
    deps,
    target,
    { json: options.json, noBrowser: options.noBrowser },
    options.fresh ? 1 : undefined,
  );
  if (options.json) {
    const { iss, sub, email, name, groups, roles } = login.user;
    deps.io.out(
      JSON.stringify({
        event: 'logged_in',
        user: { iss, sub, email, name, groups, roles },
        auth_time: login.auth_time,
        expires_at: login.expires_at,
      }),
    );
  }
  return 0;
}
