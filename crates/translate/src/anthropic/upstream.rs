//! The Anthropic upstream format: IR requests into Messages bodies, Messages answers and
//! streams into the IR.

use super::wire::{self, Block, MessageParam, StreamEvent, ThinkingConfig};
use crate::ir::{self, Event, Part, Reasoning, Role};
use crate::json::StrOr;
use crate::reasoning::{self, Effort};
use crate::{UpstreamError, UpstreamFormat, dropped};

const TARGET: UpstreamFormat = UpstreamFormat::Anthropic;

/// `max_tokens` when the client gave none: Anthropic requires one, and 8,192 is within every
/// current model's output limit.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// Anthropic's smallest thinking budget.
const MIN_BUDGET: u32 = 1024;

/// A Messages body for the request.
pub fn render_request(ir: ir::Request) -> Vec<u8> {
    let hint = size_hint(&ir);
    let body = build(ir, false);
    crate::json::to_vec(&body, hint)
}

/// A count_tokens body for the request: only what counts toward the prompt.
pub fn render_count_request(ir: ir::Request) -> Vec<u8> {
    let hint = size_hint(&ir);
    let body = build(ir, true);
    crate::json::to_vec(&body, hint)
}

fn size_hint(ir: &ir::Request) -> usize {
    ir.messages.len() * 256 + ir.tools.len() * 512 + 1024
}

fn build(ir: ir::Request, count: bool) -> wire::UpstreamRequest {
    let mut thinking = thinking(&ir);
    let mut max_tokens = ir.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(budget) = thinking.as_mut().and_then(|t| t.budget_tokens.as_mut()) {
        // The budget must stay below max_tokens, which counts thinking too.
        if *budget >= max_tokens {
            if ir.max_tokens.is_some() {
                *budget = max_tokens.saturating_sub(1);
            } else {
                max_tokens = budget.saturating_add(DEFAULT_MAX_TOKENS);
            }
        }
        if *budget < MIN_BUDGET {
            dropped(
                "reasoning",
                TARGET,
                "max_tokens leaves no room for Anthropic's smallest thinking budget",
            );
            thinking = None;
        }
    }
    let thinking_on = thinking.as_ref().is_some_and(|t| t.kind == "enabled");

    let mut sampling = ir.sampling;
    if thinking_on {
        // With thinking, Anthropic takes temperature 1 only, no top_k and top_p >= 0.95.
        if sampling.temperature.is_some_and(|t| t != 1.0) {
            dropped(
                "temperature",
                TARGET,
                "Anthropic fixes temperature while thinking",
            );
            sampling.temperature = None;
        }
        if sampling.top_k.take().is_some() {
            dropped("top_k", TARGET, "Anthropic takes no top_k while thinking");
        }
        if sampling.top_p.is_some_and(|p| p < 0.95) {
            dropped(
                "top_p",
                TARGET,
                "Anthropic takes top_p >= 0.95 only while thinking",
            );
            sampling.top_p = None;
        }
    }
    if let Some(t) = sampling.temperature.filter(|t| *t > 1.0) {
        tracing::debug!(
            temperature = t,
            "translate: temperature capped at Anthropic's 1.0"
        );
        sampling.temperature = Some(1.0);
    }
    for (field, set) in [
        ("seed", sampling.seed.is_some()),
        ("presence_penalty", sampling.presence_penalty.is_some()),
        ("frequency_penalty", sampling.frequency_penalty.is_some()),
    ] {
        if set {
            dropped(field, TARGET, "Anthropic has no such sampling parameter");
        }
    }

    let system = match ir.system.len() {
        0 => None,
        1 => ir.system.into_iter().next().map(StrOr::Str),
        _ => Some(StrOr::List(
            ir.system.into_iter().map(Block::text).collect(),
        )),
    };
    let messages = messages(ir.messages);
    let tools = ir
        .tools
        .into_iter()
        .map(|tool| {
            if tool.strict.is_some() {
                dropped(
                    "tools[].strict",
                    TARGET,
                    "strict schema adherence is not asked for",
                );
            }
            wire::ToolDef {
                kind: None,
                name: tool.name,
                description: tool.description,
                input_schema: Some(tool.parameters),
                strict: None,
            }
        })
        .collect();
    let tool_choice = tool_choice(ir.tool_choice, ir.parallel_tool_calls);
    let output_config = match ir.output_format {
        Some(ir::OutputFormat::JsonSchema { schema, .. }) => Some(wire::OutputConfig {
            effort: None,
            format: Some(wire::OutputFormat {
                kind: "json_schema".into(),
                schema: Some(schema),
            }),
        }),
        // Refused when the request was read: Anthropic needs a schema.
        Some(ir::OutputFormat::JsonObject) | None => None,
    };

    if count {
        return wire::UpstreamRequest {
            model: ir.model,
            messages,
            system,
            max_tokens: None,
            metadata: None,
            stop_sequences: Vec::new(),
            stream: false,
            temperature: None,
            top_p: None,
            top_k: None,
            thinking,
            tool_choice,
            tools,
            output_config: None,
            extra: serde_json::Map::new(),
        };
    }
    let mut body = wire::UpstreamRequest {
        model: ir.model,
        messages,
        system,
        max_tokens: Some(max_tokens),
        metadata: ir.user.map(|user_id| wire::Metadata {
            user_id: Some(user_id),
        }),
        stop_sequences: ir.stop,
        stream: ir.stream,
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        top_k: sampling.top_k,
        thinking,
        tool_choice,
        tools,
        output_config,
        extra: serde_json::Map::new(),
    };
    body.extra = crate::forward_extra(ir.extra, &body.written(), TARGET);
    body
}

