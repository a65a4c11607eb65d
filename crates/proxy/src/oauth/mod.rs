//! Subscription logins (OAuth): the whole flow as the CLI and the dashboard run it, PKCE, the authorization-code flow with a loopback callback or
//! a pasted code, ChatGPT's device-code flow, importing existing CLI logins, and the token
//! endpoint. They live in the HTTP layer because every step speaks HTTP; the engine keeps the
//! resulting tokens as an account's [`keyway_core::Credential`].

pub mod flow;
pub mod import;
pub mod login;
pub mod pkce;
pub mod token;
