//! Ids and timestamps for translated answers.
//!
//! Each surface has its own id shapes (`msg_…`, `chatcmpl-…`, `resp_…`, `call_…`); they only
//! need to be unique, so a 20-character token from a per-process random seed and a counter is
//! enough, with no random-number crate and no system call per id.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static SEED: LazyLock<u64> = LazyLock::new(|| {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
});

static COUNTER: AtomicU64 = AtomicU64::new(0);

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A fresh 20-character alphanumeric token.
pub fn token() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut a = mix(*SEED ^ n);
    let mut b = mix(a ^ n.rotate_left(32));
    let mut out = String::with_capacity(20);
    for i in 0..20 {
        let word = if i < 10 { &mut a } else { &mut b };
        out.push(ALPHABET[(*word % 62) as usize] as char);
        *word /= 62;
    }
    out
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// SplitMix64's finaliser: spreads a counter over all bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_alphanumeric() {
        let a = token();
        let b = token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
