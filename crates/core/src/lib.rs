//! Keyway's engine. Everything here is independent of HTTP and of any GUI: the proxy crate
//! drives it per request, the `keyway` binary drives it from the command line.
//!
//! The central type is [`Snapshot`]: an immutable, fully built routing state (config,
//! providers with their families, and one [`Pool`] per policy). It is replaced whole, never
//! mutated. Facts that must outlive a replacement — cooldowns, failure counts, cached
//! credentials — live in [`AccountState`], keyed by account id in a [`StateRegistry`].

pub mod account;
pub mod client_key;
pub mod config;
pub mod credential;
pub mod edit;
pub mod family;
pub mod limits;
pub mod meter;
pub mod paths;
pub mod policy;
pub mod pool;
pub mod prices;
pub mod provider;
pub mod quota;
pub mod secrets;
pub mod session;
pub mod snapshot;
pub mod state;
pub mod strategy;
pub mod target;

pub use account::AccountKind;
pub use config::{Config, ConfigError};
pub use credential::{Credential, OAuthTokens};
pub use policy::PolicyKey;
pub use pool::{Member, Pool};
pub use prices::Prices;
pub use provider::{ProviderKind, Surface};
pub use secrets::{Secret, SecretStore};
pub use snapshot::{ProviderRoute, Route, Snapshot};
pub use state::{AccountState, StateRegistry};
pub use strategy::Strategy;
