//! Routing policies: their views, setting and removing them, and previews of the picks a policy
//! would make. The tray sets strategies through [`set_strategy`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use indexmap::IndexMap;
use keyway_core::config::PolicyConfig;
use keyway_core::edit::ConfigDocument;
use keyway_core::session::{Affinity, Spread};
use keyway_core::state::now_ms;
use keyway_core::target::FallbackStep;
use keyway_core::{PolicyKey, Snapshot, Strategy};
use serde::{Deserialize, Serialize};

use super::error::{ApiJson, Error, Result};
use super::state::Management;

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    /// `provider` or `provider/family`.
    pub key: String,
    pub provider: String,
    pub family: Option<String>,
    pub strategy: Strategy,
    /// False for the built-in default (round-robin over all enabled accounts).
    pub configured: bool,
    /// The accounts as configured (empty: all enabled accounts of the provider).
    pub accounts: Vec<String>,
    pub weights: IndexMap<String, u32>,
    /// Whether a conversation stays on its account (`session`) or every request is picked on
    /// its own (`request`).
    pub spread: Spread,
    pub affinity: Affinity,
    /// A session's binding is forgotten after this long without a request.
    pub session_idle_secs: u64,
    /// Where requests go, in order, when these accounts cannot serve them: `provider[/family]
    /// [:model]`, or `kind=…` for a step that takes only that kind of failure.
    pub fallback: Vec<String>,
    /// The accounts actually taking part now, in order, with their effective weights.
    pub members: Vec<MemberView>,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub id: String,
    pub weight: u32,
}

pub fn policy_views(snapshot: &Snapshot) -> Vec<PolicyView> {
    let config = &snapshot.config;
    let mut out = Vec::new();
    for provider in snapshot.providers() {
        for (family, pool, configured) in provider.pools() {
            let key = match family {
                Some(f) => format!("{}/{f}", provider.id),
                None => provider.id.clone(),
            };
            let policy = config.policies.get(&key);
            out.push(PolicyView {
                provider: provider.id.clone(),
                family: family.map(str::to_owned),
                strategy: pool.strategy,
                configured,
                accounts: policy.map(|p| p.accounts.clone()).unwrap_or_default(),
                weights: policy.map(|p| p.weights.clone()).unwrap_or_default(),
                spread: pool.sessions.spread,
                affinity: pool.sessions.affinity,
                session_idle_secs: pool.sessions.idle_ms / 1000,
                fallback: policy
                    .map(|p| p.fallback.iter().map(ToString::to_string).collect())
                    .unwrap_or_default(),
                members: pool
                    .members
                    .iter()
                    .map(|m| MemberView {
                        id: m.id.to_string(),
                        weight: m.weight,
                    })
                    .collect(),
                key,
            });
        }
    }
    out
}

pub async fn list_policies(State(management): State<Arc<Management>>) -> Json<Vec<PolicyView>> {
    Json(policy_views(&management.engine().snapshot()))
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    #[cfg_attr(test, ts(as = "Strategy"))]
    strategy: String,
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<Vec<String>>"))]
    accounts: Vec<String>,
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<IndexMap<String, u32>>"))]
    weights: IndexMap<String, u32>,
    #[cfg_attr(test, ts(optional))]
    spread: Option<Spread>,
    #[cfg_attr(test, ts(optional))]
    affinity: Option<Affinity>,
    #[cfg_attr(test, ts(optional))]
    session_idle_secs: Option<u64>,
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<Vec<String>>"))]
    fallback: Vec<String>,
}

fn policy_key(provider: &str, family: Option<&str>) -> Result<PolicyKey> {
    let raw = match family {
        Some(f) => format!("{provider}/{f}"),
        None => provider.to_owned(),
    };
    parse_key(&raw)
}

fn parse_key(raw: &str) -> Result<PolicyKey> {
    raw.parse()
        .map_err(|e: keyway_core::policy::BadPolicyKey| Error::BadRequest(e.to_string()))
}

impl PolicyBody {
    fn into_policy(self) -> Result<PolicyConfig> {
        let strategy: Strategy =
            self.strategy
                .parse()
                .map_err(|e: keyway_core::strategy::UnknownStrategy| {
                    Error::BadRequest(e.to_string())
                })?;
        let defaults = PolicyConfig::new(strategy);
        let fallback = self
            .fallback
            .iter()
            .map(|s| s.parse::<FallbackStep>())
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(Error::BadRequest)?;
        Ok(PolicyConfig {
            fallback,
            accounts: self.accounts,
            weights: self.weights,
            spread: self.spread.unwrap_or(defaults.spread),
            affinity: self.affinity.unwrap_or(defaults.affinity),
            session_idle_secs: self.session_idle_secs.unwrap_or(defaults.session_idle_secs),
            ..defaults
        })
    }
}

async fn put_policy(
    management: &Management,
    key: PolicyKey,
    body: PolicyBody,
) -> Result<Json<PolicyView>> {
    apply_policy(management, key, body.into_policy()?)
        .await
        .map(Json)
}

