//! Work the engine does on its own time: saving account facts that must survive a restart,
//! and asking providers for the quota of subscription accounts that have been idle.

use std::sync::Arc;
use std::time::Duration;

use keyway_core::paths;
use keyway_core::state::now_ms;
use keyway_core::{AccountKind, AccountState, ProviderKind};
use serde_json::Value;

use crate::engine::Engine;
use crate::request::quota;

/// How often changed account facts are written to the data dir.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// How often account states are checked for changes worth telling followers about.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Tell event followers (dashboard, tray) when account states change: a cooldown, a refusal,
/// new quota, or a cooldown running out (which changes nothing but the clock, hence the
/// count of accounts that can serve).
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
        let mut seen = fingerprint(&engine);
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            tick.tick().await;
            let now = fingerprint(&engine);
            if now != seen {
                seen = now;
                engine.traffic().state_changed();
            }
        }
    });
}

/// Save the registry whenever it changed; the caller saves once more on shutdown.
pub fn spawn_saver(engine: Arc<Engine>) {
    tokio::spawn(async move {
        let mut saved = engine.registry().version();
        let mut tick = tokio::time::interval(SAVE_EVERY);
        loop {
            tick.tick().await;
            let now = engine.registry().version();
            if now != saved {
                save(&engine).await;
                saved = now;
            }
        }
    });
}

/// Write the registry's lasting facts to the data dir's state file, which [`Engine::start`]
/// restores (atomically; failures are logged).
pub async fn save(engine: &Engine) {
    let json = engine.registry().to_json();
    let path = paths::state_file();
    let result = tokio::task::spawn_blocking(move || {
        keyway_core::edit::write_atomic(&path, json.as_bytes())
    })
    .await;
    if let Ok(Err(e)) = result {
        tracing::warn!(error = %e, "cannot save account state; cooldowns and quota are forgotten at restart");
    }
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
        ProviderKind::Anthropic => quota::from_anthropic_usage(&body),
        _ => quota::from_chatgpt_usage(&body, now_ms() / 1000),
    };
    state.record_quota(windows);
    Ok(())
}
