//! Editing the config file under a running Keyway: valid edits apply live, however the editor
//! saves; invalid ones are reported with file, line and column while the last good config keeps
//! serving, until the file is fixed.

use std::path::Path;
use std::time::Duration;

use keyway_tests::harness::eventually;
use keyway_tests::{FakeUpstream, Keyway, Provider, Setup};
use serde_json::Value;

/// Longest wait for a running Keyway to notice an edit of its config file.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Saves like most editors: write a temp file beside, then rename it over the config.
fn save_atomically(path: &Path, text: &str) {
    let tmp = path.with_file_name(".config.toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The `anthropic` entry of `GET /api/policies`.
async fn anthropic_policy(keyway: &Keyway) -> Value {
    let all = keyway.api_get("/policies").await;
    all.as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "anthropic")
        .cloned()
        .expect("anthropic policy view")
}

/// The upstream keys of `n` Anthropic requests sent one after another.
async fn sequence(keyway: &Keyway, fake: &FakeUpstream, n: usize) -> Vec<String> {
    let before = fake.requests().len();
    for _ in 0..n {
        let r = keyway.anthropic("claude-sonnet-4-5").await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        let _ = r.bytes().await;
    }
    let keys = fake.keys_used();
    assert_eq!(keys.len(), before + n, "one upstream request per request");
    keys[before..].to_vec()
}

/// Three Anthropic accounts (keys sk-a, sk-b, sk-c) rotating by default; their ids.
async fn three_accounts() -> (FakeUpstream, Keyway, Vec<String>) {
    let fake = FakeUpstream::start().await;
    fake.register_keys(Provider::Anthropic, ["sk-a", "sk-b", "sk-c"]);
    let setup = Setup::new(&fake.base_url(), "");
    let mut ids = Vec::new();
    for (label, key) in [("A", "sk-a"), ("B", "sk-b"), ("C", "sk-c")] {
        ids.push(setup.add_account("anthropic", label, key).await);
    }
    (fake, setup.start().await, ids)
}

fn priority_policy(id: &str) -> String {
    format!("\n[policies.anthropic]\nstrategy = \"priority\"\naccounts = [\"{id}\"]\n")
}

/// 1-based number of the line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .expect("line in text")
        + 1
}

#[tokio::test]
async fn valid_edits_apply_whether_saved_by_rename_or_in_place() {
    let (fake, keyway, ids) = three_accounts().await;
    let path = keyway.setup.config_path.clone();
    let original = std::fs::read_to_string(&path).unwrap();
    assert_eq!(sequence(&keyway, &fake, 3).await, ["sk-a", "sk-b", "sk-c"]);

    // Atomic save (temp file + rename).
    save_atomically(&path, &format!("{original}{}", priority_policy(&ids[2])));
    eventually(
        "the policy saved by rename shows in /api/policies",
        RELOAD_TIMEOUT,
        async || {
            let p = anthropic_policy(&keyway).await;
            (p["strategy"] == "priority" && p["members"][0]["id"] == ids[2].as_str()).then_some(())
        },
    )
    .await;
    assert_eq!(sequence(&keyway, &fake, 3).await, ["sk-c"; 3]);

    // In-place save (truncate and write the same file).
    std::fs::write(&path, format!("{original}{}", priority_policy(&ids[1]))).unwrap();
    eventually(
        "the policy written in place shows in /api/policies",
        RELOAD_TIMEOUT,
        async || {
            let p = anthropic_policy(&keyway).await;
            (p["members"][0]["id"] == ids[1].as_str()).then_some(())
        },
    )
    .await;
    assert_eq!(sequence(&keyway, &fake, 3).await, ["sk-b"; 3]);

    // Deleting the policy from the file brings back the default rotation.
    std::fs::write(&path, &original).unwrap();
    eventually(
        "the removed policy is gone from /api/policies",
        RELOAD_TIMEOUT,
        async || {
            let p = anthropic_policy(&keyway).await;
            (p["configured"] == false).then_some(())
        },
    )
    .await;
    let mut keys = sequence(&keyway, &fake, 3).await;
    keys.sort();
    assert_eq!(keys, ["sk-a", "sk-b", "sk-c"]);
    assert_eq!(keyway.api_get("/status").await["config"]["ok"], true);
}

