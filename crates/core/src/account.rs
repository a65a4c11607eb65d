//! Accounts: kinds, id generation, and adding one (config and keyring together).

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::{AccountConfig, Config, ConfigError};
use crate::credential::Credential;
use crate::edit::{ConfigDocument, SaveError};
use crate::limits::AccountLimits;
use crate::secrets::{self, SecretError, SecretStore};

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    #[default]
    ApiKey,
    /// A subscription login (Claude, ChatGPT): OAuth tokens, refreshed by Keyway.
    #[serde(rename = "oauth")]
    OAuth,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::ApiKey => "api_key",
            AccountKind::OAuth => "oauth",
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new account id: the provider and six random hex digits, e.g. `anthropic-3f9a1c`.
/// Short enough to type, and `taken` guarantees uniqueness within the config.
pub fn new_id(provider: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    loop {
        let id = format!("{provider}-{:06x}", rng.random_range(0..0x100_0000u32));
        if !taken(&id) {
            return id;
        }
    }
}

/// An account to add, before it has an id.
pub struct NewAccount {
    pub provider: String,
    pub label: String,
    pub weight: u32,
    pub credential: Credential,
    /// Record that the user confirmed the provider's terms risk of subscription logins.
    pub confirm_terms: bool,
}

/// Why an account's limits were not set. In every case the config file is as it was.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("no account `{0}`; see `keyway account list`")]
    Unknown(String),
    #[error("{}", .0.message)]
    Invalid(ConfigError),
    #[error(transparent)]
    Save(#[from] SaveError),
}

/// Change account `id`'s limits to `change(current limits)`, reading the current ones from
/// the document the caller holds under the config lock, so that two edits of different
/// limits of one account both stay; returns the saved config and the limits now set. The CLI
/// (with no instance running) comes here.
pub fn change_limits(
    doc: &mut ConfigDocument,
    id: &str,
    change: impl FnOnce(AccountLimits) -> AccountLimits,
) -> Result<(Config, AccountLimits), LimitError> {
    let current = doc.validate().map_err(LimitError::Invalid)?;
    let Some(account) = current.account(id) else {
        return Err(LimitError::Unknown(id.to_owned()));
    };
    let limits = change(account.limits);
    doc.set_account_limits(id, &limits);
    match doc.save() {
        Ok(config) => Ok((config, limits)),
        Err(SaveError::Invalid(e)) => Err(LimitError::Invalid(e)),
        Err(e) => Err(e.into()),
    }
}

/// Why an account was not added. In every case the config file and the keyring are as they
/// were.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The config with the new account does not validate (an unknown provider, say).
    #[error("{}", .0.message)]
    Invalid(ConfigError),
    #[error(transparent)]
    Keyring(#[from] SecretError),
    #[error(transparent)]
    Save(#[from] SaveError),
}

/// Add `new` to the config document and its secret to the keyring; returns the new id and
/// the saved config. The edited config is validated before the keyring is touched, the
/// secret is stored before the config is saved (so whoever sees the account in the file also
/// finds its secret), and a failed save removes the secret again: no half-added account, no
/// orphaned keyring entry.
///
/// Blocking: keyring IPC and file writes. The CLI and the running instance both add accounts
/// here.
pub fn add(
    doc: &mut ConfigDocument,
    store: &SecretStore,
    new: NewAccount,
) -> Result<(String, Config), AddError> {
    let current = doc.validate().map_err(AddError::Invalid)?;
    let id = new_id(&new.provider, |id| current.account(id).is_some());
    doc.add_account(&AccountConfig {
        id: id.clone(),
        provider: new.provider.clone(),
        label: new.label,
        kind: new.credential.kind(),
        weight: new.weight,
        enabled: true,
        limits: Default::default(),
    });
    if new.confirm_terms {
        doc.set_provider_field(&new.provider, "oauth_terms_accepted", true.into());
    }
    doc.validate().map_err(AddError::Invalid)?;
    let entry = secrets::account_entry(&id);
    store.set(&entry, &new.credential.encode())?;
    match doc.save() {
        Ok(config) => Ok((id, config)),
        Err(e) => {
            if let Err(cleanup) = store.delete(&entry) {
                tracing::warn!(account = %id, error = %cleanup, "the config was not saved and the new secret could not be removed from the keyring");
            }
            Err(e.into())
        }
    }
}
