//! Running the engine: bind, print where to connect, watch the config, serve until Ctrl-C or
//! SIGTERM, drain, exit 0.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use keyway_core::{Config, paths};
use keyway_proxy::{Engine, LogReloader, Management, Server, Watcher};
use tracing_appender::non_blocking::WorkerGuard;

pub struct RunOptions {
    pub config_path: PathBuf,
    pub listen: Option<std::net::SocketAddr>,
    pub secrets: crate::secrets::SecretsOptions,
}

/// Logging to stderr and the log folder, at the config's level (`info` when the config
/// cannot be read: the error is reported when the engine starts).
pub fn init_logging(opts: &RunOptions) -> anyhow::Result<(WorkerGuard, LogReloader)> {
    prepare_files(opts)?;
    let level = Config::load(&opts.config_path)
        .map(|(c, _)| c.log_level)
        .unwrap_or_else(|_| "info".to_owned());
    crate::logging::init_server(&level, &paths::log_dir()).map_err(|e| anyhow!(e))
}

/// Before anything is written: the data dir and its files owner-only, and the temporary files
/// an interrupted save left beside the config and in the data dir removed.
fn prepare_files(opts: &RunOptions) -> anyhow::Result<()> {
    paths::secure_data_dir().map_err(|e| {
        anyhow!(
            "cannot prepare the data dir {}: {e}",
            paths::data_dir().display()
        )
    })?;
    if let Some(dir) = opts
        .config_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        keyway_core::edit::remove_stray_temps(dir);
    }
    Ok(())
}

/// An engine that is bound, loaded and ready to serve.
pub struct Started {
    pub management: Arc<Management>,
    listener: tokio::net::TcpListener,
    _instance_file: InstanceFile,
    _watcher: Watcher,
}

/// Bind, load the config, open the secret store, print where to connect, and start the
/// background work.
pub async fn start(opts: &RunOptions, log_reloader: LogReloader) -> anyhow::Result<Started> {
    let (config, _) = Config::load(&opts.config_path).map_err(|e| anyhow!("{e}"))?;
    let listen = opts.listen.unwrap_or(config.listen);
    config.check_listen(listen)?;
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "listening beyond loopback: anyone who can reach this address and has the client key can use your accounts");
    }
    let listener = keyway_proxy::bind(listen).await?;
    // After binding, so that a port in use is reported before a passphrase is asked for.
    let secrets = opts.secrets.clone();
    let config_path = opts.config_path.clone();
    let store = tokio::task::spawn_blocking(move || {
        crate::secrets::open(&secrets, &config_path, &|notice| tracing::warn!("{notice}"))
    })
    .await??;
    let secrets_line = store.describe();
    let engine = Engine::start(config, store).await?;
    let server = Server::new(engine.clone());
    let bound = listener.local_addr()?;
    server.set_listen(bound);
    let management = Management::start(
        engine.clone(),
        server.clone(),
        opts.config_path.clone(),
        Some(log_reloader),
    )
    .await?;
    let instance_file = InstanceFile::new(&server);
    let watcher = keyway_proxy::watch_config(management.clone())
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
    // Not the address itself: it carries the management token, and this output may be kept
    // (a terminal's scrollback, a service's journal).
    println!("  Dashboard:          `keyway dashboard-url` prints its address");
    println!(
        "  Config:             {} ({accounts} accounts; edits apply live)",
        opts.config_path.display()
    );
    println!("  Logs:               {}", paths::log_dir().display());
    println!("  Secrets:            {secrets_line}");
    tracing::info!(%bound, accounts, secrets = %secrets_line, "ready");

    keyway_proxy::spawn_saver(engine.clone());
    keyway_proxy::spawn_state_watch(engine.clone());
    keyway_proxy::spawn_quota_poller(engine);
    // The start's garbage (the config parsed, the store opened) goes back before the rest.
    crate::memory::release_free_memory();
    Ok(Started {
        management,
        listener,
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
        let app = keyway_proxy::router(self.management.clone());
        let server = self.management.server();
        server.serve(app, self.listener, shutdown).await?;
        let engine = self.management.engine().clone();
        keyway_proxy::save_state(&engine).await;
        // The requests of the last moments reach the usage history before the process ends.
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
    fn new(server: &Server) -> InstanceFile {
        let path = paths::instance_file();
        server.record_listen_in(path.clone());
        InstanceFile(path)
    }
}

impl Drop for InstanceFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
