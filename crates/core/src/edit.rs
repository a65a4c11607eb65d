//! Editing the config file: comment- and order-preserving changes (`toml_edit`) and atomic
//! saves. Every edit is validated as a whole config before anything is written, so a change
//! either fully applies or leaves the file as it was.
//!
//! One writer at a time: every Keyway process (each CLI command, the running instance) edits
//! the file only while it holds [`ConfigLock`], from loading the file to saving it, so two
//! edits never start from the same text and the second never overwrites the first.
//!
//! The user may write `accounts` and `policies` as inline arrays and tables (`accounts =
//! [{...}]`, `policies = {...}`): valid TOML, turned into `[[accounts]]` and `[policies]`
//! tables by the first edit.

use std::fs::{self, File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};

use crate::client_key::{self, Limits as ClientKeyLimits};
use crate::config::{
    AccountConfig, ClientKeyConfig, Config, ConfigError, DEFAULT_CONFIG, PolicyConfig,
};
use crate::limits::AccountLimits;
use crate::policy::PolicyKey;
use crate::target::Target;

/// The config file as text the user wrote, ready for surgical edits.
pub struct ConfigDocument {
    path: PathBuf,
    doc: DocumentMut,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    #[error("cannot write {path}: {source}; the previous file is unchanged")]
    Write { path: PathBuf, source: io::Error },
}

impl ConfigDocument {
    /// Load `path` (or the embedded default when it does not exist). A file that does not
    /// validate is refused: editing it would hide the problem.
    pub fn load(path: &Path) -> Result<ConfigDocument, ConfigError> {
        let (_, text) = Config::load(path)?;
        Self::from_text(path, &text)
    }

