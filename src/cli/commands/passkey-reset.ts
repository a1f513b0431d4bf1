/** `imp passkey reset <person>`: remove someone else's passkeys (role with passkey_reset; never your own). */
import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'passkey reset',
  group: 'admin',
  summary: "Reset someone else's passkeys (role with passkey_reset)",
  usage: 'imp passkey reset <email|sub> [--no-browser] [--broker <url>] [--json]',
  args: [{ name: 'person', required: true, description: 'Their email or subject' }],
  flags: [
    { name: 'no-browser', description: 'Do not open a browser; print the link and code only' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp passkey reset alice@example.com'],
};

/** Typed options. */
export interface PasskeyResetOptions {
  person: string;
  noBrowser: boolean;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): PasskeyResetOptions {
  const person = parsed.args[0];
  if (!person) throw new UsageError(`Whose passkeys? Usage: ${spec.usage}`);
  return {
    person,
    noBrowser: boolFlag(parsed, 'no-browser'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Resets (fresh login and your own passkey). */
export async function run(options: PasskeyResetOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const result = await withLogin(
    deps,
    target,
    { json: options.json, noBrowser: options.noBrowser },
    (token) => target.client.resetPasskeys(token, options.person),
  );
  if (options.json) deps.io.out(JSON.stringify({ event: 'passkeys_reset', ...result }));
  else
    deps.io.err(
      `Removed ${result.removed} passkey(s) of ${escapeUntrusted(result.user.email ?? result.user.sub)}; they enrol again with imp passkey add.`,
    );
  return 0;
}
