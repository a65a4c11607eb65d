//! Work the engine does on its own time: saving account facts that must survive a restart,
//! and asking providers for the quota of subscription accounts that have been idle.

use std::sync::Arc;
use std::time::Duration;

use keyway_core::state::now_ms;
use keyway_core::{AccountKind, AccountState, ProviderKind};
use keyway_core::{paths, session};
use serde_json::Value;

use crate::engine::Engine;
use crate::request::quota;

/// How long after a change of account facts they are written to the data dir: the changes
/// of a burst of requests go out in one write.
const SAVE_AFTER: Duration = Duration::from_secs(2);

/// How often changed sessions are written at most: they change with every request of a
/// session, and losing the last half minute of them to a crash costs only some cache writes.
const SESSIONS_SAVE_EVERY: Duration = Duration::from_secs(30);

/// Tell event followers (dashboard, tray) when account states change: a cooldown, a refusal,
/// new quota, or a cooldown or limit running out (which changes nothing but the clock, hence
/// the count of accounts that can serve). Waits for a change or for the soonest such moment,
/// so an idle Keyway does not wake up.
pub fn spawn_state_watch(engine: Arc<Engine>) {
    tokio::spawn(async move {
        let fingerprint = |engine: &Engine| {
            let now = now_ms();
            let snapshot = engine.snapshot();
            let eligible = snapshot
                .config
                .accounts
                .iter()
                .filter(|a| snapshot.state(&a.id).is_some_and(|s| s.is_eligible(now)))
                .count() as u64;
            engine.registry().version().wrapping_add(eligible << 48)
        };
        let mut changes = engine.registry().subscribe();
        let mut seen = fingerprint(&engine);
        loop {
            let clock = soonest_clock_change(&engine);
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = sleep_until_ms(clock) => {}
            }
            let now = fingerprint(&engine);
            if now != seen {
                seen = now;
                engine.traffic().state_changed();
            }
        }
    });
}

/// When the clock alone next changes whether an account can serve (a cooldown or a limit
/// running out); `None` when no account waits for one.
fn soonest_clock_change(engine: &Engine) -> Option<u64> {
    let now = now_ms();
    let snapshot = engine.snapshot();
    snapshot
        .config
        .accounts
        .iter()
        .filter_map(|a| snapshot.state(&a.id)?.waits_until(now))
        .min()
}

