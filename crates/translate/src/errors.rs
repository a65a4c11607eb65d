//! Upstream errors in the client's error shape.
//!
//! An upstream error keeps its HTTP status and its kind (rate limit, overloaded, invalid
//! request, ...), rendered in the client's shape so its SDK raises the right exception
//! class. The upstream's message is kept, because it is what makes an error actionable
//! ("max_tokens: 100000 > 64000"), but only after [`sanitize`]: an upstream message may quote
//! part of the account's key ("Incorrect API key provided: sk-proj-…"), and the account's
//! secret must never reach a client. Key-like tokens are replaced, the message is cut to
//! [`MAX_MESSAGE`] characters, and it is prefixed with the upstream format's name so the
//! client can tell it from its own surface's errors. Error details (Gemini's `details`,
//! Anthropic's `request_id`) are not copied.

use serde::{Deserialize, Serialize};

use crate::{ClientSurface, UpstreamFormat};

/// Longest upstream message passed on, in characters.
pub const MAX_MESSAGE: usize = 1000;

/// What kind of failure an error reports, in terms every format has a name for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    TooLarge,
    RateLimit,
    Overloaded,
    Timeout,
    Server,
}

impl ErrorKind {
    fn from_status(status: u16) -> ErrorKind {
        match status {
            400 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::TooLarge,
            429 => ErrorKind::RateLimit,
            503 | 529 => ErrorKind::Overloaded,
            504 => ErrorKind::Timeout,
            _ => ErrorKind::Server,
        }
    }

    /// The status a kind stands for, for errors reported inside a stream (which have none).
    fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::Permission => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::TooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Overloaded => 529,
            ErrorKind::Timeout => 504,
            ErrorKind::Server => 500,
        }
    }

    /// Anthropic's `error.type` (also how Keyway reads one).
    fn anthropic(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::TooLarge => "request_too_large",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::Server => "api_error",
        }
    }

    fn from_anthropic(kind: &str) -> Option<ErrorKind> {
        Some(match kind {
            "invalid_request_error" => ErrorKind::InvalidRequest,
            "authentication_error" => ErrorKind::Authentication,
            "permission_error" | "billing_error" => ErrorKind::Permission,
            "not_found_error" => ErrorKind::NotFound,
            "request_too_large" => ErrorKind::TooLarge,
            "rate_limit_error" => ErrorKind::RateLimit,
            "overloaded_error" => ErrorKind::Overloaded,
            "timeout_error" => ErrorKind::Timeout,
            "api_error" => ErrorKind::Server,
            _ => return None,
        })
    }

    /// OpenAI's `error.type` and `error.code`.
    fn openai(self) -> (&'static str, Option<&'static str>) {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::TooLarge => {
                ("invalid_request_error", None)
            }
            ErrorKind::Authentication => ("invalid_request_error", Some("invalid_api_key")),
            ErrorKind::Permission => ("invalid_request_error", Some("permission_denied")),
            ErrorKind::RateLimit => ("rate_limit_error", Some("rate_limit_exceeded")),
            ErrorKind::Overloaded | ErrorKind::Timeout | ErrorKind::Server => {
                ("server_error", None)
            }
        }
    }

    fn from_openai(kind: &str) -> Option<ErrorKind> {
        Some(match kind {
            "invalid_request_error" => ErrorKind::InvalidRequest,
            "authentication_error" | "invalid_api_key" => ErrorKind::Authentication,
            "permission_error" => ErrorKind::Permission,
            "not_found_error" | "model_not_found" => ErrorKind::NotFound,
            "rate_limit_error"
            | "rate_limit_exceeded"
            | "insufficient_quota"
            | "usage_limit_reached" => ErrorKind::RateLimit,
            "server_error" | "api_error" => ErrorKind::Server,
            _ => return None,
        })
    }

    /// Google's `error.status`.
    fn google(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::TooLarge => "INVALID_ARGUMENT",
            ErrorKind::Authentication => "UNAUTHENTICATED",
            ErrorKind::Permission => "PERMISSION_DENIED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::RateLimit => "RESOURCE_EXHAUSTED",
            ErrorKind::Overloaded => "UNAVAILABLE",
            ErrorKind::Timeout => "DEADLINE_EXCEEDED",
            ErrorKind::Server => "INTERNAL",
        }
    }

    fn from_google(status: &str) -> Option<ErrorKind> {
        Some(match status {
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
                ErrorKind::InvalidRequest
            }
            "UNAUTHENTICATED" => ErrorKind::Authentication,
            "PERMISSION_DENIED" => ErrorKind::Permission,
            "NOT_FOUND" => ErrorKind::NotFound,
            "RESOURCE_EXHAUSTED" => ErrorKind::RateLimit,
            "UNAVAILABLE" => ErrorKind::Overloaded,
            "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
            "INTERNAL" | "UNKNOWN" => ErrorKind::Server,
            _ => return None,
        })
    }
}

