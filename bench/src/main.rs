//! `keyway-bench`: Keyway's performance benchmark.
//!
//! One run starts the fake upstream (`fake-upstream --stamp`), nginx as a reverse proxy to it,
//! and `keyway --headless` with three Anthropic API-key accounts, and measures the same
//! workloads against each in turns with one load generator:
//!
//! - small non-streaming requests at concurrency 1, 16 and 64 (throughput, latency
//!   percentiles, errors), plus Keyway at c=16 while its policy is swapped every 100 ms;
//! - SSE streams of 50 events at 20 ms (per-event delay from the fake's emission stamp,
//!   time to first byte);
//! - translation: Keyway alone at c=16 and with the same SSE streams, every request for a
//!   model that an alias (added just before, with an OpenAI API-key account, through the
//!   CLI) sends to an OpenAI-format account, so Messages are translated to Chat Completions
//!   and the answers back; set against the pass-through runs (throughput, latency, event
//!   delay, Keyway's CPU time per request and per event);
//! - Keyway's resident memory (idle, and peak per scenario) and its start-up time;
//! - the session replay: simulated Claude Code conversations against the fake's prompt cache,
//!   on one account, spread per request, spread per session, and with one account exhausted
//!   halfway (cache hit ratio, failures, moves; see `replay.rs`).
//!
//! With `--floor`, the small-request scenarios also measure `floor-proxy` (this crate's second
//! binary): Keyway's HTTP stack passing bytes through with no engine, placed like Keyway, so a
//! throughput ratio Keyway misses can be set against the floor its stack alone allows.
//!
//! With `--litellm-python` (`scripts/bench --peers`), the c=16 and SSE scenarios also measure
//! a peer, LiteLLM's proxy, sent the same request on its Anthropic endpoint, and the report
//! sets Keyway and it side by side.
//!
//! `--scenarios soak` (never in the default run) adds the soak: Keyway alone for minutes at a
//! steady rate over every surface, against a fake that injects failures, with policy swaps;
//! it counts what was served and why the rest was not, and Keyway's memory and open files at
//! the start and the end (`soak.md`, `soak.json`), and fails on any unexpected failure or
//! growth beyond its bounds.
//!
//! It prints a Markdown table and writes it and the raw figures as `latest.md` and
//! `latest.json`. Misses against speed and memory targets do not fail the run (figures vary by
//! machine); a run in which some target served nothing does, because then the harness is
//! broken, and so does a miss no machine excuses (failed requests, the replay's cache ratios
//! and placement), because then Keyway is.
//! `scripts/bench` is the one command that builds everything and runs this.

mod cli;
mod client;
mod cpu;
mod desktop;
mod keyway;
mod loadgen;
mod placement;
mod replay;
mod report;
mod rest;
mod rss;
mod run;
mod soak;
mod sse;
mod stats;
mod swap;
mod targets;

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Parser;

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keyway-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let plan = cli::Plan::from_args(cli::Args::parse())?;
    // Before the runtime exists, so every thread it starts inherits the placement.
    if let Some(cpus) = &plan.placement.loadgen {
        placement::pin_current_thread(cpus).context("cannot pin the load generator")?;
    }
    // One CPU: a single-threaded runtime, which costs the load generator less per request
    // (no work stealing, no cross-thread wake-ups) and so leaves more of the CPU it may share
    // with the fake to the fake.
    let mut builder = match plan.placement.loadgen_cpus() {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let standard = if plan.scenarios.is_empty() {
        ExitCode::SUCCESS
    } else {
        standard(&plan, &runtime)?
    };
    let soak = match plan.soak {
        Some(spec) => soak(&plan, &runtime, spec)?,
        None => ExitCode::SUCCESS,
    };
    Ok(if standard == ExitCode::SUCCESS {
        soak
    } else {
        standard
    })
}

/// The soak scenario: its report printed and written as soak.md and soak.json.
fn soak(
    plan: &cli::Plan,
    runtime: &tokio::runtime::Runtime,
    spec: soak::SoakSpec,
) -> anyhow::Result<ExitCode> {
    let report = runtime.block_on(async {
        tokio::select! {
            report = soak::run(plan, spec) => report,
            signal = interrupted() => Err(anyhow!("interrupted by {signal}; processes stopped")),
        }
    })?;
    write_report(&plan.out, "soak", &report.markdown(), &report)?;
    let problems = report.problems();
    for problem in &problems {
        eprintln!("keyway-bench: soak failed: {problem}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints `markdown` and writes it and `report` as `<stem>.md` and `<stem>.json` in `out`.
fn write_report(
    out: &std::path::Path,
    stem: &str,
    markdown: &str,
    report: &impl serde::Serialize,
) -> anyhow::Result<()> {
    println!("{markdown}");
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let md_path = out.join(format!("{stem}.md"));
    let json_path = out.join(format!("{stem}.json"));
    std::fs::write(&md_path, markdown)
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    std::fs::write(&json_path, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    eprintln!(
        "keyway-bench: wrote {} and {}",
        md_path.display(),
        json_path.display()
    );
    Ok(())
}

/// The standard scenarios against every target: the table printed and written as latest.md
/// and latest.json.
fn standard(plan: &cli::Plan, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let report = runtime.block_on(async {
        // Dropping the run on a signal drops every process it started (they die with it).
        tokio::select! {
            report = run::run(plan) => report,
            signal = interrupted() => Err(anyhow!("interrupted by {signal}; processes stopped")),
        }
    })?;

    write_report(&plan.out, "latest", &report.markdown(), &report)?;

    let broken = report.broken();
    for problem in &broken {
        eprintln!("keyway-bench: broken: {problem}");
    }
    if !broken.is_empty() {
        eprintln!("keyway-bench: the harness measured nothing for some targets (see above)");
    }
    let faults = report.faults();
    for g in &faults {
        eprintln!(
            "keyway-bench: fault: {}: {} (goal {}); no machine excuses this",
            g.what, g.measured, g.goal
        );
    }
    Ok(if broken.is_empty() && faults.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Resolves on Ctrl-C or SIGTERM with the signal's name.
async fn interrupted() -> &'static str {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term => "SIGTERM",
    }
}
