/** Machine identities in the policy: what the file may say, who a token is, what a session may do. */
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy/load.js';
import {
  decideMachineSession,
  type MachineAsk,
  machineAllows,
  machineNameOf,
  machinesFor,
  matchesSubject,
} from '../../src/core/policy/machines.js';

const BASE = `identity: { issuer: https://idp.example.com }
tenants:
  - { id: acme, upstream: { prod: https://acme.example, staging: https://acme-staging.example } }
  - { id: globex, upstream: { prod: https://globex.example } }
`;
const MACHINES = `machines:
  - name: queue-diag
    issuer: https://token.actions.githubusercontent.com
    subject: 'repo:org/runbooks:ref:refs/heads/*'
    tenants: [acme]
    environments: [prod]
    allow: ['GET /v1/queue/**', 'HEAD /v1/users/*']
    max_ttl: 10m
  - name: k8s-diag
    issuer: https://kubernetes.default.svc
    jwks_uri: https://kubernetes.default.svc/openid/v1/jwks
    subject: system:serviceaccount:ops:diag
    audience: imp
    tenants: ['*']
    allow: ['GET /v1/users']
    ticket_required: false
`;
const policy = parsePolicy(BASE + MACHINES, 'broker.yaml');
const [queueDiag, k8sDiag] = policy.machines;
const ask = (over: Partial<MachineAsk> = {}): MachineAsk => ({
  tenant: 'acme',
  environment: 'prod',
  scope: 'read',
  mode: 'standard',
  ttl: 300,
  ticket: 'INC-1',
  reason: 'Nightly queue diagnostics',
  ...over,
});

describe('policy machines:', () => {
  it('reads entries with their defaults', () => {
    expect(queueDiag).toMatchObject({
      name: 'queue-diag',
      jwksUri: null,
      audience: null,
      maxTtl: 600,
      ticketRequired: true,
      allow: [
        { method: 'GET', path: '/v1/queue/**' },
        { method: 'HEAD', path: '/v1/users/*' },
      ],
    });
    expect(k8sDiag).toMatchObject({
      environments: ['*'],
      maxTtl: 900,
      ticketRequired: false,
      audience: 'imp',
    });
  });

  it.each([
    ['a write method', "allow: ['POST /v1/users']", 'machines[0].allow[0]: machine identities are read-only'],
    [
      'a scope',
      'scopes: [write]',
      'machines[0].scopes: machine identities are read-only and never break glass',
    ],
    ['break-glass', 'break_glass: true', 'machines[0].break_glass: machine identities are read-only'],
    ['a malformed allow entry', "allow: ['/v1/users']", 'must look like "GET /v1/queue/**"'],
    ['plain http to a remote issuer', 'issuer: http://ci.example.com', 'machines[0].issuer: must be https'],
  ])('refuses %s', (_name, line, expected) => {
    const entry = {
      name: 'm',
      issuer: 'https://ci.example.com',
      subject: 's',
      tenants: '[acme]',
      allow: "['GET /v1/x']",
    } as Record<string, string>;
    const [key] = line.split(':');
    entry[key!] = line.slice(key!.length + 1).trim();
    const yaml = `${BASE}machines:\n  - ${Object.entries(entry)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n    ')}\n`;
    expect(() => parsePolicy(yaml, 'broker.yaml')).toThrow(expected);
  });

  it('refuses duplicate names and role names that would pass for a machine', () => {
    expect(() =>
      parsePolicy(
        `${BASE + MACHINES}  - { name: queue-diag, issuer: https://x.example, subject: s, tenants: [acme], allow: ['GET /'] }\n`,
        'b.yaml',
      ),
    ).toThrow('machines[2].name: duplicate name "queue-diag"');
    expect(() => parsePolicy(`${BASE}roles:\n  - { name: 'machine:x', groups: [g] }\n`, 'b.yaml')).toThrow(
      'roles[0].name: must not start with "machine:"',
    );
  });
});

