//! Logging: to stderr, and for a running instance also to a daily rolling file in the data dir.

use std::io::IsTerminal;
use std::path::Path;

use keyway_proxy::LogReloader;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

/// Log files kept before the oldest is deleted.
const KEEP_LOG_FILES: usize = 14;
/// Lines waiting for the log file writer before new ones are dropped. The queue is allocated
/// whole up front (tracing-appender's default of 128,000 lines costs 4 MiB of resident memory
/// at idle); this many lines absorb any burst Keyway logs at its default level.
const LOG_BUFFER_LINES: usize = 8_192;

/// The database engine under the encrypted secrets file logs its own view of failures (a
/// wrong key as "decryption failed"); Keyway reports them itself, in words that say the fix.
const QUIET: &str = "turso_core=off";

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},{QUIET}")))
}

/// Warnings and errors to stderr, for one-shot commands.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("warn"))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// stderr plus `<log_dir>/keyway.log.<date>`. The guard flushes the file on drop; the
/// reloader swaps the filter while running (the Settings screen's log level).
pub fn init_server(level: &str, log_dir: &Path) -> Result<(WorkerGuard, LogReloader), String> {
    // Owner-only: the log names accounts, models and errors. The appender creates each day's
    // file with the default mode, inside this folder.
    keyway_core::paths::private_dir(log_dir)
        .map_err(|e| format!("cannot create the log folder {}: {e}", log_dir.display()))?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("keyway.log")
        .max_log_files(KEEP_LOG_FILES)
        .build(log_dir)
        .map_err(|e| format!("cannot write logs in {}: {e}", log_dir.display()))?;
    private_files(log_dir);
    let (file, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .finish(appender);
    let (filter, handle) = reload::Layer::new(filter(level));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(file)
                .with_ansi(false)
                .with_target(false),
        )
        .try_init()
        .map_err(|e| e.to_string())?;
    let reloader: LogReloader = Box::new(move |level: &str| {
        EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        let filter = EnvFilter::new(format!("{level},{QUIET}"));
        handle.reload(filter).map_err(|e| e.to_string())
    });
    Ok((guard, reloader))
}

/// The log files there now (today's was just created) readable by their owner only.
fn private_files(log_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = keyway_core::paths::set_mode(&entry.path(), 0o600);
        }
    }
}
