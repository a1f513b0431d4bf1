/** `imp logout`: forget the broker token on this machine. */
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'logout',
  group: 'auth',
  summary: 'Remove the stored login for the broker',
  usage: 'imp logout [--broker <url>] [--json]',
  flags: [{ name: 'broker', value: '<url>', description: 'Broker URL' }],
  examples: ['imp logout'],
};

/** Typed options. */
export interface LogoutOptions {
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): LogoutOptions {
  return { broker: stringFlag(parsed, 'broker'), json: boolFlag(parsed, 'json') };
}

/** Deletes the stored credentials (idempotent). */
export async function run(
  options: LogoutOptions,
  deps: Pick<Deps, 'io' | 'env' | 'paths' | 'fetch' | 'credentials'>,
): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const removed = await (await deps.credentials()).delete(target.url);
  if (options.json) deps.io.out(JSON.stringify({ logged_out: removed, broker: target.url }));
  else
    deps.io.err(
      removed ? `Logged out of ${target.url}.` : `Not logged in to ${target.url}; nothing to remove.`,
    );
  return 0;
}
