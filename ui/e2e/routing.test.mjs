// The Routing screen: a policy changed and saved applies to the next requests; least busy
// takes weights; a policy the API refuses shows the API's message next to the form and changes
// nothing; a fallback chain
// edited as an ordered list; an alias added there routes the next request, and the route
// preview says where a model goes.

import assert from 'node:assert/strict';
import { e2e, show } from './browser.mjs';
import { account, api, ask } from './env.mjs';

const TWO_ACCOUNTS = {
  accounts: [
    { provider: 'anthropic', label: 'Work', secret: 'sk-ant-work' },
    { provider: 'anthropic', label: 'Home', secret: 'sk-ant-home' },
  ],
};

/** The anthropic provider policy as `GET /api/policies` shows it. */
async function anthropicPolicy(env) {
  const { status, body } = await api(env, 'GET', '/policies');
  assert.equal(status, 200);
  return body.find((p) => p.key === 'anthropic');
}

e2e('round-robin changed to priority, second account first, serves from that account', TWO_ACCOUNTS, async ({ env, page }) => {
  const work = account(env, 'Work');
  const home = account(env, 'Home');
  const before = await anthropicPolicy(env);
  assert.equal(before.strategy, 'round_robin');
  assert.deepEqual(before.members.map((m) => m.id), [work.id, home.id]);

  await show(page, 'routing');
  await page.getByTestId('policy-edit-anthropic').click();
  await page.getByTestId('policy-strategy-anthropic').selectOption('priority');
  await page.getByTestId('policy-all-anthropic').uncheck();
  await page.getByTestId(`policy-up-anthropic-${home.id}`).click();
  const order = await page.locator('[data-testid^="policy-member-anthropic-"]:not([data-testid^="policy-member-check-"])').evaluateAll((els) =>
    els.map((e) => e.dataset.testid.slice('policy-member-anthropic-'.length)),
  );
  assert.deepEqual(order, [home.id, work.id], 'Home moved first');

  await page.getByTestId('policy-preview-button-anthropic').click();
  await page.getByTestId('policy-preview-anthropic').waitFor();
  const picks = await page.getByTestId('policy-pick').allTextContents();
  assert.ok(picks.length > 0 && picks.every((p) => p.trim() === 'Home'), `preview picks Home only: ${picks}`);

  await page.getByTestId('policy-save-anthropic').click();
  await page.getByTestId('policy-saved-anthropic').waitFor();
  await page.getByTestId('policy-configured-anthropic').waitFor();
  assert.equal((await page.getByTestId('policy-current-strategy-anthropic').textContent()).trim(), 'Priority');

  const after = await anthropicPolicy(env);
  assert.equal(after.strategy, 'priority');
  assert.deepEqual(after.accounts, [home.id, work.id]);
  for (let i = 0; i < 4; i++) {
    const r = await ask(env);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'served by sk-ant-home', `request ${i + 1}`);
  }
});

e2e('least busy shows the weight inputs and is saved with its weights', TWO_ACCOUNTS, async ({ env, page }) => {
  const work = account(env, 'Work');
  const home = account(env, 'Home');

  await show(page, 'routing');
  await page.getByTestId('policy-edit-anthropic').click();
  const strategy = page.getByTestId('policy-strategy-anthropic');
  const homeWeight = page.getByTestId(`policy-weight-anthropic-${home.id}`);
  await homeWeight.waitFor({ state: 'detached' });
  await strategy.selectOption('fastest');
  await page.getByTestId('policy-member-anthropic-' + home.id).waitFor();
  assert.equal(await homeWeight.count(), 0, 'fastest takes no weights');

  await strategy.selectOption('least_busy');
  await page.getByTestId(`policy-weight-anthropic-${work.id}`).waitFor();
  await homeWeight.waitFor();
  await homeWeight.fill('3');
  await page.getByTestId('policy-save-anthropic').click();
  await page.getByTestId('policy-saved-anthropic').waitFor();
  assert.equal((await page.getByTestId('policy-current-strategy-anthropic').textContent()).trim(), 'Least busy');

  const after = await anthropicPolicy(env);
  assert.equal(after.strategy, 'least_busy');
  assert.deepEqual(after.weights, { [home.id]: 3 });
  assert.deepEqual(Object.fromEntries(after.members.map((m) => [m.id, m.weight])), { [work.id]: 1, [home.id]: 3 });
  const r = await ask(env);
  assert.equal(r.status, 200, r.text);
});

