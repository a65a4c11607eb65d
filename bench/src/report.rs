//! What a run found, as JSON (the structs below, serialized as they are) and as Markdown: one
//! row per scenario and target with the ratio against nginx and the latency added over the
//! direct path, Keyway's memory and start-up, and the targets with pass or miss.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cpu::{DISTURBED, Usage};
use crate::loadgen::LoadStats;
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
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Nginx => "nginx",
            Target::Keyway => "keyway",
            Target::Floor => "floor",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: Meta,
    pub scenarios: Vec<Scenario>,
    pub keyway: KeywayFacts,
    pub goals: Vec<Goal>,
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
    /// Stable key: `c1`, `c16`, `c16_swap`, `c64`, `sse`.
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
    /// CPU used by other processes (and stolen by the hypervisor) during this run.
    pub interference: Usage,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeywayFacts {
    /// VmRSS a second after start, before any request.
    pub idle_rss_kib: u64,
    /// VmRSS after every scenario (what it keeps).
    pub rss_after_run_kib: u64,
    /// Exec to first proxied 200, each run.
    pub startup_ms: Vec<f64>,
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
    /// `None` when this run could not measure it (e.g. without nginx).
    pub pass: Option<bool>,
}

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
        self.scenario("sse")?.run(target)?.sse.as_ref()
    }

    /// The targets, judged on this run's ratios.
    pub fn judge(&self) -> Vec<Goal> {
        use Target::*;
        let mut goals = Vec::new();
        let mut goal = |what: &str, goal: &str, value: Option<(String, bool)>| {
            goals.push(Goal {
                what: what.to_owned(),
                goal: goal.to_owned(),
                measured: value.as_ref().map_or("n/a".to_owned(), |(m, _)| m.clone()),
                pass: value.map(|(_, pass)| pass),
            });
        };
        for (id, c) in [("c16", 16), ("c64", 64)] {
            let ratio = self
                .load(id, Keyway)
                .zip(self.load(id, Nginx))
                .map(|(k, n)| k.rps / n.rps);
            goal(
                &format!("throughput at c={c} vs nginx"),
                "≥ 0.90×",
                ratio.map(|r| (format!("{r:.2}×"), r >= 0.9)),
            );
        }
        let added = |id: &str, f: fn(&LoadStats) -> f64| {
            Some(f(self.load(id, Keyway)?) - f(self.load(id, Direct)?))
        };
        let p50 = added("c1", |l| l.latency.p50_ms);
        goal(
            "added latency p50 at c=1 (Keyway − direct)",
            "≤ 0.15 ms",
            p50.map(|a| (format!("{a:.3} ms"), a <= 0.15)),
        );
        let p99 = added("c1", |l| l.latency.p99_ms);
        goal(
            "added latency p99 at c=1 (Keyway − direct)",
            "≤ 1 ms",
            p99.map(|a| (format!("{a:.3} ms"), a <= 1.0)),
        );
        let c16 = added("c16", |l| l.latency.p99_ms).zip(
            self.load("c16", Nginx)
                .zip(self.load("c16", Direct))
                .map(|(n, d)| n.latency.p99_ms - d.latency.p99_ms),
        );
        goal(
            "added p99 at c=16 vs nginx's added p99",
            "≤ 1.2×",
            c16.map(|(k, n)| {
                let text = format!("{k:.3} ms vs {n:.3} ms ({})", ratio_text(k, n));
                (text, k <= 1.2 * n)
            }),
        );
        let delay = self.sse(Keyway).map(|s| s.delay.p99_ms);
        goal(
            "SSE: event delay p99, fake emission → client (Keyway)",
            "≤ 1 ms",
            delay.map(|d| (format!("{d:.3} ms"), d <= 1.0)),
        );
        let ttfb = self
            .sse(Keyway)
            .zip(self.sse(Direct))
            .map(|(k, d)| k.ttfb.p50_ms - d.ttfb.p50_ms);
        goal(
            "SSE: time to first byte added, p50 (Keyway − direct)",
            "≤ 0.5 ms",
            ttfb.map(|t| (format!("{t:.3} ms"), t <= 0.5)),
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
        );
        let idle = self.keyway.idle_rss_kib;
        goal(
            "Keyway idle RSS",
            "≤ 15 MiB",
            Some((format!("{} MiB", mib(idle)), mib(idle) <= 15.0)),
        );
        let peak = self
            .scenario("c64")
            .and_then(|s| s.run(Keyway)?.keyway_peak_rss_kib);
        goal(
            "Keyway peak RSS during c=64",
            "≤ 40 MiB",
            peak.map(|p| (format!("{} MiB", mib(p)), mib(p) <= 40.0)),
        );
        let startup = self
            .keyway
            .startup_median_ms()
            .zip(self.keyway.startup_max_ms());
        goal(
            "start-up, exec → first proxied 200 (median; max)",
            "≤ 100 ms",
            startup.map(|(med, max)| (format!("{med:.1} ms; max {max:.1} ms"), med <= 100.0)),
        );
        goals
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
        problems
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.write_heading(&mut md);
        self.write_requests(&mut md);
        self.write_sse(&mut md);
        self.write_keyway(&mut md);
        self.write_interference(&mut md);
        self.write_goals(&mut md);
        md
    }

    /// Runs during which other processes used the CPU: their figures are not comparable.
    fn write_interference(&self, md: &mut String) {
        let disturbed: Vec<String> = self
            .scenarios
            .iter()
            .flat_map(|s| s.runs.iter().map(move |r| (s, r)))
            .filter(|(_, r)| r.interference.foreign_cpus > DISTURBED)
            .map(|(s, r)| {
                format!(
                    "{} / {} ({:.2} CPU)",
                    s.title,
                    r.target.name(),
                    r.interference.foreign_cpus
                )
            })
            .collect();
        let steal = self
            .scenarios
            .iter()
            .flat_map(|s| &s.runs)
            .map(|r| r.interference.steal_cpus)
            .fold(0.0, f64::max);
        if disturbed.is_empty() {
            let _ = writeln!(
                md,
                "Interference: other processes used under {DISTURBED} CPU during every run \
                 (hypervisor steal up to {steal:.2} CPU).\n"
            );
        } else {
            let _ = writeln!(
                md,
                "> **Disturbed: other processes used the CPU during {}. Those figures are not \
                 comparable; run again on an idle machine.**\n",
                disturbed.join(", ")
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
            "Keyway `{}` · nginx {nginx} · {} · {} CPUs, {}, Linux {}{load}.  ",
            m.keyway_commit, m.date_utc, m.cpus, m.cpu_model, m.kernel
        );
        let _ = writeln!(
            md,
            "Placement, the same for every target: {} (nginx {} worker(s), Keyway {} runtime \
             thread(s){}); docs/PERFORMANCE.md explains the choice and the run-to-run spread.  ",
            m.placement,
            m.target_cpus,
            m.target_cpus,
            if self.has_floor() {
                ", the floor as many"
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
    }

    fn write_requests(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "| scenario | target | req/s | vs nginx | p50 ms | p90 ms | p99 ms | max ms | added p50 | added p99 | errors | Keyway peak RSS |"
        );
        let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for s in self.scenarios.iter().filter(|s| s.id != "sse") {
            let direct = s.run(Target::Direct).and_then(|r| r.load.as_ref());
            // The swap scenario runs Keyway alone; compare it with the plain c=16 runs.
            let peers = if s.id == "c16_swap" {
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
                    (_, Some(n)) => format!("{:.2}×", l.rps / n.rps),
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
                    r.target.name(),
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
                "floor = the same HTTP stack as Keyway (axum server, reqwest client) passing \
                 bytes through with no engine (`floor-proxy`, placed like Keyway).\n"
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
        for r in &s.runs {
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
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {a99} | {:.3} | {:.3} | {attfb} | {} | {rss} |",
                r.target.name(),
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
        let _ = writeln!(
            md,
            "Keyway: idle RSS {} MiB (after start, before any request), {} MiB after the run. \
             Start-up (exec `keyway --headless` → first proxied 200, keyring reads included): \
             {startup}. Requests per account under round-robin (before the swaps): {accounts}.\n",
            mib(k.idle_rss_kib),
            mib(k.rss_after_run_kib)
        );
    }

    fn write_goals(&self, md: &mut String) {
        let _ = writeln!(md, "| target | goal | measured | result |");
        let _ = writeln!(md, "|---|---|---|---|");
        for g in &self.goals {
            let result = match g.pass {
                Some(true) => "pass",
                Some(false) => "**miss**",
                None => "n/a",
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {result} |",
                g.what, g.goal, g.measured
            );
        }
    }
}

fn signed(ms: f64) -> String {
    format!("{ms:+.3}")
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

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(signed(0.1234), "+0.123");
        assert_eq!(signed(-0.02), "-0.020");
    }

    /// A c=16 scenario's report with these targets' throughputs (req/s).
    fn c16_report(rps: &[(Target, f64)]) -> Report {
        let runs = rps
            .iter()
            .map(|&(target, rps)| Run {
                target,
                load: Some(LoadStats {
                    concurrency: 16,
                    requests: 1,
                    rps,
                    latency: crate::stats::Percentiles::default(),
                    errors: 0,
                    error_samples: Vec::new(),
                    seconds: 1.0,
                }),
                sse: None,
                keyway_peak_rss_kib: None,
                interference: Usage::default(),
            })
            .collect();
        Report {
            meta: Meta {
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
            },
            scenarios: vec![Scenario {
                id: "c16".to_owned(),
                title: "small, c=16".to_owned(),
                runs,
                swaps: None,
            }],
            keyway: KeywayFacts {
                idle_rss_kib: 0,
                rss_after_run_kib: 0,
                startup_ms: Vec::new(),
                requests_per_account: Vec::new(),
            },
            goals: Vec::new(),
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
        ])
        .markdown();
        assert!(with.contains("| floor | 1,500 | 0.75× |"), "{with}");
        assert!(
            with.contains("\nfloor = the same HTTP stack as Keyway"),
            "{with}"
        );
        assert!(with.contains("the floor as many"), "{with}");
        let without = c16_report(&[(Direct, 4000.0), (Nginx, 2000.0), (Keyway, 1200.0)]).markdown();
        assert!(!without.contains("floor"), "{without}");
    }

    #[test]
    fn startup_median() {
        let facts = |ms: &[f64]| KeywayFacts {
            idle_rss_kib: 0,
            rss_after_run_kib: 0,
            startup_ms: ms.to_vec(),
            requests_per_account: Vec::new(),
        };
        assert_eq!(facts(&[30.0, 10.0, 20.0]).startup_median_ms(), Some(20.0));
        assert_eq!(facts(&[10.0, 20.0]).startup_median_ms(), Some(15.0));
        assert_eq!(facts(&[]).startup_median_ms(), None);
        assert_eq!(facts(&[1.0, 3.0, 2.0]).startup_max_ms(), Some(3.0));
    }
}