describe('which machine a token is', () => {
  it('matches subjects exactly, with * for any run of characters', () => {
    expect(
      matchesSubject('repo:org/runbooks:ref:refs/heads/*', 'repo:org/runbooks:ref:refs/heads/main'),
    ).toBe(true);
    expect(
      matchesSubject('repo:org/runbooks:ref:refs/heads/*', 'repo:org/runbooks-fork:ref:refs/heads/main'),
    ).toBe(false);
    expect(matchesSubject('system:serviceaccount:ops:diag', 'system:serviceaccount:ops:diag2')).toBe(false);
    expect(matchesSubject('a.b', 'aXb')).toBe(false);
    expect(matchesSubject('a*', 'a\nb')).toBe(true);
  });

  it('names the rule when the issuer or the subject is unknown', () => {
    expect(machinesFor(policy, 'https://evil.example', 'x')).toMatchObject({
      ok: false,
      rule: 'machine.issuer',
    });
    expect(
      machinesFor(
        policy,
        'https://token.actions.githubusercontent.com',
        'repo:evil/runbooks:ref:refs/heads/main',
      ),
    ).toMatchObject({ ok: false, rule: 'machine.subject' });
    const found = machinesFor(policy, 'https://kubernetes.default.svc', 'system:serviceaccount:ops:diag');
    expect(found.ok && found.machines.map((m) => m.name)).toEqual(['k8s-diag']);
  });

  it('tells machine requesters from people by their role', () => {
    expect(machineNameOf(['machine:queue-diag'])).toBe('queue-diag');
    expect(machineNameOf(['support', 'lead'])).toBeNull();
  });
});

describe('decideMachineSession', () => {
  it('allows a read session within the entry, and never asks for approval or a fresh login', () => {
    const decision = decideMachineSession(policy, [queueDiag!], ask());
    expect(decision).toMatchObject({ outcome: 'allow', rule: 'machine:queue-diag', reauth: 'never' });
  });

  it.each([
    ['write', ask({ scope: 'write' }), 'machine.read_only'],
    ['break-glass', ask({ mode: 'break_glass' }), 'machine.break_glass'],
    ['another tenant', ask({ tenant: 'globex' }), 'machine.tenant'],
    ['another environment', ask({ environment: 'staging' }), 'machine.tenant'],
    ['an unknown tenant', ask({ tenant: 'nope' }), 'tenant.unknown'],
    ['a longer session', ask({ ttl: 601 }), 'machine.max_ttl'],
    ['no ticket where one is required', ask({ ticket: null }), 'machine.ticket_required'],
    ['a malformed ticket', ask({ ticket: 'nope' }), 'ticket.pattern'],
    ['a short reason', ask({ reason: 'x' }), 'reason.min_length'],
  ])('refuses %s', (_name, request, rule) => {
    expect(decideMachineSession(policy, [queueDiag!], request)).toMatchObject({ outcome: 'deny', rule });
  });

  it('write and break-glass are refused even by an entry covering every tenant', () => {
    expect(decideMachineSession(policy, [k8sDiag!], ask({ scope: 'write', tenant: 'globex' }))).toMatchObject(
      {
        rule: 'machine.read_only',
      },
    );
  });

  it('lets an entry without ticket_required go without a ticket, reason still checked', () => {
    expect(decideMachineSession(policy, [k8sDiag!], ask({ ticket: null, tenant: 'globex' })).outcome).toBe(
      'allow',
    );
    expect(decideMachineSession(policy, [k8sDiag!], ask({ ticket: null, reason: '' })).rule).toBe(
      'reason.min_length',
    );
  });
});

describe('machineAllows', () => {
  it.each([
    ['GET', '/v1/queue/jobs', true],
    ['GET', '/v1/queue/jobs/17?verbose=1', true],
    ['GET', '/v1/queues', false],
    ['HEAD', '/v1/users/u-1', true],
    ['GET', '/v1/users/u-1', false],
    ['HEAD', '/v1/users/u-1/sessions', false],
    ['POST', '/v1/queue/jobs', false],
    ['get', '/v1/queue/jobs', true],
  ])('%s %s → %s', (method, path, allowed) => {
    expect(machineAllows(queueDiag!, method, path)).toBe(allowed);
  });
});
