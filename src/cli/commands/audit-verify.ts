/**
 * `imp audit verify`: checks every link of the chain and every checkpoint signature, online (an
 * export fetched from the broker) or offline (an export file plus the broker's JWKS). Exit 0 when
 * whole; exit 1 naming the first broken seq and what is wrong.
 */
import { readFile } from 'node:fs/promises';
import type { JSONWebKeySet } from 'jose';
import type { AuditEvent } from '../../core/audit/event.js';
import { GENESIS_PREV } from '../../core/audit/event.js';
import { parseExport } from '../../core/audit/export-format.js';
import { ImpError, UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { EXIT } from '../exit-codes.js';
import { brokerTarget, requireStoredLogin } from '../login-flow.js';
import { verifyRecordings } from '../recording-verify.js';
import { fetchExport } from './audit-export.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'audit verify',
  group: 'audit',
  summary: 'Verify the audit chain and its signed checkpoints (online or offline)',
  usage: 'imp audit verify [--file <export.jsonl>] [--jwks <file|url>] [--json]',
  flags: [
    { name: 'file', value: '<export>', description: 'Verify this export file offline', complete: 'files' },
    {
      name: 'jwks',
      value: '<file|url>',
      description: "The broker's public keys (default: fetched from the broker)",
      complete: 'files',
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp audit verify', 'imp audit verify --file audit.jsonl --jwks jwks.json'],
};

/** Typed options. */
export interface AuditVerifyOptions {
  file: string | undefined;
  jwks: string | undefined;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): AuditVerifyOptions {
  return {
    file: stringFlag(parsed, 'file'),
    jwks: stringFlag(parsed, 'jwks'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Verifies and reports. */
export async function run(options: AuditVerifyOptions, deps: Deps): Promise<number> {
  let text: string;
  let jwks: JSONWebKeySet;
  let online: { target: Awaited<ReturnType<typeof brokerTarget>>; token: string } | null = null;
  if (options.file) {
    if (!options.jwks)
      throw new UsageError(
        'Offline verification needs the broker public keys: --jwks <file|url> (GET /.well-known/jwks.json).',
      );
    text = await readFile(options.file, 'utf8').catch((error: Error) =>
      Promise.reject(new UsageError(`Cannot read ${options.file}: ${error.message}`)),
    );
    jwks = await loadJwks(deps, options.jwks);
  } else {
    const target = await brokerTarget(deps, options.broker);
    text = await fetchExport(deps, target, {});
    online = { target, token: (await requireStoredLogin(deps, target)).token };
    jwks = await loadJwks(deps, options.jwks ?? `${target.url}/.well-known/jwks.json`);
  }
  const { verifyChain } = await import('../../core/audit/verify-chain.js');
  const { checkpointVerifier } = await import('../../auth/checkpoints.js');
  const parsed = parseExport(text);
  if (parsed.badLines.length > 0)
    throw new ImpError('IMP_AUDIT_BROKEN', `The export is damaged: line ${parsed.badLines[0]} is not JSON.`);
  const header = parsed.header;
  const result = await verifyChain(
    parsed.events as AuditEvent[],
    parsed.checkpoints,
    checkpointVerifier(jwks),
    {
      fromSeq: header?.from_seq ?? 1,
      fromPrev: header?.prev ?? GENESIS_PREV,
    },
  );
  // Online, the recordings the log pins are checked too (offline there are no chunks to compare).
  const recordings =
    result.ok && online
      ? await verifyRecordings(online.target.client, online.token, parsed.events as AuditEvent[])
      : null;
  if (options.json) deps.io.out(JSON.stringify(recordings ? { ...result, recordings } : result));
  if (recordings && recordings.problems.length > 0) {
    for (const problem of recordings.problems)
      deps.io.err(`Recording BROKEN (${problem.kind}): ${escapeUntrusted(problem.message)}`);
    return EXIT.error;
  }
  if (result.ok) {
    if (!options.json)
      deps.io.out(
        `Audit log verified: ${result.events} events (seq ${header?.from_seq ?? 1}–${result.lastSeq}), ${result.checkpoints} signed checkpoints; head ${result.lastHash.slice(0, 16)}…`,
      );
    if (!options.json && recordings && recordings.sessions > 0)
      deps.io.out(
        `Recordings verified: ${recordings.chunks} chunks of ${recordings.sessions} sessions match their logged SHA-256.`,
      );
    return EXIT.ok;
  }
  const problem = result.problem!;
  deps.io.err(
    `Audit log BROKEN at seq ${problem.seq} (${problem.kind}): ${escapeUntrusted(problem.message)}`,
  );
  return EXIT.error;
}

async function loadJwks(deps: Pick<Deps, 'fetch'>, source: string): Promise<JSONWebKeySet> {
  let text: string;
  if (/^https?:\/\//.test(source)) {
    const response = await deps
      .fetch(source)
      .catch((error: Error) =>
        Promise.reject(
          new ImpError('IMP_UNREACHABLE', `Cannot fetch the JWKS at ${source}: ${error.message}`),
        ),
      );
    if (!response.ok)
      throw new ImpError('IMP_UNREACHABLE', `Cannot fetch the JWKS at ${source}: HTTP ${response.status}`);
    text = await response.text();
  } else {
    text = await readFile(source, 'utf8').catch((error: Error) =>
      Promise.reject(new UsageError(`Cannot read ${source}: ${error.message}`)),
    );
  }
  const jwks = JSON.parse(text) as JSONWebKeySet;
  if (!Array.isArray(jwks.keys)) throw new UsageError(`${source} is not a JWKS ({"keys": [...]}).`);
  return jwks;
}
