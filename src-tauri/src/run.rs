//! Running the engine: bind, print where to connect, watch the config, serve until Ctrl-C or
//! SIGTERM, drain, exit 0.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use keyway_core::{Config, SecretStore, paths};
use keyway_proxy::engine::LogReloader;
use keyway_proxy::{Engine, background, watch};
use tracing_appender::non_blocking::WorkerGuard;

pub struct RunOptions {
    pub config_path: PathBuf,
    pub listen: Option<std::net::SocketAddr>,
}

/// Logging to stderr and the log folder, at the config's level (`info` when the config
/// cannot be read: the error is reported when the engine starts).
pub fn init_logging(opts: &RunOptions) -> anyhow::Result<(WorkerGuard, LogReloader)> {
    let level = Config::load(&opts.config_path)
        .map(|(c, _)| c.log_level)
        .unwrap_or_else(|_| "info".to_owned());
    crate::logging::init_server(&level, &paths::log_dir()).map_err(|e| anyhow!(e))
}

/// An engine that is bound, loaded and ready to serve.
pub struct Started {
    pub engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    state_path: PathBuf,
    _instance_file: InstanceFile,
    _watcher: watch::Watcher,
}

/// Bind, load the config and keyring, print where to connect, and start the background work.
pub async fn start(opts: &RunOptions, log_reloader: LogReloader) -> anyhow::Result<Started> {
    let (config, _) = Config::load(&opts.config_path).map_err(|e| anyhow!("{e}"))?;
    let listen = opts.listen.unwrap_or(config.listen);
    config.check_listen(listen).map_err(|e| anyhow!(e))?;
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "listening beyond loopback: anyone who can reach this address and has the client key can use your accounts");
    }
    let listener = keyway_proxy::bind(listen).await.map_err(|e| anyhow!(e))?;
    let data_dir = paths::data_dir();
    let state_path = data_dir.join("state.json");
    let engine = Engine::start(
        opts.config_path.clone(),
        SecretStore::from_env(),
        Some(&state_path),
        &data_dir,
    )
    .await
    .map_err(|e| anyhow!("{e}"))?;
    engine.set_log_reloader(log_reloader);
    let bound = listener.local_addr()?;
    engine.set_listen(bound);
    let instance_file = InstanceFile::new(&engine);
    let watcher = watch::spawn(engine.clone())
        .map_err(|e| anyhow!("cannot watch {} for edits: {e}", opts.config_path.display()))?;

    let accounts = engine.snapshot().config.accounts.len();
    println!(
        "Keyway {} listening on http://{bound}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  Anthropic clients:  base URL http://{bound}");
    println!("  OpenAI clients:     base URL http://{bound}/v1");
    println!("  Gemini clients:     base URL http://{bound}");
    println!("  API key for tools:  `keyway client-key`");
    println!("  Management API:     http://{bound}/api  (Bearer token: `keyway management-token`)");
    println!(
        "  Dashboard:          {}",
        dashboard_url(bound, engine.management_token().expose())
    );
    println!(
        "  Config:             {} ({accounts} accounts; edits apply live)",
        opts.config_path.display()
    );
    println!("  Logs:               {}", paths::log_dir().display());
    tracing::info!(%bound, accounts, "ready");

    background::spawn_saver(engine.clone(), state_path.clone());
    background::spawn_state_watch(engine.clone());
    background::spawn_quota_poller(engine.clone());
    Ok(Started {
        engine,
        listener,
        state_path,
        _instance_file: instance_file,
        _watcher: watcher,
    })
}

impl Started {
    /// Serve until `shutdown`, drain, and save the account facts once more.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        keyway_proxy::serve(self.engine.clone(), self.listener, shutdown).await?;
        background::save(&self.engine, &self.state_path).await;
        // The requests of the last moments reach the usage history before the process ends.
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(history) = engine.traffic().history() {
                history.flush();
            }
        })
        .await;
        tracing::info!("stopped");
        Ok(())
    }
}

pub async fn headless(opts: RunOptions) -> anyhow::Result<()> {
    let (_log_guard, log_reloader) = init_logging(&opts)?;
    start(&opts, log_reloader)
        .await?
        .serve(shutdown_signal())
        .await
}

/// Ctrl-C, or SIGTERM on Unix (service managers, `kill`).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down; draining in-flight requests");
}

/// The dashboard's address with the management token in the fragment, which the browser
/// keeps to itself: it never reaches a server or a log.
pub fn dashboard_url(listen: std::net::SocketAddr, token: &str) -> String {
    format!("http://{listen}/#token={token}")
}

/// The recorded listen address of this instance (kept current by the engine), removed when
/// it stops.
struct InstanceFile(PathBuf);

impl InstanceFile {
    fn new(engine: &Engine) -> InstanceFile {
        let path = paths::instance_file();
        engine.record_listen_in(path.clone());
        InstanceFile(path)
    }
}

impl Drop for InstanceFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
