/**
 * The demo tenant API's data: three tenants of a made-up SaaS (users, invoices, settings) and each
 * tenant's own record of what impersonating engineers did. A fresh copy per API instance, in memory.
 */

/** A user of a tenant. */
export interface TenantUser {
  id: string;
  name: string;
  email: string;
  role: 'owner' | 'admin' | 'member' | 'billing';
  mfa_enabled: boolean;
}

/** An invoice of a tenant. */
export interface TenantInvoice {
  id: string;
  amount: number;
  currency: 'USD' | 'EUR' | 'GBP';
  status: 'paid' | 'open' | 'overdue' | 'void';
  issued_at: string;
}

/** A tenant's settings. */
export interface TenantSettings {
  display_name: string;
  timezone: string;
  locale: string;
  sso_required: boolean;
  session_timeout_minutes: number;
  allowed_ip_ranges: string[];
  notifications: { billing_email: string; weekly_digest: boolean };
}

/** One action of an impersonating engineer, as the tenant service saw it. */
export interface TenantAuditEntry {
  at: string;
  actor_email: string | null;
  actor_sub: string;
  session_id: string;
  ticket: string;
  mode: string;
  method: string;
  path: string;
  status: number;
}

/** Everything the demo API holds for one tenant. */
export interface TenantState {
  id: string;
  users: TenantUser[];
  invoices: TenantInvoice[];
  settings: TenantSettings;
  audit: TenantAuditEntry[];
}

const user = (
  id: string,
  name: string,
  email: string,
  role: TenantUser['role'],
  mfa: boolean,
): TenantUser => ({
  id,
  name,
  email,
  role,
  mfa_enabled: mfa,
});
const invoice = (
  id: string,
  amount: number,
  currency: TenantInvoice['currency'],
  status: TenantInvoice['status'],
  issuedAt: string,
): TenantInvoice => ({ id, amount, currency, status, issued_at: issuedAt });

/** Fresh demo data for acme, globex and initech (ids are unique across tenants). */
export function seedTenants(): Map<string, TenantState> {
  const tenants: TenantState[] = [
    {
      id: 'acme',
      users: [
        user('usr_ac01', 'Wile E. Coyote', 'wile@acme.example', 'owner', true),
        user('usr_ac02', 'Road Runner', 'beep@acme.example', 'admin', true),
        user('usr_ac03', 'Marvin Martian', 'marvin@acme.example', 'member', false),
        user('usr_ac04', 'Elmer Fudd', 'elmer@acme.example', 'billing', true),
      ],
      invoices: [
        invoice('inv_ac_2026_09', 48_000, 'USD', 'paid', '2026-09-01T00:00:00Z'),
        invoice('inv_ac_2026_10', 48_000, 'USD', 'paid', '2026-10-01T00:00:00Z'),
        invoice('inv_ac_2026_11', 51_200, 'USD', 'open', '2026-11-01T00:00:00Z'),
      ],
      settings: {
        display_name: 'Acme Corp',
        timezone: 'America/Phoenix',
        locale: 'en-US',
        sso_required: true,
        session_timeout_minutes: 60,
        allowed_ip_ranges: ['203.0.113.0/24'],
        notifications: { billing_email: 'ap@acme.example', weekly_digest: true },
      },
      audit: [],
    },
    {
      id: 'globex',
      users: [
        user('usr_gx01', 'Hank Scorpio', 'hank@globex.example', 'owner', true),
        user('usr_gx02', 'Homer Simpson', 'homer@globex.example', 'member', false),
        user('usr_gx03', 'Mindy Simmons', 'mindy@globex.example', 'admin', true),
      ],
      invoices: [
        invoice('inv_gx_2026_10', 1_250.5, 'EUR', 'paid', '2026-10-15T00:00:00Z'),
        invoice('inv_gx_2026_11', 1_250.5, 'EUR', 'overdue', '2026-11-15T00:00:00Z'),
      ],
      settings: {
        display_name: 'Globex Corporation',
        timezone: 'America/New_York',
        locale: 'en-US',
        sso_required: false,
        session_timeout_minutes: 480,
        allowed_ip_ranges: [],
        notifications: { billing_email: 'finance@globex.example', weekly_digest: false },
      },
      audit: [],
    },
    {
      id: 'initech',
      users: [
        user('usr_in01', 'Bill Lumbergh', 'bill@initech.example', 'owner', true),
        user('usr_in02', 'Peter Gibbons', 'peter@initech.example', 'member', false),
        user('usr_in03', 'Milton Waddams', 'milton@initech.example', 'member', false),
        user('usr_in04', 'Joanna', 'joanna@initech.example', 'billing', true),
      ],
      invoices: [
        invoice('inv_in_2026_08', 3_400, 'GBP', 'paid', '2026-08-01T00:00:00Z'),
        invoice('inv_in_2026_09', 3_400, 'GBP', 'void', '2026-09-01T00:00:00Z'),
        invoice('inv_in_2026_10', 3_650, 'GBP', 'open', '2026-10-01T00:00:00Z'),
      ],
      settings: {
        display_name: 'Initech',
        timezone: 'America/Chicago',
        locale: 'en-US',
        sso_required: false,
        session_timeout_minutes: 30,
        allowed_ip_ranges: ['198.51.100.0/24', '192.0.2.10/32'],
        notifications: { billing_email: 'accounts@initech.example', weekly_digest: true },
      },
      audit: [],
    },
  ];
  return new Map(tenants.map((tenant) => [tenant.id, tenant]));
}

