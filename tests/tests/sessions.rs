//! Conversation-aware routing through the real proxy, against a fake that keeps a prompt cache
//! per credential and Responses state where it was made: sessions stay on their account and
//! read their cache, a new session is placed by the policy's strategy, an account that cannot
//! serve moves only its own sessions, once each, with no failed request; bindings survive a
//! restart; a `previous_response_id` chain never leaves its account; a Codex `store: false`
//! conversation moves without the reasoning the new account cannot read; requests without a
//! session keep the strategy's exact sequence.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyway_tests::{
    Behaviour, ClaudeUsage, ClaudeWindow, FakeUpstream, Keyway, RateLimit, Setup,
    write_claude_credentials,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
const CLAUDE_CODE: &str = "claude-cli/2.1.332 (external, cli)";

/// Claude Code's system prompt: long enough for the providers to cache (over 1,024 tokens).
fn system() -> Value {
    json!([{ "type": "text", "text": "You are Claude Code, a careful coding assistant. ".repeat(120),
             "cache_control": { "type": "ephemeral" } }])
}

/// Turn `n` of a Claude Code conversation: the history so far and a new question, the cache
/// breakpoint on the last message.
fn claude_turn(n: usize) -> Value {
    let mut messages = Vec::new();
    for i in 0..n {
        messages.push(json!({"role": "user", "content": [{"type": "text", "text": format!("Please change function {i}.")}]}));
        messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": format!("Function {i} is changed.")}]}));
    }
    messages.push(json!({"role": "user", "content": [{
        "type": "text", "text": format!("Please change function {n}."), "cache_control": {"type": "ephemeral"}
    }]}));
    json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "system": system(), "messages": messages, "stream": false})
}

/// What one request came to, as the client saw it.
struct Served {
    status: u16,
    key: String,
    body: Value,
}

impl Served {
    fn cache_read(&self) -> u64 {
        self.body["usage"]["cache_read_input_tokens"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// The fake's answer names the key that served it: `served by <key>`.
fn key_of(body: &Value) -> String {
    let text = body["content"][0]["text"]
        .as_str()
        .or_else(|| {
            body["output"]
                .as_array()
                .and_then(|o| o.iter().find_map(|i| i["content"][0]["text"].as_str()))
        })
        .unwrap_or_default();
    text.strip_prefix("served by ")
        .unwrap_or_default()
        .to_owned()
}

/// Turn `n` of Claude Code session `session`.
async fn claude(keyway: &Keyway, session: &str, n: usize) -> Served {
    let r = keyway
        .post("/v1/messages", &claude_turn(n))
        .header("anthropic-version", "2023-06-01")
        .header("x-claude-code-session-id", session)
        .header("user-agent", CLAUDE_CODE)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    Served {
        status,
        key: key_of(&body),
        body,
    }
}

/// A request that names no session (an SDK script); the key that served it.
async fn independent(keyway: &Keyway) -> String {
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    key_of(&r.json().await.expect("json"))
}

async fn sessions(keyway: &Keyway) -> Vec<Value> {
    keyway
        .api_get("/sessions")
        .await
        .as_array()
        .expect("a list")
        .clone()
}

fn session<'a>(list: &'a [Value], key: &str) -> &'a Value {
    list.iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no session {key} in {list:?}"))
}

#[tokio::test]
async fn sessions_stay_on_their_accounts_and_read_their_cache_every_turn() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    setup
        .add_accounts(&fake, "anthropic", &["sk-ant-a", "sk-ant-b"])
        .await;
    let keyway = setup.start().await;

    let mut keys: HashMap<&str, Vec<String>> = HashMap::new();
    for n in 0..8 {
        for s in ["session-one", "session-two"] {
            let served = claude(&keyway, s, n).await;
            assert_eq!(served.status, 200, "{}", served.body);
            if n > 0 {
                assert!(
                    served.cache_read() > 1024,
                    "turn {n} of {s} reads its prefix: {}",
                    served.body
                );
            }
            keys.entry(s).or_default().push(served.key);
        }
    }
    let one = &keys["session-one"];
    let two = &keys["session-two"];
    assert!(one.iter().all(|k| *k == one[0]), "{one:?}");
    assert!(two.iter().all(|k| *k == two[0]), "{two:?}");
    assert_ne!(
        one[0], two[0],
        "round-robin placed the two sessions on both accounts"
    );

