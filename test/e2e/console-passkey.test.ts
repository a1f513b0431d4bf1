/**
 * The console in passkey mode (`reauth.method: passkey`), in headless Chromium against a real broker
 * and the real dev IdP: bob logs in with the authorization-code flow, and his approval of alice's
 * request needs a user-verified passkey assertion made for exactly that approval, on the broker's
 * own ceremony page (a CDP virtual authenticator presses its button, as a person would). It is
 * audited naming bob's passkey, like the CLI's. A confirmation made for another operation (denying
 * the same request) approves nothing, and is refused by the broker's binding rule even if the
 * console itself were to pair the two.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleState } from '../../src/broker/console/state.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { type BrowserHandle, openBrowser } from '../helpers/browser.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { consoleLogin, seriousViolations } from '../helpers/console.js';
import { passkeyModePolicy, passkeyPeople } from '../helpers/passkey.js';

const run = requireComponents(CHROMIUM);
const WAIT = { timeout: 15_000 };

describe.runIf(run)('console in passkey mode (real broker, dev IdP, Chromium virtual authenticators)', () => {
  let t: TestBroker;
  let browser: BrowserHandle;
  let people: ReturnType<typeof passkeyPeople>;
  let bob: Page;
  let requestId: string;

  beforeAll(async () => {
    t = await startTestBroker({
      policyYaml: (issuer) => passkeyModePolicy(devPolicyYaml(issuer, 'http://127.0.0.1:9')),
    });
    browser = await openBrowser();
    people = passkeyPeople(t, browser);
    for (const user of ['alice', 'bob']) await people.enrol(user);
    const asked = await people.withPasskey<{ session: { id: string; state: string } }>(
      'alice',
      'POST',
      '/v1/sessions',
      await people.login('alice'),
      {
        tenant: 'acme',
        environment: 'prod',
        scope: 'write',
        ticket: 'SUP-31',
        reason: 'Customer cannot see their invoices',
        ttl: 1800,
      },
    );
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    requestId = asked.body.session.id;
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** Submits the request page's decision form; resolves on the page that answers it. */
  async function decide(decision: 'approve' | 'deny', comment: string) {
    await bob.goto(`${t.broker.url}/console/requests/${requestId}`, WAIT);
    await bob.fill('#comment', comment, WAIT);
    await bob.click(`button[value="${decision}"]`, WAIT);
    await bob.waitForURL('**/decide', WAIT);
  }

  /** POSTs the passkey page's Continue for `ceremony` from bob's console page (as a forged or replayed form would). */
  async function continueWith(ceremony: string) {
    return bob.evaluate(async (id) => {
      const csrf = (document.querySelector('input[name="csrf"]') as HTMLInputElement).value;
      const response = await fetch('/console/step-up', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf, ceremony: id }).toString(),
      });
      return { status: response.status, text: await response.text() };
    }, ceremony);
  }

  /** The passkey page's link and code, and the ceremony its Continue names. */
  async function shownCeremony() {
    return {
      url: (await bob.locator('a[target="_blank"]').getAttribute('href', WAIT)) ?? '',
      code: ((await bob.locator('.code').textContent(WAIT)) ?? '').trim(),
      id: (await bob.locator('input[name="ceremony"]').getAttribute('value', WAIT)) ?? '',
    };
  }

  async function lastEvent(type: string) {
    return (await t.store.readAudit({ type })).at(-1);
  }

  it('bob logs into the console with the authorization-code flow; the broker is localhost (a WebAuthn relying party)', async () => {
    expect(new URL(t.broker.url).hostname).toBe('localhost');
    bob = await consoleLogin(browser.context, `${t.broker.url}/console/requests`, 'bob');
    const card = bob.locator('.card', { hasText: 'alice@example.test' });
    await expect.poll(() => card.count()).toBe(1);
  });

  it('a passkey confirmation made to deny the request does not approve it', async () => {
    await decide('deny', 'Not during the freeze');
    expect(await bob.locator('h1').textContent()).toBe('Confirm with your passkey');
    const toDeny = await shownCeremony();
    // Bob changes his mind and approves instead: a ceremony of its own.
    await decide('approve', 'Looks fine');
    const toApprove = await shownCeremony();
    expect(toApprove.id).not.toBe(toDeny.id);
    expect(toApprove.code).not.toBe(toDeny.code);
    // He confirms the wrong one (its page says what it is for), then continues the approval.
    const confirmed = await (await people.tab('bob')).complete(toDeny.url);
    expect(confirmed.state).toBe('done');
    expect(confirmed.what).toMatch(/^Deny /);
    await bob.bringToFront();
    await bob.click('form[action="/console/step-up"] button', WAIT);
    await bob.locator('[role="alert"]').waitFor(WAIT);
    expect(await bob.locator('[role="alert"]').textContent()).toContain('reauth.passkey.not_verified');
    expect(await lastEvent('stepup.refused')).toMatchObject({
      actor: { sub: 'user-bob' },
      data: { rule: 'reauth.passkey.not_verified', ceremony: toApprove.id },
    });
    expect((await t.store.getSession(requestId))?.state).toBe('pending');
  });

  it('even paired with the approval by the console, the deny’s assertion is refused: reauth.passkey.operation_mismatch', async () => {
    // The console never pairs an action with another action's ceremony (Continue names the ceremony
    // opened for its own action); this pairs them by hand to show the broker's binding holds anyway.
    const state = consoleState(t.broker.deps);
    const [sessionId, mine] = [...state.waiting].find(([, actions]) => actions.size > 0)!;
    const deny = [...mine.values()].find((action) => action.path.endsWith('/deny'))!;
    const approve = [...mine.values()].find((action) => action.path.endsWith('/approve'))!;
    state.wait(sessionId, { ...approve, ceremony: deny.ceremony! });
    await bob.goto(`${t.broker.url}/console/requests/${requestId}`, WAIT);
    const answer = await continueWith(deny.ceremony!.id);
    expect(answer.status).toBe(401);
    expect(answer.text).toContain('reauth.passkey.operation_mismatch');
    expect(await lastEvent('stepup.refused')).toMatchObject({
      data: { rule: 'reauth.passkey.operation_mismatch', ceremony: deny.ceremony!.id },
    });
    expect((await t.store.getSession(requestId))?.state).toBe('pending');
  });

  it('bob approves with a passkey assertion made for that approval; audited naming his passkey, like the CLI', async () => {
    await decide('approve', 'Looks fine');
    const ceremony = await shownCeremony();
    expect(await seriousViolations(bob)).toEqual([]);
    const confirmed = await (await people.tab('bob')).complete(ceremony.url);
    expect(confirmed).toMatchObject({ state: 'done', code: ceremony.code });
    expect(confirmed.what).toContain('Approve alice@example.test → acme/prod WRITE, ticket SUP-31');
    await bob.bringToFront();
    await bob.click('form[action="/console/step-up"] button', WAIT);
    await bob.locator('[role="status"]').waitFor(WAIT);
    expect(await bob.locator('[role="status"]').textContent()).toBe('Approved: the session has started.');
    expect((await t.store.getSession(requestId))?.state).toBe('active');

    const passkeys = await t.call<{ passkeys: { id: string }[] }>(
      'GET',
      '/v1/passkeys',
      await people.login('bob'),
    );
    const credential = passkeys.body.passkeys[0]!.id;
    expect(await lastEvent('session.approved')).toMatchObject({
      session: requestId,
      actor: { sub: 'user-bob', email: 'bob@example.test' },
      data: { comment: 'Looks fine', reauth: { method: 'passkey', credential } },
    });
    expect(await lastEvent('stepup.passkey')).toMatchObject({
      data: { credential, user_verified: true, operation: { op: 'session.approve' } },
    });
    // Continuing again finds nothing: the action and its ceremony were used once.
    const again = await continueWith(ceremony.id);
    expect(again.status).toBe(409);
    expect(again.text).toContain('Nothing to continue');
  });
});
