//! The HDR histogram settings, in one place: microseconds from 1 µs to 1 hour, 3
//! significant digits (every value within 0.1 %), fixed size so memory never grows.
//!
//! Used by `record` and by every reporter that builds or merges histograms.

use hdrhistogram::Histogram;
use std::time::Duration;

/// The largest value recorded: one hour, in microseconds. Larger values are clamped.
pub const MAX_US: u64 = 3_600_000_000;

/// Significant decimal digits kept for every value.
pub const SIGFIGS: u8 = 3;

/// A latency histogram in microseconds.
pub type Hist = Histogram<u64>;

/// A new empty latency histogram with the project's settings.
pub fn new_hist() -> Hist {
    Histogram::new_with_bounds(1, MAX_US, SIGFIGS).expect("valid fixed HDR bounds")
}

/// Records `d` in `h` in microseconds (rounded to the nearest µs, clamped to the range).
pub fn record(h: &mut Hist, d: Duration) {
    h.saturating_record(micros(d));
}

/// `d` in whole µs (rounded), as histograms record it.
pub fn micros(d: Duration) -> u64 {
    ((d.as_nanos() + 500) / 1000).min(MAX_US as u128) as u64
}

/// The value at percentile `p` (0–100) of `h`: the smallest recorded value (as the top of
/// its 0.1 % bucket) with at least ⌈p/100 · n⌉ values at or below it.
///
/// Unlike `value_at_percentile`, the rank is computed with a tolerance for binary floating
/// point: 99.9 % of 1000 values is the 999th value, not (via 0.9990000000000001 · 1000)
/// the 1000th. Reports, thresholds and merges all use this one definition.
pub fn percentile(h: &Hist, p: f64) -> u64 {
    if h.is_empty() {
        return 0;
    }
    if p <= 0.0 {
        return h.min();
    }
    let n = h.len();
    let exact = p.min(100.0) / 100.0 * n as f64;
    let rank = ((exact - exact * 1e-12).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        if seen >= rank {
            return h.highest_equivalent(v.value_iterated_to());
        }
    }
    h.max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_ranks_are_exact() {
        let mut h = new_hist();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        // Values 1..=1000 µs (all exact below 2048): p% is the value ⌈p·10⌉.
        assert_eq!(percentile(&h, 50.0), 500);
        assert_eq!(percentile(&h, 99.0), 990);
        assert_eq!(percentile(&h, 99.9), 999); // value_at_percentile says 1000
        assert_eq!(percentile(&h, 99.95), 1000);
        assert_eq!(percentile(&h, 100.0), 1000);
        assert_eq!(percentile(&h, 0.0), 1);
        assert_eq!(percentile(&h, 0.01), 1);
        assert_eq!(percentile(&new_hist(), 99.0), 0);
    }
}
