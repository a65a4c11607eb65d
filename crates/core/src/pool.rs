//! A pool: the accounts of one policy and the selector that picks among them. One pool per
//! policy lives in a snapshot and keeps its selector state across requests; it is carried over
//! into the next snapshot when its shape is unchanged, so a swap elsewhere does not restart
//! its sequence.

use std::sync::Arc;

use loadwise_core::strategy::{Random, RoundRobin, WeightedRandom, WeightedRoundRobin};
use loadwise_core::{Node, SelectionContext, Weighted};

use crate::state::AccountState;
use crate::strategy::Strategy;

/// One account as a pool member.
pub struct Member {
    pub id: Arc<str>,
    pub weight: u32,
    pub state: Arc<AccountState>,
}

impl Node for Member {
    type Id = Arc<str>;

    fn id(&self) -> &Arc<str> {
        &self.id
    }
}

impl Weighted for Member {
    fn weight(&self) -> u32 {
        self.weight
    }
}

/// First eligible member in configured order.
struct Priority;

impl<N> loadwise_core::Strategy<N> for Priority {
    fn select(&self, candidates: &[N], ctx: &SelectionContext) -> Option<usize> {
        (0..candidates.len()).find(|&i| !ctx.is_excluded(i))
    }
}

pub struct Pool {
    pub strategy: Strategy,
    pub members: Vec<Member>,
    selector: Box<dyn loadwise_core::Strategy<Member>>,
}

impl Pool {
    pub fn new(strategy: Strategy, members: Vec<Member>) -> Pool {
        let selector: Box<dyn loadwise_core::Strategy<Member>> = match strategy {
            Strategy::RoundRobin => Box::new(RoundRobin::new()),
            Strategy::WeightedRoundRobin => Box::new(WeightedRoundRobin::new()),
            Strategy::Random => Box::new(Random::new()),
            Strategy::WeightedRandom => Box::new(WeightedRandom::new()),
            Strategy::Priority => Box::new(Priority),
        };
        Pool {
            strategy,
            members,
            selector,
        }
    }

    /// Pick a member that is eligible at `now` (ms) and not in `tried`. Ineligible members
    /// are excluded for this pick only; the selector's state for the others is untouched.
    pub fn pick(&self, now: u64, tried: &[usize]) -> Option<usize> {
        let excluded = |i: usize| tried.contains(&i) || !self.members[i].state.is_eligible(now);
        let ctx = if (0..self.members.len()).any(excluded) {
            SelectionContext {
                exclude: Some((0..self.members.len()).filter(|&i| excluded(i)).collect()),
                ..SelectionContext::default()
            }
        } else {
            SelectionContext::default()
        };
        self.selector.select(&self.members, &ctx)
    }

    /// Whether this pool has exactly this strategy and these members (id, weight) in order.
    pub fn has_shape(&self, strategy: Strategy, members: &[(&str, u32)]) -> bool {
        self.strategy == strategy
            && self.members.len() == members.len()
            && self
                .members
                .iter()
                .zip(members)
                .all(|(m, (id, w))| &*m.id == *id && m.weight == *w)
    }

    /// The earliest end (ms) of a cooldown among members that are only cooling down.
    pub fn soonest_ready(&self, now: u64) -> Option<u64> {
        self.members
            .iter()
            .filter_map(|m| m.state.cooling_until(now))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    fn pool(strategy: Strategy, weights: &[u32]) -> Pool {
        let members = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let state = Arc::new(AccountState::default());
                state.set_credential(Some(Secret::new("k")));
                Member {
                    id: Arc::from(format!("a{i}")),
                    weight: w,
                    state,
                }
            })
            .collect();
        Pool::new(strategy, members)
    }

    fn picks(p: &Pool, n: usize) -> Vec<usize> {
        (0..n).map(|_| p.pick(0, &[]).unwrap()).collect()
    }

    #[test]
    fn round_robin_cycles_in_order() {
        assert_eq!(
            picks(&pool(Strategy::RoundRobin, &[1, 1, 1]), 6),
            [0, 1, 2, 0, 1, 2]
        );
    }

    #[test]
    fn smooth_wrr_interleaves() {
        // nginx's smooth WRR for 5,1,1: a a b a c a a
        assert_eq!(
            picks(&pool(Strategy::WeightedRoundRobin, &[5, 1, 1]), 7),
            [0, 0, 1, 0, 2, 0, 0]
        );
    }

    #[test]
    fn priority_takes_first_eligible() {
        let p = pool(Strategy::Priority, &[1, 1, 1]);
        assert_eq!(p.pick(0, &[]), Some(0));
        assert_eq!(p.pick(0, &[0]), Some(1));
        p.members[1]
            .state
            .record_cooldown(Some(10_000), "429".into(), 0);
        assert_eq!(p.pick(1, &[0]), Some(2));
        assert_eq!(p.soonest_ready(1), Some(10_000));
        assert_eq!(p.pick(0, &[0, 1, 2]), None);
    }
}
