//! What a run found, as JSON (the structs below, serialized as they are) and as Markdown: one
//! row per scenario and target with the ratio against nginx and the latency added over the
//! direct path, Keyway's memory and start-up, and the targets judged: pass or miss,
//! or disturbed (other processes used the CPU while a figure was taken) or unknown (whether
//! they did could not be read).

use std::fmt::Write as _;

use serde::Serialize;

use crate::cpu::{DISTURBED, Interference, Usage};
use crate::desktop::Desktop;
use crate::loadgen::LoadStats;
use crate::replay::{Replay, ReplayRun};
use crate::rest::Rest;
use crate::rss::mib;
use crate::sse::SseStats;
use crate::swap::SwapStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The fake upstream itself: the floor every proxy adds to.
    Direct,
    /// nginx as a reverse proxy to the fake: what a mature proxy costs.
    Nginx,
    /// `keyway --headless` with three accounts under round-robin.
    Keyway,
    /// `floor-proxy` (with `--floor`): Keyway's HTTP stack passing bytes through with no
    /// engine, placed like Keyway; what the stack alone costs, small-request scenarios only.
    Floor,
    /// `floor-proxy --stack axum-reqwest` (with `--floor`): the same with reqwest's client,
    /// which Keyway's request path used before; what the move to hyper-util's client gained.
    #[serde(rename = "floor_reqwest")]
    FloorReqwest,
    /// `floor-proxy --stack hyper` (with `--floor`): bare hyper server and pooled client, the
    /// body streamed; whether a leaner stack would lift the floor.
    #[serde(rename = "floor_hyper")]
    FloorHyper,
    /// LiteLLM's proxy (with `--litellm-python`): the peer users most often pick instead,
    /// three deployments of one model group at the fake, in c=16 and SSE only.
    #[serde(rename = "litellm")]
    LiteLlm,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Nginx => "nginx",
            Target::Keyway => "keyway",
            Target::Floor => "floor",
            Target::FloorReqwest => "floor (reqwest)",
            Target::FloorHyper => "floor (hyper)",
            Target::LiteLlm => "litellm",
        }
    }

    /// The peer (LiteLLM), which runs in c=16 and SSE only.
    pub fn is_peer(self) -> bool {
        self == Target::LiteLlm
    }

    /// One of the floor targets, which run in the small-request scenarios only.
    pub fn is_floor(self) -> bool {
        matches!(
            self,
            Target::Floor | Target::FloorReqwest | Target::FloorHyper
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: Meta,
    pub scenarios: Vec<Scenario>,
    pub keyway: KeywayFacts,
    /// The session replay, when it ran.
    pub replay: Option<Replay>,
    /// The peer, when it ran (`--litellm-python`).
    pub peer: Option<PeerFacts>,
    /// The desktop app, when measured (`--desktop-json`).
    pub desktop: Option<Desktop>,
    pub goals: Vec<Goal>,
}

/// What the peer is and what it cost besides its runs' figures.
#[derive(Debug, Clone, Serialize)]
pub struct PeerFacts {
    /// `LiteLLM`.
    pub name: String,
    /// The installed package's version, e.g. `1.108.5`.
    pub version: String,
    /// Exec to the first 200 from its liveness check, one start.
    pub startup_ms: f64,
    /// VmRSS just after it started, before any request, KiB.
    pub idle_rss_kib: u64,
    /// VmHWM at the end of the run (its whole life: start-up and every run), KiB.
    pub peak_rss_kib: u64,
    /// The config file it ran with.
    pub config: String,
}

/// Where and how the figures were taken.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// `full` or `short`.
    pub mode: String,
    pub date_utc: String,
    /// `git describe`-like commit of the checkout Keyway was built from, `+dirty` if its
    /// sources had uncommitted changes.
    pub keyway_commit: String,
    pub keyway_bin: String,
    /// Keyway's log level when set by `--keyway-log-level` (else its default, info).
    pub keyway_log_level: Option<String>,
    pub nginx_version: Option<String>,
    /// The `floor-proxy` binary when the floor target ran (`--floor`).
    pub floor_bin: Option<String>,
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub placement: String,
    /// CPUs the proxy under test may use (= nginx workers = Keyway's and the floor's runtime
    /// threads).
    pub target_cpus: usize,
    /// 1-minute load average when the run started; high means something else was busy.
    pub load_average: Option<f64>,
    pub seconds_per_run: f64,
    pub warmup_seconds: f64,
    pub request_bytes: usize,
    pub sse_streams: usize,
    pub sse_events: usize,
    pub sse_interval_ms: u64,
    pub note: Option<String>,
    /// The load generator itself is a debug build (slow: its figures mean nothing).
    pub bench_debug_build: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Stable key: `c1`, `c16`, `c16_limits`, `c16_swap`, `c64`, `sse`, `c16_translated`,
    /// `sse_translated`.
    pub id: String,
    pub title: String,
    pub runs: Vec<Run>,
    /// Policy swaps done during this scenario's Keyway run.
    pub swaps: Option<SwapStats>,
}

impl Scenario {
    pub fn run(&self, target: Target) -> Option<&Run> {
        self.runs.iter().find(|r| r.target == target)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub target: Target,
    pub load: Option<LoadStats>,
    pub sse: Option<SseStats>,
    /// Keyway's VmHWM during this run, KiB.
    pub keyway_peak_rss_kib: Option<u64>,
    /// CPU time Keyway used during this run (user + system, every thread, warm-up
    /// included), ms.
    pub keyway_cpu_ms: Option<f64>,
    /// The same for the peer, in its runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_cpu_ms: Option<f64>,
    /// CPU used by other processes (and stolen by the hypervisor) during this run.
    pub interference: Interference,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeywayFacts {
    /// VmRSS a second after start, before any request.
    pub idle_rss_kib: u64,
    /// Wake-ups and CPU while nothing is asked of it, right after the idle RSS reading.
    pub at_rest: Option<Rest>,
    /// Other processes' CPU from Keyway's start to the end of the idle readings.
    pub idle_interference: Interference,
    /// VmRSS after every scenario (what it keeps).
    pub rss_after_run_kib: u64,
    /// Exec to first proxied 200, each run.
    pub startup_ms: Vec<f64>,
    /// Other processes' CPU during the start-up runs.
    pub startup_interference: Interference,
    /// Requests each account served under round-robin: before the policy-swap scenario (or
    /// over the whole run without it). Even counts show the rotation works.
    pub requests_per_account: Vec<(String, u64)>,
}

impl KeywayFacts {
    pub fn startup_median_ms(&self) -> Option<f64> {
        let mut v = self.startup_ms.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    pub fn startup_max_ms(&self) -> Option<f64> {
        self.startup_ms.iter().copied().reduce(f64::max)
    }
}

/// One of the targets.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub what: String,
    pub goal: String,
    pub measured: String,
    pub result: Verdict,
    /// Judged on a figure no machine changes (failures, cache ratios, placement): a miss is a
    /// fault in Keyway, not noise, and fails the run even in short mode.
    pub any_machine: bool,
}

/// How a target fared in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Miss,
    /// Other processes used the CPU while a figure it rests on was taken: neither pass nor
    /// miss means anything.
    Disturbed,
    /// Whether anything disturbed a figure it rests on could not be read.
    Unknown,
    /// This run did not measure it (e.g. without nginx).
    NotMeasured,
}

impl Verdict {
    /// The verdict on a figure that met its goal or not (`None`: not measured), taken while
    /// `conditions` held.
    fn of(met: Option<bool>, conditions: &[Interference]) -> Verdict {
        match met {
            None => Verdict::NotMeasured,
            Some(_) if conditions.iter().any(|c| c.is_disturbed()) => Verdict::Disturbed,
            Some(_) if conditions.iter().any(|c| c.is_unknown()) => Verdict::Unknown,
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Miss,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Miss => "**miss**",
            Verdict::Disturbed => "disturbed",
            Verdict::Unknown => "unknown",
            Verdict::NotMeasured => "n/a",
        }
    }
}

/// nginx's added p99 at c=16 counts as at least this much in the comparison: it can be at or
/// below zero within the noise (when the fake, not nginx, is the limit), where a ratio means
/// nothing and "≤ 1.2× of nothing" would fail any proxy.
pub const NGINX_ADDED_P99_FLOOR_MS: f64 = 0.1;

/// The translated c=16 run's throughput is at least this share of the pass-through c=16
/// run's (Keyway alone both times, same run, same machine). Two clean full runs on the
/// machine of docs/PERFORMANCE.md measured 0.83× and 0.84×: Keyway's CPU per request went
/// from 45 µs to 57 µs (+12 µs), of which translation proper is about 4 µs (`cargo bench -p
/// keyway-translate`: the request and the whole answer, 2 µs each); the rest is the
/// translated path's other work (the answer read whole before it is rendered, the larger
/// Chat bodies, the OpenAI adapter). The fake shares Keyway's CPU and answers both. Short
/// runs there measured 0.67× and 0.75×. 0.70× stays clear of the full runs' spread (1 % for
/// Keyway ÷ nginx at c=16 over clean runs) and of most short runs; below it translation has
/// become markedly dearer (its added CPU per request about doubled).
pub const TRANSLATED_RPS_MIN: f64 = 0.70;

/// The translated SSE run's event delay p50 exceeds the pass-through run's by at most this.
/// Translating one content event costs about 0.7 µs of CPU (`cargo bench -p
/// keyway-translate`, `translate/stream/content_event`); clean full runs measured +0.005 ms
/// and +0.045 ms, short runs +0.057 ms and +0.077 ms. 0.25 ms is several times that, and far
/// below the 20 ms that holding an event back until the next one would add.
pub const TRANSLATED_DELAY_P50_MAX_MS: f64 = 0.25;

/// Keyway's throughput at c=16 is at least this many times LiteLLM's (the target for
/// the peer comparison). Judged like the ratio against nginx: a miss is flagged, never a
/// failure of the run.
pub const LITELLM_RPS_RATIO_MIN: f64 = 50.0;
/// The desktop app at rest, resident (`keyway` with its tray, no window), MiB.
const DESKTOP_REST_MIB: f64 = 60.0;
/// How far above the rest figure the desktop app may stay after its window closed, MiB.
const DESKTOP_CLOSED_MIB: f64 = 10.0;

impl Report {
    fn scenario(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.id == id)
    }

    fn load(&self, id: &str, target: Target) -> Option<&LoadStats> {
        self.scenario(id)?.run(target)?.load.as_ref()
    }

    /// Whether the floor target ran in any scenario (`--floor` with a small-request one).
    fn has_floor(&self) -> bool {
        self.scenarios
            .iter()
            .any(|s| s.run(Target::Floor).is_some())
    }

    fn sse(&self, target: Target) -> Option<&SseStats> {
        self.sse_of("sse", target)
    }

    fn sse_of(&self, id: &str, target: Target) -> Option<&SseStats> {
        self.scenario(id)?.run(target)?.sse.as_ref()
    }

