//! Conversations at scale: a session table holding [`MAX_SESSIONS`] live sessions (the most
//! it keeps), what one costs in memory, and what a request pays for its session's binding.
//!
//! - `sessions/choose`: `Sessions::choose` for a session already bound (the common request of
//!   a conversation), one bound but idle past the cache lifetime (where a move is considered),
//!   a new session (a pick plus the lookup that misses), and the bare `Pool::pick` it is set
//!   against, each with the table full.
//! - `sessions/bind`: recording that a bound session's request was answered.
//!
//! The memory per session is printed before the timings: the process's resident memory
//! before and after binding the table full, divided by the sessions bound.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use keyway_core::session::{
    KeySource, MAX_SESSIONS, Placement, SessionKey, SessionPolicy, Sessions,
};
use keyway_core::state::now_ms;
use keyway_core::{AccountKind, AccountState, Credential, Member, Pool, Secret, Strategy};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The accounts in the pool: a user with several subscriptions and keys.
const ACCOUNTS: usize = 4;
/// The provider's cache lifetime as the proxy passes it: 5 minutes.
const COLD_AFTER_MS: u64 = 5 * 60 * 1000;

fn pool() -> Pool {
    let members = (0..ACCOUNTS)
        .map(|i| {
            let state = Arc::new(AccountState::default());
            state.set_credential(Some(Credential::ApiKey(Secret::new("sk-bench"))));
            Member::new(
                Arc::from(format!("anthropic-{i:06x}")),
                AccountKind::ApiKey,
                1,
                state,
            )
        })
        .collect();
    Pool::new(
        Arc::from("anthropic"),
        Strategy::RoundRobin,
        SessionPolicy::default(),
        members,
    )
}

/// A session id as Claude Code sends one (a UUID's length).
fn key(i: usize) -> SessionKey {
    SessionKey::new(
        KeySource::ClaudeCodeSession,
        &format!("{i:08x}-6a1f-4c2e-9b7d-{i:012x}"),
    )
}

/// Resident memory of this process, bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn bench_sessions(c: &mut Criterion) {
    let pool = pool();
    let accounts: Vec<Arc<str>> = pool.members.iter().map(|m| m.id.clone()).collect();
    let keys: Vec<SessionKey> = (0..MAX_SESSIONS).map(key).collect();
    let sessions = Sessions::default();
    let now = now_ms();
    let before = rss_bytes();
    for (i, k) in keys.iter().enumerate() {
        let account = &accounts[i % ACCOUNTS];
        sessions.bind(
            &pool,
            k,
            account,
            Some("claude-cli/2.1.0"),
            Placement::Placed,
            now,
        );
    }
    let after = rss_bytes();
    println!(
        "sessions: {MAX_SESSIONS} bound, resident memory {:.1} MiB -> {:.1} MiB, {} bytes a session",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) / MAX_SESSIONS as u64
    );

    let mut group = c.benchmark_group("sessions");
    let mut i = 0usize;
    group.bench_function("choose/bound", |b| {
        b.iter(|| {
            i = (i + 7919) % MAX_SESSIONS;
            black_box(sessions.choose(&pool, &keys[i], now, &[], COLD_AFTER_MS))
        })
    });
    // Ten minutes on, every binding is past the cache lifetime but not expired: the session
    // may be moved to a better-placed account, which counts the live sessions per account.
    let later = now + 10 * 60 * 1000;
    group.bench_function("choose/bound_cold", |b| {
        b.iter(|| {
            i = (i + 7919) % MAX_SESSIONS;
            black_box(sessions.choose(&pool, &keys[i], later, &[], COLD_AFTER_MS))
        })
    });
    let fresh = key(MAX_SESSIONS + 1);
    group.bench_function("choose/new", |b| {
        b.iter(|| black_box(sessions.choose(&pool, &fresh, now, &[], COLD_AFTER_MS)))
    });
    group.bench_function("pick_alone", |b| b.iter(|| black_box(pool.pick(now, &[]))));
    group.bench_function("bind/bound", |b| {
        b.iter(|| {
            i = (i + 7919) % MAX_SESSIONS;
            sessions.bind(
                &pool,
                &keys[i],
                &accounts[i % ACCOUNTS],
                Some("claude-cli/2.1.0"),
                Placement::Stuck,
                now,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sessions);
criterion_main!(benches);
