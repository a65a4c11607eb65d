//! Reading an upstream's own word on when an account may be used again: `retry-after`,
//! Anthropic's unified rate-limit headers, OpenAI's `usage_limit_reached` body and Gemini's
//! `RetryInfo`. When there is none, the account state falls back to capped backoff.
//!
//! Every number here comes from an upstream and may be absurd (`1e300s`, `u64::MAX`, `NaN`,
//! negative): each is bounded and every sum saturates, so no value can panic, wrap around to
//! "ready now" or bench an account for longer than [`MAX_COOLDOWN`].

use std::time::{Duration, UNIX_EPOCH};

use http::HeaderMap;
use serde_json::Value;

/// No upstream reset is believed beyond this: a bogus header must not bench an account for
/// a year.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(8 * 24 * 3600);
const MAX_COOLDOWN_MS: u64 = MAX_COOLDOWN.as_millis() as u64;

/// Up to this much is added to a usage window's reset time.
const WINDOW_JITTER_MS: u64 = 1500;

/// The instant (ms since the epoch) the upstream says the account resets, if it says.
pub fn reset_at(headers: &HeaderMap, body: &[u8], now_ms: u64) -> Option<u64> {
    // A window reset brings every client of the account back at once: spread them a little.
    let at = anthropic_unified(headers)
        .map(|t| t.saturating_add(rand::random_range(0..WINDOW_JITTER_MS)))
        .or_else(|| retry_after(headers, now_ms))
        .or_else(|| from_body(body, now_ms))?;
    Some(bounded(at, now_ms))
}

/// `at` (ms since the epoch) within `[now_ms, now_ms + MAX_COOLDOWN]`.
pub(crate) fn bounded(at: u64, now_ms: u64) -> u64 {
    at.clamp(now_ms, now_ms.saturating_add(MAX_COOLDOWN_MS))
}

/// `secs` seconds (any float an upstream sent) as milliseconds, at most [`MAX_COOLDOWN`];
/// `None` for NaN and negative values.
fn delay_ms(secs: f64) -> Option<u64> {
    if secs.is_nan() || secs < 0.0 {
        None
    } else if secs * 1000.0 >= MAX_COOLDOWN_MS as f64 {
        Some(MAX_COOLDOWN_MS)
    } else {
        Some((secs * 1000.0) as u64)
    }
}

/// A header's value as trimmed text, if present and readable.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `retry-after`: delta seconds or an HTTP date.
fn retry_after(headers: &HeaderMap, now_ms: u64) -> Option<u64> {
    let v = header(headers, "retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return delay_ms(secs).map(|ms| now_ms.saturating_add(ms));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// A rejected 5h or 7d window blocks the account until that window resets; the latest
/// rejected window wins. Reset values are Unix seconds.
fn anthropic_unified(headers: &HeaderMap) -> Option<u64> {
    let secs = |name: &str| header(headers, name)?.parse::<u64>().ok();
    let rejected = |name: &str| header(headers, name) == Some("rejected");
    let windows = [
        (
            "anthropic-ratelimit-unified-5h-status",
            "anthropic-ratelimit-unified-5h-reset",
        ),
        (
            "anthropic-ratelimit-unified-7d-status",
            "anthropic-ratelimit-unified-7d-reset",
        ),
    ];
    let window_reset = windows
        .iter()
        .filter(|(status, _)| rejected(status))
        .filter_map(|(_, reset)| secs(reset))
        .max();
    let reset = window_reset.or_else(|| {
        rejected("anthropic-ratelimit-unified-status")
            .then(|| secs("anthropic-ratelimit-unified-reset"))
            .flatten()
    })?;
    Some(reset.saturating_mul(1000))
}

fn from_body(body: &[u8], now_ms: u64) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let error = v.get("error")?;
    // OpenAI / ChatGPT: {"error":{"type":"usage_limit_reached","resets_at":unix,"resets_in_seconds":n}}
    if let Some(at) = error.get("resets_at").and_then(Value::as_u64) {
        return Some(at.saturating_mul(1000));
    }
    if let Some(secs) = error.get("resets_in_seconds").and_then(Value::as_u64) {
        return Some(now_ms.saturating_add(secs.saturating_mul(1000)));
    }
    // Gemini: {"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"30s"}]}}
    error
        .get("details")?
        .as_array()?
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| d.get("retryDelay")?.as_str().and_then(parse_seconds))
        .map(|delay| now_ms.saturating_add(delay))
}

