//! Whole (non-streamed) answers and error answers, from each upstream's documented shape into
//! each client's.

use serde_json::{Value, json};

use super::fixtures::*;
use super::{GEMINI, context};
use crate::{ClientSurface, GeminiMethod, UpstreamFormat};

fn answer(
    client: ClientSurface,
    upstream: UpstreamFormat,
    status: u16,
    body: &str,
) -> (u16, Value) {
    let ctx = context(client, upstream);
    let translated = crate::response(status, body.as_bytes(), &ctx);
    let json = serde_json::from_slice(&translated.body).expect("the answer is JSON");
    (translated.status, json)
}

#[test]
fn anthropic_message_to_chat() {
    let (status, body) = answer(
        ClientSurface::Chat,
        UpstreamFormat::Anthropic,
        200,
        ANTHROPIC_MESSAGE,
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "id": "chatcmpl-TOKEN",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "client-model",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "I'll check.",
                    "refusal": null,
                    "reasoning_content": "The user wants the weather.",
                    "tool_calls": [{
                        "id": "toolu_01A09q90qw90lq917835lq9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"location\": \"San Francisco, CA\", \"unit\": \"celsius\"}"}
                    }]
                },
                "logprobs": null,
                "finish_reason": "tool_calls"
            }],
            "usage": {
                "prompt_tokens": 3195,
                "completion_tokens": 503,
                "total_tokens": 3698,
                "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 100},
                "completion_tokens_details": {"reasoning_tokens": 40}
            }
        })
    );
}

#[test]
fn anthropic_message_to_responses() {
    let (_, body) = answer(
        ClientSurface::Responses,
        UpstreamFormat::Anthropic,
        200,
        ANTHROPIC_MESSAGE,
    );
    assert_eq!(body["id"], "resp_TOKEN");
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(
        body["output"],
        json!([
            {"type": "reasoning", "id": "rs_TOKEN_0", "summary": [{"type": "summary_text", "text": "The user wants the weather."}], "encrypted_content": "keyway-anthropic:EqQBCgIYAhIM", "status": "completed"},
            {"type": "message", "id": "msg_TOKEN_1", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": "I'll check.", "annotations": [], "logprobs": []}]},
            {"type": "function_call", "id": "fc_TOKEN_2", "call_id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "arguments": "{\"location\": \"San Francisco, CA\", \"unit\": \"celsius\"}", "status": "completed"}
        ])
    );
    assert_eq!(
        body["usage"],
        json!({
            "input_tokens": 3195,
            "input_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 100},
            "output_tokens": 503,
            "output_tokens_details": {"reasoning_tokens": 40},
            "total_tokens": 3698
        })
    );
}

#[test]
fn anthropic_message_to_gemini() {
    let (_, body) = answer(GEMINI, UpstreamFormat::Anthropic, 200, ANTHROPIC_MESSAGE);
    assert_eq!(
        body,
        json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "The user wants the weather.", "thought": true, "thoughtSignature": "EqQBCgIYAhIM"},
                    {"text": "I'll check."},
                    {"functionCall": {"id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "args": {"location": "San Francisco, CA", "unit": "celsius"}}}
                ]},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {
                "promptTokenCount": 3195,
                "cachedContentTokenCount": 1000,
                "candidatesTokenCount": 463,
                "thoughtsTokenCount": 40,
                "totalTokenCount": 3698
            },
            "modelVersion": "client-model",
            "responseId": "TOKEN"
        })
    );
}

#[test]
fn openai_completion_to_messages() {
    let (_, body) = answer(
        ClientSurface::Messages,
        UpstreamFormat::OpenAi,
        200,
        OPENAI_COMPLETION,
    );
    assert_eq!(
        body,
        json!({
            "id": "msg_TOKEN",
            "type": "message",
            "role": "assistant",
            "model": "client-model",
            "content": [
                {"type": "tool_use", "id": "call_abc123", "name": "get_current_weather", "input": {"location": "Boston, MA"}},
                {"type": "tool_use", "id": "call_def456", "name": "get_current_weather", "input": {"location": "Paris"}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 18, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 64, "output_tokens": 17}
        })
    );
}

#[test]
fn openai_completion_to_gemini() {
    let (_, body) = answer(GEMINI, UpstreamFormat::OpenAi, 200, OPENAI_COMPLETION);
    let parts = &body["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["functionCall"]["name"], "get_current_weather");
    assert_eq!(
        parts[0]["functionCall"]["args"],
        json!({"location": "Boston, MA"})
    );
    assert_eq!(parts[1]["functionCall"]["id"], "call_def456");
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 82);
    assert_eq!(body["usageMetadata"]["cachedContentTokenCount"], 64);
    assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 17);
}

#[test]
fn gemini_response_to_messages() {
    let (_, body) = answer(
        ClientSurface::Messages,
        UpstreamFormat::Gemini,
        200,
        GEMINI_RESPONSE,
    );
    assert_eq!(
        body["content"],
        json!([
            {"type": "thinking", "thinking": "Let me think.", "signature": ""},
            {"type": "text", "text": "Sure, checking Paris."},
            {"type": "thinking", "thinking": "", "signature": "keyway-gemini:Q2lRQjBlMks"},
            {"type": "tool_use", "id": "call_TOKEN_0", "name": "get_weather", "input": {"location": "Paris"}}
        ])
    );
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 40, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 60, "output_tokens": 50, "output_tokens_details": {"thinking_tokens": 30}})
    );
}

