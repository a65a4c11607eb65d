//! Client routes: one thin handler per surface. Each reads the body, classifies the request,
//! picks the route from the current snapshot and hands over to the attempt loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use keyway_core::Surface;
use keyway_core::state::now_ms;
use tracing::Instrument;

use super::chain;
use super::forward::{self, GiveUp, Outgoing, Trail};
use super::surface::{self, SurfaceError};
use super::{adapter, classify, models, own_headers, sessions};
use crate::client_keys::ClientKey;
use crate::engine::Engine;
use crate::record::{self, RequestRecord};

pub async fn anthropic(State(engine): State<Arc<Engine>>, request: Request) -> Response {
    handle(engine, Surface::AnthropicMessages, None, request).await
}

pub async fn openai_chat(State(engine): State<Arc<Engine>>, request: Request) -> Response {
    handle(engine, Surface::OpenAiChat, None, request).await
}

pub async fn openai_responses(State(engine): State<Arc<Engine>>, request: Request) -> Response {
    handle(engine, Surface::OpenAiResponses, None, request).await
}

/// `POST /v1beta/models/{model}:{method}`
pub async fn gemini(
    State(engine): State<Arc<Engine>>,
    Path(rest): Path<String>,
    request: Request,
) -> Response {
    match classify::gemini_model_and_method(&rest) {
        Some((model, _)) => {
            let model = model.to_owned();
            handle(engine, Surface::Gemini, Some(model), request).await
        }
        None => SurfaceError::new(
            Surface::Gemini,
            StatusCode::NOT_FOUND,
            format!("unknown Gemini method `{rest}`; Keyway serves :generateContent, :streamGenerateContent and :countTokens"),
        )
        .into_response(),
    }
}

/// `GET /v1/models`: Anthropic's list for Anthropic clients, otherwise the merged list of
/// every OpenAI-shaped provider with accounts.
pub async fn list_models(State(engine): State<Arc<Engine>>, request: Request) -> Response {
    if request.headers().contains_key("anthropic-version") {
        return handle(engine, Surface::AnthropicMessages, None, request).await;
    }
    models::merged_openai(&engine, request).await
}

/// `GET /v1beta/models`: Gemini's own list.
pub async fn gemini_models(State(engine): State<Arc<Engine>>, request: Request) -> Response {
    handle(engine, Surface::Gemini, None, request).await
}

pub async fn not_found(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    SurfaceError::new(
        surface::of_path(&path),
        StatusCode::NOT_FOUND,
        format!("Keyway does not serve {} {path}", request.method()),
    )
    .into_response()
}

