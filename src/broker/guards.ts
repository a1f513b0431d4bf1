/**
 * Route guards: who may call what, enforced from the fields of the route table (./routes.ts).
 *
 *   auth        a valid broker token (authenticate, before anything else)
 *   machines    a machine identity's token may call it (its own session only); every other route refuses it
 *   capability  a role granting it; before the handler, or with `checkedOn: 'target'` on the session
 *               or request the handler names (so it can cover that tenant, after input validation)
 *   notSelf     people on the target who may not act on it (four eyes); `owner`: only its requester
 *   freshLogin  RFC 9470 step-up, evaluated LAST: the handler calls `ctx.guard.freshLogin()` once every
 *               other check passed, so a request refused anyway never asks anyone to log in again
 *
 * A handler cannot skip a declared guard: `ctx.guard.commit()` (the transaction that changes state)
 * and the server, before answering, both refuse when one was not evaluated. Every refusal goes
 * through `refuse()`, which audits it (fail-closed) and throws the error naming the rule.
 */
import type { AuditDraft } from '../core/audit/event.js';
import {
  AuthRequiredError,
  ConflictError,
  ForbiddenError,
  ImpError,
  InvalidInputError,
  PolicyDeniedError,
} from '../core/errors.js';
import {
  CAPABILITY_RULES,
  type Capability,
  decideTargetAccess,
  type TargetPerson,
} from '../core/policy/decide.js';
import { rolesForGroups } from '../core/policy/roles.js';
import type { ReauthMethod } from '../core/policy/types.js';
import type { SessionRecord, StoreTx } from '../store/types.js';
import { actorOf, type BrokerDeps, type HandlerContext, type Principal } from './context.js';
import { verifyLoginToken } from './login-tokens.js';
import type { Operation } from './passkeys.js';
import { passkeyPart, type ReauthProof, requireReauth } from './reauth.js';
import { ownsSession, sessionAudit, sessionFields } from './sessions.js';

export type { Capability } from '../core/policy/decide.js';

/**
 * How fresh the caller's re-authentication must be: within reauth.max_age, or also a login not used
 * for a session before; `passkey`: only the passkey part of the policy's method (deny, revoke —
 * stopping something never waits for the IdP).
 */
export type FreshLogin = 'max_age' | 'per_session' | 'passkey';

/** A route's guards: the fields of the route table that say who may call it. */
export interface RouteGuards {
  /** What the route does, in words, for audit events and messages ("approve", "read the audit log"). */
  action: string;
  /** A valid broker token is required. */
  auth: boolean;
  /** A role granting one of these (the first names the rule when none does). */
  capability?: Capability | readonly Capability[];
  /** Role, not-self and owner checks wait for the handler's `ctx.guard.target(session)`. */
  checkedOn?: 'target';
  /** People on the target who may not act on it. */
  notSelf?: readonly TargetPerson[];
  /** Only the target's requester may act on it. */
  owner?: boolean;
  /** Demanded last, when the handler calls `ctx.guard.freshLogin()`. */
  freshLogin?: FreshLogin;
  /** How a refusal on the target is recorded: access.denied (403 IMP_FORBIDDEN, default) or breakglass.refused (403 IMP_POLICY_DENIED). */
  refusedAs?: 'breakglass.refused';
  /** A machine identity's token (one session, from POST /v1/token) may call it; elsewhere: machine.route. */
  machines?: true;
}

/** Why a request is refused, how the caller is answered and how it is recorded. */
export interface Refusal {
  rule: string;
  /** The whole message the caller reads. */
  message: string;
  /** The answer: 403 IMP_FORBIDDEN (default), 403 IMP_POLICY_DENIED, 400, 409, or 502 (a system the decision needs did not answer). */
  as?: 'forbidden' | 'policy' | 'invalid' | 'conflict' | 'unreachable';
  /** The audit event type; default access.denied. */
  event?: string;
  /** What the event is about: a session, or the fields of one not yet created (tenant, ticket, …). */
  about?: SessionRecord | Omit<AuditDraft, 'type' | 'data'>;
  /** More audit data (the rule and, without a session, the request id are added). */
  data?: Record<string, unknown>;
  /** More error details for the caller (the rule is added). */
  details?: Record<string, unknown>;
}

