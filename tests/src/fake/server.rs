//! Routing, and the request pipeline every provider shares: read the body, find the key,
//! record, pick the scripted behaviour, answer.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use serde_json::{Value, json};

use super::oauth::Gate;
use super::sse::{self, Step};
use super::state::{EventTimes, Inflight, Shared};
use super::wire::{Answer, Call, Facts, Failure, rate_budget_headers, status};
use super::{
    Behaviour, Provider, Recorded, anthropic, claude, codex, gemini, oauth, openai, openai_oauth,
    strict_anthropic, strict_gemini, strict_openai,
};

/// Largest request body read; big enough for any realistic prompt.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Content events in a streamed answer under [`Behaviour::Ok`].
const OK_STREAM_EVENTS: usize = 3;

type AppState = State<Arc<Shared>>;

/// All three providers' routes on one router, plus the subscription (OAuth) services.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let routes = Router::new()
        .route(
            "/v1/messages",
            post(|State(s): AppState, req: Request| handle(s, Route::Messages, req)),
        )
        .route(
            "/v1/messages/count_tokens",
            post(|State(s): AppState, req: Request| handle(s, Route::CountTokens, req)),
        )
        .route(
            "/v1/models",
            get(|State(s): AppState, req: Request| handle(s, Route::Models, req)),
        )
        .route(
            "/v1/chat/completions",
            post(|State(s): AppState, req: Request| handle(s, Route::ChatCompletions, req)),
        )
        .route(
            "/v1/responses",
            post(|State(s): AppState, req: Request| handle(s, Route::Responses, req)),
        )
        .route(
            "/v1beta/models",
            get(|State(s): AppState, req: Request| handle(s, Route::GeminiList, req)),
        )
        .route(
            "/v1beta/models/{*rest}",
            any(|State(s): AppState, req: Request| handle(s, Route::GeminiModel, req)),
        )
        .route(
            "/backend-api/codex/responses",
            post(|State(s): AppState, req: Request| handle(s, Route::CodexResponses, req)),
        )
        .merge(oauth::routes())
        .merge(claude::routes())
        .merge(openai_oauth::routes())
        .merge(codex::routes())
        .fallback(unmatched)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(shared.clone(), site));
    // A vendor's API lives under its path prefix (nesting strips it); outside it, 404.
    match shared.vendor.as_ref().map(|v| v.path_prefix.clone()) {
        None => routes.with_state(shared),
        Some(prefix) => {
            let outside = shared.clone();
            Router::new()
                .nest(&prefix, routes.with_state(shared))
                .fallback(move |req: Request| {
                    let shared = outside.clone();
                    async move { not_routed(&shared, &req, StatusCode::NOT_FOUND) }
                })
        }
    }
}

/// Every request, before anything else: the `Host` must be the fake's own address, as it is
/// when a client (or a proxy's HTTP client) builds the request from the provider's URL, and
/// there must be no `Origin`: no browser calls a provider API through a proxy. A proxy that
/// copies its client's `Host` (`127.0.0.1:<its own port>`) or `Origin` upstream gets a 421
/// no real provider sends, and the violation is kept to fail the test. An HTTP/2 request
/// names its host in `:authority` (RFC 9113 §8.3.1), which must then be the fake's own too,
/// and stands for `Host` when that header is absent.
async fn site(State(shared): AppState, req: Request, next: Next) -> Response {
    let line = format!("{} {}", req.method(), path_and_query(req.uri()));
    let own = shared.addr;
    let is_own = |h: &[u8]| {
        h == own.to_string().as_bytes() || h == format!("localhost:{}", own.port()).as_bytes()
    };
    let authority = (req.version() == http::Version::HTTP_2)
        .then(|| req.uri().authority())
        .flatten()
        .map(|a| a.as_str().as_bytes());
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.as_bytes())
        .or(authority);
    let host_ok = host.is_some_and(is_own) && authority.is_none_or(is_own);
    let problem = if !host_ok {
        let seen = |h: Option<&[u8]>| {
            h.map_or("none".to_owned(), |h| {
                format!("`{}`", String::from_utf8_lossy(h))
            })
        };
        let what = match authority {
            Some(_) => format!("Host {} and :authority {}", seen(host), seen(authority)),
            None => format!("Host {}", seen(host)),
        };
        Some(format!(
            "{line} carried {what}; the upstream's own is `{own}`: a proxy must not pass its \
             client's Host on"
        ))
    } else {
        req.headers().get(header::ORIGIN).map(|origin| {
            format!(
                "{line} carried Origin `{}`: a proxy must not pass a browser's Origin on",
                String::from_utf8_lossy(origin.as_bytes())
            )
        })
    };
    match problem {
        None => next.run(req).await,
        Some(problem) => {
            shared.violation(problem.clone());
            let message = format!("fake upstream refused the request: {problem}");
            let body = json!({ "error": { "type": "fake_upstream_refused", "message": message } });
            (StatusCode::MISDIRECTED_REQUEST, axum::Json(body)).into_response()
        }
    }
}

