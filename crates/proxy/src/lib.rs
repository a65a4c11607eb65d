//! Keyway's HTTP layer: the client routes that AI tools call, the guard in front of them, the
//! attempt loop that forwards to upstream accounts, and the management API. It knows the
//! engine (`keyway-core`) and nothing of any GUI.

pub mod adapter;
pub mod background;
pub mod classify;
pub mod connect;
pub mod cooldown;
pub mod dashboard;
pub mod engine;
pub mod forward;
pub mod guard;
pub mod history;
pub mod logins;
pub mod management;
pub mod models;
pub mod oauth;
pub mod quota;
pub mod relay;
pub mod routes;
pub mod surface;
pub mod tokens;
pub mod traffic;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use axum::serve::ListenerExt;

pub use engine::Engine;

/// Path prefix of the management API.
pub const API_PREFIX: &str = "/api";

/// Every route, each behind its guard.
pub fn router(engine: Arc<Engine>) -> Router {
    let client = Router::new()
        .route("/v1/messages", post(routes::anthropic))
        .route("/v1/messages/count_tokens", post(routes::anthropic))
        .route("/v1/chat/completions", post(routes::openai_chat))
        .route("/v1/responses", post(routes::openai_responses))
        .route("/v1/models", get(routes::list_models))
        .route("/v1beta/models", get(routes::gemini_models))
        .route("/v1beta/models/{*rest}", post(routes::gemini))
        .fallback(routes::not_found)
        .route_layer(middleware::from_fn_with_state(
            engine.clone(),
            guard::client,
        ));

    let api = management::routes()
        .into_iter()
        .fold(Router::new(), |api, (_, path, handler)| {
            api.route(path, handler)
        })
        .fallback(management::not_found)
        .route_layer(middleware::from_fn_with_state(
            engine.clone(),
            guard::management,
        ));

    let page = Router::new()
        .route("/", get(dashboard::index))
        .route("/assets/{*file}", get(dashboard::asset))
        .route_layer(middleware::from_fn_with_state(engine.clone(), guard::page));

    client.merge(page).nest(API_PREFIX, api).with_state(engine)
}

/// Serve until `shutdown` resolves, then give in-flight requests up to the configured drain
/// time to finish. When the listen setting moves (see [`Engine::move_listener`]), new
/// connections go to the new listener while the old one drains the same way.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = Duration::from_secs(engine.snapshot().config.limits.drain_secs);
    let app = router(engine.clone());
    let mut moves = engine.take_listener_moves();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut listener = listener;
    loop {
        engine.set_listen(listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Small writes (an SSE event) must leave at once, not wait for the previous one's ACK.
        let tapped = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = axum::serve(tapped, app.clone()).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        let server = tokio::spawn(async move { server.await });
        let next = async {
            match moves.as_mut() {
                Some(m) => m.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => {
                engine.begin_shutdown();
                let _ = stop.send(());
                return drained(server, drain, Some(&engine)).await;
            }
            Some(next) = next => {
                let _ = stop.send(());
                tokio::spawn(drained(server, drain, None));
                tracing::info!(listen = ?next.local_addr().ok(), "moved to the new listen address");
                listener = next;
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

/// Bind `addr` with an error that says what to do.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!("cannot listen on {addr}: the address is in use (is another Keyway running?); stop it or pass --listen 127.0.0.1:<other port>")
        } else {
            format!("cannot listen on {addr}: {e}")
        }
    })
}
