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
use keyway_core::ConfigError;
use keyway_core::secrets::StoreKind;
use keyway_core::state::now_ms;
use serde::Serialize;

use crate::record::traffic::LastMinute;

mod accounts;
mod aliases;
mod connect;
mod dashboard;
mod error;
mod hello;
mod keys;
mod login_sessions;
mod logins;
mod policies;
mod sessions;
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
pub use hello::hello_proof;
pub use keys::{ClientKeyView, views as client_key_views};
pub use login_sessions::{LoginState, LoginView};
pub use policies::{MemberView, PolicyView, policy_views, set_strategy};
pub use sessions::SessionView;
pub use state::{LogReloader, MANAGEMENT_TOKEN_PREFIX, Management};
pub use tools::{Endpoint, Snippet, Tool};
pub use traffic::label_usage;

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
        (
            Method::PUT,
            "/accounts/{id}/limits",
            put(accounts::set_limits),
        ),
        (
            Method::PATCH,
            "/accounts/{id}/limits",
            patch(accounts::change_limits),
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
        (Method::GET, "/aliases", get(aliases::list)),
        (Method::PUT, "/aliases", put(aliases::replace)),
        (Method::GET, "/route", get(aliases::route)),
        (Method::GET, "/sessions", get(sessions::list_sessions)),
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
        (Method::GET, "/client-key", get(keys::default_key)),
        (
            Method::POST,
            "/client-key/rotate",
            post(keys::rotate_default),
        ),
        (Method::GET, "/client-keys", get(keys::list)),
        (Method::POST, "/client-keys", post(keys::add)),
        (Method::DELETE, "/client-keys/{id}", delete(keys::revoke)),
        (
            Method::PUT,
            "/client-keys/{id}/limits",
            put(keys::set_limits),
        ),
        (Method::GET, "/settings", get(settings::get_settings)),
        (Method::PATCH, "/settings", patch(settings::patch_settings)),
        (Method::POST, "/logs/open", post(settings::open_logs)),
        (
            Method::POST,
            "/management-token/rotate",
            post(hello::rotate_token),
        ),
    ]
}

/// The management routes that need no token (the router puts them behind the site checks
/// only): [`hello::hello`], which proves to a command that it reached this Keyway before it
/// sends the token.
pub fn public_routes() -> Vec<(Method, &'static str, MethodRouter<Arc<Management>>)> {
    vec![(Method::GET, "/hello", axum::routing::get(hello::hello))]
}

/// `GET /api/status`: whether Keyway runs, its config's health and every account.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct StatusView {
    version: &'static str,
    listen: Option<String>,
    paused: bool,
    config: ConfigHealth,
    secrets: SecretsView,
    traffic: LastMinute,
    accounts: Vec<AccountView>,
    /// Conversations bound to accounts now (`GET /api/sessions` lists them).
    live_sessions: usize,
}

/// Where the secrets are kept: the OS keyring (`location` is its name) or Keyway's encrypted
/// file (`location` is its path).
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct SecretsView {
    kind: StoreKind,
    location: String,
}

/// The config file, and the last edit of it that was rejected, if it is broken now.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct ConfigHealth {
    path: String,
    ok: bool,
    error: Option<ConfigError>,
}

