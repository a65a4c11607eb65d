//! Requests: every translated (client, upstream) pair, with system prompts, several turns,
//! an image, parallel tool calls and their results, reasoning, stop sequences and limits.

use serde_json::{Value, json};

use super::{GEMINI, GEMINI_STREAM, upstream};
use crate::{ClientSurface, Plan, RequestOptions, UpstreamFormat, needs_translation};

const ANTHROPIC: UpstreamFormat = UpstreamFormat::Anthropic;
const OPENAI: UpstreamFormat = UpstreamFormat::OpenAi;
const GOOGLE: UpstreamFormat = UpstreamFormat::Gemini;

/// A Claude Code-like request: cached system blocks, an image, two parallel tool calls and
/// their results, a stop sequence, sampling.
fn messages_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "metadata": {"user_id": "user-1"},
        "tools": [{
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "cache_control": {"type": "ephemeral"}
        }],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": [{"type": "text", "text": "22C"}], "is_error": true}
            ]}
        ]
    })
}

#[test]
fn pass_through_pairs_are_not_translated() {
    use crate::GeminiMethod;
    assert!(!needs_translation(ClientSurface::Messages, ANTHROPIC));
    assert!(!needs_translation(ClientSurface::CountTokens, ANTHROPIC));
    assert!(!needs_translation(ClientSurface::Chat, OPENAI));
    assert!(!needs_translation(ClientSurface::Responses, OPENAI));
    assert!(!needs_translation(
        ClientSurface::Gemini(GeminiMethod::Stream),
        GOOGLE
    ));
    for (client, target) in [
        (ClientSurface::Messages, OPENAI),
        (ClientSurface::Messages, GOOGLE),
        (ClientSurface::Chat, ANTHROPIC),
        (ClientSurface::Chat, GOOGLE),
        (ClientSurface::Responses, ANTHROPIC),
        (ClientSurface::Responses, GOOGLE),
        (GEMINI, ANTHROPIC),
        (GEMINI, OPENAI),
    ] {
        assert!(needs_translation(client, target), "{client:?} → {target:?}");
    }
}

#[test]
fn messages_to_openai() {
    let (request, body) = upstream(ClientSurface::Messages, OPENAI, &messages_request(), None);
    assert_eq!(request.path, "/v1/chat/completions");
    assert!(!request.stream);
    assert_eq!(request.model, "claude-sonnet-4-5");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_02", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "content": "18C", "tool_call_id": "toolu_01"},
            {"role": "tool", "content": "Error: 22C", "tool_call_id": "toolu_02"}
        ])
    );
    assert_eq!(body["max_completion_tokens"], 2048);
    assert_eq!(body["stop"], json!(["END"]));
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["user"], "user-1");
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }}])
    );
    assert!(body.get("stream_options").is_none());
}

#[test]
fn messages_to_openai_streams_with_usage_and_legacy_max_tokens() {
    let mut req = messages_request();
    req["stream"] = json!(true);
    req["model"] = json!("claude-x");
    let bytes = serde_json::to_vec(&req).unwrap();
    let options = RequestOptions {
        model_override: Some("deepseek-chat"),
        openai_legacy_max_tokens: true,
        ..RequestOptions::default()
    };
    let Ok(Plan::Upstream(request)) =
        crate::request(ClientSurface::Messages, OPENAI, &bytes, &options)
    else {
        panic!("translated");
    };
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert!(request.stream);
    assert_eq!(body["model"], "deepseek-chat");
    assert_eq!(
        request.context.model, "claude-x",
        "the client sees its own model"
    );
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_tokens"], 2048);
    assert!(body.get("max_completion_tokens").is_none());
}

