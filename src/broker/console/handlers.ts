/**
 * The console's login, logout, Requests pages and decisions. A decision is the broker API's own
 * approve/deny, called with the viewer's broker token: the route table's guards (approver for that
 * tenant, never one's own request, fresh re-authentication last) and its audit events are the
 * CLI's. A step-up answer becomes a fresh IdP login (the action finishes at the callback) or a
 * passkey confirmation bound to that very action (the action finishes when the person continues).
 */

import type { PendingRequestView, SessionView } from '../../core/api.js';
import { InvalidInputError } from '../../core/errors.js';
import type { HandlerContext, HandlerResult } from '../context.js';
import { exchangeIdToken } from '../handlers/identity.js';
import {
  apiErrorPage,
  callApi,
  consoleOidc,
  formViewer,
  html,
  redirect,
  safeReturn,
  sessionCookies,
  toLogin,
  viewerOf,
} from './http.js';
import { hopPage, messagePage, type Viewer } from './pages.js';
import { type RequestPageContext, requestPage, requestsPage } from './request-pages.js';
import { sessionPage } from './session-pages.js';
import { consoleState, cookieNames, type PendingAction, readCookie, setCookie } from './state.js';
import { passkeyPage } from './step-up-page.js';

/** GET /console/ — the Requests page. */
export async function getConsoleHome(): Promise<HandlerResult> {
  return redirect('/console/requests');
}

/** GET /console/login?return= — already logged in: go back; otherwise to the IdP (code + PKCE). */
export async function getConsoleLogin(ctx: HandlerContext): Promise<HandlerResult> {
  const returnTo = safeReturn(ctx.query.return);
  if (viewerOf(ctx)) return redirect(returnTo);
  return startIdpLogin(ctx, { returnTo });
}

async function startIdpLogin(
  ctx: HandlerContext,
  options: { returnTo: string; action?: PendingAction; sessionId?: string },
): Promise<HandlerResult> {
  const { flow } = consoleOidc(ctx.deps);
  const checks = flow.newChecks();
  const url = await flow.authorizationUrl(checks, options.action ? { maxAge: 0 } : {});
  const login = consoleState(ctx.deps).startLogin({ ...checks, ...options });
  const cookie = setCookie(ctx.deps, cookieNames(ctx.deps).login, login.id, { sameSite: 'Lax', maxAge: 600 });
  return redirect(url, { 'set-cookie': cookie });
}

/** GET /console/callback — redeems the code, exchanges the ID token like POST /v1/login, finishes a waiting action. */
export async function getConsoleCallback(ctx: HandlerContext): Promise<HandlerResult> {
  const state = consoleState(ctx.deps);
  const login = state.takeLogin(readCookie(ctx.headers.cookie, cookieNames(ctx.deps).login));
  if (!login)
    return html(
      ctx.deps,
      messagePage(
        'Sign-in expired',
        'This sign-in expired or was started in another browser. Start again.',
        undefined,
        ['/console/login', 'Log in'],
      ),
      400,
    );
  if (ctx.query.error)
    return html(
      ctx.deps,
      messagePage(
        'Not signed in',
        `The identity provider said: ${String(ctx.query.error).slice(0, 200)}`,
        undefined,
        ['/console/login', 'Try again'],
      ),
      401,
    );
  const { flow, verify } = consoleOidc(ctx.deps);
  const url = new URL(`${ctx.deps.issuer.replace(/\/+$/, '')}/console/callback`);
  for (const [name, value] of Object.entries(ctx.query))
    if (value !== undefined) url.searchParams.set(name, value);
  const idToken = await flow.finish(url, login);
  const answer = await exchangeIdToken(ctx, idToken, verify);
  const previous = login.sessionId ? state.sessions.get(login.sessionId) : undefined;
  if (login.sessionId) state.drop(login.sessionId);
  const session = state.create({
    token: answer.token,
    tokenExpiresAt: Date.parse(answer.expires_at),
    user: {
      email: answer.user.email,
      name: answer.user.name,
      sub: answer.user.sub,
      roles: answer.user.roles,
    },
  });
  const cookies = sessionCookies(ctx.deps, session.id);
  // A fresh login asked for by an action finishes it, but only for the person who asked.
  if (login.action && previous?.user.sub === session.user.sub) {
    const result = await perform(ctx, { session }, login.action, undefined);
    if (result.status === 303 && typeof result.headers?.location === 'string')
      return html(ctx.deps, hopPage(result.headers.location), 200, { 'set-cookie': cookies });
    return { ...result, headers: { ...result.headers, 'set-cookie': cookies } };
  }
  // A same-site hop: the IdP's redirect here was cross-site, so SameSite=Strict holds the cookie back until then.
  return html(ctx.deps, hopPage(login.returnTo), 200, { 'set-cookie': cookies });
}

