//! What each tool spends: named client keys (added, listed, revoked), every request
//! attributed to the key it came with and priced from the usage its response carried (input,
//! output, cache reads and writes; every API, streamed and not), a model without a price
//! shown without a cost, and per-key limits: a rate limit refuses with `Retry-After` and serves
//! again when its minute is over; a daily budget stops its key once crossed, also after a
//! restart.

use std::time::Duration;

use keyway_tests::{FakeUpstream, Keyway, Setup};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Published prices (USD per million tokens) of the models these tests use, as the providers'
/// pricing pages give them; the built-in table must agree.
const SONNET_4_5: Rates = Rates {
    input: 3.0,
    output: 15.0,
    cache_read: 0.30,
    cache_write: 3.75,
};
const GPT_4O: Rates = Rates {
    input: 2.50,
    output: 10.0,
    cache_read: 1.25,
    cache_write: 2.50,
};
const GPT_5: Rates = Rates {
    input: 1.25,
    output: 10.0,
    cache_read: 0.125,
    cache_write: 1.25,
};
const GEMINI_2_5_PRO: Rates = Rates {
    input: 1.25,
    output: 10.0,
    cache_read: 0.125,
    cache_write: 1.25,
};

#[derive(Clone, Copy)]
struct Rates {
    input: f64,
    output: f64,
    cache_read: f64,
    cache_write: f64,
}

/// The usage a response reported, as the client saw it: uncached input, cache reads and
/// writes, output.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Seen {
    uncached: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
}

impl Seen {
    fn cost(self, r: Rates) -> f64 {
        (self.uncached as f64 * r.input
            + self.cache_read as f64 * r.cache_read
            + self.cache_write as f64 * r.cache_write
            + self.output as f64 * r.output)
            / 1e6
    }
}

/// A system prompt long enough for the fake's prompt cache (over 1,024 tokens).
fn long_system() -> String {
    "You are a careful assistant who reads the whole repository first. ".repeat(100)
}

async fn setup_with_accounts() -> (FakeUpstream, Setup) {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    for (provider, secret) in [
        ("anthropic", "sk-ant-spend"),
        ("openai", "sk-openai-spend"),
        ("google", "AIza-spend"),
    ] {
        fake.register_key(provider.parse().expect("provider"), secret);
        setup.add_account(provider, "Main", secret).await;
    }
    (fake, setup)
}

/// The `data:` payloads of an SSE body, as JSON.
fn sse_data(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

/// One Anthropic request with `key`; the usage it reported.
async fn anthropic(keyway: &Keyway, key: &str, stream: bool) -> Seen {
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
        "system": [{"type": "text", "text": long_system(), "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Summarise the repository."}],
    });
    let r = keyway
        .http
        .post(keyway.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    let usages: Vec<Value> = if stream {
        sse_data(&text)
            .into_iter()
            .filter_map(|d| {
                d.get("usage")
                    .or_else(|| d.pointer("/message/usage"))
                    .cloned()
            })
            .collect()
    } else {
        let v: Value = serde_json::from_str(&text).expect("json");
        vec![v["usage"].clone()]
    };
    // Each report replaces the counts it carries (a stream's last word is final).
    let mut seen = Seen::default();
    for u in usages {
        let n = |k: &str| u[k].as_u64();
        seen.uncached = n("input_tokens").unwrap_or(seen.uncached);
        seen.cache_read = n("cache_read_input_tokens").unwrap_or(seen.cache_read);
        seen.cache_write = n("cache_creation_input_tokens").unwrap_or(seen.cache_write);
        seen.output = n("output_tokens").unwrap_or(seen.output);
    }
    seen
}

/// One OpenAI chat request with `key`; the usage it reported.
async fn openai_chat(keyway: &Keyway, key: &str, stream: bool) -> Seen {
    let mut body = json!({
        "model": "gpt-4o", "stream": stream,
        "messages": [{"role": "system", "content": long_system()}, {"role": "user", "content": "hi"}],
    });
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    let text = bearer_post(keyway, "/v1/chat/completions", key, &body).await;
    let usage = if stream {
        sse_data(&text)
            .into_iter()
            .rev()
            .find_map(|d| d.get("usage").filter(|u| !u.is_null()).cloned())
            .expect("a usage chunk")
    } else {
        serde_json::from_str::<Value>(&text).expect("json")["usage"].clone()
    };
    let prompt = usage["prompt_tokens"].as_u64().expect("prompt_tokens");
    let cached = usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    Seen {
        uncached: prompt - cached,
        cache_read: cached,
        cache_write: 0,
        output: usage["completion_tokens"]
            .as_u64()
            .expect("completion_tokens"),
    }
}

