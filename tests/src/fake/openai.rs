//! OpenAI API: `POST /v1/chat/completions`, `POST /v1/responses`, `GET /v1/models`.

use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};

use super::RateLimit;
use super::directive::{FRAGMENTS, Image, Reply, Turn, fragments};
use super::sse;
use super::wire::{Answer, Call, Failure, bearer, rate_limit_headers, unix_now};

/// Model named in answers when the request names none.
const DEFAULT_MODEL: &str = "gpt-4o";

/// The OpenAI endpoints the fake serves.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Endpoint {
    ChatCompletions,
    Responses,
    Models,
}

/// The request's key: OpenAI only takes `Authorization: Bearer`.
pub(crate) fn key(headers: &HeaderMap) -> Option<String> {
    bearer(headers)
}

/// The key as OpenAI quotes it in an error: never whole. The first few and last four
/// characters stay, the rest become `*` (a short key is all stars).
pub(crate) fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head = if key.starts_with("sk-") { 3 } else { 2 };
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - head - 4));
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// OpenAI's 400 for a body that is not declared as JSON. Its API reads only
/// `application/json` bodies (parameters such as `charset` allowed); any other type is
/// refused by name, and a body without a type is not read at all, so the required `model`
/// is missing.
pub(crate) fn content_type_refusal(method: &Method, headers: &HeaderMap) -> Option<Answer> {
    if method != Method::POST {
        return None;
    }
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "you must provide a model parameter",
            "invalid_request_error",
            Value::Null,
        ));
    };
    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return None;
    }
    Some(error(
        StatusCode::BAD_REQUEST,
        &format!(
            "Unsupported content type: '{value}'. This API method only accepts \
             'application/json' requests, but you specified the header 'Content-Type: \
             {value}'. Please try again with a supported content type."
        ),
        "invalid_request_error",
        json!("unsupported_content_type"),
    ))
}

/// The success answer; `events` is the content event count if the request streams.
pub(crate) fn answer(endpoint: Endpoint, call: &Call, events: usize) -> Answer {
    if let Endpoint::Models = endpoint {
        return Answer::ok(models());
    }
    let request = match call.json() {
        Ok(request) => request,
        Err(message) => return failure(Failure::BadRequest(message)),
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL);
    let streaming = request.get("stream").and_then(Value::as_bool) == Some(true);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    match (endpoint, streaming) {
        (Endpoint::ChatCompletions, false) => match Reply::plan(&chat_turn(&request), &call.text())
        {
            None => Answer::ok(chat_completion(call, model)),
            Some(reply) => Answer::ok(directed_completion(call, model, &reply)),
        },
        (Endpoint::ChatCompletions, true) => {
            match Reply::plan(&chat_turn(&request), &call.text()) {
                None => {
                    let deltas = (0..events)
                        .map(|i| json!({ "content": call.piece(i) }))
                        .collect();
                    let usage = chat_usage(call, events as u64, 0);
                    chat_stream(call, model, include_usage, deltas, "stop", usage)
                }
                Some(reply) => {
                    let usage = chat_usage(call, reply.output_tokens(), reply.reasoning_tokens());
                    let finish = finish_reason(&reply);
                    chat_stream(
                        call,
                        model,
                        include_usage,
                        directed_deltas(call, &reply),
                        finish,
                        usage,
                    )
                }
            }
        }
        (Endpoint::Responses, false) => {
            match Reply::plan(&responses_turn(&request), &call.text()) {
                None => {
                    let text = call.text();
                    Answer::ok(response_object(call, model, "completed", &text, 8))
                }
                Some(reply) => Answer::ok(directed_response(call, model, &reply)),
            }
        }
        (Endpoint::Responses, true) => match Reply::plan(&responses_turn(&request), &call.text()) {
            None => responses_stream(call, model, events),
            Some(reply) => directed_responses_stream(call, model, &reply),
        },
        (Endpoint::Models, _) => Answer::ok(models()),
    }
}

fn chat_id(call: &Call) -> String {
    format!("chatcmpl-fake{:016}", call.id)
}

