//! Client keys: the keys coding tools send to Keyway, one per tool if the user likes, so that
//! what each tool spends can be told apart and held to limits.
//!
//! The default key (id [`DEFAULT_ID`]) is the one Keyway always had: it exists without any
//! config entry, its secret is the keyring's [`crate::secrets::CLIENT_KEY`], and it can be
//! rotated but not revoked. Named keys are `[[client_keys]]` entries (id, label, creation
//! time, limits) with their secrets in the keyring under [`secrets::client_key_entry`].
//! An entry with `id = "default"` only gives the default key a label or limits.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::{ClientKeyConfig, Config, ConfigError};
use crate::edit::{ConfigDocument, SaveError};
use crate::secrets::{self, Secret, SecretError, SecretStore};

/// The id of the key Keyway always had.
pub const DEFAULT_ID: &str = "default";
/// The default key's label when the config gives none.
pub const DEFAULT_LABEL: &str = "Default";
/// Prefix of generated client keys, so a user can tell them from provider keys.
pub const PREFIX: &str = "kw-";
/// Most named client keys: each request compares the key it presents with every key, in
/// constant time, so the list stays short.
pub const MAX_KEYS: usize = 100;
/// Longest label.
pub const MAX_LABEL_CHARS: usize = 64;

/// Limits a client key may carry; every one optional.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens (input and output) per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Spend per local day, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    /// Spend per local calendar month, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
    /// Budgets only warn (a notification, a banner); requests are never refused for spend.
    /// Rate limits always apply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warn_only: bool,
}

