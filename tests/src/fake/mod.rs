//! Fake upstream AI providers for Keyway's end-to-end tests.
//!
//! One [`FakeUpstream`] serves the Anthropic, OpenAI and Gemini APIs on a single loopback
//! port, so a test points every provider's base URL in Keyway's config at
//! [`FakeUpstream::base_url`]. Each API key is scripted with a queue of [`Behaviour`]s (answer
//! normally, stream slowly, rate-limit in the provider's real shape, hang, drop mid-stream…),
//! and every request is recorded so tests can assert which key Keyway used and what it sent.
//!
//! The wire formats follow the real providers (see `shared/PROTOCOLS.md`): Keyway's parsing of
//! limits and streams is only trustworthy if the fake answers exactly like the real thing.
//! So the fake also refuses what the real services refuse:
//!
//! - an API key is valid only for the provider a test registered it with
//!   ([`FakeUpstream::register_key`]); any other gets that provider's real invalid-key answer,
//!   and an Anthropic API key sent as `Authorization: Bearer` (bearer is for OAuth tokens) is
//!   refused as Anthropic refuses it;
//! - Anthropic requests need `anthropic-version` (400 without it, or with a value that is no
//!   version), OpenAI requests with a body need `Content-Type: application/json`;
//! - every request must carry the fake's own address as `Host` and no `Origin`: a proxy that
//!   leaks its client's `Host` (`127.0.0.1:<keyway port>`) or a browser's `Origin` upstream is
//!   answered `421` with a body saying so, and the test fails when the fake is dropped (see
//!   [`FakeUpstream::take_violations`]);
//! - request bodies of the inference endpoints (Anthropic `POST /v1/messages` and
//!   `/v1/messages/count_tokens`, OpenAI `POST /v1/chat/completions`, Gemini
//!   `:generateContent`, `:streamGenerateContent` and `:countTokens`) are read into typed
//!   structs written from the official SDKs' types, and whatever the real API refuses gets that
//!   API's own 400, naming the field (see "Request checking" below).
//!
//! # Request checking
//!
//! On by default ([`FakeConfig::strict`]); it applies to requests whose scripted behaviour
//! answers from the body (`Ok`, `Stream`, `Delayed`, `Bulk`, `StreamThenDrop`,
//! `StreamThenStall`): a scripted failure stands for the provider failing before it reads the
//! body. Refused, each in the provider's words and error shape:
//!
//! - unknown fields, at the top and inside messages, content blocks, tools and configs.
//!   Anthropic: `invalid_request_error` `foo: Extra inputs are not permitted`, with pydantic's
//!   location (`messages.0.content.0.text.foo`); OpenAI: `Unrecognized request argument
//!   supplied: foo` (`param: "foo"`), inside a message `Additional properties are not allowed
//!   ('foo' was unexpected) - 'messages.0'`; Gemini: 400 `INVALID_ARGUMENT` `Invalid JSON
//!   payload received. Unknown name "foo" at 'contents[0].parts[0]': Cannot find field.` with
//!   a `BadRequest` field violation. Gemini takes every field by its camelCase and its
//!   snake_case name, as proto JSON does; its `Schema` (`parameters`, `responseSchema`) has no
//!   `additionalProperties`;
//! - shapes the format does not have: another format's content block or part type (an OpenAI
//!   `image_url` part sent to Anthropic, an Anthropic `image` block sent to OpenAI), a wrong
//!   JSON type, a role the format lacks (Anthropic: `user`, `assistant`, `system`; OpenAI:
//!   `system`, `developer`, `user`, `assistant`, `tool`, `function`; Gemini: `user`,
//!   `model`), a Gemini part setting two members of its `data` oneof or none, empty Gemini
//!   `parts`, empty Anthropic messages and text blocks, an OpenAI assistant message with
//!   neither content nor calls, OpenAI tool-call `arguments` that are no JSON text;
//! - missing required fields: Anthropic `model`, `max_tokens`, `messages`; OpenAI `model`,
//!   `messages` (not empty); Gemini `contents` (generate);
//! - tool results that answer no call: an Anthropic `tool_result` whose `tool_use_id` names no
//!   `tool_use` of the assistant turn just before, a `tool_use` not answered in the next turn;
//!   an OpenAI `role: "tool"` message that follows no assistant message with `tool_calls`, or
//!   names no call of it, calls left unanswered before the next message;
//! - values out of range: Anthropic `temperature`/`top_p` above 1, `thinking.budget_tokens`
//!   below 1024 or not below `max_tokens`, tool names not `^[a-zA-Z0-9_-]{1,128}$` or not
//!   unique; OpenAI `temperature` above 2, `top_p` above 1, an unknown `reasoning_effort`,
//!   `stream_options` without `stream`, function names not `^[a-zA-Z0-9_-]{1,64}$`; Gemini
//!   function names it does not take, a declaration with both `parameters` and
//!   `parametersJsonSchema`;
//! - reasoning the fake did not sign: an Anthropic `thinking` block in the history whose
//!   `signature` the fake did not make (``messages.N.content.M: Invalid `signature` in
//!   `thinking` block``); a Gemini `thoughtSignature` it did not make (`Corrupted thought
//!   signature.`) unless it is Google's documented placeholder `skip_thought_signature_validator`.
//!   For models whose name starts with `gemini-3`, the first `functionCall` part of each model
//!   step of the current turn (since the last user content that is more than function
//!   responses) must carry a signature, as Gemini 3 requires.
//!
//! Beta fields Anthropic unlocks with `anthropic-beta` flags are accepted without the flag.
//! The standalone fake's `--lenient` turns the checking off (for capturing new clients).
//!
//! # Directives
//!
//! The success answer of the inference endpoints (Messages, Chat Completions, Gemini generate
//! and stream, and the Responses API with the Codex backend) follows directives in the text of
//! the request's last user turn, so a test can ask for tool calls and reasoning through any
//! client and any format:
//!
//! - `[[call NAME {json args}]]` (or `[[call NAME]]` for `{}`): a call of tool NAME, which
//!   must be one of the request's tools (else the text says `no tool NAME was offered`).
//!   Several directives make parallel calls in one answer, in order, preceded by the text
//!   `Calling NAME, NAME2.`. Anthropic: `tool_use` blocks (`toolu_…` ids), stop reason
//!   `tool_use`, streamed as `content_block_start` (input `{}`), `input_json_delta` pieces and
//!   `content_block_stop`; OpenAI: `tool_calls` (`call_…` ids, arguments as JSON text), finish
//!   reason `tool_calls`, streamed as a delta opening each call then argument pieces; Gemini:
//!   `functionCall` parts (no `id`; the first signed), finish reason `STOP`, streamed whole in
//!   one chunk; Responses: `function_call` output items (`call_…` call ids), streamed as
//!   `response.output_item.added`, `response.function_call_arguments.delta` pieces and
//!   `response.output_item.done`.
//! - `[[think]]`: when the request enabled reasoning (Anthropic `thinking` `enabled` or
//!   `adaptive`, OpenAI `reasoning_effort` other than `none`, Gemini
//!   `thinkingConfig.includeThoughts`, Responses `reasoning` with an `effort` other than
//!   `none`), the answer starts with reasoning reading
//!   `Thinking about: <first 40 characters of the user's text>`: an Anthropic `thinking` block
//!   with a signature (streamed as `thinking_delta`s then a `signature_delta`), OpenAI
//!   `reasoning_content` (as DeepSeek and vLLM send it) counted in
//!   `completion_tokens_details.reasoning_tokens`, a Gemini `thought: true` part with a
//!   `thoughtSignature`, counted in `thoughtsTokenCount`; a Responses `reasoning` item whose
//!   `summary_text` it is (streamed as `response.reasoning_summary_text.delta`s), counted in
//!   `output_tokens_details.reasoning_tokens`. Signatures are base64 of
//!   `fake-anthropic:<key>:<n>` / `fake-gemini:<key>:<n>`, valid with any key.
//! - Tool results in the last turn (Anthropic `tool_result` blocks, OpenAI `role: "tool"`
//!   messages after the last assistant message, Gemini `functionResponse` parts, Responses
//!   `function_call_output` items after the last item the model produced) are answered
//!   `tool result: <each result's text, or Gemini's response JSON, joined with " | ">`.
//! - Each image in the last user turn adds a line `image <media type> <decoded bytes> bytes`,
//!   or `image url <url>` for one sent by reference (Anthropic `url`/`file` sources, OpenAI
//!   `image_url` / Responses `input_image` with an http URL or a file id, Gemini `fileData`).
//!
//! The answer's text is these lines (results, images, unknown tools, `Calling …`) joined with
//! newlines, or the usual `served by <key>` when they add none (`[[think]]` alone). A turn with
//! no directive, tool result or image gets the usual answer, unchanged. Directive answers ignore
//! a [`Behaviour`]'s event count (their events are their blocks and pieces, still paced by
//! `Stream`'s interval) and are not stamped ([`FakeConfig::stamp`]). Request checking does not
//! cover the Responses API.
//!
//! The same port also serves the subscription (OAuth) services: Claude's and OpenAI's
//! authorization servers, Anthropic OAuth inference and usage, and ChatGPT's Codex backend.
//! Their accounts are named by test-chosen labels and controlled through
//! [`FakeUpstream::claude_oauth`] and [`FakeUpstream::openai_oauth`]; requests made with their
//! tokens are recorded with [`Recorded::account`] and scripted by that label.
//!
//! # HTTPS and proxies
//!
//! With [`FakeConfig::tls`] (an identity from a [`TestCa`] made at test time) the fake serves
//! the same endpoints over TLS, HTTP/2 or HTTP/1.1 as the client's ALPN chooses
//! ([`Recorded::version`] tells which), at `https://localhost:PORT`. [`FakeConnectProxy`] is a
//! `CONNECT` proxy on loopback to put between Keyway and such a fake (`HTTPS_PROXY`).

