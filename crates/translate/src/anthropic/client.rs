//! The Anthropic Messages client surface: its requests into the IR, IR answers and events
//! into its JSON and its stream grammar.

use serde_json::Value;

use super::wire::{self, Block, MessagesRequest};
use crate::error::{Result, TranslateError};
use crate::ir::{self, Event, Part, Reasoning, Role, StopReason};
use crate::json::StrOr;
use crate::reasoning::Effort;
use crate::signature;
use crate::sse;
use crate::{ResponseContext, UpstreamError, UpstreamFormat, dropped};

/// A Messages (or count_tokens) request, for an upstream of format `target`.
pub fn parse_request(body: &[u8], target: UpstreamFormat) -> Result<ir::Request> {
    let r: MessagesRequest = serde_json::from_slice(body)?;
    let mut ir = ir::Request {
        model: r.model,
        max_tokens: r.max_tokens,
        stop: r.stop_sequences,
        stream: r.stream,
        sampling: ir::Sampling {
            temperature: r.temperature,
            top_p: r.top_p,
            top_k: r.top_k,
            ..ir::Sampling::default()
        },
        user: r.metadata.and_then(|m| m.user_id),
        extra: r.extra,
        ..ir::Request::default()
    };
    if let Some(system) = r.system {
        ir.system = system_text(system, "system")?;
    }
    ir.messages.reserve(r.messages.len());
    for (i, message) in r.messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            // Claude Code sends system messages between turns (its environment notes); the
            // other formats have a system prompt only at the top, where they join it, as a
            // Chat client's later system messages do.
            "system" => {
                let text = system_text(message.content, &format!("messages[{i}].content"))?;
                ir.system.extend(text);
                continue;
            }
            other => {
                return Err(TranslateError::invalid(
                    format!("messages[{i}].role"),
                    format!("unknown role \"{other}\""),
                ));
            }
        };
        let parts = match message.content {
            StrOr::Str(text) => vec![Part::Text(text)],
            StrOr::List(blocks) => {
                let mut parts = Vec::with_capacity(blocks.len());
                for (j, block) in blocks.into_iter().enumerate() {
                    let path = || format!("messages[{i}].content[{j}]");
                    parts.push(part(block, &path, target)?);
                }
                parts
            }
        };
        ir.messages.push(ir::Message { role, parts });
    }
    for (i, tool) in r.tools.into_iter().enumerate() {
        if let Some(kind) = tool.kind.as_deref().filter(|k| *k != "custom") {
            return Err(TranslateError::unsupported(
                format!("tools[{i}].type"),
                format!(
                    "the {target} format has no counterpart of Anthropic's own tool \"{kind}\""
                ),
            ));
        }
        let Some(parameters) = tool.input_schema else {
            return Err(TranslateError::invalid(
                format!("tools[{i}].input_schema"),
                "a tool needs an input schema",
            ));
        };
        ir.tools.push(ir::Tool {
            name: tool.name,
            description: tool.description,
            parameters,
            strict: tool.strict,
        });
    }
    if let Some(choice) = r.tool_choice {
        if choice.disable_parallel_tool_use == Some(true) {
            ir.parallel_tool_calls = Some(false);
        }
        ir.tool_choice = Some(match choice.kind.as_str() {
            "auto" => ir::ToolChoice::Auto,
            "any" => ir::ToolChoice::Required,
            "none" => ir::ToolChoice::None,
            "tool" => ir::ToolChoice::Tool(choice.name.ok_or_else(|| {
                TranslateError::invalid("tool_choice.name", "a tool choice of type tool names it")
            })?),
            other => {
                return Err(TranslateError::invalid(
                    "tool_choice.type",
                    format!("unknown tool choice \"{other}\""),
                ));
            }
        });
    }
    let effort = r
        .output_config
        .as_ref()
        .and_then(|c| c.effort.as_deref())
        .and_then(Effort::parse);
    ir.reasoning = match r.thinking {
        Some(t) => {
            let show = t.display.as_deref() != Some("omitted");
            match t.kind.as_str() {
                "enabled" => Some(Reasoning::On {
                    budget: t.budget_tokens,
                    effort,
                    show,
                }),
                "adaptive" => Some(Reasoning::On {
                    budget: None,
                    effort,
                    show,
                }),
                "disabled" => Some(Reasoning::Off),
                other => {
                    return Err(TranslateError::invalid(
                        "thinking.type",
                        format!("unknown thinking type \"{other}\""),
                    ));
                }
            }
        }
        None => effort.map(|effort| Reasoning::On {
            budget: None,
            effort: Some(effort),
            show: false,
        }),
    };
    if let Some(format) = r.output_config.and_then(|c| c.format) {
        if format.kind != "json_schema" {
            return Err(TranslateError::invalid(
                "output_config.format.type",
                format!("unknown output format \"{}\"", format.kind),
            ));
        }
        let schema = format.schema.ok_or_else(|| {
            TranslateError::invalid("output_config.format.schema", "a JSON schema is required")
        })?;
        ir.output_format = Some(ir::OutputFormat::JsonSchema {
            name: None,
            schema,
            strict: Some(true),
        });
    }
    for (key, value) in r.known_other {
        let empty = match &value {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        match key.as_str() {
            "mcp_servers" | "container" if !empty => {
                return Err(TranslateError::unsupported(
                    key.as_str(),
                    format!(
                        "Anthropic's server-side {key} have no counterpart in the {target} format"
                    ),
                ));
            }
            _ => dropped(&key, target, "an Anthropic service option"),
        }
    }
    Ok(ir)
}

