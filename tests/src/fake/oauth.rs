//! The OAuth authorization-server core shared by the Claude and OpenAI fakes: accounts derived
//! from test-chosen labels, one-time PKCE authorization codes, single-use rotating refresh
//! tokens and access-token lookup.
//!
//! The provider modules ([`super::claude`], [`super::openai_oauth`]) wrap this in their own
//! wire shapes; the inference endpoints use [`Issuer::check_access`] to decide which account a
//! bearer token belongs to. Everything is strict where the real servers are strict (client id,
//! redirect URI, PKCE S256, single-use codes and refresh tokens), so a Keyway that gets the
//! protocol wrong fails against the fake as it would against the real thing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::state::Shared;
use super::wire::Answer;

const POISONED: &str = "fake OAuth state mutex poisoned";

/// The login a browser authorization logs into until a test calls `login_as`.
pub(crate) const DEFAULT_LOGIN: &str = "default";

/// Decoded parameters of a query string, form body or flat JSON object.
pub(crate) type Params = HashMap<String, String>;

/// Which provider an [`Issuer`] imitates; decides token formats, scopes and redirect rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `claude.ai` / `platform.claude.com` (Claude Code's public client).
    Claude,
    /// `auth.openai.com` (Codex CLI's public client).
    OpenAi,
}

/// A subscription account of a fake OAuth server.
///
/// Accounts are created on first mention of their label and all their ids are derived from
/// it, so a test can predict them (and two fakes agree on them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthAccount {
    /// The test's name for the account, e.g. `"alice"`; recorded requests carry it in
    /// [`super::Recorded::account`].
    pub label: String,
    /// The provider's account id: Claude `account.uuid`, ChatGPT `chatgpt_account_id` (what
    /// Codex sends as `chatgpt-account-id`).
    pub account_id: String,
    /// `<label>@example.com`: Claude `account.email_address`, the OpenAI id token's `email`.
    pub email: String,
    /// Claude `organization.uuid`; the OpenAI id token's organization id (`org-…`).
    pub organization_id: String,
    /// Claude `organization.name`; the OpenAI organization's title.
    pub organization_name: String,
    /// Claude `subscriptionType` (default `max`); ChatGPT `chatgpt_plan_type` (default `pro`).
    pub plan: String,
}

/// Tokens a fake OAuth server issued, through its token endpoint or directly to a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    /// Label of the account the tokens belong to.
    pub label: String,
    /// [`OAuthAccount::account_id`] of that account.
    pub account_id: String,
    /// Bearer token for inference and usage polls. Claude: `sk-ant-oat01-…`; OpenAI: a JWT
    /// whose payload has `exp` and the `https://api.openai.com/auth` claim, like the real one.
    pub access_token: String,
    /// Single-use refresh token. Claude: `sk-ant-ort01-…`; OpenAI: `rt_…`.
    pub refresh_token: String,
    /// OpenAI only: the `id_token` JWT (see [`super::OpenAiOAuth`]).
    pub id_token: Option<String>,
    /// Access-token lifetime in seconds, as sent in `expires_in`.
    pub expires_in: u64,
    /// Unix milliseconds when the access token stops being accepted (Claude Code's
    /// `expiresAt`).
    pub expires_at_ms: u64,
    /// Space-separated scopes granted.
    pub scope: String,
}

/// An authorization code issued by `GET /oauth/authorize` (or a device login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// The one-time code.
    pub code: String,
    /// The `state` the authorization request carried (empty for device logins).
    pub state: String,
    /// Where the browser was redirected.
    pub redirect_uri: String,
    /// Label of the account that "logged in".
    pub label: String,
}

impl IssuedCode {
    /// What Claude's manual-code page shows the user to paste: `code#state`.
    pub fn pasted(&self) -> String {
        format!("{}#{}", self.code, self.state)
    }

