/**
 * Short ids on the broker: a route's `:id` may be any unambiguous prefix (≥ 4 characters) of a
 * request or session id. The prefix is looked up only among what the caller may act on through this
 * route (the route's own guards, or the read rule), so no answer says whether someone else's id
 * exists: "no match" and "ambiguous" are computed over the caller's own candidates. A whole id takes
 * the old path unchanged, with its refusals naming their rule.
 */
import { InvalidInputError, NotFoundError } from '../core/errors.js';
import { isFullId, isIdPrefix, shortId } from '../core/short-id.js';
import type { SessionRecord, SessionState } from '../store/types.js';
import type { HandlerContext } from './context.js';

/** What a route's id names, and who counts as able to act on it. */
export interface IdLookup {
  /** "request", "session", "break-glass request" (for messages). */
  noun: string;
  /** What the caller would do ("approve", "revoke"). */
  verb: string;
  states?: SessionState[];
  mode?: SessionRecord['mode'];
  /** Default: the route's target guards (`ctx.guard.mayActOn`). */
  may?: (session: SessionRecord) => boolean;
}

/** The whole id the route's `:id` names: itself, or the one candidate its prefix matches. */
export async function resolveId(ctx: HandlerContext, lookup: IdLookup): Promise<string> {
  const typed = ctx.params.id ?? '';
  const prefix = typed.toLowerCase();
  if (isFullId(typed) || !isIdPrefix(prefix)) return typed;
  const now = ctx.deps.clock.now();
  const may = lookup.may ?? ((s: SessionRecord) => ctx.guard.mayActOn(s));
  const rows = await ctx.deps.store.listSessions({
    idPrefix: prefix,
    ...(lookup.states ? { states: lookup.states } : {}),
  });
  const candidates = rows.filter(
    (s) =>
      (lookup.mode === undefined || s.mode === lookup.mode) &&
      // A request past its time is not offered: acting on it would only be refused.
      !(s.state === 'pending' && lookup.states?.includes('pending') && (s.requestExpiresAt ?? 0) <= now) &&
      may(s),
  );
  if (candidates.length === 1) return candidates[0]!.id;
  if (candidates.length === 0)
    throw new NotFoundError(`No ${lookup.noun} you may ${lookup.verb} has an id starting with ${prefix}.`);
  const listed = candidates.slice(0, 10).map(describeCandidate);
  throw new InvalidInputError(
    `${prefix} matches ${candidates.length} ${lookup.noun}s you may ${lookup.verb}: ${listed.join('; ')}${candidates.length > listed.length ? '; …' : ''}. Type more of the id.`,
    {
      candidates: candidates.map((s) => ({
        id: s.id,
        short_id: uniquePrefix(s.id, candidates),
        requester: s.requester.email ?? s.requester.sub,
        tenant: s.tenant,
        environment: s.environment,
        scope: s.scope,
        ticket: s.ticket,
        state: s.state,
      })),
    },
  );
}

function describeCandidate(s: SessionRecord): string {
  return `${shortId(s.id)} (${s.requester.email ?? s.requester.sub} → ${s.tenant}/${s.environment} ${s.scope}, ${s.ticket})`;
}

/** The shortest prefix (≥ 8 characters) that tells `id` apart from the other candidates. */
function uniquePrefix(id: string, all: readonly SessionRecord[]): string {
  for (let n = shortId(id).length; n < id.length; n++) {
    const prefix = id.slice(0, n);
    if (all.every((s) => s.id === id || !s.id.startsWith(prefix))) return prefix;
  }
  return id;
}
