/**
 * GET /v1/review?since=30d — the access review for auditors and reviewers (`imp review`). Reading it
 * is itself audited as `audit.read` (fail-closed: if the read can't be recorded, nothing is returned).
 */
import { parseDuration } from '../../core/duration.js';
import { ForbiddenError, ImpError, InvalidInputError } from '../../core/errors.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { mustHavePrincipal } from '../guards.js';
import { buildReviewReport } from '../review-report.js';

const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z)?$/;
const MAX_PERIOD_SECONDS = 400 * 86400;

/** `since` as a duration back from now (30d) or a UTC date/timestamp; default 30 days. */
export function parseSince(value: string | undefined, nowMs: number): number {
  if (value === undefined || value === '') return nowMs - 30 * 86400 * 1000;
  if (ISO.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms) && ms <= nowMs) return ms;
  } else {
    try {
      const seconds = parseDuration(value, 'since');
      if (seconds <= MAX_PERIOD_SECONDS) return nowMs - seconds * 1000;
    } catch (error) {
      if (!(error instanceof ImpError)) throw error;
    }
  }
  throw new InvalidInputError(
    'since must be a duration of at most 400d (such as 30d) or a past UTC date such as 2026-11-01.',
  );
}

/** GET /v1/review — roles with audit or review only. */
export async function getReview(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const now = deps.clock.now();
  if (!principal.roles.some((role) => role.audit || role.review)) {
    await deps.store.transaction((tx) =>
      tx.appendAudit(
        {
          type: 'access.denied',
          actor: actorOf(principal),
          data: { action: 'read the access review', rule: 'role.audit', request_id: ctx.requestId },
        },
        now,
      ),
    );
    throw new ForbiddenError(
      'Denied by rule role.audit: the access review is for roles with audit or review.',
      'role.audit',
    );
  }
  const since = parseSince(ctx.query.since, now);
  const [sessions, events, logins] = await Promise.all([
    deps.store.listSessions({}),
    deps.store.readAudit({ sinceTs: new Date(since).toISOString() }),
    deps.store.listLatestLogins(),
  ]);
  const report = buildReviewReport({
    policy: deps.policy,
    issuer: deps.issuer,
    now,
    since,
    sessions,
    events,
    logins,
  });
  // Recorded after computing, so this read does not count as the reader's own role use in it.
  await deps.store.transaction((tx) =>
    tx.appendAudit(
      {
        type: 'audit.read',
        actor: actorOf(principal),
        data: { report: 'review', since: report.since, request_id: ctx.requestId },
      },
      deps.clock.now(),
    ),
  );
  return { body: report };
}
