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
static ITEM_DONE: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"response.output_item.done\""));
static ENCRYPTED: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"encrypted_content\""));

/// Input and output tokens of one response, as far as the body told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tokens {
    /// Every prompt token the request consumed, cached or not.
    pub input: Option<u64>,
    /// Every generated token, reasoning included.
    pub output: Option<u64>,
    /// The part of `input` the prompt cache served (Anthropic `cache_read_input_tokens`,
    /// OpenAI `cached_tokens`, Gemini `cachedContentTokenCount`).
    pub cache_read: Option<u64>,
    /// The part of `input` written to the prompt cache (Anthropic
    /// `cache_creation_input_tokens`; the other providers do not say).
    pub cache_write: Option<u64>,
    /// The part of `cache_write` written for an hour (Anthropic
    /// `cache_creation.ephemeral_1h_input_tokens`), which is priced higher.
    pub cache_write_1h: Option<u64>,
}

/// What a response body told in passing: its usage, and for the Responses API the state it
/// left with its account (its `id`, its encrypted reasoning items).
#[derive(Debug, Default)]
pub struct Seen {
    pub tokens: Tokens,
    pub response_id: Option<String>,
    pub encrypted_reasoning: Vec<String>,
}

/// Most encrypted reasoning items kept from one response.
const MAX_REASONING_ITEMS: usize = 64;

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
    cache_creation_1h: Option<u64>,
    cache_read: Option<u64>,
    /// OpenAI and Gemini count cached tokens inside their input count.
    cached_in_input: Option<u64>,
    output: Option<u64>,
    response_id: Option<String>,
    encrypted_reasoning: Vec<String>,
}

impl Counts {
    fn seen(self) -> Seen {
        let parts = [self.input, self.cache_creation, self.cache_read];
        let input = parts
            .into_iter()
            .flatten()
            .reduce(|sum, n| sum.saturating_add(n));
        Seen {
            tokens: Tokens {
                input,
                output: self.output,
                cache_read: self.cache_read.or(self.cached_in_input),
                cache_write: self.cache_creation,
                cache_write_1h: self.cache_creation_1h,
            },
            response_id: self.response_id,
            encrypted_reasoning: self.encrypted_reasoning,
        }
    }