/// Which route matched; resolved into an [`Endpoint`] once headers and query are known.
#[derive(Debug, Clone, Copy)]
enum Route {
    Messages,
    CountTokens,
    /// `GET /v1/models`: Anthropic's or OpenAI's, decided by headers.
    Models,
    ChatCompletions,
    Responses,
    GeminiList,
    /// `/v1beta/models/{*rest}`: a Gemini model or method, parsed from the path.
    GeminiModel,
    /// ChatGPT's `POST /backend-api/codex/responses`.
    CodexResponses,
}

/// A provider endpoint, dispatching to that provider's module.
enum Endpoint {
    Anthropic(anthropic::Endpoint),
    OpenAi(openai::Endpoint),
    Google(gemini::Endpoint),
    /// The ChatGPT Codex backend (OpenAI's Responses API for subscription accounts).
    Codex,
}

impl Endpoint {
    fn resolve(route: Route, parts: &Parts, query: &HashMap<String, String>) -> Self {
        match route {
            Route::Messages => Self::Anthropic(anthropic::Endpoint::Messages),
            Route::CountTokens => Self::Anthropic(anthropic::Endpoint::CountTokens),
            Route::Models if anthropic::claims_models_request(&parts.headers) => {
                Self::Anthropic(anthropic::Endpoint::Models)
            }
            Route::Models => Self::OpenAi(openai::Endpoint::Models),
            Route::ChatCompletions => Self::OpenAi(openai::Endpoint::ChatCompletions),
            Route::Responses => Self::OpenAi(openai::Endpoint::Responses),
            Route::GeminiList => Self::Google(gemini::Endpoint::List),
            Route::GeminiModel => {
                let rest = parts
                    .uri
                    .path()
                    .strip_prefix("/v1beta/models/")
                    .unwrap_or("");
                Self::Google(gemini::parse(&parts.method, rest, query))
            }
            Route::CodexResponses => Self::Codex,
        }
    }

    fn provider(&self) -> Provider {
        match self {
            Self::Anthropic(_) => Provider::Anthropic,
            Self::OpenAi(_) | Self::Codex => Provider::OpenAi,
            Self::Google(_) => Provider::Google,
        }
    }

    fn key(&self, headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
        match self {
            Self::Anthropic(_) => anthropic::key(headers),
            Self::OpenAi(_) | Self::Codex => openai::key(headers),
            Self::Google(_) => gemini::key(headers, query),
        }
    }

    /// False for Gemini paths that exist on no real API (404 without consuming a script).
    fn known(&self) -> bool {
        !matches!(self, Self::Google(gemini::Endpoint::Unknown))
    }

