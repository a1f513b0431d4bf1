/**
 * Policy `notifications:` — channels (signed webhook, Slack, Microsoft Teams, e-mail over SMTP),
 * routes choosing channels per notification kind, tenant tier and environment, and where people's
 * e-mail addresses come from. Secrets (webhook signing secrets, chat webhook URLs, SMTP passwords)
 * are never in the policy: it names the environment variables that hold them.
 */
import { NOTIFICATION_KINDS, type NotificationKind } from '../notify/kinds.js';
import type { Obj, Path, Reader } from './reader.js';

/** A signed JSON webhook (the break-glass alert format). */
export interface WebhookChannel {
  type: 'webhook';
  name: string;
  /** The URL, or null when it is read from `urlEnv`. */
  url: string | null;
  urlEnv: string | null;
  secretEnv: string | null;
}

/** A Slack or Teams incoming webhook: its URL is the credential, so only an env var names it. */
export interface ChatChannel {
  type: 'slack' | 'teams';
  name: string;
  urlEnv: string;
}

/** E-mail over SMTP. */
export interface EmailChannel {
  type: 'email';
  name: string;
  smtp: {
    host: string;
    port: number;
    /** starttls: plain connect, then STARTTLS, required (default); tls: TLS from the start (465); none: loopback only. */
    security: 'starttls' | 'tls' | 'none';
    userEnv: string | null;
    passwordEnv: string | null;
    /** A PEM file of CA certificates to trust (a private mail relay); null: the system's. */
    caFile: string | null;
  };
  from: string;
  /** Fixed addresses that get every message routed here (a team list). */
  to: string[];
  /** Also the people the event concerns (approvers, the requester…), where an address is known. */
  people: boolean;
}

/** One notification channel. */
export type NotificationChannel = WebhookChannel | ChatChannel | EmailChannel;

/** Which kinds, for which tenants' tiers and environments, go to which channels (every matching route adds). */
export interface NotificationRoute {
  events: NotificationKind[];
  /** Empty: any tier (and events without a tenant, such as audit.alarm). */
  tiers: string[];
  environments: string[];
  channels: string[];
}

/** The whole section. */
export interface NotificationPolicy {
  channels: NotificationChannel[];
  routes: NotificationRoute[];
  /** Where the console links point; null: the broker's own URL. */
  consoleUrl: string | null;
  people: {
    /** Use the e-mail claim the IdP sent at a person's latest login (a claim, not a verified address). */
    emailClaim: boolean;
    /** Addresses by subject (`sub`) or by claimed e-mail: the platform team's own directory, preferred. */
    directory: Record<string, string>;
  };
}

/** No notifications (break_glass.alerts still work as before). */
export const NO_NOTIFICATIONS: NotificationPolicy = {
  channels: [],
  routes: [],
  consoleUrl: null,
  people: { emailClaim: true, directory: {} },
};

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const ADDRESS = /^[^\s@<>"]+@[^\s@<>"]+$/;

/** Reads `notifications:`. */
export function readNotifications(
  r: Reader,
  raw: unknown,
  tenantTiers: readonly string[],
): NotificationPolicy {
  if (raw === undefined || raw === null) return NO_NOTIFICATIONS;
  const path: Path = ['notifications'];
  const top = r.object(raw, path, ['channels', 'routes', 'console_url', 'people']);
  const channels = r.list(top, 'channels', path).map((c, i) => readChannel(r, c, [...path, 'channels', i]));
  const names = channels.map((c) => c.name);
  names.forEach((name, i) => {
    if (name && names.indexOf(name) !== i)
      r.problem([...path, 'channels', i, 'name'], `duplicate channel "${name}"`);
  });
  const routes = r.list(top, 'routes', path).map((raw, i) => {
    const at: Path = [...path, 'routes', i];
    const obj = r.object(raw, at, ['events', 'tiers', 'environments', 'channels']);
    const events = r.strings(obj, 'events', at, ['*']);
    const kinds = events.includes('*') ? [...NOTIFICATION_KINDS] : events.filter(isKind);
    for (const bad of events.filter((e) => e !== '*' && !isKind(e)))
      r.problem(
        [...at, 'events'],
        `unknown event "${bad}" (expected one of: ${NOTIFICATION_KINDS.join(', ')})`,
      );
    const tiers = r.strings(obj, 'tiers', at, []);
    for (const tier of tiers)
      if (!tenantTiers.includes(tier)) r.problem([...at, 'tiers'], `no tenant has tier "${tier}"`);
    const routeChannels = r.strings(obj, 'channels', at, []);
    if (routeChannels.length === 0) r.problem([...at, 'channels'], 'is required (a list of channel names)');
    for (const name of routeChannels)
      if (!names.includes(name)) r.problem([...at, 'channels'], `no channel named "${name}"`);
    return {
      events: kinds,
      tiers,
      environments: r.strings(obj, 'environments', at, []),
      channels: routeChannels,
    };
  });
  const people = r.object(top.people, [...path, 'people'], ['email_claim', 'directory']);
  const directory = r.object(
    people.directory,
    [...path, 'people', 'directory'],
    Object.keys(people.directory ?? {}),
  );
  const addresses: Record<string, string> = {};
  for (const [key, value] of Object.entries(directory)) {
    if (typeof value !== 'string' || !ADDRESS.test(value))
      r.problem([...path, 'people', 'directory', key], 'must be an e-mail address');
    else addresses[key] = value;
  }
  const consoleUrl = r.optionalString(top, 'console_url', path);
  return {
    channels,
    routes,
    consoleUrl: consoleUrl ? r.url(consoleUrl, [...path, 'console_url']) : null,
    people: { emailClaim: r.bool(people, 'email_claim', [...path, 'people'], true), directory: addresses },
  };
}

