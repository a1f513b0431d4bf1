/** Which roles a person holds: the policy's groups → roles mapping. */
import type { Policy, Role } from './types.js';

/** The roles whose groups intersect the person's groups, in policy order. */
export function rolesForGroups(policy: Policy, groups: readonly string[]): Role[] {
  return policy.roles.filter((role) => role.groups.some((group) => groups.includes(group)));
}

/** True when `pattern` (an id or `*`) matches `value`. */
export function matchesPattern(pattern: string, value: string): boolean {
  return pattern === '*' || pattern === value;
}