/// The whole path of one client request.
async fn handle(
    engine: Arc<Engine>,
    surface: Surface,
    model: Option<String>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let time_ms = now_ms();
    let id = engine.next_request_id();
    let snapshot = engine.snapshot();
    let (parts, body) = request.into_parts();
    // Set by the guard: the key the request came with.
    let key = parts.extensions.get::<Arc<ClientKey>>().cloned();
    let limits = &snapshot.config.limits;
    let limit = limits.max_body_mib as usize * 1024 * 1024;
    let pause = Duration::from_secs(limits.client_body_timeout_secs);
    let body = match read_body(body, limit, pause).await {
        Ok(b) => b,
        Err(e) => {
            let (status, message) = match e {
                BodyError::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body larger than {} MiB (limits.max_body_mib in the config)",
                        limits.max_body_mib
                    ),
                ),
                BodyError::Slow => (
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body paused for more than {}s (limits.client_body_timeout_secs in the config)",
                        limits.client_body_timeout_secs
                    ),
                ),
                BodyError::Broken => (
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read".to_owned(),
                ),
            };
            return surface::closing(SurfaceError::new(surface, status, message).into_response());
        }
    };
    let fields = classify::fields_of_body(&body);
    let full_model = model.as_deref().or(fields.model.as_deref());
    let Some(route) = snapshot.route(surface, full_model) else {
        return SurfaceError::new(
            surface,
            StatusCode::SERVICE_UNAVAILABLE,
            "no provider serves this API",
        )
        .into_response();
    };
    let session = sessions::identify(&parts.headers, &fields, route.pool.sessions.affinity, &body);
    // What the records keep of the client's model name: a bounded copy.
    let model = full_model.map(record::clipped);
    let previous_response_id = fields
        .previous_response_id
        .filter(|_| surface == Surface::OpenAiResponses)
        .map(|id| id.into_owned());
    let span = tracing::debug_span!(
        "request",
        id,
        surface = surface.as_str(),
        provider = %route.provider.id,
        family = route.family.unwrap_or("-"),
        model = model.as_deref().unwrap_or("-"),
        account = tracing::field::Empty,
        attempts = tracing::field::Empty,
        status = tracing::field::Empty,
        upstream_ms = tracing::field::Empty,
    );
    let out = Outgoing {
        surface,
        method: parts.method.clone(),
        path: parts.uri.path(),
        query: parts.uri.query().map(adapter::strip_key_param),
        headers: &parts.headers,
        body: body.clone(),
        session,
        previous_response_id: previous_response_id.as_deref(),
        detect_context_window: false,
        translation: None,
    };
    async {
        let mut trail = Trail::default();
        let mut path = chain::Path::default();
        let result = chain::send(
            &engine,
            &snapshot,
            route,
            &out,
            model.as_deref(),
            &mut trail,
            &mut path,
        )
        .await;
        // The pool that answered (or was tried last) and the model it was sent.
        let last = path.hops.last();
        let sent_model = path.last_model().map(str::to_owned);
        let record = RequestRecord {
            id,
            time_ms,
            surface,
            requested_model: sent_model.as_ref().and(model.clone()),
            model: sent_model.or(model),
            provider: last.map_or_else(|| route.provider.id.clone(), |h| h.provider.clone()),
            family: last.map_or(route.family.map(str::to_owned), |h| h.family.clone()),
            account_label: trail
                .account
                .as_deref()
                .and_then(|a| snapshot.config.account(a))
                .map(|a| a.label.clone()),
            account: trail.account,
            attempts: trail.attempts,
            status: 0,
            latency_ms: 0,
            stream: false,
            input_tokens: None,
            output_tokens: None,
            cache_read_tokens: None,
            cache_write_tokens: None,
            session: out.session.as_ref().map(|k| k.value.clone()),
            session_source: out.session.as_ref().map(|k| k.source),
            placement: trail.placement,
            client_key: key.as_ref().map(|k| k.id.clone()),
            client_key_label: key.as_ref().map(|k| k.label.clone()),
            cost_usd: None,
            saved_usd: None,
            route: path.is_rerouted().then(|| path.describe()),
        };
        let route_header = header::HeaderValue::from_str(&path.describe()).ok();
        let mut response = match result {
            Ok(chain::Reply::Upstream(answer)) => {
                tracing::debug!("forwarded");
                let scope = last.map_or_else(|| route.pool.scope.clone(), |h| h.scope.clone());
                let session = out
                    .session
                    .clone()
                    .filter(|_| trail.placement.is_some())
                    .map(|key| (scope, key));
                forward::relay(engine.clone(), answer, surface, record, started, session).await
            }
            Ok(chain::Reply::Keyway(response)) | Err(GiveUp { response, .. }) => {
                engine.finish(RequestRecord {
                    status: response.status().as_u16(),
                    latency_ms: started.elapsed().as_millis() as u64,
                    ..record
                });
                with_request_id(response, id)
            }
        };
        if let Some(v) = route_header {
            response.headers_mut().insert(own_headers::ROUTE.clone(), v);
        }
        response
    }
    .instrument(span)
    .await
}

/// Why a request body was not read.
enum BodyError {
    TooLarge,
    /// No piece of it came for the allowed pause.
    Slow,
    Broken,
}

/// The most of a request body's buffer reserved ahead of its bytes.
const PRESIZE_MAX: usize = 1024 * 1024;

/// The whole body, at most `limit` bytes, with at most `pause` between two pieces of it.
async fn read_body(body: Body, limit: usize, pause: Duration) -> Result<Bytes, BodyError> {
    // The declared length (content-length) sizes the buffer, up to a point: a client that
    // declares 32 MiB and sends two bytes gets no 32 MiB buffer.
    let declared = (body.size_hint().lower() as usize).min(limit.min(PRESIZE_MAX));
    let mut body = Limited::new(body, limit);
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    loop {
        let frame = match tokio::time::timeout(pause, body.frame()).await {
            Err(_) => return Err(BodyError::Slow),
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) if e.is::<LengthLimitError>() => return Err(BodyError::TooLarge),
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match &first {
            // Most bodies arrive in one piece: keep it without a copy.
            None if rest.is_empty() => first = Some(data),
            _ => {
                if let Some(first) = first.take() {
                    rest.reserve(declared.max(first.len() + data.len()));
                    rest.extend_from_slice(&first);
                }
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok(match first {
        Some(only) => only,
        None => Bytes::from(rest),
    })
}

fn with_request_id(mut response: Response, id: u64) -> Response {
    response.headers_mut().insert(
        own_headers::REQUEST_ID.clone(),
        header::HeaderValue::from(id),
    );
    response
}
