//! Claude subscription (OAuth) fakes: the token endpoint (`platform.claude.com/v1/oauth/token`),
//! the usage poll (`GET /api/oauth/usage`), and the checks and unified rate-limit headers that
//! `/v1/messages` applies to OAuth bearer tokens. The authorize page is shared with OpenAI's
//! (same path) and lives in [`super::oauth`].
//!
//! Each account's limits are scripted in wall-clock Unix seconds, as the real headers carry
//! them, so a test can set a reset a second or two ahead and watch traffic come back.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::anthropic;
use super::creds;
use super::oauth::{
    AccessCheck, Flavor, Gate, IssuedCode, IssuedTokens, Issuer, OAuthAccount, TokenError,
    answer_response, header_has, json_params, json_response, reached, rfc3339, secs_until,
    unix_secs,
};
use super::state::Shared;
use super::wire::{Answer, bearer};

/// Claude Code's public OAuth client id, which the fake requires unless a test sets another.
pub const CLAUDE_CODE_CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";

/// The `anthropic-beta` flag without which Anthropic rejects OAuth bearer tokens.
pub const OAUTH_BETA: &str = "oauth-2025-04-20";

/// Access-token lifetime until a test sets another (the real one is 8 hours).
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(8 * 3600);

const FIVE_HOURS: u64 = 5 * 3600;
const SEVEN_DAYS: u64 = 7 * 24 * 3600;

/// One usage window of a Claude subscription.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClaudeWindow {
    /// Fraction used, `0.0..=1.0`. Sent as is in the `…-utilization` headers and as a
    /// percentage (×100) in the usage poll, as the real API does.
    pub utilization: f64,
    /// Unix seconds when the window resets.
    pub resets_at: u64,
}

/// What a Claude account's windows report, on inference headers and the usage poll.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClaudeUsage {
    /// The 5-hour window (`five_hour`, `…-unified-5h-…`).
    pub five_hour: ClaudeWindow,
    /// The weekly window (`seven_day`, `…-unified-7d-…`).
    pub seven_day: ClaudeWindow,
    /// The weekly Opus window (`seven_day_opus`; `null` when `None`). Poll only.
    pub seven_day_opus: Option<ClaudeWindow>,
}

impl ClaudeUsage {
    /// Nothing used, windows resetting 5 hours and 7 days from now: what an account reports
    /// until a test sets its usage.
    pub fn fresh() -> Self {
        let now = unix_secs(SystemTime::now());
        Self {
            five_hour: ClaudeWindow {
                utilization: 0.0,
                resets_at: now + FIVE_HOURS,
            },
            seven_day: ClaudeWindow {
                utilization: 0.0,
                resets_at: now + SEVEN_DAYS,
            },
            seven_day_opus: None,
        }
    }
}

/// One account's scripted limits.
struct Limits {
    usage: ClaudeUsage,
    /// The 5h window is rejected until this Unix second.
    rejected_5h: Option<u64>,
    rejected_7d: Option<u64>,
}

/// The account's windows right now, rejections folded in.
struct Snapshot {
    usage: ClaudeUsage,
    rejected_5h: bool,
    rejected_7d: bool,
}

/// The fake Claude subscription services' state.
pub(crate) struct Claude {
    pub(crate) issuer: Issuer,
    limits: Mutex<HashMap<String, Limits>>,
    usage_polls: AtomicUsize,
}

impl Claude {
    pub(crate) fn new() -> Self {
        Self {
            issuer: Issuer::new(Flavor::Claude, CLAUDE_CODE_CLIENT_ID, DEFAULT_EXPIRES_IN),
            limits: Mutex::new(HashMap::new()),
            usage_polls: AtomicUsize::new(0),
        }
    }

    fn with_limits<T>(&self, label: &str, f: impl FnOnce(&mut Limits) -> T) -> T {
        let mut all = self
            .limits
            .lock()
            .expect("fake Claude limits mutex poisoned");
        let limits = all.entry(label.to_owned()).or_insert_with(|| Limits {
            usage: ClaudeUsage::fresh(),
            rejected_5h: None,
            rejected_7d: None,
        });
        f(limits)
    }

