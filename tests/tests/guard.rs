//! The guard in front of every route, through the real proxy: the client key, the Host and
//! Origin checks against DNS rebinding and cross-site use, no permissive CORS, the body size
//! limit, the management token, and the refusal to listen beyond loopback by accident.

use std::process::Stdio;
use std::time::Duration;

use keyway_tests::{FakeUpstream, Keyway, Provider, Setup, harness::keyway_bin};
use reqwest::header::HOST;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The client-facing APIs, each called the way its SDK calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Anthropic,
    OpenAiChat,
    OpenAiResponses,
    Gemini,
}

impl Api {
    const ALL: [Api; 4] = [
        Api::Anthropic,
        Api::OpenAiChat,
        Api::OpenAiResponses,
        Api::Gemini,
    ];

    fn path(self) -> &'static str {
        match self {
            Api::Anthropic => "/v1/messages",
            Api::OpenAiChat => "/v1/chat/completions",
            Api::OpenAiResponses => "/v1/responses",
            Api::Gemini => "/v1beta/models/gemini-2.5-pro:generateContent",
        }
    }

    /// A valid request body whose prompt is `prompt`.
    fn body(self, prompt: &str) -> Value {
        match self {
            Api::Anthropic => json!({
                "model": "claude-sonnet-4-5", "max_tokens": 16,
                "messages": [{"role": "user", "content": prompt}],
            }),
            Api::OpenAiChat => json!({
                "model": "gpt-4o", "messages": [{"role": "user", "content": prompt}],
            }),
            Api::OpenAiResponses => json!({"model": "gpt-5", "input": prompt}),
            Api::Gemini => json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}]}),
        }
    }

    /// A request with `key` (if any) in this SDK's header.
    fn request(self, keyway: &Keyway, key: Option<&str>, prompt: &str) -> reqwest::RequestBuilder {
        self.request_on(&keyway.http, keyway, key, prompt)
    }

    /// [`Api::request`] sent with the client `http`.
    fn request_on(
        self,
        http: &reqwest::Client,
        keyway: &Keyway,
        key: Option<&str>,
        prompt: &str,
    ) -> reqwest::RequestBuilder {
        let r = http.post(keyway.url(self.path())).json(&self.body(prompt));
        let r = match self {
            Api::Anthropic => r.header("anthropic-version", "2023-06-01"),
            _ => r,
        };
        let Some(key) = key else { return r };
        match self {
            Api::Anthropic => r.header("x-api-key", key),
            Api::OpenAiChat | Api::OpenAiResponses => r.bearer_auth(key),
            Api::Gemini => r.header("x-goog-api-key", key),
        }
    }

    /// Asserts `body` is an error in this API's shape for `status`; returns its kind
    /// (Anthropic `error.type`, OpenAI `error.code` or `error.type`, Gemini `error.status`)
    /// and message.
    fn error(self, status: u16, body: &Value) -> (String, String) {
        let e = &body["error"];
        let message = e["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{self:?}: no error.message in {body}"))
            .to_owned();
        let kind = match self {
            Api::Anthropic => {
                assert_eq!(body["type"], "error", "Anthropic error shape: {body}");
                &e["type"]
            }
            Api::OpenAiChat | Api::OpenAiResponses => {
                assert!(e["type"].is_string(), "OpenAI error shape: {body}");
                if e["code"].is_string() {
                    &e["code"]
                } else {
                    &e["type"]
                }
            }
            Api::Gemini => {
                assert_eq!(e["code"], status, "Gemini error shape: {body}");
                &e["status"]
            }
        };
        let kind = kind
            .as_str()
            .unwrap_or_else(|| panic!("{self:?}: no error kind in {body}"))
            .to_owned();
        (kind, message)
    }

    /// The kind [`Api::error`] returns for `status`, as each SDK expects it.
    fn expected_kind(self, status: u16) -> &'static str {
        match (self, status) {
            (Api::Anthropic, 401) => "authentication_error",
            (Api::Anthropic, 403) => "permission_error",
            (Api::Anthropic, 413) => "request_too_large",
            (Api::OpenAiChat | Api::OpenAiResponses, 401) => "invalid_api_key",
            (Api::OpenAiChat | Api::OpenAiResponses, 403 | 413) => "invalid_request_error",
            (Api::Gemini, 401) => "UNAUTHENTICATED",
            (Api::Gemini, 403) => "PERMISSION_DENIED",
            (Api::Gemini, 413) => "INVALID_ARGUMENT",
            _ => panic!("no expectation for {self:?} {status}"),
        }
    }
}

/// Asserts a response grants no cross-origin access.
fn assert_no_cors(r: &reqwest::Response) {
    let granted: Vec<_> = r
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-allow-"))
        .collect();
    assert!(
        granted.is_empty(),
        "CORS headers {granted:?} on {} {}",
        r.status(),
        r.url()
    );
}

