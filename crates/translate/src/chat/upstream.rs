//! The `openai` upstream format: IR requests into Chat Completions bodies, completions and
//! chunk streams into the IR.

use super::wire::{self, ContentPart, Message};
use crate::ir::{self, Event, Part, Role, StopReason};
use crate::json::StrOr;
use crate::reasoning::{self, Effort};
use crate::{UpstreamError, UpstreamFormat, dropped};

const TARGET: UpstreamFormat = UpstreamFormat::OpenAi;

/// A Chat Completions body for the request. `legacy_max_tokens`: write `max_tokens` instead
/// of `max_completion_tokens`.
pub fn render_request(ir: ir::Request, legacy_max_tokens: bool) -> Vec<u8> {
    let hint = ir.messages.len() * 256 + ir.tools.len() * 512 + 1024;
    let mut messages = Vec::with_capacity(ir.messages.len() + 1);
    if !ir.system.is_empty() {
        messages.push(Message {
            role: "system".into(),
            content: Some(StrOr::Str(ir.system.join("\n\n"))),
            ..Message::default()
        });
    }
    for message in ir.messages {
        match message.role {
            Role::User => user_messages(message.parts, &mut messages),
            Role::Assistant => messages.push(assistant_message(message.parts)),
        }
    }
    if ir.sampling.top_k.is_some() {
        dropped("top_k", TARGET, "OpenAI has no top_k");
    }
    let reasoning_effort = match ir.reasoning.as_ref().and_then(reasoning::effort) {
        None => None,
        Some(Effort::None) => {
            // OpenAI's models differ in whether they can stop reasoning; its default is
            // the closest that every model accepts.
            dropped(
                "reasoning",
                TARGET,
                "turning reasoning off is left to the model's default",
            );
            None
        }
        Some(effort) => Some(effort.openai()),
    };
    let has_tools = !ir.tools.is_empty();
    let tools = ir
        .tools
        .into_iter()
        .map(|tool| wire::ToolDef {
            kind: "function".into(),
            function: Some(wire::FunctionDef {
                name: tool.name,
                description: tool.description,
                parameters: Some(tool.parameters),
                strict: tool.strict,
            }),
        })
        .collect();
    let tool_choice = ir.tool_choice.map(|choice| match choice {
        ir::ToolChoice::Auto => wire::StrOrObjOut::Mode("auto"),
        ir::ToolChoice::None => wire::StrOrObjOut::Mode("none"),
        ir::ToolChoice::Required => wire::StrOrObjOut::Mode("required"),
        ir::ToolChoice::Tool(name) => wire::StrOrObjOut::Function(wire::ToolChoiceObject {
            kind: "function".into(),
            function: Some(wire::NamedFunction { name }),
        }),
    });
    let response_format = ir.output_format.map(|format| match format {
        ir::OutputFormat::JsonObject => wire::ResponseFormat {
            kind: "json_object".into(),
            json_schema: None,
        },
        ir::OutputFormat::JsonSchema {
            name,
            schema,
            strict,
        } => wire::ResponseFormat {
            kind: "json_schema".into(),
            json_schema: Some(wire::JsonSchema {
                name: name.unwrap_or_else(|| "response".into()),
                schema: Some(schema),
                strict,
            }),
        },
    });
    let mut body = wire::UpstreamRequest {
        model: ir.model,
        messages,
        max_tokens: ir.max_tokens.filter(|_| legacy_max_tokens),
        max_completion_tokens: ir.max_tokens.filter(|_| !legacy_max_tokens),
        temperature: ir.sampling.temperature,
        top_p: ir.sampling.top_p,
        stop: ir.stop,
        stream: ir.stream,
        // Always ask for usage, so that the client's answer can carry it.
        stream_options: ir.stream.then_some(wire::UpstreamStreamOptions {
            include_usage: true,
        }),
        tools,
        tool_choice,
        parallel_tool_calls: ir.parallel_tool_calls.filter(|_| has_tools),
        reasoning_effort,
        response_format,
        seed: ir.sampling.seed,
        presence_penalty: ir.sampling.presence_penalty,
        frequency_penalty: ir.sampling.frequency_penalty,
        user: ir.user,
        extra: serde_json::Map::new(),
    };
    body.extra = crate::forward_extra(ir.extra, &body.written(), TARGET);
    crate::json::to_vec(&body, hint)
}

