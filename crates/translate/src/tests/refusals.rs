//! Refusals: what a target cannot express is refused with a 400 in the client's shape that
//! names the client's field.

use serde_json::{Value, json};

use super::{GEMINI, refused};
use crate::{ClientSurface, UpstreamFormat};

const ANTHROPIC: UpstreamFormat = UpstreamFormat::Anthropic;
const OPENAI: UpstreamFormat = UpstreamFormat::OpenAi;
const GOOGLE: UpstreamFormat = UpstreamFormat::Gemini;

fn field(client: ClientSurface, target: UpstreamFormat, body: Value) -> String {
    let error = refused(client, target, &body);
    assert_eq!(error.status(), 400);
    error.field().unwrap_or("<none>").to_owned()
}

#[test]
fn server_tools_are_refused_by_name() {
    let messages = json!({
        "model": "claude", "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [
            {"name": "f", "input_schema": {"type": "object"}},
            {"name": "g", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
        ]
    });
    let error = refused(ClientSurface::Messages, GOOGLE, &messages);
    assert_eq!(error.field(), Some("tools[2].type"));
    assert_eq!(
        error.to_string(),
        "tools[2].type: the gemini format has no counterpart of Anthropic's own tool \"web_search_20250305\""
    );

    let chat = json!({"model": "gpt", "messages": [], "tools": [{"type": "custom", "custom": {"name": "apply_patch"}}]});
    assert_eq!(field(ClientSurface::Chat, ANTHROPIC, chat), "tools[0].type");
    let chat = json!({"model": "gpt", "messages": [], "web_search_options": {}});
    assert_eq!(
        field(ClientSurface::Chat, ANTHROPIC, chat),
        "web_search_options"
    );
    let responses = json!({"model": "gpt", "input": "Hi", "tools": [{"type": "web_search"}]});
    assert_eq!(
        field(ClientSurface::Responses, GOOGLE, responses),
        "tools[0].type"
    );
    let gemini = json!({"contents": [], "tools": [{"googleSearch": {}}]});
    assert_eq!(field(GEMINI, OPENAI, gemini), "tools[0].googleSearch");
}

#[test]
fn image_urls_are_refused_where_only_inline_data_is_taken() {
    let messages = json!({
        "model": "claude", "max_tokens": 10,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
        ]}]
    });
    assert_eq!(
        field(ClientSurface::Messages, GOOGLE, messages.clone()),
        "messages[0].content[1].source.url"
    );
    // OpenAI takes URLs.
    let (_, body) = super::upstream(ClientSurface::Messages, OPENAI, &messages, None);
    assert_eq!(
        body["messages"][0]["content"][1]["image_url"]["url"],
        "https://example.com/cat.png"
    );
    let chat = json!({"model": "gpt", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
    assert_eq!(
        field(ClientSurface::Chat, GOOGLE, chat),
        "messages[0].content[0].image_url.url"
    );
    let responses = json!({"model": "gpt", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}]}]});
    assert_eq!(
        field(ClientSurface::Responses, GOOGLE, responses),
        "input[0].content[0].image_url"
    );
}

#[test]
fn content_the_target_lacks_is_refused() {
    let document = json!({
        "model": "claude", "max_tokens": 10,
        "messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}]}]
    });
    assert_eq!(
        field(ClientSurface::Messages, OPENAI, document),
        "messages[0].content[0].type"
    );
    let image_result = json!({
        "model": "claude", "max_tokens": 10,
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]}]}
        ]
    });
    assert_eq!(
        field(ClientSurface::Messages, OPENAI, image_result),
        "messages[1].content[0].content[0]"
    );
    let audio = json!({"model": "gpt", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]});
    assert_eq!(
        field(ClientSurface::Chat, ANTHROPIC, audio),
        "messages[0].content[0].type"
    );
    let pdf = json!({"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": "JVBER"}}]}]});
    assert_eq!(
        field(GEMINI, ANTHROPIC, pdf),
        "contents[0].parts[0].inlineData.mimeType"
    );
    let code = json!({"contents": [{"role": "model", "parts": [{"executableCode": {"language": "PYTHON", "code": "1+1"}}]}]});
    assert_eq!(field(GEMINI, OPENAI, code), "contents[0].parts[0]");
}

