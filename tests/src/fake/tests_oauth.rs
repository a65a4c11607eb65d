//! Self-tests of the subscription (OAuth) fakes, over real loopback sockets with reqwest.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{
    Behaviour, CLAUDE_CODE_CLIENT_ID, CODEX_CLIENT_ID, ClaudeUsage, ClaudeWindow, CodexUsage,
    CodexWindow, FakeUpstream, OAUTH_BETA, Provider, jwt_payload, pkce_challenge,
};

/// Bounds every wait so a broken fake fails the test instead of hanging it.
async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("timed out waiting on the fake upstream")
}

/// A client that doesn't follow redirects, so the authorize answer itself can be checked.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

async fn send(req: reqwest::RequestBuilder) -> reqwest::Response {
    within(req.send()).await.expect("request to fake upstream")
}

async fn json_of(resp: reqwest::Response) -> Value {
    within(resp.json()).await.expect("JSON body")
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .expect("ASCII header")
}

const VERIFIER: &str = "fake-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
const CLAUDE_REDIRECT: &str = "http://localhost:54545/callback";
const CODEX_REDIRECT: &str = "http://localhost:1455/auth/callback";

fn claude_authorize_query(challenge: &str, state: &str) -> Vec<(&'static str, String)> {
    vec![
        ("code", "true".into()),
        ("client_id", CLAUDE_CODE_CLIENT_ID.into()),
        ("response_type", "code".into()),
        ("redirect_uri", CLAUDE_REDIRECT.into()),
        ("scope", "user:profile user:inference".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
        ("state", state.into()),
    ]
}

/// The query parameters of a redirect's `Location`.
fn location_params(resp: &reqwest::Response) -> (String, HashMap<String, String>) {
    let location = header(resp, "location").to_owned();
    let (base, query) = location.split_once('?').expect("query in Location");
    let params = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    (base.to_owned(), params)
}

async fn claude_refresh(fake: &FakeUpstream, refresh_token: &str) -> reqwest::Response {
    send(client().post(fake.url("/v1/oauth/token")).json(&json!({
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": CLAUDE_CODE_CLIENT_ID,
    })))
    .await
}

async fn claude_message(fake: &FakeUpstream, token: &str, beta: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .post(fake.url("/v1/messages"))
        .header("authorization", format!("Bearer {token}"))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "claude-test-1",
            "max_tokens": 16,
            "messages": [{ "role": "user", "content": "hi" }],
        }));
    if let Some(beta) = beta {
        req = req.header("anthropic-beta", beta);
    }
    send(req).await
}

#[tokio::test]
async fn claude_authorize_redirects_and_token_exchange_checks_pkce() {
    let fake = FakeUpstream::start().await;
    let claude = fake.claude_oauth();
    claude.login_as("alice");
    let query = claude_authorize_query(&pkce_challenge(VERIFIER), "st-123");
    let resp = send(client().get(fake.url("/oauth/authorize")).query(&query)).await;
    assert_eq!(resp.status(), 302);
    let (base, params) = location_params(&resp);
    assert_eq!(base, CLAUDE_REDIRECT);
    assert_eq!(params["state"], "st-123");
    let code = params["code"].clone();
    let issued = claude.last_code().expect("a code was issued");
    assert_eq!(issued.code, code);
    assert_eq!(issued.label, "alice");
    assert_eq!(issued.pasted(), format!("{code}#st-123"));

    let exchange = |verifier: &str| {
        json!({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CLAUDE_REDIRECT,
            "client_id": CLAUDE_CODE_CLIENT_ID,
            "code_verifier": verifier,
            "state": "st-123",
        })
    };
    let token_url = fake.url("/v1/oauth/token");
    let wrong = "wrong-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let resp = send(client().post(&token_url).json(&exchange(wrong))).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["error"], "invalid_grant");

    let resp = send(client().post(&token_url).json(&exchange(VERIFIER))).await;
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    let alice = claude.account("alice");
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with("sk-ant-oat01-")
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("sk-ant-ort01-")
    );
    assert_eq!(body["expires_in"], 8 * 3600);
    assert_eq!(body["scope"], "user:profile user:inference");
    assert_eq!(body["account"]["uuid"], alice.account_id.as_str());
    assert_eq!(body["account"]["email_address"], "alice@example.com");
    assert_eq!(body["organization"]["uuid"], alice.organization_id.as_str());
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claude.account_of(access).as_deref(), Some("alice"));

    let resp = send(client().post(&token_url).json(&exchange(VERIFIER))).await;
    assert_eq!(resp.status(), 400, "codes are single-use");
    let resp = send(
        client()
            .post(&token_url)
            .form(&[("grant_type", "refresh_token")]),
    )
    .await;
    assert_eq!(
        resp.status(),
        400,
        "Claude's token endpoint takes JSON only"
    );
    assert_eq!(json_of(resp).await["error"], "invalid_request");
    assert_eq!(claude.token_calls(), 3);
    assert_eq!(claude.refresh_calls(), 0);
}

