//! Accounts and providers as the API shows and changes them. The tray changes accounts through
//! [`change_account`] too, so both validate and swap the same way; the CLI and the tray
//! describe an account's state from the same [`Summary`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_core::account::{AccountKind, NewAccount as Added};
use keyway_core::config::{AccountConfig, Config};
use keyway_core::limits::AccountLimits;
use keyway_core::provider::{self, Format};
use keyway_core::quota::QuotaWindow;
use keyway_core::state::{AccountStatus, LiveState, now_ms};
use keyway_core::{Credential, ProviderKind, Secret, Snapshot};
use serde::{Deserialize, Serialize};

use super::error::{ApiJson, Error, Result};
use super::state::{Management, unknown_account};
use crate::engine::Engine;
use crate::record::history::Totals;

/// An account as the API shows it: metadata from the config, live state from the engine.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct AccountView {
    pub id: String,
    pub label: String,
    pub provider: String,
    pub kind: AccountKind,
    pub enabled: bool,
    pub weight: u32,
    /// The limits the user set (`keyway account limit`).
    #[serde(default)]
    pub limits: AccountLimits,
    /// `None` when no instance is running (CLI only).
    pub live: Option<AccountStatus>,
    /// Requests and tokens since local midnight, from the usage history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub today: Option<Totals>,
}

impl AccountView {
    pub fn new(a: &AccountConfig, live: Option<AccountStatus>) -> AccountView {
        AccountView {
            id: a.id.clone(),
            label: a.label.clone(),
            provider: a.provider.clone(),
            kind: a.kind,
            enabled: a.enabled,
            weight: a.weight,
            limits: a.limits,
            live,
            today: None,
        }
    }
}

/// An account's state in a few words, decided once for every place that describes it (the
/// CLI's tables, the tray's menu); each renders it in its own words.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Summary<'a> {
    Disabled,
    /// Keyway is not running, so nothing live is known (the CLI reading the config alone).
    NotRunning,
    Cooling {
        /// Unix seconds.
        until: Option<u64>,
        reason: Option<&'a str>,
    },
    /// Held by one of its limits until a window ends.
    Limited {
        /// Unix seconds.
        until: Option<u64>,
        reason: Option<&'a str>,
    },
    NeedsLogin(Option<&'a str>),
    NeedsAttention(Option<&'a str>),
    NoSecret,
    Serving,
}

impl AccountView {
    pub fn summary(&self) -> Summary<'_> {
        if !self.enabled {
            return Summary::Disabled;
        }
        let Some(live) = &self.live else {
            return Summary::NotRunning;
        };
        let reason = live.needs_attention.as_deref();
        match live.state {
            LiveState::Cooling => Summary::Cooling {
                until: live.cooling_until,
                reason: live.cooling_reason.as_deref(),
            },
            LiveState::Limited => Summary::Limited {
                until: live.limited_until,
                reason: live.limited_reason.as_deref(),
            },
            LiveState::NeedsLogin => Summary::NeedsLogin(reason),
            LiveState::NeedsAttention => Summary::NeedsAttention(reason),
            LiveState::NoSecret => Summary::NoSecret,
            LiveState::Serving => Summary::Serving,
        }
    }

    /// The usage window closest to running out, which decides when the account runs dry,
    /// when the provider reports any.
    pub fn tightest_window(&self) -> Option<&QuotaWindow> {
        self.live
            .as_ref()?
            .quota
            .iter()
            .max_by(|a, b| a.used_percent.total_cmp(&b.used_percent))
    }
}

pub fn account_views(snapshot: &Snapshot) -> Vec<AccountView> {
    let now = now_ms();
    snapshot
        .config
        .accounts
        .iter()
        .map(|a| AccountView::new(a, snapshot.state(&a.id).map(|s| s.status(now))))
        .collect()
}

pub async fn list_accounts(State(management): State<Arc<Management>>) -> Json<Vec<AccountView>> {
    Json(accounts_with_today(management.engine()).await)
}

/// The view of account `id` with today's totals, after a change.
async fn account_with_today(engine: &Engine, id: &str) -> Result<AccountView> {
    accounts_with_today(engine)
        .await
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| unknown_account(id))
}