#[test]
fn messages_to_gemini() {
    let (request, body) = upstream(
        ClientSurface::Messages,
        GOOGLE,
        &messages_request(),
        Some("gemini-2.5-pro"),
    );
    assert_eq!(
        request.path,
        "/v1beta/models/gemini-2.5-pro:generateContent"
    );
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}]})
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [
                {"text": "Weather in Paris and Rome?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "skip_thought_signature_validator"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}},
                {"functionResponse": {"name": "get_weather", "response": {"error": "22C"}}}
            ]}
        ])
    );
    assert_eq!(
        body["generationConfig"],
        json!({"stopSequences": ["END"], "maxOutputTokens": 2048, "temperature": 0.5})
    );
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [{
            "name": "get_weather",
            "description": "Weather for a city",
            "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }]}])
    );
}

#[test]
fn messages_stream_to_gemini_uses_the_sse_method() {
    let mut req = messages_request();
    req["stream"] = json!(true);
    let (request, _) = upstream(
        ClientSurface::Messages,
        GOOGLE,
        &req,
        Some("models/gemini-2.5-flash"),
    );
    assert_eq!(
        request.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert!(request.stream);
}

#[test]
fn messages_thinking_maps_to_effort_and_budget() {
    let req = json!({
        "model": "claude-opus-4-6",
        "max_tokens": 32000,
        "thinking": {"type": "enabled", "budget_tokens": 4096},
        "messages": [{"role": "user", "content": "Prove it."}]
    });
    let (_, openai) = upstream(ClientSurface::Messages, OPENAI, &req, None);
    assert_eq!(openai["reasoning_effort"], "low");
    assert_eq!(
        openai["messages"],
        json!([{"role": "user", "content": "Prove it."}])
    );
    let (_, gemini) = upstream(
        ClientSurface::Messages,
        GOOGLE,
        &req,
        Some("gemini-2.5-pro"),
    );
    assert_eq!(
        gemini["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 4096, "includeThoughts": true})
    );
    let off = json!({
        "model": "claude-opus-4-6", "max_tokens": 100,
        "thinking": {"type": "disabled"},
        "messages": [{"role": "user", "content": "Hi"}]
    });
    let (_, gemini) = upstream(
        ClientSurface::Messages,
        GOOGLE,
        &off,
        Some("gemini-2.5-flash"),
    );
    assert_eq!(
        gemini["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 0})
    );
}

#[test]
fn messages_thinking_history_goes_to_gemini_as_signed_thoughts() {
    let req = json!({
        "model": "claude-opus-4-6",
        "max_tokens": 1000,
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "", "signature": "keyway-gemini:gemini-sig"},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]}
        ]
    });
    let (_, body) = upstream(
        ClientSurface::Messages,
        GOOGLE,
        &req,
        Some("gemini-3-pro-preview"),
    );
    assert_eq!(
        body["contents"][1]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {}}, "thoughtSignature": "gemini-sig"}])
    );

    // Claude's own signature (the conversation was on a Claude model before) means nothing
    // to Gemini: the thinking is left out and the call gets Gemini's placeholder.
    let mut req = req;
    req["messages"][1]["content"][0] =
        json!({"type": "thinking", "thinking": "Let me see.", "signature": "EqQBClaude"});
    let (_, body) = upstream(
        ClientSurface::Messages,
        GOOGLE,
        &req,
        Some("gemini-3-pro-preview"),
    );
    assert_eq!(
        body["contents"][1]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"}])
    );
}

/// A Cline-like Chat request: system, image, parallel calls, results, then a follow-up.
fn chat_request() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "22C"}]},
            {"role": "user", "content": "Thanks. And tomorrow?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "max_tokens": 500,
        "stop": "END",
        "temperature": 0.3,
        "seed": 7,
        "stream": true,
        "stream_options": {"include_usage": true}
    })
}

