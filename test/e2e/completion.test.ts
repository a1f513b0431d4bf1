/**
 * TAB in real bash, zsh and fish (in tmux): `imp st<TAB>` offers start and status, and
 * `imp start --tenant <TAB>` offers the dev tenants, fetched from the broker by `imp __complete`.
 */

import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMP_BIN, makeUserEnv, ROOT, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, type Component, requireComponents, TMUX } from '../helpers/components.js';
import { cliLogin } from '../helpers/login.js';
import { makeTempDir } from '../helpers/temp.js';
import { TmuxSession } from '../helpers/tmux.js';

const shell = (name: string): Component => ({
  name,
  debianPackage: name,
  check: () => {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  },
});
const run = requireComponents(CHROMIUM, TMUX, shell('zsh'), shell('fish'));

describe.skipIf(!run)('shell completion in real shells', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  let env: NodeJS.ProcessEnv;
  const terminals: TmuxSession[] = [];

  beforeAll(async () => {
    dev = await startDev();
    const bin = makeTempDir('imp-bin-');
    writeFileSync(join(bin, 'imp'), `#!/bin/sh\nexec "${process.execPath}" "${IMP_BIN}" "$@"\n`);
    chmodSync(join(bin, 'imp'), 0o755);
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker, TERM: 'xterm-256color' });
    env = { ...user.env, PATH: `${bin}:${process.env.PATH}` };
    await cliLogin(env, dev.info.broker, 'alice');
  });
  afterAll(async () => {
    for (const t of terminals) t.close();
    await dev?.stop();
  });

  it('imp __complete lists tenants from the broker, and environments per tenant', async () => {
    // A cold cache asks the broker; give it more than a TAB press's 200 ms on a loaded machine.
    const slowLink = { ...env, IMP_COMPLETE_BUDGET_MS: '10000' };
    const tenants = await runImp(['__complete', 'tenants'], slowLink);
    expect(tenants.stdout.split('\n').filter(Boolean)).toEqual(['acme', 'globex', 'initech']);
    const envs = await runImp(['__complete', 'environments', '--tenant', 'globex'], slowLink);
    expect(envs.stdout.trim()).toBe('prod');
    const nothing = await runImp(['__complete', 'tenants'], {
      ...env,
      IMP_BROKER_URL: 'http://127.0.0.1:9',
      XDG_STATE_HOME: makeTempDir('imp-empty-'),
    });
    expect(nothing).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  /**
   * Presses `key` until the screen matches `pattern`. Shells differ in how many TABs a listing
   * takes (bash: complete the common prefix, ring, then list; zsh: list on the second; fish: on the
   * first), and the dynamic lists wait for `imp __complete`; so each press waits for the screen
   * rather than for a fixed time, and an extra press only lists again.
   */
  async function pressUntil(
    term: TmuxSession,
    key: string,
    pattern: RegExp,
    presses: number,
  ): Promise<string> {
    for (let press = 1; press < presses; press++) {
      term.key(key);
      const screen = await term.waitFor(pattern, 2_000).catch(() => undefined);
      if (screen) return screen;
    }
    term.key(key);
    return term.waitFor(pattern, 8_000);
  }

  /** Runs a command line and waits until the shell has printed what it echoes afterwards. */
  async function runAndWait(term: TmuxSession, line: string, marker: string): Promise<void> {
    term.type(`${line}; echo ${marker}`);
    await term.waitFor(new RegExp(`^${marker}\\s*$`, 'm'), 10_000);
  }

  it.each([
    ['bash', 'bash --norc --noprofile', `source ${join(ROOT, 'completions/imp.bash')}`],
    ['zsh', 'zsh -f', `autoload -U compinit && compinit -u && source ${join(ROOT, 'completions/_imp')}`],
    ['fish', 'fish --no-config', `source ${join(ROOT, 'completions/imp.fish')}`],
  ])(
    '%s: imp st<TAB> offers start and status; imp start --tenant <TAB> offers the dev tenants',
    async (_name, command, setup) => {
      const term = new TmuxSession(command, env, { cwd: ROOT });
      terminals.push(term);
      await runAndWait(term, setup, 'SETUP-DONE');
      await runAndWait(term, 'clear', 'CLEARED-1');
      term.type('imp st', false);
      const first = await pressUntil(term, 'Tab', /status/, 4);
      expect(first).toMatch(/start/);
      term.key('C-c');
      await runAndWait(term, 'clear', 'CLEARED-2');
      term.type('imp start --tenant ', false);
      const second = await pressUntil(term, 'Tab', /initech/, 4);
      expect(second).toMatch(/acme/);
      expect(second).toMatch(/globex/);
      term.key('C-c');
    },
  );
});
