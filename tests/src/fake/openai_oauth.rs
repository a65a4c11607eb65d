//! OpenAI (ChatGPT / Codex) subscription fakes: the token endpoint of `auth.openai.com`
//! (`POST /oauth/token`), its device-code login (`/api/accounts/deviceauth/*`), and the
//! test-side handle that also scripts the Codex backend ([`super::codex`]). The authorize
//! page is shared with Claude's (same path) and lives in [`super::oauth`].
//!
//! Shapes follow what Codex CLI sends and expects: the authorization-code exchange is
//! form-encoded, the refresh is JSON (both accepted either way), and refresh failures are
//! `401 {"error":{"code":"refresh_token_reused"|…}}`, which Codex classifies by `error.code`.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::codex::{Codex, CodexUsage};
use super::creds;
use super::oauth::{
    Flavor, IssuedCode, IssuedTokens, Issuer, OAuthAccount, TokenError, form_params, json_params,
    json_response, origin, pkce_challenge,
};
use super::state::Shared;

/// Codex CLI's public OAuth client id, which the fake requires unless a test sets another.
pub const CODEX_CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

/// Access-token lifetime until a test sets another (10 days, about what ChatGPT issues).
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(10 * 24 * 3600);

/// Scopes granted to device logins (what Codex asks for in the browser flow).
const DEVICE_SCOPE: &str = "openid profile email offline_access";

/// One device-code login in progress.
struct Device {
    device_auth_id: String,
    user_code: String,
    /// Set by [`OpenAiOAuth::approve_device`]: the account that approved it.
    approved_by: Option<String>,
}

/// The fake `auth.openai.com` state.
pub(crate) struct OpenAiAuth {
    pub(crate) issuer: Issuer,
    devices: Mutex<Vec<Device>>,
    /// Seconds the device flow tells the client to wait between polls.
    interval: AtomicU64,
    next_device: AtomicU64,
}

impl OpenAiAuth {
    pub(crate) fn new() -> Self {
        Self {
            issuer: Issuer::new(Flavor::OpenAi, CODEX_CLIENT_ID, DEFAULT_EXPIRES_IN),
            devices: Mutex::new(Vec::new()),
            interval: AtomicU64::new(1),
            next_device: AtomicU64::new(1),
        }
    }

    fn devices(&self) -> MutexGuard<'_, Vec<Device>> {
        self.devices
            .lock()
            .expect("fake device login mutex poisoned")
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/accounts/deviceauth/usercode", post(user_code))
        .route("/api/accounts/deviceauth/token", post(device_token))
}

/// A JSON body if the request says so, else a form body (Codex sends both kinds).
fn params(headers: &HeaderMap, body: &[u8]) -> Option<super::oauth::Params> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        json_params(body)
    } else {
        Some(form_params(body))
    }
}

/// `POST /oauth/token`: `authorization_code` (from the browser or device flow) or
/// `refresh_token`.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let issuer = &shared.openai_auth.issuer;
    let Some(params) = params(&headers, &body) else {
        return rfc_error("invalid_request", "request body is not a JSON object");
    };
    let grant = params.get("grant_type").cloned().unwrap_or_default();
    issuer.count(&grant);
    let delay = issuer.token_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let result = match grant.as_str() {
        "authorization_code" => issuer.exchange(&params),
        "refresh_token" => issuer.refresh(&params),
        other => {
            let message = format!("unsupported grant_type {other:?}");
            return rfc_error("unsupported_grant_type", &message);
        }
    };
    match result {
        Ok(t) => json_response(
            StatusCode::OK,
            json!({
                "id_token": t.id_token,
                "access_token": t.access_token,
                "refresh_token": t.refresh_token,
                "expires_in": t.expires_in,
                "token_type": "Bearer",
                "scope": t.scope,
            }),
        ),
        Err(TokenError::InvalidRequest(m)) => rfc_error("invalid_request", &m),
        Err(TokenError::InvalidClient(m)) => rfc_error("invalid_client", &m),
        Err(TokenError::InvalidGrant(m)) => rfc_error("invalid_grant", &m),
        Err(TokenError::ReusedRefresh) => refresh_error(
            "refresh_token_reused",
            "Your refresh token has already been used to generate a new access token. \
             Please try signing in again.",
        ),
        Err(TokenError::RevokedRefresh) => refresh_error(
            "refresh_token_invalidated",
            "Your refresh token has been invalidated. Please try signing in again.",
        ),
        Err(TokenError::UnknownRefresh) => refresh_error(
            "invalid_grant",
            "Invalid refresh token. Please try signing in again.",
        ),
    }
}

