//! The requests the real clients send, replayed through Keyway: each fixture in
//! `tests/clients/` is one turn exactly as Claude Code, Codex CLI or Gemini CLI sent it
//! (captured by `tests/clients/capture` against the fake, keys replaced). Keyway must read
//! the conversation where each client names it, keep every turn of it on one account, and
//! leave a client that names none (Gemini CLI) to the policy's strategy. When a new client
//! version renames its session header, re-capturing makes this fail instead of silently
//! routing its conversations per request.

use std::path::PathBuf;

use keyway_tests::{FakeUpstream, Setup};
use serde_json::Value;

/// Turns each fixture is sent.
const TURNS: usize = 4;

/// Headers reqwest sets itself, or that belong to the captured connection, not the request.
const CONNECTION_HEADERS: [&str; 2] = ["connection", "accept-encoding"];

struct Fixture {
    /// The client's version when it was captured.
    version: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Fixture {
    fn load(client: &str) -> Fixture {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("clients")
            .join(format!("{client}.json"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let v: Value = serde_json::from_str(&text).expect("fixture JSON");
        assert_eq!(v["method"], "POST", "{client} fixture");
        let headers = v["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .map(|h| {
                (
                    h[0].as_str().expect("name").to_owned(),
                    h[1].as_str().expect("value").to_owned(),
                )
            })
            .collect();
        Fixture {
            version: v["version"].as_str().expect("version").to_owned(),
            path: v["path"].as_str().expect("path").to_owned(),
            headers,
            body: v["body"].clone(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Starts Keyway with two `provider` keys, sends `client`'s fixture [`TURNS`] times and
/// returns the keys that served the turns and the live sessions afterwards.
async fn replay(client: &str, provider: &str) -> (Fixture, Vec<String>, Vec<Value>) {
    let fixture = Fixture::load(client);
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    for (i, secret) in ["fixture-key-a", "fixture-key-b"].iter().enumerate() {
        fake.register_key(provider.parse().expect("a built-in provider"), secret);
        setup.add_account(provider, &format!("K{i}"), secret).await;
    }
    let keyway = setup.start().await;
    for turn in 0..TURNS {
        let mut request = keyway
            .http
            .post(keyway.url(&fixture.path))
            .json(&fixture.body);
        for (name, value) in &fixture.headers {
            if CONNECTION_HEADERS.contains(&name.as_str()) {
                continue;
            }
            let value = value.replace("<key>", &keyway.client_key);
            request = request.header(name, value);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert_eq!(status, 200, "{client} turn {turn}: {body}");
    }
    let keys = fake.keys_used();
    let sessions = keyway
        .api_get("/sessions")
        .await
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(keyway.stop().await, Some(0));
    (fixture, keys, sessions)
}

/// The fixture's conversation is one live session read from `header`, shown as `name` and
/// the captured version, served by one key.
fn assert_one_session(
    client: &str,
    name: &str,
    fixture: &Fixture,
    header: &str,
    keys: &[String],
    sessions: &[Value],
) {
    let id = fixture.header(header).unwrap_or_else(|| {
        panic!("{client} no longer sends `{header}`; Keyway reads its conversation there")
    });
    let id = id.split(':').next().unwrap_or(id);
    assert_eq!(sessions.len(), 1, "{client}: {sessions:?}");
    assert_eq!(sessions[0]["key"], id, "{client}: {sessions:?}");
    assert_eq!(sessions[0]["source"], header, "{client}: {sessions:?}");
    assert_eq!(
        sessions[0]["client"],
        format!("{name} {}", fixture.version),
        "{client}: {sessions:?}"
    );
    assert_eq!(keys.len(), TURNS, "{client}: {keys:?}");
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "{client} moved between keys: {keys:?}"
    );
}

#[tokio::test]
async fn claude_code_turns_stay_on_one_account_by_its_session_header() {
    let (fixture, keys, sessions) = replay("claude-code", "anthropic").await;
    assert_one_session(
        "claude-code",
        "Claude Code",
        &fixture,
        "x-claude-code-session-id",
        &keys,
        &sessions,
    );
}

#[tokio::test]
async fn codex_cli_turns_stay_on_one_account_by_its_session_header() {
    let (fixture, keys, sessions) = replay("codex-cli", "openai").await;
    assert_one_session(
        "codex-cli",
        "Codex CLI",
        &fixture,
        "session-id",
        &keys,
        &sessions,
    );
}

#[tokio::test]
async fn gemini_cli_names_no_conversation_and_rotates_like_any_request() {
    let (_, keys, sessions) = replay("gemini-cli", "google").await;
    assert!(sessions.is_empty(), "{sessions:?}");
    assert_eq!(keys.len(), TURNS, "{keys:?}");
    // Round-robin over two keys: every turn goes to the other one.
    assert!(keys.windows(2).all(|w| w[0] != w[1]), "{keys:?}");
}
