//! One benchmark run: start the fake, nginx and Keyway (and with `--floor` the two floor
//! proxies) once, then run every scenario against each target in turns (direct, nginx, keyway,
//! the floors), so slow drifts of the machine hit them all alike, and collect everything into a
//! [`Report`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::cli::Plan;
use crate::client;
use crate::cpu::{self, Interference};
use crate::keyway::{self, Keyway, Setup};
use crate::loadgen::{self, LoadSpec};
use crate::placement;
use crate::replay;
use crate::report::{KeywayFacts, Meta, PeerFacts, Report, Run, Scenario, Target};
use crate::rest;
use crate::rss;
use crate::sse::{self, SseSpec};
use crate::swap;
use crate::targets::{self, LiteLlm};

/// How often the policy is swapped in the swap scenario.
const SWAP_INTERVAL: Duration = Duration::from_millis(100);
/// Settling time between start and the idle RSS reading.
const IDLE_SETTLE: Duration = Duration::from_secs(1);
/// The scenarios whose requests Keyway translates; the OpenAI account and the alias they
/// need are added just before the first of them.
const TRANSLATED: [&str; 2] = ["c16_translated", "sse_translated"];

/// Where and with which key a target is reached.
struct Endpoint {
    target: Target,
    addr: SocketAddr,
    key: String,
}

pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let dir = tempfile::Builder::new()
        .prefix("keyway-bench.")
        .tempdir()
        .context("cannot create a temp dir")?;
    let meta = meta(plan).await;
    eprintln!("keyway-bench: placement: {}", meta.placement);
    if meta.load_average.is_some_and(|l| l > 0.5) {
        eprintln!(
            "keyway-bench: warning: load average {:.2} at start: something else is using the CPU, \
             the figures will be noisy",
            meta.load_average.unwrap_or_default()
        );
    }

    let (fake, fake_addr) = targets::start_fake(plan, dir.path()).await?;
    let nginx = match &plan.nginx_bin {
        Some(bin) => Some(targets::start_nginx(plan, bin, dir.path(), fake_addr).await?),
        None => None,
    };
    let setup = Setup::create(plan, dir.path(), fake_addr, &keyway::STANDARD).await?;

    // Start-up first, while nothing else runs. The first start creates the client key, so
    // fetch it before measuring (the CLI creates it the same way Keyway does). The instances
    // are the bench's children, counted as its own once reaped; the fake and nginx serve them.
    let client_key = setup.cli(&["client-key"], "").await?;
    eprintln!("keyway-bench: start-up, {} runs", plan.startup_runs);
    let serving: Vec<i32> = [Some(fake.pgid()), nginx.as_ref().map(|(n, _)| n.pgid())]
        .into_iter()
        .flatten()
        .collect();
    let before = cpu::sample(&serving);
    let startup = setup
        .measure_startup(plan, plan.startup_runs, &client_key)
        .await?;
    let startup_interference = cpu::interference(before, cpu::sample(&serving));

    let before_idle = cpu::sample(&serving);
    let mut kw = setup.start(plan).await?;
    let mut floors = Vec::new();
    if let Some(bin) = &plan.floor_bin {
        for (target, stack) in [
            (Target::Floor, "axum"),
            (Target::FloorReqwest, "axum-reqwest"),
            (Target::FloorHyper, "hyper"),
        ] {
            let (proc, addr) =
                targets::start_floor(plan, bin, stack, dir.path(), fake_addr).await?;
            floors.push((target, proc, addr));
        }
    }
    let mut groups = Groups(
        [
            Some(fake.pgid()),
            nginx.as_ref().map(|(n, _)| n.pgid()),
            Some(kw.proc.pgid()),
        ]
        .into_iter()
        .flatten()
        .chain(floors.iter().map(|(_, f, _)| f.pgid()))
        .collect(),
    );
    let pid = kw.proc.pid()?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let idle = rss::read(pid)?;
    eprintln!(
        "keyway-bench: Keyway at rest for {:.0} s",
        plan.rest.as_secs_f64()
    );
    let at_rest = rest::measure(pid, plan.rest).await?;
    let idle_interference = cpu::interference(before_idle, cpu::sample(&groups.0));

    // The peer last, after Keyway's idle reading: its start-up (tens of seconds of Python
    // imports on the proxies' CPU) disturbs nothing that is measured.
    let mut litellm = None;
    let mut litellm_idle_rss_kib = 0;
    if let Some(python) = &plan.litellm_python {
        eprintln!("keyway-bench: starting LiteLLM (this takes a while)");
        let peer = targets::start_litellm(plan, python, dir.path(), fake_addr).await?;
        eprintln!(
            "keyway-bench: LiteLLM {} ready after {:.1} s",
            peer.version,
            peer.startup.as_secs_f64()
        );
        groups.0.push(peer.proc.pgid());
        litellm_idle_rss_kib = rss::read(peer.proc.pid()?)?.rss_kib;
        litellm = Some(peer);
    }

    let mut endpoints = vec![Endpoint {
        target: Target::Direct,
        addr: fake_addr,
        key: keyway::ACCOUNT_SECRETS[0].to_owned(),
    }];
    if let Some((_, addr)) = &nginx {
        endpoints.push(Endpoint {
            target: Target::Nginx,
            addr: *addr,
            key: keyway::ACCOUNT_SECRETS[0].to_owned(),
        });
    }
    endpoints.push(Endpoint {
        target: Target::Keyway,
        addr: kw.addr,
        key: kw.client_key.clone(),
    });
    for (target, _, addr) in &floors {
        // A pass-through: the client sends the upstream's key, as through nginx.
        endpoints.push(Endpoint {
            target: *target,
            addr: *addr,
            key: keyway::ACCOUNT_SECRETS[0].to_owned(),
        });
    }
    if let Some(peer) = &litellm {
        endpoints.push(Endpoint {
            target: Target::LiteLlm,
            addr: peer.addr,
            key: targets::LITELLM_MASTER_KEY.to_owned(),
        });
    }
    for e in &endpoints {
        check(e).await?;
    }

    let mut scenarios = Vec::new();
    let mut replay = None;
    let mut round_robin_counts = None;
    let mut translating = false;
    for &id in &plan.scenarios {
        if id == "replay" {
            // Its own fakes and instances: each run starts with empty prompt caches.
            replay = Some(replay::run(plan, plan.replay, dir.path()).await?);
            continue;
        }
        if id == "c16_swap" {
            // The swaps change who serves; the counts so far show round-robin alone.
            round_robin_counts = Some(requests_per_account(&kw).await);
        }
        if TRANSLATED.contains(&id) && !translating {
            // Only now: every scenario before, and the idle RSS and start-up figures, see the
            // standard instance with its three Anthropic accounts, and the counts so far show
            // round-robin over them alone.
            if round_robin_counts.is_none() {
                round_robin_counts = Some(requests_per_account(&kw).await);
            }
            eprintln!(
                "keyway-bench: adding an OpenAI account and the alias {} → {}",
                client::TRANSLATED_MODEL,
                keyway::TRANSLATED_TARGET
            );
            setup.add_translation(&kw).await?;
            check_translated(&kw).await?;
            translating = true;
        }
        let scenario = match id {
            "c1" => requests(plan, id, "small, c=1", 1, &endpoints, &mut kw, &groups).await?,
            "c16" => {
                let targets = Targets {
                    endpoints: &endpoints,
                    litellm: litellm.as_mut(),
                };
                requests_with(plan, id, "small, c=16", 16, targets, &mut kw, &groups).await?
            }
            "c16_limits" => limits_scenario(plan, &endpoints, &mut kw, &groups).await?,
            "c16_swap" => swap_scenario(plan, &endpoints, &mut kw, &setup, &groups).await?,
            "c64" => requests(plan, id, "small, c=64", 64, &endpoints, &mut kw, &groups).await?,
            "sse" => {
                let targets = Targets {
                    endpoints: &endpoints,
                    litellm: litellm.as_mut(),
                };
                streams_with(plan, id, targets, &mut kw, &groups).await?
            }
            "c16_translated" => translated_requests(plan, &endpoints, &mut kw, &groups).await?,
            "sse_translated" => streams(plan, id, &endpoints, &mut kw, &groups).await?,
            other => bail!("no scenario `{other}`"),
        };
        scenarios.push(scenario);
    }

    kw.proc.check_alive()?;
    for (_, f, _) in &mut floors {
        f.check_alive()?;
    }
    let after = rss::read(pid)?;
    let peer = match &mut litellm {
        Some(peer) => {
            peer.proc.check_alive()?;
            let memory = rss::read(peer.proc.pid()?)?;
            Some(PeerFacts {
                name: "LiteLLM".to_owned(),
                version: peer.version.clone(),
                startup_ms: peer.startup.as_secs_f64() * 1e3,
                idle_rss_kib: litellm_idle_rss_kib,
                peak_rss_kib: memory.peak_kib,
                config: targets::litellm_config(fake_addr, client::MODEL, &keyway::ACCOUNT_SECRETS),
            })
        }
        None => None,
    };
    let requests_per_account = match round_robin_counts {
        Some(counts) => counts,
        None => requests_per_account(&kw).await,
    };
    let mut report = Report {
        meta,
        scenarios,
        keyway: KeywayFacts {
            idle_rss_kib: idle.rss_kib,
            at_rest: Some(at_rest),
            idle_interference,
            rss_after_run_kib: after.rss_kib,
            startup_ms: startup.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
            startup_interference,
            requests_per_account,
        },
        replay,
        desktop: plan.desktop.clone(),
        peer,
        goals: Vec::new(),
    };
    report.goals = report.judge();
    Ok(report)
}