mod anthropic;
mod cache;
mod claude;
mod codex;
mod connect_proxy;
mod creds;
mod directive;
mod gemini;
mod oauth;
mod openai;
mod openai_oauth;
mod server;
mod sse;
mod state;
mod strict;
mod strict_anthropic;
mod strict_gemini;
mod strict_openai;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cache;
#[cfg(test)]
mod tests_directives;
#[cfg(test)]
mod tests_oauth;
#[cfg(test)]
mod tests_strict;
#[cfg(test)]
mod tests_tls;
mod tls;
mod wire;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use state::Shared;

pub use claude::{CLAUDE_CODE_CLIENT_ID, ClaudeOAuth, ClaudeUsage, ClaudeWindow, OAUTH_BETA};
pub use codex::{CodexUsage, CodexWindow};
pub use connect_proxy::{FakeConnectProxy, ProxyConfig, ProxyMode, ProxyRequest};
pub use creds::{write_claude_credentials, write_codex_auth};
pub use oauth::{IssuedCode, IssuedTokens, OAuthAccount, pkce_challenge};
pub use openai_oauth::{CODEX_CLIENT_ID, OpenAiOAuth, jwt_payload};
pub use tls::{TestCa, TlsIdentity};

/// Which provider's API a recorded request was addressed to.
///
/// Decided by path; `GET /v1/models` (shared by Anthropic and OpenAI) counts as Anthropic when
/// the request carries `anthropic-version` or `x-api-key`, as real Anthropic clients always do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Anthropic Messages API (`/v1/messages…`, `/v1/models` with Anthropic headers).
    Anthropic,
    /// OpenAI API (`/v1/chat/completions`, `/v1/responses`, `/v1/models`).
    OpenAi,
    /// Google Gemini API (`/v1beta/models…`).
    Google,
}

