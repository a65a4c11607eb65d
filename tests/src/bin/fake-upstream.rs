//! Runs the fake upstream standalone, for the Python SDK test and benchmarks.
//!
//! `fake-upstream [--listen 127.0.0.1:0] [--no-record]` prints
//! `listening on http://127.0.0.1:PORT` once ready, then serves until killed. Every key is
//! answered `Ok`; `--no-record` skips request recording so benchmarks measure Keyway, not the
//! fake.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use keyway_tests::{FakeConfig, FakeUpstream};

const USAGE: &str = "usage: fake-upstream [--listen ADDR] [--no-record]\n\
    \n\
    Serves fake Anthropic, OpenAI and Gemini APIs on ADDR (default 127.0.0.1:0),\n\
    prints `listening on http://ADDR` and runs until killed.\n\
    \n\
    --listen ADDR   address to bind (port 0 picks a free port)\n\
    --no-record     don't record requests (for benchmarks)";

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("fake-upstream: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeUpstream::start_with(config.clone()).await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("fake-upstream: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    // Whoever started us reads this line to learn the port; a closed stdout is their choice.
    let _ = writeln!(stdout, "listening on {}", fake.base_url());
    let _ = stdout.flush();
    drop(stdout);

    // Serve until interrupted; SIGTERM/SIGKILL end the process directly.
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("fake-upstream: cannot wait for Ctrl-C ({e}); serving until killed");
        std::future::pending::<()>().await;
    }
    ExitCode::SUCCESS
}

/// `Ok(None)` means help was asked for.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<FakeConfig>, String> {
    let mut config = FakeConfig::default();
    let mut args = args;
    while let Some(arg) = args.next() {
        let listen = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--no-record" => {
                config.record = false;
                continue;
            }
            "--listen" => args.next().ok_or("--listen needs an address")?,
            other => match other.strip_prefix("--listen=") {
                Some(addr) => addr.to_owned(),
                None => return Err(format!("unknown argument `{other}`")),
            },
        };
        config.listen = listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("bad --listen address `{listen}`: {e}"))?;
    }
    Ok(Some(config))
}
