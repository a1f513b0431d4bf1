/** `imp audit list`: read the audit log (roles with audit). */

import type { AuditEvent } from '../../core/audit/event.js';
import { parseDuration } from '../../core/duration.js';
import { auditTable } from '../audit-view.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'audit list',
  group: 'audit',
  summary: 'List audit events (newest last)',
  usage:
    'imp audit list [--tenant <id>] [--actor <who>] [--type <type>] [--since <duration>] [--session <id>] [--limit <n>] [--json]',
  flags: [
    { name: 'tenant', value: '<id>', description: 'Only this tenant', complete: 'tenants' },
    { name: 'actor', value: '<who>', description: 'Only this person (login, email or subject)' },
    { name: 'type', value: '<type>', description: 'Only this event type, e.g. session.started' },
    { name: 'since', value: '<duration>', description: 'Only the last …, e.g. 24h, 7d' },
    { name: 'session', value: '<id>', description: 'Only this session' },
    { name: 'limit', value: '<n>', description: 'At most n events (default 200)' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp audit list --since 24h', 'imp audit list --tenant acme --type action.denied --json'],
};

/** Typed options. */
export interface AuditListOptions {
  query: Record<string, string | undefined>;
  sinceSeconds: number | undefined;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): AuditListOptions {
  const since = stringFlag(parsed, 'since');
  return {
    query: {
      tenant: stringFlag(parsed, 'tenant'),
      actor: stringFlag(parsed, 'actor'),
      type: stringFlag(parsed, 'type'),
      session: stringFlag(parsed, 'session'),
      limit: stringFlag(parsed, 'limit'),
    },
    sinceSeconds: since === undefined ? undefined : parseDuration(since, '--since'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Prints a table, or JSON lines with --json. */
export async function run(options: AuditListOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const since =
    options.sinceSeconds === undefined
      ? undefined
      : new Date(deps.clock.now() - options.sinceSeconds * 1000).toISOString();
  const events = await withLogin(
    deps,
    target,
    { json: options.json, noBrowser: true },
    async (token) =>
      (
        await target.client.request<{ events: AuditEvent[] }>('GET', '/v1/audit/events', {
          token,
          query: { ...options.query, since },
        })
      ).body.events,
  );
  if (options.json) for (const event of events) deps.io.out(JSON.stringify(event));
  else for (const line of auditTable(events)) deps.io.out(line);
  return 0;
}