#[test]
fn chat_to_anthropic() {
    let (request, body) = upstream(ClientSurface::Chat, ANTHROPIC, &chat_request(), None);
    assert_eq!(request.path, "/v1/messages");
    assert!(request.stream);
    assert!(request.context.include_usage);
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_b", "name": "get_weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": "22C"},
                {"type": "text", "text": "Thanks. And tomorrow?"}
            ]}
        ])
    );
    assert_eq!(body["max_tokens"], 500);
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        body["tools"],
        json!([{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
    );
    assert!(body.get("seed").is_none(), "Anthropic has no seed");
}

#[test]
fn chat_to_gemini() {
    let (request, body) = upstream(
        ClientSurface::Chat,
        GOOGLE,
        &chat_request(),
        Some("gemini-2.5-flash"),
    );
    assert_eq!(
        request.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Be brief.");
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [
                {"text": "Weather in Paris and Rome?"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
            ]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "skip_thought_signature_validator"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}},
                {"functionResponse": {"name": "get_weather", "response": {"output": "22C"}}},
                {"text": "Thanks. And tomorrow?"}
            ]}
        ])
    );
    assert_eq!(
        body["generationConfig"],
        json!({"stopSequences": ["END"], "maxOutputTokens": 500, "temperature": 0.3, "seed": 7})
    );
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
}

#[test]
fn chat_reasoning_effort_maps_to_budgets() {
    let req = json!({
        "model": "o3",
        "reasoning_effort": "high",
        "max_completion_tokens": 40000,
        "messages": [{"role": "developer", "content": "Think hard."}, {"role": "user", "content": "Why?"}]
    });
    let (_, anthropic) = upstream(
        ClientSurface::Chat,
        ANTHROPIC,
        &req,
        Some("claude-opus-4-6"),
    );
    assert_eq!(
        anthropic["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert_eq!(anthropic["system"], "Think hard.");
    assert_eq!(anthropic["max_tokens"], 40000);
    let (_, gemini) = upstream(ClientSurface::Chat, GOOGLE, &req, Some("gemini-2.5-pro"));
    assert_eq!(
        gemini["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 16384, "includeThoughts": true})
    );
}

#[test]
fn chat_thinking_is_dropped_where_anthropic_would_refuse_it() {
    // The tool loop's last assistant turn has no signed thinking: Anthropic would answer
    // 400, so thinking is left out (and sampling stays as the client set it).
    let mut req = chat_request();
    req["reasoning_effort"] = json!("medium");
    req["max_tokens"] = json!(20000);
    let (_, body) = upstream(ClientSurface::Chat, ANTHROPIC, &req, None);
    assert!(body.get("thinking").is_none());
    assert_eq!(body["temperature"], 0.3);

    // Without a tool loop thinking goes through, and temperature (which Anthropic fixes
    // while thinking) is left out.
    let req = json!({
        "model": "gpt", "reasoning_effort": "medium", "temperature": 0.2, "max_tokens": 20000,
        "messages": [{"role": "user", "content": "Hi"}]
    });
    let (_, body) = upstream(ClientSurface::Chat, ANTHROPIC, &req, None);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 8192})
    );
    assert!(body.get("temperature").is_none());
}

#[test]
fn chat_without_max_tokens_gets_anthropics_required_default() {
    let req = json!({"model": "gpt", "messages": [{"role": "user", "content": "Hi"}], "temperature": 1.7});
    let (_, body) = upstream(ClientSurface::Chat, ANTHROPIC, &req, None);
    assert_eq!(body["max_tokens"], 8192);
    assert_eq!(body["temperature"], 1.0, "capped at Anthropic's maximum");
}

/// A Codex-like Responses request: instructions, a developer message, a signed reasoning
/// item from an earlier turn, a function call and its output.
fn responses_request(encrypted_content: &str) -> Value {
    json!({
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox: read-only."}]},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "List files"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBOR"}
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "I should run ls."}], "encrypted_content": encrypted_content},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt\nb.txt"}
        ],
        "tools": [{"type": "function", "name": "shell", "description": "Run a command", "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]}, "strict": false}],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-1"
    })
}

