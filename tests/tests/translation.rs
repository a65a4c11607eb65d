//! Requests routed to a provider of another wire format are translated: the fake upstream
//! receives a request of its own format, and the client an answer, stream or error of its
//! own. Same-format requests are untouched (see `forwarding.rs`). The per-field conformance,
//! checked with the official SDKs, is in `translation_sdk.rs`.

use keyway_tests::{
    Behaviour, FakeUpstream, Keyway, Provider, RateLimit, Setup, write_claude_credentials,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A Keyway whose `claude-*` models go to OpenAI (`gpt-4o`), `gpt-*` to Anthropic
/// (`claude-sonnet-4-5`) and `gemini-*` to OpenAI (`gpt-4o-mini`), one API key each.
async fn crossed(fake: &FakeUpstream) -> Keyway {
    fake.register_key(Provider::Anthropic, "sk-ant-x");
    fake.register_key(Provider::OpenAi, "sk-oa-x");
    fake.register_key(Provider::Google, "AIza-x");
    let setup = Setup::new(
        &fake.base_url(),
        "[aliases]\n\"claude-*\" = \"openai:gpt-4o\"\n\"gpt-*\" = \"anthropic:claude-sonnet-4-5\"\n\"gemini-*\" = \"openai:gpt-4o-mini\"\n",
    );
    setup.add_account("anthropic", "Claude", "sk-ant-x").await;
    setup.add_account("openai", "GPT", "sk-oa-x").await;
    setup.add_account("google", "Gemini", "AIza-x").await;
    setup.start().await
}

fn route_of(r: &reqwest::Response) -> &str {
    r.headers()
        .get("x-keyway-route")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The `data:` payloads of an SSE body, parsed.
fn sse_data(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

#[tokio::test]
async fn a_messages_client_is_answered_by_an_openai_account_in_its_own_shape() {
    let fake = FakeUpstream::start().await;
    let keyway = crossed(&fake).await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "system": "Be brief.",
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = keyway
        .post("/v1/messages", &body)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(route_of(&r), "alias claude-*: openai:gpt-4o (translated)");
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["model"], "claude-sonnet-4-5");
    assert_eq!(answer["stop_reason"], "end_turn");
    let text = answer["content"][0]["text"].as_str().expect("text block");
    assert!(text.starts_with("served by sk-oa-x"), "{answer}");
    assert!(
        answer["usage"]["input_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    assert!(
        answer["usage"]["output_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );

    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].key.as_deref(), Some("sk-oa-x"));
    assert_eq!(seen[0].header("anthropic-version"), None);
    assert_eq!(seen[0].header("anthropic-beta"), None);
    let sent = seen[0].json().expect("json body");
    assert_eq!(sent["model"], "gpt-4o");
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    );
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_streamed_chat_request_to_anthropic_comes_back_as_chat_chunks() {
    let fake = FakeUpstream::start().await;
    let keyway = crossed(&fake).await;
    let body = json!({"model": "gpt-4.1", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = keyway
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let text = r.text().await.expect("body");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let chunks = sse_data(&text);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(content.starts_with("served by sk-ant-x +1 +2"), "{content}");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    let usage = chunks.last().map(|c| &c["usage"]).expect("a usage chunk");
    assert!(
        usage["prompt_tokens"].as_u64().is_some_and(|n| n > 0),
        "{usage}"
    );

    let seen = fake.requests();
    assert_eq!(seen[0].path, "/v1/messages");
    assert_eq!(seen[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen[0].header("accept"), Some("text/event-stream"));
    let sent = seen[0].json().expect("json body");
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["stream"], true);
    assert!(sent["max_tokens"].as_u64().is_some());

    // The request record counts the tokens the client was told of.
    let records = keyway.api_get("/requests").await;
    let record = &records[0];
    assert!(
        record["input_tokens"].as_u64().is_some_and(|n| n > 0),
        "{record}"
    );
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_gemini_client_is_served_by_an_openai_account_streamed_and_not() {
    let fake = FakeUpstream::start().await;
    let keyway = crossed(&fake).await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                      "generationConfig": {"maxOutputTokens": 32}});
    let r = keyway
        .post("/v1beta/models/gemini-2.5-pro:generateContent", &body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.expect("json");
    let text = answer["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .expect("text part");
    assert!(text.starts_with("served by sk-oa-x"), "{answer}");
    assert_eq!(answer["candidates"][0]["finishReason"], "STOP");
    assert!(
        answer["usageMetadata"]["promptTokenCount"]
            .as_u64()
            .is_some()
    );

    let r = keyway
        .post(
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
            &body,
        )
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let chunks = sse_data(&r.text().await.expect("body"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert!(text.starts_with("served by sk-oa-x +1 +2"), "{text}");
    let seen = fake.requests();
    assert_eq!(seen[1].path, "/v1/chat/completions");
    assert_eq!(seen[1].json().expect("json")["model"], "gpt-4o-mini");
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn an_upstream_error_reaches_the_client_in_its_shape_with_its_status() {
    let fake = FakeUpstream::start().await;
    let keyway = crossed(&fake).await;
    fake.push("sk-oa-x", Behaviour::ContextTooLong);
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("openai upstream:"), "{message}");

    // A rate limit fails over as ever; with one account, the client gets a 429 of its shape.
    fake.push("sk-oa-x", Behaviour::RateLimited(RateLimit::RetryAfter(30)));
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn what_the_target_cannot_express_is_refused_naming_the_field() {
    let fake = FakeUpstream::start().await;
    let keyway = crossed(&fake).await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
                      "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                      "messages": [{"role": "user", "content": "search"}]});
    let r = keyway
        .post("/v1/messages", &body)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("keyway: tools[0]"), "{message}");
    assert!(fake.requests().is_empty(), "nothing reaches the upstream");
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn token_counts_go_to_a_count_endpoint_or_are_estimated_and_say_so() {
    let fake = FakeUpstream::start().await;
    let keyway = crossed(&fake).await;
    // Anthropic's count endpoint has no counterpart at OpenAI: Keyway estimates.
    let body = json!({"model": "claude-sonnet-4-5",
                      "messages": [{"role": "user", "content": "count these words please"}]});
    let r = keyway
        .post("/v1/messages/count_tokens", &body)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("x-keyway-estimate")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let count: Value = r.json().await.expect("json");
    assert!(
        count["input_tokens"].as_u64().is_some_and(|n| n > 0),
        "{count}"
    );
    assert!(fake.requests().is_empty());
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_subscription_login_never_serves_a_translated_request() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::OpenAi, "sk-oa-x");
    let setup = Setup::new(
        &fake.base_url(),
        "[aliases]\n\"gpt-*\" = \"anthropic:claude-sonnet-4-5\"\n",
    );
    setup.add_account("openai", "GPT", "sk-oa-x").await;
    let tokens = fake
        .claude_oauth()
        .issue_tokens("max", std::time::Duration::from_secs(3600));
    let home = tempfile::tempdir().expect("home");
    let file = write_claude_credentials(home.path(), &tokens, "max").expect("credentials");
    let from = file.to_str().expect("utf-8");
    setup
        .cli(&[
            "account",
            "import",
            "claude-code",
            "--from",
            from,
            "--label",
            "Max",
            "--accept-terms-risk",
        ])
        .await
        .ok();
    let keyway = setup.start().await;
    let r = keyway
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.expect("json");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("subscription logins") && message.contains("keyway account add anthropic"),
        "{message}"
    );
    assert!(fake.requests().is_empty());
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_fallback_step_of_another_format_takes_over_translated() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-x");
    fake.register_key(Provider::Google, "AIza-x");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "Claude", "sk-ant-x").await;
    setup.add_account("google", "Gemini", "AIza-x").await;
    let set = setup
        .cli(&[
            "policy",
            "set",
            "anthropic",
            "--strategy",
            "round_robin",
            "--fallback",
            "rate_limit=google:gemini-2.5-flash",
        ])
        .await;
    set.ok();
    let keyway = setup.start().await;
    fake.set_default(
        "sk-ant-x",
        Behaviour::RateLimited(RateLimit::RetryAfter(60)),
    );
    let r = keyway.anthropic_stream("claude-sonnet-4-5").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        route_of(&r),
        "anthropic, google:gemini-2.5-flash (translated) (after rate_limit)"
    );
    let text = r.text().await.expect("body");
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    let seen = fake.requests();
    assert_eq!(
        seen.last().map(|r| r.path.as_str()),
        Some("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    );
    assert_eq!(keyway.stop().await, Some(0));
}

/// [`crossed`] with one-second idle and first-byte timeouts, for upstreams that misbehave.
async fn crossed_impatient(fake: &FakeUpstream) -> Keyway {
    fake.register_key(Provider::OpenAi, "sk-oa-x");
    let setup = Setup::new(
        &fake.base_url(),
        "[aliases]\n\"claude-*\" = \"openai:gpt-4o\"\n\n[limits]\nfirst_byte_timeout_secs = 5\n\
         drain_secs = 5\nupstream_idle_timeout_secs = 1\n",
    );
    setup.add_account("openai", "GPT", "sk-oa-x").await;
    setup.start().await
}

/// The `event:` names of an Anthropic SSE body, in order.
fn event_names(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect()
}

#[tokio::test]
async fn a_translated_stream_that_breaks_or_stops_short_ends_with_an_error_event() {
    let fake = FakeUpstream::start().await;
    let keyway = crossed_impatient(&fake).await;
    // The connection drops mid-stream.
    fake.push("sk-oa-x", Behaviour::StreamThenDrop { events: 2 });
    let text = keyway
        .anthropic_stream("claude-sonnet-4-5")
        .await
        .text()
        .await
        .expect("body");
    let names = event_names(&text);
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"error"), "{text}");
    assert!(text.contains("served by sk-oa-x"), "{text}");

    // The upstream ends its body cleanly but never says it finished.
    let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                       "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "half"},
                       "finish_reason": null}]});
    fake.push(
        "sk-oa-x",
        Behaviour::Raw {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: format!("data: {chunk}\n\n"),
        },
    );
    let text = keyway
        .anthropic_stream("claude-sonnet-4-5")
        .await
        .text()
        .await
        .expect("body");
    let names = event_names(&text);
    assert_eq!(names.last(), Some(&"error"), "{text}");
    assert!(text.contains("before its last event"), "{text}");

    // The upstream falls silent: the idle limit ends it.
    fake.push("sk-oa-x", Behaviour::StreamThenStall { events: 1 });
    let text = keyway
        .anthropic_stream("claude-sonnet-4-5")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(event_names(&text).last(), Some(&"error"), "{text}");
    assert!(text.contains("upstream_idle_timeout_secs"), "{text}");

    // Not streamed: a stall ends as a 502 in the client's shape.
    fake.push("sk-oa-x", Behaviour::StreamThenStall { events: 1 });
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["type"], "error");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("upstream_idle_timeout_secs")),
        "{body}"
    );
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn oversized_translated_answers_and_events_are_cut_with_a_clear_error() {
    let fake = FakeUpstream::start().await;
    let keyway = crossed_impatient(&fake).await;
    // A whole answer larger than Keyway reads to translate.
    let huge = format!(
        "{{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o\",\
         \"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{}\"}},\
         \"finish_reason\":\"stop\"}}]}}",
        "x".repeat(33 * 1024 * 1024)
    );
    fake.push(
        "sk-oa-x",
        Behaviour::Raw {
            status: 200,
            headers: vec![],
            body: huge,
        },
    );
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body: Value = r.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("longer than 32 MiB")),
        "{body}"
    );

    // One SSE event larger than the translator holds.
    let line = format!(
        "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\
         \"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
        "y".repeat(9 * 1024 * 1024)
    );
    fake.push(
        "sk-oa-x",
        Behaviour::Raw {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: line,
        },
    );
    let text = keyway
        .anthropic_stream("claude-sonnet-4-5")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(
        event_names(&text).last(),
        Some(&"error"),
        "{}",
        &text[..text.len().min(500)]
    );
    assert!(text.contains("longer than 8 MiB"));
    assert!(
        text.len() < 64 * 1024,
        "the oversized event is not passed on"
    );

    // Keyway still serves.
    assert_eq!(
        keyway.anthropic("claude-sonnet-4-5").await.status(),
        StatusCode::OK
    );
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_hostile_body_is_refused_by_the_translator_with_a_400_and_keyway_serves_on() {
    let fake = FakeUpstream::start().await;
    let keyway = crossed(&fake).await;
    // Nesting deeper than any parser should follow.
    let deep = format!(
        "{{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":8,\"messages\":[{{\"role\":\"user\",\"content\":{}1{}}}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let r = keyway
        .http
        .post(keyway.url("/v1/messages"))
        .header("x-api-key", &keyway.client_key)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["type"], "error");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("keyway: the request body is not a valid request")),
        "{body}"
    );
    // Ten thousand tools: translated whole, and the upstream judges them (OpenAI allows 128,
    // Anthropic more); the answer is the upstream's, in the client's shape.
    let tools: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("t{i}"), "input_schema": {"type": "object"}}))
        .collect();
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "tools": tools,
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = keyway
        .post("/v1/messages", &body)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request");
    assert!(!r.status().is_server_error(), "{}", r.status());
    let answer: Value = r.json().await.expect("json");
    assert!(
        answer["type"] == "message" || answer["type"] == "error",
        "{answer}"
    );
    assert_eq!(
        keyway.anthropic("claude-sonnet-4-5").await.status(),
        StatusCode::OK
    );
    assert_eq!(keyway.stop().await, Some(0));
}
