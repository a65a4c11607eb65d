//! The attempt loop: pick an account, send, and on a retryable failure before any byte has
//! reached the client, record it and try the next account. A success is streamed back as it
//! arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyDataStream, Full};
use hyper::body::Incoming;
use keyway_core::provider::Format;
use keyway_core::session::{Choice, MoveReason, Placement, SessionKey, Spread};
use keyway_core::snapshot::Route;
use keyway_core::state::{Attention, InFlight, now_ms};
use keyway_core::target::FailureKind;
use keyway_core::{AccountKind, Member, Pool, ProviderKind, Snapshot, Surface};
use tracing::{Span, debug, info, warn};

use keyway_translate::ResponseContext;

use super::relay::{self, Open, Relay};
use super::sessions;
use super::surface::SurfaceError;
use super::{adapter, cooldown, own_headers, quota, translation};
use crate::engine::Engine;
use crate::oauth::token::TokenError;
use crate::record::RequestRecord;
use crate::record::tokens::TokenCounter;
use crate::upstream::{UpstreamResponse, next_chunk};

/// The most of an upstream error body we read to learn its reset time.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// How long we wait for an upstream error body before giving up on reading it.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the client asked for, ready to be sent to any account.
pub struct Outgoing<'a> {
    pub surface: Surface,
    pub method: Method,
    pub path: &'a str,
    pub query: Option<String>,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    /// The conversation the request belongs to, if it says.
    pub session: Option<SessionKey>,
    /// The Responses `previous_response_id` the request continues, if any.
    pub previous_response_id: Option<&'a str>,
    /// Tell a context-window error apart from other client errors (a fallback step would
    /// take it): its body is then read before the answer is passed on.
    pub detect_context_window: bool,
    /// Set when the request was translated for this pool's format: what the answer needs to
    /// be rendered in the client's shape.
    pub translation: Option<&'a ResponseContext>,
}

/// Why no account of a pool answered, and what the client would get.
pub struct GiveUp {
    pub response: Response,
    /// The kind of failure a fallback step could take over; `None` when nothing else should
    /// be tried (a client error, a conversation bound to its account).
    pub kind: Option<FailureKind>,
}

impl GiveUp {
    fn last(response: Response) -> GiveUp {
        GiveUp {
            response,
            kind: None,
        }
    }
}

/// Which accounts a request went through, for its record.
#[derive(Debug, Default)]
pub struct Trail {
    pub attempts: u32,
    /// The account tried last (the one that answered, on success).
    pub account: Option<Arc<str>>,
    /// How the session's request was placed, when its policy keeps sessions together.
    pub placement: Option<Placement>,
}

/// A response from an upstream that is being passed to the client.
pub struct Answer {
    pub response: UpstreamResponse,
    pub account: Arc<str>,
    pub in_flight: InFlight,
    /// The answer is in the pool's format and goes to the client translated.
    pub translation: Option<ResponseContext>,
}

/// The failure that ended the last attempt, kept so the client gets the most useful answer.
enum Failure {
    /// An HTTP answer from the upstream that we did not pass on (yet).
    Upstream {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// The credential was refused: this says nothing about the client's own key.
    Refused { status: StatusCode },
    /// Timeout, connection refused, reset...
    Transport(String),
}

/// What one attempt on one account came to.
enum Outcome {
    /// Pass this upstream answer to the client.
    Answer(Answer),
    /// Answer the client with this, and stop (a client error, not the account's).
    Final(Response),
    /// The prompt is too long for the model: no account of this pool can serve it.
    ContextWindow(Response),
    /// The account failed; try the next.
    Failed(Failure),
}

/// Send `out` through `route`'s pool, failing over between accounts as needed.
pub async fn send(
    engine: &Engine,
    snapshot: &Snapshot,
    route: &Route<'_>,
    out: &Outgoing<'_>,
    trail: &mut Trail,
) -> Result<Answer, GiveUp> {
    let limits = &snapshot.config.limits;
    let max_attempts = limits.max_attempts as usize;
    let first_byte_timeout = Duration::from_secs(limits.first_byte_timeout_secs);
    let pool = route.pool;
    // Members that cannot serve this surface at all (a ChatGPT login serves only the
    // Responses API) are passed over as if already tried.
    let mut tried: Vec<usize> = (0..pool.members.len())
        .filter(|&i| !serves(route, &pool.members[i], out))
        .collect();
    if !tried.is_empty() {
        debug!(
            skipped = tried.len(),
            "skipping subscription logins that cannot serve this request"
        );
    }
    let skipped = tried.len();
    let mut last: Option<Failure> = None;
    // A Responses chain continues only where its previous response lives.
    let chain = match out
        .previous_response_id
        .and_then(|id| engine.owners().owner(id))
    {
        Some(owner) => match chain_member(pool, &owner, &tried) {
            Ok(member) => Some(member),
            Err(stop) => return Err(GiveUp::last(chain_stopped(route, stop, out.surface))),
        },
        None => None,
    };
    let session = out
        .session
        .as_ref()
        .filter(|_| pool.sessions.spread == Spread::Session);
    let moved_before = session.is_some_and(|key| engine.sessions().has_moved(pool, key));
    let user_agent = out
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());

