//! A pool: the accounts of one policy and the selector that picks among them. One pool per
//! policy lives in a snapshot and keeps its selector state across requests; it is carried over
//! into the next snapshot when its shape is unchanged, so a swap elsewhere does not restart
//! its sequence.

use std::sync::Arc;

use loadwise_core::strategy::{
    MostAvailable, Random, RoundRobin, WeightedRandom, WeightedRoundRobin,
};
use loadwise_core::{Node, RateMetric, SelectionContext, Strategy as _, Weighted};

use crate::account::AccountKind;
use crate::session::SessionPolicy;
use crate::state::AccountState;
use crate::strategy::Strategy;

/// One account as a pool member.
pub struct Member {
    pub id: Arc<str>,
    pub kind: AccountKind,
    pub weight: u32,
    pub state: Arc<AccountState>,
    /// Position in the pool: the selectors' node id. A pool's membership never changes (a new
    /// membership is a new pool), so the position identifies the member and is far cheaper to
    /// fingerprint than the account id.
    slot: u32,
}

impl Member {
    pub fn new(id: Arc<str>, kind: AccountKind, weight: u32, state: Arc<AccountState>) -> Member {
        Member {
            id,
            kind,
            weight,
            state,
            slot: 0,
        }
    }
}

impl Node for Member {
    type Id = u32;

    fn id(&self) -> &u32 {
        &self.slot
    }
}

impl Weighted for Member {
    fn weight(&self) -> u32 {
        self.weight
    }
}

impl Weighted for &Member {
    fn weight(&self) -> u32 {
        self.weight
    }
}

impl RateMetric for Member {
    fn remaining_ratio(&self) -> f64 {
        self.state.remaining_ratio()
    }
}

impl RateMetric for &Member {
    fn remaining_ratio(&self) -> f64 {
        self.state.remaining_ratio()
    }
}

/// The `loadwise-core` strategy behind a pool, or ours for priority (first usable in order).
enum Selector {
    RoundRobin(RoundRobin),
    WeightedRoundRobin(WeightedRoundRobin),
    Random(Random),
    WeightedRandom(WeightedRandom),
    MostAvailable(MostAvailable),
    Priority,
}

pub struct Pool {
    /// The policy key this pool serves (`provider` or `provider/family`): where its sessions
    /// are bound.
    pub scope: Arc<str>,
    pub strategy: Strategy,
    /// How requests that belong to a session are spread.
    pub sessions: SessionPolicy,
    pub members: Vec<Member>,
    selector: Selector,
}

impl Pool {
    pub fn new(
        scope: Arc<str>,
        strategy: Strategy,
        sessions: SessionPolicy,
        mut members: Vec<Member>,
    ) -> Pool {
        for (slot, m) in members.iter_mut().enumerate() {
            m.slot = slot as u32;
        }
        let selector = match strategy {
            Strategy::RoundRobin => Selector::RoundRobin(RoundRobin::new()),
            Strategy::WeightedRoundRobin => Selector::WeightedRoundRobin(WeightedRoundRobin::new()),
            Strategy::Random => Selector::Random(Random::new()),
            Strategy::WeightedRandom => Selector::WeightedRandom(WeightedRandom::new()),
            Strategy::Priority => Selector::Priority,
            Strategy::MostAvailable => Selector::MostAvailable(MostAvailable::default()),
        };
        Pool {
            scope,
            strategy,
            sessions,
            members,
            selector,
        }
    }

    /// Pick a member that is eligible at `now` (ms) and not in `tried`.
    ///
    /// Stateful selectors (round-robin, smooth WRR) always see the full membership with the
    /// unusable members excluded for this pick only, so skipping an account never reshapes
    /// the others' sequence. Stateless ones (random, weighted random) choose among the usable
    /// members directly: the same distribution, without an exclusion list to search per
    /// candidate.
    pub fn pick(&self, now: u64, tried: &[usize]) -> Option<usize> {
        let usable = |i: usize| !tried.contains(&i) && self.members[i].state.is_eligible(now);
        match &self.selector {
            Selector::Priority => (0..self.members.len()).find(|&i| usable(i)),
            Selector::RoundRobin(s) => s.select(&self.members, &self.exclusions(usable)),
            Selector::WeightedRoundRobin(s) => s.select(&self.members, &self.exclusions(usable)),
            Selector::Random(s) => self.pick_among_usable(s, usable),
            Selector::WeightedRandom(s) => self.pick_among_usable(s, usable),
            Selector::MostAvailable(s) => {
                for m in &self.members {
                    m.state.refresh_remaining(now);
                }
                self.pick_among_usable(s, usable)
            }
        }
    }

