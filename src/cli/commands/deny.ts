/** `imp deny [ID] --reason TEXT`: refuse a pending request; the requester sees the reason (a picker and a prompt on a terminal). */
import { UsageError } from '../../core/errors.js';
import { shortId } from '../../core/short-id.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { assertIdOrTerminal, idOrPick } from '../pick.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'deny',
  group: 'approvals',
  summary: 'Deny a pending session request',
  usage: 'imp deny [<id>] --reason <text> [--json]',
  args: [
    {
      name: 'id',
      required: false,
      description: 'Request id or its first characters (see imp requests); omitted on a terminal: pick one',
      complete: 'requests',
    },
  ],
  flags: [
    { name: 'reason', value: '<text>', description: 'Why (shown to the requester)' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: ['imp deny 7f3a --reason "Use a read-only session for this"', 'imp deny'],
};

/** Typed options. */
export interface DenyOptions {
  /** Absent: pick one on a terminal. */
  id: string | undefined;
  /** Absent: asked for on a terminal. */
  reason: string | undefined;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): DenyOptions {
  return {
    id: parsed.args[0],
    reason: stringFlag(parsed, 'reason'),
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Denies. */
export async function run(options: DenyOptions, deps: Deps): Promise<number> {
  if (!options.reason && (options.json || !deps.io.canPrompt()))
    throw new UsageError(`Say why with --reason. Usage: ${spec.usage}`);
  assertIdOrTerminal(deps, options.id, { noun: 'request', usage: spec.usage, json: options.json });
  const target = await brokerTarget(deps, options.broker);
  const ux = { json: options.json, noBrowser: options.noBrowser };
  const id = await idOrPick(deps, options.id, {
    noun: 'request',
    usage: spec.usage,
    none: 'No pending requests you can deny.',
    json: options.json,
    list: () => withLogin(deps, target, ux, (token) => target.client.listRequests(token)),
  });
  const reason =
    options.reason ??
    (await (
      await deps.prompter()
    ).input({
      message: 'Why do you deny it? (the requester sees this)',
      validate: (value) => (value.trim() ? true : 'Say why.'),
    }));
  const session = await withLogin(deps, target, ux, (token) => target.client.deny(token, id, reason));
  if (options.json) deps.io.out(JSON.stringify({ event: 'denied', session }));
  else deps.io.err(`Denied request ${shortId(session.id)}.`);
  return 0;
}