/** POST /console/logout. */
export async function postConsoleLogout(ctx: HandlerContext): Promise<HandlerResult> {
  const { viewer } = await formViewer(ctx);
  consoleState(ctx.deps).drop(viewer.session.id);
  const cookie = setCookie(ctx.deps, cookieNames(ctx.deps).session, '', { sameSite: 'Strict', maxAge: 0 });
  return html(
    ctx.deps,
    messagePage('Logged out', 'You are logged out of the console.', undefined, [
      '/console/login',
      'Log in again',
    ]),
    200,
    {
      'set-cookie': cookie,
    },
  );
}

/** GET /console/requests — pending requests the viewer may decide, newest first. */
export async function getConsoleRequests(ctx: HandlerContext): Promise<HandlerResult> {
  const viewer = viewerOf(ctx);
  if (!viewer) return toLogin(ctx, '/console/requests');
  const answer = await callApi(ctx, viewer.session, 'GET', `/v1/requests?state=pending&recent=${RECENT}`);
  if (answer.error) return apiErrorPage(ctx, viewer, answer.status, answer.error, '/console/requests');
  const { requests } = answer.body as { requests: PendingRequestView[] };
  const all = [...(await breakGlassToConfirm(ctx, viewer)), ...requests];
  return html(ctx.deps, requestsPage(viewer, all, requestContext(ctx)));
}

/** GET /console/requests/:id — one request; decision buttons only where the API lists it as the viewer's to decide. */
export async function getConsoleRequest(ctx: HandlerContext): Promise<HandlerResult> {
  const id = requestId(ctx);
  const back = `/console/requests/${id}`;
  const viewer = viewerOf(ctx);
  if (!viewer) return toLogin(ctx, back);
  const listed = await callApi(ctx, viewer.session, 'GET', `/v1/requests?state=pending&recent=${RECENT}`);
  if (listed.error) return apiErrorPage(ctx, viewer, listed.status, listed.error, '/console/requests');
  const mine = (listed.body as { requests: PendingRequestView[] }).requests.find((r) => r.id === id);
  if (mine) return html(ctx.deps, requestPage(viewer, mine, true, requestContext(ctx)));
  const glass = (await breakGlassToConfirm(ctx, viewer)).find((r) => r.id === id);
  if (glass) return html(ctx.deps, requestPage(viewer, glass, true, requestContext(ctx)));
  const read = await callApi(ctx, viewer.session, 'GET', `/v1/sessions/${id}`);
  if (read.error) return apiErrorPage(ctx, viewer, read.status, read.error, '/console/requests');
  const session = (read.body as { session: SessionView }).session;
  return html(ctx.deps, requestPage(viewer, session, false, requestContext(ctx)));
}

/** Pending break-glass requests the viewer may confirm (the API's list: breakGlassConfirm, never their own). */
async function breakGlassToConfirm(ctx: HandlerContext, viewer: Viewer): Promise<PendingRequestView[]> {
  const path = `/v1/requests?state=pending&kind=break_glass&recent=${RECENT}`;
  const answer = await callApi(ctx, viewer.session, 'GET', path);
  return answer.error ? [] : (answer.body as { requests: PendingRequestView[] }).requests;
}

/** How many of a requester's earlier sessions on the tenant a request shows. */
const RECENT = 5;

/** The ticket system to link tickets into (policy tickets.system), and the broker's now. */
function requestContext(ctx: HandlerContext): RequestPageContext {
  return { tickets: ctx.deps.policy.tickets.system, now: ctx.deps.clock.now() };
}

/**
 * POST /console/requests/:id/decide {decision: approve|deny|confirm, comment, csrf}. `confirm` is the
 * API's break-glass confirmation (POST /v1/break-glass/:id/confirm, with the CLI's guards and fresh login).
 */
