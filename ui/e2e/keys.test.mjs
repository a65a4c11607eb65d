// What each tool spends: client keys added, limited and revoked on the Keys screen (checked
// with requests through the proxy), their spend on the Usage screen, a key made for a tool on
// the Connect screen, and the banner when a key crosses its budget.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { e2e, saveScreenshot, show, until } from './browser.mjs';
import { addClientKey, api, ask } from './env.mjs';

const WORK = { provider: 'anthropic', label: 'Work', secret: 'sk-ant-work' };
const KEY_SHAPE = /kw-[0-9a-f]{48}/;

/** The key labelled `label` in `GET /api/client-keys`, once it is there. */
async function listedKey(env, label) {
  return until(async () => (await api(env, 'GET', '/client-keys')).body.find((k) => k.label === label), `key ${label} in GET /api/client-keys`);
}

e2e('a key added on the Keys screen is shown once, serves, takes limits and is revoked', { accounts: [WORK] }, async ({ env, page }) => {
  await show(page, 'keys');
  await page.getByTestId('key-row-default').waitFor();
  assert.equal(await page.getByTestId('key-revoke-default').count(), 0, 'the default key cannot be revoked');
  await page.getByTestId('key-rotate-default').waitFor();

  await page.getByTestId('keys-add-label').fill('Aider');
  await page.getByTestId('keys-add-submit').click();
  const secretShown = page.getByTestId('new-key-secret');
  await secretShown.waitFor();
  const secret = (await secretShown.textContent()).trim();
  assert.match(secret, new RegExp(`^${KEY_SHAPE.source}$`));
  assert.notEqual(secret, env.client_key);
  assert.match(await page.getByTestId('new-key-dialog').textContent(), /Copy it now: it will not be shown again/);
  await page.getByTestId('new-key-copy').waitFor();
  await saveScreenshot(page, 'keys-new-key');

  const added = await listedKey(env, 'Aider');
  const served = await ask(env, 'claude-sonnet-4-5', { 'x-api-key': secret });
  assert.equal(served.status, 200, served.text);

  await page.getByTestId('new-key-done').click();
  await secretShown.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate((s) => document.documentElement.outerHTML.includes(s), secret), false, 'the secret left the page');

  const row = page.getByTestId(`key-row-${added.id}`);
  await row.waitFor();
  assert.equal(await page.getByTestId(`key-label-${added.id}`).textContent(), 'Aider');
  assert.equal(await page.getByTestId(`key-id-${added.id}`).textContent(), added.id);
  assert.equal((await page.getByTestId(`key-limits-${added.id}`).textContent()).trim(), 'none');
  // The request made with it shows as its last use (the screen refreshes the list by itself).
  await page.locator(`[data-testid="key-last-used-${added.id}"]`, { hasText: 'ago' }).waitFor();

  // Limits: a value Keyway would refuse is stopped at the field; then rpm 2.
  await page.getByTestId(`key-limits-edit-${added.id}`).click();
  const rpm = page.getByTestId(`limits-rpm-${added.id}`);
  await rpm.fill('0');
  await page.getByTestId(`limits-rpm-${added.id}-problem`).waitFor();
  assert.equal(await rpm.getAttribute('aria-invalid'), 'true');
  assert.ok(await page.getByTestId(`limits-save-${added.id}`).isDisabled(), 'no save with a problem');
  await saveScreenshot(page, 'keys-limits');
  await rpm.fill('2');
  await page.getByTestId(`limits-rpm-${added.id}-problem`).waitFor({ state: 'detached' });
  await page.getByTestId(`limits-save-${added.id}`).click();
  await page.locator(`[data-testid="key-limits-${added.id}"]`, { hasText: '2 rpm' }).waitFor();
  assert.equal((await page.getByTestId(`key-limits-${added.id}`).textContent()).trim(), '2 rpm');
  assert.equal(await page.getByTestId(`limits-form-${added.id}`).count(), 0, 'the form closed');
  assert.deepEqual((await api(env, 'GET', '/client-keys')).body.find((k) => k.id === added.id).limits, { rpm: 2 });

  // The limit applies: five quick requests span at most two minute windows of 2 each.
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await ask(env, 'claude-sonnet-4-5', { 'x-api-key': secret })).status);
  assert.ok(statuses.includes(429), `rpm 2 refuses some of five quick requests: ${statuses}`);

  // Revoke, confirmed in a dialog that names the key.
  await page.getByTestId(`key-revoke-${added.id}`).click();
  const dialog = page.getByTestId('confirm-dialog');
  await page.waitForFunction(() => document.querySelector('[data-testid="confirm-dialog"]')?.open === true);
  const warning = await dialog.textContent();
  assert.ok(warning.includes('Revoke Aider?') && warning.includes(added.id) && warning.includes('stop working'), warning);
  await page.getByTestId('confirm-ok').click();
  await row.waitFor({ state: 'detached' });
  await page.getByTestId('keys-done').waitFor();
  const refused = await ask(env, 'claude-sonnet-4-5', { 'x-api-key': secret });
  assert.equal(refused.status, 401, refused.text);
  assert.ok(!(await api(env, 'GET', '/client-keys')).body.some((k) => k.id === added.id), 'gone from the API');
  // The default key still serves.
  assert.equal((await ask(env)).status, 200);
});