/// A protobuf JSON duration such as `"30s"` or `"1.5s"`, in milliseconds, at most
/// [`MAX_COOLDOWN`]. `"1e300s"` is the cap, not a panic; `"NaNs"` and `"-5s"` are nothing.
fn parse_seconds(s: &str) -> Option<u64> {
    let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
    delay_ms(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const NOW: u64 = 1_700_000_000_000;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(
            reset_at(&headers(&[("retry-after", "30")]), b"", NOW),
            Some(NOW + 30_000)
        );
    }

    #[test]
    fn anthropic_rejected_window_beats_retry_after() {
        let reset = NOW / 1000 + 3600;
        let h = headers(&[
            ("retry-after", "5"),
            ("anthropic-ratelimit-unified-status", "rejected"),
            ("anthropic-ratelimit-unified-5h-status", "rejected"),
            ("anthropic-ratelimit-unified-5h-reset", &reset.to_string()),
            ("anthropic-ratelimit-unified-7d-status", "allowed"),
            (
                "anthropic-ratelimit-unified-7d-reset",
                &(reset + 99_999).to_string(),
            ),
        ]);
        let at = reset_at(&h, b"", NOW).unwrap();
        assert!(
            (reset * 1000..reset * 1000 + WINDOW_JITTER_MS).contains(&at),
            "{at}"
        );
    }

    #[test]
    fn openai_usage_limit_and_gemini_retry_info() {
        let at = NOW / 1000 + 120;
        let body = format!(r#"{{"error":{{"type":"usage_limit_reached","resets_at":{at}}}}}"#);
        assert_eq!(
            reset_at(&HeaderMap::new(), body.as_bytes(), NOW),
            Some(at * 1000)
        );
        let body = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}"#;
        assert_eq!(reset_at(&HeaderMap::new(), body, NOW), Some(NOW + 1500));
    }

    #[test]
    fn absurd_upstream_numbers_are_bounded_never_a_panic_or_ready_now() {
        let cap = NOW + MAX_COOLDOWN.as_millis() as u64;
        let gemini = |delay: &str| {
            let body = format!(
                r#"{{"error":{{"details":[{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{delay}"}}]}}}}"#
            );
            reset_at(&HeaderMap::new(), body.as_bytes(), NOW)
        };
        assert_eq!(gemini("1e300s"), Some(cap));
        assert_eq!(gemini("inf s"), None);
        assert_eq!(gemini("infs"), Some(cap));
        assert_eq!(gemini("NaNs"), None);
        assert_eq!(gemini("-5s"), None);
        assert_eq!(gemini("18446744073709551615s"), Some(cap));
        for v in ["1e300", "inf", "18446744073709551615"] {
            assert_eq!(
                reset_at(&headers(&[("retry-after", v)]), b"", NOW),
                Some(cap),
                "{v}"
            );
        }
        for v in ["NaN", "-1"] {
            assert_eq!(
                reset_at(&headers(&[("retry-after", v)]), b"", NOW),
                None,
                "{v}"
            );
        }
        let max = u64::MAX.to_string();
        let unified = headers(&[
            ("anthropic-ratelimit-unified-status", "rejected"),
            ("anthropic-ratelimit-unified-reset", &max),
        ]);
        assert_eq!(reset_at(&unified, b"", NOW), Some(cap));
        let window = headers(&[
            ("anthropic-ratelimit-unified-5h-status", "rejected"),
            ("anthropic-ratelimit-unified-5h-reset", &max),
        ]);
        assert_eq!(reset_at(&window, b"", NOW), Some(cap));
        for body in [
            format!(r#"{{"error":{{"type":"usage_limit_reached","resets_at":{max}}}}}"#),
            format!(r#"{{"error":{{"type":"usage_limit_reached","resets_in_seconds":{max}}}}}"#),
        ] {
            assert_eq!(reset_at(&HeaderMap::new(), body.as_bytes(), NOW), Some(cap));
        }
        // Even "now" at the end of time saturates instead of wrapping.
        assert_eq!(
            reset_at(&headers(&[("retry-after", "30")]), b"", u64::MAX),
            Some(u64::MAX)
        );
    }

    #[test]
    fn nothing_known_means_none_and_absurd_values_are_capped() {
        assert_eq!(reset_at(&HeaderMap::new(), br#"{"error":{}}"#, NOW), None);
        let h = headers(&[("retry-after", "999999999")]);
        assert_eq!(
            reset_at(&h, b"", NOW),
            Some(NOW + MAX_COOLDOWN.as_millis() as u64)
        );
    }
}
