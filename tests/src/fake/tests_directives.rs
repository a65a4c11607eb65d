//! Directive-driven answers in each provider's wire format, streamed and not. Streams are
//! read the way the official SDKs read them: events in their grammar (every
//! `content_block_start` closed by its `content_block_stop`, `[DONE]` last, …) and folded into
//! the message the SDK would hand its caller, which must equal the non-streamed answer.

use std::time::Duration;

use serde_json::{Value, json};

use super::directive::{ANTHROPIC, GEMINI, SKIP_THOUGHT_SIGNATURE, sign};
use super::{FakeConfig, FakeUpstream, Provider};

const ANT: &str = "sk-ant-directives";
const OAI: &str = "sk-proj-directives";
const GEM: &str = "AIza-directives";

/// A 1×1 PNG, 68 bytes.
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgYAAAAAMAASsJTYQAAAAASUVORK5CYII=";

async fn start() -> FakeUpstream {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, ANT);
    fake.register_key(Provider::OpenAi, OAI);
    fake.register_key(Provider::Google, GEM);
    fake
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Status and body text of a request, bounded so a broken fake fails instead of hanging.
async fn send(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = tokio::time::timeout(Duration::from_secs(20), request.send())
        .await
        .expect("the fake answers")
        .expect("request to the fake");
    let status = response.status().as_u16();
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the body ends")
        .expect("body");
    (status, text)
}

async fn anthropic(fake: &FakeUpstream, body: &Value) -> (u16, String) {
    send(
        client()
            .post(fake.url("/v1/messages"))
            .header("x-api-key", ANT)
            .header("anthropic-version", "2023-06-01")
            .json(body),
    )
    .await
}

async fn anthropic_json(fake: &FakeUpstream, body: &Value) -> Value {
    let (status, text) = anthropic(fake, body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON")
}

async fn chat(fake: &FakeUpstream, body: &Value) -> (u16, String) {
    send(
        client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth(OAI)
            .json(body),
    )
    .await
}

async fn chat_json(fake: &FakeUpstream, body: &Value) -> Value {
    let (status, text) = chat(fake, body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON")
}

async fn gemini(fake: &FakeUpstream, model: &str, action: &str, body: &Value) -> (u16, String) {
    send(
        client()
            .post(fake.url(&format!("/v1beta/models/{model}:{action}")))
            .header("x-goog-api-key", GEM)
            .json(body),
    )
    .await
}

async fn gemini_json(fake: &FakeUpstream, model: &str, body: &Value) -> Value {
    let (status, text) = gemini(fake, model, "generateContent", body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON")
}

/// The events of an SSE body: `(event name, data)`, CRLF or LF framed.
fn sse(text: &str) -> Vec<(Option<String>, String)> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push(v);
                }
            }
            (name, data.join("\n"))
        })
        .collect()
}