#[tokio::test]
async fn a_base_url_edit_moves_traffic_to_the_new_upstream() {
    let (old, keyway, _) = three_accounts().await;
    let new = FakeUpstream::start().await;
    new.register_keys(Provider::Anthropic, ["sk-a", "sk-b", "sk-c"]);
    let path = keyway.setup.config_path.clone();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(sequence(&keyway, &old, 1).await, ["sk-a"]);

    let edited = text.replacen(
        &format!("[providers.anthropic]\nbase_url = \"{}\"", old.base_url()),
        &format!("[providers.anthropic]\nbase_url = \"{}\"", new.base_url()),
        1,
    );
    assert_ne!(edited, text);
    save_atomically(&path, &edited);
    // Requests tell when the edit has applied: they reach the new upstream.
    eventually(
        "requests reach the new base_url",
        RELOAD_TIMEOUT,
        async || {
            let r = keyway.anthropic("claude-sonnet-4-5").await;
            assert_eq!(r.status(), 200);
            (!new.requests().is_empty()).then_some(())
        },
    )
    .await;
    let old_count = old.requests().len();
    assert_eq!(sequence(&keyway, &new, 3).await.len(), 3);
    assert_eq!(
        old.requests().len(),
        old_count,
        "nothing goes to the old upstream"
    );
    // The rotation went on across the edit: every account served in turn.
    let all: Vec<String> = old.keys_used().into_iter().chain(new.keys_used()).collect();
    let expected: Vec<&str> = ["sk-a", "sk-b", "sk-c"]
        .iter()
        .cycle()
        .take(all.len())
        .copied()
        .collect();
    assert_eq!(all, expected);
}

/// Waits until the running instance reports the rejected edit, then checks that `/api/status`
/// and the logs say where it is. Returns the error's message.
async fn assert_rejected(keyway: &Keyway, line: usize, column: usize, problem: &str) -> String {
    let path = keyway.setup.config_path.display().to_string();
    let error = eventually(
        "/api/status reports the rejected edit",
        RELOAD_TIMEOUT,
        async || {
            let status = keyway.api_get("/status").await;
            (status["config"]["ok"] == false).then(|| status["config"]["error"].clone())
        },
    )
    .await;
    assert_eq!(error["path"], path.as_str(), "{error}");
    assert_eq!(error["line"], line, "{error}");
    assert_eq!(error["column"], column, "{error}");
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains(problem), "{error} should name {problem:?}");

    let at = format!("{path}:{line}:{column}");
    eventually(
        "the log names the file, line and column",
        RELOAD_TIMEOUT,
        async || keyway.logs().contains(&at).then_some(()),
    )
    .await;
    message
}

