//! Keyway's upstream connections over HTTPS and through an HTTP proxy, as a user behind a
//! corporate proxy or with a private CA configures them: which certificates Keyway trusts (the
//! built-in Mozilla roots plus the PEM file named by `SSL_CERT_FILE`), HTTP/2 when the upstream
//! offers it, the `CONNECT` tunnel through the proxy named by `HTTPS_PROXY` / `ALL_PROXY`
//! (with `Proxy-Authorization` from the proxy URL's credentials) except for `NO_PROXY` hosts,
//! plain `http://` upstreams reached directly whatever the proxy variables say, and what the
//! client gets when the certificate or the proxy fails: a 502 saying why, without the secrets.
//!
//! The upstream is the fake serving HTTPS with a certificate from a CA made for each test;
//! the proxy is a fake `CONNECT` proxy on loopback.

use std::time::{Duration, Instant};

use keyway_tests::{
    FakeConnectProxy, FakeUpstream, Keyway, ProxyConfig, ProxyMode, ProxyRequest, Setup, TestCa,
};
use serde_json::Value;

/// The account's API key at the fake.
const KEY: &str = "sk-ant-tls-account";

/// The proxy's password in the tests that use credentials.
const PASSWORD: &str = "secret-pw";

/// The model every request asks for.
const MODEL: &str = "claude-sonnet-4-5";

/// Variables that change how Keyway reaches upstreams; each test's Keyway starts without them
/// and gets only those the test sets.
const NETWORK_VARS: [&str; 10] = [
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// A setup for `fake` with none of [`NETWORK_VARS`] inherited, then `env` set, and one
/// Anthropic account ([`KEY`]) that the fake accepts. `extra` is [`Setup::new`]'s.
async fn setup(fake: &FakeUpstream, extra: &str, env: &[(&str, &str)]) -> Setup {
    let mut setup = Setup::new(&fake.base_url(), extra);
    for name in NETWORK_VARS {
        setup = setup.with_env(name, None);
    }
    for (name, value) in env {
        setup = setup.with_env(name, Some(std::ffi::OsStr::new(value)));
    }
    setup.add_accounts(fake, "anthropic", &[KEY]).await;
    setup
}

/// A TLS fake with a new test CA, the CA written as a PEM file into a temp dir (kept alive by
/// the returned guard), and the file's path.
async fn tls_fake() -> (FakeUpstream, tempfile::TempDir, String) {
    let ca = TestCa::new();
    let fake = FakeUpstream::start_tls(ca.localhost_identity()).await;
    let dir = tempfile::tempdir().expect("temp dir for the CA file");
    let path = ca.write_pem(dir.path()).expect("write the CA's PEM file");
    let path = path.to_str().expect("a UTF-8 temp path").to_owned();
    (fake, dir, path)
}

/// Status, headers (as `name: value` lines) and body of a response.
async fn read(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes())))
        .collect::<Vec<_>>()
        .join("\n");
    let body = r.text().await.expect("response body");
    (status, headers, body)
}

/// Sends a plain Anthropic request, bounded so that a Keyway that never answers fails the
/// test instead of hanging it; status, headers and body.
async fn ask(keyway: &Keyway) -> (u16, String, String) {
    let r = tokio::time::timeout(Duration::from_secs(60), keyway.anthropic(MODEL))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "Keyway did not answer within 60 s; its log:\n{}",
                keyway.logs()
            )
        });
    read(r).await
}

/// Asserts a 200 whose Anthropic answer is the fake's for [`KEY`].
fn assert_served(keyway: &Keyway, status: u16, body: &str) {
    assert_eq!(
        status,
        200,
        "body: {body}\nKeyway's log:\n{}",
        keyway.logs()
    );
    let json: Value = serde_json::from_str(body).expect("a JSON answer");
    assert_eq!(
        json["content"][0]["text"],
        format!("served by {KEY}"),
        "the fake's answer: {body}"
    );
}

/// The error message of a 502 in Anthropic's error shape.
fn bad_gateway_message(keyway: &Keyway, status: u16, body: &str) -> String {
    assert_eq!(
        status,
        502,
        "body: {body}\nKeyway's log:\n{}",
        keyway.logs()
    );
    let json: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("the 502 is not JSON ({e}): {body}"));
    assert_eq!(json["type"], "error", "Anthropic's error shape: {body}");
    json["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {body}"))
        .to_owned()
}

