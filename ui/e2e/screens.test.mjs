// A screenshot of every screen, with accounts of two providers, a configured policy and some
// traffic (including a failure), saved to $SCREENSHOT_DIR as test artifacts.

import assert from 'node:assert/strict';
import { e2e, saveScreenshot, show, until } from './browser.mjs';
import { account, addClientKey, api, ask, askOpenAi } from './env.mjs';

e2e(
  'every screen, with accounts and traffic (screenshots)',
  {
    accounts: [
      { provider: 'anthropic', label: 'Work', secret: 'sk-ant-work' },
      { provider: 'anthropic', label: 'Home', secret: 'sk-ant-home' },
      { provider: 'openai', label: 'Team', secret: 'sk-oai-team' },
    ],
  },
  async ({ env, page }) => {
    const work = account(env, 'Work');
    const home = account(env, 'Home');
    const set = await api(env, 'PUT', '/policies/anthropic/opus', { strategy: 'priority', accounts: [home.id, work.id] });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    for (let i = 0; i < 4; i++) assert.equal((await ask(env)).status, 200);
    assert.equal((await ask(env, 'claude-opus-4-1')).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await askOpenAi(env)).status, 200);
    // A key of its own for one tool, with limits.
    const tool = await addClientKey(env, 'Claude Code', { rpm: 60, daily_usd: 5, warn_only: true });
    for (let i = 0; i < 2; i++) assert.equal((await ask(env, 'claude-sonnet-4-5', { 'x-api-key': tool.key })).status, 200);
    // No Google account: Keyway answers this one itself, as a failure.
    const failed = await fetch(`${env.url}/v1beta/models/gemini-2.5-pro:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': env.client_key, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
    });
    assert.ok(failed.status >= 400, `no account for gemini: ${failed.status}`);
    const total = 10;

    await until(async () => (await page.locator('[data-testid="log-row"]').count()) === total, `${total} rows in the live log`);
    await page.getByTestId(`account-card-${work.id}`).waitFor();
    await saveScreenshot(page, 'overview');

    await show(page, 'accounts');
    await page.getByTestId(`account-row-${work.id}`).waitFor();
    await saveScreenshot(page, 'accounts');

    await show(page, 'routing');
    await page.getByTestId('policy-configured-anthropic/opus').waitFor();
    await saveScreenshot(page, 'routing');

    await show(page, 'connect');
    await page.getByTestId('connect-claude-code').waitFor();
    await saveScreenshot(page, 'connect');

    await show(page, 'keys');
    await page.locator(`[data-testid="key-day-${tool.id}"]`, { hasText: '$' }).waitFor();
    assert.equal((await page.getByTestId(`key-limits-${tool.id}`).textContent()).trim(), '60 rpm · $5.00/day (warn only)');
    await saveScreenshot(page, 'keys');

    // The usage history is written as requests finish; wait until it has them all.
    await until(async () => {
      const { body } = await api(env, 'GET', '/usage?days=7');
      return body.by_day.reduce((n, d) => n + d.requests, 0) === total;
    }, `${total} requests in GET /api/usage`);
    await show(page, 'usage');
    await page.locator('[data-testid="usage-total-requests"]', { hasText: String(total) }).waitFor();
    await saveScreenshot(page, 'usage');

    await show(page, 'settings');
    await page.getByTestId('settings-config-path').waitFor();
    assert.equal(await page.getByTestId('settings-config-path').textContent(), env.config);
    // The test instance keeps its secrets in the session's (throwaway) OS keyring.
    await page.getByTestId('settings-secrets').waitFor();
    assert.equal(await page.getByTestId('settings-secrets').getAttribute('data-kind'), 'os');
    assert.match(await page.getByTestId('settings-secrets').textContent(), /In the OS keyring \(Secret Service\)/);
    await saveScreenshot(page, 'settings');
  },
);
