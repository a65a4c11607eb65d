//! The intermediate representation every translation passes through.
//!
//! A client surface parses its request into a [`Request`]; an upstream format renders it. An
//! upstream format parses its answer into a [`Response`] (or its stream into [`Event`]s); the
//! client surface renders those. So four client mappings and three upstream mappings cover
//! every pair, instead of one mapping per pair.
//!
//! The IR holds what any side can express, in the most precise form any side has: thinking
//! with its signature, tool calls with ids, usage with cached and reasoning tokens split out.
//! Strings are owned and moved, not cloned, from the client's parsed body into the target's
//! body; JSON that Keyway does not interpret (tool arguments, parameter schemas) stays raw
//! text and is never parsed into a `serde_json::Value`.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A request, as the client meant it.
#[derive(Debug, Default)]
pub struct Request {
    pub model: String,
    /// System prompt pieces, in order. Joined with a blank line where the target takes one
    /// string.
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    /// A Responses client's tool namespaces: their tools are sent as `{namespace}__{name}`
    /// (see [`crate::responses::NAMESPACE_SEPARATOR`]), and calls of them go back split.
    pub namespaces: Vec<String>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    pub max_tokens: Option<u32>,
    pub sampling: Sampling,
    pub stop: Vec<String>,
    pub reasoning: Option<Reasoning>,
    pub output_format: Option<OutputFormat>,
    /// An end-user id for abuse monitoring (Anthropic `metadata.user_id`, OpenAI `user`).
    pub user: Option<String>,
    pub stream: bool,
    /// A Chat client asked for a usage chunk at the end of its stream.
    pub include_usage: bool,
    /// Top-level fields the client's surface does not define (as far as Keyway knows). They
    /// are forwarded verbatim: the target takes the ones it knows (vendor extensions of
    /// OpenAI-compatible servers, say) and answers the others with its own 400 naming the
    /// field, so nothing the client asked for disappears silently.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

/// One piece of a message.
#[derive(Debug)]
pub enum Part {
    Text(String),
    Image(Image),
    /// Reasoning text and the provider's signature over it. An empty text with a signature is
    /// a signature that belongs to the part after it (Gemini signs function calls, not
    /// thoughts, and Keyway carries such a signature on an empty thinking block).
    Thinking {
        text: String,
        signature: Option<String>,
    },
    /// Anthropic's encrypted thinking.
    RedactedThinking(String),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
}

#[derive(Debug)]
pub enum Image {
    Base64 { media_type: String, data: String },
    Url(String),
}

#[derive(Debug)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text (an object).
    pub arguments: Box<RawValue>,
}

#[derive(Debug)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub id: String,
    /// The function's name, when the client said it (Gemini does; the others name the call
    /// only by id and the name is found in the call).
    pub name: Option<String>,
    pub content: Vec<ResultPart>,
    pub is_error: bool,
}

#[derive(Debug)]
pub enum ResultPart {
    Text(String),
    Image(Image),
}

impl ToolResult {
    /// The result's text, pieces joined by newlines (for targets whose results are one string).
    pub fn text(&self) -> String {
        let mut text = String::new();
        for part in &self.content {
            if let ResultPart::Text(t) = part {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
        }
        text
    }

    pub fn has_image(&self) -> bool {
        self.content
            .iter()
            .any(|p| matches!(p, ResultPart::Image(_)))
    }
}

#[derive(Debug)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Box<RawValue>,
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Tool(String),
}

/// Reasoning ("thinking") as the client asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasoning {
    /// The client turned reasoning off.
    Off,
    On {
        /// A token budget, when the client gave one (Anthropic, Gemini).
        budget: Option<u32>,
        /// An effort level, when the client gave one (OpenAI, Anthropic's `output_config`).
        effort: Option<crate::reasoning::Effort>,
        /// Whether the client wants to see the reasoning text (or a summary).
        show: bool,
    },
}

#[derive(Debug)]
pub enum OutputFormat {
    /// Any JSON object.
    JsonObject,
    JsonSchema {
        name: Option<String>,
        schema: Box<RawValue>,
        strict: Option<bool>,
    },
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopReason {
    #[default]
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    /// Refused or filtered for safety.
    Refusal,
    /// Anthropic paused a long turn (server tools); the client may continue it.
    PauseTurn,
    /// The context window filled up.
    ContextWindow,
}

/// Token usage. `input` counts every prompt token (cached or not); `output` every generated
/// token (reasoning included). The parts are subsets, so each format can express its own
/// split without losing the totals Keyway's usage history reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    /// Prompt tokens read from a cache.
    pub cached: u64,
    /// Prompt tokens written to a cache (Anthropic).
    pub cache_write: u64,
    pub output: u64,
    /// Output tokens spent on reasoning.
    pub reasoning: u64,
}

impl Usage {
    /// Input tokens neither read from nor written to a cache.
    pub fn uncached_input(&self) -> u64 {
        self.input
            .saturating_sub(self.cached)
            .saturating_sub(self.cache_write)
    }

    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }
}

/// A whole (non-streamed) answer.
#[derive(Debug, Default)]
pub struct Response {
    /// Only text, thinking, redacted thinking and tool calls appear here.
    pub parts: Vec<Part>,
    pub stop: StopReason,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

/// One step of a streamed answer, in the order the upstream produced it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The upstream has begun its answer (its first event arrived): the client gets its
    /// stream's opening events now rather than with the first token, as from the provider
    /// itself.
    Start,
    /// Usage known so far (at the start: the prompt tokens, when the upstream says them).
    Usage(Usage),
    Text(String),
    Thinking(String),
    /// The signature of the thinking just streamed.
    Signature(String),
    /// A signature for the part that follows (Gemini signs function calls and text, not only
    /// thoughts); see [`Part::Thinking`].
    PartSignature(String),
    RedactedThinking(String),
    /// A tool call begins. `index` is the upstream's ordinal for the call, used by
    /// [`Event::ToolArgs`] to say which call a fragment belongs to.
    ToolStart {
        index: usize,
        id: String,
        name: String,
    },
    /// A fragment of a call's JSON arguments.
    ToolArgs {
        index: usize,
        fragment: String,
    },
    /// The answer is complete.
    Finish {
        stop: StopReason,
        stop_sequence: Option<String>,
        usage: Usage,
    },
    /// The upstream reported an error in the middle of the stream.
    Error(crate::errors::UpstreamError),
}

/// The empty JSON object, for calls without arguments.
pub fn empty_object() -> Box<RawValue> {
    raw_json("{}".to_owned()).unwrap_or_else(|| RawValue::NULL.to_owned())
}

/// JSON text as a raw value, when it is valid JSON.
pub fn raw_json(text: String) -> Option<Box<RawValue>> {
    RawValue::from_string(text).ok()
}

/// Tool-call arguments from JSON text: blank means no arguments; anything that is not a JSON
/// object is `None`.
pub fn arguments(text: String) -> Option<Box<RawValue>> {
    if text.trim().is_empty() {
        return Some(empty_object());
    }
    let raw = raw_json(text)?;
    raw.get().trim_start().starts_with('{').then_some(raw)
}
