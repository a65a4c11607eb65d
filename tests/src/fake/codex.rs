//! The ChatGPT Codex backend (`https://chatgpt.com/backend-api`): `POST /codex/responses`
//! (Responses API, streaming only) for accounts logged in through the fake `auth.openai.com`,
//! and the usage poll `GET /wham/usage`. Limits are per account, scripted through
//! [`super::OpenAiOAuth`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::oauth::{AccessCheck, Gate, Issuer, answer_response, reached, secs_until, unix_secs};
use super::openai;
use super::state::Shared;
use super::wire::{Answer, Call, Failure, bearer, header_str};

/// One Codex usage window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodexWindow {
    /// Percent used, `0.0..=100.0`.
    pub used_percent: f64,
    /// Window length in minutes (300 for the 5-hour window, 10080 for the weekly one).
    pub window_minutes: u64,
    /// Unix seconds when the window resets.
    pub resets_at: u64,
}

/// What a ChatGPT account's Codex windows report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodexUsage {
    /// The 5-hour window (`x-codex-primary-*`, `rate_limit.primary_window`).
    pub primary: CodexWindow,
    /// The weekly window (`x-codex-secondary-*`, `rate_limit.secondary_window`).
    pub secondary: CodexWindow,
}

impl CodexUsage {
    /// Nothing used, windows of 300 and 10080 minutes resetting that far from now: what an
    /// account reports until a test sets its usage.
    pub fn fresh() -> Self {
        let now = unix_secs(SystemTime::now());
        Self {
            primary: CodexWindow {
                used_percent: 0.0,
                window_minutes: 300,
                resets_at: now + 300 * 60,
            },
            secondary: CodexWindow {
                used_percent: 0.0,
                window_minutes: 10_080,
                resets_at: now + 10_080 * 60,
            },
        }
    }
}

struct Limits {
    usage: CodexUsage,
    /// Usage limit reached until this Unix second.
    limited_until: Option<u64>,
}

/// The fake Codex backend's state.
pub(crate) struct Codex {
    limits: Mutex<HashMap<String, Limits>>,
    usage_polls: AtomicUsize,
}

impl Codex {
    pub(crate) fn new() -> Self {
        Self {
            limits: Mutex::new(HashMap::new()),
            usage_polls: AtomicUsize::new(0),
        }
    }

    fn with_limits<T>(&self, label: &str, f: impl FnOnce(&mut Limits) -> T) -> T {
        let mut all = self
            .limits
            .lock()
            .expect("fake Codex limits mutex poisoned");
        let limits = all.entry(label.to_owned()).or_insert_with(|| Limits {
            usage: CodexUsage::fresh(),
            limited_until: None,
        });
        f(limits)
    }

    pub(crate) fn set_usage(&self, label: &str, usage: CodexUsage) {
        self.with_limits(label, |l| l.usage = usage);
    }

    pub(crate) fn limit_until(&self, label: &str, resets_at: u64) {
        self.with_limits(label, |l| l.limited_until = Some(resets_at));
    }

    pub(crate) fn usage_polls(&self) -> usize {
        self.usage_polls.load(Ordering::Acquire)
    }

    /// The account's windows now and the end of its usage limit, if one is in force.
    fn snapshot(&self, label: &str) -> (CodexUsage, Option<u64>) {
        self.with_limits(label, |l| {
            l.limited_until = l.limited_until.filter(|&t| !reached(t));
            let mut usage = l.usage;
            if let Some(resets_at) = l.limited_until {
                usage.primary.used_percent = 100.0;
                usage.primary.resets_at = resets_at;
            }
            (usage, l.limited_until)
        })
    }

    /// The account behind `Authorization: Bearer` + `chatgpt-account-id`, or the answer the
    /// backend gives instead.
    fn authenticate(&self, issuer: &Issuer, headers: &HeaderMap) -> Result<String, Rejected> {
        let Some(token) = bearer(headers) else {
            return Err(Rejected::new(
                None,
                StatusCode::UNAUTHORIZED,
                "token_invalid",
                "Missing bearer authentication in header",
            ));
        };
        let label = match issuer.check_access(&token) {
            AccessCheck::Valid(label) => label,
            AccessCheck::Expired(label) => {
                return Err(Rejected::new(
                    Some(label),
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    "Provided authentication token is expired. Please try signing in again.",
                ));
            }
            AccessCheck::Unknown => {
                return Err(Rejected::new(
                    None,
                    StatusCode::UNAUTHORIZED,
                    "token_invalid",
                    "Could not parse your authentication token. Please try signing in again.",
                ));
            }
        };
        let account_id = issuer.account(&label).account_id;
        if header_str(headers, "chatgpt-account-id").as_deref() != Some(account_id.as_str()) {
            return Err(Rejected::new(
                Some(label),
                StatusCode::FORBIDDEN,
                "account_mismatch",
                "chatgpt-account-id is missing or does not match the access token's account",
            ));
        }
        Ok(label)
    }