/// An upstream's error, read from its body and cleaned for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamError {
    pub status: u16,
    pub kind: ErrorKind,
    /// Sanitised and prefixed with the upstream's name.
    pub message: String,
}

/// Any of the three upstream error shapes; each field is optional so that one struct reads
/// them all (and a body that is none of them still yields the status's kind).
#[derive(Deserialize, Default)]
#[serde(default)]
struct AnyErrorBody {
    error: Option<AnyError>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnyError {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
    /// OpenAI: a string; Gemini: the numeric status.
    code: Option<serde_json::Value>,
    /// Gemini's canonical status name.
    status: Option<String>,
}

impl UpstreamError {
    /// The error an upstream answered with `status` and `body`.
    pub fn parse(upstream: UpstreamFormat, status: u16, body: &[u8]) -> UpstreamError {
        // Gemini wraps stream errors in an array.
        let body = body.trim_ascii();
        let body = match (body.strip_prefix(b"["), body.strip_suffix(b"]")) {
            (Some(_), Some(_)) => &body[1..body.len() - 1],
            _ => body,
        };
        let parsed = serde_json::from_slice::<AnyErrorBody>(body)
            .ok()
            .and_then(|b| b.error)
            .unwrap_or_default();
        let named = match upstream {
            UpstreamFormat::Anthropic => parsed.kind.as_deref().and_then(ErrorKind::from_anthropic),
            UpstreamFormat::OpenAi => parsed
                .code
                .as_ref()
                .and_then(|c| c.as_str())
                .and_then(ErrorKind::from_openai)
                .or_else(|| parsed.kind.as_deref().and_then(ErrorKind::from_openai)),
            UpstreamFormat::Gemini => parsed.status.as_deref().and_then(ErrorKind::from_google),
        };
        let status = if (400..=599).contains(&status) {
            status
        } else {
            named.map(ErrorKind::status).unwrap_or(502)
        };
        let kind = named.unwrap_or_else(|| ErrorKind::from_status(status));
        let text = match parsed.message {
            Some(m) if !m.trim().is_empty() => sanitize(&m),
            _ => format!("HTTP {status}"),
        };
        UpstreamError {
            status,
            kind,
            message: format!("{} upstream: {text}", upstream.as_str()),
        }
    }

    /// An error that Keyway itself found in the middle of a stream.
    pub fn keyway(kind: ErrorKind, message: &str) -> UpstreamError {
        UpstreamError {
            status: kind.status(),
            kind,
            message: format!("keyway: {message}"),
        }
    }

    /// The error as a JSON body in the client's shape.
    pub fn body(&self, client: ClientSurface) -> Vec<u8> {
        render_body(client, self.status, self.kind, &self.message, None)
    }

    /// Anthropic's `error` object, for its stream's error event.
    pub(crate) fn anthropic_event(&self) -> AnthropicErrorBody<'_> {
        AnthropicErrorBody {
            kind: "error",
            error: AnthropicError {
                kind: self.kind.anthropic(),
                message: &self.message,
            },
        }
    }

    /// Google's `status` for this error.
    pub(crate) fn google_status(&self) -> &'static str {
        self.kind.google()
    }

    /// OpenAI's `(type, code)` for this error.
    pub(crate) fn openai_names(&self) -> (&'static str, Option<&'static str>) {
        self.kind.openai()
    }
}

#[derive(Serialize)]
pub(crate) struct AnthropicErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: AnthropicError<'a>,
}

#[derive(Serialize)]
struct AnthropicError<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
pub(crate) struct OpenAiErrorBody<'a> {
    pub error: OpenAiError<'a>,
}

#[derive(Serialize)]
pub(crate) struct OpenAiError<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub param: Option<&'a str>,
    pub code: Option<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct GoogleErrorBody<'a> {
    pub error: GoogleError<'a>,
}

#[derive(Serialize)]
pub(crate) struct GoogleError<'a> {
    pub code: u16,
    pub message: &'a str,
    pub status: &'static str,
}

/// An error body in the client's shape.
pub(crate) fn render_body(
    client: ClientSurface,
    status: u16,
    kind: ErrorKind,
    message: &str,
    param: Option<&str>,
) -> Vec<u8> {
    match client {
        ClientSurface::Messages | ClientSurface::CountTokens => crate::json::to_vec(
            &AnthropicErrorBody {
                kind: "error",
                error: AnthropicError {
                    kind: kind.anthropic(),
                    message,
                },
            },
            256,
        ),
        ClientSurface::Chat | ClientSurface::Responses => {
            let (kind, code) = kind.openai();
            crate::json::to_vec(
                &OpenAiErrorBody {
                    error: OpenAiError {
                        message,
                        kind,
                        param,
                        code,
                    },
                },
                256,
            )
        }
        ClientSurface::Gemini(_) => crate::json::to_vec(
            &GoogleErrorBody {
                error: GoogleError {
                    code: status,
                    message,
                    status: kind.google(),
                },
            },
            256,
        ),
    }
}

