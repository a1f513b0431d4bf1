/**
 * A person with a passkey, in real headless Chromium: a tab with a CDP virtual authenticator (CTAP2,
 * internal transport, resident keys, user verification) that completes the broker's own ceremony page
 * by pressing its button, as a person would. Nothing here verifies anything: the broker does.
 */
import type { CDPSession, Page } from 'playwright-core';
import type { BrowserHandle } from './browser.js';

const STEP_TIMEOUT_MS = 15_000;
// Playwright waits forever unless told: every wait on the page is bounded.
const bounded = { timeout: STEP_TIMEOUT_MS };

/** One person's browser tab and authenticator. */
export interface PasskeyTab {
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
  /** Presses the page's button at `url` and waits for the outcome shown on the page. */
  complete(url: string): Promise<{ state: string; status: string; what: string; code: string }>;
  /** Whether the authenticator verifies the user (PIN / biometrics succeed). */
  setUserVerified(verified: boolean): Promise<void>;
  /** Rewrites the authenticator's credentials' signature counters (a cloned authenticator). */
  setSignCount(count: number): Promise<void>;
  /** The counter of the authenticator's (first) credential. */
  signCount(): Promise<number>;
}

/** Page.bringToFront has no timeout of its own: bounded, as every other wait here. */
async function bringToFront(page: Page): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    page.bringToFront(),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 5000);
    }),
  ]);
  clearTimeout(timer);
}

/** Opens a tab with a virtual authenticator in `browser`. */
export async function openPasskeyTab(browser: BrowserHandle): Promise<PasskeyTab> {
  const page = await browser.context.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const credentials = async () =>
    (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  return {
    page,
    cdp,
    authenticatorId,
    async complete(url) {
      await page.goto(url, { timeout: STEP_TIMEOUT_MS });
      const what = (
        (await page
          .locator('#what')
          .textContent({ timeout: 1000 })
          .catch(() => '')) ?? ''
      ).trim();
      const code = (
        (await page
          .locator('#code')
          .textContent({ timeout: 1000 })
          .catch(() => '')) ?? ''
      ).trim();
      if ((await page.locator('#go').count()) === 0) {
        // No button: the page says why (expired, used). Anything else is not the ceremony page.
        if ((await page.locator('#status').count()) === 0)
          throw new Error(`not the broker's passkey page at ${url}: ${(await page.content()).slice(0, 500)}`);
        const status = ((await page.locator('#status').textContent(bounded)) ?? '').trim();
        return {
          state: (await page.locator('body').getAttribute('data-state', bounded)) ?? '',
          status,
          what,
          code,
        };
      }
      // WebAuthn only runs in the focused page (else NotAllowedError "does not have focus"): with
      // several people's tabs in one browser, the one about to press the button comes to the front.
      // Focus can still move before the browser checks it (seen on a loaded machine); the page then
      // says so and re-enables its button, and the test presses again as a person would. Nothing
      // reached the broker on such a try: the browser refused before making an assertion.
      let state = '';
      let status = '';
      for (let attempt = 1; attempt <= 3; attempt++) {
        await bringToFront(page);
        await page.click('#go', { timeout: STEP_TIMEOUT_MS });
        await page.waitForSelector('body[data-state="done"], body[data-state="failed"]', {
          timeout: STEP_TIMEOUT_MS,
        });
        state = (await page.locator('body').getAttribute('data-state', bounded)) ?? '';
        status = ((await page.locator('#status').textContent(bounded)) ?? '').trim();
        if (!(state === 'failed' && status.includes('does not have focus'))) break;
      }
      return { state, status, what, code };
    },
    async setUserVerified(verified) {
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: verified });
    },
    async setSignCount(count) {
      for (const credential of await credentials()) {
        await cdp.send('WebAuthn.removeCredential', {
          authenticatorId,
          credentialId: credential.credentialId,
        });
        await cdp.send('WebAuthn.addCredential', {
          authenticatorId,
          credential: { ...credential, signCount: count },
        });
      }
    },
    async signCount() {
      return (await credentials())[0]?.signCount ?? -1;
    },
  };
}

