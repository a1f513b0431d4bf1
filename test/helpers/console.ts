/**
 * Drives the web console in headless Chromium: logs a dev user in through the real authorization-code
 * flow (the dev IdP's login form), runs axe-core on a page (evaluated through the DevTools protocol,
 * so the page's CSP stays on), and saves desktop and phone screenshots to a temporary directory.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';

/** Where screenshots go (never committed): $IMP_SCREENSHOTS or <tmp>/imp-console-screenshots. */
export const SCREENSHOT_DIR = process.env.IMP_SCREENSHOTS ?? join(tmpdir(), 'imp-console-screenshots');

/** Opens `url` (a console page) and logs `user` in at the IdP if asked; resolves on a console page. */
export async function consoleLogin(context: BrowserContext, url: string, user: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  const form = page.locator('input[name="password"]');
  await form.or(page.locator('header.top')).first().waitFor();
  if (await form.count()) {
    await page.fill('input[name="login"]', user);
    await page.fill('input[name="password"]', user);
    await page.locator('form button[type="submit"]').first().click();
  }
  await page.waitForURL(
    (u) =>
      u.pathname.startsWith('/console/') &&
      !u.pathname.startsWith('/console/callback') &&
      !u.pathname.startsWith('/console/login'),
  );
  await page.locator('.who').waitFor();
  return page;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's serious and critical violations on the page, as "rule: target" lines. */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run(): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }>;
        };
      }
    ).axe;
    const result = await axe.run();
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  return found;
}

/** Saves `<name>-desktop.png` (1280 wide) and `<name>-phone.png` (375 wide); returns the paths. */
export async function screenshots(page: Page, name: string): Promise<string[]> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const paths: string[] = [];
  for (const [label, width, height] of [
    ['desktop', 1280, 800],
    ['phone', 375, 740],
  ] as const) {
    await page.setViewportSize({ width, height });
    const path = join(SCREENSHOT_DIR, `${name}-${label}.png`);
    await page.screenshot({ path, fullPage: true });
    paths.push(path);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  return paths;
}

/** True when the page is wider than its viewport (a phone would scroll sideways). */
export async function overflowsHorizontally(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
}
