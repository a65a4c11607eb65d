//! The authorization-code login: build the authorize URL, receive the code on a loopback
//! callback (or as pasted text when the browser cannot reach this machine), and ChatGPT's
//! device-code alternative. Each ends in [`super::token::exchange_code`].

use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use keyway_core::ProviderKind;
use keyway_core::snapshot::OAuthEndpoints;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::pkce::{Pkce, random_token};
use super::token::TokenError;

/// Why a login did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    Failed(String),
    /// The code could not be exchanged for tokens.
    #[error(transparent)]
    Token(#[from] TokenError),
}

fn err(message: impl Into<String>) -> LoginError {
    LoginError::Failed(message.into())
}

/// One login in progress: what the user must open, and what the exchange will need.
pub struct Authorization {
    pub url: String,
    pub redirect_uri: String,
    pub state: String,
    pub pkce: Pkce,
}

/// Start a login. `manual` selects the provider's code page instead of the loopback
/// redirect, for a browser on another machine (Claude shows `code#state` to paste).
pub fn authorize(
    kind: ProviderKind,
    endpoints: &OAuthEndpoints,
    manual: bool,
) -> Result<Authorization, LoginError> {
    let pkce = Pkce::generate();
    let state = random_token(32);
    let redirect_uri = if manual && kind == ProviderKind::Anthropic {
        manual_redirect_uri(endpoints)?
    } else {
        endpoints.redirect_uri()
    };
    let mut params: Vec<(&str, &str)> = Vec::new();
    if kind == ProviderKind::Anthropic {
        params.push(("code", "true"));
    }
    params.extend([
        ("client_id", endpoints.client_id),
        ("response_type", "code"),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", endpoints.scopes),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", state.as_str()),
    ]);
    if kind == ProviderKind::OpenAi {
        params.extend([
            ("id_token_add_organizations", "true"),
            ("codex_cli_simplified_flow", "true"),
        ]);
    }
    let url = reqwest::Url::parse_with_params(&endpoints.authorize_url, &params).map_err(|e| {
        err(format!(
            "bad authorize URL {}: {e}",
            endpoints.authorize_url
        ))
    })?;
    Ok(Authorization {
        url: url.to_string(),
        redirect_uri,
        state,
        pkce,
    })
}

/// Claude's page that shows the code for pasting: on the token endpoint's origin.
fn manual_redirect_uri(endpoints: &OAuthEndpoints) -> Result<String, LoginError> {
    let url = reqwest::Url::parse(&endpoints.token_url).map_err(|_| err("bad token URL"))?;
    Ok(format!(
        "{}/oauth/code/callback",
        url.origin().ascii_serialization()
    ))
}

/// The code from what the user pasted: `code#state` (Claude's page), a bare code, or the
/// whole redirect URL from the browser's address bar. A state that does not match is refused.
pub fn parse_pasted(input: &str, expected_state: &str) -> Result<String, LoginError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(err("nothing was pasted"));
    }
    let (code, state) = if let Ok(url) = reqwest::Url::parse(input) {
        let get = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        (
            get("code").ok_or_else(|| err("the pasted URL has no `code`"))?,
            get("state"),
        )
    } else {
        match input.split_once('#') {
            Some((code, state)) => (code.to_owned(), Some(state.to_owned())),
            None => (input.to_owned(), None),
        }
    };
    if state.as_deref().is_some_and(|s| s != expected_state) {
        return Err(err(
            "the pasted code belongs to another login attempt; start again",
        ));
    }
    Ok(code)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A loopback server on the provider's registered port that waits for the browser's redirect.
pub struct Callback {
    codes: mpsc::Receiver<Result<String, LoginError>>,
    /// Dropping it stops the callback servers.
    _stop: watch::Sender<()>,
}

impl Callback {
    /// Listen on `127.0.0.1:<port>` for `path`. Fails when the port is taken (another login,
    /// or the provider's own CLI logging in right now).
    pub async fn listen(
        port: u16,
        path: &'static str,
        expected_state: String,
    ) -> Result<Callback, LoginError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| err(format!("cannot listen for the login callback on port {port}: {e}; close the other login (or the provider's CLI) and try again, or paste the code")))?;
        // The redirect says `localhost`, which a browser may try as ::1 first.
        let v6 = tokio::net::TcpListener::bind(("::1", port)).await.ok();
        let (tx, codes) = mpsc::channel(1);
        let (stop, stopped) = watch::channel(());
        let app = Router::new()
            .route(path, get(callback))
            .with_state((tx, expected_state));
        for listener in std::iter::once(listener).chain(v6) {
            let (app, mut stopped) = (app.clone(), stopped.clone());
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.changed().await;
                    })
                    .await;
            });
        }
        drop(stopped);
        Ok(Callback { codes, _stop: stop })
    }

    /// The code, once the browser arrives (the server stops when this is dropped).
    pub async fn code(&mut self) -> Result<String, LoginError> {
        self.codes
            .recv()
            .await
            .unwrap_or_else(|| Err(err("the login callback stopped")))
    }
}

