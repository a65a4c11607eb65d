//! Runtime facts about accounts that must outlive a snapshot swap: cooldowns, failure counts,
//! "needs attention", quota windows, request counters, the account's limits with the minute
//! they are counted in, its time to first byte, and the cached credential. Keyed by account id
//! in the [`StateRegistry`]; pools hold `Arc`s to them directly, so the request path never
//! looks an account up by name. Cooldowns, problems and quota windows also outlive a restart:
//! the registry saves them to the data dir.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};

use crate::credential::Credential;
use crate::limits::{AccountLimits, Hold, MinuteWindow};
use crate::quota::{self, QuotaWindow};

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

/// Weight of a new time-to-first-byte sample in the account's average (an EWMA): a fifth, so
/// one slow answer moves the average a little and five in a row move it most of the way.
const TTFB_NEW_SAMPLE: (u64, u64) = (1, 5);

/// No time to first byte above this is believed (10 minutes, in µs): it bounds the average's
/// arithmetic, and no first-byte timeout is longer.
const TTFB_MAX_US: u64 = 600_000_000;

/// Why an account is out of rotation until the user acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attention {
    /// The provider refused the API key.
    NeedsAttention,
    /// The login cannot be refreshed any more (revoked, reused refresh token): log in again.
    NeedsLogin,
}

pub struct AccountState {
    cooldown_until_ms: AtomicU64,
    failures_in_row: AtomicU32,
    needs_attention: AtomicBool,
    /// Mirrors `credential.is_some()` so that eligibility is three relaxed loads.
    has_credential: AtomicBool,
    /// `f64` bits of the remaining quota ratio (0..=1) in the tightest window.
    remaining_bits: AtomicU64,
    /// When the next known window resets (ms): the ratio is recomputed from then on.
    remaining_stale_at_ms: AtomicU64,
    /// Until when (ms) a window the provider reported is exhausted (`rejected`, e.g. an API
    /// key's rate-limit headers announcing 0 remaining): the account is skipped until then,
    /// without waiting for the 429. 0 when none is.
    exhausted_until_ms: AtomicU64,
    in_flight: AtomicU32,
    /// The user's limits (config), applied at every snapshot build; 0 = none.
    max_concurrent: AtomicU32,
    rpm: AtomicU32,
    tpm: AtomicU64,
    /// Requests sent and tokens used in the current minute, for `rpm` and `tpm`.
    minute: MinuteWindow,
    /// Time to first byte (response headers) of successful answers, an EWMA in µs; 0 before
    /// the first sample.
    ttfb_us: AtomicU64,
    /// When the last time-to-first-byte sample was taken (ms; 0 = never).
    ttfb_at_ms: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    /// When a request last started on this account (ms), so quota polls skip busy accounts.
    last_used_ms: AtomicU64,
    /// Bumped by every change worth saving, so the saver knows when to write.
    version: AtomicU64,
    /// Told of every such change, so the saver and the event watch wait for one instead of
    /// polling: the registry's signal, or one of its own nobody waits on.
    changes: Arc<Changes>,
    detail: Mutex<Detail>,
    credential: ArcSwapOption<Credential>,
}

/// A signal that some account's lasting facts changed. Each waiter
/// ([`StateRegistry::subscribe`]) sees every change since it last looked, however many
/// changes came in between; sending costs a lock-free check when nobody waits.
pub type Changes = tokio::sync::watch::Sender<()>;

impl Default for AccountState {
    fn default() -> Self {
        AccountState {
            cooldown_until_ms: AtomicU64::new(0),
            failures_in_row: AtomicU32::new(0),
            needs_attention: AtomicBool::new(false),
            has_credential: AtomicBool::new(false),
            remaining_bits: AtomicU64::new(1.0f64.to_bits()),
            remaining_stale_at_ms: AtomicU64::new(u64::MAX),
            exhausted_until_ms: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            max_concurrent: AtomicU32::new(0),
            rpm: AtomicU32::new(0),
            tpm: AtomicU64::new(0),
            minute: MinuteWindow::default(),
            ttfb_us: AtomicU64::new(0),
            ttfb_at_ms: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_used_ms: AtomicU64::new(0),
            version: AtomicU64::new(0),
            changes: Arc::new(Changes::new(())),
            detail: Mutex::new(Detail::default()),
            credential: ArcSwapOption::empty(),
        }
    }
}

