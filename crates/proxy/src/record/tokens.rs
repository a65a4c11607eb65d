//! Token usage read from a response body as it streams by, for the usage history.
//!
//! The relay hands every chunk to a [`TokenCounter`] on its way to the client; the counter only
//! looks, it never delays or alters a chunk. An SSE body is read line by line and only `data:`
//! lines that can carry usage are parsed; any other body is kept (up to a cap) and parsed once
//! at the end. Whatever the counter cannot understand leaves the counts `None`: a missing count
//! is better than a wrong one, and a strange body must never break the response.

use std::sync::LazyLock;

use keyway_core::Surface;
use memchr::memmem::Finder;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Longest partial SSE line kept between chunks. A longer line (a huge inline image, say) is
/// dropped and reading picks up again at the next newline, so memory stays bounded.
const MAX_LINE: usize = 1024 * 1024;

/// Largest non-SSE body kept for parsing at the end. Past it the counts stay `None` rather than
/// holding a very large body in memory for the sake of one small object.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The keys that hold usage, built once rather than per response.
static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));
static GEMINI_USAGE_KEY: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"usageMetadata\""));

/// Input and output tokens of one response, as far as the body told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tokens {
    /// Every prompt token the request consumed, cached or not.
    pub input: Option<u64>,
    /// Every generated token, reasoning included.
    pub output: Option<u64>,
}

/// Watches one response body go by and reports its token usage at the end.
pub struct TokenCounter {
    surface: Surface,
    /// Finds the key that holds usage in this surface's bodies.
    key: &'static Finder<'static>,
    body: Body,
    counts: Counts,
}

/// How the body is being read.
enum Body {
    /// Line by line. `partial` is the unfinished last line of the chunks so far; `skipping`
    /// says the current line outgrew [`MAX_LINE`] and is being passed over up to its newline.
    Sse { partial: Vec<u8>, skipping: bool },
    /// Kept whole for one parse at the end; `overflow` says it outgrew [`MAX_BODY`].
    Json { kept: Vec<u8>, overflow: bool },
}

/// The counts seen so far. Each is replaced when a later report carries it, since streams
/// report cumulative totals and the last one is the final word.
#[derive(Debug, Default)]
struct Counts {
    input: Option<u64>,
    /// Anthropic reports cache writes and reads apart from `input_tokens`; the user consumed
    /// them all, so they are added to the input at the end.
    cache_creation: Option<u64>,
    cache_read: Option<u64>,
    output: Option<u64>,
}

impl Counts {
    fn tokens(&self) -> Tokens {
        let parts = [self.input, self.cache_creation, self.cache_read];
        let input = parts
            .into_iter()
            .flatten()
            .reduce(|sum, n| sum.saturating_add(n));
        Tokens {
            input,
            output: self.output,
        }
    }
}

impl TokenCounter {
    /// `sse`: the response is `text/event-stream`.
    pub fn new(surface: Surface, sse: bool) -> TokenCounter {
        let key: &'static Finder<'static> = match surface {
            Surface::Gemini => &GEMINI_USAGE_KEY,
            Surface::AnthropicMessages | Surface::OpenAiChat | Surface::OpenAiResponses => {
                &USAGE_KEY
            }
        };
        let body = if sse {
            Body::Sse {
                partial: Vec::new(),
                skipping: false,
            }
        } else {
            Body::Json {
                kept: Vec::new(),
                overflow: false,
            }
        };
        TokenCounter {
            surface,
            key,
            body,
            counts: Counts::default(),
        }
    }

    /// Called with every chunk, in order, as it passes.
    pub fn feed(&mut self, chunk: &[u8]) {
        match &mut self.body {
            Body::Sse { partial, skipping } => {
                let mut rest = chunk;
                while let Some(end) = memchr::memchr(b'\n', rest) {
                    let head = &rest[..end];
                    rest = &rest[end + 1..];
                    if *skipping {
                        *skipping = false;
                    } else if partial.is_empty() {
                        read_line(self.surface, self.key, head, &mut self.counts);
                    } else if partial.len() + head.len() <= MAX_LINE {
                        partial.extend_from_slice(head);
                        read_line(self.surface, self.key, partial, &mut self.counts);
                        partial.clear();
                    } else {
                        partial.clear();
                    }
                }
                if *skipping {
                    return;
                }
                if partial.len() + rest.len() <= MAX_LINE {
                    partial.extend_from_slice(rest);
                } else {
                    partial.clear();
                    *skipping = true;
                }
            }
            Body::Json { kept, overflow } => {
                if *overflow {
                    return;
                }
                if kept.len() + chunk.len() <= MAX_BODY {
                    kept.extend_from_slice(chunk);
                } else {
                    *kept = Vec::new();
                    *overflow = true;
                }
            }
        }
    }

