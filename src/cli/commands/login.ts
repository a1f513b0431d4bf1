/** `imp login`: device-flow login against the broker's identity provider. */
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, loginWithProgress } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'login',
  group: 'auth',
  summary: 'Log in with your identity provider (OIDC device flow)',
  usage: 'imp login [--broker <url>] [--no-browser] [--json]',
  flags: [
    { name: 'broker', value: '<url>', description: 'Broker URL (else IMP_BROKER_URL, else the remembered one)' },
    { name: 'no-browser', description: 'Do not open a browser; print the link and code only' },
  ],
  examples: ['imp login --broker https://imp.example.com', 'imp login --no-browser'],
};

/** Typed options. */
export interface LoginOptions {
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): LoginOptions {
  return { broker: stringFlag(parsed, 'broker'), noBrowser: boolFlag(parsed, 'no-browser'), json: boolFlag(parsed, 'json') };
}

/** Logs in and prints who. */
export async function run(options: LoginOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const login = await loginWithProgress(deps, target, { json: options.json, noBrowser: options.noBrowser });
  if (options.json) {
    const { iss, sub, email, name, groups, roles } = login.user;
    deps.io.out(JSON.stringify({ event: 'logged_in', user: { iss, sub, email, name, groups, roles }, auth_time: login.auth_time, expires_at: login.expires_at }));
  }
  return 0;
}
