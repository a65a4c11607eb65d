//! What a client key has used: requests and tokens in the current minute, spend in the current
//! local day and month. Checked before every request and updated after it, so it is all
//! atomics: no lock, no disk. Spend is kept in micro-dollars.
//!
//! Windows are fixed: a minute starts with the first request after the previous minute ended
//! (so a key refused for its rpm serves again at most a minute later), a day at local
//! midnight, a month on the 1st. Two requests racing at a boundary may land in either window;
//! the limits are budgets, not billing.
//!
//! Spend survives a restart: the engine seeds each meter from the usage history
//! ([`Meter::seed`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use jiff::{Timestamp, ToSpan, Zoned, tz::TimeZone};

use crate::client_key::Limits;

/// Length of a rate window.
pub const MINUTE_MS: u64 = 60_000;
const MICROS_PER_USD: f64 = 1_000_000.0;

/// A limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Rpm(u32),
    Tpm(u64),
    DailyUsd(f64),
    MonthlyUsd(f64),
}

impl Limit {
    /// The `keyway client-key limit` option that sets it.
    pub fn option(self) -> &'static str {
        match self {
            Limit::Rpm(_) => "--rpm",
            Limit::Tpm(_) => "--tpm",
            Limit::DailyUsd(_) => "--daily-usd",
            Limit::MonthlyUsd(_) => "--monthly-usd",
        }
    }

    /// `60 requests per minute`, `a daily budget of $5.00`.
    pub fn describe(self) -> String {
        match self {
            Limit::Rpm(n) => format!("{n} requests per minute"),
            Limit::Tpm(n) => format!("{n} tokens per minute"),
            Limit::DailyUsd(usd) => format!("a daily budget of ${usd:.2}"),
            Limit::MonthlyUsd(usd) => format!("a monthly budget of ${usd:.2}"),
        }
    }

    pub fn is_budget(self) -> bool {
        matches!(self, Limit::DailyUsd(_) | Limit::MonthlyUsd(_))
    }
}

/// Why a request was refused, and when the key serves again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    pub limit: Limit,
    /// Whole seconds until the window ends, at least 1.
    pub retry_after_secs: u64,
}

/// A budget this request's spend crossed (reported once per period).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossed {
    pub limit: Limit,
    pub spent_usd: f64,
}

/// What a key has used, for views.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub last_used_ms: u64,
    pub minute_requests: u64,
    pub minute_tokens: u64,
    pub day_usd: f64,
    pub month_usd: f64,
}

/// One day or month of spend.
#[derive(Default)]
struct Period {
    /// Exclusive end of the period, Unix ms; 0 before the first use.
    end_ms: AtomicU64,
    spent_micros: AtomicU64,
    /// Its budget's crossing was reported.
    warned: AtomicBool,
}

impl Period {
    /// Start a new period when `now` is past the current one's end.
    fn roll(&self, now_ms: u64, bounds: fn(u64) -> (u64, u64)) {
        let end = self.end_ms.load(Ordering::Acquire);
        if now_ms < end {
            return;
        }
        let (_, next_end) = bounds(now_ms);
        if self
            .end_ms
            .compare_exchange(end, next_end, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.spent_micros.store(0, Ordering::Release);
            self.warned.store(false, Ordering::Release);
        }
    }

    fn spent_usd(&self) -> f64 {
        self.spent_micros.load(Ordering::Acquire) as f64 / MICROS_PER_USD
    }

    fn retry_after(&self, now_ms: u64) -> u64 {
        secs_until(self.end_ms.load(Ordering::Acquire), now_ms)
    }

    /// Add spend; the crossing of `budget`, once per period.
    fn add(&self, micros: u64, budget: Option<f64>, limit: fn(f64) -> Limit) -> Option<Crossed> {
        let before = saturating_add(&self.spent_micros, micros);
        let spent = before.saturating_add(micros) as f64 / MICROS_PER_USD;
        let budget = budget?;
        (spent >= budget && !self.warned.swap(true, Ordering::AcqRel)).then_some(Crossed {
            limit: limit(budget),
            spent_usd: spent,
        })
    }
}