    pub fn from_text(path: &Path, text: &str) -> Result<ConfigDocument, ConfigError> {
        let fail = |message: String| ConfigError {
            path: Some(path.to_path_buf()),
            line: None,
            column: None,
            message,
        };
        let mut doc = text
            .parse::<DocumentMut>()
            .map_err(|e| fail(e.to_string()))?;
        normalise(&mut doc).map_err(fail)?;
        Ok(ConfigDocument {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The embedded default, for a path that has no file yet.
    pub fn default_at(path: &Path) -> ConfigDocument {
        Self::from_text(path, DEFAULT_CONFIG).expect("the embedded default config parses")
    }

    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Parse and validate the edited text.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        Config::parse(&self.text(), Some(&self.path))
    }

    /// Validate, then write atomically. Returns the config that was written.
    pub fn save(&self) -> Result<Config, SaveError> {
        let config = self.validate()?;
        write_atomic(&self.path, self.text().as_bytes()).map_err(|source| SaveError::Write {
            path: self.path.clone(),
            source,
        })?;
        Ok(config)
    }

    pub fn add_account(&mut self, account: &AccountConfig) {
        let mut t = Table::new();
        t["id"] = value(&account.id);
        t["provider"] = value(&account.provider);
        t["label"] = value(&account.label);
        t["kind"] = value(account.kind.as_str());
        t["weight"] = value(i64::from(account.weight));
        t["enabled"] = value(account.enabled);
        if !account.limits.is_empty() {
            t["limits"] = value(account_limits_table(&account.limits));
        }
        self.accounts_mut().push(t);
    }

    /// Set account `id`'s limits (none: remove them), keeping the rest of its table as it
    /// is. False when there is no such account.
    pub fn set_account_limits(&mut self, id: &str, limits: &AccountLimits) -> bool {
        match self
            .accounts_mut()
            .iter_mut()
            .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
        {
            Some(t) => {
                if limits.is_empty() {
                    t.remove("limits");
                } else {
                    t["limits"] = value(account_limits_table(limits));
                }
                true
            }
            None => false,
        }
    }

    /// Remove the account and every mention of it in policies. A policy that listed only this
    /// account is removed too (an empty list would silently mean "every account"); its key is
    /// returned so the caller can say so. `None` when there is no such account.
    pub fn remove_account(&mut self, id: &str) -> Option<Vec<String>> {
        let accounts = self.accounts_mut();
        let before = accounts.len();
        accounts.retain(|t| t.get("id").and_then(Item::as_str) != Some(id));
        if accounts.len() == before {
            return None;
        }
        let mut emptied = Vec::new();
        if let Some(policies) = self
            .doc
            .get_mut("policies")
            .and_then(Item::as_table_like_mut)
        {
            for (key, policy) in policies.iter_mut() {
                if let Some(list) = policy.get_mut("accounts").and_then(Item::as_array_mut) {
                    let listed = !list.is_empty();
                    list.retain(|v| v.as_str() != Some(id));
                    if listed && list.is_empty() {
                        emptied.push(key.get().to_owned());
                    }
                }
                if let Some(weights) = policy.get_mut("weights").and_then(Item::as_table_like_mut) {
                    weights.remove(id);
                }
            }
            for key in &emptied {
                policies.remove(key);
            }
        }
        Some(emptied)
    }

    /// Set one field of an account. False when there is no such account.
    pub fn set_account_field(&mut self, id: &str, field: &str, v: toml_edit::Value) -> bool {
        match self
            .accounts_mut()
            .iter_mut()
            .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
        {
            Some(t) => {
                t[field] = Item::Value(v);
                true
            }
            None => false,
        }
    }

    pub fn set_policy(&mut self, key: &PolicyKey, policy: &PolicyConfig) {
        let mut t = Table::new();
        t["strategy"] = value(policy.strategy.as_str());
        if !policy.accounts.is_empty() {
            let mut list = Array::new();
            for id in &policy.accounts {
                list.push(id.as_str());
            }
            t["accounts"] = value(list);
        }
        if !policy.weights.is_empty() {
            let mut weights = InlineTable::new();
            for (id, w) in &policy.weights {
                weights.insert(id, i64::from(*w).into());
            }
            t["weights"] = value(weights);
        }
        // Session settings are written only when they differ from the defaults, so that a
        // policy reads as what the user chose.
        let defaults = PolicyConfig::new(policy.strategy);
        if policy.spread != defaults.spread {
            t["spread"] = value(policy.spread.as_str());
        }
        if policy.affinity != defaults.affinity {
            t["affinity"] = value(policy.affinity.as_str());
        }
        if policy.session_idle_secs != defaults.session_idle_secs {
            t["session_idle_secs"] =
                value(i64::try_from(policy.session_idle_secs).unwrap_or(i64::MAX));
        }
        if !policy.fallback.is_empty() {
            let mut list = Array::new();
            for step in &policy.fallback {
                list.push(step.to_string());
            }
            t["fallback"] = value(list);
        }
        let policies = self.policies_mut();
        match policies
            .get_mut(&key.to_string())
            .and_then(Item::as_table_mut)
        {
            // Keep the table's own position and decor (comments above it).
            Some(existing) => {
                existing.clear();
                for (k, v) in t.iter() {
                    existing.insert(k, v.clone());
                }
            }
            None => {
                policies.insert(&key.to_string(), Item::Table(t));
            }
        }
    }

    /// Set a top-level setting such as `listen`, keeping its place and comments.
    pub fn set_setting(&mut self, field: &str, v: toml_edit::Value) {
        match self.doc.get_mut(field).and_then(Item::as_value_mut) {
            Some(old) => {
                let decor = old.decor().clone();
                *old = v;
                *old.decor_mut() = decor;
            }
            None => {
                self.doc.insert(field, Item::Value(v));
            }
        }
    }

    /// Set one field of `[providers.<id>]`, creating the table when needed.
    pub fn set_provider_field(&mut self, provider: &str, field: &str, v: toml_edit::Value) {
        if !self.doc.contains_key("providers") {
            let mut t = Table::new();
            t.set_implicit(true);
            self.doc.insert("providers", Item::Table(t));
        }
        let Some(providers) = self.doc["providers"].as_table_like_mut() else {
            return;
        };
        if !providers.contains_key(provider) {
            providers.insert(provider, Item::Table(Table::new()));
        }
        if let Some(t) = providers
            .get_mut(provider)
            .and_then(Item::as_table_like_mut)
        {
            t.insert(field, Item::Value(v));
        }
    }

    /// Send requests for models matching `glob` to `target`; an existing alias of the same
    /// glob keeps its place.
    pub fn set_alias(&mut self, glob: &str, target: &Target) {
        let aliases = self.aliases_mut();
        match aliases.get_mut(glob).and_then(Item::as_value_mut) {
            Some(old) => {
                let decor = old.decor().clone();
                *old = target.to_string().into();
                *old.decor_mut() = decor;
            }
            None => {
                aliases.insert(glob, value(target.to_string()));
            }
        }
    }

    /// False when there was no such alias.
    pub fn remove_alias(&mut self, glob: &str) -> bool {
        self.doc
            .get_mut("aliases")
            .and_then(Item::as_table_like_mut)
            .is_some_and(|a| a.remove(glob).is_some())
    }

    /// Replace every alias with `aliases`, in this order.
    pub fn set_aliases<'a>(&mut self, aliases: impl IntoIterator<Item = (&'a str, &'a Target)>) {
        let table = self.aliases_mut();
        table.clear();
        for (glob, target) in aliases {
            table.insert(glob, value(target.to_string()));
        }
    }

    fn aliases_mut(&mut self) -> &mut Table {
        if !matches!(self.doc.get("aliases"), Some(Item::Table(_))) {
            // An inline `aliases = { … }` becomes a table of its own, its entries kept.
            let inline = self
                .doc
                .get("aliases")
                .and_then(Item::as_inline_table)
                .cloned();
            let table = inline.map_or_else(Table::new, InlineTable::into_table);
            self.doc.insert("aliases", Item::Table(table));
        }
        match self.doc.get_mut("aliases") {
            Some(Item::Table(t)) => t,
            _ => unreachable!("`aliases` was just made a table"),
        }
    }

    /// False when there was no such policy.
    pub fn remove_policy(&mut self, key: &PolicyKey) -> bool {
        self.doc
            .get_mut("policies")
            .and_then(Item::as_table_like_mut)
            .is_some_and(|p| p.remove(&key.to_string()).is_some())
    }

    pub fn add_client_key(&mut self, key: &ClientKeyConfig) {
        let mut t = Table::new();
        t["id"] = value(&key.id);
        t["label"] = value(&key.label);
        t["created_ms"] = value(i64::try_from(key.created_ms).unwrap_or(i64::MAX));
        if !key.limits.is_empty() {
            t["limits"] = value(limits_table(&key.limits));
        }
        self.client_keys_mut().push(t);
    }

    /// False when there is no such key.
    pub fn remove_client_key(&mut self, id: &str) -> bool {
        let keys = self.client_keys_mut();
        let before = keys.len();
        keys.retain(|t| t.get("id").and_then(Item::as_str) != Some(id));
        keys.len() != before
    }

    /// Set key `id`'s limits (none: remove them). The default key gets an entry of its own
    /// when it has none.
    pub fn set_client_key_limits(&mut self, id: &str, limits: &ClientKeyLimits) {
        let keys = self.client_keys_mut();
        let index = keys
            .iter()
            .position(|t| t.get("id").and_then(Item::as_str) == Some(id));
        let entry = match index {
            Some(i) => keys.get_mut(i),
            None => {
                let mut t = Table::new();
                t["id"] = value(id);
                t["label"] = value(client_key::DEFAULT_LABEL);
                keys.push(t);
                let last = keys.len() - 1;
                keys.get_mut(last)
            }
        };
        if let Some(t) = entry {
            if limits.is_empty() {
                t.remove("limits");
            } else {
                t["limits"] = value(limits_table(limits));
            }
        }
    }

    fn client_keys_mut(&mut self) -> &mut ArrayOfTables {
        array_of_tables(&mut self.doc, "client_keys")
    }

    fn accounts_mut(&mut self) -> &mut ArrayOfTables {
        let item = self
            .doc
            .entry("accounts")
            .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
        // `normalise` left only an array of tables here; anything else was refused on load.
        if !item.is_array_of_tables() {
            *item = Item::ArrayOfTables(ArrayOfTables::new());
        }
        match item {
            Item::ArrayOfTables(a) => a,
            _ => unreachable!("just made an array of tables"),
        }
    }

    fn policies_mut(&mut self) -> &mut Table {
        let item = self.doc.entry("policies").or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        // `normalise` left only a table here; anything else was refused on load.
        if !item.is_table() {
            *item = Item::Table(Table::new());
        }
        match item {
            Item::Table(t) => t,
            _ => unreachable!("just made a table"),
        }
    }
}

/// The array of tables at top-level `name`, created when missing. One written inline
/// (`name = [{ … }]`) is valid TOML too; it is turned into `[[name]]` tables first, so an
/// edit never has to refuse (or panic on) a config the user wrote that way.
fn array_of_tables<'d>(doc: &'d mut DocumentMut, name: &str) -> &'d mut ArrayOfTables {
    let inline: Option<Vec<Table>> = doc.get(name).and_then(Item::as_array).map(|list| {
        list.iter()
            .filter_map(toml_edit::Value::as_inline_table)
            .map(|t| t.clone().into_table())
            .collect()
    });
    if let Some(tables) = inline {
        let mut aot = ArrayOfTables::new();
        for t in tables {
            aot.push(t);
        }
        doc.insert(name, Item::ArrayOfTables(aot));
    }
    if !matches!(doc.get(name), Some(Item::ArrayOfTables(_))) {
        doc.insert(name, Item::ArrayOfTables(ArrayOfTables::new()));
    }
    match doc.get_mut(name) {
        Some(Item::ArrayOfTables(aot)) => aot,
        _ => unreachable!("`{name}` was just made an array of tables"),
    }
}

