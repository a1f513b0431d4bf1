/**
 * The ticket system as a real check (policy `tickets.system`): its settings, how they are read from
 * the policy, and the pure decision on what the ticket system said about a ticket. The broker's
 * adapters (src/broker/tickets/) turn Redmine, Jira or the generic HTTP contract into
 * {@link TicketFacts}; {@link decideTicket} names the rule that refuses, in a fixed order:
 * ticket.not_found → ticket.closed → ticket.not_assigned → ticket.other_tenant.
 */
import type { Obj, Path, Reader } from './reader.js';

/** Which adapter talks to the ticket system. */
export type TicketSystemType = 'redmine' | 'jira' | 'http';
/** Who the ticket must name as the requester: nobody, its assignee, its reporter, or either. */
export type TicketPersonRule = 'off' | 'assignee' | 'reporter' | 'assignee_or_reporter';
const PERSON_RULES: readonly TicketPersonRule[] = ['off', 'assignee', 'reporter', 'assignee_or_reporter'];

/** Policy `tickets.system`. Secrets are named (env var or file), never written in the policy. */
export interface TicketSystem {
  type: TicketSystemType;
  /** Base URL: Redmine's root, Jira's site, or the generic endpoint's base. */
  url: string;
  /** Jira only: Cloud (REST v3, Basic e-mail:API token) or Data Center (REST v2, Bearer personal access token). */
  jiraApi: 'cloud' | 'datacenter';
  /** Jira Cloud only: the account e-mail the API token belongs to (not a secret). */
  user: string | null;
  /** The environment variable, or the file, holding the API key / token. */
  tokenEnv: string | null;
  tokenFile: string | null;
  /** Status names that count as open; empty: the system's own notion (Redmine is_closed, Jira's done category, the contract's `open`). */
  openStatuses: string[];
  person: TicketPersonRule;
  /** The field naming the tenant (Redmine custom field name, Jira field id such as customfield_10042); null: not checked. */
  tenantField: string | null;
  /** A ticket system that cannot answer: refuse the session, or allow it flagged (audited either way). */
  onUnreachable: 'refuse' | 'allow';
  /** Break-glass (the incident id): check like a session, check but only warn, or skip the check. */
  breakGlass: 'check' | 'warn' | 'skip';
  /** Seconds one call may take. */
  timeout: number;
  /** Largest answer read, in bytes. */
  maxBodyBytes: number;
  /** Where a person reads a ticket: a URL template holding `{ticket}` (absent: the system's default, see core/ticket-link.ts). */
  link?: string;
}

/** What a ticket system said about one ticket, normalised by an adapter. Every string is untrusted. */
export interface TicketFacts {
  /** The ticket as the system names it (Redmine #42, Jira SUP-7). */
  key: string;
  status: string;
  /** The system's own notion of closed, used when the policy lists no open statuses. */
  closed: boolean;
  /** E-mail addresses as the system reports them; null when it has a person but hides the address. */
  assignee: { email: string | null } | null;
  reporter: { email: string | null } | null;
  /** Values of the tenant field (empty: the field is absent or empty). */
  tenants: string[];
}

/** What an adapter found. */
export type TicketLookup = { found: true; facts: TicketFacts } | { found: false; detail: string };

/** Who asks, and for which tenant. */
export interface TicketAsk {
  email: string | null;
  tenant: { id: string; name: string };
}

/** The decision on a found (or missing) ticket. */
export type TicketDecision =
  | { ok: true; status: string }
  | {
      ok: false;
      rule: 'ticket.not_found' | 'ticket.closed' | 'ticket.not_assigned' | 'ticket.other_tenant';
      message: string;
    };

/** Decides a lookup against the policy; messages quote nothing untrusted except through `quote`. */
export function decideTicket(
  system: TicketSystem,
  ticket: string,
  lookup: TicketLookup,
  ask: TicketAsk,
  quote: (text: string) => string,
): TicketDecision {
  if (!lookup.found)
    return {
      ok: false,
      rule: 'ticket.not_found',
      message: `ticket ${quote(ticket)} does not exist in ${system.type}, or the broker's account cannot see it.`,
    };
  const { facts } = lookup;
  const open =
    system.openStatuses.length > 0
      ? system.openStatuses.some((name) => sameText(name, facts.status))
      : !facts.closed;
  if (!open)
    return {
      ok: false,
      rule: 'ticket.closed',
      message: `ticket ${quote(ticket)} is ${quote(facts.status)}, not open. Reopen it or use an open ticket.`,
    };
  if (system.person !== 'off') {
    const people = [
      ...(system.person !== 'reporter' ? [facts.assignee] : []),
      ...(system.person !== 'assignee' ? [facts.reporter] : []),
    ];
    const who =
      system.person === 'assignee_or_reporter'
        ? 'assigned to or reported by'
        : system.person === 'assignee'
          ? 'assigned to'
          : 'reported by';
    if (ask.email === null)
      return {
        ok: false,
        rule: 'ticket.not_assigned',
        message: `the ticket must be ${who} you, but your login carries no e-mail address to match.`,
      };
    if (!people.some((person) => person?.email && sameText(person.email, ask.email!))) {
      const hidden = people.some((person) => person !== null && person.email === null);
      return {
        ok: false,
        rule: 'ticket.not_assigned',
        message: `ticket ${quote(ticket)} is not ${who} ${quote(ask.email)}${hidden ? " (the ticket system hides the person's e-mail address from the broker's account)" : ''}.`,
      };
    }
  }
  if (system.tenantField !== null) {
    const names = [ask.tenant.id, ask.tenant.name];
    if (!facts.tenants.some((value) => names.some((name) => sameText(name, value))))
      return {
        ok: false,
        rule: 'ticket.other_tenant',
        message:
          facts.tenants.length === 0
            ? `ticket ${quote(ticket)} names no tenant in its field ${quote(system.tenantField)}; it must name ${ask.tenant.id}.`
            : `ticket ${quote(ticket)} is about ${facts.tenants.map(quote).join(', ')}, not ${ask.tenant.id}.`,
      };
  }
  return { ok: true, status: facts.status };
}

