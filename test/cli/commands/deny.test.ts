/** `imp deny`: a reason is required locally; the broker's answer decides the exit code. */
import { describe, expect, it } from 'vitest';
import { call, ID, imp, parseCommand, refusal, sessionView } from '../../helpers/cli-scenario.js';

describe('imp deny: parse', () => {
  it('takes the id and the reason', async () => {
    expect(await parseCommand(['deny', ID, '--reason', 'Use a read session'])).toMatchObject({
      id: ID,
      reason: 'Use a read session',
    });
  });

  it.each([[['deny']], [['deny', ID]], [['deny', '--reason', 'no']]])(
    '%j exits 2 without a terminal, before any call',
    async (argv) => {
      const result = await imp(argv, []);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/Which request\?|Say why with --reason/);
    },
  );
});

describe('imp deny: run', () => {
  it('sends the reason and exits 0', async () => {
    const result = await imp(
      ['deny', ID, '--reason', 'Use a read session'],
      [
        call(
          'POST',
          `/v1/requests/${ID}/deny`,
          200,
          { session: sessionView('denied') },
          {
            check: ({ body }) => expect(body).toEqual({ reason: 'Use a read session' }),
          },
        ),
      ],
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`Denied request ${ID.slice(0, 8)}.`);
  });

  it('a request decided meanwhile exits 1 with the broker message', async () => {
    const result = await imp(
      ['deny', ID, '--reason', 'no'],
      [
        {
          method: 'POST',
          path: `/v1/requests/${ID}/deny`,
          ...refusal(409, 'IMP_CONFLICT', 'Request was decided meanwhile.'),
        },
      ],
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('decided meanwhile');
  });

  it('without the approve role exits 4', async () => {
    const result = await imp(
      ['deny', ID, '--reason', 'no', '--json'],
      [
        {
          method: 'POST',
          path: `/v1/requests/${ID}/deny`,
          ...refusal(403, 'IMP_FORBIDDEN', 'Denied by rule role.approve: no', 'role.approve'),
        },
      ],
    );
    expect(result.code).toBe(4);
  });
});
