//! Routing through the real proxy: which account each request uses under every strategy,
//! per-(provider, family) policies, the OpenAI and Gemini surfaces with their auth headers,
//! user-defined OpenAI-compatible providers, and `GET /v1/models`.

use std::collections::HashMap;

use keyway_tests::{Behaviour, FakeUpstream, Keyway, Provider, Setup};
use serde_json::{Value, json};

/// Sends one Anthropic request for `model`, asserts it succeeded through exactly one upstream
/// request, and returns the key that upstream request used.
async fn served_by(keyway: &Keyway, fake: &FakeUpstream, model: &str) -> String {
    let before = fake.requests().len();
    let r = keyway.anthropic(model).await;
    assert_eq!(r.status(), 200, "{model}: {:?}", r.text().await);
    let account = r.headers()["x-keyway-account"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.expect("json answer");
    let seen = fake.requests();
    assert_eq!(seen.len(), before + 1, "one upstream request per request");
    let key = seen[before].key.clone().expect("an upstream key");
    assert_eq!(
        body["content"][0]["text"],
        format!("served by {key}"),
        "the client got the answer of the request the fake saw"
    );
    assert!(!account.is_empty());
    key
}

/// `n` Anthropic requests for `model`, one after another; the upstream key of each.
async fn sequence(keyway: &Keyway, fake: &FakeUpstream, model: &str, n: usize) -> Vec<String> {
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        keys.push(served_by(keyway, fake, model).await);
    }
    keys
}

/// How often each key occurs in `keys`.
fn counts(keys: &[String]) -> HashMap<&str, usize> {
    let mut out = HashMap::new();
    for k in keys {
        *out.entry(k.as_str()).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn default_policy_is_round_robin_in_configured_order() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-a", "sk-b", "sk-c"])
        .await;
    let keyway = setup.start().await;

    // The account header names the account the request used, in the same rotation.
    let mut headers = Vec::new();
    for _ in 0..6 {
        let r = keyway.anthropic("claude-sonnet-4-5").await;
        assert_eq!(r.status(), 200);
        headers.push(r.headers()["x-keyway-account"].to_str().unwrap().to_owned());
    }
    assert_eq!(
        fake.keys_used(),
        ["sk-a", "sk-b", "sk-c", "sk-a", "sk-b", "sk-c"]
    );
    let expected: Vec<&str> = [0, 1, 2, 0, 1, 2]
        .iter()
        .map(|&i| ids[i].as_str())
        .collect();
    assert_eq!(headers, expected);
}

#[tokio::test]
async fn smooth_weighted_round_robin_follows_nginx_sequence() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-a", "sk-b", "sk-c"])
        .await;
    let weights = format!("{}=5,{}=1,{}=1", ids[0], ids[1], ids[2]);
    let out = setup
        .cli(&[
            "policy",
            "set",
            "anthropic",
            "--strategy",
            "weighted_round_robin",
            "--weights",
            &weights,
        ])
        .await;
    out.ok();
    let keyway = setup.start().await;

    let keys = sequence(&keyway, &fake, "claude-sonnet-4-5", 14).await;
    // nginx's smooth WRR for 5,1,1 is a a b a c a a, and then the same again.
    let cycle = ["sk-a", "sk-a", "sk-b", "sk-a", "sk-c", "sk-a", "sk-a"];
    let expected: Vec<&str> = cycle.iter().chain(cycle.iter()).copied().collect();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn priority_uses_the_first_listed_account_and_the_next_when_it_is_disabled() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-a", "sk-b", "sk-c"])
        .await;
    // Listed order B, C, A: the policy's order counts, not the accounts' order in the file.
    let order = format!("{},{},{}", ids[1], ids[2], ids[0]);
    setup
        .cli(&[
            "policy",
            "set",
            "anthropic",
            "--strategy",
            "priority",
            "--accounts",
            &order,
        ])
        .await
        .ok();
    let keyway = setup.start().await;

    assert_eq!(
        sequence(&keyway, &fake, "claude-sonnet-4-5", 4).await,
        ["sk-b"; 4]
    );

    let out = keyway.cli(&["account", "disable", &ids[1]]).await;
    assert_eq!(out.ok(), format!("disabled {}", ids[1]));
    assert_eq!(
        sequence(&keyway, &fake, "claude-opus-4-1", 3).await,
        ["sk-c"; 3],
        "with the first disabled, the second listed serves"
    );

    keyway.cli(&["account", "enable", &ids[1]]).await.ok();
    assert_eq!(
        sequence(&keyway, &fake, "claude-sonnet-4-5", 2).await,
        ["sk-b"; 2],
        "re-enabled, the first listed serves again"
    );
}

