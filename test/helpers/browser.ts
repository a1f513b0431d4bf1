/**
 * Drives the browser half of a device-flow login in headless Chromium (Debian's /usr/bin/chromium via
 * playwright-core). It recognises pages by their form fields, not by wording, so it works for any
 * form-based IdP page: a user-code input, a login form (login/password), a confirm page (Abort button).
 * Terminal pages of the dev IdP carry `<body data-page="success|aborted|error">`.
 */
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';

const CHROMIUM_PATH = '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 15_000;
const MAX_STEPS = 10;

const LOGIN = 'input[name="password"]';
const CONFIRM = 'button[name="abort"]';
const USER_CODE = 'input[name="user_code"]:not([type="hidden"])';
const TERMINAL = 'body[data-page]';
// oidc-provider's auto-submitting form_post page; its <noscript> button only exists without JavaScript.
const NOSCRIPT_SUBMIT = 'noscript button[type="submit"]';
const ANY_STATE = [LOGIN, CONFIRM, USER_CODE, TERMINAL, NOSCRIPT_SUBMIT].join(', ');

/** What happened in the browser. */
export interface DeviceLoginResult {
  /** True when a login form asked for a password (false when the IdP session was reused). */
  askedForPassword: boolean;
  /** Error messages the login form showed (e.g. after `wrongPassword`). */
  loginErrors: string[];
  /** The pages passed through, e.g. ['confirm', 'login', 'success']. */
  pages: string[];
}

/** A browser kept open across several logins, so the IdP's session cookie persists (for max_age tests). */
export interface BrowserHandle {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Options of one browser-side device login. */
export interface DeviceLoginOptions {
  /** verification_uri_complete, or verification_uri together with `userCode`. */
  url: string;
  userCode?: string;
  login: string;
  password: string;
  /** Submitted first; the login form must then show an error before `password` is tried. */
  wrongPassword?: string;
  /** Reuse this browser (and its cookies); otherwise a fresh one is opened and closed. */
  browser?: BrowserHandle;
  /** 'approve' (default) clicks Continue on the confirm page, 'deny' clicks Abort. */
  action?: 'approve' | 'deny';
}

/** Launches headless Chromium with one cookie-keeping context; `javaScript: false` proves pages work without it. */
export async function openBrowser(options: { javaScript?: boolean } = {}): Promise<BrowserHandle> {
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    timeout: STEP_TIMEOUT_MS,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const context = await browser.newContext({ javaScriptEnabled: options.javaScript ?? true });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      await browser.close();
    },
  };
}

/** Opens verification_uri_complete (or verification_uri + typing the user code), logs in if asked, confirms. */
export async function completeDeviceLogin(opts: DeviceLoginOptions): Promise<DeviceLoginResult> {
  const owned = opts.browser ? undefined : await openBrowser();
  const handle = opts.browser ?? owned;
  if (!handle) throw new Error('unreachable: no browser');
  const page = await handle.context.newPage();
  const action = opts.action ?? 'approve';
  const result: DeviceLoginResult = { askedForPassword: false, loginErrors: [], pages: [] };
  const trail = result.pages;
  let codeEntered = false;
  let passwordsSent = 0;
  try {
    await step(page, 'open verification URL', () => page.goto(opts.url));
    for (let i = 0; i < MAX_STEPS; i++) {
      const state = await step(page, 'wait for a known page', () => currentState(page));
      trail.push(state);
      if (state === 'login') {
        result.askedForPassword = true;
        const error = await alertText(page);
        if (error) result.loginErrors.push(error);
        const tryingWrongFirst = opts.wrongPassword !== undefined;
        if (passwordsSent === 1 && tryingWrongFirst && !error) {
          throw new Error('the login form showed no error after the wrong password');
        }
        if (passwordsSent >= (tryingWrongFirst ? 2 : 1)) {
          throw new Error(
            `the login form came back after the right password: ${error ?? '(no error shown)'}`,
          );
        }
        const password =
          passwordsSent === 0 && opts.wrongPassword !== undefined ? opts.wrongPassword : opts.password;
        await step(page, 'fill login and password', async () => {
          await page.fill('input[name="login"]', opts.login);
          await page.fill(LOGIN, password);
        });
        passwordsSent++;
        await submit(page, 'submit login', page.locator('form button[type="submit"]').first());
      } else if (state === 'noscript') {
        await submit(page, 'submit the no-script form', page.locator(NOSCRIPT_SUBMIT).first());
      } else if (state === 'confirm') {
        const button =
          action === 'deny'
            ? page.locator(CONFIRM)
            : page.locator('button[type="submit"]:not([name="abort"])').first();
        await submit(page, action === 'deny' ? 'click Abort' : 'click Continue', button);
      } else if (state === 'user-code') {
        if (codeEntered) throw new Error(`the user code was refused: ${await pageText(page)}`);
        if (!opts.userCode)
          throw new Error('the IdP asks for a user code but none was given (pass userCode)');
        const userCode = opts.userCode;
        await step(page, 'fill user code', () => page.fill(USER_CODE, userCode));
        codeEntered = true;
        await submit(page, 'submit user code', page.locator('button[type="submit"]').first());
      } else {
        const expected = action === 'deny' ? 'aborted' : 'success';
        if (state !== expected)
          throw new Error(`expected the ${expected} page, got: ${await pageText(page)}`);
        if (opts.wrongPassword !== undefined && passwordsSent < 2) {
          throw new Error('expected the login form to reject the wrong password and ask again');
        }
        return result;
      }
    }
    throw new Error('too many pages without reaching the end');
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `device login in the browser failed at ${page.url()} (pages: ${trail.join(' → ')}): ${message}`,
      {
        cause: err,
      },
    );
  } finally {
    await page.close().catch(() => undefined);
    await owned?.close();
  }
}

type PageState = 'login' | 'confirm' | 'user-code' | 'noscript' | string;

// Waits through auto-submitting pages (oidc-provider's form_post) until a page we can act on shows up.
async function currentState(page: Page): Promise<PageState> {
  await page.waitForSelector(ANY_STATE, { state: 'attached' });
  if (await page.locator(LOGIN).count()) return 'login';
  if (await page.locator(CONFIRM).count()) return 'confirm';
  if (await page.locator(USER_CODE).count()) return 'user-code';
  if (await page.locator(NOSCRIPT_SUBMIT).count()) return 'noscript';
  return (await page.locator(TERMINAL).getAttribute('data-page')) ?? 'unknown';
}

// The next page may live at the same URL (POST /device), so wait for a new document, not a URL change.
async function submit(page: Page, name: string, button: Locator): Promise<void> {
  await step(page, name, async () => {
    const loaded = page.waitForEvent('load');
    await button.click();
    await loaded;
  });
}

// Playwright's own timeout errors are long call logs; keep their first line and say what the page shows.
async function step<T>(page: Page, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const first = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(
      `step "${name}" failed (timeout ${STEP_TIMEOUT_MS / 1000} s): ${first}; page shows: ${await pageText(page)}`,
    );
  }
}

async function alertText(page: Page): Promise<string | undefined> {
  const alert = page.locator('[role="alert"], .error');
  if ((await alert.count()) === 0) return undefined;
  return ((await alert.first().textContent()) ?? '').trim() || undefined;
}

async function pageText(page: Page): Promise<string> {
  const text = await page
    .locator('body')
    .textContent({ timeout: 1000 })
    .catch(() => '(no page)');
  return (text ?? '').replace(/\s+/g, ' ').trim().slice(0, 300);
}