/** The result of validating a settings patch: the merged settings, or what is wrong. */
export type SettingsPatchResult = { ok: true; settings: TenantSettings } | { ok: false; message: string };

const CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const LOCALE = /^[a-z]{2,3}(-[A-Z]{2})?$/;
const TIMEZONE = /^[A-Za-z_]+(\/[A-Za-z0-9_+-]+){0,2}$/;

/** Validates a JSON merge patch of settings (unknown keys and wrong types refused) and applies it. */
export function applySettingsPatch(current: TenantSettings, patch: unknown): SettingsPatchResult {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    return { ok: false, message: 'The body must be a JSON object of settings to change.' };
  }
  const next: TenantSettings = structuredClone(current);
  for (const [key, value] of Object.entries(patch)) {
    const problem = setSetting(next, key, value);
    if (problem) return { ok: false, message: problem };
  }
  return { ok: true, settings: next };
}

function setSetting(next: TenantSettings, key: string, value: unknown): string | undefined {
  switch (key) {
    case 'display_name':
      if (typeof value !== 'string' || value.trim().length < 1 || value.length > 100)
        return 'display_name must be a string of 1 to 100 characters.';
      next.display_name = value;
      return undefined;
    case 'timezone':
      if (typeof value !== 'string' || !TIMEZONE.test(value))
        return 'timezone must be an IANA zone like Europe/Berlin.';
      next.timezone = value;
      return undefined;
    case 'locale':
      if (typeof value !== 'string' || !LOCALE.test(value)) return 'locale must look like en-US.';
      next.locale = value;
      return undefined;
    case 'sso_required':
      if (typeof value !== 'boolean') return 'sso_required must be true or false.';
      next.sso_required = value;
      return undefined;
    case 'session_timeout_minutes':
      if (!Number.isInteger(value) || (value as number) < 5 || (value as number) > 1440)
        return 'session_timeout_minutes must be a whole number from 5 to 1440.';
      next.session_timeout_minutes = value as number;
      return undefined;
    case 'allowed_ip_ranges':
      if (
        !Array.isArray(value) ||
        value.length > 50 ||
        !value.every((r) => typeof r === 'string' && CIDR.test(r))
      )
        return 'allowed_ip_ranges must be a list of at most 50 IPv4 CIDR ranges like 203.0.113.0/24.';
      next.allowed_ip_ranges = value as string[];
      return undefined;
    case 'notifications':
      return setNotifications(next, value);
    default:
      return `Unknown setting ${JSON.stringify(key)}.`;
  }
}

function setNotifications(next: TenantSettings, value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return 'notifications must be an object.';
  for (const [key, inner] of Object.entries(value)) {
    if (key === 'billing_email') {
      if (typeof inner !== 'string' || inner.length > 254 || !EMAIL.test(inner))
        return 'notifications.billing_email must be an email address.';
      next.notifications.billing_email = inner;
    } else if (key === 'weekly_digest') {
      if (typeof inner !== 'boolean') return 'notifications.weekly_digest must be true or false.';
      next.notifications.weekly_digest = inner;
    } else {
      return `Unknown setting ${JSON.stringify(`notifications.${key}`)}.`;
    }
  }
  return undefined;
}

/** Users as CSV (RFC 4180), with cells that a spreadsheet would run as a formula defused. */
export function usersCsv(users: readonly TenantUser[]): string {
  const rows = [['id', 'name', 'email', 'role', 'mfa_enabled']];
  for (const u of users) rows.push([u.id, u.name, u.email, u.role, String(u.mfa_enabled)]);
  return rows.map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
