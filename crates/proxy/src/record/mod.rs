//! What a request leaves behind: its [`RequestRecord`], kept in the live log and the event
//! stream ([`traffic`]) and in the usage history ([`history`]), with the token counts read
//! from the response as it passed ([`tokens`]).

use std::sync::Arc;

use serde::Serialize;

use keyway_core::Surface;
use keyway_core::prices::{self, Prices};
use keyway_core::session::{KeySource, Placement};
use tokens::Tokens;

pub mod history;
pub mod tokens;
pub mod traffic;

/// The most characters a record keeps of a string the client chose (the model name): the
/// live log, the event stream, the usage history and the logs hold this much at most.
pub const MAX_CLIENT_CHARS: usize = 256;

/// `s` as a record keeps it: whole when it is at most [`MAX_CLIENT_CHARS`] characters,
/// otherwise its first ones and `…`.
pub fn clipped(s: &str) -> String {
    match s.char_indices().nth(MAX_CLIENT_CHARS - 1) {
        Some((cut, _)) if s.len() > cut + s[cut..].chars().next().map_or(0, char::len_utf8) => {
            let mut out = String::with_capacity(cut + '…'.len_utf8());
            out.push_str(&s[..cut]);
            out.push('…');
            out
        }
        _ => s.to_owned(),
    }
}

/// One finished request. Holds no secret: the account is named by id and label.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub id: u64,
    /// When the request arrived.
    pub time_ms: u64,
    pub surface: Surface,
    /// The model sent upstream (what the answer is priced as).
    pub model: Option<String>,
    /// The model the client asked for, when an alias or a fallback step sent another.
    pub requested_model: Option<String>,
    pub provider: String,
    pub family: Option<String>,
    /// The account that answered (or was tried last); `None` when none could be tried.
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub account: Option<Arc<str>>,
    pub account_label: Option<String>,
    pub attempts: u32,
    pub status: u16,
    /// From arrival to the end of the response body.
    pub latency_ms: u64,
    pub stream: bool,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The part of `input_tokens` the prompt cache served.
    pub cache_read_tokens: Option<u64>,
    /// The part of `input_tokens` written to the prompt cache (Anthropic only reports it).
    pub cache_write_tokens: Option<u64>,
    /// The conversation the request belonged to, if it said.
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub session: Option<Arc<str>>,
    pub session_source: Option<KeySource>,
    /// How the session's request was placed (sessions under `spread = "session"` only).
    pub placement: Option<Placement>,
    /// The client key the request came with (its id), and that key's label.
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub client_key: Option<Arc<str>>,
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub client_key_label: Option<Arc<str>>,
    /// What the tokens cost at API prices (for a subscription account: what they would have
    /// cost); `None` when the model has no price or the response reported no usage.
    pub cost_usd: Option<f64>,
    /// What the prompt cache saved: cache reads at the input price minus at the cache price.
    pub saved_usd: Option<f64>,
    /// Where the request went when an alias or a fallback step took it elsewhere (as in
    /// `x-keyway-route`); `None` when it went where its model led.
    pub route: Option<String>,
}

impl RequestRecord {
    /// The response's token counts, and what they cost at `prices`.
    pub fn set_tokens(&mut self, tokens: Tokens, prices: &Prices) {
        self.input_tokens = tokens.input;
        self.output_tokens = tokens.output;
        self.cache_read_tokens = tokens.cache_read;
        self.cache_write_tokens = tokens.cache_write;
        let reported = tokens.input.is_some() || tokens.output.is_some();
        let usage = prices::Usage {
            input: tokens.input.unwrap_or(0),
            cache_read: tokens.cache_read.unwrap_or(0),
            cache_write: tokens.cache_write.unwrap_or(0),
            cache_write_1h: tokens.cache_write_1h.unwrap_or(0),
            output: tokens.output.unwrap_or(0),
        };
        let cost = self
            .model
            .as_deref()
            .filter(|_| reported)
            .and_then(|model| prices.cost(&self.provider, model, &usage));
        self.cost_usd = cost.map(|c| c.usd);
        self.saved_usd = cost.map(|c| c.saved_usd);
    }

    /// Input plus output tokens, for a key's tokens-per-minute limit.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens
            .unwrap_or(0)
            .saturating_add(self.output_tokens.unwrap_or(0))
    }

    pub fn failed(&self) -> bool {
        self.status >= 400
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_strings_are_clipped_with_a_marker() {
        assert_eq!(clipped("claude-sonnet-4-5"), "claude-sonnet-4-5");
        let exact = "é".repeat(MAX_CLIENT_CHARS);
        assert_eq!(clipped(&exact), exact);
        let long = "é".repeat(8 * 1024 * 1024);
        let cut = clipped(&long);
        assert_eq!(cut.chars().count(), MAX_CLIENT_CHARS);
        assert!(cut.ends_with('…') && cut.starts_with("éé"));
    }
}
