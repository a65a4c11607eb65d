//! What only the management side drives: config edits (one at a time, validated whole,
//! saved atomically, then swapped into the engine), the last rejected edit of the file, the
//! subscription logins in progress, the management token and the live log filter.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use keyway_core::account::{self, NewAccount};
use keyway_core::client_key::{self, Limits};
use keyway_core::edit::{ConfigDocument, ConfigLock};
use keyway_core::secrets::{self, SecretError};
use keyway_core::state::now_ms;
use keyway_core::{Config, ConfigError, Secret};

use super::error::{Error, Result};
use super::login_sessions::LoginSessions;
use crate::blocking::run_blocking;
use crate::engine::Engine;
use crate::server::Server;

/// Prefix of generated management tokens.
pub const MANAGEMENT_TOKEN_PREFIX: &str = "kwm-";

/// Applies a `tracing` filter such as `debug` to the running subscriber.
pub type LogReloader = Box<dyn Fn(&str) -> std::result::Result<(), String> + Send + Sync>;

pub struct Management {
    engine: Arc<Engine>,
    server: Arc<Server>,
    config_path: PathBuf,
    /// The management token; [`Management::rotate_token`] replaces it.
    token: ArcSwap<Secret>,
    /// Serialises config edits and reloads. A Tokio mutex: an edit holds it across the
    /// keyring and file work it awaits. Never taken on the request path.
    edits: tokio::sync::Mutex<()>,
    /// The last rejected edit of the config file, cleared by the next good one.
    rejected: Mutex<Option<ConfigError>>,
    logins: LoginSessions,
    /// Applies a new log filter at once; `None` when nobody owns a reloadable subscriber.
    log_reloader: Option<LogReloader>,
}

