//! The guard in front of every route: the Host must be ours (DNS rebinding), a browser Origin
//! must be ours (no cross-site use), and the caller must present the right key. Errors take
//! the shape of the surface the path belongs to.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use keyway_core::Surface;
use keyway_core::meter::{Limit, Refusal};
use keyway_core::state::now_ms;

use crate::client_keys::{ClientKey, same_secret};
use crate::engine::Engine;
use crate::management::{Management, refusal};
use crate::request::surface::{self, SurfaceError};
use crate::server::Server;

/// Whether `host` (a Host header value) names this server: a loopback name or address with
/// our port, or our own listen address when it is not loopback.
pub fn host_allowed(host: &str, listen: SocketAddr) -> bool {
    let (name, port) = split_host(host);
    if port.is_some_and(|p| p != listen.port()) {
        return false;
    }
    let ip = name.parse::<std::net::IpAddr>().ok();
    name.eq_ignore_ascii_case("localhost")
        || ip.is_some_and(|ip| ip.is_loopback() || ip == listen.ip())
}

/// `name[:port]` or `[v6][:port]`.
fn split_host(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, tail)) => (name, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) => match port.parse() {
            Ok(p) => (name, Some(p)),
            Err(_) => (host, None),
        },
        None => (host, None),
    }
}

/// A browser Origin is allowed only when it is this server itself (the dashboard).
fn origin_allowed(headers: &HeaderMap, listen: SocketAddr) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .is_some_and(|host| host_allowed(host, listen) && host.contains(':'))
}

/// Whether a URL's origin is this server's: `http`, our port, and a host [`host_allowed`]
/// accepts. The desktop window stays on such pages and opens any other in the browser.
pub fn is_own_origin(scheme: &str, host: &str, port: Option<u16>, listen: SocketAddr) -> bool {
    scheme == "http" && port.is_some_and(|port| host_allowed(&format!("{host}:{port}"), listen))
}

fn site_check(server: &Server, headers: &HeaderMap) -> Result<(), &'static str> {
    let Some(listen) = server.listen() else {
        return Err("the server is still starting");
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, listen) {
        return Err(
            "the Host header does not name this Keyway server; use http://127.0.0.1:<port>",
        );
    }
    if !origin_allowed(headers, listen) {
        return Err("requests from web pages other than Keyway's own dashboard are refused");
    }
    Ok(())
}

/// The key a client presented, from whichever header its SDK uses.
fn presented_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    value("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| value("x-api-key"))
        .or_else(|| value("x-goog-api-key"))
        .or_else(|| query?.split('&').find_map(|kv| kv.strip_prefix("key=")))
        .map(str::trim)
}

/// Guard for the client (proxy) routes: the site, a key this instance accepts, not paused,
/// and the key within its limits. The key travels on in the request's extensions, so the
/// record can name it.
pub async fn client(
    State((engine, server)): State<(Arc<Engine>, Arc<Server>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let surface = surface::of_path(request.uri().path());
    if let Err(message) = site_check(&server, request.headers()) {
        return surface::closing(
            SurfaceError::new(surface, StatusCode::FORBIDDEN, message).into_response(),
        );
    }
    let keys = engine.client_keys();
    let key = match presented_key(request.headers(), request.uri().query()) {
        Some(k) => keys.find(k),
        None => {
            return surface::closing(unauthorized(
                surface,
                "missing client key; send the key printed by `keyway client-key` as the API key",
            ));
        }
    };
    let Some(key) = key.cloned() else {
        return surface::closing(unauthorized(
            surface,
            "wrong or revoked client key; use a key from `keyway client-key list` (`keyway client-key` prints the default one)",
        ));
    };
    if engine.paused() {
        return SurfaceError::new(
            surface,
            StatusCode::SERVICE_UNAVAILABLE,
            "Keyway is paused; resume it from the tray menu (or POST /api/resume)",
        )
        .into_response();
    }
    if let Err(refusal) = key.meter.admit(&key.limits, now_ms()) {
        return over_limit(surface, &key, refusal);
    }
    request.extensions_mut().insert(key);
    next.run(request).await
}

fn unauthorized(surface: Surface, message: &str) -> Response {
    SurfaceError::new(surface, StatusCode::UNAUTHORIZED, message).into_response()
}

/// 429 naming the key, the limit, when it serves again and how to raise it.
fn over_limit(surface: Surface, key: &ClientKey, refusal: Refusal) -> Response {
    let limit = refusal.limit;
    let again = match limit {
        Limit::DailyUsd(_) => "at local midnight",
        Limit::MonthlyUsd(_) => "on the 1st of next month",
        Limit::Rpm(_) | Limit::Tpm(_) => "when the minute is over",
    };
    let warn_only = if limit.is_budget() {
        " (or let budgets only warn with --warn-only)"
    } else {
        ""
    };
    let message = format!(
        "client key `{}` ({}) reached its limit of {}; it serves again {again}, in {} s. Raise it with `keyway client-key limit {} {} …`{warn_only}",
        key.label,
        key.id,
        limit.describe(),
        refusal.retry_after_secs,
        key.id,
        limit.option(),
    );
    let mut error = SurfaceError::new(surface, StatusCode::TOO_MANY_REQUESTS, message);
    error.retry_after = Some(refusal.retry_after_secs);
    error.into_response()
}

/// Guard for the dashboard's page and assets: the site checks only. The page holds no secret;
/// the management token reaches it in the URL fragment, which browsers never send.
pub async fn page(State(server): State<Arc<Server>>, request: Request, next: Next) -> Response {
    match site_check(&server, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(message) => surface::closing((StatusCode::FORBIDDEN, message).into_response()),
    }
}

/// Guard for the management API: same site checks, and the management token as a bearer.
pub async fn management(
    State(management): State<Arc<Management>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(message) = site_check(management.server(), request.headers()) {
        return surface::closing(refusal(StatusCode::FORBIDDEN, message));
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t) if same_secret(t, management.token().expose()) => next.run(request).await,
        _ => surface::closing(refusal(
            StatusCode::UNAUTHORIZED,
            "missing or wrong management token; send `Authorization: Bearer <token>` with the token printed by `keyway management-token`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let listen: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        assert!(host_allowed("127.0.0.1:8765", listen));
        assert!(host_allowed("localhost:8765", listen));
        assert!(host_allowed("[::1]:8765", listen));
        assert!(host_allowed("localhost", listen));
        assert!(!host_allowed("evil.example:8765", listen));
        assert!(!host_allowed("127.0.0.1:9999", listen));
        assert!(!host_allowed("", listen));
        assert!(is_own_origin("http", "[::1]", Some(8765), listen));
        assert!(is_own_origin("http", "localhost", Some(8765), listen));
        assert!(!is_own_origin("https", "127.0.0.1", Some(8765), listen));
        assert!(!is_own_origin("http", "127.0.0.1", None, listen));
        assert!(!is_own_origin("http", "example.com", Some(8765), listen));
    }

    #[test]
    fn keys_from_any_header() {
        let mut h = HeaderMap::new();
        h.insert("x-goog-api-key", "kw-1".parse().unwrap());
        assert_eq!(presented_key(&h, None), Some("kw-1"));
        assert_eq!(
            presented_key(&HeaderMap::new(), Some("alt=sse&key=kw-2")),
            Some("kw-2")
        );
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("ab", "abc")
        );
    }
}
