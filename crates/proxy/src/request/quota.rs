//! Reading quota windows from what providers send: Anthropic's unified rate-limit headers and
//! usage endpoint, ChatGPT's `x-codex-*` headers and `wham/usage` endpoint.

use http::HeaderMap;
use keyway_core::quota::QuotaWindow;
use serde_json::Value;

use super::cooldown::{MAX_COOLDOWN, header};

/// A reset time (Unix seconds) an upstream reported, at most [`MAX_COOLDOWN`] ahead: a bogus
/// `u64::MAX` must neither overflow later arithmetic nor bench an account for ever.
fn bounded_reset(at: u64, now_secs: u64) -> u64 {
    at.min(now_secs.saturating_add(MAX_COOLDOWN.as_secs()))
}

/// A used percentage an upstream reported, as a finite number in 0..=100 (NaN is unknown).
fn bounded_percent(used: f64) -> Option<f64> {
    (!used.is_nan()).then(|| used.clamp(0.0, 100.0))
}

/// Anthropic's unified windows: (name, utilization, status, reset) header names.
const ANTHROPIC_WINDOWS: [(&str, &str, &str, &str); 3] = [
    (
        "5h",
        "anthropic-ratelimit-unified-5h-utilization",
        "anthropic-ratelimit-unified-5h-status",
        "anthropic-ratelimit-unified-5h-reset",
    ),
    (
        "7d",
        "anthropic-ratelimit-unified-7d-utilization",
        "anthropic-ratelimit-unified-7d-status",
        "anthropic-ratelimit-unified-7d-reset",
    ),
    (
        "7d_opus",
        "anthropic-ratelimit-unified-7d_opus-utilization",
        "anthropic-ratelimit-unified-7d_opus-status",
        "anthropic-ratelimit-unified-7d_opus-reset",
    ),
];

/// ChatGPT's windows: (name, used percent, reset at, reset after seconds) header names.
const CODEX_WINDOWS: [(&str, &str, &str, &str); 2] = [
    (
        "primary",
        "x-codex-primary-used-percent",
        "x-codex-primary-reset-at",
        "x-codex-primary-reset-after-seconds",
    ),
    (
        "secondary",
        "x-codex-secondary-used-percent",
        "x-codex-secondary-reset-at",
        "x-codex-secondary-reset-after-seconds",
    ),
];

/// Windows reported in response headers (any provider; absent headers yield nothing).
pub fn from_headers(headers: &HeaderMap, now_secs: u64) -> Vec<QuotaWindow> {
    let mut out = Vec::new();
    // Anthropic unified: utilization is a fraction, reset is Unix seconds.
    for (name, utilization, status, reset) in ANTHROPIC_WINDOWS {
        let utilization = header(headers, utilization).and_then(|v| v.parse::<f64>().ok());
        let status = header(headers, status);
        if utilization.is_none() && status.is_none() {
            continue;
        }
        let rejected = status == Some("rejected");
        out.push(QuotaWindow {
            name: name.to_owned(),
            used_percent: if rejected {
                100.0
            } else {
                bounded_percent(utilization.unwrap_or(0.0) * 100.0).unwrap_or(0.0)
            },
            resets_at: header(headers, reset)
                .and_then(|v| v.parse().ok())
                .map(|at| bounded_reset(at, now_secs)),
            rejected,
        });
    }
    // ChatGPT Codex: used percent 0–100, reset at a Unix time or in seconds from now.
    for (name, used, reset_at, reset_after) in CODEX_WINDOWS {
        let Some(used) = header(headers, used)
            .and_then(|v| v.parse::<f64>().ok())
            .and_then(bounded_percent)
        else {
            continue;
        };
        let resets_at = header(headers, reset_at)
            .and_then(|v| v.parse().ok())
            .or_else(|| {
                header(headers, reset_after)
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|s| now_secs.saturating_add(s))
            })
            .map(|at| bounded_reset(at, now_secs));
        out.push(QuotaWindow {
            name: name.to_owned(),
            used_percent: used,
            resets_at,
            rejected: used >= 100.0,
        });
    }
    out
}

