/**
 * `imp approve` / `deny` / `revoke` / `break-glass confirm` without an id: on a terminal, a picker of
 * what the broker lists for this person (short ids, untrusted text escaped); without a terminal,
 * under --no-input or --json, a usage error before any broker call. Messages name short ids.
 */
import { describe, expect, it } from 'vitest';
import { call, ID, imp, sessionView, startImp } from '../../helpers/cli-scenario.js';

const SHORT = ID.slice(0, 8);
const OTHER = '7f3a1c2d-0000-4000-8000-000000000001';
const hostile = sessionView('pending', {
  scope: 'write',
  reason: 'Fix it \u001b]0;pwned\u0007 now \u202e',
  request_expires_at: '2026-11-24T12:30:00.000Z',
});
const other = sessionView('pending', {
  id: OTHER,
  tenant: 'globex',
  requester: { sub: 'carol', email: null },
});

describe('without an id and without a terminal', () => {
  it.each([
    [['approve'], 'Which request?'],
    [['deny', '--reason', 'no thanks'], 'Which request?'],
    [['revoke'], 'Which session?'],
    [['break-glass', 'confirm'], 'Which break-glass request?'],
  ])('imp %j exits 2 with a usage error and calls nothing', async (argv, text) => {
    const result = await imp(argv, []);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(text);
    expect(result.stderr).toContain('the first characters are enough');
  });

  it('on a terminal, --json still never prompts', async () => {
    const result = await imp(['approve', '--json'], [], { tty: true });
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ event: 'error', error: { code: 'IMP_USAGE' } });
  });

  it('on a terminal, --no-input still never prompts', async () => {
    const result = await imp(['revoke', '--no-input'], [], { tty: true });
    expect(result.code).toBe(2);
  });
});

describe('the picker on a terminal', () => {
  it('imp approve offers what the broker lists, by short id with escaped text, and approves the pick', async () => {
    const run = startImp(
      ['approve'],
      [
        call('GET', '/v1/requests', 200, { requests: [hostile, other] }),
        call('POST', `/v1/requests/${OTHER}/approve`, 200, {
          session: sessionView('active', { id: OTHER, tenant: 'globex' }),
        }),
      ],
      { tty: true, answers: [{ match: 'Which request?', answer: OTHER }] },
    );
    const result = await run.done;
    expect(result.code).toBe(0);
    const [choices] = run.prompter.shown;
    expect(choices).toHaveLength(2);
    expect(choices![0]).toContain(`${SHORT}  alice@example.com → acme/prod WRITE, SUP-1`);
    expect(choices![0]).toContain('\\x1b]0;pwned\\x07');
    expect(choices![0]).toContain('\\u202e');
    expect(choices![0]).not.toMatch(/[\u001b\u202e]/);
    expect(choices![1]).toContain('7f3a1c2d  carol → globex/prod read');
    expect(result.stderr).toContain('Approved request 7f3a1c2d:');
    run.prompter.assertDone();
  });

  it('imp approve with nothing to approve exits 1 saying so, without prompting', async () => {
    const result = await imp(['approve'], [call('GET', '/v1/requests', 200, { requests: [] })], {
      tty: true,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('No pending requests you can approve.');
  });

  it('imp deny picks, then asks why, and sends that reason', async () => {
    const run = startImp(
      ['deny'],
      [
        call('GET', '/v1/requests', 200, { requests: [hostile] }),
        call(
          'POST',
          `/v1/requests/${ID}/deny`,
          200,
          { session: sessionView('denied') },
          { check: ({ body }) => expect(body).toEqual({ reason: 'Use a read session' }) },
        ),
      ],
      {
        tty: true,
        answers: [
          { match: 'Which request?', answer: ID },
          { match: 'Why do you deny it?', answer: 'Use a read session' },
        ],
      },
    );
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`Denied request ${SHORT}.`);
    run.prompter.assertDone();
  });

  it('imp revoke picks among live sessions', async () => {
    const live = sessionView('active', { requester: { sub: 'bob', email: 'bob@example.com' } });
    const run = startImp(
      ['revoke', '--reason', 'left the company'],
      [
        call('GET', '/v1/sessions/live', 200, { sessions: [live] }),
        call('POST', `/v1/sessions/${ID}/revoke`, 200, { session: sessionView('revoked', live) }),
      ],
      { tty: true, answers: [{ match: 'Which session?', answer: ID }] },
    );
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(run.prompter.shown[0]![0]).toContain(`${SHORT}  bob@example.com → acme/prod read`);
    expect(result.stderr).toContain(`Revoked session ${SHORT} of bob@example.com.`);
  });

  it('imp break-glass confirm lists break-glass requests, shows the pick, takes the short id typed', async () => {
    const request = {
      ...sessionView('pending', { mode: 'break_glass', scope: 'write', ticket: 'INC-9' }),
      confirm_by: '2026-11-24T12:10:00.000Z',
    };
    const run = startImp(
      ['break-glass', 'confirm'],
      [
        call(
          'GET',
          '/v1/requests',
          200,
          { requests: [request] },
          { check: ({ url }) => expect(url.searchParams.get('kind')).toBe('break_glass') },
        ),
        call('GET', `/v1/break-glass/${ID}`, 200, { request }),
        call('POST', `/v1/break-glass/${ID}/confirm`, 200, {
          session: sessionView('active', { mode: 'break_glass', scope: 'write' }),
        }),
      ],
      {
        tty: true,
        answers: [
          { match: 'Which break-glass request?', answer: ID },
          { match: `Type the request id (${SHORT})`, answer: SHORT },
        ],
      },
    );
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(run.prompter.shown[0]![0]).toContain('WRITE BREAK-GLASS, INC-9');
    expect(result.stderr).toContain(`Break-glass request ${SHORT} (${ID})`);
    run.prompter.assertDone();
  });
});

describe('short ids given on the command line', () => {
  it('are passed to the broker as typed; an ambiguous one exits 2 with the candidates', async () => {
    const result = await imp(
      ['approve', '0b6f'],
      [
        {
          method: 'POST',
          path: '/v1/requests/0b6f/approve',
          status: 400,
          body: {
            error: {
              code: 'IMP_INVALID_INPUT',
              message:
                '0b6f matches 2 requests you may approve: 0b6f5a3e (alice@example.com → acme/prod write, SUP-1); 0b6f9999 (dave@example.com → globex/prod write, SUP-2). Type more of the id.',
            },
          },
        },
      ],
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('0b6f5a3e (alice@example.com');
    expect(result.stderr).toContain('Type more of the id.');
  });
});
