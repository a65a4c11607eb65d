//! Google Gemini API: `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent` (`?alt=sse` → SSE, otherwise a streamed JSON array),
//! `:countTokens`, `GET /v1beta/models` and `GET /v1beta/models/{model}`.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::RateLimit;
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
            Ok(_) => Answer::ok(chunk(call, model, &call.text(), true)),
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
            Ok(_) => stream(call, model, events, *sse),
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

/// N text chunks, then a final empty-text chunk with `finishReason: STOP` (Gemini has no
/// end-of-stream marker: the stream just ends). With `sse` each chunk is a CRLF-framed
/// `data:` event; without, the chunks form one JSON array streamed piece by piece.
fn stream(call: &Call, model: &str, events: usize, sse: bool) -> Answer {
    let pieces = (0..events).map(|i| chunk(call, model, &call.piece(i), false));
    let last = chunk(call, model, "", true);
    if sse {
        Answer::Stream {
            content_type: "text/event-stream",
            head: Vec::new(),
            content: pieces.map(|c| sse::data_crlf(&c)).collect(),
            tail: vec![sse::data_crlf(&last)],
        }
    } else {
        let content = pieces
            .enumerate()
            .map(|(i, c)| {
                let sep = if i == 0 { "" } else { ",\r\n" };
                Bytes::from(format!("{sep}{c}"))
            })
            .collect();
        let sep = if events == 0 { "" } else { ",\r\n" };
        Answer::Stream {
            content_type: "application/json; charset=UTF-8",
            head: vec![Bytes::from_static(b"[")],
            content,
            tail: vec![Bytes::from(format!("{sep}{last}]"))],
        }
    }
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

fn error(status: StatusCode, message: &str, kind: &str, details: Option<Value>) -> Answer {
    let mut body = json!({
        "error": { "code": status.as_u16(), "message": message, "status": kind },
    });
    if let Some(details) = details {
        body["error"]["details"] = details;
    }
    Answer::error(status, body)
}
