#![doc = include_str!("../README.md")]

mod anthropic;
mod chat;
mod error;
pub mod errors;
mod estimate;
mod gemini;
mod ids;
pub mod ir;
mod json;
pub mod reasoning;
mod responses;
mod signature;
mod sse;
mod stream;

use bytes::Bytes;

pub use error::TranslateError;
pub use errors::{ErrorKind, UpstreamError};
pub use sse::MAX_LINE;
pub use stream::StreamTranslator;

/// The API shape a client called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientSurface {
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens,
    /// OpenAI `POST /v1/chat/completions`.
    Chat,
    /// OpenAI `POST /v1/responses`.
    Responses,
    /// Gemini `POST /v1beta/models/{model}:{method}`.
    Gemini(GeminiMethod),
}

/// The method of a Gemini call, from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeminiMethod {
    /// `:generateContent`
    Generate,
    /// `:streamGenerateContent` (Keyway answers it as SSE, as with `?alt=sse`)
    Stream,
    /// `:countTokens`
    CountTokens,
}

impl GeminiMethod {
    /// The method named after the colon in a Gemini path.
    pub fn parse(method: &str) -> Option<GeminiMethod> {
        match method {
            "generateContent" => Some(GeminiMethod::Generate),
            "streamGenerateContent" => Some(GeminiMethod::Stream),
            "countTokens" => Some(GeminiMethod::CountTokens),
            _ => None,
        }
    }
}

/// The wire format an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamFormat {
    /// Anthropic Messages.
    Anthropic,
    /// OpenAI Chat Completions, which every OpenAI-compatible service speaks.
    OpenAi,
    /// Gemini `generateContent`.
    Gemini,
}

impl UpstreamFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamFormat::Anthropic => "anthropic",
            UpstreamFormat::OpenAi => "openai",
            UpstreamFormat::Gemini => "gemini",
        }
    }

    /// Whether images may be given by URL (Gemini takes only inline data or its own file
    /// URIs, and Keyway never fetches a URL on a client's behalf).
    pub(crate) fn takes_image_urls(self) -> bool {
        !matches!(self, UpstreamFormat::Gemini)
    }

    /// Whether a tool result may hold images (OpenAI's tool messages and Gemini's function
    /// responses carry text only).
    pub(crate) fn takes_tool_result_images(self) -> bool {
        matches!(self, UpstreamFormat::Anthropic)
    }

    /// Whether "any JSON object" output can be asked for without a schema.
    pub(crate) fn takes_json_object(self) -> bool {
        !matches!(self, UpstreamFormat::Anthropic)
    }
}

impl std::fmt::Display for UpstreamFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a request from `client` to an upstream of format `upstream` must be translated.
/// When it need not, the request and its answer pass through untouched.
///
/// A Responses client going to an `openai` upstream is not translated: it is forwarded to
/// the upstream's own `/v1/responses`.
pub fn needs_translation(client: ClientSurface, upstream: UpstreamFormat) -> bool {
    !matches!(
        (client, upstream),
        (
            ClientSurface::Messages | ClientSurface::CountTokens,
            UpstreamFormat::Anthropic
        ) | (
            ClientSurface::Chat | ClientSurface::Responses,
            UpstreamFormat::OpenAi
        ) | (ClientSurface::Gemini(_), UpstreamFormat::Gemini)
    )
}

/// What the caller knows about a request beyond its body.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestOptions<'a> {
    /// The model named in a Gemini client's path (`/v1beta/models/{model}:…`).
    pub path_model: Option<&'a str>,
    /// A model to send upstream instead of the client's (an alias the route resolved).
    pub model_override: Option<&'a str>,
    /// Send `max_tokens` rather than `max_completion_tokens` to an `openai` upstream. OpenAI
    /// itself wants `max_completion_tokens` (its reasoning models refuse `max_tokens`); many
    /// OpenAI-compatible services know only `max_tokens`.
    pub openai_legacy_max_tokens: bool,
}

/// What to do with a translated request.
#[derive(Debug)]
pub enum Plan {
    /// Send this to the upstream.
    Upstream(UpstreamRequest),
    /// Answer the client directly: the upstream has no such endpoint (token counting on an
    /// `openai` upstream) and Keyway answers with an estimate.
    Local(LocalAnswer),
}