/// One client key's meter.
#[derive(Default)]
pub struct Meter {
    last_used_ms: AtomicU64,
    minute_start_ms: AtomicU64,
    minute_requests: AtomicU64,
    minute_tokens: AtomicU64,
    day: Period,
    month: Period,
}

impl Meter {
    /// Admit a request now, or say which limit refuses it. An admitted request counts against
    /// the rpm limit; a refused one does not.
    pub fn admit(&self, limits: &Limits, now_ms: u64) -> Result<(), Refusal> {
        self.roll(now_ms);
        if !limits.warn_only {
            if let Some(budget) = limits.daily_usd
                && self.day.spent_usd() >= budget
            {
                return Err(Refusal {
                    limit: Limit::DailyUsd(budget),
                    retry_after_secs: self.day.retry_after(now_ms),
                });
            }
            if let Some(budget) = limits.monthly_usd
                && self.month.spent_usd() >= budget
            {
                return Err(Refusal {
                    limit: Limit::MonthlyUsd(budget),
                    retry_after_secs: self.month.retry_after(now_ms),
                });
            }
        }
        let minute_end = self
            .minute_start_ms
            .load(Ordering::Acquire)
            .saturating_add(MINUTE_MS);
        if let Some(tpm) = limits.tpm
            && self.minute_tokens.load(Ordering::Acquire) >= tpm
        {
            return Err(Refusal {
                limit: Limit::Tpm(tpm),
                retry_after_secs: secs_until(minute_end, now_ms),
            });
        }
        let count = self.minute_requests.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(rpm) = limits.rpm
            && count > u64::from(rpm)
        {
            self.minute_requests.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal {
                limit: Limit::Rpm(rpm),
                retry_after_secs: secs_until(minute_end, now_ms),
            });
        }
        self.last_used_ms.fetch_max(now_ms, Ordering::AcqRel);
        Ok(())
    }

    /// Count a finished request's tokens and cost (`None`: no price known); the budgets it
    /// crossed, each once per period.
    pub fn record(
        &self,
        limits: &Limits,
        tokens: u64,
        cost_usd: Option<f64>,
        now_ms: u64,
    ) -> Vec<Crossed> {
        self.roll(now_ms);
        saturating_add(&self.minute_tokens, tokens);
        let Some(cost) = cost_usd else {
            return Vec::new();
        };
        let micros = usd_to_micros(cost);
        [
            self.day.add(micros, limits.daily_usd, Limit::DailyUsd),
            self.month
                .add(micros, limits.monthly_usd, Limit::MonthlyUsd),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Start from what the history says was spent this day and month (a restart must not
    /// reset a budget) and when the key was last used. Budgets already crossed are not
    /// reported again.
    pub fn seed(
        &self,
        limits: &Limits,
        day_usd: f64,
        month_usd: f64,
        last_used_ms: u64,
        now_ms: u64,
    ) {
        self.roll(now_ms);
        for (period, spent, budget) in [
            (&self.day, day_usd, limits.daily_usd),
            (&self.month, month_usd, limits.monthly_usd),
        ] {
            period
                .spent_micros
                .store(usd_to_micros(spent), Ordering::Release);
            let crossed = budget.is_some_and(|b| spent >= b);
            period.warned.store(crossed, Ordering::Release);
        }
        self.last_used_ms.fetch_max(last_used_ms, Ordering::AcqRel);
    }

    pub fn usage(&self, now_ms: u64) -> Usage {
        self.roll(now_ms);
        Usage {
            last_used_ms: self.last_used_ms.load(Ordering::Acquire),
            minute_requests: self.minute_requests.load(Ordering::Acquire),
            minute_tokens: self.minute_tokens.load(Ordering::Acquire),
            day_usd: self.day.spent_usd(),
            month_usd: self.month.spent_usd(),
        }
    }

    fn roll(&self, now_ms: u64) {
        let start = self.minute_start_ms.load(Ordering::Acquire);
        if now_ms >= start.saturating_add(MINUTE_MS)
            && self
                .minute_start_ms
                .compare_exchange(start, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.minute_requests.store(0, Ordering::Release);
            self.minute_tokens.store(0, Ordering::Release);
        }
        self.day.roll(now_ms, day_bounds);
        self.month.roll(now_ms, month_bounds);
    }
}

/// Add without wrapping; the value before.
fn saturating_add(counter: &AtomicU64, n: u64) -> u64 {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some(v.saturating_add(n))
        })
        .unwrap_or_else(|v| v)
}