    /// The usage the body reported, once it has ended.
    pub fn finish(mut self) -> Tokens {
        match &self.body {
            Body::Sse { partial, skipping } => {
                // A stream may end without a newline after its last line.
                if !*skipping && !partial.is_empty() {
                    read_line(self.surface, self.key, partial, &mut self.counts);
                }
            }
            Body::Json { kept, overflow } => {
                if !*overflow && may_hold_usage(self.key, kept) {
                    read_json(self.surface, kept, &mut self.counts);
                }
            }
        }
        self.counts.tokens()
    }
}

/// One complete SSE line, without its `\n`.
fn read_line(surface: Surface, key: &Finder<'_>, line: &[u8], counts: &mut Counts) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(data) = line.strip_prefix(b"data:") else {
        return;
    };
    if may_hold_usage(key, data) {
        read_json(surface, data, counts);
    }
}

/// Whether `json` has the usage key with a value other than `null`. Most stream events either
/// lack the key or carry `"usage":null`, and are not worth a parse.
fn may_hold_usage(key: &Finder<'_>, json: &[u8]) -> bool {
    key.find_iter(json).any(|at| {
        let after = json[at + key.needle().len()..].trim_ascii_start();
        let Some(value) = after.strip_prefix(b":") else {
            return false;
        };
        !value.trim_ascii_start().starts_with(b"null")
    })
}

/// A JSON object, or an array of them (Gemini's stream without `alt=sse`), in this surface's
/// shape. Anything else is ignored.
fn read_json(surface: Surface, json: &[u8], counts: &mut Counts) {
    match surface {
        Surface::AnthropicMessages => apply::<AnthropicBody>(json, counts),
        Surface::OpenAiChat => apply::<ChatBody>(json, counts),
        Surface::OpenAiResponses => apply::<ResponsesBody>(json, counts),
        Surface::Gemini => apply::<GeminiBody>(json, counts),
    }
}

fn apply<T: DeserializeOwned + Report>(json: &[u8], counts: &mut Counts) {
    if json.trim_ascii_start().starts_with(b"[") {
        if let Ok(items) = serde_json::from_slice::<Vec<T>>(json) {
            for item in items {
                item.report(counts);
            }
        }
    } else if let Ok(item) = serde_json::from_slice::<T>(json) {
        item.report(counts);
    }
}

/// A parsed body or event that may carry usage.
trait Report {
    fn report(self, counts: &mut Counts);
}