/// A request in the upstream's format.
#[derive(Debug)]
pub struct UpstreamRequest {
    /// Path (and query) under the upstream's base: `/v1/messages`,
    /// `/v1/messages/count_tokens`, `/v1/chat/completions`, or
    /// `/v1beta/models/{model}:generateContent` (`:streamGenerateContent?alt=sse`,
    /// `:countTokens`).
    pub path: String,
    /// The JSON body.
    pub body: Bytes,
    /// Whether the answer will be an SSE stream (feed it to a [`StreamTranslator`]).
    pub stream: bool,
    /// The model sent upstream.
    pub model: String,
    /// What the client's answer needs; hand it to [`response`] or [`StreamTranslator::new`].
    pub context: ResponseContext,
}

/// An answer Keyway gives without asking an upstream.
#[derive(Debug)]
pub struct LocalAnswer {
    pub status: u16,
    /// JSON in the client's shape.
    pub body: Bytes,
    /// The answer is an estimate, not the provider's count (say so in a response header).
    pub approximate: bool,
}

/// What rendering an answer in the client's shape needs beyond the upstream's answer.
#[derive(Debug, Clone)]
pub struct ResponseContext {
    pub client: ClientSurface,
    pub upstream: UpstreamFormat,
    /// The model named in the answer: the one the client asked for.
    pub model: String,
    /// A fresh token the answer's ids are made from (`msg_…`, `chatcmpl-…`, `resp_…`).
    pub token: String,
    /// Unix seconds, for `created` / `created_at`.
    pub created: u64,
    /// A Chat client asked for `stream_options.include_usage`: usage comes in a last chunk
    /// of its own. Otherwise it rides on the chunk that carries `finish_reason`, so Keyway's
    /// own accounting still sees it.
    pub include_usage: bool,
    /// A Responses client's tool namespaces, whose calls go back as `name` and `namespace`.
    pub namespaces: Vec<String>,
}

impl ResponseContext {
    pub fn new(client: ClientSurface, upstream: UpstreamFormat, model: &str) -> Self {
        ResponseContext {
            client,
            upstream,
            model: model.to_owned(),
            token: ids::token(),
            created: ids::now(),
            include_usage: false,
            namespaces: Vec::new(),
        }
    }
}

/// Translates a client's request body into the upstream's format.
///
/// Anything the target cannot express and that would change the meaning is refused with a
/// [`TranslateError`] naming the client's field; answer it with `error.status()` and
/// `error.body(client)`.
pub fn request(
    client: ClientSurface,
    upstream: UpstreamFormat,
    body: &[u8],
    options: &RequestOptions<'_>,
) -> Result<Plan, TranslateError> {
    let (mut ir, count) = match client {
        ClientSurface::Messages => (anthropic::client::parse_request(body, upstream)?, false),
        ClientSurface::CountTokens => (anthropic::client::parse_request(body, upstream)?, true),
        ClientSurface::Chat => (chat::client::parse_request(body, upstream)?, false),
        ClientSurface::Responses => (responses::parse_request(body, upstream)?, false),
        ClientSurface::Gemini(method) => {
            let model = options
                .path_model
                .ok_or_else(|| TranslateError::invalid("model", "a Gemini path names its model"))?;
            let mut ir = gemini::client::parse_request(body, upstream, method)?;
            ir.model = model.strip_prefix("models/").unwrap_or(model).to_owned();
            ir.stream = method == GeminiMethod::Stream;
            (ir, method == GeminiMethod::CountTokens)
        }
    };
    let client_model = std::mem::take(&mut ir.model);
    let model = options
        .model_override
        .map(str::to_owned)
        .unwrap_or_else(|| client_model.clone());
    let mut context = ResponseContext::new(client, upstream, &client_model);
    context.include_usage = ir.include_usage;
    context.namespaces = std::mem::take(&mut ir.namespaces);
    ir.model = model.clone();

    if count {
        return count_plan(client, upstream, ir, model, context);
    }
    let stream = ir.stream;
    let (path, body) = match upstream {
        UpstreamFormat::Anthropic => (
            "/v1/messages".to_owned(),
            anthropic::upstream::render_request(ir),
        ),
        UpstreamFormat::OpenAi => (
            "/v1/chat/completions".to_owned(),
            chat::upstream::render_request(ir, options.openai_legacy_max_tokens),
        ),
        UpstreamFormat::Gemini => {
            let method = if stream {
                ":streamGenerateContent?alt=sse"
            } else {
                ":generateContent"
            };
            (
                gemini::upstream::path(&model, method)?,
                gemini::upstream::render_request(ir)?,
            )
        }
    };
    Ok(Plan::Upstream(UpstreamRequest {
        path,
        body: Bytes::from(body),
        stream,
        model,
        context,
    }))
}

