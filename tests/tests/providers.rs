//! Routing across providers and models: a provider of the user's own in the Anthropic format
//! (another fake, serving as a vendor does: under a path, keys as bearers), a preset that needs
//! only a key, aliases that send a model elsewhere and rewrite only its name, and fallback
//! chains that take a request to the next pool when the first cannot serve it — per kind of
//! failure, back when the first recovers, refused across formats, and swapped under load
//! without a failed request.

use std::time::Duration;

use keyway_tests::{
    Behaviour, FakeConfig, FakeUpstream, Keyway, Provider, RateLimit, Setup, Vendor,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Longest wait for an account to serve again after its cooldown.
const RECOVERY: Duration = Duration::from_secs(10);

/// A fake serving the Anthropic format as a vendor: under `/anthropic`, keys as bearers.
async fn vendor() -> FakeUpstream {
    FakeUpstream::start_with(FakeConfig {
        vendor: Some(Vendor {
            path_prefix: "/anthropic".to_owned(),
            bearer_keys: true,
        }),
        ..FakeConfig::default()
    })
    .await
    .expect("vendor fake")
}

/// `[providers.acme]`: the user's own Anthropic-format provider at `vendor`.
fn acme(vendor: &FakeUpstream) -> String {
    format!(
        "[providers.acme]\nformat = \"anthropic\"\nbase_url = \"{}/anthropic\"\nauth = \"bearer\"\n\
         [providers.acme.families]\nacme = [\"acme-*\"]\n\n",
        vendor.base_url()
    )
}

/// An Anthropic Messages request for `model`; the response.
async fn claude(keyway: &Keyway, model: &str) -> reqwest::Response {
    keyway
        .post(
            "/v1/messages",
            &json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request")
}

fn route_of(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-keyway-route")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The model each recorded request of `fake` named.
fn models_seen(fake: &FakeUpstream) -> Vec<String> {
    fake.requests()
        .iter()
        .filter_map(|r| r.json())
        .map(|b| b["model"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_provider_of_the_users_own_serves_claude_requests_with_its_own_auth() {
    let fake = FakeUpstream::start().await;
    let vendor = vendor().await;
    vendor.register_key(Provider::Anthropic, "sk-acme-1");
    let setup = Setup::new(&fake.base_url(), &acme(&vendor));
    setup.add_account("acme", "Acme", "sk-acme-1").await;
    let keyway = setup.start().await;

    let r = claude(&keyway, "acme-large").await;
    assert_eq!(r.status(), 200);
    // No policy of its own for the family: the provider's pool serves it.
    assert_eq!(route_of(&r), "acme");
    let seen = vendor.requests();
    assert_eq!(seen.len(), 1, "the vendor got it, under its path");
    let auth = seen[0].header("authorization").unwrap_or_default();
    assert_eq!(auth, "Bearer sk-acme-1");
    assert!(
        seen[0].header("x-api-key").is_none(),
        "no second copy of the key"
    );
    assert_eq!(seen[0].header("anthropic-version"), Some("2023-06-01"));
    assert!(vendor.unmatched().is_empty(), "{:?}", vendor.unmatched());
    // Claude models still go to Anthropic.
    assert_eq!(claude(&keyway, "claude-sonnet-4-5").await.status(), 503);
    assert!(fake.requests().is_empty());
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_preset_needs_only_a_key() {
    let fake = FakeUpstream::start().await;
    let vendor = vendor().await;
    vendor.register_key(Provider::Anthropic, "sk-deepseek-1");
    // Nothing about deepseek in the config: the preset knows its endpoint.
    let plain = Setup::new(&fake.base_url(), "");
    let id = plain.add_account("deepseek", "DS", "sk-deepseek-1").await;
    assert!(id.starts_with("deepseek-"), "{id}");
    let keyway = plain.start().await;
    let providers = keyway.api_get("/providers").await;
    let deepseek = providers
        .as_array()
        .and_then(|l| l.iter().find(|p| p["id"] == "deepseek"))
        .expect("deepseek listed")
        .clone();
    assert_eq!(deepseek["format"], "anthropic");
    assert_eq!(deepseek["base_url"], "https://api.deepseek.com/anthropic");
    assert_eq!(deepseek["in_use"], true);
    assert!(
        deepseek["docs"]
            .as_str()
            .is_some_and(|d| d.starts_with("https://api-docs.deepseek.com"))
    );
    let moonshot = providers
        .as_array()
        .and_then(|l| l.iter().find(|p| p["id"] == "moonshot"))
        .expect("other presets offered");
    assert_eq!(moonshot["in_use"], false);
    assert_eq!(keyway.stop().await, Some(0));

    // This machine cannot reach DeepSeek: its base URL (only) points at the vendor fake; the
    // format, auth header and families stay the preset's.
    let setup = Setup::new(
        &fake.base_url(),
        &format!(
            "[providers.deepseek]\nbase_url = \"{}/anthropic\"\n",
            vendor.base_url()
        ),
    );
    setup.add_account("deepseek", "DS", "sk-deepseek-1").await;
    let keyway = setup.start().await;
    let r = claude(&keyway, "deepseek-v4-pro").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let seen = vendor.requests();
    assert_eq!(seen[0].header("x-api-key"), Some("sk-deepseek-1"));
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn an_alias_sends_a_model_elsewhere_and_rewrites_only_its_name() {
    let fake = FakeUpstream::start().await;
    let vendor = vendor().await;
    vendor.register_key(Provider::Anthropic, "sk-acme-1");
    fake.register_key(Provider::Anthropic, "sk-ant-1");
    let setup = Setup::new(&fake.base_url(), &acme(&vendor));
    setup.add_account("acme", "Acme", "sk-acme-1").await;
    setup.add_account("anthropic", "Main", "sk-ant-1").await;
    let keyway = setup.start().await;
    let set = keyway
        .cli(&["alias", "set", "claude-haiku-*", "acme:acme-small"])
        .await;
    assert_eq!(set.ok(), "claude-haiku-* → acme:acme-small");
    let list = keyway.cli(&["alias", "list", "--json"]).await;
    let list: Value = serde_json::from_str(list.ok()).expect("json");
    assert_eq!(
        list,
        json!([{"glob": "claude-haiku-*", "to": "acme:acme-small"}])
    );

    // The instance picks the edit up; wait for the route to change.
    let deadline = tokio::time::Instant::now() + RECOVERY;
    loop {
        let route = keyway
            .api_get("/route?surface=anthropic_messages&model=claude-haiku-4-5")
            .await;
        if route["alias"] == "claude-haiku-*" {
            assert_eq!(
                (route["pool"].as_str(), route["model"].as_str()),
                (Some("acme"), Some("acme-small"))
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{route}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = json!({"model": "claude-haiku-4-5", "max_tokens": 16, "metadata": {"user_id": "u"},
                      "messages": [{"role": "user", "content": "the model is claude-haiku-4-5"}]});
    let r = keyway
        .post("/v1/messages", &body)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(route_of(&r), "alias claude-haiku-*: acme:acme-small");
    let seen = vendor.requests();
    let sent: Value = seen[0].json().expect("json body");
    let mut expected = body.clone();
    expected["model"] = json!("acme-small");
    assert_eq!(sent, expected, "only the model changed");
    // Other Claude models are not caught by the alias.
    assert_eq!(claude(&keyway, "claude-sonnet-4-5").await.status(), 200);
    assert_eq!(models_seen(&fake), ["claude-sonnet-4-5"]);

    let records = keyway.api_get("/requests").await;
    let rerouted = records
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|r| r["requested_model"] == "claude-haiku-4-5")
        })
        .expect("the aliased request")
        .clone();
    assert_eq!(rerouted["model"], "acme-small");
    assert_eq!(rerouted["provider"], "acme");
    assert_eq!(rerouted["route"], "alias claude-haiku-*: acme:acme-small");
    assert_eq!(keyway.stop().await, Some(0));
}

/// Polls the account's live state until `done`.
async fn wait_for_account(keyway: &Keyway, id: &str, done: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + RECOVERY;
    loop {
        let accounts = keyway.api_get("/accounts").await;
        let live = accounts
            .as_array()
            .and_then(|l| l.iter().find(|a| a["id"] == id))
            .map(|a| a["live"].clone())
            .unwrap_or_default();
        if done(&live) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id}: {live}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_chain_takes_over_when_the_pool_is_exhausted_and_gives_back_when_it_recovers() {
    let fake = FakeUpstream::start().await;
    let vendor = vendor().await;
    vendor.register_key(Provider::Anthropic, "sk-acme-1");
    fake.register_key(Provider::Anthropic, "sk-ant-1");
    let setup = Setup::new(
        &fake.base_url(),
        &(acme(&vendor)
            + "[policies.anthropic]\nstrategy = \"round_robin\"\nfallback = [\"acme:acme-large\"]\n\n"),
    );
    let main = setup.add_account("anthropic", "Main", "sk-ant-1").await;
    setup.add_account("acme", "Acme", "sk-acme-1").await;
    let keyway = setup.start().await;
    fake.push("sk-ant-1", Behaviour::RateLimited(RateLimit::RetryAfter(1)));

    let r = claude(&keyway, "claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        route_of(&r),
        "anthropic, acme:acme-large (after rate_limit)"
    );
    assert_eq!(models_seen(&vendor), ["acme-large"]);
    // While Main cools down, straight on along the chain (no request reaches it).
    let r = claude(&keyway, "claude-sonnet-4-5").await;
    assert_eq!(
        route_of(&r),
        "anthropic, acme:acme-large (after rate_limit)"
    );
    assert_eq!(fake.requests().len(), 1);

    wait_for_account(&keyway, &main, |l| l["state"] == "serving").await;
    let r = claude(&keyway, "claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    assert_eq!(route_of(&r), "anthropic");
    assert_eq!(
        models_seen(&fake),
        ["claude-sonnet-4-5", "claude-sonnet-4-5"]
    );
    assert_eq!(vendor.requests().len(), 2);
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn each_step_takes_only_the_failures_it_names() {
    let fake = FakeUpstream::start().await;
    fake.register_keys(Provider::Anthropic, ["sk-sonnet", "sk-opus"]);
    let vendor = vendor().await;
    vendor.register_key(Provider::Anthropic, "sk-acme-1");
    let setup = Setup::new(&fake.base_url(), &acme(&vendor));
    let sonnet = setup.add_account("anthropic", "Sonnet", "sk-sonnet").await;
    let opus = setup.add_account("anthropic", "Opus", "sk-opus").await;
    setup.add_account("acme", "Acme", "sk-acme-1").await;
    // Sonnet's requests go to its own account; too long → the larger model, with its name;
    // a server error → acme; a rate limit → nowhere.
    let mut config = std::fs::read_to_string(&setup.config_path).expect("config");
    config.push_str(&format!(
        "\n[policies.\"anthropic/sonnet\"]\nstrategy = \"priority\"\naccounts = [\"{sonnet}\"]\n\
         fallback = [\"context_window=anthropic/opus:claude-opus-4-1\", \"server_error=acme:acme-large\"]\n\n\
         [policies.\"anthropic/opus\"]\nstrategy = \"priority\"\naccounts = [\"{opus}\"]\n"
    ));
    std::fs::write(&setup.config_path, config).expect("config");
    let keyway = setup.start().await;

    fake.push("sk-sonnet", Behaviour::ContextTooLong);
    let r = claude(&keyway, "claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        route_of(&r),
        "anthropic/sonnet, anthropic/opus:claude-opus-4-1 (after context_window)"
    );
    assert_eq!(fake.keys_used(), ["sk-sonnet", "sk-opus"]);
    assert_eq!(models_seen(&fake), ["claude-sonnet-4-5", "claude-opus-4-1"]);

    // Another client error is the client's: passed on, no step taken.
    fake.clear();
    let r = keyway
        .post(
            "/v1/messages",
            &json!({"model": "claude-sonnet-4-5", "messages": []}),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(route_of(&r), "anthropic/sonnet");
    assert_eq!(fake.keys_used(), ["sk-sonnet"]);

    // A server error goes to the server_error step, not the larger model.
    fake.clear();
    fake.push("sk-sonnet", Behaviour::ServerError(500));
    let r = claude(&keyway, "claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        route_of(&r),
        "anthropic/sonnet, acme:acme-large (after server_error)"
    );
    assert_eq!(models_seen(&vendor), ["acme-large"]);

    // A rate limit has no step: the client gets it.
    wait_for_account(&keyway, &sonnet, |l| l["state"] == "serving").await;
    fake.clear();
    fake.push(
        "sk-sonnet",
        Behaviour::RateLimited(RateLimit::RetryAfter(30)),
    );
    let r = claude(&keyway, "claude-sonnet-4-5").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(route_of(&r), "anthropic/sonnet");
    assert_eq!(fake.keys_used(), ["sk-sonnet"]);
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn a_step_naming_no_pool_or_its_own_is_refused_with_the_reason() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let out = setup
        .cli(&[
            "policy",
            "set",
            "anthropic",
            "--strategy",
            "round_robin",
            "--fallback",
            "nowhere:gpt-4o",
        ])
        .await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("`nowhere`"), "{}", out.stderr);
    let keyway = setup.start().await;
    let r = keyway
        .api(reqwest::Method::PUT, "/policies/anthropic")
        .json(&json!({"strategy": "round_robin", "fallback": ["anthropic"]}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("falls back to itself")),
        "{body}"
    );
    // A step of another format is taken: such requests are translated (translation.rs).
    let r = keyway
        .api(reqwest::Method::PUT, "/policies/anthropic")
        .json(&json!({"strategy": "round_robin", "fallback": ["google"]}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn policies_with_chains_swap_under_load_without_a_failed_request() {
    let fake = FakeUpstream::start().await;
    let vendor = vendor().await;
    vendor.register_keys(Provider::Anthropic, ["sk-acme-1", "sk-acme-2"]);
    fake.register_key(Provider::Anthropic, "sk-ant-1");
    let setup = Setup::new(&fake.base_url(), &acme(&vendor));
    setup.add_account("anthropic", "Main", "sk-ant-1").await;
    setup.add_account("acme", "A1", "sk-acme-1").await;
    setup.add_account("acme", "A2", "sk-acme-2").await;
    let keyway = setup.start().await;
    // Main always out: every request needs the chain.
    fake.set_default("sk-ant-1", Behaviour::RateLimited(RateLimit::RetryAfter(1)));
    let policies = [
        json!({"strategy": "round_robin", "fallback": ["acme"]}),
        json!({"strategy": "priority", "fallback": ["acme:acme-large"]}),
        json!({"strategy": "round_robin", "fallback": ["server_error=acme", "acme:acme-small"]}),
    ];
    // A chain from the first request on; the swaps then replace it under load.
    let r = keyway
        .api(reqwest::Method::PUT, "/policies/anthropic")
        .json(&policies[0])
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200);
    let load = async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let batch = (0..4).map(|_| claude(&keyway, "claude-sonnet-4-5"));
            for r in futures_util::future::join_all(batch).await {
                statuses.push(r.status().as_u16());
            }
        }
        statuses
    };
    let swaps = async {
        let mut done = 0;
        for i in 0..30 {
            let r = keyway
                .api(reqwest::Method::PUT, "/policies/anthropic")
                .json(&policies[i % policies.len()])
                .send()
                .await
                .expect("put");
            assert_eq!(r.status(), 200);
            done += 1;
        }
        done
    };
    let (statuses, swapped) = tokio::join!(load, swaps);
    assert_eq!(swapped, 30);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses.len(), 160);
    assert!(vendor.requests().len() >= 160);
    assert_eq!(keyway.stop().await, Some(0));
}