    fn snapshot(&self, label: &str) -> Snapshot {
        self.with_limits(label, |l| {
            // A rejection ends at its reset time, by the wall clock.
            l.rejected_5h = l.rejected_5h.filter(|&t| !reached(t));
            l.rejected_7d = l.rejected_7d.filter(|&t| !reached(t));
            let mut usage = l.usage;
            if let Some(resets_at) = l.rejected_5h {
                usage.five_hour = ClaudeWindow {
                    utilization: 1.0,
                    resets_at,
                };
            }
            if let Some(resets_at) = l.rejected_7d {
                usage.seven_day = ClaudeWindow {
                    utilization: 1.0,
                    resets_at,
                };
            }
            Snapshot {
                usage,
                rejected_5h: l.rejected_5h.is_some(),
                rejected_7d: l.rejected_7d.is_some(),
            }
        })
    }

    /// The account a bearer request belongs to, if the token is valid and the beta flag is
    /// there; otherwise the 401 Anthropic gives.
    fn authenticate(&self, headers: &HeaderMap, token: &str) -> Result<String, Rejected> {
        let check = self.issuer.check_access(token);
        let label = check.label().map(str::to_owned);
        let reject = |message: &str| Rejected {
            label: label.clone(),
            answer: Box::new(anthropic::error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                message,
            )),
        };
        if !header_has(headers, "anthropic-beta", OAUTH_BETA) {
            return Err(reject("OAuth authentication is currently not supported."));
        }
        match check {
            AccessCheck::Valid(label) => Ok(label),
            AccessCheck::Expired(_) => Err(reject(
                "OAuth token has expired. Please obtain a new token or refresh your existing token.",
            )),
            AccessCheck::Unknown => Err(reject("Invalid bearer token")),
        }
    }

    /// How an Anthropic inference endpoint treats the request. `x-api-key` requests are
    /// API-key requests; a bearer is an OAuth access token, checked here: Anthropic refuses
    /// an API key sent as a bearer like any other token it did not issue.
    pub(crate) fn gate(&self, headers: &HeaderMap) -> Gate {
        if headers.contains_key("x-api-key") {
            return Gate::ApiKey;
        }
        let Some(token) = bearer(headers) else {
            return Gate::ApiKey;
        };
        let label = match self.authenticate(headers, &token) {
            Ok(label) => label,
            Err(Rejected { label, answer }) => {
                return Gate::Reject {
                    label,
                    answer: *answer,
                };
            }
        };
        let snapshot = self.snapshot(&label);
        let headers = unified_headers(&snapshot);
        if snapshot.rejected_5h || snapshot.rejected_7d {
            let answer = anthropic::error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "This request would exceed your account's rate limit. Please try again later.",
            )
            .with_headers(headers);
            return Gate::Reject {
                label: Some(label),
                answer,
            };
        }
        Gate::Account { label, headers }
    }
}

/// Boxed: an answer is large, and this travels in a `Result`.
struct Rejected {
    label: Option<String>,
    answer: Box<Answer>,
}

