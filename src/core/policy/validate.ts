/**
 * Turns a parsed policy document into a {@link Policy}, or a list of problems each naming the key
 * path; the file loader adds file and line. Pure: no fs, no YAML.
 */
import { isUnforwardableHeader } from '../proxy-request.js';
import { readMachine } from './machines.js';
import { readNotifications } from './notifications.js';
import { type Obj, type Path, type PolicyProblem, Reader } from './reader.js';
import { DEFAULT_RECORDING, RECORDING_MODES, type RecordingMode, type RecordingPolicy } from './recording.js';
import { DEFAULT_SUPERVISION, type SupervisionPolicy } from './supervision.js';
import { readTicketSystem } from './tickets.js';
import {
  type AlertWebhook,
  type Policy,
  REAUTH_METHODS,
  type ReauthMethod,
  type Role,
  type Scope,
  type Tenant,
} from './types.js';

const TOP_KEYS = [
  'identity',
  'reauth',
  'login',
  'tickets',
  'reason',
  'sessions',
  'approvals',
  'break_glass',
  'audit',
  'proxy',
  'rate_limit',
  'roles',
  'tenants',
  'machines',
  'store',
  'recording',
  'console',
  'supervision',
  'notifications',
];
const ROLE_KEYS = [
  'name',
  'groups',
  'tenants',
  'environments',
  'scopes',
  'max_ttl',
  'approve',
  'break_glass',
  'break_glass_confirm',
  'audit',
  'review',
  'revoke',
  'passkey_reset',
  'supervise',
];
const TENANT_KEYS = ['id', 'name', 'tier', 'approval_required', 'upstream'];
const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Validates a parsed policy document. */
export function validatePolicy(doc: unknown): { policy: Policy; problems: PolicyProblem[] } {
  const r = new Reader();
  const top = r.object(doc, [], TOP_KEYS);
  const identity = r.object(
    top.identity,
    ['identity'],
    ['issuer', 'client_id', 'groups_claim', 'person_claim', 'require_amr', 'require_acr'],
  );
  const reauth = r.object(top.reauth, ['reauth'], ['method', 'max_age', 'per_session', 'passkey_aaguids']);
  const reauthMethod = r.string(reauth, 'method', ['reauth'], 'idp');
  if (!(REAUTH_METHODS as readonly string[]).includes(reauthMethod))
    r.problem(['reauth', 'method'], `must be one of: ${REAUTH_METHODS.join(', ')}`);
  const aaguids = r.strings(reauth, 'passkey_aaguids', ['reauth'], []);
  for (const [i, aaguid] of aaguids.entries())
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(aaguid))
      r.problem(['reauth', 'passkey_aaguids', i], 'must be an AAGUID in lowercase UUID form');
  const login = r.object(top.login, ['login'], ['token_ttl']);
  const tickets = r.object(top.tickets, ['tickets'], ['pattern', 'system', 'post_summary']);
  const reason = r.object(top.reason, ['reason'], ['min_length', 'max_length']);
  const sessions = r.object(top.sessions, ['sessions'], ['default_ttl', 'audience']);
  const approvals = r.object(top.approvals, ['approvals'], ['request_ttl']);
  const consoleSection = r.object(
    top.console,
    ['console'],
    ['client_id', 'client_secret_env', 'idle_timeout'],
  );
  const breakGlass = r.object(top.break_glass, ['break_glass'], ['confirm_window', 'max_ttl', 'alerts']);
  const audit = r.object(
    top.audit,
    ['audit'],
    [
      'sink',
      'checkpoint_every',
      'checkpoint_interval',
      'origin',
      'witnesses',
      'witness_quorum',
      'witness_lag_max',
    ],
  );
  const witnesses = r
    .list(audit, 'witnesses', ['audit'])
    .map((raw, i) => readWitness(r, raw, ['audit', 'witnesses', i]));
  const lagMax = r.object(audit.witness_lag_max, ['audit', 'witness_lag_max'], ['time', 'events']);
  if (typeof audit.witness_quorum === 'number' && audit.witness_quorum > witnesses.length)
    r.problem(
      ['audit', 'witness_quorum'],
      `is ${audit.witness_quorum} but only ${witnesses.length} witnesses are listed`,
    );
  const rateLimit = r.object(
    top.rate_limit,
    ['rate_limit'],
    ['window', 'login', 'public', 'fold_after', 'trusted_proxies'],
  );
  const proxy = r.object(
    top.proxy,
    ['proxy'],
    ['timeout', 'max_body_bytes', 'export_paths', 'export_scope', 'forward_headers'],
  );

  const ticketPattern = r.string(tickets, 'pattern', ['tickets'], '^[A-Z][A-Z0-9]+-[0-9]+$');
  try {
    new RegExp(ticketPattern, 'u');
  } catch {
    r.problem(['tickets', 'pattern'], 'is not a valid regular expression');
  }

  const roles = r.list(top, 'roles', []).map((raw, i) => readRole(r, raw, ['roles', i]));
  const tenants = r.list(top, 'tenants', []).map((raw, i) => readTenant(r, raw, ['tenants', i]));
  duplicates(
    r,
    roles.map((role) => role.name),
    'roles',
    'name',
  );
  duplicates(
    r,
    tenants.map((tenant) => tenant.id),
    'tenants',
    'id',
  );
  const machines = r.list(top, 'machines', []).map((raw, i) => readMachine(r, raw, ['machines', i]));
  duplicates(
    r,
    machines.map((machine) => machine.name),
    'machines',
    'name',
  );
  roles.forEach((role, i) => {
    // Machine sessions are told apart by this prefix in the requester's roles (src/core/policy/machines.ts).
    if (role.name.startsWith('machine:')) r.problem(['roles', i, 'name'], 'must not start with "machine:"');
  });

  const exportScope = r.string(proxy, 'export_scope', ['proxy'], 'read');
  if (!['read', 'write', 'forbidden'].includes(exportScope))
    r.problem(['proxy', 'export_scope'], 'must be read, write or forbidden');

  const policy: Policy = {
    identity: {
      issuer: r.url(r.string(identity, 'issuer', ['identity']), ['identity', 'issuer']),
      clientId: r.string(identity, 'client_id', ['identity'], 'imp-cli'),
      groupsClaim: r.string(identity, 'groups_claim', ['identity'], 'groups'),
      personClaim: r.optionalString(identity, 'person_claim', ['identity']),
      requireAmr: r.strings(identity, 'require_amr', ['identity'], []),
      requireAcr: r.strings(identity, 'require_acr', ['identity'], []),
    },
    reauth: {
      method: reauthMethod as ReauthMethod,
      passkeyAaguids: aaguids,
      maxAge: r.duration(reauth, 'max_age', ['reauth'], 300),
      perSession: r.bool(reauth, 'per_session', ['reauth'], true),
    },
    login: { tokenTtl: r.duration(login, 'token_ttl', ['login'], 8 * 3600) },
    tickets: {
      pattern: ticketPattern,
      system: readTicketSystem(r, tickets.system, ['tickets', 'system']),
      postSummary: r.bool(tickets, 'post_summary', ['tickets'], false),
    },
    reason: {
      minLength: r.int(reason, 'min_length', ['reason'], 10, 1),
      maxLength: r.int(reason, 'max_length', ['reason'], 500, 1),
    },
    sessions: {
      defaultTtl: r.duration(sessions, 'default_ttl', ['sessions'], 30 * 60),
      audience: r.string(sessions, 'audience', ['sessions'], 'imp-tenant-api'),
    },
    approvals: { requestTtl: r.duration(approvals, 'request_ttl', ['approvals'], 3600) },
    console: {
      clientId: r.string(consoleSection, 'client_id', ['console'], 'imp-console'),
      clientSecretEnv: r.optionalString(consoleSection, 'client_secret_env', ['console']),
      idleTimeout: r.duration(consoleSection, 'idle_timeout', ['console'], 15 * 60),
    },
    breakGlass: {
      confirmWindow: r.duration(breakGlass, 'confirm_window', ['break_glass'], 600),
      maxTtl: r.duration(breakGlass, 'max_ttl', ['break_glass'], 3600),
      alerts: r
        .list(breakGlass, 'alerts', ['break_glass'])
        .map((raw, i) => readAlert(r, raw, ['break_glass', 'alerts', i])),
    },
    audit: {
      sink: r.optionalString(audit, 'sink', ['audit']),
      checkpointEvery: r.int(audit, 'checkpoint_every', ['audit'], 100, 1),
      checkpointInterval: r.duration(audit, 'checkpoint_interval', ['audit'], 60),
      origin: r.optionalString(audit, 'origin', ['audit']),
      witnesses,
      witnessQuorum: r.int(
        audit,
        'witness_quorum',
        ['audit'],
        witnesses.length,
        witnesses.length > 0 ? 1 : 0,
      ),
      witnessLagMax: {
        seconds: r.duration(lagMax, 'time', ['audit', 'witness_lag_max'], 300),
        events: r.int(lagMax, 'events', ['audit', 'witness_lag_max'], 10_000, 1),
      },
    },
    proxy: {
      timeout: r.duration(proxy, 'timeout', ['proxy'], 30),
      maxBodyBytes: r.int(proxy, 'max_body_bytes', ['proxy'], 10 * 1024 * 1024, 1),
      exportPaths: r.strings(proxy, 'export_paths', ['proxy'], ['/v1/export/**']),
      exportScope: exportScope as Scope | 'forbidden',
      forwardHeaders: r.strings(proxy, 'forward_headers', ['proxy'], []).map((name) => name.toLowerCase()),
    },
    rateLimit: {
      window: r.duration(rateLimit, 'window', ['rate_limit'], 60),
      login: r.int(rateLimit, 'login', ['rate_limit'], 60, 1),
      public: r.int(rateLimit, 'public', ['rate_limit'], 1200, 1),
      foldAfter: r.int(rateLimit, 'fold_after', ['rate_limit'], 5, 0),
      trustedProxies: r.strings(rateLimit, 'trusted_proxies', ['rate_limit'], []),
    },
    roles,
    tenants,
    machines,
    store: readStore(r, top.store),
    recording: readRecording(r, top.recording),
    supervision: readSupervision(r, top.supervision),
    notifications: readNotifications(
      r,
      top.notifications,
      tenants.map((t) => t.tier),
    ),
  };
  policy.proxy.forwardHeaders.forEach((name, i) => {
    if (isUnforwardableHeader(name))
      r.problem(
        ['proxy', 'forward_headers', i],
        `${JSON.stringify(name)} is never forwarded (credentials, hop-by-hop, method, path or client-address override)`,
      );
  });
  if (policy.tickets.postSummary && policy.tickets.system === null)
    r.problem(['tickets', 'post_summary'], 'needs tickets.system: where would the summary go?');
  if (policy.login.tokenTtl > 24 * 3600)
    r.problem(['login', 'token_ttl'], 'must be at most 24h: no long-lived secret on a laptop');
  if (policy.reason.maxLength < policy.reason.minLength)
    r.problem(['reason', 'max_length'], 'must be ≥ min_length');
  return { policy, problems: r.problems };
}

