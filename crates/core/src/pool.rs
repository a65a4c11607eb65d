//! A pool: the accounts of one policy and the selector that picks among them. One pool per
//! policy lives in a snapshot and keeps its selector state across requests; it is carried over
//! into the next snapshot when its shape is unchanged, so a swap elsewhere does not restart
//! its sequence.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use loadwise_core::strategy::{
    LeastLoad, MostAvailable, Random, RoundRobin, WeightedRandom, WeightedRoundRobin,
};
use loadwise_core::{LoadMetric, Node, RateMetric, SelectionContext, Strategy as _, Weighted};

use crate::account::AccountKind;
use crate::limits::Hold;
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

/// `fastest` sends every this many-th pick (among sampled accounts) to the account measured
/// longest ago instead of the fastest: a slow account that has recovered is noticed, at a
/// cost of one request in this many.
pub const FASTEST_PROBE_EVERY: u64 = 10;

/// A member as `least_busy` weighs it: requests in flight per unit of weight (lower is
/// better). Equal ratios of small integers divide to the same `f64`, so ties are exact.
struct Busy<'a>(&'a Member);

impl LoadMetric for Busy<'_> {
    fn load_score(&self) -> f64 {
        f64::from(self.0.state.in_flight()) / f64::from(self.0.weight.max(1))
    }
}

/// A member as `fastest` weighs it: its average time to first byte (lower is better).
struct Latency<'a>(&'a Member);

impl LoadMetric for Latency<'_> {
    fn load_score(&self) -> f64 {
        self.0.state.ttfb_us().map_or(0.0, |us| us as f64)
    }
}

