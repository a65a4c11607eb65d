//! Self-tests of the TLS fake and the fake `CONNECT` proxy, driven by reqwest over loopback.

use serde_json::{Value, json};

use super::{
    FakeConnectProxy, FakeUpstream, Provider, ProxyConfig, ProxyMode, ProxyRequest, TestCa,
};

/// A client trusting `ca` (and the built-in roots), no proxy unless `proxy` is given.
fn client(ca: &TestCa, http1: bool, proxy: Option<reqwest::Proxy>) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("the CA's PEM");
    let mut builder = reqwest::Client::builder().add_root_certificate(root);
    builder = match proxy {
        Some(proxy) => builder.proxy(proxy),
        None => builder.no_proxy(),
    };
    if http1 {
        builder = builder.http1_only();
    }
    builder.build().expect("reqwest client")
}

async fn messages(client: &reqwest::Client, fake: &FakeUpstream, key: &str) -> (u16, Value) {
    let r = client
        .post(fake.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("request to the TLS fake");
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON answer"))
}

#[tokio::test]
async fn a_tls_fake_answers_over_http2_and_http1_and_records_the_version() {
    let ca = TestCa::new();
    let fake = FakeUpstream::start_tls(ca.localhost_identity()).await;
    assert_eq!(
        fake.base_url(),
        format!("https://localhost:{}", fake.addr().port())
    );
    fake.register_key(Provider::Anthropic, "sk-ant-tls");

    let (status, body) = messages(&client(&ca, false, None), &fake, "sk-ant-tls").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"][0]["text"], "served by sk-ant-tls");
    let (status, body) = messages(&client(&ca, true, None), &fake, "sk-ant-tls").await;
    assert_eq!(status, 200, "{body}");

    let versions: Vec<_> = fake.requests().iter().map(|r| r.version).collect();
    assert_eq!(
        versions,
        [http::Version::HTTP_2, http::Version::HTTP_11],
        "h2 when offered, HTTP/1.1 when not"
    );
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_test_ca_is_refused() {
    let ca = TestCa::new();
    let fake = FakeUpstream::start_tls(ca.localhost_identity()).await;
    let plain = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let e = plain
        .get(fake.url("/v1/models"))
        .send()
        .await
        .expect_err("an unknown issuer is not trusted");
    let chain = format!("{:?}", e);
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn the_plain_fake_records_http1() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-plain");
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(fake.url("/v1/messages"))
        .header("x-api-key", "sk-ant-plain")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "m", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(fake.requests()[0].version, http::Version::HTTP_11);
}

#[tokio::test]
async fn the_proxy_tunnels_with_the_right_credentials_only() {
    let ca = TestCa::new();
    let fake = FakeUpstream::start_tls(ca.localhost_identity()).await;
    fake.register_key(Provider::Anthropic, "sk-ant-tls");
    let proxy = FakeConnectProxy::start_with(ProxyConfig {
        credentials: Some(("user".into(), "pw".into())),
        mode: ProxyMode::Tunnel,
    })
    .await
    .expect("proxy");

    let good = reqwest::Proxy::https(proxy.url_with_credentials("user", "pw")).expect("proxy");
    let (status, body) = messages(&client(&ca, false, Some(good)), &fake, "sk-ant-tls").await;
    assert_eq!(status, 200, "{body}");
    let target = format!("localhost:{}", fake.addr().port());
    assert_eq!(
        proxy.requests(),
        [ProxyRequest {
            method: "CONNECT".into(),
            target: target.clone(),
            authorization: Some(FakeConnectProxy::basic("user", "pw")),
            status: Some(200),
        }]
    );
    assert_eq!(
        fake.requests().len(),
        1,
        "the request went through the tunnel"
    );

    let bad = reqwest::Proxy::https(proxy.url_with_credentials("user", "nope")).expect("proxy");
    let e = client(&ca, false, Some(bad))
        .get(fake.url("/v1/models"))
        .send()
        .await
        .expect_err("a refused tunnel fails the request");
    proxy.wait_for_requests(2).await;
    assert_eq!(proxy.requests()[1].status, Some(407), "{e:?}");
    assert_eq!(fake.requests().len(), 1, "nothing reached the fake");
}

#[tokio::test]
async fn a_refusing_proxy_answers_403_and_a_silent_one_nothing() {
    let refusing = FakeConnectProxy::start_with(ProxyConfig {
        mode: ProxyMode::Refuse,
        ..ProxyConfig::default()
    })
    .await
    .expect("proxy");
    let reply = raw_connect(refusing.addr(), "localhost:1").await;
    assert!(reply.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{reply}");
    assert_eq!(refusing.requests()[0].status, Some(403));

    let silent = FakeConnectProxy::start_with(ProxyConfig {
        mode: ProxyMode::Silent,
        ..ProxyConfig::default()
    })
    .await
    .expect("proxy");
    let mut conn = tokio::net::TcpStream::connect(silent.addr())
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(b"CONNECT localhost:1 HTTP/1.1\r\nHost: localhost:1\r\n\r\n")
        .await
        .expect("send");
    silent.wait_for_requests(1).await;
    assert_eq!(silent.requests()[0].status, None);
    let mut buf = [0u8; 16];
    let read =
        tokio::time::timeout(std::time::Duration::from_millis(300), conn.read(&mut buf)).await;
    assert!(read.is_err(), "the silent proxy answered: {read:?}");
    assert_eq!(silent.connections(), 1);
}

/// Sends a `CONNECT target` head to `proxy` and reads the answer to the end.
async fn raw_connect(proxy: std::net::SocketAddr, target: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    let head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    conn.write_all(head.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("the proxy answers and closes")
    .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}
