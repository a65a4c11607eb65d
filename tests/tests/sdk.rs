//! The official Anthropic and OpenAI Python SDKs, unmodified, pointed at Keyway the way a user
//! points them (base URL and API key only), served by the fake upstream through Keyway.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyway_tests::{FakeUpstream, Provider, Setup};
use serde_json::Value;
use tokio::process::Command;

/// `$KEYWAY_SDK_PYTHON`, else the workspace's `.venv` that `scripts/test` makes.
fn sdk_python() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYWAY_SDK_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the SDKs: KEYWAY_SDK_PYTHON is unset and {} does not exist; run \
         scripts/test once (it creates .venv from tests/sdk/requirements.txt)",
        venv.display()
    );
    venv
}

/// The string at `key` of the SDK check's output.
fn text<'a>(out: &'a Value, key: &str) -> &'a str {
    out[key]
        .as_str()
        .unwrap_or_else(|| panic!("no text {key} in {out:#}"))
}

/// The positive count at `key` of the SDK check's output.
fn count(out: &Value, key: &str) -> u64 {
    let n = out[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key} in {out:#}"));
    assert!(n > 0, "{key} is 0: {out:#}");
    n
}

#[tokio::test]
async fn the_official_python_sdks_work_through_keyway() {
    let python = sdk_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/sdk_check.py");
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-sdk");
    fake.register_key(Provider::OpenAi, "sk-oa-sdk");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "Claude", "sk-ant-sdk").await;
    setup.add_account("openai", "GPT", "sk-oa-sdk").await;
    let keyway = setup.start().await;

    let run = Command::new(&python)
        .arg(&script)
        .env("KEYWAY_BASE_URL", format!("http://{}", keyway.addr))
        .env("KEYWAY_CLIENT_KEY", &keyway.client_key)
        .env("KEYWAY_SDK_TIMEOUT", "20")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("sdk_check.py finishes")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sdk_check.py failed ({}):\n{stdout}\n{stderr}\nKeyway's log:\n{}",
        out.status,
        keyway.logs()
    );
    let out: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("sdk_check.py printed no JSON ({e}): {stdout}\n{stderr}"));
    assert_eq!(out["failed"], serde_json::json!([]), "{out:#}");
    assert_eq!(out["checks"].as_array().map(Vec::len), Some(8), "{out:#}");

    // Anthropic: the fake's text names the account key that served; streams have 3 deltas.
    let ant = "served by sk-ant-sdk";
    let ant_stream = format!("{ant} +1 +2");
    assert_eq!(text(&out, "anthropic_text"), ant);
    assert_eq!(text(&out, "anthropic_stop_reason"), "end_turn");
    assert_eq!(text(&out, "anthropic_stream_text"), ant_stream);
    assert_eq!(text(&out, "anthropic_stream_final_text"), ant_stream);
    assert_eq!(count(&out, "anthropic_stream_text_deltas"), 3);
    count(&out, "anthropic_stream_events");
    count(&out, "anthropic_count_tokens");

    // OpenAI Chat Completions and Responses.
    let oa = "served by sk-oa-sdk";
    let oa_stream = format!("{oa} +1 +2");
    assert_eq!(text(&out, "openai_chat_text"), oa);
    assert_eq!(text(&out, "openai_chat_finish_reason"), "stop");
    assert_eq!(text(&out, "openai_chat_stream_text"), oa_stream);
    assert_eq!(text(&out, "openai_chat_stream_finish_reason"), "stop");
    count(&out, "openai_chat_stream_chunks");
    assert_eq!(text(&out, "openai_responses_text"), oa);
    assert_eq!(text(&out, "openai_responses_status"), "completed");
    assert_eq!(text(&out, "openai_responses_stream_text"), oa_stream);
    assert_eq!(
        text(&out, "openai_responses_stream_completed_text"),
        oa_stream
    );
    count(&out, "openai_responses_stream_events");

    // A wrong key is the SDKs' own AuthenticationError (401).
    assert_eq!(out["auth_errors_ok"], true, "{out:#}");
    for call in ["anthropic_messages", "openai_chat", "openai_responses"] {
        let e = &out["auth_errors"][call];
        assert_eq!(e["status_code"], 401, "{call}: {e:#}");
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains("keyway")),
            "{call}: the message says Keyway refused the key: {e:#}"
        );
    }

    // Upstream, only the accounts' keys, on real endpoints; never the client key.
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        7,
        "3 Anthropic and 4 OpenAI calls: {requests:#?}"
    );
    for r in &requests {
        assert!(
            matches!(r.key.as_deref(), Some("sk-ant-sdk" | "sk-oa-sdk")),
            "{} {} with key {:?}",
            r.method,
            r.path,
            r.key
        );
        assert!(
            r.headers
                .iter()
                .all(|(_, v)| !v.contains(&keyway.client_key)),
            "the client key reached the upstream: {r:#?}"
        );
    }
    assert_eq!(fake.unmatched(), Vec::<String>::new());
}
