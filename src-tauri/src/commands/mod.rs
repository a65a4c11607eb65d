//! One module per command group. Each command edits the config file under its lock (the
//! running instance picks the edit up within a second) and the secret store, and talks to a
//! running instance only to show live state or change its memory.

pub mod account;
pub mod alias;
pub mod keys;
pub mod login;
pub mod policy;
pub mod secrets;
pub mod service;
pub mod sessions;
pub mod status;
pub mod usage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use keyway_core::edit::{ConfigDocument, ConfigLock, SaveError};
use keyway_core::{Config, SecretStore};

use crate::secrets::SecretsOptions;

/// What every command needs: where the config is, where an instance would listen, and the
/// secret store, opened when a command first needs it (the encrypted file may ask for its
/// passphrase).
pub struct Context {
    pub config_path: PathBuf,
    pub listen_override: Option<SocketAddr>,
    pub secrets_options: SecretsOptions,
    secrets: tokio::sync::OnceCell<SecretStore>,
}

impl Context {
    pub fn new(
        config_path: PathBuf,
        listen_override: Option<SocketAddr>,
        secrets_options: SecretsOptions,
    ) -> Context {
        Context {
            config_path,
            listen_override,
            secrets_options,
            secrets: tokio::sync::OnceCell::new(),
        }
    }

    /// The secret store, opened on first use.
    pub async fn secrets(&self) -> anyhow::Result<SecretStore> {
        let store = self
            .secrets
            .get_or_try_init(|| async {
                let options = self.secrets_options.clone();
                let config_path = self.config_path.clone();
                tokio::task::spawn_blocking(move || {
                    crate::secrets::open(&options, &config_path, &|notice| eprintln!("{notice}"))
                })
                .await?
            })
            .await?;
        Ok(store.clone())
    }

    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&self.config_path)
            .map_err(|e| anyhow!("{e}"))?
            .0)
    }

    /// Edit the config file: take its lock (which every Keyway process, a running instance
    /// too, holds while it edits), load it, and let `change` edit and save it before the lock
    /// is released. So no other edit can land between this one's load and save. Blocking.
    pub fn edit<T>(
        &self,
        change: impl FnOnce(&mut ConfigDocument) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let _lock = lock(&self.config_path)?;
        change(&mut document(&self.config_path)?)
    }
}

/// The config file's edit lock (see [`ConfigLock`]). Blocking, for at most
/// [`keyway_core::edit::LOCK_WAIT`].
pub fn lock(path: &Path) -> anyhow::Result<ConfigLock> {
    ConfigLock::acquire(path).map_err(|e| anyhow!("cannot edit {}: {e}", path.display()))
}

/// The config file ready for editing (the embedded default when there is none yet). Only
/// under [`lock`].
pub fn document(path: &Path) -> anyhow::Result<ConfigDocument> {
    if path.exists() {
        ConfigDocument::load(path)
            .map_err(|e| anyhow!("{e}\nfix the config file first, then run the command again"))
    } else {
        Ok(ConfigDocument::default_at(path))
    }
}

impl Context {
    /// Where a running instance would answer: `--listen`, else the address a running
    /// instance recorded, else the config's `listen`.
    pub fn instance_addr(&self) -> anyhow::Result<SocketAddr> {
        if let Some(addr) = self.listen_override {
            return Ok(addr);
        }
        let recorded = std::fs::read_to_string(keyway_core::paths::instance_file())
            .ok()
            .and_then(|s| s.trim().parse().ok());
        match recorded {
            Some(addr) => Ok(addr),
            None => Ok(self.load()?.listen),
        }
    }
}

/// Save an edited document, turning a validation failure into a plain message about the edit.
pub fn save(doc: &ConfigDocument) -> anyhow::Result<Config> {
    doc.save().map_err(|e| match e {
        SaveError::Invalid(e) => anyhow!("{}", e.message),
        SaveError::Write { .. } => anyhow!("{e}"),
    })
}

/// Render Unix seconds as `HH:MM:SS UTC`, enough to read a cooldown at a glance.
pub fn clock(unix_secs: u64) -> String {
    let s = unix_secs % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}
