/** Logs a dev user in through the real CLI and the real browser step (headless Chromium). */
import { expect } from 'vitest';
import { type BrowserHandle, completeDeviceLogin } from './browser.js';
import { ImpProcess } from './cli.js';

/** Runs `imp login --json` for `user` in `env`, completing the browser step; returns when logged in. */
export async function cliLogin(
  env: NodeJS.ProcessEnv,
  broker: string,
  user: string,
  browser?: BrowserHandle,
  extra: string[] = [],
): Promise<void> {
  const imp = new ImpProcess(['login', '--broker', broker, '--no-browser', '--json', ...extra], env);
  await completeBrowserStep(imp, user, browser);
  expect(await imp.exit(), imp.stderr).toBe(0);
}

/** Waits for a device_authorization line from a running imp and completes it in the browser. */
export async function completeBrowserStep(
  imp: ImpProcess,
  user: string,
  browser?: BrowserHandle,
  after = 0,
): Promise<void> {
  let seen = 0;
  const code = await imp.jsonLine((v) => v.event === 'device_authorization' && seen++ >= after);
  await completeDeviceLogin({
    url: String(code.verification_uri_complete),
    login: user,
    password: user,
    ...(browser ? { browser } : {}),
  });
}
