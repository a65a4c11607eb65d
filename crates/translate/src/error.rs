//! `TranslateError`: a request Keyway cannot translate, answered with a 400 in the client's
//! own error shape.

use bytes::Bytes;

use crate::ClientSurface;
use crate::errors::{self, ErrorKind};

/// Why a request cannot be translated. Every variant is the client's to fix, so each is a
/// 400, and each names the field in the client's body that caused it.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The target format cannot express what the client asked for, and dropping it would
    /// change the meaning (a server tool, an image URL where only inline data is taken, ...).
    #[error("{field}: {reason}")]
    Unsupported { field: String, reason: String },
    /// The client's body is not a valid request of its own surface.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The body is not JSON of the expected shape.
    #[error("the request body is not a valid request: {0}")]
    Body(#[from] serde_json::Error),
}

impl TranslateError {
    pub fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TranslateError::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TranslateError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The HTTP status to answer with: always 400.
    pub fn status(&self) -> u16 {
        400
    }

    /// The client field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            TranslateError::Unsupported { field, .. } | TranslateError::Invalid { field, .. } => {
                Some(field)
            }
            TranslateError::Body(_) => None,
        }
    }

    /// The error as a JSON body in the client's error shape (OpenAI's `param` carries the
    /// field).
    pub fn body(&self, client: ClientSurface) -> Bytes {
        let message = format!("keyway: {self}");
        Bytes::from(errors::render_body(
            client,
            400,
            ErrorKind::InvalidRequest,
            &message,
            self.field(),
        ))
    }
}

pub type Result<T, E = TranslateError> = std::result::Result<T, E>;