impl std::str::FromStr for Provider {
    type Err = String;

    /// Keyway's provider ids: `anthropic`, `openai`, `google`.
    fn from_str(id: &str) -> Result<Self, String> {
        match id {
            "anthropic" => Ok(Self::Anthropic),
            "openai" => Ok(Self::OpenAi),
            "google" => Ok(Self::Google),
            other => Err(format!(
                "unknown provider `{other}` (anthropic, openai or google)"
            )),
        }
    }
}

/// How the fake answers one request authenticated with a given key.
///
/// Queued per key with [`FakeUpstream::push`]; the key's default (see
/// [`FakeUpstream::set_default`]) applies once its queue is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// The endpoint's normal success answer. A streaming request (Anthropic/OpenAI
    /// `"stream": true`, Gemini `:streamGenerateContent`) gets 3 content events with no delay.
    Ok,
    /// Like `Ok`, but a streaming request gets `events` content events, each sent after waiting
    /// `interval` (so the stream lasts `events × interval`), then the endpoint's proper end of
    /// stream. The stream's opening events are sent at once. Non-streaming requests get the
    /// normal JSON answer, as the real API would give them.
    Stream {
        /// Number of content events (text deltas / chunks).
        events: usize,
        /// Wait before each content event.
        interval: Duration,
    },
    /// Wait, then answer like `Ok`. Models a slow upstream (time to first byte).
    Delayed(Duration),
    /// 429 in the provider's real shape; see [`RateLimit`].
    RateLimited(RateLimit),
    /// Anthropic: 529 `overloaded_error`; OpenAI and Gemini: 503.
    Overloaded,
    /// The given status (meant for 5xx) with the provider's error JSON.
    ServerError(u16),
    /// The prompt is longer than the model's context window: Anthropic 400
    /// `invalid_request_error` "prompt is too long: … tokens > … maximum", OpenAI 400
    /// `context_length_exceeded`, Gemini 400 `INVALID_ARGUMENT` "The input token count … exceeds
    /// the maximum number of tokens allowed …".
    ContextTooLong,
    /// The provider's invalid-key answer: Anthropic 401 `authentication_error`, OpenAI 401
    /// `invalid_api_key`, Gemini 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID` (that
    /// is what Gemini really sends for a bad key). Unregistered keys get it without a script;
    /// this scripts it for a registered key that the provider stops accepting.
    Unauthorized,
    /// Read the request, then never send response headers. The handler is dropped when the
    /// client disconnects, which [`FakeUpstream::disconnected`] counts.
    Hang,
    /// Send response headers and the stream's opening events, then `events` content events,
    /// then abort the connection without the end of stream. A non-streaming request gets the
    /// first half of its JSON body before the abort.
    StreamThenDrop {
        /// Content events sent before the connection is aborted.
        events: usize,
    },
    /// Send response headers and the stream's opening events, then `events` content events,
    /// then nothing more, ever: the connection stays open and silent (a stalled upstream) until
    /// the client goes away. A non-streaming request gets the first half of its JSON body, then
    /// the same silence.
    StreamThenStall {
        /// Content events sent before the stream falls silent.
        events: usize,
    },
    /// Like `Stream` without pacing, with every content event's text padded to about `bytes`
    /// bytes: a fast upstream producing far more than a client reads, for back-pressure tests.
    /// [`FakeUpstream::stream_event_times`] tells how far the stream got.
    Bulk {
        /// Number of content events.
        events: usize,
        /// Bytes of text in each content event.
        bytes: usize,
    },
    /// Exactly this answer, for cases the other variants don't cover (e.g. a 403 ban body).
    /// Invalid status codes become 500; invalid headers are skipped; `content-type` defaults
    /// to `application/json`.
    Raw {
        /// HTTP status code.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// Response body, sent as is.
        body: String,
    },
}

