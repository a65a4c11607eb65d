//! A fake HTTP forward proxy on loopback that tunnels with `CONNECT`, as corporate proxies
//! named in `HTTPS_PROXY` do: it reads the request head, checks `Proxy-Authorization` when it
//! is configured with credentials, opens a TCP connection to the target and splices the two
//! connections. Every request head is recorded, so a test can assert what went through the
//! proxy (and that nothing did).
//!
//! It only ever connects to loopback addresses: a target that resolves elsewhere is answered
//! `502` without a connection attempt.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Largest request head the proxy reads; a longer one is answered `431` and closed.
const MAX_HEAD: usize = 8 * 1024;

/// Longest a client may take to send its request head; then the connection is closed.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest the proxy tries to reach a tunnel's target.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the proxy does with a well-formed, authorized request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// `CONNECT host:port`: connect to the target (loopback only), answer
    /// `200 Connection established` and splice both ways. Any other method: `405`.
    #[default]
    Tunnel,
    /// Answer every request `403 Forbidden` and close, as a proxy whose policy denies the
    /// destination does.
    Refuse,
    /// Read and record the request head, then never answer: the connection stays open and
    /// silent until the client closes it.
    Silent,
}

/// How to run a [`FakeConnectProxy`]; the default tunnels everything without credentials.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// Credentials (user, password) every request must carry as
    /// `Proxy-Authorization: Basic base64(user:password)`; a request without them, or with
    /// others, is answered `407 Proxy Authentication Required` (with
    /// `Proxy-Authenticate: Basic realm="fake"`) and closed. `None`: no authentication.
    pub credentials: Option<(String, String)>,
    /// What an authorized request gets.
    pub mode: ProxyMode,
}

/// One request head the proxy read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// The request method, e.g. `CONNECT`.
    pub method: String,
    /// The request target: `host:port` for `CONNECT`, the absolute URL for a forwarded
    /// request.
    pub target: String,
    /// The `Proxy-Authorization` header's value, if sent.
    pub authorization: Option<String>,
    /// The status the proxy answered (`None` in [`ProxyMode::Silent`]).
    pub status: Option<u16>,
}

/// The state shared by the accept loop, the connections and the test.
#[derive(Debug)]
struct State {
    config: ProxyConfig,
    requests: Mutex<Vec<ProxyRequest>>,
    /// TCP connections accepted so far.
    connections: watch::Sender<usize>,
    /// Request heads recorded so far.
    recorded: watch::Sender<usize>,
}

impl State {
    fn record(&self, request: ProxyRequest) {
        let n = {
            let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
            requests.push(request);
            requests.len()
        };
        self.recorded.send_replace(n);
    }
}

/// A running fake `CONNECT` proxy on a loopback port. Dropping it stops accepting connections
/// (tunnels already open end with the runtime).
pub struct FakeConnectProxy {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl FakeConnectProxy {
    /// A proxy on `127.0.0.1:0` that tunnels to loopback targets without authentication.
    ///
    /// # Panics
    /// If a loopback port can't be bound.
    pub async fn start() -> FakeConnectProxy {
        Self::start_with(ProxyConfig::default())
            .await
            .expect("fake proxy: bind 127.0.0.1:0")
    }

    /// A proxy on `127.0.0.1:0` run as `config` says; returns once it listens.
    pub async fn start_with(config: ProxyConfig) -> io::Result<FakeConnectProxy> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            config,
            requests: Mutex::new(Vec::new()),
            connections: watch::Sender::new(0),
            recorded: watch::Sender::new(0),
        });
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    // A connection that failed before it was accepted, or out of descriptors:
                    // the client sees its connection fail.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let _ = client.set_nodelay(true);
                shared.connections.send_modify(|n| *n += 1);
                tokio::spawn(serve(Arc::clone(&shared), client));
            }
        });
        Ok(FakeConnectProxy {
            addr,
            state,
            server,
        })
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY` and the like.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://user:password@127.0.0.1:PORT` (both written as given: pass URL-safe ones).
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// The `Proxy-Authorization` value a client sends for `user` and `password`:
    /// `Basic base64(user:password)`.
    pub fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
    }

    /// Every request head read so far, in arrival order.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The TCP connections accepted so far (including those that never sent a whole head).
    pub fn connections(&self) -> usize {
        *self.state.connections.borrow()
    }

    /// Resolves once `n` request heads in total have been read and recorded.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut seen = self.state.recorded.subscribe();
        // The sender lives as long as `self`, so this can't fail while `self` is borrowed.
        let _ = seen.wait_for(|count| *count >= n).await;
    }
}

