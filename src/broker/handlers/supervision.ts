/**
 * Live supervision. GET /v1/sessions/:id/watch streams one live session to a supervisor as
 * Server-Sent Events (shapes: WatchEvents in src/core/api.ts): its recording as it arrives and its
 * proxied calls as the audit log records them — both read from the log, so a watcher on any replica
 * sees what every replica wrote. Joining and leaving are audited (supervision.joined / .left; no
 * audit, no stream). POST /v1/sessions/:id/terminate ends the watched session on the spot, audited
 * as a revocation by the supervisor. Never one's own session (rule supervision.self).
 */
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { WatchEventName, WatchEvents } from '../../core/api.js';
import type { AuditEvent } from '../../core/audit/event.js';
import { ConflictError, NotFoundError } from '../../core/errors.js';
import { parseAsciicast } from '../../core/recording/asciicast.js';
import type { SessionRecord } from '../../store/types.js';
import { actorOf, type BrokerDeps, type HandlerContext, type HandlerResult } from '../context.js';
import { mustHavePrincipal, refuse } from '../guards.js';
import { loadSession, sessionAudit, sessionChanges, sessionView } from '../sessions.js';
import { afterSupervisorLeft, currentSupervisors, startsOnJoin } from '../supervision.js';
import { revokeTarget } from './approvals.js';

/** How often a stream re-reads the log when nothing woke it (another replica's writes, expiry). */
const WATCH_POLL_MS = 500;
/** A comment line this often keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

const ACTIONS = new Set([
  'action.requested',
  'action.completed',
  'action.failed',
  'action.cut',
  'action.denied',
]);

/**
 * Who may watch what: the route's target guards (`supervise` for that tenant, never one's own
 * session) and a live session; each refusal audited with its rule. Joins nothing.
 */
export async function watchableSession(ctx: HandlerContext): Promise<SessionRecord> {
  const session = await loadSession(ctx.deps, ctx.params.id ?? '');
  if (!session) throw new NotFoundError('No such session.');
  await ctx.guard.target(session);
  if (session.state !== 'active')
    return refuse(ctx, {
      rule: 'supervision.not_live',
      message: `Refused by rule supervision.not_live: session ${session.id} is ${session.state}; only a live session is watched (replay a finished one: imp replay ${session.id}).`,
      as: 'conflict',
      about: session,
      data: { action: 'watch' },
    });
  return session;
}

/**
 * The watch route's checks alone (the console's watch page, before its script joins): the session's
 * view when they pass — what the stream's `hello` would show; a `supervise` role need not be able to
 * read the session otherwise.
 */
export async function checkWatch(ctx: HandlerContext): Promise<HandlerResult> {
  return { body: { session: sessionView(await watchableSession(ctx)) } };
}

/** GET /v1/sessions/:id/watch — `supervise` role, never one's own session (route guards). */
export async function watchSession(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const session = await watchableSession(ctx);
  const watcher = principal.email ?? principal.sub;
  const watchId = randomUUID();
  const joinedAt = deps.clock.now();
  // A supervised session's time starts when its first supervisor joins (it waited like a request).
  const { everJoined } = await currentSupervisors(deps, session.id);
  const starts = startsOnJoin(deps.policy, session, everJoined, joinedAt);
  // Fail closed: nobody watches unrecorded.
  const joined = await ctx.guard.commit(async (tx) => {
    if (starts && !(await tx.updateSession(session.id, 'active', starts)))
      throw new ConflictError(`Session ${session.id} changed meanwhile; try again.`);
    return tx.appendAudit(
      sessionAudit(
        session,
        'supervision.joined',
        {
          watch_id: watchId,
          supervisor: watcher,
          request_id: ctx.requestId,
          ...(starts ? { first: true, expires_at: new Date(starts.expiresAt!).toISOString() } : {}),
        },
        actorOf(principal),
      ),
      joinedAt,
    );
  });
  if (starts) {
    Object.assign(session, starts);
    sessionChanges.emit(session.id);
  }

  const stream = new PassThrough();
  const send = <K extends WatchEventName>(name: K, data: WatchEvents[K]) =>
    stream.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  const stop = new AbortController();
  // The client went away (Fastify destroys the body stream when the response closes), or the session ended.
  stream.once('close', () => {
    stop.abort();
    deps.store
      .transaction((tx) =>
        tx.appendAudit(
          sessionAudit(
            session,
            'supervision.left',
            { watch_id: watchId, supervisor: watcher, duration_ms: deps.clock.now() - joinedAt },
            actorOf(principal),
          ),
          deps.clock.now(),
        ),
      )
      .then(() => afterSupervisorLeft(deps, session))
      .catch((error: unknown) =>
        deps.log('error', 'could not audit a supervisor leaving', { message: (error as Error).message }),
      );
  });

  const history = await deps.store.readAudit({ session: session.id, toSeq: joined.seq });
  const supervisors = new Map<string, string>();
  for (const event of history) trackSupervisor(supervisors, event);
  send('hello', { session: sessionView(session), watcher, supervisors: [...supervisors.values()] });
  const chunks = await deps.store.listRecordingChunks(session.id);
  for (const chunk of chunks) send('output', outputOf(chunk.seq, chunk.data));
  const keepalive = () => stream.write(': keepalive\n\n');
  void follow(deps, session, joined.seq, chunks.length, supervisors, send, keepalive, stop.signal).finally(
    () => stream.end(),
  );
  return {
    body: stream,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' },
  };
}