    /// How `POST /backend-api/codex/responses` treats the request.
    pub(crate) fn gate(&self, issuer: &Issuer, headers: &HeaderMap) -> Gate {
        let label = match self.authenticate(issuer, headers) {
            Ok(label) => label,
            Err(Rejected { label, answer }) => {
                return Gate::Reject {
                    label,
                    answer: *answer,
                };
            }
        };
        let (usage, limited_until) = self.snapshot(&label);
        let headers = codex_headers(&usage);
        if let Some(resets_at) = limited_until {
            let plan = issuer.account(&label).plan;
            let answer = Answer::error(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "error": {
                    "type": "usage_limit_reached",
                    "message": "The usage limit has been reached",
                    "plan_type": plan,
                    "resets_at": resets_at,
                    "resets_in_seconds": secs_until(resets_at),
                } }),
            )
            .with_headers(headers);
            return Gate::Reject {
                label: Some(label),
                answer,
            };
        }
        Gate::Account { label, headers }
    }
}

/// Boxed: an answer is large, and this travels in a `Result`.
struct Rejected {
    label: Option<String>,
    answer: Box<Answer>,
}

impl Rejected {
    fn new(label: Option<String>, status: StatusCode, code: &str, message: &str) -> Self {
        let answer = Answer::error(
            status,
            json!({ "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": null,
                "code": code,
            } }),
        );
        Self {
            label,
            answer: Box::new(answer),
        }
    }
}

/// `x-codex-{primary,secondary}-{used-percent,window-minutes,reset-after-seconds,reset-at}`.
fn codex_headers(usage: &CodexUsage) -> Vec<(&'static str, String)> {
    let w = |w: &CodexWindow| {
        [
            w.used_percent.to_string(),
            w.window_minutes.to_string(),
            secs_until(w.resets_at).to_string(),
            w.resets_at.to_string(),
        ]
    };
    let [pu, pw, pa, pr] = w(&usage.primary);
    let [su, sw, sa, sr] = w(&usage.secondary);
    vec![
        ("x-codex-primary-used-percent", pu),
        ("x-codex-primary-window-minutes", pw),
        ("x-codex-primary-reset-after-seconds", pa),
        ("x-codex-primary-reset-at", pr),
        ("x-codex-secondary-used-percent", su),
        ("x-codex-secondary-window-minutes", sw),
        ("x-codex-secondary-reset-after-seconds", sa),
        ("x-codex-secondary-reset-at", sr),
    ]
}

/// The success answer of `POST /backend-api/codex/responses`: the backend only streams.
pub(crate) fn answer(call: &Call, events: usize) -> Answer {
    match call.json() {
        Ok(request) if request.get("stream").and_then(Value::as_bool) == Some(true) => {
            openai::answer(openai::Endpoint::Responses, call, events)
        }
        Ok(_) => Answer::error(
            StatusCode::BAD_REQUEST,
            json!({ "detail": "Stream must be set to true" }),
        ),
        Err(message) => openai::failure(Failure::BadRequest(message)),
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/backend-api/wham/usage", get(usage))
}

fn window_json(w: &CodexWindow) -> Value {
    json!({
        "used_percent": w.used_percent,
        "limit_window_seconds": w.window_minutes * 60,
        "reset_after_seconds": secs_until(w.resets_at),
        "reset_at": w.resets_at,
    })
}

/// `GET /backend-api/wham/usage` (same auth as the responses endpoint):
/// `{"plan_type","rate_limit":{"allowed","limit_reached","primary_window":{"used_percent",
/// "limit_window_seconds","reset_after_seconds","reset_at"},"secondary_window":{…}},
/// "credits":{"has_credits":false,"unlimited":false,"balance":"0"}}`.
async fn usage(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let codex = &shared.codex;
    codex.usage_polls.fetch_add(1, Ordering::AcqRel);
    let issuer = &shared.openai_auth.issuer;
    let label = match codex.authenticate(issuer, &headers) {
        Ok(label) => label,
        Err(rejected) => return answer_response(*rejected.answer),
    };
    let (usage, limited_until) = codex.snapshot(&label);
    let body = json!({
        "plan_type": issuer.account(&label).plan,
        "rate_limit": {
            "allowed": limited_until.is_none(),
            "limit_reached": limited_until.is_some(),
            "primary_window": window_json(&usage.primary),
            "secondary_window": window_json(&usage.secondary),
        },
        "credits": { "has_credits": false, "unlimited": false, "balance": "0" },
    });
    answer_response(Answer::ok(body))
}
