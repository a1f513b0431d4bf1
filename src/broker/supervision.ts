/**
 * What the broker decides about supervision (policy `supervision:`): whether a session must be
 * watched, who watches it now — read from the audit log's supervision.joined / .left events, so
 * every replica agrees — and what the proxy does while nobody does: waits for the first supervisor
 * (rule supervision.waiting), pauses after the last one left (supervision.paused), or — with
 * `on_leave: end` — the session is ended when the last one leaves.
 */
import { type SupervisionTerms, supervisionRequired } from '../core/policy/supervision.js';
import type { Policy } from '../core/policy/types.js';
import type { SessionRecord } from '../store/types.js';
import type { BrokerDeps } from './context.js';
import { sessionAudit, sessionChanges } from './sessions.js';

type SessionFacts = Pick<SessionRecord, 'tenant' | 'environment' | 'scope'>;

/** Must this session be watched? */
export function mustBeSupervised(policy: Policy, session: SessionFacts): boolean {
  const tier = policy.tenants.find((t) => t.id === session.tenant)?.tier ?? 'standard';
  return supervisionRequired(policy.supervision, { ...session, tier });
}

/** The terms the CLI receives with the session. */
export function supervisionTerms(policy: Policy, session: SessionFacts): SupervisionTerms {
  return { required: mustBeSupervised(policy, session), on_leave: policy.supervision.onLeave };
}

/** Who watches the session now, and whether anyone ever joined. */
export async function currentSupervisors(
  deps: Pick<BrokerDeps, 'store'>,
  sessionId: string,
): Promise<{ supervisors: string[]; everJoined: boolean }> {
  // A join or leave just acknowledged may still be queued for the sequencer.
  await deps.store.settle();
  const [joined, left] = await Promise.all([
    deps.store.readAudit({ session: sessionId, type: 'supervision.joined' }),
    deps.store.readAudit({ session: sessionId, type: 'supervision.left' }),
  ]);
  const gone = new Set(left.map((e) => String(e.data.watch_id)));
  const supervisors = joined
    .filter((e) => !gone.has(String(e.data.watch_id)))
    .map((e) => String(e.data.supervisor));
  return { supervisors: [...new Set(supervisors)], everJoined: joined.length > 0 };
}

/** Why the proxy must refuse this session's calls for want of a supervisor, or null. */
export async function supervisionRefusal(
  deps: Pick<BrokerDeps, 'store' | 'policy'>,
  session: SessionRecord,
): Promise<{ rule: string; message: string } | null> {
  if (!mustBeSupervised(deps.policy, session)) return null;
  const { supervisors, everJoined } = await currentSupervisors(deps, session.id);
  if (supervisors.length > 0) return null;
  return everJoined
    ? {
        rule: 'supervision.paused',
        message: `Refused by rule supervision.paused: policy requires session ${session.id} to be supervised and its last supervisor left; calls resume when one rejoins (imp watch ${session.id}).`,
      }
    : {
        rule: 'supervision.waiting',
        message: `Refused by rule supervision.waiting: policy requires session ${session.id} to be supervised; it waits for a supervisor to join (imp watch ${session.id}).`,
      };
}

/**
 * The first supervisor joined: a supervised session's time starts now (it waited like a request
 * waits for approval). Runs inside the join's transaction.
 */
export function startsOnJoin(
  policy: Policy,
  session: SessionRecord,
  everJoined: boolean,
  now: number,
): Partial<SessionRecord> | null {
  if (everJoined || !mustBeSupervised(policy, session)) return null;
  return { startedAt: now, expiresAt: now + session.ttl * 1000 };
}

/** After a supervisor left: with `on_leave: end` and nobody left watching, the session ends. */
export async function afterSupervisorLeft(deps: BrokerDeps, session: SessionRecord): Promise<void> {
  if (deps.policy.supervision.onLeave !== 'end' || !mustBeSupervised(deps.policy, session)) return;
  const { supervisors } = await currentSupervisors(deps, session.id);
  if (supervisors.length > 0) return;
  const now = deps.clock.now();
  const comment = 'The last supervisor left; policy ends the session (supervision.on_leave: end).';
  const ended = await deps.store.transaction(async (tx) => {
    const changed = await tx.updateSession(session.id, 'active', {
      state: 'revoked',
      endedAt: now,
      endedBy: null,
      decisionComment: comment,
    });
    if (changed)
      await tx.appendAudit(
        sessionAudit(
          session,
          'session.revoked',
          { revoke_reason: comment, rule: 'supervision.on_leave' },
          null,
        ),
        now,
      );
    return changed;
  });
  if (ended) sessionChanges.emit(session.id);
}