    /// What the request finds in its organization's state (see [`super::cache`]), or the
    /// provider's refusal of a Responses chain or reasoning item another organization made.
    fn prepare(&self, shared: &Shared, call: &Call) -> Result<Facts, Answer> {
        let Ok(request) = call.json() else {
            // The answer refuses it as the provider does.
            return Ok(Facts::default());
        };
        let list = |v: Option<&Value>| -> Vec<Value> {
            match v {
                Some(Value::Array(items)) => items.clone(),
                Some(Value::Null) | None => Vec::new(),
                Some(other) => vec![other.clone()],
            }
        };
        let cache = match self {
            Self::Anthropic(anthropic::Endpoint::Messages) => {
                shared.caches.anthropic(&call.key, &request)
            }
            Self::OpenAi(openai::Endpoint::ChatCompletions) => {
                let items: Vec<Value> =
                    [list(request.get("tools")), list(request.get("messages"))].concat();
                shared
                    .caches
                    .implicit(&call.key, &items.iter().collect::<Vec<_>>(), true)
            }
            Self::OpenAi(openai::Endpoint::Responses) | Self::Codex => {
                openai::check_chain(shared, &call.key, &request)?;
                let items: Vec<Value> = [
                    list(request.get("tools")),
                    list(request.get("instructions")),
                    list(request.get("input")),
                ]
                .concat();
                let cache =
                    shared
                        .caches
                        .implicit(&call.key, &items.iter().collect::<Vec<_>>(), true);
                shared
                    .responses
                    .produced(openai::response_id_of(call.id), &call.key);
                let reasoning = openai::wants_reasoning(&request).then(|| {
                    let content = openai::encrypted_reasoning(&call.key, call.id);
                    shared.responses.produced(content.clone(), &call.key);
                    content
                });
                return Ok(Facts { cache, reasoning });
            }
            Self::Google(gemini::Endpoint::Generate { .. } | gemini::Endpoint::Stream { .. }) => {
                let items: Vec<Value> = [
                    list(request.get("tools")),
                    list(request.get("systemInstruction")),
                    list(request.get("contents")),
                ]
                .concat();
                shared
                    .caches
                    .implicit(&call.key, &items.iter().collect::<Vec<_>>(), false)
            }
            _ => return Ok(Facts::default()),
        };
        Ok(Facts {
            cache,
            reasoning: None,
        })
    }

    /// The provider's 400 for a request its real API refuses (see `strict`): unknown fields,
    /// wrong shapes, tool results answering no call, signatures the fake did not make.
    /// Requests that are no JSON at all are left to [`Endpoint::answer`].
    fn check(&self, call: &Call) -> Result<(), Answer> {
        let Ok(request) = call.json() else {
            return Ok(());
        };
        match self {
            Self::Anthropic(anthropic::Endpoint::Messages) => {
                strict_anthropic::check_create(&request)
            }
            Self::Anthropic(anthropic::Endpoint::CountTokens) => {
                strict_anthropic::check_count(&request)
            }
            Self::OpenAi(openai::Endpoint::ChatCompletions) => strict_openai::check(&request),
            Self::Google(
                gemini::Endpoint::Generate { model } | gemini::Endpoint::Stream { model, .. },
            ) => strict_gemini::check_generate(&request, model),
            Self::Google(gemini::Endpoint::CountTokens) => strict_gemini::check_count(&request),
            _ => Ok(()),
        }
    }

    fn answer(&self, call: &Call, events: usize) -> Answer {
        match self {
            Self::Anthropic(e) => anthropic::answer(*e, call, events),
            Self::OpenAi(e) => openai::answer(*e, call, events),
            Self::Google(e) => gemini::answer(e, call, events),
            Self::Codex => codex::answer(call, events),
        }
    }

    /// What the provider answers a request that lacks a header it requires, if this one does.
    fn required_headers(&self, parts: &Parts) -> Option<Answer> {
        match self {
            Self::Anthropic(_) => anthropic::version_refusal(&parts.headers),
            Self::OpenAi(_) => openai::content_type_refusal(&parts.method, &parts.headers),
            Self::Google(_) | Self::Codex => None,
        }
    }

    fn failure(&self, f: Failure<'_>) -> Answer {
        match self {
            Self::Anthropic(_) => anthropic::failure(f),
            Self::OpenAi(_) | Self::Codex => openai::failure(f),
            Self::Google(_) => gemini::failure(f),
        }
    }