/// A Messages stream folded into the message it carries, as the SDK's `MessageStream`
/// accumulates it; panics on any event out of the API's grammar.
fn anthropic_fold(text: &str) -> Value {
    let events = sse(text);
    let mut message = Value::Null;
    let mut open: Option<usize> = None;
    let mut partial_json = String::new();
    let mut ended = false;
    for (name, data) in &events {
        assert!(!ended, "event after message_stop: {name:?}");
        let event: Value = serde_json::from_str(data).expect("event JSON");
        let kind = event["type"].as_str().expect("type");
        assert_eq!(name.as_deref(), Some(kind), "event name and type agree");
        match kind {
            "message_start" => {
                assert!(message.is_null(), "one message_start");
                message = event["message"].clone();
            }
            "ping" => {}
            "content_block_start" => {
                assert!(open.is_none(), "a block opened inside another");
                let index = event["index"].as_u64().expect("index") as usize;
                let blocks = message["content"].as_array_mut().expect("started");
                assert_eq!(index, blocks.len(), "blocks open in order");
                blocks.push(event["content_block"].clone());
                open = Some(index);
                partial_json.clear();
            }
            "content_block_delta" => {
                let index = event["index"].as_u64().expect("index") as usize;
                assert_eq!(open, Some(index), "delta for the open block");
                let block = &mut message["content"][index];
                let delta = &event["delta"];
                match (block["type"].as_str(), delta["type"].as_str()) {
                    (Some("text"), Some("text_delta")) => {
                        let text = format!(
                            "{}{}",
                            block["text"].as_str().unwrap_or(""),
                            delta["text"].as_str().expect("text")
                        );
                        block["text"] = json!(text);
                    }
                    (Some("thinking"), Some("thinking_delta")) => {
                        let text = format!(
                            "{}{}",
                            block["thinking"].as_str().unwrap_or(""),
                            delta["thinking"].as_str().expect("thinking")
                        );
                        block["thinking"] = json!(text);
                    }
                    (Some("thinking"), Some("signature_delta")) => {
                        block["signature"] = delta["signature"].clone();
                    }
                    (Some("tool_use"), Some("input_json_delta")) => {
                        partial_json
                            .push_str(delta["partial_json"].as_str().expect("partial_json"));
                    }
                    other => panic!("delta {other:?} does not fit its block"),
                }
            }
            "content_block_stop" => {
                let index = event["index"].as_u64().expect("index") as usize;
                assert_eq!(open, Some(index), "stop for the open block");
                let block = &mut message["content"][index];
                if block["type"] == "tool_use" {
                    block["input"] = serde_json::from_str(&partial_json).expect("input JSON");
                }
                open = None;
            }
            "message_delta" => {
                assert!(open.is_none(), "message_delta with a block open");
                message["stop_reason"] = event["delta"]["stop_reason"].clone();
                message["usage"]["output_tokens"] = event["usage"]["output_tokens"].clone();
            }
            "message_stop" => ended = true,
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(ended, "the stream ends with message_stop");
    message
}

/// Chat completion chunks folded into the message and finish reason they carry, as the SDK's
/// stream helpers accumulate them; also the usage chunk, if any. `[DONE]` must come last.
fn chat_fold(text: &str) -> (Value, String, Option<Value>) {
    let events = sse(text);
    let (last, chunks) = events.split_last().expect("events");
    assert_eq!(last.1, "[DONE]", "[DONE] ends the stream");
    let mut message = json!({ "role": null, "content": "" });
    let mut finish = None;
    let mut usage = None;
    for (_, data) in chunks {
        assert_ne!(data, "[DONE]", "[DONE] only at the end");
        let chunk: Value = serde_json::from_str(data).expect("chunk JSON");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        if chunk["choices"].as_array().is_some_and(Vec::is_empty) {
            assert!(finish.is_some(), "usage comes after the finish chunk");
            usage = Some(chunk["usage"].clone());
            continue;
        }
        assert!(finish.is_none(), "nothing after the finish chunk but usage");
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(role) = delta.get("role") {
            message["role"] = role.clone();
        }
        for field in ["content", "reasoning_content"] {
            if let Some(piece) = delta.get(field).and_then(Value::as_str) {
                let sofar = message[field].as_str().unwrap_or("").to_owned();
                message[field] = json!(sofar + piece);
            }
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().expect("index") as usize;
            let calls = message
                .as_object_mut()
                .expect("object")
                .entry("tool_calls")
                .or_insert(json!([]));
            let list = calls.as_array_mut().expect("list");
            if index == list.len() {
                assert!(call["id"].is_string(), "a call opens with its id");
                list.push(call.clone());
                list[index].as_object_mut().expect("call").remove("index");
            } else {
                let arguments = format!(
                    "{}{}",
                    list[index]["function"]["arguments"].as_str().unwrap_or(""),
                    call["function"]["arguments"].as_str().unwrap_or("")
                );
                list[index]["function"]["arguments"] = json!(arguments);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish = Some(reason.to_owned());
        }
    }
    (message, finish.expect("a finish reason"), usage)
}

/// Gemini chunks (an SSE stream, or a streamed JSON array) folded into one candidate, as the
/// SDK's `response.text` and `function_calls` see them: adjacent text parts of one kind
/// merged, every other part kept.
fn gemini_fold(text: &str, sse_framed: bool) -> Value {
    let chunks: Vec<Value> = if sse_framed {
        sse(text)
            .iter()
            .map(|(_, d)| serde_json::from_str(d).expect("chunk JSON"))
            .collect()
    } else {
        serde_json::from_str(text).expect("a JSON array")
    };
    let mut parts: Vec<Value> = Vec::new();
    let mut finish = Value::Null;
    let mut usage = Value::Null;
    for chunk in &chunks {
        assert!(finish.is_null(), "no chunk after the one with finishReason");
        let candidate = &chunk["candidates"][0];
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let text_kind = |p: &Value| p.get("text").is_some() && p.get("functionCall").is_none();
            let same = parts.last().is_some_and(|last| {
                text_kind(last) && text_kind(part) && last.get("thought") == part.get("thought")
            });
            if same {
                let last = parts.last_mut().expect("a part");
                let text = format!(
                    "{}{}",
                    last["text"].as_str().unwrap_or(""),
                    part["text"].as_str().unwrap_or("")
                );
                last["text"] = json!(text);
            } else if part.get("text") != Some(&json!("")) {
                parts.push(part.clone());
            }
        }
        if let Some(reason) = candidate.get("finishReason") {
            finish = reason.clone();
            usage = chunk["usageMetadata"].clone();
        }
    }
    json!({ "parts": parts, "finishReason": finish, "usage": usage })
}

/// `candidate` with every thought signature replaced by `"signed"` (each answer signs anew).
fn unsigned(mut candidate: Value) -> Value {
    for part in candidate["parts"].as_array_mut().into_iter().flatten() {
        if let Some(signature) = part.get_mut("thoughtSignature") {
            assert!(signature.as_str().is_some_and(|s| !s.is_empty()), "{part}");
            *signature = json!("signed");
        }
    }
    candidate
}

/// The non-streamed Gemini answer in [`gemini_fold`]'s shape.
fn gemini_candidate(answer: &Value) -> Value {
    let candidate = &answer["candidates"][0];
    json!({
        "parts": candidate["content"]["parts"],
        "finishReason": candidate["finishReason"],
        "usage": answer["usageMetadata"],
    })
}

fn anthropic_tools() -> Value {
    json!([
        { "name": "get_weather", "description": "Weather", "input_schema": {
            "type": "object", "properties": { "city": { "type": "string" } } } },
        { "name": "get_time", "input_schema": { "type": "object" } },
    ])
}

fn without_ids(mut message: Value) -> Value {
    for block in message["content"].as_array_mut().into_iter().flatten() {
        if let Some(id) = block.get("id").and_then(Value::as_str) {
            assert!(id.starts_with("toolu_"), "{id}");
            block["id"] = json!("toolu_");
        }
    }
    message
}

#[tokio::test]
async fn anthropic_answers_calls_in_order_streamed_and_not() {
    let fake = start().await;
    let mut body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "tools": anthropic_tools(),
        "messages": [{ "role": "user", "content":
            "Plan: [[call get_weather {\"city\": \"Paris\"}]] then [[call get_time]]" }],
    });
    let answer = anthropic_json(&fake, &body).await;
    assert_eq!(answer["stop_reason"], "tool_use");
    let content = &answer["content"];
    assert_eq!(
        content[0],
        json!({ "type": "text", "text": "Calling get_weather, get_time." })
    );
    assert_eq!(content[1]["type"], "tool_use");
    assert_eq!(content[1]["name"], "get_weather");
    assert_eq!(content[1]["input"], json!({ "city": "Paris" }));
    assert_eq!(content[2]["name"], "get_time");
    assert_eq!(content[2]["input"], json!({}));
    assert_ne!(content[1]["id"], content[2]["id"]);
    assert!(answer["usage"]["output_tokens"].as_u64() > Some(1));
    assert!(answer["usage"]["input_tokens"].as_u64() > Some(1));

    body["stream"] = json!(true);
    let (status, text) = anthropic(&fake, &body).await;
    assert_eq!(status, 200, "{text}");
    // The arguments come in several input_json_delta pieces.
    let pieces = sse(&text)
        .iter()
        .filter(|(_, d)| d.contains("input_json_delta"))
        .count();
    assert!(pieces >= 3, "{text}");
    let streamed = anthropic_fold(&text);
    assert_eq!(
        without_ids(streamed.clone())["content"],
        without_ids(answer.clone())["content"]
    );
    assert_eq!(streamed["stop_reason"], "tool_use");

    // The calls' answers come back as tool results, which the next answer quotes.
    let history = json!([
        body["messages"][0],
        { "role": "assistant", "content": answer["content"] },
        { "role": "user", "content": [
            { "type": "tool_result", "tool_use_id": content[1]["id"], "content": "sunny" },
            { "type": "tool_result", "tool_use_id": content[2]["id"],
              "content": [{ "type": "text", "text": "noon" }] },
        ] },
    ]);
    let next = anthropic_json(
        &fake,
        &json!({ "model": "claude-sonnet-4-5", "max_tokens": 256, "tools": anthropic_tools(),
                 "messages": history }),
    )
    .await;
    assert_eq!(
        next["content"],
        json!([{ "type": "text", "text": "tool result: sunny | noon" }])
    );
    assert_eq!(next["stop_reason"], "end_turn");
}

