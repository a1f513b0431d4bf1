/**
 * POST /v1/token — a machine identity exchanges a short-lived workload token for one read-only,
 * path-limited session (RFC 8693 token exchange with `subject_token`, or RFC 7523's JWT bearer
 * grant with `assertion`). Order: the token (signature, iss, aud = this broker, exp, jti) → a
 * `machines:` entry whose subject pattern matches → the policy decision → single use of the jti,
 * the login, the session and their audit events in one transaction. No step-up, no approval:
 * machine sessions never need them (see decideMachineSession). Every refusal is audited.
 */

import { createHash, randomUUID } from 'node:crypto';
import {
  createWorkloadVerifier,
  peekWorkloadToken,
  type WorkloadVerifier,
} from '../../auth/workload-token.js';
import type { MachineTokenResponse } from '../../core/api.js';
import type { AuditActor } from '../../core/audit/event.js';
import { AuthFailedError, type ImpError, InvalidInputError, PolicyDeniedError } from '../../core/errors.js';
import { decideMachineSession, machineRole, machinesFor } from '../../core/policy/machines.js';
import { matchesPattern } from '../../core/policy/roles.js';
import type { Machine, Policy } from '../../core/policy/types.js';
import { scopeClaim } from '../../core/session-token.js';
import type { SessionRecord } from '../../store/types.js';
import type { BrokerDeps, HandlerContext, HandlerResult } from '../context.js';
import { issueLoginToken } from '../login-tokens.js';
import { recordingFacts, recordingTerms } from '../recording.js';
import { sessionAudit, sessionView } from '../sessions.js';
import { checkTicket } from '../tickets/check.js';
import { safeText } from './sessions.js';

/** RFC 8693 §2.1 grant type. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 7523 §2.1 grant type. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** RFC 8693 §3 token type identifiers accepted for the subject token. */
const SUBJECT_TOKEN_TYPES = [
  'urn:ietf:params:oauth:token-type:jwt',
  'urn:ietf:params:oauth:token-type:id_token',
];
const WORKLOAD_LEEWAY_SECONDS = 30;
const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

const verifiers = new WeakMap<BrokerDeps, WorkloadVerifier>();
function verifierFor(deps: BrokerDeps): WorkloadVerifier {
  let verifier = verifiers.get(deps);
  if (!verifier) {
    verifier = createWorkloadVerifier({
      clock: deps.clock,
      fetch: deps.fetch,
      leewaySeconds: WORKLOAD_LEEWAY_SECONDS,
    });
    verifiers.set(deps, verifier);
  }
  return verifier;
}