/// The thinking configuration, or `None` when the request does not ask for thinking or
/// Anthropic would refuse it in this request.
fn thinking(ir: &ir::Request) -> Option<ThinkingConfig> {
    let reasoning = ir.reasoning.as_ref()?;
    if *reasoning == Reasoning::Off || reasoning::budget(reasoning) == Some(0) {
        return Some(ThinkingConfig {
            kind: "disabled".into(),
            budget_tokens: None,
            display: None,
        });
    }
    if matches!(
        ir.tool_choice,
        Some(ir::ToolChoice::Required | ir::ToolChoice::Tool(_))
    ) {
        dropped(
            "reasoning",
            TARGET,
            "Anthropic cannot think while a tool call is forced",
        );
        return None;
    }
    // In a tool loop with thinking on, Anthropic wants the last assistant turn to begin with
    // its signed thinking. A conversation that comes from another format has none.
    let last_assistant = ir.messages.iter().rev().find(|m| m.role == Role::Assistant);
    if let Some(message) = last_assistant {
        let calls_tools = message.parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
        let starts_signed = match message.parts.first() {
            Some(Part::Thinking { text, signature }) => !text.is_empty() && signature.is_some(),
            Some(Part::RedactedThinking(_)) => true,
            _ => false,
        };
        if calls_tools && !starts_signed {
            dropped(
                "reasoning",
                TARGET,
                "the last assistant turn has no signed thinking for Anthropic to continue",
            );
            return None;
        }
    }
    let budget = reasoning::budget(reasoning)
        .unwrap_or(Effort::Medium.budget())
        .max(MIN_BUDGET);
    Some(ThinkingConfig {
        kind: "enabled".into(),
        budget_tokens: Some(budget),
        display: None,
    })
}

fn tool_choice(choice: Option<ir::ToolChoice>, parallel: Option<bool>) -> Option<wire::ToolChoice> {
    let disable_parallel = (parallel == Some(false)).then_some(true);
    let (kind, name) = match choice {
        Some(ir::ToolChoice::Auto) => ("auto", None),
        Some(ir::ToolChoice::None) => ("none", None),
        Some(ir::ToolChoice::Required) => ("any", None),
        Some(ir::ToolChoice::Tool(name)) => ("tool", Some(name)),
        None if disable_parallel.is_some() => ("auto", None),
        None => return None,
    };
    Some(wire::ToolChoice {
        kind: kind.into(),
        name,
        disable_parallel_tool_use: disable_parallel.filter(|_| kind != "none"),
    })
}