#[derive(Default)]
struct Detail {
    last_error: Option<String>,
    cooldown_reason: Option<String>,
    attention: Option<(Attention, String)>,
    quota: Vec<QuotaWindow>,
}

/// Whether an account can serve now, and if not, what it waits for.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    #[default]
    Serving,
    /// Rate-limited or failing: back at `cooling_until`.
    Cooling,
    /// At its `rpm` or `tpm` limit, or out of what the provider's rate-limit headers allow:
    /// skipped until `limited_until`, without a failure.
    Limited,
    /// The provider refused the API key: the user must replace it or re-enable the account.
    NeedsAttention,
    /// The login cannot be renewed: the user must log in again.
    NeedsLogin,
    /// The keyring holds no secret for the account.
    NoSecret,
}

/// What an account is doing now, for `account list`, `status` and the management API.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AccountStatus {
    pub state: LiveState,
    /// Unix seconds when a cooldown ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub cooling_until: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub cooling_reason: Option<String>,
    /// Unix seconds when a limit stops holding the account (state `limited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub limited_until: Option<u64>,
    /// Which limit holds it, e.g. `rpm: 50 requests this minute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub limited_reason: Option<String>,
    /// Why the account needs the user (a refused key, or a login to renew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub needs_attention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub last_error: Option<String>,
    /// The provider's reported usage windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Vec<QuotaWindow>>", optional))]
    pub quota: Vec<QuotaWindow>,
    pub requests: u64,
    pub failures: u64,
    pub in_flight: u32,
    /// Requests sent and tokens used in the current minute (what `rpm` and `tpm` count).
    #[serde(default)]
    pub minute_requests: u64,
    #[serde(default)]
    pub minute_tokens: u64,
    /// Average time to the upstream's response headers of recent successful answers (ms), as
    /// `fastest` ranks accounts; none before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub ttfb_ms: Option<u64>,
}

