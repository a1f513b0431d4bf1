/** `imp passkey add`: enrol a passkey the broker will ask for (needs a fresh login, and an existing passkey if any). */
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { confirmWithPasskey } from '../passkey-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'passkey add',
  group: 'auth',
  summary: 'Enrol a passkey (security key, platform authenticator or synced passkey)',
  usage: 'imp passkey add [--name <text>] [--no-browser] [--broker <url>] [--json]',
  flags: [
    { name: 'name', value: '<text>', description: 'A name to tell your passkeys apart ("YubiKey 5")' },
    { name: 'no-browser', description: 'Do not open a browser; print the link and code only' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp passkey add --name "YubiKey 5"'],
};

/** Typed options. */
export interface PasskeyAddOptions {
  name: string | undefined;
  noBrowser: boolean;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): PasskeyAddOptions {
  return {
    name: stringFlag(parsed, 'name'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Starts enrolment at the broker, shows its page, waits until the broker has verified and stored it. */
export async function run(options: PasskeyAddOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const ux = { json: options.json, noBrowser: options.noBrowser };
  await withLogin(deps, target, ux, async (token) => {
    const challenge = await target.client.addPasskey(token, options.name);
    await confirmWithPasskey(
      deps,
      target,
      { ...ux, purpose: 'Create your passkey on the broker’s page.' },
      token,
      challenge,
    );
  });
  if (options.json) deps.io.out(JSON.stringify({ event: 'passkey_added' }));
  else deps.io.err('Passkey added. The broker will ask for it where the policy says.');
  return 0;
}