    while tried.len() - skipped < max_attempts {
        let now = now_ms();
        let first = tried.len() == skipped;
        let choice = match (first, chain, session) {
            (true, Some(member), _) => Some(Choice {
                member,
                placement: Placement::Stuck,
            }),
            // A chain that failed on its account cannot go on elsewhere.
            (false, Some(_), _) => break,
            (true, None, Some(key)) => {
                engine
                    .sessions()
                    .choose(pool, key, now, &tried, route.provider.cache_ttl_ms)
            }
            _ => pool.pick(now, &tried).map(|member| Choice {
                member,
                placement: Placement::Moved {
                    reason: MoveReason::Failover,
                },
            }),
        };
        let Some(Choice {
            member: index,
            placement,
        }) = choice
        else {
            break;
        };
        tried.push(index);
        let attempt = (tried.len() - skipped) as u32;
        let member = &pool.members[index];
        // The account's slot (within `max_concurrent`, counted against `rpm`) is taken as it
        // is picked, so concurrent requests see it busy at once.
        let in_flight = match member.state.try_begin(now_ms()) {
            Ok(in_flight) => in_flight,
            Err(hold) => {
                // Another request took its last slot since it was picked.
                debug!(account = %member.id, "skipped: {}", hold.describe());
                continue;
            }
        };
        trail.attempts = attempt;
        trail.account = Some(member.id.clone());
        if session.is_some() {
            // A new session placed by the strategy stays "placed" when its first account
            // failed; a bound one that had to leave has moved.
            trail.placement = match (trail.placement, placement) {
                (Some(Placement::Placed), _) => Some(Placement::Placed),
                (_, p) => Some(p),
            };
        }
        // Reasoning another account produced cannot be read here: leave it out.
        let moved = moved_before || matches!(trail.placement, Some(Placement::Moved { .. }));
        // (A translated body holds no Responses reasoning items: it is in another format.)
        let stripped = (moved
            && out.translation.is_none()
            && sessions::has_encrypted_reasoning(out.surface, &out.body))
        .then(|| sessions::without_foreign_reasoning(&out.body, &member.id, engine.owners()))
        .flatten();
        let body = stripped.as_ref().unwrap_or(&out.body);
        match try_account(
            engine,
            route,
            out,
            body,
            member,
            in_flight,
            first_byte_timeout,
            attempt,
        )
        .await
        {
            Outcome::Answer(answer) => {
                if let (Some(key), Some(placement)) = (session, trail.placement) {
                    engine
                        .sessions()
                        .bind(pool, key, &member.id, user_agent, placement, now_ms());
                }
                return Ok(answer);
            }
            Outcome::Final(response) => return Err(GiveUp::last(response)),
            Outcome::ContextWindow(response) => {
                return Err(GiveUp {
                    response,
                    kind: Some(FailureKind::ContextWindow),
                });
            }
            Outcome::Failed(failure) => last = Some(failure),
        }
    }
    if let Some(member) = chain {
        return Err(GiveUp::last(chain_stopped(
            route,
            ChainStop::CannotServe(member),
            out.surface,
        )));
    }
    let kind = failure_kind(last.as_ref(), route.pool);
    Err(GiveUp {
        response: give_up(route, out, last, tried.len() - skipped, skipped),
        kind: Some(kind),
    })
}