/// `400 {"error": <code>, "error_description": <message>}` (OAuth RFC shape).
fn rfc_error(code: &str, message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "error": code, "error_description": message }),
    )
}

/// `401 {"error":{"message","type":"invalid_request_error","param":null,"code"}}`: a dead
/// refresh token, which Codex treats as permanent and classifies by `error.code`.
fn refresh_error(code: &str, message: &str) -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        json!({ "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": null,
            "code": code,
        } }),
    )
}

/// `401/400/403 {"error":{"message","type":"invalid_request_error","code"}}` for the device
/// endpoints.
fn device_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        json!({ "error": { "message": message, "type": "invalid_request_error", "code": code } }),
    )
}

/// `POST /api/accounts/deviceauth/usercode` `{"client_id"}` →
/// `{"device_auth_id","user_code","interval":"<secs>"}` (`interval` is a string: Codex parses
/// it from one).
async fn user_code(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let auth = &shared.openai_auth;
    let client_id = json_params(&body).and_then(|p| p.get("client_id").cloned());
    if client_id.as_deref() != Some(auth.issuer.client_id().as_str()) {
        return device_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown or missing client_id",
        );
    }
    let n = auth.next_device.fetch_add(1, Ordering::AcqRel);
    let device = Device {
        device_auth_id: format!("deviceauth_fake{n:04}"),
        user_code: user_code_for(n),
        approved_by: None,
    };
    let body = json!({
        "device_auth_id": device.device_auth_id,
        "user_code": device.user_code,
        "interval": auth.interval.load(Ordering::Acquire).to_string(),
    });
    auth.devices().push(device);
    json_response(StatusCode::OK, body)
}

/// `XXXX-NNNN`, unique per `n`.
fn user_code_for(n: u64) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let digest = Sha256::digest(format!("user-code/{n}").as_bytes());
    let letters: String = digest[..4]
        .iter()
        .map(|b| LETTERS[usize::from(*b) % LETTERS.len()] as char)
        .collect();
    format!("{letters}-{:04}", n % 10_000)
}

/// `POST /api/accounts/deviceauth/token` `{"device_auth_id","user_code"}`:
/// - not yet approved → `403 {"error":{"code":"deviceauth_authorization_pending",…}}`
///   (Codex keeps polling on 403 or 404);
/// - approved → `200 {"authorization_code","code_challenge","code_verifier"}`, once; the
///   client then exchanges the code at `POST /oauth/token` with
///   `redirect_uri=<issuer>/deviceauth/callback` and that verifier;
/// - unknown id, wrong user code, or already completed → `400 …"code":"invalid_request"`.
async fn device_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = &shared.openai_auth;
    let params = json_params(&body).unwrap_or_default();
    let id = params.get("device_auth_id").map(String::as_str);
    let code = params.get("user_code").map(String::as_str);
    let mut devices = auth.devices();
    let Some(at) = devices
        .iter()
        .position(|d| Some(d.device_auth_id.as_str()) == id && Some(d.user_code.as_str()) == code)
    else {
        return device_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown device_auth_id or user_code",
        );
    };
    let Some(label) = devices[at].approved_by.clone() else {
        return device_error(
            StatusCode::FORBIDDEN,
            "deviceauth_authorization_pending",
            "Device authorization is pending. Keep polling.",
        );
    };
    let device = devices.remove(at);
    drop(devices);
    let verifier = URL_SAFE_NO_PAD.encode(Sha256::digest(
        format!("device-verifier/{}", device.device_auth_id).as_bytes(),
    ));
    let challenge = pkce_challenge(&verifier);
    let redirect_uri = format!("{}/deviceauth/callback", origin(&headers));
    let issued = auth
        .issuer
        .issue_code(&label, &redirect_uri, &challenge, DEVICE_SCOPE);
    json_response(
        StatusCode::OK,
        json!({
            "authorization_code": issued.code,
            "code_challenge": challenge,
            "code_verifier": verifier,
        }),
    )
}

