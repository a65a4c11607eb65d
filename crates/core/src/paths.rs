//! Every place Keyway keeps a file, from the platform's conventions (`directories`): the
//! config, and the data dir with everything in it.

use std::io;
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "keyway")
}

/// `~/.config/keyway/config.toml` on Linux, the platform equivalent elsewhere.
pub fn default_config_path() -> PathBuf {
    project_dirs()
        .map(|d| d.config_dir().join("config.toml"))
        .unwrap_or_else(|| PathBuf::from("keyway.toml"))
}

/// Where logs and runtime facts are kept: `~/.local/share/keyway` on Linux, or
/// `KEYWAY_DATA_DIR` when set (tests give every instance its own).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KEYWAY_DATA_DIR") {
        return PathBuf::from(dir);
    }
    project_dirs()
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("keyway-data"))
}

/// Where the daily log files go.
pub fn log_dir() -> PathBuf {
    data_dir().join("logs")
}

/// Where a running instance records the address it actually listens on (it may differ from
/// the config's, e.g. with `--listen`), so that commands find it even when the config file is
/// broken. Removed when the instance stops.
pub fn instance_file() -> PathBuf {
    data_dir().join("instance.addr")
}

/// The account facts that outlive a restart: cooldowns, quota windows, logins to renew.
pub fn state_file() -> PathBuf {
    data_dir().join("state.json")
}

/// The sessions bound to accounts, and which account produced which Responses state.
pub fn sessions_file() -> PathBuf {
    data_dir().join("sessions.json")
}

/// The usage history's database (SQLite): its per-minute totals.
pub fn history_file() -> PathBuf {
    data_dir().join("usage.sqlite3")
}

/// The usage history's per-request log: a CSV file per day.
pub fn usage_log_dir() -> PathBuf {
    data_dir().join("usage-log")
}

/// The encrypted file store's folder, for machines without an OS keyring.
pub fn secrets_dir() -> PathBuf {
    data_dir().join("secrets")
}

/// Where the originals of the tools' config files that Connect rewrote are kept.
pub fn connect_backups_dir() -> PathBuf {
    data_dir().join("connect-backups")
}

/// The user's home directory, where other CLIs keep their logins.
pub fn home_dir() -> PathBuf {
    directories::BaseDirs::new()
        .map(|d| d.home_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Create `dir` (and missing parents) readable by its owner only, or make it so if it exists.
/// For folders that are Keyway's alone (logs, Connect's backups).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    set_mode(dir, 0o700)
}

/// Make the data dir and what Keyway keeps in it readable by its owner only: they say which
/// accounts the user has, how they are used, and hold copies of tools' config files. The data
/// dir itself is left alone when it is shared (sticky or writable by all, like `/tmp`, which
/// only a `KEYWAY_DATA_DIR` can make it); its files are still made private. Also removes the
/// temporary files an interrupted save left there (see [`crate::edit::remove_stray_temps`]).
pub fn secure_data_dir() -> io::Result<()> {
    let dir = data_dir();
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir)?;
    if shared(&dir) {
        tracing::warn!(dir = %dir.display(), "the data dir is shared with other users; only Keyway's files in it are made private");
    } else {
        set_mode(&dir, 0o700)?;
    }
    let db = history_file();
    for file in [
        state_file(),
        sessions_file(),
        instance_file(),
        db.with_file_name("usage.sqlite3-wal"),
        db.with_file_name("usage.sqlite3-shm"),
        db,
    ] {
        if file.exists() {
            set_mode(&file, 0o600)?;
        }
    }
    // Only folders: something else in a folder's place is reported by whatever uses it, and
    // does not stop Keyway from starting.
    for folder in [log_dir(), usage_log_dir(), connect_backups_dir()] {
        if folder.is_dir() {
            private_tree(&folder)?;
        }
    }
    crate::edit::remove_stray_temps(&dir);
    Ok(())
}

/// `dir` and every folder in it 0700, every file 0600.
fn private_tree(dir: &Path) -> io::Result<()> {
    set_mode(dir, 0o700)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let kind = entry.file_type()?;
        if kind.is_dir() {
            private_tree(&entry.path())?;
        } else if kind.is_file() {
            set_mode(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

/// Whether `dir` is meant for several users: sticky, or writable by all.
fn shared(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o1002 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        false
    }
}

/// Set `path`'s permission bits (Unix; elsewhere the platform's defaults apply).
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
        if current != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}