#[test]
fn responses_to_anthropic() {
    let (request, body) = upstream(
        ClientSurface::Responses,
        ANTHROPIC,
        &responses_request("keyway-anthropic:sigABC"),
        Some("claude-sonnet-4-5"),
    );
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "You are Codex."}, {"type": "text", "text": "Sandbox: read-only."}])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "List files"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "sigABC"},
                {"type": "tool_use", "id": "call_1", "name": "shell", "input": {"command": ["ls"]}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt\nb.txt"}]}
        ])
    );
    // The last assistant turn starts with signed thinking, so thinking stays on; with no
    // max_output_tokens, max_tokens makes room for the budget.
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 8192})
    );
    assert_eq!(body["max_tokens"], 16384);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert!(body.get("store").is_none() && body.get("include").is_none());
    assert!(body.get("prompt_cache_key").is_none());

    // OpenAI's own encrypted reasoning (the conversation was on an OpenAI model before)
    // means nothing to Anthropic: the summary is not sent, and without signed thinking in
    // the tool loop, thinking is off.
    let (_, body) = upstream(
        ClientSurface::Responses,
        ANTHROPIC,
        &responses_request("gAAAAABopenai"),
        Some("claude"),
    );
    assert_eq!(
        body["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "call_1", "name": "shell", "input": {"command": ["ls"]}}])
    );
    assert!(body.get("thinking").is_none());
}

#[test]
fn responses_to_gemini() {
    let (request, body) = upstream(
        ClientSurface::Responses,
        GOOGLE,
        &responses_request("keyway-gemini:sigABC"),
        Some("gemini-2.5-pro"),
    );
    assert_eq!(
        request.path,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        body["systemInstruction"]["parts"][0]["text"],
        "You are Codex.\n\nSandbox: read-only."
    );
    assert_eq!(
        body["contents"][1],
        json!({"role": "model", "parts": [
            {"text": "I should run ls.", "thought": true, "thoughtSignature": "sigABC"},
            {"functionCall": {"name": "shell", "args": {"command": ["ls"]}}, "thoughtSignature": "skip_thought_signature_validator"}
        ]})
    );
    assert_eq!(
        body["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "shell", "response": {"output": "a.txt\nb.txt"}}}]})
    );
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 8192, "includeThoughts": true})
    );
}

