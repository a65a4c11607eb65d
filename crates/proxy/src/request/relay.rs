//! The response body relay: passes upstream chunks through untouched and in order, keeps the
//! account's in-flight count until the body ends, turns a mid-stream upstream failure of an
//! SSE response — a shutdown whose drain time ran out, or an upstream silent for longer than
//! `limits.upstream_idle_timeout_secs` — into a final error event instead of a silent
//! truncation (or a hang), and records the request (with the token counts seen in passing) when
//! the body ends or the client leaves.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use keyway_core::Surface;
use keyway_core::session::{CacheTokens, SessionKey};
use keyway_core::state::{InFlight, now_ms};

use super::surface;
use crate::engine::Engine;
use crate::record::RequestRecord;
use crate::record::tokens::TokenCounter;

/// The upstream's body as the relay reads it: passed through, or translated for the client.
pub type Upstream = Pin<Box<dyn Stream<Item = Result<Bytes, hyper::Error>> + Send>>;

pub struct Relay {
    upstream: Upstream,
    /// Resolves when Keyway's shutdown drain is over and open bodies must end.
    ending: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The longest the upstream may stay silent (`limits.upstream_idle_timeout_secs`), when
    /// the last piece came, and a timer armed for `last_piece + idle_limit` (re-armed lazily,
    /// so a busy stream costs a clock read per piece, not a timer update).
    idle_limit: Duration,
    last_piece: Instant,
    idle: Pin<Box<tokio::time::Sleep>>,
    /// The surface whose error event ends a broken SSE stream; `None` for other bodies,
    /// which end with a transport error so the client sees an incomplete response.
    sse: Option<Surface>,
    /// Present until the body ends.
    open: Option<Open>,
}

/// What a body in flight holds until it ends.
pub struct Open {
    pub in_flight: InFlight,
    pub engine: Arc<Engine>,
    pub record: RequestRecord,
    pub started: Instant,
    pub tokens: TokenCounter,
    /// The pool scope and session the request belongs to, whose cache figures it adds to.
    pub session: Option<(Arc<str>, SessionKey)>,
}

impl Open {
    fn finish(self) {
        let Open {
            in_flight,
            engine,
            mut record,
            started,
            tokens,
            session,
        } = self;
        record.latency_ms = started.elapsed().as_millis() as u64;
        let seen = tokens.finish();
        if let Some(account) = &record.account {
            // State only the answering account can continue from.
            if let Some(id) = &seen.response_id {
                engine.owners().insert(id, account);
            }
            for item in &seen.encrypted_reasoning {
                engine.owners().insert(item, account);
            }
        }
        if let Some((scope, key)) = session {
            let t = seen.tokens;
            let cache = CacheTokens {
                input: t.input.unwrap_or(0),
                cache_read: t.cache_read.unwrap_or(0),
                cache_write: t.cache_write.unwrap_or(0),
            };
            engine.sessions().record_tokens(&scope, &key, cache);
        }
        record.set_tokens(seen.tokens, &engine.snapshot().prices);
        // The tokens count against the account's `tpm`, and the account has a slot free again.
        in_flight.finish(record.total_tokens(), now_ms());
        engine.finish(record);
    }
}

impl Relay {
    pub fn new(upstream: Upstream, sse: Option<Surface>, open: Open) -> Relay {
        let idle_limit = Duration::from_secs(
            open.engine
                .snapshot()
                .config
                .limits
                .upstream_idle_timeout_secs,
        );
        let now = Instant::now();
        Relay {
            upstream,
            ending: Box::pin(open.engine.streams_ending()),
            idle_limit,
            last_piece: now,
            idle: Box::pin(tokio::time::sleep_until((now + idle_limit).into())),
            sse,
            open: Some(open),
        }
    }

    fn finish(&mut self) {
        if let Some(open) = self.open.take() {
            open.finish();
        }
    }
}

/// A client that goes away mid-body still leaves a record.
impl Drop for Relay {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.open.is_none() {
            return Poll::Ready(None);
        }
        match self.upstream.as_mut().poll_next(cx) {
            Poll::Pending => {
                if self.ending.as_mut().poll(cx).is_ready() {
                    self.finish();
                    tracing::warn!("stream ended: Keyway is shutting down");
                    return Poll::Ready(Some(self.end(
                        "Keyway is shutting down and ended this stream (limits.drain_secs)",
                    )));
                }
                if self.upstream_silent(cx) {
                    self.finish();
                    let secs = self.idle_limit.as_secs();
                    tracing::warn!(
                        silent_s = secs,
                        "upstream stalled mid-answer; ending it (limits.upstream_idle_timeout_secs)"
                    );
                    return Poll::Ready(Some(self.end(&format!(
                        "the upstream sent nothing for {secs}s and the answer was ended (limits.upstream_idle_timeout_secs)"
                    ))));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(chunk))) => {
                self.last_piece = Instant::now();
                if let Some(open) = self.open.as_mut() {
                    open.tokens.feed(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                self.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.finish();
                tracing::warn!(error = %e, "upstream failed mid-stream");
                Poll::Ready(Some(self.end("the upstream connection broke mid-stream")))
            }
        }
    }
}

impl Relay {
    /// Whether the upstream has been silent for the whole idle limit; otherwise the timer is
    /// armed to wake this task when it would be.
    fn upstream_silent(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last_piece + self.idle_limit;
            if Instant::now() >= due {
                return true;
            }
            // A piece came since the timer was armed: count from it.
            self.idle.as_mut().reset(due.into());
        }
    }

    /// The last item of a body that cannot go on: the surface's error event for SSE, a
    /// transport error (an incomplete response) for other bodies.
    fn end(&self, why: &str) -> Result<Bytes, std::io::Error> {
        match self.sse {
            Some(surface) => Ok(Bytes::from(surface::stream_error_event(surface, why))),
            None => Err(std::io::Error::other(why.to_owned())),
        }
    }
}