/// The `loadwise-core` strategy behind a pool, or ours for priority (first usable in order).
enum Selector {
    RoundRobin(RoundRobin),
    WeightedRoundRobin(WeightedRoundRobin),
    Random(Random),
    WeightedRandom(WeightedRandom),
    MostAvailable(MostAvailable),
    /// `LeastLoad` over [`Busy`], the members offered heaviest first (then in order), so
    /// that its first-wins tie-break prefers the higher weight, then the earlier member.
    LeastBusy {
        by_weight: Vec<usize>,
    },
    /// `LeastLoad` over [`Latency`], after accounts never measured, with a probe every
    /// [`FASTEST_PROBE_EVERY`] picks; `picks` counts the picks that could probe.
    Fastest {
        picks: AtomicU64,
    },
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
            Strategy::LeastBusy => {
                let mut by_weight: Vec<usize> = (0..members.len()).collect();
                // Stable: equal weights keep their order.
                by_weight.sort_by_key(|&i| std::cmp::Reverse(members[i].weight));
                Selector::LeastBusy { by_weight }
            }
            Strategy::Fastest => Selector::Fastest {
                picks: AtomicU64::new(0),
            },
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
            Selector::LeastBusy { by_weight } => {
                let candidates: Vec<Busy<'_>> = by_weight
                    .iter()
                    .filter(|&&i| usable(i))
                    .map(|&i| Busy(&self.members[i]))
                    .collect();
                let chosen = LeastLoad.select(&candidates, &SelectionContext::default())?;
                candidates.get(chosen).map(|b| b.0.slot as usize)
            }
            Selector::Fastest { picks } => self.pick_fastest(picks, usable),
        }
    }

    /// `fastest`: an account never measured first (in order), so every account gets a
    /// sample; otherwise the lowest average time to first byte (`LeastLoad`, ties in order),
    /// except that every [`FASTEST_PROBE_EVERY`]-th pick goes to the usable account whose last
    /// sample is oldest, so that a slow one that recovered is seen again.
    fn pick_fastest(&self, picks: &AtomicU64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let candidates: Vec<Latency<'_>> = (0..self.members.len())
            .filter(|&i| usable(i))
            .map(|i| Latency(&self.members[i]))
            .collect();
        if let Some(never) = candidates.iter().find(|c| c.0.state.ttfb_us().is_none()) {
            return Some(never.0.slot as usize);
        }
        let fastest = LeastLoad.select(&candidates, &SelectionContext::default())?;
        if candidates.len() > 1
            && (picks.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(FASTEST_PROBE_EVERY)
        {
            let stalest = candidates
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != fastest)
                .min_by_key(|(_, c)| c.0.state.ttfb_sampled_at())
                .map(|(_, c)| c.0.slot as usize);
            if stalest.is_some() {
                return stalest;
            }
        }
        candidates.get(fastest).map(|c| c.0.slot as usize)
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

    /// The earliest instant (ms) a member that is only waiting (cooling down, or held by a
    /// limit) can serve again.
    pub fn soonest_ready(&self, now: u64) -> Option<u64> {
        self.members
            .iter()
            .filter_map(|m| m.state.waits_until(now))
            .min()
    }

    /// A member held by one of its limits at `now`, and the limit: the one free soonest.
    pub fn held(&self, now: u64) -> Option<(&Member, Hold)> {
        self.members
            .iter()
            .filter(|m| m.state.cooling_until(now).is_none())
            .filter_map(|m| m.state.hold(now).map(|h| (m, h)))
            .min_by_key(|(_, h)| h.until_ms(now))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::credential::Credential;
    use crate::secrets::Secret;
    use crate::state::LiveState;

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
    fn least_busy_follows_in_flight_per_weight_with_ties_to_the_heavier_then_the_first() {
        let p = pool(Strategy::LeastBusy, &[1, 3, 1]);
        let mut held = Vec::new();
        let mut order = Vec::new();
        // Every pick starts a request that stays in flight.
        for _ in 0..10 {
            let i = p.pick(0, &[]).unwrap();
            held.push(p.members[i].state.try_begin(0).unwrap());
            order.push(i);
        }
        // All idle: the heavier wins the tie. Then the idle ones in order, then the heavy one
        // until it carries as much per weight as they do (1 = 3/3 = 1/1), where it wins the
        // tie again: 6:2:2 of ten, exactly the weights' shares.
        assert_eq!(order, [1, 0, 2, 1, 1, 1, 0, 2, 1, 1]);
        let count = |m: usize| order.iter().filter(|&&i| i == m).count();
        assert_eq!((count(0), count(1), count(2)), (2, 6, 2));
        // A request ending frees its account first.
        drop(held.remove(1));
        assert_eq!(p.pick(0, &[]), Some(0));
        // Unusable members are passed over.
        p.members[1]
            .state
            .record_cooldown(Some(10_000), "429".into(), 0);
        assert_eq!(p.pick(1, &[0]), Some(2));
    }

    #[test]
    fn fastest_measures_every_account_then_prefers_the_fastest_and_probes_the_others() {
        let p = pool(Strategy::Fastest, &[1, 1, 1]);
        let ms = Duration::from_millis;
        // Never measured: tried first, in order.
        assert_eq!(p.pick(0, &[]), Some(0));
        p.members[0].state.record_latency(ms(300), 1);
        assert_eq!(p.pick(0, &[]), Some(1));
        p.members[1].state.record_latency(ms(20), 2);
        assert_eq!(p.pick(0, &[]), Some(2));
        p.members[2].state.record_latency(ms(100), 3);
        // Then the fastest, with every tenth pick probing the one measured longest ago.
        let picks: Vec<usize> = (0..20).map(|_| p.pick(0, &[]).unwrap()).collect();
        let mut expected = vec![1; 20];
        expected[9] = 0;
        expected[19] = 0;
        assert_eq!(picks, expected);
        // A probe's sample is taken in; the account measured longest ago is probed next.
        p.members[0].state.record_latency(ms(300), 4);
        let picks: Vec<usize> = (0..10).map(|_| p.pick(0, &[]).unwrap()).collect();
        assert_eq!(picks[9], 2, "{picks:?}");
        // One that recovered wins once its average is below the others' (EWMA, α = 1/5).
        for t in 5..20 {
            p.members[0].state.record_latency(ms(5), t);
        }
        assert_eq!(p.pick(0, &[]), Some(0));
        assert!(p.members[0].state.ttfb_us().unwrap() < 20_000);
        // The fastest cooling down: the next fastest.
        p.members[0]
            .state
            .record_cooldown(Some(10_000), "429".into(), 0);
        assert_eq!(p.pick(1, &[]), Some(1));
    }

    #[test]
    fn time_to_first_byte_is_an_ewma_clamped_to_sane_values() {
        let s = AccountState::default();
        assert_eq!(s.ttfb_us(), None);
        s.record_latency(Duration::from_millis(100), 1);
        assert_eq!(
            s.ttfb_us(),
            Some(100_000),
            "the first sample is the average"
        );
        s.record_latency(Duration::from_millis(200), 2);
        assert_eq!(
            s.ttfb_us(),
            Some(120_000),
            "a fifth of the way to the new sample"
        );
        s.record_latency(Duration::MAX, 3);
        assert_eq!(s.ttfb_us(), Some((4 * 120_000 + 600_000_000) / 5));
        s.record_latency(Duration::ZERO, 4);
        assert!(s.ttfb_us().unwrap() > 0, "never back to 'no sample'");
        assert_eq!(s.ttfb_sampled_at(), 4);
    }

    #[test]
    fn every_strategy_skips_a_member_at_a_limit() {
        use crate::limits::AccountLimits;
        use crate::quota::QuotaWindow;
        for strategy in Strategy::ALL {
            let p = pool(strategy, &[1, 1]);
            // Member 0 has one request in flight of one allowed: every pick is member 1.
            p.members[0].state.set_limits(&AccountLimits {
                max_concurrent: Some(1),
                ..AccountLimits::default()
            });
            let busy = p.members[0].state.try_begin(0).unwrap();
            assert!(
                (0..20).all(|_| p.pick(0, &[]) == Some(1)),
                "{strategy}: max_concurrent"
            );
            assert_eq!(
                p.members[0].state.try_begin(0).err(),
                Some(Hold::Busy { max_concurrent: 1 })
            );
            drop(busy);

            // Member 1 announced 0 requests left until a reset an hour ahead.
            let now = crate::state::now_ms();
            p.members[1].state.record_quota(vec![QuotaWindow {
                name: "requests".into(),
                used_percent: 100.0,
                resets_at: Some(now / 1000 + 3600),
                rejected: true,
            }]);
            assert!(
                (0..20).all(|_| p.pick(now, &[]) == Some(0)),
                "{strategy}: exhausted"
            );
            assert!(matches!(
                p.members[1].state.hold(now),
                Some(Hold::Exhausted { .. })
            ));
            assert_eq!(p.pick(now, &[0]), None);
            assert_eq!(p.soonest_ready(now), Some((now / 1000 + 3600) * 1000));
        }
    }

    #[test]
    fn rpm_holds_the_member_until_its_minute_ends() {
        use crate::limits::AccountLimits;
        use crate::meter::MINUTE_MS;
        let p = pool(Strategy::Priority, &[1, 1]);
        p.members[0].state.set_limits(&AccountLimits {
            rpm: Some(2),
            tpm: Some(1000),
            ..AccountLimits::default()
        });
        let t0 = 1_000_000;
        for t in [t0, t0 + 1] {
            assert_eq!(p.pick(t, &[]), Some(0));
            p.members[0].state.try_begin(t).unwrap().finish(10, t);
        }
        assert_eq!(p.pick(t0 + 2, &[]), Some(1), "two sent this minute");
        let held = p.held(t0 + 2).map(|(m, h)| (m.id.to_string(), h));
        assert_eq!(
            held,
            Some((
                "a0".to_owned(),
                Hold::Rpm {
                    rpm: 2,
                    until_ms: t0 + MINUTE_MS
                }
            ))
        );
        assert_eq!(p.members[0].state.status(t0 + 2).state, LiveState::Limited);
        assert_eq!(p.pick(t0 + MINUTE_MS, &[]), Some(0), "a new minute");
        // tpm: counted when answers end.
        let t1 = t0 + MINUTE_MS;
        p.members[0]
            .state
            .try_begin(t1)
            .unwrap()
            .finish(1000, t1 + 1);
        assert!(matches!(
            p.members[0].state.hold(t1 + 2),
            Some(Hold::Tpm { tpm: 1000, .. })
        ));
        assert_eq!(p.pick(t1 + 2, &[]), Some(1));
        let status = p.members[0].state.status(t1 + 2);
        assert_eq!((status.minute_requests, status.minute_tokens), (1, 1000));
        assert_eq!(p.pick(t1 + MINUTE_MS, &[]), Some(0));
        // Cleared: no hold.
        p.members[0].state.set_limits(&AccountLimits::default());
        assert_eq!(p.members[0].state.hold(t1 + 3), None);
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
