//! Streaming through the real proxy: events reach the client as the upstream emits them and
//! byte for byte, a stream the upstream breaks ends with an error event (never a silent
//! truncation, never a failover once bytes went out), and a client that goes away cancels the
//! upstream request.

use std::time::{Duration, Instant};

use bytes::Bytes;
use keyway_tests::{Behaviour, FakeUpstream, Keyway, Provider, Setup};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Longest wait for something a correct Keyway does at once.
const PROMPTLY: Duration = Duration::from_secs(3);

/// The client-facing streaming APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Anthropic,
    OpenAiChat,
    OpenAiResponses,
    Gemini,
}

impl Api {
    fn provider(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic",
            Api::OpenAiChat | Api::OpenAiResponses => "openai",
            Api::Gemini => "google",
        }
    }

    /// Path (and query) of a streaming request.
    fn path(self) -> &'static str {
        match self {
            Api::Anthropic => "/v1/messages",
            Api::OpenAiChat => "/v1/chat/completions",
            Api::OpenAiResponses => "/v1/responses",
            Api::Gemini => "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        }
    }

    /// The exact bytes of a streaming request body.
    fn body(self) -> Bytes {
        let v = match self {
            Api::Anthropic => json!({
                "model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
                "messages": [{"role": "user", "content": "Count to five, slowly."}],
            }),
            Api::OpenAiChat => json!({
                "model": "gpt-4o", "stream": true,
                "messages": [{"role": "user", "content": "Count to five, slowly."}],
            }),
            Api::OpenAiResponses => {
                json!({"model": "gpt-5", "stream": true, "input": "Count to five, slowly."})
            }
            Api::Gemini => json!({
                "contents": [{"role": "user", "parts": [{"text": "Count to five, slowly."}]}],
            }),
        };
        Bytes::from(v.to_string())
    }

    /// A streaming request to `url` authenticated with `key` the way this API's SDK sends it.
    fn request(self, http: &reqwest::Client, url: String, key: &str) -> reqwest::RequestBuilder {
        let r = http
            .post(url)
            .header("content-type", "application/json")
            .body(self.body());
        match self {
            Api::Anthropic => r
                .header("x-api-key", key)
                .header("anthropic-version", "2023-06-01"),
            Api::OpenAiChat | Api::OpenAiResponses => r.bearer_auth(key),
            Api::Gemini => r.header("x-goog-api-key", key),
        }
    }

    /// The streaming request through Keyway.
    async fn send(self, keyway: &Keyway) -> reqwest::Response {
        self.request(&keyway.http, keyway.url(self.path()), &keyway.client_key)
            .send()
            .await
            .expect("request to keyway")
    }

    /// Whether `event` carries generated text (as opposed to the stream's opening and closing
    /// events).
    fn is_content(self, event: &str) -> bool {
        match self {
            Api::Anthropic => event_name(event) == Some("content_block_delta"),
            Api::OpenAiResponses => event_name(event) == Some("response.output_text.delta"),
            Api::OpenAiChat => data(event).is_some_and(|d| {
                d["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            }),
            Api::Gemini => data(event).is_some_and(|d| {
                d["candidates"][0]["content"]["parts"][0]["text"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            }),
        }
    }

    /// Whether `event` is this API's proper end of stream.
    fn is_end(self, event: &str) -> bool {
        match self {
            Api::Anthropic => event_name(event) == Some("message_stop"),
            Api::OpenAiResponses => event_name(event) == Some("response.completed"),
            Api::OpenAiChat => event.trim_end() == "data: [DONE]",
            Api::Gemini => {
                data(event).is_some_and(|d| d["candidates"][0]["finishReason"] == "STOP")
            }
        }
    }

    /// Asserts `event` is the error event this API's clients understand; returns its message.
    fn error_event(self, event: &str) -> String {
        let d = data(event).unwrap_or_else(|| panic!("{self:?}: no JSON data in {event:?}"));
        let text = |v: &Value| {
            v.as_str()
                .unwrap_or_else(|| panic!("{self:?}: no message in {event:?}"))
                .to_owned()
        };
        match self {
            Api::Anthropic => {
                assert_eq!(event_name(event), Some("error"), "{event:?}");
                assert_eq!(d["type"], "error", "{event:?}");
                assert!(d["error"]["type"].is_string(), "{event:?}");
                text(&d["error"]["message"])
            }
            Api::OpenAiResponses => {
                assert_eq!(event_name(event), Some("error"), "{event:?}");
                assert_eq!(d["type"], "error", "{event:?}");
                text(&d["message"])
            }
            Api::OpenAiChat => text(&d["error"]["message"]),
            Api::Gemini => {
                assert!(d["error"]["code"].is_u64(), "{event:?}");
                assert!(d["error"]["status"].is_string(), "{event:?}");
                text(&d["error"]["message"])
            }
        }
    }
}

/// The `event:` name of an SSE event.
fn event_name(event: &str) -> Option<&str> {
    event
        .lines()
        .find_map(|l| l.strip_prefix("event:"))
        .map(str::trim)
}

/// The `data:` of an SSE event as JSON.
fn data(event: &str) -> Option<Value> {
    event
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .and_then(|d| serde_json::from_str(d.trim()).ok())
}

/// Removes and returns the complete SSE events at the front of `buf` (LF or CRLF framing).
fn take_events(buf: &mut Vec<u8>) -> Vec<String> {
    let mut events = Vec::new();
    loop {
        let find = |sep: &[u8]| buf.windows(sep.len()).position(|w| w == sep);
        let end = match (find(b"\n\n"), find(b"\r\n\r\n")) {
            (Some(a), Some(b)) if b < a => b + 4,
            (Some(a), _) => a + 2,
            (None, Some(b)) => b + 4,
            (None, None) => return events,
        };
        let event: Vec<u8> = buf.drain(..end).collect();
        events.push(String::from_utf8(event).expect("UTF-8 event"));
    }
}

/// What a client read from a streamed response.
struct Read {
    /// Every byte, in order.
    bytes: Vec<u8>,
    /// Each complete event with the instant the chunk completing it arrived.
    events: Vec<(Instant, String)>,
}

/// Reads `r` chunk by chunk to its end (bounded), timing each event's arrival.
async fn read_stream(mut r: reqwest::Response) -> Read {
    let mut read = Read {
        bytes: Vec::new(),
        events: Vec::new(),
    };
    let mut pending = Vec::new();
    let all = async {
        while let Some(chunk) = r.chunk().await.expect("stream reads cleanly") {
            let now = Instant::now();
            read.bytes.extend_from_slice(&chunk);
            pending.extend_from_slice(&chunk);
            read.events
                .extend(take_events(&mut pending).into_iter().map(|e| (now, e)));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("the stream ends");
    assert!(
        pending.is_empty(),
        "bytes after the last complete event: {:?}",
        String::from_utf8_lossy(&pending)
    );
    read
}

/// Replaces the digits of per-answer ids (`…fake0000000000000001`) and timestamps
/// (`"created":…`), which differ between two otherwise identical answers of the fake.
fn mask_varying(s: &str) -> String {
    let mut s = s.to_owned();
    for marker in ["fake", "\"created\":", "\"created_at\":"] {
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(i) = rest.find(marker) {
            let (head, tail) = rest.split_at(i + marker.len());
            out.push_str(head);
            let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits > 0 {
                out.push('#');
            }
            rest = &tail[digits..];
        }
        out.push_str(rest);
        s = out;
    }
    s
}

/// A fake, and Keyway with one account (key `key-a`) of `api`'s provider, plus a second
/// (`key-b`) under a priority policy when `two` is set, so a failover would be possible.
async fn keyway_for(api: Api, two: bool, extra: &str) -> (FakeUpstream, Keyway) {
    let fake = FakeUpstream::start().await;
    let provider = api.provider();
    let upstream: Provider = provider.parse().expect("a built-in provider");
    fake.register_keys(upstream, ["key-a", "key-b"]);
    let setup = Setup::new(
        &fake.base_url(),
        &format!("{extra}\n[policies.{provider}]\nstrategy = \"priority\"\n"),
    );
    setup.add_account(provider, "A", "key-a").await;
    if two {
        setup.add_account(provider, "B", "key-b").await;
    }
    (fake, setup.start().await)
}

/// Polls until every account's `in_flight` is 0 (bounded).
async fn wait_no_requests_in_flight(keyway: &Keyway) {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let accounts = keyway.api_get("/accounts").await;
        if accounts
            .as_array()
            .expect("accounts")
            .iter()
            .all(|a| a["live"]["in_flight"] == 0)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "requests still in flight: {accounts}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Events pass through as they come, unchanged
// ---------------------------------------------------------------------------------------------

/// 5 content events 200 ms apart: each must reach the client before the fake emits the next,
/// and the client's bytes must be the upstream's bytes.
async fn relays_events_as_they_come(api: Api) {
    let (fake, keyway) = keyway_for(api, false, "").await;
    let interval = Duration::from_millis(200);
    fake.push(
        "key-a",
        Behaviour::Stream {
            events: 5,
            interval,
        },
    );
    // The same answer, unpaced, for the direct comparison below.
    fake.push(
        "key-a",
        Behaviour::Stream {
            events: 5,
            interval: Duration::ZERO,
        },
    );

    let r = api.send(&keyway).await;
    assert_eq!(r.status(), 200, "{api:?}");
    let content_type = r.headers()["content-type"].clone();
    assert!(
        content_type
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{api:?}: {content_type:?}"
    );
    let read = read_stream(r).await;

    let arrived: Vec<Instant> = read
        .events
        .iter()
        .filter(|(_, e)| api.is_content(e))
        .map(|(t, _)| *t)
        .collect();
    let emitted = fake.stream_event_times()[0].clone();
    assert_eq!(
        emitted.len(),
        5,
        "{api:?}: the fake emitted 5 content events"
    );
    assert_eq!(arrived.len(), 5, "{api:?}: the client got 5 content events");
    for i in 0..5 {
        assert!(arrived[i] >= emitted[i], "{api:?}: clocks agree");
        if i + 1 < 5 {
            assert!(
                arrived[i] < emitted[i + 1],
                "{api:?}: content event {i} arrived {:?} after it was emitted, after event {} \
                 was emitted: Keyway buffers",
                arrived[i] - emitted[i],
                i + 1
            );
        }
    }
    assert!(
        api.is_end(&read.events.last().expect("events").1),
        "{api:?}: proper end of stream"
    );

    // What Keyway forwarded is the client's body, untouched.
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.body,
        api.body(),
        "{api:?}: request body forwarded as is"
    );
    assert_eq!(sent.key.as_deref(), Some("key-a"));

    // Byte for byte what the upstream sends for this request when asked directly.
    let direct = api
        .request(&keyway.http, fake.url(api.path()), "key-a")
        .send()
        .await
        .expect("direct request to the fake");
    assert_eq!(direct.headers()["content-type"], content_type, "{api:?}");
    let direct = read_stream(direct).await;
    assert_eq!(
        mask_varying(&String::from_utf8(read.bytes).expect("UTF-8")),
        mask_varying(&String::from_utf8(direct.bytes).expect("UTF-8")),
        "{api:?}: the client's bytes differ from the upstream's"
    );
}

#[tokio::test]
async fn anthropic_events_reach_the_client_as_the_upstream_sends_them() {
    relays_events_as_they_come(Api::Anthropic).await;
}

#[tokio::test]
async fn openai_chat_chunks_reach_the_client_as_the_upstream_sends_them() {
    relays_events_as_they_come(Api::OpenAiChat).await;
}

#[tokio::test]
async fn openai_responses_events_reach_the_client_as_the_upstream_sends_them() {
    relays_events_as_they_come(Api::OpenAiResponses).await;
}

#[tokio::test]
async fn gemini_sse_chunks_reach_the_client_as_the_upstream_sends_them() {
    relays_events_as_they_come(Api::Gemini).await;
}

/// Framing a parser might "normalise" (comments, CRLF, multi-line data, an unknown event, no
/// trailing blank line) reaches the client exactly as sent.
#[tokio::test]
async fn unusual_sse_bytes_pass_through_exactly() {
    let (fake, keyway) = keyway_for(Api::Anthropic, false, "").await;
    let body = ": keep-alive comment\r\n\r\n\
                event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n\
                event: future_event_type\ndata: line one\ndata: line two — ünïcødé ✓\n\n\
                retry: 1000\n\n\
                event: message_stop\ndata: {\"type\":\"message_stop\"}";
    fake.push(
        "key-a",
        Behaviour::Raw {
            status: 200,
            headers: vec![
                (
                    "content-type".into(),
                    "text/event-stream; charset=utf-8".into(),
                ),
                ("x-upstream-header".into(), "kept".into()),
            ],
            body: body.into(),
        },
    );
    let r = Api::Anthropic.send(&keyway).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-upstream-header"], "kept");
    assert_eq!(r.bytes().await.expect("body"), body.as_bytes());
}

// ---------------------------------------------------------------------------------------------
// The upstream breaks mid-stream
// ---------------------------------------------------------------------------------------------

/// Two content events, then the upstream connection dies: the client keeps what it got, then
/// an error event in its API's format ends the stream, and no other account is tried.
async fn broken_stream_ends_with_an_error_event(api: Api) {
    let (fake, keyway) = keyway_for(api, true, "").await;
    fake.push("key-a", Behaviour::StreamThenDrop { events: 2 });

    let r = api.send(&keyway).await;
    assert_eq!(r.status(), 200, "{api:?}");
    let read = read_stream(r).await;
    let events: Vec<&str> = read.events.iter().map(|(_, e)| e.as_str()).collect();
    let content = events.iter().filter(|e| api.is_content(e)).count();
    assert_eq!(
        content, 2,
        "{api:?}: both content events arrived: {events:#?}"
    );
    assert!(
        !events.iter().any(|e| api.is_end(e)),
        "{api:?}: no fake end of stream: {events:#?}"
    );
    let last = events.last().expect("events");
    let message = api.error_event(last);
    assert!(
        message.to_lowercase().contains("upstream"),
        "{api:?}: the error says what happened: {message}"
    );
    assert_eq!(
        fake.keys_used(),
        ["key-a"],
        "{api:?}: no failover after the first byte"
    );
}

#[tokio::test]
async fn a_broken_anthropic_stream_ends_with_an_error_event() {
    broken_stream_ends_with_an_error_event(Api::Anthropic).await;
}

#[tokio::test]
async fn a_broken_openai_chat_stream_ends_with_an_error_chunk() {
    broken_stream_ends_with_an_error_event(Api::OpenAiChat).await;
}

#[tokio::test]
async fn a_broken_openai_responses_stream_ends_with_an_error_event() {
    broken_stream_ends_with_an_error_event(Api::OpenAiResponses).await;
}

#[tokio::test]
async fn a_broken_gemini_stream_ends_with_an_error_chunk() {
    broken_stream_ends_with_an_error_event(Api::Gemini).await;
}

/// A non-streamed JSON answer cut in the middle must reach the client as an incomplete
/// response (a transport error), never as a short body that looks complete.
#[tokio::test]
async fn a_broken_json_answer_reaches_the_client_as_incomplete() {
    let (fake, keyway) = keyway_for(Api::Anthropic, true, "").await;
    fake.push("key-a", Behaviour::StreamThenDrop { events: 0 });

    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200, "the headers had arrived");
    let body = tokio::time::timeout(PROMPTLY, r.bytes())
        .await
        .expect("the body ends");
    assert!(
        body.is_err(),
        "a cut JSON body was delivered as complete: {:?}",
        body.map(|b| String::from_utf8_lossy(&b).into_owned())
    );
    assert_eq!(fake.keys_used(), ["key-a"], "no failover after the headers");
}

// ---------------------------------------------------------------------------------------------
// The client goes away
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_leaving_before_the_answer_cancels_the_upstream_request() {
    // A first-byte timeout far beyond the wait below, so only the client's leaving can end
    // the upstream request in time.
    let limits = "[limits]\nfirst_byte_timeout_secs = 60\ndrain_secs = 5\n";
    let (fake, keyway) = keyway_for(Api::Anthropic, true, limits).await;
    fake.push("key-a", Behaviour::Hang);

    let request =
        Api::Anthropic.request(&keyway.http, keyway.url("/v1/messages"), &keyway.client_key);
    let client = tokio::spawn(request.send());
    tokio::time::timeout(PROMPTLY, fake.wait_for_requests(1))
        .await
        .expect("the request reached the upstream");
    client.abort();
    let _ = client.await;

    tokio::time::timeout(PROMPTLY, fake.wait_for_disconnects(1))
        .await
        .expect("Keyway closes the upstream request when its client leaves");
    wait_no_requests_in_flight(&keyway).await;
    assert_eq!(
        fake.keys_used(),
        ["key-a"],
        "no failover for a client that left"
    );
    let accounts = keyway.api_get("/accounts").await;
    for a in accounts.as_array().expect("accounts") {
        assert_eq!(
            a["live"]["state"], "serving",
            "a client leaving is no account failure: {a}"
        );
    }
}

#[tokio::test]
async fn a_client_leaving_mid_stream_cancels_the_upstream_stream() {
    let (fake, keyway) = keyway_for(Api::Anthropic, false, "").await;
    // 10 s of stream: far longer than the wait below.
    fake.push(
        "key-a",
        Behaviour::Stream {
            events: 100,
            interval: Duration::from_millis(100),
        },
    );

    let mut r = Api::Anthropic.send(&keyway).await;
    assert_eq!(r.status(), 200);
    let mut pending = Vec::new();
    let first = async {
        loop {
            let chunk = r.chunk().await.expect("read").expect("more stream");
            pending.extend_from_slice(&chunk);
            if take_events(&mut pending)
                .iter()
                .any(|e| Api::Anthropic.is_content(e))
            {
                return;
            }
        }
    };
    tokio::time::timeout(PROMPTLY, first)
        .await
        .expect("a first content event");
    drop(r);

    tokio::time::timeout(PROMPTLY, fake.wait_for_disconnects(1))
        .await
        .expect("Keyway stops the upstream stream when its client leaves");
    let emitted = fake.stream_event_times()[0].len();
    assert!(
        emitted < 100,
        "the upstream stream was cut short ({emitted} events)"
    );
    wait_no_requests_in_flight(&keyway).await;
}

// ---------------------------------------------------------------------------------------------
// A slow reader
// ---------------------------------------------------------------------------------------------

/// Keyway's resident memory now, KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Counts occurrences of a pattern in a byte stream read piece by piece.
struct Counter {
    pattern: &'static [u8],
    tail: Vec<u8>,
    count: usize,
}

impl Counter {
    fn new(pattern: &'static [u8]) -> Counter {
        Counter {
            pattern,
            tail: Vec::new(),
            count: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        // The previous piece's last bytes, so a match across two pieces counts once.
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(bytes);
        self.count += window
            .windows(self.pattern.len())
            .filter(|w| *w == self.pattern)
            .count();
        let keep = window.len().min(self.pattern.len() - 1);
        self.tail = window.split_off(window.len() - keep);
    }
}

/// The fake streams 128 MiB as fast as the connection takes it; the client reads through a
/// small socket buffer, a little at a time, then not at all for a while. Streaming is
/// pass-through, so back-pressure holds: the fake's stream stalls a few socket buffers ahead
/// of the client, and Keyway's memory stays within a bound far below the stream's size. A
/// Keyway that buffered the upstream body would let the fake run to its end and grow by it.
#[tokio::test]
async fn a_slow_reader_holds_the_upstream_back_and_keyway_memory_stays_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const EVENTS: usize = 512;
    const EVENT_BYTES: usize = 256 * 1024;
    /// Socket buffers (upstream send and receive, client send) and the stacks' own hold a few
    /// MiB each; the stream is 128 MiB.
    const BOUND_KIB: u64 = 48 * 1024;
    /// The fake's stream counts as held back when it sends nothing more for this long while
    /// the client reads nothing.
    const QUIET: Duration = Duration::from_millis(500);

    let (fake, keyway) = keyway_for(Api::Anthropic, false, "").await;
    let pid = keyway.pid();
    // Warm up: the first stream allocates what every stream will.
    let r = Api::Anthropic.send(&keyway).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.expect("warm-up stream");
    let baseline = rss_kib(pid);
    fake.push(
        "key-a",
        Behaviour::Bulk {
            events: EVENTS,
            bytes: EVENT_BYTES,
        },
    );
    let emitted = || fake.stream_event_times().last().map_or(0, Vec::len);

    // A client with a small receive buffer, speaking plain HTTP/1.1.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
    let mut conn = socket.connect(keyway.addr).await.expect("connect");
    let body = Api::Anthropic.body();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: {}\r\nx-api-key: {}\r\nanthropic-version: 2023-06-01\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        keyway.addr,
        keyway.client_key,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("send head");
    conn.write_all(&body).await.expect("send body");

    let mut buf = vec![0u8; 16 * 1024];
    let mut read = 0usize;
    let mut deltas = Counter::new(b"event: content_block_delta");
    let mut stop = Counter::new(b"event: message_stop");
    let mut peak = baseline;
    let mut take = async |conn: &mut tokio::net::TcpStream, peak: &mut u64| -> usize {
        let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf))
            .await
            .expect("the stream goes on")
            .expect("read");
        deltas.feed(&buf[..n]);
        stop.feed(&buf[..n]);
        *peak = (*peak).max(rss_kib(pid));
        n
    };

    // Slowly: 16 KiB every 10 ms, 1 MiB in all.
    while read < 1024 * 1024 {
        let n = take(&mut conn, &mut peak).await;
        assert!(n > 0, "the stream ended after {read} bytes");
        read += n;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Then not at all, until the fake has sent nothing for a while (or everything).
    let stalled = tokio::time::timeout(Duration::from_secs(60), async {
        let mut last = emitted();
        loop {
            tokio::time::sleep(QUIET).await;
            peak = peak.max(rss_kib(pid));
            let now = emitted();
            if now == last || now == EVENTS {
                return now;
            }
            last = now;
        }
    })
    .await
    .expect("the fake's stream stalls or ends");
    let ahead_kib = (stalled * EVENT_BYTES).saturating_sub(read) as u64 / 1024;
    let grown = peak.saturating_sub(baseline);
    eprintln!(
        "held back: the fake sent {stalled} of {EVENTS} events ({ahead_kib} KiB ahead of the \
         client's {read} B); Keyway grew by {grown} KiB from {baseline} KiB"
    );
    assert!(
        stalled < EVENTS,
        "the fake sent its whole stream ({EVENTS} events of {EVENT_BYTES} B) to a client that \
         read {read} B: nothing held it back (Keyway grew by {grown} KiB)"
    );
    assert!(
        ahead_kib < BOUND_KIB,
        "the fake got {ahead_kib} KiB ahead of the client ({stalled} events sent)"
    );
    assert!(
        grown < BOUND_KIB,
        "Keyway grew by {grown} KiB (baseline {baseline} KiB) while holding the stream back"
    );

    // The whole stream still arrives, intact, once the client reads on.
    loop {
        let n = take(&mut conn, &mut peak).await;
        if n == 0 {
            break;
        }
        read += n;
    }
    assert_eq!(deltas.count, EVENTS, "every content event arrived");
    assert_eq!(stop.count, 1, "the stream ended properly");
    assert_eq!(emitted(), EVENTS);
    let grown = peak.saturating_sub(baseline);
    assert!(
        grown < BOUND_KIB,
        "Keyway grew by {grown} KiB over the stream"
    );
    assert!(read > EVENTS * EVENT_BYTES, "{read} B read");
}