    /// Keyway's CPU time per request (small-request scenarios) or per content event (SSE,
    /// the streams' set-up spread over their events) in scenario `id`, µs.
    fn keyway_cpu_us(&self, id: &str) -> Option<f64> {
        self.cpu_us(id, Target::Keyway)
    }

    /// [`Report::keyway_cpu_us`] for Keyway or the peer.
    fn cpu_us(&self, id: &str, target: Target) -> Option<f64> {
        let run = self.scenario(id)?.run(target)?;
        let served = match (&run.load, &run.sse) {
            (Some(l), _) => l.completed,
            (_, Some(s)) => s.events,
            _ => 0,
        };
        let ms = match target {
            Target::Keyway => run.keyway_cpu_ms?,
            _ => run.peer_cpu_ms?,
        };
        (served > 0).then(|| ms * 1e3 / served as f64)
    }

    /// A target's name in the tables: the peer with its version.
    fn label(&self, target: Target) -> String {
        match (&self.peer, target) {
            (Some(p), Target::LiteLlm) => format!("{} {}", p.name, p.version),
            _ => target.name().to_owned(),
        }
    }

    /// The interference during `target`'s run of scenario `id` (unknown if it did not run:
    /// its figures are then missing too, and the goal is not measured).
    fn conditions(&self, id: &str, target: Target) -> Interference {
        self.scenario(id)
            .and_then(|s| s.run(target))
            .map_or(Interference::Unknown, |r| r.interference)
    }

    /// The targets, judged on this run's figures and the conditions they were taken
    /// in.
    pub fn judge(&self) -> Vec<Goal> {
        use Target::*;
        let mut goals = Vec::new();
        let mut goal =
            |what: &str, goal: &str, value: Option<(String, bool)>, conditions: &[Interference]| {
                goals.push(Goal {
                    what: what.to_owned(),
                    goal: goal.to_owned(),
                    measured: value.as_ref().map_or("n/a".to_owned(), |(m, _)| m.clone()),
                    result: Verdict::of(value.map(|(_, met)| met), conditions),
                    any_machine: conditions.is_empty(),
                });
            };
        for (id, c) in [("c16", 16), ("c64", 64)] {
            let ratio = self
                .load(id, Keyway)
                .zip(self.load(id, Nginx))
                .filter(|(_, n)| n.rps > 0.0)
                .map(|(k, n)| k.rps / n.rps);
            goal(
                &format!("throughput at c={c} vs nginx"),
                "≥ 0.90×",
                ratio.map(|r| (format!("{r:.2}×"), shown(r, 2) >= 0.9)),
                &[self.conditions(id, Keyway), self.conditions(id, Nginx)],
            );
        }
        let added = |id: &str, f: fn(&LoadStats) -> f64| {
            Some(f(self.load(id, Keyway)?) - f(self.load(id, Direct)?))
        };
        let c1 = [self.conditions("c1", Keyway), self.conditions("c1", Direct)];
        let p50 = added("c1", |l| l.latency.p50_ms);
        goal(
            "added latency p50 at c=1 (Keyway − direct)",
            "≤ 0.15 ms",
            p50.map(|a| (format!("{a:.3} ms"), shown(a, 3) <= 0.15)),
            &c1,
        );
        let p99 = added("c1", |l| l.latency.p99_ms);
        goal(
            "added latency p99 at c=1 (Keyway − direct)",
            "≤ 1 ms",
            p99.map(|a| (format!("{a:.3} ms"), shown(a, 3) <= 1.0)),
            &c1,
        );
        let c16 = added("c16", |l| l.latency.p99_ms).zip(
            self.load("c16", Nginx)
                .zip(self.load("c16", Direct))
                .map(|(n, d)| n.latency.p99_ms - d.latency.p99_ms),
        );
        goal(
            "added p99 at c=16 vs nginx's added p99",
            &format!("≤ 1.5× (nginx's counted as ≥ {NGINX_ADDED_P99_FLOOR_MS} ms)"),
            c16.map(|(k, n)| {
                let allowed = 1.5 * n.max(NGINX_ADDED_P99_FLOOR_MS);
                let text = format!("{k:.3} ms vs {n:.3} ms ({})", ratio_text(k, n));
                (text, shown(k, 3) <= shown(allowed, 3))
            }),
            &[
                self.conditions("c16", Keyway),
                self.conditions("c16", Nginx),
                self.conditions("c16", Direct),
            ],
        );
        // Against the floor (Keyway's own stack with no engine), only when it ran.
        if let Some(floor) = self.load("c64", Floor) {
            let added = |l: &LoadStats, d: &LoadStats| l.latency.p99_ms - d.latency.p99_ms;
            let c64 = self
                .load("c64", Keyway)
                .zip(self.load("c64", Direct))
                .map(|(k, d)| (added(k, d), added(floor, d)));
            goal(
                "added p99 at c=64 vs the floor's added p99",
                "≤ 2×",
                c64.map(|(k, f)| {
                    let text = format!("{k:.3} ms vs {f:.3} ms ({})", ratio_text(k, f));
                    (text, shown(k, 3) <= shown(2.0 * f, 3))
                }),
                &[
                    self.conditions("c64", Keyway),
                    self.conditions("c64", Floor),
                    self.conditions("c64", Direct),
                ],
            );
        }
        let delay = self.sse(Keyway).map(|s| s.delay.p99_ms);
        goal(
            "SSE: event delay p99, fake emission → client (Keyway)",
            "≤ 1 ms",
            delay.map(|d| (format!("{d:.3} ms"), shown(d, 3) <= 1.0)),
            &[self.conditions("sse", Keyway)],
        );
        let ttfb = self
            .sse(Keyway)
            .zip(self.sse(Direct))
            .map(|(k, d)| k.ttfb.p50_ms - d.ttfb.p50_ms);
        goal(
            "SSE: time to first byte added, p50 (Keyway − direct)",
            "≤ 0.5 ms",
            ttfb.map(|t| (format!("{t:.3} ms"), shown(t, 3) <= 0.5)),
            &[
                self.conditions("sse", Keyway),
                self.conditions("sse", Direct),
            ],
        );
        let limited = self
            .load("c16_limits", Keyway)
            .zip(self.load("c16", Keyway))
            .filter(|(_, plain)| plain.rps > 0.0)
            .map(|(l, plain)| l.rps / plain.rps);
        goal(
            "throughput at c=16 with limits on the key vs without",
            "≥ 0.97×",
            limited.map(|r| (format!("{r:.2}×"), shown(r, 2) >= 0.97)),
            &[
                self.conditions("c16_limits", Keyway),
                self.conditions("c16", Keyway),
            ],
        );
        let swap = self.scenario("c16_swap").and_then(|s| {
            let load = s.run(Keyway)?.load.as_ref()?;
            let swaps = s.swaps.as_ref()?;
            Some((load, swaps))
        });
        goal(
            "failed requests during policy swaps",
            "0",
            swap.map(|(load, swaps)| {
                (
                    format!(
                        "{} failed; {} swaps ({} failed)",
                        load.errors, swaps.ok, swaps.failed
                    ),
                    load.errors == 0 && swaps.failed == 0 && swaps.ok > 0,
                )
            }),
            // Failures are failures however busy the machine was.
            &[],
        );
        let idle = self.keyway.idle_rss_kib;
        goal(
            "Keyway idle RSS",
            "≤ 15 MiB",
            (idle > 0).then(|| (format!("{} MiB", mib(idle)), mib(idle) <= 15.0)),
            &[self.keyway.idle_interference],
        );
        goal(
            "Keyway wake-ups at rest",
            "0 a minute",
            self.keyway.at_rest.map(|r| {
                (
                    format!(
                        "{:.0} a minute, {:.1} ms of CPU a minute (over {:.0} s)",
                        r.wakeups_per_min, r.cpu_ms_per_min, r.window_secs
                    ),
                    r.wakeups_per_min == 0.0,
                )
            }),
            // A count of its own timers and polls; judged, not failed, like the idle memory.
            &[self.keyway.idle_interference],
        );
        let peak = self
            .scenario("c64")
            .and_then(|s| s.run(Keyway)?.keyway_peak_rss_kib);
        goal(
            "Keyway peak RSS during c=64",
            "≤ 40 MiB",
            peak.map(|p| (format!("{} MiB", mib(p)), mib(p) <= 40.0)),
            &[self.conditions("c64", Keyway)],
        );
        let startup = self
            .keyway
            .startup_median_ms()
            .zip(self.keyway.startup_max_ms());
        goal(
            "start-up, exec → first proxied 200 (median; max)",
            "≤ 100 ms",
            startup.map(|(med, max)| {
                (
                    format!("{med:.1} ms; max {max:.1} ms"),
                    shown(med, 1) <= 100.0,
                )
            }),
            &[self.keyway.startup_interference],
        );
        // Cache ratios, failures and placement do not depend on how busy the machine was.
        let replay = |id: &str| self.replay.as_ref()?.run(id);
        let vs_one = |id: &str| {
            let ideal = replay("one_account")?.cache_ratio()?;
            let ratio = replay(id)?.cache_ratio()?;
            (ideal > 0.0).then(|| (ratio, ideal, ratio / ideal))
        };
        for (id, what, at_least) in [
            (
                "session",
                "sessions: cache ratio, spread = session vs one account",
                0.95,
            ),
            (
                "session_exhausted",
                "sessions: cache ratio with one account exhausted halfway vs one account",
                0.85,
            ),
        ] {
            goal(
                what,
                &format!("≥ {:.0}%", at_least * 100.0),
                vs_one(id).map(|(ratio, ideal, of)| {
                    (
                        format!(
                            "{:.1}% ({:.1}% vs {:.1}%)",
                            of * 100.0,
                            ratio * 100.0,
                            ideal * 100.0
                        ),
                        shown(of * 100.0, 1) >= at_least * 100.0,
                    )
                }),
                &[],
            );
        }
        goal(
            "sessions: failed requests in the replay",
            "0",
            self.replay.as_ref().map(|r| {
                let failed: u64 = r.runs.iter().map(|run| run.failed).sum();
                let requests: u64 = r.runs.iter().map(|run| run.requests).sum();
                (format!("{failed} of {requests}"), failed == 0)
            }),
            &[],
        );
        goal(
            "sessions: new sessions per account (spread = session)",
            "≤ even share + 1",
            self.replay.as_ref().zip(replay("session")).map(|(r, run)| {
                let even = r.spec.sessions.div_ceil(run.accounts.max(1)) as u64;
                let most = run.sessions_per_account.iter().copied().max().unwrap_or(0);
                (
                    format!("{} (even share {even})", per_account(run)),
                    most <= even + 1 && run.sessions_per_account.iter().sum::<u64>() > 0,
                )
            }),
            &[],
        );
        // Translation, against Keyway's pass-through figures of the same run.
        let translated = self
            .load("c16_translated", Keyway)
            .zip(self.load("c16", Keyway))
            .filter(|(_, plain)| plain.rps > 0.0)
            .map(|(t, plain)| t.rps / plain.rps);
        goal(
            "translated: throughput at c=16 vs pass-through",
            &format!("≥ {TRANSLATED_RPS_MIN:.2}×"),
            translated.map(|r| (format!("{r:.2}×"), shown(r, 2) >= TRANSLATED_RPS_MIN)),
            &[
                self.conditions("c16_translated", Keyway),
                self.conditions("c16", Keyway),
            ],
        );
        let delay = self
            .sse_of("sse_translated", Keyway)
            .zip(self.sse(Keyway))
            .map(|(t, plain)| t.delay.p50_ms - plain.delay.p50_ms);
        goal(
            "translated SSE: event delay p50 added vs pass-through",
            &format!("≤ {TRANSLATED_DELAY_P50_MAX_MS} ms"),
            delay.map(|d| {
                (
                    format!("{d:+.3} ms"),
                    shown(d, 3) <= TRANSLATED_DELAY_P50_MAX_MS,
                )
            }),
            &[
                self.conditions("sse_translated", Keyway),
                self.conditions("sse", Keyway),
            ],
        );
        let failed = ["c16_translated", "sse_translated"]
            .iter()
            .filter_map(|id| self.scenario(id)?.run(Keyway))
            .map(|r| {
                let load = r.load.as_ref().map_or(0, |l| l.errors);
                load + r.sse.as_ref().map_or(0, |s| s.errors)
            })
            .reduce(|a, b| a + b);
        goal(
            "translated: failed requests and streams",
            "0",
            failed.map(|n| (format!("{n} failed"), n == 0)),
            // A translated answer that fails is a fault in translation, however busy the
            // machine was.
            &[],
        );
        // The desktop app, only when measured. Its memory and wake-ups do not depend on what
        // else runs, but it is measured outside this run's interference checks: a miss is a
        // miss, not a fault that fails the run.
        if let Some(d) = &self.desktop {
            let measured = [Interference::Quiet(Usage::default())];
            goal(
                "desktop app at rest, resident",
                &format!("≤ {DESKTOP_REST_MIB:.0} MiB"),
                Some((
                    format!("{} MiB", mib(d.rest.main_rss_kib)),
                    mib(d.rest.main_rss_kib) <= DESKTOP_REST_MIB,
                )),
                &measured,
            );
            let back = mib(d.closed.total_rss_kib) - mib(d.rest.total_rss_kib);
            goal(
                "desktop app after closing the dashboard vs at rest",
                &format!("≤ +{DESKTOP_CLOSED_MIB:.0} MiB"),
                Some((
                    format!("{back:+.1} MiB ({} MiB)", mib(d.closed.total_rss_kib)),
                    back <= DESKTOP_CLOSED_MIB,
                )),
                &measured,
            );
            let woke = d.rest.wakeups_per_min.zip(d.closed.wakeups_per_min);
            goal(
                "desktop app wake-ups at rest and after closing",
                "0 a minute",
                woke.map(|(rest, closed)| {
                    (
                        format!("{rest} and {closed} a minute"),
                        rest == 0 && closed == 0,
                    )
                }),
                &measured,
            );
        }
        // The peer, only when it ran: a run without it has no such goal (not even n/a).
        if let Some(peer) = self.load("c16", LiteLlm) {
            let figures = self
                .load("c16", Keyway)
                .filter(|_| peer.rps > 0.0)
                .map(|k| (k.rps / peer.rps, k.rps));
            goal(
                "throughput at c=16 vs LiteLLM",
                &format!("≥ {LITELLM_RPS_RATIO_MIN:.0}×"),
                figures.map(|(r, keyway)| {
                    let text = format!(
                        "{r:.1}× ({} vs {} req/s)",
                        thousands(keyway),
                        thousands(peer.rps)
                    );
                    (text, shown(r, 1) >= LITELLM_RPS_RATIO_MIN)
                }),
                &[
                    self.conditions("c16", Keyway),
                    self.conditions("c16", LiteLlm),
                ],
            );
        }
        goals
    }

