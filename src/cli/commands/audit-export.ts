/** `imp audit export`: JSONL (verifiable offline) or CSV (for spreadsheets). */
import { writeFile } from 'node:fs/promises';
import type { AuditEvent } from '../../core/audit/event.js';
import { parseExport } from '../../core/audit/export-format.js';
import { parseDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'audit export',
  group: 'audit',
  summary: 'Export the audit log (JSONL with checkpoints, or CSV)',
  usage: 'imp audit export [--since <time|duration>] [--until <time>] [--format jsonl|csv] [-o <file>]',
  flags: [
    { name: 'since', value: '<when>', description: 'From this UTC time or this long ago (e.g. 30d)' },
    { name: 'until', value: '<when>', description: 'Up to this UTC time' },
    {
      name: 'format',
      value: '<format>',
      description: 'jsonl (default; verifiable) or csv',
      choices: ['jsonl', 'csv'],
    },
    {
      name: 'output',
      short: 'o',
      value: '<file>',
      description: 'Write to a file (mode 0600) instead of stdout',
      complete: 'files',
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: [
    'imp audit export -o audit.jsonl',
    'imp audit verify --file audit.jsonl --jwks jwks.json',
    'imp audit export --since 30d --format csv -o audit.csv',
  ],
};

/** Typed options. */
export interface AuditExportOptions {
  since: string | undefined;
  until: string | undefined;
  format: 'jsonl' | 'csv';
  output: string | undefined;
  broker: string | undefined;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): AuditExportOptions {
  return {
    since: stringFlag(parsed, 'since'),
    until: stringFlag(parsed, 'until'),
    format: (stringFlag(parsed, 'format') ?? 'jsonl') as 'jsonl' | 'csv',
    output: stringFlag(parsed, 'output'),
    broker: stringFlag(parsed, 'broker'),
  };
}

/** A time flag as an ISO timestamp: either a timestamp, or a duration ago. */
export function timeFlag(value: string | undefined, now: number, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const parsed = Date.parse(value);
    if (Number.isNaN(parsed)) throw new UsageError(`${name} "${value}" is not a time.`);
    return new Date(parsed).toISOString();
  }
  return new Date(now - parseDuration(value, name) * 1000).toISOString();
}

/** Downloads the export text. */
export async function fetchExport(
  deps: Deps,
  target: Awaited<ReturnType<typeof brokerTarget>>,
  query: Record<string, string | undefined>,
): Promise<string> {
  return withLogin(deps, target, { json: false, noBrowser: true }, (token) =>
    target.client.requestText('GET', '/v1/audit/export', { token, query }),
  );
}

const CSV_COLUMNS = [
  'seq',
  'id',
  'ts',
  'type',
  'actor_sub',
  'actor_email',
  'tenant',
  'environment',
  'session',
  'ticket',
  'reason',
  'data',
  'prev',
  'hash',
];

function csvCell(value: unknown): string {
  const text =
    value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  // Leading = + - @ would run as formulas in spreadsheets: quote them (CSV injection).
  const defused = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(defused) ? `"${defused.replace(/"/g, '""')}"` : defused;
}

/** Writes the export. */
export async function run(options: AuditExportOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const now = deps.clock.now();
  const text = await fetchExport(deps, target, {
    since: timeFlag(options.since, now, '--since'),
    until: timeFlag(options.until, now, '--until'),
  });
  let output = text;
  if (options.format === 'csv') {
    const events = parseExport(text).events as AuditEvent[];
    output =
      [
        CSV_COLUMNS.join(','),
        ...events.map((e) =>
          [
            e.seq,
            e.id,
            e.ts,
            e.type,
            e.actor?.sub,
            e.actor?.email,
            e.tenant,
            e.environment,
            e.session,
            e.ticket,
            e.reason,
            e.data,
            e.prev,
            e.hash,
          ]
            .map(csvCell)
            .join(','),
        ),
      ].join('\n') + '\n';
  }
  if (options.output) {
    await writeFile(options.output, output, { mode: 0o600 });
    deps.io.err(`Wrote ${options.output}.`);
  } else deps.io.stdout.write(output);
  return 0;
}