// Statistical bounds below use the normal approximation to the binomial: a count of n draws
// with probability p has mean np and standard deviation sqrt(np(1-p)). A two-sided bound of z
// standard deviations is exceeded with probability 2·Φ(-z): z = 5.3 gives 1.2e-7, z = 5.5
// gives 3.8e-8. Summed (union bound) over every count a test checks, each test's chance of a
// false failure stays below 1e-6.

#[tokio::test]
async fn weighted_random_follows_the_weights() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-heavy", "sk-light"])
        .await;
    let weights = format!("{}=3,{}=1", ids[0], ids[1]);
    setup
        .cli(&[
            "policy",
            "set",
            "anthropic",
            "--strategy",
            "weighted_random",
            "--weights",
            &weights,
        ])
        .await
        .ok();
    let keyway = setup.start().await;

    const N: usize = 1000;
    let keys = sequence(&keyway, &fake, "claude-sonnet-4-5", N).await;
    let heavy = counts(&keys).get("sk-heavy").copied().unwrap_or(0);
    assert_eq!(
        counts(&keys).values().sum::<usize>(),
        N,
        "only the two keys: {:?}",
        counts(&keys)
    );
    // p = 0.75, n = 1000: sd of the share = sqrt(0.75·0.25/1000) = 0.0137; ±5.3 sd = ±0.0726.
    // Two-sided false-failure probability 1.2e-7.
    let share = heavy as f64 / N as f64;
    assert!(
        (0.677..=0.823).contains(&share),
        "heavy account's share {share} is not about 3/4"
    );
    // Random, not a weighted rotation: smooth WRR for 3:1 (a a b a) never picks the light
    // account twice in a row; at random that happens with probability 1/16 per pair, so never
    // seeing it in 999 pairs has probability about (15/16)^500 < 1e-14.
    assert!(
        keys.windows(2)
            .any(|w| w[0] == "sk-light" && w[1] == "sk-light"),
        "the light account was never picked twice in a row: a rotation, not random"
    );
}

#[tokio::test]
async fn random_spreads_evenly() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    setup
        .add_accounts(&fake, "anthropic", &["sk-a", "sk-b", "sk-c"])
        .await;
    setup
        .cli(&["policy", "set", "anthropic", "--strategy", "random"])
        .await
        .ok();
    let keyway = setup.start().await;

    const N: usize = 600;
    let keys = sequence(&keyway, &fake, "claude-sonnet-4-5", N).await;
    let c = counts(&keys);
    assert_eq!(c.len(), 3, "{c:?}");
    // p = 1/3, n = 600: mean 200, sd = sqrt(600·(1/3)·(2/3)) = 11.55; ±5.5 sd = ±63.5.
    // Per account 3.8e-8, for three accounts < 1.2e-7.
    for (key, n) in &c {
        assert!((137..=263).contains(n), "{key} served {n} of {N}: {c:?}");
    }
    // Random, not a rotation: round-robin never repeats an account back to back; at random a
    // repeat has probability 1/3 per pair, so none in 599 pairs has probability (2/3)^599.
    assert!(
        keys.windows(2).any(|w| w[0] == w[1]),
        "never the same account twice in a row: a rotation, not random"
    );
}

#[tokio::test]
async fn family_policy_wins_over_the_provider_policy() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-a", "sk-b"])
        .await;
    let order = format!("{},{}", ids[1], ids[0]);
    setup
        .cli(&[
            "policy",
            "set",
            "anthropic/opus",
            "--strategy",
            "priority",
            "--accounts",
            &order,
        ])
        .await
        .ok();
    setup
        .cli(&["policy", "set", "anthropic", "--strategy", "round_robin"])
        .await
        .ok();
    let keyway = setup.start().await;

    let mut opus = Vec::new();
    let mut rest = Vec::new();
    for model in ["claude-sonnet-4-5", "claude-haiku-4-5"].repeat(3) {
        opus.push(served_by(&keyway, &fake, "claude-opus-4-1").await);
        rest.push(served_by(&keyway, &fake, model).await);
    }
    assert_eq!(opus, ["sk-b"; 6], "anthropic/opus is priority [B, A]");
    assert_eq!(
        rest,
        ["sk-a", "sk-b", "sk-a", "sk-b", "sk-a", "sk-b"],
        "sonnet and haiku share the provider-wide rotation, unaffected by opus requests"
    );
}

