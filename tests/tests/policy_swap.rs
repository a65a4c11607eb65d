//! Policy swaps through the management API: atomic under concurrent load, effective on the
//! very next request, refused whole when invalid, and leaving other pools' rotation alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use keyway_tests::{FakeUpstream, Keyway, Provider, Setup};
use reqwest::Method;
use serde_json::{Value, json};

/// `PUT /api/policies/<key>` with `body`; the status and the JSON answer.
async fn put_policy(keyway: &Keyway, key: &str, body: &Value) -> (u16, Value) {
    let r = keyway
        .api(Method::PUT, &format!("/policies/{key}"))
        .json(body)
        .send()
        .await
        .expect("management api");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!("PUT /api/policies/{key} answered {status} with non-JSON {text:?}")
    });
    (status, json)
}

/// The upstream key the next Anthropic request for `model` uses (asserting it is served with
/// exactly one upstream request).
async fn served_by(keyway: &Keyway, fake: &FakeUpstream, model: &str) -> String {
    let before = fake.requests().len();
    let r = keyway.anthropic(model).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let _ = r.bytes().await.expect("body");
    let seen = fake.requests();
    assert_eq!(seen.len(), before + 1, "one upstream request per request");
    seen[before].key.clone().expect("an upstream key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swaps_under_concurrent_load_fail_and_misroute_nothing() {
    const CLIENTS: usize = 32;
    /// Each client sends at least this many requests, and goes on until the swaps are done.
    const MIN_PER_CLIENT: usize = 64;
    /// priority [A] → priority [B] → round_robin, 30 times: ends on round_robin. Each swap
    /// saves the config file with fsync (about 30 ms here), so 90 swaps take about 3 s.
    const SWAPS: usize = 90;

    let fake = FakeUpstream::start().await;
    fake.register_keys(
        Provider::Anthropic,
        ["sk-ant-0", "sk-ant-1", "sk-ant-2", "sk-ant-3"],
    );
    fake.register_key(Provider::OpenAi, "sk-oai-1");
    let setup = Setup::new(&fake.base_url(), "");
    let mut key_of: HashMap<String, String> = HashMap::new();
    let mut ant = Vec::new();
    for i in 0..4 {
        let secret = format!("sk-ant-{i}");
        let id = setup
            .add_account("anthropic", &format!("A{i}"), &secret)
            .await;
        key_of.insert(id.clone(), secret);
        ant.push(id);
    }
    let oai = setup.add_account("openai", "O", "sk-oai-1").await;
    key_of.insert(oai.clone(), "sk-oai-1".to_owned());
    let keyway = Arc::new(setup.start().await);

    let done = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let keyway = keyway.clone();
        let done = done.clone();
        let completed = completed.clone();
        clients.push(tokio::spawn(async move {
            // (is_openai, status, x-keyway-account, body)
            let mut results: Vec<(bool, u16, String, String)> = Vec::new();
            let mut i = 0;
            while i < MIN_PER_CLIENT || !done.load(Ordering::SeqCst) {
                let openai = (i + c) % 2 == 1;
                let r = if openai {
                    keyway
                        .post(
                            "/v1/chat/completions",
                            &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
                        )
                        .send()
                        .await
                        .expect("request to keyway")
                } else {
                    keyway.anthropic("claude-sonnet-4-5").await
                };
                let status = r.status().as_u16();
                let account = r
                    .headers()
                    .get("x-keyway-account")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let body = r.text().await.unwrap_or_else(|e| format!("<{e}>"));
                results.push((openai, status, account, body));
                completed.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
            results
        }));
    }

    // Swap only once traffic flows, so every swap happens under load.
    fake.wait_for_requests(CLIENTS * 2).await;
    let completed_before = completed.load(Ordering::SeqCst);
    let bodies = [
        json!({"strategy": "priority", "accounts": [ant[0]]}),
        json!({"strategy": "priority", "accounts": [ant[1]]}),
        json!({"strategy": "round_robin"}),
    ];
    for i in 0..SWAPS {
        let (status, answer) = put_policy(&keyway, "anthropic", &bodies[i % 3]).await;
        assert_eq!(status, 200, "swap {i}: {answer}");
    }
    let during = completed.load(Ordering::SeqCst) - completed_before;
    done.store(true, Ordering::SeqCst);

    let mut results = Vec::new();
    for c in clients {
        results.extend(c.await.expect("client task"));
    }
    assert!(
        during >= SWAPS,
        "only {during} requests completed during {SWAPS} swaps: the swaps did not happen under load"
    );

    let mut failed = Vec::new();
    let mut misrouted = Vec::new();
    let mut used: HashMap<String, usize> = HashMap::new();
    for (openai, status, account, body) in &results {
        if *status != 200 {
            failed.push((status, body.clone()));
            continue;
        }
        let right_provider = if *openai {
            *account == oai
        } else {
            ant.contains(account)
        };
        let key = key_of.get(account).map(String::as_str).unwrap_or("?");
        if !right_provider || !body.contains(&format!("served by {key}")) {
            misrouted.push((openai, account.clone(), body.clone()));
        }
        *used.entry(account.clone()).or_default() += 1;
    }
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, e.g. {:?}",
        failed.len(),
        results.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(
        misrouted.is_empty(),
        "{} misrouted, e.g. {:?}",
        misrouted.len(),
        &misrouted[..misrouted.len().min(3)]
    );
    for id in &ant {
        assert!(
            used.contains_key(id),
            "round-robin phases under load reach every account: {used:?}"
        );
    }

    // What the fake saw agrees: one upstream request per client request, each with a key of
    // the provider it was addressed to.
    let seen = fake.requests();
    assert_eq!(seen.len(), results.len());
    let ant_keys: Vec<&str> = ant.iter().map(|id| key_of[id].as_str()).collect();
    for r in &seen {
        let key = r.key.as_deref().unwrap_or("");
        match r.provider {
            Provider::Anthropic => assert!(ant_keys.contains(&key), "{key} on Anthropic"),
            Provider::OpenAi => assert_eq!(key, "sk-oai-1"),
            Provider::Google => panic!("nothing was sent to Gemini"),
        }
    }
    assert!(fake.unmatched().is_empty(), "{:?}", fake.unmatched());

    // The last swap (round_robin) is what serves and what the file says.
    let policies = keyway.api_get("/policies").await;
    let anthropic = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "anthropic")
        .unwrap();
    assert_eq!(anthropic["strategy"], "round_robin");
    assert_eq!(anthropic["configured"], true);
    let text = std::fs::read_to_string(&keyway.setup.config_path).unwrap();
    assert!(text.contains("[policies.anthropic]"), "{text}");
    let mut next: Vec<String> = Vec::new();
    for _ in 0..4 {
        next.push(served_by(&keyway, &fake, "claude-sonnet-4-5").await);
    }
    next.sort();
    assert_eq!(next, ["sk-ant-0", "sk-ant-1", "sk-ant-2", "sk-ant-3"]);
}

