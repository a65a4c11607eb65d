//! `GET /v1/models` for OpenAI-shaped clients: the models every configured OpenAI-shaped
//! provider with accounts can serve, merged into one list.

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use keyway_core::Surface;
use keyway_core::provider::Format;
use serde_json::{Value, json};

use super::forward::{self, Outgoing};
use crate::engine::Engine;

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
        if let Ok(list) = answer.response.json::<Value>().await
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
