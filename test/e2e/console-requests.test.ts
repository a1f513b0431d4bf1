/**
 * The Requests page in headless Chromium (real broker, real dev IdP, the console's CSP on): bob logs
 * in with the authorization-code flow and sees alice's pending request with its ticket linked into
 * the configured Redmine and her recent access to the tenant; axe-core finds no serious violation,
 * the page fits 375 px, and desktop and phone screenshots are saved (test/helpers/console.ts, not
 * committed).
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { type BrowserHandle, openBrowser } from '../helpers/browser.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { consoleLogin, overflowsHorizontally, screenshots, seriousViolations } from '../helpers/console.js';

const run = requireComponents(CHROMIUM);
const HOSTILE_REASON =
  'Refund the order <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned=2">';

describe.runIf(run)('the Requests page in Chromium: ticket links, recent access, axe, 375 px', () => {
  let t: TestBroker;
  let browser: BrowserHandle;
  let bob: Page;
  let pending: string;

  beforeAll(async () => {
    t = await startTestBroker({
      policyYaml: (issuer) =>
        devPolicyYaml(issuer, 'http://127.0.0.1:9').replace(
          "tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$' }",
          () =>
            "tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$', system: { type: redmine, url: 'http://127.0.0.1:9/redmine', token_env: IMP_TEST_UNSET_KEY, on_unreachable: allow, timeout: 1s } }",
        ),
      // The policy's Redmine is never reached: every lookup fails at once, and on_unreachable lets it through.
      ticketSettings: { secret: () => null },
    });
    browser = await openBrowser();
    const ask = async (fields: Record<string, unknown>) => {
      t.clock.advance(1100);
      const answer = await t.call<{ session: { id: string } }>(
        'POST',
        '/v1/sessions',
        await t.loginAs('alice'),
        {
          tenant: 'acme',
          environment: 'prod',
          scope: 'read',
          reason: 'Customer cannot see their invoices',
          ttl: 1800,
          ...fields,
        },
      );
      expect([201, 202], JSON.stringify(answer.body)).toContain(answer.status);
      return answer.body.session.id;
    };
    const earlier = await ask({ ticket: 'SUP-11' });
    t.clock.advance(1100);
    expect((await t.call('POST', `/v1/sessions/${earlier}/end`, await t.loginAs('alice'))).status).toBe(200);
    pending = await ask({ ticket: 'SUP-12', scope: 'write', reason: HOSTILE_REASON });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('shows the request with its ticket linked and her recent access; no serious axe violation; fits 375 px', async () => {
    bob = await consoleLogin(browser.context, `${t.broker.url}/console/requests`, 'bob');
    const card = bob.locator('.card', { hasText: 'alice@example.test' });
    await expect.poll(() => card.count()).toBe(1);
    expect(await card.locator('.meta a.ticket').getAttribute('href')).toBe(
      'http://127.0.0.1:9/redmine/issues/12',
    );
    const recent = card.locator('.recent');
    expect(await recent.locator('h3').textContent()).toBe('Recent access by alice@example.test to acme');
    expect(await recent.locator('li').count()).toBe(1);
    expect(await recent.locator('li').textContent()).toMatch(
      /· prod · read · SUP-11 · no approval needed · ended after/,
    );
    expect(await card.locator('.reason').textContent()).toBe(HOSTILE_REASON);
    expect(await bob.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await seriousViolations(bob)).toEqual([]);
    await screenshots(bob, 'requests');
    await bob.setViewportSize({ width: 375, height: 740 });
    expect(await overflowsHorizontally(bob)).toBe(false);
    await bob.setViewportSize({ width: 1280, height: 800 });
  });

  it('the request page: the same facts, the decision form reachable by keyboard; axe and 375 px', async () => {
    await bob.goto(`${t.broker.url}/console/requests/${pending}`);
    expect(await bob.locator('.facts a.ticket').getAttribute('href')).toBe(
      'http://127.0.0.1:9/redmine/issues/12',
    );
    expect(await bob.locator('h2[id^="recent-"]').textContent()).toBe(
      'Recent access by alice@example.test to acme',
    );
    // Keyboard only: from the comment field, Tab reaches Approve.
    await bob.focus('#comment');
    await bob.keyboard.type('Checked the ticket');
    await bob.keyboard.press('Tab');
    expect(await bob.evaluate(() => (document.activeElement as HTMLButtonElement | null)?.value)).toBe(
      'approve',
    );
    expect(await seriousViolations(bob)).toEqual([]);
    await screenshots(bob, 'request-detail');
    await bob.setViewportSize({ width: 375, height: 740 });
    expect(await overflowsHorizontally(bob)).toBe(false);
    await bob.setViewportSize({ width: 1280, height: 800 });
  });
});
