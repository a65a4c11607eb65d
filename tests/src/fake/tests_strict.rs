//! The fake refuses what the real providers refuse, so a proxy that gets a request wrong is
//! told so in a test. Each refusal is shown here, so the strictness itself cannot rot.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use serde_json::{Value, json};

use super::{FakeUpstream, OAUTH_BETA, Provider};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = tokio::time::timeout(Duration::from_secs(20), request.send())
        .await
        .expect("the fake answers")
        .expect("request to the fake");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn messages(fake: &FakeUpstream) -> reqwest::RequestBuilder {
    client()
        .post(fake.url("/v1/messages"))
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
}

fn chat(fake: &FakeUpstream) -> reqwest::RequestBuilder {
    client()
        .post(fake.url("/v1/chat/completions"))
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
}

fn gemini(fake: &FakeUpstream) -> reqwest::RequestBuilder {
    client()
        .post(fake.url("/v1beta/models/gemini-2.5-pro:generateContent"))
        .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
}

#[tokio::test]
async fn only_registered_keys_are_valid_and_others_get_the_providers_own_refusal() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-api03-good");
    fake.register_key(Provider::OpenAi, "sk-proj-good");
    fake.register_key(Provider::Google, "AIza-good");

    let (status, body) = send(
        messages(&fake)
            .header("x-api-key", "sk-ant-api03-good")
            .header("anthropic-version", "2023-06-01"),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Anthropic: 401 authentication_error, exactly as the API sends it.
    let (status, body) = send(
        messages(&fake)
            .header("x-api-key", "sk-ant-api03-unknown")
            .header("anthropic-version", "2023-06-01"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
    );

    // OpenAI: 401 invalid_api_key naming the key masked, never whole.
    let unknown = "sk-proj-unknownkey1234WXYZ";
    let (status, body) = send(chat(&fake).bearer_auth(unknown)).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": {
            "message": "Incorrect API key provided: sk-*******************WXYZ. You can find your API key at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_api_key",
        }})
    );
    assert!(!body.to_string().contains(unknown));

    // Gemini: 400 INVALID_ARGUMENT with reason API_KEY_INVALID, in the header or the query.
    for request in [
        gemini(&fake).header("x-goog-api-key", "AIza-unknown"),
        client()
            .post(fake.url("/v1beta/models/gemini-2.5-pro:generateContent?key=AIza-unknown"))
            .json(&json!({"contents": []})),
    ] {
        let (status, body) = send(request).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");
    }

    // Gemini without any key: 403 PERMISSION_DENIED, as Google APIs refuse unregistered
    // callers.
    let (status, body) = send(gemini(&fake)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");

    // A key is valid only with the provider it belongs to.
    let (status, _) = send(chat(&fake).bearer_auth("sk-ant-api03-good")).await;
    assert_eq!(status, 401, "an Anthropic key is not an OpenAI key");
    let (status, _) = send(gemini(&fake).header("x-goog-api-key", "sk-proj-good")).await;
    assert_eq!(status, 400, "an OpenAI key is not a Gemini key");
}

#[tokio::test]
async fn a_scripted_key_is_still_refused_until_registered() {
    let fake = FakeUpstream::start().await;
    fake.push("sk-ant-api03-scripted", super::Behaviour::Overloaded);
    let request = || {
        messages(&fake)
            .header("x-api-key", "sk-ant-api03-scripted")
            .header("anthropic-version", "2023-06-01")
    };
    assert_eq!(send(request()).await.0, 401);
    fake.register_key(Provider::Anthropic, "sk-ant-api03-scripted");
    assert_eq!(send(request()).await.0, 529, "now its script answers");
}

#[tokio::test]
async fn an_anthropic_api_key_sent_as_a_bearer_is_refused() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-api03-good");
    // Bearer is for OAuth access tokens: Anthropic refuses a key there, with or without the
    // OAuth beta flag.
    let (status, body) = send(
        messages(&fake)
            .bearer_auth("sk-ant-api03-good")
            .header("anthropic-version", "2023-06-01"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "OAuth authentication is currently not supported."}})
    );
    let (status, body) = send(
        messages(&fake)
            .bearer_auth("sk-ant-api03-good")
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", OAUTH_BETA),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "Invalid bearer token"}})
    );
}