#[tokio::test]
async fn anthropic_thinks_with_a_signature_it_checks_later() {
    let fake = start().await;
    let mut body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "thinking": { "type": "enabled", "budget_tokens": 1024 },
        "messages": [{ "role": "user", "content": "[[think]] Why is the sky blue at noon?" }],
    });
    let answer = anthropic_json(&fake, &body).await;
    let thinking = &answer["content"][0];
    assert_eq!(thinking["type"], "thinking");
    assert_eq!(
        thinking["thinking"],
        "Thinking about: [[think]] Why is the sky blue at noon?"
    );
    assert!(
        thinking["signature"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(
        answer["content"][1],
        json!({ "type": "text", "text": format!("served by {ANT}") })
    );

    body["stream"] = json!(true);
    let (status, text) = anthropic(&fake, &body).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("thinking_delta") && text.contains("signature_delta"),
        "{text}"
    );
    let streamed = anthropic_fold(&text);
    assert_eq!(streamed["content"][0]["thinking"], thinking["thinking"]);
    assert!(
        streamed["content"][0]["signature"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    // Its signed thinking goes back in the history; a forged signature does not.
    let with_history = |block: Value| {
        json!({
            "model": "claude-sonnet-4-5", "max_tokens": 4096,
            "thinking": { "type": "adaptive" },
            "messages": [
                body["messages"][0],
                { "role": "assistant", "content": [block, { "type": "text", "text": "Rayleigh." }] },
                { "role": "user", "content": "And at dusk?" },
            ],
        })
    };
    let (status, text) = anthropic(&fake, &with_history(thinking.clone())).await;
    assert_eq!(status, 200, "{text}");
    let forged = json!({ "type": "thinking", "thinking": "…", "signature": sign(GEMINI, ANT, 1) });
    let (status, text) = anthropic(&fake, &with_history(forged)).await;
    assert_eq!(status, 400);
    let refusal: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        refusal["error"]["message"],
        "messages.1.content.0: Invalid `signature` in `thinking` block"
    );

    // Without thinking enabled, [[think]] adds no thinking.
    let plain = anthropic_json(
        &fake,
        &json!({ "model": "claude-sonnet-4-5", "max_tokens": 64,
                 "messages": [{ "role": "user", "content": "[[think]] hi" }] }),
    )
    .await;
    assert_eq!(
        plain["content"],
        json!([{ "type": "text", "text": format!("served by {ANT}") }])
    );
}

#[tokio::test]
async fn anthropic_names_images_and_tools_it_was_not_offered() {
    let fake = start().await;
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "tools": anthropic_tools(),
        "messages": [{ "role": "user", "content": [
            { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": PNG } },
            { "type": "image", "source": { "type": "url", "url": "https://example.com/cat.jpg" } },
            { "type": "text", "text": "What is this? [[call describe {}]]" },
        ] }],
    });
    let answer = anthropic_json(&fake, &body).await;
    assert_eq!(
        answer["content"],
        json!([{ "type": "text", "text":
            "image image/png 68 bytes\nimage url https://example.com/cat.jpg\nno tool describe was offered" }])
    );
    assert_eq!(answer["stop_reason"], "end_turn");
}