#[tokio::test]
async fn authorize_rejects_bad_parameters() {
    let fake = FakeUpstream::start().await;
    let challenge = pkce_challenge(VERIFIER);
    let cases: [(&str, &str); 4] = [
        ("client_id", "someone-else"),
        ("code_challenge_method", "plain"),
        ("redirect_uri", "https://evil.example/callback"),
        ("response_type", "token"),
    ];
    for (name, value) in cases {
        let mut query = claude_authorize_query(&challenge, "s");
        query.retain(|(n, _)| *n != name);
        query.push((name, value.into()));
        let resp = send(client().get(fake.url("/oauth/authorize")).query(&query)).await;
        assert_eq!(resp.status(), 400, "{name}={value}");
        assert_eq!(json_of(resp).await["error"], "invalid_request");
    }
    let mut query = claude_authorize_query(&challenge, "s");
    query.retain(|(n, _)| *n != "code_challenge");
    let resp = send(client().get(fake.url("/oauth/authorize")).query(&query)).await;
    assert_eq!(resp.status(), 400, "PKCE is required");

    fake.claude_oauth().set_client_id("my-client");
    let mut query = claude_authorize_query(&challenge, "s");
    query.retain(|(n, _)| *n != "client_id");
    query.push(("client_id", "my-client".into()));
    let resp = send(client().get(fake.url("/oauth/authorize")).query(&query)).await;
    assert_eq!(resp.status(), 302, "a configured client id is accepted");
}

#[tokio::test]
async fn claude_refresh_rotates_and_old_refresh_token_dies() {
    let fake = FakeUpstream::start().await;
    let claude = fake.claude_oauth();
    let first = claude.issue_tokens("bob", Duration::from_secs(3600));

    let resp = claude_refresh(&fake, &first.refresh_token).await;
    assert_eq!(resp.status(), 200);
    let second = json_of(resp).await;
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first.refresh_token);
    assert_ne!(second["access_token"], first.access_token.as_str());
    assert_eq!(second["account"]["uuid"], first.account_id.as_str());

    let resp = claude_refresh(&fake, &first.refresh_token).await;
    assert_eq!(resp.status(), 400, "the old refresh token is dead");
    let body = json_of(resp).await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].is_string());

    assert_eq!(claude_refresh(&fake, &second_refresh).await.status(), 200);
    let resp = claude_refresh(&fake, "sk-ant-ort01-never-issued").await;
    assert_eq!(json_of(resp).await["error"], "invalid_grant");
    assert_eq!(claude.refresh_calls(), 4);
}

#[tokio::test]
async fn claude_fail_next_refresh_gives_invalid_grant_once() {
    let fake = FakeUpstream::start().await;
    let claude = fake.claude_oauth();
    let bob = claude.issue_tokens("bob", Duration::from_secs(3600));
    let carol = claude.issue_tokens("carol", Duration::from_secs(3600));
    claude.fail_next_refresh();

    let resp = claude_refresh(&fake, &bob.refresh_token).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["error"], "invalid_grant");
    let resp = claude_refresh(&fake, &bob.refresh_token).await;
    assert_eq!(resp.status(), 400, "the failed refresh token stays revoked");
    let resp = claude_refresh(&fake, &carol.refresh_token).await;
    assert_eq!(resp.status(), 200, "the switch only fails one refresh");
}

