//! What happened to each request, for the live log, the traffic figures and the usage
//! history; and the engine's event stream, which the dashboard (and the tray) follow instead
//! of polling.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use super::RequestRecord;
use super::history::History;

/// How many finished requests the live log keeps in memory.
pub const RECENT: usize = 500;
/// The traffic figures count per second over this many seconds.
const WINDOW_SECS: usize = 60;
/// Events a slow subscriber may fall behind by before it misses some (it then refetches).
const EVENT_BUFFER: usize = 256;

/// Something the engine's followers may want to react to.
#[derive(Debug, Clone)]
pub enum Event {
    Request(Arc<RequestRecord>),
    /// Accounts, policies or the config changed; fetch the status again.
    State,
    /// A client key's spend crossed one of its budgets (once per day or month).
    Budget(BudgetAlert),
}

/// A client key over one of its budgets.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BudgetAlert {
    #[cfg_attr(test, ts(as = "String"))]
    pub key: Arc<str>,
    #[cfg_attr(test, ts(as = "String"))]
    pub label: Arc<str>,
    pub period: BudgetPeriod,
    pub budget_usd: f64,
    pub spent_usd: f64,
    /// The budget only warns: the key's requests are still served.
    pub warn_only: bool,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Daily,
    Monthly,
}

impl BudgetAlert {
    /// `Claude Code spent $5.02 of its $5.00 daily budget; its requests are refused until
    /// local midnight.`
    pub fn message(&self) -> String {
        let (period, until) = match self.period {
            BudgetPeriod::Daily => ("daily", "local midnight"),
            BudgetPeriod::Monthly => ("monthly", "the 1st of next month"),
        };
        let then = if self.warn_only {
            "its requests are still served (the budget only warns)".to_owned()
        } else {
            format!("its requests are refused until {until}")
        };
        format!(
            "{} spent ${:.2} of its ${:.2} {period} budget; {then}.",
            self.label, self.spent_usd, self.budget_usd
        )
    }
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LastMinute {
    pub requests_last_minute: usize,
    pub errors_last_minute: usize,
}

/// Requests and failures that finished in one second.
#[derive(Debug, Clone, Copy, Default)]
struct Second {
    at: u64,
    requests: usize,
    errors: usize,
}

struct Recent {
    log: VecDeque<Arc<RequestRecord>>,
    /// Indexed by second modulo the window; a slot whose `at` is old counts as empty.
    seconds: [Second; WINDOW_SECS],
}

pub struct Traffic {
    recent: Mutex<Recent>,
    events: broadcast::Sender<Event>,
    history: Option<History>,
}

impl Traffic {
    pub fn new(history: Option<History>) -> Traffic {
        Traffic {
            recent: Mutex::new(Recent {
                log: VecDeque::with_capacity(RECENT),
                seconds: [Second::default(); WINDOW_SECS],
            }),
            events: broadcast::channel(EVENT_BUFFER).0,
            history,
        }
    }

    /// Record a finished request: live log, event, history.
    pub fn finish(&self, record: RequestRecord) {
        let record = Arc::new(record);
        if let Some(history) = &self.history {
            history.append(record.clone());
        }
        {
            let now = keyway_core::state::now_ms() / 1000;
            let mut recent = self.recent();
            let second = &mut recent.seconds[now as usize % WINDOW_SECS];
            if second.at != now {
                *second = Second {
                    at: now,
                    ..Second::default()
                };
            }
            second.requests += 1;
            second.errors += usize::from(record.failed());
            if recent.log.len() == RECENT {
                recent.log.pop_front();
            }
            recent.log.push_back(record.clone());
        }
        // No subscriber is not an error: nobody is watching.
        let _ = self.events.send(Event::Request(record));
    }

    pub fn state_changed(&self) {
        let _ = self.events.send(Event::State);
    }

    pub fn budget_crossed(&self, alert: BudgetAlert) {
        let _ = self.events.send(Event::Budget(alert));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The newest `limit` requests, oldest first.
    pub fn recent_records(&self, limit: usize) -> Vec<Arc<RequestRecord>> {
        let recent = self.recent();
        recent
            .log
            .iter()
            .skip(recent.log.len().saturating_sub(limit))
            .cloned()
            .collect()
    }

    /// Requests that finished in the last minute, and how many of them failed.
    pub fn last_minute(&self, now_ms: u64) -> LastMinute {
        let now = now_ms / 1000;
        let recent = self.recent();
        let mut out = LastMinute::default();
        for s in recent
            .seconds
            .iter()
            .filter(|s| now.saturating_sub(s.at) < WINDOW_SECS as u64)
        {
            out.requests_last_minute += s.requests;
            out.errors_last_minute += s.errors;
        }
        out
    }

    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }
}
