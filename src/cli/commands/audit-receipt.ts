/**
 * `imp audit receipt SEQ|ID`: a self-contained receipt for one event — the event, its inclusion
 * proof and a checkpoint cosigned by the witnesses — for an auditor or the customer whose tenant
 * was accessed. `imp audit verify --receipt FILE` (or the verify library) checks it offline.
 */
import { writeFile } from 'node:fs/promises';
import type { AuditReceipt } from '../../core/audit/receipt.js';
import { UsageError } from '../../core/errors.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'audit receipt',
  group: 'audit',
  summary: 'Write a receipt proving one event is in the witnessed log',
  usage: 'imp audit receipt <seq|id> [-o <file>] [--json]',
  args: [{ name: 'ref', required: true, description: 'Event seq or id' }],
  flags: [
    {
      name: 'output',
      short: 'o',
      value: '<file>',
      description: 'Write the receipt here (default: stdout)',
      complete: 'files',
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp audit receipt 42 -o receipt-42.json'],
};

/** Typed options. */
export interface AuditReceiptOptions {
  ref: string;
  output: string | undefined;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): AuditReceiptOptions {
  const ref = parsed.args[0];
  if (!ref) throw new UsageError(`Usage: ${spec.usage}`);
  return {
    ref,
    output: stringFlag(parsed, 'output'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Fetches the receipt and writes it. */
export async function run(options: AuditReceiptOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const receipt = await withLogin(
    deps,
    target,
    { json: options.json, noBrowser: true },
    async (token) =>
      (
        await target.client.request<{ receipt: AuditReceipt }>(
          'GET',
          `/v1/audit/receipt/${encodeURIComponent(options.ref)}`,
          { token },
        )
      ).body.receipt,
  );
  const text = `${JSON.stringify({ receipt }, null, 2)}\n`;
  if (!options.output) {
    deps.io.out(text.trimEnd());
    return 0;
  }
  await writeFile(options.output, text, { mode: 0o644 });
  if (options.json)
    deps.io.out(
      JSON.stringify({ receipt: options.output, seq: receipt.event.seq, tree_size: receipt.tree_size }),
    );
  else
    deps.io.err(
      `Receipt for event ${receipt.event.seq} written to ${options.output} (tree of ${receipt.tree_size}).`,
    );
  return 0;
}
