//! The config file: its typed model, parsing, and validation. Errors carry the file, line and
//! column of the offending value so that a broken edit can be fixed at once.
//!
//! Config holds ids and metadata only. Secrets live in the OS keyring or Keyway's encrypted
//! file ([`crate::SecretStore`]).

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use crate::account::AccountKind;
use crate::client_key::{self, Limits as ClientKeyLimits};
use crate::limits::AccountLimits;
use crate::policy::PolicyKey;
use crate::prices::{self, Rates};
use crate::provider::{self, AuthHeader, Format, Preset, ProviderKind};
use crate::session::{Affinity, SessionPolicy, Spread};
use crate::strategy::Strategy;
use crate::target::{FallbackStep, Target};

/// Most steps in one policy's fallback chain.
pub const MAX_FALLBACK_STEPS: usize = 8;
/// Most aliases.
pub const MAX_ALIASES: usize = 1_000;

/// The range `session_idle_secs` must be in: a minute to a week.
const SESSION_IDLE_SECS: std::ops::RangeInclusive<u64> = 60..=7 * 24 * 3600;

/// The embedded default, used when no config file exists and written out on the first save.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.toml");

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the proxy and the management API listen.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// A non-loopback `listen` is refused unless this is true.
    #[serde(default)]
    pub allow_non_loopback: bool,
    /// `tracing` filter for logs, e.g. `info` or `keyway=debug`. `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Days of per-request usage history kept in the data dir.
    #[serde(default = "default_retention")]
    pub usage_retention_days: u32,
    /// Where secrets live: the OS keyring or Keyway's encrypted file (see
    /// [`crate::secrets::choose`] for the default). Read at start.
    #[serde(default)]
    pub secrets: Option<crate::secrets::StoreKind>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub providers: IndexMap<String, ProviderConfig>,
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    #[serde(default)]
    pub policies: IndexMap<String, PolicyConfig>,
    /// Model glob → where requests for matching models go instead (first match wins).
    #[serde(default)]
    pub aliases: IndexMap<String, Target>,
    /// Named client keys (the default key needs no entry; see [`crate::client_key`]).
    #[serde(default)]
    pub client_keys: Vec<ClientKeyConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted from a client, in MiB.
    pub max_body_mib: u32,
    /// How long to wait for an upstream's response headers before trying another account.
    pub first_byte_timeout_secs: u64,
    /// TCP + TLS connect timeout to an upstream.
    pub connect_timeout_secs: u64,
    /// Most accounts one request may try before giving up.
    pub max_attempts: u32,
    /// On shutdown, how long in-flight requests may take to finish.
    pub drain_secs: u64,
    /// How often to ask providers for the quota of idle subscription accounts (0 = never).
    pub quota_poll_secs: u64,
    /// Longest a client may take to send a request's headers: from the connection's opening,
    /// or on a kept-alive connection from the request's first byte.
    pub client_header_timeout_secs: u64,
    /// Longest a client may pause between two pieces of a request body (then 408).
    pub client_body_timeout_secs: u64,
    /// A kept-alive client connection that sends no new request for this long is closed.
    pub client_idle_timeout_secs: u64,
    /// Longest an upstream may pause between two pieces of its response body. A stream that
    /// keeps sending is never cut; a silent one ends with its surface's error event.
    pub upstream_idle_timeout_secs: u64,
    /// Most client connections open at once; more are refused at once, never queued. Also at
    /// most half the process's open-file limit (each connection may need an upstream one).
    pub max_connections: u32,
}

