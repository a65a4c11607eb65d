//! Anthropic Messages API: `POST /v1/messages`, `POST /v1/messages/count_tokens`,
//! `GET /v1/models`.

use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::RateLimit;
use super::directive::{self, FRAGMENTS, Image, Reply, Turn, fragments};
use super::sse;
use super::wire::{Answer, Call, Failure, bearer, header_str, rate_limit_headers};

/// Model named in answers when the request names none.
const DEFAULT_MODEL: &str = "claude-sonnet-4-5";

/// The Anthropic endpoints the fake serves.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Endpoint {
    Messages,
    CountTokens,
    Models,
}

/// The request's key: `x-api-key`, or the bearer token (OAuth-style requests).
pub(crate) fn key(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "x-api-key").or_else(|| bearer(headers))
}

/// Whether a `GET /v1/models` is Anthropic's: real Anthropic clients always send
/// `anthropic-version`, and API-key clients `x-api-key`; OpenAI clients send neither.
pub(crate) fn claims_models_request(headers: &HeaderMap) -> bool {
    headers.contains_key("anthropic-version") || headers.contains_key("x-api-key")
}

/// Anthropic's 400 for a request without `anthropic-version` (every endpoint requires it), or
/// with a value that is no version: the API takes one date, `YYYY-MM-DD` (`2023-06-01`; the
/// SDKs send newer ones), and a proxy that repeats the header sends `2023-06-01, 2023-06-01`,
/// which is refused as no valid version.
pub(crate) fn version_refusal(headers: &HeaderMap) -> Option<Answer> {
    let values: Vec<&str> = headers
        .get_all("anthropic-version")
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .collect();
    let message = match values.as_slice() {
        [] => "anthropic-version: header is required".to_owned(),
        [one] if is_date(one) => return None,
        _ => format!(
            "anthropic-version: {:?} is not a valid version",
            values.join(", ")
        ),
    };
    Some(error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &message,
    ))
}

/// `YYYY-MM-DD`.
fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// The success answer; `events` is the content event count if the request streams.
pub(crate) fn answer(endpoint: Endpoint, call: &Call, events: usize) -> Answer {
    match endpoint {
        Endpoint::Models => Answer::ok(models()),
        Endpoint::CountTokens => match call.json() {
            Ok(_) => Answer::ok(json!({ "input_tokens": call.input_tokens() })),
            Err(message) => failure(Failure::BadRequest(message)),
        },
        Endpoint::Messages => match call.json() {
            // What the real API says of an empty conversation.
            Ok(request)
                if request
                    .get("messages")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty) =>
            {
                failure(Failure::BadRequest(
                    "messages: at least one message is required".to_owned(),
                ))
            }
            Ok(request) => {
                let model = request
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_MODEL);
                let streaming = request.get("stream").and_then(Value::as_bool) == Some(true);
                match (Reply::plan(&turn(&request), &call.text()), streaming) {
                    (None, true) => stream(call, model, events),
                    (None, false) => Answer::ok(message(call, model)),
                    (Some(reply), true) => directed_stream(call, model, &reply),
                    (Some(reply), false) => Answer::ok(directed_message(call, model, &reply)),
                }
            }
            Err(message) => failure(Failure::BadRequest(message)),
        },
    }
}

fn message_id(call: &Call) -> String {
    format!("msg_fake{:016}", call.id)
}

/// A complete Messages API response.
fn message(call: &Call, model: &str) -> Value {
    json!({
        "id": message_id(call),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{ "type": "text", "text": call.text() }],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": usage(call, 8),
    })
}

/// Messages usage: `input_tokens` is what the cache neither served nor stored.
fn usage(call: &Call, output_tokens: u64) -> Value {
    let cache = call.facts.cache;
    let input = if cache.total > 0 {
        cache.uncached()
    } else {
        call.input_tokens()
    };
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": cache.written,
        "cache_read_input_tokens": cache.read,
        "output_tokens": output_tokens,
    })
}