    /// The `Location` of the authorize redirect: `redirect_uri?code=…&state=…`.
    pub fn location(&self) -> String {
        let sep = if self.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}code={}&state={}",
            self.redirect_uri,
            encode(&self.code),
            encode(&self.state)
        )
    }
}

/// `base64url-no-pad(SHA-256(verifier))`: the S256 PKCE challenge for `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Why a token request failed; each provider renders it in its own shape.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// A required parameter is missing or malformed.
    InvalidRequest(String),
    /// The client id is not the server's.
    InvalidClient(String),
    /// The authorization code or verifier doesn't check out.
    InvalidGrant(String),
    /// A refresh token the server never issued.
    UnknownRefresh,
    /// A refresh token that was already exchanged once.
    ReusedRefresh,
    /// A refresh token revoked by [`Issuer::fail_next_refresh`].
    RevokedRefresh,
}

/// What an access token is worth right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccessCheck {
    /// Issued and not expired: the account's label.
    Valid(String),
    /// Issued but expired.
    Expired(String),
    /// Never issued by this server.
    Unknown,
}

impl AccessCheck {
    pub(crate) fn label(&self) -> Option<&str> {
        match self {
            Self::Valid(label) | Self::Expired(label) => Some(label),
            Self::Unknown => None,
        }
    }
}

/// How an inference endpoint treats a request, decided from its credentials before scripts.
pub(crate) enum Gate {
    /// Not an OAuth request: the ordinary per-key pipeline.
    ApiKey,
    /// A valid OAuth request for account `label`: scripts are looked up by the label and the
    /// answer carries `headers` (the account's limit headers).
    Account {
        label: String,
        headers: Vec<(&'static str, String)>,
    },
    /// Answer this without consulting scripts (bad/expired token, account over its limit).
    /// `label` is the token's account if known, for the recording.
    Reject {
        label: Option<String>,
        answer: Answer,
    },
}

impl Gate {
    pub(crate) fn label(&self) -> Option<&str> {
        match self {
            Self::ApiKey => None,
            Self::Account { label, .. } => Some(label),
            Self::Reject { label, .. } => label.as_deref(),
        }
    }
}

struct PendingCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    state: String,
    label: String,
    scope: String,
    used: bool,
}

struct AccessGrant {
    label: String,
    expires_at: SystemTime,
}

struct RefreshGrant {
    label: String,
    scope: String,
    used: bool,
    revoked: bool,
}

struct Inner {
    client_id: String,
    /// Exact redirect URIs allowed; `None` applies the provider's own rules.
    redirect_uris: Option<Vec<String>>,
    expires_in: Duration,
    token_delay: Duration,
    fail_next_refresh: bool,
    login: String,
    plans: HashMap<String, String>,
    accounts: HashMap<String, OAuthAccount>,
    codes: HashMap<String, PendingCode>,
    last_code: Option<IssuedCode>,
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, RefreshGrant>,
    next: u64,
}

/// One fake authorization server's state.
pub(crate) struct Issuer {
    flavor: Flavor,
    /// Mixed into token ids so two fakes in one test process never issue equal tokens.
    nonce: u128,
    inner: Mutex<Inner>,
    code_exchanges: AtomicUsize,
    refreshes: AtomicUsize,
}

impl Issuer {
    pub(crate) fn new(flavor: Flavor, client_id: &str, expires_in: Duration) -> Self {
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            flavor,
            nonce,
            inner: Mutex::new(Inner {
                client_id: client_id.to_owned(),
                redirect_uris: None,
                expires_in,
                token_delay: Duration::ZERO,
                fail_next_refresh: false,
                login: DEFAULT_LOGIN.to_owned(),
                plans: HashMap::new(),
                accounts: HashMap::new(),
                codes: HashMap::new(),
                last_code: None,
                access: HashMap::new(),
                refresh: HashMap::new(),
                next: 0,
            }),
            code_exchanges: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect(POISONED)
    }

    // ---- test-facing configuration and inspection ----

    pub(crate) fn client_id(&self) -> String {
        self.lock().client_id.clone()
    }

