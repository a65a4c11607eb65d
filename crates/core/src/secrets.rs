//! The credential store. One [`SecretStore`] over either the OS keyring (Secret Service on
//! Linux, Keychain on macOS, Credential Manager on Windows) or Keyway's encrypted file store in
//! the data dir ([`file`]), both through the `keyring-core` credential store API, so that every
//! caller is the same whichever holds the secrets.
//!
//! Every call here blocks (IPC, or file I/O and decryption), so async callers run it on a
//! blocking thread, and the request path never calls it: secrets are read once and cached in
//! [`crate::AccountState`].

pub mod file;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use keyring_core::api::CredentialStore;
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use file::KeySource;

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

/// Every entry Keyway keeps for `config`: the default client key, the management token, one
/// per named client key and one per account. What `keyway secrets migrate` moves.
pub fn entries_of(config: &crate::Config) -> Vec<String> {
    let mut names = vec![CLIENT_KEY.to_owned(), MANAGEMENT_TOKEN.to_owned()];
    names.extend(
        config
            .client_keys
            .iter()
            .filter(|k| k.id != crate::client_key::DEFAULT_ID)
            .map(|k| client_key_entry(&k.id)),
    );
    names.extend(config.accounts.iter().map(|a| account_entry(&a.id)));
    names
}

/// Which store holds the secrets: `secrets = "os" | "file"` in the config, `--secrets`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The OS keyring.
    Os,
    /// Keyway's encrypted file in the data dir.
    File,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Os => "os",
            StoreKind::File => "file",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<StoreKind, String> {
        match s {
            "os" => Ok(StoreKind::Os),
            "file" => Ok(StoreKind::File),
            _ => Err(format!("`{s}` is not a secret store: use `os` or `file`")),
        }
    }
}

/// The keyring service name entries live under: `keyway`, or `KEYWAY_KEYRING_SERVICE` when
/// set, so that tests never touch a user's real entries.
pub fn service_from_env() -> String {
    std::env::var("KEYWAY_KEYRING_SERVICE").unwrap_or_else(|_| "keyway".to_owned())
}

/// The name of the OS keyring on this platform, for messages and status.
pub const OS_KEYRING: &str = if cfg!(target_os = "macos") {
    "macOS Keychain"
} else if cfg!(windows) {
    "Windows Credential Manager"
} else {
    "Secret Service"
};

/// What to do without an OS keyring, said wherever one is missing.
const WITHOUT_OS_KEYRING: &str = "On Linux a Secret Service provider (gnome-keyring or KWallet) \
     must be running and unlocked in your session; without one, keep secrets in Keyway's \
     encrypted file store: `--secrets file` or `secrets = \"file\"` in the config (`keyway \
     secrets migrate --to file` moves existing ones)";

/// A store that could not be used. The message names the problem and the fix; it never holds
/// a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SecretError {
    message: String,
}

impl SecretError {
    pub(crate) fn new(message: impl Into<String>) -> SecretError {
        SecretError {
            message: message.into(),
        }
    }

    /// An entry that should exist and does not.
    pub fn missing(entry: &str) -> SecretError {
        SecretError::new(format!("the secret `{entry}` is missing"))
    }

    /// The OS keyring cannot be reached at all.
    fn os_unreachable(reason: &str) -> SecretError {
        SecretError::new(format!(
            "cannot use the OS keyring ({OS_KEYRING}): {reason}. {WITHOUT_OS_KEYRING}"
        ))
    }
}

/// Keyway's entries in one store, under one service name.
#[derive(Clone)]
pub struct SecretStore {
    service: String,
    kind: StoreKind,
    store: Arc<CredentialStore>,
    /// What holds them: the OS keyring's name, or the file store's path.
    location: String,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("service", &self.service)
            .field("kind", &self.kind)
            .field("location", &self.location)
            .finish()
    }
}

/// The OS keyring's credential store, set up once per process by the `keyring` crate; the
/// error says why it cannot be reached.
fn os_credential_store() -> Result<Arc<CredentialStore>, String> {
    if let Err(e) = keyring::Entry::store_status() {
        return Err(e.to_string());
    }
    keyring_core::get_default_store().ok_or_else(|| keyring_core::Error::NoDefaultStore.to_string())
}

impl SecretStore {
    /// The OS keyring, or why it cannot be reached (with the fix).
    pub fn os(service: impl Into<String>) -> Result<SecretStore, SecretError> {
        let store = os_credential_store().map_err(|e| SecretError::os_unreachable(&e))?;
        Ok(SecretStore {
            service: service.into(),
            kind: StoreKind::Os,
            store,
            location: OS_KEYRING.to_owned(),
        })
    }

