/**
 * Two people, two machines: alice asks for write on acme, bob approves from his own credential
 * store, alice's `imp start --json` sees the session open; the session ends with a summary.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImpProcess, makeUserEnv, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { cliLogin, completeBrowserStep } from '../helpers/login.js';

const run = requireComponents(CHROMIUM);

describe.skipIf(!run)('sessions end to end (imp dev, real IdP, headless Chromium)', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  beforeAll(async () => {
    dev = await startDev();
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it('alice asks for write on acme, bob approves, alice works, ends, and gets a Markdown summary', async () => {
    const alice = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const bob = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(alice.env, dev.info.broker, 'alice');

    const start = new ImpProcess(
      [
        'start',
        '--tenant',
        'acme',
        '--env',
        'prod',
        '--write',
        '--confirm',
        'acme',
        '--ticket',
        'SUP-42',
        '--reason',
        'Reset MFA for the locked-out admin',
        '--ttl',
        '10m',
        '--json',
      ],
      alice.env,
    );
    const pending = await start.jsonLine((v) => v.event === 'approval_pending');
    const id = String((pending.request as { id: string }).id);

    await cliLogin(bob.env, dev.info.broker, 'bob');
    const list = await runImp(['requests', '--json'], bob.env);
    expect(JSON.parse(list.stdout).map((r: { id: string }) => r.id)).toContain(id);
    // alice cannot approve her own request (exit 4, names the rule)
    const self = await runImp(['approve', id], alice.env);
    expect(self.code).toBe(4);
    expect(self.stderr).toContain('approval.self');

    const approve = await runImp(['approve', id, '--comment', 'ok'], bob.env);
    expect(approve.code, approve.stderr).toBe(0);
    const started = await start.jsonLine((v) => v.event === 'session_started');
    expect(started.session).toMatchObject({ id, state: 'active', scope: 'write', tenant: 'acme' });

    const status = await runImp(['status', '--json'], alice.env);
    expect(JSON.parse(status.stdout)[0]).toMatchObject({ id, state: 'active' });

    const end = await runImp(['end', id, '--format', 'markdown'], alice.env);
    expect(end.code, end.stderr).toBe(0);
    expect(end.stdout).toContain(`### imp session ${id}`);
    expect(end.stdout).toContain('| Ticket | SUP-42 |');
    expect(end.stdout).toContain('| Approved by | bob@example.test |');

    const ended = await start.jsonLine((v) => v.event === 'session_ended', 15_000);
    expect(ended.reason).toBe('ended');
    expect(await start.exit()).toBe(0);
  });

  it('a second session with the same login needs a fresh login: the device flow runs again, then it opens', async () => {
    const carol = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(carol.env, dev.info.broker, 'carol');
    const first = await runImp(
      [
        'start',
        '--tenant',
        'globex',
        '--env',
        'prod',
        '--ticket',
        'INC-7',
        '--reason',
        'Look at the failing queue',
        '--no-shell',
        '--json',
      ],
      carol.env,
      { timeoutMs: 3000 },
    ).catch(() => null);
    expect(first).toBeNull(); // still running its countdown: it opened without a second login
    const second = new ImpProcess(
      [
        'start',
        '--tenant',
        'initech',
        '--env',
        'prod',
        '--ticket',
        'INC-7',
        '--reason',
        'Compare with the other tenant',
        '--json',
      ],
      carol.env,
    );
    await new Promise((r) => setTimeout(r, 1100)); // max_age=1: the IdP must see an older login
    await completeBrowserStep(second, 'carol');
    const started = await second.jsonLine((v) => v.event === 'session_started', 20_000);
    expect(started.session).toMatchObject({ tenant: 'initech', scope: 'read' });
    second.signal('SIGINT');
    expect(await second.exit()).toBe(0);
  });

  it('bad input exits 2 at once, before any login', async () => {
    const nobody = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const badTicket = await runImp(
      [
        'start',
        '--tenant',
        'acme',
        '--env',
        'prod',
        '--ticket',
        'nope',
        '--reason',
        'A perfectly fine reason',
        '--no-input',
      ],
      nobody.env,
    );
    expect(badTicket.code).toBe(2);
    expect(badTicket.stderr).toContain('ticket id must match');
    const shortReason = await runImp(
      ['start', '--tenant', 'acme', '--env', 'prod', '--ticket', 'SUP-1', '--reason', 'short', '--no-input'],
      nobody.env,
    );
    expect(shortReason.code).toBe(2);
    const missing = await runImp(['start', '--tenant', 'acme', '--no-input'], nobody.env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('Missing --ticket, --reason');
    const badTtl = await runImp(
      [
        'start',
        '--tenant',
        'acme',
        '--env',
        'prod',
        '--ticket',
        'SUP-1',
        '--reason',
        'A perfectly fine reason',
        '--ttl',
        '5 minutes',
        '--no-input',
      ],
      nobody.env,
    );
    expect(badTtl.code).toBe(2);
    const noConfirm = await runImp(
      [
        'start',
        '--tenant',
        'acme',
        '--env',
        'prod',
        '--write',
        '--ticket',
        'SUP-1',
        '--reason',
        'A perfectly fine reason',
        '--no-input',
      ],
      nobody.env,
    );
    expect(noConfirm.code).toBe(2);
    expect(noConfirm.stderr).toContain('--confirm acme');
  });

  it('mallory is denied with exit 4 naming the rule', async () => {
    const mallory = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(mallory.env, dev.info.broker, 'mallory');
    const result = await runImp(
      [
        'start',
        '--tenant',
        'globex',
        '--env',
        'prod',
        '--ticket',
        'SUP-9',
        '--reason',
        'Just looking around here',
        '--json',
      ],
      mallory.env,
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('role.none');
  });
});
