//! The response body relay: passes upstream chunks through untouched and in order, keeps the
//! account's in-flight count until the body ends, turns a mid-stream upstream failure of an
//! SSE response — or a shutdown whose drain time ran out — into a final error event instead of
//! a silent truncation, and records the request (with the token counts seen in passing) when
//! the body ends or the client leaves.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;
use keyway_core::Surface;
use keyway_core::session::{CacheTokens, SessionKey};
use keyway_core::state::{InFlight, now_ms};

use super::surface;
use crate::engine::Engine;
use crate::record::RequestRecord;
use crate::record::tokens::TokenCounter;

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub struct Relay {
    upstream: Upstream,
    /// Resolves when Keyway's shutdown drain is over and open bodies must end.
    ending: Pin<Box<dyn Future<Output = ()> + Send>>,
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
    pub fn new(
        upstream: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
        sse: Option<Surface>,
        open: Open,
    ) -> Relay {
        Relay {
            upstream: Box::pin(upstream),
            ending: Box::pin(open.engine.streams_ending()),
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
            Poll::Pending => match self.ending.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    self.finish();
                    tracing::warn!("stream ended: Keyway is shutting down");
                    Poll::Ready(Some(self.end(
                        "Keyway is shutting down and ended this stream (limits.drain_secs)",
                    )))
                }
            },
            Poll::Ready(Some(Ok(chunk))) => {
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
    /// The last item of a body that cannot go on: the surface's error event for SSE, a
    /// transport error (an incomplete response) for other bodies.
    fn end(&self, why: &str) -> Result<Bytes, std::io::Error> {
        match self.sse {
            Some(surface) => Ok(Bytes::from(surface::stream_error_event(surface, why))),
            None => Err(std::io::Error::other(why.to_owned())),
        }
    }
}
