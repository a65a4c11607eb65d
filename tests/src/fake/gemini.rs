//! Google Gemini API: `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent` (`?alt=sse` → SSE, otherwise a streamed JSON array),
//! `:countTokens`, `GET /v1beta/models` and `GET /v1beta/models/{model}`.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::RateLimit;
use super::directive::{self, FRAGMENTS, Image, Reply, Turn, fragments};
use super::sse;
use super::wire::{Answer, Call, Failure, header_str, rate_limit_headers};

/// The Gemini endpoints the fake serves.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    List,
    Get {
        model: String,
    },
    Generate {
        model: String,
    },
    Stream {
        model: String,
        sse: bool,
    },
    CountTokens,
    /// A `/v1beta/models/…` path or method Gemini doesn't have: answered 404, no script used.
    Unknown,
}

/// Parses what follows `/v1beta/models/`. axum can't route `{model}:action` as separate
/// segments, so the action is split off at the last `:`.
pub(crate) fn parse(method: &Method, rest: &str, query: &HashMap<String, String>) -> Endpoint {
    let rest = rest.trim_start_matches('/');
    let (model, action) = match rest.rsplit_once(':') {
        Some((model, action)) => (model, Some(action)),
        None => (rest, None),
    };
    if model.is_empty() || model.contains('/') {
        return Endpoint::Unknown;
    }
    let model = model.to_owned();
    match (method, action) {
        (&Method::GET, None) => Endpoint::Get { model },
        (&Method::POST, Some("generateContent")) => Endpoint::Generate { model },
        (&Method::POST, Some("streamGenerateContent")) => Endpoint::Stream {
            model,
            sse: query.get("alt").is_some_and(|alt| alt == "sse"),
        },
        (&Method::POST, Some("countTokens")) => Endpoint::CountTokens,
        _ => Endpoint::Unknown,
    }
}

/// The request's key: `x-goog-api-key`, else the `key` query parameter.
pub(crate) fn key(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    header_str(headers, "x-goog-api-key")
        .or_else(|| query.get("key").filter(|k| !k.is_empty()).cloned())
}

/// The success answer; `events` is the content chunk count for streaming requests.
pub(crate) fn answer(endpoint: &Endpoint, call: &Call, events: usize) -> Answer {
    match endpoint {
        Endpoint::List => {
            let models = ["gemini-2.5-pro", "gemini-2.5-flash"].map(model_info);
            Answer::ok(json!({ "models": models }))
        }
        Endpoint::Get { model } => Answer::ok(model_info(model)),
        Endpoint::Unknown => failure(Failure::NotFound("Requested entity was not found.".into())),
        Endpoint::Generate { model } => match call.json() {
            Ok(request) => match Reply::plan(&turn(&request), &call.text()) {
                None => Answer::ok(chunk(call, model, &call.text(), true)),
                Some(reply) => {
                    let usage = directed_usage(call, &reply);
                    let parts = directed_parts(call, &reply);
                    Answer::ok(response(call, model, parts, Some(usage)))
                }
            },
            Err(message) => failure(Failure::BadRequest(message)),
        },
        Endpoint::CountTokens => match call.json() {
            Ok(_) => Answer::ok(json!({
                "totalTokens": call.input_tokens(),
                "promptTokensDetails": [{ "modality": "TEXT", "tokenCount": call.input_tokens() }],
            })),
            Err(message) => failure(Failure::BadRequest(message)),
        },
        Endpoint::Stream { model, sse } => match call.json() {
            Ok(request) => match Reply::plan(&turn(&request), &call.text()) {
                None => {
                    let pieces = (0..events)
                        .map(|i| chunk(call, model, &call.piece(i), false))
                        .collect();
                    framed(pieces, chunk(call, model, "", true), *sse)
                }
                Some(reply) => directed_stream(call, model, &reply, *sse),
            },
            Err(message) => failure(Failure::BadRequest(message)),
        },
    }
}

/// A `GenerateContentResponse` holding `text`; the final one carries `finishReason` and the
/// full usage.
fn chunk(call: &Call, model: &str, text: &str, last: bool) -> Value {
    let prompt = call.input_tokens();
    let mut candidate = json!({
        "content": { "parts": [{ "text": text }], "role": "model" },
        "index": 0,
    });
    let mut usage = json!({ "promptTokenCount": prompt, "totalTokenCount": prompt });
    if last {
        candidate["finishReason"] = json!("STOP");
        usage = json!({
            "promptTokenCount": prompt,
            "candidatesTokenCount": 8,
            "totalTokenCount": prompt + 8,
        });
        // Gemini leaves zero counts out.
        if call.facts.cache.read > 0 {
            usage["cachedContentTokenCount"] = json!(call.facts.cache.read);
        }
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": format!("fake{:016}", call.id),
    })
}

