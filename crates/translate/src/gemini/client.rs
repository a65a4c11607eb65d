//! The Gemini client surface: its requests into the IR, IR answers and events into
//! `GenerateContentResponse`s.
//!
//! Gemini has no tool-call ids (its `functionCall.id` is optional and the public API rarely
//! fills it). A call without one gets `call_<content>_<part>` (its position, so the same
//! history always gets the same ids), and a `functionResponse` without one answers the first
//! unanswered call of the same name in the model turns before it, in order.

use serde_json::Value;
use serde_json::value::RawValue;

use super::wire::{self, GenerateRequest};
use crate::error::{Result, TranslateError};
use crate::ir::{self, Event, Part, Reasoning, Role};
use crate::reasoning::Effort;
use crate::{GeminiMethod, ResponseContext, UpstreamError, UpstreamFormat, dropped, sse};

/// Largest tool-call argument text held while a call streams: Gemini clients get each call
/// whole, so its fragments are kept until it ends.
pub const MAX_TOOL_ARGS: usize = 4 * 1024 * 1024;

/// A Gemini request body, for an upstream of format `target`. The model comes from the path.
pub fn parse_request(
    body: &[u8],
    target: UpstreamFormat,
    method: GeminiMethod,
) -> Result<ir::Request> {
    let mut r: GenerateRequest = serde_json::from_slice(body)?;
    if let (GeminiMethod::CountTokens, Some(inner)) = (method, r.generate_content_request.take()) {
        r = *inner;
    }
    let mut ir = ir::Request {
        extra: r.extra,
        ..ir::Request::default()
    };
    if let Some(system) = r.system_instruction {
        for (j, part) in system.parts.into_iter().enumerate() {
            match part.text {
                Some(text) => ir.system.push(text),
                None => {
                    return Err(TranslateError::unsupported(
                        format!("systemInstruction.parts[{j}]"),
                        format!("a system instruction in the {target} format holds text only"),
                    ));
                }
            }
        }
    }

    // Calls not yet answered, oldest first: (id, name).
    let mut open_calls: Vec<(String, String)> = Vec::new();
    for (i, content) in r.contents.into_iter().enumerate() {
        let role = match content.role.as_deref() {
            None | Some("user") | Some("function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(TranslateError::invalid(
                    format!("contents[{i}].role"),
                    format!("unknown role \"{other}\""),
                ));
            }
        };
        // Consecutive contents of one role are one turn: the SDK's own chat history keeps a
        // streamed answer as one model content per chunk, and a turn split at a chunk would
        // leave calls apart from their results (OpenAI refuses that) and thoughts apart
        // from their signature.
        let mut parts = match ir.messages.pop() {
            Some(last) if last.role == role => last.parts,
            last => {
                ir.messages.extend(last);
                Vec::with_capacity(content.parts.len())
            }
        };
        for (j, part) in content.parts.into_iter().enumerate() {
            let path = || format!("contents[{i}].parts[{j}]");
            let signature = part.thought_signature;
            if let Some(text) = part.text {
                if part.thought == Some(true) {
                    push_thought(&mut parts, text, signature);
                    continue;
                }
                push_signature(&mut parts, signature);
                parts.push(Part::Text(text));
            } else if let Some(call) = part.function_call {
                push_signature(&mut parts, signature);
                let id = call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("call_{i}_{j}"));
                open_calls.push((id.clone(), call.name.clone()));
                parts.push(Part::ToolCall(ir::ToolCall {
                    id,
                    name: call.name,
                    arguments: call.args.unwrap_or_else(ir::empty_object),
                }));
            } else if let Some(response) = part.function_response {
                let id = match response.id.filter(|id| !id.is_empty()) {
                    Some(id) => {
                        open_calls.retain(|(open, _)| *open != id);
                        id
                    }
                    None => match open_calls.iter().position(|(_, n)| *n == response.name) {
                        Some(at) => open_calls.remove(at).0,
                        None => format!("call_{i}_{j}"),
                    },
                };
                let (content, is_error) = result_content(response.response);
                parts.push(Part::ToolResult(ir::ToolResult {
                    id,
                    name: Some(response.name),
                    content: vec![ir::ResultPart::Text(content)],
                    is_error,
                }));
            } else if let Some(blob) = part.inline_data {
                if !blob.mime_type.starts_with("image/") {
                    return Err(TranslateError::unsupported(
                        format!("{}.inlineData.mimeType", path()),
                        format!(
                            "the {target} format is translated with text and images only, not \"{}\"",
                            blob.mime_type
                        ),
                    ));
                }
                parts.push(Part::Image(ir::Image::Base64 {
                    media_type: blob.mime_type,
                    data: blob.data,
                }));
            } else if let Some(file) = part.file_data {
                let is_image = file
                    .mime_type
                    .as_deref()
                    .is_none_or(|m| m.starts_with("image/"));
                let is_web =
                    file.file_uri.starts_with("https://") || file.file_uri.starts_with("http://");
                if !is_image || !is_web {
                    return Err(TranslateError::unsupported(
                        format!("{}.fileData", path()),
                        format!("files stored with Gemini cannot be read by the {target} format"),
                    ));
                }
                if !target.takes_image_urls() {
                    return Err(TranslateError::unsupported(
                        format!("{}.fileData.fileUri", path()),
                        format!("the {target} format takes images as inline data only"),
                    ));
                }
                parts.push(Part::Image(ir::Image::Url(file.file_uri)));
            } else if part.executable_code.is_some() || part.code_execution_result.is_some() {
                return Err(TranslateError::unsupported(
                    path(),
                    format!("Gemini's code execution has no counterpart in the {target} format"),
                ));
            } else if signature.is_some() {
                push_signature(&mut parts, signature);
            }
        }
        ir.messages.push(ir::Message { role, parts });
    }

    let allowed: Vec<String> = r
        .tool_config
        .as_ref()
        .and_then(|c| c.function_calling_config.as_ref())
        .map(|c| c.allowed_function_names.clone())
        .unwrap_or_default();
    for (i, tool) in r.tools.into_iter().enumerate() {
        if let Some(name) = tool.server_tool() {
            return Err(TranslateError::unsupported(
                format!("tools[{i}].{name}"),
                format!("the {target} format has no counterpart of Gemini's {name} tool"),
            ));
        }
        for declaration in tool.function_declarations {
            // Only the named functions may be called: the others are left out.
            if !allowed.is_empty() && !allowed.contains(&declaration.name) {
                continue;
            }
            let parameters = match (declaration.parameters_json_schema, declaration.parameters) {
                (Some(schema), _) => schema,
                (None, Some(schema)) => json_schema(schema),
                (None, None) => crate::chat::client::empty_schema(),
            };
            ir.tools.push(ir::Tool {
                name: declaration.name,
                description: declaration.description,
                parameters,
                strict: None,
            });
        }
    }
    if let Some(config) = r.tool_config.and_then(|c| c.function_calling_config) {
        ir.tool_choice = match config.mode.as_deref() {
            None | Some("AUTO") | Some("MODE_UNSPECIFIED") | Some("VALIDATED") => {
                Some(ir::ToolChoice::Auto)
            }
            Some("NONE") => Some(ir::ToolChoice::None),
            Some("ANY") if config.allowed_function_names.len() == 1 => config
                .allowed_function_names
                .into_iter()
                .next()
                .map(ir::ToolChoice::Tool),
            Some("ANY") => Some(ir::ToolChoice::Required),
            Some(other) => {
                return Err(TranslateError::invalid(
                    "toolConfig.functionCallingConfig.mode",
                    format!("unknown mode \"{other}\""),
                ));
            }
        };
    }
    if let Some(config) = r.generation_config {
        generation_config(config, target, &mut ir)?;
    }
    for (key, value) in r.known_other {
        match key.as_str() {
            "cachedContent" | "cached_content" if !value.is_null() => {
                return Err(TranslateError::unsupported(
                    key.as_str(),
                    format!("content cached at Gemini cannot be read by the {target} format"),
                ));
            }
            _ => dropped(&key, target, "a Gemini-only option"),
        }
    }
    Ok(ir)
}

