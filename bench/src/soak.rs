//! The soak scenario (`--scenarios soak`, not in the default run): Keyway for minutes at a
//! steady rate across every surface, streaming and not, against a fake upstream that injects
//! failures at random (429s with a reset time, 500s, 529s, connections reset mid-answer,
//! answers that stall, upstreams that never answer), while the Anthropic policy is swapped
//! every few seconds. What a user leaving Keyway running all day needs from it:
//!
//! - every request is served, except those no account could serve (every account tried
//!   failed or was cooling down: Keyway's own 429/5xx in the surface's shape) and streams an
//!   injected fault cut after their first byte (which end with the surface's error event:
//!   failover happens only before the first byte);
//! - its memory stays where it settled after a warm-up, and its open files come back down.
//!
//! Anything else (a connection error, a request with no answer in time, a status Keyway
//! should not give) is an unexpected failure, and fails the run.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::cli::Plan;
use crate::rss;
use crate::swap;
use crate::targets::{self, Proc};

/// How the soak runs.
#[derive(Debug, Clone, Copy)]
pub struct SoakSpec {
    /// How long the load runs.
    pub duration: Duration,
    /// Requests started per second.
    pub rate: u32,
}

/// The first part of the load, after which memory is taken as settled.
const WARM_UP: Duration = Duration::from_secs(10);
/// How often the Anthropic policy is swapped.
const SWAP_EVERY: Duration = Duration::from_secs(2);
/// How often memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Requests in flight at most; more are counted as not sent (the generator, not Keyway, was
/// the limit).
const MAX_IN_FLIGHT: u64 = 512;
/// Longest one request may take: first-byte timeouts on every account, a stream's length and
/// its idle timeout fit well within it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Growth of Keyway's resident memory from the end of the warm-up to the end allowed.
const RSS_GROWTH_BOUND_MIB: f64 = 24.0;
/// Open files Keyway may hold at the end beyond those before the load (its upstream pool).
const FD_GROWTH_BOUND: i64 = 64;
/// Unexpected failures kept for the report.
const KEEP_SAMPLES: usize = 10;

/// The failures the fake injects, in thousandths of requests: `fake-upstream --fault`.
const FAULTS: [(&str, u32); 6] = [
    ("429", 10),
    ("500", 5),
    ("529", 3),
    ("reset", 3),
    ("stall", 2),
    ("hang", 2),
];

/// The accounts: provider and the API key the fake accepts.
const ACCOUNTS: [(&str, &str); 9] = [
    ("anthropic", "sk-ant-soak-1"),
    ("anthropic", "sk-ant-soak-2"),
    ("anthropic", "sk-ant-soak-3"),
    ("openai", "sk-oa-soak-1"),
    ("openai", "sk-oa-soak-2"),
    ("openai", "sk-oa-soak-3"),
    ("google", "sk-goog-soak-1"),
    ("google", "sk-goog-soak-2"),
    ("google", "sk-goog-soak-3"),
];

/// Every surface, streaming and not, taken in turn.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Anthropic { stream: bool },
    Chat { stream: bool },
    Responses,
    Gemini { stream: bool },
}

const KINDS: [Kind; 7] = [
    Kind::Anthropic { stream: false },
    Kind::Anthropic { stream: true },
    Kind::Chat { stream: false },
    Kind::Chat { stream: true },
    Kind::Responses,
    Kind::Gemini { stream: false },
    Kind::Gemini { stream: true },
];

/// What became of one request.
enum Outcome {
    Served,
    /// Keyway answered in the surface's error shape after every account it could try failed
    /// or was cooling down.
    NoAccount,
    /// A stream (or a JSON answer) an injected fault ended after its first byte.
    CutMidStream,
    Unexpected(String),
}

#[derive(Debug, Default, Serialize)]
pub struct SoakReport {
    pub duration_s: f64,
    pub rate: u32,
    pub faults_per_mille: Vec<(String, u32)>,
    pub sent: u64,
    pub not_sent_generator_saturated: u64,
    pub served: u64,
    pub no_account_could_serve: u64,
    pub cut_mid_stream_by_injected_fault: u64,
    pub unexpected: u64,
    pub unexpected_samples: Vec<String>,
    pub policy_swaps_ok: u64,
    pub policy_swaps_failed: u64,
    pub rss_idle_mib: f64,
    pub rss_after_warm_up_mib: f64,
    pub rss_end_mib: f64,
    pub rss_peak_mib: f64,
    pub rss_growth_bound_mib: f64,
    pub fds_before: i64,
    pub fds_end: i64,
    pub fd_growth_bound: i64,
}