/// The ranges limits must be in.
pub const RPM_RANGE: std::ops::RangeInclusive<u32> = 1..=1_000_000;
pub const TPM_RANGE: std::ops::RangeInclusive<u64> = 1..=10_000_000_000;
/// A budget above this is a typo, not a budget.
pub const MAX_BUDGET_USD: f64 = 1_000_000.0;

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none()
            && self.tpm.is_none()
            && self.daily_usd.is_none()
            && self.monthly_usd.is_none()
    }

    /// The first limit out of range: its field name and what is wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(rpm) = self.rpm
            && !RPM_RANGE.contains(&rpm)
        {
            return Err((
                "rpm",
                format!(
                    "rpm must be between {} and {} requests per minute",
                    RPM_RANGE.start(),
                    RPM_RANGE.end()
                ),
            ));
        }
        if let Some(tpm) = self.tpm
            && !TPM_RANGE.contains(&tpm)
        {
            return Err((
                "tpm",
                format!(
                    "tpm must be between {} and {} tokens per minute",
                    TPM_RANGE.start(),
                    TPM_RANGE.end()
                ),
            ));
        }
        for (name, usd) in [
            ("daily_usd", self.daily_usd),
            ("monthly_usd", self.monthly_usd),
        ] {
            if let Some(usd) = usd
                && !(usd.is_finite() && usd > 0.0 && usd <= MAX_BUDGET_USD)
            {
                return Err((
                    name,
                    format!(
                        "{name} must be a number of dollars above 0 and at most {MAX_BUDGET_USD}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A new key id: `ck-` and six random hex digits; `taken` guarantees uniqueness.
pub fn new_id(taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    loop {
        let id = format!("ck-{:06x}", rng.random_range(0..0x100_0000u32));
        if !taken(&id) {
            return id;
        }
    }
}

/// The keyring entry of key `id`'s secret.
pub fn entry(id: &str) -> String {
    if id == DEFAULT_ID {
        secrets::CLIENT_KEY.to_owned()
    } else {
        secrets::client_key_entry(id)
    }
}

/// Why a key was not added, changed or revoked. In every case the config file and the keyring
/// are as they were.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no client key `{0}`; `keyway client-key list` shows the keys")]
    Unknown(String),
    #[error(
        "the default client key cannot be revoked (tools set up before named keys use it); \
         rotate it with `keyway client-key --rotate`"
    )]
    DefaultKey,
    #[error("{}", .0.message)]
    Invalid(ConfigError),
    #[error(transparent)]
    Keyring(#[from] SecretError),
    #[error(transparent)]
    Save(#[from] SaveError),
}

/// Add a key labelled `label` (with a new random secret) to the document and the keyring;
/// returns its id, its secret and the saved config. As with accounts, the edit is validated
/// before the keyring is touched, the secret is stored before the config is saved, and a
/// failed save removes the secret again.
///
/// Blocking: keyring IPC and file writes.
pub fn add(
    doc: &mut ConfigDocument,
    store: &SecretStore,
    label: &str,
    created_ms: u64,
) -> Result<(String, Secret, Config), KeyError> {
    let current = doc.validate().map_err(KeyError::Invalid)?;
    let id = new_id(|id| id == DEFAULT_ID || current.client_key(id).is_some());
    doc.add_client_key(&ClientKeyConfig {
        id: id.clone(),
        label: label.trim().to_owned(),
        created_ms,
        limits: Limits::default(),
    });
    doc.validate().map_err(KeyError::Invalid)?;
    let secret = Secret::random(PREFIX);
    let name = entry(&id);
    store.set(&name, &secret)?;
    match doc.save() {
        Ok(config) => Ok((id, secret, config)),
        Err(e) => {
            if let Err(cleanup) = store.delete(&name) {
                tracing::warn!(key = %id, error = %cleanup, "the config was not saved and the new client key could not be removed from the keyring");
            }
            Err(e.into())
        }
    }
}

/// Remove key `id` from the document and its secret from the keyring; returns the saved
/// config. The config goes first: a key the config no longer names is refused at once by a
/// running instance, whether or not its secret is still in the keyring.
pub fn revoke(doc: &mut ConfigDocument, store: &SecretStore, id: &str) -> Result<Config, KeyError> {
    if id == DEFAULT_ID {
        return Err(KeyError::DefaultKey);
    }
    if !doc.remove_client_key(id) {
        return Err(KeyError::Unknown(id.to_owned()));
    }
    let config = doc.save()?;
    if let Err(e) = store.delete(&entry(id)) {
        tracing::warn!(key = %id, error = %e, "the client key is revoked, but its secret could not be removed from the keyring");
    }
    Ok(config)
}

/// Set (or with `Limits::default()`, clear) key `id`'s limits; returns the saved config.
pub fn set_limits(doc: &mut ConfigDocument, id: &str, limits: &Limits) -> Result<Config, KeyError> {
    let current = doc.validate().map_err(KeyError::Invalid)?;
    if id != DEFAULT_ID && current.client_key(id).is_none() {
        return Err(KeyError::Unknown(id.to_owned()));
    }
    doc.set_client_key_limits(id, limits);
    Ok(doc.save()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_out_of_range_are_named() {
        let ok = Limits {
            rpm: Some(60),
            tpm: Some(100_000),
            daily_usd: Some(5.0),
            monthly_usd: Some(50.0),
            warn_only: false,
        };
        assert_eq!(ok.check(), Ok(()));
        for (bad, field) in [
            (Limits { rpm: Some(0), ..ok }, "rpm"),
            (Limits { tpm: Some(0), ..ok }, "tpm"),
            (
                Limits {
                    daily_usd: Some(f64::NAN),
                    ..ok
                },
                "daily_usd",
            ),
            (
                Limits {
                    daily_usd: Some(-1.0),
                    ..ok
                },
                "daily_usd",
            ),
            (
                Limits {
                    monthly_usd: Some(f64::INFINITY),
                    ..ok
                },
                "monthly_usd",
            ),
            (
                Limits {
                    monthly_usd: Some(2e6),
                    ..ok
                },
                "monthly_usd",
            ),
        ] {
            assert_eq!(bad.check().map_err(|(f, _)| f), Err(field), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_short_and_unique() {
        let id = new_id(|_| false);
        assert!(id.starts_with("ck-") && id.len() == 9, "{id}");
        assert_eq!(entry(DEFAULT_ID), secrets::CLIENT_KEY);
        assert_eq!(entry(&id), format!("client-key:{id}"));
    }
}