/// What kind of failure ended a pool's attempts: rate limits (429, Anthropic's 529
/// overloaded, or every account cooling down) or the upstream failing in any other way.
fn failure_kind(last: Option<&Failure>, pool: &Pool) -> FailureKind {
    match last {
        Some(Failure::Upstream { status, .. }) if matches!(status.as_u16(), 429 | 529) => {
            FailureKind::RateLimit
        }
        None if pool.soonest_ready(now_ms()).is_some() => FailureKind::RateLimit,
        _ => FailureKind::ServerError,
    }
}

/// Why a Responses chain cannot go on.
enum ChainStop {
    /// The member holding the previous response cannot serve now.
    CannotServe(usize),
    /// The account holding it is no longer in the pool.
    Gone(Arc<str>),
}

/// The member holding a Responses chain's previous response, when it can serve now.
fn chain_member(pool: &Pool, owner: &Arc<str>, tried: &[usize]) -> Result<usize, ChainStop> {
    match pool.members.iter().position(|m| m.id == *owner) {
        Some(i) if !tried.contains(&i) && pool.members[i].state.is_eligible(now_ms()) => Ok(i),
        Some(i) => Err(ChainStop::CannotServe(i)),
        None => Err(ChainStop::Gone(owner.clone())),
    }
}

/// A `previous_response_id` chain that cannot go on: no other account has that response, so
/// the client is told, with when to retry if its account is only cooling down.
fn chain_stopped(route: &Route<'_>, stop: ChainStop, surface: Surface) -> Response {
    let member = match stop {
        ChainStop::CannotServe(i) => &route.pool.members[i],
        ChainStop::Gone(owner) => {
            return error(
                surface,
                StatusCode::CONFLICT,
                format!(
                    "previous_response_id names a response of account {owner}, which no longer serves {}; the conversation cannot continue on another account (its previous response exists only there): start a new one",
                    route.provider.id
                ),
                None,
            );
        }
    };
    let now = now_ms();
    let retry_after = member
        .state
        .cooling_until(now)
        .map(|t| (t - now).div_ceil(1000));
    let (status, when) = match retry_after {
        Some(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("it is cooling down for {secs}s"),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "it cannot serve now".to_owned(),
        ),
    };
    error(
        surface,
        status,
        format!(
            "previous_response_id continues a response of account {}, and {when}; the conversation cannot continue on another {} account (its previous response exists only there): retry later, or start a new one",
            member.id, route.provider.id
        ),
        retry_after,
    )
}

/// Whether `member` can serve `out` at all. A subscription login serves only its own
/// client's requests as they are: a ChatGPT login only the Responses API, and no login a
/// request translated from another API (the providers' terms reserve logins for their own
/// clients; Keyway never turns one client's request into another's).
fn serves(route: &Route<'_>, member: &Member, out: &Outgoing<'_>) -> bool {
    if member.kind != AccountKind::OAuth {
        return true;
    }
    out.translation.is_none()
        && !(route.provider.kind == ProviderKind::OpenAi && out.surface != Surface::OpenAiResponses)
}

/// An upstream answer Keyway read and sends itself (an error it looked into): as it came, or
/// in the client's shape when the request was translated.
fn resent(out: &Outgoing<'_>, status: StatusCode, mut headers: HeaderMap, body: Bytes) -> Response {
    match out.translation {
        Some(context) => translation::whole(status, &body, context),
        None => {
            adapter::to_client_resent(&mut headers);
            (status, headers, body).into_response()
        }
    }
}

