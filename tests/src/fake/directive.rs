//! Directive-driven answers: the text of a request's last user turn can ask the fake for tool
//! calls and reasoning, so one test can get them through any client surface and any format,
//! and the answer acknowledges the tool results and images that turn carries.
//!
//! Each provider module reads its request into a provider-neutral [`Turn`]; [`Reply::plan`]
//! decides the answer's parts; the provider renders them in its own wire format, streamed or
//! not. A turn that asks for nothing gets the endpoint's usual answer (`served by <key>`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;

/// Who made a reasoning signature: the fake's Anthropic or its Gemini.
pub(crate) const ANTHROPIC: &str = "fake-anthropic";
pub(crate) const GEMINI: &str = "fake-gemini";

/// The placeholder Google documents for a thought signature a client cannot have (history
/// from another model): Gemini accepts it in place of a real one.
pub(crate) const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

/// Characters of the user's text quoted in the reasoning text.
const THINKING_QUOTE: usize = 40;

/// Pieces a streamed text or JSON argument string is cut into.
pub(crate) const FRAGMENTS: usize = 3;

/// A reasoning signature made by `maker` for an answer to `key`: base64 of
/// `<maker>:<key>:<n>`.
pub(crate) fn sign(maker: &str, key: &str, n: u64) -> String {
    STANDARD.encode(format!("{maker}:{key}:{n}"))
}

/// Whether `signature` is one [`sign`] made for `maker` (with any key: a signature is not
/// bound to the key that got it).
pub(crate) fn signed_by_fake(maker: &str, signature: &str) -> bool {
    let Some(bytes) = decode(signature) else {
        return false;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return false;
    };
    text.strip_prefix(maker)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| rest.rsplit_once(':'))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Base64 in any of the spellings the providers take (standard or URL-safe alphabet, padded
/// or not).
pub(crate) fn decode(data: &str) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(data.trim()).ok())
}

/// How many bytes base64 `data` decodes to, if it is base64.
pub(crate) fn decoded_len(data: &str) -> Option<usize> {
    decode(data).map(|bytes| bytes.len())
}

/// An image in the last user turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Image {
    /// Sent inline: its media type and decoded size (0 if the data was no base64).
    Data { media_type: String, bytes: usize },
    /// Sent by reference (a URL, a file URI).
    Url(String),
}

impl Image {
    /// An inline image from base64 `data`.
    pub(crate) fn inline(media_type: &str, data: &str) -> Image {
        Image::Data {
            media_type: media_type.to_owned(),
            bytes: decoded_len(data).unwrap_or(0),
        }
    }

    /// From an OpenAI `image_url`: a `data:<type>;base64,<data>` URL or a real one.
    pub(crate) fn from_url(url: &str) -> Image {
        let inline = url.strip_prefix("data:").and_then(|rest| {
            let (header, data) = rest.split_once(',')?;
            let media_type = header.strip_suffix(";base64")?;
            Some(Image::inline(media_type, data))
        });
        inline.unwrap_or_else(|| Image::Url(url.to_owned()))
    }

    /// `image image/png 68 bytes`, `image url https://…`.
    fn describe(&self) -> String {
        match self {
            Image::Data { media_type, bytes } => format!("image {media_type} {bytes} bytes"),
            Image::Url(url) => format!("image url {url}"),
        }
    }
}

/// What the answer is built from, read from the request in any format.
#[derive(Debug, Clone, Default)]
pub(crate) struct Turn {
    /// The text of the last user turn, where directives are read.
    pub text: String,
    /// The names of the tools the request offers.
    pub tools: Vec<String>,
    /// Whether the request enabled reasoning (Anthropic `thinking` enabled or adaptive, OpenAI
    /// `reasoning_effort` other than `none`, Gemini `includeThoughts`).
    pub reasoning: bool,
    /// The images of the last user turn.
    pub images: Vec<Image>,
    /// The text of each tool result in the last turn.
    pub results: Vec<String>,
}

/// One directive found in the user's text.
#[derive(Debug, Clone, PartialEq)]
enum Directive {
    /// `[[call NAME {json}]]`.
    Call { name: String, args: Value },
    /// `[[think]]`.
    Think,
    /// Something that starts like a directive but is not one; the text quoted.
    Bad(String),
}

