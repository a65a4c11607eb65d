//! OpenAI Chat Completions wire types, as documented in the API reference
//! (<https://platform.openai.com/docs/api-reference/chat/create>, `.../chat/object`,
//! `.../chat-streaming`), plus the fields OpenAI-compatible services add to answers
//! (`reasoning_content` from DeepSeek and vLLM, `reasoning` from OpenRouter, DeepSeek's
//! `prompt_cache_hit_tokens`).
//!
//! Finish reasons and roles are strings, not enums: OpenAI-compatible services send values
//! OpenAI never documented, and one unexpected value must not make a whole answer unreadable.

use serde::de::{Deserializer, MapAccess};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::json::{self, RequestObject, StrOr, StrOrObj};

/// A Chat Completions request as a client sends it.
#[derive(Debug, Default)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub n: Option<u32>,
    pub stop: Option<StrOr<String>>,
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<StrOrObj<ToolChoiceObject>>,
    pub parallel_tool_calls: Option<bool>,
    pub reasoning_effort: Option<String>,
    pub response_format: Option<ResponseFormat>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub user: Option<String>,
    pub safety_identifier: Option<String>,
    /// Fields Keyway knows and handles one by one (refused or dropped, see the client
    /// module).
    pub known_other: Vec<(String, Value)>,
    /// Fields Keyway does not know.
    pub extra: Map<String, Value>,
}

/// Top-level Chat fields that Keyway does not map but knows the meaning of.
pub const KNOWN_OTHER: [&str; 15] = [
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "verbosity",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
];

impl<'de> Deserialize<'de> for ChatRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        json::deserialize_request(deserializer)
    }
}

impl RequestObject for ChatRequest {
    const EXPECTING: &'static str = "a Chat Completions request object";
    const KNOWN_OTHER: &'static [&'static str] = &KNOWN_OTHER;

    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "model" => self.model = map.next_value()?,
            "messages" => self.messages = map.next_value::<Option<_>>()?.unwrap_or_default(),
            "max_tokens" => self.max_tokens = map.next_value()?,
            "max_completion_tokens" => self.max_completion_tokens = map.next_value()?,
            "temperature" => self.temperature = map.next_value()?,
            "top_p" => self.top_p = map.next_value()?,
            "n" => self.n = map.next_value()?,
            "stop" => self.stop = map.next_value()?,
            "stream" => self.stream = map.next_value::<Option<bool>>()?.unwrap_or(false),
            "stream_options" => self.stream_options = map.next_value()?,
            "tools" => self.tools = map.next_value::<Option<_>>()?.unwrap_or_default(),
            "tool_choice" => self.tool_choice = map.next_value()?,
            "parallel_tool_calls" => self.parallel_tool_calls = map.next_value()?,
            "reasoning_effort" => self.reasoning_effort = map.next_value()?,
            "response_format" => self.response_format = map.next_value()?,
            "seed" => self.seed = map.next_value()?,
            "presence_penalty" => self.presence_penalty = map.next_value()?,
            "frequency_penalty" => self.frequency_penalty = map.next_value()?,
            "user" => self.user = map.next_value()?,
            "safety_identifier" => self.safety_identifier = map.next_value()?,
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

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// A message of any role, in either direction.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Message {
    pub role: String,
    /// `null` (an assistant turn with only tool calls) reads as an empty list; Keyway writes
    /// `null` explicitly there, as OpenAI does.
    #[serde(default)]
    pub content: Option<StrOr<ContentPart>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// DeepSeek's and vLLM's reasoning text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// OpenRouter's reasoning text (read only).
    #[serde(default, skip_serializing)]
    pub reasoning: Option<Value>,
    /// The legacy single function call (refused).
    #[serde(default, skip_serializing)]
    pub function_call: Option<Value>,
}

