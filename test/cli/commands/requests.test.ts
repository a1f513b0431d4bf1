/** `imp requests`: pending requests I may approve, with untrusted text escaped. */
import { describe, expect, it } from 'vitest';
import { call, ID, imp, parseCommand, refusal, sessionView } from '../../helpers/cli-scenario.js';

describe('imp requests: parse', () => {
  it.each([
    [['requests'], { json: false }],
    [['requests', '--json'], { json: true }],
  ])('%j', async (argv, options) => expect(await parseCommand(argv)).toMatchObject(options));
});

describe('imp requests: run', () => {
  it('lists each request on one line, escaping a hostile reason', async () => {
    const pending = sessionView('pending', {
      scope: 'write',
      reason: 'Fix it \u001b]0;pwned\u0007 now',
      request_expires_at: '2026-11-24T12:30:00.000Z',
    });
    const result = await imp(['requests'], [call('GET', '/v1/requests', 200, { requests: [pending] })]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${ID.slice(0, 8)}  alice@example.com  write acme/prod  SUP-1`);
    expect(result.stdout).not.toContain('\u001b');
  });

  it('says when there is nothing to approve', async () => {
    const result = await imp(['requests'], [call('GET', '/v1/requests', 200, { requests: [] })]);
    expect(result.stderr).toContain('No pending requests you can approve.');
    expect(result.stdout).toBe('');
  });

  it('--json prints the list', async () => {
    const result = await imp(
      ['requests', '--json'],
      [call('GET', '/v1/requests', 200, { requests: [sessionView('pending')] })],
    );
    expect(JSON.parse(result.stdout)).toMatchObject([{ id: ID }]);
  });

  it('a broker that cannot be reached exits 1', async () => {
    const result = await imp(
      ['requests'],
      [
        {
          method: 'GET',
          path: '/v1/requests',
          ...refusal(503, 'IMP_AUDIT_UNAVAILABLE', 'The audit log cannot be written'),
        },
      ],
    );
    expect(result.code).toBe(1);
  });
});
