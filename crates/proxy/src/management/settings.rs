//! Settings that take effect while running: the listen address (the listener moves) and the
//! log level (the filter is swapped); and opening the log folder.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyway_core::paths;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, ApiJson, ApiResult};
use crate::engine::Engine;

#[derive(Serialize)]
pub struct SettingsView {
    listen: Option<String>,
    log_level: String,
    usage_retention_days: u32,
    config_path: String,
    data_dir: String,
    log_dir: String,
}

fn view(engine: &Engine) -> SettingsView {
    let snapshot = engine.snapshot();
    SettingsView {
        listen: engine.listen().map(|a| a.to_string()),
        log_level: snapshot.config.log_level.clone(),
        usage_retention_days: snapshot.config.usage_retention_days,
        config_path: engine.config_path().display().to_string(),
        data_dir: paths::data_dir().display().to_string(),
        log_dir: paths::log_dir().display().to_string(),
    }
}

pub async fn get_settings(State(engine): State<Arc<Engine>>) -> Json<SettingsView> {
    Json(view(&engine))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    listen: Option<String>,
    log_level: Option<String>,
}

/// Bind a new listen address before saving anything, so a port in use changes nothing; then
/// save, then move the server there.
pub async fn patch_settings(
    State(engine): State<Arc<Engine>>,
    ApiJson(change): ApiJson<SettingsChange>,
) -> ApiResult<Json<SettingsView>> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let config = engine.snapshot().config.clone();
    let listener = match change.listen.as_deref().map(str::trim) {
        None => None,
        Some(text) => {
            let addr: SocketAddr = text.parse().map_err(|_| {
                bad(format!(
                    "`{text}` is not a listen address; write it as 127.0.0.1:PORT"
                ))
            })?;
            config.check_listen(addr).map_err(bad)?;
            if Some(addr) == engine.listen() {
                None
            } else {
                Some(
                    crate::bind(addr)
                        .await
                        .map_err(|m| ApiError::new(StatusCode::CONFLICT, m))?,
                )
            }
        }
    };
    let log_level = change.log_level.as_deref().map(str::trim);
    if log_level == Some("") {
        return Err(bad(
            "the log level is empty; use error, warn, info, debug or trace".to_owned(),
        ));
    }
    let bound = listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the new address: {e}"),
            )
        })?;
    if let Some(level) = log_level {
        engine
            .apply_log_level(level)
            .map_err(|e| bad(format!("`{level}` is not a log filter: {e}")))?;
    }
    let saved = engine
        .edit(|doc, _| {
            if let Some(addr) = bound {
                doc.set_setting("listen", addr.to_string().into());
            }
            if let Some(level) = log_level {
                doc.set_setting("log_level", level.into());
            }
            Ok(())
        })
        .await;
    if let Err(e) = saved {
        if log_level.is_some() {
            let _ = engine.apply_log_level(&config.log_level);
        }
        return Err(e.into());
    }
    if let Some(listener) = listener {
        engine.move_listener(listener);
    }
    Ok(Json(view(&engine)))
}

/// Open the log folder in the desktop's file manager, when there is one.
pub async fn open_logs() -> Json<serde_json::Value> {
    let dir = paths::log_dir();
    let target = dir.clone();
    let opened = tokio::task::spawn_blocking(move || open::that_detached(&target).is_ok())
        .await
        .unwrap_or(false);
    Json(json!({ "path": dir.display().to_string(), "opened": opened }))
}

pub async fn pause(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    engine.set_paused(true);
    Json(json!({ "paused": true }))
}

pub async fn resume(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    engine.set_paused(false);
    Json(json!({ "paused": false }))
}

pub async fn client_key(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    Json(json!({ "key": engine.client_key().expose() }))
}

pub async fn rotate_client_key(
    State(engine): State<Arc<Engine>>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = engine
        .rotate_client_key()
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "key": key.expose() })))
}
