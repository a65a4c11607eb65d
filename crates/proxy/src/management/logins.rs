//! Subscription logins and imports started from the API. The flows themselves live in
//! [`crate::logins`] and [`crate::oauth`]; this is their HTTP face.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_core::{Credential, Snapshot};
use serde::Deserialize;
use serde_json::json;

use super::accounts::account_views;
use super::{ApiError, ApiJson, ApiResult};
use crate::engine::Engine;
use crate::logins::{CancelError, LoginView, unconfirmed_terms};
use crate::oauth::import;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLogin {
    provider: String,
    label: String,
    /// ChatGPT's device-code flow instead of a browser redirect.
    #[serde(default)]
    device_code: bool,
    /// The browser is on another machine: show a code to paste instead of redirecting.
    #[serde(default)]
    manual: bool,
    #[serde(default)]
    accept_terms_risk: bool,
}

/// The terms statement as a refusal the client can show and confirm.
fn terms_refusal(terms: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("{terms} To go ahead, send the request again with \"accept_terms_risk\": true."),
    )
}

fn login_route<'a>(
    snapshot: &'a Snapshot,
    provider: &str,
) -> ApiResult<&'a keyway_core::ProviderRoute> {
    snapshot
        .provider(provider)
        .filter(|p| p.oauth.is_some())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("`{provider}` has no subscription login; use anthropic or openai"),
            )
        })
}

pub async fn start_login(
    State(engine): State<Arc<Engine>>,
    ApiJson(body): ApiJson<NewLogin>,
) -> ApiResult<(StatusCode, Json<LoginView>)> {
    if body.label.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the label is empty; give the account a name you will recognise",
        ));
    }
    let snapshot = engine.snapshot();
    let route = login_route(&snapshot, &body.provider)?;
    if let Some(terms) = unconfirmed_terms(route, body.accept_terms_risk) {
        return Err(terms_refusal(terms));
    }
    let view = engine
        .start_login(
            &body.provider,
            body.label.trim().to_owned(),
            body.device_code,
            body.manual,
        )
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0))?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn login_status(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult<Json<LoginView>> {
    engine
        .logins()
        .view(&id)
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no login `{id}`")))
}

pub async fn cancel_login(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult<Json<LoginView>> {
    engine.logins().cancel(&id).map(Json).map_err(|e| match e {
        CancelError::Unknown => ApiError::new(StatusCode::NOT_FOUND, format!("no login `{id}`")),
        CancelError::Finished(state) => ApiError::new(
            StatusCode::CONFLICT,
            format!("login `{id}` already ended ({state})"),
        ),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastedCode {
    /// `code#state`, a bare code, or the redirect URL from the browser.
    code: String,
}

pub async fn paste_login_code(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PastedCode>,
) -> ApiResult<(StatusCode, Json<LoginView>)> {
    if !engine.logins().paste(&id, body.code) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("login `{id}` is not waiting for a code"),
        ));
    }
    login_status(State(engine), Path(id))
        .await
        .map(|v| (StatusCode::ACCEPTED, v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewImport {
    /// `claude-code` or `codex-cli`.
    source: String,
    /// The credentials file [default: where the CLI keeps it].
    path: Option<std::path::PathBuf>,
    label: Option<String>,
    #[serde(default)]
    accept_terms_risk: bool,
}

pub async fn import_login(
    State(engine): State<Arc<Engine>>,
    ApiJson(body): ApiJson<NewImport>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let source = import::Source::parse(&body.source)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
    let snapshot = engine.snapshot();
    let route = login_route(&snapshot, source.provider())?;
    if let Some(terms) = unconfirmed_terms(route, body.accept_terms_risk) {
        return Err(terms_refusal(terms));
    }
    let home = keyway_core::paths::home_dir();
    let path = body.path.clone();
    let tokens = tokio::task::spawn_blocking(move || import::read(source, path.as_deref(), &home))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the import task failed"))?
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
    let label = body.label.unwrap_or_else(|| source.label().to_owned());
    let id = engine
        .add_account(source.provider(), label, 1, Credential::OAuth(tokens), true)
        .await?;
    let account = account_views(&engine.snapshot())
        .into_iter()
        .find(|a| a.id == id);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "account": account, "warning": source.sharing_warning() })),
    ))
}
