//! The fake's shared state: per-key scripts, the request recorder and the counters tests
//! synchronise on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use tokio::sync::watch;

use super::cache::{PromptCaches, ResponsesState};
use super::claude::Claude;
use super::codex::Codex;
use super::openai_oauth::OpenAiAuth;
use super::{Behaviour, Provider, RateLimits, Recorded};

/// Instants at which one streamed answer's content events were emitted; shared between the
/// recorder and the stream that fills it.
pub(crate) type EventTimes = Arc<Mutex<Vec<Instant>>>;

const POISONED: &str = "fake upstream state mutex poisoned";

/// What one key answers: queued behaviours first, then the default.
struct Script {
    queue: VecDeque<Behaviour>,
    default: Behaviour,
}

impl Script {
    fn new(default: Behaviour) -> Self {
        Self {
            queue: VecDeque::new(),
            default,
        }
    }
}

/// One recorded request with the emission times of its streamed answer.
struct Entry {
    request: Recorded,
    events: EventTimes,
}

#[derive(Default)]
struct Log {
    entries: Vec<Entry>,
    unmatched: Vec<String>,
}

/// Everything the request handlers and the test-facing API share.
pub(crate) struct Shared {
    /// The fake's own address: the only `Host` a request may name.
    pub(crate) addr: std::net::SocketAddr,
    record: bool,
    /// What keys without a script answer ([`super::FakeConfig::unscripted`]).
    unscripted: Behaviour,
    /// Stamp streamed pieces with their emission time ([`super::FakeConfig::stamp`]).
    stamp: bool,
    /// Refuse what the real APIs refuse ([`super::FakeConfig::strict`]).
    strict: bool,
    /// Set once any key is scripted, so the unscripted (benchmark) path skips the lock.
    scripted: AtomicBool,
    scripts: Mutex<HashMap<String, Script>>,
    /// The API keys each provider accepts ([`super::FakeUpstream::register_key`]); every other
    /// key gets the provider's invalid-key answer.
    keys: RwLock<HashMap<Provider, HashSet<String>>>,
    /// Requests that no real provider would have taken from a proxy: a Host that is not the
    /// fake's own, an `Origin`. Each fails the test that let it through (see
    /// [`super::FakeUpstream::take_violations`]).
    violations: Mutex<Vec<String>>,
    log: Mutex<Log>,
    /// Requests received since the last clear; a watch so tests can await a count.
    received: watch::Sender<usize>,
    /// Requests whose client went away before the answer was complete.
    disconnected: watch::Sender<usize>,
    in_flight: AtomicUsize,
    /// Per accepted API key: requests being handled now, and the most at once.
    key_flights: Mutex<HashMap<String, KeyFlight>>,
    /// What each key's answers report in their rate-limit headers.
    rate_limits: Mutex<HashMap<String, RateLimits>>,
    next_id: AtomicU64,
    /// Claude subscription services: OAuth server, usage poll, per-account limits.
    pub(crate) claude: Claude,
    /// `auth.openai.com`: OAuth server and device login.
    pub(crate) openai_auth: OpenAiAuth,
    /// `chatgpt.com/backend-api`: per-account Codex limits.
    pub(crate) codex: Codex,
    /// Every credential's prompt cache.
    pub(crate) caches: PromptCaches,
    /// Which credential produced which Responses id and encrypted reasoning item.
    pub(crate) responses: ResponsesState,
    /// Serving as another vendor's endpoint ([`super::FakeConfig::vendor`]).
    pub(crate) vendor: Option<super::Vendor>,
    /// Failures injected into unscripted answers, and the state of their draw.
    faults: std::sync::OnceLock<Vec<super::Fault>>,
    fault_seed: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        addr: std::net::SocketAddr,
        record: bool,
        unscripted: Behaviour,
        stamp: bool,
        strict: bool,
        cache_ttl: std::time::Duration,
        vendor: Option<super::Vendor>,
    ) -> Self {
        Self {
            addr,
            record,
            unscripted,
            stamp,
            strict,
            scripted: AtomicBool::new(false),
            scripts: Mutex::new(HashMap::new()),
            keys: RwLock::new(HashMap::new()),
            violations: Mutex::new(Vec::new()),
            log: Mutex::new(Log::default()),
            received: watch::Sender::new(0),
            disconnected: watch::Sender::new(0),
            in_flight: AtomicUsize::new(0),
            key_flights: Mutex::new(HashMap::new()),
            rate_limits: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            claude: Claude::new(),
            openai_auth: OpenAiAuth::new(),
            codex: Codex::new(),
            caches: PromptCaches::new(cache_ttl),
            responses: ResponsesState::default(),
            vendor,
            faults: std::sync::OnceLock::new(),
            fault_seed: AtomicU64::new(0x2545_F491_4F6C_DD1D),
        }
    }

    fn scripts(&self) -> MutexGuard<'_, HashMap<String, Script>> {
        self.scripts.lock().expect(POISONED)
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().expect(POISONED)
    }

    pub(crate) fn push(&self, key: &str, bs: impl IntoIterator<Item = Behaviour>) {
        self.scripted.store(true, Ordering::Release);
        let mut scripts = self.scripts();
        scripts
            .entry(key.to_owned())
            .or_insert_with(|| Script::new(self.unscripted.clone()))
            .queue
            .extend(bs);
    }

    pub(crate) fn set_default(&self, key: &str, b: Behaviour) {
        self.scripted.store(true, Ordering::Release);
        self.scripts()
            .entry(key.to_owned())
            .or_insert_with(|| Script::new(self.unscripted.clone()))
            .default = b;
    }

    pub(crate) fn clear_scripts(&self) {
        self.scripts().clear();
    }

    pub(crate) fn register_key(&self, provider: Provider, key: &str) {
        self.keys
            .write()
            .expect(POISONED)
            .entry(provider)
            .or_default()
            .insert(key.to_owned());
    }

    /// Whether `provider` accepts `key` as an API key.
    pub(crate) fn key_valid(&self, provider: Provider, key: &str) -> bool {
        self.keys
            .read()
            .expect(POISONED)
            .get(&provider)
            .is_some_and(|keys| keys.contains(key))
    }

    /// Whether `key` has a script: a test meant it to be valid somewhere.
    pub(crate) fn is_scripted(&self, key: &str) -> bool {
        self.scripted.load(Ordering::Acquire) && self.scripts().contains_key(key)
    }

    pub(crate) fn violation(&self, what: String) {
        eprintln!("fake upstream: REFUSED: {what}");
        self.violations.lock().expect(POISONED).push(what);
    }

    pub(crate) fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut *self.violations.lock().expect(POISONED))
    }

    /// Pops the next behaviour for `key`, or its default.
    pub(crate) fn next_behaviour(&self, key: &str) -> Behaviour {
        if !self.scripted.load(Ordering::Acquire) {
            return self.unscripted();
        }
        match self.scripts().get_mut(key) {
            Some(script) => script
                .queue
                .pop_front()
                .unwrap_or_else(|| script.default.clone()),
            None => self.unscripted(),
        }
    }

    /// The answer of a key with no script: the configured one, or an injected fault.
    fn unscripted(&self) -> Behaviour {
        if let Some(faults) = self.faults.get().filter(|f| !f.is_empty()) {
            // xorshift over a shared counter: cheap, and random enough to spread faults.
            let mut x = self
                .fault_seed
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            let mut roll = (x % 1000) as u32;
            for fault in faults {
                if roll < fault.per_mille {
                    return fault.behaviour.clone();
                }
                roll -= fault.per_mille;
            }
        }
        self.unscripted.clone()
    }

    /// Failures to inject into unscripted answers ([`super::FakeConfig::faults`]).
    pub(crate) fn set_faults(&self, faults: Vec<super::Fault>) {
        let _ = self.faults.set(faults);
    }

    /// Whether streamed pieces carry their emission time.
    pub(crate) fn stamp(&self) -> bool {
        self.stamp
    }

    /// Whether request bodies are checked as the real APIs check them.
    pub(crate) fn strict(&self) -> bool {
        self.strict
    }

    /// A fresh number for response ids (`msg_…`, `chatcmpl-…`, `request-id`).
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a request (if recording) and counts it. Returns where the answer's stream
    /// event times go, if recording.
    ///
    /// `make` builds the record lazily so the no-record path allocates nothing.
    pub(crate) fn record(&self, make: impl FnOnce() -> Recorded) -> Option<EventTimes> {
        let events = if self.record {
            let events = EventTimes::default();
            self.log().entries.push(Entry {
                request: make(),
                events: Arc::clone(&events),
            });
            Some(events)
        } else {
            None
        };
        // After the push, so a test woken by the count sees the request in `requests()`.
        self.received.send_modify(|n| *n += 1);
        events
    }

    pub(crate) fn record_unmatched(&self, line: String) {
        if self.record {
            self.log().unmatched.push(line);
        }
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.log()
            .entries
            .iter()
            .map(|e| e.request.clone())
            .collect()
    }

    pub(crate) fn unmatched(&self) -> Vec<String> {
        self.log().unmatched.clone()
    }

    pub(crate) fn stream_event_times(&self) -> Vec<Vec<Instant>> {
        self.log()
            .entries
            .iter()
            .map(|e| e.events.lock().expect(POISONED).clone())
            .collect()
    }

    pub(crate) fn clear(&self) {
        let mut log = self.log();
        log.entries.clear();
        log.unmatched.clear();
        self.key_flights.lock().expect(POISONED).retain(|_, f| {
            f.peak = f.now;
            f.now > 0
        });
        self.received.send_replace(0);
        self.disconnected.send_replace(0);
    }

    pub(crate) async fn wait_for_requests(&self, n: usize) {
        wait_for(&self.received, n).await;
    }

    pub(crate) fn disconnected(&self) -> usize {
        *self.disconnected.borrow()
    }

    pub(crate) async fn wait_for_disconnects(&self, n: usize) {
        wait_for(&self.disconnected, n).await;
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn peak_in_flight(&self, key: &str) -> usize {
        self.key_flights
            .lock()
            .expect(POISONED)
            .get(key)
            .map_or(0, |f| f.peak)
    }

    pub(crate) fn set_rate_limits(&self, key: &str, limits: RateLimits) {
        let mut all = self.rate_limits.lock().expect(POISONED);
        if limits == RateLimits::default() {
            all.remove(key);
        } else {
            all.insert(key.to_owned(), limits);
        }
    }

    pub(crate) fn rate_limits(&self, key: &str) -> Option<RateLimits> {
        self.rate_limits.lock().expect(POISONED).get(key).cloned()
    }
}