/// A thought part. A streamed thought comes back as the pieces it was streamed in, signed on
/// the last one (or on an empty part after them): the pieces join up to the thought they
/// were, with its signature, so the upstream can take it back.
fn push_thought(parts: &mut Vec<Part>, text: String, signature: Option<String>) {
    if let Some(Part::Thinking {
        text: held,
        signature: held_signature @ None,
    }) = parts.last_mut()
    {
        held.push_str(&text);
        *held_signature = signature;
        return;
    }
    parts.push(Part::Thinking { text, signature });
}

/// A signature on a part that is not a thought: it travels as an empty thinking part right
/// before the part it signs.
fn push_signature(parts: &mut Vec<Part>, signature: Option<String>) {
    if let Some(signature) = signature.filter(|s| !s.is_empty()) {
        parts.push(Part::Thinking {
            text: String::new(),
            signature: Some(signature),
        });
    }
}

/// A function response as result text: the `output` (or `result`) when it is a string, the
/// `error` as an error, else the whole response as JSON.
fn result_content(response: Option<Box<RawValue>>) -> (String, bool) {
    let Some(raw) = response else {
        return (String::new(), false);
    };
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(raw.get())
        && map.len() == 1
        && let Some((key, value)) = map.iter().next()
        && matches!(key.as_str(), "output" | "result" | "content" | "error")
    {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return (text, key == "error");
    }
    (raw.get().to_owned(), false)
}

