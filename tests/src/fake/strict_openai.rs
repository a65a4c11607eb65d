//! OpenAI Chat Completions requests as the API takes them (`POST /v1/chat/completions`), from
//! the official SDK's types (`openai` 3.57: `types/chat/completion_create_params.py` and the
//! message, content part and tool params it names), and the refusals in OpenAI's words:
//! `Unrecognized request argument supplied: foo` for an unknown parameter, `Additional
//! properties are not allowed ('foo' was unexpected) - 'messages.0'` inside a message,
//! `Invalid value: 'image'. Supported values are: …` for a type the format does not have.
//!
//! The structs exist to be checked: serde reads every field to check its type, and most fields
//! are never looked at again.
#![allow(dead_code)]

use std::collections::HashSet;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::strict::{Expected, Flaw, Path, parse, plain_name, tag, value_at};
use super::wire::Answer;

/// `POST /v1/chat/completions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatParams {
    messages: Vec<Value>,
    model: String,
    audio: Option<Value>,
    frequency_penalty: Option<f64>,
    function_call: Option<Value>,
    functions: Option<Vec<FunctionDefinition>>,
    logit_bias: Option<Map<String, Value>>,
    logprobs: Option<bool>,
    max_completion_tokens: Option<u64>,
    max_tokens: Option<u64>,
    metadata: Option<Map<String, Value>>,
    modalities: Option<Vec<String>>,
    moderation: Option<Value>,
    n: Option<u64>,
    parallel_tool_calls: Option<bool>,
    prediction: Option<Value>,
    presence_penalty: Option<f64>,
    prompt_cache_key: Option<String>,
    prompt_cache_options: Option<Value>,
    prompt_cache_retention: Option<String>,
    reasoning_effort: Option<String>,
    response_format: Option<Value>,
    safety_identifier: Option<String>,
    seed: Option<i64>,
    service_tier: Option<String>,
    stop: Option<Value>,
    store: Option<bool>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    temperature: Option<f64>,
    tool_choice: Option<Value>,
    tools: Option<Vec<Value>>,
    top_logprobs: Option<u64>,
    top_p: Option<f64>,
    user: Option<String>,
    verbosity: Option<String>,
    web_search_options: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    include_obfuscation: Option<bool>,
    include_usage: Option<bool>,
}

