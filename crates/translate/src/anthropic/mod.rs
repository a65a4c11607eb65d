//! Anthropic Messages: the client surface (`/v1/messages`, `/v1/messages/count_tokens`) and
//! the upstream format.

pub mod client;
pub mod upstream;
pub mod wire;

use crate::ir::StopReason;

/// Anthropic's `stop_reason` for an IR stop reason.
pub fn stop_name(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::Refusal => "refusal",
        StopReason::PauseTurn => "pause_turn",
        StopReason::ContextWindow => "model_context_window_exceeded",
    }
}

/// The IR stop reason for Anthropic's `stop_reason`; an unknown value reads as a normal end.
pub fn stop_reason(name: &str) -> StopReason {
    match name {
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::Refusal,
        "pause_turn" => StopReason::PauseTurn,
        "model_context_window_exceeded" => StopReason::ContextWindow,
        _ => StopReason::EndTurn,
    }
}