#[tokio::test]
async fn a_swap_applies_to_the_next_request_and_an_invalid_one_changes_nothing() {
    let fake = FakeUpstream::start().await;
    fake.register_keys(Provider::Anthropic, ["sk-a", "sk-b"]);
    fake.register_key(Provider::OpenAi, "sk-o");
    let setup = Setup::new(&fake.base_url(), "");
    let a = setup.add_account("anthropic", "A", "sk-a").await;
    let b = setup.add_account("anthropic", "B", "sk-b").await;
    let o = setup.add_account("openai", "O", "sk-o").await;
    let keyway = setup.start().await;

    for (id, key) in [(&a, "sk-a"), (&b, "sk-b"), (&a, "sk-a"), (&b, "sk-b")] {
        let (status, view) = put_policy(
            &keyway,
            "anthropic",
            &json!({"strategy": "priority", "accounts": [id]}),
        )
        .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["strategy"], "priority");
        assert_eq!(view["members"], json!([{"id": id, "weight": 1}]));
        assert_eq!(served_by(&keyway, &fake, "claude-sonnet-4-5").await, key);
    }

    let config_before = std::fs::read(&keyway.setup.config_path).unwrap();
    let policies_before = keyway.api_get("/policies").await;
    let invalid: [(&str, Value, &str); 6] = [
        (
            "anthropic",
            json!({"strategy": "priority", "accounts": ["anthropic-nope00"]}),
            "unknown account `anthropic-nope00`",
        ),
        (
            "anthropic",
            json!({"strategy": "quickest"}),
            "unknown strategy `quickest`",
        ),
        (
            "anthropic/gpt",
            json!({"strategy": "priority"}),
            "no family `gpt`",
        ),
        (
            "antropic",
            json!({"strategy": "priority"}),
            "unknown provider `antropic`",
        ),
        (
            "anthropic",
            json!({"strategy": "priority", "accounts": [o]}),
            "belongs to `openai`",
        ),
        (
            "anthropic",
            json!({"strategy": "weighted_round_robin", "weights": {&a: 0}}),
            "at least 1",
        ),
    ];
    for (key, body, problem) in invalid {
        let (status, answer) = put_policy(&keyway, key, &body).await;
        assert_eq!(status, 400, "{key} {body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(problem),
            "{key} {body}: message {message:?} should name {problem:?}"
        );
    }
    // A misspelt field is refused too, naming the field.
    let r = keyway
        .api(Method::PUT, "/policies/anthropic")
        .json(&json!({"strategy": "priority", "acounts": [a]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let text = r.text().await.unwrap();
    assert!(text.contains("acounts"), "{text}");

    assert_eq!(
        std::fs::read(&keyway.setup.config_path).unwrap(),
        config_before,
        "the config file is byte-identical after refused edits"
    );
    assert_eq!(keyway.api_get("/policies").await, policies_before);
    assert_eq!(keyway.api_get("/status").await["config"]["ok"], true);
    assert_eq!(
        served_by(&keyway, &fake, "claude-sonnet-4-5").await,
        "sk-b",
        "the last good policy still serves"
    );
}

#[tokio::test]
async fn round_robin_keeps_its_place_across_unrelated_swaps() {
    let fake = FakeUpstream::start().await;
    fake.register_keys(Provider::Anthropic, ["sk-a", "sk-b", "sk-c"]);
    fake.register_key(Provider::OpenAi, "sk-o");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-a").await;
    let b = setup.add_account("anthropic", "B", "sk-b").await;
    setup.add_account("anthropic", "C", "sk-c").await;
    setup.add_account("openai", "O", "sk-o").await;
    let keyway = setup.start().await;
    let sonnet = "claude-sonnet-4-5";

    assert_eq!(served_by(&keyway, &fake, sonnet).await, "sk-a");
    assert_eq!(served_by(&keyway, &fake, sonnet).await, "sk-b");

    // Another provider's policy.
    let (status, _) = put_policy(&keyway, "openai", &json!({"strategy": "priority"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        served_by(&keyway, &fake, sonnet).await,
        "sk-c",
        "continues, not back to A"
    );

    // Another family of the same provider.
    let (status, _) = put_policy(
        &keyway,
        "anthropic/opus",
        &json!({"strategy": "priority", "accounts": [b]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(served_by(&keyway, &fake, sonnet).await, "sk-a");
    assert_eq!(served_by(&keyway, &fake, "claude-opus-4-1").await, "sk-b");
    assert_eq!(served_by(&keyway, &fake, sonnet).await, "sk-b");

    // A new label changes nothing about routing.
    let r = keyway
        .api(Method::PATCH, &format!("/accounts/{b}"))
        .json(&json!({"label": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(served_by(&keyway, &fake, sonnet).await, "sk-c");

    // Removing the other family's policy again.
    let r = keyway
        .api(Method::DELETE, "/policies/anthropic/opus")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(served_by(&keyway, &fake, sonnet).await, "sk-a");
    assert_eq!(served_by(&keyway, &fake, sonnet).await, "sk-b");
}
