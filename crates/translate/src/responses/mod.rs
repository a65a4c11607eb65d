//! The OpenAI Responses client surface: its requests into the IR, IR answers and events into
//! Response objects and the Responses event stream.
//!
//! Reasoning round-trips through a reasoning item's `encrypted_content`, which Responses
//! clients (Codex with `store: false`) send back verbatim: it carries the upstream's
//! signature (Anthropic's over the thinking text, which is the item's one summary part, or
//! Gemini's) with its maker's name in front (see [`crate::signature`]), or
//! `keyway-redacted:` and Anthropic's redacted thinking.

pub mod wire;

use serde_json::Value;

use self::wire::{InputContent, InputItem, OutputItem, OutputText, ResponsesRequest, SummaryText};
use crate::error::{Result, TranslateError};
use crate::ir::{self, Event, Part, Reasoning, Role, StopReason};
use crate::json::{StrOr, StrOrObj};
use crate::reasoning::Effort;
use crate::{ResponseContext, UpstreamError, UpstreamFormat, dropped, sse};

use crate::signature::{self, REDACTED};

/// Between a namespace and the name of one of its tools, in the flat name the other formats
/// are given (`multi_agent_v1__spawn_agent`): a character pair tool names allow everywhere.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// A `namespace` tool (a group of function tools, as Codex CLI sends its sub-agent tools):
/// each of its functions becomes a tool of its own, named `{namespace}__{name}`.
fn namespace_tools(
    tool: wire::Tool,
    i: usize,
    target: UpstreamFormat,
    ir: &mut ir::Request,
) -> Result<()> {
    let namespace = tool
        .name
        .ok_or_else(|| TranslateError::invalid(format!("tools[{i}].name"), "missing"))?;
    for (j, inner) in tool.tools.into_iter().enumerate() {
        if inner.kind != "function" {
            return Err(TranslateError::unsupported(
                format!("tools[{i}].tools[{j}].type"),
                format!(
                    "the {target} format has no counterpart of OpenAI's \"{}\" tool",
                    inner.kind
                ),
            ));
        }
        let name = inner.name.ok_or_else(|| {
            TranslateError::invalid(format!("tools[{i}].tools[{j}].name"), "missing")
        })?;
        ir.tools.push(ir::Tool {
            name: format!("{namespace}{NAMESPACE_SEPARATOR}{name}"),
            description: inner.description,
            parameters: inner
                .parameters
                .unwrap_or_else(crate::chat::client::empty_schema),
            strict: inner.strict,
        });
    }
    ir.namespaces.push(namespace);
    Ok(())
}

/// A call's flat name split back into the namespace the client declared and the tool's own
/// name; a name of no declared namespace stays whole.
fn split_namespace(namespaces: &[String], name: String) -> (Option<String>, String) {
    for namespace in namespaces {
        if let Some(rest) = name
            .strip_prefix(namespace.as_str())
            .and_then(|r| r.strip_prefix(NAMESPACE_SEPARATOR))
        {
            return (Some(namespace.clone()), rest.to_owned());
        }
    }
    (None, name)
}

