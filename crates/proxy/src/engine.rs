//! The engine: what every request shares. The current snapshot, the account states that
//! outlive it, the keyring, the one HTTP client, the client keys and their meters, the
//! refreshes in flight and the request records. Config changes build a whole new snapshot off to the side and swap it
//! in with one atomic store ([`Engine::install`]).
//!
//! The server's lifecycle ([`crate::Server`]) and what only the management side drives
//! ([`crate::Management`]: config edits, logins) live elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use keyway_core::client_key;
use keyway_core::meter::{self, Limit};
use keyway_core::secrets::{self, SecretError};
use keyway_core::session::{self, Owners, Sessions};
use keyway_core::snapshot::ProviderRoute;
use keyway_core::state::now_ms;
use keyway_core::{
    AccountKind, AccountState, Config, Credential, Secret, SecretStore, Snapshot, StateRegistry,
    paths,
};

use crate::blocking::run_blocking;
use crate::client_keys::ClientKeys;
use crate::oauth::token::TokenError;
use crate::record::RequestRecord;
use crate::record::history::History;
use crate::record::traffic::{BudgetAlert, BudgetPeriod, Traffic};
use crate::refresh::Refreshes;
use crate::upstream::{ClientError, UpstreamClient, login_client};

pub struct Engine {
    snapshot: ArcSwap<Snapshot>,
    registry: StateRegistry,
    secrets: SecretStore,
    /// The OAuth flows' and the quota polls' client.
    http: reqwest::Client,
    /// The proxied requests' client.
    upstream: UpstreamClient,
    client_keys: ArcSwap<ClientKeys>,
    refreshes: Refreshes,
    /// Conversations bound to accounts.
    sessions: Sessions,
    /// Which account produced which Responses state.
    owners: Owners,
    next_request: AtomicU64,
    /// Paused: client requests are refused (503) until resumed; the management API still works.
    paused: AtomicBool,
    /// Set by the server when its shutdown drain runs out: response bodies still open end
    /// with their surface's error event instead of being cut.
    ending_streams: tokio::sync::watch::Sender<bool>,
    traffic: Traffic,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Keyring(#[from] SecretError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl Engine {
    /// Read the keyring once, restore the account facts saved by a previous run (see
    /// [`crate::background::save`]), open the usage history, and build the first snapshot of
    /// `config`.
    pub async fn start(config: Config, secrets: SecretStore) -> Result<Arc<Engine>, StartError> {
        let client_keys = ClientKeys::load(&config, &secrets, None, None).await?;
        let connect_timeout = Duration::from_secs(config.limits.connect_timeout_secs);
        let http = login_client(connect_timeout)?;
        let upstream = UpstreamClient::new(connect_timeout)?;
        let registry = StateRegistry::default();
        registry.restore_from(&paths::state_file());
        let (sessions, owners) = (Sessions::default(), Owners::default());
        session::restore_from(&paths::sessions_file(), &sessions, &owners);
        let history = match History::open(
            &paths::history_file(),
            &paths::usage_log_dir(),
            config.usage_retention_days,
        ) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(error = %e, "usage history is off for this run");
                None
            }
        };
        if let Some(history) = &history {
            seed_meters(history, &client_keys).await;
        }
        let config = Arc::new(config);
        load_missing_secrets(&config, &registry, &secrets).await?;
        let snapshot = Snapshot::build(config, &registry, None);
        Ok(Arc::new(Engine {
            snapshot: ArcSwap::from_pointee(snapshot),
            registry,
            secrets,
            http,
            upstream,
            client_keys: ArcSwap::from_pointee(client_keys),
            refreshes: Refreshes::default(),
            sessions,
            owners,
            next_request: AtomicU64::new(1),
            paused: AtomicBool::new(false),
            ending_streams: tokio::sync::watch::Sender::new(false),
            traffic: Traffic::new(history),
        }))
    }

    /// The current snapshot. A request keeps the one it started with until it ends.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn registry(&self) -> &StateRegistry {
        &self.registry
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn upstream(&self) -> &UpstreamClient {
        &self.upstream
    }

    pub fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    /// The default client key's secret (what tools set up before named keys use).
    pub fn client_key(&self) -> Secret {
        self.client_keys.load().default_key().secret().clone()
    }

    /// Every client key this instance accepts.
    pub fn client_keys(&self) -> Arc<ClientKeys> {
        self.client_keys.load_full()
    }

    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn owners(&self) -> &Owners {
        &self.owners
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Pause or resume the proxy; followers get a `State` event.
    pub fn set_paused(&self, paused: bool) {
        if self.paused.swap(paused, Ordering::Relaxed) != paused {
            tracing::info!(
                paused,
                "proxy {}",
                if paused { "paused" } else { "resumed" }
            );
            self.traffic.state_changed();
        }
    }

    /// The drain time is over: tell the response bodies still open to end.
    pub(crate) fn end_streams(&self) {
        self.ending_streams.send_replace(true);
    }

    /// Resolves when [`Engine::end_streams`] is called.
    pub(crate) fn streams_ending(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let mut ending = self.ending_streams.subscribe();
        async move {
            let _ = ending.wait_for(|e| *e).await;
        }
    }

    /// A short unique id for a request, for logs and the `x-keyway-request-id` header.
    pub fn next_request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Read the secrets `config` needs that are not cached yet, then build its snapshot and
    /// swap it in.
    pub async fn install(&self, config: Config) -> Result<(), SecretError> {
        let config = Arc::new(config);
        load_missing_secrets(&config, &self.registry, &self.secrets).await?;
        let keys =
            ClientKeys::load(&config, &self.secrets, Some(&self.client_keys()), None).await?;
        let previous = self.snapshot();
        let next = Snapshot::build(config, &self.registry, Some(&previous));
        self.client_keys.store(Arc::new(keys));
        self.snapshot.store(Arc::new(next));
        self.traffic.state_changed();
        Ok(())
    }

    /// Replace the default client key in the keyring and in memory.
    pub async fn rotate_client_key(&self) -> Result<Secret, SecretError> {
        let store = self.secrets.clone();
        let key = run_blocking(move || {
            store.rotate(
                &client_key::entry(client_key::DEFAULT_ID),
                client_key::PREFIX,
            )
        })
        .await?;
        let config = self.snapshot().config.clone();
        let keys = ClientKeys::load(
            &config,
            &self.secrets,
            Some(&self.client_keys()),
            Some(key.clone()),
        )
        .await?;
        self.client_keys.store(Arc::new(keys));
        Ok(key)
    }

    /// A request is over: meter its client key (tokens, spend, budgets crossed) and record it
    /// in the live log, the event stream and the usage history.
    pub fn finish(&self, record: RequestRecord) {
        if let Some(id) = &record.client_key
            && let Some(key) = self.client_keys().get(id)
        {
            let crossed = key.meter.record(
                &key.limits,
                record.total_tokens(),
                record.cost_usd,
                now_ms(),
            );
            for c in crossed {
                let (period, budget_usd) = match c.limit {
                    Limit::MonthlyUsd(usd) => (BudgetPeriod::Monthly, usd),
                    Limit::DailyUsd(usd) => (BudgetPeriod::Daily, usd),
                    Limit::Rpm(_) | Limit::Tpm(_) => continue,
                };
                let alert = BudgetAlert {
                    key: key.id.clone(),
                    label: key.label.clone(),
                    period,
                    budget_usd,
                    spent_usd: c.spent_usd,
                    warn_only: key.limits.warn_only,
                };
                tracing::warn!(key = %key.id, "{}", alert.message());
                self.traffic.budget_crossed(alert);
            }
        }
        self.traffic.finish(record);
    }

    /// A credential of `account_id` that is good to send now (see [`Refreshes::usable`]).
    pub async fn usable_credential(
        &self,
        provider: &ProviderRoute,
        account_id: &str,
        state: &Arc<AccountState>,
        rejected: Option<&Arc<Credential>>,
    ) -> Result<Arc<Credential>, TokenError> {
        self.refreshes
            .usable(
                &self.http,
                &self.secrets,
                provider,
                account_id,
                state,
                rejected,
            )
            .await
    }
}