    pub(crate) fn set_client_id(&self, id: &str) {
        self.lock().client_id = id.to_owned();
    }

    pub(crate) fn set_redirect_uris(&self, uris: Option<Vec<String>>) {
        self.lock().redirect_uris = uris;
    }

    pub(crate) fn set_expires_in(&self, lifetime: Duration) {
        self.lock().expires_in = lifetime;
    }

    pub(crate) fn expires_in(&self) -> Duration {
        self.lock().expires_in
    }

    pub(crate) fn set_token_delay(&self, delay: Duration) {
        self.lock().token_delay = delay;
    }

    pub(crate) fn token_delay(&self) -> Duration {
        self.lock().token_delay
    }

    pub(crate) fn fail_next_refresh(&self) {
        self.lock().fail_next_refresh = true;
    }

    pub(crate) fn login_as(&self, label: &str) {
        self.lock().login = label.to_owned();
    }

    pub(crate) fn login(&self) -> String {
        self.lock().login.clone()
    }

    pub(crate) fn set_plan(&self, label: &str, plan: &str) {
        let mut inner = self.lock();
        inner.plans.insert(label.to_owned(), plan.to_owned());
        if let Some(account) = inner.accounts.get_mut(label) {
            account.plan = plan.to_owned();
        }
    }

    pub(crate) fn account(&self, label: &str) -> OAuthAccount {
        let mut inner = self.lock();
        account(self.flavor, &mut inner, label).clone()
    }

    pub(crate) fn last_code(&self) -> Option<IssuedCode> {
        self.lock().last_code.clone()
    }

    pub(crate) fn code_exchanges(&self) -> usize {
        self.code_exchanges.load(Ordering::Acquire)
    }