#[tokio::test]
async fn concurrent_refreshes_pile_up_and_only_one_wins() {
    let fake = FakeUpstream::start().await;
    let claude = fake.claude_oauth();
    let tokens = claude.issue_tokens("bob", Duration::from_secs(3600));
    claude.set_token_delay(Duration::from_millis(300));

    let calls = (0..5).map(|_| claude_refresh(&fake, &tokens.refresh_token));
    let responses = within(futures_util::future::join_all(calls)).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(claude.refresh_calls(), 5);
}

#[tokio::test]
async fn claude_bearer_is_accepted_only_with_the_oauth_beta() {
    let fake = FakeUpstream::start().await;
    let claude = fake.claude_oauth();
    let tokens = claude.issue_tokens("carol", Duration::from_secs(3600));

    let resp = claude_message(&fake, &tokens.access_token, None).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(resp).await["error"]["type"], "authentication_error");
    let resp = claude_message(&fake, &tokens.access_token, Some("other-2025-01-01")).await;
    assert_eq!(resp.status(), 401);

    let beta = format!("prompt-caching-2024-07-31, {OAUTH_BETA}");
    let resp = claude_message(&fake, &tokens.access_token, Some(&beta)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-status"),
        "allowed"
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-5h-status"),
        "allowed"
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-5h-utilization"),
        "0"
    );
    assert!(
        resp.headers()
            .contains_key("anthropic-ratelimit-unified-7d-reset")
    );
    assert_eq!(json_of(resp).await["content"][0]["text"], "served by carol");

    fake.push("carol", Behaviour::Overloaded);
    let resp = claude_message(&fake, &tokens.access_token, Some(OAUTH_BETA)).await;
    assert_eq!(resp.status(), 529, "scripts are keyed by account label");
    assert!(
        resp.headers()
            .contains_key("anthropic-ratelimit-unified-status")
    );

    let expired = claude.issue_tokens("carol", Duration::ZERO);
    let resp = claude_message(&fake, &expired.access_token, Some(OAUTH_BETA)).await;
    assert_eq!(resp.status(), 401);
    let body = json_of(resp).await;
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let resp = claude_message(&fake, "sk-ant-oat01-never-issued", Some(OAUTH_BETA)).await;
    assert_eq!(resp.status(), 401);

    fake.register_key(Provider::Anthropic, "sk-ant-api03-plain-key");
    let resp = claude_message(&fake, "sk-ant-api03-plain-key", None).await;
    assert_eq!(resp.status(), 401, "an API key is no bearer token");

    within(fake.wait_for_requests(7)).await;
    let requests = fake.requests();
    assert_eq!(requests[2].account.as_deref(), Some("carol"));
    assert_eq!(
        requests[2].key.as_deref(),
        Some(tokens.access_token.as_str())
    );
    assert_eq!(
        requests[4].account.as_deref(),
        Some("carol"),
        "expired still names it"
    );
    assert_eq!(requests[6].account, None);
    assert_eq!(fake.accounts_used(), ["carol"; 5]);
}

#[tokio::test]
async fn claude_5h_rejection_lasts_until_its_reset() {
    let fake = FakeUpstream::start().await;
    let claude = fake.claude_oauth();
    let tokens = claude.issue_tokens("dora", Duration::from_secs(3600));
    // A reset an hour ahead: rejected now. (Whether the rejection ends at its reset is
    // checked below with a reset already past, so no test waits on the clock.)
    let reset = now_unix() + 3600;
    claude.reject_5h_until("dora", reset);

    let resp = claude_message(&fake, &tokens.access_token, Some(OAUTH_BETA)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-status"),
        "rejected"
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-5h-status"),
        "rejected"
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-7d-status"),
        "allowed"
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-5h-reset"),
        reset.to_string()
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-reset"),
        reset.to_string()
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-representative-claim"),
        "five_hour"
    );
    let retry_after: u64 = header(&resp, "retry-after").parse().unwrap();
    assert!(
        retry_after <= 3600 && retry_after + 60 >= 3600,
        "{retry_after}"
    );
    assert_eq!(json_of(resp).await["error"]["type"], "rate_limit_error");
    let resp = claude_message(&fake, &tokens.access_token, Some(OAUTH_BETA)).await;
    assert_eq!(resp.status(), 429, "still rejected before the reset");

    // A rejection whose reset has passed is over: traffic is allowed again.
    claude.reject_5h_until("dora", now_unix() - 1);
    let back = claude_message(&fake, &tokens.access_token, Some(OAUTH_BETA)).await;
    assert_eq!(back.status(), 200);
    assert_eq!(
        header(&back, "anthropic-ratelimit-unified-status"),
        "allowed"
    );
}

