/**
 * Reading the audit log: for roles with `audit` only; every read is itself audited (fail-closed:
 * if the read can't be recorded, nothing is returned).
 */
import type { AuditEvent } from '../../core/audit/event.js';
import { InvalidInputError, NotFoundError } from '../../core/errors.js';
import type { AuditQuery } from '../../store/types.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { mustHavePrincipal } from '../guards.js';
import { freshCheckpoint, treeExport } from './audit-tree.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

function auditQuery(ctx: HandlerContext): AuditQuery {
  const q = ctx.query;
  const query: AuditQuery = {};
  for (const key of ['since', 'until'] as const) {
    const value = q[key];
    if (value !== undefined && !ISO.test(value))
      throw new InvalidInputError(`${key} must be a UTC timestamp such as 2026-11-24T10:00:00Z.`);
  }
  if (q.since) query.sinceTs = new Date(q.since).toISOString();
  if (q.until) query.untilTs = new Date(q.until).toISOString();
  for (const key of ['tenant', 'actor', 'type', 'session'] as const) {
    const value = q[key];
    if (value !== undefined) {
      if (value.length > 200) throw new InvalidInputError(`${key} is too long.`);
      query[key] = value;
    }
  }
  if (q.limit !== undefined) {
    const limit = Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw new InvalidInputError('limit must be 1 to 10000.');
    query.limit = limit;
  }
  return query;
}

async function recordRead(
  ctx: HandlerContext,
  type: 'audit.read' | 'audit.export',
  data: Record<string, unknown>,
): Promise<void> {
  const principal = mustHavePrincipal(ctx);
  await ctx.deps.store.transaction((tx) =>
    tx.appendAudit(
      { type, actor: actorOf(principal), data: { ...data, request_id: ctx.requestId } },
      ctx.deps.clock.now(),
    ),
  );
}

/** GET /v1/audit/events — filtered events, newest `limit` (default 200), oldest first. */
export async function listAudit(ctx: HandlerContext): Promise<HandlerResult> {
  const query = { limit: 200, ...auditQuery(ctx), newest: true };
  await recordRead(ctx, 'audit.read', { filters: { ...ctx.query } });
  // Everything acknowledged before this read (the read's own event included) is in what it returns.
  await ctx.deps.store.settle();
  return { body: { events: await ctx.deps.store.readAudit(query) } };
}

/** GET /v1/audit/events/:ref — one event by seq or id. */
export async function showAudit(ctx: HandlerContext): Promise<HandlerResult> {
  const ref = ctx.params.ref ?? '';
  await recordRead(ctx, 'audit.read', { ref });
  await ctx.deps.store.settle();
  let events: AuditEvent[];
  if (/^\d{1,15}$/.test(ref))
    events = await ctx.deps.store.readAudit({ fromSeq: Number(ref), toSeq: Number(ref) });
  else if (/^[0-9a-f-]{36}$/.test(ref)) events = await ctx.deps.store.readAudit({ id: ref });
  else throw new InvalidInputError('Give an event seq (a number) or id (a UUID).');
  if (!events[0]) throw new NotFoundError(`No audit event ${ref}.`);
  return { body: { event: events[0] } };
}

/** GET /v1/audit/export — JSONL with every field and the checkpoints, verifiable offline. */
export async function exportAudit(ctx: HandlerContext): Promise<HandlerResult> {
  const query = auditQuery(ctx);
  if (query.tenant || query.actor || query.type || query.session)
    throw new InvalidInputError(
      'An export is a contiguous stretch of the chain: filter by since/until only.',
    );
  await recordRead(ctx, 'audit.export', { since: ctx.query.since ?? null, until: ctx.query.until ?? null });
  const stream = await treeExport(ctx.deps, {
    ...(query.sinceTs ? { sinceTs: query.sinceTs } : {}),
    ...(query.untilTs ? { untilTs: query.untilTs } : {}),
  });
  return { body: stream, headers: { 'content-type': 'application/x-ndjson' } };
}

/** POST /v1/audit/checkpoint — sign a checkpoint of the head now (before an export, say). */
export async function checkpointNow(ctx: HandlerContext): Promise<HandlerResult> {
  const latest = await freshCheckpoint(ctx.deps);
  return { body: { checkpoint: latest?.note ?? null, size: latest?.size ?? 0 } };
}