/// One account: get a usable credential (refreshing a login that is about to expire), send,
/// and classify the answer. A login refused with 401 is refreshed and tried once more.
/// `in_flight` is the account's slot, kept by the answer until its body ends.
#[allow(clippy::too_many_arguments)]
async fn try_account(
    engine: &Engine,
    route: &Route<'_>,
    out: &Outgoing<'_>,
    body: &Bytes,
    member: &Member,
    in_flight: InFlight,
    first_byte_timeout: Duration,
    attempt: u32,
) -> Outcome {
    let account = &member.id;
    let mut credential = match engine
        .usable_credential(route.provider, &member.id, &member.state, None)
        .await
    {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(token_failure(account, e)),
    };
    let mut refreshed = false;
    loop {
        let upstream = match adapter::upstream(
            route.provider,
            out.path,
            out.query.as_deref(),
            out.headers,
            &credential,
        ) {
            Ok(u) => u,
            Err(reason) => {
                member.state.mark(Attention::NeedsAttention, reason.clone());
                return Outcome::Failed(Failure::Transport(reason));
            }
        };
        let started = Instant::now();
        let mut request = http::Request::new(Full::new(body.clone()));
        *request.method_mut() = out.method.clone();
        *request.uri_mut() = upstream.uri;
        *request.headers_mut() = upstream.headers;
        let request = engine.upstream().send(request);
        let failed = match tokio::time::timeout(first_byte_timeout, request).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(format!("upstream unreachable: {e}")),
            Err(_) => Err(format!(
                "no response headers within {}s",
                first_byte_timeout.as_secs()
            )),
        };
        let response = match failed {
            Ok(response) => response,
            Err(reason) => {
                let until = member.state.record_cooldown(None, reason.clone(), now_ms());
                warn!(account = %account, attempt, error = %reason, cooling_for_s = until.saturating_sub(now_ms()) / 1000, "account failed; trying the next one");
                return Outcome::Failed(Failure::Transport(reason));
            }
        };
        let status = response.status();
        // Subscriptions' usage windows, API keys' rate-limit headers.
        member
            .state
            .record_quota(quota::from_headers(response.headers(), now_ms()));
        // Gemini answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
        if route.provider.format == Format::Gemini && status == StatusCode::BAD_REQUEST {
            let (head, body) = response.into_parts();
            let body = read_limited(body).await;
            if !contains_bytes(&body, b"API_KEY_INVALID") {
                return Outcome::Final(resent(out, status, head.headers, body));
            }
            return refused(member, attempt, status, " API_KEY_INVALID");
        }
        if out.detect_context_window
            && matches!(
                status,
                StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
            )
        {
            let (head, body) = response.into_parts();
            let body = read_limited(body).await;
            let window = is_context_window(&body);
            let answer = resent(out, status, head.headers, body);
            if window {
                debug!(account = %account, "the prompt is longer than the model's context window");
                return Outcome::ContextWindow(answer);
            }
            return Outcome::Final(answer);
        }
        if !is_account_failure(status) {
            if status.is_success() {
                member.state.record_success();
                member.state.record_latency(started.elapsed(), now_ms());
            }
            let span = Span::current();
            span.record("account", &**account);
            span.record("attempts", attempt);
            span.record("status", status.as_u16());
            span.record("upstream_ms", started.elapsed().as_millis() as u64);
            return Outcome::Answer(Answer {
                response,
                account: account.clone(),
                in_flight,
                translation: out.translation.cloned(),
            });
        }
        let (head, body) = response.into_parts();
        let headers = head.headers;
        let body = read_limited(body).await;
        let kind = error_kind(&body);
        if status == StatusCode::UNAUTHORIZED && member.kind == AccountKind::OAuth && !refreshed {
            // An access token can die before its stated expiry: renew it and try again.
            refreshed = true;
            match engine
                .usable_credential(route.provider, &member.id, &member.state, Some(&credential))
                .await
            {
                Ok(c) => {
                    credential = c;
                    continue;
                }
                Err(e) => return Outcome::Failed(token_failure(account, e)),
            }
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return refused(member, attempt, status, &kind);
        }
        let now = now_ms();
        let until = cooldown::reset_at(&headers, &body, now);
        let until =
            member
                .state
                .record_cooldown(until, format!("upstream answered {status}{kind}"), now);
        warn!(account = %account, status = status.as_u16(), attempt, cooling_for_s = until.saturating_sub(now) / 1000, "account failed; trying the next one");
        return Outcome::Failed(Failure::Upstream {
            status,
            headers,
            body,
        });
    }
}

/// The credential itself was refused: out of rotation until the user acts.
fn refused(member: &Member, attempt: u32, status: StatusCode, kind: &str) -> Outcome {
    let (attention, what) = match member.kind {
        AccountKind::OAuth => (Attention::NeedsLogin, "log in again"),
        AccountKind::ApiKey => (
            Attention::NeedsAttention,
            "replace the key or re-enable the account",
        ),
    };
    warn!(account = %member.id, status = status.as_u16(), attempt, "credential refused; account taken out of rotation");
    member.state.mark(
        attention,
        format!("the upstream refused this account's credential ({status}{kind}); {what}"),
    );
    Outcome::Failed(Failure::Refused { status })
}

/// A login that could not be renewed. The account state already says why.
fn token_failure(account: &str, e: TokenError) -> Failure {
    warn!(account = %account, error = %e, "cannot renew the login; trying the next account");
    match e {
        TokenError::Revoked(_) => Failure::Refused {
            status: StatusCode::UNAUTHORIZED,
        },
        TokenError::Transient(reason) => Failure::Transport(reason),
    }
}