#[tokio::test]
async fn claude_usage_poll_reports_the_scripted_windows() {
    let fake = FakeUpstream::start().await;
    let claude = fake.claude_oauth();
    let tokens = claude.issue_tokens("erin", Duration::from_secs(3600));
    claude.set_usage(
        "erin",
        ClaudeUsage {
            five_hour: ClaudeWindow {
                utilization: 0.42,
                resets_at: 1_800_000_000,
            },
            seven_day: ClaudeWindow {
                utilization: 0.07,
                resets_at: 1_800_086_400,
            },
            seven_day_opus: Some(ClaudeWindow {
                utilization: 0.5,
                resets_at: 1_800_086_400,
            }),
        },
    );
    let poll = |beta: bool| {
        let mut req = client()
            .get(fake.url("/api/oauth/usage"))
            .bearer_auth(&tokens.access_token);
        if beta {
            req = req.header("anthropic-beta", OAUTH_BETA);
        }
        send(req)
    };
    assert_eq!(poll(false).await.status(), 401);
    let resp = poll(true).await;
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    assert_eq!(body["five_hour"]["utilization"], 42.0);
    assert_eq!(body["five_hour"]["resets_at"], "2027-01-15T08:00:00+00:00");
    assert_eq!(body["seven_day"]["utilization"], 7.0);
    assert_eq!(body["seven_day_opus"]["utilization"], 50.0);
    assert_eq!(claude.usage_polls(), 2);

    let resp = claude_message(&fake, &tokens.access_token, Some(OAUTH_BETA)).await;
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-5h-utilization"),
        "0.42"
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-7d-reset"),
        "1800086400"
    );
    assert!(fake.requests().iter().all(|r| r.path == "/v1/messages"));
}

fn codex_authorize_query(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", CODEX_CLIENT_ID.into()),
        ("redirect_uri", CODEX_REDIRECT.into()),
        ("scope", "openid profile email offline_access".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
        ("id_token_add_organizations", "true".into()),
        ("codex_cli_simplified_flow", "true".into()),
        ("state", "codex-state".into()),
    ]
}

#[tokio::test]
async fn openai_authorize_and_form_encoded_exchange() {
    let fake = FakeUpstream::start().await;
    let openai = fake.openai_oauth();
    openai.login_as("frank");
    let query = codex_authorize_query(&pkce_challenge(VERIFIER));
    let resp = send(client().get(fake.url("/oauth/authorize")).query(&query)).await;
    assert_eq!(resp.status(), 302);
    let (base, params) = location_params(&resp);
    assert_eq!(base, CODEX_REDIRECT);
    assert_eq!(params["state"], "codex-state");
    let code = params["code"].clone();

    let form = |verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", CODEX_REDIRECT.to_owned()),
            ("client_id", CODEX_CLIENT_ID.to_owned()),
            ("code_verifier", verifier.to_owned()),
        ]
    };
    let token_url = fake.url("/oauth/token");
    let wrong = "wrong-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let resp = send(client().post(&token_url).form(&form(wrong))).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["error"], "invalid_grant");

    let resp = send(client().post(&token_url).form(&form(VERIFIER))).await;
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    let frank = openai.account("frank");
    let id = jwt_payload(body["id_token"].as_str().unwrap()).expect("id_token is a JWT");
    assert_eq!(id["email"], "frank@example.com");
    let auth = &id["https://api.openai.com/auth"];
    assert_eq!(auth["chatgpt_account_id"], frank.account_id.as_str());
    assert_eq!(auth["chatgpt_plan_type"], "pro");
    let access = jwt_payload(body["access_token"].as_str().unwrap()).expect("access JWT");
    assert!(access["exp"].as_u64().unwrap() > now_unix());
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert!(body["refresh_token"].as_str().unwrap().starts_with("rt_"));

    let mut query = codex_authorize_query(&pkce_challenge(VERIFIER));
    query.retain(|(n, _)| *n != "redirect_uri");
    query.push(("redirect_uri", "http://localhost:1456/auth/callback".into()));
    let resp = send(client().get(fake.url("/oauth/authorize")).query(&query)).await;
    assert_eq!(
        resp.status(),
        400,
        "only Codex's registered redirect by default"
    );
}

