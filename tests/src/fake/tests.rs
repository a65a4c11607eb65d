//! Self-tests: the fake over real loopback sockets, driven by reqwest as Keyway would.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{
    Behaviour, FakeConfig, FakeUpstream, Provider, RateBudget, RateLimit, RateLimits, STAMP_DIGITS,
    STAMP_MARKER,
};

/// Bounds every wait so a broken fake fails the test instead of hanging it.
async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("timed out waiting on the fake upstream")
}

/// Every API key these self-tests send, with the provider that accepts it.
const KEYS: [(Provider, &[&str]); 3] = [
    (
        Provider::Anthropic,
        &["k", "k1", "k2", "sk-ant-1", "a", "ant", "slow", "fast"],
    ),
    (Provider::OpenAi, &["o", "oai", "sk-oai"]),
    (
        Provider::Google,
        &["g", "g1", "g2", "g3", "g4", "g5", "gem"],
    ),
];

/// A fake that accepts [`KEYS`].
async fn start() -> FakeUpstream {
    let fake = FakeUpstream::start().await;
    for (provider, keys) in KEYS {
        fake.register_keys(provider, keys.iter().copied());
    }
    fake
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

fn anthropic_body(stream: bool) -> Value {
    json!({
        "model": "claude-test-1",
        "max_tokens": 16,
        "stream": stream,
        "messages": [{ "role": "user", "content": "hi" }],
    })
}

async fn anthropic(fake: &FakeUpstream, key: &str, stream: bool) -> reqwest::Response {
    within(
        client()
            .post(fake.url("/v1/messages"))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(&anthropic_body(stream))
            .send(),
    )
    .await
    .expect("request to fake upstream")
}

/// One SSE event as the client saw it.
#[derive(Debug)]
struct SseEvent {
    name: Option<String>,
    data: String,
    received: Instant,
}

/// Reads an SSE body event by event, noting when each arrived. Also returns whether the body
/// ended with an error (connection aborted).
async fn read_sse(resp: reqwest::Response) -> (Vec<SseEvent>, bool) {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let mut failed = false;
    while let Some(chunk) = within(body.next()).await {
        let Ok(chunk) = chunk else {
            failed = true;
            break;
        };
        let received = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            events.push(SseEvent {
                name,
                data,
                received,
            });
        }
    }
    (events, failed)
}

fn names(events: &[SseEvent]) -> Vec<&str> {
    events.iter().filter_map(|e| e.name.as_deref()).collect()
}

#[tokio::test]
async fn queued_behaviours_pop_in_order_then_default() {
    let fake = start().await;
    fake.push_all(
        "k1",
        [
            Behaviour::RateLimited(RateLimit::Plain),
            Behaviour::Overloaded,
        ],
    );
    fake.set_default("k1", Behaviour::ServerError(503));

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(anthropic(&fake, "k1", false).await.status().as_u16());
    }
    assert_eq!(statuses, [429, 529, 503, 503]);
    let other = anthropic(&fake, "k2", false).await;
    assert_eq!(other.status(), 200, "unscripted keys answer Ok");

    within(fake.wait_for_requests(5)).await;
    assert_eq!(fake.keys_used(), ["k1", "k1", "k1", "k1", "k2"]);

    let body: Value = anthropic(&fake, "k1", false)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");
}

#[tokio::test]
async fn anthropic_message_is_faithful_and_recorded() {
    let fake = start().await;
    let resp = anthropic(&fake, "sk-ant-1", false).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("request-id"));
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-test-1");
    assert_eq!(body["content"][0]["type"], "text");
    assert_eq!(body["content"][0]["text"], "served by sk-ant-1");
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["usage"]["input_tokens"].as_u64().is_some());
    assert!(body["usage"]["output_tokens"].as_u64().is_some());

    // No key at all is a 401.
    let anonymous = within(
        client()
            .post(fake.url("/v1/messages"))
            .json(&anthropic_body(false))
            .send(),
    )
    .await
    .expect("request");
    assert_eq!(anonymous.status(), 401);
    let err: Value = anonymous.json().await.expect("json");
    assert_eq!(err["error"]["type"], "authentication_error");

    let recorded = fake.requests();
    assert_eq!(recorded.len(), 2);
    let first = &recorded[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(first.provider, Provider::Anthropic);
    assert_eq!(first.key.as_deref(), Some("sk-ant-1"));
    assert_eq!(first.header("X-Api-Key"), Some("sk-ant-1"));
    assert!(first.headers.iter().any(|(n, _)| n == "anthropic-version"));
    assert_eq!(
        first.json().expect("json body")["model"],
        "claude-test-1",
        "body recorded verbatim"
    );
    assert_eq!(recorded[1].key, None);
    assert_eq!(fake.keys_used(), ["sk-ant-1"]);
    assert_eq!(
        first.header("host"),
        Some(fake.addr().to_string().as_str()),
        "the Host each request carried is recorded"
    );
}