/// Messages in Anthropic's order: consecutive turns of one role merged, and in a user turn
/// the tool results first (Anthropic wants them right after the calls they answer).
fn messages(messages: Vec<ir::Message>) -> Vec<MessageParam> {
    let mut out: Vec<MessageParam> = Vec::with_capacity(messages.len());
    for message in messages {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let blocks: Vec<Block> = message.parts.into_iter().filter_map(block).collect();
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(MessageParam {
                role: last_role,
                content: StrOr::List(last),
            }) if last_role == role => last.extend(blocks),
            _ => out.push(MessageParam {
                role: role.into(),
                content: StrOr::List(blocks),
            }),
        }
    }
    for message in &mut out {
        if let (true, StrOr::List(blocks)) = (message.role == "user", &mut message.content) {
            // A stable sort: results keep their order, and so does everything else.
            blocks.sort_by_key(|b| b.kind != "tool_result");
        }
    }
    out
}

fn block(part: Part) -> Option<Block> {
    Some(match part {
        Part::Text(text) if text.is_empty() => return None,
        Part::Text(text) => Block::text(text),
        Part::Image(image) => Block {
            kind: "image".into(),
            source: Some(source(image)),
            ..Block::default()
        },
        Part::Thinking {
            text,
            signature: Some(signature),
        } if !text.is_empty() => Block {
            kind: "thinking".into(),
            thinking: Some(text),
            signature: Some(signature),
            ..Block::default()
        },
        Part::Thinking { .. } => {
            dropped(
                "thinking",
                TARGET,
                "reasoning without an Anthropic signature cannot be sent back",
            );
            return None;
        }
        Part::RedactedThinking(data) => Block {
            kind: "redacted_thinking".into(),
            data: Some(data),
            ..Block::default()
        },
        Part::ToolCall(call) => Block {
            kind: "tool_use".into(),
            id: Some(tool_id(call.id)),
            name: Some(call.name),
            input: Some(call.arguments),
            ..Block::default()
        },
        Part::ToolResult(result) => {
            let content = if result.has_image() {
                let blocks = result
                    .content
                    .into_iter()
                    .map(|p| match p {
                        ir::ResultPart::Text(text) => Block::text(text),
                        ir::ResultPart::Image(image) => Block {
                            kind: "image".into(),
                            source: Some(source(image)),
                            ..Block::default()
                        },
                    })
                    .collect();
                StrOr::List(blocks)
            } else {
                StrOr::Str(result.text())
            };
            Block {
                kind: "tool_result".into(),
                tool_use_id: Some(tool_id(result.id)),
                content: Some(content),
                is_error: result.is_error.then_some(true),
                ..Block::default()
            }
        }
    })
}

fn source(image: ir::Image) -> wire::ImageSource {
    match image {
        ir::Image::Base64 { media_type, data } => wire::ImageSource {
            kind: "base64".into(),
            media_type: Some(media_type),
            data: Some(data),
            url: None,
        },
        ir::Image::Url(url) => wire::ImageSource {
            kind: "url".into(),
            url: Some(url),
            ..wire::ImageSource::default()
        },
    }
}

/// Anthropic takes tool ids matching `^[a-zA-Z0-9_-]+$`; other formats allow more (some
/// OpenAI-compatible services use `functions.name:0`). Other characters become `_`, the same
/// way for a call and its result, so they still match.
fn tool_id(id: String) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.is_empty() {
        return "toolu_empty".into();
    }
    if id.chars().all(valid) {
        return id;
    }
    id.chars().map(|c| if valid(c) { c } else { '_' }).collect()
}

/// A whole Messages answer in the IR.
pub fn parse_response(body: &[u8]) -> Option<ir::Response> {
    let message: wire::Message = serde_json::from_slice(body).ok()?;
    let mut usage = ir::Usage::default();
    message.usage.merge_into(&mut usage);
    let parts = message
        .content
        .into_iter()
        .filter_map(answer_part)
        .collect();
    Some(ir::Response {
        parts,
        stop: message
            .stop_reason
            .as_deref()
            .map(super::stop_reason)
            .unwrap_or_default(),
        stop_sequence: message.stop_sequence,
        usage,
    })
}

