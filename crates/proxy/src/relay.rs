//! The response body relay: passes upstream chunks through untouched and in order, keeps the
//! account's in-flight count until the body ends, and turns a mid-stream upstream failure of
//! an SSE response into a final error event instead of a silent truncation.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use keyway_core::Surface;
use keyway_core::state::InFlight;

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub struct Relay {
    upstream: Upstream,
    /// The surface whose error event ends a broken SSE stream; `None` for other bodies,
    /// which end with a transport error so the client sees an incomplete response.
    sse: Option<Surface>,
    in_flight: Option<InFlight>,
}

impl Relay {
    pub fn new(
        upstream: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
        sse: Option<Surface>,
        in_flight: InFlight,
    ) -> Relay {
        Relay {
            upstream: Box::pin(upstream),
            sse,
            in_flight: Some(in_flight),
        }
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.in_flight.is_none() {
            return Poll::Ready(None);
        }
        match self.upstream.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(None) => {
                self.in_flight = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.in_flight = None;
                tracing::warn!(error = %e, "upstream failed mid-stream");
                match self.sse {
                    Some(surface) => {
                        Poll::Ready(Some(Ok(Bytes::from(crate::surface::stream_error_event(
                            surface,
                            "the upstream connection broke mid-stream",
                        )))))
                    }
                    None => {
                        Poll::Ready(Some(Err(std::io::Error::other("upstream failed mid-body"))))
                    }
                }
            }
        }
    }
}