    /// Goals that no machine excuses and that this run missed.
    pub fn faults(&self) -> Vec<&Goal> {
        self.goals
            .iter()
            .filter(|g| g.any_machine && g.result == Verdict::Miss)
            .collect()
    }

    /// Harness failures (not performance misses): a target that never answered, streams
    /// that carried no stamps. A run with any of these measured nothing.
    pub fn broken(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for s in &self.scenarios {
            for r in &s.runs {
                let served = match (&r.load, &r.sse) {
                    (Some(l), _) => l.requests > 0,
                    (_, Some(sse)) => sse.streams > 0 && sse.events > 0,
                    _ => false,
                };
                if !served {
                    let why = r
                        .load
                        .as_ref()
                        .map(|l| l.error_samples.clone())
                        .or_else(|| r.sse.as_ref().map(|s| s.error_samples.clone()))
                        .unwrap_or_default();
                    problems.push(format!(
                        "{} / {}: nothing served successfully ({})",
                        s.title,
                        r.target.name(),
                        why.join("; ")
                    ));
                }
            }
        }
        for run in self.replay.iter().flat_map(|r| &r.runs) {
            if run.requests == run.failed {
                problems.push(format!(
                    "session replay / {}: nothing served successfully ({})",
                    run.title,
                    run.error_samples.join("; ")
                ));
            }
        }
        problems
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.write_heading(&mut md);
        self.write_requests(&mut md);
        self.write_sse(&mut md);
        self.write_peer(&mut md);
        self.write_translation(&mut md);
        self.write_keyway(&mut md);
        self.write_desktop(&mut md);
        self.write_replay(&mut md);
        self.write_interference(&mut md);
        self.write_goals(&mut md);
        md
    }

    /// Runs during which other processes used the CPU, or during which nobody could tell:
    /// their figures are not comparable.
    fn write_interference(&self, md: &mut String) {
        let k = &self.keyway;
        let all: Vec<(String, Interference)> = self
            .scenarios
            .iter()
            .flat_map(|s| {
                s.runs
                    .iter()
                    .map(move |r| (format!("{} / {}", s.title, r.target.name()), r.interference))
            })
            .chain([
                ("Keyway's start-up".to_owned(), k.startup_interference),
                ("Keyway's idle RSS".to_owned(), k.idle_interference),
            ])
            .collect();
        let disturbed: Vec<String> = all
            .iter()
            .filter_map(|(what, i)| match i {
                Interference::Disturbed(u) => Some(format!("{what} ({:.2} CPU)", u.foreign_cpus)),
                _ => None,
            })
            .collect();
        let unknown: Vec<&str> = all
            .iter()
            .filter(|(_, i)| i.is_unknown())
            .map(|(what, _)| what.as_str())
            .collect();
        let steal = all
            .iter()
            .filter_map(|(_, i)| i.usage())
            .map(|u| u.steal_cpus)
            .fold(0.0, f64::max);
        if disturbed.is_empty() && unknown.is_empty() {
            let _ = writeln!(
                md,
                "Interference: other processes used under {DISTURBED} CPU during every run, \
                 start-up and idle reading (hypervisor steal up to {steal:.2} CPU).\n"
            );
            return;
        }
        if !disturbed.is_empty() {
            let _ = writeln!(
                md,
                "> **Disturbed: other processes used the CPU during {}. Those figures are not \
                 comparable and their targets are judged \"disturbed\"; run again on an idle \
                 machine.**\n",
                disturbed.join(", ")
            );
        }
        if !unknown.is_empty() {
            let _ = writeln!(
                md,
                "> **Unknown: /proc could not be read around {}, so whether anything else used \
                 the CPU is not known; their targets are judged \"unknown\".**\n",
                unknown.join(", ")
            );
        }
    }

    fn write_heading(&self, md: &mut String) {
        let m = &self.meta;
        let mode = if m.mode == "short" {
            format!(
                "short mode ({} s per run): a smoke run of the harness, the figures are rough",
                m.seconds_per_run
            )
        } else {
            format!(
                "{} s per run after {} s warm-up",
                m.seconds_per_run, m.warmup_seconds
            )
        };
        let _ = writeln!(md, "### Keyway benchmark — {mode}\n");
        if let Some(note) = &m.note {
            let _ = writeln!(md, "> **{note}**\n");
        }
        if m.bench_debug_build {
            let _ = writeln!(
                md,
                "> **The load generator is a debug build: its figures mean nothing.**\n"
            );
        }
        let nginx = m.nginx_version.as_deref().unwrap_or("not run");
        if let Some(level) = &m.keyway_log_level {
            let _ = writeln!(
                md,
                "> Keyway's log level set to `{level}` (default: info).\n"
            );
        }
        let load = m
            .load_average
            .map_or(String::new(), |l| format!(", load average {l:.2} at start"));
        let _ = writeln!(
            md,
            "Keyway `{}` · nginx {nginx}{} · {} · {} CPUs, {}, Linux {}{load}.  ",
            m.keyway_commit,
            self.peer
                .as_ref()
                .map_or(String::new(), |p| format!(" · {} {}", p.name, p.version)),
            m.date_utc,
            m.cpus,
            m.cpu_model,
            m.kernel
        );
        let _ = writeln!(
            md,
            "Placement, the same for every target: {} (nginx {} worker(s), Keyway {} runtime \
             thread(s){}{}); docs/PERFORMANCE.md explains the choice and the run-to-run spread.  ",
            m.placement,
            m.target_cpus,
            m.target_cpus,
            if self.has_floor() {
                ", the floors as many"
            } else {
                ""
            },
            if self.peer.is_some() {
                ", LiteLLM 1 worker"
            } else {
                ""
            },
        );
        let _ = writeln!(
            md,
            "Targets run in turns per scenario: the fake upstream **direct**, **nginx** → fake, \
             **keyway** (3 Anthropic API-key accounts, round-robin) → fake. Closed loop, one \
             keep-alive connection per client, `POST /v1/messages` with a {} B JSON body; \
             latency = request sent → last byte read.\n",
            m.request_bytes
        );
        if let Some(p) = &self.peer {
            let _ = writeln!(
                md,
                "The peer, in c=16 and SSE only: **{} {}** → fake (`litellm --config`, one \
                 uvicorn worker, no database), three deployments of `{}` at the fake with the \
                 three accounts' keys, one model group, `simple-shuffle`; it is sent the same \
                 request on its Anthropic endpoint `/v1/messages`, with its master key as \
                 `x-api-key`.\n",
                p.name,
                p.version,
                crate::client::MODEL
            );
        }
    }

