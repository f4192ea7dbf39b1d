//! Confidence intervals for percentiles that stay honest when latencies are correlated in
//! time — and they nearly always are: a slow second makes many slow requests, so the
//! i.i.d. order-statistic interval (binomial variance `q(1−q)/n`) is too narrow.
//!
//! Method: batch means on the CDF at the estimate (batching for quantiles; Law & Kelton,
//! *Simulation Modeling and Analysis*, ch. 9). The run is cut into consecutive time slots
//! by completion time (100 ms at first); each slot keeps a coarse histogram. At the end,
//! for percentile q with whole-run estimate x̂ (from the exact HDR histogram), each slot's
//! share of values ≤ x̂ is a batch estimate of F(x̂); the spread of those shares between
//! slots, weighted by their counts, gives the variance of the whole run's F(x̂) — including
//! whatever correlation lasts shorter than a slot. The interval is the HDR histogram's
//! values at q ∓ t·se (Student's t with slots−1 degrees of freedom), never narrower than
//! half the binomial one. (A slot's coarse bucket holding x̂ is split by the share of it
//! below x̂ in the exact histogram, and that split's binomial variance added.) (a guard against slots that happen to agree exactly). Where fewer than `needed(q)` values were recorded (too few above the
//! percentile), there is no interval.
//!
//! Memory is flat in run length: past `MAX_SLOTS` slots, neighbours merge pairwise and the
//! slot width doubles (so a run has 32–64 slots once it is longer than 3.2 s), each slot a
//! histogram of 976 counters (log2 buckets split 16 ways: values within 4.4 %).
//!
//! Used by `record::Recorder` (recording, merging threads) and `report` (the intervals).

use super::histogram::{percentile, Hist};

/// The first slot width, ns.
pub const SLOT0_NS: u64 = 100_000_000;
/// The most slots kept before they merge pairwise.
pub const MAX_SLOTS: usize = 64;
/// Coarse buckets: values 0–15 exactly, then 16 per power of two up to 2⁶³.
const BUCKETS: usize = 976;

/// A distribution cut into time slots (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batches {
    /// Slot width in units of `SLOT0_NS` (a power of two; 0 before the first value).
    width: u64,
    /// Each slot's coarse histogram (empty until a value falls in it) and its count.
    slots: Vec<(Vec<u32>, u64)>,
}

/// The coarse bucket of `v`.
fn bucket(v: u64) -> usize {
    if v < 16 {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros() as usize; // ≥ 4
    let sub = ((v >> (msb - 4)) & 0xf) as usize;
    (msb - 3) * 16 + sub
}

/// The smallest value of bucket `i` (`u64::MAX` past the last).
fn lower(i: usize) -> u64 {
    if i < 16 {
        return i as u64;
    }
    if i >= BUCKETS {
        return u64::MAX;
    }
    let msb = i / 16 + 3;
    ((16 + (i % 16)) as u64) << (msb - 4)
}

impl Batches {
    /// Records `v` (µs) completed `at_ns` after the start of the run.
    pub fn record(&mut self, at_ns: u64, v: u64) {
        self.record_n(at_ns, v, 1);
    }

    /// Records `k` values `v`.
    fn record_n(&mut self, at_ns: u64, v: u64, k: u64) {
        if self.width == 0 {
            self.width = 1;
        }
        let slot0 = at_ns / SLOT0_NS;
        while slot0 / self.width >= MAX_SLOTS as u64 {
            self.coarsen();
        }
        let i = (slot0 / self.width) as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || (Vec::new(), 0));
        }
        let (counts, n) = &mut self.slots[i];
        if counts.is_empty() {
            counts.resize(BUCKETS, 0);
        }
        counts[bucket(v)] += k as u32;
        *n += k;
    }

    /// Records every value of `h` (µs) as completed `at_ns` after the start (a second of
    /// an interval log).
    pub fn record_hist(&mut self, at_ns: u64, h: &Hist) {
        for v in h.iter_recorded() {
            let value = h.highest_equivalent(v.value_iterated_to());
            self.record_n(at_ns, value, v.count_at_value());
        }
    }

    /// Doubles the slot width, merging neighbours.
    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.slots);
        let mut it = old.into_iter();
        while let Some(mut a) = it.next() {
            if let Some(b) = it.next() {
                add_slot(&mut a, &b);
            }
            self.slots.push(a);
        }
        self.width *= 2;
    }

    /// Adds another thread's batches (the same run's clock).
    pub fn merge(&mut self, other: &Batches) {
        if other.width == 0 {
            return;
        }
        let mut other = other.clone();
        if self.width == 0 {
            *self = other;
            return;
        }
        while self.width < other.width {
            self.coarsen();
        }
        while other.width < self.width {
            other.coarsen();
        }
        if self.slots.len() < other.slots.len() {
            self.slots
                .resize_with(other.slots.len(), || (Vec::new(), 0));
        }
        for (a, b) in self.slots.iter_mut().zip(&other.slots) {
            add_slot(a, b);
        }
    }

    /// Slots with values in them: the batches.
    pub fn batches(&self) -> usize {
        self.slots.iter().filter(|s| s.1 > 0).count()
    }

    /// The slot width, seconds.
    pub fn width_s(&self) -> f64 {
        (self.width * SLOT0_NS) as f64 / 1e9
    }

    /// Each non-empty slot's count, its count of values below coarse bucket `b`, and its
    /// count in bucket `b`.
    fn split_at(&self, b: usize) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.1 > 0)
            .map(move |(counts, n)| {
                let full: u64 = counts[..b].iter().map(|&c| u64::from(c)).sum();
                (*n as f64, full as f64, f64::from(counts[b]))
            })
    }
}

