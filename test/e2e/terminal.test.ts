/**
 * `imp start` in a real terminal (tmux), read as a person would: the prompts for ticket and reason
 * (an invalid ticket refused as typed), the banner, the subshell with its prompt prefix, the
 * 1-minute warning, the forced logout of a short session, and the summary.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMP_BIN, makeUserEnv, ROOT, startDev } from '../helpers/cli.js';
import { CHROMIUM, requireComponents, TMUX } from '../helpers/components.js';
import { cliLogin } from '../helpers/login.js';
import { TmuxSession } from '../helpers/tmux.js';

const run = requireComponents(CHROMIUM, TMUX);

describe.skipIf(!run)('the session in a real terminal', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  const terminals: TmuxSession[] = [];
  beforeAll(async () => {
    dev = await startDev();
  });
  afterAll(async () => {
    for (const t of terminals) t.close();
    await dev?.stop();
  });

  it('prompts, refuses a bad ticket as typed, shows the banner and the subshell, warns, logs out at expiry, summarises', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker, SHELL: '/bin/bash', TERM: 'xterm-256color' });
    delete user.env.NO_COLOR;
    await cliLogin(user.env, dev.info.broker, 'alice');
    const term = new TmuxSession(
      `node ${IMP_BIN} start --tenant globex --env prod --ttl 12s; echo "IMP-EXIT=$?"`,
      user.env,
      { cwd: ROOT },
    );
    terminals.push(term);

    await term.waitFor('Ticket id');
    term.type('oops');
    await term.waitFor('The ticket id must match');
    for (let i = 0; i < 4; i++) term.key('BSpace');
    term.type('SUP-77');
    await term.waitFor('Reason');
    term.type('Check why invoice sync fails');

    // Written line by line: wait for the banner's last line before reading the whole of it.
    const banner = await term.waitFor('Everything you do is recorded in the audit log.');
    expect(banner).toContain('You are about to act as tenant globex');
    expect(banner).toContain('read-only access');

    await term.waitFor(/\[imp globex\/prod RO \d+s\]/);
    term.type('echo "tenant=$IMP_TENANT scope=$IMP_SCOPE"');
    await term.waitFor('tenant=globex scope=read');

    const after = await term.waitFor('IMP-EXIT=', 25_000);
    // The banner gave its 12 s length: no "less than 1 minute" warning on top (the warnings
    // themselves are timed on the fake clock in test/cli/commands/start.test.ts).
    expect(after).not.toContain('less than 1 minute left');
    expect(after).toContain('session expired — you have been logged out of globex/prod RO');
    expect(after).toMatch(/Session [0-9a-f-]{36} — expired/);
    expect(after).toContain('ticket SUP-77');
    expect(after).toContain('IMP-EXIT=6');
  }, 90_000);

  it('leaving the subshell ends the session (exit 0) and prints the summary', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker, SHELL: '/bin/bash', TERM: 'xterm-256color' });
    await cliLogin(user.env, dev.info.broker, 'dave');
    const term = new TmuxSession(
      `node ${IMP_BIN} start --tenant initech --env staging --ticket INC-5 --reason "Inspect the staging queue" ; echo "IMP-EXIT=$?"`,
      user.env,
      { cwd: ROOT },
    );
    terminals.push(term);
    await term.waitFor(/\[imp initech\/staging RO \d+m\]/);
    term.type('exit');
    const after = await term.waitFor('IMP-EXIT=');
    expect(after).toMatch(/Session [0-9a-f-]{36} — ended/);
    expect(after).toContain('IMP-EXIT=0');
  }, 90_000);
});
