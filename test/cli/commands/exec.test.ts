/**
 * `imp exec`: a read-only session around one command — the child gets the session's environment,
 * its exit code is imp's, and at expiry (fake clock) the child is stopped and imp exits 6.
 */
import { describe, expect, it, vi } from 'vitest';
import type { ChildHandle } from '../../../src/cli/deps.js';
import type { SessionSummary } from '../../../src/core/api.js';
import {
  CONFIG,
  call,
  ID,
  parseCommand,
  refusal,
  sessionView,
  startImp,
} from '../../helpers/cli-scenario.js';

const ARGV = [
  'exec',
  '--tenant',
  'acme',
  '--env',
  'prod',
  '--ticket',
  'SUP-1',
  '--reason',
  'Nightly diagnostics run',
  '--ttl',
  '10m',
  '--',
  './diagnose.sh',
  '--fast',
];
const active = sessionView('active', { ttl: 600, expires_at: '2026-11-24T12:10:00.000Z' });
const summary: SessionSummary = {
  session: sessionView('ended'),
  duration_seconds: 5,
  actions: { read: 0, write: 0, export: 0 },
  writes: 0,
  denials: 0,
  calls: [],
};

const CREDENTIAL = call('POST', `/v1/sessions/${ID}/exec-credential`, 200, {
  credential: 'exec-cred-1',
  expires_at: '2026-11-24T12:10:00.000Z',
});

/** A child process the test ends by hand; records what it was started with and the signals sent. */
function fakeChild() {
  let exit: (value: { code: number | null; signal: NodeJS.Signals | null }) => void = () => {};
  const started: { command: string; args: string[]; env: NodeJS.ProcessEnv }[] = [];
  const signals: NodeJS.Signals[] = [];
  const runChild = (command: string, args: string[], env: NodeJS.ProcessEnv): ChildHandle => {
    started.push({ command, args, env });
    return {
      pid: 4242,
      exited: new Promise((resolve) => {
        exit = resolve;
      }),
      kill: (signal) => {
        signals.push(signal);
        exit({ code: null, signal });
      },
    };
  };
  return { runChild, started, signals, exit: (code: number) => exit({ code, signal: null }) };
}

describe('imp exec: parse', () => {
  it('takes the command after --, read-only, ttl 10m by default; no --env means the tenant’s only one', async () => {
    expect(
      await parseCommand([
        'exec',
        '--tenant',
        'acme',
        '--ticket',
        'SUP-1',
        '--reason',
        'r',
        '--',
        'ls',
        '-l',
      ]),
    ).toMatchObject({
      tenant: 'acme',
      env: undefined,
      ttl: '10m',
      command: ['ls', '-l'],
    });
  });

  it.each([
    [['exec', '--tenant', 'acme', '--', 'ls'], '--ticket'],
    [['exec', '--tenant', 'acme', '--ticket', 'SUP-1', '--reason', 'r'], '-- <command>'],
  ])('%j is a usage error naming what is missing', async (argv, missing) => {
    await expect(parseCommand(argv)).rejects.toMatchObject({
      code: 'IMP_USAGE',
      message: expect.stringContaining(missing),
    });
  });
});

describe('imp exec: run', () => {
  it("runs the command in the session's environment and exits with its code", async () => {
    const child = fakeChild();
    const run = startImp(ARGV, [
      call('GET', '/v1/config', 200, CONFIG),
      call(
        'POST',
        '/v1/sessions',
        201,
        { session: active, message: 'ok' },
        { check: ({ body }) => expect(body).toMatchObject({ scope: 'read', ttl: 600 }) },
      ),
      CREDENTIAL,
      call('POST', `/v1/sessions/${ID}/end`, 200, { session: sessionView('ended') }),
      call('GET', `/v1/sessions/${ID}/summary`, 200, summary),
    ]);
    run.deps.runChild = child.runChild;
    await vi.waitFor(() => expect(child.started).toHaveLength(1));
    expect(child.started[0]).toMatchObject({
      command: './diagnose.sh',
      args: ['--fast'],
      env: { IMP_SESSION_ID: ID, IMP_TENANT: 'acme', IMP_SCOPE: 'read', IMP_EXEC_CREDENTIAL: 'exec-cred-1' },
    });
    child.exit(3);
    expect((await run.done).code).toBe(3);
  });

  it('stops the command at expiry on the clock and exits 6', async () => {
    const child = fakeChild();
    const run = startImp(ARGV, [
      call('GET', '/v1/config', 200, CONFIG),
      call('POST', '/v1/sessions', 201, { session: active, message: 'ok' }),
      CREDENTIAL,
      call('POST', `/v1/sessions/${ID}/end`, 200, { session: sessionView('ended') }),
      call('GET', `/v1/sessions/${ID}/summary`, 200, summary),
    ]);
    run.deps.runChild = child.runChild;
    await vi.waitFor(() => expect(child.started).toHaveLength(1));
    await run.clock.advance(599_000);
    expect(child.signals).toEqual([]);
    await run.clock.advance(1000);
    expect(child.signals).toEqual(['SIGTERM']);
    expect((await run.done).code).toBe(6);
  });

  it('a policy refusal runs nothing and exits 4', async () => {
    const child = fakeChild();
    const run = startImp(ARGV, [
      call('GET', '/v1/config', 200, CONFIG),
      {
        method: 'POST',
        path: '/v1/sessions',
        ...refusal(403, 'IMP_POLICY_DENIED', 'Denied by rule role.tenant: no', 'role.tenant'),
      },
    ]);
    run.deps.runChild = child.runChild;
    expect((await run.done).code).toBe(4);
    expect(child.started).toEqual([]);
  });
});
