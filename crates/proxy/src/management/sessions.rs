//! Live sessions as the API, `keyway sessions` and the dashboard show them: which
//! conversation is bound to which account, since when, and how well its prompt cache did.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use keyway_core::session::KeySource;
use keyway_core::state::now_ms;
use serde::{Deserialize, Serialize};

use super::state::Management;
use crate::engine::Engine;

/// One live session.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionView {
    /// The policy (`provider` or `provider/family`) whose pool the session is bound in.
    pub policy: String,
    /// The session's identity as the client sent it (a hash when it was very long).
    pub key: String,
    pub source: KeySource,
    /// The client, from its user agent.
    pub client: Option<String>,
    pub account: String,
    pub account_label: Option<String>,
    pub since_ms: u64,
    pub last_seen_ms: u64,
    pub requests: u64,
    /// How often the session left an account.
    pub moves: u32,
    pub input_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

/// Every session seen within its policy's idle time, newest first.
pub fn session_views(engine: &Engine) -> Vec<SessionView> {
    let snapshot = engine.snapshot();
    let idle = |scope: &str| snapshot.pool(scope).map(|p| p.sessions.idle_ms);
    engine
        .sessions()
        .live(idle, now_ms())
        .into_iter()
        .map(|s| SessionView {
            policy: s.scope.to_string(),
            key: s.key.to_string(),
            source: s.binding.source,
            client: s.binding.client.as_deref().map(str::to_owned),
            account_label: snapshot
                .config
                .account(&s.binding.account)
                .map(|a| a.label.clone()),
            account: s.binding.account.to_string(),
            since_ms: s.binding.since_ms,
            last_seen_ms: s.binding.last_seen_ms,
            requests: s.binding.requests,
            moves: s.binding.moves,
            input_tokens: s.binding.input_tokens,
            cache_read_tokens: s.binding.cache_read_tokens,
            cache_write_tokens: s.binding.cache_write_tokens,
        })
        .collect()
}

pub async fn list_sessions(State(management): State<Arc<Management>>) -> Json<Vec<SessionView>> {
    Json(session_views(management.engine()))
}
