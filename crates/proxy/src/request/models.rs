//! `GET /v1/models` for OpenAI-shaped clients: the models every configured OpenAI-shaped
//! provider with accounts can serve, merged into one list.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use keyway_core::Surface;
use keyway_core::provider::Format;
use serde_json::{Value, json};

use super::forward::{self, Outgoing};
use crate::engine::Engine;

/// The longest model list read from one provider (OpenRouter's, the longest known, is
/// about 1 MiB); a longer one counts as that provider's failure.
const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;
/// How long one provider's list may take to arrive once its headers have.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn merged_openai(engine: &Engine, request: Request) -> Response {
    let snapshot = engine.snapshot();
    let headers = request.headers().clone();
    let mut data: Vec<Value> = Vec::new();
    let mut failures = Vec::new();
    let providers = snapshot
        .providers()
        .iter()
        .filter(|p| p.format == Format::OpenAi);
    for provider in providers {
        let pool = provider.pool(None);
        if pool.members.is_empty() {
            continue;
        }
        let route = keyway_core::Route {
            provider,
            family: None,
            pool,
            model: None,
            alias: None,
        };
        let out = Outgoing {
            surface: Surface::OpenAiChat,
            method: Method::GET,
            path: "/v1/models",
            query: None,
            headers: &headers,
            body: bytes::Bytes::new(),
            session: None,
            previous_response_id: None,
            detect_context_window: false,
            translation: None,
        };
        let answer = match forward::send(
            engine,
            &snapshot,
            &route,
            &out,
            &mut forward::Trail::default(),
        )
        .await
        {
            Ok(a) if a.response.status().is_success() => a,
            _ => {
                failures.push(provider.id.clone());
                continue;
            }
        };
        let body = Limited::new(answer.response.into_body(), MAX_LIST_BYTES);
        let read = tokio::time::timeout(LIST_TIMEOUT, body.collect()).await;
        if let Ok(Ok(whole)) = read
            && let Ok(list) = serde_json::from_slice::<Value>(&whole.to_bytes())
            && let Some(items) = list.get("data").and_then(Value::as_array)
        {
            for item in items {
                let id = item.get("id");
                if id.is_none() || !data.iter().any(|d| d.get("id") == id) {
                    data.push(item.clone());
                }
            }
        }
    }
    if !failures.is_empty() {
        tracing::warn!(providers = ?failures, "model list unavailable from some providers");
    }
    (
        StatusCode::OK,
        axum::Json(json!({ "object": "list", "data": data })),
    )
        .into_response()
}