impl AccountState {
    fn detail(&self) -> MutexGuard<'_, Detail> {
        self.detail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::Relaxed);
        self.changes.send_replace(());
    }

    /// Whether the account may be picked at `now` (ms): it has a credential, is not waiting
    /// for the user, is not cooling down, and no limit holds it.
    pub fn is_eligible(&self, now: u64) -> bool {
        !self.needs_attention.load(Ordering::Relaxed)
            && self.cooldown_until_ms.load(Ordering::Relaxed) <= now
            && self.has_credential.load(Ordering::Relaxed)
            && self.hold(now).is_none()
    }

    /// The limit that holds the account at `now`, if one does: a window the provider said is
    /// exhausted, `max_concurrent` requests in flight, or the minute's `rpm` or `tpm` used up.
    /// Atomics only.
    pub fn hold(&self, now: u64) -> Option<Hold> {
        let exhausted = self.exhausted_until_ms.load(Ordering::Relaxed);
        if exhausted > now {
            return Some(Hold::Exhausted {
                until_ms: exhausted,
            });
        }
        let max_concurrent = self.max_concurrent.load(Ordering::Relaxed);
        if max_concurrent > 0 && self.in_flight.load(Ordering::Relaxed) >= max_concurrent {
            return Some(Hold::Busy { max_concurrent });
        }
        let rpm = self.rpm.load(Ordering::Relaxed);
        let tpm = self.tpm.load(Ordering::Relaxed);
        if rpm == 0 && tpm == 0 {
            return None;
        }
        let minute = self.minute.counts(now);
        if rpm > 0 && minute.requests >= u64::from(rpm) {
            return Some(Hold::Rpm {
                rpm,
                until_ms: minute.ends_ms,
            });
        }
        if tpm > 0 && minute.tokens >= tpm {
            return Some(Hold::Tpm {
                tpm,
                until_ms: minute.ends_ms,
            });
        }
        None
    }

    /// Until when (ms) the account waits, if it is only waiting (cooling down, or held by a
    /// limit) and not for the user.
    pub fn waits_until(&self, now: u64) -> Option<u64> {
        let cooling = self.cooling_until(now);
        let held = self.hold(now).map(|h| h.until_ms(now));
        cooling.max(held)
    }

    /// Apply the user's limits (from the config; none = no limit).
    pub fn set_limits(&self, limits: &AccountLimits) {
        self.max_concurrent
            .store(limits.max_concurrent.unwrap_or(0), Ordering::Relaxed);
        self.rpm.store(limits.rpm.unwrap_or(0), Ordering::Relaxed);
        self.tpm.store(limits.tpm.unwrap_or(0), Ordering::Relaxed);
    }

    /// Cooling until this instant (ms), if it is in the future.
    pub fn cooling_until(&self, now: u64) -> Option<u64> {
        let until = self.cooldown_until_ms.load(Ordering::Relaxed);
        (until > now).then_some(until)
    }

    pub fn credential(&self) -> Option<Arc<Credential>> {
        self.credential.load_full()
    }

    pub fn set_credential(&self, credential: Option<Credential>) {
        self.has_credential
            .store(credential.is_some(), Ordering::Relaxed);
        self.credential.store(credential.map(Arc::new));
    }

    /// Counts a request as started at `now` (ms), within the account's limits: a slot under
    /// `max_concurrent` is taken with a compare-and-swap, so concurrent requests never exceed
    /// it, and the request counts against `rpm`. The guard counts it finished when dropped.
    /// The limit that refused it otherwise (nothing is counted then).
    pub fn try_begin(self: &Arc<Self>, now: u64) -> Result<InFlight, Hold> {
        let max_concurrent = self.max_concurrent.load(Ordering::Relaxed);
        let took = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (max_concurrent == 0 || n < max_concurrent).then(|| n.saturating_add(1))
            });
        if took.is_err() {
            return Err(Hold::Busy { max_concurrent });
        }
        let rpm = self.rpm.load(Ordering::Relaxed);
        if let Err(until_ms) = self.minute.admit(now, (rpm > 0).then_some(rpm)) {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Hold::Rpm { rpm, until_ms });
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.last_used_ms.store(now, Ordering::Relaxed);
        Ok(InFlight(self.clone()))
    }

    /// Take in how long a successful answer took to its response headers.
    pub fn record_latency(&self, ttfb: Duration, now: u64) {
        let sample = u64::try_from(ttfb.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, TTFB_MAX_US);
        let (new, of) = TTFB_NEW_SAMPLE;
        let _ = self
            .ttfb_us
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    ((of - new) * old.min(TTFB_MAX_US) + new * sample) / of
                })
            });
        self.ttfb_at_ms.store(now, Ordering::Relaxed);
    }

    /// The average time to first byte in µs, `None` before the first sample.
    pub fn ttfb_us(&self) -> Option<u64> {
        Some(self.ttfb_us.load(Ordering::Relaxed)).filter(|&us| us > 0)
    }

    /// When the last time-to-first-byte sample was taken (ms; 0 = never).
    pub fn ttfb_sampled_at(&self) -> u64 {
        self.ttfb_at_ms.load(Ordering::Relaxed)
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
        let until =
            until_ms.unwrap_or_else(|| now.saturating_add(backoff(streak).as_millis() as u64));
        self.cooldown_until_ms.fetch_max(until, Ordering::Relaxed);
        let mut d = self.detail();
        d.last_error = Some(reason.clone());
        d.cooldown_reason = Some(reason);
        self.changed();
        until
    }

    /// The provider refused the credential itself, or the login cannot be renewed: stop
    /// using the account until the user acts.
    pub fn mark(&self, attention: Attention, reason: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.needs_attention.store(true, Ordering::Relaxed);
        let mut d = self.detail();
        d.last_error = Some(reason.clone());
        d.attention = Some((attention, reason));
        self.changed();
    }

    /// Why the account is out of rotation until the user acts, if it is.
    pub fn attention(&self) -> Option<Attention> {
        self.detail().attention.as_ref().map(|(a, _)| *a)
    }

    /// A failure that says nothing about the account (e.g. the client went away).
    pub fn record_error(&self, reason: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.detail().last_error = Some(reason);
    }

    /// Take in what the provider reported about the account's usage windows.
    pub fn record_quota(&self, fresh: Vec<QuotaWindow>) {
        if fresh.is_empty() {
            return;
        }
        let mut d = self.detail();
        quota::merge(&mut d.quota, fresh);
        self.store_remaining(&d.quota);
        self.changed();
    }

    fn store_remaining(&self, windows: &[QuotaWindow]) {
        let now_secs = now_ms() / 1000;
        let remaining = quota::remaining_ratio(windows, now_secs);
        let next_reset = windows
            .iter()
            .filter_map(|w| w.resets_at)
            .filter(|&r| r > now_secs)
            .min()
            .map_or(u64::MAX, |s| s.saturating_mul(1000));
        self.remaining_bits
            .store(remaining.to_bits(), Ordering::Relaxed);
        self.remaining_stale_at_ms
            .store(next_reset, Ordering::Relaxed);
        self.exhausted_until_ms.store(
            quota::exhausted_until(windows, now_secs).map_or(0, |s| s.saturating_mul(1000)),
            Ordering::Relaxed,
        );
    }

    /// Requests in flight on this account now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// When a request last started on this account (ms since the epoch; 0 = never).
    pub fn last_used_ms(&self) -> u64 {
        self.last_used_ms.load(Ordering::Relaxed)
    }

    /// Share of quota left in the tightest window (1.0 when unknown).
    /// Call [`AccountState::refresh_remaining`] first: a window may have reset since.
    pub fn remaining_ratio(&self) -> f64 {
        f64::from_bits(self.remaining_bits.load(Ordering::Relaxed))
    }

    /// Recompute the remaining ratio if a window has reset since the last report (at `now`,
    /// ms): a reset window no longer counts. One relaxed load when nothing has reset.
    pub fn refresh_remaining(&self, now: u64) {
        if now >= self.remaining_stale_at_ms.load(Ordering::Relaxed) {
            self.store_remaining(&self.detail().quota);
        }
    }

    /// Forget cooldowns and problems: the user re-enabled the account or logged in again.
    pub fn reset(&self) {
        self.cooldown_until_ms.store(0, Ordering::Relaxed);
        self.failures_in_row.store(0, Ordering::Relaxed);
        self.needs_attention.store(false, Ordering::Relaxed);
        let mut d = self.detail();
        d.cooldown_reason = None;
        d.attention = None;
        self.changed();
    }

    pub fn status(&self, now: u64) -> AccountStatus {
        let d = self.detail();
        let cooling = self.cooling_until(now);
        // A busy account is serving, at full capacity; a spent window is worth telling.
        let limited = self.hold(now).filter(|h| h.is_window());
        let state = match &d.attention {
            Some((Attention::NeedsLogin, _)) => LiveState::NeedsLogin,
            Some((Attention::NeedsAttention, _)) => LiveState::NeedsAttention,
            None if !self.has_credential.load(Ordering::Relaxed) => LiveState::NoSecret,
            None if cooling.is_some() => LiveState::Cooling,
            None if limited.is_some() => LiveState::Limited,
            None => LiveState::Serving,
        };
        let minute = self.minute.counts(now);
        AccountStatus {
            state,
            cooling_until: cooling.map(|ms| ms.div_ceil(1000)),
            cooling_reason: cooling.and(d.cooldown_reason.clone()),
            limited_until: limited.map(|h| h.until_ms(now).div_ceil(1000)),
            limited_reason: limited.map(Hold::describe),
            needs_attention: d.attention.as_ref().map(|(_, r)| r.clone()),
            last_error: d.last_error.clone(),
            quota: d.quota.clone(),
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            minute_requests: minute.requests,
            minute_tokens: minute.tokens,
            ttfb_ms: self.ttfb_us().map(|us| us.div_ceil(1000)),
        }
    }

    fn saved(&self) -> SavedAccount {
        let d = self.detail();
        SavedAccount {
            cooldown_until_ms: self.cooldown_until_ms.load(Ordering::Relaxed),
            cooldown_reason: d.cooldown_reason.clone(),
            attention: d.attention.clone(),
            quota: d.quota.clone(),
        }
    }

    fn restore(&self, saved: SavedAccount) {
        self.cooldown_until_ms
            .store(saved.cooldown_until_ms, Ordering::Relaxed);
        self.needs_attention
            .store(saved.attention.is_some(), Ordering::Relaxed);
        let mut d = self.detail();
        d.cooldown_reason = saved.cooldown_reason;
        d.attention = saved.attention;
        drop(d);
        self.record_quota(saved.quota);
    }
}