#[tokio::test]
async fn anthropic_stream_arrives_incrementally_in_order() {
    let fake = start().await;
    fake.push(
        "k1",
        Behaviour::Stream {
            events: 3,
            interval: Duration::from_millis(200),
        },
    );
    let resp = anthropic(&fake, "k1", true).await;
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("text/event-stream"));
    let (events, failed) = read_sse(resp).await;
    assert!(!failed);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for e in &events {
        let data: Value = serde_json::from_str(&e.data).expect("event data is JSON");
        assert_eq!(
            Some(data["type"].as_str().expect("type")),
            e.name.as_deref()
        );
    }
    let deltas: Vec<&SseEvent> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .collect();
    assert!(deltas[1].received >= deltas[0].received);
    assert!(deltas[2].received >= deltas[1].received);

    // The first delta reached the client before the fake even produced the last one: the
    // body is streamed, not buffered.
    let sent = fake.stream_event_times();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), 3);
    assert!(deltas[0].received < sent[0][2]);
    assert_eq!(fake.in_flight(), 0);
    assert_eq!(fake.disconnected(), 0);
}

#[tokio::test]
async fn openai_chat_and_responses_speak_their_formats() {
    let fake = start().await;
    let post = |path: &str, body: Value| {
        client()
            .post(fake.url(path))
            .bearer_auth("sk-oai")
            .json(&body)
            .send()
    };

    let chat: Value = within(post(
        "/v1/chat/completions",
        json!({ "model": "gpt-test", "messages": [{ "role": "user", "content": "hi" }] }),
    ))
    .await
    .expect("request")
    .json()
    .await
    .expect("json");
    assert_eq!(chat["object"], "chat.completion");
    assert_eq!(chat["model"], "gpt-test");
    assert_eq!(chat["choices"][0]["message"]["content"], "served by sk-oai");
    assert!(chat["usage"]["total_tokens"].as_u64().is_some());

    let resp = within(post(
        "/v1/chat/completions",
        json!({
            "model": "gpt-test",
            "messages": [{ "role": "user", "content": "hi" }],
            "stream": true,
            "stream_options": { "include_usage": true },
        }),
    ))
    .await
    .expect("request");
    assert!(resp.headers().contains_key("x-request-id"));
    let (events, _) = read_sse(resp).await;
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk JSON"))
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "served by sk-oai +1 +2");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(chunks[chunks.len() - 1]["usage"]["total_tokens"].is_u64());

    let response: Value = within(post(
        "/v1/responses",
        json!({ "model": "gpt-5", "input": "hi" }),
    ))
    .await
    .expect("request")
    .json()
    .await
    .expect("json");
    assert_eq!(response["object"], "response");
    assert_eq!(response["output"][0]["type"], "message");
    assert_eq!(response["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(
        response["output"][0]["content"][0]["text"],
        "served by sk-oai"
    );

    let resp = within(post(
        "/v1/responses",
        json!({ "model": "gpt-5", "input": "hi", "stream": true }),
    ))
    .await
    .expect("request");
    let (events, _) = read_sse(resp).await;
    let names = names(&events);
    assert_eq!(names.first(), Some(&"response.created"));
    assert_eq!(names.last(), Some(&"response.completed"));
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "response.output_text.delta")
            .count(),
        3
    );
    for (i, e) in events.iter().enumerate() {
        let data: Value = serde_json::from_str(&e.data).expect("JSON");
        assert_eq!(
            Some(data["type"].as_str().expect("type")),
            e.name.as_deref()
        );
        assert_eq!(data["sequence_number"], i);
    }

    let anonymous = within(post("/v1/models", json!({})))
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 405, "models is GET only");
    assert_eq!(fake.unmatched(), ["POST /v1/models"]);
}

