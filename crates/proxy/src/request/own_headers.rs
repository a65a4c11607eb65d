//! The headers Keyway adds to the answers it passes on, named once. A `HeaderName` made from
//! a `&str` is parsed and checked on every insert; these are made at compile time.

use http::HeaderName;

/// The account that answered.
pub static ACCOUNT: HeaderName = HeaderName::from_static("x-keyway-account");
/// The request's id, as the logs and the live log name it.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-keyway-request-id");
/// Where a request went: its pools in turn, the model each was sent, the alias that routed it
/// (see [`super::chain::Path::describe`]).
pub static ROUTE: HeaderName = HeaderName::from_static("x-keyway-route");
/// The token count Keyway answered is its own estimate, not the provider's (an `openai` pool
/// has no count endpoint).
pub static ESTIMATE: HeaderName = HeaderName::from_static("x-keyway-estimate");
