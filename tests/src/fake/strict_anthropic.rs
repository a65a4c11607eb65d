//! Anthropic Messages requests as the API takes them (`POST /v1/messages` and
//! `/v1/messages/count_tokens`), from the official SDK's types (`anthropic` 2.14:
//! `types/message_create_params.py`, `types/beta/message_create_params.py` and the block
//! params they name), and the refusals the API words with pydantic's locations:
//! `messages.0.content.1.image.source.base64.media_type: Input should be …`.
//!
//! The beta fields (`context_management`, `mcp_servers`, `container`, …) are accepted without
//! the `anthropic-beta` flag that unlocks them: the fake does not track which flag unlocks
//! which field. `temperature`, `top_p` and `top_k` are no longer in the SDK's types but the API
//! still takes them (within their ranges), as does the older `output_format`.
//!
//! The structs exist to be checked: serde reads every field to check its type, and most fields
//! are never looked at again.
#![allow(dead_code)]

use std::collections::HashSet;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::directive;
use super::strict::{Expected, Flaw, Path, parse, plain_name, tag};
use super::wire::Answer;

/// `POST /v1/messages`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateParams {
    max_tokens: u64,
    messages: Vec<Value>,
    model: String,
    stream: Option<bool>,
    system: Option<Value>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    thinking: Option<Value>,
    metadata: Option<Metadata>,
    stop_sequences: Option<Vec<String>>,
    service_tier: Option<ServiceTier>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u64>,
    cache_control: Option<CacheControl>,
    container: Option<Value>,
    context_management: Option<Value>,
    mcp_servers: Option<Vec<Value>>,
    output_config: Option<OutputConfig>,
    output_format: Option<Value>,
    diagnostics: Option<Value>,
    inference_geo: Option<String>,
    speed: Option<Speed>,
    user_profile_id: Option<String>,
    workspace_id: Option<String>,
    billing_policy: Option<Value>,
    compaction: Option<Value>,
    fallbacks: Option<Value>,
    fallback_credit_token: Option<Value>,
    thread: Option<Value>,
}

