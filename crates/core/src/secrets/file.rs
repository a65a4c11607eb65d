//! Keyway's encrypted file store, for machines without an OS keyring: a server reached over
//! SSH, a container, a systemd service. In `<data dir>/secrets/`, a folder only its owner can
//! open (0700):
//!
//! - `secrets.db` (0600): a [`db_keystore`] database, which implements the same `keyring-core`
//!   credential store API as the OS keyrings. Every page of it is encrypted with AEGIS-256, an
//!   authenticated cipher, under a 256-bit key, so neither the secrets nor their names are in
//!   the file in clear, and a wrong key fails to authenticate the first page before anything
//!   is written. Each operation opens the file under its lock, works in one transaction and
//!   closes it: the running instance and a `keyway account add` in another process see the
//!   same entries, concurrent writers are serialised, and a failed write leaves what was
//!   committed before.
//! - `secrets.kdf` (0600): how the key is derived from the passphrase (Argon2id, its cost
//!   parameters and a random salt; nothing secret in it).
//!
//! The passphrase comes from a [`KeySource`]: typed at start on a terminal, or read from a key
//! file for services. There is no plaintext mode.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use db_keystore::{DbKeyStore, DbKeyStoreConfig, EncryptionOpts, SensitiveKey};
use keyring_core::api::CredentialStore;
use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Secret, SecretError};

/// The database file in the store's folder.
pub const DB_FILE: &str = "secrets.db";
/// The key derivation parameters beside it.
pub const KDF_FILE: &str = "secrets.kdf";
/// Files the database layer may create beside the database (its write-ahead log).
const SIDECARS: [&str; 2] = ["-wal", "-tshm"];
/// The page cipher (turso's encryption).
const CIPHER: &str = "aegis256";
/// A new store's passphrase is at least this many characters long.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// Asks someone for the passphrase of the store at a path; `true` when the store is new.
pub type AskPassphrase = Box<dyn Fn(&Path, bool) -> Result<Secret, String> + Send + Sync>;

/// Where the file store's passphrase comes from.
pub enum KeySource {
    /// The passphrase itself.
    Passphrase(Secret),
    /// A file holding the passphrase (a trailing newline is not part of it):
    /// `--secrets-key-file`, `KEYWAY_SECRETS_KEY_FILE`, or a systemd credential.
    File(PathBuf),
    /// Ask someone when needed. Called with the database's path and whether the store is
    /// new (then the passphrase should be typed twice).
    Ask(AskPassphrase),
    /// Nobody can give it here (no terminal, no key file): opening says how to give one.
    Unavailable,
}

/// The database of the store in `dir`.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

/// Whether `dir` holds a file store with content.
pub fn exists(dir: &Path) -> bool {
    fs::metadata(db_path(dir)).is_ok_and(|m| m.len() > 0)
}

/// Every file of the store in `dir`, for removing it once its secrets moved elsewhere.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let db = db_path(dir);
    let mut all = vec![dir.join(KDF_FILE)];
    all.extend(SIDECARS.iter().map(|s| sidecar(&db, s)));
    all.push(db);
    all
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// How the key is derived from the passphrase: the content of `secrets.kdf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KdfParams {
    format: u32,
    kdf: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    /// Hex.
    salt: String,
    cipher: String,
}

impl KdfParams {
    /// Argon2id with the `argon2` crate's defaults (19 MiB, 2 passes, 1 lane: the OWASP
    /// recommendation) and a fresh 16-byte salt.
    fn fresh() -> KdfParams {
        let salt: [u8; 16] = rand::rng().random();
        KdfParams {
            format: 1,
            kdf: "argon2id".to_owned(),
            m_cost_kib: argon2::Params::DEFAULT_M_COST,
            t_cost: argon2::Params::DEFAULT_T_COST,
            p_cost: argon2::Params::DEFAULT_P_COST,
            salt: salt.iter().map(|b| format!("{b:02x}")).collect(),
            cipher: CIPHER.to_owned(),
        }
    }

    fn salt(&self) -> Option<Vec<u8>> {
        if !self.salt.len().is_multiple_of(2) {
            return None;
        }
        (0..self.salt.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(self.salt.get(i..i + 2)?, 16).ok())
            .collect()
    }

