//! Latency histograms and the percentiles reported from them.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest value a histogram holds; longer values are clamped (requests time out well before).
const MAX_NANOS: u64 = 120_000_000_000;

/// A histogram of nanoseconds with 3 significant digits: 1 µs resolution at 1 ms, enough for
/// sub-millisecond proxy overheads.
pub fn histogram() -> Histogram<u64> {
    // Bounds and precision are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_NANOS, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    record_nanos(h, u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
}

pub fn record_nanos(h: &mut Histogram<u64>, nanos: u64) {
    h.saturating_record(nanos.clamp(1, MAX_NANOS));
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |nanos: u64| nanos as f64 / 1e6;
        Percentiles {
            count: h.len(),
            mean_ms: h.mean() / 1e6,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_ms() {
        let mut h = histogram();
        for us in 1..=1000u64 {
            record(&mut h, Duration::from_micros(us));
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 0.5).abs() < 0.001, "{p:?}");
        assert!((p.p99_ms - 0.99).abs() < 0.001, "{p:?}");
        assert!((p.max_ms - 1.0).abs() < 0.001, "{p:?}");
        assert_eq!(Percentiles::of(&histogram()).count, 0);
    }
}
