//! Failover between accounts through the real proxy: which upstream answers make Keyway try the
//! next account, how long a failed account cools down (the upstream's own reset time when it
//! gives one), and what the client gets when no account can serve.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyway_tests::{Behaviour, FakeUpstream, Keyway, Provider, RateLimit, Setup};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Longest a bounded poll of the management API waits.
const POLL_LIMIT: Duration = Duration::from_secs(10);

/// Unix seconds now.
fn unix_now() -> u64 {
    unix_ms() / 1000
}

/// Unix milliseconds now.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// A `priority` policy for `provider`: the first eligible account in config order serves, so
/// a test knows which account Keyway tries first.
fn priority(provider: &str) -> String {
    format!("[policies.{provider}]\nstrategy = \"priority\"\n\n")
}

/// The client-facing APIs, each called the way its SDK calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Anthropic,
    OpenAiChat,
    OpenAiResponses,
    Gemini,
}

impl Api {
    /// The Keyway provider id serving this API.
    fn provider(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic",
            Api::OpenAiChat | Api::OpenAiResponses => "openai",
            Api::Gemini => "google",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Api::Anthropic => "/v1/messages",
            Api::OpenAiChat => "/v1/chat/completions",
            Api::OpenAiResponses => "/v1/responses",
            Api::Gemini => "/v1beta/models/gemini-2.5-pro:generateContent",
        }
    }

    fn body(self) -> Value {
        match self {
            Api::Anthropic => json!({
                "model": "claude-sonnet-4-5", "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}],
            }),
            Api::OpenAiChat => json!({
                "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
            }),
            Api::OpenAiResponses => json!({"model": "gpt-5", "input": "hi"}),
            Api::Gemini => json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        }
    }

    /// Sends a non-streaming request with the client key in this SDK's header.
    async fn send(self, keyway: &Keyway) -> reqwest::Response {
        let r = keyway.http.post(keyway.url(self.path())).json(&self.body());
        let r = match self {
            Api::Anthropic => r
                .header("x-api-key", &keyway.client_key)
                .header("anthropic-version", "2023-06-01"),
            Api::OpenAiChat | Api::OpenAiResponses => r.bearer_auth(&keyway.client_key),
            Api::Gemini => r.header("x-goog-api-key", &keyway.client_key),
        };
        r.send().await.expect("request to keyway")
    }

    /// The text of a successful answer (the fake's text names the key that served it).
    fn text(self, body: &Value) -> String {
        let text = match self {
            Api::Anthropic => &body["content"][0]["text"],
            Api::OpenAiChat => &body["choices"][0]["message"]["content"],
            Api::OpenAiResponses => &body["output"][0]["content"][0]["text"],
            Api::Gemini => &body["candidates"][0]["content"]["parts"][0]["text"],
        };
        text.as_str()
            .unwrap_or_else(|| panic!("{self:?}: no text in {body}"))
            .to_owned()
    }

    /// Asserts `body` is an error in this API's shape; returns its kind (Anthropic and OpenAI
    /// `error.type`, Gemini `error.status`) and message.
    fn error(self, status: u16, body: &Value) -> (String, String) {
        let e = &body["error"];
        let field = |v: &Value, what: &str| {
            v.as_str()
                .unwrap_or_else(|| panic!("{self:?}: no {what} in error body {body}"))
                .to_owned()
        };
        match self {
            Api::Anthropic => {
                assert_eq!(body["type"], "error", "Anthropic error shape: {body}");
                (
                    field(&e["type"], "error.type"),
                    field(&e["message"], "message"),
                )
            }
            Api::OpenAiChat | Api::OpenAiResponses => (
                field(&e["type"], "error.type"),
                field(&e["message"], "message"),
            ),
            Api::Gemini => {
                assert_eq!(e["code"], status, "Gemini error code: {body}");
                (
                    field(&e["status"], "error.status"),
                    field(&e["message"], "message"),
                )
            }
        }
    }
}

/// Status and JSON body of a response.
async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("response body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("response {status} is not JSON ({e}): {text}"));
    (status, body)
}

/// The `Retry-After` header in seconds.
fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").parse().expect("delta seconds"))
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

/// The live state of account `id`.
async fn live(keyway: &Keyway, id: &str) -> Value {
    account(keyway, id).await["live"].clone()
}