/// Dollars as micro-dollars: negative, NaN and absurd amounts are clamped, never wrapped.
fn usd_to_micros(usd: f64) -> u64 {
    let micros = (usd * MICROS_PER_USD).round();
    if micros.is_nan() || micros <= 0.0 {
        0
    } else if micros >= u64::MAX as f64 {
        u64::MAX
    } else {
        micros as u64
    }
}

/// Whole seconds from `now` to `end`, at least 1 (a `Retry-After: 0` invites a busy loop).
fn secs_until(end_ms: u64, now_ms: u64) -> u64 {
    end_ms.saturating_sub(now_ms).div_ceil(1000).max(1)
}

/// The local day around `now`: [midnight, next midnight) in Unix ms. Falls back to UTC days
/// when the time zone cannot say (a time outside its range).
pub fn day_bounds(now_ms: u64) -> (u64, u64) {
    local_bounds(now_ms, |z| {
        let start = z.start_of_day().ok()?;
        let end = start.checked_add(1.day()).ok()?.start_of_day().ok()?;
        Some((start, end))
    })
    .unwrap_or_else(|| utc_bounds(now_ms, 86_400_000))
}

/// The local calendar month around `now`: [the 1st at midnight, the next 1st) in Unix ms.
pub fn month_bounds(now_ms: u64) -> (u64, u64) {
    local_bounds(now_ms, |z| {
        let start = z.first_of_month().ok()?.start_of_day().ok()?;
        let end = start.checked_add(1.month()).ok()?.start_of_day().ok()?;
        Some((start, end))
    })
    // 31 days: a month never ends later than that.
    .unwrap_or_else(|| utc_bounds(now_ms, 31 * 86_400_000))
}

fn local_bounds(now_ms: u64, f: impl Fn(&Zoned) -> Option<(Zoned, Zoned)>) -> Option<(u64, u64)> {
    let ts = Timestamp::from_millisecond(i64::try_from(now_ms).ok()?).ok()?;
    let (start, end) = f(&ts.to_zoned(TimeZone::system()))?;
    let ms = |z: &Zoned| u64::try_from(z.timestamp().as_millisecond()).ok();
    Some((ms(&start)?, ms(&end)?))
}