/// Stream `pieces` (each a `GenerateContentResponse`), then `last`, the final chunk with
/// `finishReason` (Gemini has no end-of-stream marker: the stream just ends). With `sse` each
/// chunk is a CRLF-framed `data:` event; without, the chunks form one JSON array streamed
/// piece by piece.
fn framed(pieces: Vec<Value>, last: Value, sse: bool) -> Answer {
    if sse {
        Answer::Stream {
            content_type: "text/event-stream",
            head: Vec::new(),
            content: pieces.iter().map(sse::data_crlf).collect(),
            tail: vec![sse::data_crlf(&last)],
        }
    } else {
        let sep = if pieces.is_empty() { "" } else { ",\r\n" };
        let content = pieces
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let sep = if i == 0 { "" } else { ",\r\n" };
                Bytes::from(format!("{sep}{c}"))
            })
            .collect();
        Answer::Stream {
            content_type: "application/json; charset=UTF-8",
            head: vec![Bytes::from_static(b"[")],
            content,
            tail: vec![Bytes::from(format!("{sep}{last}]"))],
        }
    }
}

/// `key` of a proto JSON object, by its JSON name or its proto name.
fn field<'a>(value: &'a Value, json_name: &str, proto_name: &str) -> Option<&'a Value> {
    value.get(json_name).or_else(|| value.get(proto_name))
}

/// What a generate request asks of a directive-driven answer: the text, images and function
/// responses of its last user content, its function declarations, and whether it asks for
/// thoughts (`thinkingConfig.includeThoughts`).
fn turn(request: &Value) -> Turn {
    let tools = request
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| field(t, "functionDeclarations", "function_declarations"))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|d| d.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let reasoning = field(request, "generationConfig", "generation_config")
        .and_then(|c| field(c, "thinkingConfig", "thinking_config"))
        .and_then(|c| field(c, "includeThoughts", "include_thoughts"))
        .and_then(Value::as_bool)
        == Some(true);
    let mut turn = Turn {
        tools,
        reasoning,
        ..Turn::default()
    };
    let last_user = request
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .rev()
        .find(|c| c.get("role").and_then(Value::as_str).unwrap_or("user") == "user");
    let parts = last_user
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let mut texts = Vec::new();
    for part in parts {
        let text_of =
            |v: &Value, name: &str| v.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) != Some(true) {
                texts.push(text.to_owned());
            }
        } else if let Some(blob) = field(part, "inlineData", "inline_data") {
            let mime = field(blob, "mimeType", "mime_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            if mime.starts_with("image/") {
                turn.images
                    .push(Image::inline(mime, &text_of(blob, "data")));
            }
        } else if let Some(file) = field(part, "fileData", "file_data") {
            let mime = field(file, "mimeType", "mime_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            if mime.starts_with("image/") {
                let uri = field(file, "fileUri", "file_uri")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                turn.images.push(Image::Url(uri.to_owned()));
            }
        } else if let Some(response) = field(part, "functionResponse", "function_response") {
            let result = response.get("response").cloned().unwrap_or(Value::Null);
            turn.results.push(result.to_string());
        }
    }
    turn.text = texts.join("\n");
    turn
}

/// The signature of this answer's thoughts (and first function call).
fn signature(call: &Call) -> String {
    directive::sign(directive::GEMINI, &call.key, call.id)
}

/// The reply's parts: a thought part (`thought: true`, signed), the text, then a
/// `functionCall` part per call (no `id`), the first signed as Gemini signs it.
fn directed_parts(call: &Call, reply: &Reply) -> Vec<Value> {
    let mut parts = Vec::new();
    if let Some(thinking) = &reply.thinking {
        parts.push(
            json!({ "text": thinking, "thought": true, "thoughtSignature": signature(call) }),
        );
    }
    parts.push(json!({ "text": reply.text }));
    parts.extend(call_parts(call, reply));
    parts
}

fn call_parts(call: &Call, reply: &Reply) -> Vec<Value> {
    reply
        .calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut part = json!({ "functionCall": { "name": c.name, "args": c.args } });
            if i == 0 {
                part["thoughtSignature"] = json!(signature(call));
            }
            part
        })
        .collect()
}

