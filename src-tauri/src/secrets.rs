//! Which secret store this process opens, and where the encrypted file's passphrase comes
//! from: `--secrets`, else the config's `secrets`, else the default of
//! [`keyway_core::secrets::choose`]; the passphrase from `--secrets-key-file` /
//! `KEYWAY_SECRETS_KEY_FILE`, a systemd credential, or the terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use keyway_core::secrets::file::MIN_PASSPHRASE_CHARS;
use keyway_core::secrets::{self, KeySource, StoreKind};
use keyway_core::{Config, Secret, SecretStore, paths};

/// The name under which a systemd unit hands the passphrase over
/// (`LoadCredential=keyway-secrets-key:PATH`); found in `$CREDENTIALS_DIRECTORY`.
pub const CREDENTIAL_NAME: &str = "keyway-secrets-key";

/// The command line's say in the matter.
#[derive(Debug, Clone, Default)]
pub struct SecretsOptions {
    /// `--secrets` / `KEYWAY_SECRETS`.
    pub kind: Option<StoreKind>,
    /// `--secrets-key-file` / `KEYWAY_SECRETS_KEY_FILE`.
    pub key_file: Option<PathBuf>,
}

impl SecretsOptions {
    pub fn new(kind: Option<&str>, key_file: Option<PathBuf>) -> anyhow::Result<SecretsOptions> {
        let kind = kind
            .map(str::parse::<StoreKind>)
            .transpose()
            .map_err(|e| anyhow!(e))?;
        Ok(SecretsOptions { kind, key_file })
    }

    /// The user's choice: the flag, else the config file's `secrets` (a config that cannot be
    /// read chooses nothing; the command reports it where it matters).
    pub fn chosen(&self, config_path: &Path) -> Option<StoreKind> {
        self.kind.or_else(|| {
            Config::load(config_path)
                .ok()
                .and_then(|(config, _)| config.secrets)
        })
    }

    /// The key file given on the command line, or by systemd.
    pub fn key_file(&self) -> Option<PathBuf> {
        if let Some(path) = &self.key_file {
            return Some(path.clone());
        }
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
        let path = Path::new(&dir).join(CREDENTIAL_NAME);
        path.is_file().then_some(path)
    }

    /// Where the passphrase comes from: a key file, else the terminal when stdin is one,
    /// else nowhere (opening then says how to give one).
    pub fn key_source(&self) -> KeySource {
        if let Some(path) = self.key_file() {
            return KeySource::File(path);
        }
        if std::io::stdin().is_terminal() {
            return KeySource::Ask(Box::new(ask));
        }
        KeySource::Unavailable
    }
}

/// Ask on the terminal, without echo; twice for a new store.
fn ask(db: &Path, new: bool) -> Result<Secret, String> {
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| format!("cannot read the passphrase from the terminal: {e}"))
    };
    if !new {
        return read(&format!(
            "Passphrase of Keyway's secrets ({}): ",
            db.display()
        ))
        .map(Secret::new);
    }
    eprintln!(
        "Keyway will keep its secrets in a new encrypted file, {}. Choose its passphrase (at \
         least {MIN_PASSPHRASE_CHARS} characters): you type it when Keyway starts, or a service \
         reads it from a key file (KEYWAY_SECRETS_KEY_FILE). Without it the secrets cannot be \
         read.",
        db.display()
    );
    let first = read("New passphrase: ")?;
    let again = read("The same passphrase again: ")?;
    if first != again {
        return Err("the two passphrases differ; nothing was created".to_owned());
    }
    Ok(Secret::new(first))
}

/// Open this process's store. Blocking: it may ask for a passphrase, derives the key and
/// reaches the OS keyring. `notify` gets the notice of a fallback to the file store (before
/// any passphrase is asked for).
pub fn open(
    options: &SecretsOptions,
    config_path: &Path,
    notify: &dyn Fn(&str),
) -> anyhow::Result<SecretStore> {
    let dir = paths::secrets_dir();
    let chosen = secrets::choose(options.chosen(config_path), &dir);
    if let Some(notice) = &chosen.notice {
        notify(notice);
    }
    open_kind(options, chosen.kind)
}

/// Open the store of `kind`, with this process's passphrase source.
pub fn open_kind(options: &SecretsOptions, kind: StoreKind) -> anyhow::Result<SecretStore> {
    secrets::open(
        kind,
        &secrets::service_from_env(),
        &paths::secrets_dir(),
        &options.key_source(),
    )
    .map_err(|e| anyhow!(e))
}
