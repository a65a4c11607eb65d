//! Reading quota windows from what providers send: Anthropic's unified rate-limit headers and
//! usage endpoint, ChatGPT's `x-codex-*` headers and `wham/usage` endpoint, and the rate-limit
//! headers of API-key answers (Anthropic `anthropic-ratelimit-{requests,tokens,input-tokens,
//! output-tokens}-{limit,remaining,reset}`, OpenAI `x-ratelimit-{limit,remaining,reset}-
//! {requests,tokens}`), which become windows named `requests`, `tokens`, `input_tokens` and
//! `output_tokens`: how much of the key's rate limit is used, and when it is full again.
//!
//! Every number from a header is range-checked before it is used: counts are clamped to
//! [`MAX_COUNT`], resets to [`MAX_RATE_RESET`] ahead, and an unreadable value drops its window
//! (or, for a reset, counts as [`UNREAD_RESET`]) rather than failing anything.

use std::time::Duration;

use http::HeaderMap;
use keyway_core::quota::QuotaWindow;
use serde_json::Value;

use super::cooldown::MAX_COOLDOWN;

/// A reset time (Unix seconds) an upstream reported, at most [`MAX_COOLDOWN`] ahead: a bogus
/// `u64::MAX` must neither overflow later arithmetic nor bench an account for ever.
fn bounded_reset(at: u64, now_secs: u64) -> u64 {
    at.min(now_secs.saturating_add(MAX_COOLDOWN.as_secs()))
}

/// A used percentage an upstream reported, as a finite number in 0..=100 (NaN is unknown).
fn bounded_percent(used: f64) -> Option<f64> {
    (!used.is_nan()).then(|| used.clamp(0.0, 100.0))
}

/// The furthest ahead an API key's rate-limit reset is believed. The headers describe
/// per-minute limits (a daily one at most); a key they hold back is tried again at the latest
/// this long after, and if it is really still out, its 429 says for how long.
const MAX_RATE_RESET: Duration = Duration::from_secs(3600);

/// How long a rate-limit reading whose reset cannot be read is kept: the minute the limits
/// are counted over.
const UNREAD_RESET: Duration = Duration::from_secs(60);

/// The largest limit or remaining count believed; a larger one is clamped to it.
const MAX_COUNT: u64 = 1_000_000_000_000;

/// The longest header value parsed as a count, time or duration: real ones are far shorter.
const MAX_VALUE_LEN: usize = 64;

/// Anthropic's API-key rate limits: (window, limit, remaining, reset as RFC 3339).
const ANTHROPIC_RATES: [(&str, &str, &str, &str); 4] = [
    (
        "requests",
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "tokens",
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "input_tokens",
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ),
    (
        "output_tokens",
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ),
];

/// OpenAI's API-key rate limits: (window, limit, remaining, reset as a duration like `6m0s`).
const OPENAI_RATES: [(&str, &str, &str, &str); 2] = [
    (
        "requests",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ),
    (
        "tokens",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ),
];

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

/// The name prefixes of every header [`from_headers`] reads.
const LIMIT_PREFIXES: [&str; 3] = ["anthropic-ratelimit-", "x-ratelimit-", "x-codex-"];

/// A response's limit headers, found in one pass over its headers (at most hyper's 100):
/// looking each of the two dozen names [`from_headers`] knows up in the map would parse and
/// hash every one of them on every answer, and an answer carries a dozen of them or none.
struct LimitHeaders<'a>(Vec<(&'a str, &'a str)>);

impl<'a> LimitHeaders<'a> {
    fn of(headers: &'a HeaderMap) -> LimitHeaders<'a> {
        LimitHeaders(
            headers
                .iter()
                .filter(|(name, _)| LIMIT_PREFIXES.iter().any(|p| name.as_str().starts_with(p)))
                .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?.trim())))
                .collect(),
        )
    }

    /// The first value of header `name` (lowercase), trimmed.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

