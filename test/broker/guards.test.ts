/**
 * The route table's guard fields are the rules: this checks that shared code enforces them where
 * the table says, and that a handler which skips a declared guard cannot change anything.
 */
import { describe, expect, it } from 'vitest';
import type { HandlerContext, Principal } from '../../src/broker/context.js';
import { Guard, type RouteGuards } from '../../src/broker/guards.js';
import { ROUTES } from '../../src/broker/routes.js';
import type { AuditDraft } from '../../src/core/audit/event.js';
import { FakeClock } from '../../src/core/clock.js';
import type { Role } from '../../src/core/policy/types.js';
import type { SessionRecord } from '../../src/store/types.js';

const approver: Role = {
  name: 'leads',
  groups: ['leads'],
  tenants: ['*'],
  environments: ['*'],
  scopes: ['read', 'write'],
  maxTtl: 3600,
  approve: true,
  breakGlass: false,
  breakGlassConfirm: false,
  audit: false,
  review: false,
  revoke: false,
} as unknown as Role;

function principal(sub: string, roles: Role[], authAgeSeconds = 0, nowMs = 0): Principal {
  return {
    loginId: `login-${sub}`,
    iss: 'https://idp.test',
    sub,
    email: `${sub}@example.test`,
    name: sub,
    groups: [],
    roles,
    authTime: Math.floor(nowMs / 1000) - authAgeSeconds,
    expiresAt: Math.floor(nowMs / 1000) + 3600,
    machine: null,
  };
}

function request(overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: '11111111-1111-4111-8111-111111111111',
    state: 'pending',
    mode: 'standard',
    tenant: 'acme',
    environment: 'prod',
    scope: 'write',
    ticket: 'SUP-1',
    reason: 'A reason long enough',
    ttl: 600,
    requester: { iss: 'https://idp.test', sub: 'alice', email: 'alice@example.test' },
    decidedBy: null,
    ...overrides,
  } as SessionRecord;
}

/** A context whose store records audit events and counts transactions. */
function contextFor(caller: Principal) {
  const clock = new FakeClock();
  const audited: AuditDraft[] = [];
  let transactions = 0;
  const store = {
    transaction: async <T>(work: (tx: unknown) => Promise<T>) => {
      transactions++;
      return work({
        appendAudit: async (draft: AuditDraft) => audited.push(draft),
        lastUsedAuthTime: async () => null,
      });
    },
  };
  const ctx = {
    deps: { store, clock, policy: { reauth: { method: 'idp', maxAge: 300, perSession: true } } },
    requestId: 'req-1',
    principal: caller,
    params: {},
    query: {},
    body: null,
    headers: {},
    ip: '127.0.0.1',
    signal: new AbortController().signal,
  } as unknown as HandlerContext;
  return { ctx, audited, transactions: () => transactions, clock };
}

const approve: RouteGuards = {
  action: 'approve',
  auth: true,
  checkedOn: 'target',
  capability: 'approve',
  notSelf: ['requester'],
  freshLogin: 'max_age',
};

describe('Guard', () => {
  it('refuses the requester on a notSelf route, audited against the session', async () => {
    const { ctx, audited } = contextFor(principal('alice', [approver], 0, new FakeClock().now()));
    const guard = new Guard(ctx, approve);
    await expect(guard.target(request())).rejects.toMatchObject({
      code: 'IMP_FORBIDDEN',
      details: { rule: 'approval.self' },
    });
    expect(audited).toMatchObject([
      { type: 'access.denied', session: request().id, data: { action: 'approve', rule: 'approval.self' } },
    ]);
  });

  it('the same caller passes once the route does not declare notSelf (the field is the rule)', async () => {
    const { ctx } = contextFor(principal('alice', [approver], 0, new FakeClock().now()));
    const { notSelf: _dropped, ...withoutNotSelf } = approve;
    await expect(new Guard(ctx, withoutNotSelf).target(request())).resolves.toBeUndefined();
  });

  it('an approver cannot approve a break-glass request (break_glass.confirm_only)', async () => {
    const { ctx } = contextFor(principal('bob', [approver], 0, new FakeClock().now()));
    await expect(new Guard(ctx, approve).target(request({ mode: 'break_glass' }))).rejects.toMatchObject({
      details: { rule: 'break_glass.confirm_only' },
    });
  });

  const approveOp = { operation: { op: 'session.approve', session: 'x' }, description: 'approve' };

  it('asks for a fresh login last, audited as stepup.required; a fresh one passes', async () => {
    const now = new FakeClock().now();
    const stale = contextFor(principal('bob', [approver], 301, now));
    const guard = new Guard(stale.ctx, approve);
    await guard.target(request());
    await expect(guard.freshLogin(approveOp)).rejects.toMatchObject({ code: 'IMP_STEP_UP_REQUIRED' });
    expect(stale.audited.at(-1)).toMatchObject({
      type: 'stepup.required',
      session: request().id,
      data: { action: 'approve', why: 'stale' },
    });
    const fresh = new Guard(contextFor(principal('bob', [approver], 10, now)).ctx, approve);
    await fresh.target(request());
    await expect(fresh.freshLogin(approveOp)).resolves.toMatchObject({ method: 'idp', credential: null });
    expect(() => fresh.assertEvaluated()).not.toThrow();
  });

  it('a handler that skips a declared guard cannot commit, and nothing is written', async () => {
    const now = new FakeClock().now();
    const skipped = contextFor(principal('bob', [approver], 0, now));
    const noTarget = new Guard(skipped.ctx, approve);
    await expect(noTarget.commit(async () => 'changed')).rejects.toMatchObject({ code: 'IMP_INTERNAL' });
    expect(skipped.transactions()).toBe(0);
    const noStepUp = new Guard(skipped.ctx, approve);
    await noStepUp.target(request());
    await expect(noStepUp.commit(async () => 'changed')).rejects.toThrow(/fresh login/);
    expect(skipped.transactions()).toBe(0);
  });

  it('a capability checked before the handler names the rule of the first capability', async () => {
    const { ctx, audited } = contextFor(principal('mallory', [], 0, new FakeClock().now()));
    const guard = new Guard(ctx, {
      action: 'read the access review',
      auth: true,
      capability: ['audit', 'review'],
    });
    await expect(guard.beforeHandler()).rejects.toMatchObject({ details: { rule: 'role.audit' } });
    expect(audited).toMatchObject([
      { type: 'access.denied', data: { rule: 'role.audit', request_id: 'req-1' } },
    ]);
  });
});