/// A Responses request, for an upstream of format `target`.
pub fn parse_request(body: &[u8], target: UpstreamFormat) -> Result<ir::Request> {
    let r: ResponsesRequest = serde_json::from_slice(body)?;
    let mut ir = ir::Request {
        model: r.model,
        max_tokens: r.max_output_tokens,
        stream: r.stream,
        sampling: ir::Sampling {
            temperature: r.temperature,
            top_p: r.top_p,
            ..ir::Sampling::default()
        },
        parallel_tool_calls: r.parallel_tool_calls,
        user: r.user.or(r.safety_identifier),
        extra: r.extra,
        ..ir::Request::default()
    };
    if let Some(instructions) = r.instructions.filter(|i| !i.is_empty()) {
        ir.system.push(instructions);
    }
    match r.input {
        None => {}
        Some(StrOr::Str(text)) => ir.messages.push(ir::Message {
            role: Role::User,
            parts: vec![Part::Text(text)],
        }),
        Some(StrOr::List(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                input_item(item, i, target, &mut ir)?;
            }
        }
    }
    for (i, tool) in r.tools.into_iter().enumerate() {
        if tool.kind == "namespace" {
            namespace_tools(tool, i, target, &mut ir)?;
            continue;
        }
        if tool.kind != "function" {
            // Codex CLI offers web search unless told not to: say how.
            let hint = if tool.kind.starts_with("web_search") {
                " (Codex CLI: set `web_search = \"disabled\"` in ~/.codex/config.toml)"
            } else {
                ""
            };
            return Err(TranslateError::unsupported(
                format!("tools[{i}].type"),
                format!(
                    "the {target} format has no counterpart of OpenAI's \"{}\" tool{hint}",
                    tool.kind
                ),
            ));
        }
        ir.tools.push(ir::Tool {
            name: tool
                .name
                .ok_or_else(|| TranslateError::invalid(format!("tools[{i}].name"), "missing"))?,
            description: tool.description,
            parameters: tool
                .parameters
                .unwrap_or_else(crate::chat::client::empty_schema),
            strict: tool.strict,
        });
    }
    ir.tool_choice = match r.tool_choice {
        None => None,
        Some(StrOrObj::Str(mode)) => Some(match mode.as_str() {
            "auto" => ir::ToolChoice::Auto,
            "none" => ir::ToolChoice::None,
            "required" => ir::ToolChoice::Required,
            other => {
                return Err(TranslateError::invalid(
                    "tool_choice",
                    format!("unknown tool choice \"{other}\""),
                ));
            }
        }),
        Some(StrOrObj::Obj(choice)) => match (choice.kind.as_str(), choice.name) {
            ("function", Some(name)) => Some(ir::ToolChoice::Tool(name)),
            (kind, _) => {
                return Err(TranslateError::unsupported(
                    "tool_choice.type",
                    format!("the {target} format has no counterpart of a \"{kind}\" tool choice"),
                ));
            }
        },
    };
    if let Some(reasoning) = r.reasoning {
        let show = reasoning.summary.as_deref().is_some_and(|s| s != "none");
        ir.reasoning = match reasoning.effort.as_deref() {
            None if show => Some(Reasoning::On {
                budget: None,
                effort: None,
                show,
            }),
            None => None,
            Some(name) => match Effort::parse(name) {
                Some(Effort::None) => Some(Reasoning::Off),
                Some(effort) => Some(Reasoning::On {
                    budget: None,
                    effort: Some(effort),
                    show,
                }),
                None => {
                    return Err(TranslateError::invalid(
                        "reasoning.effort",
                        format!("unknown effort \"{name}\""),
                    ));
                }
            },
        };
    }
    if let Some(text) = r.text {
        if let Some(format) = text.format {
            let schema = crate::chat::wire::JsonSchema {
                name: format.name.unwrap_or_default(),
                schema: format.schema,
                strict: format.strict,
            };
            ir.output_format = crate::chat::client::output_format(
                "text.format",
                format.kind,
                Some(schema),
                target,
            )?;
        }
        if text.verbosity.is_some() {
            dropped("text.verbosity", target, "an OpenAI-only hint");
        }
    }
    for (key, value) in r.known_other {
        let set = !matches!(value, Value::Null | Value::Bool(false));
        match key.as_str() {
            "previous_response_id" | "conversation" if set => {
                return Err(TranslateError::unsupported(
                    key,
                    format!(
                        "the {target} format keeps no conversation at the provider; send the whole conversation in input"
                    ),
                ));
            }
            "prompt" if set => {
                return Err(TranslateError::unsupported(
                    key,
                    "stored prompts exist only at OpenAI",
                ));
            }
            "background" if set => {
                return Err(TranslateError::unsupported(
                    key,
                    format!("the {target} format has no background responses"),
                ));
            }
            _ => dropped(
                &key,
                target,
                "an OpenAI-only option that does not change the answer",
            ),
        }
    }
    Ok(ir)
}

