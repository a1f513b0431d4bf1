/**
 * `imp break-glass confirm ID`: the second person. Shows who asked, where and why, asks them to type
 * the request id, then confirms with a fresh login. The broker refuses the requester themself,
 * anyone without break_glass_confirm, and anything after the window (exit 4).
 */
import type { BreakGlassRequestView } from '../../core/api.js';
import { formatDuration } from '../../core/duration.js';
import { InvalidInputError, UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'break-glass confirm',
  group: 'break-glass',
  summary: 'Confirm someone else’s break-glass request (needs a fresh login)',
  usage: 'imp break-glass confirm <id> [--confirm <id>] [--json] [--no-input]',
  args: [{ name: 'id', required: true, description: 'The request id the requester sent you' }],
  flags: [
    {
      name: 'confirm',
      value: '<id>',
      description: 'The typed confirmation: the request id again (for --no-input)',
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: ['imp break-glass confirm 3f2c…', 'imp break-glass confirm 3f2c… --confirm 3f2c… --no-input'],
};

/** Typed options. */
export interface BreakGlassConfirmOptions {
  id: string;
  confirm: string | undefined;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): BreakGlassConfirmOptions {
  const id = parsed.args[0];
  if (!id) throw new UsageError(`Which request? Usage: ${spec.usage}`);
  return {
    id,
    confirm: stringFlag(parsed, 'confirm'),
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Shows the request, takes the typed id, confirms (a step-up challenge runs the device flow and retries once). */
export async function run(options: BreakGlassConfirmOptions, deps: Deps): Promise<number> {
  const { io } = deps;
  const target = await brokerTarget(deps, options.broker);
  const ux = { json: options.json, noBrowser: options.noBrowser };
  const request = await withLogin(deps, target, ux, (token) =>
    target.client.getBreakGlass(token, options.id),
  );
  if (!options.json) describe(deps, request);
  await typedId(deps, request.id, options.confirm);
  const session = await withLogin(deps, target, ux, (token) =>
    target.client.confirmBreakGlass(token, request.id),
  );
  if (options.json) io.out(JSON.stringify({ event: 'confirmed', session }));
  else
    io.err(
      `Confirmed: ${escapeUntrusted(session.requester.email ?? session.requester.sub)} has break-glass WRITE access to ${escapeUntrusted(session.tenant)}/${escapeUntrusted(session.environment)} until ${session.expires_at}. Security has been alerted; the session will be reviewed.`,
    );
  return 0;
}

function describe(deps: Pick<Deps, 'io'>, request: BreakGlassRequestView): void {
  const { io } = deps;
  io.err(`Break-glass request ${request.id}`);
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
  if (confirm !== undefined) {
    if (confirm.trim() !== id) throw new InvalidInputError(`--confirm must be exactly the request id ${id}.`);
    return;
  }
  if (!deps.io.canPrompt())
    throw new UsageError(`Confirming break-glass needs the request id typed again: pass --confirm ${id}.`);
  const prompter = await deps.prompter();
  await prompter.input({
    message: `Type the request id (${id}) to confirm`,
    validate: (value) => (value.trim() === id ? true : `Type exactly: ${id}`),
  });
}