#[test]
fn options_that_change_the_answer_are_refused() {
    let n = json!({"model": "gpt", "messages": [], "n": 3});
    assert_eq!(field(ClientSurface::Chat, ANTHROPIC, n), "n");
    let bias = json!({"model": "gpt", "messages": [], "logit_bias": {"50256": -100}});
    assert_eq!(field(ClientSurface::Chat, GOOGLE, bias), "logit_bias");
    let json_mode =
        json!({"model": "gpt", "messages": [], "response_format": {"type": "json_object"}});
    assert_eq!(
        field(ClientSurface::Chat, ANTHROPIC, json_mode.clone()),
        "response_format.type"
    );
    // Gemini has a JSON mode without schema.
    let (_, body) = super::upstream(
        ClientSurface::Chat,
        GOOGLE,
        &json_mode,
        Some("gemini-2.5-pro"),
    );
    assert_eq!(
        body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    let legacy = json!({"model": "gpt", "messages": [], "functions": [{"name": "f"}]});
    assert_eq!(field(ClientSurface::Chat, ANTHROPIC, legacy), "functions");
    let previous = json!({"model": "gpt", "input": "Hi", "previous_response_id": "resp_1"});
    assert_eq!(
        field(ClientSurface::Responses, ANTHROPIC, previous),
        "previous_response_id"
    );
    let item = json!({"model": "gpt", "input": [{"type": "item_reference", "id": "msg_1"}]});
    assert_eq!(
        field(ClientSurface::Responses, GOOGLE, item),
        "input[0].type"
    );
    let candidates = json!({"contents": [], "generationConfig": {"candidateCount": 2}});
    assert_eq!(
        field(GEMINI, ANTHROPIC, candidates),
        "generationConfig.candidateCount"
    );
    let cached = json!({"contents": [], "cachedContent": "cachedContents/abc"});
    assert_eq!(field(GEMINI, OPENAI, cached), "cachedContent");
    let mcp = json!({"model": "claude", "max_tokens": 1, "messages": [], "mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]});
    assert_eq!(field(ClientSurface::Messages, OPENAI, mcp), "mcp_servers");
}

#[test]
fn a_tool_result_without_its_call_cannot_go_to_gemini() {
    let chat = json!({"model": "gpt", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "tool", "tool_call_id": "call_missing", "content": "x"}
    ]});
    let error = refused(ClientSurface::Chat, GOOGLE, &chat);
    assert_eq!(error.field(), Some("messages"));
    assert!(error.to_string().contains("call_missing"));
}

#[test]
fn invalid_bodies_are_400s_in_the_clients_shape() {
    let error = refused(ClientSurface::Chat, ANTHROPIC, &json!({"messages": []}));
    assert!(matches!(error, crate::TranslateError::Body(_)));
    let body: Value = serde_json::from_slice(&error.body(ClientSurface::Chat)).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("model"));

    let bad_args = json!({"model": "gpt", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1,2]"}}]}]});
    let error = refused(ClientSurface::Chat, ANTHROPIC, &bad_args);
    assert_eq!(
        error.field(),
        Some("messages[0].tool_calls[0].function.arguments")
    );
    let body: Value = serde_json::from_slice(&error.body(ClientSurface::Chat)).unwrap();
    assert_eq!(
        body["error"]["param"],
        "messages[0].tool_calls[0].function.arguments"
    );

    let error = refused(
        ClientSurface::Messages,
        OPENAI,
        &json!({"model": "c", "messages": [{"role": "robot", "content": "x"}]}),
    );
    let body: Value = serde_json::from_slice(&error.body(ClientSurface::Messages)).unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "keyway: messages[0].role: unknown role \"robot\""}})
    );
    let error = refused(
        GEMINI,
        ANTHROPIC,
        &json!({"contents": [{"role": "robot", "parts": []}]}),
    );
    let body: Value = serde_json::from_slice(&error.body(GEMINI)).unwrap();
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
}
