//! The load-aware strategies through the real proxy: `least_busy` spreads concurrent streams
//! by weight, `fastest` prefers the account that answers sooner and still probes the other.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use keyway_tests::{Behaviour, FakeUpstream, Keyway, Setup};
use serde_json::Value;

fn counts(keys: &[String]) -> HashMap<&str, usize> {
    let mut out = HashMap::new();
    for k in keys {
        *out.entry(k.as_str()).or_default() += 1;
    }
    out
}

/// Streams long enough to all be open at once while a test looks: 1000 events 50 ms apart
/// (50 s); the test drops them when done.
fn endless() -> Behaviour {
    Behaviour::Stream {
        events: 1000,
        interval: Duration::from_millis(50),
    }
}

#[tokio::test]
async fn least_busy_spreads_concurrent_streams_by_weight() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    // The light account is listed first: only the tie-break puts the heavy one first.
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-light", "sk-heavy"])
        .await;
    fake.set_default("sk-heavy", endless());
    fake.set_default("sk-light", endless());
    let weights = format!("{}=1,{}=3", ids[0], ids[1]);
    setup
        .cli(&[
            "policy",
            "set",
            "anthropic",
            "--strategy",
            "least_busy",
            "--weights",
            &weights,
        ])
        .await
        .ok();
    let keyway = setup.start().await;

    // Both idle: a tie, which the heavier account wins although it is listed second.
    let first = keyway.anthropic_stream("claude-sonnet-4-5").await;
    assert_eq!(first.status(), 200);
    assert_eq!(fake.keys_used(), ["sk-heavy"]);
    // 15 more at once; each stays in flight (its stream open) while the others are placed.
    let mut streams = join_all((0..15).map(|_| keyway.anthropic_stream("claude-sonnet-4-5"))).await;
    streams.push(first);
    for s in &streams {
        assert_eq!(s.status(), 200);
    }
    let keys = fake.keys_used();
    assert_eq!(keys.len(), 16, "one upstream request each: {keys:?}");
    let by_key = counts(&keys);
    let heavy = by_key.get("sk-heavy").copied().unwrap_or(0);
    let light = by_key.get("sk-light").copied().unwrap_or(0);
    // Weights 3:1 → 12:4. Two picks racing on Keyway's threads may both see the same
    // counts, so one either way is allowed.
    assert!(
        (11..=13).contains(&heavy) && heavy + light == 16,
        "heavy {heavy}, light {light}"
    );
    // Keyway counts the same: each account's requests in flight now.
    let accounts = keyway.api_get("/accounts").await;
    let in_flight = |id: &str| {
        accounts
            .as_array()
            .expect("accounts")
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["live"]["in_flight"].as_u64().unwrap_or(0))
            .unwrap_or(0) as usize
    };
    assert_eq!(
        (in_flight(&ids[1]), in_flight(&ids[0])),
        (heavy, light),
        "{accounts}"
    );
    drop(streams);
}

/// `n` Anthropic requests one after another; the upstream key of each.
async fn sequence(keyway: &Keyway, fake: &FakeUpstream, n: usize) -> Vec<String> {
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let before = fake.requests().len();
        let r = keyway.anthropic("claude-sonnet-4-5").await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        let body: Value = r.json().await.expect("json");
        let seen = fake.requests();
        assert_eq!(seen.len(), before + 1, "one upstream request per request");
        let key = seen[before].key.clone().expect("a key");
        assert_eq!(body["content"][0]["text"], format!("served by {key}"));
        keys.push(key);
    }
    keys
}

#[tokio::test]
async fn fastest_prefers_the_faster_key_and_still_probes_the_slower() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let ids = setup
        .add_accounts(&fake, "anthropic", &["sk-slow", "sk-fast"])
        .await;
    // The slow key takes 600 ms to its response headers; the fast one answers at once.
    fake.set_default("sk-slow", Behaviour::Delayed(Duration::from_millis(600)));
    setup
        .cli(&["policy", "set", "anthropic", "--strategy", "fastest"])
        .await
        .ok();
    let keyway = setup.start().await;

    const N: usize = 40;
    let keys = sequence(&keyway, &fake, N).await;
    let slow_at: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| *k == "sk-slow")
        .map(|(i, _)| i)
        .collect();
    // Each account is measured once first (in order), then the fast one serves, except
    // every tenth pick, which probes the slow one: requests 12, 22 and 32.
    assert_eq!(slow_at, [0, 11, 21, 31], "{keys:?}");
    assert_eq!(keys[1], "sk-fast");
    assert_eq!(counts(&keys)["sk-fast"], N - 4);

    // The averages the choice follows are shown per account.
    let accounts = keyway.api_get("/accounts").await;
    let ttfb = |id: &str| {
        accounts
            .as_array()
            .expect("accounts")
            .iter()
            .find(|a| a["id"] == id)
            .and_then(|a| a["live"]["ttfb_ms"].as_u64())
            .unwrap_or_else(|| panic!("no ttfb_ms for {id}: {accounts}"))
    };
    assert!(ttfb(&ids[0]) >= 600, "{accounts}");
    assert!(ttfb(&ids[1]) < ttfb(&ids[0]), "{accounts}");

    // The slow one recovers while the fast one slows down: a probe (the second request
    // from here is the 40th counted pick) measures it fast, and once the other's average has
    // risen above its own (EWMA, a fifth per sample) it gets the traffic, the other being
    // probed every tenth pick.
    fake.set_default("sk-slow", Behaviour::Ok);
    fake.set_default("sk-fast", Behaviour::Delayed(Duration::from_millis(600)));
    let keys = sequence(&keyway, &fake, 30).await;
    assert_eq!(keys[1], "sk-slow", "the probe: {keys:?}");
    let tail = &keys[keys.len() - 8..];
    assert!(
        tail.iter().filter(|k| *k == "sk-slow").count() >= 7,
        "the recovered account serves: {keys:?}"
    );
}
