//! Quota windows: what a provider reports about an account's usage limits (Anthropic's
//! unified 5-hour and 7-day windows, ChatGPT's primary and secondary windows, and an API
//! key's rate limits: `requests`, `tokens`, `input_tokens`, `output_tokens`), kept per account
//! and shown to the user, the "remaining" figure `most_available` ranks by, and until when a
//! window with nothing left keeps the account out of rotation.

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaWindow {
    /// `5h`, `7d`, `7d_opus` (Anthropic); `primary`, `secondary` (ChatGPT).
    pub name: String,
    /// 0–100.
    pub used_percent: f64,
    /// Unix seconds when the window resets, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub resets_at: Option<u64>,
    /// The provider refuses requests until the reset.
    #[serde(default)]
    pub rejected: bool,
}

/// Merge fresh windows into known ones: same name replaces, others stay.
pub fn merge(known: &mut Vec<QuotaWindow>, fresh: Vec<QuotaWindow>) {
    for w in fresh {
        match known.iter_mut().find(|k| k.name == w.name) {
            Some(k) => *k = w,
            None => known.push(w),
        }
    }
}

/// Share of quota left in the tightest window that has not reset yet (1.0 when nothing is
/// known: an account without reports is assumed fresh).
pub fn remaining_ratio(windows: &[QuotaWindow], now_secs: u64) -> f64 {
    windows
        .iter()
        .filter(|w| w.resets_at.is_none_or(|r| r > now_secs))
        .map(|w| {
            if w.rejected {
                0.0
            } else {
                (100.0 - w.used_percent).clamp(0.0, 100.0) / 100.0
            }
        })
        .fold(1.0, f64::min)
}

/// Until when (Unix seconds) a window that has nothing left (`rejected`) and has not reset
/// yet keeps the account out of rotation: the latest such reset. A rejected window with no
/// reset time is left to the provider's 429, which says how long.
pub fn exhausted_until(windows: &[QuotaWindow], now_secs: u64) -> Option<u64> {
    windows
        .iter()
        .filter(|w| w.rejected)
        .filter_map(|w| w.resets_at)
        .filter(|&r| r > now_secs)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str, used: f64, resets_at: Option<u64>) -> QuotaWindow {
        QuotaWindow {
            name: name.into(),
            used_percent: used,
            resets_at,
            rejected: false,
        }
    }

    #[test]
    fn tightest_unexpired_window_counts() {
        let windows = vec![w("5h", 40.0, Some(2000)), w("7d", 90.0, Some(1500))];
        assert!((remaining_ratio(&windows, 1000) - 0.1).abs() < 1e-9);
        assert!(
            (remaining_ratio(&windows, 1600) - 0.6).abs() < 1e-9,
            "7d has reset"
        );
        assert_eq!(remaining_ratio(&[], 0), 1.0);
        let mut known = windows.clone();
        merge(&mut known, vec![w("5h", 10.0, Some(3000))]);
        assert_eq!(known.len(), 2);
        assert_eq!(known[0].used_percent, 10.0);
    }

    #[test]
    fn an_exhausted_window_holds_until_its_reset() {
        let mut spent = w("requests", 100.0, Some(1060));
        spent.rejected = true;
        let windows = vec![w("tokens", 50.0, Some(2000)), spent];
        assert_eq!(exhausted_until(&windows, 1000), Some(1060));
        assert_eq!(exhausted_until(&windows, 1060), None, "reset has come");
        assert_eq!(remaining_ratio(&windows, 1000), 0.0);
        assert_eq!(remaining_ratio(&windows, 1060), 0.5);
    }
}
