//! The credential store: the OS keyring (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows). Every call here blocks on IPC, so async callers run it on
//! a blocking thread, and the request path never calls it: secrets are read once and cached
//! in [`crate::AccountState`].

use std::fmt;

use rand::Rng;

/// A secret value. Its `Debug` and `Display` never show it, so it cannot leak through a log
/// line, an error or a panic message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The only way to read the value; grep for it to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A new random token with a recognisable prefix, e.g. `kw-` + 48 hex digits.
    pub fn random(prefix: &str) -> Secret {
        let bytes: [u8; 24] = rand::rng().random();
        let mut s = String::with_capacity(prefix.len() + 48);
        s.push_str(prefix);
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        Secret(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Entry name of the key that coding tools send to Keyway.
pub const CLIENT_KEY: &str = "client-key";
/// Entry name of the token that guards the management API.
pub const MANAGEMENT_TOKEN: &str = "management-token";

/// Entry name of a named client key's secret (the default key's is [`CLIENT_KEY`]).
pub fn client_key_entry(key_id: &str) -> String {
    format!("client-key:{key_id}")
}

/// Entry name of an account's secret.
pub fn account_entry(account_id: &str) -> String {
    format!("account:{account_id}")
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot use the OS keyring for `{entry}`: {message}. On Linux a Secret Service provider \
     (gnome-keyring or KWallet) must be running and unlocked in your session"
)]
pub struct SecretError {
    entry: String,
    message: String,
}

impl SecretError {
    /// An entry that should exist and does not.
    pub fn missing(entry: &str) -> SecretError {
        SecretError {
            entry: entry.to_owned(),
            message: "the entry is missing".to_owned(),
        }
    }
}

/// Keyring entries under one service name: `keyway` by default, `KEYWAY_KEYRING_SERVICE` when
/// set, so that tests never touch a user's real entries.
#[derive(Debug, Clone)]
pub struct SecretStore {
    service: String,
}

impl SecretStore {
    pub fn new(service: impl Into<String>) -> SecretStore {
        SecretStore {
            service: service.into(),
        }
    }

    pub fn from_env() -> SecretStore {
        SecretStore::new(
            std::env::var("KEYWAY_KEYRING_SERVICE").unwrap_or_else(|_| "keyway".to_owned()),
        )
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(&self.service, name).map_err(|e| self.error(name, e))
    }

    fn error(&self, name: &str, e: keyring::Error) -> SecretError {
        SecretError {
            entry: format!("{}/{}", self.service, name),
            message: e.to_string(),
        }
    }

    pub fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        match self.entry(name)?.get_password() {
            Ok(v) => Ok(Some(Secret(v))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(self.error(name, e)),
        }
    }

    pub fn set(&self, name: &str, secret: &Secret) -> Result<(), SecretError> {
        self.entry(name)?
            .set_password(secret.expose())
            .map_err(|e| self.error(name, e))
    }

    /// False when there was nothing to delete.
    pub fn delete(&self, name: &str) -> Result<bool, SecretError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(self.error(name, e)),
        }
    }

    /// The stored token, or a new random one stored now.
    pub fn get_or_create(&self, name: &str, prefix: &str) -> Result<Secret, SecretError> {
        if let Some(s) = self.get(name)? {
            return Ok(s);
        }
        let s = Secret::random(prefix);
        self.set(name, &s)?;
        Ok(s)
    }

    /// Replace a token with a new random one.
    pub fn rotate(&self, name: &str, prefix: &str) -> Result<Secret, SecretError> {
        let s = Secret::random(prefix);
        self.set(name, &s)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sk-ant-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(!format!("{:?}", Some(&s)).contains("very-secret"));
    }

    #[test]
    fn random_tokens_differ_and_carry_the_prefix() {
        let a = Secret::random("kw-");
        let b = Secret::random("kw-");
        assert!(a.expose().starts_with("kw-") && a.expose().len() == 51);
        assert_ne!(a, b);
    }
}
