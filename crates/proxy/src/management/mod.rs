//! The management API under `/api`: the route table, its error shape and body extractor, and
//! `status`; each concern in its own module. It is the one backend interface of the dashboard
//! and of `keyway account list` against a running instance. Responses
//! never contain account secrets. Mutations go through [`Engine::edit`]: validated as a whole,
//! saved atomically, swapped in — or nothing changes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use keyway_core::ConfigError;
use keyway_core::state::now_ms;
use serde_json::json;

use crate::engine::{EditError, Engine};

mod accounts;
mod connect;
mod logins;
mod policies;
mod settings;
mod traffic;

pub use accounts::{
    AccountChange, AccountView, account_views, change_account, check_new_account, check_secret,
};
pub use policies::{MemberView, PolicyView, policy_views, set_strategy};

/// Every management route as (method, path under `/api`, handler). The router is built from
/// this list and a test checks `docs/API.md` against it, so the reference cannot drift.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<Arc<Engine>>)> {
    use axum::routing::{delete, get, patch, post, put};
    vec![
        (Method::GET, "/status", get(status)),
        (Method::GET, "/requests", get(traffic::recent_requests)),
        (Method::GET, "/events", get(traffic::events)),
        (Method::GET, "/accounts", get(accounts::list_accounts)),
        (Method::POST, "/accounts", post(accounts::add_account)),
        (
            Method::PATCH,
            "/accounts/{id}",
            patch(accounts::update_account),
        ),
        (
            Method::DELETE,
            "/accounts/{id}",
            delete(accounts::remove_account),
        ),
        (Method::GET, "/providers", get(accounts::list_providers)),
        (Method::POST, "/logins", post(logins::start_login)),
        (Method::GET, "/logins/{id}", get(logins::login_status)),
        (Method::DELETE, "/logins/{id}", delete(logins::cancel_login)),
        (
            Method::POST,
            "/logins/{id}/code",
            post(logins::paste_login_code),
        ),
        (Method::POST, "/imports", post(logins::import_login)),
        (Method::GET, "/policies", get(policies::list_policies)),
        (
            Method::PUT,
            "/policies/{provider}",
            put(policies::put_provider_policy),
        ),
        (
            Method::PUT,
            "/policies/{provider}/{family}",
            put(policies::put_family_policy),
        ),
        (
            Method::DELETE,
            "/policies/{provider}",
            delete(policies::delete_provider_policy),
        ),
        (
            Method::DELETE,
            "/policies/{provider}/{family}",
            delete(policies::delete_family_policy),
        ),
        (
            Method::POST,
            "/policies/preview",
            post(policies::preview_policy),
        ),
        (Method::GET, "/usage", get(traffic::usage)),
        (Method::GET, "/usage.csv", get(traffic::usage_csv)),
        (Method::GET, "/connect", get(connect::list)),
        (
            Method::POST,
            "/connect/{tool}/preview",
            post(connect::preview),
        ),
        (Method::POST, "/connect/{tool}", post(connect::connect)),
        (
            Method::DELETE,
            "/connect/{tool}",
            delete(connect::disconnect),
        ),
        (Method::POST, "/pause", post(settings::pause)),
        (Method::POST, "/resume", post(settings::resume)),
        (Method::GET, "/client-key", get(settings::client_key)),
        (
            Method::POST,
            "/client-key/rotate",
            post(settings::rotate_client_key),
        ),
        (Method::GET, "/settings", get(settings::get_settings)),
        (Method::PATCH, "/settings", patch(settings::patch_settings)),
        (Method::POST, "/logs/open", post(settings::open_logs)),
    ]
}

/// An error of the management API: `{"error": {"message": ...}}` with a fitting status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": { "message": self.message } })),
        )
            .into_response()
    }
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        let status = match e {
            EditError::Invalid(_) => StatusCode::BAD_REQUEST,
            EditError::NotFound(_) => StatusCode::NOT_FOUND,
            EditError::Broken(_) => StatusCode::CONFLICT,
            EditError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejection (bad JSON, unknown field, wrong type) is an [`ApiError`] in the
/// API's own error shape, naming what is wrong.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            // A well-formed body with a wrong value (a weight too large for u32) is bad input
            // like any other: 400, naming the field.
            Err(rejection) => Err(ApiError::new(
                match rejection.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    other => other,
                },
                rejection.body_text(),
            )),
        }
    }
}

pub async fn status(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    let rejected: Option<ConfigError> = engine.rejected_edit();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listen": engine.listen().map(|a| a.to_string()),
        "paused": engine.paused(),
        "config": {
            "path": engine.config_path().display().to_string(),
            "ok": rejected.is_none(),
            "error": rejected,
        },
        "traffic": engine.traffic().last_minute(now_ms()),
        "accounts": accounts::accounts_with_today(&engine).await,
    }))
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such management endpoint; see the README's management API section",
    )
}

#[cfg(test)]
mod reference {
    use std::collections::BTreeSet;

    /// `docs/API.md` has a `### METHOD /api/path` heading for every route, and no other.
    #[test]
    fn the_api_reference_lists_exactly_the_routes() {
        let doc = include_str!("../../../../docs/API.md");
        let documented: Vec<&str> = doc.lines().filter_map(|l| l.strip_prefix("### ")).collect();
        let unique: BTreeSet<&str> = documented.iter().copied().collect();
        assert_eq!(
            unique.len(),
            documented.len(),
            "a route is documented twice"
        );
        let served: BTreeSet<String> = super::routes()
            .iter()
            .map(|(method, path, _)| format!("{method} /api{path}"))
            .collect();
        let documented: BTreeSet<String> = unique.into_iter().map(str::to_owned).collect();
        assert_eq!(
            documented.difference(&served).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "documented but not served"
        );
        assert_eq!(
            served.difference(&documented).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "served but not documented in docs/API.md"
        );
    }
}
