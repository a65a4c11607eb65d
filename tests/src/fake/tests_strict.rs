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

/// A fake accepting one key per provider, for the request-checking tests below.
async fn checking() -> FakeUpstream {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-api03-good");
    fake.register_key(Provider::OpenAi, "sk-proj-good");
    fake.register_key(Provider::Google, "AIza-good");
    fake
}

/// Anthropic's answer to a Messages (or, with `count`, count_tokens) body.
async fn anthropic_body(fake: &FakeUpstream, count: bool, body: Value) -> (u16, Value) {
    let path = if count {
        "/v1/messages/count_tokens"
    } else {
        "/v1/messages"
    };
    send(
        client()
            .post(fake.url(path))
            .header("x-api-key", "sk-ant-api03-good")
            .header("anthropic-version", "2023-06-01")
            .json(&body),
    )
    .await
}

/// The message of Anthropic's 400 for `body`, checking the error's shape on the way.
async fn anthropic_refusal(fake: &FakeUpstream, body: Value) -> String {
    let (status, answer) = anthropic_body(fake, false, body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["type"], "error");
    assert_eq!(answer["error"]["type"], "invalid_request_error");
    answer["error"]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}

fn user(content: Value) -> Value {
    json!({"role": "user", "content": content})
}

#[tokio::test]
async fn anthropic_refuses_fields_and_shapes_it_does_not_have() {
    let fake = checking().await;
    let base = |extra: Value| {
        let mut body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
                              "messages": [user(json!("hi"))]});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    // Every field of the SDK's create params is taken.
    let everything = base(json!({
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "metadata": {"user_id": "u-1"}, "service_tier": "auto", "stop_sequences": ["END"],
        "temperature": 0.5, "top_p": 0.9, "top_k": 5, "stream": false,
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        "thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048,
        "container": "cntr_1", "context_management": {"edits": []}, "mcp_servers": [],
        "output_config": {"effort": "high"}, "inference_geo": "us", "speed": "standard",
        "cache_control": {"type": "ephemeral"},
    }));
    let (status, answer) = anthropic_body(&fake, false, everything).await;
    assert_eq!(status, 200, "{answer}");

    let cases = [
        (base(json!({"foo": 1})), "foo: Extra inputs are not permitted".to_owned()),
        (
            base(json!({"messages": [user(json!([{"type": "text", "text": "hi", "foo": 1}]))]})),
            "messages.0.content.0.text.foo: Extra inputs are not permitted".to_owned(),
        ),
        (
            json!({"model": "claude-sonnet-4-5", "messages": [user(json!("hi"))]}),
            "max_tokens: Field required".to_owned(),
        ),
        (
            json!({"model": "claude-sonnet-4-5", "max_tokens": 8}),
            "messages: Field required".to_owned(),
        ),
        (
            base(json!({"messages": [{"role": "tool", "content": "hi"}]})),
            "messages.0.role: Input should be 'user', 'assistant' or 'system'".to_owned(),
        ),
        (
            base(json!({"messages": [user(json!([{"type": "image", "source": {
                "type": "base64", "media_type": "image/bmp", "data": "AAAA"}}]))]})),
            "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', \
             'image/png', 'image/gif' or 'image/webp'"
                .to_owned(),
        ),
        (base(json!({"temperature": 1.5})), "temperature: Input should be less than or equal to 1".to_owned()),
        (
            base(json!({"thinking": {"type": "enabled", "budget_tokens": 512}})),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".to_owned(),
        ),
        (
            base(json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})),
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our \
             documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
                .to_owned(),
        ),
        (
            base(json!({"tools": [{"name": "get weather", "input_schema": {"type": "object"}}]})),
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'".to_owned(),
        ),
        (
            base(json!({"tools": [{"name": "a", "input_schema": {"type": "object"}},
                                  {"name": "a", "input_schema": {"type": "object"}}]})),
            "tools: Tool names must be unique.".to_owned(),
        ),
        (
            base(json!({"messages": [user(json!("")), {"role": "assistant", "content": "x"}, user(json!("y"))]})),
            "messages.0: all messages must have non-empty content except for the optional final \
             assistant message"
                .to_owned(),
        ),
    ];
    for (body, message) in cases {
        assert_eq!(
            anthropic_refusal(&fake, body.clone()).await,
            message,
            "{body}"
        );
    }

    // Another format's shapes: an OpenAI image part, an OpenAI function tool.
    let message = anthropic_refusal(
        &fake,
        base(json!({"messages": [user(json!([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]))]})),
    )
    .await;
    assert!(
        message.starts_with(
            "messages.0.content.0: Input tag 'image_url' found using 'type' does not match any of \
             the expected tags: 'text', 'image', 'document'"
        ),
        "{message}"
    );
    let message = anthropic_refusal(
        &fake,
        base(json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]})),
    )
    .await;
    assert!(
        message.starts_with("tools.0: Input tag 'function' found using 'type' does not match"),
        "{message}"
    );

    // count_tokens takes no max_tokens.
    let (status, answer) = anthropic_body(
        &fake,
        true,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [user(json!("hi"))]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["message"],
        "max_tokens: Extra inputs are not permitted"
    );
    let (status, answer) = anthropic_body(
        &fake,
        true,
        json!({"model": "claude-sonnet-4-5", "messages": [user(json!("hi"))]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn anthropic_refuses_tool_results_that_answer_no_call() {
    let fake = checking().await;
    let call = json!({"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}},
    ]});
    let result =
        |id: &str| user(json!([{"type": "tool_result", "tool_use_id": id, "content": "noon"}]));
    let body = |messages: Value| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": messages,
               "tools": [{"name": "get_time", "input_schema": {"type": "object"}}]})
    };
    let (status, answer) = anthropic_body(
        &fake,
        false,
        body(json!([user(json!("time?")), call, result("toolu_1")])),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    assert_eq!(
        anthropic_refusal(
            &fake,
            body(json!([user(json!("time?")), call, result("toolu_2")]))
        )
        .await,
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_2. \
         Each `tool_result` block must have a corresponding `tool_use` block in the previous \
         message."
    );
    assert_eq!(
        anthropic_refusal(
            &fake,
            body(json!([user(json!("time?")), call, user(json!("well?"))]))
        )
        .await,
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: \
         toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next \
         message."
    );
    // Ids are plain: one that carries another format's extras is refused.
    let odd = json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1|sig", "name": "get_time", "input": {}}]});
    assert_eq!(
        anthropic_refusal(
            &fake,
            body(json!([user(json!("time?")), odd, result("call_1|sig")]))
        )
        .await,
        "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
    );
    // A result with no assistant turn before it answers nothing.
    let message = anthropic_refusal(&fake, body(json!([result("toolu_1")]))).await;
    assert!(
        message.starts_with("messages.0.content.0: unexpected `tool_use_id`"),
        "{message}"
    );
}

