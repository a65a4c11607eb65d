//! The closed-loop load generator: `concurrency` workers, each with one keep-alive connection,
//! each sending its next request as soon as the previous answer is fully read.
//!
//! Closed loop means the offered load adapts to the target: throughput is what the target
//! sustains at that concurrency, and latency is what each client waits. Requests that
//! complete during the warm-up are not measured (connections, pools and caches settle then);
//! failures are counted over the whole run, warm-up included, so none can hide.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use serde::Serialize;

use crate::client::{self, REQUEST_TIMEOUT, Template};
use crate::stats::{self, Percentiles};

/// Pause after a failed connect, so a dead target is not hammered in a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);
/// Failure messages kept for the report (the first ones; the count has them all).
const KEEP_FAILURES: usize = 5;

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub request: Arc<Template>,
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one closed-loop run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadStats {
    pub concurrency: usize,
    /// Successful (2xx, fully read) requests completed in the measured window.
    pub requests: u64,
    /// Successful requests over the whole run, warm-up and the requests still in flight at
    /// the window's end included: what the target served while its CPU time was read.
    pub completed: u64,
    /// Requests per second over the measured window.
    pub rps: f64,
    /// Latency of those requests, from handing the request to hyper to the last body byte.
    pub latency: Percentiles,
    /// Failed requests (non-2xx, transport error, timeout) during warm-up and measurement.
    pub errors: u64,
    /// The first few failures, for diagnosis.
    pub error_samples: Vec<String>,
    pub seconds: f64,
}

struct Worker {
    ok: u64,
    completed: u64,
    errors: u64,
    samples: Vec<String>,
    latency: Histogram<u64>,
}

impl Worker {
    fn fail(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < KEEP_FAILURES {
            self.samples.push(what);
        }
    }
}

pub async fn run(spec: &LoadSpec) -> LoadStats {
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let workers: Vec<_> = (0..spec.concurrency)
        .map(|_| {
            let spec = spec.clone();
            tokio::spawn(async move { worker(&spec, measure_from, end).await })
        })
        .collect();
    let mut latency = stats::histogram();
    let (mut ok, mut completed, mut errors, mut samples) = (0, 0, 0, Vec::new());
    for handle in workers {
        match handle.await {
            Ok(w) => {
                ok += w.ok;
                completed += w.completed;
                errors += w.errors;
                latency.add(&w.latency).ok();
                samples.extend(w.samples);
            }
            Err(e) => {
                errors += 1;
                samples.push(format!("load worker died: {e}"));
            }
        }
    }
    samples.truncate(KEEP_FAILURES);
    let seconds = spec.duration.as_secs_f64();
    LoadStats {
        concurrency: spec.concurrency,
        requests: ok,
        completed,
        rps: ok as f64 / seconds,
        latency: Percentiles::of(&latency),
        errors,
        error_samples: samples,
        seconds,
    }
}

async fn worker(spec: &LoadSpec, measure_from: Instant, end: Instant) -> Worker {
    let mut w = Worker {
        ok: 0,
        completed: 0,
        errors: 0,
        samples: Vec::new(),
        latency: stats::histogram(),
    };
    let mut conn: Option<client::Sender> = None;
    while Instant::now() < end {
        let sender = match &mut conn {
            Some(sender) => sender,
            None => match client::connect(spec.addr).await {
                Ok(sender) => conn.insert(sender),
                Err(e) => {
                    w.fail(format!("{e:#}"));
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        // A connection the server closed after its last answer (keep-alive limit) is not a
        // failed request: nothing was sent on it. Reconnect.
        if sender.ready().await.is_err() {
            conn = None;
            continue;
        }
        let request = spec.request.build();
        let started = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        })
        .await
        .unwrap_or_else(|_| Err(anyhow!("no answer within {REQUEST_TIMEOUT:?}")));
        let done = Instant::now();
        match outcome {
            Ok((status, _)) if status.is_success() => {
                w.completed += 1;
                if done >= measure_from && done < end {
                    w.ok += 1;
                    stats::record(&mut w.latency, done - started);
                }
            }
            Ok((status, body)) => w.fail(format!("HTTP {status}: {}", client::excerpt(&body))),
            Err(e) => {
                w.fail(format!("{e:#}"));
                conn = None;
            }
        }
    }
    w
}