/// `anthropic-ratelimit-unified-*` for the account's current windows (status `allowed`
/// unless a window is rejected), plus `retry-after` when rejected. The representative claim
/// is the rejected window (the weekly one if both), else the fuller one.
fn unified_headers(s: &Snapshot) -> Vec<(&'static str, String)> {
    let five = s.usage.five_hour;
    let seven = s.usage.seven_day;
    let status = |rejected: bool| if rejected { "rejected" } else { "allowed" }.to_owned();
    let rejected = s.rejected_5h || s.rejected_7d;
    let (claim, reset) = if s.rejected_7d {
        ("seven_day", seven.resets_at)
    } else if s.rejected_5h || five.utilization >= seven.utilization {
        ("five_hour", five.resets_at)
    } else {
        ("seven_day", seven.resets_at)
    };
    let mut headers = vec![
        ("anthropic-ratelimit-unified-status", status(rejected)),
        (
            "anthropic-ratelimit-unified-5h-status",
            status(s.rejected_5h),
        ),
        (
            "anthropic-ratelimit-unified-5h-reset",
            five.resets_at.to_string(),
        ),
        (
            "anthropic-ratelimit-unified-5h-utilization",
            five.utilization.to_string(),
        ),
        (
            "anthropic-ratelimit-unified-7d-status",
            status(s.rejected_7d),
        ),
        (
            "anthropic-ratelimit-unified-7d-reset",
            seven.resets_at.to_string(),
        ),
        (
            "anthropic-ratelimit-unified-7d-utilization",
            seven.utilization.to_string(),
        ),
        (
            "anthropic-ratelimit-unified-representative-claim",
            claim.to_owned(),
        ),
        ("anthropic-ratelimit-unified-reset", reset.to_string()),
    ];
    if rejected {
        headers.push(("retry-after", secs_until(reset).to_string()));
    }
    headers
}

/// `{"utilization": <percent>, "resets_at": "<RFC 3339>"}`.
fn window_json(w: ClaudeWindow) -> Value {
    let percent = (w.utilization * 10_000.0).round() / 100.0;
    json!({ "utilization": percent, "resets_at": rfc3339(w.resets_at) })
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/oauth/token", post(token))
        .route("/api/oauth/usage", get(usage))
}

/// `POST /v1/oauth/token`: JSON only, like the real endpoint; a form body is a 400.
async fn token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let issuer = &shared.claude.issuer;
    let Some(params) = json_params(&body) else {
        return token_error("invalid_request", "request body must be a JSON object");
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
            return token_error("unsupported_grant_type", &message);
        }
    };
    match result {
        Ok(tokens) => {
            let account = issuer.account(&tokens.label);
            json_response(StatusCode::OK, token_body(&tokens, &account))
        }
        Err(TokenError::InvalidRequest(m)) => token_error("invalid_request", &m),
        Err(TokenError::InvalidClient(m)) => token_error("invalid_client", &m),
        Err(TokenError::InvalidGrant(m)) => token_error("invalid_grant", &m),
        Err(TokenError::UnknownRefresh) => {
            token_error("invalid_grant", "Refresh token not found or invalid")
        }
        Err(TokenError::ReusedRefresh) => {
            token_error("invalid_grant", "Refresh token has already been used")
        }
        Err(TokenError::RevokedRefresh) => {
            token_error("invalid_grant", "Refresh token has been revoked")
        }
    }
}

fn token_body(t: &IssuedTokens, account: &OAuthAccount) -> Value {
    json!({
        "token_type": "Bearer",
        "access_token": t.access_token,
        "expires_in": t.expires_in,
        "refresh_token": t.refresh_token,
        "scope": t.scope,
        "organization": { "uuid": account.organization_id, "name": account.organization_name },
        "account": { "uuid": account.account_id, "email_address": account.email },
    })
}

/// `400 {"error": <code>, "error_description": <message>}`.
fn token_error(code: &str, message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "error": code, "error_description": message }),
    )
}

/// `GET /api/oauth/usage`: the account's windows, utilization in percent.
async fn usage(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let claude = &shared.claude;
    claude.usage_polls.fetch_add(1, Ordering::AcqRel);
    let Some(token) = bearer(&headers) else {
        let answer = anthropic::error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "OAuth token required",
        );
        return answer_response(answer);
    };
    match claude.authenticate(&headers, &token) {
        Ok(label) => {
            let s = claude.snapshot(&label);
            json_response(
                StatusCode::OK,
                json!({
                    "five_hour": window_json(s.usage.five_hour),
                    "seven_day": window_json(s.usage.seven_day),
                    "seven_day_oauth_apps": null,
                    "seven_day_opus": s.usage.seven_day_opus.map(window_json),
                }),
            )
        }
        Err(rejected) => answer_response(*rejected.answer),
    }
}

