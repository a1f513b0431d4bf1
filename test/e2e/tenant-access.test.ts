/**
 * Acting on the tenant from the command line: `imp api` through the audited proxy and `imp exec`
 * for runbooks, against `imp dev` (real IdP, broker, demo tenant API that verifies tokens).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMP_BIN, ImpProcess, makeUserEnv, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { cliLogin } from '../helpers/login.js';

const run = requireComponents(CHROMIUM);
const imp = `${process.execPath} ${IMP_BIN}`;

describe.skipIf(!run)('imp api and imp exec', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  beforeAll(async () => {
    dev = await startDev();
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it('exec runs the command in a read-only session: api reads work, writes exit 4, the exit code passes through, the summary lists the calls', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(user.env, dev.info.broker, 'carol');
    const script = `f=$(mktemp) && ${imp} api GET /v1/users > "$f" && test -s "$f"; ${imp} api POST /v1/users/u-1/reset-mfa; echo "post-exit=$?"; exit 3`;
    const result = await runImp(
      [
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        'INC-9',
        '--reason',
        'Nightly queue diagnostics',
        '--json',
        '--',
        'sh',
        '-c',
        script,
      ],
      user.env,
      { timeoutMs: 30_000 },
    );
    expect(result.code, result.stderr).toBe(3);
    expect(result.stdout).toContain('post-exit=4');
    const ended = result.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .find((e) => e.event === 'session_ended');
    expect(ended.reason).toBe('ended');
    expect(ended.summary.session.state).toBe('ended');
    expect(ended.summary.actions.read).toBe(1);
    expect(ended.summary.denials).toBe(1);
    expect(
      ended.summary.calls.map(
        (c: { method: string; path: string; outcome: string }) => `${c.method} ${c.path} ${c.outcome}`,
      ),
    ).toEqual(['GET /v1/users completed', 'POST /v1/users/u-1/reset-mfa denied']);
    // Policy records prod: the command line and what it printed are in the session's recording.
    const replay = await runImp(['replay', ended.summary.session.id, '--speed', '50'], user.env);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toContain('$ sh -c');
    expect(replay.stdout).toContain('post-exit=4');
  });

  it("exec's child gets a credential for its session only: not the broker token, not the credential store, dead after", async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(user.env, dev.info.broker, 'carol');
    const brokerToken = JSON.stringify(
      JSON.parse(readFileSync(join(user.home, '.local/state/imp/credentials.json'), 'utf8')),
    );
    const envDump = join(user.home, 'child-env');
    const script = `env > ${envDump}; ${imp} api GET /v1/users > /dev/null; echo "api-exit=$?"; ${imp} whoami; echo "whoami-exit=$?"; ${imp} status; echo "status-exit=$?"`;
    const result = await runImp(
      [
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        'INC-9',
        '--reason',
        'Child credential check',
        '--',
        'sh',
        '-c',
        script,
      ],
      user.env,
      { timeoutMs: 30_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('api-exit=0');
    expect(result.stdout).toContain('whoami-exit=3');
    expect(result.stdout).toContain('status-exit=3');
    const childEnv = Object.fromEntries(
      readFileSync(envDump, 'utf8')
        .split('\n')
        .filter((line) => line.includes('='))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    const credential = childEnv.IMP_EXEC_CREDENTIAL!;
    expect(credential).toMatch(/^ey/);
    expect(childEnv.XDG_STATE_HOME).not.toBe(user.env.XDG_STATE_HOME);
    expect(childEnv.IMP_CREDENTIAL_STORE).toBeUndefined();
    // No part of the child's environment is (or holds) a broker token.
    const tokens = [...brokerToken.matchAll(/ey[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g)].map(
      (m) => m[0],
    );
    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) expect(readFileSync(envDump, 'utf8')).not.toContain(token);
    // The credential died with the session.
    const after = await fetch(`${dev.info.broker}/v1/sessions/${childEnv.IMP_SESSION_ID}/proxy/v1/users`, {
      headers: { authorization: `Bearer ${credential}` },
    });
    expect(after.status).toBe(410);
  });

  it('exec ends the session when it is told to stop (SIGTERM)', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(user.env, dev.info.broker, 'dave');
    const exec = new ImpProcess(
      [
        'exec',
        '--tenant',
        'initech',
        '--env',
        'prod',
        '--ticket',
        'INC-10',
        '--reason',
        'Long running check',
        '--json',
        '--',
        'sleep',
        '30',
      ],
      user.env,
    );
    const deadline = Date.now() + 10_000;
    while (!exec.stderr.includes('session_started') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const started = JSON.parse(exec.stderr.split('\n').find((l) => l.includes('session_started'))!);
    exec.signal('SIGTERM');
    const code = await exec.exit();
    expect(code).toBe(143);
    const status = await runImp(['status', '--json'], user.env);
    expect(JSON.parse(status.stdout).map((s: { id: string }) => s.id)).not.toContain(started.session.id);
  });

  it('imp api outside a session says so (exit 6); in a --json session that policy records there is no terminal, so its calls are refused (recording.not_started)', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(user.env, dev.info.broker, 'alice');
    const none = await runImp(['api', 'GET', '/v1/users'], user.env);
    expect(none.code).toBe(6);
    expect(none.stderr).toContain('no active session');
    const start = new ImpProcess(
      [
        'start',
        '--tenant',
        'globex',
        '--env',
        'prod',
        '--write',
        '--confirm',
        'globex',
        '--ticket',
        'SUP-3',
        '--reason',
        'Change settings for the customer',
        '--json',
      ],
      user.env,
    );
    const started = await start.jsonLine((v) => v.event === 'session_started');
    const id = (started.session as { id: string }).id;
    const warning = await start.jsonLine((v) => v.event === 'session_warning');
    expect(warning).toMatchObject({ reason: 'recording' });
    expect(String(warning.message)).toContain('rule recording.not_started');
    // The dev policy requires prod to be recorded: with no shell nothing is, and the broker refuses.
    const patch = await runImp(['api', 'PATCH', '/v1/settings', '--data', '{"locale":"de-DE"}', '--json'], {
      ...user.env,
      IMP_SESSION_ID: id,
    });
    expect(patch.code).toBe(4);
    expect(patch.stderr).toContain('Refused by rule recording.not_started');
    start.signal('SIGINT');
    expect(await start.exit()).toBe(0);
    const after = await runImp(['api', 'GET', '/v1/users', '--session', id], user.env);
    expect(after.code).toBe(6);
  });
});
