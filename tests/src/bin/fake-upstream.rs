//! Runs the fake upstream standalone, for the Python SDK test and benchmarks.
//!
//! `fake-upstream [--listen 127.0.0.1:0] [--key PROVIDER:KEY]... [--no-record]
//! [--stream-events N] [--stream-interval-ms MS] [--stamp] [--fault KIND:PERMILLE]...` prints
//! `listening on http://127.0.0.1:PORT` once ready, then serves until killed. The API keys
//! given with `--key` are valid (any other gets the provider's invalid-key answer, as in the
//! tests) and answered `Ok` (streams: 3 events at once) unless the stream options ask for
//! paced streams; `--no-record` skips request recording so benchmarks measure Keyway, not the
//! fake; `--stamp` puts each streamed event's emission time in its text so a client can
//! measure how late it arrives; `--fault` injects failures at random for soak runs.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use keyway_tests::{Behaviour, FakeConfig, FakeUpstream, Fault, Provider, RateLimit};

const USAGE: &str = "usage: fake-upstream [--listen ADDR] [--key PROVIDER:KEY]... [--no-record]\n\
    \x20                    [--stream-events N] [--stream-interval-ms MS] [--stamp]\n\
    \x20                    [--fault KIND:PERMILLE]...\n\
    \n\
    Serves fake Anthropic, OpenAI and Gemini APIs on ADDR (default 127.0.0.1:0),\n\
    prints `listening on http://ADDR` and runs until killed.\n\
    \n\
    --listen ADDR            address to bind (port 0 picks a free port)\n\
    --key PROVIDER:KEY       accept KEY as an API key of PROVIDER (anthropic, openai,\n\
    \x20                        google); repeatable. Other keys are refused as the\n\
    \x20                        provider refuses an invalid key\n\
    --no-record              don't record requests (for benchmarks)\n\
    --stream-events N        streamed answers carry N content events (default 3)\n\
    --stream-interval-ms MS  wait MS milliseconds before each content event (default 0)\n\
    --stamp                  end each streamed event's text with ` emitted_ns=` and the\n\
    \x20                        19-digit CLOCK_REALTIME nanoseconds at which it was sent\n\
    --fault KIND:PERMILLE    answer that many requests in a thousand with KIND: 429 (with\n\
    \x20                        retry-after: 2), 500, 529 (overloaded), reset (one event,\n\
    \x20                        then the connection aborts), stall (one event, then\n\
    \x20                        silence), hang (no answer at all); repeatable";

/// Content events of a streamed answer when only `--stream-interval-ms` is given.
const DEFAULT_STREAM_EVENTS: usize = 3;

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
    let mut events: Option<usize> = None;
    let mut interval: Option<Duration> = None;
    let mut args = args;
    while let Some(arg) = args.next() {
        // `--name value` and `--name=value` alike.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" | "--no-record" | "--stamp" if inline.is_some() => {
                return Err(format!("{name} takes no value"));
            }
            "-h" | "--help" => return Ok(None),
            "--no-record" => config.record = false,
            "--stamp" => config.stamp = true,
            "--key" => {
                let spec = value("--key")?;
                let (provider, key) = spec
                    .split_once(':')
                    .filter(|(_, key)| !key.is_empty())
                    .ok_or_else(|| format!("bad --key `{spec}`: PROVIDER:KEY"))?;
                let provider: Provider = provider.parse().map_err(|e| format!("bad --key: {e}"))?;
                config.keys.push((provider, key.to_owned()));
            }
            "--fault" => {
                let spec = value("--fault")?;
                config.faults.push(parse_fault(&spec)?);
            }
            "--listen" => {
                let listen = value("--listen")?;
                config.listen = listen
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("bad --listen address `{listen}`: {e}"))?;
            }
            "--stream-events" => {
                let n = value("--stream-events")?;
                events = Some(
                    n.parse()
                        .map_err(|e| format!("bad --stream-events `{n}`: {e}"))?,
                );
            }
            "--stream-interval-ms" => {
                let ms = value("--stream-interval-ms")?;
                let ms: u64 = ms
                    .parse()
                    .map_err(|e| format!("bad --stream-interval-ms `{ms}`: {e}"))?;
                interval = Some(Duration::from_millis(ms));
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if events.is_some() || interval.is_some() {
        config.unscripted = Behaviour::Stream {
            events: events.unwrap_or(DEFAULT_STREAM_EVENTS),
            interval: interval.unwrap_or(Duration::ZERO),
        };
    }
    let injected: u32 = config.faults.iter().map(|f| f.per_mille).sum();
    if injected > 1000 {
        return Err(format!(
            "the --fault chances add up to {injected} in a thousand; at most 1000"
        ));
    }
    Ok(Some(config))
}

/// `KIND:PERMILLE`, e.g. `429:20`.
fn parse_fault(spec: &str) -> Result<Fault, String> {
    let (kind, per_mille) = spec
        .split_once(':')
        .ok_or_else(|| format!("bad --fault `{spec}`: KIND:PERMILLE"))?;
    let per_mille: u32 = per_mille
        .parse()
        .map_err(|e| format!("bad --fault `{spec}`: {e}"))?;
    let behaviour = match kind {
        "429" => Behaviour::RateLimited(RateLimit::RetryAfter(2)),
        "500" => Behaviour::ServerError(500),
        "529" => Behaviour::Overloaded,
        "reset" => Behaviour::StreamThenDrop { events: 1 },
        "stall" => Behaviour::StreamThenStall { events: 1 },
        "hang" => Behaviour::Hang,
        other => {
            return Err(format!(
                "bad --fault kind `{other}`: 429, 500, 529, reset, stall or hang"
            ));
        }
    };
    Ok(Fault {
        per_mille,
        behaviour,
    })
}