impl Drop for FakeConnectProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One client connection: read the head, answer, maybe tunnel.
async fn serve(state: Arc<State>, mut client: TcpStream) {
    let Ok(Ok(Some((head, rest)))) =
        tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await
    else {
        // Timed out, closed early, or I/O error: drop the connection.
        return;
    };
    let Some(head) = head else {
        let _ = client
            .write_all(&answer(
                "431 Request Header Fields Too Large",
                &[],
                "request head too large\n",
            ))
            .await;
        return;
    };
    let Some(parsed) = parse_head(&head) else {
        let _ = client
            .write_all(&answer("400 Bad Request", &[], "malformed request head\n"))
            .await;
        return;
    };
    let mut request = ProxyRequest {
        method: parsed.method,
        target: parsed.target,
        authorization: parsed.authorization,
        status: None,
    };

    let authorized = match &state.config.credentials {
        None => true,
        Some((user, password)) => request
            .authorization
            .as_deref()
            .is_some_and(|value| basic_matches(value, user, password)),
    };
    let reply = if !authorized {
        Some(answer(
            "407 Proxy Authentication Required",
            &["Proxy-Authenticate: Basic realm=\"fake\""],
            "proxy authentication required\n",
        ))
    } else {
        match state.config.mode {
            ProxyMode::Refuse => Some(answer("403 Forbidden", &[], "tunnel refused\n")),
            ProxyMode::Silent => None,
            ProxyMode::Tunnel if request.method != "CONNECT" => Some(answer(
                "405 Method Not Allowed",
                &["Allow: CONNECT"],
                "the fake proxy only tunnels (CONNECT)\n",
            )),
            ProxyMode::Tunnel => {
                let target = connect_loopback(&request.target).await;
                match target {
                    Ok(upstream) => {
                        request.status = Some(200);
                        state.record(request);
                        tunnel(client, upstream, rest).await;
                        return;
                    }
                    Err(why) => Some(answer("502 Bad Gateway", &[], &format!("{why}\n"))),
                }
            }
        }
    };
    match reply {
        Some(reply) => {
            request.status = status_of(&reply);
            state.record(request);
            let _ = client.write_all(&reply).await;
            let _ = client.shutdown().await;
        }
        None => {
            state.record(request);
            // Silent: hold the connection, discarding whatever comes, until the client leaves.
            let mut sink = [0u8; 1024];
            while let Ok(n) = client.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

/// Reads until the blank line ending the head. `Ok(None)`: the client closed first.
/// `Ok(Some((None, _)))`: the head exceeds [`MAX_HEAD`]. Otherwise the head (without the
/// blank line) and any bytes that followed it.
async fn read_head(client: &mut TcpStream) -> io::Result<Option<(Option<Vec<u8>>, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_blank_line(&buf) {
            if end > MAX_HEAD {
                return Ok(Some((None, Vec::new())));
            }
            let rest = buf.split_off(end + 4);
            buf.truncate(end);
            return Ok(Some((Some(buf), rest)));
        }
        if buf.len() > MAX_HEAD {
            return Ok(Some((None, Vec::new())));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

struct Head {
    method: String,
    target: String,
    authorization: Option<String>,
}

/// The request line's method and target, and `Proxy-Authorization`; `None` if the head is
/// not an HTTP/1.x request.
fn parse_head(head: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let version = request_line.next()?;
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut authorization = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("proxy-authorization") && authorization.is_none() {
            authorization = Some(value.trim().to_owned());
        }
    }
    Some(Head {
        method,
        target,
        authorization,
    })
}

/// Whether `value` is `Basic base64(user:password)` (scheme case-insensitive).
fn basic_matches(value: &str, user: &str, password: &str) -> bool {
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic")
        && BASE64
            .decode(encoded.trim())
            .is_ok_and(|decoded| decoded == format!("{user}:{password}").as_bytes())
}

/// Connects to `target` (`host:port`) if it resolves to a loopback address.
async fn connect_loopback(target: &str) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target)
        .await
        .map_err(|e| format!("fake proxy: cannot resolve {target}: {e}"))?
        .filter(|a| a.ip().is_loopback())
        .collect();
    if addrs.is_empty() {
        return Err(format!(
            "fake proxy: {target} is not a loopback address; the fake tunnels to loopback only"
        ));
    }
    let mut last = String::new();
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = format!("fake proxy: cannot connect to {addr}: {e}"),
            Err(_) => last = format!("fake proxy: connecting to {addr} timed out"),
        }
    }
    Err(last)
}

/// Answers `200 Connection established`, forwards what the client sent after its head, then
/// copies both ways until either side closes.
async fn tunnel(mut client: TcpStream, mut upstream: TcpStream, early: Vec<u8>) {
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    if !early.is_empty() && upstream.write_all(&early).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// A complete `HTTP/1.1` answer that closes the connection.
fn answer(status: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    out.into_bytes()
}

/// The status code of an [`answer`].
fn status_of(reply: &[u8]) -> Option<u16> {
    reply.get(9..12)?.iter().try_fold(0u16, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u16::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_gives_its_method_target_and_proxy_authorization() {
        let head = b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\
                     proxy-authorization: Basic dXNlcjpwdw==";
        let parsed = parse_head(head).expect("a head");
        assert_eq!(parsed.method, "CONNECT");
        assert_eq!(parsed.target, "localhost:443");
        assert_eq!(parsed.authorization.as_deref(), Some("Basic dXNlcjpwdw=="));
        assert!(parse_head(b"garbage").is_none());
        assert!(parse_head(b"CONNECT x:1 SPDY/3").is_none());
    }

    #[test]
    fn basic_credentials_match_exactly() {
        let value = FakeConnectProxy::basic("user", "pw");
        assert_eq!(value, "Basic dXNlcjpwdw==");
        assert!(basic_matches(&value, "user", "pw"));
        assert!(basic_matches("basic dXNlcjpwdw==", "user", "pw"));
        assert!(!basic_matches(&value, "user", "other"));
        assert!(!basic_matches("Bearer dXNlcjpwdw==", "user", "pw"));
        assert!(!basic_matches("Basic !!!", "user", "pw"));
    }

    #[test]
    fn answers_carry_their_status() {
        assert_eq!(
            status_of(&answer("407 Proxy Authentication Required", &[], "")),
            Some(407)
        );
        assert_eq!(status_of(b"HTTP/1.1 2x0"), None);
    }
}
