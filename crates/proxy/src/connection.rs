//! Client connections, as a mature proxy keeps them: accepted up to a cap (the excess is
//! refused at once, never queued), given a time to send each request's headers and a time to
//! stay idle between requests, then closed. The requests themselves are the router's; this
//! module only sees when one starts and when its response has been written.
//!
//! hyper's own `header_read_timeout` starts counting as soon as a connection waits for a
//! request head, so on a kept-alive connection it is also the idle timeout: one value for
//! both. Keyway keeps them apart (`limits.client_header_timeout_secs`,
//! `limits.client_idle_timeout_secs`) by watching the connection itself: the bytes it reads,
//! the requests in flight, and when the last response ended.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{Request, Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use crate::engine::Engine;

/// File descriptors kept for everything but client connections (logs, the usage history,
/// the config watcher, the keyring's D-Bus connection...).
const RESERVED_FDS: u64 = 64;
/// At most one "too many connections" warning in this long.
const REFUSAL_WARN_EVERY: Duration = Duration::from_secs(10);
/// What a connection over the cap gets before it is closed.
static REFUSAL: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    const BODY: &str =
        "Keyway has too many connections open (limits.max_connections); try again.\n";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
         content-type: text/plain; charset=utf-8\r\nretry-after: 1\r\n\
         content-length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
});

/// The timeouts of one connection, read from the config when it is accepted.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

impl Timeouts {
    fn of(engine: &Engine) -> Timeouts {
        let limits = &engine.snapshot().config.limits;
        Timeouts {
            header: Duration::from_secs(limits.client_header_timeout_secs),
            idle: Duration::from_secs(limits.client_idle_timeout_secs),
        }
    }
}

/// Raise this process's soft open-file limit to its hard limit (Linux and macOS), so that
/// `limits.max_connections` is not cut short by a low default. Returns the soft limit now in
/// force, if known.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        // SAFETY: getrlimit/setrlimit on a local struct; failure leaves the limit as it was.
        unsafe {
            let mut limit = std::mem::zeroed::<libc::rlimit>();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            // macOS refuses RLIM_INFINITY (and anything above OPEN_MAX) as a soft limit.
            let want = if cfg!(target_os = "macos") {
                limit.rlim_max.min(10_240)
            } else {
                limit.rlim_max
            };
            if want > limit.rlim_cur {
                let raised = libc::rlimit {
                    rlim_cur: want,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = want;
                }
            }
            Some(limit.rlim_cur as u64)
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How many client connections may be open at once: `max_connections`, and at most half of
/// what the open-file limit leaves after [`RESERVED_FDS`] (each client connection may hold
/// an upstream connection too).
pub fn cap(max_connections: u32, open_files: Option<u64>) -> usize {
    let by_files = open_files.map_or(u64::MAX, |n| n.saturating_sub(RESERVED_FDS) / 2);
    (u64::from(max_connections).min(by_files).max(1)) as usize
}

/// The connection slots shared by every listener of one server (a listener that moved still
/// drains its connections within the same cap).
pub struct Slots {
    permits: Arc<Semaphore>,
    last_warning: std::sync::Mutex<Option<Instant>>,
}

impl Slots {
    pub fn new(cap: usize) -> Slots {
        Slots {
            permits: Arc::new(Semaphore::new(cap)),
            last_warning: std::sync::Mutex::new(None),
        }
    }

    fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    fn warn_refused(&self) {
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| at.elapsed() >= REFUSAL_WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                "refusing new connections: limits.max_connections are open (a client that opens many and sends nothing is closed after limits.client_header_timeout_secs)"
            );
        }
    }
}

/// Accept connections on `listener` and serve each with `app` until `stop` turns true; then
/// stop accepting and wait for the connections: idle ones close at once, those with a
/// request in flight when its response is complete.
pub async fn accept_loop(
    listener: TcpListener,
    app: Router,
    engine: Arc<Engine>,
    slots: Arc<Slots>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    // Every connection holds a receiver; `closed()` resolves when the last one is gone.
    let (open, _) = watch::channel(());
    let stopping = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let Some(permit) = slots.take() else {
                        refuse(tcp, &slots);
                        continue;
                    };
                    // Small writes (an SSE event) must leave at once, not wait for the
                    // previous one's ACK.
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(serve(
                        tcp,
                        app.clone(),
                        Timeouts::of(&engine),
                        stopping.clone(),
                        (permit, open.subscribe()),
                    ));
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // Out of file descriptors, say: others will close; do not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    open.closed().await;
    Ok(())
}

