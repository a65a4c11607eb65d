//! The engine: what every request shares. The current snapshot, the account states that
//! outlive it, the keyring, the one HTTP client, the client key, the refreshes in flight and
//! the request records. Config changes build a whole new snapshot off to the side and swap it
//! in with one atomic store ([`Engine::install`]).
//!
//! The server's lifecycle ([`crate::Server`]) and what only the management side drives
//! ([`crate::Management`]: config edits, logins) live elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use keyway_core::secrets::{self, SecretError};
use keyway_core::session::{self, Owners, Sessions};
use keyway_core::snapshot::ProviderRoute;
use keyway_core::{
    AccountKind, AccountState, Config, Credential, Secret, SecretStore, Snapshot, StateRegistry,
    paths,
};

use crate::blocking::run_blocking;
use crate::oauth::token::TokenError;
use crate::record::history::History;
use crate::record::traffic::Traffic;
use crate::refresh::Refreshes;

/// Prefix of generated client keys, so a user can tell them from provider keys.
pub const CLIENT_KEY_PREFIX: &str = "kw-";

pub struct Engine {
    snapshot: ArcSwap<Snapshot>,
    registry: StateRegistry,
    secrets: SecretStore,
    http: reqwest::Client,
    client_key: ArcSwap<Secret>,
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
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl Engine {
    /// Read the keyring once, restore the account facts saved by a previous run (see
    /// [`crate::background::save`]), open the usage history, and build the first snapshot of
    /// `config`.
    pub async fn start(config: Config, secrets: SecretStore) -> Result<Arc<Engine>, StartError> {
        let store = secrets.clone();
        let client_key =
            run_blocking(move || store.get_or_create(secrets::CLIENT_KEY, CLIENT_KEY_PREFIX))
                .await?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.limits.connect_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        let registry = StateRegistry::default();
        registry.restore_from(&paths::state_file());
        let (sessions, owners) = (Sessions::default(), Owners::default());
        session::restore_from(&paths::sessions_file(), &sessions, &owners);
        let history = match History::open(&paths::history_file(), config.usage_retention_days) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(error = %e, "usage history is off for this run");
                None
            }
        };
        let config = Arc::new(config);
        load_missing_secrets(&config, &registry, &secrets).await?;
        let snapshot = Snapshot::build(config, &registry, None);
        Ok(Arc::new(Engine {
            snapshot: ArcSwap::from_pointee(snapshot),
            registry,
            secrets,
            http,
            client_key: ArcSwap::from_pointee(client_key),
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

    pub fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    pub fn client_key(&self) -> Arc<Secret> {
        self.client_key.load_full()
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
        let previous = self.snapshot();
        let next = Snapshot::build(config, &self.registry, Some(&previous));
        self.snapshot.store(Arc::new(next));
        self.traffic.state_changed();
        Ok(())
    }

    /// Replace the client key in the keyring and in memory.
    pub async fn rotate_client_key(&self) -> Result<Arc<Secret>, SecretError> {
        let store = self.secrets.clone();
        let key =
            run_blocking(move || store.rotate(secrets::CLIENT_KEY, CLIENT_KEY_PREFIX)).await?;
        self.client_key.store(Arc::new(key));
        Ok(self.client_key())
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
