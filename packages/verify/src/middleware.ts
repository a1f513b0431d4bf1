/**
 * Request guards over a {@link Verifier}: one for plain node:http and Express (same signature, `next`
 * optional), one for Fastify's preHandler. Refusals follow RFC 6750 §3: 401 with
 * `WWW-Authenticate: Bearer error="invalid_token"`, 403 with `error="insufficient_scope"`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ImpersonationContext, ImpersonationError, type Verifier } from './verifier.js';

/** What a route demands beyond a valid session token. */
export interface AccessRequirement {
  /** `write` needs a write session; default `read`. */
  scope?: 'read' | 'write';
  /** The tenant this request is about (from a path or header); when given it must be the token's. */
  tenant?: string | undefined;
}

/** Options of {@link requireImpersonation}. */
export interface RequireImpersonationOptions<Req> {
  scope?: 'read' | 'write';
  /** Reads the tenant the request is about; undefined means the route names none. */
  tenant?: (req: Req) => string | undefined;
}

/** A request that passed the guard carries the context here. */
export interface ImpersonatedRequest {
  impersonation?: ImpersonationContext;
}

/** Throws {@link ImpersonationError} unless the context meets the requirement. */
export function checkAccess(context: ImpersonationContext, requirement: AccessRequirement): void {
  if (requirement.scope === 'write' && !context.scopes.includes('write')) {
    throw new ImpersonationError(
      'insufficient_scope',
      'This is a read-only session; the request needs write access.',
    );
  }
  if (requirement.tenant !== undefined && requirement.tenant !== context.tenant) {
    throw new ImpersonationError(
      'wrong_tenant',
      `The session is for tenant ${JSON.stringify(context.tenant)}, not ${JSON.stringify(requirement.tenant)}.`,
    );
  }
}

/** The HTTP answer for a refusal: status, headers (RFC 6750 challenge) and a `{error, message}` body. */
export function impersonationErrorResponse(error: ImpersonationError): {
  status: number;
  headers: Record<string, string>;
  body: { error: string; message: string };
} {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  const description = error.message.replace(/["\\]/g, "'");
  if (error.code === 'missing_token') {
    // RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
    headers['www-authenticate'] = 'Bearer';
  } else if (error.status === 403) {
    const scope = error.code === 'insufficient_scope' ? ', scope="tenant:read tenant:write"' : '';
    headers['www-authenticate'] =
      `Bearer error="insufficient_scope", error_description="${description}"${scope}`;
  } else if (error.status === 401) {
    headers['www-authenticate'] = `Bearer error="invalid_token", error_description="${description}"`;
  } else {
    headers['retry-after'] = '5';
  }
  return { status: error.status, headers, body: { error: error.code, message: error.message } };
}

/** Verifies the bearer token and the requirement; resolves the context or throws {@link ImpersonationError}. */
export async function authorizeRequest(
  verifier: Verifier,
  authorizationHeader: string | undefined,
  requirement: AccessRequirement = {},
): Promise<ImpersonationContext> {
  const context = await verifier.verifyRequest(authorizationHeader);
  checkAccess(context, requirement);
  return context;
}

/**
 * A guard for node:http and Express: sets `req.impersonation` and calls `next()`, or answers the
 * refusal itself. Without `next` (plain node:http) it resolves the context, or undefined once it answered.
 */
export function requireImpersonation<Req extends IncomingMessage = IncomingMessage>(
  verifier: Verifier,
  options: RequireImpersonationOptions<Req> = {},
): (
  req: Req & ImpersonatedRequest,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => Promise<ImpersonationContext | undefined> {
  return async (req, res, next) => {
    let context: ImpersonationContext;
    try {
      context = await authorizeRequest(verifier, req.headers.authorization, {
        scope: options.scope ?? 'read',
        tenant: options.tenant?.(req),
      });
    } catch (error) {
      if (error instanceof ImpersonationError) {
        const answer = impersonationErrorResponse(error);
        if (!res.headersSent) res.writeHead(answer.status, answer.headers).end(JSON.stringify(answer.body));
        return undefined;
      }
      if (next) next(error);
      else if (!res.headersSent) {
        res
          .writeHead(500, { 'content-type': 'application/json; charset=utf-8' })
          .end(JSON.stringify({ error: 'internal_error', message: 'The token could not be checked.' }));
      }
      return undefined;
    }
    req.impersonation = context;
    next?.();
    return context;
  };
}

/**
 * The guard for a route that changes state whatever its method — a `GET /reset-password`, a
 * `GET /export?delete=1`: only a write session passes. imp's proxy keeps read-only sessions to
 * GET/HEAD/OPTIONS, but it cannot know that one of your GETs writes; this line does.
 */
export function requireWriteSession<Req extends IncomingMessage = IncomingMessage>(
  verifier: Verifier,
  options: Omit<RequireImpersonationOptions<Req>, 'scope'> = {},
): ReturnType<typeof requireImpersonation<Req>> {
  return requireImpersonation<Req>(verifier, { ...options, scope: 'write' });
}

/** The parts of a Fastify request the hook uses (structural, so verify does not depend on fastify). */
export interface FastifyLikeRequest extends ImpersonatedRequest {
  headers: { authorization?: string | undefined };
  /** Route parameters, for a `tenant` reader such as `(r) => r.params.tenant`. */
  params?: unknown;
}

/** The parts of a Fastify reply the hook uses. */
export interface FastifyLikeReply {
  code(statusCode: number): FastifyLikeReply;
  headers(values: Record<string, string>): FastifyLikeReply;
  send(payload?: unknown): FastifyLikeReply;
}

/** Options of {@link fastifyImpersonation}. */
export interface FastifyImpersonationOptions {
  scope?: 'read' | 'write';
  /** Reads the tenant the request is about; undefined means the route names none. */
  tenant?: (request: FastifyLikeRequest) => string | undefined;
}

/** A Fastify `preHandler` hook: sets `request.impersonation` or answers the refusal. */
export function fastifyImpersonation(
  verifier: Verifier,
  options: FastifyImpersonationOptions = {},
): (request: FastifyLikeRequest, reply: FastifyLikeReply) => Promise<FastifyLikeReply | undefined> {
  return async (request, reply) => {
    try {
      request.impersonation = await authorizeRequest(verifier, request.headers.authorization, {
        scope: options.scope ?? 'read',
        tenant: options.tenant?.(request),
      });
      return undefined;
    } catch (error) {
      if (!(error instanceof ImpersonationError)) throw error;
      const answer = impersonationErrorResponse(error);
      // Returning the reply tells Fastify the hook answered and the handler must not run.
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    }
  };
}