#[test]
fn gemini_response_to_chat_and_responses() {
    let (_, chat) = answer(
        ClientSurface::Chat,
        UpstreamFormat::Gemini,
        200,
        GEMINI_RESPONSE,
    );
    let message = &chat["choices"][0]["message"];
    assert_eq!(message["content"], "Sure, checking Paris.");
    assert_eq!(message["reasoning_content"], "Let me think.");
    assert_eq!(message["tool_calls"][0]["id"], "call_TOKEN_0");
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        "{\"location\": \"Paris\"}"
    );
    assert_eq!(chat["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chat["usage"]["prompt_tokens"], 100);
    assert_eq!(chat["usage"]["completion_tokens"], 50);
    assert_eq!(chat["usage"]["prompt_tokens_details"]["cached_tokens"], 60);
    assert_eq!(
        chat["usage"]["completion_tokens_details"]["reasoning_tokens"],
        30
    );

    let (_, responses) = answer(
        ClientSurface::Responses,
        UpstreamFormat::Gemini,
        200,
        GEMINI_RESPONSE,
    );
    let kinds: Vec<&str> = responses["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["reasoning", "message", "reasoning", "function_call"]
    );
    // The function call's signature rides on the reasoning item before it.
    assert_eq!(
        responses["output"][2]["encrypted_content"],
        "keyway-gemini:Q2lRQjBlMks"
    );
    assert_eq!(responses["output"][2]["summary"], json!([]));
}

#[test]
fn max_tokens_and_refusals_map_to_each_clients_stop() {
    let truncated = r#"{"candidates":[{"content":{"parts":[{"text":"Once upon"}],"role":"model"},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5}}"#;
    let (_, messages) = answer(
        ClientSurface::Messages,
        UpstreamFormat::Gemini,
        200,
        truncated,
    );
    assert_eq!(messages["stop_reason"], "max_tokens");
    let (_, chat) = answer(ClientSurface::Chat, UpstreamFormat::Gemini, 200, truncated);
    assert_eq!(chat["choices"][0]["finish_reason"], "length");
    let (_, responses) = answer(
        ClientSurface::Responses,
        UpstreamFormat::Gemini,
        200,
        truncated,
    );
    assert_eq!(responses["status"], "incomplete");
    assert_eq!(
        responses["incomplete_details"]["reason"],
        "max_output_tokens"
    );

    let blocked = r#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}"#;
    let (_, messages) = answer(
        ClientSurface::Messages,
        UpstreamFormat::Gemini,
        200,
        blocked,
    );
    assert_eq!(messages["stop_reason"], "refusal");
    assert_eq!(messages["content"], json!([]));

    let stopped = r#"{"id":"x","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"1, 2"}],"stop_reason":"stop_sequence","stop_sequence":", 3","usage":{"input_tokens":1,"output_tokens":2}}"#;
    let (_, chat) = answer(ClientSurface::Chat, UpstreamFormat::Anthropic, 200, stopped);
    assert_eq!(chat["choices"][0]["finish_reason"], "stop");
    let (_, gemini) = answer(GEMINI, UpstreamFormat::Anthropic, 200, stopped);
    assert_eq!(gemini["candidates"][0]["finishReason"], "STOP");

    let refused = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#;
    let (_, messages) = answer(
        ClientSurface::Messages,
        UpstreamFormat::OpenAi,
        200,
        refused,
    );
    assert_eq!(messages["stop_reason"], "refusal");
    assert_eq!(messages["content"][0]["text"], "I can't help with that.");
}

#[test]
fn count_answers_map_both_ways() {
    let (_, body) = answer(
        ClientSurface::CountTokens,
        UpstreamFormat::Gemini,
        200,
        r#"{"totalTokens": 31, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 31}]}"#,
    );
    assert_eq!(body, json!({"input_tokens": 31}));
    let count = ClientSurface::Gemini(GeminiMethod::CountTokens);
    let (_, body) = answer(
        count,
        UpstreamFormat::Anthropic,
        200,
        r#"{"input_tokens": 14}"#,
    );
    assert_eq!(body, json!({"totalTokens": 14}));
}

#[test]
fn upstream_errors_keep_their_status_in_the_clients_shape() {
    let (status, body) = answer(
        ClientSurface::Chat,
        UpstreamFormat::Gemini,
        429,
        GEMINI_ERROR,
    );
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"error": {
            "message": "gemini upstream: Resource has been exhausted (e.g. check quota).",
            "type": "rate_limit_error",
            "param": null,
            "code": "rate_limit_exceeded"
        }})
    );
    let (status, body) = answer(GEMINI, UpstreamFormat::Anthropic, 404, ANTHROPIC_ERROR);
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {"code": 404, "message": "anthropic upstream: The requested resource could not be found.", "status": "NOT_FOUND"}})
    );
    let (status, body) = answer(
        ClientSurface::Messages,
        UpstreamFormat::OpenAi,
        401,
        OPENAI_ERROR,
    );
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("AbCdEf"),
        "no part of a key reaches the client: {message}"
    );
    assert!(message.starts_with("openai upstream: Incorrect API key provided: [redacted]"));

    let raw = crate::error(
        ClientSurface::Responses,
        UpstreamFormat::Anthropic,
        529,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    let body: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(body["error"]["type"], "server_error");
}

#[test]
fn an_unreadable_success_is_a_502_in_the_clients_shape() {
    let (status, body) = answer(
        ClientSurface::Messages,
        UpstreamFormat::OpenAi,
        200,
        "<html>oops</html>",
    );
    assert_eq!(status, 502);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");
}