/// Chat usage; `completion_tokens` counts the `reasoning` tokens too, as OpenAI's does.
fn chat_usage(call: &Call, output: u64, reasoning: u64) -> Value {
    let prompt = call.input_tokens();
    let completion = output + reasoning;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": { "cached_tokens": call.facts.cache.read, "audio_tokens": 0 },
        "completion_tokens_details": { "reasoning_tokens": reasoning, "audio_tokens": 0 },
    })
}

/// A complete `chat.completion` object.
fn chat_completion(call: &Call, model: &str) -> Value {
    json!({
        "id": chat_id(call),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": call.text(),
                "refusal": null,
                "annotations": [],
            },
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": chat_usage(call, 8, 0),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    })
}

/// `chat.completion.chunk`s: a role chunk, one chunk per delta, a chunk with the
/// `finish_reason`, the usage chunk if `stream_options.include_usage`, then `data: [DONE]`.
fn chat_stream(
    call: &Call,
    model: &str,
    include_usage: bool,
    deltas: Vec<Value>,
    finish: &str,
    usage: Value,
) -> Answer {
    let created = unix_now();
    let chunk = |delta: Value, finish: Value| {
        let mut chunk = json!({
            "id": chat_id(call),
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        sse::data(&chunk)
    };
    let head = vec![chunk(
        json!({ "role": "assistant", "content": "", "refusal": null }),
        Value::Null,
    )];
    let content = deltas
        .into_iter()
        .map(|delta| chunk(delta, Value::Null))
        .collect();
    let mut tail = vec![chunk(json!({}), json!(finish))];
    if include_usage {
        tail.push(sse::data(&json!({
            "id": chat_id(call),
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": usage,
        })));
    }
    tail.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    Answer::Stream {
        content_type: "text/event-stream; charset=utf-8",
        head,
        content,
        tail,
    }
}

/// What a Chat Completions request asks of a directive-driven answer: the messages after the
/// last assistant message (the user's text and images, the tool results), the tools, and
/// whether `reasoning_effort` asks for reasoning.
fn chat_turn(request: &Value) -> Turn {
    let names = |list: Option<&Value>, pointers: &[&str]| -> Vec<String> {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                pointers
                    .iter()
                    .find_map(|p| t.pointer(p).and_then(Value::as_str))
            })
            .map(str::to_owned)
            .collect()
    };
    let mut tools = names(request.get("tools"), &["/function/name", "/custom/name"]);
    tools.extend(names(request.get("functions"), &["/name"]));
    let reasoning = request
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .is_some_and(|effort| effort != "none");
    let mut turn = Turn {
        tools,
        reasoning,
        ..Turn::default()
    };
    let messages: &[Value] = request
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let start = messages
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .map_or(0, |i| i + 1);
    let mut texts = Vec::new();
    for message in &messages[start..] {
        let content = message.get("content");
        match message.get("role").and_then(Value::as_str) {
            Some("user") => match content {
                Some(Value::String(text)) => texts.push(text.clone()),
                Some(Value::Array(parts)) => {
                    for part in parts {
                        match part.get("type").and_then(Value::as_str) {
                            Some("text") => texts.extend(
                                part.get("text").and_then(Value::as_str).map(str::to_owned),
                            ),
                            Some("image_url") => turn.images.extend(
                                part.pointer("/image_url/url")
                                    .and_then(Value::as_str)
                                    .map(Image::from_url),
                            ),
                            _ => {}
                        }
                    }
                }
                _ => {}
            },
            Some("tool") => turn.results.push(match content {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Array(parts)) => {
                    let texts: Vec<&str> = parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect();
                    texts.join(" ")
                }
                _ => String::new(),
            }),
            _ => {}
        }
    }
    turn.text = texts.join("\n");
    turn
}

fn tool_call_id(call: &Call, i: usize) -> String {
    format!("call_fake{:016}_{i}", call.id)
}

fn finish_reason(reply: &Reply) -> &'static str {
    if reply.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    }
}

