// The Accounts screen: adding an API key, a subscription login through the browser, and
// disabling an account, each checked where it matters: requests through the proxy.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { e2e, show, until } from './browser.mjs';
import { account, api, ask } from './env.mjs';

/** The account labelled `label`, once `GET /api/accounts` lists it. */
async function listed(env, label) {
  return until(async () => (await api(env, 'GET', '/accounts')).body.find((a) => a.label === label), `account ${label} in GET /api/accounts`);
}

/** The Keyway that answered `n` requests in a row: their `served by …` texts. */
async function servedBy(env, n) {
  const texts = [];
  for (let i = 0; i < n; i++) {
    const r = await ask(env);
    assert.equal(r.status, 200, r.text);
    texts.push(r.text);
  }
  return texts;
}

e2e('an API key added on the Accounts screen serves requests', { keys: ['anthropic:sk-ant-e2e-work'] }, async ({ env, page }) => {
  await show(page, 'accounts');
  await page.getByTestId('add-key-provider').selectOption('anthropic');
  await page.getByTestId('add-key-label').fill('Work');
  await page.getByTestId('add-key-secret').fill('sk-ant-e2e-work');
  await page.getByTestId('add-key-submit').click();
  await page.getByTestId('add-key-success').waitFor();

  const added = await listed(env, 'Work');
  assert.equal(added.provider, 'anthropic');
  assert.equal(added.kind, 'api_key');
  const group = page.getByTestId('provider-anthropic');
  await group.getByTestId(`account-row-${added.id}`).waitFor();
  assert.equal(await page.getByTestId(`account-label-${added.id}`).textContent(), 'Work');
  await page.locator(`[data-testid="account-state-${added.id}"][data-state="serving"]`).waitFor();

  const r = await ask(env);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, 'served by sk-ant-e2e-work');
  assert.equal(r.account, added.id);
  assert.ok(!readFileSync(env.config, 'utf8').includes('sk-ant-e2e-work'), 'the secret is in the keyring, not the config file');
});

e2e('a Claude subscription login from the Accounts screen, terms confirmed', { loginAs: 'maxine' }, async ({ env, page, context }) => {
  await show(page, 'accounts');
  await page.getByTestId('login-provider').selectOption('anthropic');
  await page.getByTestId('login-label').fill('Claude Max');
  await page.getByTestId('login-terms').waitFor();
  const { body: providers } = await api(env, 'GET', '/providers');
  const anthropic = providers.find((p) => p.id === 'anthropic');
  assert.equal(anthropic.terms_accepted, false);
  assert.ok((await page.getByTestId('login-terms').textContent()).includes(anthropic.terms), 'the terms statement is shown');
  assert.ok(await page.getByTestId('login-start').isDisabled(), 'no login before the terms are confirmed');
  await page.getByTestId('login-accept').check();
  await page.getByTestId('login-start').click();

  const link = page.getByTestId('login-url');
  await link.waitFor();
  const url = await link.getAttribute('href');
  assert.ok(url.startsWith(`${env.fake}/oauth/authorize?`), `the configured authorize page: ${url}`);
  assert.equal(new URL(url).searchParams.get('redirect_uri'), env.redirect_uri_anthropic, "Keyway's loopback callback");

  // The user's browser: the fake authorize page redirects to Keyway's callback.
  const [popup] = await Promise.all([context.waitForEvent('page'), page.getByTestId('login-open-browser').click()]);
  await popup.locator('body', { hasText: 'login complete' }).waitFor();
  await popup.close();

  await page.getByTestId('login-success').waitFor();
  const added = await listed(env, 'Claude Max');
  assert.equal(added.kind, 'oauth');
  assert.equal(added.provider, 'anthropic');
  await page.getByTestId(`account-row-${added.id}`).waitFor();
  await page.locator(`[data-testid="account-state-${added.id}"][data-state="serving"]`).waitFor();
  assert.equal(await page.getByTestId(`account-label-${added.id}`).textContent(), 'Claude Max');
  const after = (await api(env, 'GET', '/providers')).body.find((p) => p.id === 'anthropic');
  assert.equal(after.terms_accepted, true, 'the confirmation is recorded');

  const r = await ask(env);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.account, added.id, 'the login serves requests');
});

e2e(
  'disabling an account on the Accounts screen moves traffic to the other',
  {
    accounts: [
      { provider: 'anthropic', label: 'Work', secret: 'sk-ant-work' },
      { provider: 'anthropic', label: 'Home', secret: 'sk-ant-home' },
    ],
  },
  async ({ env, page }) => {
    const work = account(env, 'Work');
    assert.deepEqual(new Set(await servedBy(env, 2)), new Set(['served by sk-ant-work', 'served by sk-ant-home']), 'both serve at first');

    await show(page, 'accounts');
    const toggle = page.getByTestId(`account-enabled-${work.id}`);
    assert.ok(await toggle.isChecked());
    await toggle.uncheck();
    await page.locator(`[data-testid="account-state-${work.id}"][data-state="disabled"]`).waitFor();
    await until(async () => (await api(env, 'GET', '/accounts')).body.find((a) => a.id === work.id).enabled === false, 'Work disabled in the API');
    assert.ok(!(await toggle.isChecked()));
    assert.deepEqual(await servedBy(env, 4), Array(4).fill('served by sk-ant-home'), 'only Home serves');

    await toggle.check();
    await page.locator(`[data-testid="account-state-${work.id}"][data-state="serving"]`).waitFor();
    assert.deepEqual(new Set(await servedBy(env, 2)), new Set(['served by sk-ant-work', 'served by sk-ant-home']), 'both serve again');
  },
);
