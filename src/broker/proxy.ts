/**
 * The audited proxy: `ANY /v1/sessions/:id/proxy/*`. In order: the caller owns the session → it is
 * active → the method fits the scope → the path stays inside the tenant's upstream → the call is
 * classified → `action.requested` is written (no audit, no call) → forwarded with a fresh session
 * JWT, never the engineer's broker token → `action.completed` (status, bytes, duration). Every
 * refusal is audited as `action.denied` with the rule.
 */
import { randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { request as upstreamRequest } from 'undici';
import { ForbiddenError, ImpError, InvalidInputError, NotFoundError } from '../core/errors.js';
import { machineAllows } from '../core/policy/machines.js';
import { isReadMethod, matchesPathGlob, resolveProxyTarget } from '../core/proxy-path.js';
import { readOnlyViolation } from '../core/proxy-request.js';
import { actorOf, type BrokerDeps, type Principal } from './context.js';
import { authenticateCaller, forwardHeaders, limitBody, queryOf } from './proxy-caller.js';
import { recordingStarted } from './recording.js';
import { mintSessionToken } from './session-tokens.js';
import { watchSessionEnd } from './session-watch.js';
import { loadSession, ownsSession, sessionAudit } from './sessions.js';
import { supervisionRefusal } from './supervision.js';

/** Methods the proxy accepts at all. */
export const PROXY_METHODS = ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

// Response headers never passed back: hop-by-hop (RFC 9110 §7.6.1), and the upstream's cookies.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
]);

/** Answers up to this size, with a Content-Length, are read whole and sent in one write. */
const INLINE_MAX_BYTES = 64 * 1024;

/** What kind of action a call is, for policy and the summary. */
export type ActionKind = 'read' | 'write' | 'export';

