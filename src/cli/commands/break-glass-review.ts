/** `imp break-glass review ID`: a third person records whether a break-glass session was justified. */

import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { consoleLink } from '../../core/links.js';
import { shortId } from '../../core/short-id.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

const OUTCOMES = ['justified', 'unjustified'] as const;

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'break-glass review',
  group: 'break-glass',
  summary: 'Record the review of an ended break-glass session (neither requester nor confirmer)',
  usage: 'imp break-glass review <id> --outcome justified|unjustified --notes <text> [--json]',
  args: [{ name: 'id', required: true, description: 'The break-glass session (see imp review)' }],
  flags: [
    { name: 'outcome', value: '<outcome>', description: 'justified or unjustified', choices: OUTCOMES },
    { name: 'notes', value: '<text>', description: 'What you checked and concluded' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: [
    'imp break-glass review 3f2c… --outcome justified --notes "INC-123 timeline matches the calls made"',
  ],
};

/** Typed options. */
export interface BreakGlassReviewOptions {
  id: string;
  outcome: (typeof OUTCOMES)[number] | undefined;
  notes: string | undefined;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): BreakGlassReviewOptions {
  const id = parsed.args[0];
  if (!id) throw new UsageError(`Which session? Usage: ${spec.usage}`);
  return {
    id,
    outcome: stringFlag(parsed, 'outcome') as BreakGlassReviewOptions['outcome'],
    notes: stringFlag(parsed, 'notes'),
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Asks what is missing (on a terminal), then records the review. */
export async function run(options: BreakGlassReviewOptions, deps: Deps): Promise<number> {
  const { io } = deps;
  if ((!options.outcome || !options.notes) && !io.canPrompt())
    throw new UsageError(`Give --outcome and --notes (imp does not prompt here).\nUsage: ${spec.usage}`);
  const prompter = options.outcome && options.notes ? null : await deps.prompter();
  const outcome =
    options.outcome ??
    (await prompter!.select({
      message: 'Was the break-glass session justified?',
      choices: OUTCOMES.map((value) => ({ value, name: value })),
    }));
  const notes =
    options.notes ??
    (await prompter!.input({
      message: 'Notes (what you checked and concluded)',
      validate: (value) => (value.trim() ? true : 'Say what you checked.'),
    }));
  const target = await brokerTarget(deps, options.broker);
  const session = await withLogin(
    deps,
    target,
    { json: options.json, noBrowser: options.noBrowser },
    (token) => target.client.reviewBreakGlass(token, options.id, { outcome, notes: notes.trim() }),
  );
  const link = consoleLink(target.url, 'session', session.id);
  if (options.json) io.out(JSON.stringify({ event: 'reviewed', session, console_url: link }));
  else
    io.err(
      `Recorded: break-glass session ${shortId(session.id)} (${escapeUntrusted(session.requester.email ?? session.requester.sub)} on ${escapeUntrusted(session.tenant)}) reviewed as ${outcome}.\n  ${link}`,
    );
  return 0;
}