/// Start each client key's meter from the history: this day's and month's spend and its last
/// use, so a restart resets no budget. A history that cannot be read leaves the meters at zero.
async fn seed_meters(history: &History, keys: &ClientKeys) {
    let now = now_ms();
    let (day_start, _) = meter::day_bounds(now);
    let (month_start, _) = meter::month_bounds(now);
    match history.key_spend(day_start, month_start).await {
        Ok(spent) => {
            for s in spent {
                if let Some(key) = keys.get(&s.key) {
                    key.meter
                        .seed(&key.limits, s.day_usd, s.month_usd, s.last_used_ms, now);
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the client keys' spend so far; budgets count from now")
        }
    }
}

/// Read from the keyring the secrets of accounts whose state has none cached yet.
async fn load_missing_secrets(
    config: &Config,
    registry: &StateRegistry,
    store: &SecretStore,
) -> Result<(), SecretError> {
    let missing: Vec<(String, AccountKind)> = config
        .accounts
        .iter()
        .filter(|a| registry.get_or_create(&a.id).credential().is_none())
        .map(|a| (a.id.clone(), a.kind))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let store = store.clone();
    let found = run_blocking(move || {
        missing
            .into_iter()
            .map(|(id, kind)| {
                let secret = store.get(&secrets::account_entry(&id))?;
                Ok((id, kind, secret))
            })
            .collect::<Result<Vec<_>, SecretError>>()
    })
    .await?;
    for (id, kind, secret) in found {
        let credential = match secret.map(|s| Credential::decode(kind, s)) {
            Some(Ok(c)) => Some(c),
            Some(Err(reason)) => {
                tracing::warn!(account = %id, "{reason}");
                None
            }
            None => {
                tracing::warn!(account = %id, "no secret in the keyring for this account; add it again");
                None
            }
        };
        registry.get_or_create(&id).set_credential(credential);
    }
    Ok(())
}