/// Test-side control of the fake Claude subscription services (OAuth login and refresh,
/// usage poll, OAuth inference on `/v1/messages`); get it with
/// [`super::FakeUpstream::claude_oauth`].
///
/// Endpoints, all on [`super::FakeUpstream::base_url`]:
/// - `GET /oauth/authorize` (for `https://claude.ai/oauth/authorize`): validates `client_id`,
///   `response_type=code`, `redirect_uri`, `scope` (must include `user:inference`),
///   `code_challenge` + `code_challenge_method=S256`, `state`; answers `302` to
///   `redirect_uri?code=…&state=…`, logged in as [`ClaudeOAuth::login_as`]'s account. Errors
///   are `400 {"error":"invalid_request","error_description":…}`. Redirect URIs allowed by
///   default: `http://localhost:<port>/callback`, `http://127.0.0.1:<port>/callback`, and the
///   manual code page (`<base>/oauth/code/callback` or the real platform's).
/// - `GET /oauth/code/callback?code&state`: the manual code page; body `code#state`.
/// - `POST /v1/oauth/token` (for `https://platform.claude.com/v1/oauth/token`), JSON body:
///   `authorization_code` needs `code`, `redirect_uri`, `client_id`, `code_verifier`,
///   `state`; `refresh_token` needs `refresh_token`, `client_id`. Answers
///   `{"token_type":"Bearer","access_token","expires_in","refresh_token","scope",
///   "organization":{"uuid","name"},"account":{"uuid","email_address"}}`; failures are
///   `400 {"error":"invalid_request"|"invalid_client"|"invalid_grant"|
///   "unsupported_grant_type","error_description":…}`.
/// - `/v1/messages` (and the other Anthropic endpoints) with `Authorization: Bearer
///   sk-ant-oat01-…`: without `oauth-2025-04-20` in `anthropic-beta` → 401
///   `authentication_error`; unknown or expired token → 401 `authentication_error`; account
///   in a rejected window → 429 `rate_limit_error`; otherwise the account's scripts
///   ([`super::FakeUpstream::push`] keyed by the account label) with the unified limit
///   headers on every answer.
/// - `GET /api/oauth/usage` (same auth): `{"five_hour":{"utilization":<percent>,
///   "resets_at":"<RFC 3339>"},"seven_day":{…},"seven_day_oauth_apps":null,
///   "seven_day_opus":{…}|null}`.
#[derive(Clone, Copy)]
pub struct ClaudeOAuth<'a> {
    claude: &'a Claude,
}

impl<'a> ClaudeOAuth<'a> {
    pub(crate) fn new(claude: &'a Claude) -> Self {
        Self { claude }
    }

    /// The client id the server accepts (default [`CLAUDE_CODE_CLIENT_ID`]).
    pub fn client_id(&self) -> String {
        self.claude.issuer.client_id()
    }

    /// Accept `id` instead of Claude Code's client id.
    pub fn set_client_id(&self, id: &str) {
        self.claude.issuer.set_client_id(id);
    }

    /// Allow exactly these redirect URIs, or (`None`) the default rules above.
    pub fn set_redirect_uris(&self, uris: Option<&[&str]>) {
        let uris = uris.map(|u| u.iter().map(|s| (*s).to_owned()).collect());
        self.claude.issuer.set_redirect_uris(uris);
    }

    /// The account that the next browser authorizations log into (default `"default"`).
    /// Accounts need no registration: any label names one.
    pub fn login_as(&self, label: &str) {
        self.claude.issuer.login_as(label);
    }

    /// The account named `label`, with its derived uuid, email and organization.
    pub fn account(&self, label: &str) -> OAuthAccount {
        self.claude.issuer.account(label)
    }

    /// Sets the account's `subscriptionType` (default `max`), used by
    /// [`ClaudeOAuth::write_credentials`].
    pub fn set_plan(&self, label: &str, plan: &str) {
        self.claude.issuer.set_plan(label, plan);
    }

