// The Overview's live log: a request through the proxy appears over the event stream, with
// its account's label, without reloading the page or the log. Its sessions table: a Claude
// Code conversation appears with its client, where its id came from, its account and turns.

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

e2e(
  'a Claude Code conversation appears in the sessions table on the account that served it',
  {
    accounts: [
      { provider: 'anthropic', label: 'Work', secret: 'sk-ant-work' },
      { provider: 'anthropic', label: 'Home', secret: 'sk-ant-home' },
    ],
  },
  async ({ env, page }) => {
    await page.getByTestId('sessions-empty').waitFor();
    const session = { 'x-claude-code-session-id': 'b6a499cc-3ffa-4edd-ac69-6d58ecdea8fb', 'user-agent': 'claude-cli/2.1.332 (external, cli)' };
    const served = [];
    for (let turn = 0; turn < 3; turn++) {
      const r = await ask(env, 'claude-sonnet-4-5', session);
      assert.equal(r.status, 200, r.text);
      served.push(r.account);
    }
    assert.equal(new Set(served).size, 1, `every turn on one account: ${served}`);
    const label = env.accounts.find((a) => a.id === served[0])?.label;

    const row = page.locator(`[data-testid="session-row"][data-account="${served[0]}"]`);
    await row.waitFor();
    // The row refreshes as requests arrive; wait until it shows all three turns.
    await page.waitForFunction(
      () => document.querySelector('[data-testid="session-row"] td:nth-child(5)')?.textContent?.trim() === '3',
    );
    const cells = (await row.locator('td').allTextContents()).map((c) => c.trim());
    assert.equal(await row.getAttribute('data-source'), 'x-claude-code-session-id');
    assert.equal(cells[0], 'Claude Code 2.1.332', `the client: ${cells}`);
    assert.equal(cells[1], session['x-claude-code-session-id'], `the session: ${cells}`);
    assert.equal(cells[2], label, `the account: ${cells}`);
    assert.equal(await page.locator('[data-testid="session-row"]').count(), 1);
  },
);
