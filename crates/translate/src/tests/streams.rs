//! Streams: documented upstream event sequences, cut at every kind of boundary (one byte at
//! a time too), produce exactly the client grammar's events in its order.

use serde_json::json;

use super::fixtures::*;
use super::{GEMINI_STREAM, Sse, context, names, parse_sse, stream_events, translate_stream};
use crate::{ClientSurface, UpstreamFormat};

fn data(events: &[Sse]) -> Vec<&serde_json::Value> {
    events.iter().map(|e| &e.data).collect()
}

#[test]
fn anthropic_text_to_chat() {
    let ctx = context(ClientSurface::Chat, UpstreamFormat::Anthropic);
    let events = stream_events(&ctx, ANTHROPIC_TEXT_STREAM);
    assert!(
        events.iter().all(|e| e.event.is_none()),
        "Chat streams are data-only"
    );
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        json!({
            "id": "chatcmpl-TOKEN", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": "client-model",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        })
    };
    let mut finish = chunk(json!({}), json!("stop"));
    finish["usage"] = json!({
        "prompt_tokens": 35, "completion_tokens": 15, "total_tokens": 50,
        "prompt_tokens_details": {"cached_tokens": 10},
        "completion_tokens_details": {"reasoning_tokens": 0}
    });
    assert_eq!(
        data(&events),
        [
            &chunk(json!({"role": "assistant", "content": ""}), json!(null)),
            &chunk(json!({"content": "Hello"}), json!(null)),
            &chunk(json!({"content": "!"}), json!(null)),
            &finish,
            &json!("[DONE]"),
        ]
    );
}

#[test]
fn chat_clients_that_ask_for_usage_get_a_usage_chunk() {
    let mut ctx = context(ClientSurface::Chat, UpstreamFormat::Anthropic);
    ctx.include_usage = true;
    let events = stream_events(&ctx, ANTHROPIC_TEXT_STREAM);
    let n = events.len();
    assert_eq!(events[n - 3].data["choices"][0]["finish_reason"], "stop");
    assert!(events[n - 3].data.get("usage").is_none());
    assert_eq!(events[n - 2].data["choices"], json!([]));
    assert_eq!(events[n - 2].data["usage"]["prompt_tokens"], 35);
    assert_eq!(events[n - 1].data, json!("[DONE]"));
}

#[test]
fn anthropic_tool_use_to_responses() {
    let ctx = context(ClientSurface::Responses, UpstreamFormat::Anthropic);
    let events = stream_events(&ctx, ANTHROPIC_TOOL_STREAM);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event.data["type"], event.event.as_deref().unwrap());
        assert_eq!(
            event.data["sequence_number"], n,
            "sequence numbers count up from 0"
        );
    }
    assert_eq!(events[0].data["response"]["status"], "in_progress");
    assert_eq!(
        events[2].data["item"],
        json!({"type": "message", "id": "msg_TOKEN_0", "status": "in_progress", "role": "assistant", "content": []})
    );
    assert_eq!(events[4].data["delta"], "Okay, let's check the weather.");
    assert_eq!(
        events[8].data,
        json!({
            "type": "response.output_item.added", "sequence_number": 8, "output_index": 1,
            "item": {"type": "function_call", "id": "fc_TOKEN_1", "call_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "arguments": "", "status": "in_progress"}
        })
    );
    assert_eq!(events[9].data["delta"], "{\"location\":");
    assert_eq!(events[10].data["item_id"], "fc_TOKEN_1");
    assert_eq!(
        events[11].data["arguments"],
        "{\"location\": \"San Francisco, CA\"}"
    );
    let completed = &events[13].data["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"].as_array().unwrap().len(), 2);
    assert_eq!(
        completed["output"][1]["arguments"],
        "{\"location\": \"San Francisco, CA\"}"
    );
    assert_eq!(completed["usage"]["input_tokens"], 472);
    assert_eq!(completed["usage"]["output_tokens"], 89);
}