/// Nothing more to try: answer with what we know.
fn give_up(
    route: &Route<'_>,
    out: &Outgoing<'_>,
    last: Option<Failure>,
    attempts: usize,
    skipped_for_surface: usize,
) -> Response {
    let surface = out.surface;
    let pool = route.pool;
    let now = now_ms();
    let what = match route.family {
        Some(f) => format!("{}/{}", route.provider.id, f),
        None => route.provider.id.clone(),
    };
    let retry_after = pool.soonest_ready(now).map(|t| (t - now).div_ceil(1000));
    let span = Span::current();
    span.record("attempts", attempts as u32);
    match last {
        Some(Failure::Upstream {
            status,
            headers,
            body,
        }) => {
            span.record("status", status.as_u16());
            let mut response = resent(out, status, headers, body);
            // The last account's own wait may be longer than another's: tell the soonest.
            if status == StatusCode::TOO_MANY_REQUESTS
                && let Some(secs) = retry_after
            {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        // Some accounts only wait for a reset: that, not the refusals, is the answer.
        Some(Failure::Refused { .. }) if retry_after.is_some() => error(
            surface,
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "every {what} account is cooling down or refused; the first is ready again in {}s",
                retry_after.unwrap_or_default()
            ),
            retry_after,
        ),
        Some(Failure::Refused { status }) => error(
            surface,
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the upstream refused the credential of every {what} account tried ({status}); see `keyway account list`"
            ),
            None,
        ),
        Some(Failure::Transport(reason)) => error(
            surface,
            StatusCode::BAD_GATEWAY,
            format!("{attempts} {what} account(s) tried, none answered: {reason}"),
            None,
        ),
        None if skipped_for_surface > 0
            && skipped_for_surface == pool.members.len()
            && out.translation.is_some() =>
        {
            error(
                surface,
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the {what} accounts are subscription logins, which serve only their own client's requests, and this one is translated from another API; add an API key with `keyway account add {} --label <name>`",
                    route.provider.id
                ),
                None,
            )
        }
        None if skipped_for_surface > 0 && skipped_for_surface == pool.members.len() => error(
            surface,
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the {what} accounts are ChatGPT logins, which serve only the Responses API; add an API key with `keyway account add {} --label <name>`",
                route.provider.id
            ),
            None,
        ),
        None if pool.members.is_empty() => error(
            surface,
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no enabled {} account serves {what}; add one with `keyway account add {} --label <name>`",
                route.provider.id, route.provider.id
            ),
            None,
        ),
        // Accounts at their limits are answered like cooling ones: 429 with the soonest time
        // one is free (a second for `max_concurrent`, the window's end for the others).
        None => match retry_after {
            Some(secs) => {
                let why = match pool.held(now) {
                    Some((member, hold)) => format!(
                        "busy or at one of its limits (account {}: {})",
                        member.id,
                        hold.describe()
                    ),
                    None => "cooling down".to_owned(),
                };
                error(
                    surface,
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("every {what} account is {why}; the first is ready again in {secs}s"),
                    Some(secs),
                )
            }
            None => error(
                surface,
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no {what} account can serve now (each needs attention or has no secret); see `keyway account list`"
                ),
                None,
            ),
        },
    }
}

fn error(
    surface: Surface,
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
) -> Response {
    Span::current().record("status", status.as_u16());
    info!("{message}");
    SurfaceError {
        surface,
        status,
        message,
        retry_after,
    }
    .into_response()
}

/// Statuses that say "this account, now" rather than "this request": worth another account.
fn is_account_failure(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403 | 408 | 429) || status.is_server_error()
}

/// The error's type or status from an upstream error body, never its free text (which may
/// quote part of a key).
fn error_kind(body: &[u8]) -> String {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return String::new(),
    };
    let e = v.get("error");
    let kind = e
        .and_then(|e| {
            e.get("type")
                .or_else(|| e.get("status"))
                .or_else(|| e.get("code"))
        })
        .and_then(|t| t.as_str());
    match kind {
        Some(k)
            if k.len() <= 64
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') =>
        {
            format!(" {k}")
        }
        _ => String::new(),
    }
}