/// One OpenAI Responses request with `key`; the usage it reported.
async fn openai_responses(keyway: &Keyway, key: &str) -> Seen {
    let body = json!({"model": "gpt-5", "instructions": long_system(), "input": "hi"});
    let text = bearer_post(keyway, "/v1/responses", key, &body).await;
    let usage = serde_json::from_str::<Value>(&text).expect("json")["usage"].clone();
    let input = usage["input_tokens"].as_u64().expect("input_tokens");
    let cached = usage["input_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    Seen {
        uncached: input - cached,
        cache_read: cached,
        cache_write: 0,
        output: usage["output_tokens"].as_u64().expect("output_tokens"),
    }
}

/// One Gemini request with `key`; the usage it reported.
async fn gemini(keyway: &Keyway, key: &str, stream: bool) -> Seen {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let body = json!({
        "systemInstruction": {"parts": [{"text": long_system()}]},
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    });
    let r = keyway
        .http
        .post(keyway.url(&format!("/v1beta/models/gemini-2.5-pro:{method}")))
        .header("x-goog-api-key", key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    let usage = if stream {
        sse_data(&text)
            .into_iter()
            .rev()
            .find_map(|d| d.get("usageMetadata").cloned())
            .expect("usage")
    } else {
        serde_json::from_str::<Value>(&text).expect("json")["usageMetadata"].clone()
    };
    let n = |k: &str| usage[k].as_u64().unwrap_or(0);
    Seen {
        uncached: n("promptTokenCount") - n("cachedContentTokenCount"),
        cache_read: n("cachedContentTokenCount"),
        cache_write: 0,
        output: n("candidatesTokenCount") + n("thoughtsTokenCount"),
    }
}

async fn bearer_post(keyway: &Keyway, path: &str, key: &str, body: &Value) -> String {
    let r = keyway
        .http
        .post(keyway.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.expect("body")
}

/// `keyway usage --by key --json` rows by key id.
async fn usage_by_key(keyway: &Keyway) -> Vec<Value> {
    let out = keyway
        .cli(&["usage", "--since", "1d", "--by", "key", "--json"])
        .await;
    serde_json::from_str::<Value>(out.ok())
        .expect("usage JSON")
        .as_array()
        .expect("rows")
        .clone()
}

fn row<'a>(rows: &'a [Value], key: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row for {key} in {rows:?}"))
}

fn assert_cost(row: &Value, expected: f64) {
    let cost = row["cost_usd"].as_f64().expect("a cost");
    assert!(
        (cost - expected).abs() < 1e-9,
        "cost {cost} vs expected {expected} in {row}"
    );
}

#[tokio::test]
async fn each_key_is_charged_for_its_own_requests_at_the_published_prices() {
    let (_fake, setup) = setup_with_accounts().await;
    // One key added before Keyway runs (the CLI edits the config and keyring), one while it
    // runs (through the instance).
    let claude = setup
        .cli(&["client-key", "add", "--label", "Claude Code"])
        .await
        .ok()
        .to_owned();
    assert!(claude.starts_with("kw-") && !claude.contains(char::is_whitespace));
    let keyway = setup.start().await;
    let scripts = keyway
        .cli(&["client-key", "add", "--label", "scripts"])
        .await
        .ok()
        .to_owned();
    assert_ne!(claude, scripts);

    // Claude Code: Anthropic, streamed and not; the second request reads the cache the first
    // wrote.
    let mut claude_cost = 0.0;
    for stream in [false, true, false] {
        claude_cost += anthropic(&keyway, &claude, stream).await.cost(SONNET_4_5);
    }
    // Scripts: every other API.
    let mut scripts_cost = 0.0;
    for stream in [false, true] {
        scripts_cost += openai_chat(&keyway, &scripts, stream).await.cost(GPT_4O);
        scripts_cost += gemini(&keyway, &scripts, stream).await.cost(GEMINI_2_5_PRO);
    }
    scripts_cost += openai_responses(&keyway, &scripts).await.cost(GPT_5);

    let rows = usage_by_key(&keyway).await;
    let list: Value =
        serde_json::from_str(keyway.cli(&["client-key", "list", "--json"]).await.ok())
            .expect("list JSON");
    let id_of = |label: &str| -> String {
        list.as_array()
            .and_then(|l| l.iter().find(|k| k["label"] == label))
            .and_then(|k| k["id"].as_str())
            .unwrap_or_else(|| panic!("no key {label} in {list}"))
            .to_owned()
    };
    let (claude_id, scripts_id) = (id_of("Claude Code"), id_of("scripts"));
    assert!(
        !list.to_string().contains(&claude),
        "a list never shows a secret"
    );

    let c = row(&rows, &claude_id);
    assert_eq!(
        (c["label"].as_str(), c["requests"].as_u64()),
        (Some("Claude Code"), Some(3))
    );
    assert!(c["cache_read_tokens"].as_u64().unwrap_or(0) > 0, "{c}");
    assert!(c["cache_write_tokens"].as_u64().unwrap_or(0) > 0, "{c}");
    assert_cost(c, claude_cost);
    let s = row(&rows, &scripts_id);
    assert_eq!(s["requests"].as_u64(), Some(5));
    assert_cost(s, scripts_cost);
    assert_eq!(s["unpriced_requests"].as_u64(), Some(0));
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_revoked_key_is_refused_and_the_default_key_cannot_be_revoked() {
    let (_fake, setup) = setup_with_accounts().await;
    let keyway = setup.start().await;
    let key = keyway
        .cli(&["client-key", "add", "--label", "old laptop"])
        .await
        .ok()
        .to_owned();
    anthropic(&keyway, &key, false).await;
    let list: Value = keyway.api_get("/client-keys").await;
    let id = list[1]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        keyway.cli(&["client-key", "revoke", &id]).await.ok(),
        format!("revoked {id}")
    );
    let r = keyway
        .http
        .post(keyway.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("revoked")),
        "{body}"
    );
    assert_eq!(
        setup_keyring_entry(&keyway, &format!("client-key:{id}")).await,
        None,
        "the secret left the keyring"
    );
    let refused = keyway.cli(&["client-key", "revoke", "default"]).await;
    assert!(
        refused
            .err()
            .contains("rotate it with `keyway client-key --rotate`")
    );
    // The default key still works.
    assert_eq!(keyway.anthropic("claude-sonnet-4-5").await.status(), 200);
    assert_eq!(keyway.stop().await, Some(0));
}

