// One Keyway environment per test: `e2e-env` (tests/src/bin/e2e-env.rs) runs a fake upstream
// and `keyway --headless` with their own config, data dir, keyring service and HOME, and
// prints one JSON line describing them. Closing its stdin stops it.
//
// $E2E_ENV_BIN overrides the binary (default <repo>/target/debug/e2e-env); $KEYWAY_BIN is
// passed through to it. Both come from `cargo build -p keyway --no-default-features` and
// `cargo build -p keyway-tests --bins`; the dashboard from `npm run build` (ui/dist), which a
// debug Keyway serves from disk.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const UI = join(REPO, 'ui');

/** Longest wait for the environment to start, and to stop. */
const START_MS = 40_000;
const STOP_MS = 20_000;

/** The anthropic-version header Keyway's clients send. */
const ANTHROPIC_VERSION = '2023-06-01';

function envBin() {
  const bin = process.env.E2E_ENV_BIN ?? join(REPO, 'target/debug/e2e-env');
  if (!existsSync(bin)) {
    throw new Error(`no e2e-env binary at ${bin}: run \`cargo build -p keyway --no-default-features && cargo build -p keyway-tests --bins\``);
  }
  return bin;
}

let checked = false;

/** Fails early when ui/dist is missing; warns (once) when it is older than its sources. */
export function checkDashboardBuilt() {
  if (checked) return;
  const index = join(UI, 'dist/index.html');
  if (!existsSync(index)) throw new Error('ui/dist is not built: run `npm run build` in ui/ first');
  const built = statSync(index).mtimeMs;
  const newest = (dir) =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      return Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }, 0);
  if (newest(join(UI, 'src')) > built) {
    process.emitWarning('ui/src changed after the last `npm run build`: the tests run the old dashboard');
  }
  checked = true;
}

/**
 * Starts an environment. `accounts`: `[{provider, label, secret}]`, added with the CLI before
 * Keyway starts (the fake accepts their secrets); `keys`: `['provider:key']` more keys the fake
 * accepts (for accounts a test adds on a screen); `loginAs`: the fake OAuth account browser
 * logins log into; `config`: extra config TOML. Resolves to the JSON line's fields plus
 * `close()`.
 */
export async function startEnv({ accounts = [], keys = [], loginAs, config } = {}) {
  const args = [];
  for (const a of accounts) args.push('--account', `${a.provider}:${a.label}:${a.secret}`);
  for (const k of keys) args.push('--key', k);
  if (loginAs) args.push('--login-as', loginAs);
  if (config) args.push('--config', config);
  const child = spawn(envBin(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));

  const line = await new Promise((res, rej) => {
    let out = '';
    let settled = false;
    const timer = setTimeout(() => fail(`did not start within ${START_MS} ms`), START_MS);
    function fail(why) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      rej(new Error(`e2e-env ${why}; stderr:\n${stderr}`));
    }
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0 && !settled) {
        settled = true;
        clearTimeout(timer);
        res(out.slice(0, nl));
      }
    });
    child.once('error', (e) => fail(`could not be spawned: ${e.message}`));
    exited.then(({ code, signal }) => fail(`exited early (code ${code}, signal ${signal})`));
  });
  const env = JSON.parse(line);

  let closed = null;
  env.close = () => {
    closed ??= (async () => {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS);
      const { code, signal } = await exited;
      clearTimeout(timer);
      if (code !== 0) throw new Error(`e2e-env ended with code ${code} (signal ${signal}); stderr:\n${stderr}\nkeyway log: ${env.log}`);
    })();
    return closed;
  };
  env.stderr = () => stderr;
  return env;
}

/** A management API call; resolves to `{status, body}` (body parsed when JSON). */
export async function api(env, method, path, body) {
  const res = await fetch(`${env.url}/api${path}`, {
    method,
    headers: {
      authorization: `Bearer ${env.token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

/**
 * An Anthropic Messages request through the proxy, with any `headers` added (e.g. a session
 * header, or `x-api-key` for another client key) and `prompt` as the user's message (the fake
 * counts a token per 4 bytes of body); resolves to `{status, text, account, route}`.
 */
export async function ask(env, model = 'claude-sonnet-4-5', headers = {}, prompt = 'hi') {
  const res = await fetch(`${env.url}/v1/messages`, {
    method: 'POST',
    headers: {
      'x-api-key': env.client_key,
      'anthropic-version': ANTHROPIC_VERSION,
      'content-type': 'application/json',
      ...headers,
    },
    body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: prompt }] }),
  });
  const body = await res.json().catch(() => null);
  return {
    status: res.status,
    text: body?.content?.[0]?.text ?? JSON.stringify(body),
    account: res.headers.get('x-keyway-account'),
    route: res.headers.get('x-keyway-route'),
  };
}

/** An OpenAI chat request through the proxy; resolves to `{status, text}`. */
export async function askOpenAi(env, model = 'gpt-5') {
  const res = await fetch(`${env.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env.client_key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const body = await res.json().catch(() => null);
  return { status: res.status, text: body?.choices?.[0]?.message?.content ?? JSON.stringify(body) };
}

/** The account with `label` in `env.accounts` (added at start). */
export function account(env, label) {
  const a = env.accounts.find((x) => x.label === label);
  if (!a) throw new Error(`no account ${label} in ${JSON.stringify(env.accounts)}`);
  return a;
}

/** A client key labelled `label`, made through the API, with `limits` when given: `{id, key}`. */
export async function addClientKey(env, label, limits) {
  const made = await api(env, 'POST', '/client-keys', { label });
  if (made.status !== 201) throw new Error(`POST /api/client-keys: ${made.status} ${JSON.stringify(made.body)}`);
  if (limits) {
    const set = await api(env, 'PUT', `/client-keys/${made.body.id}/limits`, limits);
    if (set.status !== 200) throw new Error(`PUT limits: ${set.status} ${JSON.stringify(set.body)}`);
  }
  return made.body;
}