/// An upstream message made safe to show: key-like tokens replaced by `[redacted]`, control
/// characters dropped, and cut to [`MAX_MESSAGE`] characters.
///
/// A token (a run of letters, digits and `-_.+/=`) counts as key-like when it starts like a
/// known credential (`sk-`, `sk_`, `AIza`, `ya29.`, `eyJ` for a JWT, `ghp_`) and is at least 12
/// characters long, or when it is at least 24 characters long and mixes digits with upper-
/// and lower-case letters, as random keys do and model names, request ids in hex and words
/// do not.
pub fn sanitize(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE + 16));
    let mut token = String::new();
    let mut count = 0usize;
    for c in message.chars() {
        if count >= MAX_MESSAGE {
            break;
        }
        count += 1;
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=') {
            token.push(c);
            continue;
        }
        flush(&mut out, &mut token);
        if !c.is_control() {
            out.push(c);
        } else if c == '\n' || c == '\t' {
            out.push(' ');
        }
    }
    flush(&mut out, &mut token);
    if count >= MAX_MESSAGE && message.chars().nth(MAX_MESSAGE).is_some() {
        out.push('…');
    }
    out
}

fn flush(out: &mut String, token: &mut String) {
    if looks_like_a_key(token) {
        out.push_str("[redacted]");
    } else {
        out.push_str(token);
    }
    token.clear();
}

fn looks_like_a_key(token: &str) -> bool {
    const PREFIXES: [&str; 6] = ["sk-", "sk_", "AIza", "ya29.", "eyJ", "ghp_"];
    if token.len() >= 12 && PREFIXES.iter().any(|p| token.starts_with(p)) {
        return true;
    }
    token.len() >= 24
        && token.bytes().any(|b| b.is_ascii_digit())
        && token.bytes().any(|b| b.is_ascii_uppercase())
        && token.bytes().any(|b| b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GeminiMethod;

    #[test]
    fn keys_are_redacted_and_words_kept() {
        let m = sanitize(
            "Incorrect API key provided: sk-proj-abc123DEF456ghi. You can find your API key at https://platform.openai.com/account/api-keys.",
        );
        assert!(!m.contains("abc123"), "{m}");
        assert!(m.contains("[redacted]"));
        assert!(m.contains("Incorrect API key provided"));
        let m = sanitize("API key not valid: AIzaSyA1234567890abcdefghijklmnopqrstu");
        assert_eq!(m, "API key not valid: [redacted]");
        let m = sanitize("token Xk9fQ2mLp8RzT4vB7nW1cY6hJ3 is wrong");
        assert_eq!(m, "token [redacted] is wrong");
        // Model names, hex ids and numbers stay.
        let m =
            sanitize("model claude-sonnet-4-20250514 not found; request req_011CVa8f2e9d4c7b6a5");
        assert_eq!(
            m,
            "model claude-sonnet-4-20250514 not found; request req_011CVa8f2e9d4c7b6a5"
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "a ".repeat(2000);
        let m = sanitize(&long);
        assert!(m.chars().count() <= MAX_MESSAGE + 1);
        assert!(m.ends_with('…'));
    }

    #[test]
    fn each_upstream_shape_is_read() {
        let e = UpstreamError::parse(
            UpstreamFormat::Anthropic,
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
        );
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert_eq!(e.status, 529);
        assert_eq!(e.message, "anthropic upstream: Overloaded");

        let e = UpstreamError::parse(
            UpstreamFormat::OpenAi,
            429,
            br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::RateLimit);

        let e = UpstreamError::parse(
            UpstreamFormat::Gemini,
            400,
            br#"[{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}]"#,
        );
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert_eq!(
            e.message,
            "gemini upstream: API key not valid. Please pass a valid API key."
        );

        let e = UpstreamError::parse(UpstreamFormat::OpenAi, 502, b"<html>bad gateway</html>");
        assert_eq!(e.kind, ErrorKind::Server);
        assert_eq!(e.message, "openai upstream: HTTP 502");
    }

    #[test]
    fn bodies_take_each_client_shape() {
        let e = UpstreamError::parse(
            UpstreamFormat::Gemini,
            429,
            br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        let anthropic: serde_json::Value =
            serde_json::from_slice(&e.body(ClientSurface::Messages)).unwrap();
        assert_eq!(anthropic["type"], "error");
        assert_eq!(anthropic["error"]["type"], "rate_limit_error");
        let openai: serde_json::Value =
            serde_json::from_slice(&e.body(ClientSurface::Chat)).unwrap();
        assert_eq!(openai["error"]["type"], "rate_limit_error");
        assert_eq!(openai["error"]["code"], "rate_limit_exceeded");
        let google: serde_json::Value =
            serde_json::from_slice(&e.body(ClientSurface::Gemini(GeminiMethod::Generate))).unwrap();
        assert_eq!(google["error"]["code"], 429);
        assert_eq!(google["error"]["status"], "RESOURCE_EXHAUSTED");
    }
}
