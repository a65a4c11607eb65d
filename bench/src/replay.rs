//! The session replay: simulated Claude Code conversations through Keyway against the fake's
//! prompt cache, to show what conversation-aware routing saves.
//!
//! Each run starts a fresh fake (an empty cache) and a fresh Keyway, then plays
//! [`ReplaySpec::sessions`] conversations at once, [`ReplaySpec::turns`] turns each, as Claude
//! Code sends them: its session header, a long system prompt marked for caching, the whole
//! history every turn with the cache breakpoint on the newest message. The runs:
//!
//! - `one account`: the ideal, every conversation on one account's cache;
//! - `spread = request`: three accounts, every request rotated (the contrast);
//! - `spread = session`: three accounts, every conversation kept on its account;
//! - `session, one exhausted`: as above, with one account out of quota halfway through its
//!   share (the fake answers it 429 from then on), so its conversations must move.
//!
//! Each run reports cached input tokens over all input tokens (from the usage the answers
//! carry), failed requests, how often conversations moved and where they ended up.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use http::Method;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::cli::Plan;
use crate::keyway::{ACCOUNT_SECRETS, Accounts, Keyway, Setup};
use crate::targets::{self, Proc};

/// Longest wait for one turn's answer.
const TURN_TIMEOUT: Duration = Duration::from_secs(30);
/// Error texts kept per run, to show why requests failed.
const ERROR_SAMPLES: usize = 3;
/// Claude Code's user agent, as it sends it.
const USER_AGENT: &str = "claude-cli/2.1.332 (external, cli)";

/// How much conversation each run plays.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReplaySpec {
    pub sessions: usize,
    pub turns: usize,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayRun {
    /// `one_account`, `request`, `session` or `session_exhausted`.
    pub id: String,
    pub title: String,
    pub accounts: usize,
    pub requests: u64,
    pub failed: u64,
    /// All input tokens: uncached, read from the cache and written to it.
    pub input_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Moves of conversations between accounts, as Keyway counted them.
    pub moves: u64,
    /// Conversations bound to each account at the end, in account order.
    pub sessions_per_account: Vec<u64>,
    pub error_samples: Vec<String>,
}

impl ReplayRun {
    /// Cached input tokens over all input tokens.
    pub fn cache_ratio(&self) -> Option<f64> {
        (self.input_tokens > 0).then(|| self.cache_read_tokens as f64 / self.input_tokens as f64)
    }
}

/// The replay's runs, in the order above.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub spec: ReplaySpec,
    pub runs: Vec<ReplayRun>,
}

impl Replay {
    pub fn run(&self, id: &str) -> Option<&ReplayRun> {
        self.runs.iter().find(|r| r.id == id)
    }
}

/// One run's setup.
struct RunSpec {
    id: &'static str,
    title: &'static str,
    accounts: usize,
    spread: &'static str,
    /// The last account runs out of quota after this many requests.
    exhaust_after: Option<usize>,
}

pub async fn run(plan: &Plan, spec: ReplaySpec, dir: &Path) -> anyhow::Result<Replay> {
    let accounts = ACCOUNT_SECRETS.len();
    // Halfway through the exhausted account's share of the turns.
    let half_share = spec.sessions * spec.turns / accounts / 2;
    let runs = [
        RunSpec {
            id: "one_account",
            title: "one account (the ideal)",
            accounts: 1,
            spread: "session",
            exhaust_after: None,
        },
        RunSpec {
            id: "request",
            title: "spread = request",
            accounts,
            spread: "request",
            exhaust_after: None,
        },
        RunSpec {
            id: "session",
            title: "spread = session",
            accounts,
            spread: "session",
            exhaust_after: None,
        },
        RunSpec {
            id: "session_exhausted",
            title: "spread = session, one account exhausted halfway",
            accounts,
            spread: "session",
            exhaust_after: Some(half_share),
        },
    ];
    let mut out = Vec::new();
    for run in &runs {
        eprintln!(
            "keyway-bench: session replay, {} × {} turns: {}",
            spec.sessions, spec.turns, run.title
        );
        out.push(one_run(plan, spec, run, dir).await?);
    }
    Ok(Replay { spec, runs: out })
}