/** Handles one proxied call. */
export async function proxyHandler(
  deps: BrokerDeps,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const started = deps.clock.now();
  const requestId = request.id;
  const id = (request.params as { id?: string }).id ?? '';
  const principal = await authenticateCaller(deps, request.headers.authorization, id);
  const session = await loadSession(deps, id);
  const method = request.method.toUpperCase();
  const rawPath = request.url.slice(request.url.indexOf('/proxy') + '/proxy'.length) || '/';
  if (session && !ownsSession(principal, session)) {
    // Someone else's session: answered like an unknown id (no oracle), but a stolen or guessed id
    // being tried is worth a record.
    await deps.store.transaction((tx) =>
      tx.appendAudit(
        sessionAudit(
          session,
          'action.denied',
          { method, path: rawPath.slice(0, 512), kind: null, rule: 'session.owner', request_id: requestId },
          actorFor(principal),
        ),
        deps.clock.now(),
      ),
    );
  }
  if (!session || !ownsSession(principal, session))
    throw new NotFoundError(`No session ${id.slice(0, 64)} of yours.`);
  const deny = async (rule: string, error: ImpError, kind: ActionKind | null = null): Promise<never> => {
    await deps.store.transaction((tx) =>
      tx.appendAudit(
        sessionAudit(
          session,
          'action.denied',
          { method, path: rawPath.slice(0, 512), kind, rule, request_id: requestId },
          actorFor(principal),
        ),
        deps.clock.now(),
      ),
    );
    throw error;
  };

  if (session.state !== 'active') {
    const code = session.state === 'expired' ? 'IMP_SESSION_EXPIRED' : 'IMP_SESSION_ENDED';
    return deny(
      `session.${session.state}`,
      new ImpError(code, `Session ${session.id} is ${session.state}; start a new one.`, {
        details: { state: session.state },
      }),
    );
  }
  // A modified CLI cannot skip its recording: where policy requires one, no call is made until the
  // session's chunk 0 is stored (imp start's pty, imp exec's command line send it first).
  if (!(await recordingStarted(deps, session)))
    return deny(
      'recording.not_started',
      new ForbiddenError(
        `Refused by rule recording.not_started: policy requires session ${session.id} to be recorded, and its recording has not started. Work in the session's recorded shell (imp start without --no-shell) or under imp exec.`,
        'recording.not_started',
      ),
    );
  const unsupervised = await supervisionRefusal(deps, session);
  if (unsupervised)
    return deny(unsupervised.rule, new ForbiddenError(unsupervised.message, unsupervised.rule));
  if (!isReadMethod(method) && session.scope !== 'write') {
    return deny(
      'scope.read_only',
      new ForbiddenError(
        `Denied by rule scope.read_only: ${method} needs a write session; this one is read-only.`,
        'scope.read_only',
      ),
      'write',
    );
  }
  const readOnly =
    session.scope !== 'write'
      ? readOnlyViolation({ query: queryOf(rawPath), headers: request.headers })
      : null;
  if (readOnly === 'scope.method_override')
    return deny(
      readOnly,
      new ForbiddenError(
        `Denied by rule ${readOnly}: method overrides (headers or ?_method=/method= parameters) are refused in read-only sessions.`,
        readOnly,
      ),
    );
  if (readOnly === 'scope.read_body')
    return deny(
      readOnly,
      new ForbiddenError(
        `Denied by rule ${readOnly}: a read-only session sends no request body (${method} with a body).`,
        readOnly,
      ),
    );
  const base = deps.policy.tenants.find((t) => t.id === session.tenant)?.upstream[session.environment];
  if (!base)
    return deny(
      'tenant.environment',
      new ForbiddenError(
        `Tenant ${session.tenant} has no upstream for ${session.environment} any more.`,
        'tenant.environment',
      ),
    );
  const target = resolveProxyTarget(base, rawPath);
  if (!target.ok)
    return deny(
      'path.escape',
      new InvalidInputError(`Refused by rule path.escape: ${target.reason}.`, { rule: 'path.escape' }),
    );
  if (principal.machine !== null) {
    // After scope: a machine reads only what its policy entry lists, and an entry removed from the
    // policy stops its sessions at once. An allow-list must not over-match, so the path must match
    // both as the upstream routes it (canonical: decoded, `;` parameters and `//` dropped) and as
    // sent: `/v1/%75sers` or `/v1/users;x` are refused rather than guessed at.
    const machine = deps.policy.machines.find((m) => m.name === principal.machine);
    if (
      !machine ||
      !machineAllows(machine, method, target.canonical) ||
      !machineAllows(machine, method, target.path)
    )
      return deny(
        'machine.path_allowlist',
        new ForbiddenError(
          `Denied by rule machine.path_allowlist: machine ${principal.machine} may not call ${method} ${target.canonical}.`,
          'machine.path_allowlist',
        ),
        isReadMethod(method) ? 'read' : 'write',
      );
  }
  const kind = classify(deps, method, target.canonical);
  if (kind === 'export') {
    const exportScope = deps.policy.proxy.exportScope;
    if (exportScope === 'forbidden')
      return deny(
        'export.forbidden',
        new ForbiddenError(
          'Denied by rule export.forbidden: exports are not allowed through imp.',
          'export.forbidden',
        ),
        kind,
      );
    if (exportScope === 'write' && session.scope !== 'write') {
      return deny(
        'export.write_scope',
        new ForbiddenError(
          'Denied by rule export.write_scope: exports need a write session.',
          'export.write_scope',
        ),
        kind,
      );
    }
  }
  const declaredLength = Number(request.headers['content-length'] ?? 0);
  if (declaredLength > deps.policy.proxy.maxBodyBytes) {
    return deny(
      'proxy.max_body',
      new InvalidInputError(
        `Refused by rule proxy.max_body: the body is over ${deps.policy.proxy.maxBodyBytes} bytes.`,
        { rule: 'proxy.max_body' },
      ),
      kind,
    );
  }

  const actionId = randomUUID();
  const details = { action_id: actionId, method, path: target.path, kind, request_id: requestId };
  // Fail-closed: if this cannot be written, the call is not made (the store throws 503). The
  // session token is signed while the event's sync runs; it is sent only once the event is durable.
  const [, token] = await Promise.all([
    deps.store.transaction((tx) =>
      tx.appendAudit(
        sessionAudit(session, 'action.requested', details, actorFor(principal)),
        deps.clock.now(),
      ),
    ),
    mintSessionToken(deps, session),
  ]);
  const outcome = async (
    type: 'action.completed' | 'action.failed' | 'action.cut',
    data: Record<string, unknown>,
  ) => {
    const duration = deps.clock.now() - started;
    try {
      // The answer has gone out: a completion may wait (briefly) to share the next call's commit
      // and sync instead of paying for its own. Failures and cuts are written at once.
      await deps.store.transaction(
        (tx) =>
          tx.appendAudit(
            sessionAudit(session, type, { ...details, ...data, duration_ms: duration }, actorFor(principal)),
            deps.clock.now(),
          ),
        { lazy: type === 'action.completed' },
      );
    } catch (error) {
      deps.log('error', 'could not audit the outcome of a proxied call', {
        action_id: actionId,
        message: (error as Error).message,
      });
    }
  };
  const body =
    method === 'GET' || method === 'HEAD'
      ? undefined
      : limitBody(request.raw, deps.policy.proxy.maxBodyBytes);
  let upstream: Awaited<ReturnType<typeof upstreamRequest>> | undefined;
  let bytes = 0;
  let finished = false;
  // Ending, expiry or revocation cuts the call wherever it is: waiting for the upstream, or streaming.
  const cutter = new AbortController();
  const stopWatching = watchSessionEnd(deps, session.id, (state) => {
    if (finished) return;
    finished = true;
    void outcome('action.cut', { state, status: upstream?.statusCode ?? null, bytes });
    cutter.abort(new Error(`session ${state}`));
    upstream?.body.destroy();
    reply.raw.destroy();
  });
  try {
    upstream = await upstreamRequest(target.url, {
      signal: cutter.signal,
      method: method as 'GET',
      headers: forwardHeaders(request.headers, deps.policy.proxy.forwardHeaders, token, session, requestId),
      ...(body ? { body } : {}),
      headersTimeout: deps.policy.proxy.timeout * 1000,
      bodyTimeout: deps.policy.proxy.timeout * 1000,
    });
  } catch (error) {
    if (cutter.signal.aborted)
      throw new ImpError('IMP_SESSION_ENDED', `Session ${session.id} ended while the call was in flight.`);
    stopWatching();
    finished = true;
    const timedOut = /timeout/i.test((error as Error).name + (error as Error).message);
    const tooLarge = (error as Error).message.includes('proxy.max_body');
    await outcome('action.failed', {
      error: tooLarge ? 'body_too_large' : timedOut ? 'timeout' : 'unreachable',
    });
    if (tooLarge)
      throw new InvalidInputError(
        `Refused by rule proxy.max_body: the body is over ${deps.policy.proxy.maxBodyBytes} bytes.`,
        { rule: 'proxy.max_body' },
      );
    throw new ImpError(
      timedOut ? 'IMP_TIMEOUT' : 'IMP_UPSTREAM',
      timedOut
        ? `The tenant API did not answer within ${deps.policy.proxy.timeout}s.`
        : 'The tenant API cannot be reached.',
      {
        cause: error,
      },
    );
  }

  const answered = upstream;
  reply.code(answered.statusCode);
  for (const [name, value] of Object.entries(answered.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'set-cookie') reply.header(name, value);
  }
  reply.header('x-imp-action-id', actionId);
  const upstreamFailure = (error: Error) =>
    /timeout/i.test(`${error.name} ${error.message}`) ? 'timeout' : 'upstream_error';

  // A small answer of known length is read whole and sent in one write with its headers: streaming
  // it through costs a Transform, a pipe and a second write (the chunked terminator) per call, which
  // is most of what the broker adds to a typical API call. Anything larger, or of unknown length,
  // streams (below), so a download is never held in memory.
  const declared = Number(answered.headers['content-length']);
  const inline = Math.min(INLINE_MAX_BYTES, deps.policy.proxy.maxBodyBytes);
  if (method !== 'HEAD' && Number.isSafeInteger(declared) && declared >= 0 && declared <= inline) {
    let payload: Buffer;
    try {
      payload = Buffer.from(await answered.body.arrayBuffer());
    } catch (error) {
      if (finished)
        throw new ImpError('IMP_SESSION_ENDED', `Session ${session.id} ended while the call was in flight.`);
      finished = true;
      stopWatching();
      const failure = upstreamFailure(error as Error);
      await outcome('action.failed', { error: failure, status: answered.statusCode, bytes: 0 });
      throw new ImpError(
        failure === 'timeout' ? 'IMP_TIMEOUT' : 'IMP_UPSTREAM',
        failure === 'timeout'
          ? `The tenant API stopped answering for ${deps.policy.proxy.timeout}s.`
          : 'The tenant API broke off its answer.',
        { cause: error },
      );
    }
    if (finished) return; // cut while the answer arrived: the cut is audited, the reply destroyed
    finished = true;
    stopWatching();
    bytes = payload.length;
    void outcome('action.completed', { status: answered.statusCode, bytes });
    await reply.send(payload);
    return;
  }

  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > deps.policy.proxy.maxBodyBytes) return callback(new Error('response over the size limit'));
      callback(null, chunk);
    },
  });
  let upstreamError: string | null = null;
  const complete = (aborted: boolean) => {
    if (finished) return;
    finished = true;
    stopWatching();
    if (upstreamError) {
      void outcome('action.failed', { error: upstreamError, status: answered.statusCode, bytes });
      return;
    }
    void outcome('action.completed', {
      status: answered.statusCode,
      bytes,
      ...(aborted ? { aborted: true } : {}),
    });
  };
  // pipe() passes no errors on: without this, a tenant API that stalls mid-body (undici's bodyTimeout
  // fires) would leave the client waiting forever and the call without an outcome.
  answered.body.on('error', (error: Error) => {
    upstreamError = upstreamFailure(error);
    counter.destroy(error);
  });
  counter.on('end', () => complete(false));
  counter.on('error', () => complete(true));
  reply.raw.on('close', () => complete(!counter.writableFinished));
  answered.body.pipe(counter);
  await reply.send(counter);
}

function classify(deps: BrokerDeps, method: string, path: string): ActionKind {
  if (deps.policy.proxy.exportPaths.some((glob) => matchesPathGlob(glob, path))) return 'export';
  return isReadMethod(method) ? 'read' : 'write';
}

function actorFor(principal: Principal) {
  return actorOf(principal);
}
