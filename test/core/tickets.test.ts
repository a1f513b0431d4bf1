/** Policy `tickets.system`: how it is read (and refused), the decision on what a ticket system said, and the note's plain values. */
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy/load.js';
import { decideTicket, type TicketFacts, type TicketSystem } from '../../src/core/policy/tickets.js';
import { plainValue, summaryNoteLines } from '../../src/core/ticket-note.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';

const withTickets = (tickets: string) =>
  devPolicyYaml('http://127.0.0.1:5556', 'http://127.0.0.1:9').replace(
    /^tickets: .*$/m,
    () => `tickets:\n${tickets}`,
  );

describe('policy tickets.system', () => {
  it('reads a Redmine system with defaults', () => {
    const policy = parsePolicy(
      withTickets(`  pattern: '^RM-[0-9]+$'
  post_summary: true
  system:
    type: redmine
    url: https://redmine.example.com/
    token_env: IMP_REDMINE_KEY
    require_person: assignee
    tenant_field: Tenant`),
      'p.yaml',
    );
    expect(policy.tickets).toEqual({
      pattern: '^RM-[0-9]+$',
      postSummary: true,
      system: {
        type: 'redmine',
        url: 'https://redmine.example.com',
        jiraApi: 'cloud',
        user: null,
        tokenEnv: 'IMP_REDMINE_KEY',
        tokenFile: null,
        openStatuses: [],
        person: 'assignee',
        tenantField: 'Tenant',
        onUnreachable: 'refuse',
        breakGlass: 'warn',
        timeout: 5,
        maxBodyBytes: 1024 * 1024,
      },
    });
  });

  it('no system: the pattern only, nothing posted', () => {
    const policy = parsePolicy(withTickets(`  pattern: '^SUP-[0-9]+$'`), 'p.yaml');
    expect(policy.tickets).toEqual({ pattern: '^SUP-[0-9]+$', system: null, postSummary: false });
  });

  it.each([
    [
      'a secret written into the policy',
      `    type: redmine\n    url: https://r.example\n    token: 0123456789abcdef`,
      /tickets\.system\.token: unknown key/,
    ],
    [
      'a secret where the env var name goes',
      `    type: redmine\n    url: https://r.example\n    token_env: "abc-123 secret"`,
      /token_env: must be the name of an environment variable/,
    ],
    [
      'no credential for Redmine',
      `    type: redmine\n    url: https://r.example`,
      /redmine needs the broker's own credential/,
    ],
    [
      'Jira Cloud without the account e-mail',
      `    type: jira\n    url: https://x.atlassian.net\n    token_env: JIRA`,
      /tickets\.system\.user: Jira Cloud needs/,
    ],
    ['plain http to a remote host', `    type: http\n    url: http://tickets.example.com`, /must be https/],
    [
      'an unknown type',
      `    type: servicenow\n    url: https://x.example\n    token_env: X`,
      /type: must be redmine, jira or http/,
    ],
    [
      'an unknown on_unreachable',
      `    type: http\n    url: https://x.example\n    on_unreachable: maybe`,
      /on_unreachable: must be refuse or allow/,
    ],
    [
      'an unknown break_glass',
      `    type: http\n    url: https://x.example\n    break_glass: ignore`,
      /break_glass: must be check, warn or skip/,
    ],
    [
      'a timeout a request cannot wait for',
      `    type: http\n    url: https://x.example\n    timeout: 2m`,
      /timeout: must be at most 30s/,
    ],
    [
      'both token_env and token_file',
      `    type: http\n    url: https://x.example\n    token_env: A\n    token_file: /etc/imp/t`,
      /give token_env or token_file, not both/,
    ],
  ])('refuses %s, naming the line and key', (_what, system, message) => {
    expect(() =>
      parsePolicy(withTickets(`  pattern: '^SUP-[0-9]+$'\n  system:\n${system}`), 'p.yaml'),
    ).toThrow(message);
  });

  it('refuses post_summary without a system', () => {
    expect(() =>
      parsePolicy(withTickets(`  pattern: '^SUP-[0-9]+$'\n  post_summary: true`), 'p.yaml'),
    ).toThrow(/p\.yaml:\d+: tickets\.post_summary: needs tickets\.system/);
  });
});

const SYSTEM: TicketSystem = {
  type: 'http',
  url: 'https://t.example',
  jiraApi: 'cloud',
  user: null,
  tokenEnv: null,
  tokenFile: null,
  openStatuses: [],
  person: 'assignee',
  tenantField: 'tenant',
  onUnreachable: 'refuse',
  breakGlass: 'warn',
  timeout: 5,
  maxBodyBytes: 1024,
};
const FACTS: TicketFacts = {
  key: 'SUP-1',
  status: 'Open',
  closed: false,
  assignee: { email: 'Alice@Example.test' },
  reporter: { email: 'bob@example.test' },
  tenants: ['Acme Corp'],
};
const ASK = { email: 'alice@example.test', tenant: { id: 'acme', name: 'Acme Corp' } };
const decide = (facts: Partial<TicketFacts> | null, system: Partial<TicketSystem> = {}, ask = ASK) =>
  decideTicket(
    { ...SYSTEM, ...system },
    'SUP-1',
    facts === null ? { found: false, detail: 'HTTP 404' } : { found: true, facts: { ...FACTS, ...facts } },
    ask,
    (text) => `"${text}"`,
  );

