/** `imp passkey remove <id>`: remove one of your passkeys (confirmed with a passkey). */
import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'passkey remove',
  group: 'auth',
  summary: 'Remove one of your passkeys',
  usage: 'imp passkey remove <id> [--no-browser] [--broker <url>] [--json]',
  args: [{ name: 'id', required: true, description: 'Passkey id (imp passkey list)' }],
  flags: [
    { name: 'no-browser', description: 'Do not open a browser; print the link and code only' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp passkey remove 3q2-7wLpQ…'],
};

/** Typed options. */
export interface PasskeyRemoveOptions {
  id: string;
  noBrowser: boolean;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): PasskeyRemoveOptions {
  const id = parsed.args[0];
  if (!id) throw new UsageError(`Which passkey? Usage: ${spec.usage}`);
  return {
    id,
    noBrowser: boolFlag(parsed, 'no-browser'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Removes. */
export async function run(options: PasskeyRemoveOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  await withLogin(deps, target, { json: options.json, noBrowser: options.noBrowser }, (token) =>
    target.client.removePasskey(token, options.id),
  );
  if (options.json) deps.io.out(JSON.stringify({ event: 'passkey_removed', id: options.id }));
  else deps.io.err(`Removed passkey ${escapeUntrusted(options.id)}.`);
  return 0;
}
