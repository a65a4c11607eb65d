//! Watching the config file: an edit on disk (by hand, or by `keyway account ...` in another
//! process) reaches the engine within a second.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::management::Management;

/// Editors save in bursts (truncate, write, rename); one reload after the burst is enough.
const SETTLE: Duration = Duration::from_millis(100);

/// Start watching; the returned watcher must be kept alive for as long as watching should go on.
/// Watching stops when this is dropped.
pub type Watcher = notify::RecommendedWatcher;

pub fn spawn(management: Arc<Management>) -> notify::Result<Watcher> {
    let path = management.config_path().to_path_buf();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    // Watch the directory, not the file: atomic saves replace the file, and it may not exist yet.
    std::fs::create_dir_all(&dir).map_err(notify::Error::io)?;
    let file_name = path.file_name().map(|n| n.to_os_string());
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event
            .paths
            .iter()
            .any(|p| p.file_name() == file_name.as_deref())
        {
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            management.reload_from_disk().await;
        }
    });
    Ok(watcher)
}
