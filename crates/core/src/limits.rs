//! Limits a user sets on one account (`[[accounts]] limits = { max_concurrent = 4, rpm = 50,
//! tpm = 40000 }`): what their key's tier allows, so that Keyway stops sending to the account
//! before the provider refuses, and spreads the rest over the other accounts.
//!
//! An account at a limit is skipped like a cooling one, by every strategy, until the limit
//! frees: a request in flight ends, or the minute window ends. The counters are atomics on the
//! account's state ([`crate::state::AccountState`]): the request path takes no lock.
//!
//! Windows are fixed, as the client keys' ([`crate::meter`]): a minute starts with the first
//! request after the previous minute ended. Two requests racing at a boundary may land in
//! either window; the limits are a ceiling on what Keyway sends, not billing.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::client_key::{RPM_RANGE, TPM_RANGE};
use crate::meter::MINUTE_MS;

/// The range `max_concurrent` must be in.
pub const MAX_CONCURRENT_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000;

/// The `Retry-After` Keyway gives when every account is at its `max_concurrent`: a request
/// in flight ends any moment, so the client is told to come back soon, not in a minute.
pub const BUSY_RETRY_MS: u64 = 1_000;

/// One account's limits; every one optional.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountLimits {
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub max_concurrent: Option<u32>,
    /// Requests sent per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub rpm: Option<u32>,
    /// Tokens (input and output) per minute, counted when each answer ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub tpm: Option<u64>,
}

impl AccountLimits {
    pub fn is_empty(&self) -> bool {
        self.max_concurrent.is_none() && self.rpm.is_none() && self.tpm.is_none()
    }

    /// The first limit out of range: its field name and what is wrong, with the fix.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(n) = self.max_concurrent
            && !MAX_CONCURRENT_RANGE.contains(&n)
        {
            return Err((
                "max_concurrent",
                format!(
                    "max_concurrent must be between {} and {} requests in flight; leave it out for no limit",
                    MAX_CONCURRENT_RANGE.start(),
                    MAX_CONCURRENT_RANGE.end()
                ),
            ));
        }
        if let Some(n) = self.rpm
            && !RPM_RANGE.contains(&n)
        {
            return Err((
                "rpm",
                format!(
                    "rpm must be between {} and {} requests per minute; leave it out for no limit",
                    RPM_RANGE.start(),
                    RPM_RANGE.end()
                ),
            ));
        }
        if let Some(n) = self.tpm
            && !TPM_RANGE.contains(&n)
        {
            return Err((
                "tpm",
                format!(
                    "tpm must be between {} and {} tokens per minute; leave it out for no limit",
                    TPM_RANGE.start(),
                    TPM_RANGE.end()
                ),
            ));
        }
        Ok(())
    }

    /// These limits with the ones `given` sets in place of theirs; the others kept.
    pub fn with(self, given: &AccountLimits) -> AccountLimits {
        AccountLimits {
            max_concurrent: given.max_concurrent.or(self.max_concurrent),
            rpm: given.rpm.or(self.rpm),
            tpm: given.tpm.or(self.tpm),
        }
    }

    /// `at most 4 in flight, 50 rpm, 40000 tpm`, or `no limits`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.max_concurrent {
            parts.push(format!("at most {n} in flight"));
        }
        if let Some(n) = self.rpm {
            parts.push(format!("{n} rpm"));
        }
        if let Some(n) = self.tpm {
            parts.push(format!("{n} tpm"));
        }
        if parts.is_empty() {
            "no limits".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Why an account that could otherwise serve is skipped for now, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// `max_concurrent` requests are in flight: free as soon as one ends.
    Busy { max_concurrent: u32 },
    /// `rpm` requests were sent in the current minute, which ends at `until_ms`.
    Rpm { rpm: u32, until_ms: u64 },
    /// `tpm` tokens were used in the current minute, which ends at `until_ms`.
    Tpm { tpm: u64, until_ms: u64 },
    /// The provider's own rate-limit headers said nothing is left until `until_ms`.
    Exhausted { until_ms: u64 },
}

impl Hold {
    /// When the account may serve again (ms): a window's end, or soon for a busy one.
    pub fn until_ms(self, now: u64) -> u64 {
        match self {
            Hold::Busy { .. } => now.saturating_add(BUSY_RETRY_MS),
            Hold::Rpm { until_ms, .. }
            | Hold::Tpm { until_ms, .. }
            | Hold::Exhausted { until_ms } => until_ms,
        }
    }

    /// What holds the account, in the words of its setting.
    pub fn describe(self) -> String {
        match self {
            Hold::Busy { max_concurrent } => {
                format!("max_concurrent: {max_concurrent} requests in flight")
            }
            Hold::Rpm { rpm, .. } => format!("rpm: {rpm} requests this minute"),
            Hold::Tpm { tpm, .. } => format!("tpm: {tpm} tokens this minute"),
            Hold::Exhausted { .. } => {
                "the provider's rate-limit headers said none is left".to_owned()
            }
        }
    }

    /// Whether the hold ends only with a window (not with a request ending): worth showing as
    /// the account's state.
    pub fn is_window(self) -> bool {
        !matches!(self, Hold::Busy { .. })
    }
}

