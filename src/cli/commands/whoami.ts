/** `imp whoami`: who the broker thinks you are, your roles, and how old your login is. */
import { formatDuration } from '../../core/duration.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, requireStoredLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'whoami',
  group: 'auth',
  summary: 'Show who is logged in, your roles and how old the login is',
  usage: 'imp whoami [--broker <url>] [--json]',
  flags: [{ name: 'broker', value: '<url>', description: 'Broker URL' }],
  examples: ['imp whoami', 'imp whoami --json | jq .user.roles'],
};

/** Typed options. */
export interface WhoamiOptions {
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): WhoamiOptions {
  return { broker: stringFlag(parsed, 'broker'), json: boolFlag(parsed, 'json') };
}

/** Asks the broker (so a revoked or expired login shows as such) and prints. */
export async function run(
  options: WhoamiOptions,
  deps: Pick<Deps, 'io' | 'env' | 'paths' | 'fetch' | 'credentials'>,
): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const stored = await requireStoredLogin(deps, target);
  const me = await target.client.whoami(stored.token);
  if (options.json) {
    deps.io.out(JSON.stringify({ broker: target.url, ...me }));
    return 0;
  }
  const { user } = me;
  deps.io.out(`${escapeUntrusted(user.name ?? user.sub)} <${escapeUntrusted(user.email ?? 'no email')}>`);
  deps.io.out(`  subject:   ${escapeUntrusted(user.sub)} at ${escapeUntrusted(user.iss)}`);
  deps.io.out(`  groups:    ${user.groups.map(escapeUntrusted).join(', ') || 'none'}`);
  deps.io.out(`  roles:     ${user.roles.map(escapeUntrusted).join(', ') || 'none'}`);
  deps.io.out(
    `  logged in: ${formatDuration(me.login_age_seconds)} ago (login valid until ${me.expires_at})`,
  );
  deps.io.out(`  broker:    ${target.url}`);
  return 0;
}
