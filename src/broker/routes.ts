/**
 * The broker's whole API on one screen: method, path, guard, handler. `auth: true` means a valid
 * broker token; capability and fresh-login checks live in the handlers, after input validation,
 * so a request that would be refused anyway is refused without asking anyone to log in again.
 */
import type { HandlerContext, HandlerResult } from './context.js';
import { explainPolicy, getTokenStatus } from './handlers/admin.js';
import { approveRequest, denyRequest, listRequests, revokeSession } from './handlers/approvals.js';
import { checkpointNow, exportAudit, listAudit, showAudit } from './handlers/audit.js';
import { confirmBreakGlass, getBreakGlass, postBreakGlass } from './handlers/break-glass.js';
import { getConfig, getHealth, getJwks, getTenants, getWhoami, postLogin } from './handlers/identity.js';
import { listLiveSessions } from './handlers/oversight.js';
import { getReview, reviewBreakGlass } from './handlers/review.js';
import { checkSession } from './handlers/session-check.js';
import { endSession, getSession, getSummary, listSessions, postSession } from './handlers/sessions.js';

/** One route. */
export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  auth: boolean;
  handler: (ctx: HandlerContext) => Promise<HandlerResult>;
}

/**
 * The audited proxy, registered apart because it streams raw bodies:
 *   ANY /v1/sessions/:id/proxy/*   auth: broker token; owner only; scope, path, audit-before-forward (src/broker/proxy.ts)
 */
export const PROXY_PATH = '/v1/sessions/:id/proxy/*';

/** Every route of the broker API. */
export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/healthz', auth: false, handler: getHealth },
  { method: 'GET', path: '/.well-known/jwks.json', auth: false, handler: getJwks },
  { method: 'GET', path: '/v1/config', auth: false, handler: getConfig },
  { method: 'POST', path: '/v1/login', auth: false, handler: postLogin },
  { method: 'GET', path: '/v1/token-status', auth: false, handler: getTokenStatus }, // the session token authenticates
  { method: 'GET', path: '/v1/whoami', auth: true, handler: getWhoami },
  { method: 'GET', path: '/v1/tenants', auth: true, handler: getTenants },
  { method: 'POST', path: '/v1/sessions', auth: true, handler: postSession }, // policy, then fresh login (per session)
  { method: 'POST', path: '/v1/sessions/check', auth: true, handler: checkSession }, // the same checks, no session, no step-up
  { method: 'GET', path: '/v1/sessions', auth: true, handler: listSessions },
  { method: 'GET', path: '/v1/sessions/live', auth: true, handler: listLiveSessions }, // role: revoke, audit, review or supervise; audited as sessions.read
  { method: 'GET', path: '/v1/sessions/:id', auth: true, handler: getSession }, // owner or overseer; ?wait long-polls
  { method: 'POST', path: '/v1/sessions/:id/end', auth: true, handler: endSession }, // owner only
  { method: 'POST', path: '/v1/sessions/:id/revoke', auth: true, handler: revokeSession }, // role: revoke
  { method: 'GET', path: '/v1/sessions/:id/summary', auth: true, handler: getSummary },
  { method: 'GET', path: '/v1/requests', auth: true, handler: listRequests },
  { method: 'POST', path: '/v1/requests/:id/approve', auth: true, handler: approveRequest }, // role: approve, not self, fresh login
  { method: 'POST', path: '/v1/requests/:id/deny', auth: true, handler: denyRequest }, // role: approve, not self
  { method: 'POST', path: '/v1/break-glass', auth: true, handler: postBreakGlass }, // role: break_glass; policy, then fresh login (per session)
  { method: 'GET', path: '/v1/break-glass/:id', auth: true, handler: getBreakGlass }, // role: break_glass_confirm, not self, in window
  { method: 'POST', path: '/v1/break-glass/:id/confirm', auth: true, handler: confirmBreakGlass }, // as above + fresh login; alerts after commit
  { method: 'POST', path: '/v1/break-glass/:id/review', auth: true, handler: reviewBreakGlass }, // role: review; neither requester nor confirmer; fresh login
  { method: 'GET', path: '/v1/audit/events', auth: true, handler: listAudit }, // role: audit; audited as audit.read
  { method: 'GET', path: '/v1/audit/events/:ref', auth: true, handler: showAudit }, // role: audit
  { method: 'GET', path: '/v1/audit/export', auth: true, handler: exportAudit }, // role: audit; audited as audit.export
  { method: 'POST', path: '/v1/audit/checkpoint', auth: true, handler: checkpointNow }, // role: audit
  { method: 'GET', path: '/v1/policy/explain', auth: true, handler: explainPolicy }, // role: audit
  { method: 'GET', path: '/v1/review', auth: true, handler: getReview }, // role: audit or review; audited as audit.read
];