/// Requests and tokens in the current fixed minute, in atomics.
#[derive(Default)]
pub struct MinuteWindow {
    start_ms: AtomicU64,
    requests: AtomicU64,
    tokens: AtomicU64,
}

/// What a [`MinuteWindow`] holds at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteCounts {
    pub requests: u64,
    pub tokens: u64,
    /// When the window ends (ms); counts are zero once it has.
    pub ends_ms: u64,
}

impl MinuteWindow {
    /// The counts of the window holding `now`, without starting a new one: a window that has
    /// ended counts nothing.
    pub fn counts(&self, now: u64) -> MinuteCounts {
        let ends_ms = self
            .start_ms
            .load(Ordering::Acquire)
            .saturating_add(MINUTE_MS);
        if now >= ends_ms {
            return MinuteCounts {
                requests: 0,
                tokens: 0,
                ends_ms: now.saturating_add(MINUTE_MS),
            };
        }
        MinuteCounts {
            requests: self.requests.load(Ordering::Acquire),
            tokens: self.tokens.load(Ordering::Acquire),
            ends_ms,
        }
    }

    /// Count one request sent at `now`, unless `rpm` are already counted in this minute:
    /// then the window's end (ms), and nothing is counted.
    pub fn admit(&self, now: u64, rpm: Option<u32>) -> Result<(), u64> {
        self.roll(now);
        let count = self
            .requests
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        match rpm {
            Some(rpm) if count > u64::from(rpm) => {
                self.requests.fetch_sub(1, Ordering::AcqRel);
                Err(self
                    .start_ms
                    .load(Ordering::Acquire)
                    .saturating_add(MINUTE_MS))
            }
            _ => Ok(()),
        }
    }

    /// Add the tokens of an answer that ended at `now`, without wrapping.
    pub fn add_tokens(&self, now: u64, tokens: u64) {
        self.roll(now);
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(tokens))
            });
    }

    /// Start a new window when `now` is past the current one's end.
    fn roll(&self, now: u64) {
        let start = self.start_ms.load(Ordering::Acquire);
        if now >= start.saturating_add(MINUTE_MS)
            && self
                .start_ms
                .compare_exchange(start, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.requests.store(0, Ordering::Release);
            self.tokens.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn rpm_refuses_until_the_window_ends_then_counts_afresh() {
        let w = MinuteWindow::default();
        assert_eq!(w.admit(T0, Some(2)), Ok(()));
        assert_eq!(w.admit(T0 + 10, Some(2)), Ok(()));
        // The third in the same minute is refused, with the minute's end, and not counted.
        assert_eq!(w.admit(T0 + 20, Some(2)), Err(T0 + MINUTE_MS));
        assert_eq!(w.counts(T0 + 20).requests, 2);
        assert_eq!(w.admit(T0 + MINUTE_MS - 1, Some(2)), Err(T0 + MINUTE_MS));
        // The next minute starts with the first request after the last one ended.
        assert_eq!(
            w.counts(T0 + MINUTE_MS).requests,
            0,
            "an ended window counts nothing"
        );
        assert_eq!(w.admit(T0 + MINUTE_MS + 5, Some(2)), Ok(()));
        let c = w.counts(T0 + MINUTE_MS + 5);
        assert_eq!((c.requests, c.ends_ms), (1, T0 + 2 * MINUTE_MS + 5));
    }

    #[test]
    fn tokens_add_up_saturating_and_expire_with_the_window() {
        let w = MinuteWindow::default();
        w.add_tokens(T0, 30_000);
        w.add_tokens(T0 + 1, 15_000);
        assert_eq!(w.counts(T0 + 2).tokens, 45_000);
        w.add_tokens(T0 + 3, u64::MAX);
        assert_eq!(w.counts(T0 + 3).tokens, u64::MAX, "saturates, never wraps");
        assert_eq!(w.counts(T0 + MINUTE_MS).tokens, 0);
    }

    #[test]
    fn no_rpm_counts_without_refusing() {
        let w = MinuteWindow::default();
        for i in 0..1000 {
            assert_eq!(w.admit(T0 + i, None), Ok(()));
        }
        assert_eq!(w.counts(T0 + 1000).requests, 1000);
    }

    #[test]
    fn out_of_range_limits_name_the_field() {
        let bad = |l: AccountLimits| l.check().unwrap_err().0;
        assert_eq!(
            bad(AccountLimits {
                max_concurrent: Some(0),
                ..AccountLimits::default()
            }),
            "max_concurrent"
        );
        assert_eq!(
            bad(AccountLimits {
                rpm: Some(0),
                ..AccountLimits::default()
            }),
            "rpm"
        );
        assert_eq!(
            bad(AccountLimits {
                tpm: Some(u64::MAX),
                ..AccountLimits::default()
            }),
            "tpm"
        );
        let ok = AccountLimits {
            max_concurrent: Some(4),
            rpm: Some(50),
            tpm: Some(40_000),
        };
        assert_eq!(ok.check(), Ok(()));
        let changed = ok.with(&AccountLimits {
            rpm: Some(7),
            ..AccountLimits::default()
        });
        assert_eq!(changed, AccountLimits { rpm: Some(7), ..ok });
        assert_eq!(ok.describe(), "at most 4 in flight, 50 rpm, 40000 tpm");
        assert_eq!(AccountLimits::default().describe(), "no limits");
    }
}