/** A passkey step-up challenge as the broker sends it (error.details.passkey, or passkey_authorization). */
export type PasskeyChallenge = {
  id: string;
  verification_uri_complete: string;
  user_code: string;
  expires_in: number;
};
type StepUpError = { error: { details?: { passkey?: PasskeyChallenge } } };

/** What a test broker offers the harness (structural: test/helpers/broker.ts's TestBroker fits). */
interface HarnessBroker {
  clock: { advance(ms: number): void };
  loginAs(user: string): Promise<string>;
  call<T>(
    method: string,
    path: string,
    token?: string | null,
    body?: unknown,
    extraHeaders?: Record<string, string>,
  ): Promise<{ status: number; headers: Headers; body: T }>;
}

/** The dev policy's text in passkey mode (and with `passkey_reset` for security). */
export function passkeyModePolicy(devPolicy: string, extraReauth = ''): string {
  return devPolicy
    .replace(
      'reauth: { max_age: 5m, per_session: true }',
      `reauth: { method: passkey, max_age: 5m, per_session: true${extraReauth} }`,
    )
    .replace(
      'audit: true, review: true, revoke: true }',
      'audit: true, review: true, revoke: true, passkey_reset: true }',
    );
}

/**
 * People with passkeys against one test broker, in one browser: each key (`alice`, `alice-2` …) is
 * its own tab with its own virtual authenticator. Every step goes through the broker's real page.
 */
export function passkeyPeople(t: HarnessBroker, browser: BrowserHandle) {
  const tabs = new Map<string, PasskeyTab>();
  const tab = async (key: string): Promise<PasskeyTab> => {
    let found = tabs.get(key);
    if (!found) {
      found = await openPasskeyTab(browser);
      tabs.set(key, found);
    }
    return found;
  };
  /** A fresh login (a second later than the last: per-session logins are told apart by auth_time). */
  const login = async (user: string): Promise<string> => {
    t.clock.advance(1100);
    return t.loginAs(user);
  };
  /** Calls and expects RFC 9470's passkey challenge; returns it. */
  const challenged = async (
    method: string,
    path: string,
    token: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<PasskeyChallenge> => {
    const answer = await t.call<StepUpError>(method, path, token, body, headers);
    if (answer.status !== 401 || !answer.body.error.details?.passkey)
      throw new Error(`expected a passkey challenge, got ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body.error.details.passkey;
  };
  /** Confirms a challenge with `key`'s authenticator; throws unless the page says done. */
  const confirm = async (key: string, challenge: PasskeyChallenge): Promise<void> => {
    const outcome = await (await tab(key)).complete(challenge.verification_uri_complete);
    if (outcome.state !== 'done') throw new Error(`the page did not confirm: ${outcome.status}`);
  };
  /** Challenge, confirm on the page with `key`, retry with the verified ceremony. */
  const withPasskey = async <T>(key: string, method: string, path: string, token: string, body?: unknown) => {
    const challenge = await challenged(method, path, token, body);
    await confirm(key, challenge);
    return t.call<T>(method, path, token, body, { 'imp-step-up': challenge.id });
  };
  /** Enrols `user`'s first passkey with the authenticator of tab `key` (default: the user's). */
  const enrol = async (user: string, key = user): Promise<void> => {
    const started = await t.call<{ passkey_authorization: PasskeyChallenge }>(
      'POST',
      '/v1/passkeys',
      await login(user),
      { name: `${key}'s key` },
    );
    if (started.status !== 202) throw new Error(`enrolment refused: ${JSON.stringify(started.body)}`);
    await confirm(key, started.body.passkey_authorization);
  };
  return { tab, login, challenged, confirm, withPasskey, enrol };
}