    /// The 256-bit database key for `passphrase`.
    fn derive(&self, passphrase: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
        if self.format != 1 || self.kdf != "argon2id" || self.cipher != CIPHER {
            return Err(format!(
                "it uses {} / {} (format {}), which this Keyway does not know",
                self.kdf, self.cipher, self.format
            ));
        }
        let salt = self.salt().ok_or("its salt is not hex")?;
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| format!("its Argon2 parameters are not valid: {e}"))?;
        let argon2 =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; 32]);
        argon2
            .hash_password_into(passphrase, &salt, key.as_mut())
            .map_err(|e| format!("the key could not be derived: {e}"))?;
        Ok(key)
    }
}

fn io_error(what: &str, path: &Path, e: &io::Error) -> SecretError {
    SecretError::new(format!("cannot {what} {}: {e}", path.display()))
}

/// Owner-only access to `path` (a folder: 0700, a file: 0600). Nothing to do off Unix, where
/// the data dir is in the user's own profile.
fn restrict(path: &Path, mode: u32) -> Result<(), SecretError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| io_error("restrict the permissions of", path, &e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Create `path` empty and owner-only unless it exists, so the database layer never creates
/// it with the default permissions.
fn precreate(path: &Path) -> Result<(), SecretError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => restrict(path, 0o600),
        Err(e) => Err(io_error("create", path, &e)),
    }
}

/// Write `bytes` to `path` only if it does not exist, atomically: written beside, then linked
/// into place, which fails if another process was first. Returns whether this one wrote it.
fn create_exclusive(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let tmp = sidecar(path, &format!(".{}.tmp", std::process::id()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// The KDF parameters of the store in `dir`: the ones on disk, or new ones written now.
fn kdf_params(dir: &Path, new: bool) -> Result<KdfParams, SecretError> {
    let path = dir.join(KDF_FILE);
    if new && !path.exists() {
        let fresh = KdfParams::fresh();
        let text = serde_json::to_string_pretty(&fresh).unwrap_or_default();
        match create_exclusive(&path, text.as_bytes()) {
            Ok(true) => return Ok(fresh),
            // Another process created the store a moment ago: use its parameters.
            Ok(false) => {}
            Err(e) => return Err(io_error("write", &path, &e)),
        }
    }
    let text = fs::read_to_string(&path).map_err(|e| {
        SecretError::new(format!(
            "cannot read {}, which says how the key of {} is derived: {e}. Without it the \
             store cannot be opened",
            path.display(),
            db_path(dir).display()
        ))
    })?;
    restrict(&path, 0o600)?;
    serde_json::from_str(&text).map_err(|e| {
        SecretError::new(format!(
            "{} is not a key derivation file Keyway wrote ({e}); the store {} cannot be opened \
             without it",
            path.display(),
            db_path(dir).display()
        ))
    })
}

/// The passphrase a key file holds.
fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let mut bytes = Zeroizing::new(
        fs::read(path).map_err(|e| io_error("read the secrets key file", path, &e))?,
    );
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(SecretError::new(format!(
            "the secrets key file {} is empty; it must hold the store's passphrase",
            path.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                key_file = %path.display(),
                "the secrets key file can be read by other users (mode {:o}); `chmod 600` it",
                m.permissions().mode() & 0o777
            );
        }
    }
    Ok(bytes)
}

/// How to give a key where none could be asked for.
const HOW_TO_GIVE_A_KEY: &str = "put the passphrase in a file only you can read and give its \
     path with KEYWAY_SECRETS_KEY_FILE=PATH or --secrets-key-file PATH (a systemd service gets \
     it with LoadCredential=keyway-secrets-key:PATH)";

fn passphrase(key: &KeySource, db: &Path, new: bool) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let bytes = match key {
        KeySource::Passphrase(s) => Zeroizing::new(s.expose().as_bytes().to_vec()),
        KeySource::File(path) => read_key_file(path)?,
        KeySource::Ask(ask) => {
            let s = ask(db, new).map_err(SecretError::new)?;
            Zeroizing::new(s.expose().as_bytes().to_vec())
        }
        KeySource::Unavailable if new => {
            return Err(SecretError::new(format!(
                "Keyway's encrypted secrets file {} does not exist yet and needs a new \
                 passphrase, and there is no terminal here to type one: run Keyway once on a \
                 terminal to create it, or {HOW_TO_GIVE_A_KEY}",
                db.display()
            )));
        }
        KeySource::Unavailable => {
            return Err(SecretError::new(format!(
                "the secrets file {} needs its passphrase, and there is no terminal here to \
                 type it: {HOW_TO_GIVE_A_KEY}",
                db.display()
            )));
        }
    };
    if bytes.is_empty() {
        return Err(SecretError::new("the passphrase is empty"));
    }
    if new && String::from_utf8_lossy(&bytes).chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(SecretError::new(format!(
            "a new secrets store needs a passphrase of at least {MIN_PASSPHRASE_CHARS} characters"
        )));
    }
    Ok(bytes)
}

