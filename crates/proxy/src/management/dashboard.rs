//! The dashboard's files (`ui/dist`, built by `npm run build` in `ui/`), embedded in release
//! builds and read from the source tree in debug builds.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../../ui/dist"]
#[allow_missing = true]
struct Files;

/// Shown instead of the dashboard when this binary was built without it.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Keyway</title>\
<h1>The dashboard is not built into this Keyway</h1>\
<p>Build it with <code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code>, then \
rebuild Keyway (<code>scripts/run</code> does both). The proxy and the management API work \
without it.</p>";

pub async fn index() -> Response {
    unframed(match Files::get("index.html") {
        Some(file) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.data,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, Html(NOT_BUILT)).into_response(),
    })
}

/// `/assets/{file}`: Vite names them by content hash, so they may be cached for good.
pub async fn asset(Path(file): Path<String>) -> Response {
    unframed(match Files::get(&format!("assets/{file}")) {
        Some(f) => (
            [
                (header::CONTENT_TYPE, f.metadata.mimetype().to_owned()),
                (
                    header::CACHE_CONTROL,
                    "public, max-age=31536000, immutable".to_owned(),
                ),
            ],
            f.data,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such dashboard file").into_response(),
    })
}

/// No other page may show the dashboard in a frame (clickjacking): CSP `frame-ancestors`,
/// and `X-Frame-Options` for browsers that predate it.
fn unframed(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