impl Management {
    /// Read (or create) the management token, then take charge of `config_path`.
    pub async fn start(
        engine: Arc<Engine>,
        server: Arc<Server>,
        config_path: PathBuf,
        log_reloader: Option<LogReloader>,
    ) -> std::result::Result<Arc<Management>, SecretError> {
        let store = engine.secrets().clone();
        let token = run_blocking(move || {
            store.get_or_create(secrets::MANAGEMENT_TOKEN, MANAGEMENT_TOKEN_PREFIX)
        })
        .await?;
        Ok(Arc::new(Management {
            engine,
            server,
            config_path,
            token: ArcSwap::from_pointee(token),
            edits: tokio::sync::Mutex::new(()),
            rejected: Mutex::new(None),
            logins: LoginSessions::default(),
            log_reloader,
        }))
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn token(&self) -> Arc<Secret> {
        self.token.load_full()
    }

    /// A new management token, in the keyring first, then in force: the old one stops working
    /// at once (the dashboard needs the new address, `keyway dashboard-url`).
    pub async fn rotate_token(&self) -> Result<Arc<Secret>> {
        let store = self.engine.secrets().clone();
        let token =
            run_blocking(move || store.rotate(secrets::MANAGEMENT_TOKEN, MANAGEMENT_TOKEN_PREFIX))
                .await?;
        self.token.store(Arc::new(token));
        tracing::info!("management token rotated");
        Ok(self.token())
    }

    pub fn logins(&self) -> &LoginSessions {
        &self.logins
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

    /// Apply a log filter now. Without a reloader the saved level applies at the next start.
    pub fn apply_log_level(&self, level: &str) -> std::result::Result<(), String> {
        match &self.log_reloader {
            Some(reload) => reload(level),
            None => Ok(()),
        }
    }

    /// The lock every Keyway process holds while it edits the config file (the CLI too), so
    /// that an edit here and one from `keyway account add` never overwrite each other.
    async fn lock_file(&self) -> Result<ConfigLock> {
        let path = self.config_path.clone();
        run_blocking(move || ConfigLock::acquire(&path))
            .await
            .map_err(|e| Error::Conflict(format!("cannot edit the config now: {e}")))
    }

    /// Apply `change` to the config file as it is on disk (with the config it describes),
    /// validate the result as a whole, save it atomically and swap in its snapshot. Either
    /// all of that happens or none of it. The file is locked from loading to saving.
    pub async fn edit<T>(
        &self,
        change: impl FnOnce(&mut ConfigDocument, &Config) -> Result<T>,
    ) -> Result<T> {
        let _edit = self.edits.lock().await;
        let (out, config) = {
            let _file = self.lock_file().await?;
            let mut doc = document(&self.config_path)?;
            let current = doc.validate().map_err(Error::BrokenConfig)?;
            let out = change(&mut doc, &current)?;
            (out, doc.save()?)
        };
        self.set_rejected(None);
        self.engine.install(config).await?;
        Ok(out)
    }

    /// Add an account (its secret to the keyring, then the config; see
    /// [`keyway_core::account::add`]) and swap in the snapshot that serves it. Returns the id.
    pub async fn add_account(&self, new: NewAccount) -> Result<String> {
        let _edit = self.edits.lock().await;
        let lock = self.lock_file().await?;
        let mut doc = document(&self.config_path)?;
        let store = self.engine.secrets().clone();
        let (id, config) = run_blocking(move || account::add(&mut doc, &store, new)).await?;
        drop(lock);
        self.set_rejected(None);
        self.engine.install(config).await?;
        Ok(id)
    }

    /// Add a client key labelled `label` (its secret to the keyring, then the config; see
    /// [`keyway_core::client_key::add`]) and start accepting it. Returns its id and secret.
    pub async fn add_client_key(&self, label: &str) -> Result<(String, Secret)> {
        let _edit = self.edits.lock().await;
        let lock = self.lock_file().await?;
        let mut doc = document(&self.config_path)?;
        let store = self.engine.secrets().clone();
        let label = label.to_owned();
        let (id, secret, config) =
            run_blocking(move || client_key::add(&mut doc, &store, &label, now_ms())).await?;
        drop(lock);
        self.set_rejected(None);
        self.engine.install(config).await?;
        Ok((id, secret))
    }

    /// Stop accepting client key `id` and remove it from the config and the keyring.
    pub async fn revoke_client_key(&self, id: &str) -> Result<()> {
        let _edit = self.edits.lock().await;
        let lock = self.lock_file().await?;
        let mut doc = document(&self.config_path)?;
        let store = self.engine.secrets().clone();
        let key = id.to_owned();
        let config = run_blocking(move || client_key::revoke(&mut doc, &store, &key)).await?;
        drop(lock);
        self.set_rejected(None);
        self.engine.install(config).await?;
        Ok(())
    }

    /// Replace client key `id`'s limits (empty: none).
    pub async fn set_client_key_limits(&self, id: &str, limits: Limits) -> Result<()> {
        if let Err((field, message)) = limits.check() {
            return Err(Error::BadRequest(format!("{field}: {message}")));
        }
        let _edit = self.edits.lock().await;
        let lock = self.lock_file().await?;
        let mut doc = document(&self.config_path)?;
        let key = id.to_owned();
        let config = run_blocking(move || client_key::set_limits(&mut doc, &key, &limits)).await?;
        drop(lock);
        self.set_rejected(None);
        self.engine.install(config).await?;
        Ok(())
    }

    /// Remove an account from the config, then its secret from the keyring. Returns the
    /// policies that named only this account and were removed with it.
    pub async fn remove_account(&self, id: &str) -> Result<Vec<String>> {
        let removed = self
            .edit(|doc, _| doc.remove_account(id).ok_or_else(|| unknown_account(id)))
            .await?;
        let store = self.engine.secrets().clone();
        let entry = secrets::account_entry(id);
        if let Err(e) = run_blocking(move || store.delete(&entry)).await {
            tracing::warn!(account = %id, error = %e, "account removed but its keyring entry could not be deleted");
        }
        Ok(removed)
    }

    /// Re-read the config file after it changed on disk. A valid edit is swapped in; an
    /// invalid one is logged with its location and remembered for `status`, and the last good
    /// config keeps serving.
    pub async fn reload_from_disk(&self) {
        let _edit = self.edits.lock().await;
        // Read what the last edit saved, not a file another process is between loading and
        // saving (its save is atomic either way; the lock keeps the order).
        let lock = match self.lock_file().await {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(error = %e, "the config file changed but stays locked; the last good config keeps serving");
                return;
            }
        };
        let text = match tokio::fs::read_to_string(&self.config_path).await {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(path = %self.config_path.display(), error = %e, "cannot read the config file; the last good config keeps serving");
                return;
            }
        };
        drop(lock);
        let config = match Config::parse(&text, Some(&self.config_path)) {
            Ok(config) => config,
            Err(e) => {
                tracing::error!(error = %e, "config edit rejected; the last good config keeps serving");
                self.set_rejected(Some(e));
                return;
            }
        };
        self.set_rejected(None);
        let current = self.engine.snapshot();
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
        match self.engine.install(config).await {
            Ok(()) => tracing::info!(path = %self.config_path.display(), "config reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "config reload failed; the last good config keeps serving")
            }
        }
    }
}

/// The config file at `path` ready for editing (the embedded default when there is none yet).
fn document(path: &Path) -> Result<ConfigDocument> {
    if path.exists() {
        ConfigDocument::load(path).map_err(Error::BrokenConfig)
    } else {
        Ok(ConfigDocument::default_at(path))
    }
}

/// The error for an account id that is not in the config.
pub fn unknown_account(id: &str) -> Error {
    Error::NotFound(format!(
        "no account `{id}`; list them with GET /api/accounts"
    ))
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
    if old.limits.max_connections != new.limits.max_connections {
        changed.push("limits.max_connections");
    }
    if old.secrets != new.secrets {
        changed.push("secrets");
    }
    changed
}