/// A user turn: its tool results first, as `tool` messages (they must follow the assistant's
/// calls), then the rest as one user message.
fn user_messages(parts: Vec<Part>, out: &mut Vec<Message>) {
    let mut content: Vec<ContentPart> = Vec::new();
    for part in parts {
        match part {
            Part::ToolResult(result) => {
                // Images in results were refused when the request was read. OpenAI's tool
                // message has no error flag; the text says it.
                let text = result.text();
                let text = if result.is_error && !text.starts_with("Error") {
                    format!("Error: {text}")
                } else {
                    text
                };
                out.push(Message {
                    role: "tool".into(),
                    content: Some(StrOr::Str(text)),
                    tool_call_id: Some(result.id),
                    ..Message::default()
                });
            }
            Part::Text(text) => content.push(ContentPart {
                kind: "text".into(),
                text: Some(text),
                ..ContentPart::default()
            }),
            Part::Image(image) => content.push(ContentPart {
                kind: "image_url".into(),
                image_url: Some(wire::ImageUrl {
                    url: super::image_url(image),
                    detail: None,
                }),
                ..ContentPart::default()
            }),
            Part::Thinking { .. } | Part::RedactedThinking(_) | Part::ToolCall(_) => {}
        }
    }
    if content.is_empty() {
        return;
    }
    let content = if content.len() == 1 && content[0].kind == "text" {
        StrOr::Str(content.pop().and_then(|p| p.text).unwrap_or_default())
    } else {
        StrOr::List(content)
    };
    out.push(Message {
        role: "user".into(),
        content: Some(content),
        ..Message::default()
    });
}

