/**
 * `imp break-glass confirm ID`: the second person. Shows who asked, where and why, asks them to type
 * the request id, then confirms with a fresh login. The broker refuses the requester themself,
 * anyone without break_glass_confirm, and anything after the window (exit 4).
 */
import type { BreakGlassRequestView } from '../../core/api.js';
import { formatDuration } from '../../core/duration.js';
import { InvalidInputError, UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { consoleLink } from '../../core/links.js';
import { shortId } from '../../core/short-id.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { assertIdOrTerminal, idOrPick } from '../pick.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'break-glass confirm',
  group: 'break-glass',
  summary: 'Confirm someone else’s break-glass request (needs a fresh login)',
  usage: 'imp break-glass confirm [<id>] [--confirm <id>] [--json] [--no-input]',
  args: [
    {
      name: 'id',
      required: false,
      description:
        'The request id the requester sent you, or its first characters; omitted on a terminal: pick one',
    },
  ],
  flags: [
    {
      name: 'confirm',
      value: '<id>',
      description: 'The typed confirmation: the request id again (for --no-input)',
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: [
    'imp break-glass confirm 7f3a1c2d',
    'imp break-glass confirm 7f3a1c2d --confirm 7f3a1c2d --no-input',
    'imp break-glass confirm',
  ],
};

/** Typed options. */
export interface BreakGlassConfirmOptions {
  /** Absent: pick one on a terminal. */
  id: string | undefined;
  confirm: string | undefined;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): BreakGlassConfirmOptions {
  return {
    id: parsed.args[0],
    confirm: stringFlag(parsed, 'confirm'),
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Shows the request, takes the typed id, confirms (a step-up challenge runs the device flow and retries once). */
export async function run(options: BreakGlassConfirmOptions, deps: Deps): Promise<number> {
  const { io } = deps;
  assertIdOrTerminal(deps, options.id, {
    noun: 'break-glass request',
    usage: spec.usage,
    json: options.json,
  });
  const target = await brokerTarget(deps, options.broker);
  const ux = { json: options.json, noBrowser: options.noBrowser };
  const id = await idOrPick(deps, options.id, {
    noun: 'break-glass request',
    usage: spec.usage,
    none: 'No break-glass requests are waiting for you to confirm.',
    json: options.json,
    list: () => withLogin(deps, target, ux, (token) => target.client.listBreakGlassRequests(token)),
  });
  const request = await withLogin(deps, target, ux, (token) => target.client.getBreakGlass(token, id));
  if (!options.json) describe(deps, request);
  await typedId(deps, request.id, options.confirm);
  const session = await withLogin(deps, target, ux, (token) =>
    target.client.confirmBreakGlass(token, request.id),
  );
  const link = consoleLink(target.url, 'session', session.id);
  if (options.json) io.out(JSON.stringify({ event: 'confirmed', session, console_url: link }));
  else
    io.err(
      `Confirmed: ${escapeUntrusted(session.requester.email ?? session.requester.sub)} has break-glass WRITE access to ${escapeUntrusted(session.tenant)}/${escapeUntrusted(session.environment)} until ${session.expires_at}. Security has been alerted; the session will be reviewed.\n  ${link}`,
    );
  return 0;
}

function describe(deps: Pick<Deps, 'io'>, request: BreakGlassRequestView): void {
  const { io } = deps;
  io.err(`Break-glass request ${shortId(request.id)} (${request.id})`);
  io.err(`  requested by  ${escapeUntrusted(request.requester.email ?? request.requester.sub)}`);
  io.err(`  tenant        ${escapeUntrusted(request.tenant)} (${escapeUntrusted(request.environment)})`);
  io.err(`  incident      ${escapeUntrusted(request.ticket)}`);
  io.err(`  reason        ${escapeUntrusted(request.reason)}`);
  io.err(`  access        WRITE for up to ${formatDuration(request.ttl)}`);
  io.err(`  confirm by    ${request.confirm_by}`);
  io.err('Only confirm if you know about this incident and spoke to the requester yourself.');
}

async function typedId(
  deps: Pick<Deps, 'io' | 'prompter'>,
  id: string,
  confirm: string | undefined,
): Promise<void> {
  // The short id or the whole one: typing it proves attention, not memory.
  const short = shortId(id);
  const matches = (value: string) => value.trim() === id || value.trim() === short;
  if (confirm !== undefined) {
    if (!matches(confirm))
      throw new InvalidInputError(`--confirm must be the request id ${short} (or all of ${id}).`);
    return;
  }
  if (!deps.io.canPrompt())
    throw new UsageError(`Confirming break-glass needs the request id typed again: pass --confirm ${short}.`);
  const prompter = await deps.prompter();
  await prompter.input({
    message: `Type the request id (${short}) to confirm`,
    validate: (value) => (matches(value) ? true : `Type exactly: ${short}`),
  });
}
