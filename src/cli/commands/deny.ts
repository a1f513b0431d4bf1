/** `imp deny ID --reason TEXT`: refuse a pending request; the requester sees the reason. */

import { UsageError } from '../../core/errors.js';
import { consoleLink } from '../../core/links.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'deny',
  group: 'approvals',
  summary: 'Deny a pending session request',
  usage: 'imp deny <id> --reason <text> [--json]',
  args: [{ name: 'id', required: true, description: 'Request id (see imp requests)', complete: 'requests' }],
  flags: [
    { name: 'reason', value: '<text>', description: 'Why (shown to the requester)' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: ['imp deny 3f2c… --reason "Use a read-only session for this"'],
};

/** Typed options. */
export interface DenyOptions {
  id: string;
  reason: string;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): DenyOptions {
  const id = parsed.args[0];
  const reason = stringFlag(parsed, 'reason');
  if (!id || !reason) throw new UsageError(`Usage: ${spec.usage}`);
  return {
    id,
    reason,
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Denies. */
export async function run(options: DenyOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const session = await withLogin(
    deps,
    target,
    { json: options.json, noBrowser: options.noBrowser },
    (token) => target.client.deny(token, options.id, options.reason),
  );
  const link = consoleLink(target.url, 'request', session.id);
  if (options.json) deps.io.out(JSON.stringify({ event: 'denied', session, console_url: link }));
  else deps.io.err(`Denied request ${session.id}.\n  ${link}`);
  return 0;
}