#[tokio::test]
async fn a_syntax_error_is_reported_and_the_last_good_config_keeps_serving() {
    let (fake, keyway, ids) = three_accounts().await;
    let path = keyway.setup.config_path.clone();
    let original = std::fs::read_to_string(&path).unwrap();
    assert_eq!(sequence(&keyway, &fake, 2).await, ["sk-a", "sk-b"]);

    // An unterminated string: a TOML basic string ends on its line, so the parser stops at the
    // line's end, the column just after `strategy = "priority`, wanting the closing quote.
    let broken = format!("{original}\n[policies.anthropic]\nstrategy = \"priority\n");
    save_atomically(&path, &broken);
    let line = line_of(&broken, "strategy = ");
    let column = "strategy = \"priority".len() + 1;
    let message = assert_rejected(&keyway, line, column, "invalid basic string").await;
    assert!(message.contains("expected `\"`"), "{message}");

    // Still the same rotation, from the last good config.
    assert_eq!(
        sequence(&keyway, &fake, 4).await,
        ["sk-c", "sk-a", "sk-b", "sk-c"]
    );
    // Edits through the API refuse to build on a broken file, and leave it as it is.
    let r = keyway
        .api(reqwest::Method::PUT, "/policies/openai")
        .json(&serde_json::json!({"strategy": "priority"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let answer: Value = r.json().await.unwrap();
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("{}:{line}:", path.display())),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);

    // Fixing the file applies it and clears the error.
    save_atomically(&path, &format!("{original}{}", priority_policy(&ids[0])));
    eventually(
        "the fixed file clears the error",
        RELOAD_TIMEOUT,
        async || {
            let s = keyway.api_get("/status").await;
            (s["config"]["ok"] == true && s["config"]["error"].is_null()).then_some(())
        },
    )
    .await;
    assert_eq!(sequence(&keyway, &fake, 2).await, ["sk-a"; 2]);
    let printed = keyway.cli(&["status"]).await;
    assert!(
        printed.ok().contains(&format!("{}: ok", path.display())),
        "{printed:?}"
    );
}

#[tokio::test]
async fn an_unknown_account_in_a_policy_is_reported_and_the_last_good_config_keeps_serving() {
    let (fake, keyway, ids) = three_accounts().await;
    let path = keyway.setup.config_path.clone();
    let original = std::fs::read_to_string(&path).unwrap();
    assert_eq!(sequence(&keyway, &fake, 2).await, ["sk-a", "sk-b"]);

    let broken = format!("{original}{}", priority_policy("anthropic-000000"));
    std::fs::write(&path, &broken).unwrap();
    // The error points at the unknown id inside `accounts = [...]`.
    let line = line_of(&broken, "accounts = [\"anthropic-000000\"]");
    let column = "accounts = [".len() + 1;
    assert_rejected(&keyway, line, column, "unknown account `anthropic-000000`").await;
    assert_eq!(
        sequence(&keyway, &fake, 4).await,
        ["sk-c", "sk-a", "sk-b", "sk-c"]
    );

    std::fs::write(&path, format!("{original}{}", priority_policy(&ids[1]))).unwrap();
    eventually(
        "the fixed file clears the error",
        RELOAD_TIMEOUT,
        async || {
            let s = keyway.api_get("/status").await;
            (s["config"]["ok"] == true).then_some(())
        },
    )
    .await;
    assert_eq!(sequence(&keyway, &fake, 2).await, ["sk-b"; 2]);
}

#[tokio::test]
async fn keyway_status_shows_a_rejected_edit_and_that_the_last_good_config_serves() {
    let (fake, keyway, _) = three_accounts().await;
    let path = keyway.setup.config_path.clone();
    let original = std::fs::read_to_string(&path).unwrap();
    let broken = format!("{original}{}", priority_policy("anthropic-000000"));
    std::fs::write(&path, &broken).unwrap();
    let line = line_of(&broken, "accounts = [\"anthropic-000000\"]");
    let column = "accounts = [".len() + 1;
    let message = assert_rejected(&keyway, line, column, "unknown account").await;
    assert_eq!(sequence(&keyway, &fake, 1).await, ["sk-a"], "still serving");

    // `keyway status` is where a user looks: Keyway is running, its edit was rejected (where
    // and why), and the last good config serves. The config file's own comment promises
    // "reported (file, line, column) in the log and `keyway status`".
    let out = keyway.cli(&["status"]).await;
    assert_eq!(
        out.code,
        Some(0),
        "`keyway status` works while the running instance serves the last good config: {out:?}"
    );
    let at = format!("{}:{line}:{column}", path.display());
    assert!(
        out.stdout.contains(&message),
        "`keyway status` shows the rejection: {out:?}"
    );
    assert!(
        out.stdout.contains(&at)
            || out
                .stdout
                .contains(&format!("line {line}, column {column}")),
        "`keyway status` shows where the error is ({at}): {out:?}"
    );
    assert!(
        out.stdout.contains("listening on"),
        "`keyway status` says Keyway is running: {out:?}"
    );
}
