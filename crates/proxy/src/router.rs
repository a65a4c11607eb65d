//! Every route, each behind its guard: the client routes AI tools call, the dashboard's page
//! and assets, and the management API under [`API_PREFIX`].

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use crate::guard;
use crate::management::{self, Management};
use crate::request::routes;

/// Path prefix of the management API.
pub const API_PREFIX: &str = "/api";

pub fn router(management: Arc<Management>) -> Router {
    let engine = management.engine().clone();
    let server = management.server().clone();
    let client = Router::new()
        .route("/v1/messages", post(routes::anthropic))
        .route("/v1/messages/count_tokens", post(routes::anthropic))
        .route("/v1/chat/completions", post(routes::openai_chat))
        .route("/v1/responses", post(routes::openai_responses))
        .route("/v1/models", get(routes::list_models))
        .route("/v1beta/models", get(routes::gemini_models))
        .route("/v1beta/models/{*rest}", post(routes::gemini))
        .fallback(routes::not_found)
        .route_layer(middleware::from_fn_with_state(
            (engine.clone(), server.clone()),
            guard::client,
        ))
        .with_state(engine);

    let api = management::routes()
        .into_iter()
        .fold(Router::new(), |api, (_, path, handler)| {
            api.route(path, handler)
        })
        .fallback(management::not_found)
        .route_layer(middleware::from_fn_with_state(
            management.clone(),
            guard::management,
        ));
    // Added after the token guard, so only the site checks apply to them.
    let api = management::public_routes()
        .into_iter()
        .fold(api, |api, (_, path, handler)| {
            api.route(
                path,
                handler.route_layer(middleware::from_fn_with_state(server.clone(), guard::page)),
            )
        })
        .with_state(management);

    let page = Router::new()
        .route("/", get(management::dashboard_index))
        .route("/assets/{*file}", get(management::dashboard_asset))
        .route_layer(middleware::from_fn_with_state(server, guard::page));

    client.merge(page).nest(API_PREFIX, api)
}