/** POST /v1/token. */
export async function postTokenExchange(ctx: HandlerContext): Promise<HandlerResult> {
  const { deps } = ctx;
  const body = (ctx.body ?? {}) as Record<string, unknown>;
  const token = subjectToken(body);
  const now = deps.clock.now();
  // Audited by a hash of the signed part only (never the token, never a spelling of its signature).
  const tokenHash = createHash('sha256').update(token.split('.').slice(0, 2).join('.')).digest('hex');
  let actor: AuditActor | null = null;
  const refuse = async (error: ImpError, rule: string): Promise<never> => {
    const reason = String(error.details.reason ?? rule);
    const draft = {
      type: 'auth.machine_refused',
      actor,
      data: { rule, reason, token_sha256: tokenHash, ip: ctx.ip, request_id: ctx.requestId },
    };
    // Anyone can send junk here: repeats from one address are folded into one counted event.
    if (deps.refusals) await deps.refusals.record(draft, { ip: ctx.ip, reason: `${rule}:${reason}` });
    else await deps.store.transaction((tx) => tx.appendAudit(draft, now));
    throw error;
  };

  let claimed: { iss: string; sub: string };
  try {
    claimed = peekWorkloadToken(token);
  } catch (error) {
    return refuse(error as ImpError, 'machine.token');
  }
  if (claimed.iss === deps.issuer)
    return refuse(
      new AuthFailedError('The broker does not accept its own tokens as identity tokens.', {
        details: { reason: 'own_issuer' },
      }),
      'machine.issuer',
    );
  const found = machinesFor(deps.policy, claimed.iss, claimed.sub);
  if (!found.ok) {
    actor = { iss: claimed.iss.slice(0, 300), sub: claimed.sub.slice(0, 300), email: null, roles: [] };
    return refuse(
      new AuthFailedError(`Refused by rule ${found.rule}: ${found.message}`, {
        details: { reason: found.rule, rule: found.rule },
      }),
      found.rule,
    );
  }
  const first = found.machines[0]!;
  let identity: Awaited<ReturnType<WorkloadVerifier['verify']>>;
  try {
    identity = await verifierFor(deps).verify(token, first, first.audience ?? deps.issuer);
  } catch (error) {
    if (!(error instanceof AuthFailedError)) throw error;
    return refuse(error, 'machine.token');
  }
  // Entries of the same issuer and subject may differ in audience: each candidate re-checks its own.
  const candidates = found.machines.filter(
    (m) => (m.audience ?? deps.issuer) === (first.audience ?? deps.issuer),
  );

  const ask = readAsk(body, deps.policy, candidates);
  const decision = decideMachineSession(deps.policy, candidates, {
    ...ask,
    ttl: ask.ttl ?? Math.min(deps.policy.sessions.defaultTtl, candidates[0]!.maxTtl),
  });
  const machineActor: AuditActor = {
    iss: identity.iss,
    sub: identity.sub,
    email: null,
    roles: [machineRole(decision.machine.name)],
  };
  const audited = {
    actor: machineActor,
    tenant: ask.tenant,
    environment: ask.environment,
    ticket: safeText(ask.ticket),
    reason: safeText(ask.reason),
  };
  if (decision.outcome === 'deny') {
    await deps.store.transaction((tx) =>
      tx.appendAudit(
        {
          ...audited,
          type: 'session.refused',
          data: { rule: decision.rule, scope: ask.scope, mode: ask.mode, machine: decision.machine.name },
        },
        now,
      ),
    );
    throw new PolicyDeniedError(decision.rule, `Denied by rule ${decision.rule}: ${decision.message}`);
  }

  // A runbook's ticket is checked like a person's (tickets.system), without the person rule.
  const ticketCheck = ask.ticket
    ? await checkTicket(ctx, {
        ticket: ask.ticket,
        tenant: ask.tenant,
        machine: true,
        breakGlass: false,
        event: 'session.refused',
        about: audited,
        data: { scope: ask.scope, mode: ask.mode, machine: decision.machine.name },
      })
    : { audit: {}, warning: null };
  const ttl = ask.ttl ?? Math.min(deps.policy.sessions.defaultTtl, decision.machine.maxTtl);
  const loginId = randomUUID();
  const session: SessionRecord = {
    id: randomUUID(),
    state: 'active',
    mode: 'standard',
    requester: { iss: identity.iss, sub: identity.sub, email: null, roles: machineActor.roles },
    tenant: ask.tenant,
    environment: ask.environment,
    scope: 'read',
    ticket: ask.ticket ?? '',
    reason: String(ask.reason).trim(),
    ttl,
    loginId,
    authTime: identity.iat,
    createdAt: now,
    requestExpiresAt: null,
    decidedBy: null,
    decidedAt: null,
    decisionComment: null,
    startedAt: now,
    expiresAt: now + ttl * 1000,
    endedAt: null,
    endedBy: null,
    reviewRequired: false,
    review: null,
  };
  // Single use is keyed on (iss, jti), so the same token, or another carrying its jti, opens nothing more.
  const jtiHash = createHash('sha256')
    .update(`workload-jti\u0000${identity.iss}\u0000${identity.jti}`)
    .digest('hex');
  const outcome = await deps.store.transaction(async (tx) => {
    // Held until commit: the same jti racing on another replica waits, then finds this use.
    await tx.lockKey(`id-token\u0000${jtiHash}`);
    if (await tx.findLoginByTokenHash(jtiHash)) {
      await tx.appendAudit(
        {
          type: 'auth.machine_refused',
          actor: machineActor,
          data: {
            rule: 'machine.jti_replayed',
            reason: 'replayed_token',
            token_sha256: tokenHash,
            ip: ctx.ip,
            request_id: ctx.requestId,
          },
        },
        now,
      );
      return 'replayed' as const;
    }
    await tx.insertLogin({
      id: loginId,
      iss: identity.iss,
      sub: identity.sub,
      email: null,
      authTime: identity.iat,
      createdAt: now,
      expiresAt: session.expiresAt!,
      idTokenHash: jtiHash,
      groups: [],
    });
    await tx.appendAudit(
      {
        type: 'auth.machine',
        actor: machineActor,
        data: {
          machine: decision.machine.name,
          login_id: loginId,
          jti_sha256: jtiHash,
          token_exp: identity.exp,
          ip: ctx.ip,
          grant: body.grant_type,
        },
      },
      now,
    );
    await tx.insertSession(session);
    await tx.appendAudit(
      sessionAudit(session, 'session.requested', {
        ttl,
        decision: decision.rule,
        machine: decision.machine.name,
        ...ticketCheck.audit,
      }),
      now,
    );
    await tx.appendAudit(
      sessionAudit(session, 'session.started', {
        ttl,
        expires_at: new Date(session.expiresAt!).toISOString(),
        rule: decision.rule,
        machine: decision.machine.name,
        ...recordingFacts(deps.policy, session),
      }),
      now,
    );
    return 'ok' as const;
  });
  if (outcome === 'replayed')
    throw new AuthFailedError(
      'Refused by rule machine.jti_replayed: this identity token was already exchanged; each one opens one session.',
      {
        details: { reason: 'replayed_token', rule: 'machine.jti_replayed' },
      },
    );

  const expiresAt = Math.floor(session.expiresAt! / 1000);
  const accessToken = await issueLoginToken(
    deps.keys,
    deps.issuer,
    {
      loginId,
      iss: identity.iss,
      sub: identity.sub,
      email: null,
      name: decision.machine.name,
      groups: [],
      authTime: identity.iat,
      expiresAt,
      machine: decision.machine.name,
    },
    now,
  );
  const response: MachineTokenResponse = {
    access_token: accessToken,
    issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer',
    expires_in: ttl,
    scope: scopeClaim('read'),
    machine: decision.machine.name,
    session: { ...sessionView(session), recording: recordingTerms(deps.policy, session) },
  };
  return { status: 200, body: response };
}