    /// The unusable members as `loadwise-core`'s exclusion list; no list (and no allocation)
    /// when every member is usable.
    fn exclusions(&self, usable: impl Fn(usize) -> bool) -> SelectionContext {
        let n = self.members.len();
        let exclude = (0..n).position(|i| !usable(i)).map(|first| {
            let mut exclude = Vec::with_capacity(n - first);
            exclude.push(first);
            exclude.extend((first + 1..n).filter(|&i| !usable(i)));
            exclude
        });
        SelectionContext {
            exclude,
            ..SelectionContext::default()
        }
    }

    fn pick_among_usable<S>(&self, selector: &S, usable: impl Fn(usize) -> bool) -> Option<usize>
    where
        S: loadwise_core::Strategy<Member> + for<'a> loadwise_core::Strategy<&'a Member>,
    {
        // Each member is looked at once: the usable prefix is taken as is, the rest filtered
        // into a list sized for the worst case, so it never grows.
        let n = self.members.len();
        let Some(first) = (0..n).position(|i| !usable(i)) else {
            return selector.select(&self.members, &SelectionContext::default());
        };
        let mut candidates: Vec<&Member> = Vec::with_capacity(n - 1);
        candidates.extend(&self.members[..first]);
        candidates.extend(
            (first + 1..n)
                .filter(|&i| usable(i))
                .map(|i| &self.members[i]),
        );
        let chosen = selector.select(&candidates, &SelectionContext::default())?;
        candidates.get(chosen).map(|m| m.slot as usize)
    }

    /// Whether this pool has exactly this scope, strategy, session settings and members (id,
    /// weight) in order.
    pub fn has_shape(
        &self,
        scope: &str,
        strategy: Strategy,
        sessions: SessionPolicy,
        members: &[(&str, u32)],
    ) -> bool {
        &*self.scope == scope
            && self.strategy == strategy
            && self.sessions == sessions
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
    use crate::credential::Credential;
    use crate::secrets::Secret;

    fn pool(strategy: Strategy, weights: &[u32]) -> Pool {
        let members = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let state = Arc::new(AccountState::default());
                state.set_credential(Some(Credential::ApiKey(Secret::new("k"))));
                Member::new(Arc::from(format!("a{i}")), AccountKind::ApiKey, w, state)
            })
            .collect();
        Pool::new(
            Arc::from("anthropic"),
            strategy,
            SessionPolicy::default(),
            members,
        )
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
    fn random_never_picks_an_unusable_member() {
        for strategy in [Strategy::Random, Strategy::WeightedRandom] {
            let p = pool(strategy, &[1, 5, 1]);
            p.members[1]
                .state
                .record_cooldown(Some(10_000), "429".into(), 0);
            let seen: std::collections::HashSet<usize> =
                (0..200).map(|_| p.pick(1, &[2]).unwrap()).collect();
            assert_eq!(seen, [0].into(), "{strategy}");
        }
    }

    #[test]
    fn every_usable_member_stays_a_candidate() {
        // The usable members before and after the first unusable one are all chosen.
        for strategy in [
            Strategy::Random,
            Strategy::WeightedRandom,
            Strategy::WeightedRoundRobin,
        ] {
            let p = pool(strategy, &[1, 1, 1, 1, 1]);
            p.members[2]
                .state
                .record_cooldown(Some(10_000), "429".into(), 0);
            let seen: std::collections::BTreeSet<usize> =
                (0..400).map(|_| p.pick(1, &[4]).unwrap()).collect();
            assert_eq!(seen, [0, 1, 3].into(), "{strategy}");
        }
    }

    #[test]
    fn round_robin_skips_without_restarting() {
        let p = pool(Strategy::RoundRobin, &[1, 1, 1]);
        assert_eq!(p.pick(0, &[]), Some(0));
        // Member 1's turn is taken by the next in order when it was already tried.
        assert_eq!(p.pick(0, &[1]), Some(2));
        assert_eq!(p.pick(0, &[]), Some(2));
        assert_eq!(p.pick(0, &[]), Some(0));
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