/// The flavours of 429 that Keyway must tell apart to decide how long a key cools down.
///
/// Every variant answers 429 with the provider's rate-limit error body. Variants named after a
/// provider carry their reset information the way that provider does; used on another
/// provider's endpoint they add only their headers (if any) to that provider's plain 429.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimit {
    /// `retry-after: N` (seconds) header, plain body.
    RetryAfter(u64),
    /// Anthropic subscription 5-hour window exhausted: headers
    /// `anthropic-ratelimit-unified-status: rejected`, `…-unified-5h-status: rejected`,
    /// `…-unified-5h-reset: <reset_unix>`, `…-unified-reset: <reset_unix>`,
    /// `…-unified-representative-claim: five_hour`, and a `rate_limit_error` body.
    AnthropicUnified5h {
        /// Unix seconds when the window resets.
        reset_unix: u64,
    },
    /// Like [`RateLimit::AnthropicUnified5h`] for the 7-day window (`…-7d-status`,
    /// `…-7d-reset`, claim `seven_day`).
    AnthropicUnified7d {
        /// Unix seconds when the window resets.
        reset_unix: u64,
    },
    /// OpenAI/Codex plan limit: body
    /// `{"error":{"type":"usage_limit_reached","message":…,"plan_type":"plus","resets_at":N}}`.
    OpenAiUsageLimit {
        /// Unix seconds when usage resets.
        resets_at: u64,
    },
    /// Like [`RateLimit::OpenAiUsageLimit`] but with `resets_in_seconds` instead of
    /// `resets_at` (Codex sends either).
    OpenAiUsageLimitIn {
        /// Seconds until usage resets.
        resets_in_seconds: u64,
    },
    /// Gemini quota: `RESOURCE_EXHAUSTED` with `details` holding a `QuotaFailure` and a
    /// `google.rpc.RetryInfo` whose `retryDelay` is `"<delay_secs>s"`.
    GeminiRetryInfo {
        /// Suggested delay in seconds.
        delay_secs: u64,
    },
    /// 429 with no reset information at all (no headers, no reset fields).
    Plain,
}

