//! The HTTP/1.1 client side: one hyper connection per worker, and the request every target
//! gets.
//!
//! hyper's low-level connection API is used instead of a pooled client so that each worker
//! owns exactly one keep-alive connection and sends its requests back to back: the load is
//! then exactly the configured concurrency, and the client adds as little as possible.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request sender over one keep-alive connection.
pub type Sender = SendRequest<Full<Bytes>>;

/// Longest wait for one request (or one whole stream); a hung target fails the request
/// instead of hanging the bench.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a connection with Nagle off (as every HTTP client and proxy here does) and drives it
/// in a background task that ends when the sender is dropped or the peer closes.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("HTTP handshake with {addr} failed"))?;
    tokio::spawn(async move {
        // Errors here also fail the request in flight, which is where they are counted.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request, ready to be sent many times.
#[derive(Debug, Clone)]
pub struct Template {
    pub method: Method,
    pub uri: http::Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Template {
    pub fn build(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    pub fn new(
        method: Method,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<Template> {
        let uri = path
            .parse::<http::Uri>()
            .with_context(|| format!("bad request path `{path}`"))?;
        let mut map = HeaderMap::new();
        let host = HeaderValue::from_str(&addr.to_string())?;
        map.insert(header::HOST, host);
        map.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("keyway-bench/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("bad header name `{name}`"))?;
            let value = HeaderValue::from_str(value)
                .with_context(|| format!("bad value for header `{name}`"))?;
            map.insert(name, value);
        }
        if !body.is_empty() {
            map.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Ok(Template {
            method,
            uri,
            headers: map,
            body,
        })
    }
}

/// The model every request names: a sonnet-family model, as Claude Code sends most often.
pub const MODEL: &str = "claude-sonnet-4-5";

/// The model the translated scenarios name: an alias Keyway adds for them sends it to an
/// OpenAI-format account (see `keyway::Setup::add_translation`).
pub const TRANSLATED_MODEL: &str = "bench-translated";

/// A realistic small Anthropic Messages request (about 400 bytes of JSON), as a coding tool
/// sends for a short turn.
pub fn anthropic_body(stream: bool) -> Bytes {
    anthropic_body_for(MODEL, stream)
}

/// [`anthropic_body`] naming `model`.
pub fn anthropic_body_for(model: &str, stream: bool) -> Bytes {
    let body = serde_json::json!({
        "model": model,
        "max_tokens": 1024,
        "stream": stream,
        "system": "You are a concise assistant for a software team.",
        "messages": [
            {
                "role": "user",
                "content": "Summarise in one sentence what changed in this diff: the proxy now \
                            reuses upstream connections and keeps credentials out of its logs.",
            },
            { "role": "assistant", "content": "It reuses connections and hides credentials." },
            { "role": "user", "content": "Now say it in five words." },
        ],
        "metadata": { "user_id": "bench-user-0001" },
    });
    Bytes::from(body.to_string())
}

/// `POST /v1/messages` with the Anthropic headers and `key` as `x-api-key`.
pub fn anthropic(addr: SocketAddr, key: &str, stream: bool) -> anyhow::Result<Template> {
    anthropic_for(addr, key, MODEL, stream)
}

/// [`anthropic`] naming `model`.
pub fn anthropic_for(
    addr: SocketAddr,
    key: &str,
    model: &str,
    stream: bool,
) -> anyhow::Result<Template> {
    Template::new(
        Method::POST,
        addr,
        "/v1/messages",
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("anthropic-version", "2023-06-01"),
            ("x-api-key", key),
        ],
        anthropic_body_for(model, stream),
    )
}

/// One request on a fresh connection, the whole answer read; for set-up checks and the
/// management API, not for measurements.
pub async fn call(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let what = format!("{} {}", request.method(), request.uri());
    let exchange = async {
        let mut sender = connect(addr).await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("{what} to {addr}: no answer within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("{what} to {addr}"))
}

/// A body for error messages: UTF-8 (lossy), cut to a readable length.
pub fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_body_is_small_and_realistic() {
        let len = anthropic_body(false).len();
        assert!((350..=500).contains(&len), "body is {len} bytes");
        let v: serde_json::Value = serde_json::from_slice(&anthropic_body(true)).unwrap();
        assert_eq!(v["stream"], true);
        assert_eq!(v["model"], MODEL);
        // The translated scenarios' body differs in its model only.
        let translated = String::from_utf8(anthropic_body_for(TRANSLATED_MODEL, false).to_vec());
        let plain = String::from_utf8(anthropic_body(false).to_vec()).unwrap();
        assert_eq!(translated.unwrap(), plain.replace(MODEL, TRANSLATED_MODEL));
    }

    #[test]
    fn templates_carry_host_length_and_key() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let t = anthropic(addr, "sk-test", false).unwrap();
        let r = t.build();
        assert_eq!(r.uri().path(), "/v1/messages");
        assert_eq!(r.headers()["host"], "127.0.0.1:9");
        assert_eq!(r.headers()["x-api-key"], "sk-test");
        assert_eq!(
            r.headers()["content-length"],
            anthropic_body(false).len().to_string().as_str()
        );
    }
}