/// Requests each account served so far; a failure to ask is only worth a warning.
async fn requests_per_account(kw: &Keyway) -> Vec<(String, u64)> {
    kw.requests_per_account().await.unwrap_or_else(|e| {
        eprintln!("keyway-bench: warning: {e:#}");
        Vec::new()
    })
}

/// One request through a target before measuring: a wrong key, route or config shows up here
/// with the target's own answer instead of as a table of errors.
async fn check(e: &Endpoint) -> anyhow::Result<()> {
    let request = client::anthropic(e.addr, &e.key, false)?.build();
    let (status, body) = client::call(e.addr, request).await?;
    if !status.is_success() {
        bail!(
            "{} answered the benchmark request with HTTP {status}: {}",
            e.target.name(),
            client::excerpt(&body)
        );
    }
    Ok(())
}

/// One translated request through Keyway before measuring: the answer must be an Anthropic
/// message written from the OpenAI account's answer (the fake's text names the key it
/// served), or the translated scenarios would measure something else.
async fn check_translated(kw: &Keyway) -> anyhow::Result<()> {
    let request =
        client::anthropic_for(kw.addr, &kw.client_key, client::TRANSLATED_MODEL, false)?.build();
    let (status, body) = client::call(kw.addr, request).await?;
    let answer: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let text = answer
        .as_ref()
        .and_then(|a| a.pointer("/content/0/text"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let is_message = answer
        .as_ref()
        .is_some_and(|a| a.get("type").and_then(serde_json::Value::as_str) == Some("message"));
    if !status.is_success() || !is_message || !text.contains(keyway::OPENAI_SECRET) {
        bail!(
            "keyway answered a request for {} (alias → {}) with HTTP {status}, not an Anthropic \
             message served by the OpenAI account: {}",
            client::TRANSLATED_MODEL,
            keyway::TRANSLATED_TARGET,
            client::excerpt(&body)
        );
    }
    Ok(())
}

/// The process groups this run started (fake, nginx, Keyway, floor), whose CPU time is ours.
struct Groups(Vec<i32>);

/// What a measured run adds to its result besides the measurement itself.
struct Extras {
    keyway_peak_rss_kib: Option<u64>,
    keyway_cpu_ms: Option<f64>,
    peer_cpu_ms: Option<f64>,
    interference: Interference,
}

/// The processes whose CPU time a run reads: Keyway's, and the peer's when it runs.
#[derive(Debug, Clone, Copy)]
struct Pids {
    keyway: u32,
    litellm: Option<u32>,
}

impl Pids {
    fn keyway(kw: &Keyway) -> anyhow::Result<Pids> {
        Ok(Pids {
            keyway: kw.proc.pid()?,
            litellm: None,
        })
    }
}

/// The targets of a scenario that may include the peer: every endpoint, and LiteLLM's
/// process when it runs (to read its CPU time and check it is still alive).
struct Targets<'a> {
    endpoints: &'a [Endpoint],
    litellm: Option<&'a mut LiteLlm>,
}

impl Targets<'_> {
    fn pids(&self, kw: &Keyway) -> anyhow::Result<Pids> {
        Ok(Pids {
            keyway: kw.proc.pid()?,
            litellm: self.litellm.as_ref().map(|l| l.proc.pid()).transpose()?,
        })
    }

    /// Fails if the process behind `target` has exited.
    fn check_alive(&mut self, target: Target, kw: &mut Keyway) -> anyhow::Result<()> {
        kw.proc.check_alive()?;
        match (&mut self.litellm, target) {
            (Some(peer), Target::LiteLlm) => peer.proc.check_alive(),
            _ => Ok(()),
        }
    }
}