/// One rate limit as a provider reports it in the headers of an API key's answers: how many
/// requests (or tokens) the key's tier allows, how many are left, and how long until the limit
/// is full again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBudget {
    /// `…-limit`.
    pub limit: u64,
    /// `…-remaining`.
    pub remaining: u64,
    /// `…-reset`, from the moment of each answer: Anthropic sends that instant as an RFC 3339
    /// time (`2026-01-02T03:04:05Z`), OpenAI as a Go duration (`6m0s`, `1s`, `20ms`).
    pub reset_in: Duration,
}

/// The rate-limit headers a key's answers carry ([`FakeUpstream::set_rate_limits`]), in the
/// provider's own names and formats:
///
/// - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
///   remaining,reset}`;
/// - OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (no input/output split);
/// - Gemini sends none.
///
/// The values are reported as set, on every answer (success or error) until changed: the fake
/// does not count requests down itself, so a test decides exactly what Keyway is told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per minute.
    pub requests: Option<RateBudget>,
    /// Tokens per minute (input and output together).
    pub tokens: Option<RateBudget>,
    /// Anthropic only.
    pub input_tokens: Option<RateBudget>,
    /// Anthropic only.
    pub output_tokens: Option<RateBudget>,
}

/// One request as the fake received it, for assertions on what Keyway forwarded.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method, e.g. `"POST"`.
    pub method: String,
    /// Path plus query string, e.g. `"/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"`.
    pub path: String,
    /// All request headers in arrival order, names lowercased (values lossily UTF-8).
    pub headers: Vec<(String, String)>,
    /// The complete request body.
    pub body: Bytes,
    /// The API key the request authenticated with, extracted the provider's way; `None` if
    /// the request carried none. For OAuth requests: the bearer access token.
    pub key: Option<String>,
    /// For requests made with a token of the fake's OAuth servers: the label of the account
    /// it belongs to (even if the token was rejected as expired). `None` for API keys.
    pub account: Option<String>,
    /// Which provider's API was addressed.
    pub provider: Provider,
    /// When the request (with its full body) had been read.
    pub received_at: Instant,
    /// The HTTP version the request arrived with: `HTTP/1.1` on the plain path, `HTTP/2` on
    /// a TLS fake ([`FakeConfig::tls`]) when the client negotiated `h2`.
    pub version: http::Version,
}

