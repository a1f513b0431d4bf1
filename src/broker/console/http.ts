/**
 * What every console handler shares: the page headers (strict CSP), who is looking (cookie →
 * in-memory session), the checks on a form POST (origin, session, CSRF token — each refusal audited
 * through the one `refuse()`), and calls into the broker's own API with the viewer's broker token,
 * so every rule and audit event is exactly the CLI's.
 */

import { type CodeFlow, createCodeFlow } from '../../auth/code-flow.js';
import { createIdTokenVerifier, type IdTokenVerifier } from '../../auth/id-token.js';
import type { BrokerDeps, HandlerContext, HandlerResult, InnerAnswer } from '../context.js';
import { refuse } from '../guards.js';
import { hopPage, messagePage, type Viewer } from './pages.js';
import { type ConsoleSession, consoleState, cookieNames, readCookie, sameToken, setCookie } from './state.js';

// The same tolerance the CLI's login exchange allows (src/broker/start.ts).
const ID_TOKEN_LEEWAY_SECONDS = 120;

/** What a page needs beyond the strict default. */
export interface PageNeeds {
  /**
   * The page runs asciinema-player, whose terminal is WebAssembly: `'wasm-unsafe-eval'` lets the page
   * compile WebAssembly (CSP3) — it allows neither `eval()` of JavaScript nor inline script, and the
   * module itself still comes from our own bundle ('self'). Only pages that show a player get it.
   */
  player?: boolean;
}

/** Headers of every console page and asset: this origin only, never framed; forms may go to the IdP (step-up). */
export function pageHeaders(deps: BrokerDeps, needs: PageNeeds = {}): Record<string, string> {
  const idp = new URL(deps.policy.identity.issuer).origin;
  const scripts = needs.player ? "'self' 'wasm-unsafe-eval'" : "'self'";
  return {
    'content-security-policy': `default-src 'none'; script-src ${scripts}; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self' ${idp}; frame-ancestors 'none'`,
    'x-frame-options': 'DENY',
    // same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` on our own form
    // POSTs, and the origin check needs the real one. Nothing leaks to other origins either way.
    'referrer-policy': 'same-origin',
    'x-content-type-options': 'nosniff',
    'cross-origin-opener-policy': 'same-origin',
  };
}

/** An HTML answer with the console's headers. */
export function html(
  deps: BrokerDeps,
  body: string,
  status = 200,
  extra: Record<string, string | string[]> = {},
  needs: PageNeeds = {},
): HandlerResult {
  return {
    status,
    body,
    headers: { ...pageHeaders(deps, needs), 'content-type': 'text/html; charset=utf-8', ...extra },
  };
}

/** A 303 redirect. */
export function redirect(location: string, extra: Record<string, string | string[]> = {}): HandlerResult {
  return { status: 303, body: '', headers: { location, ...extra } };
}

/** The logged-in viewer of this request, or null. */
export function viewerOf(ctx: HandlerContext): Viewer | null {
  const { session } = cookieNames(ctx.deps);
  const found = consoleState(ctx.deps).session(readCookie(ctx.headers.cookie, session));
  return found ? { session: found } : null;
}

/** A console path to come back to: only our own pages (no open redirect). */
export function safeReturn(value: unknown): string {
  return typeof value === 'string' &&
    /^\/console\/[A-Za-z0-9/_\-.?=&%]*$/.test(value) &&
    !value.includes('//')
    ? value
    : '/console/requests';
}

/** For a page read without a session: one same-site hop to the login (which returns here). */
export function toLogin(ctx: HandlerContext, returnTo: string): HandlerResult {
  return html(ctx.deps, hopPage(`/console/login?return=${encodeURIComponent(safeReturn(returnTo))}`));
}

