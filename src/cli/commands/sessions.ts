/**
 * `imp sessions`: everyone's live sessions, for security staff (roles with revoke, audit, review or
 * supervise). Each read is audited on the broker. Plain lines on stdout, one per session, so
 * `imp sessions --tenant acme | cut -d' ' -f1` feeds `imp revoke`.
 */

import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { shortId } from '../../core/short-id.js';
import { formatTimeLeft } from '../../core/time-left.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { sessionLabel } from '../subshell.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'sessions',
  group: 'admin',
  summary: "List everyone's live sessions (security roles)",
  usage:
    'imp sessions [--tenant <id>] [--env <env>] [--user <email>] [--mode standard|break-glass] [--state active|pending] [--json]',
  flags: [
    { name: 'tenant', value: '<id>', description: 'Only this tenant', complete: 'tenants' },
    { name: 'env', value: '<env>', description: 'Only this environment', complete: 'environments' },
    { name: 'user', value: '<email>', description: 'Only this person (email or subject)' },
    {
      name: 'mode',
      value: '<mode>',
      description: 'Only standard or break-glass sessions',
      choices: ['standard', 'break-glass'],
    },
    {
      name: 'state',
      value: '<state>',
      description: 'Only active sessions or pending requests',
      choices: ['active', 'pending'],
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: [
    'imp sessions',
    'imp sessions --tenant acme --mode break-glass',
    'imp sessions --user alice@example.test --json | jq -r ".[].id"',
  ],
};

/** Typed options. */
export interface SessionsOptions {
  filters: Record<string, string>;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): SessionsOptions {
  const filters: Record<string, string> = {};
  const put = (key: string, value: string | undefined) => {
    if (value === undefined) return;
    if (value.trim() === '') throw new UsageError(`--${key === 'environment' ? 'env' : key} needs a value.`);
    filters[key] = value;
  };
  put('tenant', stringFlag(parsed, 'tenant'));
  put('environment', stringFlag(parsed, 'env'));
  put('user', stringFlag(parsed, 'user'));
  const mode = stringFlag(parsed, 'mode');
  put('mode', mode === 'break-glass' ? 'break_glass' : mode);
  put('state', stringFlag(parsed, 'state'));
  return { filters, broker: stringFlag(parsed, 'broker'), json: boolFlag(parsed, 'json') };
}

/** Lists. */
export async function run(options: SessionsOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const sessions = await withLogin(deps, target, { json: options.json, noBrowser: true }, (token) =>
    target.client.liveSessions(token, options.filters),
  );
  if (options.json) {
    deps.io.out(JSON.stringify(sessions));
    return 0;
  }
  if (sessions.length === 0) {
    deps.io.err('No live sessions match.');
    return 0;
  }
  const now = deps.clock.now();
  for (const s of sessions) {
    const who = escapeUntrusted(s.requester.email ?? s.requester.sub);
    const when =
      s.state === 'active'
        ? `${formatTimeLeft(Date.parse(s.expires_at ?? ''), now)} left`
        : 'awaiting approval';
    deps.io.out(
      `${shortId(s.id)}  ${s.state.padEnd(7)}  ${who}  ${escapeUntrusted(sessionLabel(s))}  ${escapeUntrusted(s.ticket)}  ${when}  "${escapeUntrusted(s.reason)}"`,
    );
  }
  return 0;
}
