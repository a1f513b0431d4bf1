/**
 * `imp audit verify`: checks every link of the chain and every checkpoint signature, online (an
 * export fetched from the broker) or offline (an export file plus the broker's JWKS); then the
 * RFC 9162 tree against the checkpoints your witnesses cosigned and their latest heads (the proof
 * that holds against whoever runs the broker). Exit 0 when whole; exit 1 naming the first broken
 * seq or the missing/differing range. `--receipt` checks one receipt offline instead.
 */
import { open, readFile } from 'node:fs/promises';
import type { JSONWebKeySet } from 'jose';
import type { AuditEvent } from '../../core/audit/event.js';
import type { ParsedExport } from '../../core/audit/export-format.js';
import { eventLeafHash } from '../../core/audit/log-tree.js';
import { type TreeVerification, treeFailure } from '../../core/audit/verify-tree.js';
import { ImpError, UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import type { ExportSource, TreeLeaves } from '../audit-verify-scan.js';
import { fetchWitnessHeads, type WitnessTrust, witnessTrust } from '../audit-witnesses.js';
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
  usage:
    'imp audit verify [--file <export.jsonl>] [--jwks <file|url>] [--witness <url>]… [--witness-key <vkey>]… [--quorum <n>] [--receipt <file>] [--json]',
  flags: [
    { name: 'file', value: '<export>', description: 'Verify this export file offline', complete: 'files' },
    {
      name: 'jwks',
      value: '<file|url>',
      description: "The broker's public keys (default: fetched from the broker)",
      complete: 'files',
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    {
      name: 'witness',
      value: '<url>',
      description:
        'A witness to ask for its latest cosigned checkpoint (repeatable; default: config audit_witnesses)',
      repeatable: true,
    },
    {
      name: 'witness-key',
      value: '<vkey>',
      description: 'A witness key you trust (repeatable; never taken from the broker)',
      repeatable: true,
    },
    {
      name: 'quorum',
      value: '<n>',
      description: 'How many of those witnesses must have cosigned (default: all)',
    },
    {
      name: 'receipt',
      value: '<file>',
      description: 'Verify a receipt (imp audit receipt) offline',
      complete: 'files',
    },
  ],
  examples: [
    'imp audit verify --witness https://w1.example --witness-key "w1.example+1a2b3c4d+BA…"',
    'imp audit verify --file audit.jsonl --witness-key "w1.example+1a2b3c4d+BA…"',
    'imp audit verify --receipt event-42.json --witness-key "w1.example+1a2b3c4d+BA…"',
  ],
};

/** Typed options. */
export interface AuditVerifyOptions {
  file: string | undefined;
  jwks: string | undefined;
  broker: string | undefined;
  witnesses: string[];
  witnessKeys: string[];
  quorum: number | undefined;
  receipt: string | undefined;
  partial: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): AuditVerifyOptions {
  return {
    file: stringFlag(parsed, 'file'),
    jwks: stringFlag(parsed, 'jwks'),
    broker: stringFlag(parsed, 'broker'),
    witnesses: (parsed.flags.witness as string[] | undefined) ?? [],
    witnessKeys: (parsed.flags['witness-key'] as string[] | undefined) ?? [],
    quorum: quorumFlag(stringFlag(parsed, 'quorum')),
    receipt: stringFlag(parsed, 'receipt'),
    partial: boolFlag(parsed, 'partial'),
    json: boolFlag(parsed, 'json'),
  };
}

function quorumFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]?$/.test(text))
    throw new UsageError(`--quorum must be a number of witnesses, not "${text}".`);
  return Number(text);
}