/** A form POST: same origin, a live session, the session's CSRF token. Each refusal is audited. */
export async function formViewer(
  ctx: HandlerContext,
): Promise<{ viewer: Viewer; form: Record<string, string> }> {
  const origin = header(ctx, 'origin');
  const ours = new URL(ctx.deps.issuer).origin;
  const action = `console ${ctx.params.id ? 'action' : 'form'}`;
  if (origin !== undefined && origin !== ours)
    await refuse(ctx, {
      rule: 'console.origin',
      message: `Refused by rule console.origin: this form was sent from ${origin.slice(0, 100)}, not from the console.`,
      data: { action, origin: origin.slice(0, 200), ip: ctx.ip },
    });
  const viewer = viewerOf(ctx);
  if (!viewer)
    await refuse(ctx, {
      rule: 'console.session',
      message:
        'Refused by rule console.session: you are not logged in to the console (or your session timed out). Log in and try again.',
      data: { action, ip: ctx.ip },
    });
  const form = (ctx.body ?? {}) as Record<string, string>;
  const session = (viewer as Viewer).session;
  if (!sameToken(session.csrf, form.csrf))
    await refuse(ctx, {
      rule: 'console.csrf',
      message:
        'Refused by rule console.csrf: this form did not come from your console page. Reload the page and try again.',
      about: {
        actor: {
          iss: ctx.deps.policy.identity.issuer,
          sub: session.user.sub,
          email: session.user.email,
          roles: session.user.roles,
        },
      },
      data: { action, ip: ctx.ip },
    });
  return { viewer: viewer as Viewer, form };
}

function header(ctx: HandlerContext, name: string): string | undefined {
  const value = ctx.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The error body of an API answer. */
export interface ApiError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** Calls the broker's API as the viewer. */
export async function callApi(
  ctx: HandlerContext,
  session: ConsoleSession,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  stepUp?: string,
): Promise<InnerAnswer & { error: ApiError | null }> {
  const api = ctx.deps.api;
  if (!api) throw new Error('The broker API is not wired for the console.');
  const answer = await api({
    method,
    path,
    token: session.token,
    ip: ctx.ip,
    ...(body !== undefined ? { body } : {}),
    ...(stepUp ? { stepUp } : {}),
  });
  const error = answer.status >= 400 ? ((answer.body as { error?: ApiError } | null)?.error ?? null) : null;
  // The broker token ended (expired, or its login was revoked): the console session goes with it.
  if (answer.status === 401 && error?.code === 'IMP_AUTH_REQUIRED') consoleState(ctx.deps).drop(session.id);
  return { ...answer, error };
}

/** An API refusal shown as a page with the same status. */
export function apiErrorPage(
  ctx: HandlerContext,
  viewer: Viewer,
  status: number,
  error: ApiError | null,
  back: string,
): HandlerResult {
  if (status === 401 && error?.code === 'IMP_AUTH_REQUIRED') return toLogin(ctx, back);
  const message = error?.message ?? `The broker answered HTTP ${status}.`;
  return html(
    ctx.deps,
    messagePage(status === 403 ? 'Refused' : 'That did not work', message, viewer, [back, 'Back']),
    status,
  );
}

const flows = new WeakMap<BrokerDeps, { flow: CodeFlow; verify: IdTokenVerifier }>();

/** The console's OIDC client and its ID-token check (audience = the console's client id). */
export function consoleOidc(deps: BrokerDeps): { flow: CodeFlow; verify: IdTokenVerifier } {
  let found = flows.get(deps);
  if (!found) {
    const { identity, console: settings } = deps.policy;
    const secret = settings.clientSecretEnv ? (process.env[settings.clientSecretEnv] ?? null) : null;
    found = {
      flow: createCodeFlow({
        issuer: identity.issuer,
        clientId: settings.clientId,
        clientSecret: secret,
        redirectUri: `${deps.issuer.replace(/\/+$/, '')}/console/callback`,
        fetch: deps.fetch,
      }),
      verify: createIdTokenVerifier({
        issuer: identity.issuer,
        clientId: settings.clientId,
        groupsClaim: identity.groupsClaim,
        personClaim: identity.personClaim,
        clock: deps.clock,
        leewaySeconds: ID_TOKEN_LEEWAY_SECONDS,
        fetch: deps.fetch,
      }),
    };
    flows.set(deps, found);
  }
  return found;
}

/** The Set-Cookie of a new session, and the one that clears the login attempt. */
export function sessionCookies(deps: BrokerDeps, sessionId: string): string[] {
  const names = cookieNames(deps);
  return [
    setCookie(deps, names.session, sessionId, { sameSite: 'Strict' }),
    setCookie(deps, names.login, '', { sameSite: 'Lax', maxAge: 0 }),
  ];
}

/** An error on a console route, as a page (the API's JSON error shape is for API clients). */
export function consoleErrorPage(
  deps: BrokerDeps,
  status: number,
  message: string,
): { headers: Record<string, string>; body: string } {
  return {
    headers: { ...pageHeaders(deps), 'content-type': 'text/html; charset=utf-8' },
    body: messagePage(status === 403 ? 'Refused' : 'That did not work', message, undefined, [
      '/console/requests',
      'Back to the console',
    ]),
  };
}