/// Asserts that none of `secrets` is in the response (headers or body) or in Keyway's log.
fn assert_not_leaked(keyway: &Keyway, headers: &str, body: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !headers.contains(secret),
            "the secret `{secret}` is in the response headers:\n{headers}"
        );
        assert!(
            !body.contains(secret),
            "the secret `{secret}` is in the response body: {body}"
        );
    }
    assert_not_logged(keyway, secrets);
}

/// Asserts that none of `secrets` is in Keyway's log. (The account key of a served request
/// is in the fake's answer, `served by <key>`, so only the log is checked for it then.)
fn assert_not_logged(keyway: &Keyway, secrets: &[&str]) {
    let logs = keyway.logs();
    for secret in secrets {
        assert!(
            !logs.contains(secret),
            "the secret `{secret}` is in Keyway's log:\n{logs}"
        );
    }
}

/// The text of an Anthropic stream's `text_delta`s, in order.
fn streamed_text(sse: &str) -> String {
    sse.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter(|event| event["type"] == "content_block_delta")
        .filter_map(|event| event["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_upstream_with_a_certificate_from_the_ssl_cert_file_ca_is_reached_over_http2() {
    let (fake, _ca_dir, ca_file) = tls_fake().await;
    let keyway = setup(&fake, "", &[("SSL_CERT_FILE", &ca_file)])
        .await
        .start()
        .await;

    let (status, _, body) = ask(&keyway).await;
    assert_served(&keyway, status, &body);

    let r = keyway.anthropic_stream(MODEL).await;
    let (status, headers, sse) = read(r).await;
    assert_eq!(status, 200, "body: {sse}\nKeyway's log:\n{}", keyway.logs());
    assert!(
        headers.contains("content-type: text/event-stream"),
        "a stream:\n{headers}"
    );
    let text = streamed_text(&sse);
    assert!(
        text.starts_with(&format!("served by {KEY}")),
        "the fake's streamed text, got `{text}` from:\n{sse}"
    );
    assert!(
        sse.contains("event: message_stop"),
        "the stream ends properly:\n{sse}"
    );

    let sent = fake.requests();
    assert_eq!(sent.len(), 2, "both requests reached the fake");
    for r in &sent {
        assert_eq!(
            r.version,
            http::Version::HTTP_2,
            "Keyway negotiated HTTP/2 with an upstream offering it ({} {})",
            r.method,
            r.path
        );
        assert_eq!(r.key.as_deref(), Some(KEY));
    }
}

#[tokio::test]
async fn an_upstream_certificate_from_an_unknown_ca_is_a_502_naming_the_certificate() {
    let (fake, _ca_dir, _ca_file) = tls_fake().await;
    // Only the built-in roots: the test CA is not among them.
    let keyway = setup(&fake, "", &[]).await.start().await;

    let (status, headers, body) = ask(&keyway).await;
    let message = bad_gateway_message(&keyway, status, &body);
    assert!(
        message.to_lowercase().contains("certificate"),
        "the reason names the certificate: {message}\nKeyway's log:\n{}",
        keyway.logs()
    );
    assert!(
        fake.requests().is_empty(),
        "no request may be sent over a connection to an untrusted server"
    );
    assert_not_leaked(&keyway, &headers, &body, &[KEY]);
}

// ---------------------------------------------------------------------------------------------
// Through a proxy
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn https_proxy_with_credentials_tunnels_to_the_upstream_without_leaking_the_password() {
    let (fake, _ca_dir, ca_file) = tls_fake().await;
    let proxy = FakeConnectProxy::start_with(ProxyConfig {
        credentials: Some(("user".to_owned(), PASSWORD.to_owned())),
        mode: ProxyMode::Tunnel,
    })
    .await
    .expect("start the proxy");
    let proxy_url = proxy.url_with_credentials("user", PASSWORD);
    let keyway = setup(
        &fake,
        "",
        &[("SSL_CERT_FILE", &ca_file), ("HTTPS_PROXY", &proxy_url)],
    )
    .await
    .start()
    .await;

    let (status, headers, body) = ask(&keyway).await;
    assert_served(&keyway, status, &body);
    assert_eq!(
        proxy.requests(),
        [ProxyRequest {
            method: "CONNECT".to_owned(),
            target: format!("localhost:{}", fake.addr().port()),
            authorization: Some(FakeConnectProxy::basic("user", PASSWORD)),
            status: Some(200),
        }],
        "one tunnel to the upstream, authenticated with the proxy URL's credentials"
    );
    assert_eq!(
        fake.requests().len(),
        1,
        "the request went through the tunnel"
    );
    let basic = FakeConnectProxy::basic("user", PASSWORD);
    assert_not_leaked(&keyway, &headers, &body, &[PASSWORD, &basic]);
    assert_not_logged(&keyway, &[KEY]);
}

#[tokio::test]
async fn all_proxy_alone_tunnels_https_upstreams() {
    let (fake, _ca_dir, ca_file) = tls_fake().await;
    let proxy = FakeConnectProxy::start().await;
    let keyway = setup(
        &fake,
        "",
        &[("SSL_CERT_FILE", &ca_file), ("ALL_PROXY", &proxy.url())],
    )
    .await
    .start()
    .await;

    let (status, _, body) = ask(&keyway).await;
    assert_served(&keyway, status, &body);
    let targets: Vec<_> = proxy
        .requests()
        .into_iter()
        .map(|r| (r.method, r.target, r.authorization))
        .collect();
    assert_eq!(
        targets,
        [(
            "CONNECT".to_owned(),
            format!("localhost:{}", fake.addr().port()),
            None
        )],
        "ALL_PROXY names the proxy when HTTPS_PROXY is not set; no credentials, no header"
    );
}

#[tokio::test]
async fn a_no_proxy_host_is_reached_directly() {
    let (fake, _ca_dir, ca_file) = tls_fake().await;
    let proxy = FakeConnectProxy::start().await;
    let keyway = setup(
        &fake,
        "",
        &[
            ("SSL_CERT_FILE", &ca_file),
            ("HTTPS_PROXY", &proxy.url()),
            ("NO_PROXY", "localhost"),
        ],
    )
    .await
    .start()
    .await;

    let (status, _, body) = ask(&keyway).await;
    assert_served(&keyway, status, &body);
    assert_eq!(
        proxy.connections(),
        0,
        "NO_PROXY=localhost: the proxy must see nothing, saw {:?}",
        proxy.requests()
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_proxy_refusing_the_tunnel_is_a_502_naming_the_proxy() {
    let (fake, _ca_dir, ca_file) = tls_fake().await;
    let proxy = FakeConnectProxy::start_with(ProxyConfig {
        credentials: None,
        mode: ProxyMode::Refuse,
    })
    .await
    .expect("start the proxy");
    let proxy_url = proxy.url_with_credentials("user", PASSWORD);
    // The lowercase spelling, as curl and most tools read it.
    let keyway = setup(
        &fake,
        "",
        &[("SSL_CERT_FILE", &ca_file), ("https_proxy", &proxy_url)],
    )
    .await
    .start()
    .await;

    let (status, headers, body) = ask(&keyway).await;
    let message = bad_gateway_message(&keyway, status, &body);
    assert!(
        message.to_lowercase().contains("proxy"),
        "the reason names the proxy: {message}\nKeyway's log:\n{}",
        keyway.logs()
    );
    let seen = proxy.requests();
    assert!(
        !seen.is_empty() && seen.iter().all(|r| r.status == Some(403)),
        "Keyway asked the proxy (https_proxy) and was refused: {seen:?}"
    );
    assert!(fake.requests().is_empty(), "nothing reached the upstream");
    let basic = FakeConnectProxy::basic("user", PASSWORD);
    assert_not_leaked(&keyway, &headers, &body, &[PASSWORD, &basic, KEY]);
}

#[tokio::test]
async fn wrong_proxy_credentials_are_a_502_naming_the_proxy_without_the_password() {
    let (fake, _ca_dir, ca_file) = tls_fake().await;
    let proxy = FakeConnectProxy::start_with(ProxyConfig {
        credentials: Some(("user".to_owned(), "the-right-pw".to_owned())),
        mode: ProxyMode::Tunnel,
    })
    .await
    .expect("start the proxy");
    let proxy_url = proxy.url_with_credentials("user", PASSWORD);
    let keyway = setup(
        &fake,
        "",
        &[("SSL_CERT_FILE", &ca_file), ("HTTPS_PROXY", &proxy_url)],
    )
    .await
    .start()
    .await;

    let (status, headers, body) = ask(&keyway).await;
    let message = bad_gateway_message(&keyway, status, &body);
    assert!(
        message.to_lowercase().contains("proxy"),
        "the reason names the proxy: {message}\nKeyway's log:\n{}",
        keyway.logs()
    );
    let seen = proxy.requests();
    assert!(
        !seen.is_empty()
            && seen.iter().all(|r| r.status == Some(407)
                && r.authorization.as_deref()
                    == Some(FakeConnectProxy::basic("user", PASSWORD).as_str())),
        "Keyway sent the URL's credentials and got 407: {seen:?}"
    );
    assert!(fake.requests().is_empty(), "nothing reached the upstream");
    let basic = FakeConnectProxy::basic("user", PASSWORD);
    assert_not_leaked(&keyway, &headers, &body, &[PASSWORD, &basic, KEY]);
}

#[tokio::test]
async fn a_proxy_that_never_answers_the_connect_ends_in_a_502_within_the_timeouts() {
    let (fake, _ca_dir, ca_file) = tls_fake().await;
    let proxy = FakeConnectProxy::start_with(ProxyConfig {
        credentials: None,
        mode: ProxyMode::Silent,
    })
    .await
    .expect("start the proxy");
    let limits =
        "[limits]\nconnect_timeout_secs = 2\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\n";
    let keyway = setup(
        &fake,
        limits,
        &[("SSL_CERT_FILE", &ca_file), ("HTTPS_PROXY", &proxy.url())],
    )
    .await
    .start()
    .await;

    let started = Instant::now();
    let (status, headers, body) = ask(&keyway).await;
    let took = started.elapsed();
    let message = bad_gateway_message(&keyway, status, &body);
    assert!(
        message.contains("timed out"),
        "the reason says the connection timed out: {message}"
    );
    assert!(
        took < Duration::from_secs(30),
        "with a 2 s connect and 5 s first-byte timeout the request took {took:?}"
    );
    let seen = proxy.requests();
    assert!(
        !seen.is_empty() && seen.iter().all(|r| r.method == "CONNECT"),
        "Keyway's CONNECT reached the silent proxy: {seen:?}"
    );
    assert!(fake.requests().is_empty(), "nothing reached the upstream");
    assert_not_leaked(&keyway, &headers, &body, &[KEY]);
}

#[tokio::test]
async fn a_plain_http_upstream_is_reached_directly_whatever_the_proxy_variables_say() {
    let fake = FakeUpstream::start().await;
    let proxy = FakeConnectProxy::start().await;
    let url = proxy.url();
    let keyway = setup(
        &fake,
        "",
        &[
            ("HTTP_PROXY", &url),
            ("http_proxy", &url),
            ("ALL_PROXY", &url),
            ("all_proxy", &url),
        ],
    )
    .await
    .start()
    .await;

    let (status, _, body) = ask(&keyway).await;
    assert_served(&keyway, status, &body);
    assert_eq!(
        proxy.connections(),
        0,
        "an http:// upstream must not go through the proxy; it saw {:?}",
        proxy.requests()
    );
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.requests()[0].version, http::Version::HTTP_11);
}

#[tokio::test]
async fn an_unusable_ssl_cert_file_is_reported_and_the_built_in_roots_still_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("not-a-bundle.pem");
    std::fs::write(&garbage, "this is not a certificate\n").expect("write the file");
    let missing = dir.path().join("missing.pem");
    for (file, said) in [
        (&garbage, "no usable certificate"),
        (&missing, "cannot read it"),
    ] {
        let file = file.to_str().expect("a UTF-8 temp path");
        // A plain upstream needs no certificate: Keyway starts and serves as before.
        let fake = FakeUpstream::start().await;
        let keyway = setup(&fake, "", &[("SSL_CERT_FILE", file)])
            .await
            .start()
            .await;
        let (status, _, body) = ask(&keyway).await;
        assert_served(&keyway, status, &body);
        let logs = keyway.logs();
        assert!(
            logs.contains("SSL_CERT_FILE") && logs.contains(file) && logs.contains(said),
            "the log names the variable, the file and what is wrong with it ({said}):\n{logs}"
        );
        // And an upstream whose certificate only a good file would vouch for is refused.
        let (tls, _ca_dir, _ca_file) = tls_fake().await;
        let keyway = setup(&tls, "", &[("SSL_CERT_FILE", file)])
            .await
            .start()
            .await;
        let (status, _, body) = ask(&keyway).await;
        let message = bad_gateway_message(&keyway, status, &body);
        assert!(
            message.contains("certificate"),
            "only the built-in roots are trusted: {message}"
        );
    }
}