fn json_schema(schema: Value) -> Box<RawValue> {
    let converted = super::schema::to_json_schema(schema);
    ir::raw_json(converted.to_string()).unwrap_or_else(ir::empty_object)
}

fn generation_config(
    config: wire::GenerationConfig,
    target: UpstreamFormat,
    ir: &mut ir::Request,
) -> Result<()> {
    if config.candidate_count.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported(
            "generationConfig.candidateCount",
            format!("the {target} format gives one candidate per request"),
        ));
    }
    if config.response_modalities.iter().any(|m| m != "TEXT") {
        return Err(TranslateError::unsupported(
            "generationConfig.responseModalities",
            format!("the {target} format is translated for text output only"),
        ));
    }
    if config.speech_config.is_some() {
        return Err(TranslateError::unsupported(
            "generationConfig.speechConfig",
            format!("the {target} format has no speech output"),
        ));
    }
    if config.response_logprobs == Some(true) {
        dropped(
            "generationConfig.responseLogprobs",
            target,
            "log probabilities are not translated",
        );
    }
    ir.max_tokens = config.max_output_tokens;
    ir.stop = config.stop_sequences;
    ir.sampling = ir::Sampling {
        temperature: config.temperature,
        top_p: config.top_p,
        top_k: config.top_k,
        seed: config.seed,
        presence_penalty: config.presence_penalty,
        frequency_penalty: config.frequency_penalty,
    };
    match config.response_mime_type.as_deref() {
        None | Some("text/plain") => {}
        Some("application/json") => {
            let schema = match (config.response_json_schema, config.response_schema) {
                (Some(schema), _) => Some(schema),
                (None, Some(schema)) => Some(json_schema(schema)),
                (None, None) => None,
            };
            ir.output_format = Some(match schema {
                Some(schema) => ir::OutputFormat::JsonSchema {
                    name: None,
                    schema,
                    strict: None,
                },
                None if target.takes_json_object() => ir::OutputFormat::JsonObject,
                None => {
                    return Err(TranslateError::unsupported(
                        "generationConfig.responseMimeType",
                        format!("the {target} format needs a JSON schema for JSON output"),
                    ));
                }
            });
        }
        Some(other) => {
            return Err(TranslateError::unsupported(
                "generationConfig.responseMimeType",
                format!("the {target} format has no \"{other}\" output"),
            ));
        }
    }
    if let Some(thinking) = config.thinking_config {
        let show = thinking.include_thoughts.unwrap_or(false);
        let effort = thinking.thinking_level.as_deref().and_then(Effort::parse);
        ir.reasoning = match (thinking.thinking_budget, effort) {
            (Some(0), _) => Some(Reasoning::Off),
            (Some(budget), _) if budget > 0 => Some(Reasoning::On {
                budget: u32::try_from(budget).ok(),
                effort,
                show,
            }),
            // -1 is Gemini's "as much as the model sees fit".
            (Some(_), _) | (None, Some(_)) => Some(Reasoning::On {
                budget: None,
                effort,
                show,
            }),
            (None, None) if show => Some(Reasoning::On {
                budget: None,
                effort: None,
                show,
            }),
            (None, None) => None,
        };
    }
    Ok(())
}

