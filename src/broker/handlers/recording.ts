/**
 * Session recordings. POST /v1/sessions/:id/recording takes the next asciicast chunk from the
 * session's owner — in order, idempotent by chunk number, bounded in size — and stores it with its
 * SHA-256 in the audit log in one transaction (no audit, no chunk). GET returns the chunks to the
 * owner and the audit and review roles; every read is audited before it is answered.
 */
import type { RecordingChunkBody, RecordingResponse } from '../../core/api.js';
import { InvalidInputError, NotFoundError } from '../../core/errors.js';
import { sameSubject } from '../../core/policy/decide.js';
import { chunkHash, chunkProblem } from '../../core/recording/asciicast.js';
import type { SessionRecord } from '../../store/types.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { mustHavePrincipal, refuse } from '../guards.js';
import { recordingMode } from '../recording.js';
import { loadSession, sessionAudit, sessionView } from '../sessions.js';
import { resolveId } from '../short-ids.js';

/** How long after a session ends its last chunks are still taken (the CLI flushes as the shell exits). */
const LATE_CHUNK_MS = 2 * 60 * 1000;

/** POST /v1/sessions/:id/recording — 201 stored, 200 already stored (same bytes). Owner only (route guard). */
export async function postRecordingChunk(ctx: HandlerContext): Promise<HandlerResult> {
  const { deps } = ctx;
  const session = await loadSession(deps, ctx.params.id ?? '');
  if (!session) throw new NotFoundError('No such session.');
  await ctx.guard.target(session);
  const refused = (rule: string, message: string, as: 'invalid' | 'conflict', data = {}, details = {}) =>
    refuse(ctx, { rule, message, as, event: 'recording.refused', about: session, data, details });
  if (recordingMode(deps.policy, session) === 'off')
    return refused(
      'recording.off',
      'Refused by rule recording.off: policy does not record this session.',
      'invalid',
    );
  if (!acceptsChunks(session, deps.clock.now()))
    return refuse(ctx, {
      rule: 'recording.session_over',
      message: `Refused by rule recording.session_over: session ${session.id} is ${session.state}; its recording is closed.`,
      as: 'conflict',
      event: 'recording.refused',
      about: session,
    });
  const body = (ctx.body ?? {}) as Partial<RecordingChunkBody>;
  if (typeof body.seq !== 'number' || !Number.isInteger(body.seq) || body.seq < 0 || body.seq > 10_000_000)
    throw new InvalidInputError('seq must be the chunk number (a whole number from 0).');
  if (typeof body.data !== 'string') throw new InvalidInputError('data must be asciicast v2 lines.');
  const seq = body.seq;
  const data = body.data;
  // Measured as sent (JSON-escaped), so any chunk within the limit also fits the broker's body limit.
  const bytes = Buffer.byteLength(JSON.stringify(data), 'utf8');
  const max = deps.policy.recording.maxChunkBytes;
  if (bytes > max)
    return refused(
      'recording.chunk_size',
      `Refused by rule recording.chunk_size: chunk ${seq} is ${bytes} bytes; the limit is ${max}.`,
      'invalid',
      { chunk: seq, bytes },
      { max_chunk_bytes: max },
    );
  const problem = chunkProblem(data, seq);
  if (problem)
    return refused(
      'recording.format',
      `Refused by rule recording.format: chunk ${seq}: ${problem}.`,
      'invalid',
      {
        chunk: seq,
      },
    );

  const sha256 = chunkHash(data);
  const now = deps.clock.now();
  const principal = mustHavePrincipal(ctx);
  const outcome = await ctx.guard.commit(async (tx) => {
    // Chunks are numbered in order: a retry racing on another replica waits here, then is a duplicate.
    await tx.lockKey(`recording\u0000${session.id}`);
    const next = await tx.countRecordingChunks(session.id);
    if (seq < next) {
      const stored = await tx.getRecordingChunk(session.id, seq);
      return { kind: stored?.sha256 === sha256 ? ('duplicate' as const) : ('conflict' as const), next };
    }
    if (seq > next) return { kind: 'order' as const, next };
    await tx.insertRecordingChunk({ session: session.id, seq, ts: now, data, sha256 });
    await tx.appendAudit(
      sessionAudit(session, 'recording.chunk', { chunk: seq, sha256, bytes }, actorOf(principal)),
      now,
    );
    return { kind: 'stored' as const, next: seq + 1 };
  });
  if (outcome.kind === 'order')
    return refused(
      'recording.order',
      `Refused by rule recording.order: chunk ${seq} arrived before chunk ${outcome.next}; send chunks in order.`,
      'conflict',
      { chunk: seq, expected: outcome.next },
      { expected: outcome.next },
    );
  if (outcome.kind === 'conflict')
    return refused(
      'recording.immutable',
      `Refused by rule recording.immutable: chunk ${seq} is already stored with different content.`,
      'conflict',
      { chunk: seq, sha256 },
      { expected: outcome.next },
    );
  return {
    status: outcome.kind === 'stored' ? 201 : 200,
    body: { chunk: seq, sha256, next: outcome.next, stored: outcome.kind === 'stored' },
  };
}

function acceptsChunks(session: SessionRecord, now: number): boolean {
  if (session.state === 'active') return true;
  const over = session.state === 'ended' || session.state === 'expired' || session.state === 'revoked';
  return over && session.endedAt !== null && now - session.endedAt <= LATE_CHUNK_MS;
}

/** GET /v1/sessions/:id/recording[?purpose=replay|export|verify] — owner, audit or review role. */
export async function getRecording(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  // A short id is looked up among sessions whose recording this caller may replay (theirs, or any for audit/review).
  const id = await resolveId(ctx, {
    noun: 'session',
    verb: 'replay',
    may: (s) =>
      sameSubject(s.requester, principal) || principal.roles.some((role) => role.audit || role.review),
  });
  const session = await loadSession(deps, id);
  if (!session) throw new NotFoundError('No such session.');
  const purpose = ctx.query.purpose ?? 'replay';
  if (!['replay', 'export', 'verify', 'watch'].includes(purpose))
    throw new InvalidInputError('purpose must be replay, export or verify.');
  const isOwner = sameSubject(session.requester, principal);
  if (!isOwner && !principal.roles.some((role) => role.audit || role.review))
    await refuse(ctx, {
      rule: 'role.replay',
      message: `Denied by rule role.replay: a recording is replayed by the session's owner or the audit and review roles; yours are ${principal.roles.map((r) => r.name).join(', ') || 'none'}.`,
      about: session,
      data: { action: `recording.${purpose}` },
    });
  const chunks = await deps.store.listRecordingChunks(session.id);
  await deps.store.transaction((tx) =>
    tx.appendAudit(
      sessionAudit(
        session,
        'recording.replayed',
        { purpose, chunks: chunks.length, owner: isOwner, request_id: ctx.requestId },
        actorOf(principal),
      ),
      deps.clock.now(),
    ),
  );
  const body: RecordingResponse = {
    session: sessionView(session),
    chunks: chunks.map((c) => ({
      seq: c.seq,
      ts: new Date(c.ts).toISOString(),
      sha256: c.sha256,
      data: c.data,
    })),
  };
  return { body };
}