#[tokio::test]
async fn models_endpoints_per_provider() {
    let fake = start().await;
    let get = |path: &str| client().get(fake.url(path));

    let anthropic: Value = within(
        get("/v1/models")
            .header("x-api-key", "a")
            .header("anthropic-version", "2023-06-01")
            .send(),
    )
    .await
    .expect("request")
    .json()
    .await
    .expect("json");
    assert_eq!(anthropic["data"][0]["type"], "model");
    assert_eq!(anthropic["has_more"], false);

    let openai: Value = within(get("/v1/models").bearer_auth("o").send())
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["data"][0]["object"], "model");

    let gemini: Value = within(get("/v1beta/models").header("x-goog-api-key", "g").send())
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(
        gemini["models"][0]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("models/"))
    );

    let providers: Vec<Provider> = fake.requests().iter().map(|r| r.provider).collect();
    assert_eq!(
        providers,
        [Provider::Anthropic, Provider::OpenAi, Provider::Google]
    );
    assert_eq!(fake.keys_used(), ["a", "o", "g"]);
}

#[tokio::test]
async fn gemini_generate_and_both_stream_forms() {
    let fake = start().await;
    let body = json!({ "contents": [{ "role": "user", "parts": [{ "text": "hi" }] }] });

    let resp = within(
        client()
            .post(fake.url("/v1beta/models/gemini-2.5-pro:generateContent"))
            .header("x-goog-api-key", "g1")
            .json(&body)
            .send(),
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), 200);
    let value: Value = resp.json().await.expect("json");
    assert_eq!(
        value["candidates"][0]["content"]["parts"][0]["text"],
        "served by g1"
    );
    assert_eq!(value["candidates"][0]["finishReason"], "STOP");
    assert_eq!(value["modelVersion"], "gemini-2.5-pro");

    // alt=sse: CRLF-framed data events, the last one finishing; key from the query.
    let resp = within(
        client()
            .post(fake.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=g2"))
            .json(&body)
            .send(),
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), 200);
    let raw = resp.text().await.expect("body");
    assert!(raw.starts_with("data: {") && raw.ends_with("}\r\n\r\n"));
    let chunks: Vec<Value> = raw
        .split("\r\n\r\n")
        .filter(|c| !c.is_empty())
        .map(|c| serde_json::from_str(c.trim_start_matches("data: ")).expect("chunk"))
        .collect();
    assert_eq!(chunks.len(), 4, "3 content chunks + the finishing one");
    assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");

    // Without alt=sse: one JSON array.
    let array: Value = within(
        client()
            .post(fake.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent"))
            .header("x-goog-api-key", "g3")
            .json(&body)
            .send(),
    )
    .await
    .expect("request")
    .json()
    .await
    .expect("JSON array");
    assert_eq!(array.as_array().map(Vec::len), Some(4));

    let count: Value = within(
        client()
            .post(fake.url("/v1beta/models/gemini-2.5-pro:countTokens"))
            .header("x-goog-api-key", "g4")
            .json(&body)
            .send(),
    )
    .await
    .expect("request")
    .json()
    .await
    .expect("json");
    assert!(count["totalTokens"].is_u64());

    let unknown = within(
        client()
            .post(fake.url("/v1beta/models/gemini-2.5-pro:fly"))
            .header("x-goog-api-key", "g5")
            .json(&body)
            .send(),
    )
    .await
    .expect("request");
    assert_eq!(unknown.status(), 404);

    assert_eq!(fake.keys_used(), ["g1", "g2", "g3", "g4", "g5"]);
    let recorded = fake.requests();
    assert_eq!(
        recorded[1].path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=g2"
    );
}

