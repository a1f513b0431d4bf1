/**
 * The request side of the audited proxy: who is calling (a person's broker token, or the exec
 * credential of one session), which request headers go upstream (an allow-list), the query a
 * read-only check looks at, and a size limit on the body sent on.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Transform } from 'node:stream';
import { AuthRequiredError, NotFoundError } from '../core/errors.js';
import { rolesForGroups } from '../core/policy/roles.js';
import { isForwardedHeader } from '../core/proxy-request.js';
import type { SessionRecord } from '../store/types.js';
import type { BrokerDeps, Principal } from './context.js';
import { isExecToken, verifyExecToken } from './exec-tokens.js';
import { authenticate } from './guards.js';

/**
 * The caller of the proxy: a person's broker token, or an exec credential (`imp exec`'s child),
 * which opens this one session's proxy and nothing else.
 */
export async function authenticateCaller(
  deps: BrokerDeps,
  authorization: string | string[] | undefined,
  sessionId: string,
): Promise<Principal> {
  const header = Array.isArray(authorization) ? authorization[0] : authorization;
  const bearer = header ? /^Bearer ([A-Za-z0-9_\-.]{10,8192})$/.exec(header)?.[1] : undefined;
  if (!bearer || !isExecToken(bearer)) return authenticate(deps, authorization);
  const claims = await verifyExecToken(deps.keys, deps.issuer, bearer, deps.clock);
  if (claims.sessionId !== sessionId)
    throw new NotFoundError(`No session ${sessionId.slice(0, 64)} for this credential.`);
  const login = await deps.store.getLogin(claims.loginId);
  if (!login || login.sub !== claims.sub)
    throw new AuthRequiredError('The login behind this exec credential is no longer valid.');
  const machine = claims.machine ?? null;
  return { ...claims, machine, roles: machine ? [] : rolesForGroups(deps.policy, claims.groups) };
}

/** The headers sent upstream: allow-listed ones, the session token, the session and request ids. */
export function forwardHeaders(
  headers: IncomingHttpHeaders,
  extra: readonly string[],
  token: string,
  session: SessionRecord,
  requestId: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !isForwardedHeader(name, extra)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  out.authorization = `Bearer ${token}`;
  out['x-imp-session'] = session.id;
  out['x-imp-request-id'] = requestId;
  return out;
}

/** The query string of a raw proxied path, without its `?`. */
export function queryOf(rawPath: string): string {
  const at = rawPath.indexOf('?');
  return at >= 0 ? rawPath.slice(at + 1) : '';
}

/** Passes a request body on, failing once it exceeds `maxBytes`. */
export function limitBody(stream: NodeJS.ReadableStream, maxBytes: number): Transform {
  let total = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      if (total > maxBytes) return callback(new Error('proxy.max_body'));
      callback(null, chunk);
    },
  });
  stream.pipe(limiter);
  return limiter;
}