/// A tool call of the answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub name: String,
    /// Always a JSON object.
    pub args: Value,
}

/// The parts of a directive-driven answer, in order: reasoning, text, tool calls.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// Reasoning text, when asked for and enabled.
    pub thinking: Option<String>,
    /// Never empty.
    pub text: String,
    pub calls: Vec<ToolCall>,
}

impl Reply {
    /// The answer to `turn`, or `None` if it asks for nothing (no directive, tool result or
    /// image): the endpoint's usual answer then. `plain` is that usual text, kept when the
    /// directives add none of their own (`[[think]]` alone).
    pub(crate) fn plan(turn: &Turn, plain: &str) -> Option<Reply> {
        let directives = directives(&turn.text);
        if directives.is_empty() && turn.results.is_empty() && turn.images.is_empty() {
            return None;
        }
        let mut lines = Vec::new();
        if !turn.results.is_empty() {
            lines.push(format!("tool result: {}", turn.results.join(" | ")));
        }
        lines.extend(turn.images.iter().map(Image::describe));
        let mut calls = Vec::new();
        let mut think = false;
        for directive in directives {
            match directive {
                Directive::Call { name, args } if turn.tools.contains(&name) => {
                    calls.push(ToolCall { name, args });
                }
                Directive::Call { name, .. } => lines.push(format!("no tool {name} was offered")),
                Directive::Think => think = true,
                Directive::Bad(text) => lines.push(format!("directive not understood: {text}")),
            }
        }
        if !calls.is_empty() {
            let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
            lines.push(format!("Calling {}.", names.join(", ")));
        }
        let thinking = (think && turn.reasoning).then(|| {
            let quote: String = turn.text.chars().take(THINKING_QUOTE).collect();
            format!("Thinking about: {quote}")
        });
        let text = if lines.is_empty() {
            plain.to_owned()
        } else {
            lines.join("\n")
        };
        Some(Reply {
            thinking,
            text,
            calls,
        })
    }

    /// Output tokens of the text and calls (reasoning not included).
    pub(crate) fn output_tokens(&self) -> u64 {
        let calls: u64 = self
            .calls
            .iter()
            .map(|c| tokens(&c.name) + tokens(&c.args.to_string()))
            .sum();
        tokens(&self.text) + calls
    }

    /// Output tokens of the reasoning.
    pub(crate) fn reasoning_tokens(&self) -> u64 {
        self.thinking.as_deref().map_or(0, tokens)
    }
}

/// The fake's usual stand-in count: a token per four characters, at least one.
fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