#[test]
fn responses_string_input_and_json_schema_output() {
    let req = json!({
        "model": "gpt-5",
        "input": "Give me a color.",
        "max_output_tokens": 300,
        "text": {"format": {"type": "json_schema", "name": "color", "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false}, "strict": true}}
    });
    let (_, anthropic) = upstream(
        ClientSurface::Responses,
        ANTHROPIC,
        &req,
        Some("claude-sonnet-4-5"),
    );
    assert_eq!(
        anthropic["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Give me a color."}]}])
    );
    assert_eq!(anthropic["max_tokens"], 300);
    assert_eq!(
        anthropic["output_config"],
        json!({"format": {"type": "json_schema", "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false}}})
    );
    let (_, gemini) = upstream(
        ClientSurface::Responses,
        GOOGLE,
        &req,
        Some("gemini-2.5-pro"),
    );
    assert_eq!(
        gemini["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert_eq!(
        gemini["generationConfig"]["responseJsonSchema"]["required"],
        json!(["name"])
    );
}

/// A Gemini CLI-like request: snake_case and camelCase fields, Gemini's own schema dialect,
/// a signed function call, function responses without ids.
fn gemini_request() -> Value {
    json!({
        "system_instruction": {"parts": [{"text": "Answer in French."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris?"}, {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "gsig1"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp": 20}}}
            ]}
        ],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {"temperature": 0.2, "topK": 40, "maxOutputTokens": 1000, "stopSequences": ["FIN"], "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    })
}

#[test]
fn gemini_to_anthropic() {
    let (request, body) = upstream(
        GEMINI,
        ANTHROPIC,
        &gemini_request(),
        Some("claude-sonnet-4-5"),
    );
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(
        request.context.model, "gemini-2.5-pro",
        "from the client's path"
    );
    assert_eq!(body["system"], "Answer in French.");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1_0", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_1_1", "name": "get_weather", "input": {"city": "Lyon"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1_0", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_1_1", "content": "{\"temp\":20}"}
            ]}
        ])
    );
    assert_eq!(
        body["tools"][0]["input_schema"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
    assert_eq!(body["max_tokens"], 1000);
    assert_eq!(body["stop_sequences"], json!(["FIN"]));
    assert_eq!(body["top_k"], 40);
    // A tool loop with no Anthropic-signed thinking: thinking is left out.
    assert!(body.get("thinking").is_none());
    assert!(body.get("safetySettings").is_none());
}

#[test]
fn gemini_to_openai() {
    let (request, body) = upstream(GEMINI_STREAM, OPENAI, &gemini_request(), Some("gpt-4.1"));
    assert_eq!(request.path, "/v1/chat/completions");
    assert!(request.stream);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_1_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"}}
            ]},
            {"role": "tool", "content": "18C", "tool_call_id": "call_1_0"},
            {"role": "tool", "content": "{\"temp\":20}", "tool_call_id": "call_1_1"}
        ])
    );
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(body["max_completion_tokens"], 1000);
    assert!(body.get("top_k").is_none());
    assert_eq!(
        body["tools"][0]["function"]["parameters"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
}

#[test]
fn gemini_thinking_maps_to_budget_and_effort() {
    let req = json!({
        "contents": [{"role": "user", "parts": [{"text": "Prove it."}]}],
        "generationConfig": {"maxOutputTokens": 20000, "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}}
    });
    let (_, anthropic) = upstream(GEMINI, ANTHROPIC, &req, Some("claude-opus-4-6"));
    assert_eq!(
        anthropic["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(anthropic["max_tokens"], 20000);
    let (_, openai) = upstream(GEMINI, OPENAI, &req, Some("o3"));
    assert_eq!(openai["reasoning_effort"], "low");

    // -1 leaves the amount to the model.
    let dynamic =
        json!({"contents": [], "generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}});
    let (_, anthropic) = upstream(GEMINI, ANTHROPIC, &dynamic, Some("claude-opus-4-6"));
    assert_eq!(
        anthropic["thinking"],
        json!({"type": "enabled", "budget_tokens": 8192})
    );
    let (_, openai) = upstream(GEMINI, OPENAI, &dynamic, Some("o3"));
    assert!(openai.get("reasoning_effort").is_none());
}

#[test]
fn gemini_function_responses_match_calls_by_id_when_given() {
    let req = json!({
        "contents": [
            {"role": "model", "parts": [{"functionCall": {"id": "abc", "name": "f", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"id": "abc", "name": "f", "response": {"error": "boom"}}}]}
        ]
    });
    let (_, body) = upstream(GEMINI, ANTHROPIC, &req, Some("claude"));
    assert_eq!(body["messages"][0]["content"][0]["id"], "abc");
    assert_eq!(
        body["messages"][1]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "abc", "content": "boom", "is_error": true})
    );
}

/// A streamed answer as the Gemini SDK's chat keeps it: one model content per chunk, the
/// thought in pieces with its signature on an empty part after them, each call on its own.
fn gemini_streamed_history() -> Value {
    json!({
        "contents": [
            {"role": "user", "parts": [{"text": "Weather and time?"}]},
            {"role": "model", "parts": [{"text": "Thinking ab", "thought": true}]},
            {"role": "model", "parts": [{"text": "out it", "thought": true}]},
            {"role": "model", "parts": [{"text": "", "thought": true, "thoughtSignature": "c2lnbmVk"}]},
            {"role": "model", "parts": [{"text": "Calling."}]},
            {"role": "model", "parts": [{"functionCall": {"id": "toolu_1", "name": "get_weather", "args": {"city": "Paris"}}}]},
            {"role": "model", "parts": [{"functionCall": {"id": "toolu_2", "name": "get_time", "args": {}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "toolu_1", "name": "get_weather", "response": {"result": "sunny"}}},
                {"functionResponse": {"id": "toolu_2", "name": "get_time", "response": {"result": "noon"}}}
            ]}
        ],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}}
    })
}

#[test]
fn a_gemini_answer_kept_chunk_by_chunk_goes_back_as_one_turn() {
    let (_, anthropic) = upstream(
        GEMINI_STREAM,
        ANTHROPIC,
        &gemini_streamed_history(),
        Some("claude"),
    );
    assert_eq!(
        anthropic["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Thinking about it", "signature": "c2lnbmVk"},
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}
        ]})
    );
    assert_eq!(anthropic["messages"].as_array().map(Vec::len), Some(3));
    // The turn starts with its signed thinking, so thinking stays on in the tool loop.
    assert_eq!(
        anthropic["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );

    let (_, openai) = upstream(
        GEMINI_STREAM,
        OPENAI,
        &gemini_streamed_history(),
        Some("gpt-4.1"),
    );
    let roles: Vec<&str> = openai["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool"]);
    let calls: Vec<&str> = openai["messages"][1]["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(calls, ["toolu_1", "toolu_2"]);
}

#[test]
fn gemini_forced_function_becomes_a_named_tool_choice() {
    let mut req = gemini_request();
    req["toolConfig"] =
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}});
    let (_, body) = upstream(GEMINI, ANTHROPIC, &req, Some("claude"));
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    let (_, body) = upstream(GEMINI, OPENAI, &req, Some("gpt"));
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
}

