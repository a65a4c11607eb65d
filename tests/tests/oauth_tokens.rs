//! Subscription logins (OAuth) at work, through the real binary against the fake Claude and
//! ChatGPT services: refreshing ahead of expiry and after a 401, one refresh for many
//! concurrent requests, the rotated refresh token kept in the keyring across a restart, a dead
//! refresh token taking the login out of rotation, quota windows as the provider reports them,
//! failover on an exhausted 5-hour window and back after its reset, `most_available`, and
//! quota facts surviving a restart.
//!
//! Logins are imported from credential files the fake issued (the user's path for an existing
//! Claude Code or Codex CLI login), so each test chooses its access token's lifetime: a token
//! that expires within the provider's refresh lead (Claude 5 min, ChatGPT 10 min) is refreshed
//! before it is used.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use keyway_tests::{
    Behaviour, ClaudeUsage, ClaudeWindow, CodexUsage, CodexWindow, FakeUpstream, IssuedTokens,
    Keyway, Provider, Setup, write_claude_credentials, write_codex_auth,
};
use serde_json::{Value, json};

/// Longest a bounded poll waits.
const WAIT: Duration = Duration::from_secs(15);

/// An access token far from expiry.
const LONG: Duration = Duration::from_secs(8 * 3600);

/// An access token inside both providers' refresh lead: refreshed before its first use.
const SOON: Duration = Duration::from_secs(120);

const MODEL: &str = "claude-sonnet-4-5";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Imports (CLI, `--from` a Claude Code credentials file) a login of the fake's Claude account
/// `label` whose access token lives `lifetime`. Its id and the tokens in the file.
async fn import_claude(
    setup: &Setup,
    fake: &FakeUpstream,
    label: &str,
    lifetime: Duration,
) -> (String, IssuedTokens) {
    let tokens = fake.claude_oauth().issue_tokens(label, lifetime);
    let home = tempfile::tempdir().expect("home");
    let file = write_claude_credentials(home.path(), &tokens, "max").expect("credentials");
    let out = setup
        .cli(&[
            "account",
            "import",
            "claude-code",
            "--from",
            file.to_str().expect("utf-8"),
            "--label",
            label,
            "--accept-terms-risk",
        ])
        .await;
    (out.ok().to_owned(), tokens)
}

/// Like [`import_claude`] for a ChatGPT login (Codex CLI's `auth.json`).
async fn import_chatgpt(
    setup: &Setup,
    fake: &FakeUpstream,
    label: &str,
    lifetime: Duration,
) -> (String, IssuedTokens) {
    let tokens = fake.openai_oauth().issue_tokens(label, lifetime);
    let home = tempfile::tempdir().expect("home");
    let file = write_codex_auth(home.path(), &tokens).expect("auth.json");
    let out = setup
        .cli(&[
            "account",
            "import",
            "codex-cli",
            "--from",
            file.to_str().expect("utf-8"),
            "--label",
            label,
            "--accept-terms-risk",
        ])
        .await;
    (out.ok().to_owned(), tokens)
}

/// `keyway policy set <key> --strategy <strategy> --accounts <ids>` before the start.
async fn policy(setup: &Setup, key: &str, strategy: &str, ids: &[&str]) {
    let accounts = ids.join(",");
    let mut args = vec!["policy", "set", key, "--strategy", strategy];
    if !ids.is_empty() {
        args.extend(["--accounts", accounts.as_str()]);
    }
    setup.cli(&args).await.ok();
}

/// An Anthropic request that must succeed; the account that served it.
async fn claude_ok(keyway: &Keyway) -> String {
    let r = keyway.anthropic(MODEL).await;
    let status = r.status();
    let by = r
        .headers()
        .get("x-keyway-account")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = r.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
    by.expect("x-keyway-account")
}