    // Requests without a session keep the round-robin sequence the placements left.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(independent(&keyway).await);
    }
    assert_eq!(seen, ["sk-ant-a", "sk-ant-b", "sk-ant-a", "sk-ant-b"]);

    let live = sessions(&keyway).await;
    assert_eq!(live.len(), 2, "{live:?}");
    for (s, key) in [("session-one", &one[0]), ("session-two", &two[0])] {
        let v = session(&live, s);
        assert_eq!(v["source"], "x-claude-code-session-id", "{v}");
        assert_eq!(v["client"], "Claude Code 2.1.332", "{v}");
        assert_eq!(v["requests"], 8, "{v}");
        assert_eq!(v["moves"], 0, "{v}");
        assert_eq!(
            v["account_label"],
            if key == "sk-ant-a" { "L0" } else { "L1" },
            "{v}"
        );
        let read = v["cache_read_tokens"].as_u64().unwrap();
        assert!(
            read * 10 > v["input_tokens"].as_u64().unwrap() * 8,
            "most input read from cache: {v}"
        );
    }
    let cli = keyway.cli(&["sessions", "--json"]).await;
    let listed: Vec<Value> = serde_json::from_str(cli.ok()).expect("json");
    assert_eq!(listed.len(), 2);

    // The request records say how each request was placed.
    let records = keyway.api_get("/requests?limit=100").await;
    let placements: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["session"] == "session-one")
        .map(|r| r["placement"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(placements[0], "placed");
    assert!(
        placements[1..].iter().all(|p| *p == "stuck"),
        "{placements:?}"
    );
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn with_spread_request_a_session_rotates_like_any_request() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    setup
        .add_accounts(&fake, "anthropic", &["sk-ant-a", "sk-ant-b"])
        .await;
    setup
        .cli(&[
            "policy",
            "set",
            "anthropic",
            "--strategy",
            "round_robin",
            "--spread",
            "request",
        ])
        .await
        .ok();
    let keyway = setup.start().await;
    let mut keys = Vec::new();
    for n in 0..4 {
        let served = claude(&keyway, "s", n).await;
        assert_eq!(served.status, 200);
        keys.push(served.key);
    }
    assert_eq!(keys, ["sk-ant-a", "sk-ant-b", "sk-ant-a", "sk-ant-b"]);
    assert!(
        sessions(&keyway).await.is_empty(),
        "no binding under spread = request"
    );
}

#[tokio::test]
async fn an_account_that_cannot_serve_moves_only_its_sessions_once_each_and_nothing_fails() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    setup
        .add_accounts(&fake, "anthropic", &["sk-ant-a", "sk-ant-b", "sk-ant-c"])
        .await;
    let keyway = setup.start().await;

    let names: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    let mut home = HashMap::new();
    for s in &names {
        let served = claude(&keyway, s, 0).await;
        assert_eq!(served.status, 200);
        home.insert(s.clone(), served.key);
    }
    let on_a: Vec<&String> = names.iter().filter(|s| home[*s] == "sk-ant-a").collect();
    assert_eq!(
        on_a.len(),
        2,
        "round-robin placed two sessions on each account: {home:?}"
    );

    // Account a is rate-limited for 2 s from its next request on.
    fake.push("sk-ant-a", Behaviour::RateLimited(RateLimit::RetryAfter(2)));
    let mut now_on = home.clone();
    for n in 1..4 {
        for s in &names {
            let served = claude(&keyway, s, n).await;
            assert_eq!(served.status, 200, "turn {n} of {s}: {}", served.body);
            if home[s] != "sk-ant-a" {
                assert_eq!(
                    served.key, home[s],
                    "{s} was not on the limited account and stays"
                );
            } else {
                assert_ne!(served.key, "sk-ant-a", "{s} left the limited account");
                if n > 1 {
                    assert_eq!(served.key, now_on[s], "{s} moved once and stays");
                }
            }
            now_on.insert(s.clone(), served.key);
        }
    }
    // Once a serves again, the moved sessions stay where their cache now is.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let live = keyway.api_get("/accounts").await;
        let a = live
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["label"] == "L0")
            .cloned()
            .unwrap();
        if a["live"]["state"] == "serving" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "account a serves again within 15 s: {a}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for s in &on_a {
        let served = claude(&keyway, s, 4).await;
        assert_eq!(served.key, now_on[*s], "{s} is not bounced back");
    }
    let live = sessions(&keyway).await;
    for s in &names {
        let moves = session(&live, s)["moves"].as_u64().unwrap();
        assert_eq!(moves, u64::from(home[s] == "sk-ant-a"), "{s}: {live:?}");
    }
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn bindings_survive_a_restart() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    setup
        .add_accounts(&fake, "anthropic", &["sk-ant-a", "sk-ant-b"])
        .await;
    let keyway = setup.start().await;
    let first = claude(&keyway, "one", 0).await.key;
    let second = claude(&keyway, "two", 0).await.key;
    assert_ne!(first, second);

    let keyway = keyway.restart().await;
    for n in 1..4 {
        let one = claude(&keyway, "one", n).await;
        let two = claude(&keyway, "two", n).await;
        assert_eq!(
            (one.key.as_str(), two.key.as_str()),
            (first.as_str(), second.as_str())
        );
        assert!(
            one.cache_read() > 0 && two.cache_read() > 0,
            "the caches are still warm"
        );
    }
    let live = sessions(&keyway).await;
    assert_eq!(session(&live, "one")["requests"], 4, "{live:?}");
    assert_eq!(keyway.stop().await, Some(0));
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
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

