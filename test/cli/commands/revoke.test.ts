/** `imp revoke`: security ends someone's session; without the role, exit 4 naming role.revoke. */
import { describe, expect, it } from 'vitest';
import { call, ID, imp, parseCommand, refusal, sessionView } from '../../helpers/cli-scenario.js';

describe('imp revoke: parse', () => {
  it.each([
    [['revoke', ID], { id: ID }],
    [['revoke', ID, '--reason', 'suspicious'], { id: ID, reason: 'suspicious' }],
  ])('%j', async (argv, options) => expect(await parseCommand(argv)).toMatchObject(options));

  it('without an id parses (a terminal picks one)', async () => {
    expect(await parseCommand(['revoke'])).toMatchObject({ id: undefined });
  });
});

describe('imp revoke: run', () => {
  it('revokes with the reason; --json prints the event', async () => {
    const result = await imp(
      ['revoke', ID, '--reason', 'suspicious', '--json'],
      [
        call(
          'POST',
          `/v1/sessions/${ID}/revoke`,
          200,
          { session: sessionView('revoked') },
          {
            check: ({ body }) => expect(body).toEqual({ reason: 'suspicious' }),
          },
        ),
      ],
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ event: 'revoked', session: { state: 'revoked' } });
  });

  it('without the role exits 4 naming role.revoke', async () => {
    const result = await imp(
      ['revoke', ID],
      [
        {
          method: 'POST',
          path: `/v1/sessions/${ID}/revoke`,
          ...refusal(403, 'IMP_FORBIDDEN', 'Denied by rule role.revoke: no', 'role.revoke'),
        },
      ],
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('role.revoke');
  });

  it('an already ended session exits 1 (conflict)', async () => {
    const result = await imp(
      ['revoke', ID],
      [
        {
          method: 'POST',
          path: `/v1/sessions/${ID}/revoke`,
          ...refusal(409, 'IMP_CONFLICT', 'Session is already ended.'),
        },
      ],
    );
    expect(result.code).toBe(1);
  });
});
