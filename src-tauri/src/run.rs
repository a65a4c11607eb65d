//! Running the engine: bind, print where to connect, watch the config, serve until Ctrl-C or
//! SIGTERM, drain, exit 0.

use std::path::PathBuf;

use anyhow::anyhow;
use keyway_core::{Config, SecretStore, paths};
use keyway_proxy::{Engine, background, watch};

pub struct RunOptions {
    pub config_path: PathBuf,
    pub listen: Option<std::net::SocketAddr>,
}

pub async fn headless(opts: RunOptions) -> anyhow::Result<()> {
    // Read the config once up front for the log level; the engine loads it again, with the keyring.
    let (config, _) = Config::load(&opts.config_path).map_err(|e| anyhow!("{e}"))?;
    let log_dir = paths::log_dir();
    let (_log_guard, log_reloader) =
        crate::logging::init_server(&config.log_level, &log_dir).map_err(|e| anyhow!(e))?;

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
    let _instance_file = InstanceFile::new(&engine);
    let _watcher = watch::spawn(engine.clone())
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
    println!("  Logs:               {}", log_dir.display());
    tracing::info!(%bound, accounts, "ready");

    background::spawn_saver(engine.clone(), state_path.clone());
    background::spawn_state_watch(engine.clone());
    background::spawn_quota_poller(engine.clone());
    keyway_proxy::serve(engine.clone(), listener, shutdown_signal()).await?;
    background::save(&engine, &state_path).await;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix (service managers, `kill`).
async fn shutdown_signal() {
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