#[tokio::test]
async fn rate_limits_have_the_real_shapes() {
    let fake = start().await;
    fake.push_all(
        "ant",
        [
            Behaviour::RateLimited(RateLimit::AnthropicUnified5h {
                reset_unix: 1_900_000_000,
            }),
            Behaviour::RateLimited(RateLimit::RetryAfter(17)),
            Behaviour::RateLimited(RateLimit::Plain),
        ],
    );

    let resp = anthropic(&fake, "ant", false).await;
    assert_eq!(resp.status(), 429);
    let h = resp.headers();
    assert_eq!(h["anthropic-ratelimit-unified-status"], "rejected");
    assert_eq!(h["anthropic-ratelimit-unified-5h-status"], "rejected");
    assert_eq!(h["anthropic-ratelimit-unified-5h-reset"], "1900000000");
    assert_eq!(h["anthropic-ratelimit-unified-reset"], "1900000000");
    assert!(h.contains_key("request-id"));
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");

    let resp = anthropic(&fake, "ant", false).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "17");

    let resp = anthropic(&fake, "ant", false).await;
    assert_eq!(resp.status(), 429);
    assert!(!resp.headers().contains_key("retry-after"));
    assert!(
        !resp
            .headers()
            .keys()
            .any(|k| k.as_str().starts_with("anthropic-ratelimit"))
    );

    fake.push(
        "oai",
        Behaviour::RateLimited(RateLimit::OpenAiUsageLimit {
            resets_at: 1_900_000_123,
        }),
    );
    let resp = within(
        client()
            .post(fake.url("/v1/responses"))
            .bearer_auth("oai")
            .json(&json!({ "model": "gpt-5", "input": "hi" }))
            .send(),
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["type"], "usage_limit_reached");
    assert_eq!(body["error"]["resets_at"], 1_900_000_123);

    fake.push(
        "gem",
        Behaviour::RateLimited(RateLimit::GeminiRetryInfo { delay_secs: 37 }),
    );
    let resp = within(
        client()
            .post(fake.url("/v1beta/models/gemini-2.5-pro:generateContent"))
            .header("x-goog-api-key", "gem")
            .json(&json!({ "contents": [] }))
            .send(),
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    let retry = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .expect("RetryInfo detail");
    assert_eq!(retry["retryDelay"], "37s");
}

#[tokio::test]
async fn hang_does_not_block_others_and_client_drop_is_counted() {
    let fake = start().await;
    fake.push("slow", Behaviour::Hang);
    let url = fake.url("/v1/messages");
    let hung = tokio::spawn(async move {
        client()
            .post(url)
            .header("x-api-key", "slow")
            .header("anthropic-version", "2023-06-01")
            .json(&anthropic_body(false))
            .send()
            .await
    });
    within(fake.wait_for_requests(1)).await;
    assert_eq!(fake.in_flight(), 1);

    let other = anthropic(&fake, "fast", false).await;
    assert_eq!(other.status(), 200, "a hung request must not block others");
    assert_eq!(fake.disconnected(), 0);

    // Dropping the client's request closes its connection; the fake must notice.
    hung.abort();
    within(fake.wait_for_disconnects(1)).await;
    assert_eq!(fake.disconnected(), 1);
    assert_eq!(fake.in_flight(), 0);
}

#[tokio::test]
async fn client_cutting_a_stream_is_counted() {
    let fake = start().await;
    fake.push(
        "k",
        Behaviour::Stream {
            events: 1000,
            interval: Duration::from_millis(20),
        },
    );
    let resp = anthropic(&fake, "k", true).await;
    let mut body = resp.bytes_stream();
    within(body.next()).await.expect("first chunk").expect("ok");
    drop(body);
    within(fake.wait_for_disconnects(1)).await;
    assert_eq!(fake.in_flight(), 0);
}

#[tokio::test]
async fn stream_then_drop_aborts_mid_stream() {
    let fake = start().await;
    fake.push("k", Behaviour::StreamThenDrop { events: 2 });
    let resp = anthropic(&fake, "k", true).await;
    assert_eq!(resp.status(), 200);
    let (events, failed) = read_sse(resp).await;
    assert!(failed, "the body must end in an error, not a clean end");
    let names = names(&events);
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "content_block_delta")
            .count(),
        2
    );
    assert!(!names.contains(&"message_stop"));
    assert_eq!(
        fake.disconnected(),
        0,
        "a scripted drop is not a disconnect"
    );

    // A non-streamed answer is cut mid-body.
    fake.push("k", Behaviour::StreamThenDrop { events: 0 });
    let resp = anthropic(&fake, "k", false).await;
    assert_eq!(resp.status(), 200);
    assert!(within(resp.bytes()).await.is_err());
}

#[tokio::test]
async fn unknown_paths_are_listed_not_recorded() {
    let fake = start().await;
    let resp = within(client().get(fake.url("/v2/nothing?x=1")).send())
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
    assert_eq!(fake.unmatched(), ["GET /v2/nothing?x=1"]);
    assert!(fake.requests().is_empty());

    anthropic(&fake, "k", false).await;
    fake.clear();
    assert!(fake.requests().is_empty());
    assert!(fake.unmatched().is_empty());
    anthropic(&fake, "k", false).await;
    within(fake.wait_for_requests(1)).await;
    assert_eq!(fake.keys_used(), ["k"]);
}

