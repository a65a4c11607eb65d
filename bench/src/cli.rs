//! The command line and the plan derived from it: which binaries, how long, where to write.
//!
//! Every default is chosen so that `keyway-bench` run from `target/release/` next to the
//! release `keyway` and `fake-upstream` needs no arguments (that is what `scripts/bench` does).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::placement::Placement;
use crate::replay::ReplaySpec;
use crate::soak::SoakSpec;

/// Every scenario, in the order they run. The translated ones come after every other
/// scenario on the standard instance: the OpenAI account and alias they need are added
/// just before the first of them. The replay runs instances of its own.
pub const SCENARIOS: [&str; 9] = [
    "c1",
    "c16",
    "c16_limits",
    "c16_swap",
    "c64",
    "sse",
    "c16_translated",
    "sse_translated",
    "replay",
];
/// The soak scenario, run only when asked for (`--scenarios soak`), after the others.
pub const SOAK: &str = "soak";

/// Full mode: measured seconds per scenario and target.
const FULL_SECS: f64 = 10.0;
/// Short mode: long enough to exercise every code path, too short for stable figures.
const SHORT_SECS: f64 = 1.5;
/// Turns per conversation in the session replay, full and short mode.
const REPLAY_TURNS: usize = 30;
const SHORT_REPLAY_TURNS: usize = 10;

#[derive(Debug, Parser)]
#[command(
    name = "keyway-bench",
    version,
    about = "Measures the fake upstream directly, nginx as a reverse proxy to it, and `keyway \
             --headless` with three API-key accounts (and, with --floor, a bare pass-through on \
             Keyway's HTTP stack; with --litellm-python, LiteLLM's proxy as a peer), in turns, in \
             one run; prints a Markdown table and writes it and a JSON file.",
    after_help = "Run it through `scripts/bench` (release builds, nginx, private keyring session)."
)]
pub struct Args {
    /// Short mode: ~1.5 s per scenario and 2 start-up runs. Checks that the harness works; the
    /// figures are rough.
    #[arg(long)]
    pub short: bool,

    /// Measured seconds per scenario and target [default: 10, short mode 1.5].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Unmeasured seconds before each measured run [default: 1, short mode 0.3].
    #[arg(long, value_name = "SECS")]
    pub warmup: Option<f64>,

    /// Concurrent SSE streams in the streaming scenario.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub sse_streams: usize,

    /// Content events per SSE stream.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub sse_events: usize,

    /// Milliseconds between SSE content events.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    pub sse_interval_ms: u64,

    /// Start-up measurements (exec to first proxied 200; 0 skips them) [default: 5, short
    /// mode 2].
    #[arg(long, value_name = "N")]
    pub startup_runs: Option<usize>,

    /// Run only these scenarios (comma-separated: c1, c16, c16_limits, c16_swap, c64, sse,
    /// c16_translated, sse_translated, replay), e.g. to profile one; targets that need the
    /// others show n/a. The translated ones are c16 and sse with Keyway alone, every request
    /// for a model an alias sends to an OpenAI-format account (Messages → Chat and back). `soak` (never run
    /// by default) is Keyway alone for minutes at a steady rate over every surface, with
    /// failures injected and policy swaps; it writes soak.md and soak.json.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub scenarios: Option<Vec<String>>,

    /// Concurrent conversations in the session replay.
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub replay_sessions: usize,

    /// Seconds Keyway is watched at rest after start, for its wake-ups and CPU [default: 10,
    /// short mode 3].
    #[arg(long, value_name = "SECS")]
    pub rest: Option<f64>,

    /// Turns per conversation in the session replay [default: 30, short mode 10].
    #[arg(long, value_name = "N")]
    pub replay_turns: Option<usize>,

    /// Seconds of load in the soak scenario.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub soak_secs: u64,

    /// Requests started per second in the soak scenario.
    #[arg(long, value_name = "N", default_value_t = 40)]
    pub soak_rate: u32,

    /// CPU placement as LOADGEN/FAKE/TARGET CPU lists (e.g. `0/0/1`, `0/1/1`, `0-1/0-1/0-1`),
    /// or `none` for no pinning. TARGET is the proxy under test (nginx, Keyway or the floor).
    #[arg(long, value_name = "L/F/T|none", default_value = "0/1/1")]
    pub placement: Placement,

    /// The `keyway` binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    pub keyway_bin: Option<PathBuf>,

    /// The `fake-upstream` binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    pub fake_bin: Option<PathBuf>,

    /// The `nginx` binary [default: `nginx` on PATH, else /usr/sbin/nginx].
    #[arg(long, value_name = "PATH")]
    pub nginx_bin: Option<PathBuf>,

    /// Run without nginx (ratios against nginx are then not available).
    #[arg(long)]
    pub no_nginx: bool,