/// Token counting: Anthropic's and Gemini's count endpoints map to each other; an `openai`
/// upstream has none, so Keyway estimates.
fn count_plan(
    client: ClientSurface,
    upstream: UpstreamFormat,
    ir: ir::Request,
    model: String,
    context: ResponseContext,
) -> Result<Plan, TranslateError> {
    let (path, body) = match upstream {
        UpstreamFormat::Anthropic => (
            "/v1/messages/count_tokens".to_owned(),
            anthropic::upstream::render_count_request(ir),
        ),
        UpstreamFormat::Gemini => (
            gemini::upstream::path(&model, ":countTokens")?,
            gemini::upstream::render_count_request(ir)?,
        ),
        UpstreamFormat::OpenAi => {
            let tokens = estimate::input_tokens(&ir);
            return Ok(Plan::Local(LocalAnswer {
                status: 200,
                body: Bytes::from(render_count(client, tokens)),
                approximate: true,
            }));
        }
    };
    Ok(Plan::Upstream(UpstreamRequest {
        path,
        body: Bytes::from(body),
        stream: false,
        model,
        context,
    }))
}

fn render_count(client: ClientSurface, tokens: u64) -> Vec<u8> {
    match client {
        ClientSurface::Gemini(_) => gemini::client::render_count(tokens),
        _ => anthropic::client::render_count(tokens),
    }
}

/// An answer in the client's shape.
#[derive(Debug)]
pub struct Translated {
    pub status: u16,
    pub body: Bytes,
}

/// Translates a whole (non-streamed) upstream answer into the client's shape. An error
/// status is translated as an error; a success whose body cannot be read becomes a 502 in
/// the client's error shape.
pub fn response(status: u16, body: &[u8], context: &ResponseContext) -> Translated {
    let client = context.client;
    let upstream = context.upstream;
    if !(200..300).contains(&status) {
        return Translated {
            status: UpstreamError::parse(upstream, status, body).status,
            body: error(client, upstream, status, body),
        };
    }
    let counting = matches!(
        client,
        ClientSurface::CountTokens | ClientSurface::Gemini(GeminiMethod::CountTokens)
    );
    let rendered = if counting {
        let tokens = match upstream {
            UpstreamFormat::Anthropic => anthropic::upstream::parse_count(body),
            UpstreamFormat::Gemini => gemini::upstream::parse_count(body),
            UpstreamFormat::OpenAi => None,
        };
        tokens.map(|n| render_count(client, n))
    } else {
        let parsed = match upstream {
            UpstreamFormat::Anthropic => anthropic::upstream::parse_response(body),
            UpstreamFormat::OpenAi => chat::upstream::parse_response(body),
            UpstreamFormat::Gemini => gemini::upstream::parse_response(body, &context.token),
        };
        parsed.map(|answer| match client {
            ClientSurface::Messages | ClientSurface::CountTokens => {
                anthropic::client::render_response(answer, context)
            }
            ClientSurface::Chat => chat::client::render_response(answer, context),
            ClientSurface::Responses => responses::render_response(answer, context),
            ClientSurface::Gemini(_) => gemini::client::render_response(answer, context),
        })
    };
    match rendered {
        Some(body) => Translated {
            status: 200,
            body: Bytes::from(body),
        },
        None => {
            let error = UpstreamError::keyway(
                ErrorKind::Server,
                &format!("the {upstream} upstream's answer could not be read"),
            );
            Translated {
                status: 502,
                body: Bytes::from(error.body(client)),
            }
        }
    }
}

/// An upstream's error answer in the client's error shape, keeping the upstream's status
/// (see [`errors`] for what is kept of its message).
pub fn error(client: ClientSurface, upstream: UpstreamFormat, status: u16, body: &[u8]) -> Bytes {
    Bytes::from(UpstreamError::parse(upstream, status, body).body(client))
}

/// Notes a field that is dropped because the target lacks it and leaving it out does not
/// change what the answer means (a sampling knob, a service option).
pub(crate) fn dropped(field: &str, target: UpstreamFormat, why: &str) {
    tracing::debug!(
        field,
        target = target.as_str(),
        why,
        "translate: dropped a field the target has no counterpart of"
    );
}

/// The client's unknown top-level fields that may go into a target body: all but those
/// named like a field Keyway writes there itself (a JSON object cannot hold a key twice).
pub(crate) fn forward_extra(
    mut extra: serde_json::Map<String, serde_json::Value>,
    written: &[&str],
    target: UpstreamFormat,
) -> serde_json::Map<String, serde_json::Value> {
    extra.retain(|key, _| {
        let clash = written.contains(&key.as_str());
        if clash {
            dropped(
                key,
                target,
                "an unknown client field named like one Keyway writes",
            );
        }
        !clash
    });
    extra
}

#[cfg(test)]
mod tests;
