/**
 * `imp start`: argv → options, and sessions run against a stub broker on the fake clock — the
 * 30-minute countdown (warnings at 5 and 1 minutes, forced logout at expiry) runs in milliseconds.
 */
import { describe, expect, it, vi } from 'vitest';
import type { SessionSummary } from '../../../src/core/api.js';
import {
  CONFIG,
  call,
  ID,
  imp,
  parseCommand,
  refusal,
  sessionView,
  startImp,
} from '../../helpers/cli-scenario.js';

const ASK = [
  'start',
  '--tenant',
  'acme',
  '--env',
  'prod',
  '--ticket',
  'SUP-1',
  '--reason',
  'Customer reports a broken invoice',
];
const summary = (state: 'expired' | 'revoked' | 'ended'): SessionSummary => ({
  session: sessionView(state),
  duration_seconds: 1800,
  actions: { read: 2, write: 0, export: 0 },
  writes: 0,
  denials: 0,
  calls: [],
});
const poll = (state: 'active' | 'revoked') =>
  call('GET', `/v1/sessions/${ID}`, 200, { session: sessionView(state) });

// POST /v1/sessions/check: what the banner waits for.
const CHECK = { decision: 'allow', rule: 'role.support', message: '', ttl: 1800, max_ttl: 3600 };

describe('imp start: parse', () => {
  it.each([
    [
      ['start', '--tenant', 'acme'],
      { tenant: 'acme', write: false, noShell: false, json: false, env: undefined },
    ],
    [['start', '--tenant', 'acme', '--write', '--env', 'prod'], { tenant: 'acme', write: true, env: 'prod' }],
    [['start', '--tenant', 'acme', '--json'], { json: true, noShell: true }],
    [['start', '--tenant', 'acme', '--ttl', '45m', '--no-shell'], { ttl: '45m', noShell: true }],
  ])('%j', async (argv, options) => {
    expect(await parseCommand(argv)).toMatchObject(options);
  });

  it.each([
    [['start'], 'imp start needs --tenant'],
    [['start', '--tenant'], '--tenant'],
    [['start', '--tenant', 'acme', '--frobnicate'], '--frobnicate'],
  ])('%j is a usage error', async (argv, message) => {
    await expect(parseCommand(argv)).rejects.toMatchObject({
      code: 'IMP_USAGE',
      message: expect.stringContaining(message),
    });
  });
});

