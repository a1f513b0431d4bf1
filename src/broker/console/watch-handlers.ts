/**
 * The console's live watch of a session. `app.inject` (how the console calls the API) buffers the
 * whole answer, so it cannot carry a stream; these routes run the API's own watch route in-process
 * instead (`deps.route`): the same principal (the viewer's broker token), the same route guards
 * (`supervise` for that tenant, never one's own session), the same refusals with their rules and
 * audit events, the same supervision.joined / .left, and the very SSE stream `imp watch` reads —
 * so under `supervision: required` a console watcher counts as the supervisor exactly like `imp watch`.
 */

import type { SessionView } from '../../core/api.js';
import { type ImpError, toImpError } from '../../core/errors.js';
import type { HandlerContext, HandlerResult } from '../context.js';
import { checkWatch } from '../handlers/supervision.js';
import { statusFor } from '../http-errors.js';
import { html, pageHeaders, toLogin, viewerOf } from './http.js';
import { messagePage, type Viewer } from './pages.js';
import { sessionId, viewerMay } from './session-handlers.js';
import { consoleState } from './state.js';
import { watchPage } from './watch-page.js';

/** The API's watch route as the viewer: its guards around `handler` (default: the route's own, which streams). */
function watchAsViewer(
  ctx: HandlerContext,
  viewer: Viewer,
  id: string,
  handler?: (ctx: HandlerContext) => Promise<HandlerResult>,
): Promise<HandlerResult> {
  const route = ctx.deps.route;
  if (!route) throw new Error('The broker API is not wired for the console.');
  return route(
    {
      method: 'GET',
      route: '/v1/sessions/:id/watch',
      params: { id },
      token: viewer.session.token,
      ip: ctx.ip,
      requestId: ctx.requestId,
      signal: ctx.signal,
    },
    handler,
  );
}

/** The broker token ended (expired, or its login was revoked): the console session goes with it. */
function dropOnAuthError(ctx: HandlerContext, viewer: Viewer, error: ImpError): boolean {
  if (error.code !== 'IMP_AUTH_REQUIRED') return false;
  consoleState(ctx.deps).drop(viewer.session.id);
  return true;
}

/**
 * GET /console/sessions/:id/watch — the watch page. The watch route's checks run first (a refusal
 * is audited with its rule and shown as the refusal page); joining happens when the page's script
 * opens the stream, so a refused person never joins and a page that fails to load joins nobody.
 */
export async function getConsoleWatch(ctx: HandlerContext): Promise<HandlerResult> {
  const id = sessionId(ctx);
  const back = `/console/sessions/${id}/watch`;
  const viewer = viewerOf(ctx);
  if (!viewer) return toLogin(ctx, back);
  let checked: HandlerResult;
  try {
    checked = await watchAsViewer(ctx, viewer, id, checkWatch);
  } catch (raw) {
    const error = toImpError(raw);
    if (dropOnAuthError(ctx, viewer, error)) return toLogin(ctx, back);
    const status = statusFor(error.code);
    // A failure of ours goes to the server's error path (logged with the request id, generic page).
    if (status >= 500) throw error;
    return html(
      ctx.deps,
      messagePage(status === 403 ? 'Refused' : 'Cannot watch this session', error.message, viewer, [
        `/console/sessions/${id}`,
        'Back to the session',
      ]),
      status,
    );
  }
  const session = (checked.body as { session: SessionView }).session;
  const canRevoke = viewerMay(ctx, viewer, 'revoke');
  // The page runs asciinema-player (the live terminal): its CSP allows WebAssembly, nothing else more.
  return html(ctx.deps, watchPage(viewer, session, canRevoke), 200, {}, { player: true });
}

/**
 * GET /console/sessions/:id/watch/stream — the API's watch stream itself (Server-Sent Events,
 * WatchEvents in src/core/api.ts) for the page's script. A refusal answers its status with no
 * stream (EventSource does not retry a non-200); it was audited like the page's.
 */
export async function getConsoleWatchStream(ctx: HandlerContext): Promise<HandlerResult> {
  const id = sessionId(ctx);
  const viewer = viewerOf(ctx);
  if (!viewer) return { status: 401, body: '', headers: pageHeaders(ctx.deps) };
  try {
    const answer = await watchAsViewer(ctx, viewer, id);
    return {
      ...answer,
      headers: { ...pageHeaders(ctx.deps), ...answer.headers, 'cache-control': 'no-store' },
    };
  } catch (raw) {
    const error = toImpError(raw);
    if (statusFor(error.code) >= 500) throw error;
    dropOnAuthError(ctx, viewer, error);
    return { status: statusFor(error.code), body: '', headers: pageHeaders(ctx.deps) };
  }
}
