// The Overview's live log: a request through the proxy appears over the event stream, with
// its account's label, without reloading the page or the log.

import assert from 'node:assert/strict';
import { e2e } from './browser.mjs';
import { account, ask } from './env.mjs';

e2e(
  'a request through the proxy appears in the live log with its account label',
  { accounts: [{ provider: 'anthropic', label: 'Work', secret: 'sk-ant-work' }] },
  async ({ env, page }) => {
    const work = account(env, 'Work');
    // Every finished fetch of the log, including the first one made before this test's code ran.
    const logLoads = () =>
      page.evaluate(() => performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname === '/api/requests').length);
    await page.waitForFunction(() => performance.getEntriesByType('resource').some((e) => new URL(e.name).pathname === '/api/requests'));
    await page.getByTestId('log-empty').waitFor();
    await page.evaluate(() => (window.__e2eSamePage = true));
    const loadsBefore = await logLoads();

    const r = await ask(env);
    assert.equal(r.status, 200, r.text);

    const row = page.locator(`[data-testid="log-row"][data-account="${work.id}"]`);
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    assert.ok(cells.includes('Work'), `the account label: ${cells}`);
    assert.ok(cells.includes('claude-sonnet-4-5'), `the model: ${cells}`);
    assert.equal(await row.getAttribute('data-status'), '200');
    assert.equal(await page.locator('[data-testid="log-row"]').count(), 1);

    assert.equal(await page.evaluate(() => window.__e2eSamePage), true, 'the page was not reloaded');
    assert.equal(await logLoads(), loadsBefore, 'the row came over the event stream, not a new GET /api/requests');
  },
);