/// A key's limits as an inline table, only the ones set.
fn limits_table(limits: &ClientKeyLimits) -> InlineTable {
    let mut t = InlineTable::new();
    if let Some(rpm) = limits.rpm {
        t.insert("rpm", i64::from(rpm).into());
    }
    if let Some(tpm) = limits.tpm {
        t.insert("tpm", i64::try_from(tpm).unwrap_or(i64::MAX).into());
    }
    if let Some(usd) = limits.daily_usd {
        t.insert("daily_usd", usd.into());
    }
    if let Some(usd) = limits.monthly_usd {
        t.insert("monthly_usd", usd.into());
    }
    if limits.warn_only {
        t.insert("warn_only", true.into());
    }
    t
}

/// An account's limits as an inline table, only the ones set.
fn account_limits_table(limits: &AccountLimits) -> InlineTable {
    let mut t = InlineTable::new();
    if let Some(n) = limits.max_concurrent {
        t.insert("max_concurrent", i64::from(n).into());
    }
    if let Some(n) = limits.rpm {
        t.insert("rpm", i64::from(n).into());
    }
    if let Some(n) = limits.tpm {
        t.insert("tpm", i64::try_from(n).unwrap_or(i64::MAX).into());
    }
    t
}

/// `accounts = [{...}, ...]` as `[[accounts]]` tables and `policies = {...}` /
/// `providers = {...}` as tables, so that edits find the shapes they change. Any other shape
/// of these keys is refused (the config would not validate either).
fn normalise(doc: &mut DocumentMut) -> Result<(), String> {
    if let Some(item) = doc.get_mut("accounts") {
        let taken = std::mem::take(item);
        *item = match taken {
            Item::ArrayOfTables(_) => taken,
            Item::Value(toml_edit::Value::Array(a)) if a.is_empty() => {
                Item::ArrayOfTables(ArrayOfTables::new())
            }
            other => match other.into_array_of_tables() {
                Ok(tables) => Item::ArrayOfTables(tables),
                Err(other) => {
                    *item = other;
                    return Err(
                        "`accounts` must be a list of account tables ([[accounts]] or accounts = [{...}])"
                            .to_owned(),
                    );
                }
            },
        };
    }
    for key in ["policies", "providers"] {
        if let Some(item) = doc.get_mut(key) {
            let taken = std::mem::take(item);
            *item = match taken.into_table() {
                Ok(table) => Item::Table(table),
                Err(other) => {
                    *item = other;
                    return Err(format!(
                        "`{key}` must be a table ([{key}] or {key} = {{...}})"
                    ));
                }
            };
        }
    }
    Ok(())
}