/// A `chat.completion` with the reply: reasoning as `reasoning_content` (as DeepSeek and vLLM
/// send it; OpenAI's own models keep it hidden), the text as `content`, the calls as
/// `tool_calls` with their arguments as JSON text.
fn directed_completion(call: &Call, model: &str, reply: &Reply) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": reply.text,
        "refusal": null,
        "annotations": [],
    });
    if let Some(thinking) = &reply.thinking {
        message["reasoning_content"] = json!(thinking);
    }
    if !reply.calls.is_empty() {
        let calls: Vec<Value> = reply
            .calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "id": tool_call_id(call, i),
                    "type": "function",
                    "function": { "name": c.name, "arguments": c.args.to_string() },
                })
            })
            .collect();
        message["tool_calls"] = json!(calls);
    }
    json!({
        "id": chat_id(call),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(reply),
        }],
        "usage": chat_usage(call, reply.output_tokens(), reply.reasoning_tokens()),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    })
}

/// The reply's stream deltas: `reasoning_content` pieces, `content` pieces, then for each
/// call a delta opening it (`index`, `id`, `type`, `function.name`, empty `arguments`) and
/// deltas carrying pieces of its arguments.
fn directed_deltas(call: &Call, reply: &Reply) -> Vec<Value> {
    let mut deltas = Vec::new();
    if let Some(thinking) = &reply.thinking {
        deltas.extend(
            fragments(thinking, FRAGMENTS)
                .into_iter()
                .map(|t| json!({ "reasoning_content": t })),
        );
    }
    deltas.extend(
        fragments(&reply.text, FRAGMENTS)
            .into_iter()
            .map(|t| json!({ "content": t })),
    );
    for (i, c) in reply.calls.iter().enumerate() {
        deltas.push(json!({ "tool_calls": [{
            "index": i,
            "id": tool_call_id(call, i),
            "type": "function",
            "function": { "name": c.name, "arguments": "" },
        }] }));
        deltas.extend(
            fragments(&c.args.to_string(), FRAGMENTS)
                .into_iter()
                .map(|a| json!({ "tool_calls": [{ "index": i, "function": { "arguments": a } }] })),
        );
    }
    deltas
}

fn response_id(call: &Call) -> String {
    response_id_of(call.id)
}

/// The id of the Responses answer to request number `id`.
pub(crate) fn response_id_of(id: u64) -> String {
    format!("resp_fake{id:016}")
}

/// Whether the request asks for its reasoning back encrypted (Codex's `store: false` mode).
pub(crate) fn wants_reasoning(request: &Value) -> bool {
    request
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|i| i.iter().any(|v| v == "reasoning.encrypted_content"))
}

/// Encrypted reasoning as only `credential`'s organization can read it back.
pub(crate) fn encrypted_reasoning(credential: &str, id: u64) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    credential.hash(&mut h);
    format!("gAAAAB{:016x}{id:016x}", h.finish())
}

/// Responses state exists only in the organization that made it: a `previous_response_id`
/// or an encrypted reasoning item from anywhere else is refused, as OpenAI refuses them.
pub(crate) fn check_chain(
    shared: &super::state::Shared,
    credential: &str,
    request: &Value,
) -> Result<(), Answer> {
    if let Some(previous) = request.get("previous_response_id").and_then(Value::as_str)
        && shared.responses.owner(previous).as_deref() != Some(credential)
    {
        return Err(Answer::error(
            StatusCode::BAD_REQUEST,
            json!({ "error": {
                "message": format!("Previous response with id '{previous}' not found."),
                "type": "invalid_request_error",
                "param": "previous_response_id",
                "code": "previous_response_not_found",
            } }),
        ));
    }
    let items = request.get("input").and_then(Value::as_array);
    for item in items.into_iter().flatten() {
        let content = item
            .get("encrypted_content")
            .and_then(Value::as_str)
            .filter(|_| item.get("type").and_then(Value::as_str) == Some("reasoning"));
        if let Some(content) = content
            && shared.responses.owner(content).as_deref() != Some(credential)
        {
            let id = item
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("rs_unknown");
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "The encrypted content for item {id} could not be verified. Reason: Encrypted content organization_id did not match the target organization."
                ),
                "invalid_request_error",
                json!("invalid_encrypted_content"),
            ));
        }
    }
    Ok(())
}

