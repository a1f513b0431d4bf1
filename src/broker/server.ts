/**
 * `createBroker(deps)`: a Fastify server wired from the route table. Tests start it on port 0 and
 * close it; `imp broker serve` and `imp dev` use the same function.
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ImpError, InvalidInputError, toImpError } from '../core/errors.js';
import { AlertDispatcher } from './alerts.js';
import { startAuditSink } from './audit-sink.js';
import { Checkpointer } from './checkpoints.js';
import { consoleErrorPage } from './console/http.js';
import type { BrokerDeps, HandlerContext } from './context.js';
import { authenticate } from './guards.js';
import { errorResponse } from './http-errors.js';
import { runGuarded, wireInProcessApi } from './in-process.js';
import { loadAuditNoteKey } from './note-key.js';
import { Notifier } from './notify/dispatcher.js';
import { withOutbox } from './notify/outbox.js';
import { PROXY_METHODS, proxyHandler } from './proxy.js';
import { RefusalFolder } from './refusal-fold.js';
import { PROXY_PATH, ROUTES } from './routes.js';
import { sweepExpired } from './sessions.js';
import { TicketService } from './tickets/service.js';
import { gateStore, WitnessPusher } from './witnesses.js';

/** A running (or ready to run) broker. */
export interface Broker {
  app: FastifyInstance;
  deps: BrokerDeps;
  /** Listens on host:port (0 = any free port) and returns the base URL. */
  listen(port: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

/** Builds the broker; records `policy.loaded` before it serves anything (fail-closed). */
export async function createBroker(deps: BrokerDeps): Promise<Broker> {
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    // Behind a TLS proxy every peer is the proxy: only proxies the policy names may say who the client is.
    trustProxy:
      deps.policy.rateLimit.trustedProxies.length > 0 ? deps.policy.rateLimit.trustedProxies : false,
    clientErrorHandler: answerClientError,
    // Router-level refusals (undecodable URL, over-long parameter) answer in the API's error shape too.
    frameworkErrors: (error, request, reply) => sendError(deps, request, reply, error),
  });

  // RFC 8693 §2.1 and RFC 7523 §2.1 send their parameters form-encoded; each may appear once (RFC 6749 §3.2).
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => {
      const record: Record<string, string> = {};
      for (const [name, value] of new URLSearchParams(body as string)) {
        if (Object.hasOwn(record, name))
          return done(
            new InvalidInputError(`Give the parameter ${JSON.stringify(name.slice(0, 40))} once.`),
            undefined,
          );
        record[name] = value;
      }
      done(null, record);
    },
  );
  app.setErrorHandler((error, request, reply) => sendError(deps, request, reply, error));
  app.setNotFoundHandler((request, reply) =>
    sendError(
      deps,
      request,
      reply,
      new ImpError('IMP_NOT_FOUND', `No such endpoint: ${request.method} ${request.url.split('?')[0]}`),
    ),
  );

  // Routes anyone can call are limited per source address: a flood is answered 429 (Retry-After)
  // before any body is parsed, token verified or audit event written. /healthz stays open for
  // load balancers; authenticated routes are bounded by their login instead.
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new ImpError(
        'IMP_RATE_LIMITED',
        `Too many requests from your address: at most ${context.max} per ${deps.policy.rateLimit.window} s. Try again in ${context.after}.`,
      ),
  });
  const limitFor = (route: (typeof ROUTES)[number]) =>
    route.auth || route.path === '/healthz'
      ? undefined
      : {
          max: route.path === '/v1/login' ? deps.policy.rateLimit.login : deps.policy.rateLimit.public,
          timeWindow: deps.policy.rateLimit.window * 1000,
        };

  for (const route of ROUTES) {
    const limit = limitFor(route);
    app.route({
      method: route.method,
      url: route.path,
      ...(limit ? { config: { rateLimit: limit } } : {}),
      handler: async (request, reply) => {
        const controller = new AbortController();
        request.raw.once('close', () => controller.abort());
        const ctx: Omit<HandlerContext, 'guard'> = {
          deps,
          requestId: request.id,
          principal: route.auth ? await authenticate(deps, request.headers.authorization) : null,
          params: request.params as Record<string, string>,
          query: singleValued(request.query),
          body: request.body ?? null,
          headers: request.headers,
          ip: request.ip,
          signal: controller.signal,
        };
        const result = await runGuarded(ctx, route, route.handler);
        reply.status(result.status ?? 200);
        for (const [name, value] of Object.entries(result.headers ?? {})) reply.header(name, value);
        const cacheControl = result.headers?.['cache-control'];
        reply.header('cache-control', typeof cacheControl === 'string' ? cacheControl : 'no-store');
        return result.body ?? null;
      },
    });
  }

  wireInProcessApi(app, deps);
  deps.auditNote ??= await loadAuditNoteKey({
    auditKey: undefined,
    stateDir: '',
    origin: deps.policy.audit.origin,
    keys: deps.keys,
  });
  const baseStore = deps.store;
  const notifier = new Notifier(deps, deps.notifySettings);
  deps.notifier = notifier;
  // Every store user below (witnesses included) queues notifications with the events it appends.
  const rawStore = withOutbox(baseStore, deps.policy, () => notifier.kick());
  const witnesses = new WitnessPusher(deps, rawStore);
  deps.witnesses = witnesses;
  // Witnesses too far behind: refuse work exactly like an unwritable store (503, nothing forwarded).
  deps.store = gateStore(rawStore, () => witnesses.lagging());
  const checkpointer = new Checkpointer(deps, deps.auditNote, witnesses);
  await witnesses.init(await rawStore.listNotes());
  await checkpointer.init();
  deps.checkpoint = () => checkpointer.request();
  const stopSink = startAuditSink(deps);
  const alerts = new AlertDispatcher(deps, deps.alertSettings);
  deps.alerts = alerts;
  const tickets = new TicketService(deps, deps.ticketSettings);
  deps.tickets = tickets;
  const refusals = new RefusalFolder(deps);
  deps.refusals = refusals;
  app.addHook('onClose', async () => {
    await refusals
      .close()
      .catch((error: unknown) =>
        deps.log('error', 'could not audit folded refusals', { message: (error as Error).message }),
      );
    await alerts.close();
    await notifier.close();
    await tickets.close();
    stopSink();
    await checkpointer.close();
    await witnesses.close();
    deps.store = baseStore;
  });

  await deps.store.transaction((tx) =>
    tx.appendAudit(
      {
        type: 'policy.loaded',
        data: {
          source: deps.policySource,
          sha256: deps.policyHash,
          roles: deps.policy.roles.length,
          tenants: deps.policy.tenants.map((t) => t.id),
        },
      },
      deps.clock.now(),
    ),
  );

  // What a previous run left undelivered goes out now; then the outbox is polled.
  notifier.start();

  // Expiry happens at `exp` even if nobody asks: the sweeper audits it within a second.
  const stopSweeper = deps.clock.every(
    1000,
    () => {
      sweepExpired(deps).catch((error: unknown) =>
        deps.log('error', 'expiry sweep failed', { message: (error as Error).message }),
      );
    },
    { unref: true },
  );
  app.addHook('onClose', async () => stopSweeper());

  // Shutdown: fastify closes the connections that are idle when it starts closing, but a keep-alive
  // connection whose request was still in flight then idles until keepAliveTimeout (72 s) and holds
  // close() that long. Responses finished while closing ask the peer to close (`Connection: close`),
  // and a stream that outlived the start of shutdown has its connection closed once it finishes.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing && !reply.raw.headersSent) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (_request, _reply, done) => {
    if (closing) setImmediate(() => app.server.closeIdleConnections());
    done();
  });

  // The proxy streams bodies untouched: its own scope, with a pass-through body parser.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.route({
      method: [...PROXY_METHODS],
      url: PROXY_PATH,
      handler: (request, reply) => proxyHandler(deps, request, reply),
    });
    scope.route({
      method: [...PROXY_METHODS],
      url: PROXY_PATH.slice(0, -2),
      handler: (request, reply) => proxyHandler(deps, request, reply),
    });
  });

  return {
    app,
    deps,
    async listen(port, host = '127.0.0.1') {
      await app.listen({ port, host });
      const address = app.server.address();
      if (!address || typeof address === 'string') throw new Error('The broker has no TCP address.');
      return `http://${host}:${address.port}`;
    },
    async close() {
      await app.close();
    },
  };
}