/** Verifies and reports. */
export async function run(options: AuditVerifyOptions, deps: Deps): Promise<number> {
  const trust = await witnessTrust(deps, {
    urls: options.witnesses,
    keys: options.witnessKeys,
    quorum: options.quorum,
  });
  if (options.receipt) return verifyReceiptFile(options, deps, trust);
  let source: ExportSource;
  let online: { target: Awaited<ReturnType<typeof brokerTarget>>; token: string } | null = null;
  const { checkExportChain } = await import('../audit-verify-scan.js');
  if (options.file) {
    const file = options.file;
    // Opened and read from once here, so a missing file or a directory is a usage error as before.
    await open(file, 'r')
      .then((handle) => handle.read(Buffer.alloc(1), 0, 1, 0).finally(() => handle.close()))
      .catch((error: Error) => Promise.reject(new UsageError(`Cannot read ${file}: ${error.message}`)));
    // Read in ranges, one per thread: a million events are more text than a JavaScript string holds.
    source = { file };
  } else {
    const target = await brokerTarget(deps, options.broker);
    source = { bytes: Buffer.from(await fetchExport(deps, target, {})) };
    online = { target, token: (await requireStoredLogin(deps, target)).token };
  }
  const { checkpointVerifier } = await import('../../auth/checkpoints.js');
  const verifierFor = async (parsed: ParsedExport) => {
    if (options.file && !options.jwks && parsed.checkpoints.length > 0)
      throw new UsageError(
        'Offline verification needs the broker public keys: --jwks <file|url> (GET /.well-known/jwks.json).',
      );
    const where = options.jwks ?? (online ? `${online.target.url}/.well-known/jwks.json` : null);
    return checkpointVerifier(where ? await loadJwks(deps, where) : { keys: [] });
  };
  // A version-1 export tied to the witnesses' tree is compared event by event: it needs them all.
  const checked = await checkExportChain(
    source,
    deps.env,
    verifierFor,
    (header) => header?.version !== 2 && trust.keys.length > 0,
  );
  const { parsed, result } = checked;
  const header = parsed.header;
  // Online, the recordings the log pins are checked too (offline there are no chunks to compare).
  const recordings =
    result.ok && online ? await verifyRecordings(online.target.client, online.token, checked.recorded) : null;
  // The tree is checked even when the chain is broken: it names the range witnesses disagree with.
  const tree =
    result.ok || header?.version === 2
      ? await checkTree(deps, parsed, trust, options.partial, options.broker, checked.tree)
      : null;
  if (options.json)
    deps.io.out(
      JSON.stringify({
        ...result,
        ok: result.ok && (tree?.ok ?? true),
        tree,
        ...(recordings ? { recordings } : {}),
        slices: checked.slices,
      }),
    );
  if (recordings && recordings.problems.length > 0) {
    for (const problem of recordings.problems)
      deps.io.err(`Recording BROKEN (${problem.kind}): ${escapeUntrusted(problem.message)}`);
    return EXIT.error;
  }
  if (tree && !tree.ok) {
    const p = tree.problem!;
    deps.io.err(`Audit log BROKEN: events ${p.first}–${p.last} (${p.kind}): ${escapeUntrusted(p.message)}`);
  }
  if (!result.ok) {
    const problem = result.problem!;
    deps.io.err(
      `Audit log BROKEN at seq ${problem.seq} (${problem.kind}): ${escapeUntrusted(problem.message)}`,
    );
    return EXIT.error;
  }
  if (tree && !tree.ok) return EXIT.error;
  if (!options.json) {
    deps.io.out(
      `Audit log verified: ${result.events} events (seq ${header?.from_seq ?? 1}–${result.lastSeq}), ${result.checkpoints} signed checkpoints; head ${result.lastHash.slice(0, 16)}…`,
    );
    if (recordings && recordings.sessions > 0)
      deps.io.out(
        `Recordings verified: ${recordings.chunks} chunks of ${recordings.sessions} sessions match their logged SHA-256.`,
      );
    if (tree?.witnessed && header?.version !== 2)
      deps.io.out(
        `Version 1 export (made before the tree): its ${result.events} events are the same leaves as in the broker's current log.`,
      );
    if (tree?.witnessed)
      deps.io.out(
        `Witnessed: tree of ${tree.size} cosigned by a quorum of your witnesses (${tree.cosigned} cosigned checkpoints).`,
      );
    else
      deps.io.err(
        'Warning: not witnessed — without witness keys (--witness-key) this proves nothing against whoever runs the broker.',
      );
  }
  return EXIT.ok;
}