#[tokio::test]
async fn openai_refresh_is_single_use_as_codex_sees_it() {
    let fake = FakeUpstream::start().await;
    let openai = fake.openai_oauth();
    let tokens = openai.issue_tokens("gina", Duration::from_secs(3600));
    let refresh = |token: &str| {
        // Codex sends the refresh as JSON.
        send(client().post(fake.url("/oauth/token")).json(&json!({
            "client_id": CODEX_CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": token,
            "scope": "openid profile email",
        })))
    };
    let resp = refresh(&tokens.refresh_token).await;
    assert_eq!(resp.status(), 200);
    let next = json_of(resp).await;
    assert!(next["id_token"].is_string());
    let resp = refresh(&tokens.refresh_token).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(resp).await["error"]["code"], "refresh_token_reused");

    openai.fail_next_refresh();
    let resp = refresh(next["refresh_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        json_of(resp).await["error"]["code"],
        "refresh_token_invalidated"
    );
    assert_eq!(openai.refresh_calls(), 3);
}

#[tokio::test]
async fn device_code_is_pending_until_approved() {
    let fake = FakeUpstream::start().await;
    let openai = fake.openai_oauth();
    let resp = send(
        client()
            .post(fake.url("/api/accounts/deviceauth/usercode"))
            .json(&json!({ "client_id": CODEX_CLIENT_ID })),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let start = json_of(resp).await;
    let user_code = start["user_code"].as_str().unwrap().to_owned();
    assert_eq!(
        start["interval"], "1",
        "Codex parses the interval from a string"
    );
    let poll_body = json!({ "device_auth_id": start["device_auth_id"], "user_code": user_code });
    let poll = || {
        send(
            client()
                .post(fake.url("/api/accounts/deviceauth/token"))
                .json(&poll_body),
        )
    };
    assert_eq!(poll().await.status(), 403, "pending");
    assert_eq!(openai.pending_device_codes(), [user_code.as_str()]);

    openai.login_as("hank");
    assert!(openai.approve_device(&user_code));
    assert!(!openai.approve_device("NOPE-0000"));
    let resp = poll().await;
    assert_eq!(resp.status(), 200);
    let grant = json_of(resp).await;
    let verifier = grant["code_verifier"].as_str().unwrap();
    assert_eq!(grant["code_challenge"], pkce_challenge(verifier).as_str());
    assert_eq!(poll().await.status(), 400, "a device login completes once");

    let resp = send(client().post(fake.url("/oauth/token")).form(&[
        ("grant_type", "authorization_code"),
        ("code", grant["authorization_code"].as_str().unwrap()),
        ("redirect_uri", &fake.url("/deviceauth/callback")),
        ("client_id", CODEX_CLIENT_ID),
        ("code_verifier", verifier),
    ]))
    .await;
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(openai.account_of(access).as_deref(), Some("hank"));
}

async fn codex_call(
    fake: &FakeUpstream,
    token: &str,
    account_id: &str,
    stream: bool,
) -> reqwest::Response {
    send(
        client()
            .post(fake.url("/backend-api/codex/responses"))
            .bearer_auth(token)
            .header("chatgpt-account-id", account_id)
            .header("originator", "codex_cli_rs")
            .json(&json!({ "model": "gpt-5-codex", "stream": stream, "input": [] })),
    )
    .await
}

#[tokio::test]
async fn codex_backend_reports_usage_headers_and_limits() {
    let fake = FakeUpstream::start().await;
    let openai = fake.openai_oauth();
    let tokens = openai.issue_tokens("ivy", Duration::from_secs(3600));
    let now = now_unix();
    openai.set_usage(
        "ivy",
        CodexUsage {
            primary: CodexWindow {
                used_percent: 25.0,
                window_minutes: 300,
                resets_at: now + 600,
            },
            secondary: CodexWindow {
                used_percent: 60.5,
                window_minutes: 10_080,
                resets_at: now + 86_400,
            },
        },
    );

    let resp = codex_call(&fake, &tokens.access_token, &tokens.account_id, true).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-codex-primary-used-percent"), "25");
    assert_eq!(header(&resp, "x-codex-primary-window-minutes"), "300");
    let after: u64 = header(&resp, "x-codex-primary-reset-after-seconds")
        .parse()
        .unwrap();
    assert!((590..=600).contains(&after), "{after}");
    assert_eq!(header(&resp, "x-codex-secondary-used-percent"), "60.5");
    assert_eq!(header(&resp, "x-codex-secondary-window-minutes"), "10080");
    assert!(header(&resp, "content-type").starts_with("text/event-stream"));
    let text = within(resp.text()).await.unwrap();
    assert!(text.contains("event: response.completed"));
    assert!(text.contains("served by ivy"));

    let resp = codex_call(&fake, &tokens.access_token, "another-account", true).await;
    assert_eq!(resp.status(), 403);
    let resp = codex_call(&fake, &tokens.access_token, &tokens.account_id, false).await;
    assert_eq!(resp.status(), 400, "the backend only streams");
    let expired = openai.issue_tokens("ivy", Duration::ZERO);
    let resp = codex_call(&fake, &expired.access_token, &tokens.account_id, true).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(resp).await["error"]["code"], "token_expired");

    openai.usage_limit_until("ivy", now + 120);
    let resp = codex_call(&fake, &tokens.access_token, &tokens.account_id, true).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "x-codex-primary-used-percent"), "100");
    let body = json_of(resp).await;
    assert_eq!(body["error"]["type"], "usage_limit_reached");
    assert_eq!(body["error"]["resets_at"], now + 120);
    assert!(body["error"]["resets_in_seconds"].as_u64().unwrap() <= 120);

    let resp = send(
        client()
            .get(fake.url("/backend-api/wham/usage"))
            .bearer_auth(&tokens.access_token)
            .header("chatgpt-account-id", &tokens.account_id),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let usage = json_of(resp).await;
    assert_eq!(usage["plan_type"], "pro");
    assert_eq!(usage["rate_limit"]["limit_reached"], true);
    assert_eq!(usage["rate_limit"]["primary_window"]["used_percent"], 100.0);
    assert_eq!(usage["rate_limit"]["primary_window"]["reset_at"], now + 120);
    assert_eq!(
        usage["rate_limit"]["secondary_window"]["limit_window_seconds"],
        604_800
    );
    assert_eq!(openai.usage_polls(), 1);
    assert_eq!(fake.accounts_used(), ["ivy"; 5]);
}

