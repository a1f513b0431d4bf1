import { describe, expect, it } from 'vitest';
import { decideBreakGlassConfirm, decideBreakGlassReview } from '../../src/core/policy/break-glass.js';
import {
  checkTicketAndReason,
  decideApproval,
  decideSession,
  samePerson,
} from '../../src/core/policy/decide.js';
import { parsePolicy } from '../../src/core/policy/load.js';
import { decideSessionRead } from '../../src/core/policy/oversight.js';
import { rolesForGroups } from '../../src/core/policy/roles.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';

const policy = parsePolicy(devPolicyYaml('http://127.0.0.1:7701', 'http://127.0.0.1:7702'), 'dev.yaml');
const roles = (...groups: string[]) => rolesForGroups(policy, groups);
const alice = { iss: 'idp', sub: 'user-alice' };
const bob = { iss: 'idp', sub: 'user-bob' };

describe('policy file', () => {
  it('parses the dev policy with defaults', () => {
    expect(policy.reauth).toEqual({ maxAge: 300, perSession: true });
    expect(policy.tenants.map((t) => t.id)).toEqual(['acme', 'globex', 'initech']);
    expect(policy.sessions.audience).toBe('imp-tenant-api');
    expect(policy.login.tokenTtl).toBe(8 * 3600);
  });

  it.each([
    [
      'an unknown key',
      'identity: { issuer: https://idp.example.com }\nbogus: 1\n',
      'broker.yaml:2: bogus: unknown key',
    ],
    [
      'a bad duration',
      'identity: { issuer: https://idp.example.com }\nreauth:\n  max_age: soon\n',
      'broker.yaml:3: reauth.max_age: "soon" is not a duration',
    ],
    [
      'plain http to a remote IdP',
      'identity:\n  issuer: http://idp.example.com\n',
      'broker.yaml:2: identity.issuer: must be https',
    ],
    [
      'a bad scope in a role',
      'identity: { issuer: https://idp.example.com }\nroles:\n  - name: x\n    scopes: [admin]\n',
      'broker.yaml:4: roles[0].scopes: unknown scope "admin"',
    ],
    [
      'a duplicate tenant',
      'identity: { issuer: https://idp.example.com }\ntenants:\n  - { id: a, upstream: { prod: https://a.example.com } }\n  - { id: a, upstream: { prod: https://a.example.com } }\n',
      'broker.yaml:4: tenants[1].id: duplicate id "a"',
    ],
    ['invalid YAML', 'identity: [\n', 'broker.yaml:'],
    [
      'a broken ticket regex',
      'identity: { issuer: https://idp.example.com }\ntickets: { pattern: "([" }\n',
      'tickets.pattern: is not a valid regular expression',
    ],
    [
      'a token ttl over 24h',
      'identity: { issuer: https://idp.example.com }\nlogin: { token_ttl: 48h }\n',
      'login.token_ttl: must be at most 24h',
    ],
    [
      'a path-override header in proxy.forward_headers',
      'identity: { issuer: https://idp.example.com }\nproxy:\n  forward_headers: [x-request-id, X-Original-URL]\n',
      'broker.yaml:3: proxy.forward_headers[1]: "x-original-url" is never forwarded',
    ],
    [
      'a method-override header in proxy.forward_headers',
      'identity: { issuer: https://idp.example.com }\nproxy:\n  forward_headers: [X-HTTP-Method]\n',
      'proxy.forward_headers[0]: "x-http-method" is never forwarded',
    ],
  ])('refuses %s naming file, line and key', (_name, yaml, expected) => {
    expect(() => parsePolicy(yaml, 'broker.yaml')).toThrow(expected);
  });
});

describe('session decisions', () => {
  const ask = { tenant: 'acme', environment: 'prod', scope: 'read' as const, ttl: 1800 };
  it.each([
    ['support reads acme', ['support'], ask, 'allow', 'role.support'],
    [
      'support writes acme: approval',
      ['support'],
      { ...ask, scope: 'write' as const },
      'approval',
      'tenant.approval_required',
    ],
    [
      'support writes globex: allowed',
      ['support'],
      { ...ask, tenant: 'globex', scope: 'write' as const },
      'allow',
      'role.support',
    ],
    ['oncall writes: deny', ['sre-oncall'], { ...ask, scope: 'write' as const }, 'deny', 'role.scope'],
    ['no role', [], ask, 'deny', 'role.none'],
    ['security has no tenants for sessions', ['security'], ask, 'deny', 'role.tenant'],
    ['unknown tenant', ['support'], { ...ask, tenant: 'nope' }, 'deny', 'tenant.unknown'],
    ['unknown env', ['support'], { ...ask, environment: 'qa' }, 'deny', 'tenant.environment'],
    ['ttl over max', ['support'], { ...ask, ttl: 3601 }, 'deny', 'ttl.max'],
    ['ttl zero', ['support'], { ...ask, ttl: 0 }, 'deny', 'ttl.invalid'],
  ])('%s', (_name, groups, request, outcome, rule) => {
    const decision = decideSession(policy, roles(...groups), request);
    expect(decision.outcome).toBe(outcome);
    expect(decision.rule).toBe(rule);
  });

  it('approval: never self, needs approve for that tenant and scope', () => {
    const request = { tenant: 'acme', environment: 'prod', scope: 'write' as const };
    expect(decideApproval(roles('support-leads'), bob, alice, request)).toMatchObject({ allowed: true });
    expect(decideApproval(roles('support-leads'), bob, bob, request)).toMatchObject({
      allowed: false,
      rule: 'approval.self',
    });
    // same sub from another issuer is another person
    expect(
      decideApproval(roles('support-leads'), { iss: 'other', sub: 'user-alice' }, alice, request),
    ).toMatchObject({ allowed: true });
    expect(decideApproval(roles('support'), bob, alice, request)).toMatchObject({
      allowed: false,
      rule: 'role.approve',
    });
    expect(decideApproval(roles('security'), bob, alice, request)).toMatchObject({
      allowed: false,
      rule: 'role.approve',
    });
    // A break-glass request is confirmed by on-call, never approved: not even by a full approver.
    expect(
      decideApproval(roles('support-leads'), bob, alice, { ...request, mode: 'break_glass' }),
    ).toMatchObject({ allowed: false, rule: 'break_glass.confirm_only' });
  });

  it.each([
    ['SUP-1', 'A good long reason', null],
    ['sup-1', 'A good long reason', 'ticket.pattern'],
    ['SUP-1\n', 'A good long reason', 'ticket.pattern'],
    ['', 'A good long reason', 'ticket.required'],
    ['SUP-1', 'short', 'reason.min_length'],
    ['SUP-1', '          padded          ', 'reason.min_length'],
    ['SUP-1', 'Bidi \u202e trick in reason', 'reason.control_characters'],
    ['SUP-1', 'x'.repeat(501), 'reason.max_length'],
    ['SUP-1', 42, 'reason.required'],
  ])('ticket %j reason %j → %s', (ticket, reason, rule) => {
    expect(checkTicketAndReason(policy, ticket, reason)?.rule ?? null).toBe(rule);
  });
});