#[tokio::test]
async fn a_turn_without_directives_is_served_as_before() {
    let fake = start().await;
    let answer = anthropic_json(
        &fake,
        &json!({ "model": "claude-sonnet-4-5", "max_tokens": 64, "tools": anthropic_tools(),
                 "messages": [{ "role": "user", "content": "[[ call get_time ]] is no directive" }] }),
    )
    .await;
    assert_eq!(answer["content"][0]["text"], format!("served by {ANT}"));
    let chat = chat_json(
        &fake,
        &json!({ "model": "gpt-4o", "messages": [{ "role": "user", "content": "hi" }] }),
    )
    .await;
    assert_eq!(
        chat["choices"][0]["message"]["content"],
        format!("served by {OAI}")
    );
    let gemini = gemini_json(
        &fake,
        "gemini-2.5-pro",
        &json!({ "contents": [{ "role": "user", "parts": [{ "text": "hi" }] }] }),
    )
    .await;
    assert_eq!(
        gemini["candidates"][0]["content"]["parts"],
        json!([{ "text": format!("served by {GEM}") }])
    );
}

fn openai_tools() -> Value {
    json!([
        { "type": "function", "function": { "name": "get_weather", "parameters": {
            "type": "object", "properties": { "city": { "type": "string" } } } } },
        { "type": "function", "function": { "name": "get_time" } },
    ])
}