fn add_slot(a: &mut (Vec<u32>, u64), b: &(Vec<u32>, u64)) {
    if b.1 == 0 {
        return;
    }
    if a.0.is_empty() {
        a.0.resize(BUCKETS, 0);
    }
    for (x, y) in a.0.iter_mut().zip(&b.0) {
        *x += y;
    }
    a.1 += b.1;
}

/// The fewest values an interval for quantile `q` needs: 10 above it (and at least 20).
pub fn needed(q: f64) -> u64 {
    // (The tail share rounded first: 99.999 / 100 is not exactly 0.99999.)
    let tail = ((1.0 - q) * 1e12).round() / 1e12;
    ((10.0 / tail - 1e-6).ceil() as u64).max(20)
}

/// Student's t 97.5 % quantile with `dof` degrees of freedom.
pub fn t975(dof: usize) -> f64 {
    const SMALL: [f64; 5] = [f64::INFINITY, 12.706, 4.303, 3.182, 2.776];
    if dof < SMALL.len() {
        return SMALL[dof];
    }
    // Cornish–Fisher expansion around the normal's 1.96 (within 0.002 from 5 on).
    let (z, v) = (1.959_964f64, dof as f64);
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
}

/// The 95 % interval of quantile `q` (0–1) of the run whose exact histogram is `hist` and
/// batches `batches`, as (low, high) values of `hist` — or `Err(n)`: it needs at least `n`
/// values; `Err(0)`: the values were not kept in time slots (a distribution rebuilt from
/// logs without them), so no honest interval can be given.
pub fn interval(hist: &Hist, batches: &Batches, q: f64) -> Result<(u64, u64), u64> {
    let n = hist.len();
    let need = needed(q);
    if n < need {
        return Err(need);
    }
    if batches.batches() == 0 {
        return Err(0);
    }
    let x = percentile(hist, q * 100.0);
    let nf = n as f64;
    let binomial = q * (1.0 - q) / nf;
    // A slot knows only how many of its values fell in x's coarse bucket, not how many of
    // those are ≤ x; the run's exact histogram says which share of the bucket is (its
    // bucket edges are the HDR histogram's). A slot's count at x is then estimated as its
    // count below the bucket plus that share of its bucket, and the part of the variance
    // this hides — which of a bucket's values lie below x, binomial given the bucket's
    // count — is added back (without it, the p99 of uniform 10–30 ms values covered 91 %).
    // Spreading a bucket evenly instead is right only where values are even within it.
    let cb = bucket(x);
    let top = lower(cb + 1).saturating_sub(1);
    let in_bucket = hist.count_between(lower(cb), top.max(lower(cb)));
    let share = if in_bucket == 0 {
        0.5
    } else {
        (hist.count_between(lower(cb), x) as f64 / in_bucket as f64).min(1.0)
    };
    let slots: Vec<(f64, f64, f64)> = batches.split_at(cb).collect();
    let b = slots.len();
    let (var, t) = if b >= 5 {
        let total: f64 = slots.iter().map(|s| s.0).sum();
        let at_x = |s: &(f64, f64, f64)| s.1 + share * s.2;
        let p = slots.iter().map(at_x).sum::<f64>() / total;
        let spread: f64 = slots.iter().map(|s| (at_x(s) - p * s.0).powi(2)).sum();
        let within: f64 = slots.iter().map(|s| s.2).sum::<f64>() * share * (1.0 - share);
        let var = (b as f64 / (b as f64 - 1.0) * spread + within) / (total * total);
        // The batch estimate as it is: flooring it at the binomial variance would make
        // independent values' intervals conservative (97–99 % coverage, not 95 %). The
        // guard only keeps an interval from collapsing when few values lie above the
        // percentile and every slot happens to hold the same share.
        (var.max(binomial / 4.0), t975(b - 1))
    } else {
        // Too short to see dependence (under half a second): the binomial interval.
        (binomial, 1.959_964)
    };
    let d = t * var.sqrt();
    let lo = percentile(hist, ((q - d) * 100.0).max(0.0));
    let hi = percentile(hist, ((q + d) * 100.0).min(100.0));
    Ok((lo.min(x), hi.max(x)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::histogram::{new_hist, record};
    use std::time::Duration;

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        let mut last = 0;
        for v in (0..5000u64).chain([1 << 20, 1 << 40, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= last && b < BUCKETS, "{v} → {b}");
            assert!(
                lower(b) <= v && (b + 1 >= BUCKETS || v < lower(b + 1)),
                "{v}"
            );
            last = b;
        }
    }

    #[test]
    fn slots_merge_and_memory_stays_flat() {
        let mut a = Batches::default();
        for i in 0..100_000u64 {
            a.record(i * 1_000_000, 100); // 100 s, 1000/s
        }
        assert!(a.slots.len() <= MAX_SLOTS && a.batches() >= MAX_SLOTS / 2);
        assert_eq!(a.slots.iter().map(|s| s.1).sum::<u64>(), 100_000);
        let mut b = Batches::default();
        b.record(0, 5);
        b.merge(&a);
        assert_eq!(b.slots.iter().map(|s| s.1).sum::<u64>(), 100_001);
    }

    /// xorshift, for repeatable samples.
    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        fn exp(&mut self, mean: f64) -> f64 {
            -mean * (1.0 - self.unit()).ln()
        }
    }

    /// How often the 95 % intervals of p50 and p99 contain the true value over `reps` runs
    /// of `n` requests at 1000/s, each latency from `sample(rng, t_seconds)`.
    /// (`batched` false: no batches, so the i.i.d. binomial interval.)
    fn coverage(
        reps: usize,
        n: u64,
        truth: [f64; 2],
        batched: bool,
        mut sample: impl FnMut(&mut Rng, f64) -> f64,
    ) -> [f64; 2] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut hit = [0usize; 2];
        for _ in 0..reps {
            let mut h = new_hist();
            let mut b = Batches::default();
            for i in 0..n {
                let t = i as f64 / 1000.0;
                let us = sample(&mut rng, t).max(1.0) as u64;
                record(&mut h, Duration::from_micros(us));
                // (Unbatched: one slot, so the i.i.d. binomial interval.)
                b.record(if batched { (t * 1e9) as u64 } else { 0 }, us);
            }
            for (k, q) in [0.5, 0.99].into_iter().enumerate() {
                let (lo, hi) = interval(&h, &b, q).unwrap();
                // (The HDR histogram keeps 3 significant digits and `percentile` gives a
                // bucket's top: the truth is compared as the histogram would report it.)
                let truth = h.highest_equivalent(truth[k] as u64);
                if lo <= truth && truth <= hi {
                    hit[k] += 1;
                }
            }
        }
        hit.map(|h| h as f64 / reps as f64)
    }

    #[test]
    fn intervals_cover_the_truth_for_independent_latencies() {
        // Exponential service times, mean 1 ms: p50 = ln 2 ms, p99 = ln 100 ms. 300 runs of
        // 10 s at 1000/s; a 95 % interval must cover the truth in 88–99 % of them.
        let truth = [1000.0 * 2f64.ln(), 1000.0 * 100f64.ln()];
        let c = coverage(300, 10_000, truth, true, |r, _| r.exp(1000.0));
        eprintln!("independent: coverage p50 {:.3}, p99 {:.3}", c[0], c[1]);
        for (k, c) in c.iter().enumerate() {
            assert!((0.88..=0.99).contains(c), "p{} coverage {c}", [50, 99][k]);
        }
    }

    #[test]
    fn intervals_cover_the_truth_when_the_tail_ends_inside_a_coarse_bucket() {
        // Uniform 10–30 ms, 1 s at 1000/s (as the calibration test against `serve`): the
        // p99 (29.8 ms) lies in the coarse bucket 28.7–30.7 ms, which is empty above 30 ms.
        // Which of a slot's bucket values lie below p99 is not known to the slot; the
        // interval must count that uncertainty (without it: 91 %). 2,000 runs: ±1 % is two
        // standard errors; an order-statistic interval rounds outward to whole ranks, which
        // with ~10 values above p99 adds up to a couple of points.
        let truth = [20_000.0, 29_800.0];
        let c = coverage(2000, 1000, truth, true, |r, _| {
            10_000.0 + 20_000.0 * r.unit()
        });
        eprintln!("uniform: coverage p50 {:.3}, p99 {:.3}", c[0], c[1]);
        for (k, c) in c.iter().enumerate() {
            assert!((0.93..=0.98).contains(c), "p{} coverage {c}", [50, 99][k]);
        }
    }

    #[test]
    fn intervals_cover_the_truth_when_latencies_come_in_bursts() {
        // 1 ms exponential, but each 200 ms window is, with probability 0.1, slow: every
        // request in it takes 20 ms more — correlated in time, ~200 requests at once. The
        // i.i.d. interval misses p99 far more often than 5 %; batch means must not.
        // Truth: F(x) = 0.9·(1 − e^−x) + 0.1·(1 − e^−(x−20)) in ms, so p50 = ln 2.25 ms and
        // p99 = 20 + ln 10 ms.
        let truth = [1000.0 * 2.25f64.ln(), 1000.0 * (20.0 + 10f64.ln())];
        let bursty = || {
            let (mut window, mut slow, mut last_t) = (u64::MAX, false, f64::MAX);
            move |r: &mut Rng, t: f64| {
                if t < last_t {
                    window = u64::MAX; // a new run
                }
                last_t = t;
                let w = (t / 0.2) as u64;
                if w != window {
                    window = w;
                    slow = r.unit() < 0.1;
                }
                r.exp(1000.0) + if slow { 20_000.0 } else { 0.0 }
            }
        };
        let c = coverage(300, 10_000, truth, true, bursty());
        eprintln!("bursts: coverage p50 {:.3}, p99 {:.3}", c[0], c[1]);
        for (k, c) in c.iter().enumerate() {
            assert!((0.88..=0.99).contains(c), "p{} coverage {c}", [50, 99][k]);
        }
        // The i.i.d. interval on the same runs: far too narrow for p99.
        let iid = coverage(300, 10_000, truth, false, bursty());
        eprintln!(
            "bursts, i.i.d. interval: coverage p50 {:.3}, p99 {:.3}",
            iid[0], iid[1]
        );
        assert!(iid[1] < 0.7, "i.i.d. p99 coverage {}", iid[1]);
    }
}