/// Resolves when `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A connection over the cap: a 503 if the socket takes it without waiting, then closed.
fn refuse(tcp: TcpStream, slots: &Slots) {
    let _ = tcp.try_write(&REFUSAL);
    drop(tcp);
    slots.warn_refused();
}

/// Serve one connection until it ends, its timeouts run out, or the server stops.
async fn serve(
    tcp: TcpStream,
    app: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
    _held: (OwnedSemaphorePermit, watch::Receiver<()>),
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: tcp,
        activity: activity.clone(),
    });
    let service = Counting {
        inner: TowerToHyperService::new(app),
        activity: activity.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header and idle timeouts are kept here (see the module's doc), not by hyper.
    builder.header_read_timeout(None::<Duration>);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "client connection ended");
                }
                return;
            }
            () = activity.expired(timeouts) => {
                tracing::debug!("closing a client connection that sent no request in time");
                return;
            }
            () = stopped(&mut stop), if !stopping => {
                stopping = true;
                if activity.in_flight() == 0 {
                    return;
                }
                // Let the request in flight finish, then close.
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What a connection is doing, as far as its timeouts care.
struct Activity {
    epoch: Instant,
    /// Requests whose response has not been written yet.
    in_flight: AtomicUsize,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// When the connection last became idle (its opening, or a response's end), in ms since
    /// `epoch`.
    idle_since: AtomicU64,
    /// When the first byte after `idle_since` arrived, in ms since `epoch` plus one (0: none).
    head_since: AtomicU64,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Bytes arrived: the first while idle starts the header timeout.
    fn read(&self) {
        if self.in_flight() == 0 && self.head_since.load(Ordering::Relaxed) == 0 {
            self.head_since.store(self.now() + 1, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// When the connection must have done something by (ms since `epoch`), if anything.
    fn deadline(&self, t: Timeouts) -> Option<u64> {
        if self.in_flight() > 0 {
            return None;
        }
        let ms = |d: Duration| d.as_millis() as u64;
        let head = self.head_since.load(Ordering::Relaxed);
        if head > 0 {
            return Some(head - 1 + ms(t.header));
        }
        let idle = self.idle_since.load(Ordering::Relaxed);
        if self.requests.load(Ordering::Relaxed) == 0 {
            // A new connection gets the header timeout for its first request.
            Some(idle + ms(t.header))
        } else {
            Some(idle + ms(t.idle))
        }
    }

    /// Resolves when the connection's current deadline passes.
    async fn expired(&self, t: Timeouts) {
        loop {
            let changed = self.changed.notified();
            match self.deadline(t) {
                None => changed.await,
                Some(at) => {
                    let now = self.now();
                    if now >= at {
                        return;
                    }
                    let wait = Duration::from_millis(at - now);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// One request in flight on a connection, until its response has been written (or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.head_since.store(0, Ordering::Relaxed);
            activity.idle_since.store(activity.now(), Ordering::Relaxed);
        }
        activity.changed.notify_one();
    }
}

/// The client socket, noting when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as a hyper service, counting each request in flight until its response body
/// is done.
struct Counting {
    inner: TowerToHyperService<Router>,
    activity: Arc<Activity>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Counted>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Counting {
    type Response = Response<Counted>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Counted {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that holds its request's place in flight until it is done.
struct Counted {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_well_framed_503() {
        let text = String::from_utf8(REFUSAL.clone()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
    }

    #[test]
    fn the_cap_leaves_room_for_upstream_connections() {
        assert_eq!(cap(4096, Some(1024)), 480);
        assert_eq!(cap(4096, Some(1_048_576)), 4096);
        assert_eq!(cap(100, None), 100);
        assert_eq!(cap(4096, Some(10)), 1);
    }

    #[test]
    fn deadlines_follow_the_connections_state() {
        let t = Timeouts {
            header: Duration::from_secs(30),
            idle: Duration::from_secs(75),
        };
        let a = Arc::new(Activity::new());
        assert_eq!(
            a.deadline(t),
            Some(30_000),
            "a new connection: the header timeout"
        );
        let request = a.begin();
        assert_eq!(
            a.deadline(t),
            None,
            "nothing is timed while a request is in flight"
        );
        drop(request);
        let idle = a.idle_since.load(Ordering::Relaxed);
        assert_eq!(
            a.deadline(t),
            Some(idle + 75_000),
            "kept alive: the idle timeout"
        );
        a.read();
        let head = a.head_since.load(Ordering::Relaxed) - 1;
        assert_eq!(
            a.deadline(t),
            Some(head + 30_000),
            "a request began: its headers' time"
        );
    }
}
