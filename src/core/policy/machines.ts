/**
 * Machine identities (policy `machines:`): which workload token may open which session, and which
 * proxied calls such a session may make. Pure. A machine session is read-only and path-limited by
 * construction: there is no write, no approval, no break-glass and no re-authentication for it —
 * nobody is at a keyboard, and nothing it may do needs a second look.
 */

import { matchesPathGlob } from '../proxy-path.js';
import { checkReason, checkTicketAndReason } from './decide.js';
import type { Obj, Path, Reader } from './reader.js';
import type { Machine, MachineAllow, Policy } from './types.js';

/** The role name a machine session's requester carries, so sessions and audit events name it. */
export const MACHINE_ROLE_PREFIX = 'machine:';

/** `machine:<name>`. */
export function machineRole(name: string): string {
  return `${MACHINE_ROLE_PREFIX}${name}`;
}

/** The machine name in a requester's roles, or null for a person. */
export function machineNameOf(roles: readonly string[]): string | null {
  const role = roles.find((r) => r.startsWith(MACHINE_ROLE_PREFIX));
  return role ? role.slice(MACHINE_ROLE_PREFIX.length) : null;
}

/** True when `subject` matches `pattern`, where `*` stands for any run of characters. */
export function matchesSubject(pattern: string, subject: string): boolean {
  const regex = pattern
    .split('*')
    .map((piece) => piece.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${regex}$`, 'su').test(subject);
}

/** Why no machine entry accepts a token from (iss, sub), or the entries that do, in policy order. */
export function machinesFor(
  policy: Policy,
  iss: string,
  sub: string,
): { ok: true; machines: Machine[] } | { ok: false; rule: string; message: string } {
  const byIssuer = policy.machines.filter((m) => m.issuer === iss);
  if (byIssuer.length === 0)
    return {
      ok: false,
      rule: 'machine.issuer',
      message: 'The token issuer is not trusted by any machine identity.',
    };
  const bySubject = byIssuer.filter((m) => matchesSubject(m.subject, sub));
  if (bySubject.length === 0)
    return {
      ok: false,
      rule: 'machine.subject',
      message: 'The token subject matches no machine identity of its issuer.',
    };
  return { ok: true, machines: bySubject };
}

/** What a machine asks for in a token exchange. */
export interface MachineAsk {
  tenant: string;
  environment: string;
  scope: string;
  mode: string;
  /** Seconds. */
  ttl: number;
  ticket: string | null;
  reason: unknown;
}

/** The outcome: allowed (never pending, never a step-up) or denied with the rule. */
export type MachineDecision =
  | { outcome: 'allow'; machine: Machine; rule: string; message: string; reauth: 'never' }
  | { outcome: 'deny'; machine: Machine; rule: string; message: string };

/**
 * Decides a machine's session request among the entries that accept its token (first one covering
 * the tenant wins). Write and break-glass are refused before anything else: no policy can grant them.
 */
export function decideMachineSession(
  policy: Policy,
  candidates: readonly Machine[],
  ask: MachineAsk,
): MachineDecision {
  const machine =
    candidates.find(
      (m) =>
        m.tenants.some((p) => p === '*' || p === ask.tenant) &&
        m.environments.some((p) => p === '*' || p === ask.environment),
    ) ?? candidates[0]!;
  const deny = (rule: string, message: string): MachineDecision => ({
    outcome: 'deny',
    machine,
    rule,
    message,
  });
  if (ask.mode !== 'standard')
    return deny('machine.break_glass', 'Machine identities can never use break-glass.');
  if (ask.scope !== 'read')
    return deny(
      'machine.read_only',
      'Machine identities are read-only: they can never open a write session.',
    );
  const tenant = policy.tenants.find((t) => t.id === ask.tenant);
  if (!tenant) return deny('tenant.unknown', `There is no tenant "${ask.tenant}".`);
  if (!Object.hasOwn(tenant.upstream, ask.environment))
    return deny('tenant.environment', `Tenant ${tenant.id} has no environment "${ask.environment}".`);
  if (
    !machine.tenants.some((p) => p === '*' || p === ask.tenant) ||
    !machine.environments.some((p) => p === '*' || p === ask.environment)
  )
    return deny('machine.tenant', `Machine ${machine.name} may not read ${ask.tenant}/${ask.environment}.`);
  if (!Number.isInteger(ask.ttl) || ask.ttl <= 0)
    return deny('ttl.invalid', 'The time limit must be a positive number of seconds.');
  if (ask.ttl > machine.maxTtl)
    return deny(
      'machine.max_ttl',
      `The time limit ${ask.ttl}s is over machine ${machine.name}'s maximum of ${machine.maxTtl}s.`,
    );
  if (ask.ticket === null && machine.ticketRequired)
    return deny('machine.ticket_required', `Machine ${machine.name} must name a ticket or incident id.`);
  const input =
    ask.ticket === null
      ? checkReason(policy, ask.reason)
      : checkTicketAndReason(policy, ask.ticket, ask.reason);
  if (input) return deny(input.rule, input.message);
  // Approval and step-up are for people: a machine session is read-only and limited to its allow-list,
  // so there is nothing a second person or a fresh login would add (reauth: 'never').
  return {
    outcome: 'allow',
    machine,
    rule: machineRole(machine.name),
    message: `Allowed for machine ${machine.name} (read-only, ${machine.allow.length} allowed path(s)).`,
    reauth: 'never',
  };
}