fn assistant_message(parts: Vec<Part>) -> Message {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut dropped_thinking = false;
    for part in parts {
        match part {
            Part::Text(t) => text.push_str(&t),
            Part::ToolCall(call) => calls.push(wire::ToolCall {
                id: call.id,
                kind: "function".into(),
                function: wire::FunctionCall {
                    name: call.name,
                    arguments: call.arguments.get().to_owned(),
                },
            }),
            Part::Thinking { .. } | Part::RedactedThinking(_) => dropped_thinking = true,
            Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    if dropped_thinking {
        dropped(
            "thinking",
            TARGET,
            "OpenAI takes no reasoning back in the conversation",
        );
    }
    Message {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(StrOr::Str(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..Message::default()
    }
}

/// Reasoning text from an OpenAI-compatible answer: `reasoning_content` (DeepSeek, vLLM) or
/// a string `reasoning` (OpenRouter).
fn reasoning_text(content: Option<String>, other: Option<serde_json::Value>) -> Option<String> {
    content.or(match other {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    })
}

/// A whole chat completion in the IR.
pub fn parse_response(body: &[u8]) -> Option<ir::Response> {
    let completion: wire::Completion = serde_json::from_slice(body).ok()?;
    let choice = completion.choices.into_iter().next()?;
    let message = choice.message;
    let mut parts = Vec::new();
    if let Some(text) =
        reasoning_text(message.reasoning_content, message.reasoning).filter(|t| !t.is_empty())
    {
        parts.push(Part::Thinking {
            text,
            signature: None,
        });
    }
    let text = match message.content {
        None => String::new(),
        Some(StrOr::Str(text)) => text,
        Some(StrOr::List(parts)) => parts.into_iter().filter_map(|p| p.text).collect(),
    };
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    let refusal = message.refusal.filter(|r| !r.is_empty());
    let refused = refusal.is_some();
    if let Some(refusal) = refusal {
        parts.push(Part::Text(refusal));
    }
    let calls = message.tool_calls.unwrap_or_default();
    let called = !calls.is_empty();
    for (n, call) in calls.into_iter().enumerate() {
        let id = if call.id.is_empty() {
            format!("call_{n}")
        } else {
            call.id
        };
        // A model can write broken arguments; the client gets them as an empty object
        // rather than an unreadable answer.
        let arguments = ir::arguments(call.function.arguments).unwrap_or_else(ir::empty_object);
        parts.push(Part::ToolCall(ir::ToolCall {
            id,
            name: call.function.name,
            arguments,
        }));
    }
    let stop = if refused {
        StopReason::Refusal
    } else {
        super::finish_reason(choice.finish_reason.as_deref().unwrap_or("stop"), called)
    };
    Some(ir::Response {
        parts,
        stop,
        stop_sequence: None,
        usage: completion.usage.map(|u| u.to_ir()).unwrap_or_default(),
    })
}

/// Reads a chunk stream into IR events. The finish reason arrives before the usage (which
/// comes in a chunk of its own when asked for), so the finish is held until the usage, the
/// `[DONE]` or the end of the body.
#[derive(Debug, Default)]
pub struct StreamParser {
    /// The first chunk came ([`Event::Start`] sent).
    begun: bool,
    /// Upstream indexes of the tool calls started.
    started: Vec<usize>,
    finish: Option<String>,
    refused: bool,
    usage: Option<ir::Usage>,
    finished: bool,
}

impl StreamParser {
    pub fn data(&mut self, data: &[u8], out: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        if data == b"[DONE]" {
            self.end(out);
            return;
        }
        let chunk: wire::Chunk = match serde_json::from_slice(data) {
            Ok(chunk) => chunk,
            Err(error) => {
                tracing::debug!(%error, "translate: skipped an unreadable chat chunk");
                return;
            }
        };
        if chunk.error.is_some() {
            out.push(Event::Error(UpstreamError::parse(TARGET, 0, data)));
            self.finished = true;
            return;
        }
        if !self.begun {
            // The opening chunk (the role, no text yet) opens the client's stream.
            self.begun = true;
            out.push(Event::Start);
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.to_ir());
        }
        if let Some(choice) = chunk.choices.into_iter().next() {
            let delta = choice.delta;
            if let Some(text) =
                reasoning_text(delta.reasoning_content, delta.reasoning).filter(|t| !t.is_empty())
            {
                out.push(Event::Thinking(text));
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.push(Event::Text(text));
            }
            if let Some(refusal) = delta.refusal.filter(|t| !t.is_empty()) {
                self.refused = true;
                out.push(Event::Text(refusal));
            }
            for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let index = call.index.unwrap_or(position);
                let function = call.function.unwrap_or_default();
                if !self.started.contains(&index) {
                    self.started.push(index);
                    out.push(Event::ToolStart {
                        index,
                        id: call
                            .id
                            .filter(|id| !id.is_empty())
                            .unwrap_or_else(|| format!("call_{index}")),
                        name: function.name.unwrap_or_default(),
                    });
                }
                if let Some(fragment) = function.arguments.filter(|a| !a.is_empty()) {
                    out.push(Event::ToolArgs { index, fragment });
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(reason);
            }
        }
        if self.finish.is_some() && self.usage.is_some() {
            self.end(out);
        }
    }

    /// The stream ended (`[DONE]` or the body's end): the held finish goes out.
    pub fn end(&mut self, out: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        let Some(reason) = self.finish.take() else {
            return;
        };
        self.finished = true;
        let stop = if self.refused {
            StopReason::Refusal
        } else {
            super::finish_reason(&reason, !self.started.is_empty())
        };
        out.push(Event::Finish {
            stop,
            stop_sequence: None,
            usage: self.usage.unwrap_or_default(),
        });
    }
}
