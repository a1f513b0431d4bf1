/** Routes for tenant services and auditors: token status (revocation), policy explain. */
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { AuthRequiredError, InvalidInputError, NotFoundError } from '../../core/errors.js';
import { decideSession } from '../../core/policy/decide.js';
import { rolesForGroups } from '../../core/policy/roles.js';
import { SESSION_TOKEN_TYPE } from '../../core/session-token.js';
import { actorOf, type HandlerContext, type HandlerResult } from '../context.js';
import { BROKER_ALG } from '../keys.js';
import { loadSession } from '../sessions.js';

/**
 * GET /v1/token-status with `Authorization: Bearer <session token>` — for tenant services that must
 * honour revocation at once. The token authenticates the caller; the answer is only active or not.
 */
export async function getTokenStatus(ctx: HandlerContext): Promise<HandlerResult> {
  const header = typeof ctx.headers.authorization === 'string' ? ctx.headers.authorization : '';
  const token = /^Bearer (\S+)$/.exec(header)?.[1];
  if (!token) throw new AuthRequiredError('Send the session token as a Bearer token.');
  const { deps } = ctx;
  let sid: string;
  try {
    const kid = decodeProtectedHeader(token).kid;
    const key = deps.keys.verifying('session', deps.clock.now()).find((k) => k.kid === kid);
    if (!key) throw new Error('unknown key');
    // An expired token still gets an answer (expired), so verify the signature but not exp here.
    const { payload } = await jwtVerify(token, key.publicKey, {
      issuer: deps.issuer,
      audience: deps.policy.sessions.audience,
      algorithms: [BROKER_ALG],
      typ: SESSION_TOKEN_TYPE,
      currentDate: new Date(0),
    });
    sid = String(payload.sid);
  } catch {
    throw new AuthRequiredError('Not a valid session token.');
  }
  const session = await loadSession(deps, sid);
  if (!session) return { body: { active: false, state: 'unknown' } };
  return { body: { active: session.state === 'active', state: session.state } };
}

/** GET /v1/policy/explain?user=&tenant=&env=&scope=&ttl= — for auditors: allow, approval or deny, and the rule. */
export async function explainPolicy(ctx: HandlerContext): Promise<HandlerResult> {
  const { user, tenant, env, scope, groups } = ctx.query;
  if (!tenant || (!user && groups === undefined))
    throw new InvalidInputError('Give tenant and user (or groups).');
  if (scope !== undefined && scope !== 'read' && scope !== 'write')
    throw new InvalidInputError('scope must be read or write.');
  let groupList: string[];
  let who: string;
  if (groups !== undefined) {
    groupList = groups.split(',').filter(Boolean);
    who = `groups [${groupList.join(', ')}]`;
  } else {
    const login = await ctx.deps.store.findLatestLogin(user!);
    if (!login)
      throw new NotFoundError(
        `No login by "${user}" is known to this broker; explain for a set of groups instead: imp policy explain --groups <g1,g2> --tenant ${tenant}`,
      );
    groupList = login.groups;
    who = login.email ?? login.sub;
  }
  const roles = rolesForGroups(ctx.deps.policy, groupList);
  const ttl = ctx.query.ttl ? Number(ctx.query.ttl) : ctx.deps.policy.sessions.defaultTtl;
  const decision = decideSession(ctx.deps.policy, roles, {
    tenant,
    environment: env ?? 'prod',
    scope: scope ?? 'read',
    ttl,
  });
  // Explaining for a named person reveals their groups: recorded (a bare set of groups reveals nobody's).
  if (user !== undefined && groups === undefined) {
    const principal = ctx.principal;
    await ctx.deps.store.transaction((tx) =>
      tx.appendAudit(
        {
          type: 'policy.explained',
          actor: principal ? actorOf(principal) : null,
          tenant,
          environment: env ?? 'prod',
          data: {
            about: who,
            scope: scope ?? 'read',
            decision: decision.outcome,
            rule: decision.rule,
            request_id: ctx.requestId,
          },
        },
        ctx.deps.clock.now(),
      ),
    );
  }
  return {
    body: {
      user: who,
      groups: groupList,
      roles: roles.map((r) => r.name),
      decision: decision.outcome,
      rule: decision.rule,
      message: decision.message,
    },
  };
}
