/**
 * The web console end to end: `imp dev` (real broker, real dev IdP), the real CLI, headless Chromium
 * with the console's CSP on. One stack and one browser for the file; each person has their own
 * browser context (cookies). Screenshots go to a temporary directory (test/helpers/console.ts).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REVIEW_CHARTS } from '../../src/broker/console/review-page.js';
import { type BrowserHandle, openBrowser } from '../helpers/browser.js';
import { ImpProcess, makeUserEnv, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, POPPLER, requireComponents } from '../helpers/components.js';
import { consoleLogin, overflowsHorizontally, screenshots, seriousViolations } from '../helpers/console.js';
import { cliLogin } from '../helpers/login.js';

const run = requireComponents(CHROMIUM);
const pdf = run && requireComponents(POPPLER);
const exec = promisify(execFile);
/** Runs a poppler tool; its stdout. */
async function runTool(command: string, args: string[]): Promise<string> {
  return (await exec(command, args, { timeout: 20_000, maxBuffer: 16 * 1024 * 1024 })).stdout;
}
const HOSTILE_REASON =
  'Fix the invoice <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned=2">';

describe.skipIf(!run)('web console (imp dev, real IdP, headless Chromium)', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  let browser: BrowserHandle;
  let bobContext: BrowserContext;
  let bob: Page;
  let start: ImpProcess;
  let requestId: string;
  const alice = makeUserEnv();

  beforeAll(async () => {
    [dev, browser] = await Promise.all([startDev(), openBrowser()]);
    Object.assign(alice.env, { IMP_BROKER_URL: dev.info.broker });
    await cliLogin(alice.env, dev.info.broker, 'alice', browser);
    start = new ImpProcess(
      [
        'start',
        '--tenant',
        'acme',
        '--env',
        'prod',
        '--write',
        '--confirm',
        'acme',
        '--ticket',
        'SUP-77',
      ].concat(['--reason', HOSTILE_REASON, '--ttl', '10m', '--json', '--no-shell']),
      alice.env,
    );
    const pending = await start.jsonLine((v) => v.event === 'approval_pending');
    requestId = String((pending.request as { id: string }).id);
  });
  afterAll(async () => {
    start?.signal('SIGINT');
    await browser?.close();
    await dev?.stop();
  });

  it("bob logs in with the authorization-code flow and sees alice's pending write request, its reason inert", async () => {
    bobContext = await browser.context.browser()!.newContext();
    bob = await consoleLogin(bobContext, `${dev.info.broker}/console/requests`, 'bob');
    const cookie = (await bobContext.cookies()).find((c) => c.name === 'imp-console');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', secure: false });

    const card = bob.locator('.card', { hasText: 'alice@example.test' });
    await expect.poll(() => card.count()).toBe(1);
    await card.locator('a').click();
    await bob.waitForURL(`**/console/requests/${requestId}`);
    // The hostile reason is shown as text, and nothing in it ran.
    expect(await bob.locator('.facts .reason').textContent()).toBe(HOSTILE_REASON);
    expect(await bob.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await bob.locator('button[value="approve"]').count()).toBe(1);

    expect(await seriousViolations(bob)).toEqual([]);
    await screenshots(bob, 'request');
    await bob.setViewportSize({ width: 375, height: 740 });
    expect(await overflowsHorizontally(bob)).toBe(false);
    await bob.setViewportSize({ width: 1280, height: 800 });
  });

  it('alice is never offered her own request, and her forged approval is refused by approval.self', async () => {
    const context = await browser.context.browser()!.newContext();
    try {
      const page = await consoleLogin(context, `${dev.info.broker}/console/requests/${requestId}`, 'alice');
      expect(await page.locator('button[value="approve"]').count()).toBe(0);
      expect(await page.locator('main').textContent()).toContain('it is your own');
      // Forge the form a decider would see, with her own valid CSRF token.
      const answer = await page.evaluate(async (id) => {
        const csrf = (document.querySelector('input[name="csrf"]') as HTMLInputElement).value;
        const response = await fetch(`/console/requests/${id}/decide`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ csrf, decision: 'approve' }).toString(),
        });
        return { status: response.status, text: await response.text() };
      }, requestId);
      expect(answer.status).toBe(403);
      expect(answer.text).toContain('approval.self');
    } finally {
      await context.close();
    }
  });

  it('a cross-site form POST is refused, and one without the CSRF token too', async () => {
    await bobContext.route('http://attacker.test/**', (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<form method="post" action="${dev.info.broker}/console/requests/${requestId}/decide"><input name="decision" value="approve"><button>win</button></form>`,
      }),
    );
    const evil = await bobContext.newPage();
    await evil.goto('http://attacker.test/');
    const [response] = await Promise.all([evil.waitForNavigation(), evil.click('button')]);
    expect(response?.status()).toBe(403);
    expect(await evil.locator('main').textContent()).toMatch(/console\.(origin|session)/);
    await evil.close();

    const noToken = await bob.evaluate(async (id) => {
      const response = await fetch(`/console/requests/${id}/decide`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'decision=approve',
      });
      return { status: response.status, text: await response.text() };
    }, requestId);
    expect(noToken.status).toBe(403);
    expect(noToken.text).toContain('console.csrf');
    const status = await runImp(['status', '--json'], alice.env);
    expect(JSON.parse(status.stdout)[0]).toMatchObject({ id: requestId, state: 'pending' });
  });

  it("bob approves with a comment and alice's waiting CLI starts its session", async () => {
    await bob.goto(`${dev.info.broker}/console/requests/${requestId}`);
    await bob.fill('#comment', 'ok, go ahead');
    await Promise.all([bob.waitForNavigation(), bob.click('button[value="approve"]')]);
    expect(await bob.locator('main').textContent()).toContain('Approved: the session has started.');
    expect(await bob.locator('.state').textContent()).toBe('active');
    const started = await start.jsonLine((v) => v.event === 'session_started');
    expect(started.session).toMatchObject({ id: requestId, state: 'active', scope: 'write' });
    const status = await runImp(['status', '--json'], alice.env);
    expect(JSON.parse(status.stdout)[0]).toMatchObject({
      id: requestId,
      decided_by: { email: 'bob@example.test' },
      decision_comment: 'ok, go ahead',
    });
  });

  it("erin sees the live session with its time left, revokes it with a reason, and alice's CLI session ends", async () => {
    const context = await browser.context.browser()!.newContext();
    try {
      const erin = await consoleLogin(context, `${dev.info.broker}/console/sessions`, 'erin');
      const row = erin.locator('tr', { hasText: 'alice@example.test' });
      await expect.poll(() => row.count()).toBe(1);
      // The script counts down from the time the stream confirmed: "9 min 58 s".
      await expect.poll(() => row.locator('.time-left').textContent()).toMatch(/^\d+ min \d+ s$/);
      expect(await seriousViolations(erin)).toEqual([]);
      await screenshots(erin, 'sessions');
      await row.locator('a', { hasText: 'alice@example.test' }).click();
      await erin.waitForURL(`**/console/sessions/${requestId}`);
      expect(await erin.locator('.facts .reason').textContent()).toBe(HOSTILE_REASON);
      expect(await seriousViolations(erin)).toEqual([]);
      await screenshots(erin, 'session');
      // A second tab follows the session live: it shows the revocation without reloading.
      const watcher = await context.newPage();
      await watcher.goto(`${dev.info.broker}/console/sessions/${requestId}`);
      await expect.poll(() => watcher.locator('.facts .time-left').textContent()).toMatch(/min/);

      await erin.fill('#reason', 'Ticket closed; access no longer needed');
      await Promise.all([erin.waitForNavigation(), erin.click('button.revoke')]);
      expect(await erin.locator('.state').textContent()).toBe('revoked');
      const ended = await start.jsonLine((v) => v.event === 'session_ended', 15_000);
      expect(ended.reason).toBe('revoked');
      await expect
        .poll(() => watcher.locator('.facts .time-left').getAttribute('data-state'))
        .toBe('revoked');

      // The Audit page shows the revocation, found by type; keyboard only: type in the filter, Enter.
      await erin.goto(`${dev.info.broker}/console/audit`);
      await erin.focus('#f-type');
      await erin.keyboard.type('session.revoked');
      await Promise.all([erin.waitForNavigation(), erin.keyboard.press('Enter')]);
      const event = erin.locator('tbody tr', { hasText: 'session.revoked' });
      expect(await event.count()).toBe(1);
      expect(await event.textContent()).toContain('erin@example.test');
      expect(await seriousViolations(erin)).toEqual([]);
      await screenshots(erin, 'audit');
      await erin.setViewportSize({ width: 375, height: 740 });
      expect(await overflowsHorizontally(erin)).toBe(false);
    } finally {
      await context.close();
    }
  });
  it.skipIf(!pdf)(
    'erin prints the Access review to PDF: every chart is there, drawn, and its text readable',
    async () => {
      const context = await browser.context.browser()!.newContext();
      const dir = await mkdtemp(join(tmpdir(), 'imp-review-pdf-'));
      try {
        const erin = await consoleLogin(context, `${dev.info.broker}/console/review?since=7d`, 'erin');
        await erin.waitForURL('**/console/review?since=7d');
        // bob approved alice's request earlier in this file: his bar is on the approvals chart.
        expect(await erin.locator('#c-approvals-sd').textContent()).toContain('bob@example.test: 1 (median');
        expect(await erin.locator('figure.chart').count()).toBe(5);
        // Sessions, break-glass, approvals and write time have data here; unused roles may be "None".
        for (const id of ['c-weekly', 'c-breakglass', 'c-approvals', 'c-writetime'])
          expect(await erin.locator(`figure.chart svg[aria-labelledby^="${id}-"]`).count()).toBe(1);
        expect(await seriousViolations(erin)).toEqual([]);
        await screenshots(erin, 'review');

        await erin.emulateMedia({ media: 'print' });
        const file = join(dir, 'review.pdf');
        await erin.pdf({ path: file, format: 'A4', printBackground: true });
        const text = (await runTool('pdftotext', ['-layout', file, '-'])).replace(/\s+/g, ' ');
        for (const title of Object.values(REVIEW_CHARTS)) expect(text).toContain(title);
        expect(text).toContain('bob@example.test');
        // The print stylesheet drops the navigation and the form.
        expect(text).not.toContain('Log out');

        await runTool('pdftoppm', [
          '-png',
          '-r',
          '40',
          '-f',
          '1',
          '-l',
          '1',
          '-singlefile',
          file,
          join(dir, 'page'),
        ]);
        const png = await readFile(join(dir, 'page.png'));
        expect(png.subarray(1, 4).toString()).toBe('PNG');
        // Decoded by the browser: how much of the page is ink, and how much is chart colour (not grey).
        const blank = await context.newPage();
        const ink = await blank.evaluate(async (b64) => {
          const img = new Image();
          img.src = `data:image/png;base64,${b64}`;
          await img.decode();
          const canvas = document.createElement('canvas');
          canvas.width = img.width;
          canvas.height = img.height;
          const g = canvas.getContext('2d')!;
          g.drawImage(img, 0, 0);
          const { data } = g.getImageData(0, 0, img.width, img.height);
          let dark = 0;
          let coloured = 0;
          for (let i = 0; i < data.length; i += 4) {
            const [r, gr, b] = [data[i]!, data[i + 1]!, data[i + 2]!];
            if (r + gr + b < 600) dark++;
            if (Math.max(r, gr, b) - Math.min(r, gr, b) > 60) coloured++;
          }
          return { dark: dark / (data.length / 4), coloured: coloured / (data.length / 4) };
        }, png.toString('base64'));
        expect(ink.dark).toBeGreaterThan(0.01);
        expect(ink.coloured).toBeGreaterThan(0.001);
      } finally {
        await context.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