/// `system` as text pieces.
/// The text of a system prompt (`path` names it for errors): a string or text blocks.
fn system_text(system: StrOr<Block>, path: &str) -> Result<Vec<String>> {
    match system {
        StrOr::Str(text) => Ok(vec![text]),
        StrOr::List(blocks) => blocks
            .into_iter()
            .enumerate()
            .map(|(i, block)| match (block.kind.as_str(), block.text) {
                ("text", Some(text)) => Ok(text),
                (kind, _) => Err(TranslateError::invalid(
                    format!("{path}[{i}].type"),
                    format!("a system prompt holds text blocks, not \"{kind}\""),
                )),
            })
            .collect(),
    }
}

fn part(block: Block, path: &dyn Fn() -> String, target: UpstreamFormat) -> Result<Part> {
    match block.kind.as_str() {
        "text" => Ok(Part::Text(block.text.unwrap_or_default())),
        "image" => Ok(Part::Image(image(block.source, path, target)?)),
        "tool_use" => {
            let id = block
                .id
                .ok_or_else(|| TranslateError::invalid(format!("{}.id", path()), "missing"))?;
            let name = block
                .name
                .ok_or_else(|| TranslateError::invalid(format!("{}.name", path()), "missing"))?;
            Ok(Part::ToolCall(ir::ToolCall {
                id,
                name,
                arguments: block.input.unwrap_or_else(ir::empty_object),
            }))
        }
        "tool_result" => {
            let id = block.tool_use_id.ok_or_else(|| {
                TranslateError::invalid(format!("{}.tool_use_id", path()), "missing")
            })?;
            let mut content = Vec::new();
            match block.content {
                None => {}
                Some(StrOr::Str(text)) => content.push(ir::ResultPart::Text(text)),
                Some(StrOr::List(blocks)) => {
                    for (k, inner) in blocks.into_iter().enumerate() {
                        let inner_path = || format!("{}.content[{k}]", path());
                        match inner.kind.as_str() {
                            "text" => {
                                content.push(ir::ResultPart::Text(inner.text.unwrap_or_default()))
                            }
                            "image" if target.takes_tool_result_images() => content.push(
                                ir::ResultPart::Image(image(inner.source, &inner_path, target)?),
                            ),
                            "image" => {
                                return Err(TranslateError::unsupported(
                                    inner_path(),
                                    format!("a tool result in the {target} format holds text only"),
                                ));
                            }
                            other => {
                                return Err(TranslateError::unsupported(
                                    format!("{}.type", inner_path()),
                                    format!(
                                        "the {target} format has no counterpart of a \"{other}\" tool result"
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            Ok(Part::ToolResult(ir::ToolResult {
                id,
                name: None,
                content,
                is_error: block.is_error.unwrap_or(false),
            }))
        }
        "thinking" => Ok(Part::Thinking {
            text: block.thinking.unwrap_or_default(),
            signature: block
                .signature
                .and_then(|s| signature::unwrap(s, target, Some(UpstreamFormat::Anthropic))),
        }),
        "redacted_thinking" => Ok(Part::RedactedThinking(block.data.unwrap_or_default())),
        other => Err(TranslateError::unsupported(
            format!("{}.type", path()),
            format!("the {target} format has no counterpart of the \"{other}\" content block"),
        )),
    }
}

fn image(
    source: Option<wire::ImageSource>,
    path: &dyn Fn() -> String,
    target: UpstreamFormat,
) -> Result<ir::Image> {
    let source =
        source.ok_or_else(|| TranslateError::invalid(format!("{}.source", path()), "missing"))?;
    match source.kind.as_str() {
        "base64" => Ok(ir::Image::Base64 {
            media_type: source.media_type.ok_or_else(|| {
                TranslateError::invalid(format!("{}.source.media_type", path()), "missing")
            })?,
            data: source.data.unwrap_or_default(),
        }),
        "url" if !target.takes_image_urls() => Err(TranslateError::unsupported(
            format!("{}.source.url", path()),
            format!(
                "the {target} format takes images as inline data only, and Keyway does not fetch URLs"
            ),
        )),
        "url" => Ok(ir::Image::Url(source.url.unwrap_or_default())),
        other => Err(TranslateError::unsupported(
            format!("{}.source.type", path()),
            format!("an image source of type \"{other}\" exists only at Anthropic"),
        )),
    }
}

/// A content block for an answer part from `upstream`.
fn block(part: Part, upstream: UpstreamFormat) -> Option<Block> {
    Some(match part {
        Part::Text(text) => Block::text(text),
        Part::Thinking { text, signature } => Block {
            kind: "thinking".into(),
            thinking: Some(text),
            signature: Some(
                signature
                    .map(|s| signature::wrap(&s, upstream, Some(UpstreamFormat::Anthropic)))
                    .unwrap_or_default(),
            ),
            ..Block::default()
        },
        Part::RedactedThinking(data) => Block {
            kind: "redacted_thinking".into(),
            data: Some(data),
            ..Block::default()
        },
        Part::ToolCall(call) => Block {
            kind: "tool_use".into(),
            id: Some(call.id),
            name: Some(call.name),
            input: Some(call.arguments),
            ..Block::default()
        },
        Part::Image(_) | Part::ToolResult(_) => return None,
    })
}

/// A whole Messages answer.
pub fn render_response(answer: ir::Response, ctx: &ResponseContext) -> Vec<u8> {
    let message = wire::Message {
        id: format!("msg_{}", ctx.token),
        kind: "message".into(),
        role: "assistant".into(),
        model: ctx.model.clone(),
        content: answer
            .parts
            .into_iter()
            .filter_map(|part| block(part, ctx.upstream))
            .collect(),
        stop_reason: Some(super::stop_name(answer.stop).into()),
        stop_sequence: answer.stop_sequence,
        usage: wire::Usage::from_ir(&answer.usage),
    };
    crate::json::to_vec(&message, 1024)
}

/// `{"input_tokens": n}`.
pub fn render_count(tokens: u64) -> Vec<u8> {
    crate::json::to_vec(
        &wire::CountResponse {
            input_tokens: tokens,
        },
        32,
    )
}

/// The block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    /// A tool call, by the upstream's index for it.
    Tool(usize),
}

/// Writes IR events as Anthropic's stream: `message_start`, then for each block
/// `content_block_start`, its deltas and `content_block_stop`, then `message_delta` (stop
/// reason and usage) and `message_stop`.
pub struct StreamRenderer {
    id: String,
    model: String,
    started: bool,
    open: Open,
    /// Index of the open block (and the next block's, once it is closed).
    index: usize,
    /// The upstream's tool-call index → the block it streams into.
    tools: Vec<(usize, usize)>,
    usage: ir::Usage,
    /// Whose signatures this stream carries.
    upstream: UpstreamFormat,
}

impl StreamRenderer {
    pub fn new(ctx: &ResponseContext) -> Self {
        StreamRenderer {
            id: format!("msg_{}", ctx.token),
            model: ctx.model.clone(),
            started: false,
            open: Open::None,
            index: 0,
            tools: Vec::new(),
            usage: ir::Usage::default(),
            upstream: ctx.upstream,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let start = wire::MessageStart {
            kind: "message_start",
            message: wire::StartMessage {
                id: &self.id,
                kind: "message",
                role: "assistant",
                model: &self.model,
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage: wire::Usage::from_ir(&self.usage),
            },
        };
        sse::write_event(out, "message_start", &start);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open == Open::None {
            return;
        }
        let stop = wire::BlockStop {
            kind: "content_block_stop",
            index: self.index,
        };
        sse::write_event(out, "content_block_stop", &stop);
        self.open = Open::None;
        self.index += 1;
    }

    fn open(&mut self, open: Open, block: wire::StartBlock<'_>, out: &mut Vec<u8>) {
        let start = wire::BlockStart {
            kind: "content_block_start",
            index: self.index,
            content_block: block,
        };
        sse::write_event(out, "content_block_start", &start);
        self.open = open;
    }

    fn delta(&self, index: usize, delta: wire::DeltaOut<'_>, out: &mut Vec<u8>) {
        let event = wire::BlockDelta {
            kind: "content_block_delta",
            index,
            delta,
        };
        sse::write_event(out, "content_block_delta", &event);
    }

    pub fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if let Event::Error(error) = &event {
            self.error(error, out);
            return;
        }
        if let Event::Usage(usage) = &event {
            self.usage = *usage;
            return;
        }
        self.start(out);
        let is_part_signature = matches!(event, Event::PartSignature(_));
        match event {
            Event::Text(text) => {
                if text.is_empty() {
                    return;
                }
                if self.open != Open::Text {
                    self.close(out);
                    self.open(Open::Text, wire::StartBlock::Text { text: "" }, out);
                }
                self.delta(self.index, wire::DeltaOut::Text { text: &text }, out);
            }
            Event::Thinking(text) => {
                if self.open != Open::Thinking {
                    self.close(out);
                    self.open(Open::Thinking, thinking_start(), out);
                }
                self.delta(
                    self.index,
                    wire::DeltaOut::Thinking { thinking: &text },
                    out,
                );
            }
            Event::Signature(signature) | Event::PartSignature(signature) => {
                // A signature for what follows (or with no thinking open) travels on an
                // empty thinking block of its own.
                if self.open != Open::Thinking || is_part_signature {
                    self.close(out);
                    self.open(Open::Thinking, thinking_start(), out);
                }
                let signature =
                    signature::wrap(&signature, self.upstream, Some(UpstreamFormat::Anthropic));
                self.delta(
                    self.index,
                    wire::DeltaOut::Signature {
                        signature: &signature,
                    },
                    out,
                );
                self.close(out);
            }
            Event::RedactedThinking(data) => {
                self.close(out);
                self.open(
                    Open::Thinking,
                    wire::StartBlock::RedactedThinking { data: &data },
                    out,
                );
                self.close(out);
            }
            Event::ToolStart { index, id, name } => {
                self.close(out);
                self.open(
                    Open::Tool(index),
                    wire::StartBlock::ToolUse {
                        id: &id,
                        name: &name,
                        input: wire::EmptyObject,
                    },
                    out,
                );
                self.tools.push((index, self.index));
            }
            Event::ToolArgs { index, fragment } => {
                if fragment.is_empty() {
                    return;
                }
                // Upstreams stream one call after another; a fragment for a call whose block
                // is already closed still goes to that block, which is where the SDKs
                // accumulate it.
                let Some(&(_, block)) = self.tools.iter().rev().find(|(i, _)| *i == index) else {
                    tracing::debug!(index, "translate: arguments for a tool call never started");
                    return;
                };
                self.delta(
                    block,
                    wire::DeltaOut::InputJson {
                        partial_json: &fragment,
                    },
                    out,
                );
            }
            Event::Finish {
                stop,
                stop_sequence,
                usage,
            } => {
                self.close(out);
                let delta = wire::MessageDelta {
                    kind: "message_delta",
                    delta: wire::StopDelta {
                        stop_reason: super::stop_name(stop),
                        stop_sequence: stop_sequence
                            .as_deref()
                            .filter(|_| stop == StopReason::StopSequence),
                    },
                    usage: wire::Usage::from_ir(&usage),
                };
                sse::write_event(out, "message_delta", &delta);
                sse::write_event(
                    out,
                    "message_stop",
                    &wire::TypeOnly {
                        kind: "message_stop",
                    },
                );
            }
            Event::Start | Event::Usage(_) | Event::Error(_) => {}
        }
    }

    fn error(&mut self, error: &UpstreamError, out: &mut Vec<u8>) {
        sse::write_event(out, "error", &error.anthropic_event());
    }
}

fn thinking_start() -> wire::StartBlock<'static> {
    wire::StartBlock::Thinking {
        thinking: "",
        signature: "",
    }
}
