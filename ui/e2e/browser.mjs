// Chromium through playwright-core, and the dashboard opened on an environment of env.mjs.
//
// $CHROMIUM_BIN overrides the browser (default /usr/bin/chromium, Debian's package);
// `--no-sandbox` because CI runs the tests as root. Screenshots go to $SCREENSHOT_DIR
// (default <repo>/target/ui-screenshots); a failing test leaves `failed-<name>.png` there.

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { chromium } from 'playwright-core';
import { REPO, checkDashboardBuilt, startEnv } from './env.mjs';

/** Longest wait for anything the page or Keyway should do. */
export const WAIT_MS = 10_000;

export const SCREENSHOT_DIR = resolve(process.env.SCREENSHOT_DIR ?? join(REPO, 'target/ui-screenshots'));

let browser = null;

/** One browser per test file (each test gets its own context). */
async function sharedBrowser() {
  browser ??= await chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  return browser;
}

/**
 * A test with its own environment (`envOptions` as for startEnv) and a page showing the
 * dashboard's overview, live updates connected. `body({env, page, context})`. Page errors
 * (uncaught exceptions) fail the test; on failure the page is saved as a screenshot.
 */
export function e2e(name, envOptions, body) {
  test(name, async () => {
    checkDashboardBuilt();
    const env = await startEnv(envOptions);
    const context = await (await sharedBrowser()).newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(WAIT_MS);
    const pageErrors = [];
    context.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(e)));
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e));
    let failed = null;
    try {
      await page.goto(env.dashboard);
      await page.getByTestId('screen-overview').waitFor();
      await page.locator('[data-testid="stream-state"][data-state="live"]').waitFor();
      await body({ env, page, context });
      if (pageErrors.length) throw new Error(`the page threw: ${pageErrors.map((e) => e.stack ?? e).join('\n')}`);
    } catch (err) {
      failed = err;
      await saveScreenshot(page, `failed-${name}`).catch(() => {});
    } finally {
      await context.close().catch(() => {});
      const stopped = env.close();
      // A failure's message matters more than a failed stop; the stop's own failure shows
      // when the test passed otherwise.
      if (failed) await stopped.catch(() => {});
      else await stopped;
    }
    if (failed) throw failed;
  });
}

/** Goes to a screen through the navigation and waits until it shows. */
export async function show(page, screen) {
  await page.getByTestId(`nav-${screen}`).click();
  await page.getByTestId(`screen-${screen}`).waitFor();
}

/** Saves the whole page as `<name>.png` in SCREENSHOT_DIR; returns the path. */
export async function saveScreenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Polls `probe` (an async function) until it returns a truthy value, which is returned. For
 * conditions outside the page (API answers, files); the page is waited on with locators.
 */
export async function until(probe, what, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Closes the shared browser after the file's tests.
after(async () => {
  await browser?.close();
  browser = null;
});