/// Runs `work` against `target`, noting how much CPU other processes used meanwhile, for
/// Keyway its peak RSS (reset before, read after) and the CPU time it used, and for the peer
/// the CPU time it used.
async fn measured<T>(
    target: Target,
    pids: Pids,
    groups: &Groups,
    work: impl Future<Output = T>,
) -> anyhow::Result<(T, Extras)> {
    let is_keyway = target == Target::Keyway;
    if is_keyway {
        rss::reset_peak(pids.keyway)?;
    }
    let cpu_pid = match target {
        Target::Keyway => Some(pids.keyway),
        Target::LiteLlm => pids.litellm,
        _ => None,
    };
    let cpu_time = || cpu_pid.and_then(cpu::process_time);
    let cpu_before = cpu_time();
    let before = cpu::sample(&groups.0);
    let out = work.await;
    let interference = cpu::interference(before, cpu::sample(&groups.0));
    let cpu_ms = cpu_before
        .zip(cpu_time())
        .map(|(a, b)| b.saturating_sub(a).as_secs_f64() * 1e3);
    let keyway_peak_rss_kib = if is_keyway {
        Some(rss::read(pids.keyway)?.peak_kib)
    } else {
        None
    };
    Ok((
        out,
        Extras {
            keyway_peak_rss_kib,
            keyway_cpu_ms: cpu_ms.filter(|_| is_keyway),
            peer_cpu_ms: cpu_ms.filter(|_| target.is_peer()),
            interference,
        },
    ))
}

/// A closed-loop run of the benchmark's request for `model` against `e`.
fn load_spec(
    plan: &Plan,
    e: &Endpoint,
    model: &str,
    concurrency: usize,
) -> anyhow::Result<LoadSpec> {
    Ok(LoadSpec {
        addr: e.addr,
        request: Arc::new(client::anthropic_for(e.addr, &e.key, model, false)?),
        concurrency,
        warmup: plan.warmup,
        duration: plan.duration,
    })
}

async fn requests(
    plan: &Plan,
    id: &str,
    title: &str,
    concurrency: usize,
    endpoints: &[Endpoint],
    kw: &mut Keyway,
    groups: &Groups,
) -> anyhow::Result<Scenario> {
    let targets = Targets {
        endpoints,
        litellm: None,
    };
    requests_with(plan, id, title, concurrency, targets, kw, groups).await
}