    /// Also measure the floor targets in the small-request scenarios (c1, c16, c64):
    /// `floor-proxy`, the same HTTP stack as Keyway (axum server, Keyway's hyper-util client)
    /// passing bytes through with no engine, placed like Keyway; `--stack axum-reqwest`, the
    /// same with reqwest's client (Keyway's before); and `--stack hyper`, bare hyper with the
    /// body streamed. Shows what the stack alone costs, what the client change gained, and a
    /// leaner server.
    #[arg(long)]
    pub floor: bool,

    /// The `floor-proxy` binary, with --floor [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    pub floor_bin: Option<PathBuf>,

    /// Also measure a peer in the c=16 and SSE scenarios: LiteLLM's proxy, run by this Python
    /// (a venv's `bin/python` with `litellm[proxy]` installed; `scripts/bench --peers` makes
    /// one), one worker, pinned like the proxies, with the fake as the upstream of three
    /// deployments in one model group (simple-shuffle), sent the same Anthropic request on its
    /// `/v1/messages` endpoint.
    #[arg(long, value_name = "PATH")]
    pub litellm_python: Option<PathBuf>,

    /// The desktop app's figures, as `scripts/lib/desktop-rss.py --json` wrote them
    /// (`scripts/bench --desktop` measures them first): reported and judged with the run.
    #[arg(long, value_name = "FILE")]
    pub desktop_json: Option<PathBuf>,

    /// Keyway's `log_level` in its config (e.g. `warn`, to see what request logging costs)
    /// [default: unset, i.e. Keyway's default `info`, as users run it].
    #[arg(long, value_name = "LEVEL")]
    pub keyway_log_level: Option<String>,

    /// Where to write latest.md and latest.json [default: bench/results in full mode, a
    /// bench-short folder next to this executable in short mode].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// A note printed under the table's heading (e.g. that the binaries are debug builds).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,

    /// Run with whatever Secret Service this session has. Without it the bench refuses to run
    /// outside `scripts/lib/keyring-session.sh`, so it never writes into a real keyring.
    #[arg(long)]
    pub use_current_keyring: bool,
}

/// Everything a run needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub short: bool,
    pub duration: Duration,
    pub warmup: Duration,
    pub sse_streams: usize,
    pub sse_events: usize,
    pub sse_interval: Duration,
    pub startup_runs: usize,
    /// How long Keyway is watched at rest.
    pub rest: Duration,
    pub replay: ReplaySpec,
    /// Scenario ids to run, in the fixed order of [`SCENARIOS`].
    pub scenarios: Vec<&'static str>,
    /// The soak scenario, when asked for.
    pub soak: Option<SoakSpec>,
    pub placement: Placement,
    pub keyway_bin: PathBuf,
    pub fake_bin: PathBuf,
    /// `None` with `--no-nginx`.
    pub nginx_bin: Option<PathBuf>,
    /// `Some` with `--floor`.
    pub floor_bin: Option<PathBuf>,
    /// `Some` with `--litellm-python`: the peer runs in c=16 and SSE.
    /// `Some` with `--desktop-json`: the desktop app's figures, read.
    pub desktop: Option<crate::desktop::Desktop>,
    pub litellm_python: Option<PathBuf>,
    pub keyway_log_level: Option<String>,
    pub out: PathBuf,
    pub note: Option<String>,
}