/** Audits a refusal (nothing is answered if that fails) and throws the error naming its rule. */
export async function refuse(ctx: HandlerContext, refusal: Refusal): Promise<never> {
  const { rule, about } = refusal;
  const type = refusal.event ?? 'access.denied';
  const actor = ctx.principal ? actorOf(ctx.principal) : null;
  const data = { ...refusal.data, rule };
  const draft: AuditDraft = isSession(about)
    ? sessionAudit(about, type, data, actor)
    : { ...about, actor: about?.actor ?? actor, type, data: { ...data, request_id: ctx.requestId } };
  await ctx.deps.store.transaction((tx) => tx.appendAudit(draft, ctx.deps.clock.now()));
  const details = { ...refusal.details, rule };
  switch (refusal.as ?? 'forbidden') {
    case 'policy':
      throw new PolicyDeniedError(rule, refusal.message);
    case 'invalid':
      throw new InvalidInputError(refusal.message, details);
    case 'conflict':
      throw new ConflictError(refusal.message, details);
    case 'unreachable':
      throw new ImpError('IMP_UNREACHABLE', refusal.message, { details });
    default:
      throw new ForbiddenError(refusal.message, rule);
  }
}

function isSession(about: Refusal['about']): about is SessionRecord {
  return about !== undefined && 'requester' in about && 'state' in about;
}

/** Reads `Authorization: Bearer <broker token>` into a principal, or throws 401. */
export async function authenticate(
  deps: BrokerDeps,
  authorization: string | string[] | undefined,
): Promise<Principal> {
  const header = Array.isArray(authorization) ? authorization[0] : authorization;
  const match = header ? /^Bearer ([A-Za-z0-9_\-.]{10,8192})$/.exec(header) : null;
  if (!match) throw new AuthRequiredError('Not logged in: this request needs a broker token. Run: imp login');
  const claims = await verifyLoginToken(deps.keys, deps.issuer, match[1]!, deps.clock);
  const login = await deps.store.getLogin(claims.loginId);
  if (!login || login.sub !== claims.sub)
    throw new AuthRequiredError('This login is no longer valid. Run: imp login');
  // A machine holds no role, whatever groups it could claim: its rights are its `machines:` entry.
  const machine = claims.machine ?? null;
  return { ...claims, machine, roles: machine ? [] : rolesForGroups(deps.policy, claims.groups) };
}

/** The guards of one request, evaluated where the route's fields say. */
export class Guard {
  private targetSession: SessionRecord | null = null;
  private targetChecked = false;
  private freshChecked = false;

  constructor(
    private readonly ctx: HandlerContext,
    private readonly route: RouteGuards,
  ) {}

  /** Before the handler: machine identities only where allowed; the role, unless the route checks it on its target. */
  async beforeHandler(): Promise<void> {
    const machine = this.ctx.principal?.machine;
    if (machine && !this.route.machines)
      await refuse(this.ctx, {
        rule: 'machine.route',
        message: `Denied by rule machine.route: machine identity ${machine} may only use its own session, not ${this.route.action}.`,
        data: { action: this.route.action },
      });
    const { capability } = this.route;
    if (!capability || this.route.checkedOn === 'target') return;
    const principal = mustHavePrincipal(this.ctx);
    const wanted: readonly Capability[] = typeof capability === 'string' ? [capability] : capability;
    if (principal.roles.some((role) => wanted.some((c) => role[c]))) return;
    const rule = CAPABILITY_RULES[wanted[0]!];
    await refuse(this.ctx, {
      rule,
      message: `Denied by rule ${rule}: none of your roles (${principal.roles.map((r) => r.name).join(', ') || 'none'}) may ${this.route.action}.`,
      data: { action: this.route.action },
    });
  }

  /**
   * Whether the caller passes this route's target guards on `session`, without refusing or
   * auditing: short-id resolution offers only what the caller may act on (src/broker/short-ids.ts).
   */
  mayActOn(session: SessionRecord): boolean {
    const principal = mustHavePrincipal(this.ctx);
    if (principal.machine !== null && !ownsSession(principal, session)) return false;
    return this.verdictOn(session).allowed;
  }

