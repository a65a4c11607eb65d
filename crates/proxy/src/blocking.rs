//! Keyring IPC and other blocking work, run off the async workers.

/// Run `f` on a blocking thread so that no async worker waits on it; a panic in `f` is a
/// panic here.
pub async fn run_blocking<T: Send + 'static, E: Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}
