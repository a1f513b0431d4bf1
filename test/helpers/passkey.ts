/**
 * A person with a passkey, in real headless Chromium: a tab with a CDP virtual authenticator (CTAP2,
 * internal transport, resident keys, user verification) that completes the broker's own ceremony page
 * by pressing its button, as a person would. Nothing here verifies anything: the broker does.
 */
import type { CDPSession, Page } from 'playwright-core';
import type { BrowserHandle } from './browser.js';

const STEP_TIMEOUT_MS = 15_000;

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
        const status = ((await page.locator('#status').textContent()) ?? '').trim();
        return { state: (await page.locator('body').getAttribute('data-state')) ?? '', status, what, code };
      }
      await page.click('#go', { timeout: STEP_TIMEOUT_MS });
      await page.waitForSelector('body[data-state="done"], body[data-state="failed"]', {
        timeout: STEP_TIMEOUT_MS,
      });
      const state = (await page.locator('body').getAttribute('data-state')) ?? '';
      const status = ((await page.locator('#status').textContent()) ?? '').trim();
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
