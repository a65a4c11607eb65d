//! Anthropic Messages wire types, as documented in the API reference
//! (<https://platform.claude.com/docs/en/api/messages>, `.../messages/count_tokens`,
//! `.../build-with-claude/streaming`).
//!
//! Content blocks are one flat struct with optional fields rather than an enum tagged by
//! `type`: serde's internally tagged enums buffer every block (and cannot hold raw JSON), and
//! a flat struct also keeps an unknown block's `type` for the error that refuses it.

use serde::de::{Deserializer, MapAccess};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::json::{self, RequestObject, StrOr};

/// `POST /v1/messages` and `/v1/messages/count_tokens` bodies, as a client sends them.
#[derive(Debug, Default)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<MessageParam>,
    pub system: Option<StrOr<Block>>,
    pub max_tokens: Option<u32>,
    pub metadata: Option<Metadata>,
    pub stop_sequences: Vec<String>,
    pub stream: bool,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub thinking: Option<ThinkingConfig>,
    pub tool_choice: Option<ToolChoice>,
    pub tools: Vec<ToolDef>,
    pub output_config: Option<OutputConfig>,
    /// Fields Keyway knows and handles one by one (refused or dropped, see the client
    /// module): `container`, `mcp_servers`, `context_management`, `service_tier`, ...
    pub known_other: Vec<(String, Value)>,
    /// Fields Keyway does not know.
    pub extra: Map<String, Value>,
}

/// Top-level fields of the Messages request that Keyway does not map but knows the meaning
/// of.
pub const KNOWN_OTHER: [&str; 9] = [
    "container",
    "mcp_servers",
    "context_management",
    "service_tier",
    "cache_control",
    "inference_geo",
    "speed",
    "diagnostics",
    "betas",
];

impl<'de> Deserialize<'de> for MessagesRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        json::deserialize_request(deserializer)
    }
}

impl RequestObject for MessagesRequest {
    const EXPECTING: &'static str = "a Messages request object";
    const KNOWN_OTHER: &'static [&'static str] = &KNOWN_OTHER;

    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "model" => self.model = map.next_value()?,
            "messages" => self.messages = map.next_value::<Option<_>>()?.unwrap_or_default(),
            "system" => self.system = map.next_value()?,
            "max_tokens" => self.max_tokens = map.next_value()?,
            "metadata" => self.metadata = map.next_value()?,
            "stop_sequences" => {
                self.stop_sequences = map.next_value::<Option<_>>()?.unwrap_or_default()
            }
            "stream" => self.stream = map.next_value::<Option<bool>>()?.unwrap_or(false),
            "temperature" => self.temperature = map.next_value()?,
            "top_p" => self.top_p = map.next_value()?,
            "top_k" => self.top_k = map.next_value()?,
            "thinking" => self.thinking = map.next_value()?,
            "tool_choice" => self.tool_choice = map.next_value()?,
            "tools" => self.tools = map.next_value::<Option<_>>()?.unwrap_or_default(),
            "output_config" => self.output_config = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn others(&mut self) -> (&mut Vec<(String, Value)>, &mut Map<String, Value>) {
        (&mut self.known_other, &mut self.extra)
    }

    fn missing(&self) -> Option<&'static str> {
        self.model.is_empty().then_some("model")
    }
}

#[derive(Debug, Deserialize, Serialize)]
pub struct MessageParam {
    pub role: String,
    #[serde(default)]
    pub content: StrOr<Block>,
}

