//! Translation at the proxy's edge: when the pool a request goes to speaks another wire format
//! than the client called (an alias, a fallback step), the request is rewritten by
//! `keyway-translate` for that pool, and its answer, whole or streamed, is rendered back in the
//! client's own shape. A request whose pool speaks its format never comes here: it passes
//! through byte for byte.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use keyway_core::provider::Format;
use keyway_core::snapshot::ProviderRoute;
use keyway_core::{ProviderKind, Surface};
use keyway_translate::{
    ClientSurface, GeminiMethod, Plan, RequestOptions, ResponseContext, StreamTranslator,
    UpstreamFormat,
};

use super::{classify, own_headers};

/// The most of a whole (non-streamed) upstream answer read to translate it. A model's answer
/// is far smaller; an upstream sending more is cut off with a 502.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// The client surface of an inference request, as translation names it; `None` for what is
/// not an inference call (model lists), which is never translated.
pub fn client_surface(surface: Surface, method: &Method, path: &str) -> Option<ClientSurface> {
    if method != Method::POST {
        return None;
    }
    match surface {
        Surface::AnthropicMessages => match path {
            "/v1/messages" => Some(ClientSurface::Messages),
            "/v1/messages/count_tokens" => Some(ClientSurface::CountTokens),
            _ => None,
        },
        Surface::OpenAiChat => (path == "/v1/chat/completions").then_some(ClientSurface::Chat),
        Surface::OpenAiResponses => (path == "/v1/responses").then_some(ClientSurface::Responses),
        Surface::Gemini => {
            let rest = path.strip_prefix("/v1beta/models/")?;
            let (_, method) = classify::gemini_model_and_method(rest)?;
            GeminiMethod::parse(method).map(ClientSurface::Gemini)
        }
    }
}

/// The format a provider speaks, as translation names it.
pub fn upstream_format(format: Format) -> UpstreamFormat {
    match format {
        Format::Anthropic => UpstreamFormat::Anthropic,
        Format::OpenAi => UpstreamFormat::OpenAi,
        Format::Gemini => UpstreamFormat::Gemini,
    }
}

/// Whether a request of `surface` sent to `provider` must be translated.
pub fn needed(surface: Surface, provider: &ProviderRoute) -> bool {
    !provider.format.serves(surface)
}

/// A request rewritten for a pool of another format.
pub struct Rewritten {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What rendering its answer in the client's shape needs.
    pub context: ResponseContext,
}

/// What translating a request came to.
pub enum Prepared {
    /// Send this to the pool.
    Upstream(Rewritten),
    /// Answer the client with this, asking no upstream: a token count Keyway estimates, or
    /// a request the pool's format cannot express (a 400 naming the field).
    Answer(Response),
}

/// The request for `provider` (of another format than `client`), sending `model` instead of
/// the client's when an alias or a fallback step names one.
pub fn prepare(
    client: ClientSurface,
    provider: &ProviderRoute,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    model: Option<&str>,
) -> Prepared {
    let upstream = upstream_format(provider.format);
    let path_model = match client {
        ClientSurface::Gemini(_) => path
            .strip_prefix("/v1beta/models/")
            .and_then(classify::gemini_model_and_method)
            .map(|(m, _)| m),
        _ => None,
    };
    let options = RequestOptions {
        path_model,
        model_override: model,
        // OpenAI itself wants `max_completion_tokens`; the services that copy its API
        // mostly know only `max_tokens`.
        openai_legacy_max_tokens: provider.kind != ProviderKind::OpenAi,
    };
    let plan = match keyway_translate::request(client, upstream, body, &options) {
        Ok(plan) => plan,
        Err(e) => {
            tracing::info!(to = upstream.as_str(), "cannot translate the request: {e}");
            return Prepared::Answer(json_response(status(e.status()), e.body(client)));
        }
    };
    match plan {
        Plan::Local(local) => {
            let mut response = json_response(status(local.status), local.body);
            if local.approximate {
                response.headers_mut().insert(
                    own_headers::ESTIMATE.clone(),
                    HeaderValue::from_static("true"),
                );
            }
            Prepared::Answer(response)
        }
        Plan::Upstream(request) => {
            let (path, query) = match request.path.split_once('?') {
                Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                None => (request.path, None),
            };
            Prepared::Upstream(Rewritten {
                path,
                query,
                headers: upstream_headers(headers, upstream, request.stream),
                body: request.body,
                context: request.context,
            })
        }
    }
}

/// The client's headers for an upstream of another format: without the client format's own
/// headers (its API version, betas, SDK telemetry), content negotiation set for the new
/// body (no compression, which a translator could not read), and Anthropic's version header
/// where Anthropic needs one. Auth and connection headers go as for any request.
fn upstream_headers(client: &HeaderMap, upstream: UpstreamFormat, stream: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(client.len() + 2);
    for (name, value) in client {
        let n = name.as_str();
        let foreign = n.starts_with("anthropic-")
            || n.starts_with("openai-")
            || n.starts_with("x-goog-")
            || n.starts_with("x-stainless-")
            || name == header::ACCEPT
            || name == header::ACCEPT_ENCODING
            || name == header::CONTENT_TYPE;
        if !foreign {
            out.append(name.clone(), value.clone());
        }
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let accept = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    out.insert(header::ACCEPT, HeaderValue::from_static(accept));
    if upstream == UpstreamFormat::Anthropic {
        out.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    out
}

/// The Anthropic API version translated requests are written for.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// An upstream answer Keyway read whole (an error, a body it had to read), in the client's
/// shape: its status and JSON body.
pub fn whole_parts(
    status: StatusCode,
    body: &[u8],
    context: &ResponseContext,
) -> (StatusCode, Bytes) {
    let translated = keyway_translate::response(status.as_u16(), body, context);
    (self::status(translated.status), translated.body)
}

/// [`whole_parts`] as a response.
pub fn whole(status: StatusCode, body: &[u8], context: &ResponseContext) -> Response {
    let (status, body) = whole_parts(status, body, context);
    json_response(status, body)
}

/// A status the translator chose; one out of range (it never makes one) reads as a 502.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY)
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// An upstream SSE body rendered as the client's SSE, chunk by chunk as it arrives: each
/// upstream chunk yields what the translator makes of it (empty results are skipped), and
/// the end of the upstream body yields the translator's closing events.
pub struct Translating<S> {
    upstream: S,
    translator: StreamTranslator,
    done: bool,
}

impl<S> Translating<S> {
    pub fn new(upstream: S, context: &ResponseContext) -> Self {
        Translating {
            upstream,
            translator: StreamTranslator::new(context),
            done: false,
        }
    }
}

impl<S, E> Stream for Translating<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.upstream).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let out = self.translator.feed(&chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                // A broken upstream ends the stream the relay's way (its error event).
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    let out = self.translator.finish();
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
            }
        }
    }
}
