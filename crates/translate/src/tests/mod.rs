//! Tests of whole translations through the public API: requests for every translated pair,
//! whole answers, streams cut at every kind of boundary, errors and refusals.

mod answers;
mod fixtures;
mod matrix;
mod refusals;
mod requests;
mod streams;

use serde_json::Value;

use crate::{
    ClientSurface, GeminiMethod, Plan, RequestOptions, ResponseContext, StreamTranslator,
    TranslateError, UpstreamFormat, UpstreamRequest,
};

const GEMINI: ClientSurface = ClientSurface::Gemini(GeminiMethod::Generate);
const GEMINI_STREAM: ClientSurface = ClientSurface::Gemini(GeminiMethod::Stream);

/// Translates a request that must go upstream, returning it and its body as JSON.
fn upstream(
    client: ClientSurface,
    upstream: UpstreamFormat,
    body: &Value,
    model: Option<&str>,
) -> (UpstreamRequest, Value) {
    let options = RequestOptions {
        path_model: Some("gemini-2.5-pro"),
        model_override: model,
        openai_legacy_max_tokens: false,
    };
    let bytes = serde_json::to_vec(body).expect("a test body");
    match crate::request(client, upstream, &bytes, &options) {
        Ok(Plan::Upstream(request)) => {
            let json = serde_json::from_slice(&request.body).expect("the translated body is JSON");
            (request, json)
        }
        Ok(Plan::Local(answer)) => panic!("answered locally: {answer:?}"),
        Err(error) => panic!("refused: {error}"),
    }
}

/// Translates a request that must be refused.
fn refused(client: ClientSurface, upstream: UpstreamFormat, body: &Value) -> TranslateError {
    let bytes = serde_json::to_vec(body).expect("a test body");
    let options = RequestOptions {
        path_model: Some("gemini-2.5-pro"),
        ..RequestOptions::default()
    };
    match crate::request(client, upstream, &bytes, &options) {
        Ok(plan) => panic!("translated, not refused: {plan:?}"),
        Err(error) => error,
    }
}

/// A context with a fixed id token and time, so that outputs can be compared.
fn context(client: ClientSurface, upstream: UpstreamFormat) -> ResponseContext {
    ResponseContext {
        client,
        upstream,
        model: "client-model".into(),
        token: "TOKEN".into(),
        created: 1_700_000_000,
        include_usage: false,
        namespaces: Vec::new(),
    }
}

/// One client SSE event: its `event:` name (if any) and its data.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: Option<String>,
    data: Value,
}

/// Splits client SSE output into events. `[DONE]` reads as the string "[DONE]".
fn parse_sse(text: &str) -> Vec<Sse> {
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "output ends between events: {text:?}"
    );
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(body) = line.strip_prefix("data: ") {
                    data = Some(if body == "[DONE]" {
                        Value::String("[DONE]".into())
                    } else {
                        serde_json::from_str(body).expect("client data is JSON")
                    });
                } else {
                    panic!("unexpected line {line:?}");
                }
            }
            Sse {
                event,
                data: data.expect("every event has data"),
            }
        })
        .collect()
}

/// Runs an upstream stream through a translator, fed in the given chunk sizes (cycled).
fn translate_stream(ctx: &ResponseContext, body: &str, sizes: &[usize]) -> String {
    let mut translator = StreamTranslator::new(ctx);
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    let mut turn = 0;
    while at < bytes.len() {
        let size = sizes[turn % sizes.len()].max(1);
        let end = (at + size).min(bytes.len());
        out.extend_from_slice(&translator.feed(&bytes[at..end]));
        at = end;
        turn += 1;
    }
    out.extend_from_slice(&translator.finish());
    String::from_utf8(out).expect("client output is UTF-8")
}

/// The client events for an upstream stream, checking that every way of cutting the
/// upstream body (whole, one byte at a time, odd sizes) gives the very same bytes.
fn stream_events(ctx: &ResponseContext, body: &str) -> Vec<Sse> {
    let whole = translate_stream(ctx, body, &[usize::MAX]);
    for sizes in [&[1][..], &[2, 3, 5, 7], &[13, 1, 64], &[100]] {
        assert_eq!(
            translate_stream(ctx, body, sizes),
            whole,
            "cutting the upstream stream in {sizes:?} changed the output"
        );
    }
    parse_sse(&whole)
}

/// The `event:` names, or for data-only grammars the `type`/`object` of each event.
fn names(events: &[Sse]) -> Vec<String> {
    events
        .iter()
        .map(|e| match &e.event {
            Some(name) => name.clone(),
            None => e.data.as_str().unwrap_or("data").to_owned(),
        })
        .collect()
}