/// Imports a login of the fake's Claude account `label` (as `keyway account import`).
async fn import_claude(setup: &Setup, fake: &FakeUpstream, label: &str) -> String {
    let tokens = fake
        .claude_oauth()
        .issue_tokens(label, Duration::from_secs(8 * 3600));
    let home = tempfile::tempdir().expect("home");
    let file = write_claude_credentials(home.path(), &tokens, "max").expect("credentials");
    let file = file.to_str().expect("utf-8");
    let args = [
        "account",
        "import",
        "claude-code",
        "--from",
        file,
        "--label",
        label,
        "--accept-terms-risk",
    ];
    setup.cli(&args).await.ok().to_owned()
}

#[tokio::test]
async fn a_new_session_goes_to_the_login_with_the_most_headroom() {
    let fake = FakeUpstream::start().await;
    // Poll idle logins' usage every second, so Keyway knows each login's headroom.
    let setup = Setup::new(
        &fake.base_url(),
        "[limits]\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\nquota_poll_secs = 1\n",
    );
    let alice = import_claude(&setup, &fake, "alice").await;
    let bob = import_claude(&setup, &fake, "bob").await;
    let carol = import_claude(&setup, &fake, "carol").await;
    setup
        .cli(&["policy", "set", "anthropic", "--strategy", "most_available"])
        .await
        .ok();
    fake.claude_oauth().set_usage("alice", claude_5h(0.7));
    fake.claude_oauth().set_usage("bob", claude_5h(0.4));
    fake.claude_oauth().set_usage("carol", claude_5h(0.1));
    let keyway = setup.start().await;
    let known = |v: &Value, id: &str, used: f64| {
        v.as_array().unwrap().iter().any(|a| {
            a["id"] == id
                && a["live"]["quota"].as_array().is_some_and(|ws| {
                    ws.iter().any(|w| {
                        w["used_percent"]
                            .as_f64()
                            .is_some_and(|u| (u - used).abs() < 0.01)
                    })
                })
        })
    };
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let accounts = keyway.api_get("/accounts").await;
        if known(&accounts, &alice, 70.0)
            && known(&accounts, &bob, 40.0)
            && known(&accounts, &carol, 10.0)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the usage poll told Keyway every login's headroom"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let placed = |served: &Served| {
        let last = fake
            .requests()
            .last()
            .cloned()
            .expect("an upstream request");
        assert_eq!(served.status, 200, "{}", served.body);
        last.account.expect("a login's request")
    };
    let one = claude(&keyway, "first", 0).await;
    assert_eq!(placed(&one), "carol", "the most headroom");
    // Carol's answers now say she is nearly out; the next session goes to bob.
    fake.claude_oauth().set_usage("carol", claude_5h(0.95));
    let again = claude(&keyway, "first", 1).await;
    assert_eq!(
        placed(&again),
        "carol",
        "a warm session stays while its account can serve"
    );
    let two = claude(&keyway, "second", 0).await;
    assert_eq!(
        placed(&two),
        "bob",
        "a new session goes where the most quota is left"
    );
    assert_eq!(keyway.stop().await, Some(0));
}