/// The nanosecond stamp at the end of a stamped piece of text.
fn stamp_of(text: &str) -> u128 {
    let (_, digits) = text.rsplit_once(STAMP_MARKER).expect("stamped text");
    assert_eq!(digits.len(), STAMP_DIGITS, "stamp width in {text:?}");
    digits.parse().expect("stamp digits")
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

#[tokio::test]
async fn unscripted_streams_and_stamps_follow_the_config() {
    let fake = FakeUpstream::start_with(FakeConfig {
        unscripted: Behaviour::Stream {
            events: 4,
            interval: Duration::from_millis(30),
        },
        stamp: true,
        keys: vec![
            (Provider::Anthropic, "k1".into()),
            (Provider::Anthropic, "k2".into()),
        ],
        ..FakeConfig::default()
    })
    .await
    .expect("start fake");
    let before = unix_nanos();
    let resp = anthropic(&fake, "k1", true).await;
    let (events, failed) = read_sse(resp).await;
    let after = unix_nanos();
    assert!(!failed);
    let stamps: Vec<u128> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).expect("event json");
            stamp_of(data["delta"]["text"].as_str().expect("delta text"))
        })
        .collect();
    assert_eq!(stamps.len(), 4, "the unscripted stream shape applies");
    assert!(stamps.iter().all(|&t| before <= t && t <= after));
    for pair in stamps.windows(2) {
        let gap_ms = (pair[1] - pair[0]) / 1_000_000;
        assert!(
            gap_ms >= 29,
            "stamped at emission, after the pacing wait: {gap_ms} ms"
        );
    }

    // Non-streaming answers are untouched, and a scripted key still gets its script.
    let body: Value = anthropic(&fake, "k1", false)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["content"][0]["text"], "served by k1");
    fake.push("k2", Behaviour::Overloaded);
    assert_eq!(anthropic(&fake, "k2", true).await.status(), 529);
    let (events, _) = read_sse(anthropic(&fake, "k2", true).await).await;
    assert_eq!(
        names(&events)
            .iter()
            .filter(|n| **n == "content_block_delta")
            .count(),
        4
    );
}

#[tokio::test]
async fn streams_are_unstamped_by_default() {
    let fake = start().await;
    let (events, _) = read_sse(anthropic(&fake, "k1", true).await).await;
    assert!(events.iter().all(|e| !e.data.contains(STAMP_MARKER)));
}

#[tokio::test]
async fn bulk_streams_carry_large_events_filled_as_they_are_sent() {
    let fake = start().await;
    fake.push(
        "k1",
        Behaviour::Bulk {
            events: 3,
            bytes: 100_000,
        },
    );
    let (events, failed) = read_sse(anthropic(&fake, "k1", true).await).await;
    assert!(!failed);
    let texts: Vec<String> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).expect("event JSON");
            data["delta"]["text"].as_str().expect("text").to_owned()
        })
        .collect();
    assert_eq!(texts.len(), 3);
    for (i, text) in texts.iter().enumerate() {
        let (head, filler) = text.split_at(text.len() - 100_000);
        assert!(filler.bytes().all(|b| b == b'x'), "event {i}: {head:?}");
        assert!(head.ends_with(' '), "event {i}: {head:?}");
    }
    assert!(texts[0].starts_with("served by k1 "));
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    assert_eq!(fake.stream_event_times()[0].len(), 3);
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header"))
}

