/**
 * The console's Sessions pages, revoke, and the live stream of one session's state (SSE). Reads and
 * the revoke go through the broker API as the viewer (visibility, the revoke capability and its
 * audit are the API's); the stream only starts after the API showed the viewer that session.
 */
import { PassThrough } from 'node:stream';
import type { RecordingResponse, SessionSummary, SessionView } from '../../core/api.js';
import type { AuditEvent } from '../../core/audit/event.js';
import { InvalidInputError } from '../../core/errors.js';
import type { HandlerContext, HandlerResult } from '../context.js';
import { loadSession, sessionChanges, sessionView } from '../sessions.js';
import { perform } from './handlers.js';
import { apiErrorPage, callApi, formViewer, html, pageHeaders, toLogin, viewerOf } from './http.js';
import type { Viewer } from './pages.js';
import { sessionPage, sessionsPage } from './session-pages.js';

/** Whether one of the viewer's roles (by name, from their login) has the capability (what to offer; the API decides). */
export function viewerMay(
  ctx: HandlerContext,
  viewer: Viewer,
  capability: 'revoke' | 'review' | 'audit' | 'supervise',
): boolean {
  return ctx.deps.policy.roles.some(
    (role) => viewer.session.user.roles.includes(role.name) && role[capability],
  );
}

/** GET /console/sessions */
export async function getConsoleSessions(ctx: HandlerContext): Promise<HandlerResult> {
  const viewer = viewerOf(ctx);
  if (!viewer) return toLogin(ctx, '/console/sessions');
  const own = await callApi(ctx, viewer.session, 'GET', '/v1/sessions');
  if (own.error) return apiErrorPage(ctx, viewer, own.status, own.error, '/console/requests');
  // Everyone's live sessions only for roles that oversee; anyone else sees their own (403 is expected here).
  const live = await callApi(ctx, viewer.session, 'GET', '/v1/sessions/live');
  const liveSessions = live.status === 200 ? (live.body as { sessions: SessionView[] }).sessions : null;
  return html(
    ctx.deps,
    sessionsPage(
      viewer,
      liveSessions,
      (own.body as { sessions: SessionView[] }).sessions,
      viewerMay(ctx, viewer, 'supervise'),
    ),
  );
}

/** GET /console/sessions/:id */
export async function getConsoleSession(ctx: HandlerContext): Promise<HandlerResult> {
  const id = sessionId(ctx);
  const viewer = viewerOf(ctx);
  if (!viewer) return toLogin(ctx, `/console/sessions/${id}`);
  const read = await callApi(ctx, viewer.session, 'GET', `/v1/sessions/${id}`);
  if (read.error) return apiErrorPage(ctx, viewer, read.status, read.error, '/console/sessions');
  const session = (read.body as { session: SessionView }).session;
  const summary = await callApi(ctx, viewer.session, 'GET', `/v1/sessions/${id}/summary`);
  // The timeline is the session's audit events: only audit roles may read the log (the read is audited).
  const events = viewerMay(ctx, viewer, 'audit')
    ? await callApi(ctx, viewer.session, 'GET', `/v1/audit/events?session=${id}&limit=2000`)
    : null;
  const summaryBody = summary.status === 200 ? (summary.body as SessionSummary) : null;
  // Who may replay, as GET /v1/sessions/:id/recording decides it (that route still guards the cast).
  const replay =
    summaryBody?.recorded === true &&
    (session.requester.sub === viewer.session.user.sub ||
      viewerMay(ctx, viewer, 'audit') ||
      viewerMay(ctx, viewer, 'review'));
  return html(
    ctx.deps,
    sessionPage(
      viewer,
      session,
      summaryBody,
      viewerMay(ctx, viewer, 'revoke') && session.requester.sub !== viewer.session.user.sub,
      undefined,
      // The API refuses the requester and the confirmer (four eyes); the form is not offered to them.
      viewerMay(ctx, viewer, 'review') &&
        session.requester.sub !== viewer.session.user.sub &&
        session.decided_by?.sub !== viewer.session.user.sub,
      replay,
      events?.status === 200 ? (events.body as { events: AuditEvent[] }).events : null,
      viewerMay(ctx, viewer, 'supervise'),
    ),
    200,
    {},
    // Only the page with a player may compile WebAssembly (its terminal); every other directive unchanged.
    { player: replay },
  );
}

/**
 * GET /console/sessions/:id/cast — the session's recording as one asciicast v2 file for the player,
 * read through GET /v1/sessions/:id/recording as the viewer: its guard (owner, audit or review role,
 * role.replay refusals audited) and its recording.replayed audit event are the API's.
 */
