//! The process around the proxy: what startup tells the user, refusing to start with a clear
//! message (port taken, broken config), and a graceful stop that lets streams finish.

use std::process::Stdio;
use std::time::{Duration, Instant};

use keyway_tests::{Behaviour, CliOutput, FakeUpstream, Provider, Setup, harness::keyway_bin};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Longest a refused startup may take to exit.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(30);

/// `keyway --headless <args>` for a start that must fail: its output, bounded in time (a
/// Keyway that starts serving instead is killed when the timeout drops it).
async fn failed_start(setup: &Setup, args: &[&str]) -> CliOutput {
    let mut all = vec!["--headless"];
    all.extend_from_slice(args);
    let out = tokio::time::timeout(REFUSE_TIMEOUT, setup.cli(&all))
        .await
        .expect("keyway exits instead of serving");
    assert_ne!(out.code, Some(0), "keyway should refuse to start: {out:?}");
    out
}

/// Removes and returns the complete SSE events at the front of `buf`.
fn take_events(buf: &mut Vec<u8>) -> Vec<String> {
    let mut events = Vec::new();
    while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
        let event: Vec<u8> = buf.drain(..end + 2).collect();
        events.push(String::from_utf8(event).expect("UTF-8 event"));
    }
    events
}

/// The `event:` name of an SSE event.
fn event_name(event: &str) -> &str {
    event
        .lines()
        .find_map(|l| l.strip_prefix("event: "))
        .unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sigterm_lets_a_stream_in_flight_finish_then_exits_0() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;
    fake.push(
        "sk-ant",
        Behaviour::Stream {
            events: 10,
            interval: Duration::from_millis(100),
        },
    );

    let mut r = keyway
        .post(
            "/v1/messages",
            &json!({
                "model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
                "messages": [{"role": "user", "content": "hi"}],
            }),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);

    // Read until the first text delta: the stream is under way.
    let mut pending = Vec::new();
    let mut events: Vec<String> = Vec::new();
    while !events
        .iter()
        .any(|e| event_name(e) == "content_block_delta")
    {
        let chunk = tokio::time::timeout(Duration::from_secs(5), r.chunk())
            .await
            .expect("first event in time")
            .expect("read")
            .expect("stream goes on");
        pending.extend_from_slice(&chunk);
        events.extend(take_events(&mut pending));
    }
    // The rest is read while Keyway is being stopped.
    let reader = tokio::spawn(async move {
        let mut pending = pending;
        let mut events = events;
        while let Some(chunk) = r.chunk().await.expect("the stream is not cut") {
            pending.extend_from_slice(&chunk);
            events.extend(take_events(&mut pending));
        }
        events
    });

    assert_eq!(keyway.stop().await, Some(0), "a graceful stop exits 0");
    let events = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("stream done")
        .expect("reader");
    let deltas = events
        .iter()
        .filter(|e| event_name(e) == "content_block_delta")
        .count();
    assert_eq!(deltas, 10, "every text delta arrived: {events:#?}");
    assert_eq!(
        events.last().map(|e| event_name(e)),
        Some("message_stop"),
        "the stream ended properly"
    );
}