    /// The header each provider puts its request id in.
    fn request_id_header(&self) -> Option<&'static str> {
        match self {
            Self::Anthropic(_) => Some("request-id"),
            Self::OpenAi(_) | Self::Codex => Some("x-request-id"),
            Self::Google(_) => None,
        }
    }

    /// How the request's credentials are treated: OAuth bearers of the fake's subscription
    /// accounts are checked (and may be answered) before scripts; everything else is a key.
    fn gate(&self, shared: &Shared, headers: &HeaderMap) -> Gate {
        match self {
            // A vendor that takes API keys as bearers (`ANTHROPIC_AUTH_TOKEN`).
            Self::Anthropic(_)
                if shared.vendor.as_ref().is_some_and(|v| v.bearer_keys)
                    && super::wire::bearer(headers)
                        .is_some_and(|t| shared.key_valid(Provider::Anthropic, &t)) =>
            {
                Gate::ApiKey
            }
            Self::Anthropic(_) => shared.claude.gate(headers),
            Self::Codex => shared.codex.gate(&shared.openai_auth.issuer, headers),
            Self::OpenAi(_) | Self::Google(_) => Gate::ApiKey,
        }
    }

    fn json_content_type(&self) -> &'static str {
        match self {
            Self::Google(_) => "application/json; charset=UTF-8",
            _ => "application/json",
        }
    }
}

/// How a rendered answer is emitted.
pub(crate) struct Pace {
    /// Wait before each content event.
    pub(crate) interval: Duration,
    /// Abort the connection instead of finishing (streams: instead of the tail; JSON: after
    /// half the body).
    pub(crate) abort: bool,
    /// Filler bytes each content event gets as it is sent ([`Behaviour::Bulk`]).
    pub(crate) pad: usize,
    /// Fall silent instead of finishing, like `abort` but keeping the connection open
    /// ([`Behaviour::StreamThenStall`]).
    pub(crate) stall: bool,
}

const IMMEDIATE: Pace = Pace {
    interval: Duration::ZERO,
    abort: false,
    pad: 0,
    stall: false,
};