/// Any content block, in either direction.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ImageSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<StrOr<Block>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Block {
    pub fn text(text: String) -> Block {
        Block {
            kind: "text".into(),
            text: Some(text),
            ..Block::default()
        }
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ImageSource {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ThinkingConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

/// A tool definition. `type` is absent (or `custom`) for a client tool; anything else is one
/// of Anthropic's own tools (server tools such as `web_search_…`, or schema-less client tools
/// such as `bash_…`).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ToolDef {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct OutputConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct OutputFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Box<RawValue>>,
}

/// The body Keyway sends to an Anthropic upstream.
#[derive(Debug, Serialize)]
pub struct UpstreamRequest {
    pub model: String,
    pub messages: Vec<MessageParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<StrOr<Block>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl UpstreamRequest {
    /// The top-level keys this body writes: a client's unknown field of the same name is not
    /// forwarded beside them.
    pub fn written(&self) -> Vec<&'static str> {
        let set = [
            ("system", self.system.is_some()),
            ("max_tokens", self.max_tokens.is_some()),
            ("metadata", self.metadata.is_some()),
            ("stop_sequences", !self.stop_sequences.is_empty()),
            ("stream", self.stream),
            ("temperature", self.temperature.is_some()),
            ("top_p", self.top_p.is_some()),
            ("top_k", self.top_k.is_some()),
            ("thinking", self.thinking.is_some()),
            ("tool_choice", self.tool_choice.is_some()),
            ("tools", !self.tools.is_empty()),
            ("output_config", self.output_config.is_some()),
        ];
        let mut keys = vec!["model", "messages"];
        keys.extend(set.into_iter().filter_map(|(key, set)| set.then_some(key)));
        keys
    }
}

/// A whole Messages answer, read from an upstream or written to a client.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Message {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub content: Vec<Block>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: Usage,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct OutputTokensDetails {
    #[serde(default)]
    pub thinking_tokens: u64,
}

impl Usage {
    pub fn from_ir(usage: &crate::ir::Usage) -> Usage {
        Usage {
            input_tokens: Some(usage.uncached_input()),
            cache_creation_input_tokens: Some(usage.cache_write),
            cache_read_input_tokens: Some(usage.cached),
            output_tokens: Some(usage.output),
            output_tokens_details: (usage.reasoning > 0).then_some(OutputTokensDetails {
                thinking_tokens: usage.reasoning,
            }),
        }
    }

    /// Into `usage`, replacing only what this report carries (a `message_delta` often
    /// carries just `output_tokens`).
    pub fn merge_into(&self, usage: &mut crate::ir::Usage) {
        let plain = self.input_tokens.unwrap_or_else(|| usage.uncached_input());
        if let Some(write) = self.cache_creation_input_tokens {
            usage.cache_write = write;
        }
        if let Some(read) = self.cache_read_input_tokens {
            usage.cached = read;
        }
        usage.input = plain
            .saturating_add(usage.cache_write)
            .saturating_add(usage.cached);
        if let Some(output) = self.output_tokens {
            usage.output = output;
        }
        if let Some(details) = &self.output_tokens_details {
            usage.reasoning = details.thinking_tokens;
        }
    }
}

/// `{"input_tokens": n}`, the count_tokens answer.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct CountResponse {
    pub input_tokens: u64,
}

/// One event of an upstream stream. Flat, for the same reason as [`Block`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StreamEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: Option<Message>,
    pub index: Option<usize>,
    pub content_block: Option<Block>,
    pub delta: Option<Delta>,
    pub usage: Option<Usage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Delta {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<String>,
    pub partial_json: Option<String>,
    pub thinking: Option<String>,
    pub signature: Option<String>,
    pub stop_reason: Option<String>,
    pub stop_sequence: Option<String>,
}

// Events Keyway writes to an Anthropic client, borrowing what they carry.

#[derive(Serialize)]
pub struct MessageStart<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: StartMessage<'a>,
}

#[derive(Serialize)]
pub struct StartMessage<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: [(); 0],
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<&'static str>,
    pub usage: Usage,
}

#[derive(Serialize)]
pub struct BlockStart<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub index: usize,
    pub content_block: StartBlock<'a>,
}

/// The opening shape of a streamed block: empty text, empty thinking, a tool call with empty
/// input, or a whole redacted-thinking block.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StartBlock<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
        signature: &'static str,
    },
    RedactedThinking {
        data: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: EmptyObject,
    },
}

/// Serialises as `{}`.
pub struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        serializer.serialize_map(Some(0))?.end()
    }
}

#[derive(Serialize)]
pub struct BlockDelta<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub index: usize,
    pub delta: DeltaOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
pub enum DeltaOut<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
pub struct BlockStop {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub index: usize,
}

#[derive(Serialize)]
pub struct MessageDelta<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub delta: StopDelta<'a>,
    pub usage: Usage,
}

#[derive(Serialize)]
pub struct StopDelta<'a> {
    pub stop_reason: &'static str,
    pub stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
pub struct TypeOnly {
    #[serde(rename = "type")]
    pub kind: &'static str,
}