describe('the route table', () => {
  const route = (method: string, path: string) => ROUTES.find((r) => r.method === method && r.path === path)!;

  it.each([
    [
      'POST',
      '/v1/requests/:id/approve',
      { capability: 'approve', notSelf: ['requester'], freshLogin: 'max_age' },
    ],
    ['POST', '/v1/requests/:id/deny', { capability: 'approve', notSelf: ['requester'] }],
    [
      'POST',
      '/v1/break-glass/:id/confirm',
      { capability: 'breakGlassConfirm', notSelf: ['requester'], freshLogin: 'max_age' },
    ],
    ['GET', '/v1/break-glass/:id', { capability: 'breakGlassConfirm', notSelf: ['requester'] }],
    [
      'POST',
      '/v1/break-glass/:id/review',
      { capability: 'review', notSelf: ['requester', 'confirmer'], freshLogin: 'max_age' },
    ],
    ['POST', '/v1/sessions/:id/end', { owner: true }],
    ['POST', '/v1/sessions/:id/revoke', { capability: 'revoke' }],
    ['POST', '/v1/sessions', { freshLogin: 'per_session' }],
    ['POST', '/v1/break-glass', { freshLogin: 'per_session' }],
    ['GET', '/v1/audit/export', { capability: 'audit' }],
  ])('%s %s declares its guards', (method, path, guards) => {
    expect(route(method, path)).toMatchObject({ auth: true, ...guards });
  });

  it('only login, the machine token exchange, config, keys, health, the token-status check, the public audit checkpoint, the passkey page and the console go without a broker token', () => {
    expect(
      ROUTES.filter((r) => !r.auth && !r.path.startsWith('/console')).map((r) => `${r.method} ${r.path}`),
    ).toEqual([
      'GET /healthz',
      'GET /.well-known/jwks.json',
      'GET /v1/config',
      'POST /v1/login',
      'GET /v1/token-status',
      'POST /v1/token',
      // Like any transparency log's head: the newest checkpoint note and its witness cosignatures.
      'GET /v1/audit/checkpoint',
      // A browser has no broker token: the ceremony id is the capability, and an answer counts only
      // when made with the person's own passkey for the operation the ceremony is bound to.
      'GET /passkey/:id',
      'GET /passkey/assets/:name',
      'GET /v1/ceremonies/:id/options',
      'POST /v1/ceremonies/:id',
    ]);
    // The console's routes hold a browser session (cookie), never a broker token of the browser's:
    // they reach data and actions only through the routes above, in-process, as the viewer.
    expect(ROUTES.filter((r) => r.path.startsWith('/console')).every((r) => !r.auth && !r.capability)).toBe(
      true,
    );
  });

  it("a machine identity may only read its session, end it, upload its recording (imp exec records where policy asks), read its summary, mint its exec child's credential (and whoami)", () => {
    expect(ROUTES.filter((r) => r.machines).map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /v1/whoami',
      'GET /v1/sessions/:id',
      'POST /v1/sessions/:id/end',
      'GET /v1/sessions/:id/summary',
      'POST /v1/sessions/:id/recording',
      'POST /v1/sessions/:id/exec-credential',
    ]);
  });
});