#[tokio::test]
async fn openai_and_gemini_route_with_their_auth_headers() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-1");
    fake.register_key(Provider::OpenAi, "sk-oai-1");
    fake.register_key(Provider::Google, "AIza-goo-1");
    let setup = Setup::new(&fake.base_url(), "");
    let ant = setup.add_account("anthropic", "A", "sk-ant-1").await;
    let oai = setup.add_account("openai", "O", "sk-oai-1").await;
    let goo = setup.add_account("google", "G", "AIza-goo-1").await;
    let keyway = setup.start().await;
    let key = keyway.client_key.clone();
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});

    // OpenAI Chat with the client key as a bearer token (the OpenAI SDKs' way).
    let r = keyway
        .http
        .post(keyway.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-keyway-account"], oai.as_str());
    // OpenAI Responses with the client key as x-api-key.
    let r = keyway
        .post("/v1/responses", &json!({"model": "gpt-5", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-keyway-account"], oai.as_str());
    // Gemini with the client key as x-goog-api-key.
    let r = keyway
        .http
        .post(keyway.url("/v1beta/models/gemini-2.5-pro:generateContent"))
        .header("x-goog-api-key", &key)
        .json(&gemini)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-keyway-account"], goo.as_str());
    // Gemini streaming with the client key in `?key=`.
    let r = keyway
        .http
        .post(keyway.url(&format!(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={key}"
        )))
        .json(&gemini)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(r.text().await.unwrap().contains("served by AIza-goo-1"));
    // Gemini's model list, with the key in `?key=` alone.
    let r = keyway
        .http
        .get(keyway.url(&format!("/v1beta/models?key={key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["models"][0]["name"], "models/gemini-2.5-pro");
    // And Anthropic, for contrast.
    assert_eq!(
        keyway.anthropic("claude-sonnet-4-5").await.headers()["x-keyway-account"],
        ant.as_str()
    );

    let seen = fake.requests();
    let summary: Vec<(Provider, &str, Option<&str>)> = seen
        .iter()
        .map(|r| (r.provider, r.path.as_str(), r.key.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (Provider::OpenAi, "/v1/chat/completions", Some("sk-oai-1")),
            (Provider::OpenAi, "/v1/responses", Some("sk-oai-1")),
            (
                Provider::Google,
                "/v1beta/models/gemini-2.5-pro:generateContent",
                Some("AIza-goo-1")
            ),
            (
                Provider::Google,
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                Some("AIza-goo-1")
            ),
            (Provider::Google, "/v1beta/models", Some("AIza-goo-1")),
            (Provider::Anthropic, "/v1/messages", Some("sk-ant-1")),
        ],
        "the client's key= query parameter is not forwarded"
    );
    for r in &seen[..2] {
        assert_eq!(r.header("authorization"), Some("Bearer sk-oai-1"));
        assert_eq!(r.header("x-api-key"), None);
        assert_eq!(r.header("x-goog-api-key"), None);
    }
    for r in &seen[2..5] {
        assert_eq!(r.header("x-goog-api-key"), Some("AIza-goo-1"));
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.header("x-api-key"), None);
    }
    assert_eq!(seen[5].header("x-api-key"), Some("sk-ant-1"));
    assert_eq!(seen[5].header("authorization"), None);
    assert!(fake.unmatched().is_empty(), "{:?}", fake.unmatched());

    // A wrong client key in any of those places is refused before anything goes upstream.
    let wrong = "kw-wrong";
    let refused = [
        keyway
            .http
            .post(keyway.url("/v1/chat/completions"))
            .bearer_auth(wrong)
            .json(&chat),
        keyway
            .http
            .post(keyway.url("/v1/responses"))
            .header("x-api-key", wrong)
            .json(&chat),
        keyway
            .http
            .post(keyway.url("/v1beta/models/gemini-2.5-pro:generateContent"))
            .header("x-goog-api-key", wrong)
            .json(&gemini),
        keyway
            .http
            .post(keyway.url(&format!(
                "/v1beta/models/gemini-2.5-pro:generateContent?key={wrong}"
            )))
            .json(&gemini),
    ];
    for request in refused {
        assert_eq!(request.send().await.unwrap().status(), 401);
    }
    assert_eq!(fake.requests().len(), 6);
}

#[tokio::test]
async fn user_defined_openai_compatible_provider_serves_its_families() {
    let fake = FakeUpstream::start().await;
    let extra = format!(
        "[providers.deepinfra]\nbase_url = \"{}/v1\"\n\n\
         [providers.deepinfra.families]\nllama = [\"meta-llama/*\"]\n",
        fake.base_url()
    );
    // A user-defined provider speaks OpenAI's API, so its keys are the fake's OpenAI keys.
    fake.register_keys(Provider::OpenAi, ["sk-oai-1", "di-key-1"]);
    let setup = Setup::new(&fake.base_url(), &extra);
    let oai = setup.add_account("openai", "O", "sk-oai-1").await;
    let di = setup.add_account("deepinfra", "DI", "di-key-1").await;
    assert!(di.starts_with("deepinfra-"), "{di}");
    let keyway = setup.start().await;

    for (model, account) in [
        ("meta-llama/x", &di),
        ("gpt-4o", &oai),
        ("meta-llama/Llama-3.3-70B-Instruct", &di),
    ] {
        let r = keyway
            .post(
                "/v1/chat/completions",
                &json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{model}");
        assert_eq!(r.headers()["x-keyway-account"], account.as_str(), "{model}");
    }
    // The Responses API routes the same way.
    let r = keyway
        .post(
            "/v1/responses",
            &json!({"model": "meta-llama/x", "input": "hi"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-keyway-account"], di.as_str());
    let recorded = fake.requests();
    let seen: Vec<(&str, Option<&str>, Option<&str>)> = recorded
        .iter()
        .map(|r| (r.path.as_str(), r.key.as_deref(), r.header("authorization")))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "/v1/chat/completions",
                Some("di-key-1"),
                Some("Bearer di-key-1")
            ),
            (
                "/v1/chat/completions",
                Some("sk-oai-1"),
                Some("Bearer sk-oai-1")
            ),
            (
                "/v1/chat/completions",
                Some("di-key-1"),
                Some("Bearer di-key-1")
            ),
            ("/v1/responses", Some("di-key-1"), Some("Bearer di-key-1")),
        ]
    );
    assert!(fake.unmatched().is_empty(), "{:?}", fake.unmatched());
}

#[tokio::test]
async fn model_list_merges_openai_shaped_providers_and_is_anthropics_for_anthropic_clients() {
    let fake = FakeUpstream::start().await;
    let extra = format!(
        "[providers.deepinfra]\nbase_url = \"{}/v1\"\n\n\
         [providers.deepinfra.families]\nllama = [\"meta-llama/*\"]\n",
        fake.base_url()
    );
    fake.register_key(Provider::Anthropic, "sk-ant-1");
    fake.register_keys(Provider::OpenAi, ["sk-oai-1", "di-key-1"]);
    let setup = Setup::new(&fake.base_url(), &extra);
    setup.add_account("anthropic", "A", "sk-ant-1").await;
    setup.add_account("openai", "O", "sk-oai-1").await;
    setup.add_account("deepinfra", "DI", "di-key-1").await;
    let keyway = setup.start().await;
    // The user-defined provider lists its own models.
    fake.set_default(
        "di-key-1",
        Behaviour::Raw {
            status: 200,
            headers: vec![],
            body: json!({"object": "list", "data": [
                {"id": "meta-llama/Llama-3.3-70B-Instruct", "object": "model", "created": 1, "owned_by": "meta"}
            ]})
            .to_string(),
        },
    );

    let r = keyway
        .http
        .get(keyway.url("/v1/models"))
        .bearer_auth(&keyway.client_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-5",
            "meta-llama/Llama-3.3-70B-Instruct"
        ]
    );
    let mut keys = fake.keys_used();
    keys.sort();
    assert_eq!(keys, ["di-key-1", "sk-oai-1"]);
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.path == "/v1/models" && r.provider == Provider::OpenAi)
    );

    fake.clear();
    let r = keyway
        .http
        .get(keyway.url("/v1/models"))
        .header("x-api-key", &keyway.client_key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    assert_eq!(
        list["has_more"], false,
        "Anthropic's paginated shape: {list}"
    );
    assert_eq!(list["data"][0]["type"], "model");
    assert_eq!(list["first_id"], "claude-opus-4-1");
    assert_eq!(fake.keys_used(), ["sk-ant-1"]);
    assert_eq!(fake.requests()[0].provider, Provider::Anthropic);
}
