//! Policy keys: `provider` (any family) or `provider/family`.

use std::fmt;
use std::str::FromStr;

use crate::provider;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    pub provider: String,
    /// `None` is the provider-wide policy that covers every family without its own.
    pub family: Option<String>,
}

impl fmt::Display for PolicyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.family {
            Some(family) => write!(f, "{}/{}", self.provider, family),
            None => f.write_str(&self.provider),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a policy key; write `provider` or `provider/family`, e.g. `anthropic` or `anthropic/opus`"
)]
pub struct BadPolicyKey(pub String);

impl FromStr for PolicyKey {
    type Err = BadPolicyKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPolicyKey(s.to_owned());
        let (provider, family) = match s.split_once('/') {
            Some((p, f)) => (p, Some(f)),
            None => (s, None),
        };
        if !provider::is_valid_id(provider) {
            return Err(bad());
        }
        if let Some(f) = family
            && (f.is_empty() || f.contains('/'))
        {
            return Err(bad());
        }
        Ok(PolicyKey {
            provider: provider.to_owned(),
            family: family.map(str::to_owned),
        })
    }
}