/// The range every `*_timeout_secs` limit must be in: a second to a day.
const TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=86_400;
/// The range of `max_connections`.
const MAX_CONNECTIONS: std::ops::RangeInclusive<u32> = 1..=1_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_mib: 32,
            first_byte_timeout_secs: 300,
            connect_timeout_secs: 10,
            max_attempts: 4,
            drain_secs: 10,
            quota_poll_secs: 600,
            client_header_timeout_secs: 30,
            client_body_timeout_secs: 60,
            client_idle_timeout_secs: 75,
            upstream_idle_timeout_secs: 300,
            max_connections: 4096,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// For built-in providers the origin (`scheme://host[:port]`); for presets and the user's
    /// own providers the base URL as the provider documents it for its format's SDKs (e.g.
    /// `https://api.deepseek.com/anthropic`, `https://openrouter.ai/api/v1`).
    pub base_url: Option<String>,
    /// The wire format a provider of the user's own speaks [default: openai]. Built-ins and
    /// presets have theirs.
    pub format: Option<Format>,
    /// Where the key goes [default: the format's own header].
    pub auth: Option<AuthHeader>,
    /// Family name → model globs. Replaces a built-in family of the same name.
    #[serde(default)]
    pub families: IndexMap<String, Vec<String>>,
    /// Subscription login endpoints, overriding the provider's defaults (tests point them at
    /// local fakes).
    #[serde(default)]
    pub oauth: Option<OAuthConfig>,
    /// The user confirmed the provider's terms risk for subscription logins.
    #[serde(default)]
    pub oauth_terms_accepted: bool,
    /// How long the provider keeps an unused prompt cache: a session idle longer has a cold
    /// cache, so moving it to a better placed account costs nothing [default: 300, the
    /// providers' default cache lifetime].
    pub cache_ttl_secs: Option<u64>,
    /// Model glob → what its tokens cost (USD per million tokens). The first glob matching a
    /// model, in this order, wins over the built-in price table ([`crate::prices`]); a
    /// provider that is not built in has only these prices.
    #[serde(default)]
    pub prices: IndexMap<String, Rates>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub device_url: Option<String>,
    pub backend_url: Option<String>,
    /// Loopback port of the login callback.
    pub redirect_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub id: String,
    pub provider: String,
    pub label: String,
    #[serde(default)]
    pub kind: AccountKind,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// What the account's tier allows: requests in flight, requests and tokens per minute.
    #[serde(default)]
    pub limits: AccountLimits,
}

/// A client key's config entry: its id, label and limits. Its secret is in the keyring.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKeyConfig {
    pub id: String,
    pub label: String,
    /// When the key was created, Unix milliseconds (0 when unknown).
    #[serde(default)]
    pub created_ms: u64,
    #[serde(default)]
    pub limits: ClientKeyLimits,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub strategy: Strategy,
    /// Member accounts in order; empty means every enabled account of the provider.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Per-account weights for this policy; an account not named uses its own weight.
    #[serde(default)]
    pub weights: IndexMap<String, u32>,
    /// `session` (a conversation stays on its account) or `request` (every request picked on
    /// its own).
    #[serde(default)]
    pub spread: Spread,
    /// Where session identities come from: `client` (what clients send) or `prefix` (also a
    /// hash of the system prompt and first user turn).
    #[serde(default)]
    pub affinity: Affinity,
    /// A session's binding is forgotten after this long without a request.
    #[serde(default = "default_session_idle")]
    pub session_idle_secs: u64,
    /// Where requests go, in order, when this policy's accounts cannot serve them.
    #[serde(default)]
    pub fallback: Vec<FallbackStep>,
}

impl PolicyConfig {
    /// A policy with `strategy` and every other setting at its default.
    pub fn new(strategy: Strategy) -> PolicyConfig {
        PolicyConfig {
            strategy,
            accounts: Vec::new(),
            weights: IndexMap::new(),
            spread: Spread::default(),
            affinity: Affinity::default(),
            session_idle_secs: default_session_idle(),
            fallback: Vec::new(),
        }
    }

    pub fn sessions(&self) -> SessionPolicy {
        SessionPolicy {
            spread: self.spread,
            affinity: self.affinity,
            idle_ms: self.session_idle_secs.saturating_mul(1000),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8765))
}
fn default_retention() -> u32 {
    90
}
fn default_log_level() -> String {
    "info".to_owned()
}
fn default_session_idle() -> u64 {
    crate::session::DEFAULT_IDLE_SECS
}
fn default_weight() -> u32 {
    1
}
fn default_true() -> bool {
    true
}

/// A listen address beyond loopback without `allow_non_loopback = true`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "refusing to listen on {0}: it is not a loopback address, so other machines could use your accounts; \
     listen on 127.0.0.1, or set `allow_non_loopback = true` in the config if you really mean it"
)]
pub struct NotLoopback(pub SocketAddr);