/// How long an edit waits for another process's edit to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The lock every Keyway process holds while it edits the config: an advisory lock
/// (`flock`/`LockFileEx`) on `<config>.lock` beside the file, released when this is dropped
/// or the process ends (a crash leaves no stale lock).
pub struct ConfigLock {
    _file: File,
}

impl ConfigLock {
    /// Wait (at most [`LOCK_WAIT`]) until no other process edits the config at `config`.
    /// Blocking.
    pub fn acquire(config: &Path) -> io::Result<ConfigLock> {
        let path = lock_path(config);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ConfigLock { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "another Keyway process has been editing {} for {}s (it holds {}); try again",
                            config.display(),
                            LOCK_WAIT.as_secs(),
                            path.display()
                        ),
                    ));
                }
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// `<config>.lock`.
fn lock_path(config: &Path) -> PathBuf {
    let mut name = config.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    config.with_file_name(name)
}

/// Write beside, flush to disk, rename over. A crash or a full disk leaves either the old file
/// or the new one, never a torn mix. The file keeps the permissions of the one it replaces; a
/// new file is readable by its owner only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, false)
}

/// [`write_atomic`] for bytes that hold a secret (a tool's config file with the client key):
/// the file is readable by its owner only, whatever it was before.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, true)
}

fn write_atomic_with(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let kept = (!private)
        .then(|| fs::metadata(path).ok().map(|m| m.permissions()))
        .flatten();
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        if let Some(permissions) = kept {
            f.set_permissions(permissions)?;
        }
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        #[cfg(unix)]
        File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A temporary file of [`write_atomic`] left older than this is stray whoever wrote it.
const STRAY_AFTER: Duration = Duration::from_secs(60);

/// Remove the temporary files [`write_atomic`] leaves in `dir` when a process dies between
/// writing one and renaming it (`.<name>.<pid>-<n>.tmp`): those of a process that is gone
/// (Linux), and any older than a minute. Returns how many were removed.
pub fn remove_stray_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_pid) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let gone = cfg!(target_os = "linux") && !Path::new(&format!("/proc/{pid}")).exists();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age >= STRAY_AFTER);
        if (gone || old) && entry.file_type().is_ok_and(|t| t.is_file()) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove a stray temporary file")
                }
            }
        }
    }
    removed
}