#[test]
fn anthropic_thinking_to_responses_keeps_the_signature() {
    let ctx = context(ClientSurface::Responses, UpstreamFormat::Anthropic);
    let events = stream_events(&ctx, ANTHROPIC_THINKING_STREAM);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(
        events[8].data["item"],
        json!({
            "type": "reasoning", "id": "rs_TOKEN_0", "status": "completed",
            "summary": [{"type": "summary_text", "text": "I need to find the GCD of 1071 and 462.\n\n1071 = 2 * 462 + 147"}],
            "encrypted_content": "keyway-anthropic:EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYd"
        })
    );
}

#[test]
fn anthropic_thinking_to_gemini_and_chat() {
    let ctx = context(GEMINI_STREAM, UpstreamFormat::Anthropic);
    let events = stream_events(&ctx, ANTHROPIC_THINKING_STREAM);
    let parts: Vec<&serde_json::Value> = events
        .iter()
        .map(|e| &e.data["candidates"][0]["content"]["parts"][0])
        .collect();
    assert_eq!(
        parts,
        [
            &json!({"text": "I need to find the GCD of 1071 and 462.", "thought": true}),
            &json!({"text": "\n\n1071 = 2 * 462 + 147", "thought": true}),
            &json!({"text": "", "thought": true, "thoughtSignature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYd"}),
            &json!({"text": "The GCD is 21."}),
            &json!({"text": ""}),
        ]
    );
    let last = &events[4].data;
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 36, "candidatesTokenCount": 120, "totalTokenCount": 156})
    );
    assert_eq!(last["modelVersion"], "client-model");

    let ctx = context(ClientSurface::Chat, UpstreamFormat::Anthropic);
    let events = stream_events(&ctx, ANTHROPIC_THINKING_STREAM);
    assert_eq!(
        events[1].data["choices"][0]["delta"],
        json!({"reasoning_content": "I need to find the GCD of 1071 and 462."})
    );
    assert_eq!(
        events[3].data["choices"][0]["delta"],
        json!({"content": "The GCD is 21."})
    );
    assert_eq!(events.len(), 6);
}

#[test]
fn anthropic_error_mid_stream_reaches_each_client_in_its_grammar() {
    let ctx = context(ClientSurface::Chat, UpstreamFormat::Anthropic);
    let events = stream_events(&ctx, ANTHROPIC_ERROR_STREAM);
    // The stream had begun (the upstream's message_start): the role chunk, then the error.
    assert_eq!(events[0].data["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        data(&events)[1..],
        [
            &json!({"error": {"message": "anthropic upstream: Overloaded", "type": "server_error", "param": null, "code": null}})
        ]
    );
    let ctx = context(ClientSurface::Responses, UpstreamFormat::Anthropic);
    let events = stream_events(&ctx, ANTHROPIC_ERROR_STREAM);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.failed"
        ]
    );
    assert_eq!(events[2].data["response"]["status"], "failed");
    assert_eq!(events[2].data["response"]["error"]["code"], "server_error");
    let ctx = context(GEMINI_STREAM, UpstreamFormat::Anthropic);
    let events = stream_events(&ctx, ANTHROPIC_ERROR_STREAM);
    assert_eq!(
        data(&events),
        [
            &json!({"error": {"code": 529, "message": "anthropic upstream: Overloaded", "status": "UNAVAILABLE"}})
        ]
    );
}

#[test]
fn openai_text_to_messages() {
    let ctx = context(ClientSurface::Messages, UpstreamFormat::OpenAi);
    let events = stream_events(&ctx, OPENAI_TEXT_STREAM);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for event in &events {
        assert_eq!(event.data["type"], event.event.as_deref().unwrap());
    }
    assert_eq!(
        events[0].data["message"],
        json!({
            "id": "msg_TOKEN", "type": "message", "role": "assistant", "model": "client-model",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}
        })
    );
    assert_eq!(
        events[1].data,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        events[3].data,
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}})
    );
    assert_eq!(
        events[5].data,
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"input_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4, "output_tokens": 12}
        })
    );
}