#[tokio::test]
async fn rate_limit_headers_are_in_each_providers_format() {
    let fake = start().await;
    let budget = |limit, remaining, reset_secs| {
        Some(RateBudget {
            limit,
            remaining,
            reset_in: Duration::from_secs(reset_secs),
        })
    };
    let limits = RateLimits {
        requests: budget(50, 0, 30),
        tokens: budget(100_000, 75_000, 360),
        input_tokens: budget(80_000, 60_000, 2),
        output_tokens: budget(16_000, 15_000, 1),
    };
    fake.set_rate_limits("ant", limits.clone());
    fake.set_rate_limits("oai", limits.clone());
    fake.set_rate_limits("gem", limits);

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let resp = anthropic(&fake, "ant", false).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "anthropic-ratelimit-requests-limit"),
        Some("50")
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-requests-remaining"),
        Some("0")
    );
    let reset = header(&resp, "anthropic-ratelimit-requests-reset").expect("reset");
    // RFC 3339, UTC, whole seconds: `2026-01-02T03:04:05Z`.
    let at: jiff::Timestamp = reset.parse().expect("an RFC 3339 time");
    assert!(reset.ends_with('Z') && reset.len() == 20, "{reset}");
    let ahead = at.as_second() - i64::try_from(before).unwrap();
    assert!((29..=31).contains(&ahead), "{reset} is {ahead}s ahead");
    assert_eq!(
        header(&resp, "anthropic-ratelimit-tokens-remaining"),
        Some("75000")
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-input-tokens-limit"),
        Some("80000")
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-output-tokens-remaining"),
        Some("15000")
    );
    assert!(header(&resp, "x-ratelimit-limit-requests").is_none());

    // Streams carry them too.
    let resp = anthropic(&fake, "ant", true).await;
    assert_eq!(
        header(&resp, "anthropic-ratelimit-tokens-limit"),
        Some("100000")
    );

    let resp = within(
        client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth("oai")
            .json(&json!({ "model": "gpt-5", "messages": [{ "role": "user", "content": "hi" }] }))
            .send(),
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), 200);
    for (name, value) in [
        ("x-ratelimit-limit-requests", "50"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "30s"),
        ("x-ratelimit-limit-tokens", "100000"),
        ("x-ratelimit-remaining-tokens", "75000"),
        ("x-ratelimit-reset-tokens", "6m0s"),
    ] {
        assert_eq!(header(&resp, name), Some(value), "{name}");
    }
    assert!(header(&resp, "anthropic-ratelimit-requests-limit").is_none());

    // Errors carry them; Gemini sends none.
    fake.push("oai", Behaviour::ServerError(500));
    let resp = within(
        client()
            .post(fake.url("/v1/responses"))
            .bearer_auth("oai")
            .json(&json!({ "model": "gpt-5", "input": "hi" }))
            .send(),
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), 500);
    assert_eq!(header(&resp, "x-ratelimit-remaining-tokens"), Some("75000"));
    let resp = within(
        client()
            .post(fake.url("/v1beta/models/gemini-2.5-pro:generateContent"))
            .header("x-goog-api-key", "gem")
            .json(&json!({ "contents": [{ "parts": [{ "text": "hi" }] }] }))
            .send(),
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), 200);
    assert!(
        !resp
            .headers()
            .keys()
            .any(|k| k.as_str().contains("ratelimit")),
        "{:?}",
        resp.headers()
    );

    // Cleared: gone.
    fake.set_rate_limits("ant", RateLimits::default());
    let resp = anthropic(&fake, "ant", false).await;
    assert!(header(&resp, "anthropic-ratelimit-requests-limit").is_none());
}

#[test]
fn go_durations_read_as_openai_writes_them() {
    use super::wire::go_duration;
    for (ms, text) in [
        (20, "20ms"),
        (0, "0ms"),
        (1_000, "1s"),
        (1_500, "1.5s"),
        (360_000, "6m0s"),
        (3_723_000, "1h2m3s"),
        (7_200_250, "2h0m0.25s"),
    ] {
        assert_eq!(go_duration(Duration::from_millis(ms)), text);
    }
}

#[tokio::test]
async fn peak_in_flight_is_kept_per_key() {
    let fake = start().await;
    let slow = Behaviour::Stream {
        events: 2,
        interval: Duration::from_millis(200),
    };
    fake.set_default("k1", slow.clone());
    fake.set_default("k2", slow);
    let streams: Vec<_> = ["k1", "k1", "k1", "k2"]
        .into_iter()
        .map(|key| {
            let fake = &fake;
            async move {
                let resp = anthropic(fake, key, true).await;
                read_sse(resp).await
            }
        })
        .collect();
    // Each stream lasts 400 ms after its opening events: the four overlap.
    let first = within(futures_util::future::join_all(streams)).await;
    assert_eq!(first.len(), 4);
    assert_eq!(fake.peak_in_flight("k1"), 3);
    assert_eq!(fake.peak_in_flight("k2"), 1);
    assert_eq!(fake.peak_in_flight("nobody"), 0);
    fake.clear();
    assert_eq!(fake.peak_in_flight("k1"), 0, "clear starts over");
}