#[test]
fn tool_ids_are_made_valid_for_anthropic_the_same_way_for_calls_and_results() {
    let req = json!({
        "model": "kimi",
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [{"id": "functions.lookup:0", "type": "function", "function": {"name": "lookup", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "functions.lookup:0", "content": "done"}
        ]
    });
    let (_, body) = upstream(ClientSurface::Chat, ANTHROPIC, &req, None);
    assert_eq!(
        body["messages"][1]["content"][0]["id"],
        "functions_lookup_0"
    );
    assert_eq!(body["messages"][1]["content"][0]["input"], json!({}));
    assert_eq!(
        body["messages"][2]["content"][0]["tool_use_id"],
        "functions_lookup_0"
    );
}

#[test]
fn unknown_fields_pass_through_and_never_clash_with_mapped_ones() {
    let req = json!({
        "model": "gpt",
        "messages": [{"role": "user", "content": "Hi"}],
        "top_k": 5,
        "provider": {"order": ["x"]},
        "model_extra": true
    });
    // top_k is not a Chat field: to Anthropic (which has one) it passes as is.
    let (_, body) = upstream(ClientSurface::Chat, ANTHROPIC, &req, None);
    assert_eq!(body["top_k"], 5);
    assert_eq!(body["provider"], json!({"order": ["x"]}));
    assert_eq!(body["model_extra"], true);
    assert_eq!(body["model"], "gpt");

    // A Messages client's unknown field reaches an OpenAI-compatible upstream as is.
    let req = json!({
        "model": "claude", "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}],
        "transforms": ["middle-out"],
        "stream": true,
        "stream_options": {"include_usage": false}
    });
    let (_, body) = upstream(ClientSurface::Messages, OPENAI, &req, None);
    assert_eq!(body["transforms"], json!(["middle-out"]));
    assert_eq!(
        body["stream_options"],
        json!({"include_usage": true}),
        "Keyway writes stream_options itself"
    );
}

#[test]
fn count_tokens_maps_between_anthropic_and_gemini() {
    let req = json!({
        "model": "claude-sonnet-4-5",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}]
    });
    let (request, body) = upstream(
        ClientSurface::CountTokens,
        GOOGLE,
        &req,
        Some("gemini-2.5-pro"),
    );
    assert_eq!(request.path, "/v1beta/models/gemini-2.5-pro:countTokens");
    assert_eq!(
        body["generateContentRequest"]["model"],
        "models/gemini-2.5-pro"
    );
    assert_eq!(
        body["generateContentRequest"]["contents"],
        json!([{"role": "user", "parts": [{"text": "Hello"}]}])
    );
    assert_eq!(
        body["generateContentRequest"]["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert!(body["generateContentRequest"]["tools"].is_array());

    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]});
    let count = crate::ClientSurface::Gemini(crate::GeminiMethod::CountTokens);
    let (request, body) = upstream(count, ANTHROPIC, &gemini, Some("claude-sonnet-4-5"));
    assert_eq!(request.path, "/v1/messages/count_tokens");
    assert_eq!(
        body,
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]})
    );
    // countTokens may wrap a whole request.
    let wrapped = json!({"generateContentRequest": {"model": "models/x", "contents": [{"parts": [{"text": "Hi"}]}], "systemInstruction": {"parts": [{"text": "Sys"}]}}});
    let (_, body) = upstream(count, ANTHROPIC, &wrapped, Some("claude"));
    assert_eq!(body["system"], "Sys");
}