/// The reasoning output item of an answer that was asked for its encrypted reasoning.
fn reasoning_item(call: &Call) -> Option<Value> {
    call.facts.reasoning.as_ref().map(|content| {
        json!({
            "id": format!("rs_fake{:016}", call.id),
            "type": "reasoning",
            "summary": [],
            "encrypted_content": content,
        })
    })
}

fn item_id(call: &Call) -> String {
    format!("msg_fake{:016}", call.id)
}

/// The assistant message output item holding `text`.
fn output_message(call: &Call, status: &str, text: &str) -> Value {
    json!({
        "id": item_id(call),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{ "type": "output_text", "text": text, "annotations": [] }],
    })
}

/// A Responses API `response` object. `status` other than `completed` has no output or usage
/// yet, as in `response.created`.
fn response_object(
    call: &Call,
    model: &str,
    status: &str,
    text: &str,
    output_tokens: u64,
) -> Value {
    let output = reasoning_item(call)
        .into_iter()
        .chain([output_message(call, "completed", text)])
        .collect();
    response_with(call, model, status, output, output_tokens, 0)
}

/// A `response` object with `output` once `completed`; its usage counts `output_tokens` of
/// which `reasoning_tokens` are reasoning.
fn response_with(
    call: &Call,
    model: &str,
    status: &str,
    output: Vec<Value>,
    output_tokens: u64,
    reasoning_tokens: u64,
) -> Value {
    let done = status == "completed";
    let input = call.input_tokens();
    json!({
        "id": response_id(call),
        "object": "response",
        "created_at": unix_now(),
        "status": status,
        "error": null,
        "incomplete_details": null,
        "model": model,
        "output": if done { json!(output) } else { json!([]) },
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
        "usage": if done {
            json!({
                "input_tokens": input,
                "input_tokens_details": { "cached_tokens": call.facts.cache.read },
                "output_tokens": output_tokens,
                "output_tokens_details": { "reasoning_tokens": reasoning_tokens },
                "total_tokens": input + output_tokens,
            })
        } else {
            Value::Null
        },
    })
}