/// `text` cut into up to `n` non-empty pieces on character boundaries (one empty piece for an
/// empty text), so a stream delivers it in several deltas.
pub(crate) fn fragments(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let size = chars.len().div_ceil(n.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// The directives in `text`, in order.
fn directives(text: &str) -> Vec<Directive> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("[[") {
        let inside = &rest[at + 2..];
        if let Some(after) = inside.strip_prefix("think]]") {
            found.push(Directive::Think);
            rest = after;
        } else if let Some(call) = inside.strip_prefix("call ") {
            let (directive, after) = call_directive(call);
            found.push(directive);
            rest = after;
        } else {
            rest = inside;
        }
    }
    found
}

/// `NAME {json}]]` (or `NAME]]`) after `[[call `: the directive and the text after it.
fn call_directive(text: &str) -> (Directive, &str) {
    let bad = |upto: usize| {
        let quoted: String = text[..upto].chars().take(60).collect();
        Directive::Bad(format!("[[call {quoted}"))
    };
    let end_of_name = text
        .find(|c: char| c.is_whitespace() || c == ']' || c == '{')
        .unwrap_or(text.len());
    let name = &text[..end_of_name];
    let rest = text[end_of_name..].trim_start();
    let consumed = text.len() - rest.len();
    if name.is_empty() {
        return (bad(consumed), &text[consumed..]);
    }
    if let Some(after) = rest.strip_prefix("]]") {
        let call = Directive::Call {
            name: name.to_owned(),
            args: Value::Object(Default::default()),
        };
        return (call, after);
    }
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    match values.next() {
        Some(Ok(args @ Value::Object(_))) => {
            let after_json = rest[values.byte_offset()..].trim_start();
            match after_json.strip_prefix("]]") {
                Some(after) => (
                    Directive::Call {
                        name: name.to_owned(),
                        args,
                    },
                    after,
                ),
                None => {
                    let upto = text.len() - after_json.len();
                    (bad(upto), &text[upto..])
                }
            }
        }
        _ => {
            // No object after the name: quote up to the closing brackets, if any.
            let upto = text.find("]]").map_or(text.len(), |i| i + 2);
            (bad(upto), &text[upto..])
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn directives_are_read_in_order_and_bad_ones_are_named() {
        let text = r#"please [[call get_weather {"city": "Paris", "days": [[1, 2]]}]] and
            [[think]] then [[call ping]] [[call broken {"a": ]] [[ not one ]]"#;
        let found = directives(text);
        assert_eq!(
            found,
            [
                Directive::Call {
                    name: "get_weather".into(),
                    args: json!({"city": "Paris", "days": [[1, 2]]}),
                },
                Directive::Think,
                Directive::Call {
                    name: "ping".into(),
                    args: json!({}),
                },
                Directive::Bad(r#"[[call broken {"a": ]]"#.into()),
            ]
        );
    }

    #[test]
    fn a_plain_turn_asks_for_nothing() {
        let turn = Turn {
            text: "hi [[ there ]]".into(),
            ..Turn::default()
        };
        assert_eq!(Reply::plan(&turn, "served by k"), None);
    }

    #[test]
    fn the_plan_names_results_images_missing_tools_and_calls() {
        let turn = Turn {
            text: r#"[[think]] [[call a {"x": 1}]] [[call nope {}]] [[call b {}]]"#.into(),
            tools: vec!["a".into(), "b".into()],
            reasoning: true,
            images: vec![
                Image::from_url("data:image/png;base64,AAEC"),
                Image::from_url("https://example.com/cat.png"),
            ],
            results: vec!["one".into(), "two".into()],
        };
        let reply = Reply::plan(&turn, "served by k").expect("a reply");
        assert_eq!(
            reply.text,
            "tool result: one | two\nimage image/png 3 bytes\nimage url \
             https://example.com/cat.png\nno tool nope was offered\nCalling a, b."
        );
        assert_eq!(
            reply.thinking.as_deref(),
            Some("Thinking about: [[think]] [[call a {\"x\": 1}]] [[call nop")
        );
        assert_eq!(
            reply.calls,
            [
                ToolCall {
                    name: "a".into(),
                    args: json!({"x": 1})
                },
                ToolCall {
                    name: "b".into(),
                    args: json!({})
                },
            ]
        );
    }

    #[test]
    fn think_alone_keeps_the_plain_text_and_needs_reasoning_enabled() {
        let mut turn = Turn {
            text: "[[think]] why".into(),
            ..Turn::default()
        };
        let reply = Reply::plan(&turn, "served by k").expect("a reply");
        assert_eq!((reply.thinking, reply.text.as_str()), (None, "served by k"));
        turn.reasoning = true;
        let reply = Reply::plan(&turn, "served by k").expect("a reply");
        assert_eq!(
            reply.thinking.as_deref(),
            Some("Thinking about: [[think]] why")
        );
    }

    #[test]
    fn signatures_are_recognised_by_maker() {
        let signature = sign(ANTHROPIC, "sk-ant-1", 7);
        assert!(signed_by_fake(ANTHROPIC, &signature));
        assert!(!signed_by_fake(GEMINI, &signature));
        assert!(!signed_by_fake(ANTHROPIC, "RXF1aXZvY2FsbHk="));
        assert!(!signed_by_fake(ANTHROPIC, "not base64 at all!"));
    }

    #[test]
    fn fragments_cover_the_text() {
        assert_eq!(fragments("abcdefg", 3), ["abc", "def", "g"]);
        assert_eq!(fragments("ab", 3), ["a", "b"]);
        assert_eq!(fragments("", 3), [""]);
        assert_eq!(fragments("日本語です", 2).concat(), "日本語です");
    }
}