pub async fn status(State(management): State<Arc<Management>>) -> Json<StatusView> {
    let rejected = management.rejected_edit();
    let engine = management.engine();
    Json(StatusView {
        version: env!("CARGO_PKG_VERSION"),
        listen: management.server().listen().map(|a| a.to_string()),
        paused: engine.paused(),
        config: ConfigHealth {
            path: management.config_path().display().to_string(),
            ok: rejected.is_none(),
            error: rejected,
        },
        secrets: SecretsView {
            kind: engine.secrets().kind(),
            location: engine.secrets().location().to_owned(),
        },
        traffic: engine.traffic().last_minute(now_ms()),
        accounts: accounts::accounts_with_today(engine).await,
        live_sessions: sessions::session_views(engine).len(),
    })
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
            .chain(super::public_routes().iter())
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

/// The dashboard's `ui/src/lib/types.ts` is generated from the types this API serves and
/// takes (`ts-rs`), so a renamed or retyped field breaks the dashboard's type check instead of
/// a screen. This test fails when the committed file is not what the types say; run it with
/// `KEYWAY_WRITE_TYPES=1` to write it.
#[cfg(test)]
mod api_types {
    use keyway_core::provider::Format;
    use keyway_core::quota::QuotaWindow;
    use keyway_core::secrets::StoreKind;
    use keyway_core::session::{Affinity, KeySource, MoveReason, Placement, Spread};
    use keyway_core::state::{AccountStatus, LiveState};
    use keyway_core::{AccountKind, ConfigError, Strategy, Surface};
    use ts_rs::{Config, TS};

    use super::accounts::{AccountChange, AccountView, NewAccount, ProviderView, RemovedAccount};
    use super::aliases::{AliasView, RouteView};
    use super::connect::{Disconnected, ToolView};
    use super::hello::{Hello, ManagementToken};
    use super::keys::{ClientKeyView, DefaultKey, KeyRequest, NewKey};
    use super::login_sessions::{LoginState, LoginView};
    use super::logins::{ImportResult, NewImport, NewLogin, PastedCode};
    use super::policies::{MemberView, Picks, PolicyBody, PolicyView, PreviewBody};
    use super::sessions::SessionView;
    use super::settings::{LogsOpened, Paused, SettingsChange, SettingsView};
    use super::tools::{Connected, DiffKind, DiffLine, Plan, Snippet};
    use super::{ConfigHealth, SecretsView, StatusView};
    use crate::oauth::import::Source;
    use crate::record::RequestRecord;
    use crate::record::history::{Totals, Usage};
    use crate::record::traffic::{BudgetAlert, BudgetPeriod, LastMinute};
    use keyway_core::client_key::Limits as ClientKeyLimits;
    use keyway_core::limits::AccountLimits;

    const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/src/lib/types.ts");

    fn render() -> String {
        // The API's integers are counts and Unix times, far below 2^53: plain numbers.
        let cfg = Config::new().with_large_int("number");
        let decls = [
            Surface::decl(&cfg),
            AccountKind::decl(&cfg),
            LiveState::decl(&cfg),
            QuotaWindow::decl(&cfg),
            AccountStatus::decl(&cfg),
            AccountLimits::decl(&cfg),
            Totals::decl(&cfg),
            AccountView::decl(&cfg),
            NewAccount::decl(&cfg),
            AccountChange::decl(&cfg),
            RemovedAccount::decl(&cfg),
            Format::decl(&cfg),
            ProviderView::decl(&cfg),
            AliasView::decl(&cfg),
            RouteView::decl(&cfg),
            ConfigError::decl(&cfg),
            ConfigHealth::decl(&cfg),
            StoreKind::decl(&cfg),
            SecretsView::decl(&cfg),
            LastMinute::decl(&cfg),
            StatusView::decl(&cfg),
            KeySource::decl(&cfg),
            MoveReason::decl(&cfg),
            Placement::decl(&cfg),
            RequestRecord::decl(&cfg),
            SessionView::decl(&cfg),
            LoginState::decl(&cfg),
            LoginView::decl(&cfg),
            NewLogin::decl(&cfg),
            PastedCode::decl(&cfg),
            Source::decl(&cfg),
            NewImport::decl(&cfg),
            ImportResult::decl(&cfg),
            Strategy::decl(&cfg),
            Spread::decl(&cfg),
            Affinity::decl(&cfg),
            MemberView::decl(&cfg),
            PolicyView::decl(&cfg),
            PolicyBody::decl(&cfg),
            PreviewBody::decl(&cfg),
            Picks::decl(&cfg),
            Usage::decl(&cfg),
            Snippet::decl(&cfg),
            ToolView::decl(&cfg),
            DiffKind::decl(&cfg),
            DiffLine::decl(&cfg),
            Plan::decl(&cfg),
            Connected::decl(&cfg),
            Disconnected::decl(&cfg),
            SettingsView::decl(&cfg),
            SettingsChange::decl(&cfg),
            Paused::decl(&cfg),
            DefaultKey::decl(&cfg),
            NewKey::decl(&cfg),
            KeyRequest::decl(&cfg),
            ClientKeyLimits::decl(&cfg),
            BudgetPeriod::decl(&cfg),
            ClientKeyView::decl(&cfg),
            BudgetAlert::decl(&cfg),
            LogsOpened::decl(&cfg),
            Hello::decl(&cfg),
            ManagementToken::decl(&cfg),
        ];
        let mut out = String::from(
            "// The management API's shapes (docs/API.md), generated from Keyway's Rust types by\n\
             // `KEYWAY_WRITE_TYPES=1 cargo test -p keyway-proxy api_types`. Do not edit.\n",
        );
        for decl in decls {
            out.push_str("\nexport ");
            out.push_str(&decl);
            out.push('\n');
        }
        out
    }

    #[test]
    fn the_dashboards_types_are_generated_from_the_rust_types() {
        let want = render();
        if std::env::var_os("KEYWAY_WRITE_TYPES").is_some() {
            std::fs::write(FILE, &want).expect("write ui/src/lib/types.ts");
        }
        let have = std::fs::read_to_string(FILE).unwrap_or_default();
        assert!(
            have == want,
            "ui/src/lib/types.ts is not what the Rust types say; regenerate it with \
             `KEYWAY_WRITE_TYPES=1 cargo test -p keyway-proxy api_types`"
        );
    }
}