describe('who reads a session that is not theirs', () => {
  const local = parsePolicy(
    `identity: { issuer: https://idp.example.com }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h }
  - { name: acme-lead, groups: [acme-leads], tenants: [acme], environments: [prod], scopes: [read, write], max_ttl: 1h, approve: true }
  - { name: confirm, groups: [confirmers], break_glass_confirm: true }
  - { name: sec, groups: [security], audit: true }
  - { name: rev, groups: [revokers], revoke: true }
`,
    'p.yaml',
  );
  const as = (...groups: string[]) => rolesForGroups(local, groups);
  const session = (tenant: string, environment: string, mode: 'standard' | 'break_glass' = 'standard') => ({
    requester: alice,
    tenant,
    environment,
    mode,
  });
  it.each([
    ['the owner', alice, [], session('globex', 'prod'), 'owner'],
    ['security (audit)', bob, ['security'], session('globex', 'prod'), 'security'],
    ['security (revoke)', bob, ['revokers'], session('globex', 'staging', 'break_glass'), 'security'],
    ['an approver of that tenant and environment', bob, ['acme-leads'], session('acme', 'prod'), 'approver'],
    [
      'a confirmer, for break-glass',
      bob,
      ['confirmers'],
      session('globex', 'prod', 'break_glass'),
      'confirmer',
    ],
  ] as const)('%s may', (_who, reader, groups, target, as_) => {
    expect(decideSessionRead(as(...groups), reader, target)).toEqual({ allowed: true, as: as_ });
  });
  it.each([
    ['an approver of another tenant', ['acme-leads'], session('globex', 'prod'), true],
    ['an approver of another environment', ['acme-leads'], session('acme', 'staging'), true],
    ['a confirmer, for a standard session', ['confirmers'], session('acme', 'prod'), true],
    ['a support engineer', ['support'], session('acme', 'prod'), false],
    ['nobody', [], session('acme', 'prod', 'break_glass'), false],
  ] as const)('%s may not', (_who, groups, target, overseer) => {
    const verdict = decideSessionRead(as(...groups), bob, target);
    expect(verdict).toMatchObject({
      allowed: false,
      overseer,
      rule: overseer ? 'oversee.scope' : 'session.owner',
    });
  });
});

describe('one person, two accounts (identity.person_claim)', () => {
  const aliceWork = { iss: 'idp', sub: 'user-alice', person: 'E-1' };
  const aliceAdmin = { iss: 'idp', sub: 'user-alice-admin', person: 'E-1' };
  const bobWork = { iss: 'idp', sub: 'user-bob', person: 'E-2' };
  it('compares the claim when both sides carry one, the account always', () => {
    expect(samePerson(aliceWork, aliceAdmin)).toBe(true);
    expect(samePerson(aliceWork, bobWork)).toBe(false);
    expect(samePerson({ iss: 'idp', sub: 'x', person: null }, { iss: 'idp', sub: 'y', person: null })).toBe(
      false,
    );
    expect(samePerson({ iss: 'idp', sub: 'x' }, { iss: 'idp', sub: 'x', person: 'E-9' })).toBe(true);
  });
  it('self-approval, self-confirmation and self-review are refused across accounts', () => {
    const ask = { tenant: 'acme', environment: 'prod', scope: 'write' as const };
    expect(decideApproval(roles('support-leads'), aliceAdmin, aliceWork, ask)).toMatchObject({
      allowed: false,
      rule: 'approval.self',
    });
    expect(decideApproval(roles('support-leads'), bobWork, aliceWork, ask).allowed).toBe(true);
    expect(
      decideBreakGlassConfirm(roles('sre-oncall'), aliceAdmin, aliceWork, {
        tenant: 'acme',
        environment: 'prod',
      }),
    ).toMatchObject({ allowed: false, rule: 'break_glass.self' });
    expect(decideBreakGlassReview(roles('security'), aliceAdmin, bobWork, aliceWork)).toMatchObject({
      allowed: false,
      rule: 'break_glass.review_self',
    });
  });
});