export async function postConsoleDecision(ctx: HandlerContext): Promise<HandlerResult> {
  const { viewer, form } = await formViewer(ctx);
  const id = requestId(ctx);
  const decision = form.decision;
  if (decision === 'confirm')
    return perform(
      ctx,
      viewer,
      {
        method: 'POST',
        path: `/v1/break-glass/${id}/confirm`,
        body: {},
        returnTo: `/console/requests/${id}`,
        label: `confirm break-glass request ${id.slice(0, 8)}`,
        done: 'Confirmed: the break-glass session has started.',
      },
      undefined,
    );
  if (decision !== 'approve' && decision !== 'deny') throw new InvalidInputError('Choose approve or deny.');
  const comment = (form.comment ?? '').trim();
  // The API's deny takes the reason the requester is shown, and needs one; approve takes an optional comment.
  if (decision === 'deny' && !comment) throw new InvalidInputError('Say why you deny it in the comment.');
  return perform(
    ctx,
    viewer,
    {
      method: 'POST',
      path: `/v1/requests/${id}/${decision}`,
      body: decision === 'deny' ? { reason: comment } : comment ? { comment } : {},
      returnTo: `/console/requests/${id}`,
      label: `${decision} request ${id.slice(0, 8)}`,
      done: decision === 'approve' ? 'Approved: the session has started.' : 'Denied.',
    },
    undefined,
  );
}

/** POST /console/step-up {ceremony, csrf} — continues the action waiting on that passkey ceremony (once). */
export async function postConsoleStepUp(ctx: HandlerContext): Promise<HandlerResult> {
  const { viewer, form } = await formViewer(ctx);
  const action = consoleState(ctx.deps).takeWaiting(viewer.session.id, form.ceremony);
  if (!action?.ceremony)
    return html(
      ctx.deps,
      messagePage('Nothing to continue', 'No action is waiting for a passkey.', viewer, [
        '/console/requests',
        'Requests',
      ]),
      409,
    );
  return perform(ctx, viewer, action, action.ceremony.id);
}

/** Calls the API for an action; a step-up answer starts the re-authentication the broker asked for. */
export async function perform(
  ctx: HandlerContext,
  viewer: Viewer,
  action: PendingAction,
  ceremony: string | undefined,
): Promise<HandlerResult> {
  const answer = await callApi(ctx, viewer.session, action.method, action.path, action.body, ceremony);
  if (answer.status < 300) {
    // The decided request may no longer be readable by its decider (it is not theirs), so the
    // answer's own view of it is the page.
    const session = (answer.body as { session?: SessionView } | null)?.session;
    if (!session) return redirect(action.returnTo);
    return html(
      ctx.deps,
      (action.render ?? 'request') === 'request'
        ? requestPage(viewer, session, false, requestContext(ctx), action.done)
        : sessionPage(viewer, session, null, false, action.done),
    );
  }
  if (answer.status === 401 && answer.error?.code === 'IMP_STEP_UP_REQUIRED') {
    const passkey = answer.error.details?.passkey as
      | { id: string; verification_uri_complete: string; user_code: string }
      | undefined;
    if (answer.error.details?.method === 'passkey' && passkey) {
      const waiting = {
        ...action,
        ceremony: { id: passkey.id, url: passkey.verification_uri_complete, userCode: passkey.user_code },
      };
      consoleState(ctx.deps).wait(viewer.session.id, waiting);
      // The broker refused the confirmation sent (and audited it) and opened a new ceremony: say so.
      const refused = ceremony ? /refused \(([a-z_]+)\)/.exec(answer.error.message)?.[1] : undefined;
      const page = passkeyPage(viewer, {
        label: action.label,
        ceremony: waiting.ceremony,
        ...(ceremony ? { refused: `reauth.passkey.${refused ?? 'refused'}` } : {}),
      });
      return html(ctx.deps, page, 401);
    }
    return startIdpLogin(ctx, { returnTo: action.returnTo, action, sessionId: viewer.session.id });
  }
  return apiErrorPage(ctx, viewer, answer.status, answer.error, action.returnTo);
}

function requestId(ctx: HandlerContext): string {
  const id = ctx.params.id ?? '';
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new InvalidInputError('That is not a request id.');
  return id;
}