/** Streams what the log gains about the session until it is over or the watcher leaves. */
async function follow(
  deps: BrokerDeps,
  session: SessionRecord,
  fromSeq: number,
  nextChunk: number,
  supervisors: Map<string, string>,
  send: <K extends WatchEventName>(name: K, data: WatchEvents[K]) => boolean,
  keepalive: () => void,
  signal: AbortSignal,
): Promise<void> {
  let cursor = fromSeq;
  let chunkCursor = nextChunk;
  let wake: (() => void) | null = null;
  const poke = () => wake?.();
  const offAppended = deps.store.onAppended((events) => {
    if (events.some((e) => e.session === session.id)) poke();
  });
  sessionChanges.on(session.id, poke);
  let lastKeepalive = deps.clock.now();
  try {
    while (!signal.aborted) {
      const events = await deps.store.readAudit({ session: session.id, fromSeq: cursor + 1 });
      for (const event of events) {
        cursor = event.seq;
        if (event.type === 'recording.chunk' && Number(event.data.chunk) >= chunkCursor) {
          // Chunks arrive in order; one read catches up on any this replica has not sent yet.
          const stored = await deps.store.transaction(async (tx) => {
            const out: { seq: number; data: string }[] = [];
            for (let seq = chunkCursor; seq <= Number(event.data.chunk); seq++) {
              const chunk = await tx.getRecordingChunk(session.id, seq);
              if (chunk) out.push(chunk);
            }
            return out;
          });
          for (const chunk of stored) {
            send('output', outputOf(chunk.seq, chunk.data));
            chunkCursor = chunk.seq + 1;
          }
        } else if (ACTIONS.has(event.type)) send('action', actionOf(event));
        else if (event.type === 'supervision.joined' || event.type === 'supervision.left') {
          trackSupervisor(supervisors, event);
          send('supervision', {
            type: event.type === 'supervision.joined' ? 'joined' : 'left',
            who: String(event.data.supervisor ?? event.actor?.email ?? event.actor?.sub ?? 'someone'),
            supervisors: [...supervisors.values()],
          });
        }
      }
      const now = await loadSession(deps, session.id);
      if (now?.state !== 'active') {
        send('end', {
          state: now?.state ?? 'gone',
          by: now?.endedBy ? (now.endedBy.email ?? now.endedBy.sub) : null,
          comment: now?.decisionComment ?? null,
        });
        return;
      }
      if (deps.clock.now() - lastKeepalive >= KEEPALIVE_MS) {
        lastKeepalive = deps.clock.now();
        keepalive();
      }
      await new Promise<void>((resolve) => {
        const timer = new AbortController();
        wake = () => timer.abort();
        signal.addEventListener('abort', () => timer.abort(), { once: true });
        deps.clock.sleep(WATCH_POLL_MS, timer.signal).then(resolve, () => resolve());
      });
      wake = null;
    }
  } catch (error) {
    deps.log('error', 'a watch stream stopped', { session: session.id, message: (error as Error).message });
  } finally {
    offAppended();
    sessionChanges.off(session.id, poke);
  }
}

function trackSupervisor(supervisors: Map<string, string>, event: AuditEvent): void {
  const id = String(event.data.watch_id ?? '');
  if (event.type === 'supervision.joined') supervisors.set(id, String(event.data.supervisor ?? ''));
  else if (event.type === 'supervision.left') supervisors.delete(id);
}

function outputOf(seq: number, data: string): WatchEvents['output'] {
  const { header, events } = parseAsciicast(data);
  return { seq, ...(header ? { header: { width: header.width, height: header.height } } : {}), events };
}

function actionOf(event: AuditEvent): WatchEvents['action'] {
  const d = event.data;
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    type: event.type as WatchEvents['action']['type'],
    ts: event.ts,
    method: text(d.method),
    path: text(d.path),
    kind: text(d.kind),
    status: typeof d.status === 'number' ? d.status : null,
    rule: text(d.rule),
  };
}

/** POST /v1/sessions/:id/terminate — a supervisor ends the session they watch; audited as session.revoked. */
export async function terminateSession(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const session = await loadSession(ctx.deps, ctx.params.id ?? '');
  if (!session) throw new NotFoundError('No such session.');
  await ctx.guard.target(session);
  if (session.state !== 'active')
    throw new ConflictError(`Session ${session.id} is already ${session.state}.`, { state: session.state });
  const who = principal.email ?? principal.sub;
  return revokeTarget(ctx, session, `Terminated by supervisor ${who} while watching.`, { via: 'watch' });
}
