//! Errors that Keyway itself produces, in the error JSON shape of the surface the client
//! called, so that the client's SDK shows a useful message instead of a parse failure.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyway_core::Surface;
use serde_json::json;

/// The surface a path belongs to, for errors produced before routing (guard, 404).
pub fn of_path(path: &str) -> Surface {
    if path.starts_with("/v1/messages") {
        Surface::AnthropicMessages
    } else if path.starts_with("/v1beta") {
        Surface::Gemini
    } else if path.starts_with("/v1/responses") {
        Surface::OpenAiResponses
    } else {
        Surface::OpenAiChat
    }
}

/// An error answered by Keyway, not by an upstream.
#[derive(Debug)]
pub struct SurfaceError {
    pub surface: Surface,
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl SurfaceError {
    pub fn new(surface: Surface, status: StatusCode, message: impl Into<String>) -> Self {
        SurfaceError {
            surface,
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let msg = format!("keyway: {}", self.message);
        match self.surface {
            Surface::AnthropicMessages => json!({
                "type": "error",
                "error": { "type": anthropic_type(self.status), "message": msg },
            }),
            Surface::OpenAiChat | Surface::OpenAiResponses => json!({
                "error": {
                    "message": msg,
                    "type": openai_type(self.status),
                    "param": null,
                    "code": openai_code(self.status),
                },
            }),
            Surface::Gemini => json!({
                "error": {
                    "code": self.status.as_u16(),
                    "message": msg,
                    "status": google_status(self.status),
                },
            }),
        }
    }
}

impl IntoResponse for SurfaceError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

fn openai_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 401 | 403 | 404 | 413 => "invalid_request_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

fn openai_code(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        401 => Some("invalid_api_key"),
        429 => Some("rate_limit_exceeded"),
        _ => None,
    }
}

fn google_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNAVAILABLE",
    }
}

/// Mark an answer given before the request body was read: the connection then closes, so a
/// client that pools connections does not send its next request into the unread body.
pub fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The SSE event that ends a stream whose upstream failed after bytes reached the client:
/// a clean error the client can show, never a silent truncation.
pub fn stream_error_event(surface: Surface, message: &str) -> String {
    let err = SurfaceError::new(surface, StatusCode::BAD_GATEWAY, message);
    match surface {
        Surface::AnthropicMessages => format!("event: error\ndata: {}\n\n", err.body()),
        Surface::OpenAiResponses => format!(
            "event: error\ndata: {}\n\n",
            json!({ "type": "error", "code": "upstream_error", "message": format!("keyway: {message}"), "param": null })
        ),
        Surface::OpenAiChat | Surface::Gemini => format!("data: {}\n\n", err.body()),
    }
}