fn utc_bounds(now_ms: u64, len_ms: u64) -> (u64, u64) {
    let start = now_ms - now_ms % len_ms;
    (start, start.saturating_add(len_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_796_600_000_000;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn rpm_refuses_the_request_after_the_limit_until_the_minute_ends() {
        let m = Meter::default();
        let l = Limits {
            rpm: Some(3),
            ..limits()
        };
        for i in 0..3 {
            assert_eq!(m.admit(&l, T0 + i * 1000), Ok(()), "request {i}");
        }
        let refused = m.admit(&l, T0 + 20_500).expect_err("over the limit");
        assert_eq!(refused.limit, Limit::Rpm(3));
        // The window began with the first request: 39.5 s left, rounded up.
        assert_eq!(refused.retry_after_secs, 40);
        // Refused requests do not count: still refused, then served when the minute is over.
        assert!(m.admit(&l, T0 + 59_999).is_err());
        assert_eq!(m.admit(&l, T0 + MINUTE_MS), Ok(()));
    }

    #[test]
    fn tpm_counts_the_tokens_of_finished_requests() {
        let m = Meter::default();
        let l = Limits {
            tpm: Some(1000),
            ..limits()
        };
        assert_eq!(m.admit(&l, T0), Ok(()));
        m.record(&l, 999, None, T0 + 10);
        assert_eq!(m.admit(&l, T0 + 20), Ok(()));
        m.record(&l, 1, None, T0 + 30);
        assert_eq!(
            m.admit(&l, T0 + 40).map_err(|r| r.limit),
            Err(Limit::Tpm(1000))
        );
        assert_eq!(m.admit(&l, T0 + MINUTE_MS), Ok(()));
    }

    #[test]
    fn a_daily_budget_stops_the_key_once_crossed_and_reports_it_once() {
        let now = T0;
        let (_, midnight) = day_bounds(now);
        let m = Meter::default();
        let l = Limits {
            daily_usd: Some(1.0),
            ..limits()
        };
        assert_eq!(m.admit(&l, now), Ok(()));
        assert!(m.record(&l, 10, Some(0.6), now).is_empty());
        assert_eq!(m.admit(&l, now + 1), Ok(()));
        let crossed = m.record(&l, 10, Some(0.5), now + 2);
        assert_eq!(crossed.len(), 1);
        assert_eq!(crossed[0].limit, Limit::DailyUsd(1.0));
        assert!((crossed[0].spent_usd - 1.1).abs() < 1e-9);
        let refused = m.admit(&l, now + 3).expect_err("over budget");
        assert_eq!(refused.limit, Limit::DailyUsd(1.0));
        assert_eq!(refused.retry_after_secs, secs_until(midnight, now + 3));
        // Reported once, however much more is spent.
        assert!(m.record(&l, 10, Some(0.5), now + 4).is_empty());
        // A new day starts from nothing.
        assert_eq!(m.admit(&l, midnight), Ok(()));
        assert_eq!(m.usage(midnight).day_usd, 0.0);
    }

    #[test]
    fn warn_only_budgets_never_refuse() {
        let m = Meter::default();
        let l = Limits {
            monthly_usd: Some(1.0),
            warn_only: true,
            ..limits()
        };
        assert_eq!(m.record(&l, 0, Some(2.0), T0).len(), 1);
        assert_eq!(m.admit(&l, T0 + 1), Ok(()));
    }

    #[test]
    fn a_seeded_meter_keeps_the_days_spend_and_does_not_report_again() {
        let m = Meter::default();
        let l = Limits {
            daily_usd: Some(5.0),
            ..limits()
        };
        m.seed(&l, 5.5, 7.0, T0 - 10, T0);
        assert_eq!(
            m.admit(&l, T0).map_err(|r| r.limit),
            Err(Limit::DailyUsd(5.0))
        );
        assert!(m.record(&l, 1, Some(0.1), T0).is_empty());
        let u = m.usage(T0);
        assert_eq!(u.last_used_ms, T0 - 10);
        assert!((u.month_usd - 7.1).abs() < 1e-9);
    }

    #[test]
    fn absurd_costs_and_times_saturate() {
        assert_eq!(usd_to_micros(f64::NAN), 0);
        assert_eq!(usd_to_micros(-3.0), 0);
        assert_eq!(usd_to_micros(f64::INFINITY), u64::MAX);
        assert_eq!(usd_to_micros(1e300), u64::MAX);
        let m = Meter::default();
        let l = Limits {
            daily_usd: Some(1.0),
            ..limits()
        };
        m.record(&l, u64::MAX, Some(1e300), T0);
        m.record(&l, u64::MAX, Some(1e300), T0);
        assert!(m.admit(&l, T0).is_err());
        // Times beyond any calendar still give bounds.
        let (start, end) = day_bounds(u64::MAX);
        assert!(start <= end);
        assert_eq!(secs_until(0, u64::MAX), 1);
    }

    #[test]
    fn periods_are_a_day_and_a_month_long() {
        let (start, end) = day_bounds(T0);
        assert!(start <= T0 && T0 < end);
        // 23 to 25 hours: a daylight saving change may shorten or lengthen a local day.
        assert!((23 * 3_600_000..=25 * 3_600_000).contains(&(end - start)));
        let (start, end) = month_bounds(T0);
        assert!(start <= T0 && T0 < end);
        assert!(
            (28 * 86_400_000 - 3_600_000..=31 * 86_400_000 + 3_600_000).contains(&(end - start))
        );
    }
}
