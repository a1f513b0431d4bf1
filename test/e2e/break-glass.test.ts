/**
 * Break-glass end to end, three people on three machines: carol asks (`imp break-glass --json`),
 * dave confirms (`imp break-glass confirm ID`), carol's session opens in break-glass mode and is
 * logged out at its short TTL; erin finds it in `imp review` and records the review. Then the same
 * request in a real terminal: the red banner, the typed phrase (a wrong one refused), the spinner
 * with the request id and the command to send, and Ctrl-C withdrawing the request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMP_BIN, ImpProcess, makeUserEnv, ROOT, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, requireComponents, TMUX } from '../helpers/components.js';
import { cliLogin } from '../helpers/login.js';
import { TmuxSession } from '../helpers/tmux.js';

const run = requireComponents(CHROMIUM);

/** The SGR background colour in effect where `text` starts on a `capture-pane -e` screen. */
function backgroundAt(screen: string, text: string): string | null {
  let background: string | null = null;
  const before = screen.slice(0, screen.indexOf(text));
  for (const match of before.matchAll(/\u001b\[([0-9;]*)m/g)) {
    for (const code of (match[1] || '0').split(';')) {
      if (code === '0' || code === '49') background = null;
      else if (/^4[0-7]$/.test(code)) background = code;
    }
  }
  return background;
}
const runTerminal = run && requireComponents(TMUX);

let dev: Awaited<ReturnType<typeof startDev>>;
beforeAll(async () => {
  if (run) dev = await startDev();
});
afterAll(async () => {
  await dev?.stop();
});

describe.skipIf(!run)('break-glass end to end (imp dev, real IdP, headless Chromium)', () => {
  it('carol asks, dave confirms, carol works in break-glass mode until forced logout; erin reviews it', async () => {
    const carol = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const dave = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const erin = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(carol.env, dev.info.broker, 'carol');

    // Without the typed phrase, --no-input refuses at once (exit 2), before anything reaches the broker.
    const unconfirmed = await runImp(
      [
        'break-glass',
        '--tenant',
        'globex',
        '--env',
        'prod',
        '--incident',
        'INC-9',
        '--reason',
        'Payments queue is stuck',
        '--no-input',
      ],
      carol.env,
    );
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('--confirm "break glass globex"');

    const request = new ImpProcess(
      [
        'break-glass',
        '--tenant',
        'globex',
        '--env',
        'prod',
        '--incident',
        'INC-9',
        '--reason',
        'Payments queue is stuck; requeue the failed jobs',
        '--ttl',
        '6s',
        '--confirm',
        'break glass globex',
        '--json',
      ],
      carol.env,
    );
    const pending = await request.jsonLine((v) => v.event === 'confirmation_pending');
    const asked = pending.request as { id: string; confirm_by: string; mode: string; state: string };
    expect(asked).toMatchObject({ mode: 'break_glass', state: 'pending' });
    expect(Date.parse(asked.confirm_by)).toBeGreaterThan(Date.now() + 9 * 60_000);
    const id = asked.id;

    // carol cannot confirm her own request (exit 4, names the rule).
    const self = await runImp(['break-glass', 'confirm', id, '--confirm', id, '--no-input'], carol.env);
    expect(self.code).toBe(4);
    expect(self.stderr).toContain('break_glass.self');

    await cliLogin(dave.env, dev.info.broker, 'dave');
    const wrong = await runImp(['break-glass', 'confirm', id, '--confirm', 'yes', '--no-input'], dave.env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(`--confirm must be the request id ${id.slice(0, 8)} (or all of ${id})`);
    const confirm = await runImp(['break-glass', 'confirm', id, '--confirm', id, '--no-input'], dave.env);
    expect(confirm.code, confirm.stderr).toBe(0);
    expect(confirm.stderr).toContain('requested by  carol@example.test');
    expect(confirm.stderr).toContain('incident      INC-9');
    expect(confirm.stderr).toContain(
      'Confirmed: carol@example.test has break-glass WRITE access to globex/prod',
    );

    // imp dev's local webhook received the alert and checked its signature.
    await expect
      .poll(() => dev.process.stderr, { timeout: 10_000 })
      .toContain(
        '[alert] BREAK-GLASS by carol@example.test, confirmed by dave@example.test, on globex/prod, incident INC-9',
      );
    expect(dev.process.stderr).toMatch(/incident INC-9, until \S+ \(signature ok\)/);
    // …and the notifications: the waiting request (with the command the confirmer types) and the start.
    await expect
      .poll(() => dev.process.stderr, { timeout: 10_000 })
      .toContain(
        `[notify] BREAK-GLASS: carol@example.test asks for emergency WRITE access to Globex (globex)/prod: a second person must confirm → imp break-glass confirm ${id.slice(0, 8)} (signature ok)`,
      );
    await expect
      .poll(() => dev.process.stderr, { timeout: 10_000 })
      .toContain(
        `[notify] BREAK-GLASS session started: carol@example.test on Globex (globex)/prod, confirmed by dave@example.test → imp break-glass review ${id.slice(0, 8)} (signature ok)`,
      );

    const started = await request.jsonLine((v) => v.event === 'session_started');
    expect(started.session).toMatchObject({
      id,
      state: 'active',
      mode: 'break_glass',
      scope: 'write',
      tenant: 'globex',
      ticket: 'INC-9',
      review_required: true,
      decided_by: { email: 'dave@example.test' },
    });
    const ended = await request.jsonLine((v) => v.event === 'session_ended', 20_000);
    expect(ended.reason).toBe('expired');
    expect(await request.exit()).toBe(6);

    // The auditor sees it waiting for review, records the review, and then it is no longer waiting.
    await cliLogin(erin.env, dev.info.broker, 'erin');
    const before = await runImp(['review', '--since', '1d', '--format', 'markdown'], erin.env);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain('## Break-glass sessions awaiting review');
    expect(before.stdout).toContain(
      `- [ ] \`${id}\` carol@example.test on globex/prod, incident INC-9, confirmed by dave@example.test`,
    );
    const byCarol = await runImp(
      ['break-glass', 'review', id, '--outcome', 'justified', '--notes', 'ok'],
      carol.env,
    );
    expect(byCarol.code).toBe(4);
    expect(byCarol.stderr).toContain('break_glass.review_self');
    const reviewed = await runImp(
      [
        'break-glass',
        'review',
        id,
        '--outcome',
        'justified',
        '--notes',
        'INC-9 timeline matches the calls',
        '--json',
      ],
      erin.env,
    );
    expect(reviewed.code, reviewed.stderr).toBe(0);
    expect(JSON.parse(reviewed.stdout)).toMatchObject({
      event: 'reviewed',
      session: { review: { outcome: 'justified' } },
    });
    const after = JSON.parse((await runImp(['review', '--json'], erin.env)).stdout);
    expect(after.awaiting_review.map((s: { id: string }) => s.id)).not.toContain(id);
    // Only auditors and reviewers may read it.
    const denied = await runImp(['review'], carol.env);
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain('role.audit');
  }, 150_000);
});

describe.skipIf(!runTerminal)('break-glass in a real terminal', () => {
  const terminals: TmuxSession[] = [];
  afterAll(() => {
    for (const t of terminals) t.close();
  });

  it('shows the red banner, refuses a wrong phrase, waits with the request id and the command, Ctrl-C withdraws', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker, SHELL: '/bin/bash', TERM: 'xterm-256color' });
    delete user.env.NO_COLOR;
    await cliLogin(user.env, dev.info.broker, 'dave');
    const term = new TmuxSession(
      `node ${IMP_BIN} break-glass --tenant initech --env prod --incident INC-77 --reason "Queue stuck; requeue failed jobs" --ttl 10m; echo "IMP-EXIT=$?"`,
      user.env,
      { cwd: ROOT },
    );
    terminals.push(term);

    // The banner is written line by line: wait for its last line before reading the whole of it.
    const banner = await term.waitFor('security is alerted at once, and the session is reviewed afterwards.');
    expect(banner).toContain('BREAK-GLASS: emergency WRITE access to tenant initech in prod for up to 10m.');
    expect(banner).toContain('A second on-call person must confirm it');
    expect(backgroundAt(term.screenWithColours(), 'BREAK-GLASS: emergency')).toBe('41'); // red

    await term.waitFor('Type "break glass initech" to continue');
    term.type('break glass acme');
    await term.waitFor('Type exactly: break glass initech');
    for (let i = 0; i < 'break glass acme'.length; i++) term.key('BSpace');
    term.type('break glass initech');

    const waiting = await term.waitFor(/Waiting for a second person to confirm [0-9a-f]{8}…/);
    // The short id people type (any unambiguous prefix of 4+ characters works).
    const id = /confirm ([0-9a-f]{8})…/.exec(waiting)?.[1];
    expect(id).toBeDefined();
    expect(waiting).toContain(`Break-glass request ${id} is recorded.`);
    expect(waiting).toContain(`  imp break-glass confirm ${id}`);
    expect(waiting).toContain('(Ctrl-C withdraws the request)');

    term.key('C-c');
    const after = await term.waitFor('IMP-EXIT=');
    expect(after).toContain(`Request ${id} withdrawn.`);
    expect(after).toContain('IMP-EXIT=130');
    // Withdrawn for real: the confirmer finds nothing left to confirm.
    const carol = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(carol.env, dev.info.broker, 'carol');
    const late = await runImp(['break-glass', 'confirm', id!, '--confirm', id!, '--no-input'], carol.env);
    // Its short id now matches nothing pending that carol may confirm.
    expect(late.code).toBe(1);
    expect(late.stderr).toContain(`No break-glass request you may confirm has an id starting with ${id}.`);
  }, 90_000);
});