function sendError(
  deps: BrokerDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  raw: unknown,
): FastifyReply {
  const error = fromFastify(raw);
  const { status, headers, body } = errorResponse(error, request.id);
  if (status >= 500)
    deps.log('error', 'request failed', {
      request_id: request.id,
      code: error.code,
      message: error.message,
      cause: String((error.cause as Error | undefined)?.message ?? ''),
    });
  if (request.url === '/console' || request.url.startsWith('/console/')) {
    const page = consoleErrorPage(deps, status, body.error.message);
    return reply.status(status).headers(page.headers).header('cache-control', 'no-store').send(page.body);
  }
  return reply.status(status).headers(headers).header('cache-control', 'no-store').send(body);
}

// `?state=a&state=b` parses as an array; handlers read strings, so a repeated parameter is refused here.
function singleValued(query: unknown): Record<string, string | undefined> {
  const record = (query ?? {}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(record)) {
    if (typeof value !== 'string')
      throw new InvalidInputError(`Give the query parameter ${JSON.stringify(name.slice(0, 40))} once.`);
  }
  return record as Record<string, string | undefined>;
}

// Requests Node's HTTP parser refuses (bad method, CR/LF in a header, smuggling, oversized headers)
// never reach a route; answer them in the API's own error shape too, then close the connection.
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'The request headers are too large.']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'The request took too long to arrive.']
        : [400, 'Bad Request', 'The request is not valid HTTP.'];
  const body = JSON.stringify({ error: { code: 'IMP_INVALID_INPUT', message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

// Fastify's own errors (bad JSON, body too large, wrong content type) become clear 4xx ImpErrors.
function fromFastify(raw: unknown): ImpError {
  if (raw instanceof ImpError) return raw;
  const fastifyError = raw as { statusCode?: number; code?: string; message?: string };
  if (
    typeof fastifyError.statusCode === 'number' &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return new InvalidInputError('The request body is too large.');
    if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return new InvalidInputError('Send JSON (Content-Type: application/json).');
    if (fastifyError.code === 'FST_ERR_BAD_URL')
      return new InvalidInputError('The URL is not valid: it has broken percent-encoding.');
    return new InvalidInputError(`Bad request: ${fastifyError.message ?? 'invalid body'}`);
  }
  return toImpError(raw);
}