    fn write_requests(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "| scenario | target | req/s | vs nginx | p50 ms | p90 ms | p99 ms | max ms | added p50 | added p99 | errors | Keyway peak RSS |"
        );
        let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        let small = self
            .scenarios
            .iter()
            .filter(|s| s.runs.iter().any(|r| r.load.is_some()));
        for s in small {
            let direct = s.run(Target::Direct).and_then(|r| r.load.as_ref());
            // The swap, limits and translated scenarios run Keyway alone; compare them with
            // the plain c=16 runs.
            let peers = if ["c16_swap", "c16_limits", "c16_translated"].contains(&s.id.as_str()) {
                self.scenario("c16").unwrap_or(s)
            } else {
                s
            };
            let nginx = peers.run(Target::Nginx).and_then(|r| r.load.as_ref());
            let direct = direct.or_else(|| peers.run(Target::Direct)?.load.as_ref());
            for (i, r) in s.runs.iter().enumerate() {
                let Some(l) = &r.load else { continue };
                let title = if i == 0 { s.title.as_str() } else { "" };
                let vs_nginx = match (r.target, nginx) {
                    (Target::Direct, _) | (_, None) => String::new(),
                    (_, Some(n)) => times(l.rps / n.rps),
                };
                let (a50, a99) = match (r.target, direct) {
                    (Target::Direct, _) | (_, None) => (String::new(), String::new()),
                    (_, Some(d)) => (
                        signed(l.latency.p50_ms - d.latency.p50_ms),
                        signed(l.latency.p99_ms - d.latency.p99_ms),
                    ),
                };
                let rss = r
                    .keyway_peak_rss_kib
                    .map_or(String::new(), |k| format!("{} MiB", mib(k)));
                let _ = writeln!(
                    md,
                    "| {title} | {} | {} | {vs_nginx} | {:.3} | {:.3} | {:.3} | {:.3} | {a50} | {a99} | {} | {rss} |",
                    self.label(r.target),
                    thousands(l.rps),
                    l.latency.p50_ms,
                    l.latency.p90_ms,
                    l.latency.p99_ms,
                    l.latency.max_ms,
                    l.errors,
                );
            }
        }
        let _ = writeln!(md);
        if self.has_floor() {
            let _ = writeln!(
                md,
                "floor = the same HTTP stack as Keyway (axum server, Keyway's hyper-util \
                 client) passing bytes through with no engine (`floor-proxy`, placed like \
                 Keyway); floor (reqwest) = the same with reqwest's client, Keyway's before \
                 (`--stack axum-reqwest`); floor (hyper) = bare hyper server and hyper-util \
                 pooled client, the body streamed both ways (`--stack hyper`).\n"
            );
        }
        if let Some(swaps) = self.scenario("c16_swap").and_then(|s| s.swaps.as_ref()) {
            let _ = writeln!(
                md,
                "Policy swaps during Keyway's c=16 + swap run: {} `PUT /api/policies/anthropic` \
                 (priority → weighted round-robin → round-robin, every {} ms), {} failed; PUT \
                 latency p50 {:.1} ms, max {:.1} ms.\n",
                swaps.ok + swaps.failed,
                swaps.interval_ms,
                swaps.failed,
                swaps.latency.p50_ms,
                swaps.latency.max_ms
            );
        }
    }

    fn write_sse(&self, md: &mut String) {
        let Some(s) = self.scenario("sse") else {
            return;
        };
        let m = &self.meta;
        let _ = writeln!(
            md,
            "SSE: {} concurrent streams of {} events at {} ms, repeated for the run. Event \
             delay = client arrival − the fake's emission stamp (same clock); TTFB = request \
             sent → first body byte.\n",
            m.sse_streams, m.sse_events, m.sse_interval_ms
        );
        let _ = writeln!(
            md,
            "| target | streams | events | delay p50 ms | delay p99 ms | delay max ms | added p99 | TTFB p50 ms | TTFB p99 ms | added TTFB p50 | errors | Keyway peak RSS |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        let direct = s.run(Target::Direct).and_then(|r| r.sse.as_ref());
        // The translated streams (Keyway alone) as one more row, against the same direct run.
        let translated = self
            .scenario("sse_translated")
            .and_then(|t| t.run(Target::Keyway))
            .map(|r| (r, "keyway, translated".to_owned()));
        let rows = s
            .runs
            .iter()
            .map(|r| (r, self.label(r.target)))
            .chain(translated);
        for (r, name) in rows {
            let Some(x) = &r.sse else { continue };
            let (a99, attfb) = match (r.target, direct) {
                (Target::Direct, _) | (_, None) => (String::new(), String::new()),
                (_, Some(d)) => (
                    signed(x.delay.p99_ms - d.delay.p99_ms),
                    signed(x.ttfb.p50_ms - d.ttfb.p50_ms),
                ),
            };
            let rss = r
                .keyway_peak_rss_kib
                .map_or(String::new(), |k| format!("{} MiB", mib(k)));
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {:.3} | {:.3} | {:.3} | {a99} | {:.3} | {:.3} | {attfb} | {} | {rss} |",
                x.streams,
                x.events,
                x.delay.p50_ms,
                x.delay.p99_ms,
                x.delay.max_ms,
                x.ttfb.p50_ms,
                x.ttfb.p99_ms,
                x.errors,
            );
        }
        let _ = writeln!(md);
    }

    /// Keyway against the peer, side by side from the same run: throughput, latency, event
    /// delay, CPU per request and per event, start-up and memory, and how many times better
    /// Keyway's figure is.
    fn write_peer(&self, md: &mut String) {
        use Target::{Keyway, LiteLlm};
        let Some(peer) = &self.peer else {
            return;
        };
        let name = self.label(LiteLlm);
        let _ = writeln!(
            md,
            "Against a peer: Keyway and {name} in the same run (their c=16 and SSE runs \
             above). Better by = Keyway's throughput ÷ {0}'s, or {0}'s latency, CPU or \
             memory ÷ Keyway's. CPU = the process's user + system time over the run ÷ requests \
             served (SSE: ÷ content events).\n",
            peer.name
        );
        let _ = writeln!(md, "| figure | keyway | {name} | Keyway better by |");
        let _ = writeln!(md, "|---|--:|--:|--:|");
        let load = |t| self.load("c16", t);
        let sse = |t| self.sse(t);
        let keyway_peak = self
            .scenarios
            .iter()
            .filter_map(|s| s.run(Keyway)?.keyway_peak_rss_kib)
            .max();
        let kib = |k: u64| k as f64 / 1024.0;
        type Show = fn(f64) -> String;
        let ms: Show = |x| format!("{x:.3}");
        let us: Show = |x| format!("{x:.1}");
        let one: Show = |x| format!("{x:.1}");
        /// Figure, Keyway's, the peer's, how to show them, whether more is better.
        type Row<'a> = (&'a str, Option<f64>, Option<f64>, Show, bool);
        let rows: [Row; 11] = [
            (
                "c=16 throughput, req/s",
                load(Keyway).map(|l| l.rps),
                load(LiteLlm).map(|l| l.rps),
                thousands,
                true,
            ),
            (
                "c=16 latency p50, ms",
                load(Keyway).map(|l| l.latency.p50_ms),
                load(LiteLlm).map(|l| l.latency.p50_ms),
                ms,
                false,
            ),
            (
                "c=16 latency p99, ms",
                load(Keyway).map(|l| l.latency.p99_ms),
                load(LiteLlm).map(|l| l.latency.p99_ms),
                ms,
                false,
            ),
            (
                "c=16 CPU per request, µs",
                self.cpu_us("c16", Keyway),
                self.cpu_us("c16", LiteLlm),
                us,
                false,
            ),
            (
                "SSE event delay p50, ms",
                sse(Keyway).map(|x| x.delay.p50_ms),
                sse(LiteLlm).map(|x| x.delay.p50_ms),
                ms,
                false,
            ),
            (
                "SSE event delay p99, ms",
                sse(Keyway).map(|x| x.delay.p99_ms),
                sse(LiteLlm).map(|x| x.delay.p99_ms),
                ms,
                false,
            ),
            (
                "SSE TTFB p50, ms",
                sse(Keyway).map(|x| x.ttfb.p50_ms),
                sse(LiteLlm).map(|x| x.ttfb.p50_ms),
                ms,
                false,
            ),
            (
                "SSE CPU per content event, µs",
                self.cpu_us("sse", Keyway),
                self.cpu_us("sse", LiteLlm),
                us,
                false,
            ),
            (
                "start-up to first answer, ms (Keyway: median)",
                self.keyway.startup_median_ms(),
                Some(peer.startup_ms),
                one,
                false,
            ),
            (
                "idle RSS, MiB",
                Some(kib(self.keyway.idle_rss_kib)),
                Some(kib(peer.idle_rss_kib)),
                one,
                false,
            ),
            (
                "peak RSS, MiB (Keyway: highest run; peer: its whole life)",
                keyway_peak.map(kib),
                Some(kib(peer.peak_rss_kib)),
                one,
                false,
            ),
        ];
        for (what, keyway, theirs, show, more_is_better) in rows {
            let na = || "n/a".to_owned();
            let better = keyway
                .zip(theirs)
                .map(|(k, p)| if more_is_better { (k, p) } else { (p, k) })
                .filter(|&(_, below)| below > 0.0)
                .map_or_else(na, |(above, below)| format!("{:.1}×", above / below));
            let _ = writeln!(
                md,
                "| {what} | {} | {} | {better} |",
                keyway.map_or_else(na, show),
                theirs.map_or_else(na, show),
            );
        }
        let _ = writeln!(md);
    }

    /// Translated against pass-through, Keyway's runs of the same load in the same run: what
    /// translation adds per request and per streamed event.
    fn write_translation(&self, md: &mut String) {
        use Target::Keyway;
        let c16 = self.load("c16", Keyway);
        let c16t = self.load("c16_translated", Keyway);
        let sse = self.sse(Keyway);
        let sset = self.sse_of("sse_translated", Keyway);
        if c16t.is_none() && sset.is_none() {
            return;
        }
        let _ = writeln!(
            md,
            "Translation: Keyway alone, every request for `{}`, which an alias sends to an \
             OpenAI API-key account (`{}`): Messages translated to Chat Completions and the \
             answer back, streams event by event. Pass-through = Keyway's c=16 and SSE runs \
             above. CPU = Keyway's user + system time over the run ÷ requests served (SSE: ÷ \
             content events, the streams' set-up included).\n",
            crate::client::TRANSLATED_MODEL,
            crate::keyway::TRANSLATED_TARGET
        );
        let _ = writeln!(md, "| figure | pass-through | translated | change |");
        let _ = writeln!(md, "|---|--:|--:|--:|");
        let cpu = (
            self.keyway_cpu_us("c16"),
            self.keyway_cpu_us("c16_translated"),
        );
        let sse_cpu = (
            self.keyway_cpu_us("sse"),
            self.keyway_cpu_us("sse_translated"),
        );
        type Show = fn(f64) -> String;
        type Change = fn(f64, f64) -> String;
        /// Figure, pass-through, translated, how to show a value, how to show the change.
        type Row<'a> = (&'a str, Option<f64>, Option<f64>, Show, Change);
        let ms: Show = |x| format!("{x:.3}");
        let us: Show = |x| format!("{x:.1}");
        let added_ms: Change = |p, t| signed(t - p);
        let added_us: Change = |p, t| format!("{:+.1}", t - p);
        let ratio: Change = |p, t| {
            if p > 0.0 {
                format!("{:.2}×", t / p)
            } else {
                "n/a".to_owned()
            }
        };
        let mut rows: Vec<Row> = Vec::new();
        if c16t.is_some() {
            let f = |l: Option<&LoadStats>, get: fn(&LoadStats) -> f64| l.map(get);
            rows.extend([
                (
                    "c=16 throughput, req/s",
                    f(c16, |l| l.rps),
                    f(c16t, |l| l.rps),
                    thousands as Show,
                    ratio,
                ),
                (
                    "c=16 latency p50, ms",
                    f(c16, |l| l.latency.p50_ms),
                    f(c16t, |l| l.latency.p50_ms),
                    ms,
                    added_ms,
                ),
                (
                    "c=16 latency p99, ms",
                    f(c16, |l| l.latency.p99_ms),
                    f(c16t, |l| l.latency.p99_ms),
                    ms,
                    added_ms,
                ),
                (
                    "c=16 latency mean, ms",
                    f(c16, |l| l.latency.mean_ms),
                    f(c16t, |l| l.latency.mean_ms),
                    ms,
                    added_ms,
                ),
                (
                    "c=16 Keyway CPU per request, µs",
                    cpu.0,
                    cpu.1,
                    us,
                    added_us,
                ),
            ]);
        }
        if sset.is_some() {
            let f = |x: Option<&SseStats>, get: fn(&SseStats) -> f64| x.map(get);
            rows.extend([
                (
                    "SSE event delay p50, ms",
                    f(sse, |x| x.delay.p50_ms),
                    f(sset, |x| x.delay.p50_ms),
                    ms,
                    added_ms,
                ),
                (
                    "SSE event delay p99, ms",
                    f(sse, |x| x.delay.p99_ms),
                    f(sset, |x| x.delay.p99_ms),
                    ms,
                    added_ms,
                ),
                (
                    "SSE TTFB p50, ms",
                    f(sse, |x| x.ttfb.p50_ms),
                    f(sset, |x| x.ttfb.p50_ms),
                    ms,
                    added_ms,
                ),
                (
                    "SSE Keyway CPU per content event, µs",
                    sse_cpu.0,
                    sse_cpu.1,
                    us,
                    added_us,
                ),
            ]);
        }
        for (what, plain, translated, show, change) in rows {
            let na = || "n/a".to_owned();
            let _ = writeln!(
                md,
                "| {what} | {} | {} | {} |",
                plain.map_or_else(na, show),
                translated.map_or_else(na, show),
                plain.zip(translated).map_or_else(na, |(p, t)| change(p, t)),
            );
        }
        let _ = writeln!(md);
        // A first byte later by a good part of the interval is a wait for the first content
        // event, not work: say so rather than leave it to be read as translation's cost.
        let interval = self.meta.sse_interval_ms as f64;
        if let Some((p, t)) = sse.zip(sset)
            && interval > 0.0
            && t.ttfb.p50_ms - p.ttfb.p50_ms >= interval / 2.0
        {
            let _ = writeln!(
                md,
                "The translated streams' first byte waited for the first content event, which \
                 the fake sends {interval:.0} ms after the stream's opening: the opening of a \
                 Chat stream (the role, no text) has nothing a Messages client is sent, so \
                 Keyway writes `message_start` with the first text.\n"
            );
        }
        if c16t.is_some() {
            let mean = c16
                .zip(c16t)
                .map(|(p, t)| t.latency.mean_ms - p.latency.mean_ms);
            let text = match (cpu, mean) {
                ((Some(p), Some(t)), _) => format!(
                    "{:+.1} µs of Keyway CPU ({t:.1} µs translated, {p:.1} µs passed through)",
                    t - p
                ),
                (_, Some(m)) => {
                    format!("{m:+.3} ms of mean latency at c=16 (Keyway's CPU time was not read)")
                }
                _ => "n/a (no pass-through c=16 run to compare with)".to_owned(),
            };
            let _ = writeln!(md, "Added cost per translated request: {text}.\n");
        }
    }

    fn write_keyway(&self, md: &mut String) {
        let k = &self.keyway;
        let startup = match (k.startup_median_ms(), k.startup_max_ms()) {
            (Some(med), Some(max)) => format!(
                "median {med:.1} ms, max {max:.1} ms over {} runs ({})",
                k.startup_ms.len(),
                k.startup_ms
                    .iter()
                    .map(|ms| format!("{ms:.1}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => "not measured".to_owned(),
        };
        let accounts = k
            .requests_per_account
            .iter()
            .map(|(id, n)| format!("{id} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rest = k.at_rest.map_or_else(String::new, |r| {
            format!(
                " At rest (after start, {:.0} s with nothing asked of it): {:.0} wake-ups and \
                 {:.1} ms of CPU a minute.",
                r.window_secs, r.wakeups_per_min, r.cpu_ms_per_min
            )
        });
        let _ = writeln!(
            md,
            "Keyway: idle RSS {} MiB (after start, before any request), {} MiB after the run.{rest} \
             Start-up (exec `keyway --headless` → first proxied 200, keyring reads included): \
             {startup}. Requests per account under round-robin (before the swaps): {accounts}.\n",
            mib(k.idle_rss_kib),
            mib(k.rss_after_run_kib)
        );
    }

    fn write_desktop(&self, md: &mut String) {
        let Some(d) = &self.desktop else {
            return;
        };
        let _ = writeln!(
            md,
            "Desktop app (`keyway` with its tray, release build, one account, on Xvfb; measured by \
             `scripts/lib/desktop-rss.py`). Resident memory of the app's process, and with its \
             children (the dashboard window's process and WebKit's):\n"
        );
        let _ = writeln!(
            md,
            "| phase | keyway RSS | with children | wake-ups a minute |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|");
        for (name, p) in [
            ("at rest (tray only)", d.rest),
            ("dashboard window open", d.open),
            ("after closing it", d.closed),
        ] {
            let woke = p.wakeups_per_min.map_or("".to_owned(), |w| w.to_string());
            let _ = writeln!(
                md,
                "| {name} | {} MiB | {} MiB | {woke} |",
                mib(p.main_rss_kib),
                mib(p.total_rss_kib)
            );
        }
        md.push('\n');
    }

    fn write_replay(&self, md: &mut String) {
        let Some(replay) = &self.replay else {
            return;
        };
        let _ = writeln!(
            md,
            "Session replay: {} Claude Code conversations at once, {} turns each, against the \
             fake's prompt cache (a fresh fake and Keyway per run; accounts under round-robin).\n",
            replay.spec.sessions, replay.spec.turns
        );
        let _ = writeln!(
            md,
            "| run | accounts | requests | failed | cached input / input | vs one account | \
             written to cache / input | moves | sessions per account |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
        let ideal = replay.run("one_account").and_then(ReplayRun::cache_ratio);
        for run in &replay.runs {
            let ratio = run.cache_ratio();
            // Per-request spread binds nothing.
            let placed = if run.sessions_per_account.iter().sum::<u64>() == 0 {
                "none bound".to_owned()
            } else {
                per_account(run)
            };
            let vs = ratio
                .zip(ideal)
                .filter(|(_, i)| *i > 0.0)
                .map_or("n/a".to_owned(), |(r, i)| format!("{:.1}%", r / i * 100.0));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {vs} | {} | {} | {} |",
                run.title,
                run.accounts,
                run.requests,
                run.failed,
                ratio.map_or("n/a".to_owned(), |r| format!("{:.1}%", r * 100.0)),
                percent(run.cache_write_tokens, run.input_tokens),
                run.moves,
                placed
            );
        }
        let _ = writeln!(md);
    }

    fn write_goals(&self, md: &mut String) {
        let _ = writeln!(md, "| target | goal | measured | result |");
        let _ = writeln!(md, "|---|---|---|---|");
        for g in &self.goals {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                g.what,
                g.goal,
                g.measured,
                g.result.text()
            );
        }
    }
}

/// `part` of `whole` as `12.3%`.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "n/a".to_owned();
    }
    format!("{:.1}%", part as f64 / whole as f64 * 100.0)
}