    pub(crate) fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::Acquire)
    }

    /// Counts a token request on arrival, before any delay, so a test sees piled-up calls.
    pub(crate) fn count(&self, grant_type: &str) {
        match grant_type {
            "authorization_code" => self.code_exchanges.fetch_add(1, Ordering::AcqRel),
            "refresh_token" => self.refreshes.fetch_add(1, Ordering::AcqRel),
            _ => 0,
        };
    }

    /// The label of the account any token (access or refresh) this server issued belongs to.
    pub(crate) fn account_of(&self, token: &str) -> Option<String> {
        let inner = self.lock();
        inner
            .access
            .get(token)
            .map(|g| g.label.clone())
            .or_else(|| inner.refresh.get(token).map(|g| g.label.clone()))
    }

    /// Makes every access token of `label` expired now (its refresh tokens stay usable).
    pub(crate) fn expire_access_tokens(&self, label: &str) {
        let mut inner = self.lock();
        for grant in inner.access.values_mut().filter(|g| g.label == label) {
            grant.expires_at = UNIX_EPOCH;
        }
    }

    // ---- the protocol ----

    /// Validates an authorization request and issues a code for the current login.
    pub(crate) fn authorize(&self, q: &Params, origin: &str) -> Result<IssuedCode, String> {
        let get = |name: &str| q.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let mut inner = self.lock();
        let client_id = get("client_id").ok_or("missing client_id")?;
        if client_id != inner.client_id {
            return Err(format!("unknown client_id {client_id:?}"));
        }
        if get("response_type") != Some("code") {
            return Err("response_type must be \"code\"".into());
        }
        let redirect_uri = get("redirect_uri").ok_or("missing redirect_uri")?;
        if !redirect_allowed(self.flavor, &inner, redirect_uri, origin) {
            return Err(format!(
                "redirect_uri {redirect_uri:?} is not registered for this client"
            ));
        }
        let scope = get("scope").ok_or("missing scope")?;
        check_scope(self.flavor, scope)?;
        let challenge = get("code_challenge").ok_or("missing code_challenge")?;
        if get("code_challenge_method") != Some("S256") {
            return Err("code_challenge_method must be \"S256\"".into());
        }
        if !is_s256_challenge(challenge) {
            return Err("code_challenge must be 43 base64url characters (S256)".into());
        }
        let state = get("state").ok_or("missing state")?;
        let label = inner.login.clone();
        let pending = PendingCode {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            challenge: challenge.to_owned(),
            state: state.to_owned(),
            label,
            scope: scope.to_owned(),
            used: false,
        };
        Ok(self.store_code(&mut inner, pending))
    }

    /// Issues a code for `label` without a browser (the device flow's approval).
    pub(crate) fn issue_code(
        &self,
        label: &str,
        redirect_uri: &str,
        challenge: &str,
        scope: &str,
    ) -> IssuedCode {
        let mut inner = self.lock();
        let pending = PendingCode {
            client_id: inner.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            challenge: challenge.to_owned(),
            state: String::new(),
            label: label.to_owned(),
            scope: scope.to_owned(),
            used: false,
        };
        self.store_code(&mut inner, pending)
    }

    fn store_code(&self, inner: &mut Inner, pending: PendingCode) -> IssuedCode {
        inner.next += 1;
        let code = format!("fake_ac_{}", self.tag(inner.next));
        let issued = IssuedCode {
            code: code.clone(),
            state: pending.state.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            label: pending.label.clone(),
        };
        inner.codes.insert(code, pending);
        inner.last_code = Some(issued.clone());
        issued
    }

    /// `grant_type=authorization_code`. Claude's token request also carries `state`, which
    /// must match; OpenAI's doesn't. A failed verifier doesn't burn the code.
    pub(crate) fn exchange(&self, p: &Params) -> Result<IssuedTokens, TokenError> {
        let code = required(p, "code")?;
        let redirect_uri = required(p, "redirect_uri")?;
        let client_id = required(p, "client_id")?;
        let verifier = required(p, "code_verifier")?;
        let state = match self.flavor {
            Flavor::Claude => Some(required(p, "state")?),
            Flavor::OpenAi => None,
        };
        let mut inner = self.lock();
        if client_id != inner.client_id {
            return Err(TokenError::InvalidClient(format!(
                "unknown client_id {client_id:?}"
            )));
        }
        let pending = inner
            .codes
            .get_mut(code)
            .ok_or_else(|| TokenError::InvalidGrant("invalid authorization code".into()))?;
        if pending.used {
            return Err(TokenError::InvalidGrant(
                "authorization code already used".into(),
            ));
        }
        if pending.client_id != client_id {
            return Err(TokenError::InvalidGrant(
                "code was issued to another client".into(),
            ));
        }
        if pending.redirect_uri != redirect_uri {
            return Err(TokenError::InvalidGrant(
                "redirect_uri does not match the authorization request".into(),
            ));
        }
        if let Some(state) = state
            && state != pending.state
        {
            return Err(TokenError::InvalidGrant(
                "state does not match the authorization request".into(),
            ));
        }
        if !is_verifier(verifier) {
            return Err(TokenError::InvalidRequest(
                "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]".into(),
            ));
        }
        if pkce_challenge(verifier) != pending.challenge {
            return Err(TokenError::InvalidGrant(
                "code_verifier does not match the code_challenge".into(),
            ));
        }
        pending.used = true;
        let label = pending.label.clone();
        let scope = pending.scope.clone();
        let lifetime = inner.expires_in;
        Ok(self.mint(&mut inner, &label, &scope, lifetime))
    }

    /// `grant_type=refresh_token`: single use; the old refresh token is dead afterwards.
    pub(crate) fn refresh(&self, p: &Params) -> Result<IssuedTokens, TokenError> {
        let token = required(p, "refresh_token")?;
        let client_id = required(p, "client_id")?;
        let mut inner = self.lock();
        if client_id != inner.client_id {
            return Err(TokenError::InvalidClient(format!(
                "unknown client_id {client_id:?}"
            )));
        }
        let fail = inner.fail_next_refresh;
        let grant = inner
            .refresh
            .get_mut(token)
            .ok_or(TokenError::UnknownRefresh)?;
        if grant.revoked {
            return Err(TokenError::RevokedRefresh);
        }
        if grant.used {
            return Err(TokenError::ReusedRefresh);
        }
        if fail {
            grant.revoked = true;
            inner.fail_next_refresh = false;
            return Err(TokenError::RevokedRefresh);
        }
        grant.used = true;
        let label = grant.label.clone();
        let scope = grant.scope.clone();
        let lifetime = inner.expires_in;
        Ok(self.mint(&mut inner, &label, &scope, lifetime))
    }

    /// Registers a fresh token pair for `label` as if it had logged in, with an access token
    /// valid for `lifetime` (zero: already expired).
    pub(crate) fn issue(&self, label: &str, lifetime: Duration) -> IssuedTokens {
        let scope = match self.flavor {
            Flavor::Claude => "user:inference user:profile user:sessions:claude_code",
            Flavor::OpenAi => "openid profile email offline_access",
        };
        let mut inner = self.lock();
        self.mint(&mut inner, label, scope, lifetime)
    }

    pub(crate) fn check_access(&self, token: &str) -> AccessCheck {
        match self.lock().access.get(token) {
            None => AccessCheck::Unknown,
            Some(g) if SystemTime::now() < g.expires_at => AccessCheck::Valid(g.label.clone()),
            Some(g) => AccessCheck::Expired(g.label.clone()),
        }
    }

    /// 16 hex digits unique to this server and `n`.
    fn tag(&self, n: u64) -> String {
        let digest = Sha256::digest(format!("{}/{n}", self.nonce).as_bytes());
        format!("{n:04}{}", hex(&digest[..6]))
    }

    fn mint(
        &self,
        inner: &mut Inner,
        label: &str,
        scope: &str,
        lifetime: Duration,
    ) -> IssuedTokens {
        inner.next += 1;
        let tag = self.tag(inner.next);
        let account = account(self.flavor, inner, label).clone();
        let now = SystemTime::now();
        let expires_at = now + lifetime;
        let (access_token, refresh_token, id_token) = match self.flavor {
            Flavor::Claude => (
                format!("{CLAUDE_ACCESS_PREFIX}fake-{tag}"),
                format!("sk-ant-ort01-fake-{tag}"),
                None,
            ),
            Flavor::OpenAi => (
                openai_access_token(&account, now, expires_at, &tag),
                format!("rt_fake_{tag}"),
                Some(openai_id_token(&account, &inner.client_id, now)),
            ),
        };
        inner.access.insert(
            access_token.clone(),
            AccessGrant {
                label: label.to_owned(),
                expires_at,
            },
        );
        inner.refresh.insert(
            refresh_token.clone(),
            RefreshGrant {
                label: label.to_owned(),
                scope: scope.to_owned(),
                used: false,
                revoked: false,
            },
        );
        IssuedTokens {
            label: label.to_owned(),
            account_id: account.account_id,
            access_token,
            refresh_token,
            id_token,
            expires_in: lifetime.as_secs(),
            expires_at_ms: unix_ms(expires_at),
            scope: scope.to_owned(),
        }
    }
}

