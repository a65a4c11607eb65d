//! Gemini `generateContent` wire types, as documented in the API reference
//! (<https://ai.google.dev/api/generate-content>, `.../api/caching#Content`,
//! `.../api/tokens`, `.../gemini-api/docs/function-calling`,
//! `.../gemini-api/docs/thought-signatures`).
//!
//! Gemini's JSON is the proto3 mapping: it writes camelCase and accepts snake_case too, and
//! its documentation mixes both (`system_instruction` beside `generationConfig`), so every
//! request field Keyway reads takes both spellings.

use serde::de::{Deserializer, IgnoredAny, MapAccess};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::json::{self, RequestObject};

/// A `generateContent` / `streamGenerateContent` / `countTokens` body from a client.
#[derive(Debug, Default)]
pub struct GenerateRequest {
    pub contents: Vec<Content>,
    pub system_instruction: Option<Content>,
    pub tools: Vec<Tool>,
    pub tool_config: Option<ToolConfig>,
    pub generation_config: Option<GenerationConfig>,
    /// countTokens may wrap a whole request.
    pub generate_content_request: Option<Box<GenerateRequest>>,
    /// Fields Keyway knows and handles one by one.
    pub known_other: Vec<(String, Value)>,
    pub extra: Map<String, Value>,
}

/// Top-level fields Keyway knows but does not map.
pub const KNOWN_OTHER: [&str; 6] = [
    "safetySettings",
    "safety_settings",
    "cachedContent",
    "cached_content",
    "labels",
    "model",
];

impl<'de> Deserialize<'de> for GenerateRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        json::deserialize_request(deserializer)
    }
}

impl RequestObject for GenerateRequest {
    const EXPECTING: &'static str = "a generateContent request object";
    const KNOWN_OTHER: &'static [&'static str] = &KNOWN_OTHER;

    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "contents" => self.contents = map.next_value::<Option<_>>()?.unwrap_or_default(),
            "systemInstruction" | "system_instruction" => {
                self.system_instruction = map.next_value()?
            }
            "tools" => self.tools = map.next_value::<Option<_>>()?.unwrap_or_default(),
            "toolConfig" | "tool_config" => self.tool_config = map.next_value()?,
            "generationConfig" | "generation_config" => {
                self.generation_config = map.next_value()?
            }
            "generateContentRequest" | "generate_content_request" => {
                self.generate_content_request = map.next_value()?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn others(&mut self) -> (&mut Vec<(String, Value)>, &mut Map<String, Value>) {
        (&mut self.known_other, &mut self.extra)
    }

    fn missing(&self) -> Option<&'static str> {
        None
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// A part, flat (see the Anthropic block for why).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    #[serde(
        default,
        alias = "thought_signature",
        skip_serializing_if = "Option::is_none"
    )]
    pub thought_signature: Option<String>,
    #[serde(
        default,
        alias = "inline_data",
        skip_serializing_if = "Option::is_none"
    )]
    pub inline_data: Option<Blob>,
    #[serde(default, alias = "file_data", skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    #[serde(
        default,
        alias = "function_call",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_call: Option<FunctionCall>,
    #[serde(
        default,
        alias = "function_response",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_response: Option<FunctionResponse>,
    #[serde(
        default,
        alias = "executable_code",
        skip_serializing_if = "Option::is_none"
    )]
    pub executable_code: Option<IgnoredValue>,
    #[serde(
        default,
        alias = "code_execution_result",
        skip_serializing_if = "Option::is_none"
    )]
    pub code_execution_result: Option<IgnoredValue>,
}

/// A value Keyway only needs to know is there.
#[derive(Debug, Default)]
pub struct IgnoredValue;

impl<'de> Deserialize<'de> for IgnoredValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| IgnoredValue)
    }
}

impl Serialize for IgnoredValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    #[serde(default, alias = "mime_type")]
    pub mime_type: String,
    #[serde(default)]
    pub data: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    #[serde(default, alias = "mime_type", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, alias = "file_uri")]
    pub file_uri: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FunctionCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FunctionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Box<RawValue>>,
}

/// A tool entry: function declarations, or one of Gemini's own tools (refused).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    #[serde(
        default,
        alias = "function_declarations",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub function_declarations: Vec<FunctionDeclaration>,
    #[serde(default, alias = "google_search", skip_serializing)]
    pub google_search: Option<IgnoredValue>,
    #[serde(default, alias = "google_search_retrieval", skip_serializing)]
    pub google_search_retrieval: Option<IgnoredValue>,
    #[serde(default, alias = "code_execution", skip_serializing)]
    pub code_execution: Option<IgnoredValue>,
    #[serde(default, alias = "url_context", skip_serializing)]
    pub url_context: Option<IgnoredValue>,
    #[serde(default, alias = "file_search", skip_serializing)]
    pub file_search: Option<IgnoredValue>,
    #[serde(default, alias = "computer_use", skip_serializing)]
    pub computer_use: Option<IgnoredValue>,
    #[serde(default, alias = "google_maps", skip_serializing)]
    pub google_maps: Option<IgnoredValue>,
}

