//! Where an alias or a fallback step sends a request: `provider[/family][:model]`. The model,
//! when given, replaces the one the client asked for (only the `model` field, or the model in
//! a Gemini path, changes).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::provider;

/// Longest model name a target may carry.
pub const MAX_MODEL_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub provider: String,
    pub family: Option<String>,
    pub model: Option<String>,
}

impl Target {
    /// The policy key of the pool it names: `provider` or `provider/family`.
    pub fn scope(&self) -> String {
        match &self.family {
            Some(f) => format!("{}/{f}", self.provider),
            None => self.provider.clone(),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let s = s.trim();
        // Model names may hold `/` and `:` (OpenRouter's `anthropic/claude-sonnet-4.5`), so
        // the model is everything after the first `:`.
        let (pool, model) = match s.split_once(':') {
            Some((pool, model)) => (pool, Some(model)),
            None => (s, None),
        };
        let (provider, family) = match pool.split_once('/') {
            Some((p, f)) => (p, Some(f)),
            None => (pool, None),
        };
        let shape = "write provider[/family][:model], e.g. `deepseek:deepseek-v4-flash` or `anthropic/sonnet`";
        if !provider::is_valid_id(provider) {
            return Err(format!("`{s}` does not start with a provider id; {shape}"));
        }
        if let Some(f) = family
            && (f.is_empty() || f.contains('/'))
        {
            return Err(format!("`{s}` has an empty or nested family; {shape}"));
        }
        if let Some(m) = model
            && (m.is_empty()
                || m.chars().count() > MAX_MODEL_CHARS
                || m.chars().any(|c| c.is_control() || c == '"' || c == '\\'))
        {
            return Err(format!(
                "the model in `{s}` must be 1 to {MAX_MODEL_CHARS} characters, without quotes, backslashes or control characters"
            ));
        }
        Ok(Target {
            provider: provider.to_owned(),
            family: family.map(str::to_owned),
            model: model.map(str::to_owned),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scope())?;
        if let Some(m) = &self.model {
            write!(f, ":{m}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Target, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What ended a pool's attempts, for choosing the fallback step that handles it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Every account is cooling down or was rate-limited or overloaded (429, 529).
    RateLimit,
    /// The upstream failed (5xx, no answer, refused credentials, nothing eligible).
    ServerError,
    /// The request is longer than the model's context window: only a larger model helps.
    ContextWindow,
}

impl FailureKind {
    pub const ALL: [FailureKind; 3] = [
        FailureKind::RateLimit,
        FailureKind::ServerError,
        FailureKind::ContextWindow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::RateLimit => "rate_limit",
            FailureKind::ServerError => "server_error",
            FailureKind::ContextWindow => "context_window",
        }
    }
}

/// One step of a policy's fallback chain: where to go, and for which failures. Written
/// `target` (rate limits and server errors) or `kind=target` (`context_window=anthropic/opus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackStep {
    pub on: Vec<FailureKind>,
    pub to: Target,
}

impl FallbackStep {
    pub fn handles(&self, kind: FailureKind) -> bool {
        self.on.contains(&kind)
    }
}

impl FromStr for FallbackStep {
    type Err = String;

    fn from_str(s: &str) -> Result<FallbackStep, String> {
        let s = s.trim();
        let (on, target) = match s.split_once('=') {
            Some((kind, target)) => {
                let kind = FailureKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == kind.trim())
                    .ok_or_else(|| {
                        format!(
                            "unknown failure kind `{kind}` in `{s}`; use rate_limit, server_error or context_window"
                        )
                    })?;
                (vec![kind], target)
            }
            None => (vec![FailureKind::RateLimit, FailureKind::ServerError], s),
        };
        Ok(FallbackStep {
            on,
            to: target.parse()?,
        })
    }
}

impl fmt::Display for FallbackStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.on.as_slice() {
            write!(f, "{}=", only.as_str())?;
        }
        write!(f, "{}", self.to)
    }
}

impl<'de> Deserialize<'de> for FallbackStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FallbackStep, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for FallbackStep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_and_write_the_same() {
        for text in [
            "deepseek",
            "anthropic/sonnet",
            "deepseek:deepseek-v4-flash",
            "openrouter/default:anthropic/claude-sonnet-4.5",
            "ollama:qwen3:32b",
        ] {
            let t: Target = text.parse().expect(text);
            assert_eq!(t.to_string(), text);
        }
        let t: Target = "openrouter/default:anthropic/claude-sonnet-4.5"
            .parse()
            .unwrap();
        assert_eq!(t.family.as_deref(), Some("default"));
        assert_eq!(t.model.as_deref(), Some("anthropic/claude-sonnet-4.5"));
        for bad in [
            "",
            "Deep Seek",
            "anthropic/",
            "anthropic/a/b",
            "x:",
            "x:a\"b",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fallback_steps_name_their_failures() {
        let s: FallbackStep = "deepseek:deepseek-v4-pro".parse().unwrap();
        assert!(s.handles(FailureKind::RateLimit) && s.handles(FailureKind::ServerError));
        assert!(!s.handles(FailureKind::ContextWindow));
        let s: FallbackStep = "context_window=anthropic/opus".parse().unwrap();
        assert_eq!(s.on, [FailureKind::ContextWindow]);
        assert_eq!(s.to_string(), "context_window=anthropic/opus");
        assert!("timeout=anthropic".parse::<FallbackStep>().is_err());
    }
}