fn answer_part(block: Block) -> Option<Part> {
    Some(match block.kind.as_str() {
        "text" => Part::Text(block.text.unwrap_or_default()),
        "thinking" => Part::Thinking {
            text: block.thinking.unwrap_or_default(),
            signature: block.signature.filter(|s| !s.is_empty()),
        },
        "redacted_thinking" => Part::RedactedThinking(block.data.unwrap_or_default()),
        "tool_use" => Part::ToolCall(ir::ToolCall {
            id: block.id.unwrap_or_default(),
            name: block.name.unwrap_or_default(),
            arguments: block.input.unwrap_or_else(ir::empty_object),
        }),
        other => {
            tracing::debug!(
                kind = other,
                "translate: skipped an Anthropic block with no counterpart"
            );
            return None;
        }
    })
}

/// The count from a count_tokens answer.
pub fn parse_count(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<wire::CountResponse>(body)
        .ok()
        .map(|c| c.input_tokens)
}

/// Reads Anthropic's stream into IR events.
#[derive(Debug, Default)]
pub struct StreamParser {
    usage: ir::Usage,
    /// Block index of each tool call, in call order (the IR's tool index).
    tool_blocks: Vec<usize>,
}

impl StreamParser {
    pub fn data(&mut self, data: &[u8], out: &mut Vec<Event>) {
        let event: StreamEvent = match serde_json::from_slice(data) {
            Ok(event) => event,
            Err(error) => {
                tracing::debug!(%error, "translate: skipped an unreadable Anthropic event");
                return;
            }
        };
        match event.kind.as_str() {
            "message_start" => {
                if let Some(message) = event.message {
                    message.usage.merge_into(&mut self.usage);
                    out.push(Event::Usage(self.usage));
                }
                out.push(Event::Start);
            }
            "content_block_start" => {
                let (Some(index), Some(block)) = (event.index, event.content_block) else {
                    return;
                };
                match block.kind.as_str() {
                    "text" => {
                        if let Some(text) = block.text.filter(|t| !t.is_empty()) {
                            out.push(Event::Text(text));
                        }
                    }
                    "thinking" => {
                        if let Some(text) = block.thinking.filter(|t| !t.is_empty()) {
                            out.push(Event::Thinking(text));
                        }
                    }
                    "redacted_thinking" => {
                        out.push(Event::RedactedThinking(block.data.unwrap_or_default()))
                    }
                    "tool_use" => {
                        let ordinal = self.tool_blocks.len();
                        self.tool_blocks.push(index);
                        out.push(Event::ToolStart {
                            index: ordinal,
                            id: block.id.unwrap_or_default(),
                            name: block.name.unwrap_or_default(),
                        });
                        if let Some(input) = block.input.filter(|i| i.get().trim() != "{}") {
                            out.push(Event::ToolArgs {
                                index: ordinal,
                                fragment: input.get().to_owned(),
                            });
                        }
                    }
                    other => {
                        tracing::debug!(
                            kind = other,
                            "translate: skipped an Anthropic block with no counterpart"
                        )
                    }
                }
            }
            "content_block_delta" => {
                let Some(delta) = event.delta else { return };
                match delta.kind.as_deref() {
                    Some("text_delta") => out.push(Event::Text(delta.text.unwrap_or_default())),
                    Some("thinking_delta") => {
                        out.push(Event::Thinking(delta.thinking.unwrap_or_default()))
                    }
                    Some("signature_delta") => {
                        out.push(Event::Signature(delta.signature.unwrap_or_default()))
                    }
                    Some("input_json_delta") => {
                        let block = event.index.unwrap_or(0);
                        if let Some(ordinal) = self.tool_blocks.iter().position(|b| *b == block) {
                            out.push(Event::ToolArgs {
                                index: ordinal,
                                fragment: delta.partial_json.unwrap_or_default(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(usage) = &event.usage {
                    usage.merge_into(&mut self.usage);
                }
                let delta = event.delta.unwrap_or_default();
                out.push(Event::Finish {
                    stop: delta
                        .stop_reason
                        .as_deref()
                        .map(super::stop_reason)
                        .unwrap_or_default(),
                    stop_sequence: delta.stop_sequence,
                    usage: self.usage,
                });
            }
            "error" => out.push(Event::Error(UpstreamError::parse(TARGET, 0, data))),
            // content_block_stop, message_stop and ping carry nothing more.
            _ => {}
        }
    }
}