/// What the providers say when a prompt is longer than the model's context window: Anthropic
/// "prompt is too long", OpenAI `context_length_exceeded`, Gemini "exceeds the maximum
/// number of tokens".
const CONTEXT_WINDOW_MARKERS: [&[u8]; 3] = [
    b"prompt is too long",
    b"context_length_exceeded",
    b"exceeds the maximum number of tokens",
];

fn is_context_window(body: &[u8]) -> bool {
    CONTEXT_WINDOW_MARKERS
        .iter()
        .any(|marker| contains_bytes(body, marker))
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn read_limited(mut body: Incoming) -> Bytes {
    let mut buf = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = next_chunk(&mut body).await {
            let room = ERROR_BODY_LIMIT - buf.len();
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if buf.len() >= ERROR_BODY_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(ERROR_BODY_TIMEOUT, read).await;
    Bytes::from(buf)
}

/// Stream an upstream answer to the client as it arrives; a translated one through its
/// translator, or read whole and rendered in the client's shape when it is not a stream.
/// `session` is the pool scope and session key whose cache figures the answer adds to.
pub async fn relay(
    engine: Arc<Engine>,
    answer: Answer,
    surface: Surface,
    mut record: RequestRecord,
    started: Instant,
    session: Option<(Arc<str>, SessionKey)>,
) -> Response {
    let request_id = record.id;
    let Answer {
        response: upstream,
        account,
        in_flight,
        translation,
    } = answer;
    let (head, upstream) = upstream.into_parts();
    let mut status = head.status;
    let mut headers = head.headers;
    adapter::to_client(&mut headers);
    let upstream_sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let body: relay::Upstream = match &translation {
        None => Box::pin(BodyDataStream::new(upstream)),
        Some(context) if status.is_success() && upstream_sse => Box::pin(
            translation::Translating::new(BodyDataStream::new(upstream), context),
        ),
        Some(context) => {
            // Read whole, then answered in the client's shape with the status it says.
            let idle =
                Duration::from_secs(engine.snapshot().config.limits.upstream_idle_timeout_secs);
            let (translated_status, bytes) = match read_whole(upstream, idle).await {
                Ok(body) => translation::whole_parts(status, &body, context),
                Err(why) => {
                    warn!(account = %account, "cannot read the upstream's answer: {why}");
                    let error = keyway_translate::UpstreamError::keyway(
                        keyway_translate::ErrorKind::Server,
                        &why,
                    );
                    (
                        StatusCode::BAD_GATEWAY,
                        Bytes::from(error.body(context.client)),
                    )
                }
            };
            status = translated_status;
            for name in [header::CONTENT_LENGTH, header::CONTENT_ENCODING] {
                headers.remove(name);
            }
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Box::pin(futures_util::stream::once(async move { Ok(bytes) }))
        }
    };
    let is_sse = match &translation {
        Some(_) => status.is_success() && upstream_sse,
        None => upstream_sse,
    };
    if translation.is_some() && is_sse {
        // The client's grammar now, and not the upstream's length.
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&account) {
        headers.insert(own_headers::ACCOUNT.clone(), v);
    }
    headers.insert(
        own_headers::REQUEST_ID.clone(),
        HeaderValue::from(request_id),
    );
    record.status = status.as_u16();
    record.stream = is_sse;
    let open = Open {
        in_flight,
        engine,
        record,
        started,
        tokens: TokenCounter::new(surface, is_sse),
        session,
    };
    let body = Relay::new(body, is_sse.then_some(surface), open);
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// An upstream answer read whole to be translated: at most
/// [`translation::MAX_ANSWER_BYTES`], with at most `idle` between two pieces of it.
async fn read_whole(mut body: Incoming, idle: Duration) -> Result<Bytes, String> {
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(idle, next_chunk(&mut body)).await {
            Err(_) => {
                return Err(format!(
                    "the upstream sent nothing for {}s and the answer was ended (limits.upstream_idle_timeout_secs)",
                    idle.as_secs()
                ));
            }
            Ok(Err(_)) => return Err("the upstream connection broke mid-answer".to_owned()),
            Ok(Ok(None)) => return Ok(Bytes::from(buf)),
            Ok(Ok(Some(chunk))) => {
                if buf.len() + chunk.len() > translation::MAX_ANSWER_BYTES {
                    return Err(format!(
                        "the upstream's answer is longer than {} MiB",
                        translation::MAX_ANSWER_BYTES / (1024 * 1024)
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}
