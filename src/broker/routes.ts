/**
 * The broker's whole API on one screen: method, path, guards, handler. The guards are fields, and
 * shared code enforces them (./guards.ts): `auth` and `capability` before the handler; with
 * `checkedOn: 'target'`, capability, `notSelf` and `owner` on the session or request the handler
 * loads (after input validation); `freshLogin` last of all, so a request refused anyway is refused
 * without asking anyone to log in again. A handler that skips a declared guard cannot commit.
 */
import { getConsoleAsset } from './console/assets.js';
import { getConsoleAudit, getConsoleAuditExport } from './console/audit-page.js';
import {
  getConsoleCallback,
  getConsoleHome,
  getConsoleLogin,
  getConsoleRequest,
  getConsoleRequests,
  postConsoleDecision,
  postConsoleLogout,
  postConsoleStepUp,
} from './console/handlers.js';
import { getConsoleReview } from './console/review-page.js';
import {
  getConsoleSession,
  getConsoleSessionCast,
  getConsoleSessionLive,
  getConsoleSessions,
  postConsoleBreakGlassReview,
  postConsoleRevoke,
} from './console/session-handlers.js';
import { getConsoleWatch, getConsoleWatchStream } from './console/watch-handlers.js';
import type { HandlerContext, HandlerResult } from './context.js';
import type { RouteGuards } from './guards.js';
import { explainPolicy, getTokenStatus } from './handlers/admin.js';
import { approveRequest, denyRequest, listRequests, revokeSession } from './handlers/approvals.js';
import { checkpointNow, exportAudit, listAudit, showAudit } from './handlers/audit.js';
import { getCheckpoint, getReceipt } from './handlers/audit-tree.js';
import { confirmBreakGlass, getBreakGlass, postBreakGlass } from './handlers/break-glass.js';
import { postExecCredential } from './handlers/exec-credential.js';
import { getConfig, getHealth, getJwks, getTenants, getWhoami, postLogin } from './handlers/identity.js';
import { postTokenExchange } from './handlers/machines.js';
import { listLiveSessions } from './handlers/oversight.js';
import {
  addPasskey,
  getCeremony,
  getCeremonyOptions,
  getPasskeyAsset,
  getPasskeyPage,
  listPasskeys,
  postCeremony,
  removePasskey,
  resetPasskeys,
} from './handlers/passkeys.js';
import { getRecording, postRecordingChunk } from './handlers/recording.js';
import { getReview, reviewBreakGlass } from './handlers/review.js';
import { checkSession } from './handlers/session-check.js';
import { endSession, getSession, getSummary, listSessions, postSession } from './handlers/sessions.js';
import { terminateSession, watchSession } from './handlers/supervision.js';

/** One route: where, who may call it, and what answers. */
export interface Route extends RouteGuards {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  handler: (ctx: HandlerContext) => Promise<HandlerResult>;
}

/**
 * The audited proxy, registered apart because it streams raw bodies:
 *   ANY /v1/sessions/:id/proxy/*   auth: broker token; owner only; scope, path, audit-before-forward (src/broker/proxy.ts)
 */
export const PROXY_PATH = '/v1/sessions/:id/proxy/*';