/// The pipeline for every provider endpoint.
async fn handle(shared: Arc<Shared>, route: Route, req: Request) -> Response {
    // Held until the answer is complete; if hyper drops this future or the body first, the
    // client disconnected.
    let mut guard = Inflight::new(Arc::clone(&shared));
    let (parts, body) = req.into_parts();
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => {
            guard.finish();
            let message = format!("fake upstream: could not read request body: {e}");
            return (StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    let query = query_params(&parts.uri);
    let endpoint = Endpoint::resolve(route, &parts, &query);
    let key = endpoint.key(&parts.headers, &query);
    let gate = endpoint.gate(&shared, &parts.headers);
    let times = shared.record(|| Recorded {
        method: parts.method.to_string(),
        path: path_and_query(&parts.uri),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect(),
        body: body.clone(),
        key: key.clone(),
        account: gate.label().map(str::to_owned),
        provider: endpoint.provider(),
        received_at: Instant::now(),
        version: parts.version,
    });
    let id = shared.next_id();
    let out = Out {
        endpoint: &endpoint,
        request_id: endpoint
            .request_id_header()
            .map(|name| (name, format!("req_fake{id:016}"))),
        times,
        stamp: shared.stamp(),
        extra: Vec::new(),
    };

    // OAuth requests are scripted by account label, so a script survives token refreshes.
    let api_key = matches!(gate, Gate::ApiKey);
    let (key, out) = match gate {
        Gate::ApiKey => (key, out),
        Gate::Account { label, headers } => (
            Some(label),
            Out {
                extra: headers,
                ..out
            },
        ),
        Gate::Reject { answer, .. } => return out.render(answer, IMMEDIATE, guard),
    };
    let Some(key) = key else {
        return out.render(endpoint.failure(Failure::MissingKey), IMMEDIATE, guard);
    };
    if api_key && !shared.key_valid(endpoint.provider(), &key) {
        if shared.is_scripted(&key) {
            eprintln!(
                "fake upstream: key `{key}` has a script but is not a registered {:?} key \
                 (FakeUpstream::register_key); answering as the provider answers an invalid key",
                endpoint.provider()
            );
        }
        let answer = endpoint.failure(Failure::Unauthorized(&key));
        return out.render(answer, IMMEDIATE, guard);
    }
    let mut out = out;
    if api_key {
        guard.count_key(&key);
        if let Some(limits) = shared.rate_limits(&key) {
            out.extra.extend(rate_budget_headers(
                endpoint.provider(),
                &limits,
                std::time::SystemTime::now(),
            ));
        }
    }
    if let Some(refusal) = endpoint.required_headers(&parts) {
        return out.render(refusal, IMMEDIATE, guard);
    }
    if !endpoint.known() {
        let message = format!("no such method: {} {}", parts.method, parts.uri.path());
        return out.render(
            endpoint.failure(Failure::NotFound(message)),
            IMMEDIATE,
            guard,
        );
    }
    let mut call = Call {
        key,
        body,
        id,
        stamp: shared.stamp(),
        pad: false,
        facts: Facts::default(),
    };
    let behaviour = shared.next_behaviour(&call.key);
    // An answer that succeeds deals with the organization's state: its prompt cache, its
    // Responses chains (which may refuse the request first).
    let succeeds = matches!(
        behaviour,
        Behaviour::Ok
            | Behaviour::Stream { .. }
            | Behaviour::Bulk { .. }
            | Behaviour::Delayed(_)
            | Behaviour::StreamThenDrop { .. }
    );
    // The real services refuse a malformed request whatever else would happen to it; the
    // scripted failures stand for the provider failing before it reads the body.
    let reads_body = succeeds || matches!(behaviour, Behaviour::StreamThenStall { .. });
    if reads_body
        && shared.strict()
        && let Err(refusal) = endpoint.check(&call)
    {
        return out.render(refusal, IMMEDIATE, guard);
    }
    if succeeds {
        match endpoint.prepare(&shared, &call) {
            Ok(facts) => call.facts = facts,
            Err(refusal) => return out.render(refusal, IMMEDIATE, guard),
        }
    }
    let (answer, pace) = match behaviour {
        Behaviour::Ok => (endpoint.answer(&call, OK_STREAM_EVENTS), IMMEDIATE),
        Behaviour::Stream { events, interval } => (
            endpoint.answer(&call, events),
            Pace {
                interval,
                ..IMMEDIATE
            },
        ),
        Behaviour::Bulk { events, bytes } => {
            call.pad = true;
            let pace = Pace {
                pad: bytes,
                ..IMMEDIATE
            };
            (endpoint.answer(&call, events), pace)
        }
        Behaviour::Delayed(delay) => {
            tokio::time::sleep(delay).await;
            (endpoint.answer(&call, OK_STREAM_EVENTS), IMMEDIATE)
        }
        Behaviour::StreamThenDrop { events } => (
            endpoint.answer(&call, events),
            Pace {
                abort: true,
                ..IMMEDIATE
            },
        ),
        Behaviour::StreamThenStall { events } => (
            endpoint.answer(&call, events),
            Pace {
                stall: true,
                ..IMMEDIATE
            },
        ),
        Behaviour::RateLimited(limit) => {
            (endpoint.failure(Failure::RateLimited(&limit)), IMMEDIATE)
        }
        Behaviour::Overloaded => (endpoint.failure(Failure::Overloaded), IMMEDIATE),
        Behaviour::ServerError(code) => (endpoint.failure(Failure::Server(code)), IMMEDIATE),
        Behaviour::ContextTooLong => (endpoint.failure(Failure::ContextTooLong), IMMEDIATE),
        Behaviour::Unauthorized => (
            endpoint.failure(Failure::Unauthorized(&call.key)),
            IMMEDIATE,
        ),
        Behaviour::Hang => {
            // `guard` stays alive here until hyper drops this future (client gone).
            return std::future::pending().await;
        }
        Behaviour::Raw {
            status: code,
            headers,
            body,
        } => {
            guard.finish();
            return raw(code, headers, body);
        }
    };
    out.render(answer, pace, guard)
}

/// Turns [`Answer`]s into responses with the provider's common headers.
struct Out<'a> {
    endpoint: &'a Endpoint,
    request_id: Option<(&'static str, String)>,
    times: Option<EventTimes>,
    /// Overwrite stamp placeholders with the emission time ([`super::FakeConfig::stamp`]).
    stamp: bool,
    /// Headers every answer carries (an OAuth account's limit headers) unless the answer
    /// sets them itself.
    extra: Vec<(&'static str, String)>,
}

impl Out<'_> {
    fn render(self, answer: Answer, pace: Pace, mut guard: Inflight) -> Response {
        let mut steps = VecDeque::new();
        let (status, content_type, headers) = match answer {
            Answer::Json {
                status,
                mut headers,
                body,
            } => {
                headers.extend(self.request_id);
                for (name, value) in self.extra {
                    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                        headers.push((name, value));
                    }
                }
                let body = Bytes::from(body.to_string());
                let content_type = self.endpoint.json_content_type();
                if !((pace.abort || pace.stall) && status.is_success()) {
                    guard.finish();
                    return response(status, Some(content_type), headers, Body::from(body));
                }
                // A scripted drop or stall of a non-streamed answer: half the JSON, then the
                // abort or the silence.
                steps.push_back(Step::Frame(body.slice(..body.len() / 2)));
                steps.push_back(if pace.stall { Step::Stall } else { Step::Abort });
                (status, content_type, headers)
            }
            Answer::Stream {
                content_type,
                head,
                content,
                tail,
            } => {
                steps.extend(head.into_iter().map(Step::Frame));
                steps.extend(content.into_iter().map(Step::Content));
                if pace.abort {
                    steps.push_back(Step::Abort);
                } else if pace.stall {
                    steps.push_back(Step::Stall);
                } else {
                    steps.extend(tail.into_iter().map(Step::Frame));
                }
                let mut headers = vec![("cache-control", "no-cache".to_owned())];
                headers.extend(self.request_id);
                headers.extend(self.extra);
                (StatusCode::OK, content_type, headers)
            }
        };
        let body = sse::body(steps, &pace, guard, self.times, self.stamp);
        response(status, Some(content_type), headers, body)
    }
}

/// A response with `content-type` (if given) and extra headers; invalid headers are skipped.
fn response<N: AsRef<str>>(
    status: StatusCode,
    content_type: Option<&'static str>,
    headers: Vec<(N, String)>,
    body: Body,
) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let map = response.headers_mut();
    if let Some(content_type) = content_type {
        map.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_ref().as_bytes());
        let value = HeaderValue::from_str(&value);
        if let (Ok(name), Ok(value)) = (name, value) {
            map.append(name, value);
        }
    }
    response
}

