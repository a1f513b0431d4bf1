/** `imp status`: stable plain lines (time left from the clock), JSON, and --watch on the fake clock. */
import { describe, expect, it, vi } from 'vitest';
import { call, ID, imp, parseCommand, sessionView, startImp } from '../../helpers/cli-scenario.js';

const list = (...sessions: ReturnType<typeof sessionView>[]) =>
  call('GET', '/v1/sessions', 200, { sessions });

describe('imp status: parse', () => {
  it.each([
    [['status'], { watch: false, json: false }],
    [['status', '--watch'], { watch: true }],
    [['status', '--json'], { json: true }],
  ])('%j', async (argv, options) => expect(await parseCommand(argv)).toMatchObject(options));
});

describe('imp status: run', () => {
  it('one line per session, time left from the injected clock', async () => {
    const result = await imp(
      ['status'],
      [list(sessionView('active'), sessionView('pending', { id: 'req-2' }))],
    );
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${ID.slice(0, 8)}  active .*acme/prod.*SUP-1  30m left$`));
    expect(lines[1]).toContain('awaiting approval');
  });

  it('no sessions', async () => {
    expect((await imp(['status'], [list()])).stdout).toBe('No active sessions.\n');
  });

  it('--json prints the list', async () => {
    const result = await imp(['status', '--json'], [list(sessionView('active'))]);
    expect(JSON.parse(result.stdout)).toMatchObject([{ id: ID, state: 'active' }]);
  });

  it('--watch refreshes every 2 s of clock time until Ctrl-C', async () => {
    const run = startImp(
      ['status', '--watch'],
      [list(sessionView('active')), list(sessionView('active')), list()],
    );
    await vi.waitFor(() => expect(run.clock.pending()).toBe(1));
    await run.clock.advance(2000);
    await vi.waitFor(() => expect(run.fetch.remaining()).toHaveLength(1));
    await vi.waitFor(() => expect(run.clock.pending()).toBe(1));
    await run.clock.advance(2000);
    await vi.waitFor(() => expect(run.io.stdoutText()).toContain('No active sessions.'));
    run.interrupt.abort();
    expect((await run.done).code).toBe(0);
    expect(run.io.stdoutText()).toContain('29m');
  });
});
