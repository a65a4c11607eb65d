//! Pointing coding tools at Keyway: the settings to copy for each, and for the tools whose
//! config file Keyway can edit, writing it (original kept) and restoring it.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_core::paths;
use serde::Serialize;
use serde_json::json;

use super::{ApiError, ApiResult};
use crate::connect::{self, Endpoint, Snippet, Tool};
use crate::engine::Engine;

/// Connecting and disconnecting are one at a time: two at once could overwrite the kept
/// original.
static WRITING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where originals of connected tools' files are kept, in the data dir.
fn backups() -> PathBuf {
    paths::data_dir().join("connect-backups")
}

#[derive(Serialize)]
pub struct ToolView {
    id: &'static str,
    name: &'static str,
    surface: &'static str,
    snippets: Vec<Snippet>,
    file: Option<String>,
    connected: bool,
    note: Option<&'static str>,
}

/// This instance's base URL and client key, as tools must be given them.
fn with_endpoint<T>(engine: &Engine, f: impl FnOnce(&Endpoint) -> T) -> ApiResult<T> {
    let listen = engine.listen().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is still starting",
        )
    })?;
    let key = engine.client_key();
    let base = format!("http://{listen}");
    Ok(f(&Endpoint {
        base: &base,
        key: key.expose(),
    }))
}

fn tool(id: &str) -> ApiResult<Tool> {
    Tool::parse(id).ok_or_else(|| {
        let known: Vec<&str> = Tool::ALL.iter().map(|t| t.id()).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no tool `{id}`; known tools: {}", known.join(", ")),
        )
    })
}

/// A tool Keyway can connect by writing its file.
fn writable(id: &str) -> ApiResult<Tool> {
    let tool = tool(id)?;
    if tool.file(&paths::home_dir()).is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Keyway does not write {}'s settings; copy them from GET /api/connect",
                tool.name()
            ),
        ));
    }
    Ok(tool)
}

pub async fn list(State(engine): State<Arc<Engine>>) -> ApiResult<Json<Vec<ToolView>>> {
    let home = paths::home_dir();
    let backups = backups();
    with_endpoint(&engine, |ep| {
        Tool::ALL
            .iter()
            .map(|&t| ToolView {
                id: t.id(),
                name: t.name(),
                surface: t.surface(),
                snippets: connect::snippets(t, ep),
                file: t.file(&home).map(|f| f.display().to_string()),
                connected: connect::is_connected(t, &backups),
                note: t.note(),
            })
            .collect()
    })
    .map(Json)
}

pub async fn preview(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult<Json<connect::Plan>> {
    let tool = writable(&id)?;
    let home = paths::home_dir();
    with_endpoint(&engine, |ep| connect::plan(tool, &home, ep))?
        .map(Json)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))
}

pub async fn connect(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let tool = writable(&id)?;
    let _writing = WRITING.lock().await;
    if connect::is_connected(tool, &backups()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{} is already connected; disconnect it first", tool.name()),
        ));
    }
    let home = paths::home_dir();
    // A file the tool's user broke is theirs to fix (400); failing to write is ours (500).
    with_endpoint(&engine, |ep| connect::plan(tool, &home, ep))?
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
    let done = with_endpoint(&engine, |ep| connect::connect(tool, &home, &backups(), ep))?
        .map_err(|m| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m))?;
    Ok(Json(json!(done)))
}

pub async fn disconnect(Path(id): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    let tool = writable(&id)?;
    let _writing = WRITING.lock().await;
    if !connect::is_connected(tool, &backups()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{} is not connected by Keyway", tool.name()),
        ));
    }
    let file = connect::disconnect(tool, &paths::home_dir(), &backups())
        .map_err(|m| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m))?;
    Ok(Json(
        json!({ "file": file.display().to_string(), "restored": true }),
    ))
}