/// Sleeps until `at` (Unix ms), a moment just past it so the state has changed by then; for
/// ever when `None`.
async fn sleep_until_ms(at: Option<u64>) {
    match at {
        Some(at) => {
            let wait = at.saturating_sub(now_ms()).saturating_add(1);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        None => std::future::pending().await,
    }
}

/// Save the registry shortly after it changed, and the sessions when they changed, at most
/// every [`SESSIONS_SAVE_EVERY`]; the caller saves both once more on shutdown. Sleeps while
/// nothing changes.
pub fn spawn_saver(engine: Arc<Engine>) {
    tokio::spawn(async move {
        let mut states = engine.registry().subscribe();
        let mut sessions = engine.sessions().subscribe();
        let mut owners = engine.owners().subscribe();
        let mut saved = engine.registry().version();
        let mut sessions_at = tokio::time::Instant::now();
        // When changed sessions are to be written.
        let mut sessions_due: Option<tokio::time::Instant> = None;
        loop {
            let sessions_changed = tokio::select! {
                r = states.changed() => {
                    if r.is_err() {
                        return;
                    }
                    tokio::time::sleep(SAVE_AFTER).await;
                    let now = engine.registry().version();
                    if now != saved {
                        save_state(&engine).await;
                        saved = now;
                    }
                    false
                }
                r = sessions.changed() => r.is_ok(),
                r = owners.changed() => r.is_ok(),
                () = sleep_until_instant(sessions_due) => {
                    save_sessions(&engine).await;
                    sessions_due = None;
                    sessions_at = tokio::time::Instant::now();
                    false
                }
            };
            if sessions_changed && sessions_due.is_none() {
                sessions_due =
                    Some((sessions_at + SESSIONS_SAVE_EVERY).max(tokio::time::Instant::now()));
            }
        }
    });
}

/// Sleeps until `at`; for ever when `None`.
async fn sleep_until_instant(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Write the account facts and the sessions to the data dir, which [`Engine::start`]
/// restores (atomically; failures are logged).
pub async fn save(engine: &Engine) {
    save_state(engine).await;
    save_sessions(engine).await;
}

async fn save_state(engine: &Engine) {
    let json = engine.registry().to_json();
    if let Err(e) = write(paths::state_file(), json).await {
        tracing::warn!(error = %e, "cannot save account state; cooldowns and quota are forgotten at restart");
    }
}

async fn save_sessions(engine: &Engine) {
    let json = session::saved_form(engine.sessions(), engine.owners());
    if let Err(e) = write(paths::sessions_file(), json).await {
        tracing::warn!(error = %e, "cannot save the sessions; they start afresh at restart");
    }
}

async fn write(path: std::path::PathBuf, json: String) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || keyway_core::edit::write_atomic(&path, json.as_bytes()))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Every `limits.quota_poll_secs`, poll the usage endpoint of each subscription account that
/// served no request in that time (busy accounts report quota in every response already).
pub fn spawn_quota_poller(engine: Arc<Engine>) {
    tokio::spawn(async move {
        loop {
            let every = engine.snapshot().config.limits.quota_poll_secs;
            if every == 0 {
                tokio::time::sleep(Duration::from_secs(60)).await;
                continue;
            }
            tokio::time::sleep(Duration::from_secs(every)).await;
            poll_idle(&engine, every * 1000).await;
        }
    });
}

async fn poll_idle(engine: &Engine, idle_ms: u64) {
    let snapshot = engine.snapshot();
    let now = now_ms();
    for account in &snapshot.config.accounts {
        let (Some(provider), Some(state)) = (
            snapshot.provider(&account.provider),
            snapshot.state(&account.id),
        ) else {
            continue;
        };
        // A login waiting for the user would only spend a dead refresh token again.
        if account.kind != AccountKind::OAuth
            || !account.enabled
            || state.attention().is_some()
            || now.saturating_sub(state.last_used_ms()) < idle_ms
        {
            continue;
        }
        if let Err(e) = poll_one(engine, provider, &account.id, state).await {
            tracing::debug!(account = %account.id, error = %e, "quota poll failed");
        }
    }
}

/// Ask the provider for one account's usage windows now.
pub async fn poll_one(
    engine: &Engine,
    provider: &keyway_core::ProviderRoute,
    account_id: &str,
    state: &Arc<AccountState>,
) -> Result<(), String> {
    let credential = engine
        .usable_credential(provider, account_id, state, None)
        .await
        .map_err(|e| e.to_string())?;
    let tokens = credential.oauth().ok_or("not a login")?;
    let request = match provider.kind {
        ProviderKind::Anthropic => engine
            .http()
            .get(format!("{}/api/oauth/usage", provider.base_url))
            .bearer_auth(tokens.access.expose())
            .header(
                "anthropic-beta",
                keyway_core::provider::ANTHROPIC_OAUTH_BETA,
            ),
        ProviderKind::OpenAi => {
            let backend = provider
                .oauth
                .as_ref()
                .and_then(|o| o.backend_url.as_deref())
                .ok_or("no subscription backend")?;
            engine
                .http()
                .get(format!("{backend}/backend-api/wham/usage"))
                .bearer_auth(tokens.access.expose())
                .header(
                    "chatgpt-account-id",
                    tokens.account_id.as_deref().unwrap_or_default(),
                )
        }
        _ => return Err("no usage endpoint".into()),
    };
    let response = request
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|_| "usage endpoint unreachable".to_owned())?;
    if !response.status().is_success() {
        return Err(format!("usage endpoint answered {}", response.status()));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|_| "usage endpoint sent no JSON".to_owned())?;
    let windows = match provider.kind {
        ProviderKind::Anthropic => quota::from_anthropic_usage(&body, now_ms() / 1000),
        _ => quota::from_chatgpt_usage(&body, now_ms() / 1000),
    };
    state.record_quota(windows);
    Ok(())
}