/// A config that could not be used, with where and why.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigError {
    pub path: Option<PathBuf>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self
            .path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<config>".to_owned());
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{path}:{l}:{c}: {}", self.message),
            _ => write!(f, "{path}: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// One step of a path into the TOML document, used to point at the value a check rejects.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

impl Config {
    /// Parse and validate `text`. `path` only labels errors.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| line_col(text, s.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            ConfigError {
                path: path.map(Path::to_path_buf),
                line,
                column,
                message: e.message().trim_end().to_owned(),
            }
        })?;
        config.validate().map_err(|(segs, message)| {
            let (line, column) =
                locate(text, &segs).map_or((None, None), |(l, c)| (Some(l), Some(c)));
            ConfigError {
                path: path.map(Path::to_path_buf),
                line,
                column,
                message,
            }
        })?;
        Ok(config)
    }

    /// Read and parse the file at `path`, or the embedded default when it does not exist.
    pub fn load(path: &Path) -> Result<(Config, String), ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DEFAULT_CONFIG.to_owned(),
            Err(e) => {
                return Err(ConfigError {
                    path: Some(path.to_path_buf()),
                    line: None,
                    column: None,
                    message: format!(
                        "cannot read the config file: {e}; check its permissions or pass another with --config"
                    ),
                });
            }
        };
        let config = Config::parse(&text, Some(path))?;
        Ok((config, text))
    }

    /// The kind of provider `id`: a built-in, or custom (a preset, or defined in the config).
    pub fn provider_kind(&self, id: &str) -> Option<ProviderKind> {
        match provider::built_in(id) {
            Some(b) => Some(b.kind),
            None => (self.providers.contains_key(id) || provider::preset(id).is_some())
                .then_some(ProviderKind::Custom),
        }
    }

    /// The preset provider `id` is, if it is one. A `[providers.<id>]` table that gives both a
    /// base URL and families defines a provider of the user's own under that id (a config
    /// written before presets existed keeps meaning what it meant); one that gives only some
    /// fields adjusts the preset.
    pub fn preset(&self, id: &str) -> Option<&'static Preset> {
        let own = self
            .providers
            .get(id)
            .is_some_and(|p| p.base_url.is_some() && !p.families.is_empty());
        provider::preset(id).filter(|_| !own)
    }

    /// The wire format provider `id` speaks.
    pub fn provider_format(&self, id: &str) -> Option<Format> {
        if let Some(b) = provider::built_in(id) {
            return Some(b.format());
        }
        let user = self.providers.get(id).and_then(|p| p.format);
        let preset = self.preset(id).map(|p| p.format);
        match (user, preset) {
            (Some(f), _) | (None, Some(f)) => Some(f),
            // A provider of the user's own without a format is OpenAI-compatible, as they
            // were before formats existed.
            (None, None) => self.providers.contains_key(id).then_some(Format::OpenAi),
        }
    }

    /// Where provider `id`'s key goes.
    pub fn provider_auth(&self, id: &str) -> Option<AuthHeader> {
        let format = self.provider_format(id)?;
        let user = self.providers.get(id).and_then(|p| p.auth);
        let preset = self.preset(id).map(|p| p.auth);
        Some(user.or(preset).unwrap_or(format.default_auth()))
    }

    /// Every provider id in use: the built-ins, the config's own, then the presets the config
    /// mentions (an account, a policy, an alias or a fallback step), each once.
    pub fn provider_ids(&self) -> impl Iterator<Item = &str> {
        let mut ids: Vec<&str> = provider::BUILT_INS.iter().map(|b| b.id).collect();
        let mentioned = self
            .providers
            .keys()
            .map(String::as_str)
            .chain(self.accounts.iter().map(|a| a.provider.as_str()))
            .chain(
                self.policies
                    .keys()
                    .map(|k| k.split_once('/').map_or(k.as_str(), |(p, _)| p)),
            )
            .chain(self.aliases.values().map(|t| t.provider.as_str()))
            .chain(
                self.policies
                    .values()
                    .flat_map(|p| p.fallback.iter().map(|s| s.to.provider.as_str())),
            );
        for id in mentioned {
            let known = self.providers.contains_key(id) || provider::preset(id).is_some();
            if known && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.into_iter()
    }

    pub fn account(&self, id: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.id == id)
    }

    pub fn client_key(&self, id: &str) -> Option<&ClientKeyConfig> {
        self.client_keys.iter().find(|k| k.id == id)
    }

    /// Whether `family` exists for `provider` (built-in or configured).
    pub fn has_family(&self, provider: &str, family: &str) -> bool {
        let configured = self
            .providers
            .get(provider)
            .is_some_and(|p| p.families.contains_key(family));
        let built_in = provider::built_in(provider)
            .is_some_and(|b| b.families.iter().any(|(name, _)| *name == family));
        let preset = self
            .preset(provider)
            .is_some_and(|p| p.families.contains_key(family));
        configured || built_in || preset
    }

    /// Names of the families of `provider`, for error messages.
    pub fn family_names(&self, provider: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .providers
            .get(provider)
            .map(|p| p.families.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(b) = provider::built_in(provider) {
            for (name, _) in b.families {
                if !names.iter().any(|n| n == name) {
                    names.push((*name).to_owned());
                }
            }
        }
        if let Some(p) = self.preset(provider) {
            for name in p.families.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// A non-loopback listen address is a deliberate choice, not an accident.
    pub fn check_listen(&self, listen: SocketAddr) -> Result<(), NotLoopback> {
        if listen.ip().is_loopback() || self.allow_non_loopback {
            Ok(())
        } else {
            Err(NotLoopback(listen))
        }
    }

    fn validate(&self) -> Result<(), (Vec<Seg>, String)> {
        self.check_listen(self.listen)
            .map_err(|e| (vec![key("listen")], e.to_string()))?;
        if !(1..=3650).contains(&self.usage_retention_days) {
            return Err((
                vec![key("usage_retention_days")],
                "usage_retention_days must be between 1 and 3650".to_owned(),
            ));
        }
        if self.limits.max_attempts == 0 {
            return Err((
                vec![key("limits"), key("max_attempts")],
                "max_attempts must be at least 1".to_owned(),
            ));
        }
        let l = &self.limits;
        for (name, secs) in [
            ("first_byte_timeout_secs", l.first_byte_timeout_secs),
            ("connect_timeout_secs", l.connect_timeout_secs),
            ("client_header_timeout_secs", l.client_header_timeout_secs),
            ("client_body_timeout_secs", l.client_body_timeout_secs),
            ("client_idle_timeout_secs", l.client_idle_timeout_secs),
            ("upstream_idle_timeout_secs", l.upstream_idle_timeout_secs),
        ] {
            if !TIMEOUT_SECS.contains(&secs) {
                return Err((
                    vec![key("limits"), key(name)],
                    format!(
                        "{name} must be between {} and {} seconds",
                        TIMEOUT_SECS.start(),
                        TIMEOUT_SECS.end()
                    ),
                ));
            }
        }
        if !MAX_CONNECTIONS.contains(&l.max_connections) {
            return Err((
                vec![key("limits"), key("max_connections")],
                format!(
                    "max_connections must be between {} and {}",
                    MAX_CONNECTIONS.start(),
                    MAX_CONNECTIONS.end()
                ),
            ));
        }
        for (id, p) in &self.providers {
            let at = |field: &str| vec![key("providers"), key(id), key(field)];
            if !provider::is_valid_id(id) {
                return Err((
                    vec![key("providers"), key(id)],
                    format!(
                        "provider id `{id}` may use only lowercase letters, digits, `-` and `_`"
                    ),
                ));
            }
            let built_in = provider::built_in(id).is_some();
            let preset = self.preset(id).is_some();
            if built_in && (p.format.is_some() || p.auth.is_some()) {
                return Err((
                    vec![key("providers"), key(id)],
                    format!(
                        "`{id}` is built in: its format and auth are fixed; to reach another endpoint of the same format, define a provider of your own (e.g. `[providers.my-{id}]` with format, base_url and families)"
                    ),
                ));
            }
            match &p.base_url {
                Some(url) => check_base_url(url, built_in).map_err(|m| (at("base_url"), m))?,
                None if !built_in && !preset => {
                    return Err((
                        vec![key("providers"), key(id)],
                        format!(
                            "provider `{id}` is not built in, so it needs a `base_url` as the provider documents it (e.g. \"https://openrouter.ai/api/v1\" for format openai)"
                        ),
                    ));
                }
                None => {}
            }
            if !built_in && !preset && p.families.is_empty() {
                return Err((
                    vec![key("providers"), key(id)],
                    format!(
                        "provider `{id}` needs at least one family so requests can reach it, e.g. \
                         `[providers.{id}.families]` `default = [\"*\"]`"
                    ),
                ));
            }
            if p.oauth.is_some() || p.oauth_terms_accepted {
                let kind = self.provider_kind(id).unwrap_or(ProviderKind::Custom);
                match provider::oauth_defaults(kind) {
                    None => {
                        return Err((
                            at("oauth"),
                            format!(
                                "provider `{id}` has no subscription login; only anthropic and openai do"
                            ),
                        ));
                    }
                    Some(d) => {
                        let o = p.oauth.clone().unwrap_or_default();
                        if d.device_url.is_none()
                            && (o.device_url.is_some() || o.backend_url.is_some())
                        {
                            return Err((
                                at("oauth"),
                                format!(
                                    "provider `{id}` has no device login or subscription backend to configure"
                                ),
                            ));
                        }
                        for url in [
                            &o.authorize_url,
                            &o.token_url,
                            &o.device_url,
                            &o.backend_url,
                        ]
                        .into_iter()
                        .flatten()
                        {
                            check_base_url(url, false).map_err(|m| (at("oauth"), m))?;
                        }
                    }
                }
            }
            if p.cache_ttl_secs.is_some_and(|t| !(1..=86_400).contains(&t)) {
                return Err((
                    at("cache_ttl_secs"),
                    "cache_ttl_secs must be between 1 and 86400 (a day)".to_owned(),
                ));
            }
            check_prices(id, &p.prices)?;
            for (name, globs) in &p.families {
                if name.is_empty() || name.contains('/') || globs.is_empty() {
                    return Err((
                        vec![key("providers"), key(id), key("families"), key(name)],
                        format!(
                            "family `{name}` needs a name without `/` and at least one model glob"
                        ),
                    ));
                }
            }
        }
        let mut ids = HashSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            let at = |field: &str| vec![key("accounts"), Seg::Index(i), key(field)];
            if a.id.is_empty() || !ids.insert(a.id.as_str()) {
                return Err((
                    at("id"),
                    format!(
                        "account id `{}` is empty or used twice; every account needs its own id",
                        a.id
                    ),
                ));
            }
            if self.provider_kind(&a.provider).is_none() {
                return Err((at("provider"), unknown_provider(self, &a.provider)));
            }
            if a.weight == 0 {
                return Err((
                    at("weight"),
                    "weight must be at least 1 (disable the account to stop using it)".to_owned(),
                ));
            }
            a.limits.check().map_err(|(field, message)| {
                (
                    vec![key("accounts"), Seg::Index(i), key("limits"), key(field)],
                    format!("account `{}`: {message}", a.id),
                )
            })?;
        }
        for (k, policy) in &self.policies {
            let at = |field: &str| vec![key("policies"), key(k), key(field)];
            let pk: PolicyKey = k.parse().map_err(|e: crate::policy::BadPolicyKey| {
                (vec![key("policies"), key(k)], e.to_string())
            })?;
            if self.provider_kind(&pk.provider).is_none() {
                return Err((
                    vec![key("policies"), key(k)],
                    unknown_provider(self, &pk.provider),
                ));
            }
            if let Some(family) = &pk.family
                && !self.has_family(&pk.provider, family)
            {
                return Err((
                    vec![key("policies"), key(k)],
                    format!(
                        "provider `{}` has no family `{family}`; its families are: {}",
                        pk.provider,
                        self.family_names(&pk.provider).join(", ")
                    ),
                ));
            }
            let mut seen = HashSet::new();
            for (j, id) in policy.accounts.iter().enumerate() {
                let here = || vec![key("policies"), key(k), key("accounts"), Seg::Index(j)];
                match self.account(id) {
                    None => {
                        return Err((
                            here(),
                            format!(
                                "policy `{k}` names unknown account `{id}`; see `keyway account list`"
                            ),
                        ));
                    }
                    Some(a) if a.provider != pk.provider => {
                        return Err((
                            here(),
                            format!(
                                "account `{id}` belongs to `{}`, not `{}`",
                                a.provider, pk.provider
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                if !seen.insert(id.as_str()) {
                    return Err((
                        here(),
                        format!("account `{id}` is listed twice in policy `{k}`"),
                    ));
                }
            }
            if !(SESSION_IDLE_SECS.contains(&policy.session_idle_secs)) {
                return Err((
                    at("session_idle_secs"),
                    format!(
                        "session_idle_secs must be between {} and {} (a minute to a week)",
                        SESSION_IDLE_SECS.start(),
                        SESSION_IDLE_SECS.end()
                    ),
                ));
            }
            for (id, w) in &policy.weights {
                let member = if policy.accounts.is_empty() {
                    self.account(id).is_some_and(|a| a.provider == pk.provider)
                } else {
                    policy.accounts.contains(id)
                };
                if !member {
                    return Err((
                        at("weights"),
                        format!("weight given for `{id}`, which is not an account of policy `{k}`"),
                    ));
                }
                if *w == 0 {
                    return Err((
                        at("weights"),
                        format!("weight of `{id}` must be at least 1"),
                    ));
                }
            }
        }
        self.validate_routing()?;
        self.validate_client_keys()
    }

    /// Aliases and fallback chains name pools that exist. They may name a provider of another
    /// wire format: such requests are translated.
    fn validate_routing(&self) -> Result<(), (Vec<Seg>, String)> {
        if self.aliases.len() > MAX_ALIASES {
            return Err((
                vec![key("aliases")],
                format!("at most {MAX_ALIASES} aliases"),
            ));
        }
        for (glob, target) in &self.aliases {
            let at = || vec![key("aliases"), key(glob)];
            if glob.is_empty() || glob.chars().count() > 200 {
                return Err((
                    at(),
                    "an alias needs a model glob of 1 to 200 characters, e.g. \"claude-haiku-*\""
                        .to_owned(),
                ));
            }
            self.check_target(target)
                .map_err(|m| (at(), format!("alias `{glob}`: {m}")))?;
        }
        for (k, policy) in &self.policies {
            let at = || vec![key("policies"), key(k), key("fallback")];
            if policy.fallback.len() > MAX_FALLBACK_STEPS {
                return Err((
                    at(),
                    format!("policy `{k}` has more than {MAX_FALLBACK_STEPS} fallback steps"),
                ));
            }
            for step in &policy.fallback {
                self.check_target(&step.to)
                    .map_err(|m| (at(), format!("policy `{k}`, fallback `{step}`: {m}")))?;
                if step.to.scope() == *k {
                    return Err((
                        at(),
                        format!("policy `{k}` falls back to itself (`{step}`); name another pool"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A target names a known provider and, if any, one of its families.
    fn check_target(&self, target: &Target) -> Result<(), String> {
        if self.provider_kind(&target.provider).is_none() {
            return Err(unknown_provider(self, &target.provider));
        }
        if let Some(family) = &target.family
            && !self.has_family(&target.provider, family)
        {
            return Err(format!(
                "provider `{}` has no family `{family}`; its families are: {}",
                target.provider,
                self.family_names(&target.provider).join(", ")
            ));
        }
        Ok(())
    }

    fn validate_client_keys(&self) -> Result<(), (Vec<Seg>, String)> {
        let named = self
            .client_keys
            .iter()
            .filter(|k| k.id != client_key::DEFAULT_ID)
            .count();
        if named > client_key::MAX_KEYS {
            return Err((
                vec![key("client_keys")],
                format!(
                    "at most {} client keys; revoke the ones no tool uses (`keyway client-key revoke <id>`)",
                    client_key::MAX_KEYS
                ),
            ));
        }
        let mut ids = HashSet::new();
        for (i, k) in self.client_keys.iter().enumerate() {
            let at = |field: &str| vec![key("client_keys"), Seg::Index(i), key(field)];
            let well_formed = !k.id.is_empty()
                && k.id.len() <= 64
                && k.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !well_formed {
                return Err((
                    at("id"),
                    format!(
                        "client key id `{}` may use only lowercase letters, digits, `-` and `_` (at most 64)",
                        k.id
                    ),
                ));
            }
            if !ids.insert(k.id.as_str()) {
                return Err((
                    at("id"),
                    format!(
                        "client key id `{}` is used twice; every key needs its own id",
                        k.id
                    ),
                ));
            }
            let label = k.label.trim();
            if label.is_empty() || label.chars().count() > client_key::MAX_LABEL_CHARS {
                return Err((
                    at("label"),
                    format!(
                        "client key `{}` needs a label of 1 to {} characters, e.g. \"Claude Code\"",
                        k.id,
                        client_key::MAX_LABEL_CHARS
                    ),
                ));
            }
            k.limits.check().map_err(|(field, message)| {
                (
                    vec![key("client_keys"), Seg::Index(i), key("limits"), key(field)],
                    message,
                )
            })?;
        }
        Ok(())
    }
}

/// `[providers.<id>.prices]`: bounded in number and glob length, every rate a sane price.
fn check_prices(id: &str, overrides: &IndexMap<String, Rates>) -> Result<(), (Vec<Seg>, String)> {
    let at = |glob: &str| vec![key("providers"), key(id), key("prices"), key(glob)];
    if overrides.len() > prices::MAX_OVERRIDES_PER_PROVIDER {
        return Err((
            vec![key("providers"), key(id), key("prices")],
            format!(
                "provider `{id}` has {} price overrides, more than the {} allowed; \
                 let one glob such as \"claude-opus-*\" cover several models",
                overrides.len(),
                prices::MAX_OVERRIDES_PER_PROVIDER
            ),
        ));
    }
    for (glob, rates) in overrides {
        if glob.is_empty() || glob.chars().count() > prices::MAX_GLOB_CHARS {
            return Err((
                at(glob),
                format!(
                    "a price override of provider `{id}` needs a model glob of 1 to {} characters, \
                     e.g. [providers.{id}.prices.\"model-name-*\"]",
                    prices::MAX_GLOB_CHARS
                ),
            ));
        }
        rates.check().map_err(|(field, message)| {
            let mut here = at(glob);
            here.push(key(field));
            (
                here,
                format!("price of `{glob}` for provider `{id}`: {message}"),
            )
        })?;
    }
    Ok(())
}

fn unknown_provider(config: &Config, id: &str) -> String {
    let presets: Vec<&str> = provider::presets().keys().map(String::as_str).collect();
    format!(
        "unknown provider `{id}`; known providers: {}; presets: {} (or add your own under [providers.{id}] with format, base_url and families)",
        config.provider_ids().collect::<Vec<_>>().join(", "),
        presets.join(", ")
    )
}

fn check_base_url(url: &str, origin_only: bool) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("base_url `{url}` must start with http:// or https://"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(format!("base_url `{url}` has no host"));
    }
    if origin_only && !path.is_empty() {
        return Err(format!(
            "base_url `{url}` of a built-in provider must be an origin like `https://api.example.com` \
             (no path: the client's path such as /v1/messages is forwarded under it)"
        ));
    }
    Ok(())
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Find the line and column of the value at `segs`, as far down the path as the document goes.
fn locate(text: &str, segs: &[Seg]) -> Option<(usize, usize)> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut span = None;
    for seg in segs {
        let next = match seg {
            Seg::Key(k) => item.get(k.as_str()),
            Seg::Index(i) => item.get(*i),
        };
        match next {
            Some(n) => {
                item = n;
                span = item.span().or(span);
            }
            None => break,
        }
    }
    span.map(|s| line_col(text, s.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let c = Config::parse(DEFAULT_CONFIG, None).expect("embedded default parses");
        assert_eq!(c.listen, default_listen());
        assert!(c.accounts.is_empty());
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = Config::parse("listen = \"127.0.0.1:8765\"\nlog_level = \n", None).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.column.is_some());
    }

    #[test]
    fn unknown_account_in_policy_points_at_it() {
        let text = r#"
[[accounts]]
id = "anthropic-000001"
provider = "anthropic"
label = "a"

[policies."anthropic/opus"]
strategy = "priority"
accounts = ["anthropic-000001", "nope"]
"#;
        let e = Config::parse(text, None).unwrap_err();
        assert!(e.message.contains("unknown account `nope`"), "{e}");
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn unknown_provider_is_named() {
        let text = "[[accounts]]\nid = \"x\"\nprovider = \"antropic\"\nlabel = \"a\"\n";
        let e = Config::parse(text, None).unwrap_err();
        assert!(e.message.contains("unknown provider `antropic`"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn bad_strategy_lists_the_valid_ones() {
        let e = Config::parse("[policies.anthropic]\nstrategy = \"slowest\"\n", None).unwrap_err();
        assert!(e.message.contains("round_robin"), "{e}");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn price_overrides_parse_in_order() {
        let text = r#"
[providers.anthropic.prices."claude-opus-*"]
input = 15
output = 75.0
cache_write_1h = 30

[providers.anthropic.prices."claude-*"]
input = 3
output = 15
"#;
        let c = Config::parse(text, None).unwrap();
        let prices = &c.providers["anthropic"].prices;
        assert_eq!(
            prices.keys().collect::<Vec<_>>(),
            ["claude-opus-*", "claude-*"]
        );
        assert_eq!(
            prices["claude-opus-*"].input, 15.0,
            "integers are prices too"
        );
        assert_eq!(prices["claude-opus-*"].cache_write_1h, Some(30.0));
        assert_eq!(prices["claude-*"].cache_read, None);
    }

    #[test]
    fn bad_price_overrides_point_at_the_key_and_say_the_fix() {
        let with =
            |rest: &str| format!("[providers.openai.prices.\"gpt-5*\"]\ninput = 1.25\n{rest}\n");
        for (rest, key) in [
            ("output = -1", "output"),
            ("output = nan", "output"),
            ("output = inf", "output"),
            ("output = 10\ncache_read = 10000.5", "cache_read"),
        ] {
            let e = Config::parse(&with(rest), None).unwrap_err();
            assert!(e.message.contains(&format!("`{key} = ")), "{e}");
            assert!(e.message.contains("USD per million tokens"), "{e}");
            assert_eq!(e.line, Some(rest.lines().count() + 2), "{e}");
        }
        let e = Config::parse(&with(""), None).unwrap_err();
        assert!(e.message.contains("missing field `output`"), "{e}");
        let e = Config::parse(&with("output = 10\ncache_write_5m = 1"), None).unwrap_err();
        assert!(e.message.contains("unknown field `cache_write_5m`"), "{e}");

        let e = Config::parse(
            "[providers.openai.prices.\"\"]\ninput = 1\noutput = 1\n",
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("needs a model glob"), "{e}");
        assert_eq!(e.line, Some(1), "{e}");
        let long = format!(
            "[providers.openai.prices.\"{}\"]\ninput = 1\noutput = 1\n",
            "g".repeat(prices::MAX_GLOB_CHARS + 1)
        );
        assert!(Config::parse(&long, None).is_err());

        let mut many = String::from("[providers.openai.prices]\n");
        for i in 0..=prices::MAX_OVERRIDES_PER_PROVIDER {
            many.push_str(&format!("\"m{i}\" = {{ input = 1, output = 1 }}\n"));
        }
        let e = Config::parse(&many, None).unwrap_err();
        assert!(e.message.contains("more than the 1000 allowed"), "{e}");
    }

    #[test]
    fn account_limits_parse_and_bad_ones_name_the_account_and_the_fix() {
        let with = |limits: &str| {
            format!(
                "[[accounts]]\nid = \"anthropic-000001\"\nprovider = \"anthropic\"\nlabel = \"a\"\nlimits = {limits}\n"
            )
        };
        let c =
            Config::parse(&with("{ max_concurrent = 4, rpm = 50, tpm = 40000 }"), None).unwrap();
        assert_eq!(
            c.accounts[0].limits,
            AccountLimits {
                max_concurrent: Some(4),
                rpm: Some(50),
                tpm: Some(40_000)
            }
        );
        let c = Config::parse(&with("{ rpm = 5 }"), None).unwrap();
        assert_eq!(c.accounts[0].limits.max_concurrent, None);
        for (limits, field) in [
            ("{ max_concurrent = 0 }", "max_concurrent"),
            ("{ max_concurrent = 10001 }", "max_concurrent"),
            ("{ rpm = 0 }", "rpm"),
            ("{ tpm = 0 }", "tpm"),
        ] {
            let e = Config::parse(&with(limits), None).unwrap_err();
            assert!(e.message.starts_with("account `anthropic-000001`: "), "{e}");
            assert!(
                e.message.contains(&format!("{field} must be between")),
                "{e}"
            );
            assert!(e.message.contains("leave it out for no limit"), "{e}");
            assert_eq!(e.line, Some(5), "{e}");
        }
        let e = Config::parse(&with("{ rpm = -1 }"), None).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        let e = Config::parse(&with("{ burst = 3 }"), None).unwrap_err();
        assert!(e.message.contains("unknown field `burst`"), "{e}");
    }

    #[test]
    fn limits_out_of_range_are_named() {
        let e = Config::parse("[limits]\nclient_idle_timeout_secs = 0\n", None).unwrap_err();
        assert!(e.message.contains("client_idle_timeout_secs"), "{e}");
        assert_eq!(e.line, Some(2));
        let e = Config::parse("[limits]\nmax_connections = 0\n", None).unwrap_err();
        assert!(e.message.contains("max_connections"), "{e}");
        let c = Config::parse("[limits]\nupstream_idle_timeout_secs = 1\n", None).unwrap();
        assert_eq!(c.limits.upstream_idle_timeout_secs, 1);
        assert_eq!(c.limits.max_connections, Limits::default().max_connections);
    }

    #[test]
    fn the_secret_store_is_os_or_file() {
        let c = Config::parse("secrets = \"file\"\n", None).expect("file");
        assert_eq!(c.secrets, Some(crate::secrets::StoreKind::File));
        assert_eq!(Config::parse("", None).expect("unset").secrets, None);
        let e = Config::parse("secrets = \"plain\"\n", None).unwrap_err();
        assert!(
            e.message.contains("`os`") && e.message.contains("`file`"),
            "{e}"
        );
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn non_loopback_listen_needs_opt_in() {
        assert!(Config::parse("listen = \"0.0.0.0:8765\"\n", None).is_err());
        assert!(
            Config::parse(
                "listen = \"0.0.0.0:8765\"\nallow_non_loopback = true\n",
                None
            )
            .is_ok()
        );
    }
}
