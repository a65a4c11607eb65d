//! Why a management action failed. The tray shows the text; the API maps each kind to a
//! status in the one [`IntoResponse`] below, with the body `{"error": {"message": ...}}`.
//! Nothing here logs: the caller that handles an error decides whether it is worth a line.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyway_core::ConfigError;
use keyway_core::account::AddError;
use keyway_core::client_key::KeyError;
use keyway_core::edit::SaveError;
use keyway_core::secrets::SecretError;
use serde_json::json;

use super::tools::ToolError;
use crate::oauth::import::ImportError;
use crate::oauth::login::LoginError;
use crate::record::history::HistoryError;
use crate::server::BindError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong: a bad value, a missing confirmation.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is fine, but the current state does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// Keyway cannot do it now (it is still starting, the usage history is off).
    #[error("{0}")]
    Unavailable(String),
    /// The edited config does not validate; nothing was saved.
    #[error("{}", .0.message)]
    InvalidConfig(ConfigError),
    /// The file on disk does not parse; editing it would hide the problem.
    #[error("the config file has an error ({0}); fix it, then try again")]
    BrokenConfig(ConfigError),
    #[error("cannot write {path}: {source}; the previous file is unchanged")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Keyring(#[from] SecretError),
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A JSON body that does not fit the endpoint (bad JSON, an unknown field, a wrong type).
    #[error("{}", .0.body_text())]
    Json(#[from] JsonRejection),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<SaveError> for Error {
    fn from(e: SaveError) -> Self {
        match e {
            SaveError::Invalid(e) => Error::InvalidConfig(e),
            SaveError::Write { path, source } => Error::Write { path, source },
        }
    }
}

impl From<AddError> for Error {
    fn from(e: AddError) -> Self {
        match e {
            AddError::Invalid(e) => Error::InvalidConfig(e),
            AddError::Keyring(e) => Error::Keyring(e),
            AddError::Save(e) => e.into(),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Unknown(_) => Error::NotFound(e.to_string()),
            KeyError::DefaultKey => Error::Conflict(e.to_string()),
            KeyError::Invalid(e) => Error::InvalidConfig(e),
            KeyError::Keyring(e) => Error::Keyring(e),
            KeyError::Save(e) => e.into(),
        }
    }
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) | Error::InvalidConfig(_) | Error::Login(_) | Error::Import(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::BrokenConfig(_) | Error::Bind(_) => StatusCode::CONFLICT,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // A well-formed body with a wrong value (a weight too large for u32) is bad input
            // like any other: 400, naming the field.
            Error::Json(rejection) => match rejection.status() {
                StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                other => other,
            },
            // A file the tool's user broke is theirs to fix; failing to write is ours.
            Error::Tool(e) => match e {
                ToolError::ByHand(_)
                | ToolError::NotWrittenByKeyway(_)
                | ToolError::Unusable { .. }
                | ToolError::Unreadable { .. } => StatusCode::BAD_REQUEST,
                ToolError::AlreadyConnected { .. } | ToolError::NotConnected(_) => {
                    StatusCode::CONFLICT
                }
                ToolError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Error::Write { .. } | Error::Keyring(_) | Error::History(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        refusal(self.status(), &self.to_string())
    }
}

/// The management API's error shape, for refusals that are not a management action's error
/// (the guard's).
pub fn refusal(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": { "message": message } }))).into_response()
}

/// A JSON body whose rejection is an [`Error`] in the API's own error shape, naming what is
/// wrong.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}