/// Prefix of Claude OAuth access tokens.
const CLAUDE_ACCESS_PREFIX: &str = "sk-ant-oat01-";

/// The account for `label`, created with ids derived from the label on first mention.
fn account<'a>(flavor: Flavor, inner: &'a mut Inner, label: &str) -> &'a OAuthAccount {
    let plan = inner.plans.get(label).cloned();
    inner.accounts.entry(label.to_owned()).or_insert_with(|| {
        let email = format!("{label}@example.com");
        match flavor {
            Flavor::Claude => OAuthAccount {
                label: label.to_owned(),
                account_id: uuid_from(&format!("claude-account/{label}")),
                email,
                organization_id: uuid_from(&format!("claude-org/{label}")),
                organization_name: format!("{label}'s Organization"),
                plan: plan.unwrap_or_else(|| "max".into()),
            },
            Flavor::OpenAi => OAuthAccount {
                label: label.to_owned(),
                account_id: uuid_from(&format!("chatgpt-account/{label}")),
                email,
                organization_id: format!(
                    "org-{}",
                    hex(&Sha256::digest(format!("openai-org/{label}").as_bytes())[..12])
                ),
                organization_name: "Personal".into(),
                plan: plan.unwrap_or_else(|| "pro".into()),
            },
        }
    })
}