/// Asserts `r` is `status` with an error of `api`'s shape and kind; returns the message.
async fn expect_error(api: Api, r: reqwest::Response, status: u16) -> String {
    assert_no_cors(&r);
    let got = r.status().as_u16();
    let text = r.text().await.expect("body");
    assert_eq!(got, status, "{api:?}: {text}");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{api:?}: not JSON ({e}): {text}"));
    let (kind, message) = api.error(status, &body);
    assert_eq!(kind, api.expected_kind(status), "{api:?}: {body}");
    message
}

/// A fake, and Keyway with one account per provider pointing at it.
async fn keyway_with_accounts(extra: &str) -> (FakeUpstream, Keyway) {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant");
    fake.register_key(Provider::OpenAi, "sk-oa");
    fake.register_key(Provider::Google, "sk-goog");
    let setup = Setup::new(&fake.base_url(), extra);
    setup.add_account("anthropic", "A", "sk-ant").await;
    setup.add_account("openai", "O", "sk-oa").await;
    setup.add_account("google", "G", "sk-goog").await;
    (fake, setup.start().await)
}

/// `keyway --headless <args>` with `setup`'s environment, until it prints a line containing
/// `until` (bounded); returns the stdout lines so far and the running child, whose output
/// keeps being drained. Panics with its stderr if it exits first.
async fn headless(
    setup: &Setup,
    args: &[&str],
    until: &str,
) -> (Vec<String>, tokio::process::Child) {
    let mut child = Command::new(keyway_bin())
        .env("KEYWAY_CONFIG", &setup.config_path)
        .env("KEYWAY_DATA_DIR", setup.data_dir())
        .env("KEYWAY_KEYRING_SERVICE", &setup.keyring_service)
        .env_remove("RUST_LOG")
        .arg("--headless")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn keyway");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let stderr = tokio::spawn(async move {
        let mut all = String::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let found = line.contains(until);
            seen.push(line);
            if found {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or_else(|_| panic!("keyway neither printed {until:?} nor exited: {seen:?}"));
    if !found {
        let status = child.wait().await.expect("wait");
        let stderr = stderr.await.unwrap_or_default();
        panic!("keyway exited ({status}) without printing {until:?}: {seen:?}\n{stderr}");
    }
    // Keep reading so the child never writes into a closed or full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (seen, child)
}

/// SIGTERM `child` and wait (bounded) for its exit code.
async fn terminate(mut child: tokio::process::Child) -> Option<i32> {
    let pid = child.id().expect("running").to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(status.success());
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait")
        .code()
}

// ---------------------------------------------------------------------------------------------
// Client key
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_missing_or_wrong_client_key_is_a_401_in_each_surface_shape() {
    let (fake, keyway) = keyway_with_accounts("").await;
    for api in Api::ALL {
        let message = expect_error(
            api,
            api.request(&keyway, None, "hi").send().await.unwrap(),
            401,
        )
        .await;
        assert!(message.contains("keyway client-key"), "{api:?}: {message}");

        let wrong = api
            .request(&keyway, Some("kw-wrong"), "hi")
            .send()
            .await
            .unwrap();
        let message = expect_error(api, wrong, 401).await;
        assert!(message.contains("keyway client-key"), "{api:?}: {message}");

        // A key one character short of the right one.
        let short = &keyway.client_key[..keyway.client_key.len() - 1];
        let r = api
            .request(&keyway, Some(short), "hi")
            .send()
            .await
            .unwrap();
        expect_error(api, r, 401).await;
    }
    // Gemini clients may put the key in the query string.
    let r = keyway
        .http
        .post(keyway.url("/v1beta/models/gemini-2.5-pro:generateContent?key=kw-wrong"))
        .json(&Api::Gemini.body("hi"))
        .send()
        .await
        .unwrap();
    expect_error(Api::Gemini, r, 401).await;
    assert!(fake.requests().is_empty(), "nothing reached an upstream");

    // The right key in each SDK's header is served.
    for api in Api::ALL {
        let r = api
            .request(&keyway, Some(&keyway.client_key), "hi")
            .send()
            .await
            .unwrap();
        assert_no_cors(&r);
        assert_eq!(r.status(), 200, "{api:?}");
    }
    let url = format!(
        "/v1beta/models/gemini-2.5-pro:generateContent?key={}",
        keyway.client_key
    );
    let r = keyway
        .http
        .post(keyway.url(&url))
        .json(&Api::Gemini.body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "Gemini key in the query");
    let forwarded = fake.requests().last().expect("request").path.clone();
    assert!(
        !forwarded.contains(&keyway.client_key),
        "the client key is not forwarded in the query: {forwarded}"
    );
}

// ---------------------------------------------------------------------------------------------
// Host and Origin
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_host_header_naming_another_server_is_refused() {
    let (fake, keyway) = keyway_with_accounts("").await;
    let port = keyway.addr.port();
    let other = if port == 65535 { port - 1 } else { port + 1 };
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{other}"),
        "evil.example".into(),
    ] {
        for api in Api::ALL {
            let r = api
                .request(&keyway, Some(&keyway.client_key), "hi")
                .header(HOST, &host)
                .send()
                .await
                .unwrap();
            expect_error(api, r, 403).await;
        }
        let r = keyway
            .api(reqwest::Method::GET, "/status")
            .header(HOST, &host)
            .send()
            .await
            .unwrap();
        assert_no_cors(&r);
        assert_eq!(r.status(), 403, "management API, Host {host}");
    }
    assert!(fake.requests().is_empty(), "nothing reached an upstream");

    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = Api::Anthropic
            .request(&keyway, Some(&keyway.client_key), "hi")
            .header(HOST, &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "Host {host}");
        let r = keyway
            .api(reqwest::Method::GET, "/status")
            .header(HOST, &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "management API, Host {host}");
    }
}

