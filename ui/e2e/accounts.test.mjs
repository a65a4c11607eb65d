// The Accounts screen: adding an API key, a subscription login through the browser, and
// disabling an account, each checked where it matters: requests through the proxy; an
// account's limits set, refused and removed, checked against the API.

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

e2e(
  "an account's limits are set, refused when out of range, and removed on the Accounts screen",
  {
    accounts: [
      { provider: 'anthropic', label: 'Work', secret: 'sk-ant-work' },
      { provider: 'anthropic', label: 'Home', secret: 'sk-ant-home' },
    ],
  },
  async ({ env, page }) => {
    const work = account(env, 'Work');
    const limitsOf = async () => (await api(env, 'GET', '/accounts')).body.find((a) => a.id === work.id).limits;
    const form = page.getByTestId(`account-limits-form-${work.id}`);
    const text = page.getByTestId(`account-limits-text-${work.id}`);
    const rpm = page.getByTestId(`account-limits-rpm-${work.id}`);
    const save = page.getByTestId(`account-limits-save-${work.id}`);

    await show(page, 'accounts');
    await page.getByTestId(`account-row-${work.id}`).waitFor();
    assert.equal(await text.count(), 0, 'no limits at first');
    await page.getByTestId(`account-limits-${work.id}`).click();
    await form.waitFor();
    await page.getByTestId(`account-limits-concurrent-${work.id}`).fill('2');
    await rpm.fill('30');
    await save.click();
    await form.waitFor({ state: 'detached' });
    assert.equal((await text.textContent()).trim(), 'at most 2 in flight · 30 rpm');
    assert.deepEqual(await limitsOf(), { max_concurrent: 2, rpm: 30 });
    const r = await ask(env);
    assert.equal(r.status, 200, r.text);

    // The form opens with the saved limits; an rpm of 0 is caught before anything is sent.
    await page.getByTestId(`account-limits-${work.id}`).click();
    await form.waitFor();
    assert.equal(await page.getByTestId(`account-limits-concurrent-${work.id}`).inputValue(), '2');
    assert.equal(await rpm.inputValue(), '30');
    await rpm.fill('0');
    const problem = page.getByTestId(`account-limits-rpm-${work.id}-problem`);
    await problem.waitFor();
    assert.match(await problem.textContent(), /Requests per minute: a whole number from 1 to 1,000,000/);
    assert.equal(await rpm.getAttribute('aria-invalid'), 'true');
    assert.ok(await save.isDisabled(), 'no saving an rpm of 0');

    // Keyway refuses it too, naming the field; its message shows in the row and the form stays
    // open. The form never sends an rpm of 0, so the request is changed on its way.
    const refused = await api(env, 'PUT', `/accounts/${work.id}/limits`, { rpm: 0 });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.match(JSON.stringify(refused.body), /rpm/);
    await rpm.fill('31');
    await page.route('**/api/accounts/*/limits', (route) => route.continue({ postData: JSON.stringify({ rpm: 0 }) }));
    await save.click();
    const error = page.getByTestId(`account-error-${work.id}`);
    await error.waitFor();
    assert.match(await error.textContent(), /rpm/);
    await page.unroute('**/api/accounts/*/limits');
    await form.waitFor();
    assert.deepEqual(await limitsOf(), { max_concurrent: 2, rpm: 30 }, 'nothing changed');
    assert.equal((await text.textContent()).trim(), 'at most 2 in flight · 30 rpm');

    // Empty fields remove every limit.
    await page.getByTestId(`account-limits-concurrent-${work.id}`).fill('');
    await rpm.fill('');
    await save.click();
    await form.waitFor({ state: 'detached' });
    await text.waitFor({ state: 'detached' });
    assert.equal(await error.count(), 0, 'the earlier error is gone');
    assert.deepEqual(await limitsOf(), {});
  },
);
