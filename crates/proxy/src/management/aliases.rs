//! Model routing as the API shows and changes it: the aliases (a model glob sent to another
//! provider, family or model), and where a given model would go (its route, the alias that
//! takes it, and the fallback chain after it).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use keyway_core::Surface;
use keyway_core::target::Target;
use serde::{Deserialize, Serialize};

use super::error::{ApiJson, Error, Result};
use super::state::Management;

/// One alias: requests for models matching `glob` go to `to`.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasView {
    pub glob: String,
    /// `provider[/family][:model]`.
    pub to: String,
}

pub fn alias_views(management: &Management) -> Vec<AliasView> {
    management
        .engine()
        .snapshot()
        .config
        .aliases
        .iter()
        .map(|(glob, target)| AliasView {
            glob: glob.clone(),
            to: target.to_string(),
        })
        .collect()
}

pub async fn list(State(management): State<Arc<Management>>) -> Json<Vec<AliasView>> {
    Json(alias_views(&management))
}

/// Replace every alias, in the order given (the first match wins).
pub async fn replace(
    State(management): State<Arc<Management>>,
    ApiJson(list): ApiJson<Vec<AliasView>>,
) -> Result<Json<Vec<AliasView>>> {
    let mut parsed: Vec<(String, Target)> = Vec::with_capacity(list.len());
    for a in list {
        let target: Target =
            a.to.parse()
                .map_err(|e: String| Error::BadRequest(format!("alias `{}`: {e}", a.glob)))?;
        if parsed.iter().any(|(g, _)| *g == a.glob) {
            return Err(Error::BadRequest(format!(
                "alias `{}` is given twice",
                a.glob
            )));
        }
        parsed.push((a.glob, target));
    }
    management
        .edit(|doc, _| {
            doc.set_aliases(parsed.iter().map(|(g, t)| (g.as_str(), t)));
            Ok(())
        })
        .await?;
    Ok(Json(alias_views(&management)))
}

#[derive(Deserialize)]
pub struct RouteQuery {
    surface: Surface,
    model: String,
}

/// Where a request of `surface` for `model` would go now.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Serialize, Deserialize)]
pub struct RouteView {
    pub provider: String,
    pub family: Option<String>,
    /// The policy key of the pool that serves it.
    pub pool: String,
    /// The model sent there, when not the one asked for.
    pub model: Option<String>,
    /// The alias glob that routes it.
    pub alias: Option<String>,
    /// The fallback chain after that pool, as configured.
    pub fallback: Vec<String>,
    /// The pool speaks another API than the surface: requests are translated.
    pub translated: bool,
}

pub async fn route(
    State(management): State<Arc<Management>>,
    Query(q): Query<RouteQuery>,
) -> Result<Json<RouteView>> {
    let snapshot = management.engine().snapshot();
    let route = snapshot
        .route(q.surface, Some(&q.model))
        .ok_or_else(|| Error::NotFound(format!("no provider serves {} requests", q.surface)))?;
    let fallback = snapshot
        .fallbacks(&route)
        .iter()
        .map(|(_, step)| step.to_string())
        .collect();
    Ok(Json(RouteView {
        provider: route.provider.id.clone(),
        family: route.family.map(str::to_owned),
        pool: route.pool.scope.to_string(),
        model: route.model.map(str::to_owned),
        alias: route.alias.map(str::to_owned),
        fallback,
        translated: !route.provider.format.serves(q.surface),
    }))
}