/// Test-side control of the fake ChatGPT subscription services: `auth.openai.com` (browser and
/// device login, refresh) and the Codex backend of `chatgpt.com`; get it with
/// [`super::FakeUpstream::openai_oauth`].
///
/// Endpoints, all on [`super::FakeUpstream::base_url`]:
/// - `GET /oauth/authorize` (for `https://auth.openai.com/oauth/authorize`): validates
///   `client_id` ([`CODEX_CLIENT_ID`]), `response_type=code`, `redirect_uri` (default: only
///   `http://localhost:1455/auth/callback`), `scope` (must include `openid profile email
///   offline_access`), `code_challenge` + `code_challenge_method=S256`, `state`; `302` to
///   `redirect_uri?code=…&state=…`. Errors: `400 {"error":"invalid_request",…}`.
/// - `POST /oauth/token`, form-encoded or JSON: `authorization_code` needs `code`,
///   `redirect_uri`, `client_id`, `code_verifier`; `refresh_token` needs `refresh_token`,
///   `client_id`. Answers `{"id_token","access_token","refresh_token","expires_in",
///   "token_type":"Bearer","scope"}`. A reused refresh token → `401 {"error":{"code":
///   "refresh_token_reused",…}}`; after [`OpenAiOAuth::fail_next_refresh`] →
///   `"refresh_token_invalidated"`; an unknown one → `"invalid_grant"` (all 401, the shape
///   Codex reads). Bad codes/verifiers → `400 {"error":"invalid_grant",…}`.
///   The `id_token` (and the access token) are JWTs whose payload has `email`, `exp` and
///   `"https://api.openai.com/auth": {"chatgpt_account_id","chatgpt_plan_type",
///   "chatgpt_user_id","user_id"}` (the id token adds `organizations`).
/// - Device login: `POST /api/accounts/deviceauth/usercode` and `…/deviceauth/token`, see
///   [`OpenAiOAuth::approve_device`].
/// - `POST /backend-api/codex/responses` and `GET /backend-api/wham/usage` (for
///   `https://chatgpt.com/backend-api/…`): see [`OpenAiOAuth::set_usage`].
#[derive(Clone, Copy)]
pub struct OpenAiOAuth<'a> {
    auth: &'a OpenAiAuth,
    codex: &'a Codex,
}

impl<'a> OpenAiOAuth<'a> {
    pub(crate) fn new(auth: &'a OpenAiAuth, codex: &'a Codex) -> Self {
        Self { auth, codex }
    }

    /// The client id the server accepts (default [`CODEX_CLIENT_ID`]).
    pub fn client_id(&self) -> String {
        self.auth.issuer.client_id()
    }

    /// Accept `id` instead of Codex's client id.
    pub fn set_client_id(&self, id: &str) {
        self.auth.issuer.set_client_id(id);
    }

    /// Allow exactly these redirect URIs for browser logins, or (`None`) the defaults:
    /// `http://localhost:1455/auth/callback` and `<base>/deviceauth/callback`.
    pub fn set_redirect_uris(&self, uris: Option<&[&str]>) {
        let uris = uris.map(|u| u.iter().map(|s| (*s).to_owned()).collect());
        self.auth.issuer.set_redirect_uris(uris);
    }

    /// The account that the next browser authorizations and device approvals log into
    /// (default `"default"`). Any label names an account.
    pub fn login_as(&self, label: &str) {
        self.auth.issuer.login_as(label);
    }

    /// The account named `label`: `account_id` is its `chatgpt_account_id`.
    pub fn account(&self, label: &str) -> OAuthAccount {
        self.auth.issuer.account(label)
    }

    /// Sets the account's `chatgpt_plan_type` (default `pro`) for tokens issued from now on
    /// and for the usage answers.
    pub fn set_plan(&self, label: &str, plan: &str) {
        self.auth.issuer.set_plan(label, plan);
    }

    /// The last authorization code issued (browser or device), without following a redirect.
    pub fn last_code(&self) -> Option<IssuedCode> {
        self.auth.issuer.last_code()
    }

    /// Lifetime of access tokens issued from now on (default 10 days).
    pub fn set_expires_in(&self, lifetime: Duration) {
        self.auth.issuer.set_expires_in(lifetime);
    }

    /// Delay every token request by `delay` after counting it.
    pub fn set_token_delay(&self, delay: Duration) {
        self.auth.issuer.set_token_delay(delay);
    }

    /// The next otherwise-valid refresh fails with `401 refresh_token_invalidated` and
    /// revokes the refresh token it presented.
    pub fn fail_next_refresh(&self) {
        self.auth.issuer.fail_next_refresh();
    }

