//! The engine: the current snapshot, the account states that outlive it, the keyring, and the
//! one HTTP client every request shares. Config changes (file watch or management API) build
//! a whole new snapshot off to the side and swap it in with one atomic store.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use keyway_core::account;
use keyway_core::config::AccountConfig;
use keyway_core::edit::{ConfigDocument, SaveError};
use keyway_core::secrets::{self, SecretError};
use keyway_core::snapshot::{OAuthEndpoints, ProviderRoute};
use keyway_core::state::{Attention, now_ms};
use keyway_core::{
    AccountKind, AccountState, Config, ConfigError, Credential, OAuthTokens, Secret, SecretStore,
    Snapshot, StateRegistry,
};

use crate::history::{self, History};
use crate::logins::Logins;
use crate::oauth::token::{self, TokenError};
use crate::traffic::Traffic;

/// A refresh in flight, shared by every request that needs it.
type Refresh = Shared<BoxFuture<'static, Result<Arc<Credential>, TokenError>>>;

/// Prefix of generated client keys, so a user can tell them from provider keys.
pub const CLIENT_KEY_PREFIX: &str = "kw-";
/// Prefix of generated management tokens.
pub const MANAGEMENT_TOKEN_PREFIX: &str = "kwm-";

pub struct Engine {
    snapshot: ArcSwap<Snapshot>,
    registry: StateRegistry,
    secrets: SecretStore,
    config_path: PathBuf,
    /// The last rejected edit of the config file, cleared by the next good one.
    rejected: Mutex<Option<ConfigError>>,
    http: reqwest::Client,
    client_key: ArcSwap<Secret>,
    management_token: Secret,
    /// Serialises config edits and reloads; never taken on the request path.
    edit_lock: tokio::sync::Mutex<()>,
    /// Login refreshes in flight, by account id.
    refreshes: Mutex<HashMap<String, Refresh>>,
    /// Subscription logins started through the management API.
    logins: Logins,
    next_request: AtomicU64,
    /// Paused: client requests are refused (503) until resumed; the management API still works.
    paused: AtomicBool,
    /// Turns true when the server starts shutting down, so that streams which never end on
    /// their own (the event stream) close and do not hold the drain.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Set when the drain time is over: streams still open end with their error event.
    ending_streams: tokio::sync::watch::Sender<bool>,
    /// Where the server listens now; moves when the listen setting changes.
    listen: ArcSwapOption<SocketAddr>,
    /// Listeners bound for a new listen address, for the serve loop to move to.
    listener_moves: tokio::sync::mpsc::UnboundedSender<tokio::net::TcpListener>,
    listener_moves_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<tokio::net::TcpListener>>>,
    /// Where the listen address is recorded for commands to find this instance.
    instance_file: OnceLock<PathBuf>,
    /// Applies a new log filter at once (set by the binary, which owns the subscriber).
    log_reloader: OnceLock<LogReloader>,
    traffic: Traffic,
}

/// Applies a `tracing` filter such as `debug` to the running subscriber.
pub type LogReloader = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Keyring(#[from] SecretError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Why a config edit did not apply. In every case the file and the running state are unchanged.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The edit itself is wrong (bad policy, unknown provider...).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The file on disk does not parse; editing it would hide the problem.
    #[error("the config file has an error ({0}); fix it, then try again")]
    Broken(ConfigError),
    #[error("{0}")]
    Io(String),
}

impl From<SaveError> for EditError {
    fn from(e: SaveError) -> Self {
        match e {
            SaveError::Invalid(e) => EditError::Invalid(e.message),
            SaveError::Write { .. } => EditError::Io(e.to_string()),
        }
    }
}

impl From<SecretError> for EditError {
    fn from(e: SecretError) -> Self {
        EditError::Io(e.to_string())
    }
}

