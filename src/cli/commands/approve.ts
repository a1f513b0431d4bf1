/** `imp approve [ID]`: the second person's decision on a pending request (a picker on a terminal without an id). */
import { escapeUntrusted } from '../../core/escape.js';
import { shortId } from '../../core/short-id.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { assertIdOrTerminal, idOrPick } from '../pick.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'approve',
  group: 'approvals',
  summary: 'Approve a pending session request (needs a fresh login; never your own)',
  usage: 'imp approve [<id>] [--comment <text>] [--json]',
  args: [
    {
      name: 'id',
      required: false,
      description: 'Request id or its first characters (see imp requests); omitted on a terminal: pick one',
      complete: 'requests',
    },
  ],
  flags: [
    { name: 'comment', value: '<text>', description: 'Note recorded with the approval' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: ['imp approve 7f3a', 'imp approve 7f3a --comment "OK for SUP-123"', 'imp approve'],
};

/** Typed options. */
export interface ApproveOptions {
  /** Absent: pick one on a terminal. */
  id: string | undefined;
  comment: string | undefined;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): ApproveOptions {
  return {
    id: parsed.args[0],
    comment: stringFlag(parsed, 'comment'),
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Approves; a step-up challenge runs the device flow and retries once. */
export async function run(options: ApproveOptions, deps: Deps): Promise<number> {
  assertIdOrTerminal(deps, options.id, { noun: 'request', usage: spec.usage, json: options.json });
  const target = await brokerTarget(deps, options.broker);
  const ux = { json: options.json, noBrowser: options.noBrowser };
  const id = await idOrPick(deps, options.id, {
    noun: 'request',
    usage: spec.usage,
    none: 'No pending requests you can approve.',
    json: options.json,
    list: () => withLogin(deps, target, ux, (token) => target.client.listRequests(token)),
  });
  const session = await withLogin(deps, target, ux, (token) =>
    target.client.approve(token, id, options.comment),
  );
  if (options.json) deps.io.out(JSON.stringify({ event: 'approved', session }));
  else
    deps.io.err(
      `Approved request ${shortId(session.id)}: ${escapeUntrusted(session.requester.email ?? session.requester.sub)} now has ${session.scope} access to ${escapeUntrusted(session.tenant)}/${escapeUntrusted(session.environment)} until ${session.expires_at}.`,
    );
  return 0;
}
