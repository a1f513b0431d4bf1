/** `imp approve`: argv → options; approving with a fresh login, a step-up retried once, refusals exit 4. */
import { describe, expect, it } from 'vitest';
import { CONFIG, call, ID, imp, parseCommand, refusal, sessionView } from '../../helpers/cli-scenario.js';

const LOGIN = {
  token: 'tok-fresh',
  expires_at: '2026-11-25T00:00:00Z',
  auth_time: 2,
  user: { iss: 'i', sub: 'bob', email: 'bob@example.com', name: null, groups: [], roles: ['leads'] },
};

describe('imp approve: parse', () => {
  it.each([
    [['approve', ID], { id: ID }],
    [['approve', ID, '--comment', 'ok, go'], { id: ID, comment: 'ok, go' }],
    [['approve', ID, '--json'], { id: ID, json: true }],
  ])('%j', async (argv, options) => expect(await parseCommand(argv)).toMatchObject(options));

  it('without an id parses (a terminal picks one)', async () => {
    expect(await parseCommand(['approve'])).toMatchObject({ id: undefined });
  });
});

describe('imp approve: run', () => {
  it('approves with the stored login and says whose request opened', async () => {
    const result = await imp(
      ['approve', ID, '--comment', 'ok'],
      [
        call(
          'POST',
          `/v1/requests/${ID}/approve`,
          200,
          { session: sessionView('active', { scope: 'write' }) },
          {
            check: ({ headers, body }) => {
              expect(headers.get('authorization')).toBe('Bearer tok-alice');
              expect(body).toEqual({ comment: 'ok' });
            },
          },
        ),
      ],
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('Approved request 0b6f5a3e: alice@example.com now has write');
  });

  it('a step-up challenge runs the device flow once and retries with the fresh token', async () => {
    const result = await imp(
      ['approve', ID],
      [
        call(
          'POST',
          `/v1/requests/${ID}/approve`,
          401,
          { error: { code: 'IMP_STEP_UP_REQUIRED', message: 'stale' } },
          {
            headers: { 'www-authenticate': 'Bearer error="insufficient_user_authentication", max_age=300' },
          },
        ),
        call('GET', '/v1/config', 200, CONFIG),
        call('POST', '/v1/login', 200, LOGIN),
        call(
          'POST',
          `/v1/requests/${ID}/approve`,
          200,
          { session: sessionView('active') },
          {
            check: ({ headers }) => expect(headers.get('authorization')).toBe('Bearer tok-fresh'),
          },
        ),
      ],
    );
    expect(result.code).toBe(0);
    expect(result.logins).toHaveLength(1);
    expect(result.logins[0]).toMatchObject({ maxAge: 300 });
  });

  it('approving your own request exits 4 naming approval.self', async () => {
    const result = await imp(
      ['approve', ID],
      [
        {
          method: 'POST',
          path: `/v1/requests/${ID}/approve`,
          ...refusal(
            403,
            'IMP_FORBIDDEN',
            'Denied by rule approval.self: a second person must.',
            'approval.self',
          ),
        },
      ],
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('approval.self');
  });
});