e2e('a policy the API refuses shows its message inline and changes nothing', TWO_ACCOUNTS, async ({ env, page }) => {
  const work = account(env, 'Work');
  const before = await anthropicPolicy(env);

  await show(page, 'routing');
  await page.getByTestId('policy-edit-anthropic').click();
  await page.getByTestId('policy-strategy-anthropic').selectOption('weighted_round_robin');
  const weight = page.getByTestId(`policy-weight-anthropic-${work.id}`);

  // A weight of 0 is caught before anything is sent.
  await weight.fill('0');
  await page.getByTestId('policy-problem-anthropic').waitFor();
  assert.ok(await page.getByTestId('policy-save-anthropic').isDisabled(), 'no saving a weight of 0');

  // A weight beyond what Keyway stores (u32) passes the form's check; the API refuses it.
  await weight.fill('5000000000');
  await page.getByTestId('policy-problem-anthropic').waitFor({ state: 'detached' });
  const refused = await api(env, 'PUT', '/policies/anthropic', {
    strategy: 'weighted_round_robin',
    accounts: [],
    weights: { [work.id]: 5000000000 },
  });
  assert.ok(refused.status >= 400 && refused.status < 500, `the API refuses it: ${JSON.stringify(refused)}`);
  await page.getByTestId('policy-save-anthropic').click();
  const error = page.getByTestId('policy-error-anthropic');
  await error.waitFor();
  const shown = await error.textContent();
  assert.ok(shown.includes('5000000000'), `the API's message is shown: ${shown}`);
  assert.equal(await page.getByTestId('policy-saved-anthropic').count(), 0);

  assert.deepEqual(await anthropicPolicy(env), before, 'GET /api/policies shows nothing changed');
  assert.equal((await page.getByTestId('policy-current-strategy-anthropic').textContent()).trim(), 'Round robin');
});

e2e('a fallback chain is edited as an ordered list and saved with the policy', TWO_ACCOUNTS, async ({ env, page }) => {
  await show(page, 'routing');
  await page.getByTestId('policy-edit-anthropic/sonnet').click();
  await page.getByTestId('policy-step-target-anthropic/sonnet').fill('anthropic/haiku');
  await page.getByTestId('policy-step-add-anthropic/sonnet').click();
  await page.getByTestId('policy-step-target-anthropic/sonnet').fill('anthropic/opus:claude-opus-4-1');
  await page.getByTestId('policy-step-kind-anthropic/sonnet').selectOption('context_window');
  await page.getByTestId('policy-step-add-anthropic/sonnet').click();
  // The second step first: the order is the order they are tried in.
  await page.getByRole('button', { name: 'Move anthropic/opus:claude-opus-4-1 up' }).click();
  await page.getByTestId('policy-save-anthropic/sonnet').click();
  await page.getByTestId('policy-saved-anthropic/sonnet').waitFor();

  const { body } = await api(env, 'GET', '/policies');
  const sonnet = body.find((p) => p.key === 'anthropic/sonnet');
  assert.deepEqual(sonnet.fallback, ['context_window=anthropic/opus:claude-opus-4-1', 'anthropic/haiku']);
  assert.equal(
    (await page.getByTestId('policy-fallback-anthropic/sonnet').textContent()).trim(),
    'context_window=anthropic/opus:claude-opus-4-1, then anthropic/haiku',
  );

  // A step the API refuses (its own pool) shows the API's message and changes nothing.
  await page.getByTestId('policy-edit-anthropic/sonnet').click();
  await page.getByTestId('policy-edit-anthropic/sonnet').click();
  await page.getByTestId('policy-step-target-anthropic/sonnet').fill('anthropic/sonnet');
  await page.getByTestId('policy-step-add-anthropic/sonnet').click();
  await page.getByTestId('policy-save-anthropic/sonnet').click();
  const error = await page.getByTestId('policy-error-anthropic/sonnet').textContent();
  assert.match(error, /anthropic\/sonnet/);
  const again = (await api(env, 'GET', '/policies')).body.find((p) => p.key === 'anthropic/sonnet');
  assert.deepEqual(again.fallback, sonnet.fallback);
});

e2e('an alias added on the Routing screen routes the next request, and the preview shows where', TWO_ACCOUNTS, async ({ env, page }) => {
  const before = await ask(env, 'claude-haiku-4-5');
  assert.equal(before.status, 200, before.text);
  assert.equal(before.route, 'anthropic', 'no alias yet: the request went to its own pool');

  await show(page, 'routing');
  await page.getByTestId('alias-new-glob').fill('claude-haiku-*');
  await page.getByTestId('alias-new-to').fill('anthropic/opus:claude-opus-4-1');
  await page.getByTestId('alias-add').click();
  await page.getByTestId('aliases-save').click();
  await page.getByTestId('aliases-saved').waitFor();
  assert.deepEqual((await api(env, 'GET', '/aliases')).body, [{ glob: 'claude-haiku-*', to: 'anthropic/opus:claude-opus-4-1' }]);

  const after = await ask(env, 'claude-haiku-4-5');
  assert.equal(after.status, 200, after.text);
  // The opus family has no policy of its own: the provider's pool serves it, as the header says.
  assert.equal(after.route, 'alias claude-haiku-*: anthropic:claude-opus-4-1');

  await page.getByTestId('route-model').fill('claude-haiku-4-5');
  await page.getByTestId('route-ask').click();
  await page.getByTestId('route-result').waitFor();
  assert.equal((await page.getByTestId('route-pool').textContent()).trim(), 'anthropic');
  assert.equal((await page.getByTestId('route-model-sent').textContent()).trim(), 'claude-opus-4-1');

  // A target Keyway does not know is refused, with the API's reason, and nothing changes.
  await page.getByTestId('alias-new-glob').fill('claude-opus-*');
  await page.getByTestId('alias-new-to').fill('nowhere:some-model');
  await page.getByTestId('alias-add').click();
  await page.getByTestId('aliases-save').click();
  const error = await page.getByTestId('aliases-error').textContent();
  assert.match(error, /nowhere/);
  assert.equal((await api(env, 'GET', '/aliases')).body.length, 1);
});