#[tokio::test]
async fn openai_answers_calls_with_json_text_arguments_streamed_and_not() {
    let fake = start().await;
    let mut body = json!({
        "model": "gpt-4o",
        "tools": openai_tools(),
        "messages": [
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": "[[call get_weather {\"city\": \"Oslo\"}]] [[call get_time {}]]" },
        ],
    });
    let answer = chat_json(&fake, &body).await;
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let message = &choice["message"];
    assert_eq!(message["content"], "Calling get_weather, get_time.");
    let calls = message["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(calls.len(), 2);
    for call in calls {
        assert!(
            call["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("call_")),
            "{call}"
        );
        assert_eq!(call["type"], "function");
    }
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(
        calls[0]["function"]["arguments"]
            .as_str()
            .expect("JSON text"),
    )
    .expect("arguments JSON");
    assert_eq!(arguments, json!({ "city": "Oslo" }));
    assert_eq!(calls[1]["function"]["arguments"], "{}");
    let usage = &answer["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().expect("prompt")
                + usage["completion_tokens"].as_u64().expect("completion")
        )
    );

    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    let (status, text) = chat(&fake, &body).await;
    assert_eq!(status, 200, "{text}");
    let (streamed, finish, usage) = chat_fold(&text);
    assert_eq!(finish, "tool_calls");
    assert_eq!(streamed["role"], "assistant");
    assert_eq!(streamed["content"], message["content"]);
    let without_ids = |calls: &Value| {
        let mut calls = calls.clone();
        for call in calls.as_array_mut().into_iter().flatten() {
            assert!(
                call["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("call_")),
                "{call}"
            );
            call["id"] = json!("call_");
        }
        calls
    };
    assert_eq!(
        without_ids(&streamed["tool_calls"]),
        without_ids(&message["tool_calls"])
    );
    assert!(usage.is_some_and(|u| u["completion_tokens"].as_u64() > Some(0)));

    // The results of the calls come back as tool messages, quoted by the next answer.
    let next = chat_json(
        &fake,
        &json!({
            "model": "gpt-4o",
            "tools": openai_tools(),
            "messages": [
                body["messages"][1],
                { "role": "assistant", "content": null, "tool_calls": message["tool_calls"] },
                { "role": "tool", "tool_call_id": calls[0]["id"], "content": "rain" },
                { "role": "tool", "tool_call_id": calls[1]["id"],
                  "content": [{ "type": "text", "text": "09:00" }] },
            ],
        }),
    )
    .await;
    assert_eq!(
        next["choices"][0]["message"]["content"],
        "tool result: rain | 09:00"
    );
    assert_eq!(next["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn openai_reasons_as_reasoning_content_when_effort_is_set() {
    let fake = start().await;
    let mut body = json!({
        "model": "deepseek-reasoner",
        "reasoning_effort": "high",
        "messages": [{ "role": "user", "content": [
            { "type": "text", "text": "[[think]] Look:" },
            { "type": "image_url", "image_url": { "url": format!("data:image/png;base64,{PNG}") } },
            { "type": "image_url", "image_url": { "url": "https://example.com/dog.webp", "detail": "low" } },
        ] }],
    });
    let answer = chat_json(&fake, &body).await;
    let message = &answer["choices"][0]["message"];
    assert_eq!(
        message["reasoning_content"],
        "Thinking about: [[think]] Look:"
    );
    assert_eq!(
        message["content"],
        "image image/png 68 bytes\nimage url https://example.com/dog.webp"
    );
    let usage = &answer["usage"];
    let reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .expect("reasoning");
    assert!(reasoning > 0);
    assert!(usage["completion_tokens"].as_u64() > Some(reasoning));

    body["stream"] = json!(true);
    let (status, text) = chat(&fake, &body).await;
    assert_eq!(status, 200, "{text}");
    let (streamed, finish, usage) = chat_fold(&text);
    assert_eq!(finish, "stop");
    assert_eq!(streamed["reasoning_content"], message["reasoning_content"]);
    assert_eq!(streamed["content"], message["content"]);
    assert_eq!(usage, None, "no usage chunk unless asked for");

    // `none` is no reasoning.
    body["stream"] = json!(false);
    body["reasoning_effort"] = json!("none");
    let answer = chat_json(&fake, &body).await;
    assert!(
        answer["choices"][0]["message"]
            .get("reasoning_content")
            .is_none()
    );
    assert_eq!(
        answer["usage"]["completion_tokens_details"]["reasoning_tokens"],
        0
    );
}

fn gemini_tools() -> Value {
    json!([{ "functionDeclarations": [
        { "name": "get_weather", "parameters": { "type": "OBJECT",
            "properties": { "city": { "type": "STRING" } } } },
        { "name": "get_time" },
    ] }])
}

#[tokio::test]
async fn gemini_answers_calls_in_one_chunk_in_every_framing() {
    let fake = start().await;
    let body = json!({
        "tools": gemini_tools(),
        "contents": [{ "role": "user", "parts": [
            { "text": "[[call get_weather {\"city\": \"Rome\"}]] [[call get_time]]" },
        ] }],
    });
    let answer = gemini_json(&fake, "gemini-2.5-flash", &body).await;
    let candidate = gemini_candidate(&answer);
    let parts = candidate["parts"].as_array().expect("parts");
    assert_eq!(
        parts[0],
        json!({ "text": "Calling get_weather, get_time." })
    );
    assert_eq!(
        parts[1]["functionCall"],
        json!({ "name": "get_weather", "args": { "city": "Rome" } })
    );
    assert!(
        parts[1]["thoughtSignature"].is_string(),
        "the first call is signed"
    );
    assert_eq!(
        parts[2],
        json!({ "functionCall": { "name": "get_time", "args": {} } })
    );
    assert_eq!(candidate["finishReason"], "STOP");
    let usage = &candidate["usage"];
    assert_eq!(
        usage["totalTokenCount"].as_u64(),
        Some(
            usage["promptTokenCount"].as_u64().expect("prompt")
                + usage["candidatesTokenCount"].as_u64().expect("candidates")
        )
    );

    for (action, sse_framed) in [
        ("streamGenerateContent?alt=sse", true),
        ("streamGenerateContent", false),
    ] {
        let (status, text) = gemini(&fake, "gemini-2.5-flash", action, &body).await;
        assert_eq!(status, 200, "{text}");
        let calls_chunks = text.matches("functionCall").count();
        assert_eq!(calls_chunks, 2, "both calls, whole, in one chunk: {text}");
        assert_eq!(
            unsigned(gemini_fold(&text, sse_framed)),
            unsigned(candidate.clone()),
            "{action}"
        );
    }

    // The results come back as function responses, quoted as their JSON.
    let next = gemini_json(
        &fake,
        "gemini-2.5-flash",
        &json!({
            "tools": gemini_tools(),
            "contents": [
                body["contents"][0],
                { "role": "model", "parts": answer["candidates"][0]["content"]["parts"] },
                { "role": "user", "parts": [
                    { "functionResponse": { "name": "get_weather", "response": { "sky": "clear" } } },
                    { "functionResponse": { "name": "get_time", "response": { "time": "12:00" } } },
                ] },
            ],
        }),
    )
    .await;
    assert_eq!(
        next["candidates"][0]["content"]["parts"],
        json!([{ "text": "tool result: {\"sky\":\"clear\"} | {\"time\":\"12:00\"}" }])
    );
}

#[tokio::test]
async fn gemini_thoughts_are_signed_counted_and_checked_on_the_way_back() {
    let fake = start().await;
    let body = json!({
        "tools": gemini_tools(),
        "generationConfig": { "thinkingConfig": { "includeThoughts": true, "thinkingBudget": 1024 } },
        "contents": [{ "role": "user", "parts": [
            { "text": "[[think]] [[call get_time {}]]" },
            { "inlineData": { "mimeType": "image/png", "data": PNG } },
            { "fileData": { "mimeType": "image/jpeg", "fileUri": "https://example.com/f.jpg" } },
        ] }],
    });
    let answer = gemini_json(&fake, "gemini-3-pro-preview", &body).await;
    let candidate = gemini_candidate(&answer);
    let parts = candidate["parts"].as_array().expect("parts");
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(
        parts[0]["text"],
        "Thinking about: [[think]] [[call get_time {}]]"
    );
    assert!(parts[0]["thoughtSignature"].is_string());
    assert_eq!(
        parts[1]["text"],
        "image image/png 68 bytes\nimage url https://example.com/f.jpg\nCalling get_time."
    );
    assert!(
        parts[2]["functionCall"].get("id").is_none(),
        "Gemini sends no call id"
    );
    let usage = &candidate["usage"];
    let thoughts = usage["thoughtsTokenCount"]
        .as_u64()
        .expect("thoughts counted");
    assert_eq!(
        usage["totalTokenCount"].as_u64(),
        Some(
            usage["promptTokenCount"].as_u64().expect("prompt")
                + usage["candidatesTokenCount"].as_u64().expect("candidates")
                + thoughts
        )
    );
    let (status, text) = gemini(
        &fake,
        "gemini-3-pro-preview",
        "streamGenerateContent?alt=sse",
        &body,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        unsigned(gemini_fold(&text, true)),
        unsigned(candidate.clone())
    );

    // The model turn goes back with its signatures; Gemini 3 wants the first call signed.
    let with_model_turn = |model_parts: Value| {
        json!({
            "tools": gemini_tools(),
            "contents": [
                body["contents"][0],
                { "role": "model", "parts": model_parts },
                { "role": "user", "parts": [
                    { "functionResponse": { "name": "get_time", "response": { "time": "noon" } } },
                ] },
            ],
        })
    };
    let returned = answer["candidates"][0]["content"]["parts"].clone();
    let (status, text) = gemini(
        &fake,
        "gemini-3-pro-preview",
        "generateContent",
        &with_model_turn(returned.clone()),
    )
    .await;
    assert_eq!(status, 200, "{text}");

    let mut unsigned = returned.clone();
    for part in unsigned.as_array_mut().expect("parts") {
        part.as_object_mut()
            .expect("part")
            .remove("thoughtSignature");
    }
    let (status, text) = gemini(
        &fake,
        "gemini-3-pro-preview",
        "generateContent",
        &with_model_turn(unsigned.clone()),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let refusal: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(refusal["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        refusal["error"]["message"].as_str().is_some_and(|m| m
            .starts_with("Function call is missing a thought_signature in functionCall parts.")
            && m.contains("`default_api:get_time` , position 2.")),
        "{text}"
    );
    // Older models take the unsigned call.
    let (status, text) = gemini(
        &fake,
        "gemini-2.5-pro",
        "generateContent",
        &with_model_turn(unsigned.clone()),
    )
    .await;
    assert_eq!(status, 200, "{text}");

    // Google's placeholder passes; a signature the fake did not make does not.
    let mut placeholder = unsigned.clone();
    placeholder[2]["thoughtSignature"] = json!(SKIP_THOUGHT_SIGNATURE);
    let (status, text) = gemini(
        &fake,
        "gemini-3-pro-preview",
        "generateContent",
        &with_model_turn(placeholder),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let mut forged = unsigned;
    forged[2]["thoughtSignature"] = json!(sign(ANTHROPIC, GEM, 3));
    let (status, text) = gemini(
        &fake,
        "gemini-3-pro-preview",
        "generateContent",
        &with_model_turn(forged),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let refusal: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(refusal["error"]["message"], "Corrupted thought signature.");
}

#[tokio::test]
async fn directives_work_without_strictness_too() {
    let fake = FakeUpstream::start_with(FakeConfig {
        strict: false,
        ..FakeConfig::default()
    })
    .await
    .expect("fake");
    fake.register_key(Provider::Anthropic, ANT);
    let answer = anthropic_json(
        &fake,
        &json!({ "model": "claude-sonnet-4-5", "max_tokens": 64, "made_up": true,
                 "tools": anthropic_tools(),
                 "messages": [{ "role": "user", "content": "[[call get_time {}]]" }] }),
    )
    .await;
    assert_eq!(answer["content"][1]["name"], "get_time");
}

async fn responses(fake: &FakeUpstream, body: &Value) -> (u16, String) {
    send(
        client()
            .post(fake.url("/v1/responses"))
            .bearer_auth(OAI)
            .json(body),
    )
    .await
}

/// A Responses stream checked event by event (running sequence numbers, every item added then
/// done in order, deltas only for the open item) and folded into its `response.completed`
/// response, whose output must be the items the stream closed.
fn responses_fold(text: &str) -> Value {
    let mut open: Option<(u64, String)> = None;
    let mut closed = Vec::new();
    let mut pieces = String::new();
    let mut completed = Value::Null;
    for (n, (name, data)) in sse(text).iter().enumerate() {
        let event: Value = serde_json::from_str(data).expect("event JSON");
        let kind = event["type"].as_str().expect("type");
        assert_eq!(name.as_deref(), Some(kind));
        assert_eq!(event["sequence_number"].as_u64(), Some(n as u64), "{kind}");
        assert!(completed.is_null(), "{kind} after response.completed");
        match kind {
            "response.created" | "response.in_progress" => {}
            "response.output_item.added" => {
                assert!(open.is_none(), "an item added inside another");
                let index = event["output_index"].as_u64().expect("index");
                assert_eq!(index, closed.len() as u64, "items in order");
                open = Some((
                    index,
                    event["item"]["type"].as_str().expect("type").to_owned(),
                ));
                pieces.clear();
            }
            "response.output_item.done" => {
                let (index, kind) = open.take().expect("an open item");
                assert_eq!(event["output_index"].as_u64(), Some(index));
                let item = event["item"].clone();
                assert_eq!(item["type"], kind.as_str());
                // What the deltas carried is what the item holds.
                match kind.as_str() {
                    "message" => assert_eq!(item["content"][0]["text"], pieces.as_str()),
                    "function_call" => assert_eq!(item["arguments"], pieces.as_str()),
                    "reasoning" if !pieces.is_empty() => {
                        assert_eq!(item["summary"][0]["text"], pieces.as_str());
                    }
                    _ => {}
                }
                closed.push(item);
            }
            "response.output_text.delta"
            | "response.function_call_arguments.delta"
            | "response.reasoning_summary_text.delta" => {
                let (index, _) = open.as_ref().expect("an open item");
                assert_eq!(event["output_index"].as_u64(), Some(*index));
                pieces.push_str(event["delta"].as_str().expect("delta"));
            }
            "response.completed" => completed = event["response"].clone(),
            _ => {
                let (index, _) = open.as_ref().expect("an open item");
                assert_eq!(event["output_index"].as_u64(), Some(*index), "{kind}");
            }
        }
    }
    assert!(open.is_none(), "every item is done");
    assert_eq!(completed["output"], json!(closed));
    completed
}

/// Output items with the ids each answer makes anew replaced.
fn responses_output(response: &Value) -> Value {
    let mut output = response["output"].clone();
    for item in output.as_array_mut().into_iter().flatten() {
        for key in ["id", "call_id"] {
            if item.get(key).is_some() {
                item[key] = json!(key);
            }
        }
    }
    output
}

#[tokio::test]
async fn responses_answer_calls_and_reasoning_streamed_and_not() {
    let fake = start().await;
    let tool = |name: &str| json!({ "type": "function", "name": name, "parameters": { "type": "object" } });
    let mut body = json!({
        "model": "gpt-5",
        "reasoning": { "effort": "low", "summary": "auto" },
        "tools": [tool("get_weather"), tool("get_time")],
        "input": [{ "role": "user", "content": [
            { "type": "input_text", "text": "[[think]] [[call get_weather {\"city\": \"Lima\"}]] [[call get_time]]" },
            { "type": "input_image", "image_url": format!("data:image/png;base64,{PNG}") },
        ] }],
    });
    let (status, text) = responses(&fake, &body).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    let output = answer["output"].as_array().expect("output");
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(
        output[0]["summary"][0]["text"],
        "Thinking about: [[think]] [[call get_weather {\"city\": \"L"
    );
    assert_eq!(
        output[1]["content"][0]["text"],
        "image image/png 68 bytes\nCalling get_weather, get_time."
    );
    assert_eq!(output[2]["type"], "function_call");
    assert_eq!(output[2]["name"], "get_weather");
    assert_eq!(output[2]["arguments"], "{\"city\":\"Lima\"}");
    assert!(
        output[2]["call_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("call_"))
    );
    assert_eq!(output[3]["name"], "get_time");
    let usage = &answer["usage"];
    assert!(usage["output_tokens_details"]["reasoning_tokens"].as_u64() > Some(0));

    body["stream"] = json!(true);
    let (status, text) = responses(&fake, &body).await;
    assert_eq!(status, 200, "{text}");
    let streamed = responses_fold(&text);
    assert_eq!(responses_output(&streamed), responses_output(&answer));
    assert_eq!(streamed["usage"], answer["usage"]);

    // The outputs come back as function_call_output items, quoted by the next answer.
    let next = json!({
        "model": "gpt-5",
        "tools": [tool("get_weather"), tool("get_time")],
        "input": [
            body["input"][0], output[2], output[3],
            { "type": "function_call_output", "call_id": output[2]["call_id"], "output": "fog" },
            { "type": "function_call_output", "call_id": output[3]["call_id"], "output": "dawn" },
        ],
    });
    let (status, text) = responses(&fake, &next).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        answer["output"][0]["content"][0]["text"],
        "tool result: fog | dawn"
    );
}
