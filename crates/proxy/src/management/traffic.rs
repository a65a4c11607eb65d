//! The live log, the event stream and the usage history, as the management API serves them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::error::{Error, Result};
use super::state::Management;
use crate::record::RequestRecord;
use crate::record::history::{History, Usage};
use crate::record::traffic::{Event, RECENT};
use keyway_core::Config;
use keyway_core::client_key;

/// Default number of entries `GET /api/requests` returns.
const DEFAULT_LIMIT: usize = 200;
/// Default and largest window of the usage endpoints, in days.
const DEFAULT_DAYS: u32 = 30;
/// How often an idle event stream sends a comment, so proxies and browsers keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
pub struct RecentQuery {
    limit: Option<usize>,
}

pub async fn recent_requests(
    State(management): State<Arc<Management>>,
    Query(q): Query<RecentQuery>,
) -> Json<Vec<Arc<RequestRecord>>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).min(RECENT);
    Json(management.engine().traffic().recent_records(limit))
}

/// `request` events as requests finish, `state` events when accounts or config change,
/// `budget` events when a client key's spend crosses a budget.
pub async fn events(
    State(management): State<Arc<Management>>,
) -> Sse<impl Stream<Item = std::result::Result<SseEvent, Infallible>>> {
    let receiver = management.engine().traffic().subscribe();
    let stopping = Box::pin(management.server().stopping());
    let stream = futures_util::stream::unfold(
        (receiver, stopping),
        |(mut receiver, mut stopping)| async move {
            let next = tokio::select! {
                next = receiver.recv() => next,
                // Shutting down: end the stream so it does not hold the drain.
                () = &mut stopping => return None,
            };
            let event = match next {
                Ok(Event::Request(record)) => SseEvent::default()
                    .event("request")
                    .json_data(&*record)
                    .unwrap_or_else(|_| state_event()),
                Ok(Event::State) => state_event(),
                Ok(Event::Budget(alert)) => SseEvent::default()
                    .event("budget")
                    .json_data(&alert)
                    .unwrap_or_else(|_| state_event()),
                // Missed some: the follower refetches everything on `state`.
                Err(RecvError::Lagged(_)) => state_event(),
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(event), (receiver, stopping)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}

fn state_event() -> SseEvent {
    SseEvent::default().event("state").data("{}")
}

#[derive(Deserialize)]
pub struct DaysQuery {
    days: Option<u32>,
}

impl DaysQuery {
    fn days(&self, management: &Management) -> u32 {
        let most = management.engine().snapshot().config.usage_retention_days;
        self.days.unwrap_or(DEFAULT_DAYS).clamp(1, most)
    }
}

fn history(management: &Management) -> Result<&History> {
    management.engine().traffic().history().ok_or_else(|| {
        Error::Unavailable(
            "the usage history could not be opened at start; see the log for why".into(),
        )
    })
}

pub async fn usage(
    State(management): State<Arc<Management>>,
    Query(q): Query<DaysQuery>,
) -> Result<Json<Usage>> {
    let days = q.days(&management);
    let mut usage = history(&management)?.usage(days).await?;
    label_usage(&mut usage, &management.engine().snapshot().config);
    Ok(Json(usage))
}

/// Put the account's or client key's label beside each id of `usage`'s totals (from
/// `config`, so the CLI labels a history it reads itself the same way).
pub fn label_usage(usage: &mut Usage, config: &Config) {
    for t in &mut usage.by_account {
        t.label = match config.account(&t.key) {
            Some(a) => Some(a.label.clone()),
            None if t.key.is_empty() => Some("no account could be tried".to_owned()),
            None => Some(format!("{} (removed)", t.key)),
        };
    }
    for t in &mut usage.by_key {
        t.label = match config.client_key(&t.key) {
            Some(k) => Some(k.label.clone()),
            None if t.key == client_key::DEFAULT_ID => Some(client_key::DEFAULT_LABEL.to_owned()),
            None if t.key.is_empty() => Some("not recorded (older requests)".to_owned()),
            None => Some(format!("{} (revoked)", t.key)),
        };
    }
}

pub async fn usage_csv(
    State(management): State<Arc<Management>>,
    Query(q): Query<DaysQuery>,
) -> Result<Response> {
    let days = q.days(&management);
    let csv = history(&management)?.csv(days).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"keyway-usage-{days}d.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}
