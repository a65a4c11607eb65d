//! Every place Keyway keeps a file, from the platform's conventions (`directories`): the
//! config, and the data dir with everything in it.

use std::path::PathBuf;

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

/// The usage history database (SQLite).
pub fn history_file() -> PathBuf {
    data_dir().join("usage.sqlite3")
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
