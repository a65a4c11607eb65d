// The Connect screen against the environment's own HOME: connecting Claude Code writes
// Keyway's address and key into ~/.claude/settings.json and keeps the rest; disconnecting
// restores the file byte for byte.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { e2e, show } from './browser.mjs';

/** A user's settings, in their own formatting. */
const ORIGINAL = `{
    "model": "opus",
    "permissions": { "allow": ["Bash(ls:*)"], "deny": [] },
    "env": { "DISABLE_TELEMETRY": "1" },
    "statusLine": { "type": "command", "command": "~/bin/status" }
}
`;

e2e('Connect then Disconnect Claude Code keeps the user settings', {}, async ({ env, page }) => {
  const file = join(env.home, '.claude', 'settings.json');
  mkdirSync(join(env.home, '.claude'), { recursive: true });
  writeFileSync(file, ORIGINAL);

  await show(page, 'connect');
  const card = page.getByTestId('connect-claude-code');
  await card.waitFor();
  assert.equal(await card.getAttribute('data-connected'), 'false');
  assert.equal(await page.getByTestId('connect-file-claude-code').textContent(), file);

  await page.getByTestId('connect-button-claude-code').click();
  const diff = page.getByTestId('connect-diff-claude-code');
  await diff.waitFor();
  const shown = await diff.textContent();
  assert.ok(shown.includes('ANTHROPIC_BASE_URL') && shown.includes(env.url), `the diff shows the new settings: ${shown}`);
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL, 'nothing is written before the confirmation');

  await page.getByTestId('connect-confirm-claude-code').click();
  await page.getByTestId('connect-result-claude-code').waitFor();
  await page.locator('[data-testid="connect-claude-code"][data-connected="true"]').waitFor();
  const written = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(written.env.ANTHROPIC_BASE_URL, env.url);
  assert.equal(written.env.ANTHROPIC_AUTH_TOKEN, env.client_key);
  assert.equal(written.env.DISABLE_TELEMETRY, '1');
  assert.equal(written.model, 'opus');
  assert.deepEqual(written.permissions, { allow: ['Bash(ls:*)'], deny: [] });
  assert.deepEqual(written.statusLine, { type: 'command', command: '~/bin/status' });

  await page.getByTestId('disconnect-button-claude-code').click();
  await page.locator('[data-testid="connect-claude-code"][data-connected="false"]').waitFor();
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL, 'the original file, byte for byte');
});
