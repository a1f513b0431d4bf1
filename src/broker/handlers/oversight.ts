/**
 * GET /v1/sessions/live — security staff see who is acting as which tenant right now, across people,
 * so a revocation starts from a list rather than from reading the audit log. Every read is audited
 * (`sessions.read`, with the filters) because the list itself says who works on which customer.
 * Who may: the route's capability field (supervise, revoke, audit or review; rule role.supervise).
 */
import { InvalidInputError } from '../../core/errors.js';
import type { SessionRecord } from '../../store/types.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { mustHavePrincipal } from '../guards.js';
import { loadSession, sessionView } from '../sessions.js';

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const LIVE_STATES: SessionRecord['state'][] = ['active', 'pending'];

interface LiveFilters {
  tenant?: string;
  environment?: string;
  user?: string;
  mode?: SessionRecord['mode'];
  state?: 'active' | 'pending';
}

/** GET /v1/sessions/live?tenant=&environment=&user=&mode=&state= */
export async function listLiveSessions(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const filters = parseFilters(ctx.query);
  // Fail closed: the read is on the record before anything is answered.
  await deps.store.transaction((tx) =>
    tx.appendAudit(
      {
        type: 'sessions.read',
        actor: actorOf(principal),
        tenant: filters.tenant ?? null,
        environment: filters.environment ?? null,
        data: { filters: { ...filters }, request_id: ctx.requestId },
      },
      deps.clock.now(),
    ),
  );
  const rows = await deps.store.listSessions({
    states: filters.state ? [filters.state] : LIVE_STATES,
    ...(filters.tenant ? { tenant: filters.tenant } : {}),
  });
  // Re-read the ones whose time is up, so a session that expired a moment ago is not shown as live.
  const now = deps.clock.now();
  const fresh = await Promise.all(
    rows.map((row) =>
      (row.state === 'active' && (row.expiresAt ?? 0) <= now) ||
      (row.state === 'pending' && (row.requestExpiresAt ?? 0) <= now)
        ? loadSession(deps, row.id)
        : row,
    ),
  );
  const sessions = fresh
    .filter((s): s is SessionRecord => s !== null && LIVE_STATES.includes(s.state))
    .filter((s) => matches(s, filters))
    .sort((a, b) => a.createdAt - b.createdAt);
  return { body: { sessions: sessions.map(sessionView) } };
}

function matches(session: SessionRecord, filters: LiveFilters): boolean {
  if (filters.environment && session.environment !== filters.environment) return false;
  if (filters.mode && session.mode !== filters.mode) return false;
  if (filters.user) {
    const user = filters.user.toLowerCase();
    if (session.requester.sub.toLowerCase() !== user && session.requester.email?.toLowerCase() !== user)
      return false;
  }
  return true;
}

function parseFilters(query: Record<string, string | undefined>): LiveFilters {
  const filters: LiveFilters = {};
  for (const key of Object.keys(query)) {
    if (!['tenant', 'environment', 'user', 'mode', 'state'].includes(key))
      throw new InvalidInputError(
        `Unknown filter ${key.slice(0, 40)}: use tenant, environment, user, mode or state.`,
      );
  }
  const { tenant, environment, user, mode, state } = query;
  if (tenant !== undefined) {
    if (!ID.test(tenant)) throw new InvalidInputError('tenant must be a tenant id.');
    filters.tenant = tenant;
  }
  if (environment !== undefined) {
    if (!ID.test(environment)) throw new InvalidInputError('environment must be an environment name.');
    filters.environment = environment;
  }
  if (user !== undefined) {
    if (user.length === 0 || user.length > 254 || /[\u0000-\u001f\u007f]/.test(user))
      throw new InvalidInputError('user must be an email address or subject.');
    filters.user = user;
  }
  if (mode !== undefined) {
    if (mode !== 'standard' && mode !== 'break_glass')
      throw new InvalidInputError('mode must be "standard" or "break_glass".');
    filters.mode = mode;
  }
  if (state !== undefined) {
    if (state !== 'active' && state !== 'pending')
      throw new InvalidInputError('state must be "active" or "pending".');
    filters.state = state;
  }
  return filters;
}
