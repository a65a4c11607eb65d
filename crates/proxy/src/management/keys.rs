//! Client keys as the API shows and changes them: the default key (the one tools set up before
//! named keys use), named keys per tool, and their limits. A key's secret is shown when it is
//! made (and the default key's on request, for setting up tools); lists never carry one.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_core::client_key::Limits;
use keyway_core::state::now_ms;
use serde::{Deserialize, Serialize};

use super::error::{ApiJson, Error, Result};
use super::state::Management;
use crate::client_keys::ClientKey;
use crate::record::traffic::BudgetPeriod;

/// A key's secret, the one time it is shown.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct NewKey {
    id: String,
    key: String,
}

/// The default key's secret.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct DefaultKey {
    key: String,
}

/// One client key, without its secret.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientKeyView {
    pub id: String,
    pub label: String,
    /// The key Keyway always had; it can be rotated but not revoked.
    pub default: bool,
    /// Unix ms; 0 when unknown.
    pub created_ms: u64,
    /// Unix ms of its last admitted request; `None` when never used.
    pub last_used_ms: Option<u64>,
    pub limits: Limits,
    pub minute_requests: u64,
    pub minute_tokens: u64,
    /// Spent this local day and this month, at API prices.
    pub day_usd: f64,
    pub month_usd: f64,
    /// The budget it is over now, if any (the month's first).
    pub over_budget: Option<BudgetPeriod>,
}

pub fn view(key: &ClientKey, now: u64) -> ClientKeyView {
    let usage = key.meter.usage(now);
    let over = |budget: Option<f64>, spent: f64| budget.is_some_and(|b| spent >= b);
    let over_budget = if over(key.limits.monthly_usd, usage.month_usd) {
        Some(BudgetPeriod::Monthly)
    } else if over(key.limits.daily_usd, usage.day_usd) {
        Some(BudgetPeriod::Daily)
    } else {
        None
    };
    ClientKeyView {
        id: key.id.to_string(),
        label: key.label.to_string(),
        default: key.is_default(),
        created_ms: key.created_ms,
        last_used_ms: (usage.last_used_ms > 0).then_some(usage.last_used_ms),
        limits: key.limits,
        minute_requests: usage.minute_requests,
        minute_tokens: usage.minute_tokens,
        day_usd: usage.day_usd,
        month_usd: usage.month_usd,
        over_budget,
    }
}

/// Every key this instance accepts, the default first.
pub fn views(management: &Management) -> Vec<ClientKeyView> {
    let now = now_ms();
    management
        .engine()
        .client_keys()
        .iter()
        .map(|k| view(k, now))
        .collect()
}

pub async fn list(State(management): State<Arc<Management>>) -> Json<Vec<ClientKeyView>> {
    Json(views(&management))
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    label: String,
}

pub async fn add(
    State(management): State<Arc<Management>>,
    ApiJson(request): ApiJson<KeyRequest>,
) -> Result<(StatusCode, Json<NewKey>)> {
    let (id, secret) = management.add_client_key(&request.label).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKey {
            id,
            key: secret.expose().to_owned(),
        }),
    ))
}

pub async fn revoke(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    management.revoke_client_key(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_limits(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
    ApiJson(limits): ApiJson<Limits>,
) -> Result<Json<ClientKeyView>> {
    management.set_client_key_limits(&id, limits).await?;
    let keys = management.engine().client_keys();
    let key = keys
        .get(&id)
        .ok_or_else(|| Error::NotFound(format!("no client key `{id}`")))?;
    Ok(Json(view(key, now_ms())))
}

pub async fn default_key(State(management): State<Arc<Management>>) -> Json<DefaultKey> {
    Json(DefaultKey {
        key: management.engine().client_key().expose().to_owned(),
    })
}

pub async fn rotate_default(State(management): State<Arc<Management>>) -> Result<Json<DefaultKey>> {
    let key = management.engine().rotate_client_key().await?;
    Ok(Json(DefaultKey {
        key: key.expose().to_owned(),
    }))
}