/// The browser's redirect. Only a callback carrying this login's `state` ends it, with its
/// code or the provider's refusal; any other (a page probing the port, a stale tab, another
/// login) is answered with an error page and the login keeps waiting.
async fn callback(
    State((tx, expected)): State<(mpsc::Sender<Result<String, LoginError>>, String)>,
    Query(q): Query<CallbackQuery>,
) -> (StatusCode, Html<&'static str>) {
    let ours = q.state.as_deref().is_some_and(|s| same_state(s, &expected));
    if !ours {
        tracing::warn!("a login callback without this login's state was ignored");
        return (
            StatusCode::BAD_REQUEST,
            Html(
                "<!doctype html><title>Keyway</title><p>Keyway: this address does not belong to the login in progress; it keeps waiting. Use the link Keyway gave you.</p>",
            ),
        );
    }
    let result = match (q.code, q.error) {
        (_, Some(e)) => Err(err(format!(
            "the provider refused the login: {e}{}",
            q.error_description
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ))),
        (Some(code), None) => Ok(code),
        (None, None) => Err(err("the login callback carried no code")),
    };
    let page = if result.is_ok() {
        "<!doctype html><title>Keyway</title><p>Keyway: login complete. You can close this tab.</p>"
    } else {
        "<!doctype html><title>Keyway</title><p>Keyway: the login failed. See the terminal or the dashboard.</p>"
    };
    let _ = tx.try_send(result);
    (StatusCode::OK, Html(page))
}

/// Equal-time comparison, so a wrong state's timing says nothing about the right one.
fn same_state(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// ChatGPT's device-code login: the user types `user_code` at `verification_url` on any
/// device while Keyway polls.
pub struct DeviceCode {
    pub user_code: String,
    pub verification_url: String,
    device_auth_id: String,
    interval: Duration,
}

/// Longest a device code is waited for.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

fn device_base(endpoints: &OAuthEndpoints) -> Result<&str, LoginError> {
    endpoints
        .device_url
        .as_deref()
        .ok_or_else(|| err("this provider has no device-code login"))
}

pub async fn device_start(
    http: &reqwest::Client,
    endpoints: &OAuthEndpoints,
) -> Result<DeviceCode, LoginError> {
    let base = device_base(endpoints)?;
    let r = http
        .post(format!("{base}/api/accounts/deviceauth/usercode"))
        .json(&json!({ "client_id": endpoints.client_id }))
        .send()
        .await
        .map_err(|_| err("cannot reach the device-code endpoint"))?;
    if !r.status().is_success() {
        return Err(err(format!(
            "the device-code endpoint answered {}",
            r.status()
        )));
    }
    let v: Value = r
        .json()
        .await
        .map_err(|_| err("the device-code endpoint sent no JSON"))?;
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| err(format!("the device-code answer has no `{k}`")))
    };
    // Codex's server sends the interval as a string.
    let interval = v["interval"]
        .as_u64()
        .or_else(|| v["interval"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(5);
    Ok(DeviceCode {
        user_code: field("user_code")?,
        device_auth_id: field("device_auth_id")?,
        verification_url: format!("{base}/codex/device"),
        // The server's pace, within reason: a bogus interval must not stall the login.
        interval: Duration::from_secs(interval.clamp(1, 30)),
    })
}

/// Poll until the user approved the code; returns the authorization code, its verifier and
/// the redirect URI to exchange them with.
pub async fn device_wait(
    http: &reqwest::Client,
    endpoints: &OAuthEndpoints,
    device: &DeviceCode,
) -> Result<(String, String, String), LoginError> {
    let base = device_base(endpoints)?;
    let deadline = tokio::time::Instant::now() + DEVICE_TIMEOUT;
    loop {
        // The protocol's own pace: the server says how often to ask.
        tokio::time::sleep(device.interval).await;
        if tokio::time::Instant::now() > deadline {
            return Err(err(
                "the device code expired before it was approved; start again",
            ));
        }
        let r = http
            .post(format!("{base}/api/accounts/deviceauth/token"))
            .json(
                &json!({ "device_auth_id": device.device_auth_id, "user_code": device.user_code }),
            )
            .send()
            .await;
        let Ok(r) = r else { continue };
        match r.status().as_u16() {
            200 => {
                let v: Value = r
                    .json()
                    .await
                    .map_err(|_| err("the device-code answer sent no JSON"))?;
                let code = v["authorization_code"]
                    .as_str()
                    .ok_or_else(|| err("no authorization_code in the device answer"))?;
                let verifier = v["code_verifier"]
                    .as_str()
                    .ok_or_else(|| err("no code_verifier in the device answer"))?;
                return Ok((
                    code.to_owned(),
                    verifier.to_owned(),
                    format!("{base}/deviceauth/callback"),
                ));
            }
            // Not approved yet.
            403 | 404 => continue,
            status => return Err(err(format!("the device-code login failed ({status})"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_codes_in_every_form() {
        assert_eq!(parse_pasted(" abc#st ", "st").unwrap(), "abc");
        assert_eq!(parse_pasted("abc", "st").unwrap(), "abc");
        assert_eq!(
            parse_pasted(
                "http://localhost:1455/auth/callback?code=xyz&state=st",
                "st"
            )
            .unwrap(),
            "xyz"
        );
        assert!(parse_pasted("abc#other", "st").is_err());
        assert!(parse_pasted("", "st").is_err());
    }
}