/// `4 / 4 / 4`: conversations bound to each account at the end of a replay run.
fn per_account(run: &ReplayRun) -> String {
    run.sessions_per_account
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// `x` rounded to the `decimals` the report shows it with: a figure is judged as it reads
/// (`0.150 ms` meets `≤ 0.15 ms`, whatever the float arithmetic behind it left over).
fn shown(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn signed(ms: f64) -> String {
    format!("{ms:+.3}")
}

/// A ratio against nginx for the table: two decimals, three below 0.1 (the peer's is
/// hundredths of nginx's, which two decimals would show as 0.00×).
fn times(ratio: f64) -> String {
    if ratio < 0.095 {
        format!("{ratio:.3}×")
    } else {
        format!("{ratio:.2}×")
    }
}

fn ratio_text(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "nginx added nothing".to_owned()
    }
}

/// `12345.6` → `12,346`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::ReplaySpec;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(signed(0.1234), "+0.123");
        assert_eq!(signed(-0.02), "-0.020");
        assert_eq!(times(0.8512), "0.85×");
        assert_eq!(times(0.005), "0.005×");
    }

    use crate::cpu::Usage;
    use crate::sse::SseStats;
    use crate::stats::Percentiles;
    use crate::swap::SwapStats;

    const QUIET: Interference = Interference::Quiet(Usage {
        foreign_cpus: 0.0,
        steal_cpus: 0.0,
    });
    const BUSY: Interference = Interference::Disturbed(Usage {
        foreign_cpus: 0.8,
        steal_cpus: 0.0,
    });

    fn latency(p50_ms: f64, p99_ms: f64) -> Percentiles {
        Percentiles {
            count: 1000,
            mean_ms: p50_ms,
            p50_ms,
            p90_ms: p99_ms,
            p99_ms,
            max_ms: p99_ms * 2.0,
        }
    }

    /// A small-request run: throughput and latency.
    fn load(target: Target, rps: f64, p50_ms: f64, p99_ms: f64) -> Run {
        Run {
            target,
            load: Some(LoadStats {
                concurrency: 16,
                requests: 1000,
                rps,
                completed: 1000,
                latency: latency(p50_ms, p99_ms),
                errors: 0,
                error_samples: Vec::new(),
                seconds: 1.0,
            }),
            sse: None,
            keyway_peak_rss_kib: (target == Target::Keyway).then_some(20 * 1024),
            // 100 µs per request.
            keyway_cpu_ms: (target == Target::Keyway).then_some(100.0),
            // 2 ms per request.
            peer_cpu_ms: target.is_peer().then_some(2000.0),
            interference: QUIET,
        }
    }

    /// A streaming run: event delay p99 and time to first byte p50.
    fn streams(target: Target, delay_p99_ms: f64, ttfb_p50_ms: f64) -> Run {
        Run {
            target,
            load: None,
            sse: Some(SseStats {
                concurrency: 8,
                streams: 8,
                events: 400,
                delay: latency(delay_p99_ms / 2.0, delay_p99_ms),
                ttfb: latency(ttfb_p50_ms, ttfb_p50_ms * 2.0),
                errors: 0,
                error_samples: Vec::new(),
                negative_delays: 0,
            }),
            keyway_peak_rss_kib: None,
            // 20 µs per event.
            keyway_cpu_ms: (target == Target::Keyway).then_some(8.0),
            // 400 µs per event.
            peer_cpu_ms: target.is_peer().then_some(160.0),
            interference: QUIET,
        }
    }

    fn scenario(id: &str, runs: Vec<Run>) -> Scenario {
        Scenario {
            id: id.to_owned(),
            title: id.to_owned(),
            runs,
            swaps: None,
        }
    }

    fn meta() -> Meta {
        Meta {
            mode: "full".to_owned(),
            date_utc: String::new(),
            keyway_commit: String::new(),
            keyway_bin: String::new(),
            keyway_log_level: None,
            nginx_version: None,
            floor_bin: None,
            cpu_model: String::new(),
            cpus: 2,
            kernel: String::new(),
            placement: String::new(),
            target_cpus: 1,
            load_average: None,
            seconds_per_run: 1.0,
            warmup_seconds: 0.0,
            request_bytes: 0,
            sse_streams: 0,
            sse_events: 0,
            sse_interval_ms: 0,
            note: None,
            bench_debug_build: false,
        }
    }

    /// A run in which Keyway meets every target, on a quiet machine.
    fn passing() -> Report {
        use Target::*;
        let mut swap = scenario("c16_swap", vec![load(Keyway, 9000.0, 0.5, 1.0)]);
        swap.swaps = Some(SwapStats {
            interval_ms: 100,
            ok: 30,
            failed: 0,
            failure_samples: Vec::new(),
            latency: latency(1.0, 5.0),
        });
        Report {
            meta: meta(),
            scenarios: vec![
                scenario(
                    "c1",
                    vec![
                        load(Direct, 20000.0, 0.050, 0.100),
                        load(Nginx, 10000.0, 0.080, 0.200),
                        load(Keyway, 9500.0, 0.100, 0.300),
                    ],
                ),
                scenario(
                    "c16",
                    vec![
                        load(Direct, 80000.0, 0.200, 0.300),
                        load(Nginx, 40000.0, 0.350, 0.800),
                        load(Keyway, 38000.0, 0.400, 0.850),
                    ],
                ),
                scenario("c16_limits", vec![load(Keyway, 37_500.0, 0.41, 0.86)]),
                swap,
                scenario(
                    "c64",
                    vec![
                        load(Direct, 80000.0, 0.8, 1.0),
                        load(Nginx, 40000.0, 1.6, 3.0),
                        load(Keyway, 37000.0, 1.7, 3.2),
                    ],
                ),
                scenario(
                    "sse",
                    vec![
                        streams(Direct, 0.2, 0.5),
                        streams(Nginx, 0.3, 0.6),
                        streams(Keyway, 0.4, 0.7),
                    ],
                ),
                translated_c16(36_100.0, 105.0),
                scenario("sse_translated", vec![streams(Keyway, 0.44, 0.75)]),
            ],
            keyway: KeywayFacts {
                idle_rss_kib: 14 * 1024,
                at_rest: Some(Rest {
                    wakeups_per_min: 0.0,
                    cpu_ms_per_min: 0.0,
                    window_secs: 10.0,
                }),
                idle_interference: QUIET,
                rss_after_run_kib: 20 * 1024,
                startup_ms: vec![12.0, 14.0, 13.0],
                startup_interference: QUIET,
                requests_per_account: Vec::new(),
            },
            replay: Some(Replay {
                spec: ReplaySpec {
                    sessions: 12,
                    turns: 30,
                },
                runs: vec![
                    replay_run("one_account", 1, 1000, 900, 0, vec![12]),
                    replay_run("request", 3, 1000, 600, 0, vec![4, 4, 4]),
                    replay_run("session", 3, 1000, 870, 0, vec![4, 4, 4]),
                    replay_run("session_exhausted", 3, 1000, 800, 4, vec![6, 6, 0]),
                ],
            }),
            peer: None,
            desktop: None,
            goals: Vec::new(),
        }
    }

    /// A replay run over 360 requests with these token counts, moves and placement.
    fn replay_run(
        id: &str,
        accounts: usize,
        input_tokens: u64,
        cache_read_tokens: u64,
        moves: u64,
        sessions_per_account: Vec<u64>,
    ) -> ReplayRun {
        ReplayRun {
            id: id.to_owned(),
            title: id.to_owned(),
            accounts,
            requests: 360,
            failed: 0,
            input_tokens,
            cache_read_tokens,
            cache_write_tokens: input_tokens - cache_read_tokens,
            moves,
            sessions_per_account,
            error_samples: Vec::new(),
        }
    }

    /// Keyway's translated c=16 run: throughput, and CPU per request in µs (1000 requests).
    fn translated_c16(rps: f64, cpu_us: f64) -> Scenario {
        let mut run = load(Target::Keyway, rps, 0.42, 0.9);
        run.keyway_cpu_ms = Some(cpu_us);
        scenario("c16_translated", vec![run])
    }

    fn replay_mut<'a>(r: &'a mut Report, id: &str) -> &'a mut ReplayRun {
        r.replay
            .as_mut()
            .and_then(|p| p.runs.iter_mut().find(|run| run.id == id))
            .expect("replay run")
    }

    /// The goals in the order `judge` gives them.
    const GOALS: [&str; 20] = [
        "throughput at c=16 vs nginx",
        "throughput at c=64 vs nginx",
        "added latency p50 at c=1 (Keyway − direct)",
        "added latency p99 at c=1 (Keyway − direct)",
        "added p99 at c=16 vs nginx's added p99",
        "SSE: event delay p99, fake emission → client (Keyway)",
        "SSE: time to first byte added, p50 (Keyway − direct)",
        "throughput at c=16 with limits on the key vs without",
        "failed requests during policy swaps",
        "Keyway idle RSS",
        "Keyway wake-ups at rest",
        "Keyway peak RSS during c=64",
        "start-up, exec → first proxied 200 (median; max)",
        "sessions: cache ratio, spread = session vs one account",
        "sessions: cache ratio with one account exhausted halfway vs one account",
        "sessions: failed requests in the replay",
        "sessions: new sessions per account (spread = session)",
        "translated: throughput at c=16 vs pass-through",
        "translated SSE: event delay p50 added vs pass-through",
        "translated: failed requests and streams",
    ];

    /// The verdict on goal `what` and the figure it shows.
    fn verdict(report: &Report, what: &str) -> (Verdict, String) {
        let goals = report.judge();
        let g = goals
            .iter()
            .find(|g| g.what == what)
            .unwrap_or_else(|| panic!("no goal {what:?} in {goals:?}"));
        (g.result, g.measured.clone())
    }

    fn run_mut<'a>(r: &'a mut Report, id: &str, target: Target) -> &'a mut Run {
        r.scenarios
            .iter_mut()
            .find(|s| s.id == id)
            .and_then(|s| s.runs.iter_mut().find(|run| run.target == target))
            .expect("run")
    }

    fn load_mut<'a>(r: &'a mut Report, id: &str, target: Target) -> &'a mut LoadStats {
        run_mut(r, id, target).load.as_mut().expect("load")
    }

    fn sse_mut(r: &mut Report, target: Target) -> &mut SseStats {
        run_mut(r, "sse", target).sse.as_mut().expect("sse")
    }

    #[test]
    fn every_goal_passes_when_its_figure_meets_it() {
        let goals = passing().judge();
        let names: Vec<&str> = goals.iter().map(|g| g.what.as_str()).collect();
        assert_eq!(names, GOALS);
        for g in &goals {
            assert_eq!(g.result, Verdict::Pass, "{g:?}");
        }
    }

    #[test]
    fn every_goal_is_missed_when_its_figure_misses_it() {
        use Target::*;
        type Spoil = fn(&mut Report);
        let cases: [(&str, Spoil, &str); 20] = [
            (
                GOALS[0],
                |r| load_mut(r, "c16", Keyway).rps = 35_000.0,
                "0.88×",
            ),
            (
                GOALS[1],
                |r| load_mut(r, "c64", Keyway).rps = 20_000.0,
                "0.50×",
            ),
            (
                GOALS[2],
                |r| load_mut(r, "c1", Keyway).latency.p50_ms = 0.250,
                "0.200 ms",
            ),
            (
                GOALS[3],
                |r| load_mut(r, "c1", Keyway).latency.p99_ms = 1.200,
                "1.100 ms",
            ),
            (
                GOALS[4],
                |r| load_mut(r, "c16", Keyway).latency.p99_ms = 1.100,
                "0.800 ms vs 0.500 ms (1.60×)",
            ),
            (
                GOALS[5],
                |r| sse_mut(r, Keyway).delay.p99_ms = 1.5,
                "1.500 ms",
            ),
            (
                GOALS[6],
                |r| sse_mut(r, Keyway).ttfb.p50_ms = 1.1,
                "0.600 ms",
            ),
            (
                GOALS[7],
                |r| load_mut(r, "c16_limits", Keyway).rps = 30_000.0,
                "0.79×",
            ),
            (
                GOALS[8],
                |r| load_mut(r, "c16_swap", Keyway).errors = 3,
                "3 failed; 30 swaps (0 failed)",
            ),
            (GOALS[9], |r| r.keyway.idle_rss_kib = 16 * 1024, "16 MiB"),
            (
                GOALS[10],
                |r| {
                    r.keyway.at_rest = Some(Rest {
                        wakeups_per_min: 6.0,
                        cpu_ms_per_min: 0.12,
                        window_secs: 10.0,
                    })
                },
                "6 a minute, 0.1 ms of CPU a minute (over 10 s)",
            ),
            (
                GOALS[11],
                |r| run_mut(r, "c64", Keyway).keyway_peak_rss_kib = Some(41 * 1024),
                "41 MiB",
            ),
            (
                GOALS[12],
                |r| r.keyway.startup_ms = vec![90.0, 120.0, 110.0],
                "110.0 ms; max 120.0 ms",
            ),
            (
                GOALS[13],
                |r| replay_mut(r, "session").cache_read_tokens = 850,
                "94.4% (85.0% vs 90.0%)",
            ),
            (
                GOALS[14],
                |r| replay_mut(r, "session_exhausted").cache_read_tokens = 760,
                "84.4% (76.0% vs 90.0%)",
            ),
            (
                GOALS[15],
                |r| replay_mut(r, "request").failed = 2,
                "2 of 1440",
            ),
            (
                GOALS[16],
                |r| replay_mut(r, "session").sessions_per_account = vec![6, 3, 3],
                "6 / 3 / 3 (even share 4)",
            ),
            (
                GOALS[17],
                |r| load_mut(r, "c16_translated", Keyway).rps = 19_000.0,
                "0.50×",
            ),
            (
                GOALS[18],
                |r| {
                    let run = run_mut(r, "sse_translated", Keyway);
                    run.sse.as_mut().expect("sse").delay.p50_ms = 2.2;
                },
                "+2.000 ms",
            ),
            (
                GOALS[19],
                |r| {
                    let run = run_mut(r, "sse_translated", Keyway);
                    run.sse.as_mut().expect("sse").errors = 2;
                },
                "2 failed",
            ),
        ];
        for (what, spoil, shown) in cases {
            let mut r = passing();
            spoil(&mut r);
            assert_eq!(
                verdict(&r, what),
                (Verdict::Miss, shown.to_owned()),
                "{what}"
            );
            // The other goals are untouched by it.
            let others = r.judge();
            assert!(
                others
                    .iter()
                    .filter(|g| g.what != what)
                    .all(|g| g.result == Verdict::Pass),
                "{what}: {others:?}"
            );
        }
    }

    #[test]
    fn at_the_goal_is_a_pass() {
        use Target::*;
        let mut r = passing();
        load_mut(&mut r, "c16", Keyway).rps = 36_000.0; // exactly 0.90×
        load_mut(&mut r, "c1", Keyway).latency.p50_ms = 0.200; // 0.150 ms added
        r.keyway.idle_rss_kib = 15 * 1024;
        r.keyway.startup_ms = vec![100.0, 150.0, 80.0]; // median 100, max over
        replay_mut(&mut r, "session").cache_read_tokens = 855; // exactly 95% of 90%
        replay_mut(&mut r, "session_exhausted").cache_read_tokens = 765; // exactly 85%
        replay_mut(&mut r, "session").sessions_per_account = vec![5, 4, 3]; // one above even
        load_mut(&mut r, "c16_translated", Keyway).rps = 26_600.0; // exactly 0.70×
        let translated = run_mut(&mut r, "sse_translated", Keyway);
        translated.sse.as_mut().expect("sse").delay.p50_ms = 0.45; // 0.25 ms added
        for what in [
            GOALS[0], GOALS[2], GOALS[9], GOALS[12], GOALS[13], GOALS[14], GOALS[16], GOALS[17],
            GOALS[18],
        ] {
            assert_eq!(verdict(&r, what).0, Verdict::Pass, "{what}");
        }
    }

    #[test]
    fn only_misses_no_machine_excuses_are_faults() {
        use Target::*;
        let mut r = passing();
        load_mut(&mut r, "c16", Keyway).rps = 10_000.0;
        r.keyway.idle_rss_kib = 99 * 1024;
        load_mut(&mut r, "c16_translated", Keyway).rps = 1_000.0;
        r.goals = r.judge();
        assert!(r.faults().is_empty(), "{:?}", r.faults());
        replay_mut(&mut r, "session_exhausted").failed = 1;
        replay_mut(&mut r, "session").cache_read_tokens = 600;
        load_mut(&mut r, "c16_swap", Keyway).errors = 1;
        load_mut(&mut r, "c16_translated", Keyway).errors = 1;
        r.goals = r.judge();
        let faults: Vec<&str> = r.faults().iter().map(|g| g.what.as_str()).collect();
        assert_eq!(faults, [GOALS[8], GOALS[13], GOALS[15], GOALS[19]]);
    }

    #[test]
    fn a_replay_that_served_nothing_is_broken() {
        let mut r = passing();
        let run = replay_mut(&mut r, "request");
        run.failed = run.requests;
        run.error_samples = vec!["turn 0: HTTP 401".to_owned()];
        assert_eq!(
            r.broken(),
            ["session replay / request: nothing served successfully (turn 0: HTTP 401)"]
        );
    }

    #[test]
    fn the_c64_tail_is_judged_against_the_floor_when_it_ran() {
        use Target::*;
        let what = "added p99 at c=64 vs the floor's added p99";
        let mut r = passing();
        assert!(
            r.judge().iter().all(|g| g.what != what),
            "no floor, no such goal"
        );
        if let Some(s) = r.scenarios.iter_mut().find(|s| s.id == "c64") {
            s.runs.push(load(Floor, 38000.0, 1.6, 2.0));
        }
        // Keyway adds 2.2 ms (3.2 − 1.0), the floor 1.0 ms.
        assert_eq!(
            verdict(&r, what),
            (Verdict::Miss, "2.200 ms vs 1.000 ms (2.20×)".to_owned())
        );
        load_mut(&mut r, "c64", Keyway).latency.p99_ms = 3.0;
        assert_eq!(
            verdict(&r, what).0,
            Verdict::Pass,
            "2.0 ms is 2× the floor's"
        );
    }

    #[test]
    fn nginx_adding_nothing_at_c16_is_compared_with_a_floor_not_a_ratio() {
        use Target::*;
        // nginx's p99 at or below the direct one: it added nothing (or "less than nothing",
        // within the noise). A ratio against that fails every proxy, or passes none.
        for nginx_p99 in [0.300, 0.280] {
            let mut r = passing();
            load_mut(&mut r, "c16", Nginx).latency.p99_ms = nginx_p99;
            // Keyway adds 0.15 ms: within 1.5 × the 0.1 ms floor.
            load_mut(&mut r, "c16", Keyway).latency.p99_ms = 0.450;
            let (result, shown) = verdict(&r, GOALS[4]);
            assert_eq!(result, Verdict::Pass, "nginx p99 {nginx_p99}: {shown}");
            // Keyway adds 0.16 ms: more than 1.5 × 0.1 ms.
            load_mut(&mut r, "c16", Keyway).latency.p99_ms = 0.460;
            let (result, shown) = verdict(&r, GOALS[4]);
            assert_eq!(result, Verdict::Miss, "nginx p99 {nginx_p99}: {shown}");
        }
        let mut r = passing();
        load_mut(&mut r, "c16", Nginx).latency.p99_ms = 0.300;
        assert!(verdict(&r, GOALS[4]).1.contains("nginx added nothing"));
    }

    #[test]
    fn a_disturbed_run_is_judged_disturbed_whether_it_met_the_goal_or_not() {
        use Target::*;
        let mut r = passing();
        run_mut(&mut r, "c16", Nginx).interference = BUSY;
        assert_eq!(verdict(&r, GOALS[0]).0, Verdict::Disturbed);
        assert_eq!(verdict(&r, GOALS[4]).0, Verdict::Disturbed);
        load_mut(&mut r, "c16", Keyway).rps = 1_000.0;
        assert_eq!(verdict(&r, GOALS[0]).0, Verdict::Disturbed, "a miss too");
        assert_eq!(verdict(&r, GOALS[1]).0, Verdict::Pass, "c=64 was quiet");

        let mut r = passing();
        run_mut(&mut r, "sse", Direct).interference = BUSY;
        assert_eq!(
            verdict(&r, GOALS[5]).0,
            Verdict::Pass,
            "direct is not in it"
        );
        assert_eq!(verdict(&r, GOALS[6]).0, Verdict::Disturbed);

        let mut r = passing();
        r.keyway.startup_interference = BUSY;
        r.keyway.idle_interference = BUSY;
        assert_eq!(verdict(&r, GOALS[9]).0, Verdict::Disturbed);
        assert_eq!(verdict(&r, GOALS[12]).0, Verdict::Disturbed);
        let md = Report {
            goals: r.judge(),
            ..r
        }
        .markdown();
        assert!(md.contains("> **Disturbed: other processes used the CPU during Keyway's start-up (0.80 CPU), Keyway's idle RSS (0.80 CPU)"), "{md}");
        assert!(
            md.contains("| Keyway idle RSS | ≤ 15 MiB | 14 MiB | disturbed |"),
            "{md}"
        );
    }

    #[test]
    fn interference_that_could_not_be_read_is_unknown_not_quiet() {
        use Target::*;
        let mut r = passing();
        run_mut(&mut r, "c1", Direct).interference = Interference::Unknown;
        assert_eq!(verdict(&r, GOALS[2]).0, Verdict::Unknown);
        assert_eq!(verdict(&r, GOALS[3]).0, Verdict::Unknown);
        r.keyway.startup_interference = Interference::Unknown;
        assert_eq!(verdict(&r, GOALS[12]).0, Verdict::Unknown);
        // Disturbed wins over unknown: something else did use the CPU.
        run_mut(&mut r, "c1", Keyway).interference = BUSY;
        assert_eq!(verdict(&r, GOALS[2]).0, Verdict::Disturbed);
        let md = Report {
            goals: r.judge(),
            ..r
        }
        .markdown();
        assert!(
            md.contains(
                "> **Unknown: /proc could not be read around c1 / direct, Keyway's start-up"
            ),
            "{md}"
        );
        assert!(!md.contains("other processes used under"), "{md}");
    }

    #[test]
    fn a_quiet_run_says_so() {
        let r = passing();
        let md = Report {
            goals: r.judge(),
            ..r
        }
        .markdown();
        assert!(md.contains("Interference: other processes used under 0.1 CPU during every run, start-up and idle reading"), "{md}");
        assert!(
            !md.contains("**Disturbed") && !md.contains("**Unknown"),
            "{md}"
        );
    }

    #[test]
    fn the_desktop_app_is_judged_when_measured_and_never_fails_the_run() {
        use crate::desktop::Phase;
        let mut r = passing();
        let desktop_goals = |r: &Report| {
            r.judge()
                .iter()
                .filter(|g| g.what.starts_with("desktop"))
                .count()
        };
        assert_eq!(desktop_goals(&r), 0, "not measured, not judged");
        let phase = |mib: u64, total: u64, woke: Option<u64>| Phase {
            main_rss_kib: mib * 1024,
            total_rss_kib: total * 1024,
            wakeups_per_min: woke,
        };
        r.desktop = Some(Desktop {
            rest: phase(86, 86, Some(0)),
            open: phase(90, 420, None),
            closed: phase(87, 87, Some(0)),
        });
        assert_eq!(
            verdict(&r, "desktop app at rest, resident"),
            (Verdict::Miss, "86 MiB".to_owned())
        );
        assert_eq!(
            verdict(&r, "desktop app after closing the dashboard vs at rest"),
            (Verdict::Pass, "+1.0 MiB (87 MiB)".to_owned())
        );
        let woke = "desktop app wake-ups at rest and after closing";
        assert_eq!(verdict(&r, woke).0, Verdict::Pass);
        r.goals = r.judge();
        assert!(r.faults().is_empty(), "{:?}", r.faults());
        let md = r.markdown();
        for row in [
            "| at rest (tray only) | 86 MiB | 86 MiB | 0 |",
            "| dashboard window open | 90 MiB | 420 MiB |  |",
        ] {
            assert!(md.contains(row), "missing `{row}` in\n{md}");
        }
        if let Some(d) = r.desktop.as_mut() {
            d.closed = phase(99, 99, Some(12));
        }
        assert_eq!(
            verdict(&r, "desktop app after closing the dashboard vs at rest").0,
            Verdict::Miss
        );
        assert_eq!(verdict(&r, woke).0, Verdict::Miss);
    }

    #[test]
    fn a_goal_without_its_figures_is_not_measured() {
        use Target::*;
        let mut r = passing();
        for s in &mut r.scenarios {
            s.runs.retain(|run| run.target != Nginx);
        }
        assert_eq!(
            verdict(&r, GOALS[0]),
            (Verdict::NotMeasured, "n/a".to_owned())
        );
        assert_eq!(verdict(&r, GOALS[4]).0, Verdict::NotMeasured);
        assert_eq!(verdict(&r, GOALS[2]).0, Verdict::Pass, "direct is enough");
        // nginx that served nothing gives no ratio (and the run is broken anyway).
        let mut r = passing();
        load_mut(&mut r, "c64", Nginx).rps = 0.0;
        assert_eq!(verdict(&r, GOALS[1]).0, Verdict::NotMeasured);
        // No swap scenario, no swap goal; no start-up runs, no start-up goal.
        let mut r = passing();
        r.scenarios.retain(|s| s.id != "c16_swap");
        r.keyway.startup_ms.clear();
        assert_eq!(verdict(&r, GOALS[8]).0, Verdict::NotMeasured);
        assert_eq!(verdict(&r, GOALS[12]).0, Verdict::NotMeasured);
        // Not watched at rest, no wake-up figure.
        let mut r = passing();
        r.keyway.at_rest = None;
        assert_eq!(verdict(&r, GOALS[10]).0, Verdict::NotMeasured);
        // Without the translated scenarios, no translation goal.
        let mut r = passing();
        r.scenarios.retain(|s| !s.id.ends_with("_translated"));
        for what in &GOALS[17..] {
            assert_eq!(verdict(&r, what), (Verdict::NotMeasured, "n/a".to_owned()));
        }
        // A swap run without a successful swap proves nothing.
        let mut r = passing();
        if let Some(s) = r.scenarios.iter_mut().find(|s| s.id == "c16_swap") {
            s.swaps.as_mut().expect("swaps").ok = 0;
        }
        assert_eq!(verdict(&r, GOALS[8]).0, Verdict::Miss);
    }

    #[test]
    fn translated_rows_set_translation_against_pass_through() {
        let md = passing().markdown();
        for row in [
            // Small requests: the translated run beside the others, against c16's nginx and
            // direct runs.
            "| c16_translated | keyway | 36,100 | 0.90× | 0.420 | 0.900 | 0.900 | 1.800 | +0.220 | +0.600 | 0 | 20 MiB |",
            // Streams: one more row in the SSE table, against sse's direct run.
            "| keyway, translated | 8 | 400 | 0.220 | 0.440 | 0.880 | +0.240 | 0.750 | 1.500 | +0.250 | 0 |  |",
            // The translation table: Keyway translated against Keyway passing through.
            "| c=16 throughput, req/s | 38,000 | 36,100 | 0.95× |",
            "| c=16 latency p50, ms | 0.400 | 0.420 | +0.020 |",
            "| c=16 latency p99, ms | 0.850 | 0.900 | +0.050 |",
            "| c=16 latency mean, ms | 0.400 | 0.420 | +0.020 |",
            "| c=16 Keyway CPU per request, µs | 100.0 | 105.0 | +5.0 |",
            "| SSE event delay p50, ms | 0.200 | 0.220 | +0.020 |",
            "| SSE event delay p99, ms | 0.400 | 0.440 | +0.040 |",
            "| SSE TTFB p50, ms | 0.700 | 0.750 | +0.050 |",
            "| SSE Keyway CPU per content event, µs | 20.0 | 20.0 | +0.0 |",
            "Added cost per translated request: +5.0 µs of Keyway CPU (105.0 µs translated, \
             100.0 µs passed through).",
        ] {
            assert!(md.contains(row), "missing `{row}` in\n{md}");
        }
        // Without Keyway's CPU time, the added cost is the mean latency's difference.
        let mut r = passing();
        run_mut(&mut r, "c16_translated", Target::Keyway).keyway_cpu_ms = None;
        let md = r.markdown();
        assert!(
            md.contains("| c=16 Keyway CPU per request, µs | 100.0 | n/a | n/a |"),
            "{md}"
        );
        assert!(
            md.contains("Added cost per translated request: +0.020 ms of mean latency at c=16"),
            "{md}"
        );
        // A first byte that waited for the first content event is said to have.
        let note = "The translated streams' first byte waited for the first content event";
        assert!(!md.contains(note), "{md}");
        r.meta.sse_interval_ms = 20;
        let plain = r.sse(Target::Keyway).map(|s| s.ttfb.p50_ms);
        assert_eq!(plain, Some(0.7));
        run_mut(&mut r, "sse_translated", Target::Keyway)
            .sse
            .as_mut()
            .expect("sse")
            .ttfb
            .p50_ms = 20.9;
        let md = r.markdown();
        assert!(
            md.contains(note) && md.contains("sends 20 ms after"),
            "{md}"
        );
        // No translated scenario, no translation section.
        r.scenarios.retain(|s| !s.id.ends_with("_translated"));
        let md = r.markdown();
        assert!(!md.contains("translated"), "{md}");
    }

    /// A c=16 scenario's report with these targets' throughputs (req/s).
    fn c16_report(rps: &[(Target, f64)]) -> Report {
        Report {
            scenarios: vec![scenario(
                "c16",
                rps.iter()
                    .map(|&(target, rps)| load(target, rps, 0.1, 0.2))
                    .collect(),
            )],
            ..passing()
        }
    }

    #[test]
    fn floor_rows_and_note_only_with_the_floor() {
        use Target::*;
        let with = c16_report(&[
            (Direct, 4000.0),
            (Nginx, 2000.0),
            (Keyway, 1200.0),
            (Floor, 1500.0),
            (FloorReqwest, 1600.0),
            (FloorHyper, 1700.0),
        ])
        .markdown();
        assert!(with.contains("| floor | 1,500 | 0.75× |"), "{with}");
        assert!(
            with.contains("| floor (reqwest) | 1,600 | 0.80× |"),
            "{with}"
        );
        assert!(with.contains("| floor (hyper) | 1,700 | 0.85× |"), "{with}");
        assert!(
            with.contains("\nfloor = the same HTTP stack as Keyway"),
            "{with}"
        );
        assert!(with.contains("the floors as many"), "{with}");
        let without = c16_report(&[(Direct, 4000.0), (Nginx, 2000.0), (Keyway, 1200.0)]).markdown();
        assert!(!without.contains("floor"), "{without}");
    }

    /// [`passing`] with the peer in c=16 (`rps` req/s) and SSE, as `--litellm-python` runs.
    fn with_peer(rps: f64) -> Report {
        use Target::*;
        let mut r = passing();
        for s in &mut r.scenarios {
            match s.id.as_str() {
                "c16" => s.runs.push(load(LiteLlm, rps, 40.0, 90.0)),
                "sse" => s.runs.push(streams(LiteLlm, 4.0, 30.0)),
                _ => {}
            }
        }
        r.peer = Some(PeerFacts {
            name: "LiteLLM".to_owned(),
            version: "1.2.3".to_owned(),
            startup_ms: 25_000.0,
            idle_rss_kib: 300 * 1024,
            peak_rss_kib: 360 * 1024,
            config: String::new(),
        });
        r
    }

    #[test]
    fn the_peer_goal_is_judged_only_when_the_peer_ran() {
        let what = "throughput at c=16 vs LiteLLM";
        // Without the peer, no such goal at all (every_goal_passes… checks the list).
        assert!(passing().judge().iter().all(|g| g.what != what));
        // 38,000 req/s against 500: 76×.
        let r = with_peer(500.0);
        assert_eq!(
            verdict(&r, what),
            (Verdict::Pass, "76.0× (38,000 vs 500 req/s)".to_owned())
        );
        let goals = r.judge();
        assert_eq!(goals.last().map(|g| g.what.as_str()), Some(what));
        assert!(!goals.last().is_some_and(|g| g.any_machine));
        // Exactly 50× passes; below it is a miss, and not a fault.
        assert_eq!(verdict(&with_peer(760.0), what).0, Verdict::Pass);
        let mut r = with_peer(1000.0);
        assert_eq!(
            verdict(&r, what),
            (Verdict::Miss, "38.0× (38,000 vs 1,000 req/s)".to_owned())
        );
        r.goals = r.judge();
        assert!(r.faults().is_empty(), "{:?}", r.faults());
        // A busy machine during either run: disturbed.
        let mut r = with_peer(500.0);
        run_mut(&mut r, "c16", Target::LiteLlm).interference = BUSY;
        assert_eq!(verdict(&r, what).0, Verdict::Disturbed);
    }

    #[test]
    fn the_peer_has_rows_and_a_side_by_side_table() {
        let mut r = with_peer(500.0);
        r.goals = r.judge();
        let md = r.markdown();
        for row in [
            "Keyway `` · nginx not run · LiteLLM 1.2.3 ·",
            ", LiteLLM 1 worker)",
            "The peer, in c=16 and SSE only: **LiteLLM 1.2.3** → fake",
            // Its rows in the c=16 and SSE tables, named with the version.
            "|  | LiteLLM 1.2.3 | 500 | 0.013× | 40.000 | 90.000 | 90.000 | 180.000 | +39.800 | +89.700 | 0 |  |",
            "| LiteLLM 1.2.3 | 8 | 400 | 2.000 | 4.000 | 8.000 | +3.800 | 30.000 | 60.000 | +29.500 | 0 |  |",
            // Side by side.
            "| figure | keyway | LiteLLM 1.2.3 | Keyway better by |",
            "| c=16 throughput, req/s | 38,000 | 500 | 76.0× |",
            "| c=16 latency p50, ms | 0.400 | 40.000 | 100.0× |",
            "| c=16 latency p99, ms | 0.850 | 90.000 | 105.9× |",
            "| c=16 CPU per request, µs | 100.0 | 2000.0 | 20.0× |",
            "| SSE event delay p50, ms | 0.200 | 2.000 | 10.0× |",
            "| SSE event delay p99, ms | 0.400 | 4.000 | 10.0× |",
            "| SSE TTFB p50, ms | 0.700 | 30.000 | 42.9× |",
            "| SSE CPU per content event, µs | 20.0 | 400.0 | 20.0× |",
            "| start-up to first answer, ms (Keyway: median) | 13.0 | 25000.0 | 1923.1× |",
            "| idle RSS, MiB | 14.0 | 300.0 | 21.4× |",
            "| peak RSS, MiB (Keyway: highest run; peer: its whole life) | 20.0 | 360.0 | 18.0× |",
            "| throughput at c=16 vs LiteLLM | ≥ 50× | 76.0× (38,000 vs 500 req/s) | pass |",
        ] {
            assert!(md.contains(row), "missing `{row}` in\n{md}");
        }
        // Not in c=1 or c=64, and nothing of it without the peer.
        assert_eq!(md.matches("| LiteLLM 1.2.3 |").count(), 3, "{md}");
        assert!(!passing().markdown().contains("LiteLLM"));
    }

    #[test]
    fn startup_median() {
        let facts = |ms: &[f64]| KeywayFacts {
            startup_ms: ms.to_vec(),
            ..passing().keyway
        };
        assert_eq!(facts(&[30.0, 10.0, 20.0]).startup_median_ms(), Some(20.0));
        assert_eq!(facts(&[10.0, 20.0]).startup_median_ms(), Some(15.0));
        assert_eq!(facts(&[]).startup_median_ms(), None);
        assert_eq!(facts(&[1.0, 3.0, 2.0]).startup_max_ms(), Some(3.0));
    }
}