  private verdictOn(session: SessionRecord) {
    const principal = mustHavePrincipal(this.ctx);
    const { capability, notSelf, owner } = this.route;
    const target = {
      id: session.id,
      tenant: session.tenant,
      environment: session.environment,
      scope: session.scope,
      mode: session.mode,
      requester: session.requester,
      confirmer: session.decidedBy,
    };
    const wanted: readonly (Capability | undefined)[] =
      capability === undefined ? [undefined] : typeof capability === 'string' ? [capability] : capability;
    const verdicts = wanted.map((c) =>
      decideTargetAccess(principal.roles, principal, target, {
        ...(c ? { capability: c } : {}),
        ...(notSelf ? { notSelf } : {}),
        ...(owner ? { owner } : {}),
      }),
    );
    return verdicts.find((v) => v.allowed) ?? verdicts[0]!;
  }

  /** The session or request the route acts on: not-self, owner and role are decided on it now. */
  async target(session: SessionRecord): Promise<void> {
    const principal = mustHavePrincipal(this.ctx);
    this.targetSession = session;
    // A machine's token owns only the session its own exchange opened, not its identity's others.
    if (principal.machine !== null && !ownsSession(principal, session))
      await refuse(this.ctx, {
        rule: 'session.owner',
        message: `Session ${session.id} was not opened by this machine credential.`,
        about: session,
        data: { action: this.route.action },
      });
    const verdict = this.verdictOn(session);
    if (!verdict.allowed) {
      const breakGlass = this.route.refusedAs === 'breakglass.refused';
      await refuse(this.ctx, {
        rule: verdict.rule,
        message:
          verdict.rule === 'session.owner'
            ? verdict.message
            : `${breakGlass ? 'Refused' : 'Denied'} by rule ${verdict.rule}: ${verdict.message}`,
        as: breakGlass ? 'policy' : 'forbidden',
        event: breakGlass ? 'breakglass.refused' : 'access.denied',
        about: session,
        data: { action: this.route.action },
      });
    }
    this.targetChecked = true;
  }

  /**
   * The re-authentication, last (src/broker/reauth.ts): a fresh IdP login, or a passkey assertion
   * made for exactly this operation, as the policy's reauth.method says; throws RFC 9470's challenge
   * (audited as stepup.required) until it is proven. `about` describes what is asked for when there is
   * no target session yet. Returns how it was proven, for the events the operation writes.
   */
  async freshLogin(request: {
    operation: Operation;
    description: string;
    about?: Omit<AuditDraft, 'type' | 'data'>;
    method?: ReauthMethod;
  }): Promise<ReauthProof> {
    const kind = this.route.freshLogin;
    if (!kind) throw internal(`route "${this.route.action}" declares no fresh-login guard`);
    const { deps } = this.ctx;
    const principal = mustHavePrincipal(this.ctx);
    const proof = await requireReauth(this.ctx, principal, {
      operation: request.operation,
      description: request.description,
      action: this.route.action,
      audited: this.targetSession ? sessionFields(this.targetSession) : (request.about ?? {}),
      perSession: kind === 'per_session',
      method: kind === 'passkey' ? passkeyPart(deps.policy.reauth.method) : request.method,
    });
    this.freshChecked = true;
    return proof;
  }

  /** Throws unless every guard the route declares was evaluated (a handler that skipped one answers 500). */
  assertEvaluated(): void {
    const { route } = this;
    if (route.checkedOn === 'target' && !this.targetChecked)
      throw internal(`route "${route.action}" checks its target, but the handler never named one`);
    if (route.freshLogin && !this.freshChecked)
      throw internal(`route "${route.action}" demands a fresh login, but the handler never asked for it`);
  }

  /** The transaction that changes state: only once every declared guard passed. */
  async commit<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    this.assertEvaluated();
    return this.ctx.deps.store.transaction(work);
  }
}

function internal(message: string): ImpError {
  return new ImpError('IMP_INTERNAL', `Guard not evaluated: ${message}.`);
}

/** The principal of an authenticated route. */
export function mustHavePrincipal(ctx: HandlerContext): Principal {
  if (!ctx.principal) throw new AuthRequiredError();
  return ctx.principal;
}
