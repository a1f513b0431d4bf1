/** `imp audit show SEQ|ID`: one audit event in full. */
import type { AuditEvent } from '../../core/audit/event.js';
import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'audit show',
  group: 'audit',
  summary: 'Show one audit event in full',
  usage: 'imp audit show <seq|id> [--json]',
  args: [{ name: 'ref', required: true, description: 'Event seq or id' }],
  flags: [{ name: 'broker', value: '<url>', description: 'Broker URL' }],
  examples: ['imp audit show 42'],
};

/** Typed options. */
export interface AuditShowOptions {
  ref: string;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): AuditShowOptions {
  const ref = parsed.args[0];
  if (!ref) throw new UsageError(`Usage: ${spec.usage}`);
  return { ref, broker: stringFlag(parsed, 'broker'), json: boolFlag(parsed, 'json') };
}

/** Prints the event (every field, escaped). */
export async function run(options: AuditShowOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const event = await withLogin(
    deps,
    target,
    { json: options.json, noBrowser: true },
    async (token) =>
      (
        await target.client.request<{ event: AuditEvent }>(
          'GET',
          `/v1/audit/events/${encodeURIComponent(options.ref)}`,
          { token },
        )
      ).body.event,
  );
  if (options.json) deps.io.out(JSON.stringify(event));
  else deps.io.out(escapeUntrusted(JSON.stringify(event, null, 2)).replace(/\\n/g, '\n'));
  return 0;
}