/// Windows reported in response headers (any provider; absent headers yield nothing) at
/// `now_ms`.
pub fn from_headers(headers: &HeaderMap, now_ms: u64) -> Vec<QuotaWindow> {
    let headers = LimitHeaders::of(headers);
    if headers.0.is_empty() {
        return Vec::new();
    }
    let headers = &headers;
    let now_secs = now_ms / 1000;
    let mut out = Vec::new();
    // Anthropic unified: utilization is a fraction, reset is Unix seconds.
    for (name, utilization, status, reset) in ANTHROPIC_WINDOWS {
        let utilization = headers
            .get(utilization)
            .and_then(|v| v.parse::<f64>().ok())
            .and_then(|u| bounded_percent(u * 100.0));
        let status = headers.get(status);
        if utilization.is_none() && status.is_none() {
            continue;
        }
        let rejected = status == Some("rejected");
        out.push(QuotaWindow {
            name: name.to_owned(),
            used_percent: if rejected {
                100.0
            } else {
                utilization.unwrap_or(0.0)
            },
            resets_at: headers
                .get(reset)
                .and_then(|v| v.parse().ok())
                .map(|at| bounded_reset(at, now_secs)),
            rejected,
        });
    }
    // ChatGPT Codex: used percent 0–100, reset at a Unix time or in seconds from now.
    for (name, used, reset_at, reset_after) in CODEX_WINDOWS {
        let Some(used) = headers
            .get(used)
            .and_then(|v| v.parse::<f64>().ok())
            .and_then(bounded_percent)
        else {
            continue;
        };
        let resets_at = headers
            .get(reset_at)
            .and_then(|v| v.parse().ok())
            .or_else(|| {
                headers
                    .get(reset_after)
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
    for (name, limit, remaining, reset) in ANTHROPIC_RATES {
        let reset = headers.get(reset).and_then(rfc3339_ms);
        out.extend(rate_window(headers, name, limit, remaining, reset, now_ms));
    }
    for (name, limit, remaining, reset) in OPENAI_RATES {
        let reset = headers
            .get(reset)
            .and_then(go_duration_ms)
            .map(|ms| now_ms.saturating_add(ms));
        out.extend(rate_window(headers, name, limit, remaining, reset, now_ms));
    }
    out
}

/// One API-key rate limit as a window, when its limit and remaining count are readable: the
/// share used, the reset (clamped to [`MAX_RATE_RESET`] ahead; [`UNREAD_RESET`] when it
/// cannot be read), and `rejected` when nothing remains.
fn rate_window(
    headers: &LimitHeaders<'_>,
    name: &str,
    limit: &str,
    remaining: &str,
    reset_ms: Option<u64>,
    now_ms: u64,
) -> Option<QuotaWindow> {
    let limit = headers.get(limit).and_then(count)?;
    let remaining = headers.get(remaining).and_then(count)?.min(limit);
    if limit == 0 {
        return None;
    }
    let latest = now_ms.saturating_add(MAX_RATE_RESET.as_millis() as u64);
    let reset_ms = reset_ms
        .unwrap_or_else(|| now_ms.saturating_add(UNREAD_RESET.as_millis() as u64))
        .clamp(now_ms, latest);
    Some(QuotaWindow {
        name: name.to_owned(),
        used_percent: (limit - remaining) as f64 * 100.0 / limit as f64,
        resets_at: Some(reset_ms.div_ceil(1000)),
        rejected: remaining == 0,
    })
}

/// A count from a header: a non-negative integer (or a finite non-negative number, floored),
/// at most [`MAX_COUNT`]. Negative, non-finite and unreadable values are `None`.
fn count(v: &str) -> Option<u64> {
    if v.len() > MAX_VALUE_LEN {
        return None;
    }
    if let Ok(n) = v.parse::<u64>() {
        return Some(n.min(MAX_COUNT));
    }
    let n: f64 = v.parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| n.min(MAX_COUNT as f64) as u64)
}

/// An RFC 3339 time as Unix ms; `None` when unreadable or before 1970.
fn rfc3339_ms(v: &str) -> Option<u64> {
    if v.len() > MAX_VALUE_LEN {
        return None;
    }
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A Go-style duration as OpenAI sends it (`6m0s`, `1s`, `20ms`, `1h2m3.5s`) in ms, rounded
/// up and saturating; `None` when unreadable.
fn go_duration_ms(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > MAX_VALUE_LEN {
        return None;
    }
    let mut rest = v;
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number.parse().ok()?;
        let unit = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit);
        let ns_per_unit = match unit {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total_ns += number * ns_per_unit;
        rest = tail;
    }
    let ms = (total_ns / 1e6).ceil();
    // NaN is unreadable; `as` saturates what is too large for u64.
    (ms >= 0.0).then_some(ms as u64)
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
        let w = from_headers(&h, 1_700_000_000_000);
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

    const NOW_MS: u64 = 1_700_000_000_000;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn named<'a>(windows: &'a [QuotaWindow], name: &str) -> &'a QuotaWindow {
        windows
            .iter()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("no {name} window in {windows:?}"))
    }

    #[test]
    fn anthropic_api_key_rate_limits() {
        let h = headers(&[
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2023-11-14T22:13:50Z"),
            ("anthropic-ratelimit-tokens-limit", "100000"),
            ("anthropic-ratelimit-tokens-remaining", "75000"),
            (
                "anthropic-ratelimit-tokens-reset",
                "2023-11-14T22:13:21.5+00:00",
            ),
            ("anthropic-ratelimit-input-tokens-limit", "80000"),
            ("anthropic-ratelimit-input-tokens-remaining", "80000"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2023-11-14T22:13:20Z",
            ),
            ("anthropic-ratelimit-output-tokens-limit", "16000"),
            ("anthropic-ratelimit-output-tokens-remaining", "4000"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2023-11-14T22:13:25Z",
            ),
        ]);
        // NOW_MS is 2023-11-14T22:13:20Z.
        let w = from_headers(&h, NOW_MS);
        assert_eq!(w.len(), 4, "{w:?}");
        let requests = named(&w, "requests");
        assert_eq!(
            (requests.used_percent, requests.resets_at, requests.rejected),
            (100.0, Some(NOW_MS / 1000 + 30), true)
        );
        let tokens = named(&w, "tokens");
        assert_eq!(
            (tokens.used_percent, tokens.resets_at, tokens.rejected),
            (25.0, Some(NOW_MS / 1000 + 2), false),
            "a fractional reset rounds up"
        );
        assert_eq!(named(&w, "input_tokens").used_percent, 0.0);
        assert_eq!(named(&w, "output_tokens").used_percent, 75.0);
    }

    #[test]
    fn openai_api_key_rate_limits() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        let w = from_headers(&h, NOW_MS);
        assert_eq!(w.len(), 2, "{w:?}");
        let requests = named(&w, "requests");
        assert!((requests.used_percent - 100.0 / 60.0).abs() < 1e-9);
        assert_eq!(requests.resets_at, Some(NOW_MS / 1000 + 1));
        assert!(!requests.rejected);
        let tokens = named(&w, "tokens");
        assert_eq!(
            (tokens.resets_at, tokens.rejected),
            (Some(NOW_MS / 1000 + 360), true)
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_ms("6m0s"), Some(360_000));
        assert_eq!(go_duration_ms("1s"), Some(1_000));
        assert_eq!(go_duration_ms("20ms"), Some(20));
        assert_eq!(go_duration_ms("1h2m3.5s"), Some(3_723_500));
        assert_eq!(go_duration_ms("0s"), Some(0));
        assert_eq!(go_duration_ms("250us"), Some(1), "rounded up");
        for bad in ["", "s", "6x", "-1s", "1.2.3s", "ms20", "1e3s", "5"] {
            assert_eq!(go_duration_ms(bad), None, "{bad}");
        }
        assert_eq!(
            go_duration_ms("99999999999999999999h"),
            Some(u64::MAX),
            "saturates"
        );
    }

    #[test]
    fn hostile_rate_limit_values_are_clamped_or_dropped_never_a_panic() {
        let latest = (NOW_MS + MAX_RATE_RESET.as_millis() as u64) / 1000;
        // Absurd but readable: clamped.
        let h = headers(&[
            ("anthropic-ratelimit-requests-limit", "1e300"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"),
            ("x-ratelimit-limit-tokens", "100"),
            ("x-ratelimit-remaining-tokens", "5000"),
            ("x-ratelimit-reset-tokens", "99999999999h"),
        ]);
        let w = from_headers(&h, NOW_MS);
        let requests = named(&w, "requests");
        assert_eq!(
            (requests.used_percent, requests.resets_at, requests.rejected),
            (100.0, Some(latest), true),
            "a reset in the year 9999 is believed an hour at most"
        );
        let tokens = named(&w, "tokens");
        assert_eq!(
            (tokens.used_percent, tokens.resets_at, tokens.rejected),
            (0.0, Some(latest), false),
            "remaining above the limit is the limit"
        );

        // Unreadable counts drop the window; an unreadable reset counts as a minute.
        for (limit, remaining) in [
            ("-5", "1"),
            ("50", "-1"),
            ("garbage", "1"),
            ("NaN", "1"),
            ("inf", "1"),
            ("0", "0"),
            ("", "1"),
        ] {
            let h = headers(&[
                ("anthropic-ratelimit-requests-limit", limit),
                ("anthropic-ratelimit-requests-remaining", remaining),
                ("anthropic-ratelimit-requests-reset", "2023-11-14T22:14:20Z"),
            ]);
            assert_eq!(from_headers(&h, NOW_MS), [], "{limit} / {remaining}");
        }
        for reset in [
            "garbage",
            "-1000-01-01T00:00:00Z",
            "1969-01-01T00:00:00Z",
            "🦀",
        ] {
            let h = headers(&[
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", reset),
                ("x-ratelimit-limit-requests", "50"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", reset),
            ]);
            let w = from_headers(&h, NOW_MS);
            assert_eq!(w.len(), 2, "{reset}: {w:?}");
            for window in &w {
                assert_eq!(window.resets_at, Some(NOW_MS / 1000 + 60), "{reset}");
            }
        }
        // A reset in the past: now.
        let h = headers(&[
            ("x-ratelimit-limit-requests", "50"),
            ("x-ratelimit-remaining-requests", "10"),
            ("anthropic-ratelimit-tokens-limit", "50"),
            ("anthropic-ratelimit-tokens-remaining", "10"),
            ("anthropic-ratelimit-tokens-reset", "2001-01-01T00:00:00Z"),
        ]);
        let w = from_headers(&h, NOW_MS);
        assert_eq!(named(&w, "tokens").resets_at, Some(NOW_MS / 1000));
        // The whole `from_headers` at the edges of time.
        for now in [0, u64::MAX] {
            let _ = from_headers(&h, now);
        }
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
        let w = from_headers(&h, now * 1000);
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
