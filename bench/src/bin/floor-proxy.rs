//! `floor-proxy`: the benchmark's floor targets, pass-through proxies with no engine, in three
//! stacks.
//!
//! `--stack axum` (the default) is exactly Keyway's HTTP stack and nothing else. It serves like
//! Keyway (`axum::serve`, TCP_NODELAY on every accepted connection, a multi-thread tokio
//! runtime built as Keyway's `main` builds it, the same global allocator) and forwards like
//! Keyway (its `UpstreamClient`, the body read whole, the request's `Uri` assembled from the
//! upstream parsed once and the request's own path, the answer streamed back), but has no
//! engine: no client key check, no account choice, no body parsing, no records. Its
//! throughput against Keyway's, measured in the same placement, splits Keyway's cost into what
//! the stack costs and what Keyway adds on top.
//!
//! `--stack axum-reqwest` is the same server with reqwest's client in its place (one shared
//! `reqwest::Client` with Keyway's former options, a URL string per request), the client
//! Keyway's request path used before: what the move to hyper-util's client gained.
//!
//! `--stack hyper` is the leanest Rust stack for the same job: hyper's HTTP/1 server on each
//! accepted connection and `hyper-util`'s pooled client, the upstream's scheme and authority
//! parsed once, the body streamed through in both directions, the header maps reused. It
//! answers whether a leaner server than axum would lift the floor further.
//!
//! `floor-proxy --upstream http://127.0.0.1:PORT [--listen 127.0.0.1:0] [--stack STACK]`
//! prints `listening on http://ADDR` once bound (as `fake-upstream` does) and serves until
//! killed.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http::StatusCode;
use http::header::{self, HeaderMap};
use http::uri::{Authority, Scheme, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use keyway_core::config::Limits;
use keyway_proxy::{HOP_BY_HOP, UpstreamClient};

/// Keyway's allocator (`src-tauri/src/main.rs`), so the floor runs on the same stack.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keyway's default `limits.connect_timeout_secs`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the hyper stack waits after a failed accept before the next.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);
/// Keyway's pool idle timeout (`upstream::POOL_IDLE`).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Keyway's default `limits.max_body_mib`, in bytes: the body is read whole before
/// forwarding, as Keyway reads it, so the floor pays for the same buffering.
fn max_body() -> usize {
    Limits::default().max_body_mib as usize * 1024 * 1024
}

#[derive(Debug, Parser)]
#[command(
    name = "floor-proxy",
    about = "A pass-through to one upstream with no engine, on Keyway's HTTP stack (axum \
             server, reqwest client) or on bare hyper: the floor targets of keyway-bench.",
    after_help = "Prints `listening on http://ADDR` once bound and serves until killed. The \
                  runtime has as many worker threads as Keyway's would: TOKIO_WORKER_THREADS if \
                  set, else the CPUs this process may run on."
)]
struct Args {
    /// Where to forward, e.g. http://127.0.0.1:4000 (the request's path and query are
    /// appended).
    #[arg(long, value_name = "URL")]
    upstream: String,

    /// Address to bind (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// The HTTP stack: `axum` (Keyway's: axum server, body read whole, Keyway's hyper-util
    /// client), `axum-reqwest` (the same with reqwest's client) or `hyper` (hyper's server,
    /// hyper-util's pooled client, body streamed).
    #[arg(long, value_enum, default_value_t = Stack::Axum)]
    stack: Stack,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Stack {
    Axum,
    AxumReqwest,
    Hyper,
}

/// What every request of the `axum-reqwest` stack needs: the one client (its connection
/// pool) and where to send.
struct ReqwestFloor {
    http: reqwest::Client,
    upstream: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // As Keyway's `main`: tokio's defaults, so TOKIO_WORKER_THREADS or, without it, the CPUs
    // the process is pinned to decide the worker threads, for both alike.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floor-proxy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let upstream = args.upstream.trim_end_matches('/').to_owned();
    if !upstream.starts_with("http://") && !upstream.starts_with("https://") {
        return Err(format!("--upstream `{upstream}` is not an http(s) URL"));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // Whoever started us reads this line to learn the port.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on http://{addr}");
    let _ = stdout.flush();
    drop(stdout);
    match args.stack {
        Stack::Axum => serve_axum(listener, &upstream).await,
        Stack::AxumReqwest => serve_axum_reqwest(listener, upstream).await,
        Stack::Hyper => serve_hyper(listener, &upstream).await,
    }
}

async fn serve_axum_reqwest(
    listener: tokio::net::TcpListener,
    upstream: String,
) -> Result<(), String> {
    // The options Keyway's client had, so the pool behaves the same.
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let floor = Arc::new(ReqwestFloor { http, upstream });
    let app = Router::new()
        .route("/v1/messages", post(forward_reqwest))
        .fallback(forward_reqwest)
        .with_state(floor);
    serve_router(listener, app).await
}

/// Serves `app` as Keyway's `serve` does: small writes leave at once, not after the previous
/// one's ACK.
async fn serve_router(listener: tokio::net::TcpListener, app: Router) -> Result<(), String> {
    let tapped = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(tapped, app)
        .await
        .map_err(|e| format!("server stopped: {e}"))
}

/// As [`forward`], with reqwest's client.
async fn forward_reqwest(State(floor): State<Arc<ReqwestFloor>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, max_body()).await {
        Ok(b) => b,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("unreadable body: {e}")).into_response();
        }
    };
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let url = format!("{}{path}", floor.upstream);
    let mut headers = without_hop_by_hop(&parts.headers);
    // reqwest sets Host from the URL and Content-Length from the body.
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    let sent = floor
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => {
            return (StatusCode::BAD_GATEWAY, format!("upstream failed: {e}")).into_response();
        }
    };
    let status = answer.status();
    let headers = without_hop_by_hop(answer.headers());
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn without_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The hyper stack's shared part: the pooled client and the upstream, parsed once.
struct HyperFloor {
    client: Client<HttpConnector, Incoming>,
    scheme: Scheme,
    authority: Authority,
}