/// OpenAI's 400 for `body`: its error object.
async fn chat_refusal(fake: &FakeUpstream, body: Value) -> Value {
    let (status, answer) = send(
        client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth("sk-proj-good")
            .json(&body),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["type"], "invalid_request_error");
    answer["error"].clone()
}

#[tokio::test]
async fn openai_refuses_fields_and_shapes_it_does_not_have() {
    let fake = checking().await;
    let base = |extra: Value| {
        let mut body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let everything = base(json!({
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "name": "ann", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "high"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                {"type": "file", "file": {"file_id": "file-1"}},
            ]},
        ],
        "stream": false, "reasoning_effort": "low",
        "max_completion_tokens": 100, "parallel_tool_calls": false, "temperature": 1.5,
        "response_format": {"type": "json_object"}, "prompt_cache_key": "k", "safety_identifier": "s",
        "user": "u", "metadata": {"a": "b"}, "store": false, "service_tier": "auto",
        "modalities": ["text"], "prediction": {"type": "content", "content": "x"},
        "web_search_options": {}, "verbosity": "low", "logit_bias": {"50256": -100},
        "logprobs": true, "top_logprobs": 2, "n": 1, "seed": 7, "stop": ["END"],
        "frequency_penalty": 0.1, "presence_penalty": 0.1, "top_p": 0.9, "max_tokens": 100,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": true}}],
        "tool_choice": "auto",
    }));
    let (status, answer) = send(
        client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth("sk-proj-good")
            .json(&everything),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    let error = chat_refusal(&fake, base(json!({"foo": 1}))).await;
    assert_eq!(
        error["message"],
        "Unrecognized request argument supplied: foo"
    );
    assert_eq!(error["param"], "foo");

    let error = chat_refusal(
        &fake,
        base(json!({"messages": [{"role": "user", "content": "hi", "cache_control": {"type": "ephemeral"}}]})),
    )
    .await;
    assert_eq!(
        error["message"],
        "Additional properties are not allowed ('cache_control' was unexpected) - 'messages.0'"
    );

    // An Anthropic image block is no content part of Chat Completions.
    let error = chat_refusal(
        &fake,
        base(json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]})),
    )
    .await;
    assert_eq!(
        error["message"],
        "Invalid value: 'image'. Supported values are: 'text', 'image_url', 'input_audio', and 'file'."
    );
    assert_eq!(error["param"], "messages[0].content[0].type");
    assert_eq!(error["code"], "invalid_value");

    let error = chat_refusal(&fake, json!({"model": "gpt-4o"})).await;
    assert_eq!(error["message"], "Missing required parameter: 'messages'.");
    assert_eq!(error["code"], "missing_required_parameter");
    let error = chat_refusal(
        &fake,
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(error["message"], "you must provide a model parameter");

    let error = chat_refusal(
        &fake,
        base(json!({"messages": [{"role": "model", "content": "hi"}]})),
    )
    .await;
    assert_eq!(
        error["message"],
        "Invalid value: 'model'. Supported values are: 'system', 'assistant', 'user', 'function', \
         'tool', and 'developer'."
    );
    assert_eq!(error["param"], "messages[0].role");

    let error = chat_refusal(&fake, base(json!({"reasoning_effort": "extreme"}))).await;
    assert_eq!(error["param"], "reasoning_effort");
    let error = chat_refusal(&fake, base(json!({"temperature": 2.5}))).await;
    assert_eq!(error["code"], "decimal_above_max_value");
    let error = chat_refusal(
        &fake,
        base(json!({"stream_options": {"include_usage": true}})),
    )
    .await;
    assert_eq!(
        error["message"],
        "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    );
    let error = chat_refusal(
        &fake,
        base(json!({"tools": [{"type": "function", "function": {"name": "get weather"}}]})),
    )
    .await;
    assert_eq!(error["param"], "tools[0].function.name");
}

#[tokio::test]
async fn openai_refuses_tool_messages_that_answer_no_call() {
    let fake = checking().await;
    let call = |arguments: Value| {
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}]})
    };
    let tool = |id: &str| json!({"role": "tool", "tool_call_id": id, "content": "42"});
    let body = |messages: Value| json!({"model": "gpt-4o", "messages": messages});
    let question = json!({"role": "user", "content": "?"});

    let (status, answer) = send(
        client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth("sk-proj-good")
            .json(&body(json!([question, call(json!("{}")), tool("call_1")]))),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    let error = chat_refusal(&fake, body(json!([question, tool("call_1")]))).await;
    assert_eq!(
        error["message"],
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message \
         with 'tool_calls'."
    );
    assert_eq!(error["param"], "messages.[1].role");
    let error = chat_refusal(
        &fake,
        body(json!([question, call(json!("{}")), tool("call_2")])),
    )
    .await;
    assert_eq!(
        error["message"],
        "Invalid parameter: 'tool_call_id' of 'call_2' not found in 'tool_calls' of previous \
         message."
    );
    let error = chat_refusal(&fake, body(json!([question, call(json!("{}")), question]))).await;
    assert_eq!(
        error["message"],
        "An assistant message with 'tool_calls' must be followed by tool messages responding to \
         each 'tool_call_id'. The following tool_call_ids did not have response messages: call_1"
    );
    // Arguments are JSON text, not an object (Anthropic's `input`).
    let error = chat_refusal(
        &fake,
        body(json!([question, call(json!({"a": 1})), tool("call_1")])),
    )
    .await;
    assert_eq!(
        error["message"],
        "Invalid type for 'messages[1].tool_calls[0].function.arguments': expected a string, but \
         got an object instead."
    );
    assert_eq!(error["code"], "invalid_type");
}