/// The account views with today's totals from the usage history (left out if it is off).
pub async fn accounts_with_today(engine: &Engine) -> Vec<AccountView> {
    let mut views = account_views(&engine.snapshot());
    let Some(history) = engine.traffic().history() else {
        return views;
    };
    match history.today_by_account().await {
        Ok(today) => {
            for view in &mut views {
                view.today = Some(
                    today
                        .iter()
                        .find(|t| t.key == view.id)
                        .cloned()
                        .unwrap_or_else(|| Totals {
                            key: view.id.clone(),
                            ..Totals::default()
                        }),
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "today's usage is not shown"),
    }
    views
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct ProviderView {
    id: String,
    /// The vendor's name for presets, else the id.
    name: String,
    /// `anthropic`, `openai`, `google` (built in) or `custom` (a preset or the user's own).
    kind: &'static str,
    format: Format,
    base_url: String,
    /// The vendor's documentation of the endpoint, for presets.
    docs: Option<String>,
    /// Whether the config uses it (a preset nothing mentions yet is listed to be offered).
    in_use: bool,
    login: bool,
    /// The statement to confirm before a login or import; `None` once accepted.
    terms: Option<&'static str>,
    terms_accepted: bool,
    families: Vec<String>,
}

/// The providers in use, then the presets not used yet.
pub async fn list_providers(State(management): State<Arc<Management>>) -> Json<Vec<ProviderView>> {
    let snapshot = management.engine().snapshot();
    let preset = |id: &str| snapshot.config.preset(id);
    let mut list: Vec<ProviderView> = snapshot
        .providers()
        .iter()
        .map(|p| ProviderView {
            id: p.id.clone(),
            name: preset(&p.id).map_or_else(|| p.id.clone(), |x| x.name.clone()),
            kind: p.kind.as_str(),
            format: p.format,
            base_url: p.base_url.clone(),
            docs: preset(&p.id).map(|x| x.docs.clone()),
            in_use: true,
            login: p.oauth.is_some(),
            terms: p.unconfirmed_terms(false),
            terms_accepted: p.oauth.is_some() && p.unconfirmed_terms(false).is_none(),
            families: p.families.names().map(str::to_owned).collect(),
        })
        .collect();
    for (id, p) in provider::presets() {
        if snapshot.provider(id).is_none() {
            list.push(ProviderView {
                id: id.clone(),
                name: p.name.clone(),
                kind: ProviderKind::Custom.as_str(),
                format: p.format,
                base_url: p.base_url.clone(),
                docs: Some(p.docs.clone()),
                in_use: false,
                login: false,
                terms: None,
                terms_accepted: false,
                families: p.families.keys().cloned().collect(),
            });
        }
    }
    Json(list)
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    provider: String,
    label: String,
    secret: String,
    #[serde(default = "one")]
    #[cfg_attr(test, ts(optional, as = "Option<u32>"))]
    weight: u32,
}

fn one() -> u32 {
    1
}

/// Checks shared by the CLI and the API for a new account's provider and label.
pub fn check_new_account(config: &Config, provider: &str, label: &str) -> Result<()> {
    if config.provider_kind(provider).is_none() {
        return Err(Error::BadRequest(format!(
            "unknown provider `{provider}`; known providers: {}",
            config.provider_ids().collect::<Vec<_>>().join(", ")
        )));
    }
    if label.trim().is_empty() {
        return Err(Error::BadRequest(
            "the label is empty; give the account a name you will recognise".to_owned(),
        ));
    }
    if label.trim().chars().count() > MAX_LABEL_CHARS {
        return Err(Error::BadRequest(format!(
            "the label is longer than {MAX_LABEL_CHARS} characters; give a shorter name"
        )));
    }
    Ok(())
}

/// The longest account label: it is shown in the tray, the dashboard and every record.
const MAX_LABEL_CHARS: usize = 100;

/// Checks shared by the CLI and the API for a new account's secret.
pub fn check_secret(secret: &str) -> Result<()> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(Error::BadRequest(
            "the secret is empty; paste the provider's API key".to_owned(),
        ));
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::BadRequest(
            "the secret contains spaces or control characters; paste only the API key".to_owned(),
        ));
    }
    Ok(())
}