impl Plan {
    pub fn from_args(args: Args) -> anyhow::Result<Plan> {
        if !args.use_current_keyring && std::env::var_os("KEYRING_SESSION_DIR").is_none() {
            bail!(
                "not inside a private keyring session: run `scripts/bench`, or wrap the command in \
                 `scripts/lib/keyring-session.sh`, or pass --use-current-keyring to let the bench \
                 add throwaway accounts to this session's keyring"
            );
        }
        let secs = |given: Option<f64>, full: f64, short: f64, what: &str| {
            let s = given.unwrap_or(if args.short { short } else { full });
            if !(s.is_finite() && (0.0..=3600.0).contains(&s)) {
                bail!("--{what} must be between 0 and 3600 seconds, not {s}");
            }
            Ok(Duration::from_secs_f64(s))
        };
        let duration = secs(args.duration, FULL_SECS, SHORT_SECS, "duration")?;
        if duration.is_zero() {
            bail!("--duration must be more than 0 seconds");
        }
        let warmup = secs(args.warmup, 1.0, 0.3, "warmup")?;
        let rest = secs(args.rest, 10.0, 3.0, "rest")?;
        if rest.is_zero() {
            bail!("--rest must be more than 0 seconds");
        }
        if let Some(level) = &args.keyway_log_level
            && !level
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_=,:".contains(c))
        {
            bail!("--keyway-log-level `{level}` is not a log filter (e.g. warn, info, debug)");
        }
        if args.sse_streams == 0 || args.sse_events == 0 {
            bail!("--sse-streams and --sse-events must be at least 1");
        }
        let replay = ReplaySpec {
            sessions: args.replay_sessions,
            turns: args.replay_turns.unwrap_or(if args.short {
                SHORT_REPLAY_TURNS
            } else {
                REPLAY_TURNS
            }),
        };
        // Enough to give each of the three accounts conversations and half a share to exhaust;
        // few enough that the growing histories stay small requests.
        if !(3..=1000).contains(&replay.sessions) || !(2..=200).contains(&replay.turns) {
            bail!("--replay-sessions must be 3 to 1000 and --replay-turns 2 to 200");
        }
        let exe_dir = std::env::current_exe()
            .context("cannot find this executable's path")?
            .parent()
            .map(Path::to_path_buf)
            .context("this executable has no parent folder")?;
        // `flag` is the option's name without `--` and `-bin`: keyway, fake, floor.
        let sibling = |given: Option<PathBuf>, name: &str, flag: &str| {
            let path = given.unwrap_or_else(|| exe_dir.join(name));
            if !path.is_file() {
                bail!(
                    "no {name} binary at {}: build it (scripts/bench does) or pass --{flag}-bin",
                    path.display()
                );
            }
            Ok(path)
        };
        let keyway_bin = sibling(args.keyway_bin, "keyway", "keyway")?;
        let fake_bin = sibling(args.fake_bin, "fake-upstream", "fake")?;
        let soak = args
            .scenarios
            .as_ref()
            .is_some_and(|w| w.iter().any(|s| s == SOAK))
            .then_some(SoakSpec {
                duration: Duration::from_secs(args.soak_secs),
                rate: args.soak_rate,
            });
        if soak.is_some_and(|s| s.duration.is_zero() || s.rate == 0 || s.rate > 10_000) {
            bail!("--soak-secs must be more than 0 and --soak-rate between 1 and 10000");
        }
        let only_soak = args
            .scenarios
            .as_ref()
            .is_some_and(|w| w.iter().all(|s| s == SOAK));
        let nginx_bin = if args.no_nginx || only_soak {
            None
        } else {
            Some(find_nginx(args.nginx_bin)?)
        };
        let floor_bin = if args.floor {
            Some(sibling(args.floor_bin, "floor-proxy", "floor")?)
        } else {
            None
        };
        let litellm_python = match args.litellm_python {
            Some(python) if only_soak => {
                eprintln!(
                    "keyway-bench: --litellm-python {} ignored: the soak measures Keyway alone",
                    python.display()
                );
                None
            }
            Some(python) if !python.is_file() => bail!(
                "--litellm-python {}: no such file (scripts/bench --peers makes a venv with \
                 LiteLLM and passes its python)",
                python.display()
            ),
            other => other,
        };
        let out = args.out.unwrap_or_else(|| {
            if args.short {
                exe_dir.join("bench-short")
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("results")
            }
        });
        args.placement.check()?;
        let scenarios = match &args.scenarios {
            None => SCENARIOS.to_vec(),
            Some(wanted) => {
                if let Some(bad) = wanted
                    .iter()
                    .find(|w| !SCENARIOS.contains(&w.as_str()) && w.as_str() != SOAK)
                {
                    bail!(
                        "unknown scenario `{bad}`; the scenarios are {} and {SOAK}",
                        SCENARIOS.join(", ")
                    );
                }
                SCENARIOS
                    .into_iter()
                    .filter(|s| wanted.iter().any(|w| w == s))
                    .collect()
            }
        };
        Ok(Plan {
            short: args.short,
            duration,
            warmup,
            sse_streams: args.sse_streams,
            sse_events: args.sse_events,
            sse_interval: Duration::from_millis(args.sse_interval_ms),
            rest,
            startup_runs: args.startup_runs.unwrap_or(if args.short { 2 } else { 5 }),
            replay,
            scenarios,
            soak,
            placement: args.placement,
            keyway_bin,
            fake_bin,
            nginx_bin,
            floor_bin,
            desktop: args
                .desktop_json
                .as_deref()
                .map(crate::desktop::read)
                .transpose()?,
            litellm_python,
            keyway_log_level: args.keyway_log_level,
            out,
            note: args.note,
        })
    }
}

/// nginx lives in /usr/sbin on Debian, which is not on a normal user's PATH.
fn find_nginx(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if path.is_file() {
            return Ok(path);
        }
        bail!("no nginx binary at {}", path.display());
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
        .context(
            "nginx not found: install the Debian package `nginx` (scripts/bench does when run as \
             root), pass --nginx-bin PATH, or run with --no-nginx",
        )
}
