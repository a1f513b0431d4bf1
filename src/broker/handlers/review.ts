/**
 * Reviews after the fact. GET /v1/review?since=30d — the access review for auditors and reviewers
 * (`imp review`); reading it is itself audited as `audit.read` (fail-closed: if the read can't be
 * recorded, nothing is returned). POST /v1/break-glass/:id/review — a third person's verdict on a
 * break-glass session.
 */
import { parseDuration } from '../../core/duration.js';
import { ConflictError, ImpError, InvalidInputError, NotFoundError } from '../../core/errors.js';
import { hasControlCharacters } from '../../core/escape.js';
import type { SessionReview } from '../../store/types.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { mustHavePrincipal } from '../guards.js';
import { buildReviewReport } from '../review-report.js';
import { decisionOperation, describeDecision, loadSession, sessionAudit, sessionView } from '../sessions.js';
import { resolveId } from '../short-ids.js';
import { safeText } from './sessions.js';

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
  const since = parseSince(ctx.query.since, now);
  const unusedDays = ctx.query.unused_days === undefined ? 30 : Number(ctx.query.unused_days);
  if (!Number.isInteger(unusedDays) || unusedDays < 1 || unusedDays > 400)
    throw new InvalidInputError('unused_days must be a whole number of days from 1 to 400.');
  await deps.store.settle();
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
    unusedDays,
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

/** POST /v1/break-glass/:id/review {outcome, notes} — a third person's verdict, recorded once. */
export async function reviewBreakGlass(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const body = (ctx.body ?? {}) as Record<string, unknown>;
  if (body.outcome !== 'justified' && body.outcome !== 'unjustified')
    throw new InvalidInputError('outcome must be "justified" or "unjustified".');
  const notes = typeof body.notes === 'string' ? body.notes.trim() : '';
  if (notes.length === 0 || notes.length > 2000 || hasControlCharacters(notes))
    throw new InvalidInputError('notes must be text of 1 to 2000 characters without control characters.');
  const id = await resolveId(ctx, { noun: 'break-glass session', verb: 'review', mode: 'break_glass' });
  const session = await loadSession(deps, id);
  if (session?.mode !== 'break_glass')
    throw new NotFoundError(`No break-glass session ${safeText(id)?.slice(0, 64)}.`);
  await ctx.guard.target(session);
  if (!session.reviewRequired)
    throw new ConflictError(
      `Break-glass request ${session.id} was never confirmed (${session.state}): nothing to review.`,
    );
  if (session.state === 'active')
    throw new ConflictError(
      `Break-glass session ${session.id} is still active; review it once it has ended.`,
    );
  if (session.review) throw new ConflictError(`Break-glass session ${session.id} was already reviewed.`);
  const reauth = await ctx.guard.freshLogin({
    operation: decisionOperation('breakglass.review', session, { outcome: body.outcome, notes }),
    description: `${describeDecision('Review BREAK-GLASS of', session)}: ${body.outcome}`,
  });
  const now = deps.clock.now();
  const review: SessionReview = {
    by: { iss: principal.iss, sub: principal.sub, email: principal.email },
    at: now,
    outcome: body.outcome,
    notes,
  };
  await ctx.guard.commit(async (tx) => {
    if (!(await tx.recordReview(session.id, review)))
      throw new ConflictError(`Break-glass session ${session.id} was reviewed meanwhile.`);
    await tx.appendAudit(
      sessionAudit(
        session,
        'breakglass.reviewed',
        { outcome: review.outcome, notes, reauth },
        actorOf(principal),
      ),
      now,
    );
  });
  return { body: { session: sessionView({ ...session, review }) } };
}
