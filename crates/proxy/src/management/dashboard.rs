//! The dashboard's files (`ui/dist`, built by `npm run build` in `ui/`), embedded in release
//! builds and read from the source tree in debug builds.

use axum::extract::Path;
use axum::http::{StatusCode, header};
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
    match Files::get("index.html") {
        Some(file) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.data,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, Html(NOT_BUILT)).into_response(),
    }
}

/// `/assets/{file}`: Vite names them by content hash, so they may be cached for good.
pub async fn asset(Path(file): Path<String>) -> Response {
    match Files::get(&format!("assets/{file}")) {
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
    }
}
