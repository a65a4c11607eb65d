//! The pick path: one `Pool::pick` per iteration, for every strategy at pools of 1, 8 and 64
//! accounts, with every account eligible and with a quarter of them cooling down.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use keyway_core::state::now_ms;
use keyway_core::{AccountKind, AccountState, Credential, Member, Pool, Secret, Strategy};

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
    Pool::new(strategy, members)
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

criterion_group!(benches, bench_pick);
criterion_main!(benches);