/// What the hyper stack answers: the upstream's body streamed back, or its own short error.
type HyperBody = Either<Incoming, Full<Bytes>>;

async fn serve_hyper(listener: tokio::net::TcpListener, upstream: &str) -> Result<(), String> {
    let (scheme, authority) = upstream_root(upstream)?;
    let floor = Arc::new(HyperFloor {
        client: pooled_client(),
        scheme,
        authority,
    });
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: wait a moment, as axum's `serve` does,
            // rather than spin on an accept that keeps failing.
            Err(e) => {
                eprintln!("floor-proxy: accept failed: {e}");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let floor = floor.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let floor = floor.clone();
                async move { Ok::<_, Infallible>(floor.forward(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// The upstream's scheme and authority, parsed once; the stacks on hyper-util's client
/// forward to its root only.
fn upstream_root(upstream: &str) -> Result<(Scheme, Authority), String> {
    let uri: Uri = upstream
        .parse()
        .map_err(|e| format!("--upstream `{upstream}`: {e}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
        return Err(format!("--upstream `{upstream}` has no scheme or host"));
    };
    if uri.path() != "/" {
        return Err(format!(
            "--upstream `{upstream}`: this stack forwards to the upstream's root only"
        ));
    }
    Ok((scheme, authority))
}

/// hyper-util's pooled client with Keyway's connect and pool options, plain TCP.
fn pooled_client() -> Client<HttpConnector, Incoming> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector)
}

/// The request's URI on the upstream: its scheme and authority, the request's own path.
fn upstream_uri(scheme: &Scheme, authority: &Authority, request: &Uri) -> Result<Uri, String> {
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(scheme.clone());
    uri.authority = Some(authority.clone());
    uri.path_and_query = request.path_and_query().cloned();
    Uri::from_parts(uri).map_err(|e| format!("bad path: {e}"))
}

/// What every request of the `axum` stack needs: Keyway's client and where to send.
struct Floor {
    client: UpstreamClient,
    scheme: Scheme,
    authority: Authority,
}

async fn serve_axum(listener: tokio::net::TcpListener, upstream: &str) -> Result<(), String> {
    let (scheme, authority) = upstream_root(upstream)?;
    let client = UpstreamClient::new(CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let floor = Arc::new(Floor {
        client,
        scheme,
        authority,
    });
    let app = Router::new()
        .route("/v1/messages", post(forward))
        .fallback(forward)
        .with_state(floor);
    serve_router(listener, app).await
}

/// Sends the request on to the upstream and streams its answer back, headers and all, minus
/// the connection-level ones.
async fn forward(State(floor): State<Arc<Floor>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, max_body()).await {
        Ok(b) => b,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("unreadable body: {e}")).into_response();
        }
    };
    parts.uri = match upstream_uri(&floor.scheme, &floor.authority, &parts.uri) {
        Ok(uri) => uri,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    match floor
        .client
        .send(hyper::Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(answer) => {
            let (mut parts, body) = answer.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("upstream failed: {e}")).into_response(),
    }
}

impl HyperFloor {
    /// The request on to the upstream with its own path, method, headers (minus the
    /// connection-level ones and `Host`, which the client sets) and body, streamed; the answer
    /// back the same way.
    async fn forward(&self, request: hyper::Request<Incoming>) -> hyper::Response<HyperBody> {
        let (mut parts, body) = request.into_parts();
        parts.uri = match upstream_uri(&self.scheme, &self.authority, &parts.uri) {
            Ok(uri) => uri,
            Err(e) => return hyper_error(StatusCode::BAD_REQUEST, e),
        };
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        match self
            .client
            .request(hyper::Request::from_parts(parts, body))
            .await
        {
            Ok(answer) => {
                let (mut parts, body) = answer.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                hyper::Response::from_parts(parts, Either::Left(body))
            }
            Err(e) => hyper_error(StatusCode::BAD_GATEWAY, format!("upstream failed: {e}")),
        }
    }
}

fn hyper_error(status: StatusCode, text: String) -> hyper::Response<HyperBody> {
    let mut response = hyper::Response::new(Either::Right(Full::new(Bytes::from(text))));
    *response.status_mut() = status;
    response
}

/// Removes the connection-level headers in place.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}
