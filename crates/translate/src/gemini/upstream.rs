//! The Gemini upstream format: IR requests into `generateContent` bodies, answers and SSE
//! chunks into the IR.
//!
//! Thought signatures: a signature Gemini put on a function call (or text) comes back to the
//! client as an empty signed thinking part right before it, and goes back to Gemini on that
//! part. A function call in the history that has no signature (the conversation came from
//! another model or a client that cannot keep one) gets Gemini's documented placeholder, on
//! the first call of each model turn, since Gemini 3 refuses such history otherwise.

use super::wire::{self, Content};
use crate::error::{Result, TranslateError};
use crate::ir::{self, Event, Part, Reasoning, Role};
use crate::reasoning;
use crate::{UpstreamError, UpstreamFormat, dropped};

const TARGET: UpstreamFormat = UpstreamFormat::Gemini;

/// Largest thinking budget Keyway sends: Gemini 2.5 Flash's maximum, which every current
/// thinking model accepts.
pub const MAX_BUDGET: u32 = 24576;

/// `/v1beta/models/{model}{method}`, refusing a model name that would change the path.
pub fn path(model: &str, method: &str) -> Result<String> {
    let name = model.strip_prefix("models/").unwrap_or(model);
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(TranslateError::invalid(
            "model",
            format!("\"{model}\" is not a Gemini model name"),
        ));
    }
    Ok(format!("/v1beta/models/{name}{method}"))
}

/// A `generateContent` body for the request.
pub fn render_request(ir: ir::Request) -> Result<Vec<u8>> {
    let hint = ir.messages.len() * 256 + ir.tools.len() * 512 + 1024;
    let body = build(ir)?;
    Ok(crate::json::to_vec(&body, hint))
}

/// A `countTokens` body: the whole request wrapped, so system instruction and tools count.
pub fn render_count_request(ir: ir::Request) -> Result<Vec<u8>> {
    let model = format!(
        "models/{}",
        ir.model.strip_prefix("models/").unwrap_or(&ir.model)
    );
    let body = build(ir)?;
    let count = wire::CountRequest {
        generate_content_request: wire::CountInner {
            model,
            contents: body.contents,
            system_instruction: body.system_instruction,
            tools: body.tools,
        },
    };
    Ok(crate::json::to_vec(&count, 1024))
}