    fn keep_reasoning(&mut self, item: ResponsesItem) {
        if let Some(content) = item.encrypted_content.filter(|_| item.kind == "reasoning")
            && self.encrypted_reasoning.len() < MAX_REASONING_ITEMS
            && !self.encrypted_reasoning.contains(&content)
        {
            self.encrypted_reasoning.push(content);
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

    /// What the body reported, once it has ended.
    pub fn finish(mut self) -> Seen {
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
        self.counts.seen()
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
    } else if surface == Surface::OpenAiResponses
        && ITEM_DONE.find(data).is_some()
        && ENCRYPTED.find(data).is_some()
    {
        // A finished output item of a Responses stream that carries encrypted reasoning.
        if let Ok(event) = serde_json::from_slice::<ItemDone>(data) {
            counts.keep_reasoning(event.item);
        }
    }
}

/// A Responses stream's `response.output_item.done` event.
#[derive(Deserialize)]
struct ItemDone {
    item: ResponsesItem,
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
    /// The cache writes by lifetime.
    cache_creation: Option<AnthropicCacheCreation>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicCacheCreation {
    ephemeral_1h_input_tokens: Option<u64>,
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
            replace(
                &mut counts.cache_creation_1h,
                usage
                    .cache_creation
                    .and_then(|c| c.ephemeral_1h_input_tokens),
            );
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
    prompt_tokens_details: Option<CachedDetails>,
}

/// OpenAI's `prompt_tokens_details` / `input_tokens_details`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct CachedDetails {
    cached_tokens: Option<u64>,
}

impl Report for ChatBody {
    fn report(self, counts: &mut Counts) {
        if let Some(usage) = self.usage {
            replace(&mut counts.input, usage.prompt_tokens);
            replace(&mut counts.output, usage.completion_tokens);
            replace(
                &mut counts.cached_in_input,
                usage.prompt_tokens_details.and_then(|d| d.cached_tokens),
            );
        }
    }
}

/// A Responses object (`usage`) or a `response.completed` (also `.failed`, `.incomplete`)
/// event (`response.usage`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesBody {
    id: Option<String>,
    usage: Option<ResponsesUsage>,
    output: Vec<ResponsesItem>,
    response: Option<ResponsesObject>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesObject {
    id: Option<String>,
    usage: Option<ResponsesUsage>,
    output: Vec<ResponsesItem>,
}

/// One output item; only reasoning items with encrypted content are kept.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesItem {
    #[serde(rename = "type")]
    kind: String,
    encrypted_content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_tokens_details: Option<CachedDetails>,
}

impl Report for ResponsesBody {
    fn report(self, counts: &mut Counts) {
        let (inner_id, inner_usage, inner_output) = match self.response {
            Some(r) => (r.id, r.usage, r.output),
            None => (None, None, Vec::new()),
        };
        if let Some(id) = inner_id.or(self.id) {
            counts.response_id = Some(id);
        }
        for item in inner_output.into_iter().chain(self.output) {
            counts.keep_reasoning(item);
        }
        for usage in [inner_usage, self.usage].into_iter().flatten() {
            replace(&mut counts.input, usage.input_tokens);
            replace(&mut counts.output, usage.output_tokens);
            replace(
                &mut counts.cached_in_input,
                usage.input_tokens_details.and_then(|d| d.cached_tokens),
            );
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
    /// The part of the prompt served by the cache.
    cached_content_token_count: Option<u64>,
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
        counts.cached_in_input = Some(usage.cached_content_token_count.unwrap_or(0));
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
        io(counter.finish().tokens)
    }

    /// Only the input and output counts, for the tests about those.
    fn io(t: Tokens) -> Tokens {
        Tokens {
            cache_read: None,
            cache_write: None,
            cache_write_1h: None,
            ..t
        }
    }

    fn tokens(input: u64, output: u64) -> Tokens {
        Tokens {
            input: Some(input),
            output: Some(output),
            ..Tokens::default()
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
            assert_eq!(io(counter.finish().tokens), want, "split at {at}");
        }
        let mut counter = TokenCounter::new(Surface::AnthropicMessages, true);
        for byte in body {
            counter.feed(std::slice::from_ref(byte));
        }
        assert_eq!(io(counter.finish().tokens), want, "byte by byte");
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
            assert_eq!(
                io(counter.finish().tokens),
                tokens(2125, 42),
                "round {round}"
            );
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
                output: Some(9),
                ..Tokens::default()
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
        assert_eq!(io(counter.finish().tokens), tokens(4, 8));
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
        assert_eq!(io(counter.finish().tokens), Tokens::default());
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
        assert_eq!(io(counter.finish().tokens), tokens(5, 1300));
    }

    #[test]
    fn a_line_growing_past_the_cap_inside_one_chunk_is_skipped() {
        let mut counter = TokenCounter::new(Surface::OpenAiChat, true);
        counter.feed(b"data: {\"x\":\"");
        let mut big = vec![b'b'; MAX_LINE];
        big.extend_from_slice(b"\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n");
        big.extend_from_slice(b"data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n");
        counter.feed(&big);
        assert_eq!(io(counter.finish().tokens), tokens(3, 4));
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
    fn cache_reads_and_writes_in_each_providers_fields() {
        let cached = |surface, sse, body: &str| {
            let mut counter = TokenCounter::new(surface, sse);
            counter.feed(body.as_bytes());
            let t = counter.finish().tokens;
            (t.input, t.cache_read, t.cache_write)
        };
        assert_eq!(
            cached(Surface::AnthropicMessages, true, ANTHROPIC_SSE),
            (Some(2125), Some(2000), Some(100))
        );
        let chat = r#"{"usage":{"prompt_tokens":2006,"completion_tokens":300,"prompt_tokens_details":{"cached_tokens":1920}}}"#;
        assert_eq!(
            cached(Surface::OpenAiChat, false, chat),
            (Some(2006), Some(1920), None)
        );
        let responses = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"usage\":{\"input_tokens\":1500,\"input_tokens_details\":{\"cached_tokens\":1024},\"output_tokens\":7}}}\n\n";
        assert_eq!(
            cached(Surface::OpenAiResponses, true, responses),
            (Some(1500), Some(1024), None)
        );
        let gemini = r#"{"usageMetadata":{"promptTokenCount":4000,"cachedContentTokenCount":3000,"candidatesTokenCount":9}}"#;
        assert_eq!(
            cached(Surface::Gemini, false, gemini),
            (Some(4000), Some(3000), None)
        );
    }

    #[test]
    fn responses_ids_and_encrypted_reasoning_are_seen_in_passing() {
        let stream = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_7\",\"usage\":null}}\n\n\
event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"reasoning\",\"id\":\"rs_1\",\"encrypted_content\":\"gAAAA-one\"}}\n\n\
event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_7\",\"output\":[{\"type\":\"reasoning\",\"encrypted_content\":\"gAAAA-one\"},{\"type\":\"message\"}],\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}}\n\n";
        let mut counter = TokenCounter::new(Surface::OpenAiResponses, true);
        counter.feed(stream.as_bytes());
        let seen = counter.finish();
        assert_eq!(seen.response_id.as_deref(), Some("resp_7"));
        assert_eq!(seen.encrypted_reasoning, ["gAAAA-one"]);
        let body = br#"{"id":"resp_8","output":[{"type":"reasoning","encrypted_content":"gAAAA-two"}],"usage":{"input_tokens":1,"output_tokens":1}}"#;
        let mut counter = TokenCounter::new(Surface::OpenAiResponses, false);
        counter.feed(body);
        let seen = counter.finish();
        assert_eq!(
            (seen.response_id.as_deref(), seen.encrypted_reasoning),
            (Some("resp_8"), vec!["gAAAA-two".to_owned()])
        );
    }

    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        let body = br#"{"usage":{"input_tokens":18446744073709551615,"cache_read_input_tokens":5,"output_tokens":1}}"#;
        assert_eq!(
            count(Surface::AnthropicMessages, false, body),
            Tokens {
                input: Some(u64::MAX),
                output: Some(1),
                ..Tokens::default()
            }
        );
    }

    #[test]
    fn anthropic_cache_writes_by_lifetime() {
        let body = br#"{"usage":{"input_tokens":10,"cache_creation_input_tokens":300,"cache_read_input_tokens":50,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},"output_tokens":7}}"#;
        let mut counter = TokenCounter::new(Surface::AnthropicMessages, false);
        counter.feed(body);
        assert_eq!(
            counter.finish().tokens,
            Tokens {
                input: Some(360),
                output: Some(7),
                cache_read: Some(50),
                cache_write: Some(300),
                cache_write_1h: Some(200),
            }
        );
    }
}