#[test]
fn openai_parallel_tool_calls_to_messages() {
    let ctx = context(ClientSurface::Messages, UpstreamFormat::OpenAi);
    let events = stream_events(&ctx, OPENAI_TOOL_STREAM);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        events[1].data["content_block"],
        json!({"type": "tool_use", "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "name": "get_weather", "input": {}})
    );
    assert_eq!(
        events[2].data["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"location\":"})
    );
    assert_eq!(events[5].data["index"], 1);
    assert_eq!(events[6].data["index"], 1);
    assert_eq!(events[8].data["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[8].data["usage"]["input_tokens"], 80);
    assert_eq!(events[8].data["usage"]["output_tokens"], 40);
}

#[test]
fn openai_parallel_tool_calls_to_gemini_arrive_whole() {
    let ctx = context(GEMINI_STREAM, UpstreamFormat::OpenAi);
    let events = stream_events(&ctx, OPENAI_TOOL_STREAM);
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].data["candidates"][0]["content"]["parts"],
        json!([{"functionCall": {"id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "name": "get_weather", "args": {"location": "Paris, France"}}}])
    );
    let last = &events[1].data["candidates"][0];
    assert_eq!(
        last["content"]["parts"],
        json!([{"functionCall": {"id": "call_ABC", "name": "get_weather", "args": {"location": "Bogotá, Colombia"}}}])
    );
    assert_eq!(last["finishReason"], "STOP");
    assert_eq!(events[1].data["usageMetadata"]["promptTokenCount"], 80);
}

#[test]
fn deepseek_reasoning_to_messages() {
    let ctx = context(ClientSurface::Messages, UpstreamFormat::OpenAi);
    let events = stream_events(&ctx, DEEPSEEK_REASONING_STREAM);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        events[1].data["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        events[2].data["delta"],
        json!({"type": "thinking_delta", "thinking": "9.11 vs 9.8"})
    );
    assert_eq!(events[5].data["delta"]["text"], "9.8 is larger.");
    assert_eq!(
        events[7].data["usage"],
        json!({"input_tokens": 13, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 50, "output_tokens_details": {"thinking_tokens": 40}})
    );
}

#[test]
fn gemini_text_to_each_client() {
    let ctx = context(ClientSurface::Messages, UpstreamFormat::Gemini);
    let events = stream_events(&ctx, GEMINI_TEXT_STREAM);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(events[0].data["message"]["usage"]["input_tokens"], 9);
    assert_eq!(
        events[5].data["usage"],
        json!({"input_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2, "output_tokens": 26, "output_tokens_details": {"thinking_tokens": 20}})
    );

    let ctx = context(ClientSurface::Chat, UpstreamFormat::Gemini);
    let events = stream_events(&ctx, GEMINI_TEXT_STREAM);
    assert_eq!(events.len(), 5);
    assert_eq!(
        events[2].data["choices"][0]["delta"]["content"],
        " sky is blue."
    );
    assert_eq!(events[3].data["usage"]["completion_tokens"], 26);
    assert_eq!(
        events[3].data["usage"]["completion_tokens_details"]["reasoning_tokens"],
        20
    );

    let ctx = context(ClientSurface::Responses, UpstreamFormat::Gemini);
    let events = stream_events(&ctx, GEMINI_TEXT_STREAM);
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("response.completed"));
    assert_eq!(
        last.data["response"]["output"][0]["content"][0]["text"],
        "The sky is blue."
    );
    assert_eq!(
        last.data["response"]["usage"]["input_tokens_details"]["cached_tokens"],
        2
    );
}

#[test]
fn gemini_function_calls_to_messages_keep_their_signature() {
    let ctx = context(ClientSurface::Messages, UpstreamFormat::Gemini);
    let events = stream_events(&ctx, GEMINI_TOOL_STREAM);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    // The thought, then the signature Gemini put on the first call, on a thinking block of
    // its own right before that call.
    assert_eq!(events[1].data["content_block"]["type"], "thinking");
    assert_eq!(
        events[5].data["delta"],
        json!({"type": "signature_delta", "signature": "keyway-gemini:CiQB0e2Kb7sig"})
    );
    assert_eq!(
        events[7].data["content_block"],
        json!({"type": "tool_use", "id": "call_TOKEN_0", "name": "get_weather", "input": {}})
    );
    assert_eq!(
        events[8].data["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"location\":\"Paris\"}"})
    );
    assert_eq!(events[10].data["content_block"]["id"], "call_TOKEN_1");
    assert_eq!(events[13].data["delta"]["stop_reason"], "tool_use");
}

#[test]
fn gemini_function_calls_to_chat_and_responses() {
    let ctx = context(ClientSurface::Chat, UpstreamFormat::Gemini);
    let events = stream_events(&ctx, GEMINI_TOOL_STREAM);
    let deltas: Vec<&serde_json::Value> = events
        .iter()
        .filter_map(|e| e.data["choices"].get(0).map(|c| &c["delta"]))
        .collect();
    assert_eq!(
        deltas,
        [
            &json!({"role": "assistant", "content": ""}),
            &json!({"reasoning_content": "**Checking the weather**\nI'll call the tool."}),
            &json!({"tool_calls": [{"index": 0, "id": "call_TOKEN_0", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            &json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":\"Paris\"}"}}]}),
            &json!({"tool_calls": [{"index": 1, "id": "call_TOKEN_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            &json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"location\":\"London\"}"}}]}),
            &json!({}),
        ]
    );
    assert_eq!(events[6].data["choices"][0]["finish_reason"], "tool_calls");

    let ctx = context(ClientSurface::Responses, UpstreamFormat::Gemini);
    let events = stream_events(&ctx, GEMINI_TOOL_STREAM);
    let completed = &events.last().unwrap().data["response"];
    let output = completed["output"].as_array().unwrap();
    let kinds: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["reasoning", "reasoning", "function_call", "function_call"]
    );
    assert_eq!(
        output[1]["encrypted_content"],
        "keyway-gemini:CiQB0e2Kb7sig"
    );
    assert_eq!(output[2]["call_id"], "call_TOKEN_0");
    assert_eq!(output[3]["arguments"], "{\"location\":\"London\"}");
}

#[test]
fn a_stream_that_stops_early_ends_with_an_error_event() {
    let cut = &ANTHROPIC_TEXT_STREAM[..ANTHROPIC_TEXT_STREAM.find("event: message_delta").unwrap()];
    let ctx = context(ClientSurface::Chat, UpstreamFormat::Anthropic);
    let events = parse_sse(&translate_stream(&ctx, cut, &[7]));
    let last = events.last().unwrap();
    assert_eq!(
        last.data["error"]["message"],
        "keyway: the upstream ended its stream before its last event"
    );

    let ctx = context(ClientSurface::Messages, UpstreamFormat::Gemini);
    let cut = &GEMINI_TEXT_STREAM[..GEMINI_TEXT_STREAM.find("\r\n\r\n").unwrap() + 4];
    let events = parse_sse(&translate_stream(&ctx, cut, &[3]));
    assert_eq!(events.last().unwrap().event.as_deref(), Some("error"));
    assert_eq!(events.last().unwrap().data["error"]["type"], "api_error");
}

#[test]
fn an_openai_stream_without_done_still_finishes() {
    let cut = &OPENAI_TEXT_STREAM[..OPENAI_TEXT_STREAM.find("data: [DONE]").unwrap()];
    let cut = &cut[..cut.rfind("data: {").unwrap()]; // no usage chunk either
    let ctx = context(ClientSurface::Messages, UpstreamFormat::OpenAi);
    let events = parse_sse(&translate_stream(&ctx, cut, &[5]));
    let names = names(&events);
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
}

#[test]
fn an_overlong_upstream_line_ends_the_stream_with_an_error() {
    let ctx = context(ClientSurface::Messages, UpstreamFormat::OpenAi);
    let mut translator = crate::StreamTranslator::new(&ctx);
    let head = translator.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"");
    assert!(head.is_empty());
    let filler = vec![b'a'; 1024 * 1024];
    let mut out = Vec::new();
    for _ in 0..9 {
        out.extend_from_slice(&translator.feed(&filler));
    }
    out.extend_from_slice(&translator.finish());
    let events = parse_sse(std::str::from_utf8(&out).unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.as_deref(), Some("error"));
    assert!(
        translator.feed(b"data: [DONE]\n\n").is_empty(),
        "nothing after the end"
    );
}