/// A Messages response (`usage`), a `message_start` event (`message.usage`) or a
/// `message_delta` event (`usage`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicBody {
    usage: Option<AnthropicUsage>,
    message: Option<AnthropicMessage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicMessage {
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicUsage {
    input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl Report for AnthropicBody {
    fn report(self, counts: &mut Counts) {
        let usages = [self.message.and_then(|m| m.usage), self.usage];
        // A `message_delta` carries only what it updates (often just `output_tokens`), so
        // each count is replaced only when present.
        for usage in usages.into_iter().flatten() {
            replace(&mut counts.input, usage.input_tokens);
            replace(
                &mut counts.cache_creation,
                usage.cache_creation_input_tokens,
            );
            replace(&mut counts.cache_read, usage.cache_read_input_tokens);
            replace(&mut counts.output, usage.output_tokens);
        }
    }
}

/// A chat completion or, when the client asked for it, the last chunk of a stream.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ChatBody {
    usage: Option<ChatUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChatUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl Report for ChatBody {
    fn report(self, counts: &mut Counts) {
        if let Some(usage) = self.usage {
            replace(&mut counts.input, usage.prompt_tokens);
            replace(&mut counts.output, usage.completion_tokens);
        }
    }
}

/// A Responses object (`usage`) or a `response.completed` (also `.failed`, `.incomplete`)
/// event (`response.usage`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesBody {
    usage: Option<ResponsesUsage>,
    response: Option<ResponsesObject>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesObject {
    usage: Option<ResponsesUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl Report for ResponsesBody {
    fn report(self, counts: &mut Counts) {
        let usages = [self.response.and_then(|r| r.usage), self.usage];
        for usage in usages.into_iter().flatten() {
            replace(&mut counts.input, usage.input_tokens);
            replace(&mut counts.output, usage.output_tokens);
        }
    }
}

/// A `generateContent` response or one streamed chunk of it.
#[derive(Deserialize, Default)]
#[serde(default)]
struct GeminiBody {
    #[serde(rename = "usageMetadata")]
    usage_metadata: Option<GeminiUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct GeminiUsage {
    prompt_token_count: Option<u64>,
    /// Tokens of tool results (search, code execution) fed back as prompt.
    tool_use_prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    /// Thinking tokens, counted apart from the candidates but generated all the same.
    thoughts_token_count: Option<u64>,
    total_token_count: Option<u64>,
}

impl Report for GeminiBody {
    fn report(self, counts: &mut Counts) {
        let Some(usage) = self.usage_metadata else {
            return;
        };
        let known = [
            usage.prompt_token_count,
            usage.tool_use_prompt_token_count,
            usage.candidates_token_count,
            usage.thoughts_token_count,
            usage.total_token_count,
        ];
        if known.iter().all(Option::is_none) {
            return;
        }
        // Gemini leaves zero counts out of its JSON, and each chunk reports the whole usage
        // so far: a missing count is zero, not unknown.
        let sum = |a: Option<u64>, b: Option<u64>| a.unwrap_or(0).saturating_add(b.unwrap_or(0));
        counts.input = Some(sum(
            usage.prompt_token_count,
            usage.tool_use_prompt_token_count,
        ));
        counts.output = Some(sum(
            usage.candidates_token_count,
            usage.thoughts_token_count,
        ));
    }
}

fn replace(count: &mut Option<u64>, reported: Option<u64>) {
    if reported.is_some() {
        *count = reported;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(surface: Surface, sse: bool, body: &[u8]) -> Tokens {
        let mut counter = TokenCounter::new(surface, sse);
        counter.feed(body);
        counter.finish()
    }

    fn tokens(input: u64, output: u64) -> Tokens {
        Tokens {
            input: Some(input),
            output: Some(output),
        }
    }

    /// A small deterministic generator, so a failing split can be reproduced.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    const ANTHROPIC_SSE: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":2000,\"output_tokens\":1}}}\n\
\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\
\n\
event: ping\n\
data: {\"type\": \"ping\"}\n\
\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"the \\\"usage\\\": field\"}}\n\
\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":0}\n\
\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\
\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\
\n\
event: message_stop\n\
data: {\"type\":\"message_stop\"}\n\
\n";

    #[test]
    fn anthropic_json_adds_cache_tokens_to_input() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hi"}],"model":"claude-sonnet-4-5","stop_reason":"end_turn","usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":7,"service_tier":"standard"}}"#;
        assert_eq!(
            count(Surface::AnthropicMessages, false, body),
            tokens(60, 7)
        );
        let plain = br#"{"type":"message","usage":{"input_tokens":10,"output_tokens":7}}"#;
        assert_eq!(
            count(Surface::AnthropicMessages, false, plain),
            tokens(10, 7)
        );
    }

    #[test]
    fn anthropic_sse_takes_the_last_delta() {
        let got = count(Surface::AnthropicMessages, true, ANTHROPIC_SSE.as_bytes());
        assert_eq!(got, tokens(2125, 42));
    }

    #[test]
    fn anthropic_sse_delta_with_input_replaces_the_start() {
        let body = "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n\
data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":900,\"cache_read_input_tokens\":100,\"output_tokens\":30}}\n\n";
        let got = count(Surface::AnthropicMessages, true, body.as_bytes());
        assert_eq!(got, tokens(1000, 30));
    }

    #[test]
    fn anthropic_sse_split_at_every_byte() {
        let body = ANTHROPIC_SSE.as_bytes();
        let want = tokens(2125, 42);
        for at in 0..=body.len() {
            let mut counter = TokenCounter::new(Surface::AnthropicMessages, true);
            counter.feed(&body[..at]);
            counter.feed(&body[at..]);
            assert_eq!(counter.finish(), want, "split at {at}");
        }
        let mut counter = TokenCounter::new(Surface::AnthropicMessages, true);
        for byte in body {
            counter.feed(std::slice::from_ref(byte));
        }
        assert_eq!(counter.finish(), want, "byte by byte");
    }

    #[test]
    fn anthropic_sse_random_splits() {
        let body = ANTHROPIC_SSE.as_bytes();
        let mut rng = Lcg(7);
        for round in 0..200 {
            let mut counter = TokenCounter::new(Surface::AnthropicMessages, true);
            let mut rest = body;
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(64));
                counter.feed(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(counter.finish(), tokens(2125, 42), "round {round}");
        }
    }

    #[test]
    fn crlf_line_endings() {
        let body = ANTHROPIC_SSE.replace('\n', "\r\n");
        let got = count(Surface::AnthropicMessages, true, body.as_bytes());
        assert_eq!(got, tokens(2125, 42));
        let gemini = "data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":4}}\r\n\r\n";
        assert_eq!(
            count(Surface::Gemini, true, gemini.as_bytes()),
            tokens(3, 4)
        );
    }

    #[test]
    fn stream_without_final_newline() {
        let body = "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}";
        let got = count(Surface::AnthropicMessages, true, body.as_bytes());
        assert_eq!(
            got,
            Tokens {
                input: None,
                output: Some(9)
            }
        );
    }

    #[test]
    fn openai_chat_json() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":0}}}"#;
        assert_eq!(count(Surface::OpenAiChat, false, body), tokens(12, 5));
    }

    #[test]
    fn openai_chat_sse_with_usage_null_then_usage() {
        let body = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\": null}\n\n\
data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":2,\"total_tokens\":10}}\n\n\
data: [DONE]\n\n";
        assert_eq!(
            count(Surface::OpenAiChat, true, body.as_bytes()),
            tokens(8, 2)
        );
    }

    #[test]
    fn openai_chat_sse_without_usage_stays_none() {
        let body = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
data: [DONE]\n\n";
        assert_eq!(
            count(Surface::OpenAiChat, true, body.as_bytes()),
            Tokens::default()
        );
    }

    #[test]
    fn openai_responses_json() {
        let body = br#"{"id":"resp_1","object":"response","status":"completed","output":[],"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":80},"output_tokens":20,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":120}}"#;
        assert_eq!(
            count(Surface::OpenAiResponses, false, body),
            tokens(100, 20)
        );
    }

    #[test]
    fn openai_responses_sse() {
        let body = "event: response.created\n\
data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"usage\":null}}\n\n\
event: response.output_text.delta\n\
data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n\
event: response.completed\n\
data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"usage\":{\"input_tokens\":30,\"output_tokens\":4,\"total_tokens\":34}}}\n\n";
        assert_eq!(
            count(Surface::OpenAiResponses, true, body.as_bytes()),
            tokens(30, 4)
        );
    }

    #[test]
    fn gemini_json_adds_thoughts_to_output() {
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":11,"candidatesTokenCount":6,"thoughtsTokenCount":40,"totalTokenCount":57},"modelVersion":"gemini-2.5-pro"}"#;
        assert_eq!(count(Surface::Gemini, false, body), tokens(11, 46));
    }

    #[test]
    fn gemini_sse_takes_the_last_usage() {
        let body = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"A\"}]}}],\"usageMetadata\":{\"promptTokenCount\":9,\"totalTokenCount\":9}}\r\n\r\n\
data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"B\"}]}}],\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":3,\"totalTokenCount\":12}}\r\n\r\n\
data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"C\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":7,\"thoughtsTokenCount\":2,\"totalTokenCount\":18}}\r\n\r\n";
        assert_eq!(count(Surface::Gemini, true, body.as_bytes()), tokens(9, 9));
    }

    #[test]
    fn gemini_json_array_stream() {
        let body = b"[{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":4,\"totalTokenCount\":4}}\n,\r\n{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":8,\"totalTokenCount\":12}}\n]";
        let mut counter = TokenCounter::new(Surface::Gemini, false);
        for part in body.chunks(5) {
            counter.feed(part);
        }
        assert_eq!(counter.finish(), tokens(4, 8));
    }

    #[test]
    fn count_tokens_responses_are_not_usage() {
        assert_eq!(
            count(Surface::AnthropicMessages, false, br#"{"input_tokens":42}"#),
            Tokens::default()
        );
        assert_eq!(
            count(Surface::Gemini, false, br#"{"totalTokens":42}"#),
            Tokens::default()
        );
    }

    #[test]
    fn error_bodies_have_no_usage() {
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            count(Surface::AnthropicMessages, false, body),
            Tokens::default()
        );
        let sse = "event: error\ndata: {\"type\":\"error\",\"error\":{\"message\":\"the usage is high\"}}\n\n";
        assert_eq!(
            count(Surface::AnthropicMessages, true, sse.as_bytes()),
            Tokens::default()
        );
    }

    #[test]
    fn oversize_json_body_gives_none() {
        let mut counter = TokenCounter::new(Surface::OpenAiChat, false);
        counter.feed(br#"{"choices":[{"message":{"content":""#);
        let filler = vec![b'a'; 64 * 1024];
        for _ in 0..(MAX_BODY / filler.len() + 1) {
            counter.feed(&filler);
        }
        counter.feed(br#""}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#);
        assert_eq!(counter.finish(), Tokens::default());
    }

    #[test]
    fn oversize_sse_line_is_skipped_and_reading_resumes() {
        let mut counter = TokenCounter::new(Surface::Gemini, true);
        counter
            .feed(b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"data\":\"");
        let filler = vec![b'A'; 256 * 1024];
        for _ in 0..8 {
            counter.feed(&filler);
        }
        counter.feed(
            b"\"}}]}}],\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":1}}\n\n",
        );
        counter.feed(
            b"data: {\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":1300}}\n\n",
        );
        assert_eq!(counter.finish(), tokens(5, 1300));
    }

    #[test]
    fn a_line_growing_past_the_cap_inside_one_chunk_is_skipped() {
        let mut counter = TokenCounter::new(Surface::OpenAiChat, true);
        counter.feed(b"data: {\"x\":\"");
        let mut big = vec![b'b'; MAX_LINE];
        big.extend_from_slice(b"\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n");
        big.extend_from_slice(b"data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n");
        counter.feed(&big);
        assert_eq!(counter.finish(), tokens(3, 4));
    }

    #[test]
    fn garbage_never_panics_and_yields_none() {
        let samples: [&[u8]; 10] = [
            b"",
            b"\n\n\n",
            b"data:",
            b"data: {\"usage\":",
            b"data: {\"usage\":{\"prompt_tokens\":-1}}\n",
            b"data: {\"usage\":\"lots\"}\n",
            b"data: {\"usage\":{\"prompt_tokens\":1e400}}\n",
            b"\xff\xfe\x00data: \"usage\"\n",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"usage\"",
            b"{\"usage\":{\"input_tokens\":18446744073709551615,\"cache_read_input_tokens\":18446744073709551615}",
        ];
        let surfaces = [
            Surface::AnthropicMessages,
            Surface::OpenAiChat,
            Surface::OpenAiResponses,
            Surface::Gemini,
        ];
        for surface in surfaces {
            for sse in [false, true] {
                for sample in samples {
                    assert_eq!(count(surface, sse, sample), Tokens::default());
                }
            }
        }
        let deep = format!("{}\"usage\"{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            count(Surface::OpenAiChat, false, deep.as_bytes()),
            Tokens::default()
        );
    }

    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        let body = br#"{"usage":{"input_tokens":18446744073709551615,"cache_read_input_tokens":5,"output_tokens":1}}"#;
        assert_eq!(
            count(Surface::AnthropicMessages, false, body),
            Tokens {
                input: Some(u64::MAX),
                output: Some(1)
            }
        );
    }
}
