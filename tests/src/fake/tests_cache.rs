//! The fake keeps what providers keep per organization: the prompt cache (read and written
//! in the real usage fields) and Responses state (refused anywhere else, as OpenAI refuses
//! it). Shown here so that session tests stand on a fake that says no where providers do.

use std::time::Duration;

use serde_json::{Value, json};

use super::{FakeUpstream, Provider};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = tokio::time::timeout(Duration::from_secs(20), request.send())
        .await
        .expect("the fake answers")
        .expect("request to the fake");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// A coding session's system prompt: long enough to be cached (over 1,024 tokens).
fn system() -> Value {
    json!([{ "type": "text", "text": "You are a careful coding assistant. ".repeat(200),
             "cache_control": { "type": "ephemeral" } }])
}

/// A Messages request for turn `n` of a conversation, the breakpoint on its last message as
/// Claude Code puts it.
fn turn(n: usize) -> Value {
    let mut messages = Vec::new();
    for i in 0..n {
        messages.push(
            json!({"role": "user", "content": [{"type": "text", "text": format!("question {i}")}]}),
        );
        messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": format!("answer {i}")}]}));
    }
    messages.push(json!({"role": "user", "content": [{
        "type": "text", "text": format!("question {n}"), "cache_control": {"type": "ephemeral"}
    }]}));
    json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "system": system(), "messages": messages})
}

async fn messages(fake: &FakeUpstream, key: &str, body: &Value) -> Value {
    let (status, body) = send(
        client()
            .post(fake.url("/v1/messages"))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(body),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["usage"].clone()
}

#[tokio::test]
async fn anthropic_reads_what_the_same_key_wrote_and_nothing_another_key_did() {
    let fake = FakeUpstream::start().await;
    fake.register_keys(Provider::Anthropic, ["sk-ant-a", "sk-ant-b"]);
    let first = messages(&fake, "sk-ant-a", &turn(0)).await;
    assert_eq!(first["cache_read_input_tokens"], 0, "{first}");
    let written = first["cache_creation_input_tokens"].as_u64().unwrap();
    assert!(
        written > 1024,
        "the system prompt and first turn are written: {first}"
    );

    let second = messages(&fake, "sk-ant-a", &turn(1)).await;
    assert_eq!(
        second["cache_read_input_tokens"].as_u64(),
        Some(written),
        "{second}"
    );
    assert!(
        second["cache_creation_input_tokens"].as_u64().unwrap() > 0,
        "the new turn is written"
    );

    // Another organization has never seen the prefix: all of it is written again.
    let elsewhere = messages(&fake, "sk-ant-b", &turn(1)).await;
    assert_eq!(elsewhere["cache_read_input_tokens"], 0, "{elsewhere}");
    let total = |u: &Value| {
        [
            "input_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ]
        .iter()
        .map(|k| u[k].as_u64().unwrap())
        .sum::<u64>()
    };
    assert_eq!(
        total(&elsewhere),
        total(&second),
        "the same prompt, counted the same"
    );
}

#[tokio::test]
async fn an_unused_cache_expires_after_its_lifetime() {
    let fake = FakeUpstream::start_with(super::FakeConfig {
        cache_ttl: Duration::from_millis(300),
        ..super::FakeConfig::default()
    })
    .await
    .expect("start");
    fake.register_key(Provider::Anthropic, "sk-ant-a");
    messages(&fake, "sk-ant-a", &turn(0)).await;
    // Let the lifetime pass (this is what is tested): the fake's clock is the wall clock.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let cold = messages(&fake, "sk-ant-a", &turn(1)).await;
    assert_eq!(cold["cache_read_input_tokens"], 0, "{cold}");
}

#[tokio::test]
async fn openai_and_gemini_cache_prefixes_on_their_own() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::OpenAi, "sk-proj-a");
    fake.register_key(Provider::Google, "AIza-a");
    let long = "Context for the task. ".repeat(300);
    let chat = |n: usize| {
        let mut messages = vec![json!({"role": "system", "content": long})];
        for i in 0..=n {
            messages.push(json!({"role": "user", "content": format!("question {i}")}));
        }
        json!({"model": "gpt-4o", "messages": messages})
    };
    let ask = |body: Value| {
        client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth("sk-proj-a")
            .json(&body)
    };
    let (_, first) = send(ask(chat(0))).await;
    assert_eq!(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let (_, second) = send(ask(chat(1))).await;
    let cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached >= 1024 && cached % 128 == 0, "{second}");
    assert!(cached <= second["usage"]["prompt_tokens"].as_u64().unwrap());

    let gemini = |n: usize| {
        let mut contents = vec![json!({"role": "user", "parts": [{"text": long}]})];
        for i in 0..n {
            contents.push(json!({"role": "model", "parts": [{"text": format!("a{i}")}]}));
            contents.push(json!({"role": "user", "parts": [{"text": format!("q{i}")}]}));
        }
        json!({"contents": contents})
    };
    let ask = |body: Value| {
        client()
            .post(fake.url("/v1beta/models/gemini-2.5-flash:generateContent"))
            .header("x-goog-api-key", "AIza-a")
            .json(&body)
    };
    let (_, first) = send(ask(gemini(0))).await;
    assert!(
        first["usageMetadata"]
            .get("cachedContentTokenCount")
            .is_none(),
        "{first}"
    );
    let (_, second) = send(ask(gemini(1))).await;
    assert!(
        second["usageMetadata"]["cachedContentTokenCount"]
            .as_u64()
            .unwrap()
            >= 1024
    );
}

#[tokio::test]
async fn responses_state_lives_only_with_the_key_that_made_it() {
    let fake = FakeUpstream::start().await;
    fake.register_keys(Provider::OpenAi, ["sk-proj-a", "sk-proj-b"]);
    let respond = |key: &'static str, body: Value| {
        client()
            .post(fake.url("/v1/responses"))
            .bearer_auth(key)
            .json(&body)
    };
    let (status, first) = send(respond(
        "sk-proj-a",
        json!({"model": "gpt-5", "input": "hi", "store": false, "include": ["reasoning.encrypted_content"]}),
    ))
    .await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    let reasoning = first["output"][0].clone();
    assert_eq!(reasoning["type"], "reasoning", "{first}");

    // The chain continues with its key, and is unknown to another.
    let next = json!({"model": "gpt-5", "input": "more", "previous_response_id": id});
    let (status, body) = send(respond("sk-proj-a", next.clone())).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(respond("sk-proj-b", next)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["code"], "previous_response_not_found",
        "{body}"
    );
    assert_eq!(body["error"]["param"], "previous_response_id");

    // Encrypted reasoning decrypts only where it was made.
    let replay = json!({"model": "gpt-5", "store": false, "input": [
        {"type": "message", "role": "user", "content": "hi"}, reasoning,
        {"type": "message", "role": "user", "content": "more"}]});
    let (status, body) = send(respond("sk-proj-a", replay.clone())).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(respond("sk-proj-b", replay)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_encrypted_content", "{body}");
}
