//! Incrementally emitted response bodies: SSE framing and the paced body stream.
//!
//! Bodies are produced lazily, one piece per poll, so each piece reaches the socket when it
//! is produced (hyper flushes whenever the body is pending). Tests rely on this to check that
//! Keyway relays events as they arrive instead of buffering whole answers.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use memchr::memmem;
use serde_json::Value;

use super::server::Pace;
use super::state::{EventTimes, Inflight};
use super::{STAMP_DIGITS, STAMP_MARKER};

/// [`STAMP_MARKER`] followed by [`STAMP_DIGITS`] zeros: what a stamped piece carries until it
/// is emitted. Only digits change when it is filled in, so JSON framing and lengths stay valid.
pub(crate) const STAMP_PLACEHOLDER: &str = " emitted_ns=0000000000000000000";

const _: () = assert!(STAMP_PLACEHOLDER.len() == STAMP_MARKER.len() + STAMP_DIGITS);

/// Where a [`super::Behaviour::Bulk`] piece gets its filler: replaced, as the piece is sent,
/// by a space and that many `x`, so a large stream costs the fake only what is in flight.
pub(crate) const PAD_PLACEHOLDER: &str = " <pad>";

/// `event: <name>\ndata: <json>\n\n` — Anthropic's and OpenAI Responses' framing.
pub(crate) fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// `data: <json>\n\n` — OpenAI Chat Completions' framing.
pub(crate) fn data(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// `data: <json>\r\n\r\n` — Gemini's `alt=sse` framing, which uses CRLF line ends; a fake
/// with LF only would hide a parser that can't handle them.
pub(crate) fn data_crlf(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\r\n\r\n"))
}

/// One piece of a paced body.
pub(crate) enum Step {
    /// Sent as soon as the connection wants it.
    Frame(Bytes),
    /// Sent after the pacing interval; its emission instant is recorded.
    Content(Bytes),
    /// Fail the body, which makes hyper abort the connection mid-message.
    Abort,
    /// Send nothing more, ever (a stalled upstream); ends only when the client goes away.
    Stall,
}

/// A streaming body that emits `steps` in order, waiting `pace.interval` before each content
/// step and filling each content step's [`PAD_PLACEHOLDER`] with `pace.pad` bytes.
///
/// Owns the request's [`Inflight`] guard: finishing the steps (or a scripted abort) marks it
/// finished, while hyper dropping the body early (client gone) counts as a disconnect.
///
/// With `stamp`, every [`STAMP_PLACEHOLDER`] in a piece is overwritten with the wall-clock time
/// just before the piece is handed to hyper, i.e. after the pacing wait.
pub(crate) fn body(
    steps: VecDeque<Step>,
    pace: &Pace,
    guard: Inflight,
    times: Option<EventTimes>,
    stamp: bool,
) -> Body {
    struct Emitter {
        steps: VecDeque<Step>,
        interval: Duration,
        pad: usize,
        guard: Inflight,
        times: Option<EventTimes>,
        stamp: bool,
    }

    let emitter = Emitter {
        steps,
        interval: pace.interval,
        pad: pace.pad,
        guard,
        times,
        stamp,
    };
    let stream = futures_util::stream::unfold(emitter, |mut em| async move {
        let Some(step) = em.steps.pop_front() else {
            em.guard.finish();
            return None;
        };
        let item = match step {
            Step::Frame(bytes) if em.stamp => Ok(stamped(bytes)),
            Step::Frame(bytes) => Ok(bytes),
            Step::Content(bytes) => {
                if !em.interval.is_zero() {
                    tokio::time::sleep(em.interval).await;
                }
                if let Some(times) = &em.times {
                    times
                        .lock()
                        .expect("fake upstream event times mutex poisoned")
                        .push(Instant::now());
                }
                let bytes = if em.pad > 0 {
                    padded(&bytes, em.pad)
                } else {
                    bytes
                };
                Ok(if em.stamp { stamped(bytes) } else { bytes })
            }
            Step::Stall => {
                // Hyper flushes what came before once the body is pending, and this one
                // stays pending.
                let never: std::convert::Infallible = std::future::pending().await;
                match never {}
            }
            Step::Abort => {
                // Hyper flushes only when the body is pending; without this yield the bytes
                // before the abort would die in its write buffer and the client would see no
                // response at all instead of a cut-off one.
                tokio::task::yield_now().await;
                em.guard.finish();
                em.steps.clear();
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "fake upstream: scripted mid-stream drop",
                ))
            }
        };
        Some((item, em))
    });
    Body::from_stream(stream)
}

/// `piece` with its [`PAD_PLACEHOLDER`] replaced by a space and `pad` times `x`.
fn padded(piece: &[u8], pad: usize) -> Bytes {
    let placeholder = PAD_PLACEHOLDER.as_bytes();
    let Some(at) = memmem::find(piece, placeholder) else {
        return Bytes::copy_from_slice(piece);
    };
    let mut out = BytesMut::with_capacity(piece.len() + pad);
    out.extend_from_slice(&piece[..at]);
    out.extend_from_slice(b" ");
    out.resize(out.len() + pad, b'x');
    out.extend_from_slice(&piece[at + placeholder.len()..]);
    out.freeze()
}

/// `piece` with every [`STAMP_PLACEHOLDER`] holding the current CLOCK_REALTIME nanoseconds.
fn stamped(piece: Bytes) -> Bytes {
    let placeholder = STAMP_PLACEHOLDER.as_bytes();
    let found: Vec<usize> = memmem::find_iter(&piece, placeholder).collect();
    if found.is_empty() {
        return piece;
    }
    // A clock before 1970 is a broken machine; 0 then shows up as an absurd delay.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digits = format!("{nanos:0width$}", width = STAMP_DIGITS);
    let digits = &digits.as_bytes()[digits.len() - STAMP_DIGITS..];
    let mut out = BytesMut::from(&piece[..]);
    for at in found {
        let start = at + STAMP_MARKER.len();
        out[start..start + STAMP_DIGITS].copy_from_slice(digits);
    }
    out.freeze()
}
