/**
 * Time left reads the same everywhere (rounded down), `imp prompt` shows the BREAK-GLASS marker the
 * subshell's PS1 shows, and a short session does not get the 5- and 1-minute warnings at once.
 */
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/cli/main.js';
import type { FakeClock } from '../../../src/core/clock.js';
import { makeTestDeps, stubBroker } from '../../helpers/cli-deps.js';

const BROKER = 'http://127.0.0.1:7700';
const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);
const stored = JSON.stringify({
  token: 'tok',
  expires_at: '2099-11-25T00:00:00Z',
  auth_time: 1,
  user: { iss: 'i', sub: 'carol', email: 'carol@x', name: null, groups: [], roles: [] },
});
const session = (expiresInMs: number, extra: Record<string, unknown> = {}) => ({
  id: '0b6f5a3e-1d2c-4e5f-8a9b-0c1d2e3f4a5b',
  state: 'active',
  mode: 'standard',
  tenant: 'acme',
  environment: 'prod',
  scope: 'read',
  ticket: 'SUP-1',
  reason: 'Looking at invoices',
  ttl: Math.round(expiresInMs / 1000),
  requester: { sub: 'carol', email: 'carol@x' },
  created_at: new Date(NOW).toISOString(),
  request_expires_at: null,
  decided_by: null,
  decision_comment: null,
  started_at: new Date(NOW).toISOString(),
  expires_at: new Date(NOW + expiresInMs).toISOString(),
  ended_at: null,
  review_required: false,
  ...extra,
});

describe('time left', () => {
  it('imp prompt and imp status agree (29m with 29m59.9s left); the prompt keeps BREAK-GLASS', async () => {
    const expires = new Date(NOW + 1_799_900).toISOString();
    const prompt = makeTestDeps({
      env: {
        IMP_SESSION_ID: 's',
        IMP_TENANT: 'acme',
        IMP_ENV: 'prod',
        IMP_SCOPE: 'write',
        IMP_MODE: 'break_glass',
        IMP_EXPIRES_AT: expires,
      },
    });
    await main(['prompt'], prompt.deps, 'test');
    expect(prompt.io.stdoutText()).toBe('[imp acme/prod RW BREAK-GLASS 29m]\n');

    const status = makeTestDeps({
      env: { IMP_BROKER_URL: BROKER },
      fetch: stubBroker([
        {
          method: 'GET',
          path: '/v1/sessions',
          status: 200,
          body: { sessions: [session(1_799_900, { mode: 'break_glass', scope: 'write' })] },
        },
      ]),
    });
    await status.credentials.set(BROKER, stored);
    await main(['status'], status.deps, 'test');
    expect(status.io.stdoutText()).toContain('acme/prod RW BREAK-GLASS  SUP-1  29m left');
  });
});

describe('warnings before the forced logout', () => {
  // The fake clock fires every countdown tick and status poll on the way, as real time would.
  async function run(ttlMs: number, advanceMs: number) {
    const active = session(ttlMs);
    const answers: Record<string, unknown> = {
      'GET /v1/config': {
        ticket_pattern: '^[A-Z]+-[0-9]+$',
        reason_min_length: 5,
        reason_max_length: 500,
        default_ttl: 600,
      },
      'POST /v1/sessions/check': {
        decision: 'allow',
        rule: 'role.x',
        message: '',
        ttl: ttlMs / 1000,
        max_ttl: 3600,
      },
      'POST /v1/sessions': { session: active },
      [`GET /v1/sessions/${active.id}`]: { session: active },
      [`POST /v1/sessions/${active.id}/end`]: { session: { ...active, state: 'ended' } },
    };
    const seen: string[] = [];
    const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const key = `${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`;
      seen.push(key);
      const body = answers[key];
      return new Response(JSON.stringify(body ?? { error: { code: 'IMP_NOT_FOUND', message: 'x' } }), {
        status: body ? (key === 'POST /v1/sessions' ? 201 : 200) : 404,
      });
    }) as typeof globalThis.fetch;
    const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: BROKER } });
    const clock = t.deps.clock as FakeClock;
    await t.credentials.set(BROKER, stored);
    const argv = [
      'start',
      '--tenant',
      'acme',
      '--env',
      'prod',
      '--ticket',
      'SUP-1',
      '--reason',
      'Looking at invoices',
      '--json',
    ];
    const done = main(argv, t.deps, 'test');
    await vi.waitFor(() => expect(t.io.stdoutText()).toContain('session_started'));
    // The session's console page is named where the session starts (a supervisor can be sent it).
    expect(JSON.parse(t.io.stdoutText().trim().split('\n')[0]!)).toMatchObject({
      event: 'session_started',
      console_url: `${BROKER}/console/sessions/${active.id}`,
    });
    await clock.advance(advanceMs);
    t.interrupt.abort(new Error('SIGINT'));
    expect(await done).toBe(0);
    expect(seen).toContain(`POST /v1/sessions/${active.id}/end`);
    return t.io
      .stdoutText()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((e) => e.event === 'session_warning')
      .map((e) => e.seconds_left);
  }

  it('a 4-minute session warns once, at 1 minute (not at 5 and 1 together)', async () => {
    expect(await run(240_000, 200_000)).toEqual([60]);
  });

  it('a 10-minute session warns at 5 minutes and at 1 minute, separately', async () => {
    expect(await run(600_000, 560_000)).toEqual([300, 60]);
  });

  it('a 1-minute session gets no warning at all: the banner said how long it is', async () => {
    expect(await run(60_000, 50_000)).toEqual([]);
  });
});
