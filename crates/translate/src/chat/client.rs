//! The Chat Completions client surface: its requests into the IR, IR answers and events
//! into chat completions and chunks.

use serde_json::Value;

use super::wire::{self, ChatRequest, ContentPart};
use crate::error::{Result, TranslateError};
use crate::ir::{self, Event, Part, Reasoning, Role};
use crate::json::{StrOr, StrOrObj};
use crate::reasoning::Effort;
use crate::{ResponseContext, UpstreamError, UpstreamFormat, dropped, sse};

/// A Chat Completions request, for an upstream of format `target`.
pub fn parse_request(body: &[u8], target: UpstreamFormat) -> Result<ir::Request> {
    let r: ChatRequest = serde_json::from_slice(body)?;
    if r.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported(
            "n",
            format!("the {target} format gives one choice per request"),
        ));
    }
    let mut ir = ir::Request {
        model: r.model,
        max_tokens: r.max_completion_tokens.or(r.max_tokens),
        stream: r.stream,
        include_usage: r
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        stop: match r.stop {
            Some(StrOr::Str(stop)) => vec![stop],
            Some(StrOr::List(stops)) => stops,
            None => Vec::new(),
        },
        sampling: ir::Sampling {
            temperature: r.temperature,
            top_p: r.top_p,
            top_k: None,
            seed: r.seed,
            presence_penalty: r.presence_penalty,
            frequency_penalty: r.frequency_penalty,
        },
        parallel_tool_calls: r.parallel_tool_calls,
        user: r.user.or(r.safety_identifier),
        extra: r.extra,
        ..ir::Request::default()
    };

    for (i, message) in r.messages.into_iter().enumerate() {
        match message.role.as_str() {
            // Only the top has a system prompt in the other formats: a system message later
            // in the conversation joins it there.
            "system" | "developer" => {
                let text = text_of(message.content, &|| format!("messages[{i}].content"))?;
                ir.system.push(text);
            }
            "user" => {
                let parts = user_parts(message.content, i, target)?;
                ir.messages.push(ir::Message {
                    role: Role::User,
                    parts,
                });
            }
            "assistant" => {
                if message.function_call.is_some_and(|f| !f.is_null()) {
                    return Err(legacy_functions(format!("messages[{i}].function_call")));
                }
                let mut parts = Vec::new();
                if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
                    parts.push(Part::Thinking {
                        text: reasoning,
                        signature: None,
                    });
                }
                let text = text_of(message.content, &|| format!("messages[{i}].content"))?;
                if !text.is_empty() {
                    parts.push(Part::Text(text));
                }
                for (j, call) in message
                    .tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    let arguments = ir::arguments(call.function.arguments).ok_or_else(|| {
                        TranslateError::invalid(
                            format!("messages[{i}].tool_calls[{j}].function.arguments"),
                            "not a JSON object",
                        )
                    })?;
                    parts.push(Part::ToolCall(ir::ToolCall {
                        id: call.id,
                        name: call.function.name,
                        arguments,
                    }));
                }
                ir.messages.push(ir::Message {
                    role: Role::Assistant,
                    parts,
                });
            }
            "tool" => {
                let id = message.tool_call_id.ok_or_else(|| {
                    TranslateError::invalid(format!("messages[{i}].tool_call_id"), "missing")
                })?;
                let text = text_of(message.content, &|| format!("messages[{i}].content"))?;
                let result = Part::ToolResult(ir::ToolResult {
                    id,
                    name: None,
                    content: vec![ir::ResultPart::Text(text)],
                    is_error: false,
                });
                // Results of one round of calls travel together in one user turn.
                match ir.messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last.parts.iter().all(|p| matches!(p, Part::ToolResult(_))) =>
                    {
                        last.parts.push(result)
                    }
                    _ => ir.messages.push(ir::Message {
                        role: Role::User,
                        parts: vec![result],
                    }),
                }
            }
            "function" => return Err(legacy_functions(format!("messages[{i}].role"))),
            other => {
                return Err(TranslateError::invalid(
                    format!("messages[{i}].role"),
                    format!("unknown role \"{other}\""),
                ));
            }
        }
    }

    for (i, tool) in r.tools.into_iter().enumerate() {
        let (true, Some(function)) = (tool.kind == "function", tool.function) else {
            return Err(TranslateError::unsupported(
                format!("tools[{i}].type"),
                format!(
                    "the {target} format has no counterpart of \"{}\" tools",
                    tool.kind
                ),
            ));
        };
        ir.tools.push(ir::Tool {
            name: function.name,
            description: function.description,
            parameters: function.parameters.unwrap_or_else(empty_schema),
            strict: function.strict,
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
        Some(StrOrObj::Obj(choice)) => match (choice.kind.as_str(), choice.function) {
            ("function", Some(function)) => Some(ir::ToolChoice::Tool(function.name)),
            (kind, _) => {
                return Err(TranslateError::unsupported(
                    "tool_choice.type",
                    format!("the {target} format has no counterpart of a \"{kind}\" tool choice"),
                ));
            }
        },
    };
    ir.reasoning = match r.reasoning_effort.as_deref() {
        None => None,
        Some(name) => match Effort::parse(name) {
            Some(Effort::None) => Some(Reasoning::Off),
            Some(effort) => Some(Reasoning::On {
                budget: None,
                effort: Some(effort),
                show: true,
            }),
            None => {
                return Err(TranslateError::invalid(
                    "reasoning_effort",
                    format!("unknown effort \"{name}\""),
                ));
            }
        },
    };
    if let Some(format) = r.response_format {
        ir.output_format =
            output_format("response_format", format.kind, format.json_schema, target)?;
    }
    known_other(r.known_other, target)?;
    Ok(ir)
}

/// `{"type":"object","properties":{}}`, for functions declared without parameters.
pub fn empty_schema() -> Box<serde_json::value::RawValue> {
    ir::raw_json(r#"{"type":"object","properties":{}}"#.to_owned()).unwrap_or_else(ir::empty_object)
}

fn legacy_functions(field: String) -> TranslateError {
    TranslateError::unsupported(
        field,
        "the legacy functions API is not translated; use tools and tool_calls",
    )
}

/// A `response_format` (Chat) or `text.format` (Responses) as an IR output format.
pub fn output_format(
    field: &str,
    kind: String,
    schema: Option<wire::JsonSchema>,
    target: UpstreamFormat,
) -> Result<Option<ir::OutputFormat>> {
    match kind.as_str() {
        "text" => Ok(None),
        "json_object" if !target.takes_json_object() => Err(TranslateError::unsupported(
            format!("{field}.type"),
            format!("the {target} format needs a JSON schema for JSON output; use json_schema"),
        )),
        "json_object" => Ok(Some(ir::OutputFormat::JsonObject)),
        "json_schema" => {
            let spec = schema.ok_or_else(|| {
                TranslateError::invalid(format!("{field}.json_schema"), "missing")
            })?;
            Ok(Some(ir::OutputFormat::JsonSchema {
                name: Some(spec.name).filter(|n| !n.is_empty()),
                schema: spec.schema.unwrap_or_else(ir::empty_object),
                strict: spec.strict,
            }))
        }
        other => Err(TranslateError::invalid(
            format!("{field}.type"),
            format!("unknown response format \"{other}\""),
        )),
    }
}

fn known_other(fields: Vec<(String, Value)>, target: UpstreamFormat) -> Result<()> {
    for (key, value) in fields {
        // Presence alone turns some options on (`"web_search_options": {}`).
        let set = match &value {
            Value::Null | Value::Bool(false) => false,
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => {
                !o.is_empty() || matches!(key.as_str(), "web_search_options" | "audio")
            }
            _ => true,
        };
        if !set {
            continue;
        }
        match key.as_str() {
            "logit_bias" => {
                return Err(TranslateError::unsupported(
                    key,
                    format!("token ids are OpenAI's own; the {target} format has no logit bias"),
                ));
            }
            "modalities"
                if value
                    .as_array()
                    .is_some_and(|m| m.iter().any(|v| v != "text")) =>
            {
                return Err(TranslateError::unsupported(
                    key,
                    format!("the {target} format is translated for text output only"),
                ));
            }
            "audio" | "web_search_options" => {
                return Err(TranslateError::unsupported(
                    key.as_str(),
                    format!("the {target} format has no counterpart of OpenAI's {key}"),
                ));
            }
            "functions" | "function_call" => return Err(legacy_functions(key)),
            _ => dropped(
                &key,
                target,
                "an OpenAI-only option that does not change the answer",
            ),
        }
    }
    Ok(())
}

/// The text of a system, assistant or tool message: a string, or its text parts joined.
fn text_of(content: Option<StrOr<ContentPart>>, path: &dyn Fn() -> String) -> Result<String> {
    match content {
        None => Ok(String::new()),
        Some(StrOr::Str(text)) => Ok(text),
        Some(StrOr::List(parts)) => {
            let mut text = String::new();
            for (k, part) in parts.into_iter().enumerate() {
                let piece = match part.kind.as_str() {
                    "text" => part.text.unwrap_or_default(),
                    "refusal" => part.refusal.unwrap_or_default(),
                    other => {
                        return Err(TranslateError::invalid(
                            format!("{}[{k}].type", path()),
                            format!("\"{other}\" parts are not allowed here"),
                        ));
                    }
                };
                text.push_str(&piece);
            }
            Ok(text)
        }
    }
}

fn user_parts(
    content: Option<StrOr<ContentPart>>,
    i: usize,
    target: UpstreamFormat,
) -> Result<Vec<Part>> {
    match content {
        None => Ok(Vec::new()),
        Some(StrOr::Str(text)) => Ok(vec![Part::Text(text)]),
        Some(StrOr::List(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                match part.kind.as_str() {
                    "text" => out.push(Part::Text(part.text.unwrap_or_default())),
                    "image_url" => {
                        let field = || format!("messages[{i}].content[{j}].image_url.url");
                        let url = part
                            .image_url
                            .ok_or_else(|| TranslateError::invalid(field(), "missing"))?
                            .url;
                        out.push(Part::Image(image(url, &field, target)?));
                    }
                    other => {
                        return Err(TranslateError::unsupported(
                            format!("messages[{i}].content[{j}].type"),
                            format!(
                                "the {target} format is translated with text and image parts only, not \"{other}\""
                            ),
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// An image from a URL or `data:` URL, refused where the target needs inline data.
pub fn image(url: String, field: &dyn Fn() -> String, target: UpstreamFormat) -> Result<ir::Image> {
    match super::image_from_url(url) {
        None => Err(TranslateError::invalid(
            field(),
            "a data URL must be base64 (data:<type>;base64,<data>)",
        )),
        Some(ir::Image::Url(_)) if !target.takes_image_urls() => Err(TranslateError::unsupported(
            field(),
            format!(
                "the {target} format takes images as inline data only, and Keyway does not fetch URLs"
            ),
        )),
        Some(image) => Ok(image),
    }
}

/// A whole chat completion.
pub fn render_response(answer: ir::Response, ctx: &ResponseContext) -> Vec<u8> {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for part in &answer.parts {
        match part {
            Part::Text(t) => text.push_str(t),
            Part::Thinking { text: t, .. } => reasoning.push_str(t),
            Part::ToolCall(call) => calls.push(wire::ToolCallOut {
                id: &call.id,
                kind: "function",
                function: wire::FunctionOut {
                    name: &call.name,
                    arguments: call.arguments.get(),
                },
            }),
            _ => {}
        }
    }
    let id = format!("chatcmpl-{}", ctx.token);
    let completion = wire::CompletionOut {
        id: &id,
        object: "chat.completion",
        created: ctx.created,
        model: &ctx.model,
        choices: [wire::ChoiceOut {
            index: 0,
            message: wire::MessageOut {
                role: "assistant",
                content: (!text.is_empty() || calls.is_empty()).then_some(text.as_str()),
                refusal: None,
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning.as_str()),
                tool_calls: calls,
            },
            logprobs: None,
            finish_reason: super::finish_name(answer.stop),
        }],
        usage: wire::Usage::from_ir(&answer.usage),
    };
    crate::json::to_vec(&completion, text.len() + reasoning.len() + 512)
}

/// Writes IR events as `chat.completion.chunk`s: a first chunk with the role, one chunk per
/// text, reasoning or tool-call fragment, a chunk with `finish_reason`, the usage, and
/// `data: [DONE]`.
pub struct StreamRenderer {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    /// The upstream's index of each tool call, in the order the client numbers them.
    tools: Vec<usize>,
}

impl StreamRenderer {
    pub fn new(ctx: &ResponseContext) -> Self {
        StreamRenderer {
            id: format!("chatcmpl-{}", ctx.token),
            model: ctx.model.clone(),
            created: ctx.created,
            include_usage: ctx.include_usage,
            started: false,
            tools: Vec::new(),
        }
    }

    fn chunk(
        &self,
        delta: wire::DeltaOut<'_>,
        finish: Option<&'static str>,
        usage: Option<wire::Usage>,
        out: &mut Vec<u8>,
    ) {
        let chunk = wire::ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![wire::ChunkChoiceOut {
                index: 0,
                delta,
                logprobs: None,
                finish_reason: finish,
            }],
            usage,
        };
        sse::write_data(out, &chunk);
    }

    pub fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if let Event::Error(error) = &event {
            self.error(error, out);
            return;
        }
        if matches!(event, Event::Usage(_)) {
            return;
        }
        if !self.started {
            self.started = true;
            let role = wire::DeltaOut {
                role: Some("assistant"),
                content: Some(""),
                ..wire::DeltaOut::default()
            };
            self.chunk(role, None, None, out);
        }
        match event {
            Event::Text(text) if !text.is_empty() => {
                let delta = wire::DeltaOut {
                    content: Some(&text),
                    ..wire::DeltaOut::default()
                };
                self.chunk(delta, None, None, out);
            }
            Event::Thinking(text) if !text.is_empty() => {
                let delta = wire::DeltaOut {
                    reasoning_content: Some(&text),
                    ..wire::DeltaOut::default()
                };
                self.chunk(delta, None, None, out);
            }
            Event::ToolStart { index, id, name } => {
                let client_index = self.tools.len();
                self.tools.push(index);
                let delta = wire::DeltaOut {
                    tool_calls: Some([wire::ToolCallDeltaOut {
                        index: client_index,
                        id: Some(&id),
                        kind: Some("function"),
                        function: wire::FunctionDeltaOut {
                            name: Some(&name),
                            arguments: "",
                        },
                    }]),
                    ..wire::DeltaOut::default()
                };
                self.chunk(delta, None, None, out);
            }
            Event::ToolArgs { index, fragment } if !fragment.is_empty() => {
                let Some(client_index) = self.tools.iter().position(|i| *i == index) else {
                    return;
                };
                let delta = wire::DeltaOut {
                    tool_calls: Some([wire::ToolCallDeltaOut {
                        index: client_index,
                        id: None,
                        kind: None,
                        function: wire::FunctionDeltaOut {
                            name: None,
                            arguments: &fragment,
                        },
                    }]),
                    ..wire::DeltaOut::default()
                };
                self.chunk(delta, None, None, out);
            }
            Event::Finish { stop, usage, .. } => {
                let usage = wire::Usage::from_ir(&usage);
                let finish = Some(super::finish_name(stop));
                if self.include_usage {
                    self.chunk(wire::DeltaOut::default(), finish, None, out);
                    let chunk = wire::ChunkOut {
                        id: &self.id,
                        object: "chat.completion.chunk",
                        created: self.created,
                        model: &self.model,
                        choices: Vec::new(),
                        usage: Some(usage),
                    };
                    sse::write_data(out, &chunk);
                } else {
                    self.chunk(wire::DeltaOut::default(), finish, Some(usage), out);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            // Signatures and redacted thinking have no place in a chunk.
            _ => {}
        }
    }

    fn error(&mut self, error: &UpstreamError, out: &mut Vec<u8>) {
        let (kind, code) = error.openai_names();
        let body = crate::errors::OpenAiErrorBody {
            error: crate::errors::OpenAiError {
                message: &error.message,
                kind,
                param: None,
                code,
            },
        };
        sse::write_data(out, &body);
    }
}
