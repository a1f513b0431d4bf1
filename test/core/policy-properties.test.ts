/**
 * Property tests of the policy's decisions over random policies, people and asks: no input grants
 * more than the policy's roles allow, tenant-level rules (unknown tenant or environment, approval
 * required) win over any role, fewer roles never grant more, and ticket/reason checks never let a
 * control character through while respecting the configured pattern and lengths.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasControlCharacters } from '../../src/core/escape.js';
import { checkTicketAndReason, decideApproval, decideSession } from '../../src/core/policy/decide.js';
import { parsePolicy } from '../../src/core/policy/load.js';
import { rolesForGroups } from '../../src/core/policy/roles.js';
import type { Policy, Role, Scope, Tenant } from '../../src/core/policy/types.js';

const BASE = parsePolicy('identity: { issuer: https://idp.example.com }\n', 'base.yaml');
const TENANT_IDS = ['acme', 'globex', 'initech', 'umbrella'];
const ENVIRONMENTS = ['prod', 'staging', 'dev'];
const GROUPS = ['g1', 'g2', 'g3', 'g4'];
const SCOPES: Scope[] = ['read', 'write'];
const TTLS = [60, 600, 1800, 3600, 86_400];

const subsetOf = <T>(items: readonly T[], minLength = 0) =>
  fc.subarray([...items], { minLength }).map((picked) => [...picked]);

const tenantArb: fc.Arbitrary<Tenant> = fc
  .record({
    id: fc.constantFrom(...TENANT_IDS),
    environments: subsetOf(ENVIRONMENTS, 1),
    approvalRequired: subsetOf(SCOPES),
  })
  .map(({ id, environments, approvalRequired }) => ({
    id,
    name: id,
    tier: 'standard',
    approvalRequired,
    upstream: Object.fromEntries(environments.map((env) => [env, `https://${id}.example.com/${env}`])),
  }));

const roleArb = (index: number): fc.Arbitrary<Role> =>
  fc
    .record({
      groups: subsetOf(GROUPS),
      tenants: fc.oneof(
        subsetOf(TENANT_IDS),
        fc.constant<string[]>(['*']),
        subsetOf([...TENANT_IDS, 'ghost', '*']),
      ),
      environments: fc.oneof(
        subsetOf(ENVIRONMENTS),
        fc.constant<string[]>(['*']),
        subsetOf([...ENVIRONMENTS, 'qa']),
      ),
      scopes: subsetOf(SCOPES),
      maxTtl: fc.constantFrom(...TTLS),
      approve: fc.boolean(),
    })
    .map((r) => ({
      name: `role${index}`,
      ...r,
      breakGlass: false,
      breakGlassConfirm: false,
      audit: false,
      review: false,
      revoke: false,
      passkeyReset: false,
      supervise: false,
    }));

const policyArb: fc.Arbitrary<Policy> = fc
  .record({
    tenants: fc.uniqueArray(tenantArb, { selector: (t) => t.id, maxLength: 4 }),
    roles: fc
      .integer({ min: 0, max: 5 })
      .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => roleArb(i)))),
  })
  .map(({ tenants, roles }) => ({ ...BASE, tenants, roles }));

const askArb = fc.record({
  tenant: fc.constantFrom(...TENANT_IDS, 'ghost', '*'),
  environment: fc.constantFrom(...ENVIRONMENTS, 'qa', '*'),
  scope: fc.constantFrom<Scope>(...SCOPES),
  ttl: fc.oneof(
    fc.constantFrom(...TTLS, 0, -1, 59, 61, 86_401, 1.5, Number.NaN),
    fc.integer({ min: -10, max: 100_000 }),
  ),
});

type Ask = { tenant: string; environment: string; scope: Scope; ttl: number };

const covers = (patterns: string[], value: string) => patterns.some((p) => p === '*' || p === value);

/** An independent statement of what the policy allows: some role of the person grants all of it. */
function oracleGrants(policy: Policy, roles: Role[], ask: Ask): boolean {
  const tenant = policy.tenants.find((t) => t.id === ask.tenant);
  if (!tenant || !Object.hasOwn(tenant.upstream, ask.environment)) return false;
  if (!Number.isInteger(ask.ttl) || ask.ttl <= 0) return false;
  return roles.some(
    (role) =>
      covers(role.tenants, ask.tenant) &&
      covers(role.environments, ask.environment) &&
      role.scopes.includes(ask.scope) &&
      role.maxTtl >= ask.ttl,
  );
}

