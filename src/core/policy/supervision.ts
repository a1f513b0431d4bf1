/**
 * Which sessions need a supervisor watching (`imp watch`). `supervision.rules` match on tenant tier,
 * environment and scope (empty lists match everything); a matching session waits — like an
 * approval — until a supervisor joins, and `on_leave` says what happens when the last one leaves:
 * `pause` (tenant calls are refused until one rejoins) or `end` (the session is ended).
 */
import type { Scope } from './types.js';

/** What happens when the last supervisor leaves a supervised session. */
export type OnLeave = 'pause' | 'end';

/** One `supervision.rules` entry. */
export interface SupervisionRule {
  tiers: string[];
  environments: string[];
  scopes: Scope[];
}

/** The validated `supervision:` section. */
export interface SupervisionPolicy {
  rules: SupervisionRule[];
  onLeave: OnLeave;
}

/** No `supervision:` section: nothing needs a supervisor. */
export const DEFAULT_SUPERVISION: SupervisionPolicy = { rules: [], onLeave: 'pause' };

/** What the CLI is told about a session's supervision (part of the session view). */
export interface SupervisionTerms {
  required: boolean;
  on_leave: OnLeave;
}

const matches = (list: readonly string[], value: string) =>
  list.length === 0 || list.includes('*') || list.includes(value);

/** True when a session on a tenant of `tier` must be supervised. */
export function supervisionRequired(
  policy: SupervisionPolicy,
  session: { tier: string; environment: string; scope: Scope },
): boolean {
  return policy.rules.some(
    (rule) =>
      matches(rule.tiers, session.tier) &&
      matches(rule.environments, session.environment) &&
      matches(rule.scopes, session.scope),
  );
}