/// A streamed Responses request (as Codex CLI sends) that must succeed; the serving account.
async fn responses_ok(keyway: &Keyway) -> String {
    let r = keyway
        .http
        .post(keyway.url("/v1/responses"))
        .bearer_auth(&keyway.client_key)
        .json(&json!({"model": "gpt-5", "input": "hi", "stream": true}))
        .send()
        .await
        .expect("request to keyway");
    let status = r.status();
    let by = r
        .headers()
        .get("x-keyway-account")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = r.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("response.completed"), "{body}");
    by.expect("x-keyway-account")
}

/// The bearer token of a recorded request.
fn bearer(r: &keyway_tests::Recorded) -> String {
    r.header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_else(|| panic!("no bearer in {r:?}"))
        .to_owned()
}

/// Account `id` as `GET /api/accounts` shows it.
async fn account(keyway: &Keyway, id: &str) -> Value {
    let all = keyway.api_get("/accounts").await;
    all.as_array()
        .expect("account list")
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no account {id} in {all}"))
        .clone()
}

/// Polls the live state of `id` until `done` holds (bounded); returns it.
async fn poll_live(keyway: &Keyway, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let live = account(keyway, id).await["live"].clone();
        if done(&live) {
            return live;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "account {id} not {what} within {WAIT:?}: {live}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The quota window `name` of a live state.
fn window<'a>(live: &'a Value, name: &str) -> &'a Value {
    live["quota"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("no {name} window in {live}"))
}

/// Asserts a window's `used_percent` (±0.01) and `resets_at`.
fn assert_window(live: &Value, name: &str, used: f64, resets_at: u64) {
    let w = window(live, name);
    let got = w["used_percent"].as_f64().expect("used_percent");
    assert!(
        (got - used).abs() < 0.01,
        "{name} used {got}, want {used}: {w}"
    );
    assert_eq!(w["resets_at"].as_u64(), Some(resets_at), "{name}: {w}");
}

/// Claude usage with the 5-hour window at `used` (0..=1), resetting an hour from now.
fn claude_5h(used: f64) -> ClaudeUsage {
    let mut usage = ClaudeUsage::fresh();
    usage.five_hour = ClaudeWindow {
        utilization: used,
        resets_at: unix_now() + 3600,
    };
    usage
}

