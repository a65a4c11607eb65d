//! The client every proxied request goes out on: hyper-util's pooled client over rustls,
//! HTTP/2 where the upstream offers it by ALPN, HTTP/1.1 otherwise, through the proxy the
//! environment names for HTTPS.
//!
//! Not reqwest (which the logins and the quota polls still use, [`login_client`]): on the
//! request path its per-request work (the URL parsed or copied whole, the header map copied
//! for redirects, its client and connector stack cloned) cost about 7.5 µs of CPU a
//! request, close to a third of what a whole pass-through on hyper-util's client spends
//! (`floor-proxy --stack axum-reqwest` against `--stack axum`, docs/PERFORMANCE.md). Here the
//! request's `Uri` is assembled from the provider's base parsed once, and the body is the
//! one `Bytes` every attempt shares.
//!
//! What reqwest gave every upstream request is kept: the Mozilla roots (plus the
//! certificates of `SSL_CERT_FILE`, for a company's TLS-inspecting proxy), TLS 1.2 and 1.3,
//! `HTTPS_PROXY` / `ALL_PROXY` with `NO_PROXY` (a `CONNECT` tunnel, with the proxy URL's
//! credentials as `Proxy-Authorization`), no redirects followed, Nagle off, a connect timeout
//! that covers the tunnel and the TLS handshake, and idle connections closed after
//! [`POOL_IDLE`]. A plain-`http://` upstream (a model server on the local network) is always
//! reached directly.

use std::error::Error as StdError;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

/// How long an idle pooled connection stays open.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The environment variable naming extra trusted certificates (PEM), as OpenSSL reads it.
const CERT_FILE_VAR: &str = "SSL_CERT_FILE";

/// An upstream's answer, its body still arriving.
pub type UpstreamResponse = http::Response<Incoming>;

/// The pooled client. Cloning shares the pool.
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<Connector, Full<Bytes>>,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The client of the logins, token refreshes and quota polls: reqwest, for its form and JSON
/// helpers, with the same TLS settings as [`UpstreamClient`] (so `SSL_CERT_FILE` serves a
/// login too) and, as reqwest does by itself, the proxy of the environment.
pub fn login_client(connect_timeout: Duration) -> Result<reqwest::Client, ClientError> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls_config()?)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(POOL_IDLE)
        .build()?)
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(String);

impl UpstreamClient {
    /// The client, connecting within `connect_timeout` (TCP, the proxy's tunnel and the TLS
    /// handshake together).
    pub fn new(connect_timeout: Duration) -> Result<UpstreamClient, ClientError> {
        let tls = tls_config()?;
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        // The TLS layer above takes https URIs; the timeout covers more than TCP (Connector).
        tcp.enforce_http(false);
        let to_proxy = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp.clone());
        let route = Route {
            tcp,
            to_proxy,
            proxies: Arc::new(Matcher::from_env()),
        };
        let tls = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(route);
        let connector = Connector {
            inner: tls,
            timeout: connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(UpstreamClient { client })
    }

    /// Sends `request`; resolves with the answer's head (its body still to come).
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<UpstreamResponse, SendError> {
        self.client
            .request(request)
            .await
            .map_err(|e| SendError(transport_error(&e)))
    }
}

/// The next piece of `body`'s data (trailers skipped); `None` at its end.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, hyper::Error> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// What went wrong, in words a user can act on, without the URL (it may hold credentials).
fn transport_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut cause = e.source();
    while let Some(now) = cause {
        if let Some(tls) = now.downcast_ref::<rustls::Error>() {
            return format!("TLS failed: {tls}");
        }
        if let Some(proxy) = now.downcast_ref::<ProxyFailed>() {
            return proxy.to_string();
        }
        if now.downcast_ref::<ConnectTimeout>().is_some() {
            return "connection timed out".to_owned();
        }
        if let Some(hyper) = now.downcast_ref::<hyper::Error>()
            && (hyper.is_parse() || hyper.is_incomplete_message())
        {
            return "broken response".to_owned();
        }
        // An I/O error's `source` skips the error it wraps (the TLS layer wraps rustls's
        // error in one, and that in another): step into it instead.
        cause = match now.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => now.source(),
        };
    }
    if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// The TLS settings: rustls with ring, TLS 1.2 and 1.3, the Mozilla roots and those of
