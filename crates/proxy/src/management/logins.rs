//! Subscription logins and imports started from the API. The flow itself is
//! [`crate::oauth::flow`], the same as `keyway account login`'s; this starts it, keeps it in
//! [`LoginSessions`](super::login_sessions::LoginSessions) while it waits for the user, and
//! adds the account when it completes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_core::account::NewAccount;
use keyway_core::{Credential, ProviderRoute, Snapshot};
use serde::{Deserialize, Serialize};

use super::accounts::{AccountView, account_views};
use super::error::{ApiJson, Error, Result};
use super::login_sessions::{self, CancelError, LoginView};
use super::state::Management;
use crate::oauth::flow::{self, Method};
use crate::oauth::{import, pkce};

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLogin {
    provider: String,
    label: String,
    /// ChatGPT's device-code flow instead of a browser redirect.
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<bool>"))]
    device_code: bool,
    /// The browser is on another machine: show a code to paste instead of redirecting.
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<bool>"))]
    manual: bool,
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<bool>"))]
    accept_terms_risk: bool,
}

/// The terms statement as a refusal the client can show and confirm.
fn terms_refusal(terms: &str) -> Error {
    Error::BadRequest(format!(
        "{terms} To go ahead, send the request again with \"accept_terms_risk\": true."
    ))
}

fn login_route<'a>(snapshot: &'a Snapshot, provider: &str) -> Result<&'a ProviderRoute> {
    snapshot
        .provider(provider)
        .filter(|p| p.oauth.is_some())
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "`{provider}` has no subscription login; use anthropic or openai"
            ))
        })
}

/// Start a login on its own task; the view says what the user must do.
pub async fn start_login(
    State(management): State<Arc<Management>>,
    ApiJson(body): ApiJson<NewLogin>,
) -> Result<(StatusCode, Json<LoginView>)> {
    let label = body.label.trim().to_owned();
    if label.is_empty() {
        return Err(Error::BadRequest(
            "the label is empty; give the account a name you will recognise".into(),
        ));
    }
    let snapshot = management.engine().snapshot();
    let route = login_route(&snapshot, &body.provider)?;
    if let Some(terms) = route.unconfirmed_terms(body.accept_terms_risk) {
        return Err(terms_refusal(terms));
    }
    let endpoints = route
        .oauth
        .clone()
        .ok_or_else(|| Error::BadRequest(format!("{} has no subscription login", body.provider)))?;
    let method = if body.device_code {
        Method::DeviceCode
    } else {
        Method::Browser {
            manual: body.manual,
        }
    };
    let http = management.engine().http().clone();
    let (pending, unavailable) = flow::start(&http, route.kind, endpoints, method).await?;
    // The dashboard offers the paste box only with `manual`: without the callback a browser
    // login could not finish.
    if let Some(e) = unavailable {
        return Err(e.into());
    }
    let view = LoginView::pending(
        pkce::random_token(12),
        &body.provider,
        &label,
        pending.prompt(),
    );
    let Some((session, pasted)) = management.logins().insert(view.clone()) else {
        return Err(Error::Conflict(format!(
            "{} logins are waiting already; finish or cancel one (DELETE /api/logins/{{id}}) first",
            login_sessions::MAX_PENDING
        )));
    };
    let waiting = session.clone();
    let provider = body.provider;
    let m = management.clone();
    let task = tokio::spawn(async move {
        let outcome = match pending.finish(&http, pasted).await {
            Ok(tokens) => m
                .add_account(NewAccount {
                    provider,
                    label,
                    weight: 1,
                    credential: Credential::OAuth(tokens),
                    confirm_terms: true,
                })
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match &outcome {
            Ok(id) => tracing::info!(account = %id, "subscription login added"),
            Err(e) => tracing::warn!(error = %e, "subscription login failed"),
        }
        session.finish(outcome);
    });
    waiting.set_task(task.abort_handle());
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn login_status(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
) -> Result<Json<LoginView>> {
    management
        .logins()
        .view(&id)
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("no login `{id}`")))
}

pub async fn cancel_login(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
) -> Result<Json<LoginView>> {
    let view = management.logins().cancel(&id).map_err(|e| match e {
        CancelError::Unknown => Error::NotFound(format!("no login `{id}`")),
        CancelError::Finished(state) => {
            Error::Conflict(format!("login `{id}` already ended ({})", state.as_str()))
        }
    })?;
    tracing::info!(login = %id, "subscription login cancelled");
    Ok(Json(view))
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastedCode {
    /// `code#state`, a bare code, or the redirect URL from the browser.
    code: String,
}

pub async fn paste_login_code(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PastedCode>,
) -> Result<(StatusCode, Json<LoginView>)> {
    if !management.logins().paste(&id, body.code) {
        return Err(Error::Conflict(format!(
            "login `{id}` is not waiting for a code"
        )));
    }
    login_status(State(management), Path(id))
        .await
        .map(|v| (StatusCode::ACCEPTED, v))
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewImport {
    #[cfg_attr(test, ts(as = "import::Source"))]
    source: String,
    /// The credentials file [default: where the CLI keeps it].
    #[cfg_attr(test, ts(optional))]
    path: Option<std::path::PathBuf>,
    #[cfg_attr(test, ts(optional))]
    label: Option<String>,
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<bool>"))]
    accept_terms_risk: bool,
}

/// The account an import added, and what the user must know about sharing the login.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct ImportResult {
    account: Option<AccountView>,
    warning: &'static str,
}

pub async fn import_login(
    State(management): State<Arc<Management>>,
    ApiJson(body): ApiJson<NewImport>,
) -> Result<(StatusCode, Json<ImportResult>)> {
    let source = import::Source::parse(&body.source)?;
    let snapshot = management.engine().snapshot();
    let route = login_route(&snapshot, source.provider())?;
    if let Some(terms) = route.unconfirmed_terms(body.accept_terms_risk) {
        return Err(terms_refusal(terms));
    }
    let home = keyway_core::paths::home_dir();
    let path = body.path.clone();
    let tokens = tokio::task::spawn_blocking(move || import::read(source, path.as_deref(), &home))
        .await
        .map_err(|_| Error::Internal("the import task failed".into()))??;
    let id = management
        .add_account(NewAccount {
            provider: source.provider().to_owned(),
            label: body.label.unwrap_or_else(|| source.label().to_owned()),
            weight: 1,
            credential: Credential::OAuth(tokens),
            confirm_terms: true,
        })
        .await?;
    let account = account_views(&management.engine().snapshot())
        .into_iter()
        .find(|a| a.id == id);
    Ok((
        StatusCode::CREATED,
        Json(ImportResult {
            account,
            warning: source.sharing_warning(),
        }),
    ))
}