/// A Responses request with `body`; the status and answer.
async fn responses(keyway: &Keyway, body: Value, session: Option<&str>) -> (u16, Value) {
    let mut r = keyway
        .http
        .post(keyway.url("/v1/responses"))
        .bearer_auth(&keyway.client_key)
        .json(&body);
    if let Some(s) = session {
        r = r
            .header("session-id", s)
            .header("user-agent", "codex_cli_rs/0.171.0");
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

#[tokio::test]
async fn a_previous_response_id_chain_never_leaves_its_account() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    setup
        .add_accounts(&fake, "openai", &["sk-oa-x", "sk-oa-y"])
        .await;
    let keyway = setup.start().await;

    let (status, first) = responses(&keyway, json!({"model": "gpt-5", "input": "hi"}), None).await;
    assert_eq!(status, 200, "{first}");
    let owner = key_of(&first);
    let id = first["id"].as_str().unwrap().to_owned();
    // Round-robin would pick the other account next; the chain goes back to its own.
    for turn in 0..3 {
        let (status, next) = responses(
            &keyway,
            json!({"model": "gpt-5", "input": format!("more {turn}"), "previous_response_id": id}),
            None,
        )
        .await;
        assert_eq!(status, 200, "{next}");
        assert_eq!(key_of(&next), owner, "turn {turn}");
    }

    // Its account is limited: the chain cannot go on elsewhere, and the client is told so.
    fake.push(&owner, Behaviour::RateLimited(RateLimit::RetryAfter(30)));
    let before = fake.requests().len();
    let (status, refused) = responses(
        &keyway,
        json!({"model": "gpt-5", "input": "and more", "previous_response_id": id}),
        None,
    )
    .await;
    assert_eq!(status, 429, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot continue on another"), "{message}");
    let tried: Vec<String> = fake.requests()[before..]
        .iter()
        .filter_map(|r| r.key.clone())
        .collect();
    assert_eq!(
        tried,
        std::slice::from_ref(&owner),
        "only its own account was tried"
    );

    // While it cools, no upstream is asked at all.
    let before = fake.requests().len();
    let (status, _) = responses(
        &keyway,
        json!({"model": "gpt-5", "input": "again", "previous_response_id": id}),
        None,
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(fake.requests().len(), before);
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_store_false_conversation_moves_without_the_reasoning_the_new_account_cannot_read() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    setup
        .add_accounts(&fake, "openai", &["sk-oa-x", "sk-oa-y"])
        .await;
    let keyway = setup.start().await;

    // Codex with `store: false` sends its whole conversation every turn, reasoning included.
    let mut input = vec![json!({"type": "message", "role": "user", "content": "hi"})];
    let turn = |input: &Vec<Value>| json!({"model": "gpt-5", "store": false, "include": ["reasoning.encrypted_content"], "input": input});
    let mut keys = Vec::new();
    for n in 0..2 {
        let (status, answer) = responses(&keyway, turn(&input), Some("codex-thread")).await;
        assert_eq!(status, 200, "turn {n}: {answer}");
        keys.push(key_of(&answer));
        input.extend(answer["output"].as_array().unwrap().iter().cloned());
        input.push(json!({"type": "message", "role": "user", "content": format!("next {n}")}));
    }
    assert_eq!(keys[0], keys[1], "the conversation stays");
    let home = keys[0].clone();
    let other = if home == "sk-oa-x" {
        "sk-oa-y"
    } else {
        "sk-oa-x"
    };

    // Its account fails: the turn moves, and the other account gets no item it cannot read.
    fake.push(&home, Behaviour::ServerError(500));
    let (status, answer) = responses(&keyway, turn(&input), Some("codex-thread")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(key_of(&answer), other);
    let sent = fake.requests().last().cloned().unwrap().json().unwrap();
    let reasoning = |v: &Value| {
        v["input"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "reasoning")
            .count()
    };
    assert_eq!(
        reasoning(&sent),
        0,
        "the old account's reasoning stayed behind"
    );
    assert_eq!(
        reasoning(&turn(&input)),
        2,
        "the client sent two reasoning items"
    );
    input.extend(answer["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"type": "message", "role": "user", "content": "last"}));

    // Next turn: its own new reasoning goes along, the old account's still does not.
    let (status, answer) = responses(&keyway, turn(&input), Some("codex-thread")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(key_of(&answer), other, "it stays on its new account");
    let sent = fake.requests().last().cloned().unwrap().json().unwrap();
    assert_eq!(reasoning(&sent), 1);
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn session_fields_from_the_body_identify_a_conversation_too() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    setup
        .add_accounts(&fake, "openai", &["sk-oa-x", "sk-oa-y"])
        .await;
    let keyway = setup.start().await;
    let first = chat_as(&keyway, "dev@example.com").await;
    for _ in 0..3 {
        assert_eq!(chat_as(&keyway, "dev@example.com").await, first);
    }
    let live = sessions(&keyway).await;
    assert_eq!(session(&live, "dev@example.com")["source"], "user");
    assert_eq!(keyway.stop().await, Some(0));
}

/// A Chat Completions request naming OpenAI `user`; the fake's answer text.
async fn chat_as(keyway: &Keyway, user: &str) -> String {
    let body =
        json!({"model": "gpt-4o", "user": user, "messages": [{"role": "user", "content": "hi"}]});
    let r = keyway
        .http
        .post(keyway.url("/v1/chat/completions"))
        .bearer_auth(&keyway.client_key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