/// Change only the strategy of the policy `key` (`provider` or `provider/family`), keeping
/// its accounts and weights; a pool on the default policy gets a policy of its own.
pub async fn set_strategy(
    management: &Management,
    key: &str,
    strategy: Strategy,
) -> Result<PolicyView> {
    let key = parse_key(key)?;
    let current = management
        .engine()
        .snapshot()
        .config
        .policies
        .get(&key.to_string())
        .cloned();
    let policy = match current {
        Some(p) => PolicyConfig { strategy, ..p },
        None => PolicyConfig::new(strategy),
    };
    apply_policy(management, key, policy).await
}

/// Save `policy` as `key` and swap it in; the API and the tray both come here.
async fn apply_policy(
    management: &Management,
    key: PolicyKey,
    policy: PolicyConfig,
) -> Result<PolicyView> {
    management
        .edit(|doc, _| {
            doc.set_policy(&key, &policy);
            Ok(())
        })
        .await?;
    let wanted = key.to_string();
    policy_views(&management.engine().snapshot())
        .into_iter()
        .find(|p| p.key == wanted)
        .ok_or_else(|| Error::Internal("the policy vanished after saving".into()))
}

/// Most picks a preview may ask for.
const PREVIEW_MAX: usize = 100;

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    provider: String,
    #[cfg_attr(test, ts(optional))]
    family: Option<String>,
    #[cfg_attr(test, ts(as = "Strategy"))]
    strategy: String,
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<Vec<String>>"))]
    accounts: Vec<String>,
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<IndexMap<String, u32>>"))]
    weights: IndexMap<String, u32>,
    #[cfg_attr(test, ts(optional))]
    spread: Option<Spread>,
    #[cfg_attr(test, ts(optional))]
    affinity: Option<Affinity>,
    #[cfg_attr(test, ts(optional))]
    session_idle_secs: Option<u64>,
    /// Checked with the rest of the policy; the picks are the pool's own.
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<Vec<String>>"))]
    fallback: Vec<String>,
    #[cfg_attr(test, ts(optional))]
    count: Option<usize>,
}

/// The accounts a previewed policy would pick next, in order.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct Picks {
    picks: Vec<String>,
}

/// The picks a policy would make, from a snapshot built off to the side with fresh selectors:
/// nothing is saved and the live pools keep their place.
pub async fn preview_policy(
    State(management): State<Arc<Management>>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Json<Picks>> {
    let key = policy_key(&body.provider, body.family.as_deref())?;
    let count = body.count.unwrap_or(10).min(PREVIEW_MAX);
    let policy = PolicyBody {
        strategy: body.strategy,
        accounts: body.accounts,
        weights: body.weights,
        spread: body.spread,
        affinity: body.affinity,
        session_idle_secs: body.session_idle_secs,
        fallback: body.fallback,
    }
    .into_policy()?;
    let path = management.config_path();
    let mut doc = if path.exists() {
        ConfigDocument::load(path).map_err(Error::BrokenConfig)?
    } else {
        ConfigDocument::default_at(path)
    };
    doc.set_policy(&key, &policy);
    let config = doc.validate().map_err(Error::InvalidConfig)?;
    let trial = Snapshot::build(Arc::new(config), management.engine().registry(), None);
    let family = body.family.as_deref();
    let pool = trial
        .provider(&body.provider)
        .and_then(|p| {
            p.pools()
                .find(|(f, _, _)| *f == family)
                .map(|(_, pool, _)| pool.clone())
        })
        .ok_or_else(|| {
            Error::NotFound(format!("`{key}` is not a provider or family Keyway knows"))
        })?;
    let now = now_ms();
    let picks: Vec<String> = (0..count)
        .map_while(|_| pool.pick(now, &[]).map(|i| pool.members[i].id.to_string()))
        .collect();
    Ok(Json(Picks { picks }))
}

pub async fn put_provider_policy(
    State(management): State<Arc<Management>>,
    Path(provider): Path<String>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Json<PolicyView>> {
    put_policy(&management, policy_key(&provider, None)?, body).await
}

pub async fn put_family_policy(
    State(management): State<Arc<Management>>,
    Path((provider, family)): Path<(String, String)>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Json<PolicyView>> {
    put_policy(&management, policy_key(&provider, Some(&family))?, body).await
}

async fn delete_policy(management: &Management, key: PolicyKey) -> Result<StatusCode> {
    management
        .edit(|doc, _| {
            if doc.remove_policy(&key) {
                Ok(())
            } else {
                Err(Error::NotFound(format!("no policy `{key}` is configured")))
            }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_provider_policy(
    State(management): State<Arc<Management>>,
    Path(provider): Path<String>,
) -> Result<StatusCode> {
    delete_policy(&management, policy_key(&provider, None)?).await
}

pub async fn delete_family_policy(
    State(management): State<Arc<Management>>,
    Path((provider, family)): Path<(String, String)>,
) -> Result<StatusCode> {
    delete_policy(&management, policy_key(&provider, Some(&family))?).await
}
