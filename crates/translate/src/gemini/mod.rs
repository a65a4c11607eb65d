//! Gemini `generateContent`: the client surface (`/v1beta/models/{model}:…`) and the upstream
//! format.

pub mod client;
pub mod schema;
pub mod upstream;
pub mod wire;

use crate::ir::StopReason;

/// Gemini's `finishReason` for an IR stop reason.
pub fn finish_name(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::ToolUse
        | StopReason::PauseTurn => "STOP",
        StopReason::MaxTokens | StopReason::ContextWindow => "MAX_TOKENS",
        StopReason::Refusal => "SAFETY",
    }
}

/// The IR stop reason for Gemini's `finishReason`. Gemini says `STOP` after function calls
/// too; `called_tools` tells them apart. Reasons that mean "blocked" read as a refusal; the
/// rest (a malformed function call, `OTHER`) as a normal end, since no client has a closer
/// word for them.
pub fn finish_reason(name: &str, called_tools: bool) -> StopReason {
    match name {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "LANGUAGE"
        | "MODEL_ARMOR" => StopReason::Refusal,
        _ if called_tools => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// The signature Gemini documents for function calls whose own signature is unknown (history
/// that came from another model or format). Gemini 3 refuses a function call in history
/// without any signature.
pub const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";
