//! Pointing coding tools at Keyway: the settings to copy for each, and for the tools whose
//! config file Keyway can edit ([`super::tools`]), writing it (original kept) and restoring
//! it. Each takes the client key to hand out (`?key=<id>`, default: the default key), so a
//! tool can get a key of its own and its spend be told apart. The tray's "Copy connection
//! settings" takes its text from [`settings_to_copy`], with a key named after the tool.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use keyway_core::paths;
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::state::Management;
use super::tools::{self, Endpoint, Snippet, Tool};

/// Connecting and disconnecting are one at a time: two at once could overwrite the kept
/// original.
static WRITING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct ToolView {
    id: &'static str,
    name: &'static str,
    #[cfg_attr(test, ts(as = "keyway_core::Surface"))]
    surface: &'static str,
    snippets: Vec<Snippet>,
    file: Option<String>,
    connected: bool,
    note: Option<&'static str>,
}

/// Which client key to hand out.
#[derive(Deserialize, Default)]
pub struct KeyQuery {
    key: Option<String>,
}

/// This instance's base URL and client key `key` (default: the default key), as tools must
/// be given them.
fn with_endpoint<T>(
    management: &Management,
    key: Option<&str>,
    f: impl FnOnce(&Endpoint) -> T,
) -> Result<T> {
    let listen = management
        .server()
        .listen()
        .ok_or_else(|| Error::Unavailable("the server is still starting".into()))?;
    let keys = management.engine().client_keys();
    let key = match key {
        None => keys.default_key(),
        Some(id) => keys.get(id).ok_or_else(|| {
            Error::NotFound(format!(
                "no client key `{id}`; GET /api/client-keys lists them"
            ))
        })?,
    };
    let base = format!("http://{listen}");
    Ok(f(&Endpoint {
        base: &base,
        key: key.secret().expose(),
    }))
}

fn tool(id: &str) -> Result<Tool> {
    Tool::parse(id).ok_or_else(|| {
        let known: Vec<&str> = Tool::ALL.iter().map(|t| t.id()).collect();
        Error::NotFound(format!("no tool `{id}`; known tools: {}", known.join(", ")))
    })
}

/// A tool Keyway can connect by writing its file.
fn writable(id: &str) -> Result<Tool> {
    let tool = tool(id)?;
    if !Tool::WRITABLE.contains(&tool) {
        return Err(Error::BadRequest(format!(
            "Keyway does not write {}'s settings; copy them from GET /api/connect",
            tool.name()
        )));
    }
    Ok(tool)
}

/// The settings of tool `id` as "Copy connection settings" copies them: its first snippet,
/// with the client key labelled after the tool (made now if there is none), so what the tool
/// spends shows on its own.
pub async fn settings_to_copy(management: &Management, id: &str) -> Result<(Tool, String)> {
    let tool = tool(id)?;
    let existing = management
        .engine()
        .client_keys()
        .iter()
        .find(|k| !k.is_default() && &*k.label == tool.name())
        .map(|k| k.id.to_string());
    let key = match existing {
        Some(id) => id,
        None => management.add_client_key(tool.name()).await?.0,
    };
    let text = with_endpoint(management, Some(&key), |ep| tools::snippets(tool, ep))?
        .into_iter()
        .next()
        .map(|s| s.text)
        .ok_or_else(|| Error::NotFound(format!("no settings for {}", tool.name())))?;
    Ok((tool, text))
}

pub async fn list(
    State(management): State<Arc<Management>>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<Vec<ToolView>>> {
    let home = paths::home_dir();
    let backups = paths::connect_backups_dir();
    with_endpoint(&management, q.key.as_deref(), |ep| {
        Tool::ALL
            .iter()
            .map(|&t| ToolView {
                id: t.id(),
                name: t.name(),
                surface: t.surface(),
                snippets: tools::snippets(t, ep),
                file: t.file(&home).map(|f| f.display().to_string()),
                connected: tools::is_connected(t, &backups),
                note: t.note(),
            })
            .collect()
    })
    .map(Json)
}

pub async fn preview(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<tools::Plan>> {
    let tool = writable(&id)?;
    let home = paths::home_dir();
    Ok(Json(with_endpoint(&management, q.key.as_deref(), |ep| {
        tools::plan(tool, &home, ep)
    })??))
}

pub async fn connect(
    State(management): State<Arc<Management>>,
    Path(id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<tools::Connected>> {
    let tool = writable(&id)?;
    let _writing = WRITING.lock().await;
    let backups = paths::connect_backups_dir();
    if tools::is_connected(tool, &backups) {
        return Err(Error::Conflict(format!(
            "{} is already connected; disconnect it first",
            tool.name()
        )));
    }
    let home = paths::home_dir();
    let done = with_endpoint(&management, q.key.as_deref(), |ep| {
        tools::connect(tool, &home, &backups, ep)
    })??;
    Ok(Json(done))
}

/// What disconnecting put back.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct Disconnected {
    file: String,
    restored: bool,
}

pub async fn disconnect(Path(id): Path<String>) -> Result<Json<Disconnected>> {
    let tool = writable(&id)?;
    let _writing = WRITING.lock().await;
    let backups = paths::connect_backups_dir();
    if !tools::is_connected(tool, &backups) {
        return Err(Error::Conflict(format!(
            "{} is not connected by Keyway",
            tool.name()
        )));
    }
    let file = tools::disconnect(tool, &paths::home_dir(), &backups)?;
    Ok(Json(Disconnected {
        file: file.display().to_string(),
        restored: true,
    }))
}