    /// The last code `GET /oauth/authorize` issued, for the paste-the-code path
    /// ([`IssuedCode::pasted`] is Claude's `code#state`) without following the redirect.
    pub fn last_code(&self) -> Option<IssuedCode> {
        self.claude.issuer.last_code()
    }

    /// Lifetime of access tokens issued from now on (default 8 h); `expires_in` reports it
    /// in whole seconds, and the token stops working when it runs out.
    pub fn set_expires_in(&self, lifetime: Duration) {
        self.claude.issuer.set_expires_in(lifetime);
    }

    /// Delay every token request by `delay` after counting it, so concurrent callers can
    /// pile up on one refresh.
    pub fn set_token_delay(&self, delay: Duration) {
        self.claude.issuer.set_token_delay(delay);
    }

    /// The next otherwise-valid refresh fails with `400 invalid_grant` and revokes the refresh
    /// token it presented (the account then needs a new login).
    pub fn fail_next_refresh(&self) {
        self.claude.issuer.fail_next_refresh();
    }

    /// `grant_type=authorization_code` requests received (valid or not).
    pub fn token_calls(&self) -> usize {
        self.claude.issuer.code_exchanges()
    }

    /// `grant_type=refresh_token` requests received (valid or not), counted on arrival.
    pub fn refresh_calls(&self) -> usize {
        self.claude.issuer.refreshes()
    }

    /// `GET /api/oauth/usage` requests received.
    pub fn usage_polls(&self) -> usize {
        self.claude.usage_polls.load(Ordering::Acquire)
    }

    /// Registers a fresh token pair for `label` as if it had logged in; the access token is
    /// valid for `lifetime` (`Duration::ZERO`: already expired, so the first use must refresh).
    pub fn issue_tokens(&self, label: &str, lifetime: Duration) -> IssuedTokens {
        self.claude.issuer.issue(label, lifetime)
    }

    /// Expires every access token of `label` now; refresh tokens stay valid.
    pub fn expire_access_tokens(&self, label: &str) {
        self.claude.issuer.expire_access_tokens(label);
    }

    /// The account label of any access or refresh token this server issued.
    pub fn account_of(&self, token: &str) -> Option<String> {
        self.claude.issuer.account_of(token)
    }

    /// What the account's windows report from now on (headers and usage poll).
    pub fn set_usage(&self, label: &str, usage: ClaudeUsage) {
        self.claude.with_limits(label, |l| l.usage = usage);
    }

    /// Rejects the account's 5-hour window until Unix second `reset_unix`: every request of
    /// the account answers 429 `rate_limit_error` with `…-unified-status: rejected`,
    /// `…-5h-status: rejected`, `…-5h-reset`/`…-unified-reset: reset_unix`, `retry-after`;
    /// the usage poll shows 100 %. From `reset_unix` on (wall clock) it answers normally.
    pub fn reject_5h_until(&self, label: &str, reset_unix: u64) {
        self.claude
            .with_limits(label, |l| l.rejected_5h = Some(reset_unix));
    }

    /// Like [`ClaudeOAuth::reject_5h_until`] for the 7-day window.
    pub fn reject_7d_until(&self, label: &str, reset_unix: u64) {
        self.claude
            .with_limits(label, |l| l.rejected_7d = Some(reset_unix));
    }

    /// Issues tokens for `label` (current [`ClaudeOAuth::set_expires_in`] lifetime) and
    /// writes them as Claude Code's `<home>/.claude/.credentials.json`; returns the tokens.
    pub fn write_credentials(&self, home: &Path, label: &str) -> io::Result<IssuedTokens> {
        let lifetime = self.claude.issuer.expires_in();
        let tokens = self.issue_tokens(label, lifetime);
        let plan = self.account(label).plan;
        creds::write_claude_credentials(home, &tokens, &plan)?;
        Ok(tokens)
    }
}
