//! What translation itself costs, without HTTP: the three things the proxy calls for an
//! Anthropic Messages client routed to an OpenAI-format account.
//!
//! - `translate/request`: the benchmark's standard Messages request (the body of
//!   `bench/src/client.rs::anthropic_body(false)`, byte for byte) into a Chat Completions
//!   request, `model_override` set as an alias sets it.
//! - `translate/response`: a whole `chat.completion` answer (about 60 words of text, usage
//!   with cached and reasoning tokens) back into a Messages answer.
//! - `translate/stream`: a Chat stream as OpenAI sends it, one event per chunk (the role
//!   chunk, [`STREAM_EVENTS`] content chunks, the finish chunk, the usage chunk, `[DONE]`),
//!   through a fresh `StreamTranslator` and `finish`; the throughput is content events, so
//!   the time per content event with the stream's opening and closing spread over them is
//!   the time per iteration / [`STREAM_EVENTS`]. `content_event` is one content chunk fed to
//!   a translator in the middle of a stream: the steady-state cost of an event alone.
//!
//! All run on the allocator the `keyway` binary ships with. Each input is translated once
//! before timing and its output checked, so a bench cannot time a shortcut (an unreadable
//! chunk is skipped silently by design).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keyway_translate::{
    ClientSurface, Plan, RequestOptions, ResponseContext, StreamTranslator, UpstreamFormat,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `bench/src/client.rs::anthropic_body(false)`: what `keyway-bench` sends in every
/// small-request scenario.
const MESSAGES_REQUEST: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":false,"system":"You are a concise assistant for a software team.","messages":[{"role":"user","content":"Summarise in one sentence what changed in this diff: the proxy now reuses upstream connections and keeps credentials out of its logs."},{"role":"assistant","content":"It reuses connections and hides credentials."},{"role":"user","content":"Now say it in five words."}],"metadata":{"user_id":"bench-user-0001"}}"#;

/// The model the alias sends upstream.
const UPSTREAM_MODEL: &str = "gpt-4o";

/// A whole Chat Completions answer as OpenAI writes it: 60 words of text, usage with the
/// details objects.
const CHAT_RESPONSE: &str = r#"{"id":"chatcmpl-BenchAnswer0000000000000001","object":"chat.completion","created":1767225600,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"The proxy now keeps one pool of upstream connections per provider and reuses them across requests, which removes a TCP and TLS handshake from most calls. It also filters every log line through a redaction step, so API keys, OAuth tokens and session cookies never reach the log files, even at debug level. Nothing changes for clients: same endpoints, same answers.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":96,"completion_tokens":71,"total_tokens":167,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_50cad350e4"}"#;

/// Content events per stream: `keyway-bench`'s default `--sse-events`.
const STREAM_EVENTS: usize = 50;

/// One `chat.completion.chunk` as a `data:` event, with OpenAI's fields.
fn chunk(delta: &str, finish: &str) -> Vec<u8> {
    format!(
        "data: {{\"id\":\"chatcmpl-BenchStream000000000000001\",\"object\":\"chat.completion.chunk\",\
         \"created\":1767225600,\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\",\
         \"system_fingerprint\":\"fp_50cad350e4\",\"choices\":[{{\"index\":0,\"delta\":{delta},\
         \"logprobs\":null,\"finish_reason\":{finish}}}],\"usage\":null}}\n\n"
    )
    .into_bytes()
}

/// Content chunk `i`: one word, with the leading space OpenAI's tokens carry.
fn content_chunk(i: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        " connections",
        " are",
        " reused",
        ",",
        " credentials",
        " stay",
        " hidden",
        ".",
    ];
    let word = WORDS[i % WORDS.len()];
    chunk(&format!("{{\"content\":\"{word}\"}}"), "null")
}

/// A whole Chat stream, one event per chunk, as the proxy's relay receives it.
fn chat_stream(events: usize) -> Vec<Vec<u8>> {
    let mut chunks = vec![chunk(
        r#"{"role":"assistant","content":"","refusal":null}"#,
        "null",
    )];
    chunks.extend((0..events).map(content_chunk));
    chunks.push(chunk("{}", "\"stop\""));
    chunks.push(
        format!(
            "data: {{\"id\":\"chatcmpl-BenchStream000000000000001\",\"object\":\"chat.completion.chunk\",\
             \"created\":1767225600,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_50cad350e4\",\
             \"choices\":[],\"usage\":{{\"prompt_tokens\":96,\"completion_tokens\":{events},\
             \"total_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":0}},\
             \"completion_tokens_details\":{{\"reasoning_tokens\":0}}}}}}\n\n",
            96 + events
        )
        .into_bytes(),
    );
    chunks.push(b"data: [DONE]\n\n".to_vec());
    chunks
}