impl SoakReport {
    /// Why the run failed, if it did.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.unexpected > 0 {
            out.push(format!(
                "{} requests failed for another reason than no account being able to serve",
                self.unexpected
            ));
        }
        if self.served == 0 {
            out.push("nothing was served".to_owned());
        }
        let growth = self.rss_end_mib - self.rss_after_warm_up_mib;
        if growth > self.rss_growth_bound_mib {
            out.push(format!(
                "memory grew by {growth:.1} MiB after the warm-up (bound {} MiB)",
                self.rss_growth_bound_mib
            ));
        }
        if self.fds_end - self.fds_before > self.fd_growth_bound {
            out.push(format!(
                "open files went from {} to {} (bound +{})",
                self.fds_before, self.fds_end, self.fd_growth_bound
            ));
        }
        if self.policy_swaps_failed > 0 {
            out.push(format!("{} policy swaps failed", self.policy_swaps_failed));
        }
        out
    }

    pub fn markdown(&self) -> String {
        let faults: Vec<String> = self
            .faults_per_mille
            .iter()
            .map(|(kind, n)| format!("{kind} {:.1}%", f64::from(*n) / 10.0))
            .collect();
        let problems = self.problems();
        let verdict = if problems.is_empty() {
            "pass".to_owned()
        } else {
            format!("**fail**: {}", problems.join("; "))
        };
        let mut md = format!(
            "## Soak: {:.0} s at {} requests/s over every surface\n\n\
             Faults injected by the fake: {}. The Anthropic policy is swapped every {} s.\n\n\
             | figure | value |\n|---|---|\n\
             | requests sent | {} ({} not sent: the generator had {MAX_IN_FLIGHT} in flight) |\n\
             | served | {} |\n\
             | failed: no account could serve | {} |\n\
             | cut after the first byte by an injected fault | {} |\n\
             | failed otherwise (must be 0) | {} |\n\
             | policy swaps | {} ok, {} failed |\n\
             | Keyway RSS: idle, after {} s warm-up, end, peak | {:.1} / {:.1} / {:.1} / {:.1} MiB (end − warm-up bound: {} MiB) |\n\
             | Keyway open files: before the load, at the end | {} / {} (bound: +{}) |\n\n\
             Verdict: {verdict}\n",
            self.duration_s,
            self.rate,
            faults.join(", "),
            SWAP_EVERY.as_secs(),
            self.sent,
            self.not_sent_generator_saturated,
            self.served,
            self.no_account_could_serve,
            self.cut_mid_stream_by_injected_fault,
            self.unexpected,
            self.policy_swaps_ok,
            self.policy_swaps_failed,
            WARM_UP.as_secs(),
            self.rss_idle_mib,
            self.rss_after_warm_up_mib,
            self.rss_end_mib,
            self.rss_peak_mib,
            self.rss_growth_bound_mib,
            self.fds_before,
            self.fds_end,
            self.fd_growth_bound,
        );
        for sample in &self.unexpected_samples {
            md.push_str(&format!("\n- unexpected: {sample}"));
        }
        md
    }
}

/// Counts shared by the request tasks.
#[derive(Default)]
struct Counts {
    served: AtomicU64,
    no_account: AtomicU64,
    cut: AtomicU64,
    unexpected: AtomicU64,
    in_flight: AtomicU64,
    samples: std::sync::Mutex<Vec<String>>,
}

