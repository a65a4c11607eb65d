//! Provider-neutral pieces the provider modules build their answers from.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::{Provider, RateBudget, RateLimit, RateLimits};

/// The parts of an authenticated request that an answer is built from.
pub(crate) struct Call {
    /// The key the request authenticated with; success answers mention it.
    pub key: String,
    pub body: Bytes,
    /// Unique number for this answer's ids.
    pub id: u64,
    /// Streamed pieces end with a stamp placeholder ([`super::FakeConfig::stamp`]).
    pub stamp: bool,
    /// Streamed pieces end with a filler placeholder, expanded as each is sent
    /// ([`super::Behaviour::Bulk`]).
    pub pad: bool,
    /// What the credential's organization keeps between requests, as it bears on this one.
    pub facts: Facts,
}

/// A request's dealings with its organization's state: its prompt cache use, and (Responses
/// API) the encrypted reasoning item its answer carries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub cache: super::cache::CacheUse,
    /// `include: ["reasoning.encrypted_content"]`: the item's encrypted content.
    pub reasoning: Option<String>,
}

impl Call {
    /// The request body as JSON, or the message for a 400.
    pub(crate) fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("request body is not valid JSON: {e}"))
    }

    /// A stand-in prompt token count that grows with the request, so usage looks plausible:
    /// the prompt cache's count when the endpoint has one.
    pub(crate) fn input_tokens(&self) -> u64 {
        match self.facts.cache.total {
            0 => (self.body.len() as u64 / 4).max(1),
            total => total,
        }
    }

    /// The text of content event `i`: the first names the key, so concatenated stream text
    /// reads `served by <key> +1 +2 …`, the same prefix as the non-streamed text. When
    /// stamping, each piece ends with the placeholder that the body stream overwrites with
    /// the emission time (see [`super::sse::STAMP_PLACEHOLDER`]).
    pub(crate) fn piece(&self, i: usize) -> String {
        let mut piece = if i == 0 {
            self.text()
        } else {
            format!(" +{i}")
        };
        if self.pad {
            piece.push_str(super::sse::PAD_PLACEHOLDER);
        }
        if self.stamp {
            piece.push_str(super::sse::STAMP_PLACEHOLDER);
        }
        piece
    }

    /// The full text of a non-streamed answer: tells a test which key was served.
    pub(crate) fn text(&self) -> String {
        format!("served by {}", self.key)
    }
}

/// What a provider module answers; `server` turns it into an HTTP response, handling the
/// pacing, aborts and bookkeeping the same way for every provider.
pub(crate) enum Answer {
    /// A complete JSON body.
    Json {
        status: StatusCode,
        headers: Vec<(&'static str, String)>,
        body: Value,
    },
    /// A streamed body: `head` is sent at once, `content` one piece per interval, `tail` (the
    /// proper end of stream) right after the last piece unless the script aborts instead.
    Stream {
        content_type: &'static str,
        head: Vec<Bytes>,
        content: Vec<Bytes>,
        tail: Vec<Bytes>,
    },
}

impl Answer {
    pub(crate) fn ok(body: Value) -> Self {
        Self::Json {
            status: StatusCode::OK,
            headers: Vec::new(),
            body,
        }
    }