#[tokio::test]
async fn credential_files_hold_tokens_the_fake_accepts() {
    let fake = FakeUpstream::start().await;
    let home = tempfile::tempdir().expect("temp dir");

    let claude = fake
        .claude_oauth()
        .write_credentials(home.path(), "jane")
        .unwrap();
    let text = std::fs::read_to_string(home.path().join(".claude/.credentials.json")).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let oauth = &file["claudeAiOauth"];
    assert_eq!(oauth["accessToken"], claude.access_token.as_str());
    assert_eq!(oauth["expiresAt"], claude.expires_at_ms);
    assert_eq!(oauth["subscriptionType"], "max");
    assert!(
        oauth["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("user:inference"))
    );
    let refresh = oauth["refreshToken"].as_str().unwrap();
    assert_eq!(claude_refresh(&fake, refresh).await.status(), 200);

    let codex = fake
        .openai_oauth()
        .write_codex_auth(home.path(), "kim")
        .unwrap();
    let text = std::fs::read_to_string(home.path().join(".codex/auth.json")).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["OPENAI_API_KEY"], Value::Null);
    assert_eq!(file["tokens"]["account_id"], codex.account_id.as_str());
    assert!(file["last_refresh"].as_str().unwrap().ends_with("+00:00"));
    let access = file["tokens"]["access_token"].as_str().unwrap();
    let account = file["tokens"]["account_id"].as_str().unwrap();
    assert_eq!(codex_call(&fake, access, account, true).await.status(), 200);
}
