/**
 * The audit tree over HTTP: the latest checkpoint (public, like any transparency log's), the
 * version-2 export body, and receipts (one event, its inclusion proof, a cosigned checkpoint).
 */
import { PassThrough } from 'node:stream';
import { type AuditEvent, GENESIS_PREV } from '../../core/audit/event.js';
import { canonicalEventLine, exportLine } from '../../core/audit/export-format.js';
import type { StoredNote } from '../../core/audit/log-tree.js';
import { decompose, inclusionRanges, nodesFor, rangeHash } from '../../core/audit/merkle.js';
import type { AuditReceipt } from '../../core/audit/receipt.js';
import { InvalidInputError, NotFoundError } from '../../core/errors.js';
import type { Store } from '../../store/types.js';
import type { BrokerDeps, HandlerContext, HandlerResult } from '../context.js';

/** How long an export or receipt waits for the witnesses to cosign the fresh checkpoint. */
const WITNESS_WAIT_MS = 5000;

/** GET /v1/audit/checkpoint — the newest checkpoint note with its cosignatures (text/plain), public. */
export async function getCheckpoint(ctx: HandlerContext): Promise<HandlerResult> {
  const latest = (await ctx.deps.store.listNotes()).at(-1);
  if (!latest) throw new NotFoundError('The audit log has no checkpoint yet.');
  return {
    body: latest.note,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'x-imp-audit-origin': ctx.deps.auditNote!.origin,
      'x-imp-audit-key': ctx.deps.auditNote!.vkey,
    },
  };
}

/** Checkpoints the head now and waits (bounded) for the witnesses; returns the newest checkpoint. */
export async function freshCheckpoint(deps: BrokerDeps): Promise<StoredNote | undefined> {
  // What was acknowledged before now must be in the tree the checkpoint signs (a receipt right
  // after an action, an export): the sequencer integrates after commit.
  await deps.store.settle();
  await deps.checkpoint();
  const latest = (await deps.store.listNotes()).at(-1);
  if (latest && deps.policy.audit.witnesses.length > 0)
    await deps.witnesses?.settled(latest.size, WITNESS_WAIT_MS);
  return (await deps.store.listNotes()).at(-1);
}

/** The version-2 export of events (filtered by time, within the newest checkpoint's tree). */
export async function treeExport(
  deps: BrokerDeps,
  range: { sinceTs?: string; untilTs?: string },
): Promise<PassThrough> {
  const { store } = deps;
  let size = (await freshCheckpoint(deps))?.size ?? 0;
  let events = size === 0 ? [] : await store.readAudit({ ...range, toSeq: size });
  if (!range.untilTs && (events.at(-1)?.seq ?? 0) < size) {
    // The tree moved under us (an append rolled back): fall back to the newest checkpoint the rows reach.
    const reach = (await store.readAudit({ limit: 1, newest: true })).at(-1)?.seq ?? 0;
    size = (await store.listNotes()).filter((n) => n.size <= reach).at(-1)?.size ?? 0;
    events = size === 0 ? [] : await store.readAudit({ ...range, toSeq: size });
  }
  const first = events[0]?.seq ?? size + 1;
  const last = events.at(-1)?.seq ?? size;
  const [left, right] = await Promise.all([
    hashes(store, decompose(0, first - 1)),
    hashes(store, decompose(last, size)),
  ]);
  const checkpoints = (await store.listCheckpoints()).filter((cp) => cp.seq >= first && cp.seq <= last);
  const notes = (await store.listNotes()).filter((n) => n.size <= size);
  const stream = new PassThrough();
  stream.write(
    exportLine({
      export: {
        version: 2,
        broker: deps.issuer,
        exported_at: new Date(deps.clock.now()).toISOString(),
        from_seq: first,
        prev: events[0]?.prev ?? GENESIS_PREV,
        to_seq: last,
        origin: deps.auditNote!.origin,
        log_key: deps.auditNote!.vkey,
        tree_size: size,
        left,
        right,
        canonical: true,
      },
    }),
  );
  // Each event line is its leaf's bytes, so a verifier hashes it as stored (export-format.ts).
  for (const event of events) stream.write(canonicalEventLine(event));
  for (const checkpoint of checkpoints) stream.write(exportLine({ checkpoint }));
  for (const note of notes) stream.write(exportLine({ note: note.note }));
  stream.end();
  return stream;
}

/** GET /v1/audit/receipt/:ref — a self-contained receipt for one event (role audit, guarded in routes.ts). */
export async function getReceipt(ctx: HandlerContext): Promise<HandlerResult> {
  const ref = ctx.params.ref ?? '';
  await ctx.deps.store.settle();
  let events: AuditEvent[];
  if (/^\d{1,15}$/.test(ref))
    events = await ctx.deps.store.readAudit({ fromSeq: Number(ref), toSeq: Number(ref) });
  else if (/^[0-9a-f-]{36}$/.test(ref)) events = await ctx.deps.store.readAudit({ id: ref });
  else throw new InvalidInputError('Give an event seq (a number) or id (a UUID).');
  const event = events[0];
  if (!event) throw new NotFoundError(`No audit event ${ref}.`);
  const latest = await freshCheckpoint(ctx.deps);
  if (!latest || latest.size < event.seq)
    throw new NotFoundError(`Event ${ref} is not in a checkpoint yet; try again.`);
  const [receipt] = await receiptsFor(ctx.deps, [event], latest);
  return { body: { receipt } };
}

/**
 * Receipts for `events` (all within `checkpoint`) against that checkpoint: what GET /v1/audit/receipt
 * answers, built with one read of the tree nodes for all of them (the console proves a page at once).
 */
export async function receiptsFor(
  deps: BrokerDeps,
  events: readonly AuditEvent[],
  checkpoint: StoredNote,
): Promise<AuditReceipt[]> {
  const rangesOf = events.map((event) => inclusionRanges(event.seq - 1, checkpoint.size));
  const keyOf = (n: { level: number; index: number }) => `${n.level}/${n.index}`;
  const unique = new Map(rangesOf.flatMap((ranges) => nodesFor(ranges)).map((n) => [keyOf(n), n]));
  const nodes = [...unique.values()];
  const stored = nodes.length === 0 ? [] : await deps.store.treeNodes(nodes);
  const byKey = new Map(nodes.map((n, i) => [keyOf(n), stored[i]!]));
  return events.map((event, i) => ({
    version: 1,
    origin: deps.auditNote!.origin,
    log_key: deps.auditNote!.vkey,
    event,
    leaf_index: event.seq - 1,
    tree_size: checkpoint.size,
    proof: rangesOf[i]!.map((r) => Buffer.from(rangeHash(r, (n) => byKey.get(keyOf(n))!)).toString('base64')),
    checkpoint: checkpoint.note,
  }));
}

async function hashes(store: Store, nodes: ReturnType<typeof decompose>): Promise<string[]> {
  return (await store.treeNodes(nodes)).map((h) => Buffer.from(h).toString('base64'));
}
