/** `imp revoke [ID]`: security ends someone's session at once (a picker of live sessions on a terminal). */
import { escapeUntrusted } from '../../core/escape.js';
import { shortId } from '../../core/short-id.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { assertIdOrTerminal, idOrPick } from '../pick.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'revoke',
  group: 'admin',
  summary: "Revoke someone's session at once (role with revoke)",
  usage: 'imp revoke [<id>] [--reason <text>] [--json]',
  args: [
    {
      name: 'id',
      required: false,
      description: 'Session id or its first characters; omitted on a terminal: pick a live session',
      complete: 'sessions',
    },
  ],
  flags: [
    { name: 'reason', value: '<text>', description: 'Why (recorded in the audit log)' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp revoke 7f3a --reason "Suspicious activity"', 'imp revoke'],
};

/** Typed options. */
export interface RevokeOptions {
  /** Absent: pick one on a terminal. */
  id: string | undefined;
  reason: string | undefined;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): RevokeOptions {
  return {
    id: parsed.args[0],
    reason: stringFlag(parsed, 'reason'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Revokes. */
export async function run(options: RevokeOptions, deps: Deps): Promise<number> {
  assertIdOrTerminal(deps, options.id, { noun: 'session', usage: spec.usage, json: options.json });
  const target = await brokerTarget(deps, options.broker);
  const ux = { json: options.json, noBrowser: true };
  const id = await idOrPick(deps, options.id, {
    noun: 'session',
    usage: spec.usage,
    none: 'No live sessions to revoke.',
    json: options.json,
    list: () => withLogin(deps, target, ux, (token) => target.client.liveSessions(token, {})),
  });
  const session = await withLogin(deps, target, ux, (token) =>
    target.client.revokeSession(token, id, options.reason),
  );
  if (options.json) deps.io.out(JSON.stringify({ event: 'revoked', session }));
  else
    deps.io.err(
      `Revoked session ${shortId(session.id)} of ${escapeUntrusted(session.requester.email ?? session.requester.sub)}.`,
    );
  return 0;
}