fn build(ir: ir::Request) -> Result<wire::UpstreamRequest> {
    let system_instruction = (!ir.system.is_empty()).then(|| Content {
        role: None,
        parts: vec![wire::Part {
            text: Some(ir.system.join("\n\n")),
            ..wire::Part::default()
        }],
    });
    let contents = contents(ir.messages)?;
    let tools = if ir.tools.is_empty() {
        Vec::new()
    } else {
        vec![wire::Tool {
            function_declarations: ir
                .tools
                .into_iter()
                .map(|tool| wire::FunctionDeclaration {
                    name: tool.name,
                    description: tool.description,
                    parameters: None,
                    parameters_json_schema: Some(tool.parameters),
                })
                .collect(),
            ..wire::Tool::default()
        }]
    };
    if ir.parallel_tool_calls == Some(false) {
        dropped(
            "parallel_tool_calls",
            TARGET,
            "Gemini has no switch for parallel calls",
        );
    }
    let tool_config = ir.tool_choice.map(|choice| {
        let (mode, allowed) = match choice {
            ir::ToolChoice::Auto => ("AUTO", Vec::new()),
            ir::ToolChoice::None => ("NONE", Vec::new()),
            ir::ToolChoice::Required => ("ANY", Vec::new()),
            ir::ToolChoice::Tool(name) => ("ANY", vec![name]),
        };
        wire::ToolConfig {
            function_calling_config: Some(wire::FunctionCallingConfig {
                mode: Some(mode.into()),
                allowed_function_names: allowed,
            }),
        }
    });
    if ir.user.is_some() {
        dropped("user", TARGET, "Gemini takes no end-user id");
    }
    let thinking_config = ir.reasoning.as_ref().map(|r| match r {
        Reasoning::Off => wire::ThinkingConfig {
            thinking_budget: Some(0),
            ..wire::ThinkingConfig::default()
        },
        Reasoning::On { show, .. } => wire::ThinkingConfig {
            // No amount given: -1 lets the model decide.
            thinking_budget: Some(
                reasoning::budget(r).map_or(-1, |b| i64::from(b.min(MAX_BUDGET))),
            ),
            include_thoughts: show.then_some(true),
            thinking_level: None,
        },
    });
    let (response_mime_type, response_json_schema) = match ir.output_format {
        None => (None, None),
        Some(ir::OutputFormat::JsonObject) => (Some("application/json".to_owned()), None),
        Some(ir::OutputFormat::JsonSchema { schema, .. }) => {
            (Some("application/json".to_owned()), Some(schema))
        }
    };
    let config = wire::GenerationConfig {
        stop_sequences: ir.stop,
        max_output_tokens: ir.max_tokens,
        temperature: ir.sampling.temperature,
        top_p: ir.sampling.top_p,
        top_k: ir.sampling.top_k,
        seed: ir.sampling.seed,
        presence_penalty: ir.sampling.presence_penalty,
        frequency_penalty: ir.sampling.frequency_penalty,
        response_mime_type,
        response_json_schema,
        thinking_config,
        ..wire::GenerationConfig::default()
    };
    let empty = config.stop_sequences.is_empty()
        && config.max_output_tokens.is_none()
        && config.temperature.is_none()
        && config.top_p.is_none()
        && config.top_k.is_none()
        && config.seed.is_none()
        && config.presence_penalty.is_none()
        && config.frequency_penalty.is_none()
        && config.response_mime_type.is_none()
        && config.thinking_config.is_none();
    let mut body = wire::UpstreamRequest {
        contents,
        system_instruction,
        tools,
        tool_config,
        generation_config: (!empty).then_some(config),
        extra: serde_json::Map::new(),
    };
    body.extra = crate::forward_extra(ir.extra, &body.written(), TARGET);
    Ok(body)
}

/// The conversation as Gemini contents: roles `user` and `model`, consecutive turns of one
/// role merged, tool results as function responses named after their calls.
fn contents(messages: Vec<ir::Message>) -> Result<Vec<Content>> {
    // Function names by call id, for the results (Gemini names a response, it has no id).
    let mut names: Vec<(String, String)> = Vec::new();
    for message in &messages {
        for part in &message.parts {
            if let Part::ToolCall(call) = part {
                names.push((call.id.clone(), call.name.clone()));
            }
        }
    }
    let mut out: Vec<Content> = Vec::with_capacity(messages.len());
    for message in messages {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        let mut parts = Vec::with_capacity(message.parts.len());
        let mut pending: Option<String> = None;
        let mut signed_a_call = false;
        for part in message.parts {
            match part {
                Part::Text(text) if text.is_empty() => {}
                Part::Text(text) => parts.push(wire::Part {
                    text: Some(text),
                    thought_signature: pending.take(),
                    ..wire::Part::default()
                }),
                Part::Image(ir::Image::Base64 { media_type, data }) => parts.push(wire::Part {
                    inline_data: Some(wire::Blob {
                        mime_type: media_type,
                        data,
                    }),
                    ..wire::Part::default()
                }),
                // Refused when the request was read.
                Part::Image(ir::Image::Url(_)) => {}
                Part::Thinking { text, signature } if text.is_empty() => pending = signature,
                Part::Thinking {
                    text,
                    signature: Some(signature),
                } => parts.push(wire::Part {
                    text: Some(text),
                    thought: Some(true),
                    thought_signature: Some(signature),
                    ..wire::Part::default()
                }),
                Part::Thinking { .. } | Part::RedactedThinking(_) => {
                    dropped("thinking", TARGET, "reasoning without a Gemini signature");
                }
                Part::ToolCall(call) => {
                    let signature = pending.take().or_else(|| {
                        (!signed_a_call && message.role == Role::Assistant)
                            .then(|| super::SKIP_SIGNATURE.to_owned())
                    });
                    signed_a_call = true;
                    parts.push(wire::Part {
                        function_call: Some(wire::FunctionCall {
                            id: None,
                            name: call.name,
                            args: Some(call.arguments),
                        }),
                        thought_signature: signature,
                        ..wire::Part::default()
                    });
                }
                Part::ToolResult(mut result) => {
                    let name = match result.name.take() {
                        Some(name) => name,
                        None => names
                            .iter()
                            .find(|(id, _)| *id == result.id)
                            .map(|(_, name)| name.clone())
                            .ok_or_else(|| {
                                TranslateError::invalid(
                                    "messages",
                                    format!(
                                        "the tool result for call \"{}\" has no call before it; Gemini needs the function's name",
                                        result.id
                                    ),
                                )
                            })?,
                    };
                    let key = if result.is_error { "error" } else { "output" };
                    let response = serde_json::json!({ key: result.text() });
                    parts.push(wire::Part {
                        function_response: Some(wire::FunctionResponse {
                            id: None,
                            name,
                            response: ir::raw_json(response.to_string()),
                        }),
                        ..wire::Part::default()
                    });
                }
            }
        }
        if parts.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => out.push(Content {
                role: Some(role.into()),
                parts,
            }),
        }
    }
    Ok(out)
}