/// Marks one request as in flight on an account for as long as it lives.
pub struct InFlight(Arc<AccountState>);

impl InFlight {
    /// The request's answer ended at `now` (ms) having used `tokens`: they count against the
    /// account's `tpm`, and the request is no longer in flight.
    pub fn finish(self, tokens: u64, now: u64) {
        self.0.minute.add_tokens(now, tokens);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What of an account's state survives a restart.
#[derive(Serialize, Deserialize)]
struct SavedAccount {
    #[serde(default)]
    cooldown_until_ms: u64,
    #[serde(default)]
    cooldown_reason: Option<String>,
    #[serde(default)]
    attention: Option<(Attention, String)>,
    #[serde(default)]
    quota: Vec<QuotaWindow>,
}

/// All account states, by id. Only snapshot building, management and the saver touch the map.
#[derive(Default)]
pub struct StateRegistry {
    states: Mutex<HashMap<String, Arc<AccountState>>>,
    /// Every state's change signal.
    changes: Arc<Changes>,
}

impl StateRegistry {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<AccountState>>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get_or_create(&self, id: &str) -> Arc<AccountState> {
        let mut map = self.map();
        if let Some(state) = map.get(id) {
            return state.clone();
        }
        let state = Arc::new(AccountState {
            changes: self.changes.clone(),
            ..AccountState::default()
        });
        map.insert(id.to_owned(), state.clone());
        self.changes.send_replace(());
        state
    }

    pub fn get(&self, id: &str) -> Option<Arc<AccountState>> {
        self.map().get(id).cloned()
    }

    /// Drop the states of accounts that no longer exist.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut map = self.map();
        let before = map.len();
        map.retain(|id, _| keep(id));
        if map.len() != before {
            self.changes.send_replace(());
        }
    }

    /// Waits for changes of any account's lasting facts: `changed().await` returns once one
    /// came since the last call.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<()> {
        self.changes.subscribe()
    }

