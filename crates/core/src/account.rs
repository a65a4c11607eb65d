//! Account identity: kinds and id generation.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    #[default]
    ApiKey,
    /// A subscription login (Claude, ChatGPT): OAuth tokens, refreshed by Keyway.
    #[serde(rename = "oauth")]
    OAuth,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::ApiKey => "api_key",
            AccountKind::OAuth => "oauth",
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new account id: the provider and six random hex digits, e.g. `anthropic-3f9a1c`.
/// Short enough to type, and `taken` guarantees uniqueness within the config.
pub fn new_id(provider: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    loop {
        let id = format!("{provider}-{:06x}", rng.random_range(0..0x100_0000u32));
        if !taken(&id) {
            return id;
        }
    }
}