#[test]
fn garbage_in_never_panics() {
    let samples: [&[u8]; 6] = [
        b"",
        b"data: {not json}\n\n",
        b"data: [DONE]\n\n",
        b"event: message_delta\ndata: {\"type\":\"message_delta\"}\n\n",
        b"\xff\xfe\ndata: \xff\n\n",
        b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{}}]}}]}\n\n",
    ];
    let clients = [
        ClientSurface::Messages,
        ClientSurface::Chat,
        ClientSurface::Responses,
        GEMINI_STREAM,
    ];
    let upstreams = [
        UpstreamFormat::Anthropic,
        UpstreamFormat::OpenAi,
        UpstreamFormat::Gemini,
    ];
    for client in clients {
        for upstream in upstreams {
            for sample in samples {
                let ctx = context(client, upstream);
                let mut translator = crate::StreamTranslator::new(&ctx);
                let mut out = translator.feed(sample).to_vec();
                out.extend_from_slice(&translator.finish());
                let text = String::from_utf8(out).expect("UTF-8");
                // Whatever came in, the client gets well-formed events.
                parse_sse(&text);
            }
        }
    }
}

/// Codex CLI groups its sub-agent tools in a `namespace` tool: they go upstream as flat
/// `{namespace}__{name}` tools, and a call of one comes back split into `name` and
/// `namespace`, streamed and whole, as the Responses API gives it.
#[test]
fn responses_namespace_tools_go_flat_and_come_back_split() {
    use crate::{ClientSurface, UpstreamFormat};
    let request = json!({
        "model": "claude-sonnet-4-5",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "spawn"}]},
            {"type": "function_call", "call_id": "toolu_1", "name": "spawn_agent", "namespace": "multi_agent_v1", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "spawned"}
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
            {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.", "tools": [
                {"type": "function", "name": "spawn_agent", "description": "Spawn one.", "parameters": {"type": "object"}},
                {"type": "function", "name": "wait_agent", "parameters": {"type": "object"}}
            ]}
        ]
    });
    let (upstream, body) = super::upstream(
        ClientSurface::Responses,
        UpstreamFormat::Anthropic,
        &request,
        None,
    );
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "exec_command",
            "multi_agent_v1__spawn_agent",
            "multi_agent_v1__wait_agent"
        ]
    );
    assert_eq!(
        body["messages"][1]["content"][0]["name"],
        "multi_agent_v1__spawn_agent"
    );
    assert_eq!(upstream.context.namespaces, ["multi_agent_v1"]);

    let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"multi_agent_v1__wait_agent\",\"input\":{}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":5}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let events = stream_events(&upstream.context, stream);
    let added = events
        .iter()
        .find(|e| e.data["type"] == "response.output_item.added")
        .expect("an added item");
    assert_eq!(added.data["item"]["name"], "wait_agent");
    assert_eq!(added.data["item"]["namespace"], "multi_agent_v1");
    let completed = &events.last().unwrap().data["response"];
    assert_eq!(completed["output"][0]["name"], "wait_agent");
    assert_eq!(completed["output"][0]["namespace"], "multi_agent_v1");

    let whole = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"tool_use","id":"toolu_3","name":"multi_agent_v1__spawn_agent","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":5}}"#;
    let answer = crate::response(200, whole.as_bytes(), &upstream.context);
    let answer: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(answer["output"][0]["name"], "spawn_agent");
    assert_eq!(answer["output"][0]["namespace"], "multi_agent_v1");
}

/// The client's stream opens when the upstream's does, not with the first token: a Chat
/// upstream's opening chunk (the role, no text) gives a Messages client its `message_start`
/// and a Responses client its `response.created` at once.
#[test]
fn the_clients_stream_opens_with_the_upstreams_first_chunk() {
    let opening = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
    for (client, first) in [
        (ClientSurface::Messages, "message_start"),
        (ClientSurface::Responses, "response.created"),
    ] {
        let ctx = context(client, UpstreamFormat::OpenAi);
        let mut translator = crate::StreamTranslator::new(&ctx);
        let out = translator.feed(opening.as_bytes());
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            text.starts_with(&format!("event: {first}\n")),
            "{client:?}: {text:?}"
        );
    }
}
