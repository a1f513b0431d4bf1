/** `imp passkey list`: the passkeys the broker holds for you. */
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'passkey list',
  group: 'auth',
  summary: 'List your passkeys',
  usage: 'imp passkey list [--broker <url>] [--json]',
  flags: [{ name: 'broker', value: '<url>', description: 'Broker URL' }],
  examples: ['imp passkey list', 'imp passkey list --json'],
};

/** Typed options. */
export interface PasskeyListOptions {
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): PasskeyListOptions {
  return { broker: stringFlag(parsed, 'broker'), json: boolFlag(parsed, 'json') };
}

/** Lists: id, name, created, last used. */
export async function run(options: PasskeyListOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const passkeys = await withLogin(deps, target, { json: options.json, noBrowser: true }, (token) =>
    target.client.listPasskeys(token),
  );
  if (options.json) {
    deps.io.out(JSON.stringify({ passkeys }));
    return 0;
  }
  if (passkeys.length === 0) deps.io.err('You have no passkeys. Add one: imp passkey add');
  for (const p of passkeys)
    deps.io.out(
      `${escapeUntrusted(p.id)}  ${escapeUntrusted(p.name)}  added ${p.created_at}  last used ${p.last_used_at ?? 'never'}`,
    );
  return 0;
}
