//! Runtime facts about accounts that must outlive a snapshot swap: cooldowns, failure counts,
//! "needs attention", request counters and the cached credential. Keyed by account id in the
//! [`StateRegistry`]; pools hold `Arc`s to them directly, so the request path never looks an
//! account up by name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use serde::Serialize;

use crate::secrets::Secret;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Backoff after `n` failures in a row with no reset time from the upstream: 2 s, 4 s, 8 s …
/// capped at 5 minutes.
pub fn backoff(n: u32) -> Duration {
    const BASE_SECS: u64 = 2;
    const CAP_SECS: u64 = 300;
    let exp = n.saturating_sub(1).min(16);
    Duration::from_secs((BASE_SECS << exp).min(CAP_SECS))
}

#[derive(Default)]
pub struct AccountState {
    cooldown_until_ms: AtomicU64,
    failures_in_row: AtomicU32,
    needs_attention: AtomicBool,
    /// Mirrors `credential.is_some()` so that eligibility is three relaxed loads.
    has_credential: AtomicBool,
    in_flight: AtomicU32,
    requests: AtomicU64,
    failures: AtomicU64,
    detail: Mutex<Detail>,
    credential: ArcSwapOption<Secret>,
}

#[derive(Default)]
struct Detail {
    last_error: Option<String>,
    cooldown_reason: Option<String>,
    attention_reason: Option<String>,
}

/// What an account is doing now, for `account list`, `status` and the management API.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccountStatus {
    /// `serving`, `cooling`, `needs_attention` or `no_secret`.
    pub state: &'static str,
    /// Unix seconds when a cooldown ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooling_until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooling_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_attention: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub requests: u64,
    pub failures: u64,
    pub in_flight: u32,
}

impl AccountState {
    fn detail(&self) -> std::sync::MutexGuard<'_, Detail> {
        self.detail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the account may be picked at `now` (ms): it has a secret, is not waiting for
    /// the user, and is not cooling down.
    pub fn is_eligible(&self, now: u64) -> bool {
        !self.needs_attention.load(Ordering::Relaxed)
            && self.cooldown_until_ms.load(Ordering::Relaxed) <= now
            && self.has_credential.load(Ordering::Relaxed)
    }

    /// Cooling until this instant (ms), if it is in the future.
    pub fn cooling_until(&self, now: u64) -> Option<u64> {
        let until = self.cooldown_until_ms.load(Ordering::Relaxed);
        (until > now).then_some(until)
    }

    pub fn credential(&self) -> Option<Arc<Secret>> {
        self.credential.load_full()
    }

    pub fn set_credential(&self, secret: Option<Secret>) {
        self.has_credential
            .store(secret.is_some(), Ordering::Relaxed);
        self.credential.store(secret.map(Arc::new));
    }

    /// Counts a request as started; the guard counts it finished when dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn record_success(&self) {
        if self.failures_in_row.swap(0, Ordering::Relaxed) != 0 {
            self.detail().cooldown_reason = None;
        }
    }

    /// Cool down until `until_ms` (the upstream's own reset time) or, when it gave none, for
    /// the backoff of this failure streak. Returns the end of the cooldown.
    pub fn record_cooldown(&self, until_ms: Option<u64>, reason: String, now: u64) -> u64 {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let streak = self.failures_in_row.fetch_add(1, Ordering::Relaxed) + 1;
        let until = until_ms.unwrap_or_else(|| now + backoff(streak).as_millis() as u64);
        self.cooldown_until_ms.fetch_max(until, Ordering::Relaxed);
        let mut d = self.detail();
        d.last_error = Some(reason.clone());
        d.cooldown_reason = Some(reason);
        until
    }

    /// The upstream refused the credential itself: stop using it until the user acts.
    pub fn mark_needs_attention(&self, reason: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.needs_attention.store(true, Ordering::Relaxed);
        let mut d = self.detail();
        d.last_error = Some(reason.clone());
        d.attention_reason = Some(reason);
    }

    /// A failure that says nothing about the account (e.g. the client went away).
    pub fn record_error(&self, reason: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.detail().last_error = Some(reason);
    }

    /// Forget cooldowns and problems: the user re-enabled the account or gave it a new secret.
    pub fn reset(&self) {
        self.cooldown_until_ms.store(0, Ordering::Relaxed);
        self.failures_in_row.store(0, Ordering::Relaxed);
        self.needs_attention.store(false, Ordering::Relaxed);
        let mut d = self.detail();
        d.cooldown_reason = None;
        d.attention_reason = None;
    }

    pub fn status(&self, now: u64) -> AccountStatus {
        let d = self.detail();
        let cooling = self.cooling_until(now);
        let state = if self.needs_attention.load(Ordering::Relaxed) {
            "needs_attention"
        } else if !self.has_credential.load(Ordering::Relaxed) {
            "no_secret"
        } else if cooling.is_some() {
            "cooling"
        } else {
            "serving"
        };
        AccountStatus {
            state,
            cooling_until: cooling.map(|ms| ms.div_ceil(1000)),
            cooling_reason: cooling.and(d.cooldown_reason.clone()),
            needs_attention: d.attention_reason.clone(),
            last_error: d.last_error.clone(),
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// Marks one request as in flight on an account for as long as it lives.
pub struct InFlight(Arc<AccountState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// All account states, by id. Only snapshot building and management touch the map.
#[derive(Default)]
pub struct StateRegistry {
    states: Mutex<HashMap<String, Arc<AccountState>>>,
}

impl StateRegistry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AccountState>>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get_or_create(&self, id: &str) -> Arc<AccountState> {
        self.map().entry(id.to_owned()).or_default().clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<AccountState>> {
        self.map().get(id).cloned()
    }

    /// Drop the states of accounts that no longer exist.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.map().retain(|id, _| keep(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }

    #[test]
    fn cooldown_uses_the_upstream_reset_when_given() {
        let s = AccountState::default();
        s.set_credential(Some(Secret::new("k")));
        let now = 1_000_000;
        assert!(s.is_eligible(now));
        s.record_cooldown(Some(now + 60_000), "429".into(), now);
        assert!(!s.is_eligible(now + 59_999));
        assert!(s.is_eligible(now + 60_000));
        assert_eq!(s.status(now).state, "cooling");
    }
}