#[tokio::test]
async fn a_stream_longer_than_the_drain_ends_with_an_error_event_and_keyway_exits_on_time() {
    const DRAIN: Duration = Duration::from_secs(1);
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(
        &fake.base_url(),
        "[limits]\nfirst_byte_timeout_secs = 5\ndrain_secs = 1\n",
    );
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;
    // 30 s of text: far longer than the drain.
    fake.push(
        "sk-ant",
        Behaviour::Stream {
            events: 300,
            interval: Duration::from_millis(100),
        },
    );
    let mut r = keyway
        .post(
            "/v1/messages",
            &json!({
                "model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
                "messages": [{"role": "user", "content": "hi"}],
            }),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let mut pending = Vec::new();
    let mut events: Vec<String> = Vec::new();
    while !events
        .iter()
        .any(|e| event_name(e) == "content_block_delta")
    {
        let chunk = tokio::time::timeout(Duration::from_secs(5), r.chunk())
            .await
            .expect("first event in time")
            .expect("read")
            .expect("stream goes on");
        pending.extend_from_slice(&chunk);
        events.extend(take_events(&mut pending));
    }
    let reader = tokio::spawn(async move {
        let mut pending = pending;
        let mut events = events;
        // However the stream ends, the client sees events, not a transport error.
        while let Some(chunk) = r.chunk().await.expect("the stream ends cleanly") {
            pending.extend_from_slice(&chunk);
            events.extend(take_events(&mut pending));
        }
        (events, pending)
    });

    let stopping = Instant::now();
    let (code, log) = keyway.stop_with_logs().await;
    let took = stopping.elapsed();
    assert_eq!(code, Some(0), "{log}");
    // On time: the drain, plus a little for the last event and the exit itself.
    assert!(
        took < DRAIN + Duration::from_secs(4),
        "exited {took:?} after SIGTERM with a {DRAIN:?} drain"
    );
    let (events, rest) = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the stream ends when Keyway stops")
        .expect("reader");
    assert!(
        rest.is_empty(),
        "a cut-off event: {:?}",
        String::from_utf8_lossy(&rest)
    );
    let last = events.last().expect("events");
    assert_eq!(
        event_name(last),
        "error",
        "the stream ends with an error event: {events:#?}"
    );
    let data: serde_json::Value = serde_json::from_str(
        last.lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("error data"),
    )
    .expect("JSON error");
    assert_eq!(data["type"], "error", "{data}");
    assert!(data["error"]["type"].is_string(), "{data}");
    let message = data["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("shutting down"), "says why: {message}");
    let deltas = events
        .iter()
        .filter(|e| event_name(e) == "content_block_delta")
        .count();
    assert!(
        deltas < 300,
        "the stream did not run to its end: {deltas} deltas"
    );
    assert!(
        !events.iter().any(|e| event_name(e) == "message_stop"),
        "no proper end: {events:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Refusing to start
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_listen_address_in_use_is_refused_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let setup = Setup::new("http://127.0.0.1:9", "");
    let out = failed_start(&setup, &["--listen", &addr]).await;
    assert!(out.stderr.contains("in use"), "{out:?}");
    assert!(out.stderr.contains(&addr), "names the address: {out:?}");
    assert!(
        out.stderr.contains("--listen"),
        "says how to pick another: {out:?}"
    );
}

#[tokio::test]
async fn a_broken_config_file_is_refused_at_its_line_and_column() {
    let cases = [
        // TOML syntax: a key without a value on line 3, found where the value should start.
        (
            "# my Keyway\nlisten = \"127.0.0.1:8765\"\nlog_level =\n",
            3,
            12,
            "expected",
        ),
        // A misspelt key in [limits].
        (
            "[limits]\nmax_body_mib = 8\nmax_atempts = 4\n",
            3,
            1,
            "max_atempts",
        ),
        // Valid TOML, invalid config: an account of an unknown provider.
        (
            "log_level = \"info\"\n\n[[accounts]]\nid = \"x-1\"\nprovider = \"antropic\"\nlabel = \"Work\"\n",
            5,
            12,
            "antropic",
        ),
    ];
    for (text, line, column, mentions) in cases {
        let setup = Setup::with_config(text);
        let out = failed_start(&setup, &["--listen", "127.0.0.1:0"]).await;
        let at = format!("{}:{line}:", setup.config_path.display());
        let Some(rest) = out.stderr.split(&at).nth(1) else {
            panic!("no {at}<column> in the message for {text:?}: {out:?}");
        };
        let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let col: usize = col
            .parse()
            .unwrap_or_else(|_| panic!("no column after {at}: {out:?}"));
        assert_eq!(col, column, "column for {text:?}: {out:?}");
        assert!(out.stderr.contains(mentions), "names {mentions:?}: {out:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Starting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn startup_says_where_to_connect_and_how_to_get_the_keys() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-ant").await;
    let client_key = setup.cli(&["client-key"]).await.ok().to_owned();
    let token = setup.cli(&["management-token"]).await.ok().to_owned();

    let mut child = Command::new(keyway_bin())
        .env("KEYWAY_CONFIG", &setup.config_path)
        .env("KEYWAY_DATA_DIR", setup.data_dir())
        .env("KEYWAY_KEYRING_SERVICE", &setup.keyring_service)
        .env_remove("RUST_LOG")
        .args(["--headless", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn keyway");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut out = Vec::new();
    let banner = async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            let last = line.trim_start().starts_with("Logs:");
            out.push(line);
            if last {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), banner)
        .await
        .expect("startup output");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let text = out.join("\n");

    let base = text
        .split("listening on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no listen URL: {text}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{text}");
    assert!(
        text.contains(&format!("{base}/v1")),
        "OpenAI base URL: {text}"
    );
    assert!(
        text.contains(&format!("{base}/api")),
        "management API URL: {text}"
    );
    assert!(
        text.contains("keyway client-key"),
        "how to get the client key: {text}"
    );
    assert!(
        text.contains("keyway management-token"),
        "how to get the token: {text}"
    );
    assert!(
        text.contains("keyway dashboard-url"),
        "how to get the dashboard's address: {text}"
    );
    assert!(
        !text.contains(&token),
        "the token itself is not printed (this output may be kept in a journal): {text}"
    );
    assert!(
        text.contains(&setup.config_path.display().to_string()),
        "names the config file: {text}"
    );

    // What it printed works.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .get(format!("{base}/api/status"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("management API");
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", &client_key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("proxy");
    assert_eq!(r.status(), 200);
    assert_eq!(fake.keys_used(), ["sk-ant"]);

    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert_eq!(exit.code(), Some(0));
}