pub async fn run(plan: &Plan, spec: SoakSpec) -> anyhow::Result<SoakReport> {
    let dir = tempfile::Builder::new()
        .prefix("keyway-soak.")
        .tempdir()
        .context("cannot create a temp dir")?;
    let (_fake, fake_addr) = start_fake(plan, dir.path()).await?;
    let keyway = Instance::start(plan, dir.path(), fake_addr).await?;
    let pid = keyway.proc.pid()?;
    eprintln!(
        "keyway-bench: soak: {} s at {} requests/s against Keyway at {}",
        spec.duration.as_secs(),
        spec.rate,
        keyway.addr
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    // One request of each kind, so that every connection and cache exists before "idle".
    for kind in KINDS {
        let _ = request(&http, &keyway, kind).await;
    }
    let rss_idle = rss::read(pid)?.rss_kib;
    let fds_before = open_fds(pid)?;

    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let end = started + spec.duration;
    let swaps = tokio::spawn(swap_policies(
        http.clone(),
        keyway.addr,
        keyway.token.clone(),
        keyway.anthropic.clone(),
        end,
    ));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(spec.rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sampler = tokio::time::interval(SAMPLE_EVERY);
    let (mut sent, mut not_sent, mut n) = (0u64, 0u64, 0usize);
    let (mut rss_warm, mut rss_peak) = (None, rss_idle);
    let keyway = Arc::new(keyway);
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < end {
        tokio::select! {
            _ = ticker.tick() => {
                if counts.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    not_sent += 1;
                    continue;
                }
                let kind = KINDS[n % KINDS.len()];
                n += 1;
                sent += 1;
                counts.in_flight.fetch_add(1, Ordering::Relaxed);
                let (http, keyway, counts) = (http.clone(), keyway.clone(), counts.clone());
                tasks.spawn(async move {
                    let outcome = request(&http, &keyway, kind).await;
                    counts.record(kind, outcome);
                    counts.in_flight.fetch_sub(1, Ordering::Relaxed);
                });
                while tasks.try_join_next().is_some() {}
            }
            _ = sampler.tick() => {
                let now = rss::read(pid)?.rss_kib;
                rss_peak = rss_peak.max(now);
                if rss_warm.is_none() && started.elapsed() >= WARM_UP {
                    rss_warm = Some(now);
                }
            }
        }
    }
    // Let the requests in flight end (each is bounded by REQUEST_TIMEOUT).
    tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .map_err(|_| anyhow!("requests still in flight {REQUEST_TIMEOUT:?} after the load ended"))?;
    let (swaps_ok, swaps_failed) = swaps.await.context("the policy swaps task")?;
    // Our connections go; Keyway keeps only its upstream pool.
    drop(http);
    let rss_end = rss::read(pid)?.rss_kib;
    rss_peak = rss_peak.max(rss_end);
    let fds_end = settled_fds(pid, fds_before).await?;
    let samples = counts.samples.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(SoakReport {
        duration_s: spec.duration.as_secs_f64(),
        rate: spec.rate,
        faults_per_mille: FAULTS.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        sent,
        not_sent_generator_saturated: not_sent,
        served: counts.served.load(Ordering::Relaxed),
        no_account_could_serve: counts.no_account.load(Ordering::Relaxed),
        cut_mid_stream_by_injected_fault: counts.cut.load(Ordering::Relaxed),
        unexpected: counts.unexpected.load(Ordering::Relaxed),
        unexpected_samples: samples,
        policy_swaps_ok: swaps_ok,
        policy_swaps_failed: swaps_failed,
        rss_idle_mib: rss::mib(rss_idle),
        rss_after_warm_up_mib: rss::mib(rss_warm.unwrap_or(rss_idle)),
        rss_end_mib: rss::mib(rss_end),
        rss_peak_mib: rss::mib(rss_peak),
        rss_growth_bound_mib: RSS_GROWTH_BOUND_MIB,
        fds_before,
        fds_end,
        fd_growth_bound: FD_GROWTH_BOUND,
    })
}

impl Counts {
    fn record(&self, kind: Kind, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Served => &self.served,
            Outcome::NoAccount => &self.no_account,
            Outcome::CutMidStream => &self.cut,
            Outcome::Unexpected(why) => {
                if let Ok(mut samples) = self.samples.lock()
                    && samples.len() < KEEP_SAMPLES
                {
                    samples.push(format!("{kind:?}: {why}"));
                }
                &self.unexpected
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Open file descriptors of `pid`.
fn open_fds(pid: u32) -> anyhow::Result<i64> {
    let dir = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {dir}"))?
        .count() as i64)
}

/// Open files once the closing of the load's connections has reached Keyway: at most a few
/// seconds after they fell to their floor or to `before` (whichever comes first).
async fn settled_fds(pid: u32, before: i64) -> anyhow::Result<i64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = open_fds(pid)?;
    while Instant::now() < deadline && last > before {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = open_fds(pid)?;
    }
    Ok(last)
}

/// PUT the next Anthropic policy every [`SWAP_EVERY`] until `end`; (ok, failed).
async fn swap_policies(
    http: reqwest::Client,
    addr: SocketAddr,
    token: String,
    accounts: Vec<String>,
    end: Instant,
) -> (u64, u64) {
    let policies = swap::policies(&accounts);
    let (mut ok, mut failed) = (0, 0);
    let mut ticker = tokio::time::interval(SWAP_EVERY);
    let mut n = 0;
    loop {
        ticker.tick().await;
        if Instant::now() >= end {
            return (ok, failed);
        }
        let answer = http
            .put(format!("http://{addr}/api/policies/anthropic"))
            .bearer_auth(&token)
            .json(&policies[n % policies.len()])
            .send()
            .await;
        n += 1;
        match answer {
            Ok(r) if r.status().is_success() => ok += 1,
            _ => failed += 1,
        }
    }
}

/// One request of `kind`, read to its end, and what became of it.
async fn request(http: &reqwest::Client, keyway: &Instance, kind: Kind) -> Outcome {
    let base = format!("http://{}", keyway.addr);
    let key = &keyway.client_key;
    let message = json!([{"role": "user", "content": "hi"}]);
    let builder = match kind {
        Kind::Anthropic { stream } => http
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream, "messages": message})),
        Kind::Chat { stream } => http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(key)
            .json(&json!({"model": "gpt-5", "stream": stream, "messages": message})),
        Kind::Responses => http
            .post(format!("{base}/v1/responses"))
            .bearer_auth(key)
            .json(&json!({"model": "gpt-5", "stream": true, "input": "hi"})),
        Kind::Gemini { stream } => {
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            http.post(format!("{base}/v1beta/models/gemini-2.5-flash:{method}"))
                .header("x-goog-api-key", key)
                .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        }
    };
    let response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Unexpected(format!("no answer: {e}")),
    };
    let status = response.status().as_u16();
    let body = response.bytes().await;
    match (status, body) {
        (200, Ok(body)) => {
            // Failover happens only before the first byte: a stream cut later ends with
            // Keyway's error event.
            if memchr::memmem::find(&body, b"keyway: the upstream").is_some() {
                Outcome::CutMidStream
            } else {
                Outcome::Served
            }
        }
        // A JSON answer cut after its headers: the client sees it incomplete.
        (200, Err(_)) => Outcome::CutMidStream,
        (429 | 500 | 502 | 503 | 529, Ok(body)) if error_shaped(&body) => Outcome::NoAccount,
        (status, Ok(body)) => Outcome::Unexpected(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )),
        (status, Err(e)) => Outcome::Unexpected(format!("HTTP {status}, body unreadable: {e}")),
    }
}