#[tokio::test]
async fn anthropic_requires_anthropic_version() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-api03-good");
    let (status, body) = send(messages(&fake).header("x-api-key", "sk-ant-api03-good")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic-version: header is required"}})
    );
    // A proxy that adds its own copy of the header sends two values: no version at all.
    let (status, body) = send(
        messages(&fake)
            .header("x-api-key", "sk-ant-api03-good")
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-version", "2023-06-01"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "anthropic-version: \"2023-06-01, 2023-06-01\" is not a valid version"
    );
    let (status, _) = send(
        client()
            .get(fake.url("/v1/models"))
            .header("x-api-key", "sk-ant-api03-good"),
    )
    .await;
    assert_eq!(status, 400, "every Anthropic endpoint requires it");
}

#[tokio::test]
async fn anthropic_refuses_an_empty_conversation() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-api03-good");
    let (status, body) = send(
        client()
            .post(fake.url("/v1/messages"))
            .header("x-api-key", "sk-ant-api03-good")
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": []})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "messages: at least one message is required"}})
    );
}

#[tokio::test]
async fn openai_requires_a_json_content_type_on_bodies() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::OpenAi, "sk-proj-good");
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    let post = |content_type: Option<&str>| {
        let r = client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth("sk-proj-good")
            .body(body);
        match content_type {
            Some(ct) => r.header("content-type", ct),
            None => r,
        }
    };
    let (status, answer) = send(post(Some("text/plain"))).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "unsupported_content_type");
    assert_eq!(
        answer["error"]["message"],
        "Unsupported content type: 'text/plain'. This API method only accepts 'application/json' \
         requests, but you specified the header 'Content-Type: text/plain'. Please try again with \
         a supported content type."
    );
    let (status, answer) = send(post(None)).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["message"],
        "you must provide a model parameter"
    );
    let (status, answer) = send(post(Some("application/json; charset=utf-8"))).await;
    assert_eq!(status, 200, "{answer}");
    // A request with no key at all is refused before anything else.
    let (status, answer) = send(chat(&fake)).await;
    assert_eq!(status, 401);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("You didn't provide an API key")),
        "{answer}"
    );
}

/// The message of a panic caught by `catch_unwind`.
fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_request_with_another_servers_host_is_refused_and_fails_the_test() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-api03-good");
    // What a proxy that copies its client's headers sends: the Host its client addressed.
    let (status, body) = send(
        messages(&fake)
            .header("host", "127.0.0.1:8765")
            .header("x-api-key", "sk-ant-api03-good")
            .header("anthropic-version", "2023-06-01"),
    )
    .await;
    assert_eq!(status, 421);
    assert_eq!(body["error"]["type"], "fake_upstream_refused");
    assert!(fake.requests().is_empty(), "refused before it is recorded");

    // The violation is kept, and fails the test when the fake goes away.
    let dropped = std::panic::catch_unwind(AssertUnwindSafe(move || drop(fake)));
    let message = panic_text(&*dropped.expect_err("dropping the fake fails the test"));
    assert!(
        message.contains("POST /v1/messages carried Host `127.0.0.1:8765`"),
        "{message}"
    );

    // `localhost` with the fake's port is its own address too.
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-api03-good");
    let (status, _) = send(
        messages(&fake)
            .header("host", format!("localhost:{}", fake.addr().port()))
            .header("x-api-key", "sk-ant-api03-good")
            .header("anthropic-version", "2023-06-01"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(fake.take_violations().is_empty());
}

#[tokio::test]
async fn a_request_with_an_origin_is_refused_and_fails_the_test() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::OpenAi, "sk-proj-good");
    let (status, body) = send(
        chat(&fake)
            .bearer_auth("sk-proj-good")
            .header("origin", "http://127.0.0.1:8765"),
    )
    .await;
    assert_eq!(status, 421);
    assert_eq!(body["error"]["type"], "fake_upstream_refused");
    let violations = fake.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("carried Origin `http://127.0.0.1:8765`"),
        "{violations:?}"
    );
    // Taken: the fake now drops quietly.
    drop(fake);
}
