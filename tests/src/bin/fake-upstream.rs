//! Runs the fake upstream standalone, for the Python SDK test and benchmarks.
//!
//! `fake-upstream [--listen 127.0.0.1:0] [--key PROVIDER:KEY]... [--no-record]
//! [--stream-events N] [--stream-interval-ms MS] [--stamp] [--fault KIND:PERMILLE]...` prints
//! `listening on http://127.0.0.1:PORT` once ready, then serves until killed. The API keys
//! given with `--key` are valid (any other gets the provider's invalid-key answer, as in the
//! tests) and answered `Ok` (streams: 3 events at once) unless the stream options ask for
//! paced streams; `--no-record` skips request recording so benchmarks measure Keyway, not the
//! fake; `--stamp` puts each streamed event's emission time in its text so a client can
//! measure how late it arrives; `--cache-ttl-secs` sets the prompt caches' lifetime;
//! `--dump FILE` writes every request it received to FILE as JSON when interrupted (SIGINT),
//! for capturing what real clients send (`tests/clients/capture`); `--exhaust KEY@N` makes a
//! key run out of quota after N requests (the session replay benchmark); `--fault` injects
//! failures at random for soak runs; `--lenient` answers request bodies the real APIs would
//! refuse (for capturing a new client version that sends fields the fake does not know yet).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use keyway_tests::{Behaviour, FakeConfig, FakeUpstream, Fault, Provider, RateLimit};

const USAGE: &str = "usage: fake-upstream [--listen ADDR] [--key PROVIDER:KEY]... [--no-record]\n\
    \x20                    [--stream-events N] [--stream-interval-ms MS] [--stamp]\n\
    \x20                    [--cache-ttl-secs N] [--dump FILE] [--exhaust KEY@N]...\n\
    \x20                    [--fault KIND:PERMILLE]... [--lenient]\n\
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
    --cache-ttl-secs N       an unused prompt cache entry lives N seconds (default 300)\n\
    --dump FILE              on SIGINT, write every request received to FILE as JSON\n\
    \x20                        (method, path, headers, body), then exit\n\
    --exhaust KEY@N          KEY serves N requests, then answers every request with 429\n\
    \x20                        and `retry-after: 3600` (its quota ran out)\n\
    --fault KIND:PERMILLE    answer that many requests in a thousand with KIND: 429 (with\n\
    \x20                        retry-after: 2), 500, 529 (overloaded), reset (one event,\n\
    \x20                        then the connection aborts), stall (one event, then\n\
    \x20                        silence), hang (no answer at all); repeatable\n\
    --lenient                answer request bodies the real APIs would refuse (unknown\n\
    \x20                        fields, wrong shapes) instead of refusing them";

/// How long an `--exhaust`ed key asks to be left alone: longer than any benchmark runs.
const EXHAUSTED_SECS: u64 = 3600;

/// Content events of a streamed answer when only `--stream-interval-ms` is given.
const DEFAULT_STREAM_EVENTS: usize = 3;

#[tokio::main]
async fn main() -> ExitCode {
    let Options {
        config,
        dump,
        exhaust,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
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
    for (key, served) in exhaust {
        fake.push_all(&key, std::iter::repeat_n(Behaviour::Ok, served));
        fake.set_default(
            &key,
            Behaviour::RateLimited(RateLimit::RetryAfter(EXHAUSTED_SECS)),
        );
    }
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
    if let Some(path) = dump {
        let requests: Vec<serde_json::Value> = fake
            .requests()
            .iter()
            .map(|r| {
                serde_json::json!({
                    "method": r.method,
                    "path": r.path,
                    "headers": r.headers,
                    "body": r.json().unwrap_or_else(|| String::from_utf8_lossy(&r.body).into()),
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&requests).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("fake-upstream: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// What the command line asks for.
struct Options {
    config: FakeConfig,
    /// Where to write the recorded requests on SIGINT.
    dump: Option<String>,
    /// Keys that run out of quota, with the requests each serves first.
    exhaust: Vec<(String, usize)>,
}

/// `Ok(None)` means help was asked for.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut config = FakeConfig::default();
    let mut dump = None;
    let mut exhaust = Vec::new();
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
            "-h" | "--help" | "--no-record" | "--stamp" | "--lenient" if inline.is_some() => {
                return Err(format!("{name} takes no value"));
            }
            "-h" | "--help" => return Ok(None),
            "--no-record" => config.record = false,
            "--stamp" => config.stamp = true,
            "--lenient" => config.strict = false,
            "--key" => {
                let spec = value("--key")?;
                let (provider, key) = spec
                    .split_once(':')
                    .filter(|(_, key)| !key.is_empty())
                    .ok_or_else(|| format!("bad --key `{spec}`: PROVIDER:KEY"))?;
                let provider: Provider = provider.parse().map_err(|e| format!("bad --key: {e}"))?;
                config.keys.push((provider, key.to_owned()));
            }
            "--dump" => dump = Some(value("--dump")?),
            "--exhaust" => {
                let spec = value("--exhaust")?;
                let (key, served) = spec
                    .rsplit_once('@')
                    .filter(|(key, _)| !key.is_empty())
                    .ok_or_else(|| format!("bad --exhaust `{spec}`: KEY@N"))?;
                let served: usize = served
                    .parse()
                    .map_err(|e| format!("bad --exhaust `{spec}`: {e}"))?;
                exhaust.push((key.to_owned(), served));
            }
            "--fault" => {
                let spec = value("--fault")?;
                config.faults.push(parse_fault(&spec)?);
            }
            "--cache-ttl-secs" => {
                let secs = value("--cache-ttl-secs")?;
                let secs: u64 = secs
                    .parse()
                    .map_err(|e| format!("bad --cache-ttl-secs `{secs}`: {e}"))?;
                config.cache_ttl = Duration::from_secs(secs);
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
    Ok(Some(Options {
        config,
        dump,
        exhaust,
    }))
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