/// The writer's pid in a [`write_atomic`] temporary file's name, `.<name>.<pid>-<n>.tmp`.
fn temp_pid(name: &str) -> Option<u32> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, tail) = inner.rsplit_once('.')?;
    let (pid, n) = tail.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountKind;
    use crate::strategy::Strategy;

    fn account(id: &str) -> AccountConfig {
        AccountConfig {
            id: id.to_owned(),
            provider: "anthropic".to_owned(),
            label: "Work".to_owned(),
            kind: AccountKind::ApiKey,
            weight: 2,
            enabled: true,
            limits: AccountLimits::default(),
        }
    }

    #[test]
    fn edits_keep_comments_and_validate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut doc = ConfigDocument::default_at(&path);
        doc.add_account(&account("anthropic-000001"));
        doc.add_account(&account("anthropic-000002"));
        let key: PolicyKey = "anthropic/opus".parse().unwrap();
        doc.set_policy(
            &key,
            &PolicyConfig {
                accounts: vec!["anthropic-000002".into(), "anthropic-000001".into()],
                ..PolicyConfig::new(Strategy::Priority)
            },
        );
        let config = doc.save().expect("valid edit saves");
        assert_eq!(config.accounts.len(), 2);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("# Keyway configuration."), "comments survive");
        assert!(text.contains("[policies.\"anthropic/opus\"]"), "{text}");

        assert_eq!(doc.remove_account("anthropic-000002"), Some(vec![]));
        let config = doc.save().unwrap();
        assert_eq!(
            config.policies["anthropic/opus"].accounts,
            vec!["anthropic-000001"]
        );
        assert_eq!(
            doc.remove_account("anthropic-000001"),
            Some(vec!["anthropic/opus".to_owned()])
        );
        assert!(
            doc.save().unwrap().policies.is_empty(),
            "a policy with no accounts left is gone"
        );
        assert_eq!(doc.remove_account("anthropic-000001"), None);
    }

    #[test]
    fn price_overrides_survive_unrelated_edits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = format!(
            "{DEFAULT_CONFIG}
# What Claude costs us.
[providers.anthropic.prices.\"claude-opus-*\"]
input = 15.0 # per MTok
output = 75.0

[providers.openai.prices]
\"gpt-5*\" = {{ input = 1.25, output = 10, cache_read = 0.125 }}
"
        );
        let mut doc = ConfigDocument::from_text(&path, &text).unwrap();
        doc.add_account(&account("anthropic-000001"));
        doc.set_provider_field("anthropic", "oauth_terms_accepted", true.into());
        doc.set_provider_field("openai", "cache_ttl_secs", 600.into());
        let config = doc.save().expect("the edited config validates");

        let saved = fs::read_to_string(&path).unwrap();
        assert!(saved.contains("# What Claude costs us."), "{saved}");
        assert!(saved.contains("input = 15.0 # per MTok"), "{saved}");
        let anthropic = &config.providers["anthropic"];
        assert!(anthropic.oauth_terms_accepted);
        assert_eq!(anthropic.prices["claude-opus-*"].output, 75.0);
        let openai = &config.providers["openai"];
        assert_eq!(openai.cache_ttl_secs, Some(600));
        assert_eq!(openai.prices["gpt-5*"].cache_read, Some(0.125));
        assert_eq!(config.accounts.len(), 1);
        assert_eq!(
            Config::parse(&saved, None).unwrap(),
            config,
            "the file reads back as saved"
        );
    }

    #[test]
    fn account_limits_are_set_changed_and_removed_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = format!(
            "{DEFAULT_CONFIG}
[[accounts]]
id = \"anthropic-000001\"
provider = \"anthropic\"
label = \"Work\" # the team's key
weight = 3
"
        );
        let mut doc = ConfigDocument::from_text(&path, &text).unwrap();
        let limits = AccountLimits {
            max_concurrent: Some(4),
            rpm: Some(50),
            tpm: None,
        };
        assert!(doc.set_account_limits("anthropic-000001", &limits));
        let config = doc.save().unwrap();
        assert_eq!(config.accounts[0].limits, limits);
        assert_eq!(config.accounts[0].weight, 3);
        let saved = fs::read_to_string(&path).unwrap();
        assert!(
            saved.contains("label = \"Work\" # the team's key"),
            "{saved}"
        );
        // The account's line, not the example in the default config's comments.
        let limits_lines = |saved: &str| -> Vec<String> {
            saved
                .lines()
                .map(str::trim_start)
                .filter(|l| l.starts_with("limits ="))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            limits_lines(&saved),
            ["limits = { max_concurrent = 4, rpm = 50 }"],
            "{saved}"
        );

        assert!(doc.set_account_limits("anthropic-000001", &AccountLimits::default()));
        let config = doc.save().unwrap();
        assert!(config.accounts[0].limits.is_empty());
        let saved = fs::read_to_string(&path).unwrap();
        assert!(limits_lines(&saved).is_empty(), "{saved}");
        assert!(!doc.set_account_limits("nope", &limits));

        // Out of range: refused whole, the file as it was.
        let before = fs::read_to_string(&path).unwrap();
        doc.set_account_limits(
            "anthropic-000001",
            &AccountLimits {
                rpm: Some(0),
                ..limits
            },
        );
        let e = doc.save().unwrap_err().to_string();
        assert!(e.contains("account `anthropic-000001`: rpm must be"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn invalid_edit_leaves_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut doc = ConfigDocument::default_at(&path);
        doc.add_account(&account("anthropic-000001"));
        doc.save().unwrap();
        let before = fs::read_to_string(&path).unwrap();
        doc.set_account_field("anthropic-000001", "provider", "nope".into());
        assert!(matches!(doc.save(), Err(SaveError::Invalid(_))));
        assert_eq!(fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn inline_accounts_and_policies_are_edited_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = r#"# mine
accounts = [{ id = "anthropic-00000a", provider = "anthropic", label = "Inline" }]
policies = { anthropic = { strategy = "priority", accounts = ["anthropic-00000a"] } }
providers = { anthropic = { base_url = "http://127.0.0.1:9" } }
"#;
        fs::write(&path, text).unwrap();
        let mut doc = ConfigDocument::load(&path).expect("inline forms load");
        doc.add_account(&account("anthropic-00000b"));
        let key: PolicyKey = "anthropic/opus".parse().unwrap();
        doc.set_policy(&key, &PolicyConfig::new(Strategy::Random));
        doc.set_provider_field("anthropic", "oauth_terms_accepted", true.into());
        let config = doc.save().expect("the edit saves");
        assert_eq!(config.accounts.len(), 2);
        assert_eq!(config.policies.len(), 2);
        assert_eq!(
            config.policies["anthropic"].accounts,
            vec!["anthropic-00000a"]
        );
        assert!(config.providers["anthropic"].oauth_terms_accepted);
        assert_eq!(
            config.providers["anthropic"].base_url.as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            doc.remove_account("anthropic-00000a"),
            Some(vec!["anthropic".into()])
        );
        assert_eq!(doc.save().unwrap().accounts.len(), 1);
        assert!(fs::read_to_string(&path).unwrap().starts_with("# mine"));

        for empty in ["accounts = []\n", "policies = {}\n"] {
            fs::write(&path, empty).unwrap();
            let mut doc = ConfigDocument::load(&path).unwrap();
            doc.add_account(&account("anthropic-00000c"));
            doc.set_policy(&key, &PolicyConfig::new(Strategy::Random));
            assert_eq!(doc.save().unwrap().accounts.len(), 1, "{empty}");
        }
        assert!(ConfigDocument::from_text(&path, "accounts = 5\n").is_err());
    }

    #[test]
    fn a_second_editor_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let first = ConfigLock::acquire(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let second_path = path.clone();
        let second = std::thread::spawn(move || {
            let lock = ConfigLock::acquire(&second_path);
            tx.send(()).unwrap();
            lock.map(drop)
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "the second editor waits while the first holds the lock"
        );
        drop(first);
        rx.recv_timeout(LOCK_WAIT).expect("then it gets the lock");
        second.join().unwrap().unwrap();
    }

    #[test]
    fn stray_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let stray = dir.path().join(".config.toml.4000000000-3.tmp");
        let mine = dir
            .path()
            .join(format!(".config.toml.{}-1.tmp", std::process::id()));
        let other = dir.path().join("notes.tmp");
        for f in [&stray, &mine, &other] {
            fs::write(f, "x").unwrap();
        }
        let removed = remove_stray_temps(dir.path());
        if cfg!(target_os = "linux") {
            assert_eq!(removed, 1);
            assert!(!stray.exists(), "a dead process's temporary file goes");
        }
        assert!(mine.exists() && other.exists(), "others stay");
        assert_eq!(temp_pid(".state.json.123-0.tmp"), Some(123));
        assert_eq!(temp_pid(".config.toml.lock"), None);
    }
}