/// Open the store in `dir`, creating it (folder, key parameters, database) when it does not
/// exist yet.
pub(super) fn open(dir: &Path, key: &KeySource) -> Result<Arc<CredentialStore>, SecretError> {
    fs::create_dir_all(dir).map_err(|e| io_error("create the folder", dir, &e))?;
    restrict(dir, 0o700)?;
    let db = db_path(dir);
    let new = !exists(dir);
    // The passphrase first: without one, nothing is written.
    let passphrase = passphrase(key, &db, new)?;
    let params = kdf_params(dir, new)?;
    let derived = params.derive(&passphrase).map_err(|e| {
        SecretError::new(format!(
            "cannot open {} with the parameters in {}: {e}",
            db.display(),
            dir.join(KDF_FILE).display()
        ))
    })?;
    drop(passphrase);
    precreate(&db)?;
    for suffix in SIDECARS {
        precreate(&sidecar(&db, suffix))?;
    }
    let key_bytes = SensitiveKey::from_bytes(derived.as_ref())
        .map_err(|e| SecretError::new(format!("cannot use the derived key: {e}")))?;
    let encryption = EncryptionOpts::with_key(CIPHER, key_bytes)
        .map_err(|e| SecretError::new(format!("cannot use the derived key: {e}")))?;
    let store = DbKeyStore::new(DbKeyStoreConfig {
        path: db.clone(),
        encryption_opts: Some(encryption),
        allow_ambiguity: false,
        vfs: None,
        index_always: false,
    })
    .map_err(|e| match e {
        keyring_core::Error::NoStorageAccess(_) if !new => wrong_key(key, &db),
        e => SecretError::new(format!(
            "cannot open the secrets file {}: {e}",
            db.display()
        )),
    })?;
    Ok(store)
}

