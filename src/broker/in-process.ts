/**
 * The broker's API called from inside the broker (the console): `deps.api` answers through the
 * Fastify route table with `inject` (buffered JSON, like a client would get it); `deps.route` runs one
 * route's guards and handler directly, so a streamed answer (the watch) stays a stream. Both
 * authenticate the caller's broker token and apply the route's guards exactly as over HTTP.
 */
import type { FastifyInstance } from 'fastify';
import type { BrokerDeps, HandlerContext, HandlerResult } from './context.js';
import { authenticate, Guard } from './guards.js';
import { ROUTES } from './routes.js';

/** Sets `deps.api` and `deps.route` for `app`. */
export function wireInProcessApi(app: FastifyInstance, deps: BrokerDeps): void {
  deps.api = async (call) => {
    const answer = await app.inject({
      method: call.method,
      url: call.path,
      headers: {
        authorization: `Bearer ${call.token}`,
        ...(call.stepUp ? { 'imp-step-up': call.stepUp } : {}),
        ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(call.body !== undefined ? { payload: JSON.stringify(call.body) } : {}),
      remoteAddress: call.ip,
    });
    let body: unknown = null;
    try {
      body = answer.body ? JSON.parse(answer.body) : null;
    } catch {
      body = answer.body;
    }
    return { status: answer.statusCode, body, headers: answer.headers };
  };

  // A route run in-process on a real stream (the console's watch), or a route's guards at a handler of
  // the caller's choosing (the console's watch page): the same principal, guards and refusals as over HTTP.
  deps.route = async (call, handler) => {
    const route = ROUTES.find((r) => r.method === call.method && r.path === call.route);
    if (!route) throw new Error(`No route ${call.method} ${call.route}.`);
    const ctx: Omit<HandlerContext, 'guard'> = {
      deps,
      requestId: call.requestId,
      principal: route.auth ? await authenticate(deps, `Bearer ${call.token}`) : null,
      params: call.params,
      query: {},
      body: null,
      headers: {},
      ip: call.ip,
      signal: call.signal,
    };
    return runGuarded(ctx, route, handler ?? route.handler);
  };
}

/** A route's guards around a handler: before it, and (what it must have evaluated) after it. */
export async function runGuarded(
  ctx: Omit<HandlerContext, 'guard'> & { guard?: Guard },
  route: (typeof ROUTES)[number],
  handler: (ctx: HandlerContext) => Promise<HandlerResult>,
): Promise<HandlerResult> {
  const guard = new Guard(ctx as HandlerContext, route);
  ctx.guard = guard;
  await guard.beforeHandler();
  const result = await handler(ctx as HandlerContext);
  // A handler that skipped a guard its route declares answers 500, never its result.
  guard.assertEvaluated();
  return result;
}