// ---------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_login_about_to_expire_is_refreshed_before_it_is_used() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let (claude, claude_tokens) = import_claude(&setup, &fake, "alice", SOON).await;
    let (chatgpt, chatgpt_tokens) = import_chatgpt(&setup, &fake, "bob", SOON).await;
    let keyway = setup.start().await;

    assert_eq!(claude_ok(&keyway).await, claude);
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);
    let sent = fake.requests();
    assert_eq!(sent.len(), 1, "no 401 and retry: {sent:?}");
    let renewed = bearer(&sent[0]);
    assert_ne!(
        renewed, claude_tokens.access_token,
        "the new access token, not the one about to expire"
    );
    assert_eq!(
        fake.claude_oauth().account_of(&renewed).as_deref(),
        Some("alice")
    );
    // The renewed token is far from expiry: used as it is.
    assert_eq!(claude_ok(&keyway).await, claude);
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);
    assert_eq!(bearer(&fake.requests()[1]), renewed);

    assert_eq!(responses_ok(&keyway).await, chatgpt);
    assert_eq!(fake.openai_oauth().refresh_calls(), 1);
    let sent = fake.requests();
    assert_eq!(sent.len(), 3, "no 401 and retry: {sent:?}");
    let renewed = bearer(&sent[2]);
    assert_ne!(renewed, chatgpt_tokens.access_token);
    assert_eq!(
        fake.openai_oauth().account_of(&renewed).as_deref(),
        Some("bob")
    );
    assert_eq!(responses_ok(&keyway).await, chatgpt);
    assert_eq!(fake.openai_oauth().refresh_calls(), 1);

    for id in [&claude, &chatgpt] {
        assert_eq!(account(&keyway, id).await["live"]["state"], "serving");
    }
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_token_refused_with_401_is_refreshed_and_the_request_retried() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let (claude, claude_tokens) = import_claude(&setup, &fake, "alice", LONG).await;
    let (chatgpt, chatgpt_tokens) = import_chatgpt(&setup, &fake, "bob", LONG).await;
    let keyway = setup.start().await;

    assert_eq!(claude_ok(&keyway).await, claude);
    assert_eq!(responses_ok(&keyway).await, chatgpt);
    assert_eq!(
        fake.claude_oauth().refresh_calls(),
        0,
        "nothing to renew yet"
    );
    assert_eq!(fake.openai_oauth().refresh_calls(), 0);

    // The providers kill the access tokens before their stated expiry.
    fake.claude_oauth().expire_access_tokens("alice");
    fake.openai_oauth().expire_access_tokens("bob");
    fake.clear();

    assert_eq!(claude_ok(&keyway).await, claude, "the client sees no 401");
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);
    assert_eq!(
        responses_ok(&keyway).await,
        chatgpt,
        "the client sees no 401"
    );
    assert_eq!(fake.openai_oauth().refresh_calls(), 1);

    let sent = fake.requests();
    assert_eq!(sent.len(), 4, "each: refused once, then retried: {sent:?}");
    assert_eq!(bearer(&sent[0]), claude_tokens.access_token, "refused");
    assert_ne!(bearer(&sent[1]), claude_tokens.access_token, "renewed");
    assert_eq!(sent[1].account.as_deref(), Some("alice"));
    assert_eq!(bearer(&sent[2]), chatgpt_tokens.access_token, "refused");
    assert_ne!(bearer(&sent[3]), chatgpt_tokens.access_token, "renewed");
    assert_eq!(sent[3].account.as_deref(), Some("bob"));
    for id in [&claude, &chatgpt] {
        assert_eq!(account(&keyway, id).await["live"]["state"], "serving");
    }
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn concurrent_requests_share_one_refresh() {
    const REQUESTS: usize = 64;
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let (id, tokens) = import_claude(&setup, &fake, "alice", SOON).await;
    // The token call is slow, so every request arrives while it is in flight.
    fake.claude_oauth()
        .set_token_delay(Duration::from_millis(500));
    let keyway = setup.start().await;

    let served = join_all((0..REQUESTS).map(|_| claude_ok(&keyway))).await;
    assert!(served.iter().all(|s| *s == id), "{served:?}");
    assert_eq!(
        fake.claude_oauth().refresh_calls(),
        1,
        "{REQUESTS} concurrent requests, one refresh"
    );
    let sent = fake.requests();
    assert_eq!(sent.len(), REQUESTS, "no request was refused and retried");
    let renewed = bearer(&sent[0]);
    assert_ne!(renewed, tokens.access_token);
    assert!(
        sent.iter().all(|r| bearer(r) == renewed),
        "every request used the one renewed token"
    );
    assert_eq!(account(&keyway, &id).await["live"]["state"], "serving");

    // The provider kills that token: every request is refused with 401 at once, and all of
    // them wait for one refresh again.
    fake.claude_oauth().expire_access_tokens("alice");
    fake.clear();
    let served = join_all((0..REQUESTS).map(|_| claude_ok(&keyway))).await;
    assert!(served.iter().all(|s| *s == id), "{served:?}");
    assert_eq!(
        fake.claude_oauth().refresh_calls(),
        2,
        "{REQUESTS} concurrent 401s, one refresh"
    );
    let sent = fake.requests();
    let after: Vec<String> = sent.iter().map(bearer).filter(|t| *t != renewed).collect();
    assert_eq!(after.len(), REQUESTS, "each retried once: {sent:?}");
    assert!(after.iter().all(|t| *t == after[0]), "one new token");
    assert_eq!(account(&keyway, &id).await["live"]["state"], "serving");
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn the_rotated_refresh_token_is_kept_in_the_keyring_and_used_after_a_restart() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let (id, imported) = import_claude(&setup, &fake, "alice", SOON).await;
    let keyway = setup.start().await;

    // First use renews the login: the imported refresh token is now spent.
    assert_eq!(claude_ok(&keyway).await, id);
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);
    let renewed = bearer(&fake.requests()[0]);
    assert_ne!(renewed, imported.access_token);

    let keyway = keyway.restart().await;
    // The renewed access token came back from the keyring.
    assert_eq!(claude_ok(&keyway).await, id);
    assert_eq!(bearer(&fake.requests()[1]), renewed);
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);

    // The next refresh must present the rotated refresh token: the spent one would be
    // refused as reused and the login lost.
    fake.claude_oauth().expire_access_tokens("alice");
    assert_eq!(claude_ok(&keyway).await, id);
    assert_eq!(fake.claude_oauth().refresh_calls(), 2);
    let live = account(&keyway, &id).await["live"].clone();
    assert_eq!(live["state"], "serving", "{live}");
    let last = fake.requests().last().cloned().expect("a request");
    assert_eq!(last.account.as_deref(), Some("alice"));
    assert_ne!(bearer(&last), renewed, "a third access token");
    assert_eq!(keyway.stop().await, Some(0));
}