/// `SSL_CERT_FILE`. Made once per process (both clients use them; the file is read once).
fn tls_config() -> Result<rustls::ClientConfig, ClientError> {
    static TLS: OnceLock<Result<rustls::ClientConfig, rustls::Error>> = OnceLock::new();
    Ok(TLS.get_or_init(build_tls_config).clone()?)
}

fn build_tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(file) = std::env::var_os(CERT_FILE_VAR) {
        add_cert_file(&mut roots, Path::new(&file));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Adds the certificates of the PEM file `file` to `roots`. A file that cannot be read or
/// holds no certificate is reported and skipped: the built-in roots still serve the
/// providers.
fn add_cert_file(roots: &mut rustls::RootCertStore, file: &Path) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs = match CertificateDer::pem_file_iter(file) {
        Ok(certs) => certs.filter_map(Result::ok).collect::<Vec<_>>(),
        Err(e) => {
            tracing::error!(
                "{CERT_FILE_VAR}={}: cannot read it ({e}); only the built-in roots are trusted",
                file.display()
            );
            return;
        }
    };
    let (added, refused) = roots.add_parsable_certificates(certs);
    if added == 0 {
        tracing::error!(
            "{CERT_FILE_VAR}={}: no usable certificate in it ({refused} refused); only the built-in roots are trusted",
            file.display()
        );
    } else {
        tracing::info!(
            "{CERT_FILE_VAR}={}: {added} certificates trusted besides the built-in roots",
            file.display()
        );
    }
}

type BoxError = Box<dyn StdError + Send + Sync>;
type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;
type Connecting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// Under the TLS layer: a TCP connection to the upstream, or a tunnel to it through the
/// proxy the environment names for its scheme (only `https` upstreams: see the module's
/// doc). The proxy itself is reached over TCP, or TLS for an `https://` proxy.
#[derive(Clone)]
struct Route {
    tcp: HttpConnector,
    to_proxy: HttpsConnector<HttpConnector>,
    proxies: Arc<Matcher>,
}

impl tower_service::Service<Uri> for Route {
    type Response = Stream;
    type Error = BoxError;
    type Future = Connecting<Stream>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let proxy = match dst.scheme_str() {
            Some("https") => self.proxies.intercept(&dst),
            _ => None,
        };
        match proxy {
            None => {
                let connecting = self.tcp.call(dst);
                Box::pin(async move { Ok(MaybeHttpsStream::Http(connecting.await?)) })
            }
            Some(proxy) => {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), self.to_proxy.clone());
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                Box::pin(async move {
                    tunnel
                        .call(dst)
                        .await
                        .map_err(|e| Box::new(ProxyFailed(e.to_string())) as BoxError)
                })
            }
        }
    }
}

/// The proxy of `HTTPS_PROXY` / `ALL_PROXY` did not open the tunnel; says how (hyper-util's
/// words, which hold neither the proxy's URL nor its credentials).
#[derive(Debug, thiserror::Error)]
#[error("the proxy in HTTPS_PROXY or ALL_PROXY did not open a tunnel ({0})")]
struct ProxyFailed(String);

/// The connect timeout around the whole of a connection's set-up.
#[derive(Debug, thiserror::Error)]
#[error("connection timed out")]
struct ConnectTimeout;

#[derive(Clone)]
struct Connector {
    inner: HttpsConnector<Route>,
    timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = MaybeHttpsStream<Stream>;
    type Error = BoxError;
    type Future = Connecting<MaybeHttpsStream<Stream>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected,
                Err(_) => Err(Box::new(ConnectTimeout) as BoxError),
            }
        })
    }
}
