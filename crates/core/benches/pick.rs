//! The pick path: one `Pool::pick` per iteration, for every strategy at pools of 1, 8 and 64
//! accounts, with every account eligible and with a quarter of them cooling down.
//!
//! `loadwise/*` measures `loadwise-core`'s own `select` at 64 plain nodes, called the way
//! `Pool::pick` calls it (stateful strategies: the whole pool with the cooling quarter
//! excluded; stateless ones: the eligible nodes only). It is the floor of a pick: what the
//! library costs before Keyway looks at a single account.
//!
//! Both run on the allocator the `keyway` binary ships with, since a pick with cooling
//! members allocates its candidate list.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use keyway_core::state::now_ms;
use keyway_core::{AccountKind, AccountState, Credential, Member, Pool, Secret, Strategy};
use loadwise_core::strategy::{
    MostAvailable, Random, RoundRobin, WeightedRandom, WeightedRoundRobin,
};
use loadwise_core::{Node, RateMetric, SelectionContext, Strategy as _, Weighted};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pool(strategy: Strategy, size: usize, cooling: bool) -> Pool {
    let now = now_ms();
    let members = (0..size)
        .map(|i| {
            let state = Arc::new(AccountState::default());
            state.set_credential(Some(Credential::ApiKey(Secret::new("sk-bench"))));
            if cooling && size > 1 && i % 4 == 1 {
                state.record_cooldown(Some(now + 3_600_000), "bench".into(), now);
            }
            Member::new(
                Arc::from(format!("anthropic-{i:06x}")),
                AccountKind::ApiKey,
                1 + (i as u32 % 3),
                state,
            )
        })
        .collect();
    Pool::new(
        Arc::from("anthropic"),
        strategy,
        keyway_core::session::SessionPolicy::default(),
        members,
    )
}

fn bench_pick(c: &mut Criterion) {
    for cooling in [false, true] {
        let mut group = c.benchmark_group(if cooling {
            "pick/cooling"
        } else {
            "pick/all_eligible"
        });
        for strategy in Strategy::ALL {
            for size in [1usize, 8, 64] {
                let p = pool(strategy, size, cooling);
                let now = now_ms();
                group.bench_with_input(BenchmarkId::new(strategy.as_str(), size), &size, |b, _| {
                    b.iter(|| black_box(p.pick(black_box(now), &[])))
                });
            }
        }
        group.finish();
    }
}

/// A bare node: what `loadwise-core` needs and nothing else.
struct Plain {
    id: u32,
    weight: u32,
    remaining: f64,
}

impl Node for Plain {
    type Id = u32;
    fn id(&self) -> &u32 {
        &self.id
    }
}

impl Weighted for Plain {
    fn weight(&self) -> u32 {
        self.weight
    }
}

impl RateMetric for Plain {
    fn remaining_ratio(&self) -> f64 {
        self.remaining
    }
}

fn bench_library(c: &mut Criterion) {
    const SIZE: u32 = 64;
    let nodes = |keep: &dyn Fn(u32) -> bool| -> Vec<Plain> {
        (0..SIZE)
            .filter(|&i| keep(i))
            .map(|i| Plain {
                id: i,
                weight: 1 + i % 3,
                remaining: f64::from(i % 10) / 10.0,
            })
            .collect()
    };
    let all = nodes(&|_| true);
    // The same quarter as `pool`: every fourth from the second.
    let eligible = nodes(&|i| i % 4 != 1);
    let cooling_excluded = SelectionContext {
        exclude: Some((0..SIZE as usize).filter(|i| i % 4 == 1).collect()),
        ..SelectionContext::default()
    };
    let none = SelectionContext::default();
    let (rr, wrr) = (RoundRobin::new(), WeightedRoundRobin::new());
    let (random, weighted, most) = (
        Random::new(),
        WeightedRandom::new(),
        MostAvailable::default(),
    );
    for cooling in [false, true] {
        let mut group = c.benchmark_group(if cooling {
            "loadwise/cooling"
        } else {
            "loadwise/all_eligible"
        });
        // Stateful: the whole pool, the cooling members excluded.
        let ctx = if cooling { &cooling_excluded } else { &none };
        group.bench_function(BenchmarkId::new("round_robin", SIZE), |b| {
            b.iter(|| black_box(rr.select(&all, ctx)))
        });
        group.bench_function(BenchmarkId::new("weighted_round_robin", SIZE), |b| {
            b.iter(|| black_box(wrr.select(&all, ctx)))
        });
        // Stateless: only the eligible nodes.
        let slice = if cooling { &eligible } else { &all };
        group.bench_function(BenchmarkId::new("random", SIZE), |b| {
            b.iter(|| black_box(random.select(slice, &none)))
        });
        group.bench_function(BenchmarkId::new("weighted_random", SIZE), |b| {
            b.iter(|| black_box(weighted.select(slice, &none)))
        });
        group.bench_function(BenchmarkId::new("most_available", SIZE), |b| {
            b.iter(|| black_box(most.select(slice, &none)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_pick, bench_library);
criterion_main!(benches);