/// Full usage of a reply: thoughts counted apart (`thoughtsTokenCount`) and in the total.
fn directed_usage(call: &Call, reply: &Reply) -> Value {
    let prompt = call.input_tokens();
    let output = reply.output_tokens();
    let thoughts = reply.reasoning_tokens();
    let mut usage = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output + thoughts,
    });
    if thoughts > 0 {
        usage["thoughtsTokenCount"] = json!(thoughts);
    }
    if call.facts.cache.read > 0 {
        usage["cachedContentTokenCount"] = json!(call.facts.cache.read);
    }
    usage
}

/// A `GenerateContentResponse` with `parts`; `usage` (the final one) also brings
/// `finishReason: STOP`, while earlier chunks count only the prompt.
fn response(call: &Call, model: &str, parts: Vec<Value>, usage: Option<Value>) -> Value {
    let mut candidate = json!({ "content": { "parts": parts, "role": "model" }, "index": 0 });
    let usage = match usage {
        Some(usage) => {
            candidate["finishReason"] = json!("STOP");
            usage
        }
        None => {
            let prompt = call.input_tokens();
            json!({ "promptTokenCount": prompt, "totalTokenCount": prompt })
        }
    };
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": format!("fake{:016}", call.id),
    })
}

/// The reply streamed: the thought part, the text in pieces, one chunk with every function
/// call, then the final chunk.
fn directed_stream(call: &Call, model: &str, reply: &Reply, sse: bool) -> Answer {
    let mut pieces = Vec::new();
    if let Some(thinking) = &reply.thinking {
        let part =
            json!({ "text": thinking, "thought": true, "thoughtSignature": signature(call) });
        pieces.push(response(call, model, vec![part], None));
    }
    for text in fragments(&reply.text, FRAGMENTS) {
        pieces.push(response(call, model, vec![json!({ "text": text })], None));
    }
    if !reply.calls.is_empty() {
        pieces.push(response(call, model, call_parts(call, reply), None));
    }
    let last = response(
        call,
        model,
        vec![json!({ "text": "" })],
        Some(directed_usage(call, reply)),
    );
    framed(pieces, last, sse)
}

fn model_info(model: &str) -> Value {
    json!({
        "name": format!("models/{model}"),
        "version": "001",
        "displayName": model,
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    })
}

/// `{"error":{"code","message","status","details"?}}` as Google APIs send it.
pub(crate) fn failure(f: Failure<'_>) -> Answer {
    match f {
        Failure::MissingKey => error(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
            "PERMISSION_DENIED",
            None,
        ),
        Failure::Unauthorized(_) => error(
            StatusCode::BAD_REQUEST,
            "API key not valid. Please pass a valid API key.",
            "INVALID_ARGUMENT",
            Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": { "service": "generativelanguage.googleapis.com" },
            }])),
        ),
        Failure::RateLimited(RateLimit::GeminiRetryInfo { delay_secs }) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "You exceeded your current quota, please check your plan and billing details.",
            "RESOURCE_EXHAUSTED",
            Some(json!([
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    }],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": format!("{delay_secs}s"),
                },
            ])),
        ),
        Failure::RateLimited(limit) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "Resource has been exhausted (e.g. check quota).",
            "RESOURCE_EXHAUSTED",
            None,
        )
        .with_headers(rate_limit_headers(limit)),
        Failure::Overloaded => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The model is overloaded. Please try again later.",
            "UNAVAILABLE",
            None,
        ),
        Failure::Server(code) => {
            let status = super::wire::status(code);
            let kind = match status.as_u16() {
                503 => "UNAVAILABLE",
                504 => "DEADLINE_EXCEEDED",
                _ => "INTERNAL",
            };
            error(status, "An internal error has occurred.", kind, None)
        }
        Failure::ContextTooLong => error(
            StatusCode::BAD_REQUEST,
            "The input token count (1100000) exceeds the maximum number of tokens allowed (1048576).",
            "INVALID_ARGUMENT",
            None,
        ),
        Failure::BadRequest(message) => {
            error(StatusCode::BAD_REQUEST, &message, "INVALID_ARGUMENT", None)
        }
        Failure::NotFound(message) => error(StatusCode::NOT_FOUND, &message, "NOT_FOUND", None),
    }
}

pub(crate) fn error(
    status: StatusCode,
    message: &str,
    kind: &str,
    details: Option<Value>,
) -> Answer {
    let mut body = json!({
        "error": { "code": status.as_u16(), "message": message, "status": kind },
    });
    if let Some(details) = details {
        body["error"]["details"] = details;
    }
    Answer::error(status, body)
}