/// What a Responses request asks of a directive-driven answer: the input items after the last
/// one the model produced (the user's text and images, function call outputs), the function
/// tools, and whether `reasoning` is on (any `effort` but `none`).
fn responses_turn(request: &Value) -> Turn {
    let tools = request
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| {
            matches!(
                t.get("type").and_then(Value::as_str),
                Some("function" | "custom")
            )
        })
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let reasoning = request
        .get("reasoning")
        .and_then(Value::as_object)
        .is_some_and(|r| r.get("effort").and_then(Value::as_str) != Some("none"));
    let mut turn = Turn {
        tools,
        reasoning,
        ..Turn::default()
    };
    let items = match request.get("input") {
        Some(Value::String(text)) => {
            turn.text = text.clone();
            return turn;
        }
        Some(Value::Array(items)) => items,
        _ => return turn,
    };
    let produced = |item: &Value| {
        matches!(
            item_kind(item),
            "function_call" | "custom_tool_call" | "reasoning"
        ) || item.get("role").and_then(Value::as_str) == Some("assistant")
    };
    let start = items.iter().rposition(produced).map_or(0, |i| i + 1);
    let mut texts = Vec::new();
    for item in &items[start..] {
        match item_kind(item) {
            "message" if item.get("role").and_then(Value::as_str) == Some("user") => {
                match item.get("content") {
                    Some(Value::String(text)) => texts.push(text.clone()),
                    Some(Value::Array(parts)) => {
                        for part in parts {
                            match part.get("type").and_then(Value::as_str) {
                                Some("input_text") => texts.extend(
                                    part.get("text").and_then(Value::as_str).map(str::to_owned),
                                ),
                                Some("input_image") => {
                                    let url = part.get("image_url").and_then(Value::as_str);
                                    let file = part.get("file_id").and_then(Value::as_str);
                                    match (url, file) {
                                        (Some(url), _) => turn.images.push(Image::from_url(url)),
                                        (None, Some(file)) => {
                                            turn.images.push(Image::Url(file.to_owned()))
                                        }
                                        (None, None) => {}
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            "function_call_output" | "custom_tool_call_output" => {
                turn.results.push(match item.get("output") {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Array(parts)) => {
                        let texts: Vec<&str> = parts
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect();
                        texts.join(" ")
                    }
                    _ => String::new(),
                })
            }
            _ => {}
        }
    }
    turn.text = texts.join("\n");
    turn
}

/// An input item's `type`; a bare `{role, content}` is a message.
fn item_kind(item: &Value) -> &str {
    item.get("type")
        .and_then(Value::as_str)
        .unwrap_or("message")
}

/// `base` (an event's common fields) with `key` set to `value`.
fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

/// The reasoning item of a directive-driven answer: its summary (when it reasons) and its
/// encrypted content (when asked for); none when it has neither.
fn directed_reasoning(call: &Call, reply: &Reply) -> Option<Value> {
    let summary: Vec<Value> = reply
        .thinking
        .iter()
        .map(|t| json!({ "type": "summary_text", "text": t }))
        .collect();
    if summary.is_empty() && call.facts.reasoning.is_none() {
        return None;
    }
    let mut item = json!({
        "id": format!("rs_fake{:016}", call.id),
        "type": "reasoning",
        "summary": summary,
    });
    if let Some(content) = &call.facts.reasoning {
        item["encrypted_content"] = json!(content);
    }
    Some(item)
}

/// The `function_call` output item of call `i` of the reply, with its `status`.
fn function_call_item(call: &Call, reply: &Reply, i: usize, status: &str) -> Value {
    let c = &reply.calls[i];
    json!({
        "id": format!("fc_fake{:016}_{i}", call.id),
        "type": "function_call",
        "status": status,
        "arguments": if status == "completed" { c.args.to_string() } else { String::new() },
        "call_id": tool_call_id(call, i),
        "name": c.name,
    })
}

/// The reply's output items: reasoning, the message, a `function_call` per call.
fn directed_output(call: &Call, reply: &Reply) -> Vec<Value> {
    let mut output: Vec<Value> = directed_reasoning(call, reply).into_iter().collect();
    output.push(output_message(call, "completed", &reply.text));
    output.extend((0..reply.calls.len()).map(|i| function_call_item(call, reply, i, "completed")));
    output
}

fn directed_response(call: &Call, model: &str, reply: &Reply) -> Value {
    let reasoning = reply.reasoning_tokens();
    let output = directed_output(call, reply);
    response_with(
        call,
        model,
        "completed",
        output,
        reply.output_tokens() + reasoning,
        reasoning,
    )
}

/// The reply streamed as the Responses API streams it: each output item opened by
/// `response.output_item.added` and closed by `response.output_item.done`, filled in between
/// by reasoning summary deltas, output text deltas or function call argument deltas; then
/// `response.completed`. Every event after `response.in_progress` is a content event.
fn directed_responses_stream(call: &Call, model: &str, reply: &Reply) -> Answer {
    let mut seq = 0u64;
    let mut event = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(seq);
        seq += 1;
        sse::event(kind, &data)
    };
    let in_progress = response_with(call, model, "in_progress", Vec::new(), 0, 0);
    let head = vec![
        event("response.created", json!({ "response": in_progress })),
        event("response.in_progress", json!({ "response": in_progress })),
    ];
    let mut content = Vec::new();
    let mut index = 0;
    if let Some(item) = directed_reasoning(call, reply) {
        let id = item["id"].clone();
        content.push(event(
            "response.output_item.added",
            json!({ "output_index": index, "item": { "id": id, "type": "reasoning", "summary": [] } }),
        ));
        if let Some(thinking) = &reply.thinking {
            let at = json!({ "item_id": id, "output_index": index, "summary_index": 0 });
            content.push(event(
                "response.reasoning_summary_part.added",
                with(
                    at.clone(),
                    "part",
                    json!({ "type": "summary_text", "text": "" }),
                ),
            ));
            for piece in fragments(thinking, FRAGMENTS) {
                content.push(event(
                    "response.reasoning_summary_text.delta",
                    with(at.clone(), "delta", json!(piece)),
                ));
            }
            content.push(event(
                "response.reasoning_summary_text.done",
                with(at.clone(), "text", json!(thinking)),
            ));
            content.push(event(
                "response.reasoning_summary_part.done",
                with(
                    at,
                    "part",
                    json!({ "type": "summary_text", "text": thinking }),
                ),
            ));
        }
        content.push(event(
            "response.output_item.done",
            json!({ "output_index": index, "item": item }),
        ));
        index += 1;
    }
    let message_id = item_id(call);
    let at = json!({ "item_id": message_id, "output_index": index, "content_index": 0 });
    content.push(event(
        "response.output_item.added",
        json!({
            "output_index": index,
            "item": { "id": message_id, "type": "message", "status": "in_progress",
                      "role": "assistant", "content": [] },
        }),
    ));
    content.push(event(
        "response.content_part.added",
        with(
            at.clone(),
            "part",
            json!({ "type": "output_text", "text": "", "annotations": [] }),
        ),
    ));
    for piece in fragments(&reply.text, FRAGMENTS) {
        content.push(event(
            "response.output_text.delta",
            with(at.clone(), "delta", json!(piece)),
        ));
    }
    content.push(event(
        "response.output_text.done",
        with(at.clone(), "text", json!(reply.text)),
    ));
    content.push(event(
        "response.content_part.done",
        with(
            at,
            "part",
            json!({ "type": "output_text", "text": reply.text, "annotations": [] }),
        ),
    ));
    content.push(event(
        "response.output_item.done",
        json!({ "output_index": index, "item": output_message(call, "completed", &reply.text) }),
    ));
    index += 1;
    for i in 0..reply.calls.len() {
        let item = function_call_item(call, reply, i, "in_progress");
        let at = json!({ "item_id": item["id"], "output_index": index });
        content.push(event(
            "response.output_item.added",
            json!({ "output_index": index, "item": item }),
        ));
        let arguments = reply.calls[i].args.to_string();
        for piece in fragments(&arguments, FRAGMENTS) {
            content.push(event(
                "response.function_call_arguments.delta",
                with(at.clone(), "delta", json!(piece)),
            ));
        }
        content.push(event(
            "response.function_call_arguments.done",
            with(at, "arguments", json!(arguments)),
        ));
        content.push(event(
            "response.output_item.done",
            json!({ "output_index": index, "item": function_call_item(call, reply, i, "completed") }),
        ));
        index += 1;
    }
    let tail = vec![event(
        "response.completed",
        json!({ "response": directed_response(call, model, reply) }),
    )];
    Answer::Stream {
        content_type: "text/event-stream; charset=utf-8",
        head,
        content,
        tail,
    }
}

/// The Responses streaming sequence: response.created, response.in_progress,
/// response.output_item.added, response.content_part.added, N×response.output_text.delta,
/// response.output_text.done, response.content_part.done, response.output_item.done,
/// response.completed — each `event: <type>` with a `data:` JSON carrying the same `type`
/// and a running `sequence_number`.
fn responses_stream(call: &Call, model: &str, events: usize) -> Answer {
    let mut seq = 0u64;
    let mut event = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(seq);
        seq += 1;
        sse::event(kind, &data)
    };
    let item_id = item_id(call);
    let text: String = (0..events).map(|i| call.piece(i)).collect();
    let in_progress = response_object(call, model, "in_progress", "", 0);

    let reasoning = reasoning_item(call);
    let msg_index = usize::from(reasoning.is_some());
    let mut head = vec![
        event("response.created", json!({ "response": in_progress })),
        event("response.in_progress", json!({ "response": in_progress })),
    ];
    if let Some(item) = reasoning {
        head.push(event(
            "response.output_item.added",
            json!({ "output_index": 0, "item": { "id": item["id"], "type": "reasoning", "summary": [] } }),
        ));
        head.push(event(
            "response.output_item.done",
            json!({ "output_index": 0, "item": item }),
        ));
    }
    head.extend([
        event(
            "response.output_item.added",
            json!({
                "output_index": msg_index,
                "item": {
                    "id": item_id, "type": "message", "status": "in_progress",
                    "role": "assistant", "content": [],
                },
            }),
        ),
        event(
            "response.content_part.added",
            json!({
                "item_id": item_id, "output_index": msg_index, "content_index": 0,
                "part": { "type": "output_text", "text": "", "annotations": [] },
            }),
        ),
    ]);
    let content = (0..events)
        .map(|i| {
            event(
                "response.output_text.delta",
                json!({
                    "item_id": item_id, "output_index": msg_index, "content_index": 0,
                    "delta": call.piece(i),
                }),
            )
        })
        .collect();
    let tail = vec![
        event(
            "response.output_text.done",
            json!({ "item_id": item_id, "output_index": msg_index, "content_index": 0, "text": text }),
        ),
        event(
            "response.content_part.done",
            json!({
                "item_id": item_id, "output_index": msg_index, "content_index": 0,
                "part": { "type": "output_text", "text": text, "annotations": [] },
            }),
        ),
        event(
            "response.output_item.done",
            json!({ "output_index": msg_index, "item": output_message(call, "completed", &text) }),
        ),
        event(
            "response.completed",
            json!({ "response": response_object(call, model, "completed", &text, events as u64) }),
        ),
    ];
    Answer::Stream {
        content_type: "text/event-stream; charset=utf-8",
        head,
        content,
        tail,
    }
}

/// `GET /v1/models`: `{"object":"list","data":[{id, object:"model", created, owned_by}]}`.
fn models() -> Value {
    let data: Vec<Value> = [
        ("gpt-4o", "system"),
        ("gpt-4o-mini", "system"),
        ("gpt-5", "system"),
    ]
    .iter()
    .map(|(id, owner)| json!({ "id": id, "object": "model", "created": 1_715_367_049, "owned_by": owner }))
    .collect();
    json!({ "object": "list", "data": data })
}

/// `{"error":{"message","type","param":null,"code"}}` with the status OpenAI uses; plan
/// limits use Codex's `usage_limit_reached` shape.
pub(crate) fn failure(f: Failure<'_>) -> Answer {
    match f {
        Failure::MissingKey => error(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            Value::Null,
        ),
        Failure::Unauthorized(key) => error(
            StatusCode::UNAUTHORIZED,
            &format!(
                "Incorrect API key provided: {}. You can find your API key at \
                 https://platform.openai.com/account/api-keys.",
                masked(key)
            ),
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        Failure::RateLimited(RateLimit::OpenAiUsageLimit { resets_at }) => usage_limit(json!({
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_at": resets_at,
        })),
        Failure::RateLimited(RateLimit::OpenAiUsageLimitIn { resets_in_seconds }) => {
            usage_limit(json!({
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": "plus",
                "resets_in_seconds": resets_in_seconds,
            }))
        }
        Failure::RateLimited(limit) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1.",
            "requests",
            json!("rate_limit_exceeded"),
        )
        .with_headers(rate_limit_headers(limit)),
        Failure::Overloaded => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The engine is currently overloaded, please try again later.",
            "server_error",
            Value::Null,
        ),
        Failure::Server(code) => error(
            super::wire::status(code),
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            Value::Null,
        ),
        Failure::ContextTooLong => error(
            StatusCode::BAD_REQUEST,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            json!("context_length_exceeded"),
        ),
        Failure::BadRequest(message) => error(
            StatusCode::BAD_REQUEST,
            &message,
            "invalid_request_error",
            Value::Null,
        ),
        Failure::NotFound(message) => error(
            StatusCode::NOT_FOUND,
            &message,
            "invalid_request_error",
            json!("unknown_url"),
        ),
    }
}

fn usage_limit(error: Value) -> Answer {
    Answer::error(StatusCode::TOO_MANY_REQUESTS, json!({ "error": error }))
}

fn error(status: StatusCode, message: &str, kind: &str, code: Value) -> Answer {
    Answer::error(
        status,
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } }),
    )
}