describe('decideSession (properties)', () => {
  const person = fc.tuple(policyArb, subsetOf(GROUPS), askArb);

  it('grants exactly what some role of the person grants: never more, never less', () => {
    fc.assert(
      fc.property(person, ([policy, groups, ask]) => {
        const roles = rolesForGroups(policy, groups);
        const decision = decideSession(policy, roles, ask);
        expect(decision.outcome !== 'deny').toBe(oracleGrants(policy, roles, ask));
      }),
      { numRuns: 2000 },
    );
  });

  it('an allow names roles the person holds, each granting the ask, and a ceiling no role exceeds', () => {
    fc.assert(
      fc.property(person, ([policy, groups, ask]) => {
        const roles = rolesForGroups(policy, groups);
        const decision = decideSession(policy, roles, ask);
        if (decision.outcome === 'deny') return;
        expect(decision.roles.length).toBeGreaterThan(0);
        for (const role of decision.roles) {
          expect(roles).toContain(role);
          expect(covers(role.tenants, ask.tenant) && covers(role.environments, ask.environment)).toBe(true);
          expect(role.scopes).toContain(ask.scope);
        }
        expect(decision.maxTtl).toBe(Math.max(...decision.roles.map((r) => r.maxTtl)));
        expect(ask.ttl).toBeLessThanOrEqual(decision.maxTtl);
        if (decision.outcome === 'allow') expect(decision.rule).toBe(`role.${decision.roles[0]!.name}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('tenant rules win over any role: approval_required is never bypassed; unknown tenants and environments deny', () => {
    fc.assert(
      fc.property(person, ([policy, groups, ask]) => {
        // Even a person holding every role, each role wide open, cannot get past the tenant's rules.
        const everything = rolesForGroups(policy, groups).map((role) => ({
          ...role,
          tenants: ['*'],
          environments: ['*'],
          scopes: [...SCOPES],
          maxTtl: 7 * 86_400,
        }));
        const decision = decideSession(policy, everything, ask);
        const tenant = policy.tenants.find((t) => t.id === ask.tenant);
        if (!tenant) expect(decision).toMatchObject({ outcome: 'deny', rule: 'tenant.unknown' });
        else if (!Object.hasOwn(tenant.upstream, ask.environment))
          expect(decision).toMatchObject({ outcome: 'deny', rule: 'tenant.environment' });
        else if (tenant.approvalRequired.includes(ask.scope)) expect(decision.outcome).not.toBe('allow');
      }),
      { numRuns: 2000 },
    );
  });

  it('fewer roles never grant more (monotone), and every deny names its rule', () => {
    fc.assert(
      fc.property(person, fc.array(fc.nat()), ([policy, groups, ask], drops) => {
        const roles = rolesForGroups(policy, groups);
        const fewer = roles.filter((_, i) => !drops.includes(i));
        const full = decideSession(policy, roles, ask);
        const reduced = decideSession(policy, fewer, ask);
        if (full.outcome === 'deny') expect(reduced.outcome).toBe('deny');
        if (reduced.outcome !== 'deny') expect(reduced.outcome).toBe(full.outcome);
        for (const decision of [full, reduced]) {
          expect(decision.rule).toMatch(/^(tenant|role|ttl)\.[a-z_0-9]+$/);
          expect(decision.message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('decideApproval (properties)', () => {
  const subject = fc.record({
    iss: fc.constantFrom('idp-a', 'idp-b'),
    sub: fc.constantFrom('u1', 'u2', 'u3'),
  });

  it('never self-approval; an allow comes from an approve role covering tenant, environment and scope', () => {
    fc.assert(
      fc.property(
        policyArb,
        subsetOf(GROUPS),
        subject,
        subject,
        askArb,
        (policy, groups, approver, requester, ask) => {
          const roles = rolesForGroups(policy, groups);
          const verdict = decideApproval(roles, approver, requester, ask);
          const self = approver.iss === requester.iss && approver.sub === requester.sub;
          if (self) expect(verdict).toMatchObject({ allowed: false, rule: 'approval.self' });
          if (!verdict.allowed) return;
          expect(roles).toContain(verdict.role);
          expect(verdict.role.approve).toBe(true);
          expect(
            covers(verdict.role.tenants, ask.tenant) && covers(verdict.role.environments, ask.environment),
          ).toBe(true);
          expect(verdict.role.scopes).toContain(ask.scope);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

// Every character the product treats as control or bidi trickery.
const CONTROL = [
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)),
  ...Array.from({ length: 0x21 }, (_, i) => String.fromCharCode(0x7f + i)),
  '\u2028',
  '\u2029',
  '\u202a',
  '\u202b',
  '\u202c',
  '\u202d',
  '\u202e',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
];
const controlChar = fc.constantFrom(...CONTROL);
const PATTERNS = ['^[A-Z][A-Z0-9]+-[0-9]+$', '^(SUP|INC)-\\d{1,6}$', '^.*$', '[\\s\\S]*', '^[^-]+$'];
const text = fc.string({ unit: 'binary', maxLength: 80 });
const withControl = (base: fc.Arbitrary<string>) =>
  fc.tuple(base, controlChar, fc.nat()).map(([value, control, at]) => {
    const i = at % (value.length + 1);
    return value.slice(0, i) + control + value.slice(i);
  });
const policyWith = (pattern: string, minLength: number, maxLength: number): Policy => ({
  ...BASE,
  tickets: { pattern, system: null, postSummary: false },
  reason: { minLength, maxLength },
});
const lengths = fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 60 }));
const GOOD_REASON = 'Looking into the missing invoices';

describe('ticket and reason checks (properties)', () => {
  it('a control character never passes, in the ticket or the reason, whatever the pattern', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PATTERNS),
        withControl(fc.constantFrom('SUP-1', 'INC-42', 'A')),
        (pattern, ticket) => {
          expect(checkTicketAndReason(policyWith(pattern, 1, 500), ticket, GOOD_REASON)).not.toBeNull();
        },
      ),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.constantFrom(...PATTERNS), withControl(text), (pattern, reason) => {
        const problem = checkTicketAndReason(policyWith(pattern, 1, 10_000), 'SUP-1', reason);
        if (new RegExp(pattern, 'u').test('SUP-1')) expect(problem?.rule).toBe('reason.control_characters');
        else expect(problem).not.toBeNull();
      }),
      { numRuns: 1000 },
    );
  });

  it('what passes matches the pattern, fits the lengths and holds no control character', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PATTERNS),
        lengths,
        fc.oneof(text, fc.stringMatching(/^[A-Z]{1,4}-[0-9]{1,8}$/)),
        text,
        (pattern, [min, extra], ticket, reason) => {
          const problem = checkTicketAndReason(policyWith(pattern, min, min + extra), ticket, reason);
          if (problem) return;
          expect(new RegExp(pattern, 'u').test(ticket)).toBe(true);
          expect(ticket.length).toBeLessThanOrEqual(64);
          expect(hasControlCharacters(ticket) || hasControlCharacters(reason)).toBe(false);
          const length = [...reason.trim()].length;
          expect(length).toBeGreaterThanOrEqual(min);
          expect(length).toBeLessThanOrEqual(min + extra);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('what is clean and fits passes (the checks refuse nothing they should accept)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Z][A-Z0-9]{1,10}-[0-9]{1,8}$/),
        fc.string({ unit: 'grapheme', minLength: 10, maxLength: 200 }),
        (ticket, reason) => {
          fc.pre(!hasControlCharacters(reason));
          const length = [...reason.trim()].length;
          fc.pre(length >= 10 && length <= 500);
          expect(checkTicketAndReason(BASE, ticket, reason)).toBeNull();
        },
      ),
      { numRuns: 1000 },
    );
  });
});