/// Anthropic `GET /api/oauth/usage`: `{"five_hour":{"utilization":42,"resets_at":"RFC 3339"},…}`
/// with utilization in percent.
pub fn from_anthropic_usage(body: &Value, now_secs: u64) -> Vec<QuotaWindow> {
    [
        ("5h", "five_hour"),
        ("7d", "seven_day"),
        ("7d_opus", "seven_day_opus"),
    ]
    .into_iter()
    .filter_map(|(name, key)| {
        let w = body.get(key)?;
        let used = bounded_percent(w.get("utilization")?.as_f64()?)?;
        Some(QuotaWindow {
            name: name.to_owned(),
            used_percent: used,
            resets_at: w
                .get("resets_at")
                .and_then(Value::as_str)
                .and_then(rfc3339_secs)
                .map(|at| bounded_reset(at, now_secs)),
            rejected: used >= 100.0,
        })
    })
    .collect()
}

/// ChatGPT `GET /backend-api/wham/usage`: `{"rate_limit":{"primary_window":{"used_percent",
/// "reset_at"|"reset_after_seconds"},"secondary_window":{…}}}`.
pub fn from_chatgpt_usage(body: &Value, now_secs: u64) -> Vec<QuotaWindow> {
    [
        ("primary", "primary_window"),
        ("secondary", "secondary_window"),
    ]
    .into_iter()
    .filter_map(|(name, key)| {
        let w = body.get("rate_limit")?.get(key)?;
        let used = bounded_percent(w.get("used_percent")?.as_f64()?)?;
        let resets_at = w
            .get("reset_at")
            .and_then(Value::as_u64)
            .or_else(|| {
                w.get("reset_after_seconds")
                    .and_then(Value::as_u64)
                    .map(|s| now_secs.saturating_add(s))
            })
            .map(|at| bounded_reset(at, now_secs));
        Some(QuotaWindow {
            name: name.to_owned(),
            used_percent: used,
            resets_at,
            rejected: used >= 100.0,
        })
    })
    .collect()
}

fn rfc3339_secs(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    #[test]
    fn anthropic_and_codex_headers() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("anthropic-ratelimit-unified-5h-utilization", "0.42"),
            ("anthropic-ratelimit-unified-5h-status", "allowed"),
            ("anthropic-ratelimit-unified-5h-reset", "1700003600"),
            ("anthropic-ratelimit-unified-7d-status", "rejected"),
            ("anthropic-ratelimit-unified-7d-reset", "1700600000"),
            ("x-codex-primary-used-percent", "25"),
            ("x-codex-primary-reset-after-seconds", "60"),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        let w = from_headers(&h, 1_700_000_000);
        assert_eq!(w.len(), 3);
        assert_eq!(
            (
                w[0].name.as_str(),
                w[0].used_percent.round(),
                w[0].resets_at
            ),
            ("5h", 42.0, Some(1_700_003_600))
        );
        assert!(w[1].rejected && w[1].used_percent == 100.0);
        assert_eq!(
            (w[2].name.as_str(), w[2].resets_at),
            ("primary", Some(1_700_000_060))
        );
    }

    #[test]
    fn usage_endpoints() {
        let a = from_anthropic_usage(
            &json!({"five_hour": {"utilization": 12.5, "resets_at": "2026-11-26T08:00:00+00:00"}}),
            1_795_000_000,
        );
        assert_eq!(a[0].resets_at, Some(1_795_680_000));
        let c = from_chatgpt_usage(
            &json!({"rate_limit": {"primary_window": {"used_percent": 80, "reset_after_seconds": 10}}}),
            100,
        );
        assert_eq!((c[0].used_percent, c[0].resets_at), (80.0, Some(110)));
    }

    #[test]
    fn absurd_reports_are_bounded() {
        let now = 1_700_000_000;
        let cap = now + MAX_COOLDOWN.as_secs();
        let max = u64::MAX.to_string();
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("anthropic-ratelimit-unified-5h-utilization", "1e300"),
            ("anthropic-ratelimit-unified-5h-reset", max.as_str()),
            ("x-codex-primary-used-percent", "NaN"),
            ("x-codex-secondary-used-percent", "-7"),
            ("x-codex-secondary-reset-after-seconds", max.as_str()),
        ] {
            h.insert(k, HeaderValue::from_str(v).unwrap());
        }
        let w = from_headers(&h, now);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!((w[0].used_percent, w[0].resets_at), (100.0, Some(cap)));
        assert_eq!((w[1].used_percent, w[1].resets_at), (0.0, Some(cap)));
        let c = from_chatgpt_usage(
            &json!({"rate_limit": {"primary_window": {"used_percent": 1e300, "reset_at": u64::MAX}}}),
            now,
        );
        assert_eq!((c[0].used_percent, c[0].resets_at), (100.0, Some(cap)));
    }
}
