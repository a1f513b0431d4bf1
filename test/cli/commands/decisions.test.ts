/**
 * The requester is told who decided: an approval names the approver and their comment; a
 * revocation names who revoked it and why — as text on stderr, and in the JSON events.
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import type { FakeClock } from '../../../src/core/clock.js';
import {
  BROKER_CONFIG,
  makeTestDeps,
  STORED_ALICE_LOGIN,
  type StubCall,
  stubBroker,
} from '../../helpers/cli-deps.js';

const BROKER = 'http://127.0.0.1:7700';
const stored = STORED_ALICE_LOGIN;
const config = BROKER_CONFIG;
const ID = '0b6f5a3e-1d2c-4e5f-8a9b-0c1d2e3f4a5b';
const session = (state: string, extra: Record<string, unknown> = {}) => ({
  id: ID,
  state,
  mode: 'standard',
  tenant: 'acme',
  environment: 'staging',
  scope: 'write',
  ticket: 'SUP-1',
  reason: 'Reset MFA for the admin',
  ttl: 1800,
  requester: { sub: 'alice', email: 'alice@x' },
  created_at: '2026-11-24T12:00:00.000Z',
  request_expires_at: null,
  decided_by: null,
  decision_comment: null,
  started_at: null,
  expires_at: null,
  ended_at: null,
  review_required: false,
  ...extra,
});
const bob = { sub: 'bob', email: 'bob@x' };
const erin = { sub: 'erin', email: 'erin@x' };
const active = session('active', {
  decided_by: bob,
  decision_comment: 'ok for SUP-1 \u001b[31m',
  expires_at: '2026-11-24T12:30:00.000Z',
});
const calls: StubCall[] = [
  { method: 'GET', path: '/v1/config', status: 200, body: config },
  {
    method: 'POST',
    path: '/v1/sessions/check',
    status: 200,
    body: { decision: 'approval', rule: 'tenant.approval_required', message: '', ttl: 1800, max_ttl: 3600 },
  },
  { method: 'POST', path: '/v1/sessions', status: 202, body: { session: session('pending') } },
  { method: 'GET', path: `/v1/sessions/${ID}`, status: 200, body: { session: active } },
  // The status poll finds it revoked.
  {
    method: 'GET',
    path: `/v1/sessions/${ID}`,
    status: 200,
    body: {
      session: session('revoked', { decided_by: bob, ended_by: erin, decision_comment: 'Ticket was closed' }),
    },
  },
  {
    method: 'GET',
    path: `/v1/sessions/${ID}/summary`,
    status: 404,
    body: { error: { code: 'IMP_NOT_FOUND', message: 'x' } },
  },
];
const argv = [
  'start',
  '--tenant',
  'acme',
  '--env',
  'staging',
  '--write',
  '--ticket',
  'SUP-1',
  '--reason',
  'Reset MFA for the admin',
  '--no-shell',
  '--no-input',
];

async function run(extra: string[]) {
  const fetch = stubBroker(calls);
  const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: BROKER } });
  await t.credentials.set(BROKER, stored);
  const done = main([...argv, ...extra], t.deps, 'test');
  while (fetch.remaining().length > 2) await new Promise((r) => setImmediate(r));
  // The status poll (every 5 s on the fake clock) finds the session revoked.
  await (t.deps.clock as FakeClock).advance(5000);
  const code = await done;
  return { code, stdout: t.io.stdoutText(), stderr: t.io.stderrText(), remaining: fetch.remaining() };
}

describe('who decided', () => {
  it('text: "Approved by bob@x: …" then "revoked by erin@x (…)", exit 6', async () => {
    const result = await run([]);
    expect(result.remaining).toEqual([]);
    expect(result.stderr).toContain('Approved by bob@x: "ok for SUP-1 \\x1b[31m".');
    expect(result.stderr).toContain(
      'imp: session was revoked by erin@x ("Ticket was closed") — you have been logged out of acme/staging RW.',
    );
    expect(result.stderr).not.toContain('\u001b[31m');
    expect(result.code).toBe(6);
  });

  it('json: an approved event and session_ended with by and comment', async () => {
    const result = await run(['--json']);
    const events = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events.find((e) => e.event === 'approved')).toEqual({
      event: 'approved',
      by: bob,
      comment: 'ok for SUP-1 \u001b[31m',
    });
    expect(events.find((e) => e.event === 'session_ended')).toMatchObject({
      reason: 'revoked',
      by: erin,
      comment: 'Ticket was closed',
    });
    expect(result.code).toBe(6);
  });
});

describe('withdrawing with Ctrl-C', () => {
  it('is said plainly, not as an error, and exits 130', async () => {
    const fetch = stubBroker([
      calls[0]!,
      calls[1]!,
      calls[2]!,
      { method: 'GET', path: `/v1/sessions/${ID}`, status: 200, hang: true },
      {
        method: 'POST',
        path: `/v1/sessions/${ID}/end`,
        status: 200,
        body: { session: session('cancelled') },
      },
    ]);
    const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: BROKER } });
    await t.credentials.set(BROKER, stored);
    const done = main(argv, t.deps, 'test');
    while (fetch.remaining().length > 1) await new Promise((r) => setImmediate(r));
    t.interrupt.abort(new Error('SIGINT'));
    expect(await done).toBe(130);
    expect(fetch.remaining()).toEqual([]);
    expect(t.io.stderrText()).toContain(`\nRequest ${ID.slice(0, 8)} withdrawn.\n`);
    expect(t.io.stderrText()).not.toContain('error:');
  });
});