function isKind(value: string): value is NotificationKind {
  return (NOTIFICATION_KINDS as readonly string[]).includes(value);
}

function envName(r: Reader, obj: Obj, key: string, path: Path, required: boolean): string | null {
  const value = required ? r.string(obj, key, path) : r.optionalString(obj, key, path);
  if (value && !ENV_NAME.test(value))
    r.problem([...path, key], 'must be an environment variable name (A-Z, 0-9, _)');
  return value;
}

function readChannel(r: Reader, raw: unknown, path: Path): NotificationChannel {
  const kind = (raw as { type?: unknown } | null)?.type;
  if (kind === 'webhook') {
    const obj = r.object(raw, path, ['name', 'type', 'url', 'url_env', 'secret_env']);
    const url = r.optionalString(obj, 'url', path);
    const urlEnv = envName(r, obj, 'url_env', path, false);
    if ((url === null) === (urlEnv === null)) r.problem(path, 'give exactly one of url and url_env');
    return {
      type: 'webhook',
      name: r.string(obj, 'name', path),
      url: url ? r.url(url, [...path, 'url']) : null,
      urlEnv,
      secretEnv: envName(r, obj, 'secret_env', path, false),
    };
  }
  if (kind === 'slack' || kind === 'teams') {
    const obj = r.object(raw, path, ['name', 'type', 'url_env']);
    return {
      type: kind,
      name: r.string(obj, 'name', path),
      urlEnv: envName(r, obj, 'url_env', path, true) ?? '',
    };
  }
  if (kind === 'email') {
    const obj = r.object(raw, path, ['name', 'type', 'smtp', 'from', 'to', 'people']);
    const smtpPath = [...path, 'smtp'];
    const smtp = r.object(obj.smtp, smtpPath, [
      'host',
      'port',
      'security',
      'user_env',
      'password_env',
      'ca_file',
    ]);
    const security = r.string(smtp, 'security', smtpPath, 'starttls');
    if (!['starttls', 'tls', 'none'].includes(security))
      r.problem([...smtpPath, 'security'], 'must be starttls, tls or none');
    const host = r.string(smtp, 'host', smtpPath);
    if (security === 'none' && host && !['localhost', '127.0.0.1', '::1'].includes(host))
      r.problem([...smtpPath, 'security'], 'none (no TLS) is only allowed to a loopback relay');
    const userEnv = envName(r, smtp, 'user_env', smtpPath, false);
    const passwordEnv = envName(r, smtp, 'password_env', smtpPath, false);
    if ((userEnv === null) !== (passwordEnv === null))
      r.problem(smtpPath, 'give both user_env and password_env, or neither');
    const to = r.strings(obj, 'to', path, []);
    for (const address of to)
      if (!ADDRESS.test(address)) r.problem([...path, 'to'], `"${address}" is not an e-mail address`);
    const from = r.string(obj, 'from', path);
    return {
      type: 'email',
      name: r.string(obj, 'name', path),
      smtp: {
        host,
        port: r.int(smtp, 'port', smtpPath, security === 'tls' ? 465 : 587, 1),
        security: security as EmailChannel['smtp']['security'],
        userEnv,
        passwordEnv,
        caFile: r.optionalString(smtp, 'ca_file', smtpPath),
      },
      from,
      to,
      people: r.bool(obj, 'people', path, true),
    };
  }
  r.problem([...path, 'type'], 'must be webhook, slack, teams or email');
  return { type: 'slack', name: '', urlEnv: '' };
}

/** The channels a notification of `kind` about a tenant of `tier` in `environment` goes to (each once). */
export function channelsFor(
  policy: NotificationPolicy,
  kind: NotificationKind,
  tier: string | null,
  environment: string | null,
): string[] {
  const chosen = new Set<string>();
  for (const route of policy.routes) {
    if (!route.events.includes(kind)) continue;
    if (route.tiers.length > 0 && (tier === null || !route.tiers.includes(tier))) continue;
    if (route.environments.length > 0 && (environment === null || !route.environments.includes(environment)))
      continue;
    for (const name of route.channels) chosen.add(name);
  }
  return [...chosen];
}