/// `POST /v1/messages/count_tokens`: no `max_tokens`, `stream`, `metadata`, sampling or
/// `stop_sequences`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountParams {
    messages: Vec<Value>,
    model: String,
    system: Option<Value>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    thinking: Option<Value>,
    cache_control: Option<CacheControl>,
    context_management: Option<Value>,
    mcp_servers: Option<Vec<Value>>,
    output_config: Option<OutputConfig>,
    output_format: Option<Value>,
    speed: Option<Speed>,
    user_profile_id: Option<String>,
    workspace_id: Option<String>,
    billing_policy: Option<Value>,
    compaction: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ServiceTier {
    Auto,
    StandardOnly,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Speed {
    Standard,
    Fast,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: CacheKind,
    ttl: Option<CacheTtl>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum CacheKind {
    Ephemeral,
}

#[derive(Deserialize)]
enum CacheTtl {
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputConfig {
    effort: Option<Effort>,
    format: Option<Value>,
    task_budget: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Effort {
    Low,
    Medium,
    High,
    Xhigh,
    Max,
}

/// A user or assistant message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatMessage {
    role: String,
    content: Value,
}

/// A `role: "system"` message (mid-conversation instructions).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemMessage {
    role: String,
    content: Option<Value>,
    clear_at: Option<String>,
    output_config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBlock {
    #[serde(rename = "type")]
    kind: String,
    text: String,
    cache_control: Option<CacheControl>,
    citations: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageBlock {
    #[serde(rename = "type")]
    kind: String,
    source: Value,
    cache_control: Option<CacheControl>,
    transformations: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Base64ImageSource {
    #[serde(rename = "type")]
    kind: String,
    media_type: ImageMediaType,
    data: String,
}

#[derive(Deserialize)]
enum ImageMediaType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/gif")]
    Gif,
    #[serde(rename = "image/webp")]
    Webp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlSource {
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSource {
    #[serde(rename = "type")]
    kind: String,
    file_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentBlock {
    #[serde(rename = "type")]
    kind: String,
    source: Value,
    cache_control: Option<CacheControl>,
    citations: Option<Value>,
    context: Option<String>,
    title: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PdfSource {
    #[serde(rename = "type")]
    kind: String,
    media_type: PdfMediaType,
    data: String,
}

#[derive(Deserialize)]
enum PdfMediaType {
    #[serde(rename = "application/pdf")]
    Pdf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainTextSource {
    #[serde(rename = "type")]
    kind: String,
    media_type: PlainTextMediaType,
    data: String,
}

#[derive(Deserialize)]
enum PlainTextMediaType {
    #[serde(rename = "text/plain")]
    Plain,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentSource {
    #[serde(rename = "type")]
    kind: String,
    content: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchResultBlock {
    #[serde(rename = "type")]
    kind: String,
    content: Vec<Value>,
    source: String,
    title: String,
    cache_control: Option<CacheControl>,
    citations: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThinkingBlock {
    #[serde(rename = "type")]
    kind: String,
    thinking: String,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactedThinkingBlock {
    #[serde(rename = "type")]
    kind: String,
    data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolUseBlock {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    name: String,
    input: Map<String, Value>,
    cache_control: Option<CacheControl>,
    caller: Option<Value>,
    toolset_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolResultBlock {
    #[serde(rename = "type")]
    kind: String,
    tool_use_id: String,
    content: Option<Value>,
    is_error: Option<bool>,
    cache_control: Option<CacheControl>,
    toolset_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerToolUseBlock {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    name: String,
    input: Map<String, Value>,
    cache_control: Option<CacheControl>,
    caller: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerUploadBlock {
    #[serde(rename = "type")]
    kind: String,
    file_id: String,
    cache_control: Option<CacheControl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolReferenceBlock {
    #[serde(rename = "type")]
    kind: String,
    tool_name: String,
    cache_control: Option<CacheControl>,
}

/// A client tool (`type` absent or `custom`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomTool {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: String,
    input_schema: Map<String, Value>,
    description: Option<String>,
    cache_control: Option<CacheControl>,
    allowed_callers: Option<Vec<String>>,
    defer_loading: Option<bool>,
    eager_input_streaming: Option<bool>,
    input_examples: Option<Vec<Value>>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolChoiceAuto {
    #[serde(rename = "type")]
    kind: String,
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolChoiceTool {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolChoiceNone {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThinkingEnabled {
    #[serde(rename = "type")]
    kind: String,
    budget_tokens: u64,
    display: Option<String>,
    block_binding: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThinkingAdaptive {
    #[serde(rename = "type")]
    kind: String,
    display: Option<String>,
    block_binding: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
}

/// Content block types a user or assistant message may hold.
const BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "advisor_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
    "compaction",
    "tool_addition",
    "tool_removal",
    "mcp_tool_listing",
    "fallback",
];

/// Blocks whose fields the fake does not check (server tools' results and the like): only
/// their tag is known. The rest of [`BLOCK_TYPES`] are checked field by field.
const LOOSE_BLOCK_TYPES: &[&str] = &[
    "web_search_tool_result",
    "web_fetch_tool_result",
    "advisor_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "compaction",
    "tool_addition",
    "tool_removal",
    "mcp_tool_listing",
    "fallback",
];

/// What a `tool_result`'s content list may hold.
const TOOL_RESULT_BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "search_result",
    "document",
    "tool_reference",
    "browser_state",
];

/// Server tools and Anthropic-defined client tools, by `type`; their fields are not checked.
const SERVER_TOOL_TYPES: &[&str] = &[
    "bash_20241022",
    "bash_20250124",
    "code_execution_20250522",
    "code_execution_20250825",
    "code_execution_20260120",
    "code_execution_20260521",
    "browser_toolset_20260801",
    "computer_20241022",
    "computer_20250124",
    "computer_20251124",
    "computer_toolset_20260801",
    "memory_20250818",
    "text_editor_20241022",
    "text_editor_20250124",
    "text_editor_20250429",
    "text_editor_20250728",
    "web_search_20250305",
    "web_search_20260209",
    "web_search_20260318",
    "web_fetch_20250910",
    "web_fetch_20260209",
    "web_fetch_20260309",
    "web_fetch_20260318",
    "advisor_20260301",
    "tool_search_tool_bm25_20251119",
    "tool_search_tool_bm25",
    "tool_search_tool_regex_20251119",
    "tool_search_tool_regex",
    "mcp_toolset",
];

/// The smallest thinking budget the API takes.
const MIN_THINKING_BUDGET: u64 = 1024;

/// Anthropic's 400 for a `POST /v1/messages` body the real API refuses, if it does.
pub(crate) fn check_create(body: &Value) -> Result<(), Answer> {
    create(body).map_err(|message| refusal(&message))
}

/// Anthropic's 400 for a `POST /v1/messages/count_tokens` body the real API refuses.
pub(crate) fn check_count(body: &Value) -> Result<(), Answer> {
    count(body).map_err(|message| refusal(&message))
}

fn refusal(message: &str) -> Answer {
    super::anthropic::error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn create(body: &Value) -> Result<(), String> {
    let params: CreateParams = parse(body, &Path::root()).map_err(wording)?;
    sampling("temperature", params.temperature)?;
    sampling("top_p", params.top_p)?;
    if let Some(system) = &params.system {
        system_prompt(system)?;
    }
    if let Some(tools) = &params.tools {
        tool_list(tools)?;
    }
    if let Some(choice) = &params.tool_choice {
        tool_choice(choice)?;
    }
    if let Some(thinking) = &params.thinking {
        thinking_config(thinking, Some(params.max_tokens))?;
    }
    conversation(&params.messages, true)
}

fn count(body: &Value) -> Result<(), String> {
    let params: CountParams = parse(body, &Path::root()).map_err(wording)?;
    if let Some(system) = &params.system {
        system_prompt(system)?;
    }
    if let Some(tools) = &params.tools {
        tool_list(tools)?;
    }
    if let Some(choice) = &params.tool_choice {
        tool_choice(choice)?;
    }
    if let Some(thinking) = &params.thinking {
        thinking_config(thinking, None)?;
    }
    conversation(&params.messages, false)
}

/// A flaw in the words of Anthropic's (pydantic's) validation errors.
fn wording(flaw: Flaw) -> String {
    let located = |at: &Path, what: String| {
        if at.is_root() {
            what
        } else {
            format!("{}: {what}", at.dotted())
        }
    };
    match flaw {
        Flaw::Unknown { at, field } => {
            located(&at.key(&field), "Extra inputs are not permitted".into())
        }
        Flaw::Missing { at, field } => located(&at.key(&field), "Field required".into()),
        Flaw::Type { at, expected } => {
            let kind = match expected {
                Expected::String => "string",
                Expected::Integer => "integer",
                Expected::Number => "number",
                Expected::Boolean => "boolean",
                Expected::Array => "list",
                Expected::Object => "dictionary",
            };
            located(&at, format!("Input should be a valid {kind}"))
        }
        Flaw::Variant { at, allowed, .. } => {
            located(&at, format!("Input should be {}", either(&allowed)))
        }
        Flaw::Tag {
            at,
            key,
            found,
            allowed,
        } => {
            let allowed: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
            located(
                &at,
                format!(
                    "Input tag '{found}' found using '{key}' does not match any of the expected \
                     tags: {}",
                    allowed.join(", ")
                ),
            )
        }
        Flaw::Duplicate { at, field } => located(&at.key(&field), "Duplicate field".into()),
        Flaw::Invalid { at, message } => {
            // serde's "invalid value: integer `-1`, expected u64" is a negative count.
            let what = if message.contains("expected u") {
                "Input should be greater than or equal to 0".to_owned()
            } else {
                message
            };
            located(&at, what)
        }
    }
}

/// `'a', 'b' or 'c'`, as pydantic lists the values a literal takes.
fn either(allowed: &[String]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The tag of the object at `at`, or pydantic's complaint that it has none.
fn required_tag<'a>(value: &'a Value, at: &Path, key: &str) -> Result<&'a str, String> {
    match tag(value, at, key).map_err(wording)? {
        Some(tag) => Ok(tag),
        None => Err(format!(
            "{}: Unable to extract tag using discriminator '{key}'",
            at.dotted()
        )),
    }
}

fn unknown_tag(at: &Path, key: &'static str, found: &str, allowed: &[&str]) -> String {
    wording(Flaw::Tag {
        at: at.clone(),
        key,
        found: found.to_owned(),
        allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
    })
}

/// `temperature` and `top_p` take 0 to 1 (OpenAI's go to 2).
fn sampling(name: &str, value: Option<f64>) -> Result<(), String> {
    match value {
        Some(v) if v > 1.0 => Err(format!("{name}: Input should be less than or equal to 1")),
        Some(v) if v < 0.0 => Err(format!(
            "{name}: Input should be greater than or equal to 0"
        )),
        _ => Ok(()),
    }
}

/// `system`: a string, or a list of text blocks.
fn system_prompt(system: &Value) -> Result<(), String> {
    let at = Path::root().key("system");
    match system {
        Value::String(_) => Ok(()),
        Value::Array(blocks) => {
            for (i, block) in blocks.iter().enumerate() {
                let here = at.index(i);
                let kind = tag(block, &here, "type").map_err(wording)?;
                match kind {
                    Some("text") => {
                        parse::<TextBlock>(block, &here).map_err(wording)?;
                    }
                    Some(other) => {
                        return Err(wording(Flaw::Variant {
                            at: here.key("type"),
                            found: other.to_owned(),
                            allowed: vec!["text".into()],
                        }));
                    }
                    None => {
                        return Err(wording(Flaw::Missing {
                            at: here,
                            field: "type".into(),
                        }));
                    }
                }
            }
            Ok(())
        }
        _ => Err(wording(Flaw::Type {
            at,
            expected: Expected::String,
        })),
    }
}

/// `tools`: client tools checked field by field (names `^[a-zA-Z0-9_-]{1,128}$`, an object
/// `input_schema`), server tools by their type only; names unique.
fn tool_list(tools: &[Value]) -> Result<(), String> {
    let mut names = HashSet::new();
    for (i, tool) in tools.iter().enumerate() {
        let at = Path::root().key("tools").index(i);
        let kind = tag(tool, &at, "type").map_err(wording)?;
        let name = match kind {
            None | Some("custom") => {
                let here = at.key("custom");
                let custom: CustomTool = parse(tool, &here).map_err(wording)?;
                if !plain_name(&custom.name, 128) {
                    return Err(format!(
                        "{}: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'",
                        here.key("name").dotted()
                    ));
                }
                let schema_at = here.key("input_schema");
                match custom.input_schema.get("type") {
                    Some(Value::String(t)) if t == "object" => {}
                    Some(_) => {
                        return Err(format!(
                            "{}: Input should be 'object'",
                            schema_at.key("type").dotted()
                        ));
                    }
                    None => {
                        return Err(wording(Flaw::Missing {
                            at: schema_at,
                            field: "type".into(),
                        }));
                    }
                }
                Some(custom.name)
            }
            Some(server) if SERVER_TOOL_TYPES.contains(&server) => {
                tool.get("name").and_then(Value::as_str).map(str::to_owned)
            }
            Some(other) => {
                let mut allowed = vec!["custom"];
                allowed.extend_from_slice(SERVER_TOOL_TYPES);
                return Err(unknown_tag(&at, "type", other, &allowed));
            }
        };
        if let Some(name) = name
            && !names.insert(name)
        {
            return Err("tools: Tool names must be unique.".to_owned());
        }
    }
    Ok(())
}

fn tool_choice(choice: &Value) -> Result<(), String> {
    let at = Path::root().key("tool_choice");
    let kind = required_tag(choice, &at, "type")?;
    let here = at.key(kind);
    match kind {
        "auto" | "any" => parse::<ToolChoiceAuto>(choice, &here).map(drop),
        "tool" => parse::<ToolChoiceTool>(choice, &here).map(drop),
        "none" => parse::<ToolChoiceNone>(choice, &here).map(drop),
        other => {
            return Err(unknown_tag(
                &at,
                "type",
                other,
                &["auto", "any", "tool", "none"],
            ));
        }
    }
    .map_err(wording)
}

/// `thinking`; `enabled` needs a budget of at least 1024 tokens, below `max_tokens`.
fn thinking_config(thinking: &Value, max_tokens: Option<u64>) -> Result<(), String> {
    let at = Path::root().key("thinking");
    let kind = required_tag(thinking, &at, "type")?;
    let here = at.key(kind);
    match kind {
        "enabled" => {
            let enabled: ThinkingEnabled = parse(thinking, &here).map_err(wording)?;
            if enabled.budget_tokens < MIN_THINKING_BUDGET {
                return Err(format!(
                    "{}: Input should be greater than or equal to {MIN_THINKING_BUDGET}",
                    here.key("budget_tokens").dotted()
                ));
            }
            if max_tokens.is_some_and(|max| enabled.budget_tokens >= max) {
                return Err("`max_tokens` must be greater than `thinking.budget_tokens`. Please \
                            consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
                    .to_owned());
            }
            Ok(())
        }
        "adaptive" => parse::<ThinkingAdaptive>(thinking, &here)
            .map(drop)
            .map_err(wording),
        "disabled" | "between_tools" => parse::<TypeOnly>(thinking, &here)
            .map(drop)
            .map_err(wording),
        other => Err(unknown_tag(
            &at,
            "type",
            other,
            &["enabled", "disabled", "between_tools", "adaptive"],
        )),
    }
}

/// What the conversation checks need to know of one content block.
enum Block {
    Text(String),
    ToolUse(String),
    ToolResult(String),
    Other,
}

/// One message's place and blocks.
struct Turn {
    /// Index in `messages`.
    index: usize,
    role: String,
    /// Each block with its index in the message's content.
    blocks: Vec<(usize, Block)>,
}

/// `messages`: each message and block checked; text never empty; every `tool_result` answers
/// a `tool_use` of the assistant turn just before, and every `tool_use` followed by a turn is
/// answered in it; with `signatures`, every `thinking` block carries a signature the fake made.
fn conversation(messages: &[Value], signatures: bool) -> Result<(), String> {
    if messages.is_empty() {
        return Err("messages: at least one message is required".to_owned());
    }
    let mut turns = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = Path::root().key("messages").index(i);
        let role = match tag(message, &at, "role").map_err(wording)? {
            Some(role) => role,
            None => {
                return Err(wording(Flaw::Missing {
                    at,
                    field: "role".into(),
                }));
            }
        };
        match role {
            "user" | "assistant" => {
                let parsed: ChatMessage = parse(message, &at).map_err(wording)?;
                let blocks = content(&parsed.content, &at.key("content"), signatures)?;
                let last = i + 1 == messages.len();
                let empty = blocks.is_empty()
                    || matches!(blocks.as_slice(), [(_, Block::Text(t))] if t.is_empty());
                if empty && !(last && role == "assistant") {
                    return Err(format!(
                        "messages.{i}: all messages must have non-empty content except for the \
                         optional final assistant message"
                    ));
                }
                let empty_text = blocks
                    .iter()
                    .any(|(_, b)| matches!(b, Block::Text(t) if t.is_empty()));
                if empty_text && parsed.content.is_array() {
                    return Err("messages: text content blocks must be non-empty".to_owned());
                }
                turns.push(Turn {
                    index: i,
                    role: role.to_owned(),
                    blocks,
                });
            }
            "system" => {
                parse::<SystemMessage>(message, &at).map_err(wording)?;
            }
            other => {
                return Err(wording(Flaw::Variant {
                    at: at.key("role"),
                    found: other.to_owned(),
                    allowed: vec!["user".into(), "assistant".into(), "system".into()],
                }));
            }
        }
    }
    tool_pairs(&merge(turns))
}

/// Consecutive messages of one role, as the API merges them into one turn.
fn merge(turns: Vec<Turn>) -> Vec<Vec<Turn>> {
    let mut merged: Vec<Vec<Turn>> = Vec::new();
    for turn in turns {
        match merged.last_mut() {
            Some(group) if group.last().is_some_and(|t| t.role == turn.role) => group.push(turn),
            _ => merged.push(vec![turn]),
        }
    }
    merged
}

/// The ids of the `tool_use` (or, with `results`, `tool_result`) blocks of a turn, each with
/// the index of its message and block.
fn ids(turn: &[Turn], results: bool) -> Vec<(usize, usize, &str)> {
    turn.iter()
        .flat_map(|t| {
            t.blocks.iter().filter_map(move |(j, b)| match b {
                Block::ToolUse(id) if !results => Some((t.index, *j, id.as_str())),
                Block::ToolResult(id) if results => Some((t.index, *j, id.as_str())),
                _ => None,
            })
        })
        .collect()
}

/// Each result answers a call of the assistant turn just before; then each call is answered
/// in the turn after it, if there is one.
fn tool_pairs(turns: &[Vec<Turn>]) -> Result<(), String> {
    for (k, turn) in turns.iter().enumerate() {
        let previous: HashSet<&str> = match k.checked_sub(1).map(|p| &turns[p]) {
            Some(prev) if prev.first().is_some_and(|t| t.role == "assistant") => {
                ids(prev, false).into_iter().map(|(_, _, id)| id).collect()
            }
            _ => HashSet::new(),
        };
        let results = ids(turn, true);
        if let Some((m, j, id)) = results.iter().find(|(_, _, id)| !previous.contains(id)) {
            return Err(format!(
                "messages.{m}.content.{j}: unexpected `tool_use_id` found in `tool_result` \
                 blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` \
                 block in the previous message."
            ));
        }
    }
    for (k, turn) in turns.iter().enumerate() {
        let Some(next) = turns.get(k + 1) else {
            continue;
        };
        let answered: HashSet<&str> = ids(next, true).into_iter().map(|(_, _, id)| id).collect();
        let missing: Vec<(usize, usize, &str)> = ids(turn, false)
            .into_iter()
            .filter(|(_, _, id)| !answered.contains(id))
            .collect();
        if let Some((m, _, _)) = missing.first() {
            let names: Vec<&str> = missing.iter().map(|(_, _, id)| *id).collect();
            return Err(format!(
                "messages.{m}: `tool_use` ids were found without `tool_result` blocks \
                 immediately after: {}. Each `tool_use` block must have a corresponding \
                 `tool_result` block in the next message.",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

/// A message's `content`: a string, or a list of blocks.
fn content(content: &Value, at: &Path, signatures: bool) -> Result<Vec<(usize, Block)>, String> {
    match content {
        Value::String(text) => Ok(vec![(0, Block::Text(text.clone()))]),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(j, b)| block(b, &at.index(j), signatures).map(|b| (j, b)))
            .collect(),
        _ => Err(wording(Flaw::Type {
            at: at.clone(),
            expected: Expected::Array,
        })),
    }
}

fn block(value: &Value, at: &Path, signatures: bool) -> Result<Block, String> {
    let kind = required_tag(value, at, "type")?;
    let here = at.key(kind);
    match kind {
        "text" => {
            let text: TextBlock = parse(value, &here).map_err(wording)?;
            Ok(Block::Text(text.text))
        }
        "image" => {
            let image: ImageBlock = parse(value, &here).map_err(wording)?;
            image_source(&image.source, &here.key("source"))?;
            Ok(Block::Other)
        }
        "document" => {
            let document: DocumentBlock = parse(value, &here).map_err(wording)?;
            document_source(&document.source, &here.key("source"))?;
            Ok(Block::Other)
        }
        "search_result" => {
            let result: SearchResultBlock = parse(value, &here).map_err(wording)?;
            text_blocks(&result.content, &here.key("content"))?;
            Ok(Block::Other)
        }
        "thinking" => {
            let thinking: ThinkingBlock = parse(value, &here).map_err(wording)?;
            if signatures && !directive::signed_by_fake(directive::ANTHROPIC, &thinking.signature) {
                return Err(format!(
                    "{}: Invalid `signature` in `thinking` block",
                    at.dotted()
                ));
            }
            Ok(Block::Other)
        }
        "redacted_thinking" => parse::<RedactedThinkingBlock>(value, &here)
            .map(|_| Block::Other)
            .map_err(wording),
        "tool_use" => {
            let call: ToolUseBlock = parse(value, &here).map_err(wording)?;
            tool_id(&call.id, &here.key("id"))?;
            Ok(Block::ToolUse(call.id))
        }
        "tool_result" => {
            let result: ToolResultBlock = parse(value, &here).map_err(wording)?;
            tool_id(&result.tool_use_id, &here.key("tool_use_id"))?;
            match &result.content {
                None | Some(Value::String(_)) => {}
                Some(Value::Array(blocks)) => {
                    for (k, b) in blocks.iter().enumerate() {
                        tool_result_block(b, &here.key("content").index(k))?;
                    }
                }
                Some(_) => {
                    return Err(wording(Flaw::Type {
                        at: here.key("content"),
                        expected: Expected::Array,
                    }));
                }
            }
            Ok(Block::ToolResult(result.tool_use_id))
        }
        "server_tool_use" => parse::<ServerToolUseBlock>(value, &here)
            .map(|_| Block::Other)
            .map_err(wording),
        "container_upload" => parse::<ContainerUploadBlock>(value, &here)
            .map(|_| Block::Other)
            .map_err(wording),
        loose if LOOSE_BLOCK_TYPES.contains(&loose) => Ok(Block::Other),
        other => Err(unknown_tag(at, "type", other, BLOCK_TYPES)),
    }
}

/// Tool call ids are `^[a-zA-Z0-9_-]+$` (an id another format made may not be).
fn tool_id(id: &str, at: &Path) -> Result<(), String> {
    if plain_name(id, usize::MAX) {
        return Ok(());
    }
    Err(format!(
        "{}: String should match pattern '^[a-zA-Z0-9_-]+$'",
        at.dotted()
    ))
}

/// A block inside a `tool_result`'s content.
fn tool_result_block(value: &Value, at: &Path) -> Result<(), String> {
    let kind = required_tag(value, at, "type")?;
    let here = at.key(kind);
    match kind {
        "text" => parse::<TextBlock>(value, &here).map(drop).map_err(wording),
        "image" => {
            let image: ImageBlock = parse(value, &here).map_err(wording)?;
            image_source(&image.source, &here.key("source"))
        }
        "document" => {
            let document: DocumentBlock = parse(value, &here).map_err(wording)?;
            document_source(&document.source, &here.key("source"))
        }
        "search_result" => {
            let result: SearchResultBlock = parse(value, &here).map_err(wording)?;
            text_blocks(&result.content, &here.key("content"))
        }
        "tool_reference" => parse::<ToolReferenceBlock>(value, &here)
            .map(drop)
            .map_err(wording),
        "browser_state" => Ok(()),
        other => Err(unknown_tag(at, "type", other, TOOL_RESULT_BLOCK_TYPES)),
    }
}

/// A list that holds only text blocks.
fn text_blocks(blocks: &[Value], at: &Path) -> Result<(), String> {
    for (i, block) in blocks.iter().enumerate() {
        let here = at.index(i);
        match required_tag(block, &here, "type")? {
            "text" => {
                parse::<TextBlock>(block, &here.key("text")).map_err(wording)?;
            }
            other => return Err(unknown_tag(&here, "type", other, &["text"])),
        }
    }
    Ok(())
}

/// An image's `source`: base64 data of a known image type, a URL, or a file id.
fn image_source(source: &Value, at: &Path) -> Result<(), String> {
    let kind = required_tag(source, at, "type")?;
    let here = at.key(kind);
    match kind {
        "base64" => {
            let image: Base64ImageSource = parse(source, &here).map_err(wording)?;
            if directive::decoded_len(&image.data).is_none() {
                return Err(format!(
                    "{}: Invalid base64 data",
                    here.key("data").dotted()
                ));
            }
            Ok(())
        }
        "url" => parse::<UrlSource>(source, &here).map(drop).map_err(wording),
        "file" => parse::<FileSource>(source, &here)
            .map(drop)
            .map_err(wording),
        other => Err(unknown_tag(at, "type", other, &["base64", "url", "file"])),
    }
}

/// A document's `source`: a PDF (base64 or URL), plain text, content blocks, or a file id.
fn document_source(source: &Value, at: &Path) -> Result<(), String> {
    let kind = required_tag(source, at, "type")?;
    let here = at.key(kind);
    match kind {
        "base64" => parse::<PdfSource>(source, &here).map(drop).map_err(wording),
        "text" => parse::<PlainTextSource>(source, &here)
            .map(drop)
            .map_err(wording),
        "content" => {
            let content: ContentSource = parse(source, &here).map_err(wording)?;
            match &content.content {
                Value::String(_) => Ok(()),
                Value::Array(blocks) => {
                    for (i, b) in blocks.iter().enumerate() {
                        let block_at = here.key("content").index(i);
                        match required_tag(b, &block_at, "type")? {
                            "text" => {
                                parse::<TextBlock>(b, &block_at.key("text")).map_err(wording)?;
                            }
                            "image" => {
                                let image: ImageBlock =
                                    parse(b, &block_at.key("image")).map_err(wording)?;
                                image_source(&image.source, &block_at.key("image").key("source"))?;
                            }
                            other => {
                                return Err(unknown_tag(
                                    &block_at,
                                    "type",
                                    other,
                                    &["text", "image"],
                                ));
                            }
                        }
                    }
                    Ok(())
                }
                _ => Err(wording(Flaw::Type {
                    at: here.key("content"),
                    expected: Expected::Array,
                })),
            }
        }
        "url" => parse::<UrlSource>(source, &here).map(drop).map_err(wording),
        "file" => parse::<FileSource>(source, &here)
            .map(drop)
            .map_err(wording),
        other => Err(unknown_tag(
            at,
            "type",
            other,
            &["base64", "text", "content", "url", "file"],
        )),
    }
}