function subjectToken(body: Record<string, unknown>): string {
  const grant = body.grant_type;
  if (grant === TOKEN_EXCHANGE_GRANT) {
    if (typeof body.subject_token_type !== 'string' || !SUBJECT_TOKEN_TYPES.includes(body.subject_token_type))
      throw new InvalidInputError(`subject_token_type must be one of ${SUBJECT_TOKEN_TYPES.join(', ')}.`);
    if (typeof body.subject_token !== 'string' || body.subject_token === '')
      throw new InvalidInputError('subject_token is required: the workload identity token.');
    return body.subject_token;
  }
  if (grant === JWT_BEARER_GRANT) {
    if (typeof body.assertion !== 'string' || body.assertion === '')
      throw new InvalidInputError('assertion is required: the workload identity token.');
    return body.assertion;
  }
  throw new InvalidInputError(`grant_type must be ${TOKEN_EXCHANGE_GRANT} or ${JWT_BEARER_GRANT}.`);
}

function readAsk(body: Record<string, unknown>, policy: Policy, machines: readonly Machine[]) {
  const tenant = body.tenant;
  if (typeof tenant !== 'string' || !ID_PATTERN.test(tenant))
    throw new InvalidInputError('tenant must be a tenant id (lowercase letters, digits, dashes).');
  const environment = body.environment ?? impliedEnvironment(policy, machines, tenant);
  if (typeof environment !== 'string' || !ID_PATTERN.test(environment))
    throw new InvalidInputError('environment must be an environment name such as prod.');
  const scopeText = typeof body.scope === 'string' ? body.scope : 'tenant:read';
  const scopes = scopeText.split(' ').filter(Boolean);
  if (scopes.some((s) => s !== 'tenant:read' && s !== 'tenant:write'))
    throw new InvalidInputError('scope must be tenant:read.');
  const mode = typeof body.mode === 'string' ? body.mode : 'standard';
  if (mode !== 'standard' && mode !== 'break_glass') throw new InvalidInputError('mode must be standard.');
  const ttlRaw = body.ttl;
  const ttl = ttlRaw === undefined || ttlRaw === '' ? undefined : Number(ttlRaw);
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl <= 0 || ttl > 7 * 86400))
    throw new InvalidInputError('ttl must be a whole number of seconds.');
  const ticket = typeof body.ticket === 'string' && body.ticket !== '' ? body.ticket : null;
  return {
    tenant,
    environment,
    scope: scopes.includes('tenant:write') ? 'write' : 'read',
    mode,
    ttl,
    ticket,
    reason: body.reason,
  };
}

// The --env rule of `imp start` and `imp exec`: the one environment is implied; with several the
// caller must name it. Counted among those this machine's entries cover, so a tenant it may not
// touch at all is refused by the policy (machine.tenant), not by this rule.
function impliedEnvironment(policy: Policy, machines: readonly Machine[], tenant: string): string {
  const all = Object.keys(policy.tenants.find((t) => t.id === tenant)?.upstream ?? {});
  const covered = all.filter((env) =>
    machines.some(
      (m) =>
        m.tenants.some((p) => matchesPattern(p, tenant)) &&
        m.environments.some((p) => matchesPattern(p, env)),
    ),
  );
  if (covered.length === 1) return covered[0]!;
  if (covered.length === 0) return all[0] ?? 'prod';
  throw new InvalidInputError(
    `Tenant ${tenant} has several environments (${covered.join(', ')}): pass environment (imp exec --env <env>).`,
    { rule: 'tenant.environment' },
  );
}