/** Every route of the broker API. */
// biome-ignore format: one route per line is the point of this table
export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/healthz', action: 'check health', auth: false, handler: getHealth },
  { method: 'GET', path: '/.well-known/jwks.json', action: 'read the keys', auth: false, handler: getJwks },
  { method: 'GET', path: '/v1/config', action: 'read the config', auth: false, handler: getConfig },
  { method: 'POST', path: '/v1/login', action: 'log in', auth: false, handler: postLogin },
  // The session token is the credential here, checked by the handler.
  { method: 'GET', path: '/v1/token-status', action: 'check a session token', auth: false, handler: getTokenStatus },
  // RFC 8693 token exchange / RFC 7523 JWT bearer: a machine identity's workload token → one read-only session.
  { method: 'POST', path: '/v1/token', action: 'exchange a machine identity token', auth: false, handler: postTokenExchange },
  { method: 'GET', path: '/v1/whoami', action: 'say who is logged in', auth: true, machines: true, handler: getWhoami },
  { method: 'GET', path: '/v1/tenants', action: 'list tenants', auth: true, handler: getTenants },
  // Who may open what is the policy's decision (input → policy → conflicts), then the per-session login.
  { method: 'POST', path: '/v1/sessions', action: 'open a session', auth: true, freshLogin: 'per_session', handler: postSession },
  // The same checks without opening anything or asking for a fresh login (the CLI's banner waits for it).
  { method: 'POST', path: '/v1/sessions/check', action: 'check a session request', auth: true, handler: checkSession },
  { method: 'GET', path: '/v1/sessions', action: 'list sessions', auth: true, handler: listSessions },
  // Everyone's live sessions for security staff; each listing is audited (sessions.read) by the handler.
  { method: 'GET', path: '/v1/sessions/live', action: "list everyone's live sessions", auth: true, capability: ['supervise', 'revoke', 'audit', 'review'], handler: listLiveSessions },
  // Visible to its owner and overseers, 404 to anyone else; ?wait long-polls.
  { method: 'GET', path: '/v1/sessions/:id', action: 'read a session', auth: true, machines: true, handler: getSession },
  { method: 'POST', path: '/v1/sessions/:id/end', action: 'end', auth: true, machines: true, checkedOn: 'target', owner: true, handler: endSession },
  { method: 'POST', path: '/v1/sessions/:id/revoke', action: 'revoke', auth: true, checkedOn: 'target', capability: 'revoke', freshLogin: 'passkey', handler: revokeSession },
  { method: 'GET', path: '/v1/sessions/:id/summary', action: 'read a summary', auth: true, machines: true, handler: getSummary },
  // The session's owner uploads its recording: in order, idempotent by chunk number, bounded; each chunk's SHA-256 audited.
  { method: 'POST', path: '/v1/sessions/:id/recording', action: 'upload a recording', auth: true, machines: true, checkedOn: 'target', owner: true, handler: postRecordingChunk },
  // A live session to a supervisor as Server-Sent Events (WatchEvents in src/core/api.ts); joining and leaving audited.
  { method: 'GET', path: '/v1/sessions/:id/watch', action: 'watch a session', auth: true, checkedOn: 'target', capability: 'supervise', notSelf: ['requester'], handler: watchSession },
  // The watching supervisor ends it on the spot: a revocation by them (stopping never waits for the IdP).
  { method: 'POST', path: '/v1/sessions/:id/terminate', action: 'terminate a watched session', auth: true, checkedOn: 'target', capability: 'supervise', notSelf: ['requester'], freshLogin: 'passkey', handler: terminateSession },
  // The owner, or a role with audit or review, replays it (decided on the session by decideRecordingRead); every read audited.
  { method: 'GET', path: '/v1/sessions/:id/recording', action: 'replay a recording', auth: true, handler: getRecording },
  // A credential for this session's proxy only, for `imp exec`'s child; the session must be active.
  { method: 'POST', path: '/v1/sessions/:id/exec-credential', action: 'mint an exec credential', auth: true, machines: true, checkedOn: 'target', owner: true, handler: postExecCredential },
  { method: 'GET', path: '/v1/requests', action: 'list requests', auth: true, handler: listRequests },
  { method: 'POST', path: '/v1/requests/:id/approve', action: 'approve', auth: true, checkedOn: 'target', capability: 'approve', notSelf: ['requester'], freshLogin: 'max_age', handler: approveRequest },
  { method: 'POST', path: '/v1/requests/:id/deny', action: 'deny', auth: true, checkedOn: 'target', capability: 'approve', notSelf: ['requester'], freshLogin: 'passkey', handler: denyRequest },
  // Role break_glass is the policy's decision for that tenant (after input), then the per-session login.
  { method: 'POST', path: '/v1/break-glass', action: 'start break-glass', auth: true, freshLogin: 'per_session', handler: postBreakGlass },
  { method: 'GET', path: '/v1/break-glass/:id', action: 'confirm', auth: true, checkedOn: 'target', capability: 'breakGlassConfirm', notSelf: ['requester'], refusedAs: 'breakglass.refused', handler: getBreakGlass },
  // Alerts go out after the confirmation commits.
  { method: 'POST', path: '/v1/break-glass/:id/confirm', action: 'confirm', auth: true, checkedOn: 'target', capability: 'breakGlassConfirm', notSelf: ['requester'], freshLogin: 'max_age', refusedAs: 'breakglass.refused', handler: confirmBreakGlass },
  { method: 'POST', path: '/v1/break-glass/:id/review', action: 'review', auth: true, checkedOn: 'target', capability: 'review', notSelf: ['requester', 'confirmer'], freshLogin: 'max_age', handler: reviewBreakGlass },
  // Reading the log is itself audited (audit.read / audit.export) by the handlers.
  { method: 'GET', path: '/v1/audit/events', action: 'read the audit log', auth: true, capability: 'audit', handler: listAudit },
  { method: 'GET', path: '/v1/audit/events/:ref', action: 'read the audit log', auth: true, capability: 'audit', handler: showAudit },
  { method: 'GET', path: '/v1/audit/export', action: 'export the audit log', auth: true, capability: 'audit', handler: exportAudit },
  { method: 'POST', path: '/v1/audit/checkpoint', action: 'checkpoint the audit log', auth: true, capability: 'audit', handler: checkpointNow },
  // Public like any transparency log's head: the newest checkpoint note with its witness cosignatures.
  { method: 'GET', path: '/v1/audit/checkpoint', action: 'read the audit checkpoint', auth: false, handler: getCheckpoint },
  { method: 'GET', path: '/v1/audit/receipt/:ref', action: 'issue an audit receipt', auth: true, capability: 'audit', handler: getReceipt },
  { method: 'GET', path: '/v1/policy/explain', action: 'explain the policy', auth: true, capability: 'audit', handler: explainPolicy },
  { method: 'GET', path: '/v1/review', action: 'read the access review', auth: true, capability: ['audit', 'review'], handler: getReview },
  // The passkey ceremony page and its calls: no broker token (a browser has none); the ceremony id is
  // the capability, and an answer is verified against the person's own passkeys only.
  { method: 'GET', path: '/passkey/:id', action: 'show a passkey page', auth: false, handler: getPasskeyPage },
  { method: 'GET', path: '/passkey/assets/:name', action: 'read a page asset', auth: false, handler: getPasskeyAsset },
  { method: 'GET', path: '/v1/ceremonies/:id/options', action: 'start a passkey ceremony', auth: false, handler: getCeremonyOptions },
  { method: 'POST', path: '/v1/ceremonies/:id', action: 'answer a passkey ceremony', auth: false, handler: postCeremony },
  { method: 'GET', path: '/v1/ceremonies/:id', action: 'wait for a passkey ceremony', auth: true, handler: getCeremony },
  { method: 'GET', path: '/v1/passkeys', action: 'list passkeys', auth: true, handler: listPasskeys },
  // A fresh IdP login, and a passkey already held when there is one (the handler names the method).
  { method: 'POST', path: '/v1/passkeys', action: 'add a passkey', auth: true, freshLogin: 'max_age', handler: addPasskey },
  { method: 'DELETE', path: '/v1/passkeys/:id', action: 'remove a passkey', auth: true, freshLogin: 'max_age', handler: removePasskey },
  // Never one's own (handler); a fresh login and the resetter's own passkey.
  { method: 'POST', path: '/v1/passkeys/reset', action: 'reset passkeys', auth: true, capability: 'passkeyReset', freshLogin: 'max_age', handler: resetPasskeys },
  // The web console (src/broker/console/): a browser session cookie instead of a broker token. Pages read
  // and act only by calling the routes above in-process with the viewer's broker token, so their guards
  // and audit events apply unchanged; form POSTs also need same origin, a live session and the form's
  // CSRF token (console.origin / console.session / console.csrf, each refusal audited).
  { method: 'GET', path: '/console', action: 'open the console', auth: false, handler: getConsoleHome },
  { method: 'GET', path: '/console/', action: 'open the console', auth: false, handler: getConsoleHome },
  { method: 'GET', path: '/console/assets/:name', action: 'read a console asset', auth: false, handler: getConsoleAsset },
  { method: 'GET', path: '/console/login', action: 'log in to the console', auth: false, handler: getConsoleLogin },
  { method: 'GET', path: '/console/callback', action: 'finish a console login', auth: false, handler: getConsoleCallback },
  { method: 'POST', path: '/console/logout', action: 'log out of the console', auth: false, handler: postConsoleLogout },
  { method: 'GET', path: '/console/requests', action: 'list requests in the console', auth: false, handler: getConsoleRequests },
  { method: 'GET', path: '/console/requests/:id', action: 'show a request in the console', auth: false, handler: getConsoleRequest },
  { method: 'POST', path: '/console/requests/:id/decide', action: 'decide a request in the console', auth: false, handler: postConsoleDecision },
  { method: 'GET', path: '/console/sessions', action: 'list sessions in the console', auth: false, handler: getConsoleSessions },
  { method: 'GET', path: '/console/sessions/:id', action: 'show a session in the console', auth: false, handler: getConsoleSession },
  { method: 'GET', path: '/console/sessions/:id/cast', action: 'replay a recording in the console', auth: false, handler: getConsoleSessionCast },
  { method: 'GET', path: '/console/sessions/:id/live', action: 'follow a session in the console', auth: false, handler: getConsoleSessionLive },
  // The API's watch route run in-process (deps.route) with the viewer's token: its guards, audit and stream.
  { method: 'GET', path: '/console/sessions/:id/watch', action: 'watch a session in the console', auth: false, handler: getConsoleWatch },
  { method: 'GET', path: '/console/sessions/:id/watch/stream', action: 'watch a session in the console', auth: false, handler: getConsoleWatchStream },
  { method: 'POST', path: '/console/sessions/:id/revoke', action: 'revoke a session in the console', auth: false, handler: postConsoleRevoke },
  { method: 'POST', path: '/console/sessions/:id/review', action: 'review a break-glass session in the console', auth: false, handler: postConsoleBreakGlassReview },
  { method: 'GET', path: '/console/audit', action: 'search the audit log in the console', auth: false, handler: getConsoleAudit },
  { method: 'GET', path: '/console/audit/export', action: 'export the audit log from the console', auth: false, handler: getConsoleAuditExport },
  { method: 'GET', path: '/console/review', action: 'read the access review in the console', auth: false, handler: getConsoleReview },
  { method: 'POST', path: '/console/step-up', action: 'continue after a passkey confirmation', auth: false, handler: postConsoleStepUp },
];
