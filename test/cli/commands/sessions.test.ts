/** `imp sessions`: flags become the broker's filters; lines show who, where and time left, escaped. */
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { makeTestDeps, type StubCall, stubBroker } from '../../helpers/cli-deps.js';

const BROKER = 'http://127.0.0.1:7700';
const stored = JSON.stringify({
  token: 'tok',
  expires_at: '2099-11-25T00:00:00Z',
  auth_time: 1,
  user: { iss: 'i', sub: 'erin', email: 'erin@x', name: null, groups: [], roles: [] },
});
const session = (extra: Record<string, unknown>) => ({
  id: '0b6f5a3e-1d2c-4e5f-8a9b-0c1d2e3f4a5b',
  state: 'active',
  mode: 'standard',
  tenant: 'acme',
  environment: 'prod',
  scope: 'read',
  ticket: 'SUP-1',
  reason: 'Looking at invoices \u001b]0;pwned\u0007',
  ttl: 600,
  requester: { sub: 'alice', email: 'alice@x' },
  created_at: '2026-11-24T12:00:00.000Z',
  request_expires_at: null,
  decided_by: null,
  decision_comment: null,
  started_at: '2026-11-24T12:00:00.000Z',
  expires_at: null,
  ended_at: null,
  review_required: false,
  ...extra,
});

async function imp(argv: string[], calls: StubCall[]) {
  const fetch = stubBroker(calls);
  const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: BROKER } });
  await t.credentials.set(BROKER, stored);
  const now = t.deps.clock.now();
  const code = await main(argv, t.deps, 'test');
  return { code, now, stdout: t.io.stdoutText(), stderr: t.io.stderrText(), remaining: fetch.remaining() };
}

describe('imp sessions', () => {
  it('passes the filters to GET /v1/sessions/live and prints one plain line per session', async () => {
    let authorization = '';
    const expires = new Date(Date.parse('2030-01-01T00:00:00Z')).toISOString();
    const result = await imp(
      ['sessions', '--tenant', 'acme', '--env', 'prod', '--user', 'alice@x', '--mode', 'break-glass'],
      [
        {
          method: 'GET',
          path: '/v1/sessions/live',
          status: 200,
          body: { sessions: [session({ expires_at: expires, mode: 'break_glass', scope: 'write' })] },
          check: ({ headers }) => {
            authorization = headers.get('authorization') ?? '';
          },
        },
      ],
    );
    expect(result.code).toBe(0);
    expect(authorization).toBe('Bearer tok');
    expect(result.remaining).toEqual([]);
    const line = result.stdout.trim();
    expect(line).toMatch(
      /^0b6f5a3e {2}active {3}alice@x {2}acme\/prod RW BREAK-GLASS {2}SUP-1 {2}\d+m left {2}"Looking at invoices \\x1b\]0;pwned\\x07"$/,
    );
    expect(result.stdout).not.toContain('\u001b');
  });

  it('sends exactly the filters given (mode break-glass → break_glass)', async () => {
    const seen: string[] = [];
    const t = makeTestDeps({
      env: { IMP_BROKER_URL: BROKER },
      fetch: (async (input: string | URL | Request) => {
        seen.push(String(input));
        return new Response(JSON.stringify({ sessions: [] }), { status: 200 });
      }) as typeof fetch,
    });
    await t.credentials.set(BROKER, stored);
    const code = await main(['sessions', '--mode', 'break-glass', '--state', 'pending'], t.deps, 'test');
    expect(code).toBe(0);
    const url = new URL(seen[0]!);
    expect(url.pathname).toBe('/v1/sessions/live');
    expect(Object.fromEntries(url.searchParams)).toEqual({ mode: 'break_glass', state: 'pending' });
    expect(t.io.stderrText()).toContain('No live sessions match.');
  });

  it('a refusal names the rule and exits 4', async () => {
    const result = await imp(
      ['sessions'],
      [
        {
          method: 'GET',
          path: '/v1/sessions/live',
          status: 403,
          body: {
            error: {
              code: 'IMP_FORBIDDEN',
              message: 'Denied by rule role.supervise: listing everyone’s sessions needs a role…',
              details: { rule: 'role.supervise' },
            },
          },
        },
      ],
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('error: Denied by rule role.supervise');
  });

  it('refuses a mode that does not exist before calling anyone (exit 2)', async () => {
    const result = await imp(['sessions', '--mode', 'root'], []);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Allowed choices are standard, break-glass');
  });
});