function readStore(r: Reader, value: unknown): string | null {
  if (value === undefined || value === null || value === 'sqlite') return null;
  if (typeof value !== 'string') {
    r.problem(['store'], 'must be sqlite or a postgres:// URL');
    return null;
  }
  const problem = storeUrlProblem(value);
  if (problem) r.problem(['store'], problem);
  return problem ? null : value;
}

/**
 * Why a store URL is unacceptable, or null: it must be postgres:// (or postgresql://) and carry no
 * password — a policy file is shared and hashed into the audit log, and a flag shows in `ps`; the
 * password comes from PGPASSWORD, ~/.pgpass or the IMP_STORE variable.
 */
export function storeUrlProblem(value: string): string | null {
  if (!/^postgres(ql)?:\/\//i.test(value)) return 'must be sqlite or a postgres:// URL';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a valid postgres:// URL';
  }
  if (url.password || url.searchParams.has('password'))
    return 'must not contain a password: use PGPASSWORD, ~/.pgpass, or the IMP_STORE environment variable';
  return null;
}

function readRole(r: Reader, raw: unknown, path: Path): Role {
  const obj = r.object(raw, path, ROLE_KEYS);
  const name = r.string(obj, 'name', path);
  return {
    name,
    groups: r.strings(obj, 'groups', path, []),
    tenants: r.strings(obj, 'tenants', path, []),
    environments: r.strings(obj, 'environments', path, []),
    scopes: r.scopes(obj, 'scopes', path, []),
    maxTtl: r.duration(obj, 'max_ttl', path, 3600),
    approve: r.bool(obj, 'approve', path, false),
    breakGlass: r.bool(obj, 'break_glass', path, false),
    breakGlassConfirm: r.bool(obj, 'break_glass_confirm', path, false),
    audit: r.bool(obj, 'audit', path, false),
    review: r.bool(obj, 'review', path, false),
    revoke: r.bool(obj, 'revoke', path, false),
    passkeyReset: r.bool(obj, 'passkey_reset', path, false),
    supervise: r.bool(obj, 'supervise', path, false),
  };
}