describe('decideTicket', () => {
  it.each([
    ['an open ticket assigned to the requester naming the tenant (by name, any case)', {}, {}, { ok: true }],
    ['the tenant id also matches', { tenants: ['ACME'] }, {}, { ok: true }],
    ['missing', null, {}, { rule: 'ticket.not_found' }],
    ['closed by the system', { closed: true, status: 'Closed' }, {}, { rule: 'ticket.closed' }],
    [
      'open by the system, but not a listed open status',
      { status: 'Waiting' },
      { openStatuses: ['Open', 'In progress'] },
      { rule: 'ticket.closed' },
    ],
    [
      'closed by the system, but a listed open status',
      { closed: true, status: 'open' },
      { openStatuses: ['Open'] },
      { ok: true },
    ],
    [
      'assigned to someone else',
      { assignee: { email: 'bob@example.test' } },
      {},
      { rule: 'ticket.not_assigned' },
    ],
    ['unassigned', { assignee: null }, {}, { rule: 'ticket.not_assigned' }],
    [
      'reported by the requester, when the reporter counts',
      { assignee: null, reporter: { email: 'alice@example.test' } },
      { person: 'assignee_or_reporter' },
      { ok: true },
    ],
    [
      'reported by the requester, when only the assignee counts',
      { assignee: null, reporter: { email: 'alice@example.test' } },
      { person: 'assignee' },
      { rule: 'ticket.not_assigned' },
    ],
    [
      'assigned but not reported, when only the reporter counts',
      {},
      { person: 'reporter' },
      { rule: 'ticket.not_assigned' },
    ],
    ['anyone, when the person rule is off', { assignee: null }, { person: 'off' }, { ok: true }],
    ['another tenant', { tenants: ['globex'] }, {}, { rule: 'ticket.other_tenant' }],
    ['no tenant', { tenants: [] }, {}, { rule: 'ticket.other_tenant' }],
    ['no tenant, when the field is not checked', { tenants: [] }, { tenantField: null }, { ok: true }],
    [
      'closed wins over the other rules',
      { closed: true, assignee: null, tenants: [] },
      {},
      { rule: 'ticket.closed' },
    ],
  ] as [string, Partial<TicketFacts> | null, Partial<TicketSystem>, object][])(
    '%s',
    (_what, facts, system, expected) => {
      expect(decide(facts, system)).toMatchObject(expected);
    },
  );

  it('a requester without an e-mail claim is refused when a person must match, and told why', () => {
    const decision = decide({}, {}, { ...ASK, email: null as unknown as string });
    expect(decision).toMatchObject({ ok: false, rule: 'ticket.not_assigned' });
    expect(decision.ok ? '' : decision.message).toContain('carries no e-mail address');
  });
});

describe('the note on the ticket', () => {
  it('plain values keep letters, digits and separators; markup and controls become ?', () => {
    expect(plainValue('alice@example.test')).toBe('alice@example.test');
    expect(plainValue('Zoë Ω-42')).toBe('Zoë Ω-42');
    expect(plainValue('"><img src=x>!http://evil/x.png! [link](http://e) *b* \u001b[2J')).toBe(
      '???img src=x??http://evil/x.png? ?link?(http://e) ?b? ??2J',
    );
  });

  it('carries who, when, scope, counts, the proof and the console link; not the reason or paths', () => {
    const lines = summaryNoteLines(
      {
        session: {
          id: 's-1',
          state: 'ended',
          mode: 'standard',
          tenant: 'acme',
          environment: 'prod',
          scope: 'write',
          ticket: 'SUP-1',
          reason: 'secret plans <script>',
          ttl: 600,
          requester: { sub: 'u', email: 'alice@example.test' },
          created_at: '2026-11-29T08:00:00.000Z',
          request_expires_at: null,
          decided_by: { sub: 'b', email: 'bob@example.test' },
          decision_comment: null,
          started_at: '2026-11-29T08:00:00.000Z',
          expires_at: null,
          ended_at: '2026-11-29T08:03:00.000Z',
          ended_by: null,
          review_required: false,
          review: null,
        },
        duration_seconds: 180,
        actions: { read: 3, write: 2, export: 1 },
        writes: 2,
        denials: 1,
        recorded: true,
        supervised_by: ['erin@example.test'],
        calls: [
          {
            ts: 'x',
            method: 'GET',
            path: '/v1/secret-path',
            status: 200,
            kind: 'read',
            outcome: 'completed',
          },
        ],
      },
      {
        brokerUrl: 'https://imp.example',
        consoleUrl: 'https://imp.example/console/sessions/s-1',
        endEventId: 'e-1',
        delivery: 'd-1',
      },
    );
    const text = lines.join('\n');
    expect(lines[0]).toBe('imp session summary for SUP-1');
    for (const part of [
      'Engineer:   alice@example.test',
      'Scope:      write',
      'Approved by: bob@example.test',
      'Actions:    3 read, 2 write, 1 export',
      'Writes:     2; exports: 1',
      'Denied:     1',
      'Recorded:   yes; supervised: erin@example.test',
      'Audit proof: imp audit receipt e-1 (GET https://imp.example/v1/audit/receipt/e-1)',
      'Console:    https://imp.example/console/sessions/s-1',
      'imp-delivery: d-1',
    ])
      expect(text).toContain(part);
    expect(text).not.toContain('secret plans');
    expect(text).not.toContain('/v1/secret-path');
  });
});