impl Tool {
    /// The name of the first of Gemini's own tools this entry holds.
    pub fn server_tool(&self) -> Option<&'static str> {
        [
            (self.google_search.is_some(), "googleSearch"),
            (
                self.google_search_retrieval.is_some(),
                "googleSearchRetrieval",
            ),
            (self.code_execution.is_some(), "codeExecution"),
            (self.url_context.is_some(), "urlContext"),
            (self.file_search.is_some(), "fileSearch"),
            (self.computer_use.is_some(), "computerUse"),
            (self.google_maps.is_some(), "googleMaps"),
        ]
        .into_iter()
        .find_map(|(present, name)| present.then_some(name))
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeclaration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Gemini's OpenAPI-style schema (read only; Keyway writes JSON Schema).
    #[serde(default, skip_serializing)]
    pub parameters: Option<Value>,
    #[serde(
        default,
        alias = "parameters_json_schema",
        skip_serializing_if = "Option::is_none"
    )]
    pub parameters_json_schema: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    #[serde(
        default,
        alias = "function_calling_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_calling_config: Option<FunctionCallingConfig>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(
        default,
        alias = "allowed_function_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_function_names: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(
        default,
        alias = "stop_sequences",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub stop_sequences: Vec<String>,
    #[serde(
        default,
        alias = "max_output_tokens",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, alias = "top_p", skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, alias = "top_k", skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(
        default,
        alias = "presence_penalty",
        skip_serializing_if = "Option::is_none"
    )]
    pub presence_penalty: Option<f64>,
    #[serde(
        default,
        alias = "frequency_penalty",
        skip_serializing_if = "Option::is_none"
    )]
    pub frequency_penalty: Option<f64>,
    #[serde(
        default,
        alias = "candidate_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub candidate_count: Option<u32>,
    #[serde(
        default,
        alias = "response_mime_type",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_mime_type: Option<String>,
    /// OpenAPI-style schema (read only).
    #[serde(default, alias = "response_schema", skip_serializing)]
    pub response_schema: Option<Value>,
    #[serde(
        default,
        alias = "response_json_schema",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_json_schema: Option<Box<RawValue>>,
    #[serde(
        default,
        alias = "response_modalities",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub response_modalities: Vec<String>,
    #[serde(
        default,
        alias = "thinking_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking_config: Option<ThinkingConfig>,
    /// Read only: refused when set.
    #[serde(default, alias = "speech_config", skip_serializing)]
    pub speech_config: Option<IgnoredValue>,
    #[serde(default, alias = "response_logprobs", skip_serializing)]
    pub response_logprobs: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    #[serde(
        default,
        alias = "thinking_budget",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking_budget: Option<i64>,
    #[serde(
        default,
        alias = "include_thoughts",
        skip_serializing_if = "Option::is_none"
    )]
    pub include_thoughts: Option<bool>,
    #[serde(
        default,
        alias = "thinking_level",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking_level: Option<String>,
}

/// The body Keyway sends to a Gemini upstream.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamRequest {
    pub contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl UpstreamRequest {
    /// The top-level keys this body writes, in both spellings (Gemini reads both): a client's
    /// unknown field of the same name is not forwarded beside them.
    pub fn written(&self) -> Vec<&'static str> {
        let set = [
            (
                ["systemInstruction", "system_instruction"],
                self.system_instruction.is_some(),
            ),
            (["tools", "tools"], !self.tools.is_empty()),
            (["toolConfig", "tool_config"], self.tool_config.is_some()),
            (
                ["generationConfig", "generation_config"],
                self.generation_config.is_some(),
            ),
        ];
        let mut keys = vec!["contents"];
        for (names, set) in set {
            if set {
                keys.extend(names);
            }
        }
        keys
    }
}

/// A countTokens body wrapping a whole request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CountRequest {
    pub generate_content_request: CountInner,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CountInner {
    pub model: String,
    pub contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

/// A whole answer or one streamed chunk, in either direction.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// An error inside a stream (read only).
    #[serde(default, skip_serializing)]
    pub error: Option<IgnoredValue>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: u32,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_reason: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_content_token_count: Option<u64>,
    #[serde(default)]
    pub candidates_token_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_prompt_token_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thoughts_token_count: Option<u64>,
    #[serde(default)]
    pub total_token_count: u64,
}

impl UsageMetadata {
    pub fn to_ir(&self) -> crate::ir::Usage {
        let thoughts = self.thoughts_token_count.unwrap_or(0);
        crate::ir::Usage {
            input: self
                .prompt_token_count
                .saturating_add(self.tool_use_prompt_token_count.unwrap_or(0)),
            cached: self.cached_content_token_count.unwrap_or(0),
            cache_write: 0,
            output: self.candidates_token_count.saturating_add(thoughts),
            reasoning: thoughts,
        }
    }

    pub fn from_ir(usage: &crate::ir::Usage) -> UsageMetadata {
        UsageMetadata {
            prompt_token_count: usage.input,
            cached_content_token_count: (usage.cached > 0).then_some(usage.cached),
            candidates_token_count: usage.output.saturating_sub(usage.reasoning),
            tool_use_prompt_token_count: None,
            thoughts_token_count: (usage.reasoning > 0).then_some(usage.reasoning),
            total_token_count: usage.total(),
        }
    }
}

/// `{"totalTokens": n}`, the countTokens answer.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CountResponse {
    #[serde(default)]
    pub total_tokens: u64,
}
