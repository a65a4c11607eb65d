//! Subscription logins started from the management API: each runs on its own task (waiting
//! for the browser's redirect, a pasted code, or a device-code approval) while the dashboard
//! polls its state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyway_core::snapshot::{OAuthEndpoints, ProviderRoute};
use keyway_core::{Credential, OAuthTokens, ProviderKind};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::engine::Engine;
use crate::oauth::login::{self, Callback, LoginError};
use crate::oauth::token;

/// Longest a login may wait for the user.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A login as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LoginView {
    pub id: String,
    pub provider: String,
    pub label: String,
    /// `pending`, `done` or `failed`.
    pub state: &'static str,
    /// The page the user opens (authorization-code logins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The code the user types at `verification_url` (device-code logins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Session {
    view: Mutex<LoginView>,
    paste: mpsc::Sender<String>,
    /// The task waiting for the user; aborting it frees the callback port at once.
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

/// Why a login could not be cancelled.
#[derive(Debug)]
pub enum CancelError {
    Unknown,
    /// It already ended: `done` or `failed`.
    Finished(&'static str),
}

/// The logins in progress (and finished ones, until the engine stops).
#[derive(Default)]
pub struct Logins {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Logins {
    fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn view(&self, id: &str) -> Option<LoginView> {
        self.get(id)
            .map(|s| s.view.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Hand a pasted code to a waiting login. False when there is no such pending login.
    pub fn paste(&self, id: &str, code: String) -> bool {
        self.get(id).is_some_and(|s| s.paste.try_send(code).is_ok())
    }

    /// Stop a pending login: its task ends (a browser login's callback port is free again at
    /// once, so another login can start) and its view says it was cancelled.
    pub fn cancel(&self, id: &str) -> Result<LoginView, CancelError> {
        let session = self.get(id).ok_or(CancelError::Unknown)?;
        let mut view = session.view.lock().unwrap_or_else(|p| p.into_inner());
        if view.state != "pending" {
            return Err(CancelError::Finished(view.state));
        }
        if let Some(task) = session
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
        view.state = "failed";
        view.error = Some("the login was cancelled".into());
        tracing::info!(login = id, "subscription login cancelled");
        Ok(view.clone())
    }
}

impl Session {
    fn set_task(&self, task: tokio::task::AbortHandle) {
        *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }
}

fn update(session: &Session, f: impl FnOnce(&mut LoginView)) {
    f(&mut session.view.lock().unwrap_or_else(|p| p.into_inner()));
}

/// The provider's terms risk when the user has not confirmed it yet and does not now.
pub fn unconfirmed_terms(route: &ProviderRoute, accept: bool) -> Option<&'static str> {
    let o = route.oauth.as_ref()?;
    (!o.terms_accepted && !accept).then_some(o.terms_risk)
}

impl Engine {
    /// Start a login of `provider` on its own task; the view says what the user must do.
    pub async fn start_login(
        self: &Arc<Self>,
        provider: &str,
        label: String,
        device_code: bool,
        manual: bool,
    ) -> Result<LoginView, LoginError> {
        let snapshot = self.snapshot();
        let route = snapshot
            .provider(provider)
            .ok_or_else(|| LoginError(format!("unknown provider `{provider}`")))?;
        let endpoints = route.oauth.clone().ok_or_else(|| {
            LoginError(format!(
                "{provider} has no subscription login; only anthropic and openai do"
            ))
        })?;
        let kind = route.kind;
        if device_code && kind != ProviderKind::OpenAi {
            return Err(LoginError("only openai offers a device-code login".into()));
        }
        let id = crate::oauth::pkce::random_token(12);
        let (paste, pasted) = mpsc::channel(1);
        let mut view = LoginView {
            id: id.clone(),
            provider: provider.to_owned(),
            label: label.clone(),
            state: "pending",
            url: None,
            user_code: None,
            verification_url: None,
            account_id: None,
            error: None,
        };
        let engine = self.clone();
        let provider = provider.to_owned();
        if device_code {
            let device = login::device_start(self.http(), &endpoints).await?;
            view.user_code = Some(device.user_code.clone());
            view.verification_url = Some(device.verification_url.clone());
            let session = self.logins().insert(id, view.clone(), paste);
            let waiting = session.clone();
            let task = tokio::spawn(async move {
                let result = async {
                    let (code, verifier, redirect) =
                        login::device_wait(engine.http(), &endpoints, &device).await?;
                    let (tokens, _) = token::exchange_code(
                        engine.http(),
                        kind,
                        &endpoints,
                        &code,
                        &verifier,
                        &redirect,
                        "",
                    )
                    .await
                    .map_err(|e| LoginError(e.to_string()))?;
                    Ok::<_, LoginError>(tokens)
                };
                finish(&engine, &session, &provider, label, result.await).await;
            });
            waiting.set_task(task.abort_handle());
        } else {
            let auth = login::authorize(kind, &endpoints, manual)?;
            view.url = Some(auth.url.clone());
            let callback = if manual {
                None
            } else {
                Some(
                    Callback::listen(
                        endpoints.redirect_port,
                        endpoints.redirect_path,
                        auth.state.clone(),
                    )
                    .await?,
                )
            };
            let session = self.logins().insert(id, view.clone(), paste);
            let waiting = session.clone();
            let task = tokio::spawn(async move {
                let result = code_flow(&engine, kind, &endpoints, auth, callback, pasted).await;
                finish(&engine, &session, &provider, label, result).await;
            });
            waiting.set_task(task.abort_handle());
        }
        Ok(view)
    }
}

impl Logins {
    fn insert(&self, id: String, view: LoginView, paste: mpsc::Sender<String>) -> Arc<Session> {
        let session = Arc::new(Session {
            view: Mutex::new(view),
            paste,
            task: Mutex::new(None),
        });
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, session.clone());
        session
    }
}

/// Wait for the browser's redirect or a pasted code, whichever comes first, and exchange it.
async fn code_flow(
    engine: &Engine,
    kind: ProviderKind,
    endpoints: &OAuthEndpoints,
    auth: login::Authorization,
    mut callback: Option<Callback>,
    mut pasted: mpsc::Receiver<String>,
) -> Result<OAuthTokens, LoginError> {
    let wait = async {
        tokio::select! {
            code = async {
                match callback.as_mut() {
                    Some(cb) => cb.code().await,
                    None => std::future::pending().await,
                }
            } => code,
            text = pasted.recv() => match text {
                Some(text) => login::parse_pasted(&text, &auth.state),
                None => Err(LoginError("the login was abandoned".into())),
            },
        }
    };
    let code = tokio::time::timeout(LOGIN_TIMEOUT, wait)
        .await
        .map_err(|_| {
            LoginError("nobody completed the login in 15 minutes; start again".into())
        })??;
    drop(callback);
    let (tokens, _) = token::exchange_code(
        engine.http(),
        kind,
        endpoints,
        &code,
        &auth.pkce.verifier,
        &auth.redirect_uri,
        &auth.state,
    )
    .await
    .map_err(|e| LoginError(e.to_string()))?;
    Ok(tokens)
}

async fn finish(
    engine: &Engine,
    session: &Session,
    provider: &str,
    label: String,
    result: Result<OAuthTokens, LoginError>,
) {
    let outcome = match result {
        Ok(tokens) => engine
            .add_account(provider, label, 1, Credential::OAuth(tokens), true)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.0),
    };
    update(session, |v| match outcome {
        Ok(id) => {
            tracing::info!(account = %id, "subscription login added");
            v.state = "done";
            v.account_id = Some(id);
        }
        Err(e) => {
            tracing::warn!(error = %e, "subscription login failed");
            v.state = "failed";
            v.error = Some(e);
        }
    });
}