#[tokio::test]
async fn a_request_from_a_foreign_web_page_is_refused() {
    let (fake, keyway) = keyway_with_accounts("").await;
    let port = keyway.addr.port();
    for origin in [
        "http://evil.example".to_owned(),
        format!("http://evil.example:{port}"),
        format!("https://127.0.0.1:{port}.evil.example"),
        "null".to_owned(),
    ] {
        for api in Api::ALL {
            let r = api
                .request(&keyway, Some(&keyway.client_key), "hi")
                .header("origin", &origin)
                .send()
                .await
                .unwrap();
            expect_error(api, r, 403).await;
        }
        let r = keyway
            .api(reqwest::Method::GET, "/accounts")
            .header("origin", &origin)
            .send()
            .await
            .unwrap();
        assert_no_cors(&r);
        assert_eq!(r.status(), 403, "management API, Origin {origin}");
    }
    assert!(fake.requests().is_empty(), "nothing reached an upstream");

    // Keyway's own pages (the dashboard) may call it.
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let r = Api::Anthropic
            .request(&keyway, Some(&keyway.client_key), "hi")
            .header("origin", &origin)
            .send()
            .await
            .unwrap();
        assert_no_cors(&r);
        assert_eq!(r.status(), 200, "Origin {origin}");
        let r = keyway
            .api(reqwest::Method::GET, "/accounts")
            .header("origin", &origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "management API, Origin {origin}");
    }
}

#[tokio::test]
async fn no_cross_origin_access_is_granted_even_to_a_preflight() {
    let (fake, keyway) = keyway_with_accounts("").await;
    let port = keyway.addr.port();
    for path in [
        "/v1/messages",
        "/v1/chat/completions",
        "/v1beta/models/gemini-2.5-pro:generateContent",
        "/api/accounts",
    ] {
        for origin in [
            "http://evil.example".to_owned(),
            format!("http://127.0.0.1:{port}"),
        ] {
            let r = keyway
                .http
                .request(reqwest::Method::OPTIONS, keyway.url(path))
                .header("origin", &origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "x-api-key, authorization, content-type",
                )
                .send()
                .await
                .unwrap();
            assert_no_cors(&r);
            assert!(
                !r.status().is_success(),
                "preflight {path} from {origin}: {}",
                r.status()
            );
        }
    }
    assert!(fake.requests().is_empty(), "nothing reached an upstream");
}

// ---------------------------------------------------------------------------------------------
// Body size
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_in_each_surface_shape() {
    let limits = "[limits]\nmax_body_mib = 1\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\n";
    let (fake, keyway) = keyway_with_accounts(limits).await;
    let big = "x".repeat(2 * 1024 * 1024);
    // A new connection for each request: the next test shows what happens to the
    // connection a 413 was sent on.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    for api in Api::ALL {
        let r = api
            .request_on(&http, &keyway, Some(&keyway.client_key), &big)
            .send()
            .await;
        let r = r.unwrap_or_else(|e| panic!("{api:?}: no answer to a 2 MiB body: {e}"));
        let message = expect_error(api, r, 413).await;
        assert!(
            message.contains("max_body_mib"),
            "{api:?}: names the setting: {message}"
        );
    }
    assert!(fake.requests().is_empty(), "nothing reached an upstream");

    // Just under the limit is fine.
    let under = "x".repeat(1024 * 1024 - 1024);
    for api in Api::ALL {
        let r = api
            .request_on(&http, &keyway, Some(&keyway.client_key), &under)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{api:?}");
    }
}