pub async fn add_account(
    State(management): State<Arc<Management>>,
    ApiJson(new): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<AccountView>)> {
    let current = management.engine().snapshot();
    check_new_account(&current.config, &new.provider, &new.label)
        .and_then(|()| check_secret(&new.secret))?;
    let id = management
        .add_account(Added {
            provider: new.provider,
            label: new.label.trim().to_owned(),
            weight: new.weight,
            credential: Credential::ApiKey(Secret::new(new.secret.trim())),
            confirm_terms: false,
        })
        .await?;
    let view = account_with_today(management.engine(), &id).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    #[cfg_attr(test, ts(optional))]
    pub label: Option<String>,
    #[cfg_attr(test, ts(optional))]
    pub weight: Option<u32>,
    #[cfg_attr(test, ts(optional))]
    pub enabled: Option<bool>,
}

/// What `DELETE /api/accounts/{id}` removed.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct RemovedAccount {
    removed: String,
    /// Policies that named only this account, removed with it.
    removed_policies: Vec<String>,
}

pub async fn update_account(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<AccountChange>,
) -> Result<Json<AccountView>> {
    change_account(&management, &id, change).await.map(Json)
}

/// Apply `change` to account `id` as one edit; the API and the tray both come here.
pub async fn change_account(
    management: &Management,
    id: &str,
    change: AccountChange,
) -> Result<AccountView> {
    management
        .edit(|doc, config| {
            if config.account(id).is_none() {
                return Err(unknown_account(id));
            }
            if let Some(label) = &change.label {
                if label.trim().is_empty() {
                    return Err(Error::BadRequest("the label is empty".to_owned()));
                }
                if label.trim().chars().count() > MAX_LABEL_CHARS {
                    return Err(Error::BadRequest(format!(
                        "the label is longer than {MAX_LABEL_CHARS} characters"
                    )));
                }
                doc.set_account_field(id, "label", label.trim().into());
            }
            if let Some(weight) = change.weight {
                doc.set_account_field(id, "weight", i64::from(weight).into());
            }
            if let Some(enabled) = change.enabled {
                doc.set_account_field(id, "enabled", enabled.into());
            }
            Ok(())
        })
        .await?;
    let engine = management.engine();
    if change.enabled == Some(true)
        && let Some(state) = engine.snapshot().state(id)
    {
        // Enabling is how a user says "try it again": forget cooldowns and refusals.
        state.reset();
    }
    account_with_today(engine, id).await
}

/// `PUT /api/accounts/{id}/limits`: replace the account's limits (an empty object removes
/// them), as the dashboard's form and `keyway account limit --clear` do.
pub async fn set_limits(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
    ApiJson(limits): ApiJson<AccountLimits>,
) -> Result<Json<AccountView>> {
    edit_limits(&management, &id, limits, |_, given| given).await
}

/// `PATCH /api/accounts/{id}/limits`: set the limits the body names, keep the others. The
/// CLI's `keyway account limit` comes here when an instance runs.
pub async fn change_limits(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
    ApiJson(given): ApiJson<AccountLimits>,
) -> Result<Json<AccountView>> {
    edit_limits(&management, &id, given, |current, given| {
        current.with(&given)
    })
    .await
}

/// Set account `id`'s limits to `merge(current, given)`, the current ones read under the
/// config lock, so that concurrent changes of different limits all stay. Checking `given` is
/// enough: the current limits passed the config's validation.
async fn edit_limits(
    management: &Management,
    id: &str,
    given: AccountLimits,
    merge: fn(AccountLimits, AccountLimits) -> AccountLimits,
) -> Result<Json<AccountView>> {
    if let Err((field, message)) = given.check() {
        return Err(Error::BadRequest(format!("{field}: {message}")));
    }
    management
        .edit(|doc, config| {
            let Some(account) = config.account(id) else {
                return Err(unknown_account(id));
            };
            doc.set_account_limits(id, &merge(account.limits, given));
            Ok(())
        })
        .await?;
    account_with_today(management.engine(), id).await.map(Json)
}

pub async fn remove_account(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
) -> Result<Json<RemovedAccount>> {
    let removed_policies = management.remove_account(&id).await?;
    Ok(Json(RemovedAccount {
        removed: id,
        removed_policies,
    }))
}