/// Answer parts from Gemini parts; signatures on non-thought parts become empty signed
/// thinking parts before them. `calls` counts function calls, for their generated ids.
fn answer_parts(parts: Vec<wire::Part>, token: &str, calls: &mut usize, out: &mut Vec<Part>) {
    for part in parts {
        let signature = part.thought_signature.filter(|s| !s.is_empty());
        if let Some(text) = part.text {
            if part.thought == Some(true) {
                match out.last_mut() {
                    // Gemini may split one thought over several parts.
                    Some(Part::Thinking {
                        text: previous,
                        signature: previous_signature @ None,
                    }) if !previous.is_empty() => {
                        previous.push_str(&text);
                        *previous_signature = signature;
                    }
                    _ => out.push(Part::Thinking { text, signature }),
                }
                continue;
            }
            signed(out, signature);
            match out.last_mut() {
                Some(Part::Text(previous)) => previous.push_str(&text),
                _ => out.push(Part::Text(text)),
            }
        } else if let Some(call) = part.function_call {
            signed(out, signature);
            out.push(Part::ToolCall(ir::ToolCall {
                id: call_id(call.id, token, *calls),
                name: call.name,
                arguments: call.args.unwrap_or_else(ir::empty_object),
            }));
            *calls += 1;
        } else if signature.is_some() {
            signed(out, signature);
        } else {
            tracing::debug!("translate: skipped a Gemini part with no counterpart");
        }
    }
}

fn signed(out: &mut Vec<Part>, signature: Option<String>) {
    if let Some(signature) = signature {
        out.push(Part::Thinking {
            text: String::new(),
            signature: Some(signature),
        });
    }
}

/// Gemini's own call id when it gave one, else `call_<token>_<n>`: unique across turns, since
/// clients keep calls by id for the whole conversation.
fn call_id(id: Option<String>, token: &str, n: usize) -> String {
    id.filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("call_{token}_{n}"))
}

/// A whole answer in the IR. `token` makes the generated call ids unique.
pub fn parse_response(body: &[u8], token: &str) -> Option<ir::Response> {
    let response: wire::GenerateResponse = serde_json::from_slice(body).ok()?;
    let usage = response
        .usage_metadata
        .as_ref()
        .map(wire::UsageMetadata::to_ir)
        .unwrap_or_default();
    let blocked = response
        .prompt_feedback
        .as_ref()
        .is_some_and(|f| f.block_reason.is_some());
    let Some(candidate) = response.candidates.into_iter().next() else {
        return Some(ir::Response {
            stop: if blocked {
                ir::StopReason::Refusal
            } else {
                ir::StopReason::EndTurn
            },
            usage,
            ..ir::Response::default()
        });
    };
    let mut parts = Vec::new();
    let mut calls = 0;
    if let Some(content) = candidate.content {
        answer_parts(content.parts, token, &mut calls, &mut parts);
    }
    Some(ir::Response {
        parts,
        stop: super::finish_reason(
            candidate.finish_reason.as_deref().unwrap_or("STOP"),
            calls > 0,
        ),
        stop_sequence: None,
        usage,
    })
}