/// [`Behaviour::Raw`]: exactly what the test asked for.
fn raw(code: u16, headers: Vec<(String, String)>, body: String) -> Response {
    let has_content_type = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    let content_type = (!has_content_type).then_some("application/json");
    response(status(code), content_type, headers, Body::from(body))
}

/// Requests for paths no provider has: noted for [`super::FakeUpstream::unmatched`], 404.
async fn unmatched(State(shared): AppState, req: Request) -> Response {
    not_routed(&shared, &req, StatusCode::NOT_FOUND)
}

/// A known path with the wrong method: noted like [`unmatched`], 405.
async fn wrong_method(State(shared): AppState, req: Request) -> Response {
    not_routed(&shared, &req, StatusCode::METHOD_NOT_ALLOWED)
}

fn not_routed(shared: &Shared, req: &Request, status: StatusCode) -> Response {
    let line = format!("{} {}", req.method(), path_and_query(req.uri()));
    shared.record_unmatched(line.clone());
    let message = format!("fake upstream has no route for {line}");
    let body = json!({ "error": { "type": "not_found", "message": message } });
    (status, axum::Json(body)).into_response()
}

fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// Query parameters, decoded; malformed queries count as empty.
fn query_params(uri: &Uri) -> HashMap<String, String> {
    if uri.query().is_none() {
        return HashMap::new();
    }
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|Query(q)| q)
        .unwrap_or_default()
}