/// The real event sequence: message_start, content_block_start, ping, N×content_block_delta,
/// content_block_stop, message_delta, message_stop.
fn stream(call: &Call, model: &str, events: usize) -> Answer {
    let start = json!({
        "type": "message_start",
        "message": {
            "id": message_id(call),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(call, 1),
        },
    });
    let head = vec![
        sse::event("message_start", &start),
        sse::event(
            "content_block_start",
            &json!({
                "type": "content_block_start",
                "index": 0,
                "content_block": { "type": "text", "text": "" },
            }),
        ),
        sse::event("ping", &json!({ "type": "ping" })),
    ];
    let content = (0..events)
        .map(|i| {
            sse::event(
                "content_block_delta",
                &json!({
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": { "type": "text_delta", "text": call.piece(i) },
                }),
            )
        })
        .collect();
    let tail = vec![
        sse::event(
            "content_block_stop",
            &json!({ "type": "content_block_stop", "index": 0 }),
        ),
        sse::event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": { "stop_reason": "end_turn", "stop_sequence": null },
                "usage": { "output_tokens": events },
            }),
        ),
        sse::event("message_stop", &json!({ "type": "message_stop" })),
    ];
    Answer::Stream {
        content_type: "text/event-stream; charset=utf-8",
        head,
        content,
        tail,
    }
}

/// What a Messages request asks of a directive-driven answer: the text, images and tool
/// results of its last user message, its tools, and whether thinking is on.
fn turn(request: &Value) -> Turn {
    let tools = request
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let reasoning = matches!(
        request.pointer("/thinking/type").and_then(Value::as_str),
        Some("enabled" | "adaptive")
    );
    let mut turn = Turn {
        tools,
        reasoning,
        ..Turn::default()
    };
    let last_user = request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
    let Some(message) = last_user else {
        return turn;
    };
    let blocks = match message.get("content") {
        Some(Value::String(text)) => {
            turn.text = text.clone();
            return turn;
        }
        Some(Value::Array(blocks)) => blocks,
        _ => return turn,
    };
    let mut texts = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => texts.extend(block.get("text").and_then(Value::as_str)),
            Some("image") => turn.images.extend(image(block.get("source"))),
            Some("tool_result") => turn.results.push(result_text(block.get("content"))),
            _ => {}
        }
    }
    turn.text = texts.join("\n");
    turn
}

/// An image block's source as the answer describes it.
fn image(source: Option<&Value>) -> Option<Image> {
    let source = source?;
    let field = |name: &str| source.get(name).and_then(Value::as_str).unwrap_or("");
    match field("type") {
        "base64" => Some(Image::inline(field("media_type"), field("data"))),
        "url" => Some(Image::Url(field("url").to_owned())),
        "file" => Some(Image::Url(field("file_id").to_owned())),
        _ => None,
    }
}

/// The text of a `tool_result`'s content: the string, or its text blocks joined.
fn result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            texts.join(" ")
        }
        _ => String::new(),
    }
}

fn tool_use_id(call: &Call, i: usize) -> String {
    format!("toolu_fake{:016}_{i}", call.id)
}

fn stop_reason(reply: &Reply) -> &'static str {
    if reply.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    }
}

/// The signature of this answer's thinking block.
fn signature(call: &Call) -> String {
    directive::sign(directive::ANTHROPIC, &call.key, call.id)
}

/// A Messages response with the reply's blocks: `thinking` (signed), `text`, `tool_use`s.
fn directed_message(call: &Call, model: &str, reply: &Reply) -> Value {
    let mut content = Vec::new();
    if let Some(thinking) = &reply.thinking {
        content.push(
            json!({ "type": "thinking", "thinking": thinking, "signature": signature(call) }),
        );
    }
    content.push(json!({ "type": "text", "text": reply.text }));
    for (i, c) in reply.calls.iter().enumerate() {
        content.push(json!({
            "type": "tool_use", "id": tool_use_id(call, i), "name": c.name, "input": c.args,
        }));
    }
    json!({
        "id": message_id(call),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(reply),
        "stop_sequence": null,
        "usage": usage(call, reply.output_tokens() + reply.reasoning_tokens()),
    })
}