/// A tool whose request was too large sends its next one on the same keep-alive connection
/// pool. Keyway answers 413 without reading the body and then closes the connection; unless
/// it says so (`Connection: close`) or drains the body, the client may reuse the dying
/// connection and its next, valid request fails with a broken pipe / incomplete message.
#[tokio::test]
async fn after_a_413_the_clients_next_request_is_served() {
    let limits = "[limits]\nmax_body_mib = 1\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\n";
    let (_fake, keyway) = keyway_with_accounts(limits).await;
    let big = "x".repeat(2 * 1024 * 1024);
    let mut failed = Vec::new();
    for round in 0..20 {
        let r = Api::Anthropic
            .request(&keyway, Some(&keyway.client_key), &big)
            .send()
            .await;
        assert_eq!(r.expect("413 answer").status(), 413);
        let r = Api::Anthropic
            .request(&keyway, Some(&keyway.client_key), "hi")
            .send()
            .await;
        match r {
            Ok(r) => assert_eq!(r.status(), 200),
            Err(e) => failed.push(format!("round {round}: {e:?}")),
        }
    }
    assert!(
        failed.is_empty(),
        "valid requests after a 413 failed:\n{}",
        failed.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Management API
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_management_api_needs_its_own_token() {
    let (_fake, keyway) = keyway_with_accounts("").await;
    let url = keyway.url("/api/accounts");
    let attempts = [
        ("no token", keyway.http.get(&url)),
        (
            "client key as bearer",
            keyway.http.get(&url).bearer_auth(&keyway.client_key),
        ),
        (
            "client key as x-api-key",
            keyway
                .http
                .get(&url)
                .header("x-api-key", &keyway.client_key),
        ),
        (
            "wrong token",
            keyway.http.get(&url).bearer_auth("kwm-wrong"),
        ),
    ];
    for (what, request) in attempts {
        let r = request.send().await.unwrap();
        assert_no_cors(&r);
        assert_eq!(r.status(), 401, "{what}");
        let body: Value = r.json().await.expect("JSON error");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("keyway management-token"),
            "{what}: {body}"
        );
    }
    // Nor does the token open the proxy routes: it is not the client key.
    let r = Api::Anthropic
        .request(&keyway, Some(&keyway.management_token), "hi")
        .send()
        .await
        .unwrap();
    expect_error(Api::Anthropic, r, 401).await;

    let r = keyway
        .http
        .get(&url)
        .bearer_auth(&keyway.management_token)
        .send()
        .await
        .unwrap();
    assert_no_cors(&r);
    assert_eq!(r.status(), 200);
    let accounts: Value = r.json().await.expect("JSON");
    assert_eq!(accounts.as_array().map(Vec::len), Some(3));
    assert!(
        !accounts.to_string().contains("sk-ant"),
        "no account secret in the API: {accounts}"
    );
}

// ---------------------------------------------------------------------------------------------
// Listening beyond loopback
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn listening_beyond_loopback_is_refused_unless_allowed() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        setup.cli(&["--headless", "--listen", "0.0.0.0:0"]),
    )
    .await
    .expect("keyway refuses at once instead of serving");
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("0.0.0.0"), "names the address: {out:?}");
    assert!(out.stderr.contains("loopback"), "says why: {out:?}");
    assert!(
        out.stderr.contains("allow_non_loopback"),
        "says how to allow it: {out:?}"
    );

    // The same address in the config file is refused at the offending line.
    let setup = Setup::new(&fake.base_url(), "listen = \"0.0.0.0:8765\"\n");
    let out = tokio::time::timeout(Duration::from_secs(30), setup.cli(&["--headless"]))
        .await
        .expect("keyway refuses at once instead of serving");
    assert_ne!(out.code, Some(0), "{out:?}");
    let at = format!("{}:1:", setup.config_path.display());
    assert!(out.stderr.contains(&at), "points at {at}: {out:?}");
    assert!(out.stderr.contains("allow_non_loopback"), "{out:?}");

    // Opted in: it serves.
    let setup = Setup::new(&fake.base_url(), "allow_non_loopback = true\n");
    let (lines, child) = headless(&setup, &["--listen", "0.0.0.0:0"], "listening on").await;
    let line = lines.last().expect("output");
    let addr = line
        .split("listening on http://")
        .nth(1)
        .unwrap_or_else(|| panic!("keyway did not start: {lines:?}"));
    assert!(addr.starts_with("0.0.0.0:"), "{line}");
    let port = addr.trim().rsplit(':').next().expect("port");
    let token = setup.cli(&["management-token"]).await;
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/api/status"))
        .bearer_auth(token.ok())
        .send()
        .await
        .expect("serves on loopback too");
    assert_eq!(r.status(), 200);
    assert_eq!(terminate(child).await, Some(0));
}