/// A small-request scenario against every target; the peer, if among them, only in c=16
/// (the comparison the issue asks for: it serves a few hundred requests a second, so more
/// of its runs would only lengthen the bench).
async fn requests_with(
    plan: &Plan,
    id: &str,
    title: &str,
    concurrency: usize,
    mut targets: Targets<'_>,
    kw: &mut Keyway,
    groups: &Groups,
) -> anyhow::Result<Scenario> {
    let pids = targets.pids(kw)?;
    let mut runs = Vec::new();
    let endpoints = targets
        .endpoints
        .iter()
        .filter(|e| !e.target.is_peer() || id == "c16");
    for e in endpoints {
        eprintln!("keyway-bench: {title}: {}", e.target.name());
        let spec = load_spec(plan, e, client::MODEL, concurrency)?;
        let (load, extras) = measured(e.target, pids, groups, loadgen::run(&spec)).await?;
        targets.check_alive(e.target, kw)?;
        runs.push(Run {
            target: e.target,
            load: Some(load),
            sse: None,
            keyway_peak_rss_kib: extras.keyway_peak_rss_kib,
            keyway_cpu_ms: extras.keyway_cpu_ms,
            peer_cpu_ms: extras.peer_cpu_ms,
            interference: extras.interference,
        });
    }
    Ok(Scenario {
        id: id.to_owned(),
        title: title.to_owned(),
        runs,
        swaps: None,
    })
}

/// Keyway alone at c=16 with every limit set on the key the load generator sends (limits it
/// never reaches), so each request is checked against them and metered; the plain c=16 run
/// is the comparison. The limits are removed after.
async fn limits_scenario(
    plan: &Plan,
    endpoints: &[Endpoint],
    kw: &mut Keyway,
    groups: &Groups,
) -> anyhow::Result<Scenario> {
    let title = "small, c=16 + limits on the client key";
    eprintln!("keyway-bench: {title}: keyway");
    let e = endpoints
        .iter()
        .find(|e| e.target == Target::Keyway)
        .context("no Keyway endpoint")?;
    kw.set_default_key_limits(&UNREACHED_LIMITS).await?;
    let spec = load_spec(plan, e, client::MODEL, 16)?;
    let pids = Pids::keyway(kw)?;
    let (load, extras) = measured(Target::Keyway, pids, groups, loadgen::run(&spec)).await?;
    kw.proc.check_alive()?;
    kw.set_default_key_limits(&serde_json::json!({})).await?;
    Ok(Scenario {
        id: "c16_limits".to_owned(),
        title: title.to_owned(),
        runs: vec![Run {
            target: Target::Keyway,
            load: Some(load),
            sse: None,
            keyway_peak_rss_kib: extras.keyway_peak_rss_kib,
            keyway_cpu_ms: extras.keyway_cpu_ms,
            peer_cpu_ms: extras.peer_cpu_ms,
            interference: extras.interference,
        }],
        swaps: None,
    })
}

/// Every limit a client key can have, each far above what the benchmark sends.
static UNREACHED_LIMITS: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
    serde_json::json!({
        "rpm": 1_000_000, "tpm": 10_000_000_000u64, "daily_usd": 1_000_000.0, "monthly_usd": 1_000_000.0
    })
});

