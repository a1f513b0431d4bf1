/**
 * The break-glass and review commands with a stub broker: local refusals happen before any login
 * (exit 2), the typed confirmations have flags for --no-input, broker refusals exit 4, an
 * unconfirmed request that expires exits 5, and the JSON events come in order.
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { formatReview } from '../../src/cli/review-format.js';
import type { ReviewReport } from '../../src/core/api.js';
import { makeTestDeps, type StubCall, stubBroker } from '../helpers/cli-deps.js';

const BROKER = 'http://127.0.0.1:7700';
const ID = '0b6f5a3e-1d2c-4e5f-8a9b-0c1d2e3f4a5b';
const stored = JSON.stringify({
  token: 'tok',
  expires_at: '2026-11-25T00:00:00Z',
  auth_time: 1,
  user: { iss: 'i', sub: 'carol', email: 'carol@x', name: null, groups: [], roles: [] },
});
const config = {
  issuer: 'http://127.0.0.1:7701',
  client_id: 'imp-cli',
  reauth_max_age: 300,
  per_session_login: true,
  ticket_pattern: '^[A-Z]+-[0-9]+$',
  reason_min_length: 10,
  reason_max_length: 500,
  default_ttl: 1800,
  break_glass: { confirm_window: 600, max_ttl: 1800 },
};
const request = (state: string, extra: Record<string, unknown> = {}) => ({
  id: ID,
  state,
  mode: 'break_glass',
  tenant: 'acme',
  environment: 'prod',
  scope: 'write',
  ticket: 'INC-1',
  reason: 'Payments are stuck \u001b]0;pwned\u0007',
  ttl: 600,
  requester: { sub: 'carol', email: 'carol@x' },
  created_at: '2026-11-24T12:00:00.000Z',
  request_expires_at: '2026-11-24T12:10:00.000Z',
  confirm_by: '2026-11-24T12:10:00.000Z',
  decided_by: null,
  decision_comment: null,
  started_at: null,
  expires_at: null,
  ended_at: null,
  review_required: false,
  ...extra,
});
const configCall: StubCall = { method: 'GET', path: '/v1/config', status: 200, body: config };
const refused = (path: string, method: string, rule: string): StubCall => ({
  method,
  path,
  status: 403,
  body: { error: { code: 'IMP_POLICY_DENIED', message: `Refused by rule ${rule}: no`, details: { rule } } },
});

async function imp(argv: string[], calls: StubCall[]) {
  const fetch = stubBroker(calls);
  const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: BROKER } });
  await t.credentials.set(BROKER, stored);
  const code = await main(argv, t.deps, 'test');
  return {
    code,
    stdout: t.io.stdoutText(),
    stderr: t.io.stderrText(),
    remaining: fetch.remaining(),
    logins: t.logins,
  };
}

const ask = [
  'break-glass',
  '--tenant',
  'acme',
  '--env',
  'prod',
  '--incident',
  'INC-1',
  '--reason',
  'Payments are stuck',
];

describe('imp break-glass', () => {
  it.each([
    ['no typed confirmation with --no-input', [...ask, '--no-input'], 'pass --confirm "break glass acme"'],
    [
      'a wrong phrase',
      [...ask, '--confirm', 'break glass globex'],
      '--confirm must be exactly "break glass acme"',
    ],
    [
      'an incident id not matching the ticket pattern',
      [
        'break-glass',
        '--tenant',
        'acme',
        '--env',
        'prod',
        '--incident',
        'inc 1',
        '--reason',
        'Payments are stuck',
      ],
      'The incident id must match',
    ],
    ['a TTL over break_glass.max_ttl', [...ask, '--ttl', '2h'], 'break_glass.max_ttl'],
    [
      'missing values without a terminal',
      ['break-glass', '--tenant', 'acme'],
      'Missing --env, --incident, --reason',
    ],
  ])('refuses %s with exit 2 before any login or request', async (_name, argv, message) => {
    const result = await imp(argv, [configCall]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.remaining).toEqual([]);
    expect(result.logins).toHaveLength(0);
  });

  it('a refusal by the broker exits 4 and names the rule', async () => {
    const result = await imp(
      [...ask, '--confirm', 'break glass acme'],
      [configCall, refused('/v1/break-glass', 'POST', 'role.break_glass')],
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('role.break_glass');
  });

  it('--json: confirmation_pending first; nobody confirming in time exits 5', async () => {
    const result = await imp(
      [...ask, '--confirm', 'break glass acme', '--json'],
      [
        configCall,
        {
          method: 'POST',
          path: '/v1/break-glass',
          status: 202,
          body: { request: request('pending') },
          check: ({ body }) =>
            expect(body).toEqual({
              tenant: 'acme',
              environment: 'prod',
              incident: 'INC-1',
              reason: 'Payments are stuck',
            }),
        },
        {
          method: 'GET',
          path: `/v1/sessions/${ID}`,
          status: 200,
          body: { session: request('request_expired') },
        },
      ],
    );
    expect(result.code).toBe(5);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines[0]).toMatchObject({
      event: 'confirmation_pending',
      request: { id: ID, confirm_by: '2026-11-24T12:10:00.000Z' },
      console_url: `${BROKER}/console/requests/${ID}`,
    });
    expect(lines[1]).toMatchObject({ event: 'error', error: { code: 'IMP_TIMEOUT' } });
    expect(result.stderr).toContain(`Nobody confirmed break-glass request ${ID.slice(0, 8)} in time`);
  });
});

describe('imp break-glass: an incident the ticket system did not verify (break_glass: warn)', () => {
  it('shows the warning and goes on waiting for the confirmer', async () => {
    const warning =
      'The incident check failed (rule ticket.not_found: ticket "INC-1" does not exist in redmine, or the broker\'s account cannot see it.); break-glass goes on, and this is recorded.';
    const result = await imp(
      [...ask, '--confirm', 'break glass acme', '--no-shell'],
      [
        configCall,
        {
          method: 'POST',
          path: '/v1/break-glass',
          status: 202,
          body: { request: request('pending'), ticket_warning: warning },
        },
        {
          method: 'GET',
          path: `/v1/sessions/${ID}`,
          status: 200,
          body: { session: request('request_expired') },
        },
      ],
    );
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`Warning: ${warning}`);
    // The confirmer can be sent the console page as well as the command.
    expect(result.stderr).toContain(`imp break-glass confirm ${ID.slice(0, 8)}`);
    expect(result.stderr).toContain(`or this link: ${BROKER}/console/requests/${ID}`);
  });
});

describe('imp break-glass confirm', () => {
  it('shows the request with untrusted text escaped, and needs the id typed (--confirm) under --no-input', async () => {
    const result = await imp(
      ['break-glass', 'confirm', ID, '--no-input'],
      [{ method: 'GET', path: `/v1/break-glass/${ID}`, status: 200, body: { request: request('pending') } }],
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('requested by  carol@x');
    expect(result.stderr).toContain('reason        Payments are stuck \\x1b]0;pwned\\x07');
    expect(result.stderr).toContain(`pass --confirm ${ID.slice(0, 8)}`);
  });

  it('confirms with --confirm ID and reports the session as JSON', async () => {
    const active = request('active', {
      decided_by: { sub: 'dave', email: 'dave@x' },
      expires_at: '2026-11-24T12:30:00.000Z',
      review_required: true,
    });
    const result = await imp(
      ['break-glass', 'confirm', ID, '--confirm', ID, '--json'],
      [
        { method: 'GET', path: `/v1/break-glass/${ID}`, status: 200, body: { request: request('pending') } },
        { method: 'POST', path: `/v1/break-glass/${ID}/confirm`, status: 200, body: { session: active } },
      ],
    );
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      event: 'confirmed',
      session: { id: ID, state: 'active' },
      console_url: `${BROKER}/console/sessions/${ID}`,
    });
  });

  it.each([
    ['the requester', 'break_glass.self'],
    ['no role', 'role.break_glass_confirm'],
    ['after the window', 'break_glass.confirm_window'],
  ])('a refusal (%s) exits 4 without asking anything', async (_name, rule) => {
    const result = await imp(['break-glass', 'confirm', ID], [refused(`/v1/break-glass/${ID}`, 'GET', rule)]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(rule);
  });
});

describe('imp review and imp break-glass review', () => {
  it('needs --outcome and --notes without a terminal', async () => {
    const result = await imp(['break-glass', 'review', ID, '--outcome', 'justified'], []);
    expect(result.code).toBe(2);
    const bad = await imp(['break-glass', 'review', ID, '--outcome', 'maybe', '--notes', 'x'], []);
    expect(bad.code).toBe(2);
  });

  it('refuses --json with another --format, and maps a refusal to exit 4', async () => {
    expect((await imp(['review', '--json', '--format', 'markdown'], [])).code).toBe(2);
    expect((await imp(['review', '--since', 'last month'], [])).code).toBe(2);
    const denied = await imp(['review'], [refused('/v1/review', 'GET', 'role.audit')]);
    expect(denied.code).toBe(4);
  });

  it('Markdown escapes untrusted text so a reason cannot inject table cells or links', () => {
    const line = {
      id: ID,
      mode: 'break_glass' as const,
      state: 'ended' as const,
      requester: { sub: 'carol', email: 'carol@x' },
      decided_by: { sub: 'dave', email: 'dave@x' },
      tenant: 'acme',
      environment: 'prod',
      scope: 'write' as const,
      ticket: 'INC-1',
      reason: 'evil | cell [link](http://x) \u001b[2J',
      created_at: '2026-11-24T12:00:00.000Z',
      started_at: '2026-11-24T12:01:00.000Z',
      ended_at: '2026-11-24T12:20:00.000Z',
      review: null,
    };
    const report: ReviewReport = {
      generated_at: '2026-11-24T13:00:00.000Z',
      since: '2026-10-25T13:00:00.000Z',
      broker: BROKER,
      totals: { sessions: 1, write: 1, break_glass: 1, denials: 0, step_ups: 0, alert_failures: 1 },
      by_person: [{ person: { sub: 'carol', email: 'carol@x' }, sessions: 1, write: 1, break_glass: 1 }],
      by_tenant: [{ tenant: 'acme', sessions: 1, write: 1, break_glass: 1 }],
      write_sessions: [],
      break_glass_sessions: [line],
      awaiting_review: [line],
      denials: [],
      step_ups: [],
      alert_failures: [
        {
          ts: '2026-11-24T12:01:30.000Z',
          session: ID,
          url: 'https://hooks.example/x',
          attempts: 5,
          error: 'HTTP 503',
        },
      ],
      unused_roles: [
        {
          person: { sub: 'bob', email: 'bob@x' },
          role: 'lead',
          groups: ['support-leads'],
          last_login: '2026-11-01T09:00:00.000Z',
        },
      ],
      machines: [
        {
          name: 'queue-diag',
          issuer: 'https://ci.example',
          subject: 'repo:org/*|x\u001b[2J',
          sessions: 0,
          denials: 2,
          last_used: null,
          unused: true,
        },
      ],
      unused_days: 30,
      weekly: [],
      approvals: [],
      write_time: [],
    };
    const markdown = formatReview(report, 'markdown');
    expect(markdown).toContain(
      '| queue-diag | repo:org/\\*\\|x\\\\x1b\\[2J | 0 | 2 | — | unused for 30 days |',
    );
    expect(formatReview(report, 'text')).toContain(
      'queue-diag (repo:org/*|x\\x1b[2J): 0 session(s), 2 denial(s), last used —  UNUSED for 30 days',
    );
    expect(markdown).toContain('evil \\| cell \\[link\\](http://x) \\\\x1b\\[2J');
    expect(markdown).toContain(`- [ ] \`${ID}\` carol@x on acme/prod, incident INC-1, confirmed by dave@x`);
    expect(markdown).toContain('| bob@x | lead | support-leads | 2026-11-01 09:00 |');
    expect(markdown).toContain('| https://hooks.example/x | 5 | HTTP 503 |');
    expect(markdown).not.toContain('\u001b');
    expect(formatReview(report, 'text')).not.toContain('\u001b');
  });
});
