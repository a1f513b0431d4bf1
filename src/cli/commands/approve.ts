/** `imp approve ID` and `imp deny ID`: the second person's decision on a pending request. */

import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { consoleLink } from '../../core/links.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'approve',
  group: 'approvals',
  summary: 'Approve a pending session request (needs a fresh login; never your own)',
  usage: 'imp approve <id> [--comment <text>] [--json]',
  args: [{ name: 'id', required: true, description: 'Request id (see imp requests)', complete: 'requests' }],
  flags: [
    { name: 'comment', value: '<text>', description: 'Note recorded with the approval' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: ['imp approve 3f2c…', 'imp approve 3f2c… --comment "OK for SUP-123"'],
};

/** Typed options. */
export interface ApproveOptions {
  id: string;
  comment: string | undefined;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): ApproveOptions {
  const id = parsed.args[0];
  if (!id) throw new UsageError(`Which request? Usage: ${spec.usage}`);
  return {
    id,
    comment: stringFlag(parsed, 'comment'),
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Approves; a step-up challenge runs the device flow and retries once. */
export async function run(options: ApproveOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const session = await withLogin(
    deps,
    target,
    { json: options.json, noBrowser: options.noBrowser },
    (token) => target.client.approve(token, options.id, options.comment),
  );
  const link = consoleLink(target.url, 'session', session.id);
  if (options.json) deps.io.out(JSON.stringify({ event: 'approved', session, console_url: link }));
  else {
    deps.io.err(
      `Approved: ${escapeUntrusted(session.requester.email ?? session.requester.sub)} now has ${session.scope} access to ${escapeUntrusted(session.tenant)}/${escapeUntrusted(session.environment)} until ${session.expires_at}.`,
    );
    deps.io.err(`  ${link}`);
  }
  return 0;
}
