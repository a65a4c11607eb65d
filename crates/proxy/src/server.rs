//! The server's lifecycle, kept apart from the state requests share (the [`Engine`]): where
//! it listens, moving to a new address while the old one drains, telling endless streams that
//! shutdown began, and serving with a bounded drain.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::connection::{self, Slots};
use crate::engine::Engine;

/// The handle on a running server that the rest of Keyway may hold: its address, a way to
/// move it, and whether it is stopping.
pub struct Server {
    engine: Arc<Engine>,
    /// Where the server listens now; moves when the listen setting changes.
    listen: ArcSwapOption<SocketAddr>,
    /// Listeners bound for a new listen address, for the serve loop to move to.
    moves: mpsc::UnboundedSender<TcpListener>,
    moves_rx: Mutex<Option<mpsc::UnboundedReceiver<TcpListener>>>,
    /// Turns true when the server starts shutting down, so that streams which never end on
    /// their own (the event stream) close and do not hold the drain.
    stopping: watch::Sender<bool>,
    /// Where the listen address is recorded for commands to find this instance.
    instance_file: OnceLock<PathBuf>,
}

/// Why an address could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "cannot listen on {addr}: the address is in use (is another Keyway running?); stop it or pass --listen 127.0.0.1:<other port>"
    )]
    InUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Other {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Bind `addr` with an error that says what to do.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            BindError::InUse { addr }
        } else {
            BindError::Other { addr, source }
        }
    })
}

impl Server {
    pub fn new(engine: Arc<Engine>) -> Arc<Server> {
        let (moves, moves_rx) = mpsc::unbounded_channel();
        Arc::new(Server {
            engine,
            listen: ArcSwapOption::empty(),
            moves,
            moves_rx: Mutex::new(Some(moves_rx)),
            stopping: watch::Sender::new(false),
            instance_file: OnceLock::new(),
        })
    }

    /// Where the server actually listens (set once it has bound).
    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen.load().as_deref().copied()
    }

    /// Record where the server listens now, in memory and in the instance file.
    pub fn set_listen(&self, addr: SocketAddr) {
        self.listen.store(Some(Arc::new(addr)));
        if let Some(path) = self.instance_file.get()
            && let Err(e) = keyway_core::edit::write_atomic(path, addr.to_string().as_bytes())
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot record the listen address; commands will look at the config's");
        }
        self.engine.traffic().state_changed();
    }

    /// Keep the listen address in `path` for commands such as `keyway status`.
    pub fn record_listen_in(&self, path: PathBuf) {
        let _ = self.instance_file.set(path);
        if let Some(addr) = self.listen() {
            self.set_listen(addr);
        }
    }

    /// Hand the serve loop a listener for a new address; it moves there and lets requests in
    /// flight on the old one finish. The new address is the listen address from now on, so
    /// an answer sent before the loop moves already names it.
    pub fn move_listener(&self, listener: TcpListener) {
        if let Ok(addr) = listener.local_addr() {
            self.set_listen(addr);
        }
        let _ = self.moves.send(listener);
    }

    /// Resolves when the server starts shutting down.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|s| *s).await;
        }
    }

    /// Serve `app` until `shutdown` resolves, then give in-flight requests up to the
    /// configured drain time to finish. When the listen setting moves (see
    /// [`Server::move_listener`]), new connections go to the new listener while the old one
    /// drains the same way. Client connections are capped and timed as `[limits]` says (see
    /// [`crate::connection`]); the soft open-file limit is raised first.
    pub async fn serve(
        &self,
        app: Router,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limits = self.engine.snapshot().config.limits.clone();
        let drain = Duration::from_secs(limits.drain_secs);
        let open_files = connection::raise_open_file_limit();
        let cap = connection::cap(limits.max_connections, open_files);
        if cap < limits.max_connections as usize {
            tracing::warn!(
                cap,
                open_files,
                "the open-file limit allows fewer client connections than limits.max_connections"
            );
        }
        let slots = Arc::new(Slots::new(cap));
        let mut moves = self
            .moves_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut listener = listener;
        loop {
            self.set_listen(listener.local_addr()?);
            let (stop, stopped) = watch::channel(false);
            let server = tokio::spawn(connection::accept_loop(
                listener,
                app.clone(),
                self.engine.clone(),
                slots.clone(),
                stopped,
            ));
            let next = async {
                match moves.as_mut() {
                    Some(m) => m.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => {
                    self.stopping.send_replace(true);
                    stop.send_replace(true);
                    return drained(server, drain, Some(&self.engine)).await;
                }
                Some(next) = next => {
                    stop.send_replace(true);
                    tokio::spawn(drained(server, drain, None));
                    tracing::info!(listen = ?next.local_addr().ok(), "moved to the new listen address");
                    listener = next;
                }
            }
        }
    }
}

/// How long streams ended at shutdown get to send their final event.
const END_GRACE: Duration = Duration::from_secs(1);

/// Wait for a stopping server's in-flight requests, at most `drain`. When Keyway is shutting
/// down (`ending` is its engine), streams still open then end with their surface's error
/// event, which gets [`END_GRACE`] to reach the client, instead of being cut.
async fn drained(
    mut server: tokio::task::JoinHandle<std::io::Result<()>>,
    drain: Duration,
    ending: Option<&Engine>,
) -> std::io::Result<()> {
    match tokio::time::timeout(drain, &mut server).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(std::io::Error::other(join)),
        Err(_) => {
            tracing::warn!(
                drain_secs = drain.as_secs(),
                "in-flight requests did not finish in time; closing them"
            );
            if let Some(engine) = ending {
                engine.end_streams();
                let _ = tokio::time::timeout(END_GRACE, server).await;
            }
            Ok(())
        }
    }
}
