//! The management API under `/api` and what only it drives: the route table (the router and
//! the `docs/API.md` check are both built from it) and `status`, with each concern in its own
//! module. It is the one backend interface of the dashboard and of the CLI's live views, and
//! the tray calls the same functions ([`change_account`], [`set_strategy`]). Responses never
//! contain account secrets. Mutations go through [`Management::edit`]: validated as a whole,
//! saved atomically, swapped in — or nothing changes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::MethodRouter;
use keyway_core::state::now_ms;
use serde_json::json;

mod accounts;
mod connect;
mod dashboard;
mod error;
mod login_sessions;
mod logins;
mod policies;
mod settings;
mod state;
mod tools;
mod traffic;

pub use accounts::{
    AccountChange, AccountView, Summary, account_views, change_account, check_new_account,
    check_secret,
};
pub use connect::settings_to_copy;
pub use dashboard::{asset as dashboard_asset, index as dashboard_index};
pub use error::{Error, refusal};
pub use login_sessions::{LoginState, LoginView};
pub use policies::{MemberView, PolicyView, policy_views, set_strategy};
pub use state::{LogReloader, MANAGEMENT_TOKEN_PREFIX, Management};
pub use tools::{Endpoint, Snippet, Tool};

/// Every management route as (method, path under `/api`, handler). The router is built from
/// this list and a test checks `docs/API.md` against it, so the reference cannot drift.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<Arc<Management>>)> {
    use axum::routing::{delete, get, patch, post, put};
    vec![
        (Method::GET, "/status", get(status)),
        (Method::GET, "/requests", get(traffic::recent_requests)),
        (Method::GET, "/events", get(traffic::events)),
        (Method::GET, "/accounts", get(accounts::list_accounts)),
        (Method::POST, "/accounts", post(accounts::add_account)),
        (
            Method::PATCH,
            "/accounts/{id}",
            patch(accounts::update_account),
        ),
        (
            Method::DELETE,
            "/accounts/{id}",
            delete(accounts::remove_account),
        ),
        (Method::GET, "/providers", get(accounts::list_providers)),
        (Method::POST, "/logins", post(logins::start_login)),
        (Method::GET, "/logins/{id}", get(logins::login_status)),
        (Method::DELETE, "/logins/{id}", delete(logins::cancel_login)),
        (
            Method::POST,
            "/logins/{id}/code",
            post(logins::paste_login_code),
        ),
        (Method::POST, "/imports", post(logins::import_login)),
        (Method::GET, "/policies", get(policies::list_policies)),
        (
            Method::PUT,
            "/policies/{provider}",
            put(policies::put_provider_policy),
        ),
        (
            Method::PUT,
            "/policies/{provider}/{family}",
            put(policies::put_family_policy),
        ),
        (
            Method::DELETE,
            "/policies/{provider}",
            delete(policies::delete_provider_policy),
        ),
        (
            Method::DELETE,
            "/policies/{provider}/{family}",
            delete(policies::delete_family_policy),
        ),
        (
            Method::POST,
            "/policies/preview",
            post(policies::preview_policy),
        ),
        (Method::GET, "/usage", get(traffic::usage)),
        (Method::GET, "/usage.csv", get(traffic::usage_csv)),
        (Method::GET, "/connect", get(connect::list)),
        (
            Method::POST,
            "/connect/{tool}/preview",
            post(connect::preview),
        ),
        (Method::POST, "/connect/{tool}", post(connect::connect)),
        (
            Method::DELETE,
            "/connect/{tool}",
            delete(connect::disconnect),
        ),
        (Method::POST, "/pause", post(settings::pause)),
        (Method::POST, "/resume", post(settings::resume)),
        (Method::GET, "/client-key", get(settings::client_key)),
        (
            Method::POST,
            "/client-key/rotate",
            post(settings::rotate_client_key),
        ),
        (Method::GET, "/settings", get(settings::get_settings)),
        (Method::PATCH, "/settings", patch(settings::patch_settings)),
        (Method::POST, "/logs/open", post(settings::open_logs)),
    ]
}

pub async fn status(State(management): State<Arc<Management>>) -> Json<serde_json::Value> {
    let rejected = management.rejected_edit();
    let engine = management.engine();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listen": management.server().listen().map(|a| a.to_string()),
        "paused": engine.paused(),
        "config": {
            "path": management.config_path().display().to_string(),
            "ok": rejected.is_none(),
            "error": rejected,
        },
        "traffic": engine.traffic().last_minute(now_ms()),
        "accounts": accounts::accounts_with_today(engine).await,
    }))
}

pub async fn not_found() -> Error {
    Error::NotFound("no such management endpoint; see the README's management API section".into())
}

#[cfg(test)]
mod reference {
    use std::collections::BTreeSet;

    /// `docs/API.md` has a `### METHOD /api/path` heading for every route, and no other.
    #[test]
    fn the_api_reference_lists_exactly_the_routes() {
        let doc = include_str!("../../../../docs/API.md");
        let documented: Vec<&str> = doc.lines().filter_map(|l| l.strip_prefix("### ")).collect();
        let unique: BTreeSet<&str> = documented.iter().copied().collect();
        assert_eq!(
            unique.len(),
            documented.len(),
            "a route is documented twice"
        );
        let served: BTreeSet<String> = super::routes()
            .iter()
            .map(|(method, path, _)| format!("{method} /api{path}"))
            .collect();
        let documented: BTreeSet<String> = unique.into_iter().map(str::to_owned).collect();
        assert_eq!(
            documented.difference(&served).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "documented but not served"
        );
        assert_eq!(
            served.difference(&documented).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "served but not documented in docs/API.md"
        );
    }
}
