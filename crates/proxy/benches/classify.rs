//! Classification of a realistic 20 KB Anthropic Messages body, with `model` as the last key
//! (the worst case for a scanner: everything before it must be skipped).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keyway_proxy::model_of_body;
use serde_json::json;

fn body() -> Vec<u8> {
    let paragraph = "Refactor the session cache so that expired entries are evicted lazily, \
        and add a test that covers the \"stale read\" case.\n";
    let mut messages = Vec::new();
    while serde_json::to_vec(&messages).map_or(0, |v| v.len()) < 19_000 {
        messages.push(
            json!({"role": "user", "content": [{"type": "text", "text": paragraph.repeat(3)}]}),
        );
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": paragraph},
            {"type": "tool_use", "id": "toolu_01", "name": "edit", "input": {"path": "src/cache.rs", "line": 42}}
        ]}));
    }
    let mut body = serde_json::to_vec(&json!({
        "max_tokens": 8192,
        "system": [{"type": "text", "text": "You are a careful coding assistant."}],
        "messages": messages,
        "stream": true,
    }))
    .expect("serializable");
    // Append `"model"` last, as some SDKs order keys.
    body.pop();
    body.extend_from_slice(br#","model":"claude-sonnet-4-5"}"#);
    body
}

fn bench_classify(c: &mut Criterion) {
    let body = body();
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(
        format!("anthropic_{}kb_model_last", body.len() / 1024),
        |b| b.iter(|| black_box(model_of_body(black_box(&body)))),
    );
    group.finish();
}

criterion_group!(benches, bench_classify);
criterion_main!(benches);