    pub(crate) fn error(status: StatusCode, body: Value) -> Self {
        Self::Json {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub(crate) fn with_headers(mut self, extra: Vec<(&'static str, String)>) -> Self {
        if let Self::Json { headers, .. } = &mut self {
            headers.extend(extra);
        }
        self
    }
}

/// Error answers every provider renders in its own shape.
pub(crate) enum Failure<'a> {
    /// The request carried no key at all.
    MissingKey,
    /// The key (given) is not one the provider accepts.
    Unauthorized(&'a str),
    RateLimited(&'a RateLimit),
    Overloaded,
    Server(u16),
    ContextTooLong,
    BadRequest(String),
    NotFound(String),
}

/// A status for `code`, falling back to 500 for codes HTTP can't carry.
pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Rate-limit headers a 429 carries, whichever provider sends it.
pub(crate) fn rate_limit_headers(limit: &RateLimit) -> Vec<(&'static str, String)> {
    match limit {
        RateLimit::RetryAfter(secs) => vec![("retry-after", secs.to_string())],
        RateLimit::AnthropicUnified5h { reset_unix } => vec![
            ("anthropic-ratelimit-unified-status", "rejected".into()),
            ("anthropic-ratelimit-unified-5h-status", "rejected".into()),
            (
                "anthropic-ratelimit-unified-5h-reset",
                reset_unix.to_string(),
            ),
            ("anthropic-ratelimit-unified-reset", reset_unix.to_string()),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "five_hour".into(),
            ),
        ],
        RateLimit::AnthropicUnified7d { reset_unix } => vec![
            ("anthropic-ratelimit-unified-status", "rejected".into()),
            ("anthropic-ratelimit-unified-7d-status", "rejected".into()),
            (
                "anthropic-ratelimit-unified-7d-reset",
                reset_unix.to_string(),
            ),
            ("anthropic-ratelimit-unified-reset", reset_unix.to_string()),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "seven_day".into(),
            ),
        ],
        RateLimit::OpenAiUsageLimit { .. }
        | RateLimit::OpenAiUsageLimitIn { .. }
        | RateLimit::GeminiRetryInfo { .. }
        | RateLimit::Plain => Vec::new(),
    }
}

/// The rate-limit headers an API key's answer carries at `now`, in `provider`'s names and
/// formats (see [`RateLimits`]).
pub(crate) fn rate_budget_headers(
    provider: Provider,
    limits: &RateLimits,
    now: SystemTime,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut report = |budget: Option<RateBudget>,
                      names: (&'static str, &'static str, &'static str),
                      reset: &dyn Fn(std::time::Duration) -> String| {
        if let Some(b) = budget {
            out.push((names.0, b.limit.to_string()));
            out.push((names.1, b.remaining.to_string()));
            out.push((names.2, reset(b.reset_in)));
        }
    };
    match provider {
        Provider::Anthropic => {
            let rfc3339 = |after: std::time::Duration| {
                let at = now + after;
                let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX))
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            };
            for (budget, names) in [
                (
                    limits.requests,
                    (
                        "anthropic-ratelimit-requests-limit",
                        "anthropic-ratelimit-requests-remaining",
                        "anthropic-ratelimit-requests-reset",
                    ),
                ),
                (
                    limits.tokens,
                    (
                        "anthropic-ratelimit-tokens-limit",
                        "anthropic-ratelimit-tokens-remaining",
                        "anthropic-ratelimit-tokens-reset",
                    ),
                ),
                (
                    limits.input_tokens,
                    (
                        "anthropic-ratelimit-input-tokens-limit",
                        "anthropic-ratelimit-input-tokens-remaining",
                        "anthropic-ratelimit-input-tokens-reset",
                    ),
                ),
                (
                    limits.output_tokens,
                    (
                        "anthropic-ratelimit-output-tokens-limit",
                        "anthropic-ratelimit-output-tokens-remaining",
                        "anthropic-ratelimit-output-tokens-reset",
                    ),
                ),
            ] {
                report(budget, names, &rfc3339);
            }
        }
        Provider::OpenAi => {
            for (budget, names) in [
                (
                    limits.requests,
                    (
                        "x-ratelimit-limit-requests",
                        "x-ratelimit-remaining-requests",
                        "x-ratelimit-reset-requests",
                    ),
                ),
                (
                    limits.tokens,
                    (
                        "x-ratelimit-limit-tokens",
                        "x-ratelimit-remaining-tokens",
                        "x-ratelimit-reset-tokens",
                    ),
                ),
            ] {
                report(budget, names, &go_duration);
            }
        }
        Provider::Google => {}
    }
    out
}

/// A duration as Go's `time.Duration.String` writes it, which OpenAI's reset headers use:
/// `20ms` under a second, else `1s`, `1.5s`, `6m0s`, `1h2m3s`.
pub(crate) fn go_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{frac:03}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// Current Unix time in seconds, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Header value as text, if present and valid.
pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = header_str(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}