    /// A number that changes whenever any state worth saving changes.
    pub fn version(&self) -> u64 {
        let map = self.map();
        map.values()
            .map(|s| s.version.load(Ordering::Relaxed))
            .fold(map.len() as u64, u64::wrapping_add)
    }

    /// The saved form of every account's lasting facts, as JSON.
    pub fn to_json(&self) -> String {
        let saved: HashMap<String, SavedAccount> = self
            .map()
            .iter()
            .map(|(id, s)| (id.clone(), s.saved()))
            .collect();
        serde_json::to_string_pretty(&saved).unwrap_or_default()
    }

    /// Restore facts saved by [`StateRegistry::to_json`] from `path`; a missing or unreadable
    /// file restores nothing (the facts are a cache of what providers said, not user data).
    pub fn restore_from(&self, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let Ok(saved) = serde_json::from_str::<HashMap<String, SavedAccount>>(&text) else {
            tracing::warn!(path = %path.display(), "ignoring unreadable saved account state");
            return;
        };
        for (id, s) in saved {
            self.get_or_create(&id).restore(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }

    #[test]
    fn cooldown_uses_the_upstream_reset_when_given() {
        let s = AccountState::default();
        s.set_credential(Some(Credential::ApiKey(Secret::new("k"))));
        let now = 1_000_000;
        assert!(s.is_eligible(now));
        s.record_cooldown(Some(now + 60_000), "429".into(), now);
        assert!(!s.is_eligible(now + 59_999));
        assert!(s.is_eligible(now + 60_000));
        assert_eq!(s.status(now).state, LiveState::Cooling);
    }

    #[test]
    fn max_concurrent_holds_when_threads_race_for_the_last_slot() {
        use crate::limits::{AccountLimits, Hold};
        use std::sync::atomic::AtomicUsize;
        const CAP: u32 = 3;
        let s = Arc::new(AccountState::default());
        s.set_limits(&AccountLimits {
            max_concurrent: Some(CAP),
            ..AccountLimits::default()
        });
        let held = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let refused = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..2_000 {
                        match s.try_begin(1) {
                            Ok(slot) => {
                                let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                                peak.fetch_max(now, Ordering::SeqCst);
                                std::thread::yield_now();
                                held.fetch_sub(1, Ordering::SeqCst);
                                drop(slot);
                            }
                            Err(hold) => {
                                assert_eq!(
                                    hold,
                                    Hold::Busy {
                                        max_concurrent: CAP
                                    }
                                );
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= CAP as usize);
        assert!(refused.load(Ordering::SeqCst) > 0, "8 threads for 3 slots");
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn version_moves_when_lasting_facts_change() {
        let reg = StateRegistry::default();
        let a = reg.get_or_create("a");
        let before = reg.version();
        a.record_error("client went away".into());
        assert_eq!(reg.version(), before, "a passing error is not saved");
        a.record_cooldown(None, "429".into(), now_ms());
        assert_ne!(reg.version(), before);
    }

    /// The saver and the event watch wait on this instead of polling: each change of a
    /// lasting fact, and each account coming or going, reaches every waiter once.
    #[test]
    fn waiters_hear_of_each_change_and_of_nothing_else() {
        let reg = StateRegistry::default();
        let mut saver = reg.subscribe();
        let mut watch = reg.subscribe();
        let a = reg.get_or_create("a");
        assert!(saver.has_changed().unwrap(), "a new account is a change");
        saver.mark_unchanged();
        watch.mark_unchanged();
        a.record_error("client went away".into());
        assert!(!saver.has_changed().unwrap(), "a passing error is not");
        a.record_cooldown(None, "429".into(), now_ms());
        a.record_cooldown(None, "429".into(), now_ms());
        assert!(saver.has_changed().unwrap());
        assert!(watch.has_changed().unwrap(), "every waiter hears of it");
        saver.mark_unchanged();
        reg.retain(|id| id != "a");
        assert!(saver.has_changed().unwrap(), "an account gone is a change");
    }

    #[test]
    fn lasting_facts_survive_a_save_and_restore() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let reg = StateRegistry::default();
        let a = reg.get_or_create("a");
        let until = now_ms() + 3_600_000;
        a.record_cooldown(Some(until), "429".into(), now_ms());
        a.record_quota(vec![QuotaWindow {
            name: "5h".into(),
            used_percent: 75.0,
            resets_at: Some(until / 1000),
            rejected: false,
        }]);
        reg.get_or_create("b")
            .mark(Attention::NeedsLogin, "invalid_grant".into());
        std::fs::write(&path, reg.to_json()).unwrap();

        let back = StateRegistry::default();
        back.restore_from(&path);
        let a = back.get("a").unwrap();
        assert_eq!(a.cooling_until(now_ms()), Some(until));
        assert!((a.remaining_ratio() - 0.25).abs() < 1e-9);
        // Once the window's reset has passed it no longer counts.
        let old = back.get_or_create("old");
        old.record_quota(vec![QuotaWindow {
            name: "5h".into(),
            used_percent: 90.0,
            resets_at: Some(now_ms() / 1000 + 1),
            rejected: false,
        }]);
        assert!((old.remaining_ratio() - 0.1).abs() < 1e-9);
        old.detail().quota[0].resets_at = Some(1);
        old.refresh_remaining(now_ms() + 2_000);
        assert_eq!(old.remaining_ratio(), 1.0);
        assert_eq!(
            back.get("b").unwrap().attention(),
            Some(Attention::NeedsLogin)
        );
    }
}
