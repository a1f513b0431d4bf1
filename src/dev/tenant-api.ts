/**
 * The demo tenant API of `imp dev`: a stand-in for the SaaS backend. It trusts nothing but a session
 * token that `imp/verify` accepts (with the broker status check on), serves only the token's tenant
 * (`sub`), refuses writes to read sessions — defence in depth behind the broker's proxy — and keeps
 * its own record of what impersonating engineers did.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  checkAccess,
  createVerifier,
  type ImpersonationContext,
  ImpersonationError,
  impersonationErrorResponse,
  requireImpersonation,
  type VerifierOptions,
} from '@imp/verify';
import { seedTenants, type TenantState } from './tenant-data.js';
import { type Answer, json, notFound, ROUTES, type Route } from './tenant-routes.js';

/** Options for {@link startTenantApi}. */
export interface TenantApiOptions {
  port: number;
  host?: string;
  /** How to verify session tokens; may instead be given later with `configure` (the broker URL comes later). */
  verifier?: VerifierOptions;
  /** Milliseconds since the epoch (the stack's clock); used for token times and the audit list. */
  now?: () => number;
}

/** A running demo tenant API. */
export interface TenantApi {
  url: string;
  /** Sets (or replaces) the token verifier; the status check is on unless `statusCheck: false`. */
  configure(options: VerifierOptions): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024;
const MAX_AUDIT_ENTRIES = 1000;
/** Clients of multi-tenant APIs often name the tenant in a header; when they do, it must be the token's. */
const TENANT_HEADER = 'x-tenant-id';

/** Starts the demo tenant API on loopback. */
export async function startTenantApi(options: TenantApiOptions): Promise<TenantApi> {
  const now = options.now ?? Date.now;
  const tenants = seedTenants();
  let guard: ReturnType<typeof requireImpersonation> | undefined;

  const configure = (verifierOptions: VerifierOptions) => {
    const verifier = createVerifier({ statusCheck: {}, now, ...verifierOptions });
    guard = requireImpersonation(verifier, { tenant: (req) => headerValue(req, TENANT_HEADER) });
  };
  if (options.verifier) configure(options.verifier);

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = new URL(request.url ?? '/', 'http://tenant.invalid').pathname;
    if (path === '/healthz') {
      if (request.method !== 'GET' && request.method !== 'HEAD')
        return send(response, methodNotAllowed(['GET']));
      return send(
        response,
        json({ ok: true, service: 'imp demo tenant API', configured: guard !== undefined }),
      );
    }
    const candidates = ROUTES.filter((r) => r.path.test(path));
    const route = candidates.find((r) => r.method === request.method);
    if (!route) {
      return send(
        response,
        candidates.length > 0 ? methodNotAllowed(candidates.map((r) => r.method)) : notFound('Route'),
      );
    }
    if (!guard) {
      return send(
        response,
        json({ error: 'not_configured', message: 'The tenant API has no verifier yet.' }, 503),
      );
    }
    // Authenticates and checks the tenant header; refusals are answered by the guard itself.
    const context = await guard(request, response);
    if (!context) return;
    const tenant = tenants.get(context.tenant);
    const answer = await answerFor(route, path, tenant, context, request);
    if (tenant) record(tenant, context, request.method ?? 'GET', path, answer.status, now);
    send(response, answer);
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent)
        send(response, json({ error: 'internal_error', message: 'Something went wrong.' }, 500));
      else response.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, resolve);
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('The tenant API has no TCP address.');
  return {
    url: `http://${host}:${address.port}`,
    configure,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function answerFor(
  route: Route,
  path: string,
  tenant: TenantState | undefined,
  context: ImpersonationContext,
  request: IncomingMessage,
): Promise<Answer> {
  if (!tenant) {
    const refusal = new ImpersonationError(
      'wrong_tenant',
      `This service hosts no tenant ${JSON.stringify(context.tenant)}.`,
    );
    return refusalAnswer(refusal);
  }
  try {
    checkAccess(context, { scope: route.scope });
  } catch (error) {
    if (error instanceof ImpersonationError) return refusalAnswer(error);
    throw error;
  }
  let body: unknown;
  if (route.method !== 'GET') {
    const read = await readJsonBody(request);
    if ('answer' in read) return read.answer;
    body = read.body;
  }
  let params: string[];
  try {
    params = route.path.exec(path)?.slice(1).map(decodeURIComponent) ?? [];
  } catch {
    return notFound('Resource');
  }
  return route.handler({ tenant, params, body });
}

function refusalAnswer(error: ImpersonationError): Answer {
  const { status, headers, body } = impersonationErrorResponse(error);
  return { status, body, headers };
}

async function readJsonBody(request: IncomingMessage): Promise<{ body: unknown } | { answer: Answer }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      return { answer: json({ error: 'too_large', message: 'The body is too large.' }, 413) };
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return { body: undefined };
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json' && type !== 'application/merge-patch+json') {
    return {
      answer: json({ error: 'unsupported_media_type', message: 'Send the body as application/json.' }, 415),
    };
  }
  try {
    return { body: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch {
    return { answer: json({ error: 'invalid_json', message: 'The body is not valid JSON.' }, 400) };
  }
}

function record(
  tenant: TenantState,
  context: ImpersonationContext,
  method: string,
  path: string,
  status: number,
  now: () => number,
): void {
  tenant.audit.push({
    at: new Date(now()).toISOString(),
    actor_email: context.actor.email,
    actor_sub: context.actor.sub,
    session_id: context.sessionId,
    ticket: context.ticket,
    mode: context.mode,
    method,
    path,
    status,
  });
  if (tenant.audit.length > MAX_AUDIT_ENTRIES)
    tenant.audit.splice(0, tenant.audit.length - MAX_AUDIT_ENTRIES);
}

function methodNotAllowed(methods: string[]): Answer {
  return {
    status: 405,
    body: { error: 'method_not_allowed', message: `Use ${methods.join(' or ')}.` },
    headers: { allow: methods.join(', ') },
  };
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function send(response: ServerResponse, answer: Answer): void {
  const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
  response
    .writeHead(answer.status, {
      'content-type': answer.contentType ?? 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...answer.headers,
    })
    .end(text);
}
