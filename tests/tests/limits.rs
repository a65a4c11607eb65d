//! Account limits and the providers' rate-limit headers through the real proxy:
//! `max_concurrent` holds under load and answers "all busy" in the client's API shape, an
//! `rpm` ceiling passes traffic to the next account, an API key whose headers announce nothing
//! left is skipped before any 429, `most_available` ranks API keys by what their headers say
//! is left, and absurd header values change nothing for the worse.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use keyway_tests::{Behaviour, FakeUpstream, Keyway, RateBudget, RateLimits, Setup};
use serde_json::{Value, json};

/// How long a state the test waits for may take to show (bounded polls).
const PROMPTLY: Duration = Duration::from_secs(10);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An OpenAI Chat request; the response.
async fn chat(keyway: &Keyway) -> reqwest::Response {
    keyway
        .http
        .post(keyway.url("/v1/chat/completions"))
        .bearer_auth(&keyway.client_key)
        .json(&json!({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("request to keyway")
}

/// Sends one request with `send`, asserts it succeeded, and returns the upstream key used.
async fn served_by(
    fake: &FakeUpstream,
    send: impl std::future::Future<Output = reqwest::Response>,
) -> String {
    let before = fake.requests().len();
    let r = send.await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let _ = r.bytes().await;
    let seen = fake.requests();
    assert_eq!(seen.len(), before + 1, "one upstream request, no failover");
    seen[before].key.clone().expect("a key")
}

async fn account(keyway: &Keyway, id: &str) -> Value {
    keyway
        .api_get("/accounts")
        .await
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no account {id}"))
        .clone()
}

/// Polls account `id` until `ok` holds for its view (bounded).
async fn poll_account(keyway: &Keyway, id: &str, what: &str, ok: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let a = account(keyway, id).await;
        if ok(&a) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "account {id} never became {what}: {a}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn window<'a>(account: &'a Value, name: &str) -> &'a Value {
    account["live"]["quota"]
        .as_array()
        .and_then(|q| q.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("no {name} window: {account}"))
}

#[tokio::test]
async fn max_concurrent_holds_under_load_and_every_account_busy_is_a_429_with_retry_after() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-a", "sk-b"])
        .await;
    // With no instance running, the CLI writes the file.
    for id in &ids {
        let out = setup
            .cli(&["account", "limit", id, "--max-concurrent", "4"])
            .await;
        assert_eq!(out.ok(), format!("{id}: at most 4 in flight"));
    }
    let config = std::fs::read_to_string(&setup.config_path).expect("config");
    assert_eq!(
        config.matches("limits = { max_concurrent = 4 }").count(),
        2,
        "{config}"
    );
    let streams = Behaviour::Stream {
        events: 1000,
        interval: Duration::from_millis(50),
    };
    fake.set_default("sk-a", streams.clone());
    fake.set_default("sk-b", streams);
    let keyway = setup.start().await;

    // 16 at once, every stream staying open: 4 per account are served, the other 8 are told
    // to come back.
    let answers = join_all((0..16).map(|_| keyway.anthropic_stream("claude-sonnet-4-5"))).await;
    let (served, refused): (Vec<_>, Vec<_>) = answers.into_iter().partition(|r| r.status() == 200);
    assert_eq!((served.len(), refused.len()), (8, 8));
    assert_eq!(
        fake.requests().len(),
        8,
        "the refused ones never went upstream"
    );
    assert_eq!(fake.peak_in_flight("sk-a"), 4);
    assert_eq!(fake.peak_in_flight("sk-b"), 4);
    for r in refused {
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["type"], "error", "Anthropic's error shape: {body}");
        assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("account is busy or at one of its limits")
                && message.contains("max_concurrent: 4 requests in flight"),
            "{message}"
        );
    }
    let a = account(&keyway, &ids[0]).await;
    assert_eq!(a["limits"], json!({"max_concurrent": 4}), "{a}");
    assert_eq!(a["live"]["in_flight"], 4, "{a}");
    assert_eq!(a["live"]["state"], "serving", "busy is still serving: {a}");

    // Streams ending free their slots.
    drop(served);
    for id in &ids {
        poll_account(&keyway, id, "idle", |a| a["live"]["in_flight"] == 0).await;
    }
    fake.set_default("sk-a", Behaviour::Ok);
    fake.set_default("sk-b", Behaviour::Ok);
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_rpm_ceiling_passes_traffic_to_the_next_account_without_a_failure() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-a", "sk-b"])
        .await;
    let order = format!("{},{}", ids[0], ids[1]);
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

    // Set on the running instance: it applies at once.
    let out = keyway
        .cli(&[
            "account", "limit", &ids[0], "--rpm", "2", "--tpm", "1000000",
        ])
        .await;
    assert_eq!(out.ok(), format!("{}: 2 rpm, 1000000 tpm", ids[0]));
    let mut keys = Vec::new();
    for _ in 0..4 {
        keys.push(served_by(&fake, keyway.anthropic("claude-sonnet-4-5")).await);
    }
    assert_eq!(keys, ["sk-a", "sk-a", "sk-b", "sk-b"]);

    let a = account(&keyway, &ids[0]).await;
    assert_eq!(a["live"]["state"], "limited", "{a}");
    assert_eq!(a["live"]["minute_requests"], 2, "{a}");
    assert_eq!(a["live"]["failures"], 0, "a limit is no failure: {a}");
    assert!(
        a["live"]["limited_reason"]
            .as_str()
            .is_some_and(|r| r.contains("rpm: 2")),
        "{a}"
    );
    let until = a["live"]["limited_until"].as_u64().expect("limited_until");
    assert!(
        (unix_now()..=unix_now() + 61).contains(&until),
        "the minute's end: {a}"
    );
    let table = keyway.cli(&["account", "list"]).await;
    let row = table
        .ok()
        .lines()
        .find(|l| l.starts_with(&ids[0]))
        .unwrap_or_default()
        .to_owned();
    assert!(
        row.contains("at its limit until") && row.contains("limits: 2 rpm, 1000000 tpm"),
        "{row}"
    );

    // Only the given option changes; `--clear` removes them all, at once.
    let out = keyway
        .cli(&["account", "limit", &ids[0], "--tpm", "5000"])
        .await;
    assert_eq!(out.ok(), format!("{}: 2 rpm, 5000 tpm", ids[0]));
    let out = keyway.cli(&["account", "limit", &ids[0], "--clear"]).await;
    assert_eq!(out.ok(), format!("{}: no limits", ids[0]));
    assert_eq!(
        served_by(&fake, keyway.anthropic("claude-sonnet-4-5")).await,
        "sk-a"
    );
    let out = keyway
        .cli(&["account", "limit", &ids[0], "--rpm", "0"])
        .await;
    assert!(
        out.err().contains("--rpm: rpm must be between 1"),
        "{}",
        out.err()
    );
    let out = keyway
        .cli(&["account", "limit", "nope", "--rpm", "5"])
        .await;
    assert!(out.err().contains("no account `nope`"), "{}", out.err());

    // The API refuses out-of-range values and names the field.
    let r = keyway
        .api(
            reqwest::Method::PUT,
            &format!("/accounts/{}/limits", ids[0]),
        )
        .json(&json!({"max_concurrent": 0}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap_or_default();
    assert!(text.contains("max_concurrent"), "{text}");
    let r = keyway
        .api(
            reqwest::Method::PUT,
            &format!("/accounts/{}/limits", ids[1]),
        )
        .json(&json!({"rpm": 7}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.expect("json");
    assert_eq!(view["limits"], json!({"rpm": 7}));
}

fn budget(limit: u64, remaining: u64, reset_in: Duration) -> Option<RateBudget> {
    Some(RateBudget {
        limit,
        remaining,
        reset_in,
    })
}

#[tokio::test]
async fn a_key_that_announces_nothing_left_is_skipped_until_its_reset_without_a_429() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let anthropic = setup
        .add_accounts(&fake, "anthropic", &["sk-a", "sk-b"])
        .await;
    let openai = setup
        .add_accounts(&fake, "openai", &["sk-oa", "sk-ob"])
        .await;
    let order = format!("{},{}", openai[1], openai[0]);
    setup
        .cli(&[
            "policy",
            "set",
            "openai",
            "--strategy",
            "priority",
            "--accounts",
            &order,
        ])
        .await
        .ok();
    let keyway = setup.start().await;

    // Anthropic, round-robin: sk-b's answer says no request is left for a minute.
    fake.set_rate_limits(
        "sk-b",
        RateLimits {
            requests: budget(50, 0, Duration::from_secs(60)),
            tokens: budget(40_000, 39_000, Duration::from_secs(2)),
            ..RateLimits::default()
        },
    );
    let mut keys = Vec::new();
    for _ in 0..6 {
        keys.push(served_by(&fake, keyway.anthropic("claude-sonnet-4-5")).await);
    }
    assert_eq!(keys, ["sk-a", "sk-b", "sk-a", "sk-a", "sk-a", "sk-a"]);
    // No 429 anywhere: every upstream answer was a success.
    let b = account(&keyway, &anthropic[1]).await;
    assert_eq!(b["live"]["failures"], 0, "{b}");
    assert_eq!(b["live"]["state"], "limited", "{b}");
    let requests = window(&b, "requests");
    assert_eq!(requests["rejected"], true, "{b}");
    assert_eq!(requests["used_percent"], 100.0, "{b}");
    let reset = requests["resets_at"].as_u64().expect("resets_at");
    assert!(
        (unix_now() + 55..=unix_now() + 61).contains(&reset),
        "the reset the header named: {b}"
    );
    assert_eq!(window(&b, "tokens")["used_percent"], 2.5, "{b}");

    // OpenAI, priority: the first key announces no token left for 4 s (`4s`); the second
    // serves until then, and the first again after.
    fake.set_rate_limits(
        "sk-ob",
        RateLimits {
            tokens: budget(30_000, 0, Duration::from_secs(4)),
            ..RateLimits::default()
        },
    );
    assert_eq!(served_by(&fake, chat(&keyway)).await, "sk-ob");
    fake.set_rate_limits("sk-ob", RateLimits::default());
    assert_eq!(served_by(&fake, chat(&keyway)).await, "sk-oa");
    assert_eq!(served_by(&fake, chat(&keyway)).await, "sk-oa");
    let ob = account(&keyway, &openai[1]).await;
    assert_eq!(window(&ob, "tokens")["rejected"], true, "{ob}");
    poll_account(&keyway, &openai[1], "serving", |a| {
        a["live"]["state"] == "serving"
    })
    .await;
    assert_eq!(served_by(&fake, chat(&keyway)).await, "sk-ob");
}

#[tokio::test]
async fn most_available_prefers_the_api_key_with_more_left() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-low", "sk-high"])
        .await;
    let minute = Duration::from_secs(60);
    fake.set_rate_limits(
        "sk-low",
        RateLimits {
            requests: budget(100, 10, minute),
            ..RateLimits::default()
        },
    );
    fake.set_rate_limits(
        "sk-high",
        RateLimits {
            requests: budget(100, 95, minute),
            // The tightest window counts: 80% of tokens left.
            tokens: budget(10_000, 8_000, minute),
            ..RateLimits::default()
        },
    );
    let keyway = setup.start().await;
    // Round-robin first, so both keys have answered once.
    for expected in ["sk-low", "sk-high"] {
        assert_eq!(
            served_by(&fake, keyway.anthropic("claude-sonnet-4-5")).await,
            expected
        );
    }
    let r = keyway
        .api(reqwest::Method::PUT, "/policies/anthropic")
        .json(&json!({"strategy": "most_available"}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 200);
    for _ in 0..20 {
        assert_eq!(
            served_by(&fake, keyway.anthropic("claude-sonnet-4-5")).await,
            "sk-high"
        );
    }
    let low = account(&keyway, &ids[0]).await;
    assert_eq!(window(&low, "requests")["used_percent"], 90.0, "{low}");
    assert_eq!(
        low["live"]["state"], "serving",
        "10 left is not none: {low}"
    );
}

#[tokio::test]
async fn absurd_rate_limit_headers_are_clamped_and_break_nothing() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-a", "sk-b"])
        .await;
    let keyway = setup.start().await;

    let message = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "odd headers"}], "stop_reason": "end_turn",
        "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 2},
    })
    .to_string();
    let headers: Vec<(String, String)> = [
        ("anthropic-ratelimit-requests-limit", "1e300"),
        ("anthropic-ratelimit-requests-remaining", "-5"),
        ("anthropic-ratelimit-requests-reset", "garbage"),
        (
            "anthropic-ratelimit-tokens-limit",
            "99999999999999999999999",
        ),
        ("anthropic-ratelimit-tokens-remaining", "0"),
        ("anthropic-ratelimit-tokens-reset", "9999-12-31T23:59:59Z"),
        ("anthropic-ratelimit-input-tokens-limit", "NaN"),
        ("anthropic-ratelimit-input-tokens-remaining", "inf"),
        ("anthropic-ratelimit-output-tokens-limit", "100"),
        ("anthropic-ratelimit-output-tokens-remaining", "50"),
        ("anthropic-ratelimit-output-tokens-reset", "-1"),
        ("x-ratelimit-limit-requests", "10"),
        ("x-ratelimit-remaining-requests", "5"),
        ("x-ratelimit-reset-requests", "99999999999999h"),
        ("anthropic-ratelimit-unified-5h-utilization", "1e308"),
        ("x-codex-primary-used-percent", "-1e300"),
        (
            "x-codex-primary-reset-after-seconds",
            "18446744073709551615",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    fake.push(
        "sk-a",
        Behaviour::Raw {
            status: 200,
            headers,
            body: message,
        },
    );
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["content"][0]["text"], "odd headers");

    let a = account(&keyway, &ids[0]).await;
    let latest = unix_now() + 3601;
    // The tokens window: 0 of a clamped limit left, until an hour from now at the latest.
    let tokens = window(&a, "tokens");
    assert_eq!(tokens["rejected"], true, "{a}");
    assert!(
        tokens["resets_at"].as_u64().unwrap_or(u64::MAX) <= latest,
        "{a}"
    );
    // An unreadable reset counts as a minute; an unreadable count drops its window.
    assert_eq!(window(&a, "output_tokens")["used_percent"], 50.0, "{a}");
    let names: Vec<&str> = a["live"]["quota"]
        .as_array()
        .expect("quota")
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert!(!names.contains(&"input_tokens"), "{a}");
    for w in a["live"]["quota"].as_array().expect("quota") {
        let used = w["used_percent"].as_f64().expect("a number, never NaN");
        assert!((0.0..=100.0).contains(&used), "{a}");
    }
    // The account is held (0 tokens left), so the other serves; Keyway keeps serving.
    assert_eq!(a["live"]["state"], "limited", "{a}");
    assert_eq!(
        served_by(&fake, keyway.anthropic("claude-sonnet-4-5")).await,
        "sk-b"
    );
    assert_eq!(keyway.stop().await, Some(0), "no panic, a clean exit");
}