fn wrong_key(key: &KeySource, db: &Path) -> SecretError {
    let from = match key {
        KeySource::File(path) => format!(" (read from {})", path.display()),
        _ => String::new(),
    };
    SecretError::new(format!(
        "the key{from} does not open {}: it is not the passphrase this store was created with. \
         Nothing was changed. Type the right passphrase, or point KEYWAY_SECRETS_KEY_FILE / \
         --secrets-key-file at a file holding it",
        db.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretStore;

    fn passphrase(p: &str) -> KeySource {
        KeySource::Passphrase(Secret::new(p))
    }

    fn hash(path: &Path) -> Vec<u8> {
        fs::read(path).expect("read")
    }

    #[test]
    fn a_new_store_is_owner_only_and_holds_no_secret_in_clear() {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = data.path().join("secrets");
        let store = SecretStore::file("keyway-test", &dir, &passphrase("correct horse battery"))
            .expect("create");
        store
            .set(
                "account:anthropic-1",
                &Secret::new("sk-ant-findme-0123456789"),
            )
            .expect("set");
        for file in fs::read_dir(&dir).expect("list").flatten() {
            let bytes = fs::read(file.path()).expect("read");
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("findme"),
                "{:?} holds the secret",
                file.path()
            );
            assert!(
                !text.contains("anthropic-1"),
                "{:?} holds the name",
                file.path()
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&db_path(&dir)), 0o600);
            assert_eq!(mode(&dir.join(KDF_FILE)), 0o600);
        }
    }

    #[test]
    fn the_right_key_opens_it_again_and_a_wrong_one_changes_nothing() {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = data.path().join("secrets");
        let store = SecretStore::file("keyway-test", &dir, &passphrase("correct horse battery"))
            .expect("create");
        store
            .set("client-key", &Secret::new("kw-123"))
            .expect("set");
        drop(store);
        let before = hash(&db_path(&dir));
        let e = SecretStore::file("keyway-test", &dir, &passphrase("wrong horse battery"))
            .expect_err("a wrong key");
        assert!(e.to_string().contains("does not open"), "{e}");
        assert!(e.to_string().contains("Nothing was changed"), "{e}");
        assert!(!e.to_string().contains("wrong horse"), "{e}");
        assert_eq!(hash(&db_path(&dir)), before);
        let store = SecretStore::file("keyway-test", &dir, &passphrase("correct horse battery"))
            .expect("reopen");
        assert_eq!(
            store.get("client-key").expect("get"),
            Some(Secret::new("kw-123"))
        );
    }

    #[test]
    fn a_key_file_holds_the_passphrase_without_its_newline() {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = data.path().join("secrets");
        let key_file = data.path().join("key");
        fs::write(&key_file, "correct horse battery\n").expect("write key");
        SecretStore::file("keyway-test", &dir, &KeySource::File(key_file.clone()))
            .expect("create with the key file")
            .set("client-key", &Secret::new("kw-1"))
            .expect("set");
        let store = SecretStore::file("keyway-test", &dir, &passphrase("correct horse battery"))
            .expect("the same passphrase typed");
        assert_eq!(
            store.get("client-key").expect("get"),
            Some(Secret::new("kw-1"))
        );
        fs::write(&key_file, "").expect("empty key");
        let e = SecretStore::file("keyway-test", &dir, &KeySource::File(key_file))
            .expect_err("an empty key file");
        assert!(e.to_string().contains("is empty"), "{e}");
    }

    #[test]
    fn without_a_key_it_says_how_to_give_one() {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = data.path().join("secrets");
        let e =
            SecretStore::file("keyway-test", &dir, &KeySource::Unavailable).expect_err("no key");
        assert!(e.to_string().contains("KEYWAY_SECRETS_KEY_FILE"), "{e}");
        assert!(!exists(&dir) && !dir.join(KDF_FILE).exists());
        let e =
            SecretStore::file("keyway-test", &dir, &passphrase("short")).expect_err("too short");
        assert!(e.to_string().contains("at least 8"), "{e}");
    }

    #[test]
    fn writers_on_several_threads_lose_nothing() {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = data.path().join("secrets");
        let key = passphrase("correct horse battery");
        let one = SecretStore::file("keyway-test", &dir, &key).expect("create");
        let other = SecretStore::file("keyway-test", &dir, &key).expect("open again");
        std::thread::scope(|s| {
            for (t, store) in [(0, &one), (1, &one), (2, &other), (3, &other)] {
                s.spawn(move || {
                    for i in 0..10 {
                        store
                            .set(&format!("t{t}-{i}"), &Secret::new(format!("v{t}-{i}")))
                            .expect("set");
                    }
                });
            }
        });
        for t in 0..4 {
            for i in 0..10 {
                assert_eq!(
                    one.get(&format!("t{t}-{i}")).expect("get"),
                    Some(Secret::new(format!("v{t}-{i}")))
                );
            }
        }
    }

    #[test]
    fn the_kdf_file_round_trips() {
        let p = KdfParams::fresh();
        let text = serde_json::to_string(&p).expect("json");
        assert_eq!(serde_json::from_str::<KdfParams>(&text).expect("parse"), p);
        assert_eq!(p.salt().expect("hex").len(), 16);
        let a = p.derive(b"one passphrase").expect("derive");
        let b = p.derive(b"one passphrase").expect("derive");
        let c = p.derive(b"another passphrase").expect("derive");
        assert_eq!(*a, *b);
        assert_ne!(*a, *c);
    }
}
