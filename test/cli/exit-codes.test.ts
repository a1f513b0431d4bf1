/**
 * The exit codes of the design, command × situation, with a stub broker. And untrusted text from
 * the broker is printed with control characters neutralised.
 */
import { describe, expect, it } from 'vitest';
import { colorEnabled } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { makeTestDeps, type StubCall, stubBroker } from '../helpers/cli-deps.js';

const BROKER = 'http://127.0.0.1:7700';
const stored = JSON.stringify({
  token: 'tok',
  expires_at: '2026-11-25T00:00:00Z',
  auth_time: 1,
  user: { iss: 'i', sub: 's', email: 'a@x', name: null, groups: [], roles: [] },
});
const err = (
  status: number,
  code: string,
  message = 'refused',
  details: Record<string, unknown> = {},
): Omit<StubCall, 'method' | 'path'> => ({ status, body: { error: { code, message, details } } });
const session = (state: string, extra: Record<string, unknown> = {}) => ({
  id: 'sess-1',
  state,
  mode: 'standard',
  tenant: 'acme',
  environment: 'prod',
  scope: 'read',
  ticket: 'SUP-1',
  reason: 'r',
  ttl: 60,
  requester: { sub: 's', email: 'a@x' },
  created_at: '',
  request_expires_at: null,
  decided_by: null,
  decision_comment: null,
  started_at: null,
  expires_at: null,
  ended_at: null,
  review_required: false,
  ...extra,
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
};

async function imp(argv: string[], calls: StubCall[], options: { loggedIn?: boolean; abort?: boolean } = {}) {
  const fetch = stubBroker(calls);
  const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: BROKER } });
  if (options.loggedIn !== false) await t.credentials.set(BROKER, stored);
  if (options.abort) setTimeout(() => t.interrupt.abort(new Error('SIGINT')), 20);
  const code = await main(argv, t.deps, 'test');
  return { code, stdout: t.io.stdoutText(), stderr: t.io.stderrText(), remaining: fetch.remaining() };
}

const checkCall: StubCall = {
  method: 'POST',
  path: '/v1/sessions/check',
  status: 200,
  body: { decision: 'approval', rule: 'tenant.approval_required', message: '', ttl: 1800, max_ttl: 3600 },
};
const start = [
  'start',
  '--tenant',
  'acme',
  '--env',
  'prod',
  '--ticket',
  'SUP-1',
  '--reason',
  'A good enough reason',
  '--json',
];

describe('exit codes', () => {
  it.each([
    ['whoami, not logged in', ['whoami'], [], { loggedIn: false }, 3],
    [
      'whoami, token refused',
      ['whoami'],
      [{ method: 'GET', path: '/v1/whoami', ...err(401, 'IMP_AUTH_REQUIRED') }],
      {},
      3,
    ],
    [
      'approve, broker unreachable',
      ['approve', 'x'],
      [{ method: 'POST', path: '/v1/requests/x/approve', status: 0 }],
      {},
      1,
    ],
    [
      'approve, self-approval',
      ['approve', 'x'],
      [
        {
          method: 'POST',
          path: '/v1/requests/x/approve',
          ...err(403, 'IMP_FORBIDDEN', 'Denied by rule approval.self'),
        },
      ],
      {},
      4,
    ],
    [
      'deny, not pending',
      ['deny', 'x', '--reason', 'no'],
      [{ method: 'POST', path: '/v1/requests/x/deny', ...err(409, 'IMP_CONFLICT') }],
      {},
      1,
    ],
    [
      'revoke, no role',
      ['revoke', 'x'],
      [{ method: 'POST', path: '/v1/sessions/x/revoke', ...err(403, 'IMP_FORBIDDEN') }],
      {},
      4,
    ],
    [
      'start, policy denies',
      start,
      [
        { method: 'GET', path: '/v1/config', status: 200, body: config },
        {
          method: 'POST',
          path: '/v1/sessions/check',
          ...err(403, 'IMP_POLICY_DENIED', 'Denied by rule role.none'),
        },
      ],
      {},
      4,
    ],
    [
      'start, approver denies',
      start,
      [
        { method: 'GET', path: '/v1/config', status: 200, body: config },
        checkCall,
        {
          method: 'POST',
          path: '/v1/sessions',
          status: 202,
          body: { session: session('pending'), message: '' },
        },
        {
          method: 'GET',
          path: '/v1/sessions/sess-1',
          status: 200,
          body: { session: session('denied', { decision_comment: 'no' }) },
        },
      ],
      {},
      4,
    ],
    [
      'start, nobody approves in time',
      start,
      [
        { method: 'GET', path: '/v1/config', status: 200, body: config },
        checkCall,
        {
          method: 'POST',
          path: '/v1/sessions',
          status: 202,
          body: { session: session('pending'), message: '' },
        },
        {
          method: 'GET',
          path: '/v1/sessions/sess-1',
          status: 200,
          body: { session: session('request_expired') },
        },
      ],
      {},
      5,
    ],
    [
      'start, bad ticket',
      ['start', '--tenant', 'acme', '--env', 'prod', '--ticket', 'x', '--reason', 'A good enough reason'],
      [{ method: 'GET', path: '/v1/config', status: 200, body: config }],
      {},
      2,
    ],
    [
      'end, session already expired',
      ['end', 'sess-1', '--format', 'json'],
      [
        { method: 'POST', path: '/v1/sessions/sess-1/end', ...err(410, 'IMP_SESSION_EXPIRED') },
        {
          method: 'GET',
          path: '/v1/sessions/sess-1/summary',
          status: 200,
          body: {
            session: session('expired'),
            duration_seconds: 60,
            actions: { read: 0, write: 0, export: 0 },
            writes: 0,
            denials: 0,
            calls: [],
          },
        },
      ],
      {},
      0,
    ],
    [
      'api, session over',
      ['api', 'GET', '/v1/users', '--session', 'sess-1'],
      [{ method: 'GET', path: '/v1/sessions/sess-1/proxy/v1/users', ...err(410, 'IMP_SESSION_ENDED') }],
      {},
      6,
    ],
    [
      'api, refused by scope',
      ['api', 'POST', '/v1/users', '--session', 'sess-1'],
      [
        {
          method: 'POST',
          path: '/v1/sessions/sess-1/proxy/v1/users',
          ...err(403, 'IMP_FORBIDDEN', 'Denied by rule scope.read_only'),
        },
      ],
      {},
      4,
    ],
    [
      'api, upstream 500',
      ['api', 'GET', '/v1/users', '--session', 'sess-1'],
      [
        {
          method: 'GET',
          path: '/v1/sessions/sess-1/proxy/v1/users',
          status: 500,
          body: {},
          headers: { 'x-imp-action-id': 'a' },
        },
      ],
      {},
      1,
    ],
    [
      'audit list, not an auditor',
      ['audit', 'list'],
      [
        {
          method: 'GET',
          path: '/v1/audit/events',
          ...err(403, 'IMP_FORBIDDEN', 'Denied by rule role.audit'),
        },
      ],
      {},
      4,
    ],
    [
      'start, Ctrl-C while waiting',
      start,
      [
        { method: 'GET', path: '/v1/config', status: 200, body: config },
        checkCall,
        {
          method: 'POST',
          path: '/v1/sessions',
          status: 202,
          body: { session: session('pending'), message: '' },
        },
        { method: 'GET', path: '/v1/sessions/sess-1', status: 200, hang: true },
        {
          method: 'POST',
          path: '/v1/sessions/sess-1/end',
          status: 200,
          body: { session: session('cancelled') },
        },
      ],
      { abort: true },
      130,
    ],
  ] as [string, string[], StubCall[], { loggedIn?: boolean; abort?: boolean }, number][])(
    '%s',
    async (_name, argv, calls, options, code) => {
      // status 0 in a stub means "the network failed" (or hangs until aborted when the test interrupts).
      const wired = calls.map((c) =>
        c.status === 0
          ? {
              ...c,
              status: 200,
              check: () => {
                throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
              },
            }
          : c,
      );
      const result = await imp(argv, wired, options);
      expect(result.code, result.stderr).toBe(code);
    },
  );
});

