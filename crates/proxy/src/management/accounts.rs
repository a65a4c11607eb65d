//! Accounts and providers as the API shows and changes them. The tray changes accounts through
//! [`change_account`] too, so both validate and swap the same way.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_core::account::AccountKind;
use keyway_core::config::{AccountConfig, Config};
use keyway_core::state::{AccountStatus, now_ms};
use keyway_core::{Credential, Secret, Snapshot};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, ApiJson, ApiResult};
use crate::engine::{EditError, Engine};
use crate::history::Totals;
use crate::logins::unconfirmed_terms;

/// An account as the API shows it: metadata from the config, live state from the engine.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct AccountView {
    pub id: String,
    pub label: String,
    pub provider: String,
    pub kind: AccountKind,
    pub enabled: bool,
    pub weight: u32,
    /// `None` when no instance is running (CLI only).
    pub live: Option<AccountStatus>,
    /// Requests and tokens since local midnight, from the usage history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
            live,
            today: None,
        }
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

pub async fn list_accounts(State(engine): State<Arc<Engine>>) -> Json<Vec<AccountView>> {
    Json(accounts_with_today(&engine).await)
}

/// The account views with today's totals from the usage history (left out if it is off).
pub(super) async fn accounts_with_today(engine: &Engine) -> Vec<AccountView> {
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

#[derive(Serialize)]
pub struct ProviderView {
    id: String,
    kind: &'static str,
    base_url: String,
    login: bool,
    /// The statement to confirm before a login or import; `None` once accepted.
    terms: Option<&'static str>,
    terms_accepted: bool,
    families: Vec<String>,
}

pub async fn list_providers(State(engine): State<Arc<Engine>>) -> Json<Vec<ProviderView>> {
    let snapshot = engine.snapshot();
    Json(
        snapshot
            .providers()
            .iter()
            .map(|p| ProviderView {
                id: p.id.clone(),
                kind: p.kind.as_str(),
                base_url: p.base_url.clone(),
                login: p.oauth.is_some(),
                terms: unconfirmed_terms(p, false).filter(|_| p.oauth.is_some()),
                terms_accepted: p.oauth.is_some() && unconfirmed_terms(p, false).is_none(),
                families: p.families.names().map(str::to_owned).collect(),
            })
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    provider: String,
    label: String,
    secret: String,
    #[serde(default = "one")]
    weight: u32,
}

fn one() -> u32 {
    1
}

/// Checks shared by the CLI and the API for a new account's provider and label.
pub fn check_new_account(config: &Config, provider: &str, label: &str) -> Result<(), String> {
    if config.provider_kind(provider).is_none() {
        return Err(format!(
            "unknown provider `{provider}`; known providers: {}",
            config.provider_ids().collect::<Vec<_>>().join(", ")
        ));
    }
    if label.trim().is_empty() {
        return Err("the label is empty; give the account a name you will recognise".to_owned());
    }
    Ok(())
}

/// Checks shared by the CLI and the API for a new account's secret.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err("the secret is empty; paste the provider's API key".to_owned());
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "the secret contains spaces or control characters; paste only the API key".to_owned(),
        );
    }
    Ok(())
}

pub async fn add_account(
    State(engine): State<Arc<Engine>>,
    ApiJson(new): ApiJson<NewAccount>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let current = engine.snapshot();
    check_new_account(&current.config, &new.provider, &new.label)
        .and_then(|()| check_secret(&new.secret))
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
    let id = engine
        .add_account(
            &new.provider,
            new.label.trim().to_owned(),
            new.weight,
            Credential::ApiKey(Secret::new(new.secret.trim())),
            false,
        )
        .await?;
    let view = accounts_with_today(&engine)
        .await
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the account vanished after saving",
            )
        })?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    pub label: Option<String>,
    pub weight: Option<u32>,
    pub enabled: Option<bool>,
}

pub async fn update_account(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<AccountChange>,
) -> ApiResult<Json<AccountView>> {
    change_account(&engine, &id, change).await.map(Json)
}

/// Apply `change` to account `id` as one edit; the API and the tray both come here.
pub async fn change_account(
    engine: &Engine,
    id: &str,
    change: AccountChange,
) -> ApiResult<AccountView> {
    let id = id.to_owned();
    engine
        .edit(|doc, config| {
            if config.account(&id).is_none() {
                return Err(unknown_account(&id));
            }
            if let Some(label) = &change.label {
                if label.trim().is_empty() {
                    return Err(EditError::Invalid("the label is empty".to_owned()));
                }
                doc.set_account_field(&id, "label", label.trim().into());
            }
            if let Some(weight) = change.weight {
                doc.set_account_field(&id, "weight", i64::from(weight).into());
            }
            if let Some(enabled) = change.enabled {
                doc.set_account_field(&id, "enabled", enabled.into());
            }
            Ok(())
        })
        .await?;
    let snapshot = engine.snapshot();
    if change.enabled == Some(true)
        && let Some(state) = snapshot.state(&id)
    {
        // Enabling is how a user says "try it again": forget cooldowns and refusals.
        state.reset();
    }
    accounts_with_today(engine)
        .await
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| unknown_account(&id).into())
}

pub async fn remove_account(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let removed_policies = engine
        .edit(|doc, _| doc.remove_account(&id).ok_or_else(|| unknown_account(&id)))
        .await?;
    if let Err(e) = engine.delete_account_secret(&id).await {
        tracing::warn!(account = %id, error = %e, "account removed but its keyring entry could not be deleted");
    }
    Ok(Json(
        json!({ "removed": id, "removed_policies": removed_policies }),
    ))
}

fn unknown_account(id: &str) -> EditError {
    EditError::NotFound(format!(
        "no account `{id}`; list them with GET /api/accounts"
    ))
}
