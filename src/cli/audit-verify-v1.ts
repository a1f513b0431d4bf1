/**
 * A version-1 export (made before the audit tree) against your witnesses. The file carries no tree,
 * but its events became the first leaves of the tree the broker has kept since (the store integrates
 * an old log on open), so imp fetches the broker's current export — version 2, tied to checkpoints
 * your witnesses cosigned — checks that against the witnesses, and requires every event of the old
 * file to be the very same leaf. A DBA who rewrote the log since cannot pass both checks: either the
 * current log is not what the witnesses cosigned, or it differs from the old file, and the range is
 * named. Offline there is nothing to tie the file to, so with witness keys it fails and says why
 * (without witness keys it verifies as before, unwitnessed). A version-1 file is never a way around
 * the witnesses: that would let anyone strip a new export's tree and present it as an old one.
 */
import type { AuditEvent } from '../core/audit/event.js';
import { type ParsedExport, parseExport } from '../core/audit/export-format.js';
import { type TreeVerification, treeFailure } from '../core/audit/verify-tree.js';
import { fetchExport } from './commands/audit-export.js';
import type { Deps } from './deps.js';
import { brokerTarget, requireStoredLogin } from './login-flow.js';

/** Checks a version-1 export's events against the broker's current, witnessed tree. */
export async function checkLegacyExport(
  deps: Deps,
  legacy: ParsedExport,
  brokerFlag: string | undefined,
  checkCurrent: (current: ParsedExport) => Promise<TreeVerification | null>,
): Promise<TreeVerification> {
  let current: ParsedExport;
  try {
    const target = await brokerTarget(deps, brokerFlag);
    await requireStoredLogin(deps, target);
    current = parseExport(await fetchExport(deps, target, {}));
  } catch (error) {
    return treeFailure(
      'unwitnessed',
      `this export predates the audit tree (version 1); imp ties it to your witnesses through the broker's current export, which it could not fetch: ${(error as Error).message} Without --witness-key it verifies as before, unwitnessed.`,
    );
  }
  if (current.header?.version !== 2)
    return treeFailure(
      'unwitnessed',
      "the broker's own export is version 1: it keeps no tree witnesses cosign",
    );
  const tree = await checkCurrent(current);
  if (!tree)
    return treeFailure('unwitnessed', "the broker's export could not be checked against your witnesses");
  if (!tree.ok) return tree;
  const { eventLeafHash } = await import('../core/audit/log-tree.js');
  const leaf = (event: AuditEvent) => Buffer.from(eventLeafHash(event)).toString('hex');
  const now = new Map((current.events as AuditEvent[]).map((event) => [event.seq, leaf(event)]));
  const differing = (legacy.events as AuditEvent[]).filter((event) => now.get(event.seq) !== leaf(event));
  if (differing.length === 0) return tree;
  const first = differing[0]!.seq;
  const last = differing.at(-1)!.seq;
  const missing = differing.every((event) => !now.has(event.seq));
  return treeFailure(
    missing ? 'truncated' : 'rewritten',
    missing
      ? `events ${first}–${last} of this version-1 export are missing from the log your witnesses cosigned (${tree.size} events)`
      : `events ${first}–${last} of this version-1 export differ from the log your witnesses cosigned`,
    first,
    last,
  );
}
