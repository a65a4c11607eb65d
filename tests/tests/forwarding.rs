//! What the upstream receives besides auth: the client's own request, minus what belongs to
//! the client's connection to Keyway — its `Host`, a browser `Origin`, the client key in any of
//! its headers, and hop-by-hop headers (RFC 9110 §7.6.1, including those the client's
//! `Connection` header names). Everything else arrives as the client sent it.

use std::time::Duration;

use keyway_tests::{FakeUpstream, Keyway, Provider, Recorded, Setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `head` (request line and headers, CRLF-separated, without the blank line) and `body`
/// to Keyway on a new connection, exactly as written; the status of the answer.
async fn raw(keyway: &Keyway, head: &str, body: &str) -> u16 {
    let mut conn = tokio::net::TcpStream::connect(keyway.addr)
        .await
        .expect("connect");
    let request = format!("{head}\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer))
        .await
        .expect("Keyway answers and closes")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

/// Headers a client's connection to Keyway carries and no upstream may see.
const CONNECTION_HEADERS: [&str; 9] = [
    "origin",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "x-hop-secret",
];

/// The headers every request below sends besides its auth: connection-level ones (one of
/// them, `x-hop-secret`, hop-by-hop only because `Connection` names it) and the client's own.
fn client_headers(keyway: &Keyway) -> String {
    let own = keyway.addr;
    [
        format!("host: {own}"),
        // Keyway's own origin: the guard lets it through (the dashboard is such a page).
        format!("origin: http://{own}"),
        "connection: close, x-hop-secret".to_owned(),
        "x-hop-secret: for-keyway-only".to_owned(),
        "keep-alive: timeout=5".to_owned(),
        "te: trailers".to_owned(),
        "proxy-authorization: Basic a2V5d2F5OnByb3h5".to_owned(),
        "proxy-connection: keep-alive".to_owned(),
        "user-agent: my-tool/1.2".to_owned(),
        "x-client-marker: kept".to_owned(),
        "content-type: application/json".to_owned(),
    ]
    .join("\r\n")
}

/// The one recorded request, checked for what must not and what must arrive.
fn assert_clean(sent: &Recorded, fake: &FakeUpstream, client_key: &str, body: &str) {
    assert_eq!(
        sent.header("host"),
        Some(fake.addr().to_string().as_str()),
        "the upstream's own Host"
    );
    for name in CONNECTION_HEADERS {
        assert_eq!(
            sent.header(name),
            None,
            "{name} reached the upstream: {sent:?}"
        );
    }
    for (name, value) in &sent.headers {
        assert!(
            !value.contains(client_key),
            "the client key reached the upstream in {name}"
        );
    }
    assert_eq!(sent.header("user-agent"), Some("my-tool/1.2"));
    assert_eq!(sent.header("x-client-marker"), Some("kept"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.body, body.as_bytes(), "the body byte for byte");
}

#[tokio::test]
async fn the_upstream_gets_the_clients_request_without_its_connection_and_key() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-account");
    fake.register_key(Provider::OpenAi, "sk-oai-account");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-ant-account").await;
    setup.add_account("openai", "O", "sk-oai-account").await;
    let keyway = setup.start().await;
    let key = keyway.client_key.clone();
    let common = client_headers(&keyway);

    // Anthropic, the client key in both of the headers Anthropic SDKs use.
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\n{common}\r\nx-api-key: {key}\r\nauthorization: Bearer {key}\r\n\
         anthropic-version: 2023-06-01\r\nanthropic-beta: tools-2024-04-04"
    );
    assert_eq!(raw(&keyway, &head, body).await, 200);
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert_clean(&sent[0], &fake, &key, body);
    assert_eq!(sent[0].header("x-api-key"), Some("sk-ant-account"));
    assert_eq!(
        sent[0].header("authorization"),
        None,
        "API keys go in x-api-key"
    );
    assert_eq!(sent[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent[0].header("anthropic-beta"), Some("tools-2024-04-04"));

    // OpenAI, the client key as a bearer and (as some tools add) x-goog-api-key too.
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\n{common}\r\nauthorization: Bearer {key}\r\n\
         x-goog-api-key: {key}\r\nopenai-organization: org-client"
    );
    assert_eq!(raw(&keyway, &head, body).await, 200);
    let sent = fake.requests();
    assert_eq!(sent.len(), 2);
    assert_clean(&sent[1], &fake, &key, body);
    assert_eq!(
        sent[1].header("authorization"),
        Some("Bearer sk-oai-account")
    );
    assert_eq!(sent[1].header("x-goog-api-key"), None);
    assert_eq!(sent[1].header("openai-organization"), Some("org-client"));
}