/// Gemini's answer to `body` sent to `model`'s `action`.
async fn gemini_body(fake: &FakeUpstream, model: &str, action: &str, body: Value) -> (u16, Value) {
    send(
        client()
            .post(fake.url(&format!("/v1beta/models/{model}:{action}")))
            .header("x-goog-api-key", "AIza-good")
            .json(&body),
    )
    .await
}

/// The error object of Gemini's 400 for a generate `body`.
async fn gemini_refusal(fake: &FakeUpstream, body: Value) -> Value {
    let (status, answer) = gemini_body(fake, "gemini-2.5-pro", "generateContent", body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(answer["error"]["code"], 400);
    answer["error"].clone()
}

#[tokio::test]
async fn gemini_refuses_fields_and_shapes_it_does_not_have() {
    let fake = checking().await;
    let hi = json!([{"role": "user", "parts": [{"text": "hi"}]}]);
    // Proto JSON: camelCase and snake_case names alike.
    let everything = json!({
        "contents": hi,
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.2, "topP": 0.9, "topK": 40,
            "stop_sequences": ["END"], "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]},
            "thinking_config": {"include_thoughts": true, "thinkingBudget": -1},
            "candidateCount": 1, "seed": 3, "presencePenalty": 0.1, "frequency_penalty": 0.1,
            "responseLogprobs": false},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object", "additionalProperties": false}}]},
                  {"google_search": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
    });
    let (status, answer) =
        gemini_body(&fake, "gemini-2.5-pro", "generateContent", everything).await;
    assert_eq!(status, 200, "{answer}");

    let error = gemini_refusal(&fake, json!({"contents": hi, "foo": 1})).await;
    assert_eq!(
        error["message"],
        "Invalid JSON payload received. Unknown name \"foo\": Cannot find field."
    );
    let error = gemini_refusal(
        &fake,
        json!({"contents": [{"role": "user", "parts": [{"text": "hi", "cache_control": {}}]}]}),
    )
    .await;
    assert_eq!(
        error["message"],
        "Invalid JSON payload received. Unknown name \"cache_control\" at 'contents[0].parts[0]': \
         Cannot find field."
    );
    assert_eq!(
        error["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    assert_eq!(
        error["details"][0]["fieldViolations"][0]["field"],
        "contents[0].parts[0]"
    );

    // JSON Schema's `additionalProperties` is no field of Gemini's Schema.
    let error = gemini_refusal(
        &fake,
        json!({"contents": hi, "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}}]}]}),
    )
    .await;
    assert_eq!(
        error["message"],
        "Invalid JSON payload received. Unknown name \"additionalProperties\" at \
         'tools[0].function_declarations[0].parameters': Cannot find field."
    );

    let error = gemini_refusal(&fake, json!({"generationConfig": {"maxOutputTokens": 8}})).await;
    assert_eq!(
        error["message"],
        "* GenerateContentRequest.contents: contents is not specified\n"
    );
    let error = gemini_refusal(
        &fake,
        json!({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}),
    )
    .await;
    assert_eq!(error["message"], "Please use a valid role: user, model.");
    let error = gemini_refusal(&fake, json!({"contents": [{"role": "user", "parts": []}]})).await;
    assert_eq!(
        error["message"],
        "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n"
    );
    let error = gemini_refusal(
        &fake,
        json!({"contents": [{"role": "user", "parts": [
            {"text": "hi", "inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}]}),
    )
    .await;
    assert_eq!(
        error["message"],
        "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set 'inlineData'"
    );
    let error = gemini_refusal(
        &fake,
        json!({"contents": hi, "tools": [{"functionDeclarations": [{"name": "f",
            "parameters": {"type": "OBJECT"}, "parametersJsonSchema": {"type": "object"}}]}]}),
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("function_declarations[0].parameters_json_schema")),
        "{error}"
    );
    let error = gemini_refusal(
        &fake,
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]},
                            {"role": "model", "parts": [{"text": "yo", "thoughtSignature": "b25lIHR3bw=="}]},
                            {"role": "user", "parts": [{"text": "and?"}]}]}),
    )
    .await;
    assert_eq!(error["message"], "Corrupted thought signature.");

    // countTokens is checked too.
    let (status, answer) = gemini_body(
        &fake,
        "gemini-2.5-pro",
        "countTokens",
        json!({"contents": hi, "model": "x"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = gemini_body(
        &fake,
        "gemini-2.5-pro",
        "countTokens",
        json!({"generateContentRequest": {"model": "models/gemini-2.5-pro", "contents": hi}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_lenient_fake_answers_any_json_and_scripted_failures_skip_the_checks() {
    let fake = FakeUpstream::start_with(super::FakeConfig {
        strict: false,
        ..super::FakeConfig::default()
    })
    .await
    .expect("fake");
    fake.register_key(Provider::OpenAi, "sk-proj-good");
    let (status, answer) = send(
        client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth("sk-proj-good")
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "foo": 1})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    // A scripted failure stands for the provider failing before it reads the body.
    let fake = checking().await;
    fake.push("sk-proj-good", super::Behaviour::Overloaded);
    let (status, _) = send(
        client()
            .post(fake.url("/v1/chat/completions"))
            .bearer_auth("sk-proj-good")
            .json(&json!({"model": "gpt-4o", "foo": 1})),
    )
    .await;
    assert_eq!(status, 503);
}