/// The count from a countTokens answer.
pub fn parse_count(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<wire::CountResponse>(body)
        .ok()
        .map(|c| c.total_tokens)
}

/// Reads Gemini's SSE chunks into IR events. Each chunk carries whole parts (a function call
/// arrives with all its arguments) and the usage so far; the chunk with `finishReason` ends
/// the answer.
#[derive(Debug)]
pub struct StreamParser {
    token: String,
    /// The first chunk came ([`Event::Start`] sent).
    begun: bool,
    calls: usize,
    usage_sent: bool,
    /// The last usage reported: each chunk reports the whole usage so far.
    usage: ir::Usage,
    finished: bool,
}

impl StreamParser {
    pub fn new(token: &str) -> Self {
        StreamParser {
            token: token.to_owned(),
            begun: false,
            calls: 0,
            usage_sent: false,
            usage: ir::Usage::default(),
            finished: false,
        }
    }

    pub fn data(&mut self, data: &[u8], out: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        let chunk: wire::GenerateResponse = match serde_json::from_slice(data) {
            Ok(chunk) => chunk,
            Err(error) => {
                tracing::debug!(%error, "translate: skipped an unreadable Gemini chunk");
                return;
            }
        };
        if chunk.error.is_some() {
            out.push(Event::Error(UpstreamError::parse(TARGET, 0, data)));
            self.finished = true;
            return;
        }
        if let Some(usage) = chunk
            .usage_metadata
            .as_ref()
            .map(wire::UsageMetadata::to_ir)
        {
            self.usage = usage;
            if !self.usage_sent {
                self.usage_sent = true;
                out.push(Event::Usage(usage));
            }
        }
        if !self.begun {
            // After the usage, so the client's opening event carries the prompt's tokens.
            self.begun = true;
            out.push(Event::Start);
        }
        let blocked = chunk
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some());
        let Some(candidate) = chunk.candidates.into_iter().next() else {
            if blocked {
                self.finish(ir::StopReason::Refusal, out);
            }
            return;
        };
        if let Some(content) = candidate.content {
            let mut parts = Vec::with_capacity(content.parts.len());
            let before = self.calls;
            answer_parts(content.parts, &self.token, &mut self.calls, &mut parts);
            let mut call = before;
            for part in parts {
                match part {
                    Part::Text(text) => out.push(Event::Text(text)),
                    Part::Thinking {
                        text,
                        signature: Some(signature),
                    } if text.is_empty() => out.push(Event::PartSignature(signature)),
                    Part::Thinking { text, .. } if text.is_empty() => {}
                    Part::Thinking { text, signature } => {
                        out.push(Event::Thinking(text));
                        if let Some(signature) = signature {
                            out.push(Event::Signature(signature));
                        }
                    }
                    Part::ToolCall(tool) => {
                        out.push(Event::ToolStart {
                            index: call,
                            id: tool.id,
                            name: tool.name,
                        });
                        out.push(Event::ToolArgs {
                            index: call,
                            fragment: tool.arguments.get().to_owned(),
                        });
                        call += 1;
                    }
                    _ => {}
                }
            }
        }
        if let Some(reason) = candidate.finish_reason {
            let stop = super::finish_reason(&reason, self.calls > 0);
            self.finish(stop, out);
        }
    }

    fn finish(&mut self, stop: ir::StopReason, out: &mut Vec<Event>) {
        self.finished = true;
        out.push(Event::Finish {
            stop,
            stop_sequence: None,
            usage: self.usage,
        });
    }
}