#[test]
fn count_tokens_on_openai_is_a_local_estimate() {
    let req = json!({"model": "claude", "messages": [{"role": "user", "content": "abcdefgh"}]});
    let bytes = serde_json::to_vec(&req).unwrap();
    let Ok(Plan::Local(answer)) = crate::request(
        ClientSurface::CountTokens,
        OPENAI,
        &bytes,
        &RequestOptions::default(),
    ) else {
        panic!("answered locally");
    };
    assert!(answer.approximate);
    assert_eq!(answer.status, 200);
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body, json!({"input_tokens": 6}));

    let gemini = json!({"contents": [{"parts": [{"text": "abcdefgh"}]}]});
    let bytes = serde_json::to_vec(&gemini).unwrap();
    let options = RequestOptions {
        path_model: Some("gemini-2.5-pro"),
        ..RequestOptions::default()
    };
    let count = crate::ClientSurface::Gemini(crate::GeminiMethod::CountTokens);
    let Ok(Plan::Local(answer)) = crate::request(count, OPENAI, &bytes, &options) else {
        panic!("answered locally");
    };
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body, json!({"totalTokens": 6}));
}

#[test]
fn a_gemini_model_name_cannot_change_the_path() {
    let req =
        json!({"model": "x", "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]});
    let bytes = serde_json::to_vec(&req).unwrap();
    let options = RequestOptions {
        model_override: Some("../v1/files?x="),
        ..RequestOptions::default()
    };
    let error = crate::request(ClientSurface::Messages, GOOGLE, &bytes, &options).unwrap_err();
    assert_eq!(error.field(), Some("model"));
}

/// Claude Code sends system messages between turns (its environment notes): they join the
/// system prompt, the only place the other formats have one.
#[test]
fn messages_system_messages_between_turns_join_the_system_prompt() {
    let request = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Say hi"},
            {"role": "system", "content": [{"type": "text", "text": "# Environment", "cache_control": {"type": "ephemeral"}}]}
        ]
    });
    let (_, body) = upstream(ClientSurface::Messages, OPENAI, &request, None);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are terse.\n\n# Environment"},
            {"role": "user", "content": "Say hi"}
        ])
    );
    let (_, body) = upstream(ClientSurface::Messages, GOOGLE, &request, None);
    assert_eq!(
        body["systemInstruction"]["parts"][0]["text"],
        "You are terse.\n\n# Environment"
    );
    let image = json!({"model": "m", "max_tokens": 8, "messages": [
        {"role": "system", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}
    ]});
    let error = crate::request(
        ClientSurface::Messages,
        OPENAI,
        image.to_string().as_bytes(),
        &RequestOptions::default(),
    )
    .expect_err("an image in a system message");
    assert_eq!(error.field(), Some("messages[0].content[0].type"));
}