impl Engine {
    /// Load the config (or the embedded default), read the keyring once, and build the first
    /// snapshot.
    /// `saved_state` is where account facts saved by a previous run are (see
    /// [`crate::background::save`]).
    pub async fn start(
        config_path: PathBuf,
        secrets: SecretStore,
        saved_state: Option<&Path>,
        data_dir: &Path,
    ) -> Result<Arc<Engine>, StartError> {
        let (config, _) = Config::load(&config_path)?;
        let store = secrets.clone();
        let (client_key, management_token) = run_blocking(move || {
            Ok::<_, SecretError>((
                store.get_or_create(secrets::CLIENT_KEY, CLIENT_KEY_PREFIX)?,
                store.get_or_create(secrets::MANAGEMENT_TOKEN, MANAGEMENT_TOKEN_PREFIX)?,
            ))
        })
        .await?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.limits.connect_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        let registry = StateRegistry::default();
        if let Some(path) = saved_state {
            registry.restore_from(path);
        }
        let history = match History::open(
            &data_dir.join(history::FILE_NAME),
            config.usage_retention_days,
        ) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(error = %e, "usage history is off for this run");
                None
            }
        };
        let config = Arc::new(config);
        load_missing_secrets(&config, &registry, &secrets).await?;
        let snapshot = Snapshot::build(config, &registry, None);
        let (listener_moves, moves_rx) = tokio::sync::mpsc::unbounded_channel();
        Ok(Arc::new(Engine {
            snapshot: ArcSwap::from_pointee(snapshot),
            registry,
            secrets,
            config_path,
            rejected: Mutex::new(None),
            http,
            client_key: ArcSwap::from_pointee(client_key),
            management_token,
            edit_lock: tokio::sync::Mutex::new(()),
            refreshes: Mutex::new(HashMap::new()),
            logins: Logins::default(),
            next_request: AtomicU64::new(1),
            paused: AtomicBool::new(false),
            stopping: tokio::sync::watch::Sender::new(false),
            ending_streams: tokio::sync::watch::Sender::new(false),
            listen: ArcSwapOption::empty(),
            listener_moves,
            listener_moves_rx: Mutex::new(Some(moves_rx)),
            instance_file: OnceLock::new(),
            log_reloader: OnceLock::new(),
            traffic: Traffic::new(history),
        }))
    }

    /// The current snapshot. A request keeps the one it started with until it ends.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn logins(&self) -> &Logins {
        &self.logins
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

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn client_key(&self) -> Arc<Secret> {
        self.client_key.load_full()
    }

    pub fn management_token(&self) -> &Secret {
        &self.management_token
    }

    /// The last rejected config file edit, if the file is broken now.
    pub fn rejected_edit(&self) -> Option<ConfigError> {
        self.rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_rejected(&self, e: Option<ConfigError>) {
        *self.rejected.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    /// Where the server actually listens (set once it has bound).
    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen.load().as_deref().copied()
    }

    /// Record where the server listens now, in memory and in the instance file.
    pub fn set_listen(&self, addr: SocketAddr) {
        self.listen.store(Some(Arc::new(addr)));
        if let Some(path) = self.instance_file.get()
            && let Err(e) = keyway_core::edit::write_atomic(path, addr.to_string().as_bytes())
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot record the listen address; commands will look at the config's");
        }
        self.traffic.state_changed();
    }

    /// Keep the listen address in `path` for commands such as `keyway status`.
    pub fn record_listen_in(&self, path: PathBuf) {
        let _ = self.instance_file.set(path);
        if let Some(addr) = self.listen() {
            self.set_listen(addr);
        }
    }

    /// Hand the serve loop a listener for a new address; it moves there and lets requests in
    /// flight on the old one finish. The new address is the listen address from now on, so
    /// an answer sent before the loop moves already names it.
    pub fn move_listener(&self, listener: tokio::net::TcpListener) {
        if let Ok(addr) = listener.local_addr() {
            self.set_listen(addr);
        }
        let _ = self.listener_moves.send(listener);
    }

    /// The serve loop's end of [`Engine::move_listener`]; only the first caller gets it.
    pub(crate) fn take_listener_moves(
        &self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<tokio::net::TcpListener>> {
        self.listener_moves_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub fn set_log_reloader(&self, reloader: LogReloader) {
        let _ = self.log_reloader.set(reloader);
    }

    /// Apply a log filter now. Without a reloader (an engine not started by the binary) the
    /// saved level applies at the next start.
    pub fn apply_log_level(&self, level: &str) -> Result<(), String> {
        match self.log_reloader.get() {
            Some(reload) => reload(level),
            None => Ok(()),
        }
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

    /// Tell endless streams to close: the server is shutting down.
    pub(crate) fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves when the server starts shutting down.
    pub(crate) fn stopping(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|s| *s).await;
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

    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// A short unique id for a request, for logs and the `x-keyway-request-id` header.
    pub fn next_request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Re-read the config file after it changed on disk. A valid edit is swapped in; an
    /// invalid one is logged with its location and remembered for `status`, and the last good
    /// config keeps serving.
    pub async fn reload_from_disk(&self) {
        let _edit = self.edit_lock.lock().await;
        let text = match tokio::fs::read_to_string(&self.config_path).await {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(path = %self.config_path.display(), error = %e, "cannot read the config file; the last good config keeps serving");
                return;
            }
        };
        match Config::parse(&text, Some(&self.config_path)) {
            Err(e) => {
                tracing::error!(error = %e, "config edit rejected; the last good config keeps serving");
                self.set_rejected(Some(e));
            }
            Ok(config) => {
                self.set_rejected(None);
                let current = self.snapshot();
                if config == *current.config {
                    return;
                }
                let later = restart_only_changes(&current.config, &config);
                if !later.is_empty() {
                    tracing::warn!(settings = ?later, "these settings apply when Keyway restarts");
                }
                if config.log_level != current.config.log_level
                    && let Err(e) = self.apply_log_level(&config.log_level)
                {
                    tracing::warn!(error = %e, "the new log_level does not apply");
                }
                match self.install(config).await {
                    Ok(()) => tracing::info!(path = %self.config_path.display(), "config reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "config reload failed; the last good config keeps serving")
                    }
                }
            }
        }
    }

    /// Apply `change` to the config file, validate the result as a whole, save it atomically
    /// and swap in its snapshot. Either all of that happens or none of it.
    pub async fn edit<T>(
        &self,
        change: impl FnOnce(&mut ConfigDocument, &Config) -> Result<T, EditError>,
    ) -> Result<T, EditError> {
        let _edit = self.edit_lock.lock().await;
        let mut doc = if self.config_path.exists() {
            ConfigDocument::load(&self.config_path).map_err(EditError::Broken)?
        } else {
            ConfigDocument::default_at(&self.config_path)
        };
        let current = self.snapshot();
        let out = change(&mut doc, &current.config)?;
        let config = doc.save()?;
        self.set_rejected(None);
        self.install(config).await?;
        Ok(out)
    }

    /// Read secrets the new config needs, then build and swap the snapshot.
    async fn install(&self, config: Config) -> Result<(), SecretError> {
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

    /// Store an account's credential in the keyring and in its cached state.
    pub async fn store_account_secret(
        &self,
        account_id: &str,
        credential: Credential,
    ) -> Result<(), SecretError> {
        let store = self.secrets.clone();
        let name = secrets::account_entry(account_id);
        let encoded = credential.encode();
        run_blocking(move || store.set(&name, &encoded)).await?;
        let state = self.registry.get_or_create(account_id);
        state.set_credential(Some(credential));
        state.reset();
        Ok(())
    }

    /// A credential of `member` that is good to send now. An API key as it is; a login whose
    /// access token expires within the provider's lead time is refreshed first. After a 401
    /// with `rejected`, the login is refreshed unless someone already replaced that token.
    ///
    /// Refreshes are single-flight per account: concurrent callers share one token call, run
    /// on its own task so that a caller going away does not cancel it.
    pub async fn usable_credential(
        &self,
        provider: &ProviderRoute,
        account_id: &str,
        state: &Arc<AccountState>,
        rejected: Option<&Arc<Credential>>,
    ) -> Result<Arc<Credential>, TokenError> {
        let current = state
            .credential()
            .ok_or_else(|| TokenError::Transient("no credential in the keyring".into()))?;
        let Some(tokens) = current.oauth() else {
            return Ok(current);
        };
        let endpoints = provider.oauth.clone().ok_or_else(|| {
            TokenError::Revoked(format!("{} has no subscription logins", provider.id))
        })?;
        match rejected {
            Some(used) if !Arc::ptr_eq(used, &current) => return Ok(current),
            None if tokens.expires_at_ms > now_ms() + endpoints.refresh_lead_ms => {
                return Ok(current);
            }
            _ => {}
        }
        let flight = {
            let mut flights = self.refreshes.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(account_id) {
                Some(f) => f.clone(),
                None => {
                    // A refresh may have finished since `current` was read: its refresh token
                    // is the live one, and the old one is already spent.
                    let latest = state.credential();
                    if let Some(latest) = latest.filter(|l| !Arc::ptr_eq(l, &current)) {
                        return Ok(latest);
                    }
                    let task = tokio::spawn(refresh_and_store(
                        self.http.clone(),
                        self.secrets.clone(),
                        endpoints,
                        account_id.to_owned(),
                        state.clone(),
                        tokens.clone(),
                    ));
                    let f: Refresh = async move {
                        task.await.unwrap_or_else(|_| {
                            Err(TokenError::Transient("the refresh task failed".into()))
                        })
                    }
                    .boxed()
                    .shared();
                    flights.insert(account_id.to_owned(), f.clone());
                    f
                }
            }
        };
        let result = flight.clone().await;
        let mut flights = self.refreshes.lock().unwrap_or_else(|p| p.into_inner());
        if flights.get(account_id).is_some_and(|f| f.ptr_eq(&flight)) {
            flights.remove(account_id);
        }
        result
    }

    /// Add an account: its credential to the keyring first, then to the config, so that a
    /// snapshot naming the account also finds its secret; a failed save removes the secret
    /// again. `confirm_terms` records the user's confirmation of the provider's terms risk for
    /// logins. Returns the new id.
    pub async fn add_account(
        &self,
        provider: &str,
        label: String,
        weight: u32,
        credential: Credential,
        confirm_terms: bool,
    ) -> Result<String, EditError> {
        let current = self.snapshot();
        let id = account::new_id(provider, |id| current.config.account(id).is_some());
        let kind = match credential {
            Credential::ApiKey(_) => AccountKind::ApiKey,
            Credential::OAuth(_) => AccountKind::OAuth,
        };
        self.store_account_secret(&id, credential).await?;
        let account = AccountConfig {
            id: id.clone(),
            provider: provider.to_owned(),
            label,
            kind,
            weight,
            enabled: true,
        };
        let added = self
            .edit(|doc, _| {
                doc.add_account(&account);
                if confirm_terms {
                    doc.set_provider_field(provider, "oauth_terms_accepted", true.into());
                }
                Ok(())
            })
            .await;
        if let Err(e) = added {
            let _ = self.delete_account_secret(&id).await;
            return Err(e);
        }
        Ok(id)
    }

    /// Remove an account's secret from the keyring.
    pub async fn delete_account_secret(&self, account_id: &str) -> Result<(), SecretError> {
        let store = self.secrets.clone();
        let name = secrets::account_entry(account_id);
        run_blocking(move || store.delete(&name).map(|_| ())).await
    }
}

/// Settings read once at start: changing them in a running instance has no effect until a
/// restart, which the user is told.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.listen != new.listen {
        changed.push("listen");
    }
    if old.limits.connect_timeout_secs != new.limits.connect_timeout_secs {
        changed.push("limits.connect_timeout_secs");
    }
    if old.limits.drain_secs != new.limits.drain_secs {
        changed.push("limits.drain_secs");
    }
    changed
}

