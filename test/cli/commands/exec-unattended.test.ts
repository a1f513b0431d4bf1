/** `imp exec` parse table and its unattended paths, with the test IO and a stub broker. */
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { makeTestDeps, stubBroker } from '../../helpers/cli-deps.js';

const BROKER = 'http://127.0.0.1:7700';
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
const base = ['exec', '--tenant', 'acme', '--env', 'prod', '--reason', 'Nightly queue diagnostics'];

describe('imp exec parse', () => {
  it.each([
    [
      [...base, '--ticket', 'INC-1', '--events-fd', '1', '--', 'true'],
      '--events-fd must be a file descriptor number of 2 or more',
    ],
    [[...base, '--ticket', 'INC-1', '--events-fd', 'x', '--', 'true'], '--events-fd must be'],
    [
      [...base, '--ticket', 'INC-1', '--events-fd', '3', '--events', 'f', '--', 'true'],
      'Give --events-fd or --events, not both.',
    ],
    [[...base, '--', 'true'], 'imp exec needs --ticket.'],
    [[...base, '--ticket', 'INC-1'], 'imp exec needs -- <command>'],
  ])('%j → usage error (exit 2) before any broker call', async (argv, message) => {
    const t = makeTestDeps({ fetch: stubBroker([]), env: { IMP_BROKER_URL: BROKER } });
    expect(await main(argv, t.deps, 'test')).toBe(2);
    expect(t.io.stderrText()).toContain(message);
    expect(t.io.stdoutText()).toBe('');
  });
});

describe('imp exec --no-login', () => {
  it('with a login the broker finds too old, fails at once (exit 3) naming whose login, and never starts a device flow', async () => {
    const fetch = stubBroker([
      { method: 'GET', path: '/v1/config', status: 200, body: config },
      {
        method: 'POST',
        path: '/v1/sessions',
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="insufficient_user_authentication", max_age=1' },
        body: { error: { code: 'IMP_STEP_UP_REQUIRED', message: 'Each session needs a login of its own.' } },
      },
    ]);
    const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: BROKER } });
    await t.credentials.set(
      BROKER,
      JSON.stringify({
        token: 'broker-token-1',
        expires_at: '2026-11-24T20:00:00Z',
        auth_time: 1000,
        user: { iss: 'x', sub: 'user-alice', email: 'alice@example.test', name: 'A', groups: [], roles: [] },
      }),
    );
    const code = await main(
      [...base, '--ticket', 'INC-1', '--no-login', '--json', '--', 'true'],
      t.deps,
      'test',
    );
    expect(code).toBe(3);
    expect(t.logins).toEqual([]);
    expect(fetch.remaining()).toEqual([]);
    expect(t.io.stdoutText()).toBe('');
    expect(t.io.stderrText()).toContain(
      `error: The login of alice@example.test at ${BROKER} cannot open this (the broker asks for a fresh login) and --no-login was given.`,
    );
    expect(t.io.stderrText()).not.toContain('broker-token');
  });

  it('with an unreadable identity token file: exit 3 naming the file, nothing sent to the broker', async () => {
    const t = makeTestDeps({
      fetch: stubBroker([]),
      env: { IMP_BROKER_URL: BROKER, IMP_IDENTITY_TOKEN_FILE: '/nonexistent/imp-token' },
    });
    expect(await main([...base, '--', 'true'], t.deps, 'test')).toBe(3);
    expect(t.io.stderrText()).toContain(
      'Cannot read the identity token file /nonexistent/imp-token (ENOENT)',
    );
  });
});
