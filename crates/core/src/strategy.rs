//! The selection strategies a policy can name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    RoundRobin,
    WeightedRoundRobin,
    Random,
    WeightedRandom,
    Priority,
    /// The account with the most quota left in its tightest window: a subscription's usage
    /// windows, an API key's rate-limit headers.
    MostAvailable,
    /// The account with the fewest requests in flight for its weight.
    LeastBusy,
    /// The account whose recent answers started soonest; the others are probed now and then.
    Fastest,
}

impl Strategy {
    pub const ALL: [Strategy; 8] = [
        Strategy::RoundRobin,
        Strategy::WeightedRoundRobin,
        Strategy::Random,
        Strategy::WeightedRandom,
        Strategy::Priority,
        Strategy::MostAvailable,
        Strategy::LeastBusy,
        Strategy::Fastest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::WeightedRoundRobin => "weighted_round_robin",
            Strategy::Random => "random",
            Strategy::WeightedRandom => "weighted_random",
            Strategy::Priority => "priority",
            Strategy::MostAvailable => "most_available",
            Strategy::LeastBusy => "least_busy",
            Strategy::Fastest => "fastest",
        }
    }

    pub fn uses_weights(self) -> bool {
        matches!(
            self,
            Strategy::WeightedRoundRobin | Strategy::WeightedRandom | Strategy::LeastBusy
        )
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
pub struct UnknownStrategy(pub String);

impl fmt::Display for UnknownStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown strategy `{}`; use one of: ", self.0)?;
        for (i, s) in Strategy::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownStrategy {}

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}