/// An Anthropic request through Keyway on a task of its own, so the test can let its client
/// go away (abort the task) whenever it likes.
fn claude_in_background(keyway: &Keyway) -> tokio::task::JoinHandle<()> {
    let request = keyway
        .post(
            "/v1/messages",
            &json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .send();
    tokio::spawn(async move {
        let _ = request.await;
    })
}

/// Waits (bounded) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The refresh token in the keyring entry of login `id`.
async fn stored_refresh_token(setup: &Setup, id: &str) -> String {
    let stored = setup
        .keyring_entry(&format!("account:{id}"))
        .await
        .expect("the login's keyring entry");
    let stored: Value = serde_json::from_str(&stored).expect("token JSON");
    stored["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

/// The client whose request started a refresh goes away while the token call is still in
/// flight: the refresh goes on, the rotated refresh token reaches the keyring, and only then
/// is the new access token sent. A Keyway killed at that moment finds the rotated token in
/// the keyring when it starts again, and renews the login with it.
#[tokio::test]
async fn a_refresh_outlives_the_client_that_started_it_and_is_stored_before_use() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let (id, imported) = import_claude(&setup, &fake, "alice", SOON).await;
    fake.claude_oauth()
        .set_token_delay(Duration::from_millis(500));
    let keyway = setup.start().await;

    // The first request starts the refresh; its client leaves while the token call waits.
    let client = claude_in_background(&keyway);
    until("the refresh reaches the token endpoint", || {
        fake.claude_oauth().refresh_calls() == 1
    })
    .await;
    client.abort();
    let _ = client.await;
    until("Keyway logs the renewed login", || {
        keyway.logs().contains("login renewed")
    })
    .await;
    assert!(
        fake.requests().is_empty(),
        "the departed request was not sent"
    );
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);
    let rotated = stored_refresh_token(&keyway.setup, &id).await;
    assert_ne!(
        rotated, imported.refresh_token,
        "the rotated token is stored"
    );
    assert_eq!(
        fake.claude_oauth().account_of(&rotated).as_deref(),
        Some("alice")
    );

    // The next request uses the renewed login without another token call. The fake holds it,
    // and Keyway is killed while it is upstream.
    fake.push("alice", Behaviour::Hang);
    let held = claude_in_background(&keyway);
    tokio::time::timeout(WAIT, fake.wait_for_requests(1))
        .await
        .expect("the request reaches the fake");
    let sent = bearer(&fake.requests()[0]);
    assert_ne!(sent, imported.access_token, "the renewed access token");
    assert_eq!(fake.claude_oauth().refresh_calls(), 1, "no second refresh");
    assert_eq!(
        stored_refresh_token(&keyway.setup, &id).await,
        rotated,
        "when the new access token goes out, its refresh token is in the keyring"
    );
    let keyway = keyway.crash_and_restart().await;
    held.abort();

    // The imported refresh token is spent; only the stored one renews the login.
    fake.claude_oauth().expire_access_tokens("alice");
    fake.clear_scripts();
    assert_eq!(claude_ok(&keyway).await, id);
    assert_eq!(fake.claude_oauth().refresh_calls(), 2);
    assert_eq!(account(&keyway, &id).await["live"]["state"], "serving");
    assert_ne!(
        stored_refresh_token(&keyway.setup, &id).await,
        rotated,
        "rotated again"
    );
}

#[tokio::test]
async fn a_dead_refresh_token_takes_the_login_out_of_rotation_as_needs_login() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::OpenAi, "sk-openai-key");
    let setup = Setup::new(&fake.base_url(), "");
    let (alice, _) = import_claude(&setup, &fake, "alice", SOON).await;
    let (bob, _) = import_claude(&setup, &fake, "bob", LONG).await;
    let (cara, _) = import_chatgpt(&setup, &fake, "cara", SOON).await;
    let key = setup.add_account("openai", "Key", "sk-openai-key").await;
    policy(&setup, "anthropic", "priority", &[&alice, &bob]).await;
    policy(&setup, "openai", "priority", &[&cara, &key]).await;
    fake.claude_oauth().fail_next_refresh();
    fake.openai_oauth().fail_next_refresh();
    let keyway = setup.start().await;

    // Claude answers invalid_grant: the request moves on to the next login.
    assert_eq!(claude_ok(&keyway).await, bob);
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);
    // ChatGPT answers 401 refresh_token_invalidated: the request moves on to the API key.
    assert_eq!(responses_ok(&keyway).await, key);
    assert_eq!(fake.openai_oauth().refresh_calls(), 1);
    assert_eq!(
        fake.keys_used().last().map(String::as_str),
        Some("sk-openai-key")
    );

    for id in [&alice, &cara] {
        let live = account(&keyway, id).await["live"].clone();
        assert_eq!(live["state"], "needs_login", "{id}: {live}");
        let why = live["needs_attention"].as_str().unwrap_or_default();
        assert!(why.contains("log in again"), "{id}: {live}");
    }
    let listed = keyway.cli(&["account", "list", "--json"]).await;
    let listed: Value = serde_json::from_str(listed.ok()).expect("json");
    let alice_listed = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|a| a["id"] == alice.as_str())
        .expect("alice listed")
        .clone();
    assert_eq!(
        alice_listed["live"]["state"], "needs_login",
        "{alice_listed}"
    );
    let table = keyway.cli(&["account", "list"]).await;
    let alice_line = table
        .ok()
        .lines()
        .find(|l| l.starts_with(alice.as_str()))
        .expect("alice's row")
        .to_owned();
    assert!(alice_line.contains("needs login"), "{alice_line}");

    // Out of rotation: no more attempts on the dead logins, no more refreshes.
    for _ in 0..3 {
        assert_eq!(claude_ok(&keyway).await, bob);
        assert_eq!(responses_ok(&keyway).await, key);
    }
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);
    assert_eq!(fake.openai_oauth().refresh_calls(), 1);
    let used = fake.accounts_used();
    assert!(
        !used.iter().any(|a| a == "alice" || a == "cara"),
        "dead logins never reached upstream: {used:?}"
    );

    // Still visible after a restart.
    let keyway = keyway.restart().await;
    assert_eq!(
        account(&keyway, &alice).await["live"]["state"],
        "needs_login"
    );
    assert_eq!(claude_ok(&keyway).await, bob);
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn the_background_quota_poll_leaves_a_login_that_needs_login_alone() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(
        &fake.base_url(),
        "[limits]\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\nquota_poll_secs = 1\n",
    );
    let (alice, _) = import_claude(&setup, &fake, "alice", SOON).await;
    let (bob, _) = import_claude(&setup, &fake, "bob", LONG).await;
    fake.claude_oauth().fail_next_refresh();
    let keyway = setup.start().await;

    // The poll itself finds Alice's login dead (her token needs renewing to poll).
    poll_live(&keyway, &alice, "needs_login", |l| {
        l["state"] == "needs_login"
    })
    .await;
    assert_eq!(fake.claude_oauth().refresh_calls(), 1);
    // Several more poll rounds (Bob's usage is asked each second)...
    let polls = fake.claude_oauth().usage_polls();
    let deadline = tokio::time::Instant::now() + WAIT;
    while fake.claude_oauth().usage_polls() < polls + 2 {
        assert!(tokio::time::Instant::now() < deadline, "the poll stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and the dead refresh token was not presented again.
    assert_eq!(
        fake.claude_oauth().refresh_calls(),
        1,
        "a login that needs a new login is out of rotation, background work included"
    );
    assert_eq!(account(&keyway, &bob).await["live"]["state"], "serving");
    assert_eq!(keyway.stop().await, Some(0));
}

// ---------------------------------------------------------------------------------------------
// Quota
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn quota_windows_are_shown_with_used_percent_and_reset_time() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let (alice, _) = import_claude(&setup, &fake, "alice", LONG).await;
    let (dave, _) = import_chatgpt(&setup, &fake, "dave", LONG).await;
    let now = unix_now();
    let claude_usage = ClaudeUsage {
        five_hour: ClaudeWindow {
            utilization: 0.42,
            resets_at: now + 3600,
        },
        seven_day: ClaudeWindow {
            utilization: 0.1,
            resets_at: now + 5 * 86_400,
        },
        seven_day_opus: None,
    };
    fake.claude_oauth().set_usage("alice", claude_usage);
    let codex_usage = CodexUsage {
        primary: CodexWindow {
            used_percent: 25.0,
            window_minutes: 300,
            resets_at: now + 1800,
        },
        secondary: CodexWindow {
            used_percent: 60.0,
            window_minutes: 10_080,
            resets_at: now + 4 * 86_400,
        },
    };
    fake.openai_oauth().set_usage("dave", codex_usage);
    let keyway = setup.start().await;

    assert_eq!(claude_ok(&keyway).await, alice);
    assert_eq!(responses_ok(&keyway).await, dave);

    let live = account(&keyway, &alice).await["live"].clone();
    assert_window(&live, "5h", 42.0, now + 3600);
    assert_window(&live, "7d", 10.0, now + 5 * 86_400);
    assert_eq!(window(&live, "5h")["rejected"], false);
    let live = account(&keyway, &dave).await["live"].clone();
    assert_window(&live, "primary", 25.0, now + 1800);
    assert_window(&live, "secondary", 60.0, now + 4 * 86_400);

    // The CLI shows the same.
    let listed = keyway.cli(&["account", "list", "--json"]).await;
    let listed: Value = serde_json::from_str(listed.ok()).expect("json");
    let dave_listed = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|a| a["id"] == dave.as_str())
        .expect("dave")
        .clone();
    assert_eq!(dave_listed["kind"], "oauth");
    assert_window(&dave_listed["live"], "secondary", 60.0, now + 4 * 86_400);
    let table = keyway.cli(&["account", "list"]).await;
    let table = table.ok();
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no row for {id}: {table}"))
            .to_owned()
    };
    assert!(row(&alice).contains("5h window 42% used"), "{table}");
    assert!(row(&dave).contains("secondary window 60% used"), "{table}");
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_rejected_5h_window_moves_traffic_to_the_other_subscription_then_the_api_key_and_back() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-key");
    let setup = Setup::new(&fake.base_url(), "");
    let (alice, _) = import_claude(&setup, &fake, "alice", LONG).await;
    let (bob, _) = import_claude(&setup, &fake, "bob", LONG).await;
    let key = setup.add_account("anthropic", "Key", "sk-ant-key").await;
    policy(&setup, "anthropic", "priority", &[&alice, &bob, &key]).await;
    let keyway = setup.start().await;
    assert_eq!(claude_ok(&keyway).await, alice);

    // Alice's 5-hour window is exhausted until a reset 5 s ahead (wall clock, as the provider
    // and Keyway both keep it; the checks below take a fraction of that): Bob serves.
    let alice_reset = unix_now() + 5;
    fake.claude_oauth().reject_5h_until("alice", alice_reset);
    assert_eq!(claude_ok(&keyway).await, bob);
    let live = account(&keyway, &alice).await["live"].clone();
    assert_eq!(live["state"], "cooling", "{live}");
    let until = live["cooling_until"].as_u64().expect("cooling_until");
    assert!(
        (alice_reset..=alice_reset + 2).contains(&until),
        "cools until the window's reset {alice_reset}, not a guess: {live}"
    );
    assert_window(&live, "5h", 100.0, alice_reset);
    assert_eq!(window(&live, "5h")["rejected"], true, "{live}");

    // Bob's too: the API key serves.
    fake.claude_oauth().reject_5h_until("bob", alice_reset + 1);
    assert_eq!(claude_ok(&keyway).await, key);
    assert_eq!(
        fake.keys_used().last().map(String::as_str),
        Some("sk-ant-key")
    );
    assert_eq!(account(&keyway, &bob).await["live"]["state"], "cooling");
    assert_eq!(claude_ok(&keyway).await, key, "both logins still wait");

    // Once Alice's reset has passed she is back, first in priority.
    poll_live(&keyway, &alice, "serving", |l| l["state"] == "serving").await;
    assert!(unix_now() >= alice_reset, "not back before the reset");
    assert_eq!(claude_ok(&keyway).await, alice);
    assert_eq!(
        fake.requests()
            .last()
            .and_then(|r| r.account.clone())
            .as_deref(),
        Some("alice")
    );
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_chatgpt_usage_limit_moves_responses_to_the_api_key_until_the_reset() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::OpenAi, "sk-openai-key");
    let setup = Setup::new(&fake.base_url(), "");
    let (dave, _) = import_chatgpt(&setup, &fake, "dave", LONG).await;
    let key = setup.add_account("openai", "Key", "sk-openai-key").await;
    policy(&setup, "openai", "priority", &[&dave, &key]).await;
    let keyway = setup.start().await;
    assert_eq!(responses_ok(&keyway).await, dave);

    let reset = unix_now() + 5;
    fake.openai_oauth().usage_limit_until("dave", reset);
    assert_eq!(responses_ok(&keyway).await, key);
    let live = account(&keyway, &dave).await["live"].clone();
    assert_eq!(live["state"], "cooling", "{live}");
    assert_eq!(live["cooling_until"].as_u64(), Some(reset), "{live}");
    assert_eq!(responses_ok(&keyway).await, key);

    poll_live(&keyway, &dave, "serving", |l| l["state"] == "serving").await;
    assert_eq!(responses_ok(&keyway).await, dave);
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn most_available_sends_traffic_to_the_login_with_the_most_quota_left() {
    let fake = FakeUpstream::start().await;
    // Poll idle logins' usage every second, so Keyway knows both before any request.
    let setup = Setup::new(
        &fake.base_url(),
        "[limits]\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\nquota_poll_secs = 1\n",
    );
    let (alice, _) = import_claude(&setup, &fake, "alice", LONG).await;
    let (bob, _) = import_claude(&setup, &fake, "bob", LONG).await;
    policy(&setup, "anthropic", "most_available", &[]).await;
    fake.claude_oauth().set_usage("alice", claude_5h(0.8));
    fake.claude_oauth().set_usage("bob", claude_5h(0.2));
    let keyway = setup.start().await;

    for (id, used) in [(&alice, 80.0), (&bob, 20.0)] {
        poll_live(&keyway, id, "polled", |l| {
            l["quota"].as_array().is_some_and(|ws| {
                ws.iter().any(|w| {
                    w["name"] == "5h"
                        && w["used_percent"]
                            .as_f64()
                            .is_some_and(|u| (u - used).abs() < 0.01)
                })
            })
        })
        .await;
    }
    assert!(
        fake.requests().is_empty(),
        "learned from the usage poll alone"
    );
    assert!(fake.claude_oauth().usage_polls() >= 2);

    for _ in 0..6 {
        assert_eq!(claude_ok(&keyway).await, bob, "80 % left beats 20 %");
    }

    // Bob runs low; his next answer says so, and traffic moves to Alice.
    fake.claude_oauth().set_usage("bob", claude_5h(0.95));
    let mut served = Vec::new();
    for _ in 0..6 {
        served.push(claude_ok(&keyway).await);
    }
    assert!(
        served[1..].iter().all(|s| *s == alice),
        "after Bob reported 95 % used, only Alice (20 % left) serves: {served:?}"
    );
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn quota_facts_survive_a_restart() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let (alice, _) = import_claude(&setup, &fake, "alice", LONG).await;
    let (bob, _) = import_claude(&setup, &fake, "bob", LONG).await;
    policy(&setup, "anthropic", "most_available", &[]).await;
    fake.claude_oauth().set_usage("alice", claude_5h(0.8));
    fake.claude_oauth().set_usage("bob", claude_5h(0.2));
    let keyway = setup.start().await;

    // Until both have answered once, Keyway knows nothing of their quota.
    let mut served = Vec::new();
    while !(served.contains(&alice) && served.contains(&bob)) {
        assert!(served.len() < 4, "both logins served within 4: {served:?}");
        served.push(claude_ok(&keyway).await);
    }
    let before = [
        account(&keyway, &alice).await["live"]["quota"].clone(),
        account(&keyway, &bob).await["live"]["quota"].clone(),
    ];
    for (quota, used) in before.iter().zip([80.0, 20.0]) {
        let live = json!({ "quota": quota });
        let got = window(&live, "5h")["used_percent"].as_f64().expect("used");
        assert!((got - used).abs() < 0.01, "{quota}");
    }

    let keyway = keyway.restart().await;
    fake.clear();
    let after = [
        account(&keyway, &alice).await["live"]["quota"].clone(),
        account(&keyway, &bob).await["live"]["quota"].clone(),
    ];
    assert_eq!(after, before, "the windows as they were before the restart");
    // most_available ranks by them at once, before any answer after the restart.
    for _ in 0..4 {
        assert_eq!(claude_ok(&keyway).await, bob);
    }
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn most_available_counts_a_window_as_fresh_once_its_reset_has_passed() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let (alice, _) = import_claude(&setup, &fake, "alice", LONG).await;
    let (bob, _) = import_claude(&setup, &fake, "bob", LONG).await;
    policy(&setup, "anthropic", "most_available", &[]).await;
    let keyway = setup.start().await;
    // Alice's 5-hour window is nearly used up but resets in 5 s (counted from here, after
    // the start, so only the requests below run in it); Bob has half of his left.
    let alice_reset = unix_now() + 5;
    let mut usage = ClaudeUsage::fresh();
    usage.five_hour = ClaudeWindow {
        utilization: 0.9,
        resets_at: alice_reset,
    };
    fake.claude_oauth().set_usage("alice", usage);
    fake.claude_oauth().set_usage("bob", claude_5h(0.5));

    let mut served = Vec::new();
    while !(served.contains(&alice) && served.contains(&bob)) {
        assert!(served.len() < 4, "both logins served within 4: {served:?}");
        served.push(claude_ok(&keyway).await);
    }
    assert_eq!(claude_ok(&keyway).await, bob, "50 % left beats 10 %");

    // Alice's window resets: the provider starts it afresh.
    let deadline = tokio::time::Instant::now() + WAIT;
    while unix_now() < alice_reset {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.claude_oauth().set_usage("alice", ClaudeUsage::fresh());
    // Keyway knows the 90 % was for a window that has ended: Alice has the most left now.
    let live = account(&keyway, &alice).await["live"].clone();
    assert!(
        window(&live, "5h")["resets_at"].as_u64() <= Some(unix_now()),
        "{live}"
    );
    let mut after = Vec::new();
    for _ in 0..3 {
        after.push(claude_ok(&keyway).await);
    }
    assert_eq!(
        after,
        [alice.clone(), alice.clone(), alice.clone()],
        "after Alice's reset (her weekly window 0 % used) she has more left than Bob (50 %)"
    );
    assert_eq!(keyway.stop().await, Some(0));
}