/// Whether `body` is an error in one of the surfaces' shapes (`{"error": ...}` or
/// Anthropic's `{"type": "error", ...}`).
fn error_shaped(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|v| v.get("error").is_some() || v.get("type") == Some(&json!("error")))
}

/// The fake with every account's key and the faults of [`FAULTS`]; streams of 5 events 20 ms
/// apart.
async fn start_fake(plan: &Plan, dir: &Path) -> anyhow::Result<(Proc, SocketAddr)> {
    let mut cmd = Command::new(&plan.fake_bin);
    cmd.args(["--listen", "127.0.0.1:0", "--no-record"]);
    cmd.args(["--stream-events", "5", "--stream-interval-ms", "20"]);
    for (provider, key) in ACCOUNTS {
        cmd.arg("--key").arg(format!("{provider}:{key}"));
    }
    for (kind, per_mille) in FAULTS {
        cmd.arg("--fault").arg(format!("{kind}:{per_mille}"));
    }
    let mut fake = Proc::spawn("soak-fake-upstream", cmd, None, dir)?;
    let line = fake.wait_for_line("listening on").await?;
    let addr = targets::parse_listen_line(&line)?;
    Ok((fake, addr))
}

/// Keyway for the soak: its own config, data dir and keyring service, every account of
/// [`ACCOUNTS`] added with the CLI, timeouts short enough that a hang or a stall costs seconds.
struct Instance {
    proc: Proc,
    addr: SocketAddr,
    client_key: String,
    token: String,
    /// The Anthropic account ids.
    anthropic: Vec<String>,
}

impl Instance {
    async fn start(plan: &Plan, dir: &Path, upstream: SocketAddr) -> anyhow::Result<Instance> {
        let config_dir = dir.join("config");
        std::fs::create_dir_all(&config_dir)?;
        let config = config_dir.join("config.toml");
        let mut text = String::from(
            "# Generated by keyway-bench's soak.\nlog_level = \"warn\"\n\n[limits]\n\
             first_byte_timeout_secs = 3\nupstream_idle_timeout_secs = 2\n\n",
        );
        for provider in ["anthropic", "openai", "google"] {
            text.push_str(&format!(
                "[providers.{provider}]\nbase_url = \"http://{upstream}\"\n\n"
            ));
        }
        std::fs::write(&config, text)?;
        let env = crate::keyway::Env {
            bin: plan.keyway_bin.clone(),
            config,
            data: dir.join("data"),
            service: format!("keyway-soak-{}", std::process::id()),
        };
        let mut anthropic = Vec::new();
        for (i, (provider, key)) in ACCOUNTS.iter().enumerate() {
            let label = format!("soak-{}", i + 1);
            let id = env
                .cli(&["account", "add", provider, "--label", &label], key)
                .await?;
            if *provider == "anthropic" {
                anthropic.push(id);
            }
        }
        let mut cmd = Command::from(env.command());
        cmd.args(["--headless", "--listen", "127.0.0.1:0"]);
        let mut proc = Proc::spawn("soak-keyway", cmd, None, dir)?;
        let line = proc.wait_for_line("listening on http://").await?;
        let addr = targets::parse_listen_line(&line)?;
        Ok(Instance {
            proc,
            addr,
            client_key: env.cli(&["client-key"], "").await?,
            token: env.cli(&["management-token"], "").await?,
            anthropic,
        })
    }
}