impl Recorded {
    /// First value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, or `None` if it isn't JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// How to run a [`FakeUpstream`]; [`FakeConfig::default`] is what [`FakeUpstream::start`] uses.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Address to bind; default `127.0.0.1:0` (an ephemeral loopback port).
    pub listen: SocketAddr,
    /// Record every request (default). Benchmarks turn it off so the fake costs as little
    /// as possible; request counts, in-flight and disconnect counters still work.
    pub record: bool,
    /// What a key with no script answers (default [`Behaviour::Ok`]). The standalone fake sets
    /// a [`Behaviour::Stream`] here so benchmarks get paced streams without scripting keys.
    pub unscripted: Behaviour,
    /// Stamp every streamed piece with the wall-clock time it is handed to the connection
    /// (default off). Each content event's text then ends with
    /// [`STAMP_MARKER`]`<19 digits>`: CLOCK_REALTIME nanoseconds since the Unix epoch, so a
    /// client in another process can compute how long the event took to reach it.
    pub stamp: bool,
    /// API keys accepted from the start, as [`FakeUpstream::register_key`] adds them (the
    /// standalone fake's `--key`).
    pub keys: Vec<(Provider, String)>,
    /// How long an unused prompt cache entry lives (default 5 minutes, as Anthropic's and
    /// OpenAI's default caches; a hit refreshes it).
    pub cache_ttl: Duration,
    /// Act as another vendor's endpoint of one of the formats (default: the providers
    /// themselves). See [`Vendor`].
    pub vendor: Option<Vendor>,
    /// Failures injected into the answers of keys with no script (the standalone fake's
    /// `--fault`, for soak runs): each request draws one at most, each with its chance.
    pub faults: Vec<Fault>,
    /// Check request bodies as the real APIs do and refuse what they refuse (default on; see
    /// the module docs). Off, any JSON body is answered (the standalone fake's `--lenient`,
    /// for capturing what a new client version sends).
    pub strict: bool,
    /// Serve HTTPS with this certificate and key instead of plain HTTP (default `None`): the
    /// same endpoints, over rustls with ALPN `h2` and `http/1.1` (HTTP/2 when the client
    /// offers it). [`FakeUpstream::base_url`] is then `https://localhost:PORT`, which the
    /// identity of [`TestCa::localhost_identity`] is valid for; clients must trust that test
    /// CA ([`TestCa::write_pem`] for `SSL_CERT_FILE`).
    pub tls: Option<TlsIdentity>,
}

/// Another vendor's endpoint speaking a provider's format, as DeepSeek, Moonshot or Zhipu
/// serve the Anthropic format: the API lives under a path (`https://api.deepseek.com/anthropic`
/// then `/v1/messages`), and API keys may come as `Authorization: Bearer` (what Claude Code
/// sends from `ANTHROPIC_AUTH_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendor {
    /// Where the API lives, e.g. `/anthropic`; requests outside it get 404.
    pub path_prefix: String,
    /// Registered Anthropic API keys are accepted as bearer tokens too.
    pub bearer_keys: bool,
}

/// A failure the fake injects at random ([`FakeConfig::faults`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Chance per request, in thousandths.
    pub per_mille: u32,
    /// What the request gets instead of the unscripted answer.
    pub behaviour: Behaviour,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            record: true,
            unscripted: Behaviour::Ok,
            stamp: false,
            keys: Vec::new(),
            cache_ttl: Duration::from_secs(300),
            vendor: None,
            faults: Vec::new(),
            strict: true,
            tls: None,
        }
    }
}

/// What precedes the emission time in a stamped content event's text (see
/// [`FakeConfig::stamp`]); [`STAMP_DIGITS`] decimal digits follow.
pub const STAMP_MARKER: &str = " emitted_ns=";

/// Width of the zero-padded nanosecond stamp after [`STAMP_MARKER`] (fits until the year 2286).
pub const STAMP_DIGITS: usize = 19;