/// The reply streamed as the API streams it: each block opened by `content_block_start`,
/// filled by deltas (`thinking_delta`s then a `signature_delta`; `text_delta`s;
/// `input_json_delta`s cutting the input's JSON into pieces) and closed by
/// `content_block_stop`. Each of these events is one content event.
fn directed_stream(call: &Call, model: &str, reply: &Reply) -> Answer {
    let start = json!({
        "type": "message_start",
        "message": {
            "id": message_id(call),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(call, 1),
        },
    });
    let head = vec![
        sse::event("message_start", &start),
        sse::event("ping", &json!({ "type": "ping" })),
    ];
    let mut content = Vec::new();
    let mut index = 0;
    let mut block = |opening: Value, deltas: Vec<Value>| {
        content.push(sse::event(
            "content_block_start",
            &json!({ "type": "content_block_start", "index": index, "content_block": opening }),
        ));
        for delta in deltas {
            content.push(sse::event(
                "content_block_delta",
                &json!({ "type": "content_block_delta", "index": index, "delta": delta }),
            ));
        }
        content.push(sse::event(
            "content_block_stop",
            &json!({ "type": "content_block_stop", "index": index }),
        ));
        index += 1;
    };
    if let Some(thinking) = &reply.thinking {
        let mut deltas: Vec<Value> = fragments(thinking, FRAGMENTS)
            .into_iter()
            .map(|t| json!({ "type": "thinking_delta", "thinking": t }))
            .collect();
        deltas.push(json!({ "type": "signature_delta", "signature": signature(call) }));
        block(
            json!({ "type": "thinking", "thinking": "", "signature": "" }),
            deltas,
        );
    }
    block(
        json!({ "type": "text", "text": "" }),
        fragments(&reply.text, FRAGMENTS)
            .into_iter()
            .map(|t| json!({ "type": "text_delta", "text": t }))
            .collect(),
    );
    for (i, c) in reply.calls.iter().enumerate() {
        block(
            json!({ "type": "tool_use", "id": tool_use_id(call, i), "name": c.name, "input": {} }),
            fragments(&c.args.to_string(), FRAGMENTS)
                .into_iter()
                .map(|j| json!({ "type": "input_json_delta", "partial_json": j }))
                .collect(),
        );
    }
    let tail = vec![
        sse::event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop_reason(reply), "stop_sequence": null },
                "usage": { "output_tokens": reply.output_tokens() + reply.reasoning_tokens() },
            }),
        ),
        sse::event("message_stop", &json!({ "type": "message_stop" })),
    ];
    Answer::Stream {
        content_type: "text/event-stream; charset=utf-8",
        head,
        content,
        tail,
    }
}

/// `GET /v1/models` in Anthropic's paginated shape.
fn models() -> Value {
    let models = [
        ("claude-opus-4-1", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
        (
            "claude-sonnet-4-5",
            "Claude Sonnet 4.5",
            "2025-09-29T00:00:00Z",
        ),
        (
            "claude-haiku-4-5",
            "Claude Haiku 4.5",
            "2025-10-15T00:00:00Z",
        ),
    ];
    let data: Vec<Value> = models
        .iter()
        .map(|(id, name, created)| {
            json!({ "type": "model", "id": id, "display_name": name, "created_at": created })
        })
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": models[0].0,
        "last_id": models[models.len() - 1].0,
    })
}

/// `{"type":"error","error":{"type":…,"message":…}}` with the status Anthropic uses.
pub(crate) fn failure(f: Failure<'_>) -> Answer {
    let (status, kind, message) = match f {
        Failure::MissingKey => (
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required".to_owned(),
        ),
        Failure::Unauthorized(_) => (
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key".to_owned(),
        ),
        Failure::RateLimited(limit) => {
            let message = match limit {
                RateLimit::AnthropicUnified5h { .. } | RateLimit::AnthropicUnified7d { .. } => {
                    "This request would exceed your account's rate limit. Please try again later."
                }
                _ => {
                    "This request would exceed the rate limit for your organization of 50 \
                     requests per minute. Please reduce the rate of requests or try again later."
                }
            };
            return error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message)
                .with_headers(rate_limit_headers(limit));
        }
        Failure::Overloaded => (
            super::wire::status(529),
            "overloaded_error",
            "Overloaded".to_owned(),
        ),
        Failure::Server(529) => (
            super::wire::status(529),
            "overloaded_error",
            "Overloaded".to_owned(),
        ),
        Failure::Server(code) => (
            super::wire::status(code),
            "api_error",
            "Internal server error".to_owned(),
        ),
        Failure::ContextTooLong => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "prompt is too long: 208913 tokens > 200000 maximum".to_owned(),
        ),
        Failure::BadRequest(message) => (StatusCode::BAD_REQUEST, "invalid_request_error", message),
        Failure::NotFound(message) => (StatusCode::NOT_FOUND, "not_found_error", message),
    };
    error(status, kind, &message)
}

pub(crate) fn error(status: StatusCode, kind: &str, message: &str) -> Answer {
    Answer::error(
        status,
        json!({ "type": "error", "error": { "type": kind, "message": message } }),
    )
}
