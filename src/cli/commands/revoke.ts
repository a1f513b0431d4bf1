/** `imp revoke ID`: security ends someone's session at once. */

import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { consoleLink } from '../../core/links.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'revoke',
  group: 'admin',
  summary: "Revoke someone's session at once (role with revoke)",
  usage: 'imp revoke <id> [--reason <text>] [--json]',
  args: [{ name: 'id', required: true, description: 'Session id', complete: 'sessions' }],
  flags: [
    { name: 'reason', value: '<text>', description: 'Why (recorded in the audit log)' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp revoke 3f2c… --reason "Suspicious activity"'],
};

/** Typed options. */
export interface RevokeOptions {
  id: string;
  reason: string | undefined;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): RevokeOptions {
  const id = parsed.args[0];
  if (!id) throw new UsageError(`Which session? Usage: ${spec.usage}`);
  return {
    id,
    reason: stringFlag(parsed, 'reason'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Revokes. */
export async function run(options: RevokeOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const session = await withLogin(deps, target, { json: options.json, noBrowser: true }, (token) =>
    target.client.revokeSession(token, options.id, options.reason),
  );
  const link = consoleLink(target.url, 'session', session.id);
  if (options.json) deps.io.out(JSON.stringify({ event: 'revoked', session, console_url: link }));
  else
    deps.io.err(
      `Revoked session ${session.id} of ${escapeUntrusted(session.requester.email ?? session.requester.sub)}.\n  ${link}`,
    );
  return 0;
}