/// Gemini parts for answer parts. A signature-only thinking part signs the part after it.
fn parts(answer: Vec<Part>) -> Vec<wire::Part> {
    let mut out = Vec::with_capacity(answer.len());
    let mut pending: Option<String> = None;
    for part in answer {
        match part {
            Part::Thinking { text, signature } if text.is_empty() => {
                if let Some(previous) = pending.take() {
                    out.push(signature_part(previous));
                }
                pending = signature;
            }
            Part::Thinking { text, signature } => out.push(wire::Part {
                text: Some(text),
                thought: Some(true),
                thought_signature: signature,
                ..wire::Part::default()
            }),
            Part::Text(text) => out.push(wire::Part {
                text: Some(text),
                thought_signature: pending.take(),
                ..wire::Part::default()
            }),
            Part::ToolCall(call) => out.push(wire::Part {
                function_call: Some(wire::FunctionCall {
                    id: Some(call.id),
                    name: call.name,
                    args: Some(call.arguments),
                }),
                thought_signature: pending.take(),
                ..wire::Part::default()
            }),
            Part::RedactedThinking(_) | Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    if let Some(signature) = pending {
        out.push(signature_part(signature));
    }
    out
}

fn signature_part(signature: String) -> wire::Part {
    wire::Part {
        text: Some(String::new()),
        thought: Some(true),
        thought_signature: Some(signature),
        ..wire::Part::default()
    }
}

/// A whole `GenerateContentResponse`.
pub fn render_response(answer: ir::Response, ctx: &ResponseContext) -> Vec<u8> {
    let response = wire::GenerateResponse {
        candidates: vec![wire::Candidate {
            content: Some(wire::Content {
                role: Some("model".into()),
                parts: parts(answer.parts),
            }),
            finish_reason: Some(super::finish_name(answer.stop).into()),
            index: 0,
        }],
        prompt_feedback: None,
        usage_metadata: Some(wire::UsageMetadata::from_ir(&answer.usage)),
        model_version: Some(ctx.model.clone()),
        response_id: Some(ctx.token.clone()),
        error: None,
    };
    crate::json::to_vec(&response, 1024)
}

/// `{"totalTokens": n}`.
pub fn render_count(tokens: u64) -> Vec<u8> {
    crate::json::to_vec(
        &wire::CountResponse {
            total_tokens: tokens,
        },
        32,
    )
}

/// A tool call being streamed: Gemini clients get it whole when it ends.
struct PendingCall {
    id: String,
    name: String,
    index: usize,
    arguments: String,
    signature: Option<String>,
}

/// Writes IR events as `data: {GenerateContentResponse}` chunks: one per text or thought
/// fragment, one per whole function call, and a last one with `finishReason` and
/// `usageMetadata`.
pub struct StreamRenderer {
    model: String,
    id: String,
    /// A thought is streaming (a signature then closes it rather than waiting for the next
    /// part).
    in_thought: bool,
    /// A signature for the next part.
    pending_signature: Option<String>,
    call: Option<PendingCall>,
    /// The call being held outgrew [`MAX_TOOL_ARGS`].
    overflow: bool,
}

impl StreamRenderer {
    pub fn new(ctx: &ResponseContext) -> Self {
        StreamRenderer {
            model: ctx.model.clone(),
            id: ctx.token.clone(),
            in_thought: false,
            pending_signature: None,
            call: None,
            overflow: false,
        }
    }

    fn chunk(
        &self,
        parts: Vec<wire::Part>,
        finish: Option<&'static str>,
        usage: Option<wire::UsageMetadata>,
        out: &mut Vec<u8>,
    ) {
        let chunk = wire::GenerateResponse {
            candidates: vec![wire::Candidate {
                content: Some(wire::Content {
                    role: Some("model".into()),
                    parts,
                }),
                finish_reason: finish.map(str::to_owned),
                index: 0,
            }],
            prompt_feedback: None,
            usage_metadata: usage,
            model_version: Some(self.model.clone()),
            response_id: Some(self.id.clone()),
            error: None,
        };
        sse::write_data(out, &chunk);
    }

    /// The held call as a part, if any.
    fn take_call(&mut self) -> Option<wire::Part> {
        let call = self.call.take()?;
        let args = ir::arguments(call.arguments).unwrap_or_else(|| {
            tracing::debug!(name = %call.name, "translate: a streamed call's arguments were not a JSON object");
            ir::empty_object()
        });
        Some(wire::Part {
            function_call: Some(wire::FunctionCall {
                id: Some(call.id),
                name: call.name,
                args: Some(args),
            }),
            thought_signature: call.signature,
            ..wire::Part::default()
        })
    }

    fn flush_call(&mut self, out: &mut Vec<u8>) {
        if let Some(part) = self.take_call() {
            self.chunk(vec![part], None, None, out);
        }
    }

    pub fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if self.overflow {
            return;
        }
        match event {
            // Gemini streams have no opening event: the first chunk carries content.
            Event::Start | Event::Usage(_) => {}
            Event::Text(text) => {
                if text.is_empty() {
                    return;
                }
                self.flush_call(out);
                self.in_thought = false;
                let part = wire::Part {
                    text: Some(text),
                    thought_signature: self.pending_signature.take(),
                    ..wire::Part::default()
                };
                self.chunk(vec![part], None, None, out);
            }
            Event::Thinking(text) => {
                self.flush_call(out);
                self.in_thought = true;
                let part = wire::Part {
                    text: Some(text),
                    thought: Some(true),
                    ..wire::Part::default()
                };
                self.chunk(vec![part], None, None, out);
            }
            Event::Signature(signature) if self.in_thought => {
                self.in_thought = false;
                self.chunk(vec![signature_part(signature)], None, None, out);
            }
            Event::Signature(signature) | Event::PartSignature(signature) => {
                self.flush_call(out);
                self.in_thought = false;
                self.pending_signature = Some(signature);
            }
            Event::RedactedThinking(_) => {}
            Event::ToolStart { index, id, name } => {
                self.flush_call(out);
                self.in_thought = false;
                self.call = Some(PendingCall {
                    id,
                    name,
                    index,
                    arguments: String::new(),
                    signature: self.pending_signature.take(),
                });
            }
            Event::ToolArgs { index, fragment } => {
                let Some(call) = self.call.as_mut().filter(|c| c.index == index) else {
                    tracing::debug!(index, "translate: arguments for a call no longer held");
                    return;
                };
                if call.arguments.len() + fragment.len() > MAX_TOOL_ARGS {
                    self.overflow = true;
                    let error = UpstreamError::keyway(
                        crate::ErrorKind::Server,
                        "a streamed function call outgrew the translation buffer",
                    );
                    self.error(&error, out);
                    return;
                }
                call.arguments.push_str(&fragment);
            }
            Event::Finish { stop, usage, .. } => {
                let mut parts: Vec<wire::Part> = self.take_call().into_iter().collect();
                if let Some(signature) = self.pending_signature.take() {
                    parts.push(signature_part(signature));
                }
                if parts.is_empty() {
                    parts.push(wire::Part {
                        text: Some(String::new()),
                        ..wire::Part::default()
                    });
                }
                self.chunk(
                    parts,
                    Some(super::finish_name(stop)),
                    Some(wire::UsageMetadata::from_ir(&usage)),
                    out,
                );
            }
            Event::Error(error) => self.error(&error, out),
        }
    }

    fn error(&self, error: &UpstreamError, out: &mut Vec<u8>) {
        let body = crate::errors::GoogleErrorBody {
            error: crate::errors::GoogleError {
                code: error.status,
                message: &error.message,
                status: error.google_status(),
            },
        };
        sse::write_data(out, &body);
    }
}