/// Keyway alone at c=16 while the policy is swapped every [`SWAP_INTERVAL`]; nginx and the
/// fake have no policies, so the plain c=16 rows are the comparison.
async fn swap_scenario(
    plan: &Plan,
    endpoints: &[Endpoint],
    kw: &mut Keyway,
    setup: &Setup,
    groups: &Groups,
) -> anyhow::Result<Scenario> {
    let title = "small, c=16 + policy swap every 100 ms";
    eprintln!("keyway-bench: {title}: keyway");
    let e = endpoints
        .iter()
        .find(|e| e.target == Target::Keyway)
        .context("no Keyway endpoint")?;
    let spec = load_spec(plan, e, client::MODEL, 16)?;
    let end = Instant::now() + plan.warmup + plan.duration;
    let pids = Pids::keyway(kw)?;
    let both = async {
        tokio::join!(
            loadgen::run(&spec),
            swap::run(kw, &setup.accounts, SWAP_INTERVAL, end)
        )
    };
    let ((load, swaps), extras) = measured(Target::Keyway, pids, groups, both).await?;
    let swaps = swaps?;
    kw.proc.check_alive()?;
    Ok(Scenario {
        id: "c16_swap".to_owned(),
        title: title.to_owned(),
        runs: vec![Run {
            target: Target::Keyway,
            load: Some(load),
            sse: None,
            keyway_peak_rss_kib: extras.keyway_peak_rss_kib,
            keyway_cpu_ms: extras.keyway_cpu_ms,
            peer_cpu_ms: extras.peer_cpu_ms,
            interference: extras.interference,
        }],
        swaps: Some(swaps),
    })
}

/// Keyway alone at c=16 with every request for [`client::TRANSLATED_MODEL`], which the alias
/// sends to the OpenAI account: Messages translated to Chat and the answer back. The plain
/// c=16 runs are the comparison.
async fn translated_requests(
    plan: &Plan,
    endpoints: &[Endpoint],
    kw: &mut Keyway,
    groups: &Groups,
) -> anyhow::Result<Scenario> {
    let title = "small, c=16, translated Messages → Chat";
    eprintln!("keyway-bench: {title}: keyway");
    let e = endpoints
        .iter()
        .find(|e| e.target == Target::Keyway)
        .context("no Keyway endpoint")?;
    let spec = load_spec(plan, e, client::TRANSLATED_MODEL, 16)?;
    let pids = Pids::keyway(kw)?;
    let (load, extras) = measured(Target::Keyway, pids, groups, loadgen::run(&spec)).await?;
    kw.proc.check_alive()?;
    Ok(Scenario {
        id: "c16_translated".to_owned(),
        title: title.to_owned(),
        runs: vec![Run {
            target: Target::Keyway,
            load: Some(load),
            sse: None,
            keyway_peak_rss_kib: extras.keyway_peak_rss_kib,
            keyway_cpu_ms: extras.keyway_cpu_ms,
            peer_cpu_ms: extras.peer_cpu_ms,
            interference: extras.interference,
        }],
        swaps: None,
    })
}

/// The streaming scenario `id`: `sse` against the three standard targets, or
/// `sse_translated` against Keyway alone with every stream for [`client::TRANSLATED_MODEL`]
/// (a Messages stream to the client, a Chat stream from the OpenAI account, translated event
/// by event; the fake's stamps ride in the text, which translation keeps).
async fn streams(
    plan: &Plan,
    id: &str,
    endpoints: &[Endpoint],
    kw: &mut Keyway,
    groups: &Groups,
) -> anyhow::Result<Scenario> {
    let targets = Targets {
        endpoints,
        litellm: None,
    };
    streams_with(plan, id, targets, kw, groups).await
}