/// Polls the live state of `id` until `done` holds (bounded); returns it.
async fn poll_live(keyway: &Keyway, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + POLL_LIMIT;
    loop {
        let l = live(keyway, id).await;
        if done(&l) {
            return l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "account {id} not {what} within {POLL_LIMIT:?}: {l}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts `l` (a live state) is cooling until `expected` ± `slack` seconds, for a reason
/// naming `status`.
fn assert_cooling(l: &Value, until: std::ops::RangeInclusive<u64>, status: &str) {
    assert_eq!(l["state"], "cooling", "{l}");
    let at = l["cooling_until"].as_u64().expect("cooling_until");
    assert!(
        until.contains(&at),
        "cooling_until {at}, expected in {until:?}: {l}"
    );
    let reason = l["cooling_reason"].as_str().expect("cooling_reason");
    assert!(reason.contains(status), "reason should name {status}: {l}");
}

/// When a failed request ran, in Unix milliseconds: from before it was sent to after the
/// account's state was read. A cooldown of `secs` from the failure ends (in the whole seconds
/// the API shows, rounded up) within `cooling_for(secs)`, however slowly the machine ran.
#[derive(Debug, Clone, Copy)]
struct Span {
    from_ms: u64,
    to_ms: u64,
}

impl Span {
    fn cooling_for(self, secs: u64) -> std::ops::RangeInclusive<u64> {
        (self.from_ms / 1000 + secs)..=(self.to_ms.div_ceil(1000) + secs)
    }

    /// Whether a cooldown of `secs` from the failure had surely not ended when the state was
    /// read.
    fn within(self, secs: u64) -> bool {
        self.to_ms < self.from_ms + secs * 1000
    }
}

/// A fake, and Keyway with accounts `A` (key `<provider>-key-a`) and `B` (`<provider>-key-b`)
/// of `provider` under a priority policy, so A is always tried first while eligible.
async fn two_accounts(provider: &str) -> (FakeUpstream, Keyway, [String; 2], [String; 2]) {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), &priority(provider));
    let keys = [format!("{provider}-key-a"), format!("{provider}-key-b")];
    let upstream: Provider = provider.parse().expect("a built-in provider");
    fake.register_keys(upstream, keys.iter().map(String::as_str));
    let a = setup.add_account(provider, "A", &keys[0]).await;
    let b = setup.add_account(provider, "B", &keys[1]).await;
    (fake, setup.start().await, [a, b], keys)
}

/// One request through `api` that A fails with `behaviour` and B serves; returns A's live
/// state afterwards and when it all ran.
async fn fails_over(api: Api, behaviour: Behaviour) -> (Value, Span) {
    let (fake, keyway, [a, b], [ka, kb]) = two_accounts(api.provider()).await;
    fake.push(&ka, behaviour.clone());
    let from_ms = unix_ms();
    let r = api.send(&keyway).await;
    assert_eq!(
        r.status(),
        200,
        "{api:?} {behaviour:?}: B should have served"
    );
    assert_eq!(r.headers()["x-keyway-account"], b.as_str());
    let (_, body) = status_json(r).await;
    assert_eq!(api.text(&body), format!("served by {kb}"));
    assert_eq!(fake.keys_used(), [ka, kb], "{behaviour:?}: A, then B");
    let l = live(&keyway, &a).await;
    (
        l,
        Span {
            from_ms,
            to_ms: unix_ms(),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Rate limits and cooldowns
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limited_account_fails_over_and_cools_for_its_retry_after() {
    let (fake, keyway, [a, b], [ka, kb]) = two_accounts("anthropic").await;
    fake.push(&ka, Behaviour::RateLimited(RateLimit::RetryAfter(60)));

    let from_ms = unix_ms();
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200, "the same request is answered by B");
    assert_eq!(r.headers()["x-keyway-account"], b.as_str());
    let (_, body) = status_json(r).await;
    assert_eq!(body["content"][0]["text"], format!("served by {kb}"));
    assert_eq!(fake.keys_used(), [ka.clone(), kb.clone()]);

    // A is skipped while it cools, although priority would pick it first.
    for _ in 0..3 {
        let r = keyway.anthropic("claude-sonnet-4-5").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-keyway-account"], b.as_str());
    }
    assert_eq!(
        fake.keys_used(),
        [
            ka.as_str(),
            kb.as_str(),
            kb.as_str(),
            kb.as_str(),
            kb.as_str()
        ]
    );

    let l = live(&keyway, &a).await;
    let span = Span {
        from_ms,
        to_ms: unix_ms(),
    };
    assert_cooling(&l, span.cooling_for(60), "429");
    assert_eq!(live(&keyway, &b).await["state"], "serving");
}

#[tokio::test]
async fn an_api_keys_cooldown_survives_a_restart() {
    let (fake, keyway, [a, b], [ka, kb]) = two_accounts("anthropic").await;
    fake.push(&ka, Behaviour::RateLimited(RateLimit::RetryAfter(3600)));
    let before = unix_now();
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    let after = unix_now();
    assert_eq!(r.headers()["x-keyway-account"], b.as_str());
    let cooling = live(&keyway, &a).await;
    assert_eq!(cooling["state"], "cooling", "{cooling}");
    let until = cooling["cooling_until"].as_u64().expect("cooling_until");
    // Shown in whole seconds, rounded up.
    assert!(
        (before + 3600..=after + 3601).contains(&until),
        "cooling until {until}, for retry-after 3600 from {before}..={after}"
    );

    let keyway = keyway.restart().await;
    // Still cooling, until the same moment, with the same reason: A is not asked again.
    let restored = live(&keyway, &a).await;
    assert_eq!(restored["state"], "cooling", "{restored}");
    assert_eq!(restored["cooling_until"], until, "{restored}");
    assert_eq!(
        restored["cooling_reason"], cooling["cooling_reason"],
        "{restored}"
    );
    for _ in 0..2 {
        let r = keyway.anthropic("claude-sonnet-4-5").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-keyway-account"], b.as_str());
    }
    assert_eq!(
        fake.keys_used(),
        [ka.as_str(), kb.as_str(), kb.as_str(), kb.as_str()],
        "A was not tried after the restart"
    );
}

#[tokio::test]
async fn anthropic_unified_window_rejection_cools_until_the_window_resets() {
    let reset = unix_now() + 3600;
    let (l, _) = fails_over(
        Api::Anthropic,
        Behaviour::RateLimited(RateLimit::AnthropicUnified5h { reset_unix: reset }),
    )
    .await;
    // The window's reset, plus up to 1.5 s that spreads the clients coming back (rounded up).
    assert_cooling(&l, reset..=reset + 2, "429");
}

#[tokio::test]
async fn openai_usage_limit_cools_until_resets_at() {
    let resets_at = unix_now() + 1800;
    let (l, _) = fails_over(
        Api::OpenAiChat,
        Behaviour::RateLimited(RateLimit::OpenAiUsageLimit { resets_at }),
    )
    .await;
    assert_cooling(&l, resets_at..=resets_at, "429");

    let (l, span) = fails_over(
        Api::OpenAiResponses,
        Behaviour::RateLimited(RateLimit::OpenAiUsageLimitIn {
            resets_in_seconds: 900,
        }),
    )
    .await;
    assert_cooling(&l, span.cooling_for(900), "429");
}

#[tokio::test]
async fn gemini_retry_info_cools_for_the_delay() {
    let (l, span) = fails_over(
        Api::Gemini,
        Behaviour::RateLimited(RateLimit::GeminiRetryInfo { delay_secs: 90 }),
    )
    .await;
    assert_cooling(&l, span.cooling_for(90), "429");
}

#[tokio::test]
async fn server_errors_and_overload_fail_over_with_a_short_backoff() {
    for (behaviour, status) in [
        (Behaviour::ServerError(500), "500"),
        (Behaviour::ServerError(502), "502"),
        (Behaviour::ServerError(503), "503"),
        (Behaviour::Overloaded, "529"),
    ] {
        let (l, span) = fails_over(Api::Anthropic, behaviour).await;
        assert_backed_off(&l, span, status);
    }
    // OpenAI and Gemini say "overloaded" with a 503.
    for api in [Api::OpenAiChat, Api::Gemini] {
        let (l, span) = fails_over(api, Behaviour::Overloaded).await;
        assert_backed_off(&l, span, "503");
    }
}

/// No reset time from the upstream: the first failure backs off for 2 s. A state read within
/// those 2 s must show the cooldown; one read later (a slow machine) may show it over, with
/// the failure counted either way.
fn assert_backed_off(l: &Value, span: Span, status: &str) {
    if span.within(2) {
        assert_cooling(l, span.cooling_for(2), status);
    } else {
        assert!(l["state"] == "cooling" || l["state"] == "serving", "{l}");
    }
    assert_eq!(l["failures"], 1, "{l}");
}

#[tokio::test]
async fn a_cooled_account_serves_again_once_its_reset_has_passed() {
    let (fake, keyway, [a, b], [ka, kb]) = two_accounts("anthropic").await;
    fake.push(&ka, Behaviour::RateLimited(RateLimit::RetryAfter(1)));

    let from_ms = unix_ms();
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-keyway-account"], b.as_str());
    let l = live(&keyway, &a).await;
    let span = Span {
        from_ms,
        to_ms: unix_ms(),
    };
    // Read within the second, A must be cooling; read later (a slow machine), either.
    if span.within(1) {
        assert_cooling(&l, span.cooling_for(1), "429");
    }

    let l = poll_live(&keyway, &a, "serving again", |l| l["state"] == "serving").await;
    assert!(l.get("cooling_until").is_none(), "{l}");
    assert!(
        unix_ms() >= from_ms + 1000,
        "not back before its retry-after"
    );

    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-keyway-account"], a.as_str(), "A is back");
    assert_eq!(fake.keys_used(), [ka.as_str(), kb.as_str(), ka.as_str()]);
}

// ---------------------------------------------------------------------------------------------
// Transport failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_upstream_that_sends_no_headers_in_time_fails_over() {
    let fake = FakeUpstream::start().await;
    let limits = "[limits]\nfirst_byte_timeout_secs = 1\ndrain_secs = 5\n\n";
    let setup = Setup::new(
        &fake.base_url(),
        &(limits.to_owned() + &priority("anthropic")),
    );
    fake.register_keys(Provider::Anthropic, ["sk-hang", "sk-ok"]);
    let a = setup.add_account("anthropic", "A", "sk-hang").await;
    let b = setup.add_account("anthropic", "B", "sk-ok").await;
    let keyway = setup.start().await;
    fake.push("sk-hang", Behaviour::Hang);

    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-keyway-account"], b.as_str());
    assert_eq!(fake.keys_used(), ["sk-hang", "sk-ok"]);
    // Keyway gave up on the hung request rather than leaving it open upstream.
    tokio::time::timeout(Duration::from_secs(5), fake.wait_for_disconnects(1))
        .await
        .expect("the hung upstream request is closed");
    let l = live(&keyway, &a).await;
    assert_eq!(l["state"], "cooling", "{l}");
    assert!(
        l["cooling_reason"]
            .as_str()
            .is_some_and(|r| r.contains("1s")),
        "the reason names the timeout: {l}"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_in_each_surface_shape() {
    // A port this test holds without listening: connections to it are refused, and nothing
    // else can take it meanwhile.
    let held = tokio::net::TcpSocket::new_v4().expect("socket");
    held.bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let closed = held.local_addr().expect("addr");
    let setup = Setup::new(&format!("http://{closed}"), "");
    setup.add_account("anthropic", "A", "sk-a").await;
    setup.add_account("openai", "O", "sk-o").await;
    setup.add_account("google", "G", "sk-g").await;
    let keyway = setup.start().await;

    for (api, kind) in [
        (Api::Anthropic, "api_error"),
        (Api::OpenAiChat, "server_error"),
        (Api::Gemini, "UNAVAILABLE"),
    ] {
        let (status, body) = status_json(api.send(&keyway).await).await;
        assert_eq!(status, 502, "{api:?}: {body}");
        let (k, message) = api.error(502, &body);
        assert_eq!(k, kind, "{api:?}: {body}");
        assert!(
            message.contains("connection failed"),
            "{api:?}: the message names the failure: {message}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Nothing left to try
// ---------------------------------------------------------------------------------------------

/// Both accounts rate-limited: A resets in 30 s, B (tried last) much later. The client gets a
/// 429 in the API's shape with `Retry-After` ≈ 30 (the soonest), on the failing request and on
/// the next one, which Keyway answers itself (error kind `kind`) without asking any upstream.
async fn exhausted(api: Api, a_limit: RateLimit, b_limit: RateLimit, kind: &str) {
    let (fake, keyway, _, [ka, kb]) = two_accounts(api.provider()).await;
    fake.push(&ka, Behaviour::RateLimited(a_limit));
    fake.push(&kb, Behaviour::RateLimited(b_limit));

    let r = api.send(&keyway).await;
    assert_eq!(r.status(), 429, "{api:?}");
    let after = retry_after(&r).expect("Retry-After on the 429");
    assert!((28..=31).contains(&after), "{api:?}: Retry-After {after}");
    // The last upstream's own 429 body, in the API's shape.
    let (status, body) = status_json(r).await;
    api.error(status, &body);
    assert_eq!(fake.keys_used(), [ka.as_str(), kb.as_str()]);

    let r = api.send(&keyway).await;
    assert_eq!(r.status(), 429, "{api:?}: all accounts still cooling");
    let after = retry_after(&r).expect("Retry-After on the 429");
    assert!((28..=31).contains(&after), "{api:?}: Retry-After {after}");
    let (status, body) = status_json(r).await;
    let (k, message) = api.error(status, &body);
    assert_eq!(k, kind, "{api:?}: {body}");
    assert!(message.contains("cooling"), "{api:?}: {message}");
    assert_eq!(fake.requests().len(), 2, "no upstream asked while all cool");
}

#[tokio::test]
async fn all_anthropic_accounts_rate_limited_is_a_429_with_the_soonest_retry_after() {
    let later = unix_now() + 3600;
    exhausted(
        Api::Anthropic,
        RateLimit::RetryAfter(30),
        RateLimit::AnthropicUnified5h { reset_unix: later },
        "rate_limit_error",
    )
    .await;
}

#[tokio::test]
async fn all_openai_accounts_rate_limited_is_a_429_with_the_soonest_retry_after() {
    let later = unix_now() + 3600;
    exhausted(
        Api::OpenAiChat,
        RateLimit::OpenAiUsageLimitIn {
            resets_in_seconds: 30,
        },
        RateLimit::OpenAiUsageLimit { resets_at: later },
        "rate_limit_error",
    )
    .await;
}

#[tokio::test]
async fn all_gemini_accounts_rate_limited_is_a_429_with_the_soonest_retry_after() {
    exhausted(
        Api::Gemini,
        RateLimit::GeminiRetryInfo { delay_secs: 30 },
        RateLimit::GeminiRetryInfo { delay_secs: 3600 },
        "RESOURCE_EXHAUSTED",
    )
    .await;
}

/// The last account's own `retry-after` must not hide an account that is ready sooner: a
/// client told to wait an hour would idle while A is usable again in 30 s.
#[tokio::test]
async fn retry_after_names_the_soonest_reset_even_when_the_last_upstream_sent_its_own() {
    exhausted(
        Api::Anthropic,
        RateLimit::RetryAfter(30),
        RateLimit::RetryAfter(3600),
        "rate_limit_error",
    )
    .await;
}

/// A rate-limited, B's key refused: nothing can serve now, but A can in 30 s. That is a 429
/// with `Retry-After`, as the next request gets, not a 503 claiming every account's credential
/// was refused.
#[tokio::test]
async fn a_cooling_account_and_a_refused_one_answer_429_not_refused() {
    let (fake, keyway, _, [ka, kb]) = two_accounts("anthropic").await;
    fake.push(&ka, Behaviour::RateLimited(RateLimit::RetryAfter(30)));
    fake.set_default(&kb, Behaviour::Unauthorized);

    for attempt in ["first", "next"] {
        let r = keyway.anthropic("claude-sonnet-4-5").await;
        let after = retry_after(&r);
        let (status, body) = status_json(r).await;
        assert_eq!(status, 429, "{attempt} request: {body}");
        let after = after.expect("Retry-After");
        assert!((28..=31).contains(&after), "{attempt}: Retry-After {after}");
        assert_eq!(Api::Anthropic.error(status, &body).0, "rate_limit_error");
    }
    assert_eq!(fake.keys_used(), [ka.as_str(), kb.as_str()]);
}

// ---------------------------------------------------------------------------------------------
// Refused credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refused_credential_takes_the_account_out_of_rotation_until_enabled() {
    let (fake, keyway, [a, b], [ka, kb]) = two_accounts("anthropic").await;
    fake.set_default(&ka, Behaviour::Unauthorized);

    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200, "B serves the request A's key failed");
    assert_eq!(r.headers()["x-keyway-account"], b.as_str());
    let l = live(&keyway, &a).await;
    assert_eq!(l["state"], "needs_attention", "{l}");
    assert!(
        l["needs_attention"]
            .as_str()
            .is_some_and(|m| m.contains("401")),
        "{l}"
    );

    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(
        r.headers()["x-keyway-account"],
        b.as_str(),
        "A is out of rotation"
    );
    assert_eq!(fake.keys_used(), [ka.as_str(), kb.as_str(), kb.as_str()]);

    // Now B's key is refused too: the client's own key was fine, so not a 401.
    fake.set_default(&kb, Behaviour::Unauthorized);
    for attempt in ["B refused now", "nothing left"] {
        let (status, body) = status_json(keyway.anthropic("claude-sonnet-4-5").await).await;
        assert_eq!(status, 503, "{attempt}: {body}");
        let (kind, message) = Api::Anthropic.error(status, &body);
        assert_ne!(kind, "authentication_error", "{attempt}: {body}");
        assert!(
            message.contains("keyway account list"),
            "{attempt}: {message}"
        );
    }
    assert_eq!(
        fake.keys_used(),
        [ka.as_str(), kb.as_str(), kb.as_str(), kb.as_str()],
        "A never retried"
    );
    assert_eq!(live(&keyway, &b).await["state"], "needs_attention");

    // The user replaced A's key upstream and re-enables it.
    fake.clear_scripts();
    fake.set_default(&kb, Behaviour::Unauthorized);
    let out = keyway.cli(&["account", "enable", &a]).await;
    out.ok();
    let l = live(&keyway, &a).await;
    assert_eq!(l["state"], "serving", "enable clears needs_attention: {l}");
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-keyway-account"], a.as_str());
}

#[tokio::test]
async fn a_refused_openai_key_fails_over_and_needs_attention() {
    let (l, _) = fails_over(Api::OpenAiChat, Behaviour::Unauthorized).await;
    assert_eq!(l["state"], "needs_attention", "{l}");
}

/// Gemini answers a bad API key with 400 `INVALID_ARGUMENT`, reason `API_KEY_INVALID` (not a
/// 401): that is the account's fault, not the request's.
#[tokio::test]
async fn a_refused_gemini_key_fails_over_and_needs_attention() {
    let (l, _) = fails_over(Api::Gemini, Behaviour::Unauthorized).await;
    assert_eq!(l["state"], "needs_attention", "{l}");
}

// ---------------------------------------------------------------------------------------------
// Not an account problem
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_errors_pass_through_without_failover_or_cooldown() {
    let (fake, keyway, [a, _], [ka, _]) = two_accounts("anthropic").await;
    let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: must be at least 1"}}"#;
    fake.push(
        &ka,
        Behaviour::Raw {
            status: 400,
            headers: vec![("x-upstream-marker".into(), "kept".into())],
            body: body.into(),
        },
    );

    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-upstream-marker"], "kept");
    assert_eq!(r.headers()["x-keyway-account"], a.as_str());
    assert_eq!(r.text().await.expect("body"), body, "body unchanged");
    assert_eq!(fake.keys_used(), [ka.as_str()], "no failover");
    let l = live(&keyway, &a).await;
    assert_eq!(l["state"], "serving", "{l}");
    assert_eq!(l["failures"], 0, "{l}");
}

#[tokio::test]
async fn attempts_per_request_are_bounded_by_max_attempts() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(
        &fake.base_url(),
        "[limits]\nmax_attempts = 4\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\n",
    );
    let mut ids = Vec::new();
    for i in 0..6 {
        let key = format!("sk-{i}");
        fake.register_key(Provider::Anthropic, &key);
        fake.set_default(&key, Behaviour::ServerError(500));
        ids.push(setup.add_account("anthropic", &format!("N{i}"), &key).await);
    }
    let keyway = setup.start().await;

    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 500, "the last upstream answer");
    let used = fake.keys_used();
    assert_eq!(
        used.len(),
        4,
        "exactly max_attempts upstream requests: {used:?}"
    );
    let mut distinct = used.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        4,
        "each attempt on another account: {used:?}"
    );
    let mut untouched = 0;
    for id in &ids {
        if live(&keyway, id).await["state"] == "serving" {
            untouched += 1;
        }
    }
    assert_eq!(untouched, 2, "two accounts never tried");
}