describe('imp start: run', () => {
  it('counts 30 minutes down in fake time: warns at 5 and 1 minute, logs out at expiry, exit 6', async () => {
    const began = Date.now();
    // The parent polls every 5 s for a revocation; at 30:00 the countdown ends it first.
    const polls = Array.from({ length: 1795 / 5 }, () => poll('active'));
    const run = startImp(
      [...ASK, '--no-shell', '--ttl', '30m'],
      [
        call('GET', '/v1/config', 200, CONFIG),
        call('POST', '/v1/sessions/check', 200, CHECK),
        call('POST', '/v1/sessions', 201, {
          session: sessionView('active'),
          message: 'Allowed by role support.',
        }),
        ...polls,
        call('GET', `/v1/sessions/${ID}/summary`, 200, summary('expired')),
      ],
    );
    await vi.waitFor(() => expect(run.clock.pending()).toBeGreaterThan(0));
    expect(run.io.stderrText()).toContain(`Session ${ID.slice(0, 8)} is active`);

    await run.clock.advance(24 * 60_000 + 59_000);
    expect(run.io.stderrText()).not.toContain('left in session');
    await run.clock.advance(1000);
    expect(run.io.stderrText()).toContain('less than 5 minutes left in session acme/prod');
    await run.clock.advance(4 * 60_000 - 1000);
    expect(run.io.stderrText()).not.toContain('less than 1 minute');
    await run.clock.advance(1000);
    expect(run.io.stderrText()).toContain('less than 1 minute left in session acme/prod');
    await run.clock.advance(60_000);

    const result = await run.done;
    expect(result.code).toBe(6);
    expect(result.stderr.match(/less than 5 minutes/g)).toHaveLength(1);
    expect(result.stderr.match(/less than 1 minute /g)).toHaveLength(1);
    expect(result.stderr).toContain('session expired — you have been logged out of acme/prod');
    expect(run.clock.pending()).toBe(0);
    expect(Date.now() - began).toBeLessThan(10_000);
  });

  it('a revocation seen by the status poll ends the session at once (exit 6)', async () => {
    const run = startImp(
      [...ASK, '--no-shell'],
      [
        call('GET', '/v1/config', 200, CONFIG),
        call('POST', '/v1/sessions/check', 200, CHECK),
        call('POST', '/v1/sessions', 201, { session: sessionView('active'), message: 'ok' }),
        poll('active'),
        poll('revoked'),
        call('GET', `/v1/sessions/${ID}/summary`, 200, summary('revoked')),
      ],
    );
    await vi.waitFor(() => expect(run.clock.pending()).toBeGreaterThan(0));
    await run.clock.advance(10_000);
    const result = await run.done;
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('session was revoked — you have been logged out of acme/prod');
  });

  it('waits for approval with a long-poll, then Ctrl-C ends the session: exit 0, ended at the broker', async () => {
    const approved = sessionView('active', {
      scope: 'read',
      decided_by: { sub: 'bob', email: 'bob@example.com' },
    });
    const run = startImp(
      [...ASK, '--no-shell'],
      [
        call('GET', '/v1/config', 200, CONFIG),
        call('POST', '/v1/sessions/check', 200, CHECK),
        call('POST', '/v1/sessions', 202, { session: sessionView('pending'), message: 'needs approval' }),
        call('GET', `/v1/sessions/${ID}`, 200, { session: approved }),
        call('POST', `/v1/sessions/${ID}/end`, 200, { session: sessionView('ended') }),
        call('GET', `/v1/sessions/${ID}/summary`, 200, summary('ended')),
      ],
    );
    await vi.waitFor(() => expect(run.clock.pending()).toBeGreaterThan(0));
    expect(run.io.stderrText()).toContain(`imp approve ${ID.slice(0, 8)}`);
    run.interrupt.abort();
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(run.fetch.remaining()).toEqual([]);
  });

  it('a policy refusal exits 4 naming the rule, and opens nothing', async () => {
    const result = await imp(
      [...ASK, '--no-shell'],
      [
        call('GET', '/v1/config', 200, CONFIG),
        {
          method: 'POST',
          path: '/v1/sessions/check',
          ...refusal(403, 'IMP_POLICY_DENIED', 'Denied by rule role.tenant: no', 'role.tenant'),
        },
      ],
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('role.tenant');
  });

  it('a bad ticket is refused locally with exit 2 before any session request', async () => {
    const result = await imp(
      [
        'start',
        '--tenant',
        'acme',
        '--env',
        'prod',
        '--ticket',
        'sup 1',
        '--reason',
        'Customer reports a broken invoice',
      ],
      [call('GET', '/v1/config', 200, CONFIG)],
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('ticket');
  });
});

describe('imp start: the ticket system (policy tickets.system)', () => {
  it('a ticket the ticket system refuses exits 4 with its rule, before the banner', async () => {
    const result = await imp(
      [...ASK, '--no-shell'],
      [
        call('GET', '/v1/config', 200, CONFIG),
        {
          method: 'POST',
          path: '/v1/sessions/check',
          ...refusal(
            403,
            'IMP_POLICY_DENIED',
            'Refused by rule ticket.closed: ticket "SUP-1" is "Closed", not open. Reopen it or use an open ticket.',
            'ticket.closed',
          ),
        },
      ],
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('Refused by rule ticket.closed: ticket "SUP-1" is "Closed", not open.');
    expect(result.stderr).not.toContain('You are about to act');
  });

  it('an unverified ticket the policy lets through is shown as a warning, escaped', async () => {
    const warning =
      'The ticket system could not be asked about ticket SUP-1 (HTTP 503\u001b[2J); allowed by policy, and flagged in the audit log.';
    const result = await imp(
      [...ASK, '--no-shell'],
      [
        call('GET', '/v1/config', 200, CONFIG),
        call('POST', '/v1/sessions/check', 200, { ...CHECK, ticket_warning: warning }),
        {
          method: 'POST',
          path: '/v1/sessions',
          ...refusal(403, 'IMP_POLICY_DENIED', 'Denied by rule role.tenant: no', 'role.tenant'),
        },
      ],
    );
    expect(result.stderr).toContain(
      'Warning: The ticket system could not be asked about ticket SUP-1 (HTTP 503\\x1b[2J)',
    );
    expect(result.stderr).not.toContain('\u001b[2J');
  });
});