describe('untrusted text', () => {
  it('a reason that tries to retitle the terminal is printed escaped', async () => {
    const evil = session('pending', { reason: 'fix \u001b]0;pwned\u0007 now', ticket: 'SUP-\u001b[2J1' });
    const result = await imp(
      ['requests'],
      [{ method: 'GET', path: '/v1/requests', status: 200, body: { requests: [evil] } }],
    );
    expect(result.stdout).toContain('fix \\x1b]0;pwned\\x07 now');
    expect(result.stdout).toContain('SUP-\\x1b[2J1');
    expect(result.stdout).not.toContain('\u001b');
    expect(result.stdout).not.toContain('\u0007');
  });

  it('imp api on a TTY pretty-prints tenant JSON with C1 controls and bidi overrides escaped', async () => {
    const fetch = stubBroker([
      {
        method: 'GET',
        path: '/v1/sessions/sess-1/proxy/v1/users',
        status: 200,
        body: { name: 'a\u009b2Jb', file: 'invoice\u202efdp.exe', iso: '\u2066x\u2069', line: 'a\nb' },
        headers: { 'x-imp-action-id': 'a', 'content-type': 'application/json' },
      },
    ]);
    const t = makeTestDeps({ fetch, tty: true, env: { IMP_BROKER_URL: BROKER } });
    await t.credentials.set(BROKER, stored);
    expect(await main(['api', 'GET', '/v1/users', '--session', 'sess-1'], t.deps, 'test')).toBe(0);
    const out = t.io.stdoutText();
    expect(out).toContain('"name": "a\\x9b2Jb"');
    expect(out).toContain('"file": "invoice\\u202efdp.exe"');
    expect(out).toContain('"iso": "\\u2066x\\u2069"');
    expect(out).toContain('"line": "a\\nb"');
    expect(out).toContain('{\n  "name"');
    expect(out).not.toMatch(/[\u0080-\u009f\u202a-\u202e\u2066-\u2069]/);
  });

  it('server error messages are escaped too', async () => {
    const result = await imp(
      ['whoami'],
      [
        {
          method: 'GET',
          path: '/v1/whoami',
          ...err(401, 'IMP_AUTH_REQUIRED', 'nope \u001b[31mred\u001b[0m'),
        },
      ],
    );
    expect(result.stderr).toContain('nope \\x1b[31mred\\x1b[0m');
    expect(result.stderr).not.toContain('\u001b');
  });
});

describe('colour', () => {
  it.each([
    [{}, true, false, true],
    [{}, false, false, false],
    [{ NO_COLOR: '1' }, true, false, false],
    [{ FORCE_COLOR: '1' }, false, false, true],
    [{ FORCE_COLOR: '0' }, true, false, false],
    [{ NO_COLOR: '1', FORCE_COLOR: '1' }, true, false, false],
    [{}, true, true, false],
    [{ TERM: 'dumb' }, true, false, false],
  ])('env %j, tty %s, --no-color %s → %s', (env, tty, flag, expected) => {
    expect(colorEnabled(env as NodeJS.ProcessEnv, tty, flag)).toBe(expected);
  });
});