/// A content part, flat (see the Anthropic block for why).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ImageUrl {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ToolCall {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FunctionCall {
    #[serde(default)]
    pub name: String,
    /// JSON text, as OpenAI sends it.
    #[serde(default)]
    pub arguments: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ToolDef {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDef>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ToolChoiceObject {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<NamedFunction>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct NamedFunction {
    pub name: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<JsonSchema>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct JsonSchema {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// The body Keyway sends to an `openai` upstream.
#[derive(Debug, Serialize)]
pub struct UpstreamRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<UpstreamStreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<StrOrObjOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl UpstreamRequest {
    /// The top-level keys this body writes: a client's unknown field of the same name is not
    /// forwarded beside them.
    pub fn written(&self) -> Vec<&'static str> {
        let set = [
            ("max_tokens", self.max_tokens.is_some()),
            (
                "max_completion_tokens",
                self.max_completion_tokens.is_some(),
            ),
            ("temperature", self.temperature.is_some()),
            ("top_p", self.top_p.is_some()),
            ("stop", !self.stop.is_empty()),
            ("stream", self.stream),
            ("stream_options", self.stream_options.is_some()),
            ("tools", !self.tools.is_empty()),
            ("tool_choice", self.tool_choice.is_some()),
            ("parallel_tool_calls", self.parallel_tool_calls.is_some()),
            ("reasoning_effort", self.reasoning_effort.is_some()),
            ("response_format", self.response_format.is_some()),
            ("seed", self.seed.is_some()),
            ("presence_penalty", self.presence_penalty.is_some()),
            ("frequency_penalty", self.frequency_penalty.is_some()),
            ("user", self.user.is_some()),
        ];
        let mut keys = vec!["model", "messages"];
        keys.extend(set.into_iter().filter_map(|(key, set)| set.then_some(key)));
        keys
    }
}

#[derive(Debug, Serialize)]
pub struct UpstreamStreamOptions {
    pub include_usage: bool,
}

/// `tool_choice` as Keyway writes it: a mode name or a named function.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum StrOrObjOut {
    Mode(&'static str),
    Function(ToolChoiceObject),
}

/// A whole chat completion, read from an upstream.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Completion {
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Choice {
    pub message: Message,
    pub finish_reason: Option<String>,
}

/// Usage as OpenAI and its compatible services report it.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek's cache hits.
    #[serde(default, skip_serializing)]
    pub prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct CompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    pub fn to_ir(&self) -> crate::ir::Usage {
        let details = self.prompt_tokens_details.as_ref();
        crate::ir::Usage {
            input: self.prompt_tokens,
            cached: details
                .and_then(|d| d.cached_tokens)
                .or(self.prompt_cache_hit_tokens)
                .unwrap_or(0),
            cache_write: details.and_then(|d| d.cache_write_tokens).unwrap_or(0),
            output: self.completion_tokens,
            reasoning: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }

    pub fn from_ir(usage: &crate::ir::Usage) -> Usage {
        Usage {
            prompt_tokens: usage.input,
            completion_tokens: usage.output,
            total_tokens: usage.total(),
            prompt_tokens_details: Some(PromptDetails {
                cached_tokens: Some(usage.cached),
                cache_write_tokens: (usage.cache_write > 0).then_some(usage.cache_write),
            }),
            completion_tokens_details: Some(CompletionDetails {
                reasoning_tokens: Some(usage.reasoning),
            }),
            prompt_cache_hit_tokens: None,
        }
    }
}

/// One streamed chunk, read from an upstream. An error in the middle of a stream comes as
/// `{"error": {...}}` instead.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Chunk {
    pub choices: Vec<ChunkChoice>,
    pub usage: Option<Usage>,
    pub error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChunkChoice {
    pub delta: ChunkDelta,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChunkDelta {
    pub content: Option<String>,
    pub reasoning_content: Option<String>,
    pub reasoning: Option<Value>,
    pub refusal: Option<String>,
    pub tool_calls: Option<Vec<ChunkToolCall>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChunkToolCall {
    pub index: Option<usize>,
    pub id: Option<String>,
    pub function: Option<ChunkFunction>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChunkFunction {
    pub name: Option<String>,
    pub arguments: Option<String>,
}

// What Keyway writes to a Chat client.

#[derive(Serialize)]
pub struct CompletionOut<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: [ChoiceOut<'a>; 1],
    pub usage: Usage,
}

#[derive(Serialize)]
pub struct ChoiceOut<'a> {
    pub index: u32,
    pub message: MessageOut<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

#[derive(Serialize)]
pub struct MessageOut<'a> {
    pub role: &'static str,
    pub content: Option<&'a str>,
    pub refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut<'a>>,
}

#[derive(Serialize)]
pub struct ToolCallOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionOut<'a>,
}

#[derive(Serialize)]
pub struct FunctionOut<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

#[derive(Serialize)]
pub struct ChunkOut<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<ChunkChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Serialize)]
pub struct ChunkChoiceOut<'a> {
    pub index: u32,
    pub delta: DeltaOut<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
pub struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
}

#[derive(Serialize)]
pub struct ToolCallDeltaOut<'a> {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDeltaOut<'a>,
}

#[derive(Serialize)]
pub struct FunctionDeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}