fn redirect_allowed(flavor: Flavor, inner: &Inner, uri: &str, origin: &str) -> bool {
    if let Some(allowed) = &inner.redirect_uris {
        return allowed.iter().any(|a| a == uri);
    }
    match flavor {
        // Claude Code listens on a random loopback port; the manual flow lands on the
        // platform's code page (real or this fake's own).
        Flavor::Claude => {
            loopback_callback(uri, "/callback")
                || uri == format!("{origin}/oauth/code/callback")
                || uri == "https://platform.claude.com/oauth/code/callback"
                || uri == "https://console.anthropic.com/oauth/code/callback"
        }
        // OpenAI registered exactly Codex's port, plus the device flow's callback.
        Flavor::OpenAi => {
            uri == "http://localhost:1455/auth/callback"
                || uri == format!("{origin}/deviceauth/callback")
        }
    }
}

/// `http://localhost:<port><path>` or `http://127.0.0.1:<port><path>`.
fn loopback_callback(uri: &str, path: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("http://localhost:")
        .or_else(|| uri.strip_prefix("http://127.0.0.1:"))
    else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && &rest[digits..] == path
}

fn check_scope(flavor: Flavor, scope: &str) -> Result<(), String> {
    let has = |s: &str| scope.split_whitespace().any(|x| x == s);
    let needed: &[&str] = match flavor {
        Flavor::Claude => &["user:inference"],
        Flavor::OpenAi => &["openid", "profile", "email", "offline_access"],
    };
    match needed.iter().find(|s| !has(s)) {
        Some(missing) => Err(format!("scope must include {missing}")),
        None => Ok(()),
    }
}

fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636: 43–128 unreserved characters.
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, TokenError> {
    p.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| TokenError::InvalidRequest(format!("missing {name}")))
}

// ---- OpenAI JWTs ----

/// `header.payload.signature`, base64url without padding; the signature is a dummy, as the
/// fake's clients only decode payloads (real clients don't verify the id token either).
pub(crate) fn jwt(payload: &Value) -> String {
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "fake" });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode("fake-signature"),
    )
}

fn auth_claim(account: &OAuthAccount) -> Value {
    json!({
        "chatgpt_account_id": account.account_id,
        "chatgpt_plan_type": account.plan,
        "chatgpt_user_id": user_id(account),
        "user_id": user_id(account),
    })
}

fn user_id(account: &OAuthAccount) -> String {
    format!(
        "user-{}",
        hex(&Sha256::digest(format!("openai-user/{}", account.label).as_bytes())[..12])
    )
}

fn openai_access_token(
    account: &OAuthAccount,
    now: SystemTime,
    expires_at: SystemTime,
    tag: &str,
) -> String {
    jwt(&json!({
        "iss": "https://auth.openai.com",
        "aud": ["https://api.openai.com/v1"],
        "sub": format!("auth0|{}", user_id(account)),
        "iat": unix_secs(now),
        "nbf": unix_secs(now),
        "exp": unix_secs(expires_at),
        "jti": tag,
        "scp": ["openid", "profile", "email", "offline_access"],
        "https://api.openai.com/auth": auth_claim(account),
        "https://api.openai.com/profile": { "email": account.email, "email_verified": true },
    }))
}