/// A running fake upstream serving all three providers' APIs on one loopback port.
///
/// Dropping it stops accepting connections (already-open connections end with the runtime).
pub struct FakeUpstream {
    addr: SocketAddr,
    /// Serves HTTPS ([`FakeConfig::tls`]).
    tls: bool,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl FakeUpstream {
    /// Binds `127.0.0.1:0` and serves in a spawned task; returns once the socket is listening,
    /// so requests sent right after are accepted.
    ///
    /// # Panics
    /// If a loopback port can't be bound (the test can't run at all then).
    pub async fn start() -> FakeUpstream {
        Self::start_with(FakeConfig::default())
            .await
            .expect("fake upstream: bind 127.0.0.1:0")
    }

    /// Binds `127.0.0.1:0` and serves HTTPS with `identity` (see [`FakeConfig::tls`]).
    ///
    /// # Panics
    /// If a loopback port can't be bound or the identity is unusable.
    pub async fn start_tls(identity: TlsIdentity) -> FakeUpstream {
        let config = FakeConfig {
            tls: Some(identity),
            ..FakeConfig::default()
        };
        Self::start_with(config)
            .await
            .expect("fake upstream: serve HTTPS on 127.0.0.1:0")
    }

    /// Like [`FakeUpstream::start`] with an explicit address, recording, unscripted answer,
    /// stamping choice and TLS.
    pub async fn start_with(config: FakeConfig) -> io::Result<FakeUpstream> {
        let tls_config = match &config.tls {
            Some(identity) => Some(identity.server_config().map_err(io::Error::other)?),
            None => None,
        };
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(
            addr,
            config.record,
            config.unscripted,
            config.stamp,
            config.strict,
            config.cache_ttl,
            config.vendor.clone(),
        ));
        for (provider, key) in &config.keys {
            shared.register_key(*provider, key);
        }
        shared.set_faults(config.faults.clone());
        let app = server::router(Arc::clone(&shared));
        let is_tls = tls_config.is_some();
        let server = tokio::spawn(async move {
            if let Some(config) = tls_config {
                tls::serve(listener, config, app).await;
                return;
            }
            // axum's accept loop only ends on listener errors it can't recover from; the fake
            // has nobody to report them to, and the test will see connection failures.
            // Nagle off, as real API servers and Keyway's own client do: with it on, a
            // streamed event can wait for the client's delayed ACK of the previous one, which
            // shows up as ~20-40 ms event delays in the benchmark.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeUpstream {
            addr,
            tls: is_tls,
            shared,
            server,
        })
    }

    /// The origin to configure as every provider's base URL: `http://127.0.0.1:PORT`, no path;
    /// for a TLS fake ([`FakeConfig::tls`]) `https://localhost:PORT`.
    pub fn base_url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// `base_url() + path`, for building request URLs in tests.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes `key` a valid API key of `provider`, as creating it in the provider's console
    /// does. Requests with any other key get the provider's invalid-key answer; OAuth tokens
    /// come from the fake's own authorization servers instead ([`FakeUpstream::claude_oauth`],
    /// [`FakeUpstream::openai_oauth`]).
    pub fn register_key(&self, provider: Provider, key: &str) {
        self.shared.register_key(provider, key);
    }