/// A `system` or `developer` message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstructionMessage {
    role: String,
    content: Value,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserMessage {
    role: String,
    content: Value,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssistantMessage {
    role: String,
    content: Option<Value>,
    name: Option<String>,
    audio: Option<Value>,
    function_call: Option<Value>,
    refusal: Option<String>,
    tool_calls: Option<Vec<Value>>,
    /// Not in the params type, but in every answer's message: the SDK's documented way of
    /// continuing a conversation (append the answer's message) sends it back.
    annotations: Option<Vec<Value>>,
    /// DeepSeek's and vLLM's reasoning field, which the fake's answers carry (see
    /// `directive`): a client appending the answer's message sends it back.
    reasoning_content: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolMessage {
    role: String,
    content: Value,
    tool_call_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionMessage {
    role: String,
    content: Option<String>,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextPart {
    #[serde(rename = "type")]
    kind: String,
    text: String,
    prompt_cache_breakpoint: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagePart {
    #[serde(rename = "type")]
    kind: String,
    image_url: ImageUrl,
    prompt_cache_breakpoint: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageUrl {
    url: String,
    detail: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AudioPart {
    #[serde(rename = "type")]
    kind: String,
    input_audio: InputAudio,
    prompt_cache_breakpoint: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputAudio {
    data: String,
    format: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePart {
    #[serde(rename = "type")]
    kind: String,
    file: FileRef,
    prompt_cache_breakpoint: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRef {
    file_data: Option<String>,
    file_id: Option<String>,
    filename: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalPart {
    #[serde(rename = "type")]
    kind: String,
    refusal: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    function: CalledFunction,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalledFunction {
    name: String,
    /// The arguments as a JSON text, not an object.
    arguments: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    custom: CustomInput,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomInput {
    name: String,
    input: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionTool {
    #[serde(rename = "type")]
    kind: String,
    function: FunctionDefinition,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionDefinition {
    name: String,
    description: Option<String>,
    parameters: Option<Map<String, Value>>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomTool {
    #[serde(rename = "type")]
    kind: String,
    custom: CustomDefinition,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomDefinition {
    name: String,
    description: Option<String>,
    format: Option<Value>,
}

const ROLES: &[&str] = &[
    "system",
    "assistant",
    "user",
    "function",
    "tool",
    "developer",
];
const REASONING_EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh", "max"];
/// Longest function name the API takes.
const MAX_NAME: usize = 64;

/// A refusal in OpenAI's error fields.
struct Refusal {
    message: String,
    param: Option<String>,
    code: Option<&'static str>,
}

impl Refusal {
    fn new(message: String, param: Option<String>, code: Option<&'static str>) -> Refusal {
        Refusal {
            message,
            param,
            code,
        }
    }
}

/// OpenAI's 400 for a `POST /v1/chat/completions` body the real API refuses, if it does.
pub(crate) fn check(body: &Value) -> Result<(), Answer> {
    chat(body).map_err(|r| {
        Answer::error(
            StatusCode::BAD_REQUEST,
            json!({ "error": {
                "message": r.message,
                "type": "invalid_request_error",
                "param": r.param,
                "code": r.code,
            } }),
        )
    })
}

fn chat(body: &Value) -> Result<(), Refusal> {
    let say = |flaw: Flaw| wording(body, flaw);
    let params: ChatParams = parse(body, &Path::root()).map_err(say)?;
    if params.messages.is_empty() {
        return Err(Refusal::new(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got \
             an empty array instead."
                .into(),
            Some("messages".into()),
            Some("empty_array"),
        ));
    }
    range("temperature", params.temperature, 2.0)?;
    range("top_p", params.top_p, 1.0)?;
    if let Some(effort) = &params.reasoning_effort {
        literal(effort, REASONING_EFFORTS, "reasoning_effort")?;
    }
    if params.stream_options.is_some() && params.stream != Some(true) {
        return Err(Refusal::new(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.".into(),
            Some("stream_options".into()),
            None,
        ));
    }
    if let Some(tools) = &params.tools {
        for (i, tool) in tools.iter().enumerate() {
            tool_definition(body, tool, &Path::root().key("tools").index(i))?;
        }
    }
    for (i, function) in params.functions.iter().flatten().enumerate() {
        let at = Path::root().key("functions").index(i).key("name");
        function_name(&function.name, &at)?;
    }
    let mut roles = Vec::new();
    for (i, message) in params.messages.iter().enumerate() {
        roles.push(message_shape(body, message, i)?);
    }
    tool_pairs(&roles)
}

/// What the tool-pairing check needs of one message.
enum Said {
    /// An assistant message and the ids of its tool calls.
    Assistant(Vec<String>),
    /// A tool message answering this id.
    Tool(String),
    Other,
}

fn message_shape(body: &Value, message: &Value, i: usize) -> Result<Said, Refusal> {
    let say = |flaw: Flaw| wording(body, flaw);
    let at = Path::root().key("messages").index(i);
    let role = match tag(message, &at, "role").map_err(say)? {
        Some(role) => role,
        None => {
            return Err(say(Flaw::Missing {
                at,
                field: "role".into(),
            }));
        }
    };
    match role {
        "system" | "developer" => {
            let m: InstructionMessage = parse(message, &at).map_err(say)?;
            parts(body, &m.content, &at.key("content"), &["text"])?;
            Ok(Said::Other)
        }
        "user" => {
            let m: UserMessage = parse(message, &at).map_err(say)?;
            let allowed = ["text", "image_url", "input_audio", "file"];
            parts(body, &m.content, &at.key("content"), &allowed)?;
            Ok(Said::Other)
        }
        "assistant" => {
            let m: AssistantMessage = parse(message, &at).map_err(say)?;
            match &m.content {
                Some(Value::Null) | None => {
                    if m.tool_calls.is_none() && m.function_call.is_none() && m.audio.is_none() {
                        return Err(Refusal::new(
                            "Invalid value for 'content': expected a string, got null.".into(),
                            Some(format!("messages.[{i}].content")),
                            None,
                        ));
                    }
                }
                Some(content) => parts(body, content, &at.key("content"), &["text", "refusal"])?,
            }
            let mut ids = Vec::new();
            for (j, call) in m.tool_calls.iter().flatten().enumerate() {
                ids.push(tool_call(body, call, &at.key("tool_calls").index(j))?);
            }
            Ok(Said::Assistant(ids))
        }
        "tool" => {
            let m: ToolMessage = parse(message, &at).map_err(say)?;
            parts(body, &m.content, &at.key("content"), &["text"])?;
            Ok(Said::Tool(m.tool_call_id))
        }
        "function" => {
            parse::<FunctionMessage>(message, &at).map_err(say)?;
            Ok(Said::Other)
        }
        other => Err(say(Flaw::Variant {
            at: at.key("role"),
            found: other.to_owned(),
            allowed: ROLES.iter().map(|r| (*r).to_owned()).collect(),
        })),
    }
}

/// A message's `content`: a string, or parts of the `allowed` types.
fn parts(body: &Value, content: &Value, at: &Path, allowed: &[&str]) -> Result<(), Refusal> {
    let say = |flaw: Flaw| wording(body, flaw);
    let parts = match content {
        Value::String(_) => return Ok(()),
        Value::Array(parts) => parts,
        other => {
            return Err(Refusal::new(
                format!(
                    "Invalid type for '{}': expected one of a string or array of objects, but got \
                     {} instead.",
                    at.bracketed(),
                    json_type(other)
                ),
                Some(at.bracketed()),
                Some("invalid_type"),
            ));
        }
    };
    for (j, part) in parts.iter().enumerate() {
        let here = at.index(j);
        let kind = match tag(part, &here, "type").map_err(say)? {
            Some(kind) => kind,
            None => {
                return Err(say(Flaw::Missing {
                    at: here,
                    field: "type".into(),
                }));
            }
        };
        if !allowed.contains(&kind) {
            return Err(say(Flaw::Variant {
                at: here.key("type"),
                found: kind.to_owned(),
                allowed: allowed.iter().map(|a| (*a).to_owned()).collect(),
            }));
        }
        match kind {
            "text" => parse::<TextPart>(part, &here).map(drop),
            "image_url" => parse::<ImagePart>(part, &here).map(drop),
            "input_audio" => parse::<AudioPart>(part, &here).map(drop),
            "file" => parse::<FilePart>(part, &here).map(drop),
            _ => parse::<RefusalPart>(part, &here).map(drop),
        }
        .map_err(say)?;
    }
    Ok(())
}

/// One of an assistant message's `tool_calls`; its id.
fn tool_call(body: &Value, call: &Value, at: &Path) -> Result<String, Refusal> {
    let say = |flaw: Flaw| wording(body, flaw);
    match tag(call, at, "type").map_err(say)? {
        Some("function") => Ok(parse::<FunctionToolCall>(call, at).map_err(say)?.id),
        Some("custom") => Ok(parse::<CustomToolCall>(call, at).map_err(say)?.id),
        Some(other) => Err(say(Flaw::Variant {
            at: at.key("type"),
            found: other.to_owned(),
            allowed: vec!["function".into(), "custom".into()],
        })),
        None => Err(say(Flaw::Missing {
            at: at.clone(),
            field: "type".into(),
        })),
    }
}

fn tool_definition(body: &Value, tool: &Value, at: &Path) -> Result<(), Refusal> {
    let say = |flaw: Flaw| wording(body, flaw);
    match tag(tool, at, "type").map_err(say)? {
        Some("function") => {
            let tool: FunctionTool = parse(tool, at).map_err(say)?;
            function_name(&tool.function.name, &at.key("function").key("name"))
        }
        Some("custom") => parse::<CustomTool>(tool, at).map(drop).map_err(say),
        Some(other) => Err(say(Flaw::Variant {
            at: at.key("type"),
            found: other.to_owned(),
            allowed: vec!["function".into(), "custom".into()],
        })),
        None => Err(say(Flaw::Missing {
            at: at.clone(),
            field: "type".into(),
        })),
    }
}

/// Function names are `^[a-zA-Z0-9_-]+$`, at most 64 characters.
fn function_name(name: &str, at: &Path) -> Result<(), Refusal> {
    let param = at.bracketed();
    if name.chars().count() > MAX_NAME {
        return Err(Refusal::new(
            format!(
                "Invalid '{param}': string too long. Expected a string with maximum length \
                 {MAX_NAME}, but got a string with length {} instead.",
                name.chars().count()
            ),
            Some(param),
            Some("string_above_max_length"),
        ));
    }
    if !plain_name(name, MAX_NAME) {
        return Err(Refusal::new(
            format!(
                "Invalid '{param}': string does not match pattern. Expected a string that \
                 matches the pattern '^[a-zA-Z0-9_-]+$'."
            ),
            Some(param),
            Some("invalid_value"),
        ));
    }
    Ok(())
}

/// Every `tool` message answers a call of the assistant message its run of tool messages
/// follows; every call of an assistant message followed by anything is answered before the
/// next other message.
fn tool_pairs(said: &[Said]) -> Result<(), Refusal> {
    // The calls the current run of tool messages may answer, with the index of the assistant
    // message that made them, and which of them are answered so far.
    let mut open: Option<(usize, Vec<String>, HashSet<String>)> = None;
    for (i, message) in said.iter().enumerate() {
        match message {
            Said::Tool(id) => {
                let Some((_, ids, answered)) = open.as_mut() else {
                    return Err(Refusal::new(
                        "Invalid parameter: messages with role 'tool' must be a response to a \
                         preceeding message with 'tool_calls'."
                            .into(),
                        Some(format!("messages.[{i}].role")),
                        None,
                    ));
                };
                if !ids.contains(id) {
                    return Err(Refusal::new(
                        format!(
                            "Invalid parameter: 'tool_call_id' of '{id}' not found in \
                             'tool_calls' of previous message."
                        ),
                        Some(format!("messages.[{i}].tool_call_id")),
                        None,
                    ));
                }
                answered.insert(id.clone());
            }
            other => {
                if let Some((at, ids, answered)) = open.take() {
                    let missing: Vec<&str> = ids
                        .iter()
                        .filter(|id| !answered.contains(*id))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        return Err(Refusal::new(
                            format!(
                                "An assistant message with 'tool_calls' must be followed by tool \
                                 messages responding to each 'tool_call_id'. The following \
                                 tool_call_ids did not have response messages: {}",
                                missing.join(", ")
                            ),
                            Some(format!("messages.[{at}].role")),
                            None,
                        ));
                    }
                }
                if let Said::Assistant(ids) = other
                    && !ids.is_empty()
                {
                    open = Some((i, ids.clone(), HashSet::new()));
                }
            }
        }
    }
    Ok(())
}

/// `temperature` (0 to 2) and `top_p` (0 to 1).
fn range(name: &str, value: Option<f64>, max: f64) -> Result<(), Refusal> {
    match value {
        Some(v) if v > max => Err(Refusal::new(
            format!(
                "Invalid '{name}': decimal above maximum value. Expected a value <= {max}, but \
                 got {v} instead."
            ),
            Some(name.to_owned()),
            Some("decimal_above_max_value"),
        )),
        Some(v) if v < 0.0 => Err(Refusal::new(
            format!(
                "Invalid '{name}': decimal below minimum value. Expected a value >= 0, but got \
                 {v} instead."
            ),
            Some(name.to_owned()),
            Some("decimal_below_min_value"),
        )),
        _ => Ok(()),
    }
}

fn literal(value: &str, allowed: &[&str], param: &str) -> Result<(), Refusal> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(Refusal::new(
        format!(
            "Invalid value: '{value}'. Supported values are: {}.",
            listed(allowed)
        ),
        Some(param.to_owned()),
        Some("invalid_value"),
    ))
}

/// `'a', 'b', and 'c'`, as OpenAI lists supported values.
fn listed(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, [one])) => format!("{one} and {last}"),
        Some((last, rest)) => format!("{}, and {last}", rest.join(", ")),
    }
}

/// How OpenAI names a JSON value's type in its messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A flaw in OpenAI's words; `body` is the request, for the type of a wrong value.
fn wording(body: &Value, flaw: Flaw) -> Refusal {
    match flaw {
        Flaw::Unknown { at, field } if at.is_root() => Refusal::new(
            format!("Unrecognized request argument supplied: {field}"),
            Some(field),
            None,
        ),
        Flaw::Unknown { at, field } => Refusal::new(
            format!(
                "Additional properties are not allowed ('{field}' was unexpected) - '{}'",
                at.dotted()
            ),
            None,
            None,
        ),
        Flaw::Missing { at, field } if at.is_root() && field == "model" => {
            Refusal::new("you must provide a model parameter".into(), None, None)
        }
        Flaw::Missing { at, field } => {
            let param = at.key(&field).bracketed();
            Refusal::new(
                format!("Missing required parameter: '{param}'."),
                Some(param),
                Some("missing_required_parameter"),
            )
        }
        Flaw::Type { at, expected } => {
            let param = at.bracketed();
            let want = match expected {
                Expected::String => "a string",
                Expected::Integer => "an integer",
                Expected::Number => "a decimal",
                Expected::Boolean => "a boolean",
                Expected::Array => "an array",
                Expected::Object => "an object",
            };
            let got = value_at(body, &at).map_or("nothing", json_type);
            Refusal::new(
                format!("Invalid type for '{param}': expected {want}, but got {got} instead."),
                Some(param),
                Some("invalid_type"),
            )
        }
        Flaw::Variant { at, found, allowed }
        | Flaw::Tag {
            at, found, allowed, ..
        } => {
            let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
            Refusal::new(
                format!(
                    "Invalid value: '{found}'. Supported values are: {}.",
                    listed(&allowed)
                ),
                Some(at.bracketed()),
                Some("invalid_value"),
            )
        }
        Flaw::Duplicate { at, field } => {
            let param = at.key(&field).bracketed();
            Refusal::new(
                format!("Duplicate parameter: '{param}'."),
                Some(param),
                None,
            )
        }
        Flaw::Invalid { at, message } => {
            let param = at.bracketed();
            let what = if message.contains("expected u") {
                "integer below minimum value. Expected a value >= 0".to_owned()
            } else {
                message
            };
            Refusal::new(
                format!("Invalid '{param}': {what}."),
                Some(param),
                Some("invalid_value"),
            )
        }
    }
}