export async function getConsoleSessionCast(ctx: HandlerContext): Promise<HandlerResult> {
  const id = sessionId(ctx);
  const viewer = viewerOf(ctx);
  if (!viewer) return { status: 401, body: '', headers: pageHeaders(ctx.deps) };
  const read = await callApi(ctx, viewer.session, 'GET', `/v1/sessions/${id}/recording`);
  if (read.error) return apiErrorPage(ctx, viewer, read.status, read.error, `/console/sessions/${id}`);
  const recording = read.body as RecordingResponse;
  return {
    body: recording.chunks.map((chunk) => chunk.data).join(''),
    headers: {
      ...pageHeaders(ctx.deps),
      'content-type': 'application/x-asciicast; charset=utf-8',
      'cache-control': 'no-store',
    },
  };
}

/** POST /console/sessions/:id/revoke {reason, csrf} */
export async function postConsoleRevoke(ctx: HandlerContext): Promise<HandlerResult> {
  const { viewer, form } = await formViewer(ctx);
  const id = sessionId(ctx);
  const reason = (form.reason ?? '').trim();
  if (reason.length < 3) throw new InvalidInputError('Give a reason for revoking (at least 3 characters).');
  return perform(
    ctx,
    viewer,
    {
      method: 'POST',
      path: `/v1/sessions/${id}/revoke`,
      body: { reason },
      returnTo: `/console/sessions/${id}`,
      label: `revoke session ${id.slice(0, 8)}`,
      done: 'Revoked: the session has ended.',
      render: 'session',
    },
    undefined,
  );
}

/**
 * POST /console/sessions/:id/review {outcome, notes, csrf} — the API's break-glass review, with its
 * guards (review capability, neither requester nor confirmer, a fresh login last): a stale login
 * becomes a fresh IdP login or a passkey ceremony, exactly as for approvals.
 */
export async function postConsoleBreakGlassReview(ctx: HandlerContext): Promise<HandlerResult> {
  const { viewer, form } = await formViewer(ctx);
  const id = sessionId(ctx);
  const outcome = form.outcome;
  if (outcome !== 'justified' && outcome !== 'unjustified')
    throw new InvalidInputError('Choose justified or unjustified.');
  const notes = (form.notes ?? '').trim();
  if (!notes) throw new InvalidInputError('Say what you checked in the notes.');
  return perform(
    ctx,
    viewer,
    {
      method: 'POST',
      path: `/v1/break-glass/${id}/review`,
      body: { outcome, notes },
      returnTo: `/console/sessions/${id}`,
      label: `review break-glass session ${id.slice(0, 8)}`,
      done: `Reviewed: ${outcome}.`,
      render: 'session',
    },
    undefined,
  );
}

/**
 * GET /console/sessions/:id/live — Server-Sent Events: `state` with {state, expires_at} now and on
 * every change of the session (approval, end, revoke, expiry), until it ends or the page goes.
 */
export async function getConsoleSessionLive(ctx: HandlerContext): Promise<HandlerResult> {
  const id = sessionId(ctx);
  const viewer = viewerOf(ctx);
  if (!viewer) return { status: 401, body: '', headers: pageHeaders(ctx.deps) };
  const read = await callApi(ctx, viewer.session, 'GET', `/v1/sessions/${id}`);
  if (read.error) return { status: read.status, body: '', headers: pageHeaders(ctx.deps) };
  const stream = new PassThrough();
  const send = async () => {
    const record = await loadSession(ctx.deps, id);
    if (!record) return;
    const view = sessionView(record);
    stream.write(
      `event: state\ndata: ${JSON.stringify({ state: view.state, expires_at: view.expires_at })}\n\n`,
    );
    if (view.state !== 'active' && view.state !== 'pending') stop();
  };
  const onChange = () => {
    send().catch(() => stop());
  };
  // A heartbeat keeps proxies from closing the stream and catches an expiry nobody announced.
  const stopTimer = ctx.deps.clock.every(15_000, () => send().catch(() => stop()), { unref: true });
  const stop = () => {
    sessionChanges.off(id, onChange);
    stopTimer();
    stream.end();
  };
  sessionChanges.on(id, onChange);
  ctx.signal.addEventListener('abort', stop, { once: true });
  await send();
  return {
    body: stream,
    headers: {
      ...pageHeaders(ctx.deps),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
    },
  };
}

/** The :id of a console session route, or a usage error. */
export function sessionId(ctx: HandlerContext): string {
  const id = ctx.params.id ?? '';
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new InvalidInputError('That is not a session id.');
  return id;
}
