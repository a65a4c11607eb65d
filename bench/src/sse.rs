//! The streaming scenario: concurrent Anthropic SSE streams whose events the fake stamps with
//! the wall-clock time it emitted them (`fake-upstream --stamp`).
//!
//! For every content event the client takes the wall clock when the chunk carrying it arrives
//! and subtracts the stamp: that is how long the event took from the fake's hand-over to
//! the client, whatever sits in between. Both processes read CLOCK_REALTIME on the same
//! machine, so the difference is meaningful to a few microseconds. Time to first byte is
//! measured from sending the request to the first body chunk (the stream's opening events,
//! which the fake sends at once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use memchr::memmem;
use serde::Serialize;

use crate::client::{self, REQUEST_TIMEOUT, Template};
use crate::stats::{self, Percentiles};

/// What precedes the emission time in a stamped event's text (fake-upstream's `STAMP_MARKER`).
const STAMP_MARKER: &[u8] = b" emitted_ns=";
/// Digits of the stamp (fake-upstream's `STAMP_DIGITS`).
const STAMP_DIGITS: usize = 19;
/// Failure messages kept for the report.
const KEEP_FAILURES: usize = 5;

#[derive(Debug, Clone)]
pub struct SseSpec {
    pub addr: SocketAddr,
    /// The streaming request.
    pub request: Arc<Template>,
    /// A non-streaming request sent once per worker first, so connections (and a proxy's
    /// upstream connections) exist before the first measured stream.
    pub warmup_request: Arc<Template>,
    pub streams: usize,
    /// Content events each stream must carry.
    pub events: usize,
    /// New streams start until this much time has passed; running ones finish.
    pub duration: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct SseStats {
    pub concurrency: usize,
    /// Streams that ended properly with every content event.
    pub streams: u64,
    pub events: u64,
    /// Emission (stamp) to arrival, per content event.
    pub delay: Percentiles,
    /// Request sent to first body chunk, per stream.
    pub ttfb: Percentiles,
    /// Streams that failed (status, transport, missing events or stamps).
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// Events that arrived before their stamp (clock stepped backwards); counted as 0 delay.
    pub negative_delays: u64,
}

struct Worker {
    streams: u64,
    events: u64,
    delay: Histogram<u64>,
    ttfb: Histogram<u64>,
    errors: u64,
    samples: Vec<String>,
    negative: u64,
}

impl Worker {
    fn fail(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < KEEP_FAILURES {
            self.samples.push(what);
        }
    }
}

pub async fn run(spec: &SseSpec) -> SseStats {
    let end = Instant::now() + spec.duration;
    let workers: Vec<_> = (0..spec.streams)
        .map(|_| {
            let spec = spec.clone();
            tokio::spawn(async move { worker(&spec, end).await })
        })
        .collect();
    let mut total = Worker {
        streams: 0,
        events: 0,
        delay: stats::histogram(),
        ttfb: stats::histogram(),
        errors: 0,
        samples: Vec::new(),
        negative: 0,
    };
    for handle in workers {
        match handle.await {
            Ok(w) => {
                total.streams += w.streams;
                total.events += w.events;
                total.delay.add(&w.delay).ok();
                total.ttfb.add(&w.ttfb).ok();
                total.errors += w.errors;
                total.negative += w.negative;
                total.samples.extend(w.samples);
            }
            Err(e) => total.fail(format!("stream worker died: {e}")),
        }
    }
    total.samples.truncate(KEEP_FAILURES);
    SseStats {
        concurrency: spec.streams,
        streams: total.streams,
        events: total.events,
        delay: Percentiles::of(&total.delay),
        ttfb: Percentiles::of(&total.ttfb),
        errors: total.errors,
        error_samples: total.samples,
        negative_delays: total.negative,
    }
}

async fn worker(spec: &SseSpec, end: Instant) -> Worker {
    let mut w = Worker {
        streams: 0,
        events: 0,
        delay: stats::histogram(),
        ttfb: stats::histogram(),
        errors: 0,
        samples: Vec::new(),
        negative: 0,
    };
    let mut conn = match warm_up(spec).await {
        Ok(sender) => Some(sender),
        Err(e) => {
            w.fail(format!("warm-up request: {e:#}"));
            None
        }
    };
    while Instant::now() < end {
        let sender = match &mut conn {
            Some(sender) => sender,
            None => match client::connect(spec.addr).await {
                Ok(sender) => conn.insert(sender),
                Err(e) => {
                    w.fail(format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if sender.ready().await.is_err() {
            conn = None;
            continue;
        }
        let limit = REQUEST_TIMEOUT + spec.duration;
        match tokio::time::timeout(limit, one_stream(sender, spec, &mut w)).await {
            Ok(Ok(())) => w.streams += 1,
            Ok(Err(e)) => {
                w.fail(format!("{e:#}"));
                conn = None;
            }
            Err(_) => {
                w.fail(format!("stream did not finish within {limit:?}"));
                conn = None;
            }
        }
    }
    w
}

async fn warm_up(spec: &SseSpec) -> anyhow::Result<client::Sender> {
    let mut sender = client::connect(spec.addr).await?;
    let response = sender.send_request(spec.warmup_request.build()).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("HTTP {status}: {}", client::excerpt(&body));
    }
    Ok(sender)
}

/// One stream: records its TTFB and each content event's delay into `w`.
async fn one_stream(
    sender: &mut client::Sender,
    spec: &SseSpec,
    w: &mut Worker,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let response = sender.send_request(spec.request.build()).await?;
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let body = body.collect().await?.to_bytes();
        bail!("HTTP {status}: {}", client::excerpt(&body));
    }
    let mut parser = Parser::default();
    let mut first = true;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        // Clocks first: everything after this is the client's own work.
        let arrived_ns = unix_nanos();
        if first {
            stats::record(&mut w.ttfb, started.elapsed());
            first = false;
        }
        for stamp in parser.push(data)? {
            match arrived_ns.checked_sub(stamp) {
                Some(delay) => stats::record_nanos(&mut w.delay, delay),
                None => {
                    w.negative += 1;
                    stats::record_nanos(&mut w.delay, 0);
                }
            }
            w.events += 1;
        }
    }
    if !parser.stopped {
        bail!("the stream ended without message_stop (connection cut?)");
    }
    if parser.content != spec.events {
        bail!(
            "the stream carried {} content events, expected {}",
            parser.content,
            spec.events
        );
    }
    Ok(())
}

/// Splits an SSE byte stream into events and pulls the stamps out of content events.
#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
    content: usize,
    stopped: bool,
}

impl Parser {
    /// Feeds a chunk; returns the stamps of the content events it completed.
    fn push(&mut self, chunk: &[u8]) -> anyhow::Result<Vec<u64>> {
        self.buf.extend_from_slice(chunk);
        let mut stamps = Vec::new();
        let mut consumed = 0;
        while let Some(end) = memmem::find(&self.buf[consumed..], b"\n\n") {
            let event = &self.buf[consumed..consumed + end];
            consumed += end + 2;
            if memmem::find(event, b"event: content_block_delta").is_some() {
                stamps.push(stamp_of(event)?);
                self.content += 1;
            } else if memmem::find(event, b"event: message_stop").is_some() {
                self.stopped = true;
            }
        }
        self.buf.drain(..consumed);
        Ok(stamps)
    }
}

/// The emission time in a stamped event.
fn stamp_of(event: &[u8]) -> anyhow::Result<u64> {
    let missing = || {
        anyhow!(
            "a content event carries no emission stamp (is the fake running with --stamp?): {}",
            client::excerpt(event)
        )
    };
    let at = memmem::find(event, STAMP_MARKER).ok_or_else(missing)? + STAMP_MARKER.len();
    let digits = event.get(at..at + STAMP_DIGITS).ok_or_else(missing)?;
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(missing)
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELTA: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" +1 emitted_ns=1712345678901234567\"}}\n\n";

    #[test]
    fn stamps_across_chunk_boundaries() {
        let mut p = Parser::default();
        let all =
            format!("event: ping\ndata: {{}}\n\n{DELTA}{DELTA}event: message_stop\ndata: {{}}\n\n");
        let (a, b) = all.as_bytes().split_at(60);
        let mut stamps = p.push(a).unwrap();
        stamps.extend(p.push(b).unwrap());
        assert_eq!(stamps, [1_712_345_678_901_234_567; 2]);
        assert_eq!(p.content, 2);
        assert!(p.stopped);
    }

    #[test]
    fn unstamped_content_is_an_error() {
        let mut p = Parser::default();
        let event = "event: content_block_delta\ndata: {\"text\":\"hi\"}\n\n";
        let err = p.push(event.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("--stamp"), "{err}");
    }
}