/** The tree part: the export's version-2 fields against the witnesses the verifier trusts. */
async function checkTree(
  deps: Deps,
  parsed: ParsedExport,
  trust: WitnessTrust,
  partial: boolean,
  broker: string | undefined,
  events: TreeLeaves = leavesOf(parsed),
): Promise<TreeVerification | null> {
  const header = parsed.header;
  if (header?.version !== 2) {
    if (trust.keys.length === 0) return null;
    // Made before the tree: tied to your witnesses through the broker's current export.
    const { checkLegacyExport } = await import('../audit-verify-v1.js');
    return checkLegacyExport(deps, parsed, broker, (current) =>
      checkTree(deps, current, trust, false, broker),
    );
  }
  const { verifyTree } = await import('../../core/audit/verify-tree.js');
  const { ed25519Verifier, decodeBase64 } = await import('../../core/audit/signed-note.js');
  const origin = String(header.origin ?? '');
  let logKey = null;
  try {
    logKey = ed25519Verifier(String(header.log_key ?? ''));
  } catch {
    return treeFailure('bad_checkpoint', 'the export header has no valid log_key');
  }
  const hashes = (list: unknown) =>
    (Array.isArray(list) ? list : []).map((h) => decodeBase64(String(h)) ?? Buffer.alloc(0));
  const last = events.lastSeq;
  if (last !== header.to_seq)
    return treeFailure(
      'truncated',
      `the export header says it ends at ${header.to_seq} but its last event is ${last}`,
      last + 1,
      header.to_seq,
    );
  return verifyTree({
    window: {
      first: header.from_seq,
      leaves: events.leaves,
      size: Number(header.tree_size ?? last),
      left: hashes(header.left),
      right: hashes(header.right),
      ...(events.blocks ? { blocks: events.blocks } : {}),
    },
    origin,
    notes: parsed.notes,
    logKey,
    witnessKeys: trust.keys,
    quorum: trust.quorum,
    witnessHeads: await fetchWitnessHeads(deps, trust, origin),
    partial,
  });
}

/** The tree inputs of a parsed export's events (the version-1 path and the broker's current export). */
function leavesOf(parsed: ParsedExport): TreeLeaves {
  const events = parsed.events as AuditEvent[];
  return { lastSeq: events.at(-1)?.seq ?? 0, leaves: events.map(eventLeafHash) };
}

async function verifyReceiptFile(
  options: AuditVerifyOptions,
  deps: Deps,
  trust: WitnessTrust,
): Promise<number> {
  const text = await readFile(options.receipt!, 'utf8').catch((error: Error) =>
    Promise.reject(new UsageError(`Cannot read ${options.receipt}: ${error.message}`)),
  );
  const { verifyReceipt } = await import('../../core/audit/receipt.js');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ImpError('IMP_AUDIT_BROKEN', `${options.receipt} is not JSON.`);
  }
  const result = verifyReceipt((value as { receipt?: unknown }).receipt ?? value, {
    witnessKeys: trust.keys,
    quorum: trust.quorum,
  });
  if (options.json) deps.io.out(JSON.stringify(result));
  if (!result.ok) {
    deps.io.err(`Receipt BROKEN: ${escapeUntrusted(result.problem)}`);
    return EXIT.error;
  }
  if (!options.json)
    deps.io.out(
      `Receipt verified: event ${result.event.seq} (${escapeUntrusted(result.event.type)}, ${result.event.ts}) is in the log of ${result.treeSize} events cosigned by ${result.cosigners.map(escapeUntrusted).join(', ')}.`,
    );
  return EXIT.ok;
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