async fn setup_keyring_entry(keyway: &Keyway, name: &str) -> Option<String> {
    keyway.setup.keyring_entry(name).await
}

#[tokio::test]
async fn an_rpm_limit_refuses_with_retry_after_and_serves_again_after_the_minute() {
    let (_fake, setup) = setup_with_accounts().await;
    let keyway = setup.start().await;
    let key = keyway
        .cli(&["client-key", "add", "--label", "agent"])
        .await
        .ok()
        .to_owned();
    let id = keyway.api_get("/client-keys").await[1]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        keyway
            .cli(&["client-key", "limit", &id, "--rpm", "2"])
            .await
            .ok(),
        format!("{id}: 2 rpm")
    );
    for _ in 0..2 {
        anthropic(&keyway, &key, false).await;
    }
    let r = keyway
        .http
        .post(keyway.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = r.json().await.expect("json");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert!(
        message.contains("`agent`")
            && message.contains("2 requests per minute")
            && message.contains("--rpm"),
        "{message}"
    );
    // Other keys are not held back by this one's limit.
    assert_eq!(keyway.anthropic("claude-sonnet-4-5").await.status(), 200);
    // The limit is a window of time: wait out what Retry-After said, as a client would.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    anthropic(&keyway, &key, false).await;
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_daily_budget_stops_its_key_once_crossed_and_after_a_restart() {
    let (_fake, setup) = setup_with_accounts().await;
    let keyway = setup.start().await;
    let key = keyway
        .cli(&["client-key", "add", "--label", "runaway agent"])
        .await
        .ok()
        .to_owned();
    let id = keyway.api_get("/client-keys").await[1]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // One request costs far more than this.
    keyway
        .cli(&["client-key", "limit", &id, "--daily-usd", "0.001"])
        .await
        .ok();
    let mut events = keyway
        .api(reqwest::Method::GET, "/events")
        .send()
        .await
        .expect("events");
    let spent = anthropic(&keyway, &key, false).await.cost(SONNET_4_5);
    assert!(spent > 0.001, "{spent}");
    // The crossing is announced once, on the event stream.
    let alert = next_budget_event(&mut events).await;
    assert_eq!(
        (alert["key"].as_str(), alert["period"].as_str()),
        (Some(id.as_str()), Some("daily"))
    );
    assert_eq!(alert["warn_only"], false);

    let refused = |keyway: &Keyway| {
        let request = keyway
            .http
            .post(keyway.url("/v1/messages"))
            .header("x-api-key", &key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}));
        async move {
            let r = request.send().await.expect("request");
            (
                r.status(),
                r.headers().get("retry-after").is_some(),
                r.text().await.unwrap_or_default(),
            )
        }
    };
    let (status, retry_after, body) = refused(&keyway).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry_after);
    assert!(
        body.contains("daily budget of $0.00") && body.contains("local midnight"),
        "{body}"
    );
    let view = keyway.api_get("/client-keys").await;
    assert_eq!(view[1]["over_budget"], "daily", "{view}");

    // A restart does not reset the day's spend.
    let keyway = keyway.restart().await;
    let (status, _, body) = refused(&keyway).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Warn-only budgets let it through again.
    keyway
        .cli(&["client-key", "limit", &id, "--warn-only"])
        .await
        .ok();
    anthropic(&keyway, &key, false).await;
    assert_eq!(keyway.stop().await, Some(0));
}

