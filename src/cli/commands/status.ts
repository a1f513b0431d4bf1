/** `imp status`: my active and pending sessions, with time left. */

import { escapeUntrusted } from '../../core/escape.js';
import { shortId } from '../../core/short-id.js';
import { formatTimeLeft } from '../../core/time-left.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, requireStoredLogin } from '../login-flow.js';
import { sessionLabel } from '../subshell.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'status',
  group: 'session',
  summary: 'Show your active and pending sessions',
  usage: 'imp status [--watch] [--json]',
  flags: [
    { name: 'watch', description: 'Refresh every 2 seconds until Ctrl-C' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp status', 'imp status --json | jq ".[0].expires_at"'],
};

/** Typed options. */
export interface StatusOptions {
  watch: boolean;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): StatusOptions {
  return {
    watch: boolFlag(parsed, 'watch'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Prints sessions (plain lines when piped). */
export async function run(
  options: StatusOptions,
  deps: Pick<Deps, 'io' | 'env' | 'paths' | 'fetch' | 'credentials' | 'clock' | 'interrupt'>,
): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const stored = await requireStoredLogin(deps, target);
  do {
    const sessions = await target.client.listSessions(stored.token, ['active', 'pending']);
    if (options.json) deps.io.out(JSON.stringify(sessions));
    else if (sessions.length === 0) deps.io.out('No active sessions.');
    else
      for (const s of sessions) {
        const left = s.expires_at ? formatTimeLeft(Date.parse(s.expires_at), deps.clock.now()) : '-';
        deps.io.out(
          `${shortId(s.id)}  ${s.state.padEnd(7)}  ${sessionLabel(s)}  ${escapeUntrusted(s.ticket)}  ${s.state === 'active' ? `${left} left` : 'awaiting approval'}`,
        );
      }
    if (!options.watch) break;
    await deps.clock.sleep(2000, deps.interrupt).catch(() => {});
  } while (!deps.interrupt.aborted);
  return 0;
}