    /// `grant_type=authorization_code` requests received (valid or not).
    pub fn token_calls(&self) -> usize {
        self.auth.issuer.code_exchanges()
    }

    /// `grant_type=refresh_token` requests received (valid or not), counted on arrival.
    pub fn refresh_calls(&self) -> usize {
        self.auth.issuer.refreshes()
    }

    /// `GET /backend-api/wham/usage` requests received.
    pub fn usage_polls(&self) -> usize {
        self.codex.usage_polls()
    }

    /// Registers a fresh token set (with `id_token`) for `label` as if it had logged in; the
    /// access token is valid for `lifetime` (`Duration::ZERO`: already expired).
    pub fn issue_tokens(&self, label: &str, lifetime: Duration) -> IssuedTokens {
        self.auth.issuer.issue(label, lifetime)
    }

    /// Expires every access token of `label` now; refresh tokens stay valid.
    pub fn expire_access_tokens(&self, label: &str) {
        self.auth.issuer.expire_access_tokens(label);
    }

    /// The account label of any access or refresh token this server issued.
    pub fn account_of(&self, token: &str) -> Option<String> {
        self.auth.issuer.account_of(token)
    }

    /// Seconds the device flow tells clients to wait between polls (default 1; the real
    /// server says 5).
    pub fn set_device_interval(&self, secs: u64) {
        self.auth.interval.store(secs, Ordering::Release);
    }

    /// User codes of device logins started and not yet approved, oldest first (what Keyway
    /// would show the user).
    pub fn pending_device_codes(&self) -> Vec<String> {
        self.auth
            .devices()
            .iter()
            .filter(|d| d.approved_by.is_none())
            .map(|d| d.user_code.clone())
            .collect()
    }

    /// Approves the device login with `user_code` as the current [`OpenAiOAuth::login_as`]
    /// account: its next poll gets the authorization code. False if no such login is pending.
    pub fn approve_device(&self, user_code: &str) -> bool {
        let label = self.auth.issuer.login();
        let mut devices = self.auth.devices();
        match devices
            .iter_mut()
            .find(|d| d.user_code == user_code && d.approved_by.is_none())
        {
            Some(device) => {
                device.approved_by = Some(label);
                true
            }
            None => false,
        }
    }

    /// What the account's Codex windows report from now on, on `x-codex-*` headers and
    /// `GET /backend-api/wham/usage`.
    ///
    /// `POST /backend-api/codex/responses` needs `Authorization: Bearer <access token>` and
    /// `chatgpt-account-id: <account_id>`: unknown token → `401 {"error":{"code":
    /// "token_invalid"}}`, expired → `401 …"token_expired"`, missing or other account id →
    /// `403 …"account_mismatch"`, `"stream": true` required (else `400 {"detail":"Stream must
    /// be set to true"}`). The answer is the Responses API stream with
    /// `x-codex-primary-used-percent`, `-window-minutes`, `-reset-after-seconds`,
    /// `-reset-at` and the same for `secondary`, scripted like any key by the account label.
    ///
    /// `GET /backend-api/wham/usage` (same auth) answers `{"plan_type","rate_limit":
    /// {"allowed","limit_reached","primary_window":{"used_percent","limit_window_seconds",
    /// "reset_after_seconds","reset_at"},"secondary_window":{…}},"credits":{"has_credits":
    /// false,"unlimited":false,"balance":"0"}}`.
    pub fn set_usage(&self, label: &str, usage: CodexUsage) {
        self.codex.set_usage(label, usage);
    }

    /// The account hits its usage limit until Unix second `resets_at`: every Codex request
    /// answers `429 {"error":{"type":"usage_limit_reached","message","plan_type",
    /// "resets_at","resets_in_seconds"}}` with the primary window at 100 %, until `resets_at`
    /// passes (wall clock).
    pub fn usage_limit_until(&self, label: &str, resets_at: u64) {
        self.codex.limit_until(label, resets_at);
    }

    /// Issues tokens for `label` (current lifetime) and writes them as Codex's
    /// `<home>/.codex/auth.json`; returns the tokens.
    pub fn write_codex_auth(&self, home: &Path, label: &str) -> io::Result<IssuedTokens> {
        let tokens = self.issue_tokens(label, self.auth.issuer.expires_in());
        creds::write_codex_auth(home, &tokens)?;
        Ok(tokens)
    }
}

/// `Value` of a JWT's payload, for tests that inspect issued tokens.
pub fn jwt_payload(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}