function readTenant(r: Reader, raw: unknown, path: Path): Tenant {
  const obj = r.object(raw, path, TENANT_KEYS);
  const id = r.string(obj, 'id', path);
  if (id && !ID_PATTERN.test(id)) r.problem([...path, 'id'], 'must be lowercase letters, digits and dashes');
  const upstreamObj = r.object(
    obj.upstream,
    [...path, 'upstream'],
    Object.keys((obj.upstream as Obj | undefined) ?? {}),
  );
  const upstream: Record<string, string> = {};
  for (const [env, value] of Object.entries(upstreamObj)) {
    if (!ID_PATTERN.test(env))
      r.problem([...path, 'upstream', env], 'environment names are lowercase letters, digits and dashes');
    if (typeof value !== 'string') r.problem([...path, 'upstream', env], 'must be a URL');
    else upstream[env] = r.url(value, [...path, 'upstream', env]);
  }
  if (Object.keys(upstream).length === 0) r.problem([...path, 'upstream'], 'needs at least one environment');
  return {
    id,
    name: r.string(obj, 'name', path, id),
    tier: r.string(obj, 'tier', path, 'standard'),
    approvalRequired: r.scopes(obj, 'approval_required', path, []),
    upstream,
  };
}

function readRecording(r: Reader, value: unknown): RecordingPolicy {
  const path = ['recording'];
  const obj = r.object(value, path, [
    'default',
    'break_glass',
    'rules',
    'input',
    'max_outage',
    'max_chunk_bytes',
  ]);
  const mode = (
    o: Record<string, unknown>,
    key: string,
    at: Path,
    fallback: RecordingMode,
  ): RecordingMode => {
    const v = r.string(o, key, at, fallback);
    if ((RECORDING_MODES as readonly string[]).includes(v)) return v as RecordingMode;
    r.problem([...at, key], 'must be required, optional or off');
    return fallback;
  };
  const rules = r.list(obj, 'rules', path).map((raw, i) => {
    const at = [...path, 'rules', i];
    const rule = r.object(raw, at, ['tiers', 'environments', 'scopes', 'mode']);
    return {
      tiers: r.strings(rule, 'tiers', at, []),
      environments: r.strings(rule, 'environments', at, []),
      scopes: r.scopes(rule, 'scopes', at, []),
      mode: mode(rule, 'mode', at, 'required'),
    };
  });
  const recording: RecordingPolicy = {
    default: mode(obj, 'default', path, DEFAULT_RECORDING.default),
    breakGlass: mode(obj, 'break_glass', path, DEFAULT_RECORDING.breakGlass),
    rules,
    input: r.bool(obj, 'input', path, DEFAULT_RECORDING.input),
    maxOutage: r.duration(obj, 'max_outage', path, DEFAULT_RECORDING.maxOutage),
    maxChunkBytes: r.int(obj, 'max_chunk_bytes', path, DEFAULT_RECORDING.maxChunkBytes, 1024),
  };
  if (recording.maxChunkBytes > 60 * 1024)
    r.problem(
      [...path, 'max_chunk_bytes'],
      'must be at most 61440 (the broker takes request bodies up to 64 KiB)',
    );
  return recording;
}

