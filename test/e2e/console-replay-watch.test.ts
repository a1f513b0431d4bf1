/**
 * The console's live watch and recording replay with the real parts: `imp dev` (real broker and
 * IdP), alice's real `imp start` in tmux (a prod session, recorded as policy requires), headless
 * Chromium with the console's CSP on. One stack, one browser and one session for the file: erin
 * watches it live and revokes it from the watch page, then replays its recording.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserHandle, openBrowser } from '../helpers/browser.js';
import { IMP_BIN, makeUserEnv, ROOT, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, requireComponents, TMUX } from '../helpers/components.js';
import { consoleLogin, overflowsHorizontally, screenshots, seriousViolations } from '../helpers/console.js';
import { cliLogin } from '../helpers/login.js';
import { TmuxSession } from '../helpers/tmux.js';

const run = requireComponents(CHROMIUM, TMUX);
/** Printed in the session: shown as text by the player, never parsed as HTML. */
const PRINTED_MARKUP = '<b id=injected>bold</b>';
const HOSTILE_REASON =
  'Check the invoice <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned=2">';

describe.skipIf(!run)('console watch and replay (imp dev, tmux, headless Chromium)', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  let browser: BrowserHandle;
  let term: TmuxSession;
  let id: string;
  const contexts: BrowserContext[] = [];
  const alice = makeUserEnv({ SHELL: '/bin/bash', TERM: 'xterm-256color' });

  /** A new browser context (own cookies) logged in to the console as `user`, on `path`. */
  async function as(user: string, path: string): Promise<Page> {
    const context = await browser.context.browser()!.newContext();
    contexts.push(context);
    return consoleLogin(context, `${dev.info.broker}${path}`, user);
  }

  beforeAll(async () => {
    [dev, browser] = await Promise.all([startDev(), openBrowser()]);
    alice.env.IMP_BROKER_URL = dev.info.broker;
    await cliLogin(alice.env, dev.info.broker, 'alice', browser);
    // globex/prod: no approval, recording required (the dev policy).
    term = new TmuxSession(
      `node ${IMP_BIN} start --tenant globex --env prod --ticket SUP-88 --reason '${HOSTILE_REASON}' --ttl 15m; echo "IMP-EXIT=$?"`,
      alice.env,
      { cwd: ROOT, width: 100, height: 30 },
    );
    const started = await term.waitFor(/\[imp globex\/prod RO \d+m\]/, 30_000);
    expect(started).toContain('This session is recorded (required');
    const status = await runImp(['status', '--json'], alice.env);
    id = (JSON.parse(status.stdout) as { id: string; state: string }[]).find((s) => s.state === 'active')!.id;
  }, 60_000);

  afterAll(async () => {
    term?.close();
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await dev?.stop();
  });

  it('without supervise the watch page is a refusal naming its rule, audited; the owner may not watch herself', async () => {
    const mallory = await as('mallory', `/console/sessions/${id}/watch`);
    expect(await mallory.locator('h1').textContent()).toBe('Refused');
    expect(await mallory.locator('main [role="alert"]').textContent()).toContain(
      'Denied by rule role.supervise',
    );
    expect(await mallory.locator('[data-watch]').count()).toBe(0);

    const own = await as('alice', `/console/sessions/${id}/watch`);
    expect(await own.locator('main [role="alert"]').textContent()).toContain(
      'Denied by rule supervision.self',
    );

    // Both refusals are in the log, each with its rule (erin reads it on the Audit page).
    const erin = await as('erin', '/console/audit?type=access.denied');
    const rows = erin.locator('tbody tr', { hasText: `session ${id.slice(0, 8)}` });
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.filter({ hasText: 'mallory@example.test' }).textContent()).toContain('role.supervise');
    expect(await rows.filter({ hasText: 'alice@example.test' }).textContent()).toContain('supervision.self');
  }, 60_000);

  it('erin follows the link to watch: what alice types and her proxied call appear live; she revokes from the page and the shell ends', async () => {
    const erin = await as('erin', '/console/sessions');
    const row = erin.locator('tr', { hasText: 'alice@example.test' });
    await expect.poll(() => row.count()).toBe(1);
    const [page] = await Promise.all([
      erin.waitForResponse((r) => r.url().endsWith(`/console/sessions/${id}/watch`)),
      row.locator('a.watch').click(),
    ]);
    const csp = page.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval';");
    await expect.poll(() => erin.locator('#watch-status').textContent()).toContain('Watching live.');
    expect(await erin.locator('#watch-status').textContent()).toContain('erin@example.test');
    await expect.poll(() => erin.locator('#watch-left').textContent()).toMatch(/^1[45] min \d+ s$/);
    expect(await erin.locator('.facts .reason').textContent()).toBe(HOSTILE_REASON);

    // Typed in alice's terminal; the computed output (not the typed line) shows in erin's player,
    // markup in it as text.
    term.type(`echo "live-$((6*7))-typing ${PRINTED_MARKUP}"`);
    await term.waitFor(`live-42-typing ${PRINTED_MARKUP}`);
    const terminal = erin.locator('[data-watch] .ap-term');
    await expect
      .poll(() => terminal.textContent(), { timeout: 10_000 })
      .toContain(`live-42-typing ${PRINTED_MARKUP}`);
    expect(await erin.locator('#injected').count()).toBe(0);

    term.type(`node ${IMP_BIN} api GET /v1/users`);
    await term.waitFor('"users"');
    const call = erin.locator('#watch-actions tr', { hasText: 'GET /v1/users' });
    await expect.poll(() => call.count(), { timeout: 10_000 }).toBe(1);
    expect(await call.locator('td').allTextContents()).toEqual([
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/),
      'GET /v1/users',
      '200',
      'completed',
    ]);
    expect(await erin.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await seriousViolations(erin)).toEqual([]);
    await screenshots(erin, 'watch');
    await erin.setViewportSize({ width: 375, height: 740 });
    expect(await overflowsHorizontally(erin)).toBe(false);
    await erin.setViewportSize({ width: 1280, height: 800 });

    await erin.fill('#reason', 'Seen enough; ending it from the watch');
    await Promise.all([erin.waitForNavigation(), erin.click('button.revoke')]);
    expect(await erin.locator('main').textContent()).toContain('Revoked: the session has ended.');
    const ended = await term.waitFor('IMP-EXIT=', 15_000);
    expect(ended).toContain('was revoked by erin@example.test');
    expect(ended).toContain('IMP-EXIT=6');
  }, 90_000);

  it('the recording replays in the player on the session page; only that page may compile WebAssembly, and the reason stays inert', async () => {
    const erin = await as('erin', `/console/sessions/${id}`);
    const response = await erin.reload();
    const csp = response?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval';");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toMatch(/'unsafe-eval'/);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    const sessions = await erin.request.get(`${dev.info.broker}/console/sessions`);
    expect(sessions.headers()['content-security-policy']).toContain("script-src 'self';");

    expect(await erin.locator('.facts .reason').textContent()).toBe(HOSTILE_REASON);
    // The watch is in the session's timeline: erin joined and left (she is its supervisor).
    const timeline = await erin.locator('main').textContent();
    expect(timeline).toContain('supervision.joined');
    expect(timeline).toContain('supervision.left');

    // What a person does: press play; the terminal shows what alice's session printed.
    const player = erin.locator('[data-cast]');
    await player.locator('.ap-overlay-start').click();
    await expect
      .poll(() => player.locator('.ap-term').textContent(), { timeout: 30_000 })
      .toContain(`live-42-typing ${PRINTED_MARKUP}`);
    expect(await erin.locator('#injected').count()).toBe(0);
    expect(await erin.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await seriousViolations(erin)).toEqual([]);
    await screenshots(erin, 'replay');
    await erin.setViewportSize({ width: 375, height: 740 });
    expect(await overflowsHorizontally(erin)).toBe(false);
  }, 60_000);
});
