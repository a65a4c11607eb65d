//! Settings that take effect while running: the listen address (the listener moves) and the
//! log level (the filter is swapped); and opening the log folder.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use keyway_core::paths;
use serde::{Deserialize, Serialize};

use super::error::{ApiJson, Error, Result};
use super::state::Management;
use crate::server;

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct SettingsView {
    listen: Option<String>,
    log_level: String,
    usage_retention_days: u32,
    config_path: String,
    data_dir: String,
    log_dir: String,
}

fn view(management: &Management) -> SettingsView {
    let snapshot = management.engine().snapshot();
    SettingsView {
        listen: management.server().listen().map(|a| a.to_string()),
        log_level: snapshot.config.log_level.clone(),
        usage_retention_days: snapshot.config.usage_retention_days,
        config_path: management.config_path().display().to_string(),
        data_dir: paths::data_dir().display().to_string(),
        log_dir: paths::log_dir().display().to_string(),
    }
}

pub async fn get_settings(State(management): State<Arc<Management>>) -> Json<SettingsView> {
    Json(view(&management))
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[cfg_attr(test, ts(optional))]
    listen: Option<String>,
    #[cfg_attr(test, ts(optional))]
    log_level: Option<String>,
}

/// Where the log folder is, and whether a file manager opened it.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct LogsOpened {
    path: String,
    opened: bool,
}

/// Whether the proxy is paused now.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct Paused {
    paused: bool,
}

/// Bind a new listen address before saving anything, so a port in use changes nothing; then
/// save, then move the server there.
pub async fn patch_settings(
    State(management): State<Arc<Management>>,
    ApiJson(change): ApiJson<SettingsChange>,
) -> Result<Json<SettingsView>> {
    let bad = Error::BadRequest;
    let config = management.engine().snapshot().config.clone();
    let listener = match change.listen.as_deref().map(str::trim) {
        None => None,
        Some(text) => {
            let addr: SocketAddr = text.parse().map_err(|_| {
                bad(format!(
                    "`{text}` is not a listen address; write it as 127.0.0.1:PORT"
                ))
            })?;
            config.check_listen(addr).map_err(|e| bad(e.to_string()))?;
            if Some(addr) == management.server().listen() {
                None
            } else {
                Some(server::bind(addr).await?)
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
        .map_err(|e| Error::Internal(format!("cannot read the new address: {e}")))?;
    if let Some(level) = log_level {
        management
            .apply_log_level(level)
            .map_err(|e| bad(format!("`{level}` is not a log filter: {e}")))?;
    }
    let saved = management
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
            let _ = management.apply_log_level(&config.log_level);
        }
        return Err(e);
    }
    if let Some(listener) = listener {
        management.server().move_listener(listener);
    }
    Ok(Json(view(&management)))
}

/// Open the log folder in the desktop's file manager, when there is one.
pub async fn open_logs() -> Json<LogsOpened> {
    let dir = paths::log_dir();
    let target = dir.clone();
    let opened = tokio::task::spawn_blocking(move || open::that_detached(&target).is_ok())
        .await
        .unwrap_or(false);
    Json(LogsOpened {
        path: dir.display().to_string(),
        opened,
    })
}

pub async fn pause(State(management): State<Arc<Management>>) -> Json<Paused> {
    management.engine().set_paused(true);
    Json(Paused { paused: true })
}

pub async fn resume(State(management): State<Arc<Management>>) -> Json<Paused> {
    management.engine().set_paused(false);
    Json(Paused { paused: false })
}
