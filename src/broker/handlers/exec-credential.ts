/**
 * POST /v1/sessions/:id/exec-credential — the owner of an active session asks for a credential
 * that only calls this session's proxy (`imp exec` hands it to its child instead of the person's
 * broker token). Issuing one is audited; it expires with the session and is refused once the
 * session ends (see src/broker/exec-tokens.ts).
 */
import { ImpError, NotFoundError } from '../../core/errors.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { issueExecToken } from '../exec-tokens.js';
import { mustHavePrincipal } from '../guards.js';
import { loadSession, sessionAudit } from '../sessions.js';
import { safeText } from './sessions.js';

/** Mints the exec credential of one session for its owner. */
export async function postExecCredential(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const id = ctx.params.id ?? '';
  const session = await loadSession(ctx.deps, id);
  if (!session) throw new NotFoundError(`No session ${safeText(id)} of yours.`);
  await ctx.guard.target(session); // owner only
  if (session.state !== 'active')
    throw new ImpError(
      session.state === 'expired' ? 'IMP_SESSION_EXPIRED' : 'IMP_SESSION_ENDED',
      `Session ${session.id} is ${session.state}; start a new one.`,
      { details: { state: session.state } },
    );
  const now = ctx.deps.clock.now();
  const { token, expiresAt } = await issueExecToken(ctx.deps.keys, ctx.deps.issuer, principal, session, now);
  const expires = new Date(expiresAt).toISOString();
  await ctx.guard.commit((tx) =>
    tx.appendAudit(
      sessionAudit(session, 'session.exec_credential', { expires_at: expires }, actorOf(principal)),
      now,
    ),
  );
  return { status: 201, body: { credential: token, session: session.id, expires_at: expires } };
}
