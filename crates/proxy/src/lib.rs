//! Keyway's HTTP layer: the client routes that AI tools call, the guard in front of them, the
//! attempt loop that forwards to upstream accounts, and the management API. It knows the
//! engine (`keyway-core`) and nothing of any GUI.

pub mod adapter;
pub mod background;
pub mod classify;
pub mod cooldown;
pub mod engine;
pub mod forward;
pub mod guard;
pub mod logins;
pub mod management;
pub mod models;
pub mod oauth;
pub mod quota;
pub mod relay;
pub mod routes;
pub mod surface;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post, put};
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

    let api = Router::new()
        .route("/status", get(management::status))
        .route(
            "/accounts",
            get(management::list_accounts).post(management::add_account),
        )
        .route(
            "/accounts/{id}",
            axum::routing::patch(management::update_account).delete(management::remove_account),
        )
        .route("/policies", get(management::list_policies))
        .route(
            "/policies/{provider}",
            put(management::put_provider_policy).delete(management::delete_provider_policy),
        )
        .route(
            "/policies/{provider}/{family}",
            put(management::put_family_policy).delete(management::delete_family_policy),
        )
        .route("/logins", post(management::start_login))
        .route("/logins/{id}", get(management::login_status))
        .route("/logins/{id}/code", post(management::paste_login_code))
        .route("/imports", post(management::import_login))
        .route("/client-key", get(management::client_key))
        .route("/client-key/rotate", post(management::rotate_client_key))
        .fallback(management::not_found)
        .route_layer(middleware::from_fn_with_state(
            engine.clone(),
            guard::management,
        ));

    client.nest(API_PREFIX, api).with_state(engine)
}

/// Serve until `shutdown` resolves, then give in-flight requests up to the configured drain
/// time to finish.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = Duration::from_secs(engine.snapshot().config.limits.drain_secs);
    let app = router(engine);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    // Small writes (an SSE event) must leave at once, not wait for the previous one's ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    // Wait for the shutdown signal, then bound the drain.
    let _ = stopping_rx.await;
    match tokio::time::timeout(drain, server).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(std::io::Error::other(join)),
        Err(_) => {
            tracing::warn!(
                drain_secs = drain.as_secs(),
                "in-flight requests did not finish in time; closing them"
            );
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