fn openai_id_token(account: &OAuthAccount, client_id: &str, now: SystemTime) -> String {
    let mut auth = auth_claim(account);
    auth["organizations"] = json!([{
        "id": account.organization_id,
        "is_default": true,
        "role": "owner",
        "title": account.organization_name,
    }]);
    jwt(&json!({
        "iss": "https://auth.openai.com",
        "aud": [client_id],
        "sub": format!("auth0|{}", user_id(account)),
        "iat": unix_secs(now),
        "exp": unix_secs(now) + 3600,
        "auth_time": unix_secs(now),
        "email": account.email,
        "email_verified": true,
        "https://api.openai.com/auth": auth,
    }))
}

// ---- small helpers ----

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A version-4-shaped UUID derived from `seed`.
fn uuid_from(seed: &str) -> String {
    let h = hex(&Sha256::digest(seed.as_bytes())[..16]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether wall-clock time has reached Unix second `t`.
pub(crate) fn reached(t: u64) -> bool {
    SystemTime::now() >= UNIX_EPOCH + Duration::from_secs(t)
}

/// Whole seconds from now until Unix second `t`, rounded up (0 once reached).
pub(crate) fn secs_until(t: u64) -> u64 {
    (UNIX_EPOCH + Duration::from_secs(t))
        .duration_since(SystemTime::now())
        .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// `YYYY-MM-DDTHH:MM:SS+00:00` for Unix second `t` (the offset form Anthropic sends).
pub(crate) fn rfc3339(t: u64) -> String {
    let days = t / 86_400;
    let secs = t % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (non-negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A JSON object's values as strings (non-string values in their JSON text), or `None` if
/// the body isn't a JSON object.
pub(crate) fn json_params(body: &[u8]) -> Option<Params> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    Some(
        map.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
    )
}

pub(crate) fn form_params(body: &[u8]) -> Params {
    form_urlencoded::parse(body).into_owned().collect()
}

/// `http://<Host>`: the origin the client used to reach the fake, for redirect URIs that
/// point back at it (Claude's manual code page, OpenAI's device callback).
pub(crate) fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Whether a comma-separated, possibly repeated header holds `flag`.
pub(crate) fn header_has(headers: &HeaderMap, name: &str, flag: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == flag)
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

// ---- routes shared by both servers ----

/// `GET /oauth/authorize` (Claude's `claude.ai` and OpenAI's `auth.openai.com` use the same
/// path) and Claude's manual code page.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/code/callback", get(code_page))
}

/// Picks the server by `client_id` (each knows its own), falling back to Claude for
/// Claude-looking requests (`code=true` or `user:` scopes) so their errors read right.
async fn authorize(State(shared): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    let client = q.get("client_id").map(String::as_str).unwrap_or("");
    let claude = &shared.claude.issuer;
    let openai = &shared.openai_auth.issuer;
    let claude_like = q.contains_key("code")
        || q.get("scope")
            .is_some_and(|s| s.split_whitespace().any(|s| s.starts_with("user:")));
    let issuer = if client == openai.client_id() {
        openai
    } else if client == claude.client_id() || claude_like {
        claude
    } else {
        openai
    };
    match issuer.authorize(&q, &origin(&headers)) {
        Ok(code) => {
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(location) = HeaderValue::from_str(&code.location()) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(message) => json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_request", "error_description": message }),
        ),
    }
}

/// What `platform.claude.com/oauth/code/callback` shows: the `code#state` to paste.
async fn code_page(uri: Uri) -> Response {
    let q = query(&uri);
    let code = q.get("code").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    format!("{code}#{state}").into_response()
}

fn query(uri: &Uri) -> Params {
    Query::<Params>::try_from_uri(uri)
        .map(|Query(q)| q)
        .unwrap_or_default()
}

/// A JSON [`Answer`] as a response, for the endpoints outside the scripted pipeline.
pub(crate) fn answer_response(answer: Answer) -> Response {
    match answer {
        Answer::Json {
            status,
            headers,
            body,
        } => {
            let mut response = json_response(status, body);
            for (name, value) in headers {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().append(name, value);
                }
            }
            response
        }
        Answer::Stream { .. } => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
