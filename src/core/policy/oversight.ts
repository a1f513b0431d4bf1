/**
 * Who may read a session or request that is not their own. Security staff (`audit`, `revoke`) see
 * every session; an approver sees the sessions and requests of the tenants and environments one of
 * their approving roles covers; a confirmer (`break_glass_confirm`) sees break-glass sessions and
 * requests. An overseer reading outside that is refused with a named rule (and audited by the
 * caller); anyone else is answered as if the session did not exist.
 */
import { type Subject, sameSubject } from './decide.js';
import { matchesPattern } from './roles.js';
import type { Role } from './types.js';

/** What of a session the decision looks at. */
export interface ReadTarget {
  requester: Subject;
  tenant: string;
  environment: string;
  mode: 'standard' | 'break_glass';
}

/** Why a read is allowed, or the rule that refuses it. */
export type ReadVerdict =
  | { allowed: true; as: 'owner' | 'security' | 'approver' | 'confirmer' }
  | { allowed: false; rule: 'oversee.scope' | 'session.owner'; overseer: boolean; message: string };

/** May `reader` (holding `roles`) read `target`? */
export function decideSessionRead(roles: readonly Role[], reader: Subject, target: ReadTarget): ReadVerdict {
  if (sameSubject(reader, target.requester)) return { allowed: true, as: 'owner' };
  if (roles.some((r) => r.audit || r.revoke)) return { allowed: true, as: 'security' };
  const approves = roles.some(
    (r) =>
      r.approve &&
      r.tenants.some((p) => matchesPattern(p, target.tenant)) &&
      r.environments.some((p) => matchesPattern(p, target.environment)),
  );
  if (approves) return { allowed: true, as: 'approver' };
  if (target.mode === 'break_glass' && roles.some((r) => r.breakGlassConfirm))
    return { allowed: true, as: 'confirmer' };
  const overseer = roles.some((r) => r.approve || r.breakGlassConfirm);
  return overseer
    ? {
        allowed: false,
        rule: 'oversee.scope',
        overseer,
        message: `Denied by rule oversee.scope: your roles oversee other tenants, environments or break-glass sessions, not ${target.tenant}/${target.environment}${target.mode === 'break_glass' ? '' : ' (standard)'}.`,
      }
    : { allowed: false, rule: 'session.owner', overseer, message: 'Not your session.' };
}