async fn one_run(
    plan: &Plan,
    spec: ReplaySpec,
    run: &RunSpec,
    dir: &Path,
) -> anyhow::Result<ReplayRun> {
    let dir = dir.join(format!("replay-{}", run.id));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let secrets = &ACCOUNT_SECRETS[..run.accounts];
    let (_fake, fake_addr) = start_fake(plan, &dir, secrets, run.exhaust_after).await?;
    let accounts = Accounts {
        name: run.id,
        secrets,
        spread: Some(run.spread),
    };
    let setup = Setup::create(plan, &dir, fake_addr, &accounts).await?;
    let mut kw = setup.start(plan).await?;

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(TURN_TIMEOUT)
        .build()
        .context("cannot build an HTTP client")?;
    let target = Arc::new(Target {
        http,
        url: format!("http://{}/v1/messages", kw.addr),
        key: kw.client_key.clone(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for session in 0..spec.sessions {
        let target = Arc::clone(&target);
        tasks.spawn(async move { conversation(&target, session, spec.turns).await });
    }
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        tally.add(done.context("a conversation panicked")?);
    }
    kw.proc.check_alive()?;
    let (moves, sessions_per_account) = sessions(&kw, &setup.accounts).await?;
    Ok(ReplayRun {
        id: run.id.to_owned(),
        title: run.title.to_owned(),
        accounts: run.accounts,
        requests: tally.requests,
        failed: tally.failed,
        input_tokens: tally.input,
        cache_read_tokens: tally.read,
        cache_write_tokens: tally.write,
        moves,
        sessions_per_account,
        error_samples: tally.errors,
    })
}

/// A fresh fake: its own empty prompt caches, the run's keys, and the exhausted one.
async fn start_fake(
    plan: &Plan,
    dir: &Path,
    secrets: &[&str],
    exhaust_after: Option<usize>,
) -> anyhow::Result<(Proc, SocketAddr)> {
    let mut cmd = Command::new(&plan.fake_bin);
    cmd.args(["--listen", "127.0.0.1:0", "--no-record"]);
    for key in secrets {
        cmd.arg("--key").arg(format!("anthropic:{key}"));
    }
    if let (Some(n), Some(last)) = (exhaust_after, secrets.last()) {
        cmd.arg("--exhaust").arg(format!("{last}@{n}"));
    }
    let mut fake = Proc::spawn("fake-upstream", cmd, plan.placement.fake.as_ref(), dir)?;
    let line = fake.wait_for_line("listening on").await?;
    let addr = targets::parse_listen_line(&line)?;
    Ok((fake, addr))
}

/// Where conversations are sent.
struct Target {
    http: reqwest::Client,
    url: String,
    key: String,
}

/// What the conversations came to.
#[derive(Default)]
struct Tally {
    requests: u64,
    failed: u64,
    input: u64,
    read: u64,
    write: u64,
    errors: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.input += other.input;
        self.read += other.read;
        self.write += other.write;
        for e in other.errors {
            if self.errors.len() < ERROR_SAMPLES {
                self.errors.push(e);
            }
        }
    }

    fn fail(&mut self, error: String) {
        self.failed += 1;
        if self.errors.len() < ERROR_SAMPLES {
            self.errors.push(error);
        }
    }
}

/// Plays conversation `session` turn by turn; a failed turn counts and the conversation goes
/// on, as a user would retype.
async fn conversation(target: &Target, session: usize, turns: usize) -> Tally {
    let session_id = format!("00000000-0000-4000-8000-{session:012}");
    let mut tally = Tally::default();
    for turn in 0..turns {
        tally.requests += 1;
        let sent = target
            .http
            .post(&target.url)
            .header("x-api-key", &target.key)
            .header("anthropic-version", "2023-06-01")
            .header("x-claude-code-session-id", &session_id)
            .header("user-agent", USER_AGENT)
            .json(&claude_turn(session, turn))
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                tally.fail(format!("turn {turn}: {e}"));
                continue;
            }
        };
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            tally.fail(format!("turn {turn}: HTTP {status}: {text}"));
            continue;
        }
        let usage = serde_json::from_slice::<Value>(&body)
            .ok()
            .map(|v| v["usage"].clone())
            .unwrap_or_default();
        let field = |name: &str| usage[name].as_u64().unwrap_or(0);
        let (read, write) = (
            field("cache_read_input_tokens"),
            field("cache_creation_input_tokens"),
        );
        tally.input += field("input_tokens") + read + write;
        tally.read += read;
        tally.write += write;
    }
    tally
}

/// The system prompt every conversation shares: long enough to cache (over 1,024 tokens).
fn system() -> Value {
    json!([{ "type": "text",
             "text": "You are Claude Code, a careful coding assistant. ".repeat(120),
             "cache_control": { "type": "ephemeral" } }])
}

/// Turn `turn` of conversation `session`: the history so far and a new question, the cache
/// breakpoint on the newest message, as Claude Code places it.
fn claude_turn(session: usize, turn: usize) -> Value {
    let mut messages = Vec::new();
    for i in 0..turn {
        messages.push(json!({"role": "user", "content": [{"type": "text",
            "text": question(session, i)}]}));
        messages.push(json!({"role": "assistant", "content": [{"type": "text",
            "text": format!("Function {i} of module {session} is changed; the tests pass. ").repeat(8)}]}));
    }
    messages.push(json!({"role": "user", "content": [{"type": "text",
        "text": question(session, turn), "cache_control": {"type": "ephemeral"}}]}));
    json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "system": system(),
           "messages": messages})
}

fn question(session: usize, turn: usize) -> String {
    format!("In module {session}, please change function {turn} to handle empty input. ").repeat(4)
}

/// Moves in all and conversations per account (in `accounts` order), from `GET /api/sessions`.
async fn sessions(kw: &Keyway, accounts: &[String]) -> anyhow::Result<(u64, Vec<u64>)> {
    let (status, body) = kw.api(Method::GET, "/sessions", None).await?;
    if !status.is_success() {
        bail!("GET /api/sessions: HTTP {status}");
    }
    let list: Vec<Value> =
        serde_json::from_slice(&body).context("GET /api/sessions is not a JSON list")?;
    let moves = list.iter().filter_map(|s| s["moves"].as_u64()).sum();
    let per_account = accounts
        .iter()
        .map(|id| list.iter().filter(|s| s["account"] == id.as_str()).count() as u64)
        .collect();
    Ok((moves, per_account))
}