fn options() -> RequestOptions<'static> {
    RequestOptions {
        model_override: Some(UPSTREAM_MODEL),
        ..RequestOptions::default()
    }
}

/// The answer's context, as the request's plan gives it.
fn context(body: &[u8]) -> ResponseContext {
    match keyway_translate::request(
        ClientSurface::Messages,
        UpstreamFormat::OpenAi,
        body,
        &options(),
    ) {
        Ok(Plan::Upstream(request)) => request.context,
        other => panic!("the benchmark request does not translate: {other:?}"),
    }
}

/// Translates a whole stream and returns the client's bytes.
fn translate_stream(context: &ResponseContext, chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut translator = StreamTranslator::new(context);
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&translator.feed(c));
    }
    out.extend_from_slice(&translator.finish());
    out
}

fn bench_request(c: &mut Criterion) {
    let body = MESSAGES_REQUEST.as_bytes();
    let Ok(Plan::Upstream(sent)) = keyway_translate::request(
        ClientSurface::Messages,
        UpstreamFormat::OpenAi,
        body,
        &options(),
    ) else {
        panic!("the benchmark request does not translate");
    };
    assert_eq!(sent.path, "/v1/chat/completions");
    let json: serde_json::Value = serde_json::from_slice(&sent.body).expect("a JSON body");
    assert_eq!(json["model"], UPSTREAM_MODEL);
    assert_eq!(json["messages"].as_array().map(Vec::len), Some(4));

    let mut group = c.benchmark_group("translate/request");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("messages_to_chat", |b| {
        b.iter(|| {
            keyway_translate::request(
                ClientSurface::Messages,
                UpstreamFormat::OpenAi,
                black_box(body),
                &options(),
            )
        })
    });
    group.finish();
}

fn bench_response(c: &mut Criterion) {
    let context = context(MESSAGES_REQUEST.as_bytes());
    let body = CHAT_RESPONSE.as_bytes();
    let answer = keyway_translate::response(200, body, &context);
    assert_eq!(answer.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("a JSON answer");
    assert_eq!(json["type"], "message");
    assert_eq!(json["stop_reason"], "end_turn");
    assert_eq!(json["usage"]["output_tokens"], 71);
    assert!(
        json["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.split_whitespace().count() >= 55),
        "{json}"
    );

    let mut group = c.benchmark_group("translate/response");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("chat_to_messages", |b| {
        b.iter(|| keyway_translate::response(200, black_box(body), &context))
    });
    group.finish();
}

fn bench_stream(c: &mut Criterion) {
    let mut streaming: serde_json::Value =
        serde_json::from_str(MESSAGES_REQUEST).expect("the request is JSON");
    streaming["stream"] = true.into();
    let context = context(streaming.to_string().as_bytes());
    let chunks = chat_stream(STREAM_EVENTS);
    let text = String::from_utf8(translate_stream(&context, &chunks)).expect("UTF-8");
    assert_eq!(
        text.matches("event: content_block_delta\n").count(),
        STREAM_EVENTS,
        "{text}"
    );
    assert!(text.contains("\"output_tokens\":50"), "{text}");
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));

    let mut group = c.benchmark_group("translate/stream");
    group.throughput(Throughput::Elements(STREAM_EVENTS as u64));
    group.bench_function(format!("whole_{STREAM_EVENTS}_events"), |b| {
        b.iter(|| translate_stream(&context, black_box(&chunks)))
    });

    // One content event in the middle of a stream: a translator past its opening events
    // (nothing it keeps grows with the text of an Anthropic client's stream).
    let event = content_chunk(1);
    let mut translator = StreamTranslator::new(&context);
    translator.feed(&chunks[0]);
    translator.feed(&chunks[1]);
    let out = translator.feed(&event);
    assert!(
        out.starts_with(b"event: content_block_delta\n") && out.ends_with(b"\n\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("content_event", |b| {
        b.iter(|| translator.feed(black_box(&event)))
    });
    group.finish();
}

criterion_group!(benches, bench_request, bench_response, bench_stream);
criterion_main!(benches);
