//! Test infrastructure for Keyway.
//!
//! Keyway's end-to-end tests must never reach the internet, so every upstream provider is
//! replaced by [`FakeUpstream`]: an in-process HTTP server on a loopback port that speaks the
//! real Anthropic, OpenAI and Gemini wire protocols, answers as each key is scripted to, and
//! records every request so tests can assert on what Keyway actually forwarded.
//! [`harness`] starts the real `keyway` binary against it.

#![warn(missing_docs)]

pub mod bus;
pub mod fake;
pub mod harness;

pub use fake::*;
pub use harness::{CliOutput, Keyway, Setup};