function readSupervision(r: Reader, value: unknown): SupervisionPolicy {
  const path = ['supervision'];
  const obj = r.object(value, path, ['rules', 'on_leave']);
  const rules = r.list(obj, 'rules', path).map((raw, i) => {
    const at = [...path, 'rules', i];
    const rule = r.object(raw, at, ['tiers', 'environments', 'scopes']);
    return {
      tiers: r.strings(rule, 'tiers', at, []),
      environments: r.strings(rule, 'environments', at, []),
      scopes: r.scopes(rule, 'scopes', at, []),
    };
  });
  const onLeave = r.string(obj, 'on_leave', path, DEFAULT_SUPERVISION.onLeave);
  if (onLeave !== 'pause' && onLeave !== 'end') r.problem([...path, 'on_leave'], 'must be pause or end');
  return { rules, onLeave: onLeave === 'end' ? 'end' : 'pause' };
}

function readAlert(r: Reader, raw: unknown, path: Path): AlertWebhook {
  const obj = r.object(raw, path, ['url', 'secret_env']);
  return {
    url: r.url(r.string(obj, 'url', path), [...path, 'url']),
    secretEnv: r.optionalString(obj, 'secret_env', path),
  };
}

function readWitness(r: Reader, raw: unknown, path: Path): { url: string; key: string } {
  const obj = r.object(raw, path, ['url', 'key']);
  const key = r.string(obj, 'key', path);
  // name+hex(id)+base64(0x04 || 32-byte key): checked in full where it is used (the broker start).
  if (key && !/^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(key))
    r.problem([...path, 'key'], 'is not a witness verifier key (name+id+key, as `imp witness serve` prints)');
  return { url: r.url(r.string(obj, 'url', path), [...path, 'url']).replace(/\/+$/, ''), key };
}

function duplicates(r: Reader, values: string[], listKey: string, key: string): void {
  values.forEach((value, i) => {
    if (value && values.indexOf(value) !== i) r.problem([listKey, i, key], `duplicate ${key} "${value}"`);
  });
}
