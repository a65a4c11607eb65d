//! Reasoning effort levels and their token budgets.
//!
//! OpenAI speaks in effort levels, Anthropic in token budgets (and, on newer models, effort),
//! Gemini in budgets (and levels on Gemini 3). Where a client gives one and the target wants
//! the other, these two tables convert. The budgets are Keyway's choice, picked so that each
//! level fits every current model's range (Anthropic's minimum budget is 1,024; Gemini 2.5
//! Flash's maximum is 24,576).

use crate::ir::Reasoning;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
    Max,
}

impl Effort {
    /// An effort name as OpenAI, Anthropic or Gemini spell it (case-insensitive).
    pub fn parse(name: &str) -> Option<Effort> {
        Some(match name.to_ascii_lowercase().as_str() {
            "none" => Effort::None,
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" => Effort::XHigh,
            "max" => Effort::Max,
            _ => return None,
        })
    }

    /// OpenAI's name for the level. OpenAI has no `max`; it becomes `xhigh`.
    pub fn openai(self) -> &'static str {
        match self {
            Effort::None => "none",
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::XHigh | Effort::Max => "xhigh",
        }
    }

    /// The token budget that stands for this level.
    pub fn budget(self) -> u32 {
        match self {
            Effort::None => 0,
            Effort::Minimal => 1024,
            Effort::Low => 4096,
            Effort::Medium => 8192,
            Effort::High => 16384,
            Effort::XHigh | Effort::Max => 24576,
        }
    }

    /// The level that stands for a token budget.
    pub fn from_budget(budget: u32) -> Effort {
        match budget {
            0 => Effort::None,
            1..=4096 => Effort::Low,
            4097..=12288 => Effort::Medium,
            _ => Effort::High,
        }
    }
}

/// The budget a reasoning request amounts to: the client's own budget, else its effort's.
/// `None` when reasoning is off or the client left the amount to the model.
pub fn budget(reasoning: &Reasoning) -> Option<u32> {
    match reasoning {
        Reasoning::Off => Some(0),
        Reasoning::On { budget, effort, .. } => budget.or(effort.map(Effort::budget)),
    }
}

/// The effort a reasoning request amounts to: the client's own effort, else its budget's.
pub fn effort(reasoning: &Reasoning) -> Option<Effort> {
    match reasoning {
        Reasoning::Off => Some(Effort::None),
        Reasoning::On { budget, effort, .. } => effort.or(budget.map(Effort::from_budget)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_budgets_round_trip() {
        for effort in [Effort::Low, Effort::Medium, Effort::High] {
            assert_eq!(Effort::from_budget(effort.budget()), effort);
        }
        assert_eq!(Effort::from_budget(0), Effort::None);
        assert_eq!(Effort::parse("HIGH"), Some(Effort::High));
        assert_eq!(Effort::parse("extreme"), None);
        assert_eq!(Effort::Max.openai(), "xhigh");
    }
}
