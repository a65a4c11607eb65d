//! Policy swaps under load: while the load generator runs, the Anthropic provider policy is
//! replaced through the management API every interval, cycling through strategies with
//! different members, so every swap builds and publishes a new snapshot while requests are
//! picking accounts from the old one.

use std::time::{Duration, Instant};

use http::Method;
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{self, Template};
use crate::keyway::Keyway;
use crate::stats::{self, Percentiles};

/// Failures kept for the report.
const KEEP_FAILURES: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct SwapStats {
    pub interval_ms: u64,
    /// PUTs answered 2xx.
    pub ok: u64,
    pub failed: u64,
    pub failure_samples: Vec<String>,
    /// How long each PUT took (validate, save the config, swap the snapshot).
    pub latency: Percentiles,
}

/// The policies cycled through, each a valid `PUT /api/policies/anthropic` body.
pub fn policies(accounts: &[String]) -> Vec<Value> {
    let weights: serde_json::Map<String, Value> = accounts
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), json!(accounts.len() - i)))
        .collect();
    let mut reversed = accounts.to_vec();
    reversed.reverse();
    vec![
        json!({ "strategy": "priority", "accounts": reversed }),
        json!({ "strategy": "weighted_round_robin", "weights": weights }),
        json!({ "strategy": "round_robin" }),
    ]
}

/// PUTs the next policy every `interval` until `end`; ends on round-robin, as the run began.
pub async fn run(
    keyway: &Keyway,
    accounts: &[String],
    interval: Duration,
    end: Instant,
) -> anyhow::Result<SwapStats> {
    let requests = policies(accounts)
        .iter()
        .map(|b| keyway.api_request(Method::PUT, "/policies/anthropic", Some(b)))
        .collect::<anyhow::Result<Vec<Template>>>()?;
    let mut stats = SwapStats {
        interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        ok: 0,
        failed: 0,
        failure_samples: Vec::new(),
        latency: Percentiles::default(),
    };
    let mut latency = stats::histogram();
    let mut conn: Option<client::Sender> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0usize;
    loop {
        ticker.tick().await;
        if Instant::now() >= end {
            break;
        }
        let request = &requests[n % requests.len()];
        n += 1;
        let started = Instant::now();
        match put(keyway, &mut conn, request).await {
            Ok(()) => {
                stats.ok += 1;
                stats::record(&mut latency, started.elapsed());
            }
            Err(e) => {
                stats.failed += 1;
                conn = None;
                if stats.failure_samples.len() < KEEP_FAILURES {
                    stats.failure_samples.push(format!("{e:#}"));
                }
            }
        }
    }
    // Leave the policy as the other scenarios expect it (the cycle may have stopped anywhere).
    if let Some(round_robin) = requests.last()
        && let Err(e) = put(keyway, &mut conn, round_robin).await
    {
        stats.failed += 1;
        stats
            .failure_samples
            .push(format!("restoring round-robin: {e:#}"));
    }
    stats.latency = Percentiles::of(&latency);
    Ok(stats)
}

async fn put(
    keyway: &Keyway,
    conn: &mut Option<client::Sender>,
    request: &Template,
) -> anyhow::Result<()> {
    let usable = match conn {
        Some(sender) => sender.ready().await.is_ok(),
        None => false,
    };
    let sender = match conn {
        Some(sender) if usable => sender,
        _ => conn.insert(client::connect(keyway.addr).await?),
    };
    let response = tokio::time::timeout(
        client::REQUEST_TIMEOUT,
        sender.send_request(request.build()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("PUT /api/policies/anthropic: no answer"))??;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        anyhow::bail!(
            "PUT /api/policies/anthropic: HTTP {status}: {}",
            client::excerpt(&body)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_covers_three_strategies_and_ends_on_round_robin() {
        let ids: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let p = policies(&ids);
        assert_eq!(p[0]["accounts"], json!(["c", "b", "a"]));
        assert_eq!(p[1]["weights"]["a"], 3);
        assert_eq!(p.last().unwrap()["strategy"], "round_robin");
    }
}
