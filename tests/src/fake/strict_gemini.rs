//! Gemini API requests as the API takes them (`:generateContent`, `:streamGenerateContent`,
//! `:countTokens`), from the official SDK (`google-genai` 3.6: the `_to_mldev` converters in
//! `models.py` say which fields reach the Gemini Developer API, `types.py` what they hold), and
//! the refusals in Google's words: `Invalid JSON payload received. Unknown name "foo" at
//! 'contents[0].parts[0]': Cannot find field.` with a `BadRequest` field violation.
//!
//! The endpoint reads proto JSON, which takes every field by its JSON name (`systemInstruction`)
//! and by its proto name (`system_instruction`); so do these types. Error locations use the
//! proto names, as Google's do.
//!
//! The structs exist to be checked: serde reads every field to check its type, and most fields
//! are never looked at again.
#![allow(dead_code)]

use std::collections::BTreeMap;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::directive;
use super::strict::{Expected, Flaw, Path, Step, parse, value_at};
use super::wire::Answer;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GenerateContentRequest {
    model: Option<String>,
    contents: Option<Vec<Value>>,
    #[serde(alias = "system_instruction")]
    system_instruction: Option<Value>,
    tools: Option<Vec<Value>>,
    #[serde(alias = "tool_config")]
    tool_config: Option<ToolConfig>,
    #[serde(alias = "safety_settings")]
    safety_settings: Option<Vec<SafetySetting>>,
    #[serde(alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
    #[serde(alias = "cached_content")]
    cached_content: Option<String>,
    labels: Option<Map<String, Value>>,
    #[serde(alias = "service_tier")]
    service_tier: Option<String>,
    store: Option<bool>,
    #[serde(alias = "continuation_token")]
    continuation_token: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CountTokensRequest {
    contents: Option<Vec<Value>>,
    #[serde(alias = "generate_content_request")]
    generate_content_request: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Content {
    parts: Option<Vec<Value>>,
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    #[serde(alias = "inline_data")]
    inline_data: Option<Blob>,
    #[serde(alias = "file_data")]
    file_data: Option<FileData>,
    #[serde(alias = "function_call")]
    function_call: Option<FunctionCall>,
    #[serde(alias = "function_response")]
    function_response: Option<FunctionResponse>,
    #[serde(alias = "executable_code")]
    executable_code: Option<Value>,
    #[serde(alias = "code_execution_result")]
    code_execution_result: Option<Value>,
    #[serde(alias = "tool_call")]
    tool_call: Option<Value>,
    #[serde(alias = "tool_response")]
    tool_response: Option<Value>,
    thought: Option<bool>,
    #[serde(alias = "thought_signature")]
    thought_signature: Option<String>,
    #[serde(alias = "video_metadata")]
    video_metadata: Option<Value>,
    #[serde(alias = "media_resolution")]
    media_resolution: Option<Value>,
    #[serde(alias = "part_metadata")]
    part_metadata: Option<Map<String, Value>>,
    #[serde(alias = "audio_transcription")]
    audio_transcription: Option<Value>,
    #[serde(alias = "media_processing")]
    media_processing: Option<Value>,
    #[serde(alias = "speech_metadata")]
    speech_metadata: Option<Value>,
    #[serde(alias = "document_metadata")]
    document_metadata: Option<Value>,
    #[serde(alias = "spreadsheet_metadata")]
    spreadsheet_metadata: Option<Value>,
    #[serde(alias = "audio_metadata")]
    audio_metadata: Option<Value>,
}

impl Part {
    /// The members of the `data` oneof this part sets, by JSON name.
    fn data(&self) -> Vec<&'static str> {
        [
            ("text", self.text.is_some()),
            ("inlineData", self.inline_data.is_some()),
            ("fileData", self.file_data.is_some()),
            ("functionCall", self.function_call.is_some()),
            ("functionResponse", self.function_response.is_some()),
            ("executableCode", self.executable_code.is_some()),
            ("codeExecutionResult", self.code_execution_result.is_some()),
            ("toolCall", self.tool_call.is_some()),
            ("toolResponse", self.tool_response.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name)
        .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Blob {
    #[serde(alias = "mime_type")]
    mime_type: Option<String>,
    data: Option<String>,
    #[serde(alias = "display_name")]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileData {
    #[serde(alias = "mime_type")]
    mime_type: Option<String>,
    #[serde(alias = "file_uri")]
    file_uri: String,
    #[serde(alias = "display_name")]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FunctionCall {
    id: Option<String>,
    name: Option<String>,
    args: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FunctionResponse {
    id: Option<String>,
    name: Option<String>,
    response: Option<Map<String, Value>>,
    #[serde(alias = "will_continue")]
    will_continue: Option<bool>,
    scheduling: Option<String>,
    parts: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Tool {
    #[serde(alias = "function_declarations")]
    function_declarations: Option<Vec<FunctionDeclaration>>,
    #[serde(alias = "google_search")]
    google_search: Option<Value>,
    #[serde(alias = "google_search_retrieval")]
    google_search_retrieval: Option<Value>,
    #[serde(alias = "code_execution")]
    code_execution: Option<Value>,
    #[serde(alias = "url_context")]
    url_context: Option<Value>,
    #[serde(alias = "computer_use")]
    computer_use: Option<Value>,
    #[serde(alias = "file_search")]
    file_search: Option<Value>,
    #[serde(alias = "google_maps")]
    google_maps: Option<Value>,
    #[serde(alias = "mcp_servers")]
    mcp_servers: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FunctionDeclaration {
    name: Option<String>,
    description: Option<String>,
    parameters: Option<Schema>,
    #[serde(alias = "parameters_json_schema")]
    parameters_json_schema: Option<Value>,
    response: Option<Schema>,
    #[serde(alias = "response_json_schema")]
    response_json_schema: Option<Value>,
    behavior: Option<String>,
}

/// The OpenAPI subset Gemini's `Schema` is: no `additionalProperties`, `$ref` or `$defs`
/// (JSON Schema goes in `parametersJsonSchema` / `responseJsonSchema` instead).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Schema {
    #[serde(rename = "type")]
    kind: Option<String>,
    format: Option<String>,
    title: Option<String>,
    description: Option<String>,
    nullable: Option<bool>,
    #[serde(rename = "enum")]
    values: Option<Vec<String>>,
    #[serde(alias = "max_items")]
    max_items: Option<Value>,
    #[serde(alias = "min_items")]
    min_items: Option<Value>,
    properties: Option<BTreeMap<String, Schema>>,
    required: Option<Vec<String>>,
    #[serde(alias = "min_properties")]
    min_properties: Option<Value>,
    #[serde(alias = "max_properties")]
    max_properties: Option<Value>,
    #[serde(alias = "min_length")]
    min_length: Option<Value>,
    #[serde(alias = "max_length")]
    max_length: Option<Value>,
    pattern: Option<String>,
    example: Option<Value>,
    #[serde(alias = "any_of")]
    any_of: Option<Vec<Schema>>,
    #[serde(alias = "property_ordering")]
    property_ordering: Option<Vec<String>>,
    default: Option<Value>,
    items: Option<Box<Schema>>,
    minimum: Option<f64>,
    maximum: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(alias = "stop_sequences")]
    stop_sequences: Option<Vec<String>>,
    #[serde(alias = "response_mime_type")]
    response_mime_type: Option<String>,
    #[serde(alias = "response_schema")]
    response_schema: Option<Schema>,
    #[serde(alias = "response_json_schema")]
    response_json_schema: Option<Value>,
    #[serde(rename = "_responseJsonSchema", alias = "_response_json_schema")]
    legacy_response_json_schema: Option<Value>,
    #[serde(alias = "response_modalities")]
    response_modalities: Option<Vec<String>>,
    #[serde(alias = "candidate_count")]
    candidate_count: Option<f64>,
    #[serde(alias = "max_output_tokens")]
    max_output_tokens: Option<f64>,
    temperature: Option<f64>,
    #[serde(alias = "top_p")]
    top_p: Option<f64>,
    #[serde(alias = "top_k")]
    top_k: Option<f64>,
    seed: Option<f64>,
    #[serde(alias = "presence_penalty")]
    presence_penalty: Option<f64>,
    #[serde(alias = "frequency_penalty")]
    frequency_penalty: Option<f64>,
    #[serde(alias = "response_logprobs")]
    response_logprobs: Option<bool>,
    logprobs: Option<f64>,
    #[serde(alias = "enable_enhanced_civic_answers")]
    enable_enhanced_civic_answers: Option<bool>,
    #[serde(alias = "speech_config")]
    speech_config: Option<Value>,
    #[serde(alias = "thinking_config")]
    thinking_config: Option<ThinkingConfig>,
    #[serde(alias = "image_config")]
    image_config: Option<Value>,
    #[serde(alias = "media_resolution")]
    media_resolution: Option<String>,
    #[serde(alias = "audio_transcription_config")]
    audio_transcription_config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ThinkingConfig {
    #[serde(alias = "include_thoughts")]
    include_thoughts: Option<bool>,
    #[serde(alias = "thinking_budget")]
    thinking_budget: Option<f64>,
    #[serde(alias = "thinking_level")]
    thinking_level: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SafetySetting {
    category: String,
    threshold: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ToolConfig {
    #[serde(alias = "function_calling_config")]
    function_calling_config: Option<FunctionCallingConfig>,
    #[serde(alias = "retrieval_config")]
    retrieval_config: Option<Value>,
    #[serde(alias = "include_server_side_tool_invocations")]
    include_server_side_tool_invocations: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FunctionCallingConfig {
    mode: Option<String>,
    #[serde(alias = "allowed_function_names")]
    allowed_function_names: Option<Vec<String>>,
}

/// Longest function name Gemini takes.
const MAX_NAME: usize = 64;

/// A refusal: Google's message, and the field to name in a `BadRequest` violation.
struct Refusal {
    message: String,
    field: Option<String>,
}

fn refused(message: String) -> Refusal {
    Refusal {
        message,
        field: None,
    }
}

/// Gemini's 400 for a `:generateContent` / `:streamGenerateContent` body the real API refuses.
/// `model` (from the path) decides whether Gemini 3's thought-signature rule applies.
pub(crate) fn check_generate(body: &Value, model: &str) -> Result<(), Answer> {
    generate(body, body, &Path::root(), model, true).map_err(answer)
}

/// Gemini's 400 for a `:countTokens` body the real API refuses.
pub(crate) fn check_count(body: &Value) -> Result<(), Answer> {
    count(body).map_err(answer)
}

fn answer(refusal: Refusal) -> Answer {
    let mut violation = json!({ "description": refusal.message });
    if let Some(field) = refusal.field {
        violation["field"] = json!(field);
    }
    let details = json!([{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [violation],
    }]);
    super::gemini::error(
        StatusCode::BAD_REQUEST,
        &refusal.message,
        "INVALID_ARGUMENT",
        Some(details),
    )
}

fn count(body: &Value) -> Result<(), Refusal> {
    let root = Path::root();
    let request: CountTokensRequest = parse(body, &root).map_err(|f| wording(body, f))?;
    if let Some(contents) = &request.contents {
        conversation(body, contents, &root.key("contents"), "CountTokensRequest")?;
    }
    if let Some(inner) = &request.generate_content_request {
        generate(body, inner, &root.key("generateContentRequest"), "", false)?;
    }
    Ok(())
}

/// The `GenerateContentRequest` `request` at `at` in `body` (the body itself, or a count
/// request's `generateContentRequest`); `generating` requires `contents` and checks thought
/// signatures.
fn generate(
    body: &Value,
    request: &Value,
    at: &Path,
    model: &str,
    generating: bool,
) -> Result<(), Refusal> {
    let request: GenerateContentRequest = parse(request, at).map_err(|f| wording(body, f))?;
    let contents = request.contents.as_deref().unwrap_or(&[]);
    if contents.is_empty() {
        if generating {
            return Err(refused(
                "* GenerateContentRequest.contents: contents is not specified\n".into(),
            ));
        }
    } else {
        conversation(
            body,
            contents,
            &at.key("contents"),
            "GenerateContentRequest",
        )?;
    }
    if let Some(system) = &request.system_instruction {
        let system_at = at.key("systemInstruction");
        let content: Content = parse(system, &system_at).map_err(|f| wording(body, f))?;
        for (j, part) in content.parts.iter().flatten().enumerate() {
            parse::<Part>(part, &system_at.key("parts").index(j)).map_err(|f| wording(body, f))?;
        }
    }
    for (i, tool) in request.tools.iter().flatten().enumerate() {
        let tool_at = at.key("tools").index(i);
        let tool: Tool = parse(tool, &tool_at).map_err(|f| wording(body, f))?;
        for (j, declaration) in tool.function_declarations.iter().flatten().enumerate() {
            let decl_at = tool_at.key("functionDeclarations").index(j);
            function_declaration(declaration, &decl_at)?;
        }
    }
    if generating {
        signatures(body, contents, &at.key("contents"), model)?;
    }
    Ok(())
}

fn function_declaration(declaration: &FunctionDeclaration, at: &Path) -> Result<(), Refusal> {
    let name = declaration.name.as_deref().unwrap_or("");
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if !valid {
        return Err(refused(format!(
            "* GenerateContentRequest.{}: Invalid function name. Must start with a letter or an \
             underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons \
             (:), or dashes (-), with a maximum length of 64.\n",
            proto(&at.key("name"))
        )));
    }
    if declaration.parameters.is_some() && declaration.parameters_json_schema.is_some() {
        return Err(refused(format!(
            "* GenerateContentRequest.{}: parameters_json_schema must not be set when \
             parameters is set.\n",
            proto(&at.key("parametersJsonSchema"))
        )));
    }
    Ok(())
}

/// `contents`: roles `user` or `model`, parts not empty, each part setting exactly one member
/// of its `data` oneof, called and answered functions named.
fn conversation(body: &Value, contents: &[Value], at: &Path, request: &str) -> Result<(), Refusal> {
    for (i, content) in contents.iter().enumerate() {
        let content_at = at.index(i);
        let parsed: Content = parse(content, &content_at).map_err(|f| wording(body, f))?;
        if let Some(role) = parsed.role.as_deref()
            && !matches!(role, "user" | "model")
        {
            return Err(refused("Please use a valid role: user, model.".into()));
        }
        let parts = parsed.parts.unwrap_or_default();
        if parts.is_empty() {
            return Err(refused(format!(
                "* {request}.{}: contents.parts must not be empty.\n",
                proto(&content_at.key("parts"))
            )));
        }
        for (j, part) in parts.iter().enumerate() {
            let part_at = content_at.key("parts").index(j);
            let parsed: Part = parse(part, &part_at).map_err(|f| wording(body, f))?;
            match parsed.data().as_slice() {
                [] => {
                    return Err(refused(format!(
                        "* {request}.{}: required oneof field 'data' must have one initialized \
                         field\n",
                        proto(&part_at.key("data"))
                    )));
                }
                [_] => {}
                [_, second, ..] => {
                    return Err(refused(format!(
                        "Invalid JSON payload received. Oneof field 'data' is already set. \
                         Cannot set '{second}'"
                    )));
                }
            }
            let unnamed = |name: &Option<String>| name.as_deref().is_none_or(str::is_empty);
            if let Some(call) = &parsed.function_call
                && unnamed(&call.name)
            {
                return Err(refused(format!(
                    "* {request}.{}: Name cannot be empty.\n",
                    proto(&part_at.key("functionCall").key("name"))
                )));
            }
            if let Some(response) = &parsed.function_response
                && unnamed(&response.name)
            {
                return Err(refused(format!(
                    "* {request}.{}: Name cannot be empty.\n",
                    proto(&part_at.key("functionResponse").key("name"))
                )));
            }
        }
    }
    Ok(())
}

/// Thought signatures: each one base64 the fake made (or Google's documented placeholder);
/// for Gemini 3 models, the first `functionCall` part of each model step of the current turn
/// (everything since the last user message that is more than function responses) carries
/// one.
fn signatures(body: &Value, contents: &[Value], at: &Path, model: &str) -> Result<(), Refusal> {
    let parts_of = |content: &Value| -> Vec<Value> {
        content
            .get("parts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let signature_of = |part: &Value| -> Option<String> {
        part.get("thoughtSignature")
            .or_else(|| part.get("thought_signature"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    for (i, content) in contents.iter().enumerate() {
        for (j, part) in parts_of(content).iter().enumerate() {
            let Some(signature) = signature_of(part) else {
                continue;
            };
            if signature == directive::SKIP_THOUGHT_SIGNATURE {
                continue;
            }
            let field = at.index(i).key("parts").index(j).key("thoughtSignature");
            if directive::decode(&signature).is_none() {
                return Err(wording(
                    body,
                    Flaw::Invalid {
                        at: field,
                        message: format!("Base64 decoding failed for \"{signature}\""),
                    },
                ));
            }
            if !directive::signed_by_fake(directive::GEMINI, &signature) {
                return Err(refused("Corrupted thought signature.".into()));
            }
        }
    }
    if !model.starts_with("gemini-3") {
        return Ok(());
    }
    let is_user = |content: &Value| {
        content
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user")
            == "user"
    };
    let standard_user = |content: &Value| {
        is_user(content)
            && parts_of(content).iter().any(|p| {
                p.get("functionResponse").is_none() && p.get("function_response").is_none()
            })
    };
    let turn_start = contents.iter().rposition(standard_user).unwrap_or(0);
    for (i, content) in contents.iter().enumerate().skip(turn_start) {
        if is_user(content) {
            continue;
        }
        let parts = parts_of(content);
        let first_call = parts.iter().find(|p| {
            p.get("functionCall")
                .or_else(|| p.get("function_call"))
                .is_some()
        });
        if let Some(part) = first_call
            && signature_of(part).is_none()
        {
            let call = part
                .get("functionCall")
                .or_else(|| part.get("function_call"));
            let name = call
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(refused(format!(
                "Function call is missing a thought_signature in functionCall parts. This is \
                 required for tools to work correctly, and missing thought_signature may lead to \
                 degraded model performance. Additional data, function call `default_api:{name}` \
                 , position {}. Please refer to \
                 https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                i + 1
            )));
        }
    }
    Ok(())
}

/// A JSON name as its proto field name: `functionDeclarations` → `function_declarations`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A path as Google names a field: proto names, `[i]` for indexes.
fn proto(at: &Path) -> String {
    proto_in(None, at)
}

/// Like [`proto`], with a map entry (a schema's `properties`) named as proto names one,
/// `properties[i].value`, its place among the map's keys found in `body`.
fn proto_in(body: Option<&Value>, at: &Path) -> String {
    let mut out = String::new();
    let mut walked = Path::root();
    for step in at.steps() {
        let in_map = walked.last_key() == Some("properties");
        match step {
            Step::Key(key) if in_map => {
                let position = body
                    .and_then(|b| value_at(b, &walked))
                    .and_then(Value::as_object)
                    .and_then(|map| map.keys().position(|k| k == key))
                    .unwrap_or(0);
                out.push_str(&format!("[{position}].value"));
            }
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&snake(key));
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
        walked = match step {
            Step::Key(key) => walked.key(key),
            Step::Index(i) => walked.index(*i),
        };
    }
    out
}

/// The proto type Google names for a value of the wrong type at `at`.
fn proto_type(at: &Path, expected: Expected) -> String {
    let message =
        |name: &str| format!("type.googleapis.com/google.ai.generativelanguage.v1beta.{name}");
    match expected {
        Expected::String => "TYPE_STRING".into(),
        Expected::Integer => "TYPE_INT32".into(),
        Expected::Number => "TYPE_FLOAT".into(),
        Expected::Boolean => "TYPE_BOOL".into(),
        Expected::Array | Expected::Object => {
            let last_key = at.steps().iter().rev().find_map(|s| match s {
                Step::Key(key) => Some(snake(key)),
                Step::Index(_) => None,
            });
            let name = match last_key.as_deref() {
                Some("contents" | "system_instruction") => "Content",
                Some("parts") => "Part",
                Some("tools") => "Tool",
                Some("function_declarations") => "FunctionDeclaration",
                Some("generation_config") => "GenerationConfig",
                Some("thinking_config") => "ThinkingConfig",
                Some("inline_data") => "Blob",
                Some("file_data") => "FileData",
                Some("function_call") => "FunctionCall",
                Some("function_response") => "FunctionResponse",
                Some("tool_config") => "ToolConfig",
                Some("safety_settings") => "SafetySetting",
                _ => return "TYPE_MESSAGE".into(),
            };
            message(name)
        }
    }
}

/// A flaw in Google's words; `body` is the request, for the value quoted.
fn wording(body: &Value, flaw: Flaw) -> Refusal {
    match flaw {
        Flaw::Unknown { at, field } if at.is_root() => Refusal {
            message: format!(
                "Invalid JSON payload received. Unknown name \"{field}\": Cannot find field."
            ),
            field: None,
        },
        Flaw::Unknown { at, field } => {
            let place = proto_in(Some(body), &at);
            Refusal {
                message: format!(
                    "Invalid JSON payload received. Unknown name \"{field}\" at '{place}': \
                     Cannot find field."
                ),
                field: Some(place),
            }
        }
        Flaw::Missing { at, field } => {
            let place = proto(&at.key(&field));
            refused(format!(
                "* GenerateContentRequest.{place}: {} is not specified\n",
                snake(&field)
            ))
        }
        Flaw::Type { at, expected } => {
            let place = proto_in(Some(body), &at);
            let value = value_at(body, &at).map_or("null".to_owned(), Value::to_string);
            Refusal {
                message: format!(
                    "Invalid value at '{place}' ({}), {value}",
                    proto_type(&at, expected)
                ),
                field: Some(place),
            }
        }
        Flaw::Variant { at, found, .. } | Flaw::Tag { at, found, .. } => {
            let place = proto(&at);
            Refusal {
                message: format!("Invalid value at '{place}' (TYPE_ENUM), \"{found}\""),
                field: Some(place),
            }
        }
        Flaw::Duplicate { at, field } => refused(format!(
            "Invalid JSON payload received. Duplicate field \"{}\" at '{}'.",
            snake(&field),
            proto(&at)
        )),
        Flaw::Invalid { at, message } => {
            let place = proto(&at);
            Refusal {
                message: format!("Invalid value at '{place}' (TYPE_BYTES), {message}"),
                field: Some(place),
            }
        }
    }
}