    /// Keyway's encrypted file store in `dir`, created when it does not exist yet; the key
    /// comes from `key`. See [`file`].
    pub fn file(
        service: impl Into<String>,
        dir: &Path,
        key: &KeySource,
    ) -> Result<SecretStore, SecretError> {
        let store = file::open(dir, key)?;
        Ok(SecretStore {
            service: service.into(),
            kind: StoreKind::File,
            store,
            location: file::db_path(dir).display().to_string(),
        })
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The OS keyring's name, or the file store's path.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// A sentence for status lines: "the OS keyring (Secret Service)", "the encrypted file …".
    pub fn describe(&self) -> String {
        match self.kind {
            StoreKind::Os => format!("the OS keyring ({})", self.location),
            StoreKind::File => format!("the encrypted file {}", self.location),
        }
    }

    fn entry(&self, name: &str) -> Result<keyring_core::Entry, SecretError> {
        self.store
            .build(&self.service, name, None)
            .map_err(|e| self.error(name, e))
    }

    fn error(&self, name: &str, e: keyring_core::Error) -> SecretError {
        match self.kind {
            StoreKind::Os => SecretError::new(format!(
                "cannot use the OS keyring for `{}/{name}`: {e}. {WITHOUT_OS_KEYRING}",
                self.service
            )),
            StoreKind::File => SecretError::new(format!(
                "cannot use the secrets file {} for `{name}`: {e}",
                self.location
            )),
        }
    }

    pub fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        match self.entry(name)?.get_password() {
            Ok(v) => Ok(Some(Secret(v))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
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
            Err(keyring_core::Error::NoEntry) => Ok(false),
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

/// The store a process uses, and what to tell the user about the choice.
#[derive(Debug)]
pub struct Chosen {
    pub kind: StoreKind,
    /// Set when the OS keyring was the default but cannot be reached, so the file store is
    /// used instead: said to the user, never done silently.
    pub notice: Option<String>,
}

/// Which store to open. `chosen` is the user's choice (`--secrets`, else the config's
/// `secrets`). Without one the OS keyring is the default, except where Keyway already keeps
/// its secrets in the file store of `dir` (created when no OS keyring could be reached), and
/// where no OS keyring can be reached: then the file store, with a notice saying why.
pub fn choose(chosen: Option<StoreKind>, dir: &Path) -> Chosen {
    if let Some(kind) = chosen {
        return Chosen { kind, notice: None };
    }
    if file::exists(dir) {
        return Chosen {
            kind: StoreKind::File,
            notice: None,
        };
    }
    match os_credential_store() {
        Ok(_) => Chosen {
            kind: StoreKind::Os,
            notice: None,
        },
        Err(e) => Chosen {
            kind: StoreKind::File,
            notice: Some(format!(
                "No OS keyring can be reached here ({OS_KEYRING}: {e}), so Keyway keeps its \
                 secrets in its encrypted file store {} instead, under a passphrase of yours. \
                 To make the choice explicit, set `secrets = \"file\"` (or \"os\") in the config.",
                file::db_path(dir).display()
            )),
        },
    }
}

/// Open the store of kind `kind` (see [`choose`]).
pub fn open(
    kind: StoreKind,
    service: &str,
    dir: &Path,
    key: &KeySource,
) -> Result<SecretStore, SecretError> {
    match kind {
        StoreKind::Os => SecretStore::os(service),
        StoreKind::File => SecretStore::file(service, dir, key),
    }
}

/// What [`copy_verified`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Entries copied and read back equal.
    pub copied: Vec<String>,
    /// Entries the source did not hold (an account added without a secret, say).
    pub absent: Vec<String>,
}

/// Copy the entries `names` from `from` to `to`, reading each back from `to` and comparing.
/// The source is not touched: the caller removes the entries from it once the move is
/// recorded (`keyway secrets migrate`).
pub fn copy_verified(
    from: &SecretStore,
    to: &SecretStore,
    names: &[String],
) -> Result<Copied, SecretError> {
    let mut out = Copied::default();
    for name in names {
        let Some(secret) = from.get(name)? else {
            out.absent.push(name.clone());
            continue;
        };
        to.set(name, &secret)?;
        if to.get(name)?.as_ref() != Some(&secret) {
            return Err(SecretError::new(format!(
                "`{name}` did not read back the same from {} after it was written; nothing \
                 was removed from {}",
                to.describe(),
                from.describe()
            )));
        }
        out.copied.push(name.clone());
    }
    Ok(out)
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

    #[test]
    fn store_kinds_parse_and_print() {
        assert_eq!("os".parse::<StoreKind>(), Ok(StoreKind::Os));
        assert_eq!("file".parse::<StoreKind>(), Ok(StoreKind::File));
        assert!("plain".parse::<StoreKind>().is_err());
        assert_eq!(StoreKind::File.to_string(), "file");
    }

    #[test]
    fn an_explicit_choice_is_kept_and_an_existing_file_store_wins_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chosen = choose(Some(StoreKind::Os), dir.path());
        assert_eq!((chosen.kind, chosen.notice), (StoreKind::Os, None));
        let key = KeySource::Passphrase(Secret::new("correct horse battery"));
        SecretStore::file("keyway-test", dir.path(), &key).expect("file store");
        let chosen = choose(None, dir.path());
        assert_eq!((chosen.kind, chosen.notice), (StoreKind::File, None));
    }

    #[test]
    fn copy_verified_copies_every_present_entry_and_leaves_the_source() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        let key = KeySource::Passphrase(Secret::new("correct horse battery"));
        let from = SecretStore::file("keyway-test", a.path(), &key).expect("store a");
        let to = SecretStore::file("keyway-test", b.path(), &key).expect("store b");
        from.set(CLIENT_KEY, &Secret::new("kw-1")).expect("set");
        from.set("account:anthropic-1", &Secret::new("sk-ant-1"))
            .expect("set");
        let names = vec![
            CLIENT_KEY.to_owned(),
            "account:anthropic-1".to_owned(),
            "account:openai-2".to_owned(),
        ];
        let copied = copy_verified(&from, &to, &names).expect("copy");
        assert_eq!(copied.copied, names[..2].to_vec());
        assert_eq!(copied.absent, vec!["account:openai-2".to_owned()]);
        assert_eq!(to.get(CLIENT_KEY).expect("get"), Some(Secret::new("kw-1")));
        assert_eq!(
            to.get("account:anthropic-1").expect("get"),
            Some(Secret::new("sk-ant-1"))
        );
        assert_eq!(
            from.get(CLIENT_KEY).expect("get"),
            Some(Secret::new("kw-1"))
        );
    }
}
