//! Keyway's HTTP layer: the client routes that AI tools call, the guard in front of them, the
//! attempt loop that forwards to upstream accounts, the records requests leave behind, and
//! the management API. It knows the engine (`keyway-core`) and nothing of any GUI.
//!
//! Its API is what this file exports: the [`Engine`] requests share, the [`Server`]
//! lifecycle, the [`Management`] side (also driven by the tray), the [`router`], the
//! background work, config watching, the OAuth flows the CLI runs itself, and the views the
//! CLI and the tray show.

mod background;
mod blocking;
mod client_keys;
mod connection;
mod engine;
mod guard;
mod management;
pub mod oauth;
mod record;
mod refresh;
mod request;
mod router;
mod server;
mod upstream;
mod watch;

pub use background::{save as save_state, spawn_quota_poller, spawn_saver, spawn_state_watch};
pub use client_keys::{ClientKey, ClientKeys};
pub use engine::{Engine, StartError};
pub use guard::is_own_origin;
pub use management::{
    AccountChange, AccountView, ClientKeyView, Endpoint, Error, LogReloader, LoginState, LoginView,
    MANAGEMENT_TOKEN_PREFIX, Management, MemberView, PolicyView, SessionView, Snippet, Summary,
    Tool, account_views, change_account, check_new_account, check_secret, client_key_views,
    hello_proof, label_usage, policy_views, set_strategy, settings_to_copy,
};
pub use record::RequestRecord;
pub use record::history::{History, Totals, Usage};
pub use record::traffic::{BudgetAlert, BudgetPeriod, Event};
pub use request::adapter::HOP_BY_HOP;
pub use request::classify::model_of_body;
pub use router::{API_PREFIX, router};
pub use server::{BindError, Server, bind};
pub use upstream::{UpstreamClient, login_client};
pub use watch::{Watcher, spawn as watch_config};