/// [`streams`] against `targets`, the peer among them if it runs (never translated: the
/// translated twin is Keyway's alone).
async fn streams_with(
    plan: &Plan,
    id: &str,
    mut targets: Targets<'_>,
    kw: &mut Keyway,
    groups: &Groups,
) -> anyhow::Result<Scenario> {
    let translated = id == "sse_translated";
    let title = format!(
        "SSE{}, {} streams × {} events at {} ms",
        if translated {
            " translated Messages → Chat"
        } else {
            ""
        },
        plan.sse_streams,
        plan.sse_events,
        plan.sse_interval.as_millis()
    );
    let model = if translated {
        client::TRANSLATED_MODEL
    } else {
        client::MODEL
    };
    let pids = targets.pids(kw)?;
    let mut runs = Vec::new();
    // The floor answers one question, what the stack costs under request load; the streaming
    // scenario stays with the three standard targets (and the peer), and its translated twin
    // with Keyway.
    let endpoints: Vec<&Endpoint> = targets
        .endpoints
        .iter()
        .filter(|e| !e.target.is_floor() && (!translated || e.target == Target::Keyway))
        .collect();
    for e in endpoints {
        eprintln!("keyway-bench: {title}: {}", e.target.name());
        let spec = SseSpec {
            addr: e.addr,
            request: Arc::new(client::anthropic_for(e.addr, &e.key, model, true)?),
            warmup_request: Arc::new(client::anthropic_for(e.addr, &e.key, model, false)?),
            streams: plan.sse_streams,
            events: plan.sse_events,
            duration: plan.duration,
        };
        let (stats, extras) = measured(e.target, pids, groups, sse::run(&spec)).await?;
        targets.check_alive(e.target, kw)?;
        runs.push(Run {
            target: e.target,
            load: None,
            sse: Some(stats),
            keyway_peak_rss_kib: extras.keyway_peak_rss_kib,
            keyway_cpu_ms: extras.keyway_cpu_ms,
            peer_cpu_ms: extras.peer_cpu_ms,
            interference: extras.interference,
        });
    }
    Ok(Scenario {
        id: id.to_owned(),
        title,
        runs,
        swaps: None,
    })
}

async fn meta(plan: &Plan) -> Meta {
    let nginx_version = match &plan.nginx_bin {
        Some(bin) => Some(targets::nginx_version(bin).await),
        None => None,
    };
    Meta {
        mode: if plan.short { "short" } else { "full" }.to_owned(),
        date_utc: utc_now(),
        keyway_commit: keyway_commit(&plan.keyway_bin).await,
        keyway_bin: plan.keyway_bin.display().to_string(),
        keyway_log_level: plan.keyway_log_level.clone(),
        nginx_version,
        floor_bin: plan.floor_bin.as_ref().map(|b| b.display().to_string()),
        cpu_model: cpu_model(),
        cpus: placement::online_cpus(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned()),
        placement: plan.placement.to_string(),
        target_cpus: plan.placement.target_cpus(),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok()),
        seconds_per_run: plan.duration.as_secs_f64(),
        warmup_seconds: plan.warmup.as_secs_f64(),
        request_bytes: client::anthropic_body(false).len(),
        sse_streams: plan.sse_streams,
        sse_events: plan.sse_events,
        sse_interval_ms: u64::try_from(plan.sse_interval.as_millis()).unwrap_or(u64::MAX),
        note: plan.note.clone(),
        bench_debug_build: cfg!(debug_assertions),
    }
}

/// The commit of the checkout the `keyway` binary was built in (found from the binary's
/// folder, e.g. `<checkout>/target/release`), else of the checkout this bench was built in;
/// `+dirty` when Keyway's sources there have uncommitted changes.
async fn keyway_commit(keyway_bin: &Path) -> String {
    let candidates = [
        keyway_bin.parent().map(Path::to_path_buf),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")),
    ];
    for root in candidates.into_iter().flatten() {
        let Some(commit) = git(&root, &["rev-parse", "--short=12", "HEAD"]).await else {
            continue;
        };
        let status = [
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ":/crates",
            ":/src-tauri",
            ":/Cargo.toml",
            ":/Cargo.lock",
            ":/config",
        ];
        let dirty = git(&root, &status).await.is_some_and(|s| !s.is_empty());
        return if dirty {
            format!("{commit}+dirty")
        } else {
            commit
        };
    }
    "unknown".to_owned()
}

/// `git -C dir args…`'s trimmed stdout, if it succeeds.
async fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// `2026-01-31 12:34 UTC`, without a date library (civil-from-days, H. Hinnant).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_format() {
        let s = super::utc_now();
        assert!(s.ends_with(" UTC") && s.len() == 20, "{s}");
        assert!(s.starts_with("20"), "{s}");
    }
}