/// Appends one input item to the conversation. Items of one assistant turn (reasoning,
/// message, function calls) join one assistant message; consecutive function outputs join
/// one user message.
fn input_item(
    item: InputItem,
    i: usize,
    target: UpstreamFormat,
    ir: &mut ir::Request,
) -> Result<()> {
    let kind = item.kind.as_deref().unwrap_or("message");
    let (role, part) = match kind {
        "message" => {
            let role = item.role.as_deref().unwrap_or("user");
            match role {
                "system" | "developer" => {
                    ir.system.push(content_text(item.content, i)?);
                    return Ok(());
                }
                "assistant" => (Role::Assistant, None),
                "user" => (Role::User, None),
                other => {
                    return Err(TranslateError::invalid(
                        format!("input[{i}].role"),
                        format!("unknown role \"{other}\""),
                    ));
                }
            }
        }
        "reasoning" => {
            let text = item
                .summary
                .into_iter()
                .map(|s| s.text)
                .collect::<Vec<_>>()
                .join("\n\n");
            let part = match item.encrypted_content {
                Some(data) if data.starts_with(REDACTED) => {
                    if target != UpstreamFormat::Anthropic {
                        dropped(
                            "input[].encrypted_content",
                            target,
                            "Anthropic's redacted thinking",
                        );
                        return Ok(());
                    }
                    Part::RedactedThinking(data[REDACTED.len()..].to_owned())
                }
                data => Part::Thinking {
                    text,
                    signature: data.and_then(|d| signature::unwrap(d, target, None)),
                },
            };
            (Role::Assistant, Some(part))
        }
        "function_call" => {
            let arguments = ir::arguments(item.arguments.unwrap_or_default()).ok_or_else(|| {
                TranslateError::invalid(format!("input[{i}].arguments"), "not a JSON object")
            })?;
            let call = ir::ToolCall {
                id: item.call_id.ok_or_else(|| {
                    TranslateError::invalid(format!("input[{i}].call_id"), "missing")
                })?,
                name: match item.namespace {
                    Some(namespace) => format!(
                        "{namespace}{NAMESPACE_SEPARATOR}{}",
                        item.name.unwrap_or_default()
                    ),
                    None => item.name.unwrap_or_default(),
                },
                arguments,
            };
            (Role::Assistant, Some(Part::ToolCall(call)))
        }
        "function_call_output" => {
            let id = item
                .call_id
                .ok_or_else(|| TranslateError::invalid(format!("input[{i}].call_id"), "missing"))?;
            let mut content = Vec::new();
            match item.output {
                None => {}
                Some(StrOr::Str(text)) => content.push(ir::ResultPart::Text(text)),
                Some(StrOr::List(parts)) => {
                    for (k, part) in parts.into_iter().enumerate() {
                        let field = || format!("input[{i}].output[{k}]");
                        match part.kind.as_str() {
                            "input_text" | "output_text" => {
                                content.push(ir::ResultPart::Text(part.text.unwrap_or_default()))
                            }
                            "input_image" if target.takes_tool_result_images() => {
                                let url = part.image_url.ok_or_else(|| {
                                    TranslateError::unsupported(
                                        format!("{}.file_id", field()),
                                        "files uploaded to OpenAI exist only there",
                                    )
                                })?;
                                let image = crate::chat::client::image(url, &field, target)?;
                                content.push(ir::ResultPart::Image(image));
                            }
                            other => {
                                return Err(TranslateError::unsupported(
                                    format!("{}.type", field()),
                                    format!(
                                        "a tool result in the {target} format cannot hold \"{other}\""
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            let result = ir::ToolResult {
                id,
                name: None,
                content,
                is_error: false,
            };
            (Role::User, Some(Part::ToolResult(result)))
        }
        other => {
            return Err(TranslateError::unsupported(
                format!("input[{i}].type"),
                format!("the {target} format has no counterpart of \"{other}\" items"),
            ));
        }
    };
    let parts = match part {
        Some(part) => vec![part],
        None => message_parts(item.content, i, target)?,
    };
    let joins = match ir.messages.last() {
        Some(last) if last.role == role => match role {
            Role::Assistant => true,
            // Tool outputs join each other; a user message after them joins too, since the
            // targets want results and the next words in one turn.
            Role::User => last.parts.iter().all(|p| matches!(p, Part::ToolResult(_))),
        },
        _ => false,
    };
    match ir.messages.last_mut() {
        Some(last) if joins => last.parts.extend(parts),
        _ => ir.messages.push(ir::Message { role, parts }),
    }
    Ok(())
}

fn content_text(content: Option<StrOr<InputContent>>, i: usize) -> Result<String> {
    match content {
        None => Ok(String::new()),
        Some(StrOr::Str(text)) => Ok(text),
        Some(StrOr::List(parts)) => {
            let mut text = String::new();
            for (k, part) in parts.into_iter().enumerate() {
                match part.kind.as_str() {
                    "input_text" | "output_text" => text.push_str(&part.text.unwrap_or_default()),
                    other => {
                        return Err(TranslateError::invalid(
                            format!("input[{i}].content[{k}].type"),
                            format!("\"{other}\" parts are not allowed in instructions"),
                        ));
                    }
                }
            }
            Ok(text)
        }
    }
}

fn message_parts(
    content: Option<StrOr<InputContent>>,
    i: usize,
    target: UpstreamFormat,
) -> Result<Vec<Part>> {
    match content {
        None => Ok(Vec::new()),
        Some(StrOr::Str(text)) => Ok(vec![Part::Text(text)]),
        Some(StrOr::List(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (k, part) in parts.into_iter().enumerate() {
                let field = || format!("input[{i}].content[{k}]");
                match part.kind.as_str() {
                    "input_text" | "output_text" => {
                        out.push(Part::Text(part.text.unwrap_or_default()))
                    }
                    "refusal" => out.push(Part::Text(part.refusal.unwrap_or_default())),
                    "input_image" => {
                        let Some(url) = part.image_url else {
                            return Err(TranslateError::unsupported(
                                format!("{}.file_id", field()),
                                "files uploaded to OpenAI exist only there",
                            ));
                        };
                        let url_field = || format!("{}.image_url", field());
                        out.push(Part::Image(crate::chat::client::image(
                            url, &url_field, target,
                        )?));
                    }
                    other => {
                        return Err(TranslateError::unsupported(
                            format!("{}.type", field()),
                            format!(
                                "the {target} format is translated with text and images only, not \"{other}\""
                            ),
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Status and incomplete reason for a stop.
fn status(stop: StopReason) -> (&'static str, Option<wire::Incomplete>) {
    match stop {
        StopReason::MaxTokens | StopReason::ContextWindow => (
            "incomplete",
            Some(wire::Incomplete {
                reason: "max_output_tokens",
            }),
        ),
        StopReason::Refusal => (
            "incomplete",
            Some(wire::Incomplete {
                reason: "content_filter",
            }),
        ),
        _ => ("completed", None),
    }
}

/// A reasoning item for thinking: its text as the one summary part, its signature as
/// `encrypted_content`.
fn reasoning_item(id: String, text: String, signature: Option<String>) -> OutputItem {
    OutputItem::Reasoning {
        id,
        summary: if text.is_empty() {
            Vec::new()
        } else {
            vec![SummaryText {
                kind: "summary_text".into(),
                text,
            }]
        },
        encrypted_content: signature,
        status: "completed",
    }
}

/// A whole Response object.
pub fn render_response(answer: ir::Response, ctx: &ResponseContext) -> Vec<u8> {
    let mut output: Vec<OutputItem> = Vec::new();
    for (n, part) in answer.parts.into_iter().enumerate() {
        match part {
            Part::Text(text) => match output.last_mut() {
                Some(OutputItem::Message { content, .. }) => {
                    if let Some(last) = content.last_mut() {
                        last.text.push_str(&text);
                    }
                }
                _ => output.push(OutputItem::Message {
                    id: format!("msg_{}_{n}", ctx.token),
                    status: "completed",
                    role: "assistant",
                    content: vec![OutputText::new(text)],
                }),
            },
            Part::Thinking { text, signature } => output.push(reasoning_item(
                format!("rs_{}_{n}", ctx.token),
                text,
                signature.map(|s| signature::wrap(&s, ctx.upstream, None)),
            )),
            Part::RedactedThinking(data) => output.push(reasoning_item(
                format!("rs_{}_{n}", ctx.token),
                String::new(),
                Some(format!("{REDACTED}{data}")),
            )),
            Part::ToolCall(call) => {
                let (namespace, name) = split_namespace(&ctx.namespaces, call.name);
                output.push(OutputItem::FunctionCall {
                    id: format!("fc_{}_{n}", ctx.token),
                    call_id: call.id,
                    name,
                    namespace,
                    arguments: call.arguments.get().to_owned(),
                    status: "completed",
                });
            }
            Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    let (status, incomplete) = status(answer.stop);
    let id = format!("resp_{}", ctx.token);
    let response = wire::ResponseObject {
        id: &id,
        object: "response",
        created_at: ctx.created,
        status,
        error: None,
        incomplete_details: incomplete,
        instructions: None,
        model: &ctx.model,
        output: &output,
        parallel_tool_calls: true,
        tool_choice: "auto",
        tools: [],
        usage: Some(wire::Usage::from_ir(&answer.usage)),
    };
    crate::json::to_vec(&response, 1024)
}

/// The item being streamed.
enum Open {
    None,
    Message {
        id: String,
        text: String,
    },
    Reasoning {
        id: String,
        text: String,
        /// The summary part was opened (it is, with the first text).
        summary_open: bool,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        namespace: Option<String>,
        arguments: String,
        /// The upstream's index for the call.
        index: usize,
    },
}

/// Writes IR events as the Responses stream: `response.created`, `response.in_progress`,
/// then each output item (`output_item.added`, its parts and deltas, `.done` events,
/// `output_item.done`), then `response.completed` (or `.incomplete`, or `.failed`) with the
/// whole output. Every event has its `sequence_number`.
///
/// The finished items are kept, because `response.completed` repeats the whole output: the
/// memory this holds grows with the answer, as the grammar requires.
pub struct StreamRenderer {
    id: String,
    model: String,
    created: u64,
    sequence: u64,
    started: bool,
    output: Vec<OutputItem>,
    open: Open,
    usage: ir::Usage,
    /// Whose signatures this stream carries.
    upstream: UpstreamFormat,
    /// The client's tool namespaces, whose calls go back split.
    namespaces: Vec<String>,
}

impl StreamRenderer {
    pub fn new(ctx: &ResponseContext) -> Self {
        StreamRenderer {
            id: format!("resp_{}", ctx.token),
            model: ctx.model.clone(),
            created: ctx.created,
            sequence: 0,
            started: false,
            output: Vec::new(),
            open: Open::None,
            usage: ir::Usage::default(),
            upstream: ctx.upstream,
            namespaces: ctx.namespaces.clone(),
        }
    }

    fn emit<T: serde::Serialize>(&mut self, kind: &str, body: T, out: &mut Vec<u8>) {
        let event = wire::StreamEvent {
            kind,
            sequence_number: self.sequence,
            body,
        };
        self.sequence += 1;
        sse::write_event(out, kind, &event);
    }

    fn response<'a>(
        &'a self,
        status: &'static str,
        incomplete: Option<wire::Incomplete>,
        error: Option<wire::ResponseError<'a>>,
        usage: Option<wire::Usage>,
    ) -> wire::ResponseObject<'a> {
        wire::ResponseObject {
            id: &self.id,
            object: "response",
            created_at: self.created,
            status,
            error,
            incomplete_details: incomplete,
            instructions: None,
            model: &self.model,
            output: &self.output,
            parallel_tool_calls: true,
            tool_choice: "auto",
            tools: [],
            usage,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        for kind in ["response.created", "response.in_progress"] {
            let event = wire::StreamEvent {
                kind,
                sequence_number: self.sequence,
                body: wire::WithResponse {
                    response: self.response("in_progress", None, None, None),
                },
            };
            sse::write_event(out, kind, &event);
            self.sequence += 1;
        }
    }

    fn output_index(&self) -> usize {
        self.output.len()
    }

    fn item_added(&mut self, item: OutputItem, out: &mut Vec<u8>) {
        let index = self.output_index();
        self.emit(
            "response.output_item.added",
            wire::WithItem {
                output_index: index,
                item: &item,
            },
            out,
        );
    }

    fn item_done(&mut self, item: OutputItem, out: &mut Vec<u8>) {
        let index = self.output_index();
        self.emit(
            "response.output_item.done",
            wire::WithItem {
                output_index: index,
                item: &item,
            },
            out,
        );
        self.output.push(item);
    }

    /// Ends the open item with its `.done` events.
    fn close(&mut self, out: &mut Vec<u8>) {
        let index = self.output_index();
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Message { id, text } => {
                self.emit(
                    "response.output_text.done",
                    wire::TextDone {
                        item_id: &id,
                        output_index: index,
                        content_index: 0,
                        text: &text,
                        logprobs: [],
                    },
                    out,
                );
                let part = OutputText::new(text);
                self.emit(
                    "response.content_part.done",
                    wire::ContentPartEvent {
                        item_id: &id,
                        output_index: index,
                        content_index: 0,
                        part: &part,
                    },
                    out,
                );
                let item = OutputItem::Message {
                    id,
                    status: "completed",
                    role: "assistant",
                    content: vec![part],
                };
                self.item_done(item, out);
            }
            Open::Reasoning {
                id,
                text,
                summary_open,
            } => self.close_reasoning(id, text, summary_open, None, out),
            Open::Call {
                id,
                call_id,
                name,
                namespace,
                arguments,
                ..
            } => {
                self.emit(
                    "response.function_call_arguments.done",
                    wire::ArgumentsDone {
                        item_id: &id,
                        output_index: index,
                        name: &name,
                        arguments: &arguments,
                    },
                    out,
                );
                let item = OutputItem::FunctionCall {
                    id,
                    call_id,
                    name,
                    namespace,
                    arguments,
                    status: "completed",
                };
                self.item_done(item, out);
            }
        }
    }

    fn close_reasoning(
        &mut self,
        id: String,
        text: String,
        summary_open: bool,
        signature: Option<String>,
        out: &mut Vec<u8>,
    ) {
        let index = self.output_index();
        if summary_open {
            self.emit(
                "response.reasoning_summary_text.done",
                wire::SummaryDone {
                    item_id: &id,
                    output_index: index,
                    summary_index: 0,
                    text: &text,
                },
                out,
            );
            let part = SummaryText {
                kind: "summary_text".into(),
                text: text.clone(),
            };
            self.emit(
                "response.reasoning_summary_part.done",
                wire::SummaryPartEvent {
                    item_id: &id,
                    output_index: index,
                    summary_index: 0,
                    part: &part,
                },
                out,
            );
        }
        self.item_done(reasoning_item(id, text, signature), out);
    }

    /// A reasoning item that only carries a signature (for the item after it).
    fn signature_item(&mut self, signature: String, out: &mut Vec<u8>) {
        let signature = signature::wrap(&signature, self.upstream, None);
        self.close(out);
        let id = self.item_id("rs");
        self.item_added(reasoning_item(id.clone(), String::new(), None), out);
        self.item_done(reasoning_item(id, String::new(), Some(signature)), out);
    }

    fn item_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}_{}_{}",
            self.id.trim_start_matches("resp_"),
            self.output_index()
        )
    }

    pub fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if let Event::Usage(usage) = event {
            self.usage = usage;
            return;
        }
        self.start(out);
        match event {
            Event::Text(text) => {
                if text.is_empty() {
                    return;
                }
                if !matches!(self.open, Open::Message { .. }) {
                    self.close(out);
                    let id = self.item_id("msg");
                    self.item_added(
                        OutputItem::Message {
                            id: id.clone(),
                            status: "in_progress",
                            role: "assistant",
                            content: Vec::new(),
                        },
                        out,
                    );
                    let index = self.output_index();
                    self.emit(
                        "response.content_part.added",
                        wire::ContentPartEvent {
                            item_id: &id,
                            output_index: index,
                            content_index: 0,
                            part: &OutputText::new(String::new()),
                        },
                        out,
                    );
                    self.open = Open::Message {
                        id,
                        text: String::new(),
                    };
                }
                let index = self.output_index();
                if let Open::Message { id, text: all } = &mut self.open {
                    all.push_str(&text);
                    let id = id.clone();
                    self.emit(
                        "response.output_text.delta",
                        wire::TextDelta {
                            item_id: &id,
                            output_index: index,
                            content_index: 0,
                            delta: &text,
                            logprobs: [],
                        },
                        out,
                    );
                }
            }
            Event::Thinking(text) => {
                if !matches!(self.open, Open::Reasoning { .. }) {
                    self.close(out);
                    let id = self.item_id("rs");
                    self.item_added(reasoning_item(id.clone(), String::new(), None), out);
                    self.open = Open::Reasoning {
                        id,
                        text: String::new(),
                        summary_open: false,
                    };
                }
                let index = self.output_index();
                let Open::Reasoning {
                    id,
                    text: all,
                    summary_open,
                } = &mut self.open
                else {
                    return;
                };
                let id = id.clone();
                all.push_str(&text);
                let first = !*summary_open;
                *summary_open = true;
                if first {
                    let part = SummaryText {
                        kind: "summary_text".into(),
                        text: String::new(),
                    };
                    self.emit(
                        "response.reasoning_summary_part.added",
                        wire::SummaryPartEvent {
                            item_id: &id,
                            output_index: index,
                            summary_index: 0,
                            part: &part,
                        },
                        out,
                    );
                }
                self.emit(
                    "response.reasoning_summary_text.delta",
                    wire::SummaryDelta {
                        item_id: &id,
                        output_index: index,
                        summary_index: 0,
                        delta: &text,
                    },
                    out,
                );
            }
            Event::Signature(signature) => match std::mem::replace(&mut self.open, Open::None) {
                Open::Reasoning {
                    id,
                    text,
                    summary_open,
                } => {
                    let signature = signature::wrap(&signature, self.upstream, None);
                    self.close_reasoning(id, text, summary_open, Some(signature), out)
                }
                other => {
                    self.open = other;
                    self.signature_item(signature, out);
                }
            },
            Event::PartSignature(signature) => self.signature_item(signature, out),
            Event::RedactedThinking(data) => {
                self.close(out);
                let id = self.item_id("rs");
                self.item_added(reasoning_item(id.clone(), String::new(), None), out);
                let item = reasoning_item(id, String::new(), Some(format!("{REDACTED}{data}")));
                self.item_done(item, out);
            }
            Event::ToolStart { index, id, name } => {
                self.close(out);
                let item_id = self.item_id("fc");
                let (namespace, name) = split_namespace(&self.namespaces, name);
                self.item_added(
                    OutputItem::FunctionCall {
                        id: item_id.clone(),
                        call_id: id.clone(),
                        name: name.clone(),
                        namespace: namespace.clone(),
                        arguments: String::new(),
                        status: "in_progress",
                    },
                    out,
                );
                self.open = Open::Call {
                    id: item_id,
                    call_id: id,
                    name,
                    namespace,
                    arguments: String::new(),
                    index,
                };
            }
            Event::ToolArgs { index, fragment } => {
                let output_index = self.output_index();
                let Open::Call {
                    id,
                    arguments,
                    index: open,
                    ..
                } = &mut self.open
                else {
                    tracing::debug!(index, "translate: arguments for a call already closed");
                    return;
                };
                if *open != index || fragment.is_empty() {
                    return;
                }
                arguments.push_str(&fragment);
                let id = id.clone();
                self.emit(
                    "response.function_call_arguments.delta",
                    wire::ArgumentsDelta {
                        item_id: &id,
                        output_index,
                        delta: &fragment,
                    },
                    out,
                );
            }
            Event::Finish { stop, usage, .. } => {
                self.close(out);
                let (status, incomplete) = status(stop);
                let kind = if status == "completed" {
                    "response.completed"
                } else {
                    "response.incomplete"
                };
                let event = wire::StreamEvent {
                    kind,
                    sequence_number: self.sequence,
                    body: wire::WithResponse {
                        response: self.response(
                            status,
                            incomplete,
                            None,
                            Some(wire::Usage::from_ir(&usage)),
                        ),
                    },
                };
                sse::write_event(out, kind, &event);
                self.sequence += 1;
            }
            Event::Error(error) => self.error(&error, out),
            Event::Start | Event::Usage(_) => {}
        }
    }

    fn error(&mut self, error: &UpstreamError, out: &mut Vec<u8>) {
        self.close(out);
        let code = match error.kind {
            crate::ErrorKind::RateLimit => "rate_limit_exceeded",
            crate::ErrorKind::InvalidRequest => "invalid_prompt",
            _ => "server_error",
        };
        let event = wire::StreamEvent {
            kind: "response.failed",
            sequence_number: self.sequence,
            body: wire::WithResponse {
                response: self.response(
                    "failed",
                    None,
                    Some(wire::ResponseError {
                        code,
                        message: &error.message,
                    }),
                    Some(wire::Usage::from_ir(&self.usage)),
                ),
            },
        };
        sse::write_event(out, "response.failed", &event);
        self.sequence += 1;
    }
}