/// The next `budget` event's data, within 10 s.
async fn next_budget_event(events: &mut reqwest::Response) -> Value {
    let mut buffer = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let chunk = events.chunk().await.expect("stream").expect("open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if event.lines().any(|l| l == "event: budget") {
                    let data = event
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .expect("data");
                    return serde_json::from_str::<Value>(data).expect("json");
                }
            }
        }
    })
    .await;
    found.expect("a budget event")
}

#[tokio::test]
async fn a_model_without_a_price_has_no_cost_not_a_zero_one() {
    let (_fake, setup) = setup_with_accounts().await;
    let keyway = setup.start().await;
    let r = keyway.anthropic("claude-experimental-9").await;
    assert_eq!(r.status(), 200);
    let record = keyway.api_get("/requests").await;
    let last = record
        .as_array()
        .and_then(|l| l.last())
        .expect("a record")
        .clone();
    assert_eq!(last["model"], "claude-experimental-9");
    assert!(last["input_tokens"].as_u64().is_some(), "{last}");
    assert!(last["cost_usd"].is_null(), "{last}");
    let out = keyway
        .cli(&["usage", "--since", "1d", "--by", "model", "--json"])
        .await;
    let rows: Value = serde_json::from_str(out.ok()).expect("json");
    let row = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["model"] == "claude-experimental-9"))
        .expect("its row")
        .clone();
    assert!(row["cost_usd"].is_null(), "{row}");
    assert_eq!(row["unpriced_requests"], 1);
    let table = keyway
        .cli(&["usage", "--since", "1d", "--by", "model"])
        .await;
    assert!(table.ok().contains("no price"), "{}", table.ok());
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn keys_added_from_the_cli_while_the_dashboard_edits_limits_are_all_kept() {
    let (_fake, setup) = setup_with_accounts().await;
    let keyway = setup.start().await;
    let adds = (0..8).map(|i| {
        let label = format!("tool {i}");
        let keyway = &keyway;
        async move { keyway.cli(&["client-key", "add", "--label", &label]).await }
    });
    let puts = (0..8).map(|i| {
        let keyway = &keyway;
        async move {
            keyway
                .api(reqwest::Method::PUT, "/client-keys/default/limits")
                .json(&json!({"rpm": 1000 + i}))
                .send()
                .await
                .expect("put")
                .status()
        }
    });
    let (added, put) = tokio::join!(
        futures_util::future::join_all(adds),
        futures_util::future::join_all(puts)
    );
    assert!(added.iter().all(|o| o.ok().starts_with("kw-")));
    assert!(put.iter().all(|s| *s == StatusCode::OK), "{put:?}");
    let list = keyway.api_get("/client-keys").await;
    assert_eq!(list.as_array().map(Vec::len), Some(9), "{list}");
    // Every key works.
    for o in &added {
        anthropic(&keyway, o.ok(), false).await;
    }
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn bad_labels_and_limits_are_refused_with_the_fix() {
    let (_fake, setup) = setup_with_accounts().await;
    let keyway = setup.start().await;
    let long = "x".repeat(65);
    let out = keyway.cli(&["client-key", "add", "--label", &long]).await;
    assert!(
        out.err().contains("label of 1 to 64 characters"),
        "{}",
        out.err()
    );
    let out = keyway
        .cli(&["client-key", "limit", "default", "--daily-usd=-5"])
        .await;
    assert!(out.err().contains("--daily-usd"), "{}", out.err());
    let r = keyway
        .api(reqwest::Method::PUT, "/client-keys/default/limits")
        .json(&json!({"rpm": 0}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = keyway
        .api(reqwest::Method::PUT, "/client-keys/default/limits")
        .json(&json!({"daily_usd": 1e308, "rpm": 5}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = keyway
        .api(reqwest::Method::PUT, "/client-keys/nope/limits")
        .json(&json!({}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Nothing was saved.
    assert_eq!(keyway.api_get("/client-keys").await[0]["limits"], json!({}));
    assert_eq!(keyway.stop().await, Some(0));
}
