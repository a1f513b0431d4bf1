/** `imp requests`: pending requests I may approve. */
import { escapeUntrusted } from '../../core/escape.js';
import { shortId } from '../../core/short-id.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'requests',
  group: 'approvals',
  summary: 'List pending session requests you may approve',
  usage: 'imp requests [--json]',
  flags: [{ name: 'broker', value: '<url>', description: 'Broker URL' }],
  examples: ['imp requests', 'imp requests --json | jq -r ".[].id"'],
};

/** Typed options. */
export interface RequestsOptions {
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): RequestsOptions {
  return { broker: stringFlag(parsed, 'broker'), json: boolFlag(parsed, 'json') };
}

/** Lists. */
export async function run(options: RequestsOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const requests = await withLogin(deps, target, { json: options.json, noBrowser: true }, (token) =>
    target.client.listRequests(token),
  );
  if (options.json) {
    deps.io.out(JSON.stringify(requests));
    return 0;
  }
  if (requests.length === 0) {
    deps.io.err('No pending requests you can approve.');
    return 0;
  }
  for (const r of requests) {
    deps.io.out(
      `${shortId(r.id)}  ${escapeUntrusted(r.requester.email ?? r.requester.sub)}  ${r.scope} ${escapeUntrusted(r.tenant)}/${escapeUntrusted(r.environment)}  ${escapeUntrusted(r.ticket)}  "${escapeUntrusted(r.reason)}"  (expires ${r.request_expires_at})`,
    );
  }
  return 0;
}