/// One key's requests in flight.
#[derive(Default)]
struct KeyFlight {
    now: usize,
    peak: usize,
}

async fn wait_for(counter: &watch::Sender<usize>, n: usize) {
    let mut rx = counter.subscribe();
    // The sender lives as long as `Shared`, which the caller borrows: this can't fail.
    let _ = rx.wait_for(|count| *count >= n).await;
}

/// Marks one request as in flight for as long as it lives.
///
/// Handlers hold it while answering; streamed answers move it into the body stream. If it is
/// dropped before [`Inflight::finish`] — hyper dropped the handler or body because the client
/// went away — the request counts as disconnected.
pub(crate) struct Inflight {
    shared: Arc<Shared>,
    finished: bool,
    /// The accepted API key it counts against, once known.
    key: Option<String>,
}

impl Inflight {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Self {
            shared,
            finished: false,
            key: None,
        }
    }

    /// Count the request against API key `key` too, until it is dropped.
    pub(crate) fn count_key(&mut self, key: &str) {
        if self.key.is_some() {
            return;
        }
        let mut flights = self.shared.key_flights.lock().expect(POISONED);
        let f = flights.entry(key.to_owned()).or_default();
        f.now += 1;
        f.peak = f.peak.max(f.now);
        self.key = Some(key.to_owned());
    }

    /// The answer is complete (or deliberately aborted): dropping is no longer a disconnect.
    pub(crate) fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        if let Some(key) = &self.key
            && let Some(f) = self.shared.key_flights.lock().expect(POISONED).get_mut(key)
        {
            f.now = f.now.saturating_sub(1);
        }
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        if !self.finished {
            self.shared.disconnected.send_modify(|n| *n += 1);
        }
    }
}
