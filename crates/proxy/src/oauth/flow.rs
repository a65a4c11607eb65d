//! One subscription login from start to tokens, the same for `keyway account login` and the
//! dashboard: [`start`] says what the user must do ([`Prompt`]), [`PendingLogin::finish`]
//! waits for the browser's redirect, a pasted code or a device approval, and exchanges it.

use std::time::Duration;

use keyway_core::snapshot::OAuthEndpoints;
use keyway_core::{OAuthTokens, ProviderKind};
use tokio::sync::mpsc;

use super::login::{self, Authorization, Callback, DeviceCode, LoginError};
use super::token;

/// Longest a login may wait for the user.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How the user proves who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The provider's page in a browser, redirecting back to a loopback callback. `manual`:
    /// the browser is on another machine, so the provider shows a code to paste instead
    /// (Claude; ChatGPT's redirect URL can be pasted either way).
    Browser { manual: bool },
    /// ChatGPT's device code, typed on any device.
    DeviceCode,
}

/// What the user must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    OpenUrl(String),
    EnterCode {
        user_code: String,
        verification_url: String,
    },
}

/// A login waiting for the user.
pub struct PendingLogin {
    kind: ProviderKind,
    endpoints: OAuthEndpoints,
    prompt: Prompt,
    wait: Wait,
}

enum Wait {
    Code {
        auth: Authorization,
        callback: Option<Callback>,
    },
    Device(DeviceCode),
}

/// Start a login of a provider of `kind`. A browser login listens on the provider's loopback
/// callback port; when that port is taken the login can still finish with a pasted code, and
/// the reason comes back beside the login for the caller to show or refuse.
pub async fn start(
    http: &reqwest::Client,
    kind: ProviderKind,
    endpoints: OAuthEndpoints,
    method: Method,
) -> Result<(PendingLogin, Option<LoginError>), LoginError> {
    match method {
        Method::DeviceCode => {
            if kind != ProviderKind::OpenAi {
                return Err(LoginError::Failed(
                    "only openai offers a device-code login".into(),
                ));
            }
            let device = login::device_start(http, &endpoints).await?;
            let prompt = Prompt::EnterCode {
                user_code: device.user_code.clone(),
                verification_url: device.verification_url.clone(),
            };
            let pending = PendingLogin {
                kind,
                endpoints,
                prompt,
                wait: Wait::Device(device),
            };
            Ok((pending, None))
        }
        Method::Browser { manual } => {
            let auth = login::authorize(kind, &endpoints, manual)?;
            let (callback, unavailable) = if manual {
                (None, None)
            } else {
                match Callback::listen(
                    endpoints.redirect_port,
                    endpoints.redirect_path,
                    auth.state.clone(),
                )
                .await
                {
                    Ok(cb) => (Some(cb), None),
                    Err(e) => (None, Some(e)),
                }
            };
            let pending = PendingLogin {
                kind,
                endpoints,
                prompt: Prompt::OpenUrl(auth.url.clone()),
                wait: Wait::Code { auth, callback },
            };
            Ok((pending, unavailable))
        }
    }
}

impl PendingLogin {
    pub fn prompt(&self) -> &Prompt {
        &self.prompt
    }

    /// Wait (at most 15 minutes) for the user, then exchange what they gave for tokens.
    /// `pasted` carries codes the user pastes (`code#state`, a bare code or the redirect URL);
    /// a device login ignores it.
    pub async fn finish(
        self,
        http: &reqwest::Client,
        pasted: mpsc::Receiver<String>,
    ) -> Result<OAuthTokens, LoginError> {
        let PendingLogin {
            kind,
            endpoints,
            wait,
            ..
        } = self;
        let waited = match wait {
            Wait::Device(device) => {
                let (code, verifier, redirect) =
                    login::device_wait(http, &endpoints, &device).await?;
                return exchange(http, kind, &endpoints, &code, &verifier, &redirect, "").await;
            }
            Wait::Code { auth, callback } => {
                tokio::time::timeout(LOGIN_TIMEOUT, code(&auth, callback, pasted))
                    .await
                    .map(|code| (code, auth))
            }
        };
        let (code, auth) = waited.map_err(|_| {
            LoginError::Failed("nobody completed the login in 15 minutes; start again".into())
        })?;
        exchange(
            http,
            kind,
            &endpoints,
            &code?,
            &auth.pkce.verifier,
            &auth.redirect_uri,
            &auth.state,
        )
        .await
    }
}

/// The code from the browser's redirect or a pasted one, whichever comes first. The callback
/// server stops when this returns.
async fn code(
    auth: &Authorization,
    mut callback: Option<Callback>,
    mut pasted: mpsc::Receiver<String>,
) -> Result<String, LoginError> {
    let mut paste_open = true;
    loop {
        tokio::select! {
            code = async {
                match callback.as_mut() {
                    Some(cb) => cb.code().await,
                    None => std::future::pending().await,
                }
            } => return code,
            text = pasted.recv(), if paste_open => match text {
                Some(text) => return login::parse_pasted(&text, &auth.state),
                None if callback.is_some() => paste_open = false,
                None => {
                    return Err(LoginError::Failed(
                        "no way left to receive the login: the callback could not listen and nothing more can be pasted".into(),
                    ));
                }
            },
        }
    }
}

async fn exchange(
    http: &reqwest::Client,
    kind: ProviderKind,
    endpoints: &OAuthEndpoints,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<OAuthTokens, LoginError> {
    token::exchange_code(http, kind, endpoints, code, verifier, redirect_uri, state)
        .await
        .map_err(LoginError::from)
}
