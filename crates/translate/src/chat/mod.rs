//! OpenAI Chat Completions: the client surface (`/v1/chat/completions`) and the upstream
//! format every OpenAI-compatible service speaks.

pub mod client;
pub mod upstream;
pub mod wire;

use crate::ir::{Image, StopReason};

/// Chat's `finish_reason` for an IR stop reason.
pub fn finish_name(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::PauseTurn => "stop",
        StopReason::MaxTokens | StopReason::ContextWindow => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::Refusal => "content_filter",
    }
}

/// The IR stop reason for Chat's `finish_reason`. A plain `stop` after tool calls is a tool
/// stop (some compatible services say `stop` there).
pub fn finish_reason(name: &str, called_tools: bool) -> StopReason {
    match name {
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::Refusal,
        _ if called_tools => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// An image from an `image_url`: a `data:` URL becomes inline data.
pub fn image_from_url(url: String) -> Option<Image> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Some(Image::Url(url));
    };
    let (header, data) = rest.split_once(',')?;
    let media_type = header.strip_suffix(";base64")?;
    Some(Image::Base64 {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}

/// An image as an `image_url` value: inline data as a `data:` URL.
pub fn image_url(image: Image) -> String {
    match image {
        Image::Url(url) => url,
        Image::Base64 { media_type, data } => {
            let mut url = String::with_capacity(data.len() + media_type.len() + 13);
            url.push_str("data:");
            url.push_str(&media_type);
            url.push_str(";base64,");
            url.push_str(&data);
            url
        }
    }
}