function sameText(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

const SYSTEM_KEYS = [
  'type',
  'url',
  'api',
  'user',
  'token_env',
  'token_file',
  'open_statuses',
  'require_person',
  'tenant_field',
  'on_unreachable',
  'break_glass',
  'timeout',
  'max_body_bytes',
  'link',
];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads `tickets.system` (null when absent). */
export function readTicketSystem(r: Reader, value: unknown, path: Path): TicketSystem | null {
  if (value === undefined || value === null) return null;
  const obj: Obj = r.object(value, path, SYSTEM_KEYS);
  const type = r.string(obj, 'type', path, 'http');
  if (!['redmine', 'jira', 'http'].includes(type))
    r.problem([...path, 'type'], 'must be redmine, jira or http');
  const api = r.string(obj, 'api', path, 'cloud');
  if (api !== 'cloud' && api !== 'datacenter') r.problem([...path, 'api'], 'must be cloud or datacenter');
  const tokenEnv = r.optionalString(obj, 'token_env', path);
  const tokenFile = r.optionalString(obj, 'token_file', path);
  if (tokenEnv !== null && !ENV_NAME.test(tokenEnv))
    r.problem(
      [...path, 'token_env'],
      'must be the name of an environment variable (the secret itself never goes in the policy)',
    );
  if (tokenEnv !== null && tokenFile !== null)
    r.problem([...path, 'token_file'], 'give token_env or token_file, not both');
  if (tokenEnv === null && tokenFile === null && type !== 'http')
    r.problem([...path], `${type} needs the broker's own credential: token_env or token_file`);
  const user = r.optionalString(obj, 'user', path);
  if (type === 'jira' && api === 'cloud' && user === null)
    r.problem(
      [...path, 'user'],
      'Jira Cloud needs the e-mail address of the account the API token belongs to',
    );
  const person = r.string(obj, 'require_person', path, 'off');
  if (!(PERSON_RULES as readonly string[]).includes(person))
    r.problem([...path, 'require_person'], `must be one of: ${PERSON_RULES.join(', ')}`);
  const onUnreachable = r.string(obj, 'on_unreachable', path, 'refuse');
  if (onUnreachable !== 'refuse' && onUnreachable !== 'allow')
    r.problem([...path, 'on_unreachable'], 'must be refuse or allow');
  const breakGlass = r.string(obj, 'break_glass', path, 'warn');
  if (!['check', 'warn', 'skip'].includes(breakGlass))
    r.problem([...path, 'break_glass'], 'must be check, warn or skip');
  const timeout = r.duration(obj, 'timeout', path, 5);
  if (timeout > 30) r.problem([...path, 'timeout'], 'must be at most 30s: a session request waits for it');
  const link = r.optionalString(obj, 'link', path);
  // Checked with a sample id: the console builds the link from this template and a validated id only.
  if (link !== null && !link.includes('{ticket}'))
    r.problem([...path, 'link'], 'must hold {ticket} where the ticket id goes');
  else if (link !== null) r.url(link.split('{ticket}').join('SUP-1'), [...path, 'link']);
  return {
    ...(link !== null ? { link } : {}),
    type: type as TicketSystemType,
    url: r.url(r.string(obj, 'url', path), [...path, 'url']),
    jiraApi: api as 'cloud' | 'datacenter',
    user,
    tokenEnv,
    tokenFile,
    openStatuses: r.strings(obj, 'open_statuses', path, []),
    person: person as TicketPersonRule,
    tenantField: r.optionalString(obj, 'tenant_field', path),
    onUnreachable: onUnreachable as 'refuse' | 'allow',
    breakGlass: breakGlass as 'check' | 'warn' | 'skip',
    timeout,
    maxBodyBytes: r.int(obj, 'max_body_bytes', path, 1024 * 1024, 1024),
  };
}