/** May a session of `machine` make this call? `path` is the canonical path the upstream will route on. */
export function machineAllows(machine: Machine, method: string, path: string): boolean {
  const upper = method.toUpperCase();
  return machine.allow.some((entry) => entry.method === upper && matchesPathGlob(entry.path, path));
}

const MACHINE_KEYS = [
  'name',
  'issuer',
  'jwks_uri',
  'subject',
  'audience',
  'tenants',
  'environments',
  'allow',
  'max_ttl',
  'ticket_required',
];
const READ_METHODS = ['GET', 'HEAD', 'OPTIONS'];

/** Reads one `machines[i]` entry of the policy. */
export function readMachine(r: Reader, raw: unknown, path: Path): Machine {
  const given = (raw && typeof raw === 'object' ? raw : {}) as Obj;
  for (const key of ['scopes', 'write', 'break_glass', 'approve'])
    if (key in given) r.problem([...path, key], 'machine identities are read-only and never break glass');
  const obj = r.object(
    raw,
    path,
    MACHINE_KEYS.concat(['scopes', 'write', 'break_glass', 'approve'].filter((k) => k in given)),
  );
  const name = r.string(obj, 'name', path);
  if (name && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(name))
    r.problem([...path, 'name'], 'must be lowercase letters, digits and dashes');
  const issuer = r.url(r.string(obj, 'issuer', path), [...path, 'issuer']);
  const jwks = r.optionalString(obj, 'jwks_uri', path);
  const allow = r
    .strings(obj, 'allow', path, [])
    .map((entry, i) => readAllow(r, entry, [...path, 'allow', i]));
  if (allow.length === 0) r.problem([...path, 'allow'], 'needs at least one "GET /path" entry');
  const tenants = r.strings(obj, 'tenants', path, []);
  if (tenants.length === 0) r.problem([...path, 'tenants'], 'needs at least one tenant id (or *)');
  return {
    name,
    issuer,
    jwksUri: jwks === null ? null : r.url(jwks, [...path, 'jwks_uri']),
    subject: r.string(obj, 'subject', path),
    audience: r.optionalString(obj, 'audience', path),
    tenants,
    environments: r.strings(obj, 'environments', path, ['*']),
    allow,
    maxTtl: r.duration(obj, 'max_ttl', path, 15 * 60),
    ticketRequired: r.bool(obj, 'ticket_required', path, true),
  };
}

function readAllow(r: Reader, entry: string, path: Path): MachineAllow {
  const match = /^([A-Za-z]+)\s+(\/\S*)$/.exec(entry.trim());
  if (!match) {
    r.problem(path, `must look like "GET /v1/queue/**", not "${entry}"`);
    return { method: 'GET', path: '/\u0000' };
  }
  const method = match[1]!.toUpperCase();
  if (!READ_METHODS.includes(method)) {
    r.problem(path, `machine identities are read-only: ${method} is not one of ${READ_METHODS.join(', ')}`);
    return { method: 'GET', path: '/\u0000' };
  }
  return { method: method as MachineAllow['method'], path: match[2]! };
}