/// Refresh a login and keep the result: the rotated refresh token goes to the keyring before
/// the new access token is used, since the old refresh token is dead from now on.
async fn refresh_and_store(
    http: reqwest::Client,
    store: SecretStore,
    endpoints: OAuthEndpoints,
    account_id: String,
    state: Arc<AccountState>,
    old: OAuthTokens,
) -> Result<Arc<Credential>, TokenError> {
    match token::refresh(&http, &endpoints, &old).await {
        Ok(tokens) => {
            let credential = Credential::OAuth(tokens);
            let encoded = credential.encode();
            let name = secrets::account_entry(&account_id);
            if let Err(e) = run_blocking(move || store.set(&name, &encoded)).await {
                // Losing the new refresh token would lose the login: keep using it, loudly.
                tracing::error!(account = %account_id, error = %e, "cannot save the renewed login to the keyring; it lasts until Keyway stops");
            }
            state.set_credential(Some(credential));
            tracing::info!(account = %account_id, "login renewed");
            state
                .credential()
                .ok_or_else(|| TokenError::Transient("the renewed login vanished".into()))
        }
        Err(TokenError::Revoked(reason)) => {
            state.mark(Attention::NeedsLogin, reason.clone());
            Err(TokenError::Revoked(reason))
        }
        Err(TokenError::Transient(reason)) => {
            state.record_cooldown(None, reason.clone(), now_ms());
            Err(TokenError::Transient(reason))
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

/// Run keyring IPC on a blocking thread so that no async worker waits on it.
async fn run_blocking<T: Send + 'static, E: Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}