    /// [`FakeUpstream::register_key`] for several keys of one provider.
    pub fn register_keys<'a>(&self, provider: Provider, keys: impl IntoIterator<Item = &'a str>) {
        for key in keys {
            self.shared.register_key(provider, key);
        }
    }

    /// The requests refused because no real provider would have taken them from a proxy (a
    /// `Host` that is not the fake's own address, an `Origin`), each described; forgets them.
    /// Any left when the fake is dropped fail the test, so a test that expects some (the
    /// fake's own tests) takes them.
    pub fn take_violations(&self) -> Vec<String> {
        self.shared.take_violations()
    }

    /// Queues `b` as the answer to the next not-yet-scripted request authenticated with `key`.
    pub fn push(&self, key: &str, b: Behaviour) {
        self.shared.push(key, [b]);
    }

    /// Queues several behaviours for `key`, answered in order.
    pub fn push_all(&self, key: &str, bs: impl IntoIterator<Item = Behaviour>) {
        self.shared.push(key, bs);
    }

    /// Sets what `key` gets once its queue is empty (initially [`FakeConfig::unscripted`],
    /// [`Behaviour::Ok`] by default).
    pub fn set_default(&self, key: &str, b: Behaviour) {
        self.shared.set_default(key, b);
    }

    /// Forgets all queued behaviours and defaults: every key answers
    /// [`FakeConfig::unscripted`] (`Ok` by default) again.
    pub fn clear_scripts(&self) {
        self.shared.clear_scripts();
    }

    /// Every request received on a provider endpoint, in arrival order (since the last
    /// [`FakeUpstream::clear`]). Requests to unknown paths are in [`FakeUpstream::unmatched`].
    /// Inference endpoints only (including the Codex backend's `responses`): OAuth token,
    /// device-login and usage-poll requests are counted on the OAuth handles instead, so a
    /// background refresh or poll never shifts a test's request count.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests()
    }

    /// The key of each recorded request, in order; requests without a key are skipped.
    pub fn keys_used(&self) -> Vec<String> {
        self.requests().into_iter().filter_map(|r| r.key).collect()
    }

    /// The OAuth account label of each recorded request, in order; requests made with API
    /// keys (or unknown tokens) are skipped.
    pub fn accounts_used(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|r| r.account)
            .collect()
    }

    /// The fake Claude subscription services: OAuth login and refresh, usage poll, OAuth
    /// inference on `/v1/messages`, per-account limits. See [`ClaudeOAuth`].
    pub fn claude_oauth(&self) -> ClaudeOAuth<'_> {
        ClaudeOAuth::new(&self.shared.claude)
    }

    /// The fake ChatGPT subscription services: `auth.openai.com` (browser and device login,
    /// refresh) and the Codex backend with its usage poll. See [`OpenAiOAuth`].
    pub fn openai_oauth(&self) -> OpenAiOAuth<'_> {
        OpenAiOAuth::new(&self.shared.openai_auth, &self.shared.codex)
    }

    /// `"METHOD /path?query"` of each request that matched no provider endpoint (answered
    /// 404, or 405 for a known path with the wrong method). A correct Keyway leaves this
    /// empty.
    pub fn unmatched(&self) -> Vec<String> {
        self.shared.unmatched()
    }

    /// For each recorded request (same index as [`FakeUpstream::requests`]), the instants at
    /// which the fake handed each content event of its streamed answer to the connection.
    /// Empty for non-streamed answers. Lets tests check that Keyway relays events as they
    /// come rather than buffering.
    pub fn stream_event_times(&self) -> Vec<Vec<Instant>> {
        self.shared.stream_event_times()
    }

    /// Drops all recordings and resets the request and disconnect counters to zero; scripts
    /// are kept.
    pub fn clear(&self) {
        self.shared.clear();
    }

    /// Resolves once `n` requests in total have been received (since the last `clear`).
    /// A request counts once its body has been read and it has been recorded.
    pub async fn wait_for_requests(&self, n: usize) {
        self.shared.wait_for_requests(n).await;
    }

    /// How many requests ended because the client went away before the fake finished its
    /// answer (a `Hang` whose client disconnected, a stream cut by the client…). Scripted
    /// aborts (`StreamThenDrop`) don't count. Lets tests check that Keyway cancels the
    /// upstream request when its own client disconnects.
    pub fn disconnected(&self) -> usize {
        self.shared.disconnected()
    }

    /// Resolves once [`FakeUpstream::disconnected`] reaches `n`.
    pub async fn wait_for_disconnects(&self, n: usize) {
        self.shared.wait_for_disconnects(n).await;
    }

    /// Requests currently being handled (including streams still being sent).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// The most requests authenticated with API key `key` that the fake was handling at once
    /// (a streamed answer counts until its last byte is sent), since the last
    /// [`FakeUpstream::clear`]. Counts only keys the provider accepts.
    pub fn peak_in_flight(&self, key: &str) -> usize {
        self.shared.peak_in_flight(key)
    }

    /// Makes every answer to API key `key` carry `limits` in the provider's rate-limit headers
    /// (see [`RateLimits`]); `RateLimits::default()` stops them.
    pub fn set_rate_limits(&self, key: &str, limits: RateLimits) {
        self.shared.set_rate_limits(key, limits);
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.server.abort();
        let violations = self.shared.take_violations();
        // A test already failing says why itself; a second panic would abort the process.
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "the fake upstream received {} request(s) that a real provider would not get from \
                 a correct proxy:\n  {}",
                violations.len(),
                violations.join("\n  ")
            );
        }
    }
}
