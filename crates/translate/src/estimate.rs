//! A local estimate of a prompt's tokens, for token counting on an `openai` upstream, which
//! has no count endpoint.
//!
//! Refusing would break clients that count before they send (Claude Code asks
//! `count_tokens` while it plans a turn); an estimate keeps them working, and the answer is
//! marked approximate ([`crate::LocalAnswer::approximate`]). The estimate is the common rule
//! of thumb of four bytes of text per token, plus a few tokens per message for the role
//! markers, and 1,600 tokens per image (Anthropic's figure for an image of about a megapixel,
//! the size clients usually send). It is an estimate; it is not a tokenizer.

use crate::ir::{self, Part};

const BYTES_PER_TOKEN: u64 = 4;
const PER_MESSAGE: u64 = 4;
const PER_IMAGE: u64 = 1600;

/// Estimated input tokens of a request.
pub fn input_tokens(request: &ir::Request) -> u64 {
    let mut bytes: u64 = 0;
    let mut extra: u64 = 0;
    for system in &request.system {
        bytes += system.len() as u64;
    }
    for message in &request.messages {
        extra += PER_MESSAGE;
        for part in &message.parts {
            match part {
                Part::Text(text) => bytes += text.len() as u64,
                Part::Image(_) => extra += PER_IMAGE,
                Part::Thinking { text, .. } => bytes += text.len() as u64,
                Part::RedactedThinking(_) => {}
                Part::ToolCall(call) => {
                    bytes += (call.name.len() + call.arguments.get().len()) as u64
                }
                Part::ToolResult(result) => {
                    for piece in &result.content {
                        match piece {
                            ir::ResultPart::Text(text) => bytes += text.len() as u64,
                            ir::ResultPart::Image(_) => extra += PER_IMAGE,
                        }
                    }
                }
            }
        }
    }
    for tool in &request.tools {
        bytes += (tool.name.len()
            + tool.description.as_deref().map_or(0, str::len)
            + tool.parameters.get().len()) as u64;
    }
    bytes.div_ceil(BYTES_PER_TOKEN) + extra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_counts_a_token_per_four_bytes() {
        let request = ir::Request {
            system: vec!["12345678".into()],
            messages: vec![ir::Message {
                role: ir::Role::User,
                parts: vec![Part::Text("abcd".into())],
            }],
            ..ir::Request::default()
        };
        assert_eq!(input_tokens(&request), 3 + PER_MESSAGE);
    }
}
