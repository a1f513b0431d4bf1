/** The demo tenant API's routes: method, path, the scope the session must allow, and a small handler. */
import { applySettingsPatch, type TenantState, usersCsv } from './tenant-data.js';

/** What a handler answers. */
export interface Answer {
  status: number;
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

/** What a handler receives: the token's tenant, path parameters, the parsed body. */
export interface RouteContext {
  tenant: TenantState;
  params: string[];
  body: unknown;
}

/** One route. */
export interface Route {
  method: 'GET' | 'POST' | 'PATCH';
  path: RegExp;
  scope: 'read' | 'write';
  handler: (ctx: RouteContext) => Answer;
}

/** A JSON answer. */
export const json = (body: unknown, status = 200): Answer => ({ status, body });
/** A 404 naming what was not found. */
export const notFound = (what: string): Answer =>
  json({ error: 'not_found', message: `${what} not found.` }, 404);

/** Every route; `scope` is what the session must allow. */
export const ROUTES: readonly Route[] = [
  {
    method: 'GET',
    path: /^\/v1\/users$/,
    scope: 'read',
    handler: ({ tenant }) => json({ tenant: tenant.id, users: tenant.users }),
  },
  {
    method: 'GET',
    path: /^\/v1\/users\/([^/]+)$/,
    scope: 'read',
    handler: ({ tenant, params }) => {
      const found = tenant.users.find((u) => u.id === params[0]);
      return found ? json(found) : notFound('User');
    },
  },
  {
    method: 'POST',
    path: /^\/v1\/users\/([^/]+)\/reset-mfa$/,
    scope: 'write',
    handler: ({ tenant, params }) => {
      const found = tenant.users.find((u) => u.id === params[0]);
      if (!found) return notFound('User');
      found.mfa_enabled = false;
      return json({ ...found, message: 'MFA was reset; the user enrols again at next sign-in.' });
    },
  },
  {
    method: 'GET',
    path: /^\/v1\/invoices$/,
    scope: 'read',
    handler: ({ tenant }) => json({ tenant: tenant.id, invoices: tenant.invoices }),
  },
  {
    method: 'GET',
    path: /^\/v1\/settings$/,
    scope: 'read',
    handler: ({ tenant }) => json({ tenant: tenant.id, settings: tenant.settings }),
  },
  {
    method: 'PATCH',
    path: /^\/v1\/settings$/,
    scope: 'write',
    handler: ({ tenant, body }) => {
      const result = applySettingsPatch(tenant.settings, body);
      if (!result.ok) return json({ error: 'invalid_settings', message: result.message }, 400);
      tenant.settings = result.settings;
      return json({ tenant: tenant.id, settings: tenant.settings });
    },
  },
  {
    method: 'GET',
    path: /^\/v1\/export\/users\.csv$/,
    scope: 'read',
    handler: ({ tenant }) => ({
      status: 200,
      body: usersCsv(tenant.users),
      contentType: 'text/csv; charset=utf-8',
      headers: { 'content-disposition': `attachment; filename="${tenant.id}-users.csv"` },
    }),
  },
  {
    method: 'GET',
    path: /^\/v1\/audit$/,
    scope: 'read',
    handler: ({ tenant }) => json({ tenant: tenant.id, entries: [...tenant.audit] }),
  },
];
