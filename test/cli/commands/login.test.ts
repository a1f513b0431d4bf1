/** `imp login`: which broker, the device flow, the stored login; JSON events in order. */
import { describe, expect, it } from 'vitest';
import { BROKER, CONFIG, call, imp, parseCommand, refusal } from '../../helpers/cli-scenario.js';

const LOGIN = {
  token: 'tok-new',
  expires_at: '2026-11-24T20:00:00Z',
  auth_time: 1764000000,
  user: {
    iss: 'i',
    sub: 'alice',
    email: 'alice@example.com',
    name: 'Alice',
    groups: ['support'],
    roles: ['support'],
  },
};

describe('imp login: parse', () => {
  it.each([
    [['login'], { broker: undefined, noBrowser: false, fresh: false, json: false }],
    [
      ['login', '--broker', BROKER, '--no-browser', '--fresh'],
      { broker: BROKER, noBrowser: true, fresh: true },
    ],
  ])('%j', async (argv, options) => expect(await parseCommand(argv)).toMatchObject(options));
});

describe('imp login: run', () => {
  it('runs the device flow, exchanges the ID token and prints the JSON events', async () => {
    const result = await imp(
      ['login', '--json', '--no-browser'],
      [
        call('GET', '/v1/config', 200, CONFIG),
        call('POST', '/v1/login', 200, LOGIN, {
          check: ({ body }) => expect(body).toEqual({ id_token: 'id-token-1' }),
        }),
      ],
      { loggedIn: false },
    );
    expect(result.code).toBe(0);
    const events = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events.map((e) => e.event)).toEqual(['device_authorization', 'logged_in']);
    expect(events[1]).toMatchObject({ user: { email: 'alice@example.com', roles: ['support'] } });
    expect(result.stdout).not.toContain('tok-new');
  });

  it('--fresh asks the IdP for a new authentication (max_age=1)', async () => {
    const result = await imp(
      ['login', '--fresh'],
      [call('GET', '/v1/config', 200, CONFIG), call('POST', '/v1/login', 200, LOGIN)],
      { loggedIn: false },
    );
    expect(result.logins[0]).toMatchObject({ maxAge: 1, issuer: CONFIG.issuer, clientId: 'imp-cli' });
  });

  it('without any broker URL it is a usage error before anything else', async () => {
    const result = await imp(['login'], [], { loggedIn: false, env: { IMP_BROKER_URL: '' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Which broker?');
  });

  it('a refused ID token exits 3', async () => {
    const result = await imp(
      ['login'],
      [
        call('GET', '/v1/config', 200, CONFIG),
        {
          method: 'POST',
          path: '/v1/login',
          ...refusal(401, 'IMP_AUTH_FAILED', 'The login did not use the required method(s): mfa.'),
        },
      ],
      { loggedIn: false },
    );
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('required method');
  });
});