/// Two editors at once: `keyway account limit` from the CLI on six accounts while the
/// dashboard changes the same accounts' weights again and again. Every limit and the last
/// weight of every account are kept, in the running instance and in the file.
#[tokio::test]
async fn limits_from_the_cli_while_the_dashboard_edits_weights_are_all_kept() {
    const ACCOUNTS: usize = 6;
    const ROUNDS: u32 = 30;
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let secrets: Vec<String> = (0..ACCOUNTS).map(|i| format!("sk-{i}")).collect();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let ids = setup.add_accounts(&fake, "anthropic", &secrets).await;
    let keyway = setup.start().await;

    let limits = join_all(ids.iter().enumerate().map(|(i, id)| {
        let keyway = &keyway;
        async move {
            let rpm = (10 + i).to_string();
            keyway
                .cli(&[
                    "account",
                    "limit",
                    id,
                    "--rpm",
                    &rpm,
                    "--max-concurrent",
                    "3",
                ])
                .await
                .ok()
                .to_owned()
        }
    }));
    let weights = async {
        for round in 1..=ROUNDS {
            for id in &ids {
                let r = keyway
                    .api(reqwest::Method::PATCH, &format!("/accounts/{id}"))
                    .json(&json!({ "weight": round }))
                    .send()
                    .await
                    .expect("PATCH");
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
            }
        }
    };
    let (said, ()) = tokio::join!(limits, weights);
    for (i, (id, out)) in ids.iter().zip(&said).enumerate() {
        assert_eq!(out, &format!("{id}: at most 3 in flight, {} rpm", 10 + i));
    }

    let check = |accounts: &Value, whence: &str| {
        for (i, id) in ids.iter().enumerate() {
            let a = accounts
                .as_array()
                .expect("a list")
                .iter()
                .find(|a| a["id"] == id.as_str())
                .unwrap_or_else(|| panic!("{whence}: {id} is missing"));
            assert_eq!(
                a["limits"],
                json!({"max_concurrent": 3, "rpm": 10 + i}),
                "{whence}: {a}"
            );
            assert_eq!(a["weight"], ROUNDS, "{whence}: {a}");
        }
    };
    check(&keyway.api_get("/accounts").await, "the running instance");
    let setup = keyway.stop_keeping_setup().await;
    let listed = setup.cli(&["account", "list", "--json"]).await;
    check(
        &serde_json::from_str(listed.ok()).expect("JSON"),
        "the config file",
    );
}