e2e('the Usage screen shows what each key spent, and no price for a model without one', { accounts: [WORK] }, async ({ env, page }) => {
  const cc = await addClientKey(env, 'Claude Code');
  const codex = await addClientKey(env, 'Codex CLI');
  for (let i = 0; i < 3; i++) assert.equal((await ask(env, 'claude-sonnet-4-5', { 'x-api-key': cc.key })).status, 200);
  assert.equal((await ask(env, 'claude-sonnet-4-5', { 'x-api-key': codex.key })).status, 200);
  const unpriced = await ask(env, 'claude-experimental-9');
  assert.equal(unpriced.status, 200, unpriced.text);

  await until(async () => {
    const { body } = await api(env, 'GET', '/usage?days=7');
    return body.by_key.reduce((n, k) => n + k.requests, 0) === 5;
  }, '5 requests in GET /api/usage');

  await show(page, 'usage');
  const table = page.getByTestId('usage-by-key');
  await table.waitFor();
  for (const [k, label, requests] of [
    [cc, 'Claude Code', '3'],
    [codex, 'Codex CLI', '1'],
  ]) {
    const row = table.locator(`[data-testid="usage-key-row"][data-key="${k.id}"]`);
    await row.waitFor();
    assert.equal((await row.locator('td').first().textContent()).trim(), label);
    assert.equal((await row.getByTestId('usage-key-requests').textContent()).trim(), requests);
    const cost = (await row.getByTestId('usage-key-cost').textContent()).trim();
    assert.match(cost, /^\$\d+\.\d+$/, `${label} has a cost: ${cost}`);
  }
  const defaultRow = table.locator('[data-testid="usage-key-row"][data-key="default"]');
  assert.equal((await defaultRow.getByTestId('usage-key-cost').textContent()).trim(), 'no price', 'the default key only asked the unpriced model');

  const models = page.getByTestId('usage-by-model');
  const experimental = models.locator('[data-testid="usage-model-row"][data-key="claude-experimental-9"]');
  assert.equal((await experimental.getByTestId('usage-model-cost').textContent()).trim(), 'no price');
  const sonnet = models.locator('[data-testid="usage-model-row"][data-key="claude-sonnet-4-5"]');
  assert.match((await sonnet.getByTestId('usage-model-cost').textContent()).trim(), /^\$\d+\.\d+$/);

  // The total leaves the unpriced request out, and says so.
  assert.match((await page.getByTestId('usage-total-cost').textContent()).trim(), /^\$\d+\.\d+\+$/);
  assert.match(await page.getByTestId('usage-total-unpriced').textContent(), /^1 request for models without a price is not counted$/);
  assert.match((await page.getByTestId('usage-total-saved').textContent()).trim(), /^\$\d/);
});

