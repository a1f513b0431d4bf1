/**
 * The requester's recent access to a tenant, for whoever decides their pending request: their last
 * sessions and requests on that tenant, newest first, read from the store outside any write
 * transaction (Store.listSessions), so a Requests page does not queue behind the writer.
 */
import type { PendingRequestView, RecentAccessView } from '../core/api.js';
import type { SessionRecord } from '../store/types.js';
import type { BrokerDeps } from './context.js';
import { sessionView } from './sessions.js';

/** At most this many earlier sessions per request (`recent=N` is capped here). */
export const MAX_RECENT_ACCESS = 20;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** One earlier session as the decider sees it; an active session past its expiry reads as expired. */
export function recentAccessView(session: SessionRecord, nowMs: number): RecentAccessView {
  const lapsed = session.state === 'active' && session.expiresAt !== null && session.expiresAt <= nowMs;
  return {
    id: session.id,
    state: lapsed ? 'expired' : session.state,
    mode: session.mode,
    environment: session.environment,
    scope: session.scope,
    ticket: session.ticket,
    created_at: new Date(session.createdAt).toISOString(),
    started_at: iso(session.startedAt),
    ended_at: iso(session.endedAt ?? (lapsed ? session.expiresAt : null)),
    expires_at: iso(session.expiresAt),
    decided_by: session.decidedBy ? { sub: session.decidedBy.sub, email: session.decidedBy.email } : null,
  };
}

/** The requester's `limit` newest other sessions on the request's tenant (same issuer and subject). */
export async function recentAccess(
  deps: Pick<BrokerDeps, 'store' | 'clock'>,
  request: SessionRecord,
  limit: number,
): Promise<RecentAccessView[]> {
  const rows = await deps.store.listSessions({
    requesterIss: request.requester.iss,
    requesterSub: request.requester.sub,
    tenant: request.tenant,
    newest: true,
    limit: limit + 1,
  });
  const now = deps.clock.now();
  return rows
    .filter((row) => row.id !== request.id)
    .slice(0, limit)
    .map((row) => recentAccessView(row, now));
}

/** Requests as listed, each with its requester's recent access when `limit` > 0. */
export async function withRecentAccess(
  deps: Pick<BrokerDeps, 'store' | 'clock'>,
  requests: SessionRecord[],
  limit: number,
): Promise<PendingRequestView[]> {
  if (limit <= 0) return requests.map(sessionView);
  return Promise.all(
    requests.map(async (request) => ({
      ...sessionView(request),
      recent_access: await recentAccess(deps, request, limit),
    })),
  );
}
