/** `imp broker rotate-keys`: start a new signing key; the old one keeps verifying while its tokens live. */

import { rotateKeys } from '../broker/start.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../cli/command.js';
import type { Deps } from '../cli/deps.js';
import { parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';

const KINDS = ['session', 'audit', 'login'] as const;

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'broker rotate-keys',
  group: 'admin',
  summary:
    'Start a new broker signing key (session, audit or login); running brokers pick it up within a minute',
  usage:
    'imp broker rotate-keys --kind session|audit|login [--overlap <duration>] [--state-dir <dir> | --store <postgres-url>] [--json]',
  flags: [
    {
      name: 'kind',
      value: '<kind>',
      description: 'Which key: session (tenant tokens), audit (checkpoints), login (broker tokens)',
      choices: KINDS,
    },
    {
      name: 'overlap',
      value: '<duration>',
      description:
        'How long the old key keeps verifying (default 24h: the longest token lifetime); audit keys are never retired',
    },
    {
      name: 'state-dir',
      value: '<dir>',
      description: 'The broker state dir holding keys.json (default ./imp-state)',
      complete: 'files',
    },
    {
      name: 'store',
      value: '<url>',
      description: 'The PostgreSQL store of broker replicas (also IMP_STORE)',
    },
  ],
  examples: [
    'imp broker rotate-keys --kind session --state-dir /var/lib/imp',
    'imp broker rotate-keys --kind login --store postgres://imp_broker@db.internal/imp --overlap 8h',
  ],
};

/** Typed options. */
export interface RotateKeysOptions {
  kind: (typeof KINDS)[number];
  overlapSeconds: number;
  stateDir: string;
  store: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): RotateKeysOptions {
  const kind = stringFlag(parsed, 'kind');
  if (!kind) throw new UsageError(`Which key? Usage: ${spec.usage}`);
  const overlap = stringFlag(parsed, 'overlap');
  return {
    kind: kind as RotateKeysOptions['kind'],
    overlapSeconds: overlap === undefined ? 24 * 3600 : parseDuration(overlap, '--overlap'),
    stateDir: stringFlag(parsed, 'state-dir') ?? 'imp-state',
    store: stringFlag(parsed, 'store'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Rotates and says what changed. */
export async function run(
  options: RotateKeysOptions,
  deps: Pick<Deps, 'io' | 'env' | 'clock'>,
): Promise<number> {
  const storeUrl = options.store ?? (deps.env.IMP_STORE || undefined);
  const rotation = await rotateKeys({
    kind: options.kind,
    overlapSeconds: options.overlapSeconds,
    stateDir: options.stateDir,
    ...(storeUrl ? { storeUrl, env: deps.env } : {}),
    clock: deps.clock,
    operator: `local:${deps.env.USER ?? deps.env.LOGNAME ?? 'unknown'}`,
  });
  if (options.json) {
    deps.io.out(JSON.stringify(rotation));
    return 0;
  }
  deps.io.out(`New ${rotation.kind} key: ${rotation.kid}`);
  for (const old of rotation.retiring)
    deps.io.out(
      `  ${old.kid} keeps verifying ${old.retireAfter ? `until ${old.retireAfter}` : 'forever (audit checkpoints must stay verifiable)'}`,
    );
  deps.io.err('Running brokers start signing with the new key within a minute.');
  return 0;
}