e2e('a key made for Claude Code on the Connect screen goes into its snippets and its file', { accounts: [WORK] }, async ({ env, page }) => {
  await show(page, 'connect');
  const chooser = page.getByTestId('connect-key-claude-code');
  await chooser.waitFor();
  assert.equal(await chooser.inputValue(), '', 'the default key at first');
  assert.deepEqual(
    (await api(env, 'GET', '/client-keys')).body.map((k) => k.id),
    ['default'],
    'opening the screen makes no key',
  );

  await chooser.selectOption({ label: 'New key for Claude Code' });
  const made = await listedKey(env, 'Claude Code');
  await page.waitForFunction((id) => document.querySelector('[data-testid="connect-key-claude-code"]')?.value === id, made.id);

  await page.getByTestId('connect-reveal').check();
  const snippet = page.getByTestId('connect-snippet-claude-code-0');
  await page.waitForFunction(
    (defaultKey) => {
      const text = document.querySelector('[data-testid="connect-snippet-claude-code-0"] pre')?.textContent ?? '';
      return /kw-[0-9a-f]{48}/.test(text) && !text.includes(defaultKey);
    },
    env.client_key,
  );
  const key = (await snippet.textContent()).match(KEY_SHAPE)[0];
  assert.notEqual(key, env.client_key);
  // The other tools keep the default key.
  assert.ok((await page.getByTestId('connect-snippet-gemini-cli-0').textContent()).includes(env.client_key));

  // The key in the snippet is the new key: its requests are counted as Claude Code's.
  assert.equal((await ask(env, 'claude-sonnet-4-5', { 'x-api-key': key })).status, 200);
  const records = await until(async () => {
    const { body } = await api(env, 'GET', '/requests');
    return body.length === 1 && body;
  }, 'the request in GET /api/requests');
  assert.equal(records[0].client_key, made.id);
  assert.equal(records[0].client_key_label, 'Claude Code');

  // Connecting writes that key into the tool's settings.
  await page.getByTestId('connect-button-claude-code').click();
  await page.getByTestId('connect-preview-claude-code').waitFor();
  assert.ok((await page.getByTestId('connect-diff-claude-code').textContent()).includes(key), 'the preview shows the new key');
  await page.getByTestId('connect-confirm-claude-code').click();
  await page.locator('[data-testid="connect-claude-code"][data-connected="true"]').waitFor();
  const written = JSON.parse(readFileSync(join(env.home, '.claude', 'settings.json'), 'utf8'));
  assert.equal(written.env.ANTHROPIC_AUTH_TOKEN, key);
});

e2e('a key over its daily budget raises a banner that stays dismissed in the tab', { accounts: [WORK] }, async ({ env, page }) => {
  const tight = await addClientKey(env, 'Tight', { daily_usd: 0.001 });
  await page.evaluate(() => (window.__e2eSamePage = true));
  assert.equal(await page.getByTestId('budget-banner').count(), 0);

  // About 500 input tokens at $3 per million: more than a tenth of a cent.
  const r = await ask(env, 'claude-sonnet-4-5', { 'x-api-key': tight.key }, 'Summarise the repository. '.repeat(80));
  assert.equal(r.status, 200, r.text);

  const banner = page.locator(`[data-testid="budget-banner"][data-key="${tight.id}"]`);
  await banner.waitFor();
  assert.equal(await page.evaluate(() => window.__e2eSamePage), true, 'the page was not reloaded');
  assert.match(
    (await banner.getByTestId('budget-banner-text').textContent()).trim(),
    /^Tight spent \$0\.\d+ of its \$0\.001 daily budget; its requests are refused until local midnight\.$/,
  );
  assert.equal(await banner.getAttribute('data-period'), 'daily');
  await saveScreenshot(page, 'budget-banner');
  const refused = await ask(env, 'claude-sonnet-4-5', { 'x-api-key': tight.key });
  assert.equal(refused.status, 429, 'the budget refuses the next request');

  await banner.getByTestId('budget-banner-dismiss').click();
  await banner.waitFor({ state: 'detached' });

  // Still over budget (the Keys screen says so), and the banner stays away on every screen.
  await show(page, 'keys');
  await page.getByTestId(`key-over-budget-${tight.id}`).waitFor();
  assert.equal(await page.getByTestId('budget-banner').count(), 0);
  for (const screen of ['usage', 'connect', 'overview']) {
    await show(page, screen);
    assert.equal(await page.getByTestId('budget-banner').count(), 0, `no banner on ${screen}`);
  }

  // Reloaded in the same tab: the key list says it is over budget, the dismissal holds.
  await page.reload();
  await show(page, 'keys');
  await page.getByTestId(`key-over-budget-${tight.id}`).waitFor();
  assert.equal(await page.getByTestId('budget-banner').count(), 0);
});
