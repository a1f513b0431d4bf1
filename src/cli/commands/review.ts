/** `imp review`: the access review for auditors (role audit or review), as text, Markdown or JSON. */
import { parseDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { formatReview, type ReviewFormat } from '../review-format.js';

const FORMATS = ['text', 'markdown', 'json'] as const;

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'review',
  group: 'audit',
  summary: 'Access review: sessions, break-glass awaiting review, denials, unused roles',
  usage: 'imp review [--since <duration|date>] [--unused-days <n>] [--format text|markdown|json] [--json]',
  flags: [
    {
      name: 'since',
      value: '<when>',
      description: 'Start of the period: a duration back from now (30d) or a UTC date (default 30d)',
    },
    {
      name: 'unused-days',
      value: '<n>',
      description: 'Flag machine identities with no session in this many days (default 30)',
    },
    { name: 'format', value: '<format>', description: 'text (default), markdown or json', choices: FORMATS },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: ['imp review', 'imp review --since 31d --format markdown > access-review-2026-11.md'],
};

/** Typed options. */
export interface ReviewOptions {
  since: string;
  unusedDays: number | undefined;
  format: ReviewFormat;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): ReviewOptions {
  const since = stringFlag(parsed, 'since') ?? '30d';
  if (!/^\d{4}-\d{2}-\d{2}/.test(since)) parseDuration(since, '--since');
  const json = boolFlag(parsed, 'json');
  const format = (stringFlag(parsed, 'format') ?? (json ? 'json' : 'text')) as ReviewFormat;
  if (json && format !== 'json') throw new UsageError('--json and --format disagree; give one of them.');
  const unusedText = stringFlag(parsed, 'unused-days');
  if (unusedText !== undefined && (!/^\d{1,3}$/.test(unusedText) || Number(unusedText) < 1))
    throw new UsageError(
      `--unused-days must be a whole number of days (1-400), not "${unusedText.slice(0, 20)}".`,
    );
  return {
    since,
    unusedDays: unusedText === undefined ? undefined : Number(unusedText),
    format,
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json,
  };
}

/** Fetches (the broker audits the read) and prints the report on stdout. */
export async function run(options: ReviewOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const report = await withLogin(
    deps,
    target,
    { json: options.json, noBrowser: options.noBrowser },
    (token) => target.client.review(token, options.since, options.unusedDays),
  );
  deps.io.out(formatReview(report, options.format));
  return 0;
}
