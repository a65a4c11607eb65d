//! OpenAI Responses wire types, as documented in the API reference
//! (<https://platform.openai.com/docs/api-reference/responses/create>, `.../responses/object`,
//! `.../responses-streaming`). Only the client side: a Responses client going to an `openai`
//! upstream is not translated.

use serde::de::{Deserializer, MapAccess};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::json::{self, RequestObject, StrOr, StrOrObj};

/// A `POST /v1/responses` body.
#[derive(Debug, Default)]
pub struct ResponsesRequest {
    pub model: String,
    pub input: Option<StrOr<InputItem>>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<StrOrObj<ToolChoiceObject>>,
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<ReasoningConfig>,
    pub text: Option<TextConfig>,
    pub stream: bool,
    pub user: Option<String>,
    pub safety_identifier: Option<String>,
    pub known_other: Vec<(String, Value)>,
    pub extra: Map<String, Value>,
}

/// Top-level Responses fields that Keyway does not map but knows the meaning of.
pub const KNOWN_OTHER: [&str; 17] = [
    "previous_response_id",
    "conversation",
    "prompt",
    "background",
    "store",
    "include",
    "metadata",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "truncation",
    "max_tool_calls",
    "top_logprobs",
    "stream_options",
    "context_management",
    "client_metadata",
    "moderation",
];

impl<'de> Deserialize<'de> for ResponsesRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        json::deserialize_request(deserializer)
    }
}

impl RequestObject for ResponsesRequest {
    const EXPECTING: &'static str = "a Responses request object";
    const KNOWN_OTHER: &'static [&'static str] = &KNOWN_OTHER;

    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "model" => self.model = map.next_value()?,
            "input" => self.input = map.next_value()?,
            "instructions" => self.instructions = map.next_value()?,
            "max_output_tokens" => self.max_output_tokens = map.next_value()?,
            "temperature" => self.temperature = map.next_value()?,
            "top_p" => self.top_p = map.next_value()?,
            "tools" => self.tools = map.next_value::<Option<_>>()?.unwrap_or_default(),
            "tool_choice" => self.tool_choice = map.next_value()?,
            "parallel_tool_calls" => self.parallel_tool_calls = map.next_value()?,
            "reasoning" => self.reasoning = map.next_value()?,
            "text" => self.text = map.next_value()?,
            "stream" => self.stream = map.next_value::<Option<bool>>()?.unwrap_or(false),
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

/// An input item of any type, flat. A message may leave out `type`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InputItem {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub role: Option<String>,
    pub content: Option<StrOr<InputContent>>,
    pub call_id: Option<String>,
    pub name: Option<String>,
    /// The tool namespace a `function_call` belongs to.
    pub namespace: Option<String>,
    pub arguments: Option<String>,
    pub output: Option<StrOr<InputContent>>,
    pub summary: Vec<SummaryText>,
    /// Reasoning text (open-weight models); read like a summary.
    pub encrypted_content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InputContent {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub image_url: Option<String>,
    pub file_id: Option<String>,
    pub refusal: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct SummaryText {
    #[serde(rename = "type", default = "summary_type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
}

fn summary_type() -> String {
    "summary_text".into()
}

/// A tool: `function` (flat, unlike Chat's) or one of OpenAI's own (refused).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub parameters: Option<Box<RawValue>>,
    pub strict: Option<bool>,
    /// A `namespace` tool's own tools.
    pub tools: Vec<Tool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ToolChoiceObject {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReasoningConfig {
    pub effort: Option<String>,
    pub summary: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    pub format: Option<TextFormat>,
    pub verbosity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TextFormat {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub schema: Option<Box<RawValue>>,
    pub strict: Option<bool>,
}

// What Keyway writes to a Responses client.

/// An output item, whole.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    Message {
        id: String,
        status: &'static str,
        role: &'static str,
        content: Vec<OutputText>,
    },
    Reasoning {
        id: String,
        summary: Vec<SummaryText>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
        status: &'static str,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        arguments: String,
        status: &'static str,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    pub annotations: [(); 0],
    pub logprobs: [(); 0],
}

impl OutputText {
    pub fn new(text: String) -> OutputText {
        OutputText {
            kind: "output_text",
            text,
            annotations: [],
            logprobs: [],
        }
    }
}

/// The Response object.
#[derive(Debug, Serialize)]
pub struct ResponseObject<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created_at: u64,
    pub status: &'static str,
    pub error: Option<ResponseError<'a>>,
    pub incomplete_details: Option<Incomplete>,
    pub instructions: Option<()>,
    pub model: &'a str,
    pub output: &'a [OutputItem],
    pub parallel_tool_calls: bool,
    pub tool_choice: &'static str,
    pub tools: [(); 0],
    pub usage: Option<Usage>,
}

#[derive(Debug, Serialize)]
pub struct ResponseError<'a> {
    pub code: &'static str,
    pub message: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Incomplete {
    pub reason: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub input_tokens_details: InputDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputDetails,
    pub total_tokens: u64,
}

#[derive(Debug, Serialize)]
pub struct InputDetails {
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
}

#[derive(Debug, Serialize)]
pub struct OutputDetails {
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn from_ir(usage: &crate::ir::Usage) -> Usage {
        Usage {
            input_tokens: usage.input,
            input_tokens_details: InputDetails {
                cached_tokens: usage.cached,
                cache_write_tokens: usage.cache_write,
            },
            output_tokens: usage.output,
            output_tokens_details: OutputDetails {
                reasoning_tokens: usage.reasoning,
            },
            total_tokens: usage.total(),
        }
    }
}

/// One stream event: its `type`, its `sequence_number` and its own fields.
#[derive(Serialize)]
pub struct StreamEvent<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub sequence_number: u64,
    #[serde(flatten)]
    pub body: T,
}

#[derive(Serialize)]
pub struct WithResponse<'a> {
    pub response: ResponseObject<'a>,
}

#[derive(Serialize)]
pub struct WithItem<'a> {
    pub output_index: usize,
    pub item: &'a OutputItem,
}

#[derive(Serialize)]
pub struct ContentPartEvent<'a> {
    pub item_id: &'a str,
    pub output_index: usize,
    pub content_index: usize,
    pub part: &'a OutputText,
}

#[derive(Serialize)]
pub struct TextDelta<'a> {
    pub item_id: &'a str,
    pub output_index: usize,
    pub content_index: usize,
    pub delta: &'a str,
    pub logprobs: [(); 0],
}

#[derive(Serialize)]
pub struct TextDone<'a> {
    pub item_id: &'a str,
    pub output_index: usize,
    pub content_index: usize,
    pub text: &'a str,
    pub logprobs: [(); 0],
}

#[derive(Serialize)]
pub struct SummaryPartEvent<'a> {
    pub item_id: &'a str,
    pub output_index: usize,
    pub summary_index: usize,
    pub part: &'a SummaryText,
}

#[derive(Serialize)]
pub struct SummaryDelta<'a> {
    pub item_id: &'a str,
    pub output_index: usize,
    pub summary_index: usize,
    pub delta: &'a str,
}

#[derive(Serialize)]
pub struct SummaryDone<'a> {
    pub item_id: &'a str,
    pub output_index: usize,
    pub summary_index: usize,
    pub text: &'a str,
}

#[derive(Serialize)]
pub struct ArgumentsDelta<'a> {
    pub item_id: &'a str,
    pub output_index: usize,
    pub delta: &'a str,
}

#[derive(Serialize)]
pub struct ArgumentsDone<'a> {
    pub item_id: &'a str,
    pub output_index: usize,
    pub name: &'a str,
    pub arguments: &'a str,
}
