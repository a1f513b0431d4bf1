/**
 * `imp api`: argv → options, and one error path — the tenant API's answers are printed (exit 0 for
 * 2xx, 1 otherwise); the broker's own refusals map to exit codes through the one table.
 */
import { describe, expect, it } from 'vitest';
import { call, ID, imp, parseCommand, refusal, sessionView } from '../../helpers/cli-scenario.js';

const PROXY = `/v1/sessions/${ID}/proxy/v1/users`;
const upstream = (status: number, body: unknown) =>
  call('GET', PROXY, status, body, {
    headers: { 'x-imp-action-id': 'a1', 'content-type': 'application/json' },
  });
const inSession = { env: { IMP_SESSION_ID: ID } };

describe('imp api: parse', () => {
  it.each([
    [['api', 'get', '/v1/users'], { method: 'GET', path: '/v1/users', include: false, json: false }],
    [
      ['api', 'POST', '/v1/notes', '-d', '{"a":1}', '-H', 'X-Trace: 1'],
      { method: 'POST', data: '{"a":1}', headers: [['X-Trace', '1']] },
    ],
    [['api', 'GET', '/v1/users', '--session', ID, '-i'], { session: ID, include: true }],
  ])('%j', async (argv, options) => expect(await parseCommand(argv)).toMatchObject(options));

  it.each([
    [['api', 'FETCH', '/v1/users'], 'Unknown method'],
    [['api', 'GET', 'v1/users'], 'must start with /'],
    [['api', 'GET', '/v1/users', '-H', 'nocolon'], 'Key: Value'],
  ])('%j is a usage error', async (argv, message) => {
    await expect(parseCommand(argv)).rejects.toMatchObject({
      code: 'IMP_USAGE',
      message: expect.stringContaining(message),
    });
  });
});

describe('imp api: run', () => {
  it("prints the tenant API's JSON answer and exits 0", async () => {
    const result = await imp(
      ['api', 'GET', '/v1/users'],
      [upstream(200, { users: [{ id: 'u1' }] })],
      inSession,
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ users: [{ id: 'u1' }] });
  });

  it('uses the only active session when none is named', async () => {
    const result = await imp(
      ['api', 'GET', '/v1/users', '--json'],
      [call('GET', '/v1/sessions', 200, { sessions: [sessionView('active')] }), upstream(200, { users: [] })],
    );
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 200, body: { users: [] } });
  });

  it('an error answer from the tenant API is printed and exits 1', async () => {
    const result = await imp(
      ['api', 'GET', '/v1/users'],
      [upstream(404, { error: 'no such user' })],
      inSession,
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('no such user');
  });

  it.each([
    [403, 'IMP_FORBIDDEN', 'Denied by rule scope.read_only: POST needs a write session', 4],
    [410, 'IMP_SESSION_EXPIRED', 'Session is expired; start a new one.', 6],
    [400, 'IMP_INVALID_INPUT', 'Refused by rule path.escape: the path leaves the API.', 2],
    [404, 'IMP_NOT_FOUND', 'No session of yours.', 1],
  ])("the broker's %i %s is an error with its message (exit %i)", async (status, code, message, exit) => {
    const result = await imp(
      ['api', 'GET', '/v1/users'],
      [{ method: 'GET', path: PROXY, ...refusal(status, code, message) }],
      inSession,
    );
    expect(result.code).toBe(exit);
    expect(result.stderr).toContain(`error: ${message}`);
    expect(result.stdout).toBe('');
  });
});
