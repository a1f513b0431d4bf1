/** `imp end [ID]`: end a session (yours) and print its summary — Markdown to paste into the ticket. */
import { ImpError, UsageError } from '../../core/errors.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, requireStoredLogin } from '../login-flow.js';
import { formatSummary, type SummaryFormat } from '../summary-format.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'end',
  group: 'session',
  summary: 'End a session and print its summary',
  usage: 'imp end [<id>] [--format text|markdown|json] [--post]',
  args: [
    {
      name: 'id',
      required: false,
      description: 'Session id (default: $IMP_SESSION_ID, else your only active session)',
      complete: 'sessions',
    },
  ],
  flags: [
    {
      name: 'format',
      value: '<format>',
      description: 'Summary format: text, markdown or json',
      choices: ['text', 'markdown', 'json'],
    },
    {
      name: 'post',
      description: "Have the broker post the summary on the session's ticket (policy tickets.system)",
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp end', 'imp end --post', 'imp end 3f2c… --format markdown | pbcopy'],
};

/** Typed options. */
export interface EndOptions {
  id: string | undefined;
  format: SummaryFormat;
  /** Ask the broker to post the summary on the ticket. */
  post: boolean;
  broker: string | undefined;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): EndOptions {
  const format = (stringFlag(parsed, 'format') ??
    (boolFlag(parsed, 'json') ? 'json' : 'text')) as SummaryFormat;
  return { id: parsed.args[0], format, post: boolFlag(parsed, 'post'), broker: stringFlag(parsed, 'broker') };
}

/** Ends the session (already-ended is fine: the summary still prints) and prints the summary to stdout. */
export async function run(
  options: EndOptions,
  deps: Pick<Deps, 'io' | 'env' | 'paths' | 'fetch' | 'credentials'>,
): Promise<number> {
  const target = await brokerTarget(deps, options.broker ?? deps.env.IMP_BROKER_URL);
  const stored = await requireStoredLogin(deps, target);
  let id = options.id ?? deps.env.IMP_SESSION_ID;
  if (!id) {
    const active = await target.client.listSessions(stored.token, ['active', 'pending']);
    if (active.length !== 1)
      throw new UsageError(
        active.length === 0
          ? 'You have no active session.'
          : 'You have several sessions: say which (imp status lists them).',
      );
    id = active[0]!.id;
  }
  let posting = false;
  try {
    posting =
      (await target.client.endSessionPosting(stored.token, id, options.post)).ticket_note === 'posting';
  } catch (error) {
    if (
      !(
        error instanceof ImpError &&
        (error.code === 'IMP_SESSION_ENDED' || error.code === 'IMP_SESSION_EXPIRED')
      )
    )
      throw error;
    // The broker posts when a session ends; one that had already ended was posted then, or not at all.
    if (options.post)
      deps.io.err(
        `The session had already ended, so nothing was posted now (with tickets.post_summary the broker posted it when it ended; imp audit list --session ${id} shows ticket.summary_posted).`,
      );
  }
  if (posting)
    deps.io.err(
      'The broker is posting this summary on the ticket; the outcome is recorded in the audit log (ticket.summary_posted or ticket.summary_failed).',
    );
  deps.io.out(formatSummary(await target.client.summary(stored.token, id), options.format));
  return 0;
}
