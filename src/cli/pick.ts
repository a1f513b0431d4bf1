/**
 * What `imp approve`, `deny`, `revoke` and `break-glass confirm` act on when no id is given: on a
 * terminal, a picker of what the broker says this person may act on; elsewhere (a script, a pipe,
 * --no-input, --json) a usage error, never a prompt.
 */
import type { SessionView } from '../core/api.js';
import { ImpError, UsageError } from '../core/errors.js';
import { escapeUntrusted } from '../core/escape.js';
import { shortId } from '../core/short-id.js';
import type { Deps } from './deps.js';

/** What is being picked. */
export interface PickRequest {
  /** "request", "session", "break-glass request". */
  noun: string;
  /** The command's usage line, for the usage error. */
  usage: string;
  /** Says there is nothing to act on ("No pending requests you can approve."). */
  none: string;
  json: boolean;
  /** The candidates (fetched only once a prompt is possible). */
  list: () => Promise<SessionView[]>;
}

/** Throws the usage error at once when no id is given and no picker may be shown (before any login). */
export function assertIdOrTerminal(
  deps: Pick<Deps, 'io'>,
  id: string | undefined,
  request: Pick<PickRequest, 'noun' | 'usage' | 'json'>,
): void {
  if (id || (!request.json && deps.io.canPrompt())) return;
  throw new UsageError(
    `Which ${request.noun}? Give its id (the first characters are enough), or run this on a terminal to pick one. Usage: ${request.usage}`,
  );
}

/** The id given, or the one picked; throws a usage error where no prompt may be shown. */
export async function idOrPick(
  deps: Pick<Deps, 'io' | 'prompter'>,
  id: string | undefined,
  request: PickRequest,
): Promise<string> {
  assertIdOrTerminal(deps, id, request);
  if (id) return id;
  const candidates = await request.list();
  if (candidates.length === 0) throw new ImpError('IMP_NOT_FOUND', request.none);
  const prompter = await deps.prompter();
  return prompter.select({
    message: `Which ${request.noun}?`,
    choices: candidates.map((s) => ({ value: s.id, name: describe(s) })),
  });
}

/** One line naming a request or session the way people recognise it. */
export function describe(s: SessionView): string {
  const who = escapeUntrusted(s.requester.email ?? s.requester.sub);
  const where = `${escapeUntrusted(s.tenant)}/${escapeUntrusted(s.environment)}`;
  const scope = s.scope === 'write' ? 'WRITE' : 'read';
  const mode = s.mode === 'break_glass' ? ' BREAK-GLASS' : '';
  return `${shortId(s.id)}  ${who} → ${where} ${scope}${mode}, ${escapeUntrusted(s.ticket)}: "${escapeUntrusted(s.reason)}"`;
}
