/** `imp end`: which session (argument, $IMP_SESSION_ID, or the only one), then the summary on stdout. */
import { describe, expect, it } from 'vitest';
import type { SessionSummary } from '../../../src/core/api.js';
import { call, ID, imp, parseCommand, refusal, sessionView } from '../../helpers/cli-scenario.js';

const summary: SessionSummary = {
  session: sessionView('ended'),
  duration_seconds: 90,
  actions: { read: 1, write: 0, export: 0 },
  writes: 0,
  denials: 0,
  calls: [
    {
      ts: '2026-11-24T12:00:30.000Z',
      method: 'GET',
      path: '/v1/users',
      status: 200,
      kind: 'read',
      outcome: 'completed',
    },
  ],
};

describe('imp end: parse', () => {
  it.each([
    [['end'], { id: undefined, format: 'text' }],
    [['end', ID, '--format', 'markdown'], { id: ID, format: 'markdown' }],
    [['end', '--json'], { format: 'json' }],
  ])('%j', async (argv, options) => expect(await parseCommand(argv)).toMatchObject(options));

  it('an unknown format is a usage error', async () => {
    await expect(parseCommand(['end', '--format', 'pdf'])).rejects.toMatchObject({ code: 'IMP_USAGE' });
  });
});

describe('imp end: run', () => {
  it('ends the only active session and prints the JSON summary', async () => {
    const result = await imp(
      ['end', '--json'],
      [
        call('GET', '/v1/sessions', 200, { sessions: [sessionView('active')] }),
        call('POST', `/v1/sessions/${ID}/end`, 200, { session: sessionView('ended') }),
        call('GET', `/v1/sessions/${ID}/summary`, 200, summary),
      ],
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ duration_seconds: 90, actions: { read: 1 } });
  });

  it('a session that already expired still gets its summary', async () => {
    const result = await imp(
      ['end', ID],
      [
        { method: 'POST', path: `/v1/sessions/${ID}/end`, ...refusal(410, 'IMP_SESSION_EXPIRED', 'expired') },
        call('GET', `/v1/sessions/${ID}/summary`, 200, summary),
      ],
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('/v1/users');
  });

  it('with several sessions and no id it asks which (exit 2)', async () => {
    const result = await imp(
      ['end'],
      [
        call('GET', '/v1/sessions', 200, {
          sessions: [sessionView('active'), sessionView('pending', { id: 'other' })],
        }),
      ],
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('several sessions');
  });

  it("someone else's session exits 4 (session.owner)", async () => {
    const result = await imp(
      ['end', ID],
      [
        {
          method: 'POST',
          path: `/v1/sessions/${ID}/end`,
          ...refusal(
            403,
            'IMP_FORBIDDEN',
            'Only the person who opened a session can end it.',
            'session.owner',
          ),
        },
      ],
    );
    expect(result.code).toBe(4);
  });

  it('without a stored login exits 3 and says to log in', async () => {
    const result = await imp(['end', ID], [], { loggedIn: false });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('imp login');
  });
});

describe('imp end --post', () => {
  it('parses', async () => {
    expect(await parseCommand(['end', '--post'])).toMatchObject({ post: true });
    expect(await parseCommand(['end'])).toMatchObject({ post: false });
  });

  it('asks the broker to post the summary on the ticket and says the outcome goes to the audit log', async () => {
    let sent: unknown;
    const result = await imp(
      ['end', ID, '--post'],
      [
        call(
          'POST',
          `/v1/sessions/${ID}/end`,
          200,
          { session: sessionView('ended'), ticket_note: 'posting' },
          {
            check: ({ body }) => {
              sent = body;
            },
          },
        ),
        call('GET', `/v1/sessions/${ID}/summary`, 200, summary),
      ],
    );
    expect(result.code).toBe(0);
    expect(sent).toEqual({ post_summary: true });
    expect(result.stderr).toContain('The broker is posting this summary on the ticket');
  });

  it('without --post nothing is asked for, and nothing is claimed', async () => {
    let sent: unknown = 'unset';
    const result = await imp(
      ['end', ID],
      [
        call(
          'POST',
          `/v1/sessions/${ID}/end`,
          200,
          { session: sessionView('ended'), ticket_note: null },
          {
            check: ({ body }) => {
              sent = body;
            },
          },
        ),
        call('GET', `/v1/sessions/${ID}/summary`, 200, summary),
      ],
    );
    expect(result.code).toBe(0);
    expect(sent ?? null).toBeNull();
    expect(result.stderr).not.toContain('posting');
  });

  it('a session that had already ended: --post says nothing was posted now', async () => {
    const result = await imp(
      ['end', ID, '--post'],
      [
        {
          method: 'POST',
          path: `/v1/sessions/${ID}/end`,
          ...refusal(410, 'IMP_SESSION_ENDED', 'already ended'),
        },
        call('GET', `/v1/sessions/${ID}/summary`, 200, summary),
      ],
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('nothing was posted now');
  });
});