/// Three `keyway account limit` commands at once on one account, each setting a different
/// limit: all three stay, with an instance running (merged in it) and without (merged in the
/// file under the config lock).
#[tokio::test]
async fn limits_set_at_once_on_one_account_all_stay() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup.add_accounts(&fake, "anthropic", &["sk-a"]).await;
    let id = ids[0].as_str();
    let expected = json!({"max_concurrent": 3, "rpm": 10, "tpm": 5000});
    let limits_of = |accounts: &Value| {
        accounts
            .as_array()
            .expect("a list")
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["limits"].clone())
            .expect("the account")
    };

    // No instance: the CLI edits the file.
    let outs = join_all([
        setup.cli(&["account", "limit", id, "--max-concurrent", "3"]),
        setup.cli(&["account", "limit", id, "--rpm", "10"]),
        setup.cli(&["account", "limit", id, "--tpm", "5000"]),
    ])
    .await;
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let listed = setup.cli(&["account", "list", "--json"]).await;
    let listed: Value = serde_json::from_str(listed.ok()).expect("JSON");
    assert_eq!(limits_of(&listed), expected, "in the file");

    // An instance: the CLI asks it.
    let out = setup.cli(&["account", "limit", id, "--clear"]).await;
    assert_eq!(out.ok(), format!("{id}: no limits"));
    let keyway = setup.start().await;
    let outs = join_all([
        keyway.cli(&["account", "limit", id, "--max-concurrent", "3"]),
        keyway.cli(&["account", "limit", id, "--rpm", "10"]),
        keyway.cli(&["account", "limit", id, "--tpm", "5000"]),
    ])
    .await;
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    assert_eq!(
        limits_of(&keyway.api_get("/accounts").await),
        expected,
        "in the running instance"
    );
    // The last command to finish printed all three.
    assert!(
        outs.iter()
            .any(|o| o.ok() == format!("{id}: at most 3 in flight, 10 rpm, 5000 tpm")),
        "{outs:?}"
    );
}
