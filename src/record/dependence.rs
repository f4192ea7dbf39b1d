//! How dependent consecutive latencies are: the rank autocorrelation of corrected latency
//! in send order, on a bounded sample (constant memory).
//!
//! Each thread cuts its requests, in completion order, into blocks of `BLOCK` consecutive
//! ones and keeps a uniform sample of `KEPT` whole blocks (reservoir sampling over blocks:
//! Vitter's algorithm R), so pairs `lag` apart inside a block are pairs the run really had.
//! At the end the blocks of every thread are pooled; within each block, requests are put in
//! send (intended) order; latencies are replaced by their ranks in the pooled sample
//! (Spearman's ρ: robust to the tail's scale), and the correlation of ranks `lag` apart is
//! computed for lags 1 … `BLOCK`/2. The lag at which it fades is the first lag whose ρ is
//! below `FADED` (0.1).
//!
//! A high lag-1 ρ is why the i.i.d. interval would be too narrow: the confidence
//! intervals (`batches`) measure the dependence instead of assuming independence.
//!
//! Used by `record::Recorder` (sampling, merging) and `report` (the Dependence line).

/// Requests per block.
pub const BLOCK: usize = 256;
/// Blocks kept per thread.
const KEPT: usize = 16;
/// ρ below this has faded.
const FADED: f64 = 0.1;

/// A thread's (or, merged, the run's) sample of blocks.
#[derive(Debug, Clone, Default)]
pub struct Dependence {
    /// The block being filled: (intended time, ns from an arbitrary origin; latency, µs).
    current: Vec<(u64, u64)>,
    /// Whole blocks kept.
    kept: Vec<Vec<(u64, u64)>>,
    /// Whole blocks seen.
    seen: u64,
    /// The reservoir's random state (xorshift).
    rng: u64,
}

/// What the sample says.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Spearman's ρ of latencies one request apart (in send order).
    pub lag1: f64,
    /// The first lag (in requests) at which ρ fell below 0.1; None: not within `BLOCK`/2.
    pub fades_after: Option<usize>,
    /// Requests in the sample.
    pub sample: usize,
}

impl Dependence {
    /// Adds one request: its intended time (ns from any fixed origin) and its latency (µs).
    pub fn record(&mut self, intended_ns: u64, latency_us: u64) {
        if self.current.capacity() == 0 {
            self.current.reserve_exact(BLOCK);
        }
        self.current.push((intended_ns, latency_us));
        if self.current.len() < BLOCK {
            return;
        }
        self.seen += 1;
        let block = std::mem::replace(&mut self.current, Vec::with_capacity(BLOCK));
        if self.kept.len() < KEPT {
            self.kept.push(block);
            return;
        }
        // Keep the new block with probability KEPT / seen, in place of a random one.
        let r = self.next() % self.seen;
        if (r as usize) < KEPT {
            self.kept[r as usize] = block;
        }
    }

    fn next(&mut self) -> u64 {
        if self.rng == 0 {
            self.rng = 0x2545_f491_4f6c_dd1d;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Pools another thread's blocks.
    pub fn merge(&mut self, other: &Dependence) {
        self.kept.extend(other.kept.iter().cloned());
        self.seen += other.seen;
    }

    /// The rank autocorrelation, when at least two whole blocks were sampled.
    pub fn measure(&self) -> Option<Measured> {
        if self.kept.len() < 2 {
            return None;
        }
        // Send order within each block, then pooled ranks (ties share their mean rank).
        let blocks: Vec<Vec<(u64, u64)>> = self
            .kept
            .iter()
            .map(|b| {
                let mut b = b.clone();
                b.sort_by_key(|r| r.0);
                b
            })
            .collect();
        let mut all: Vec<u64> = blocks.iter().flatten().map(|r| r.1).collect();
        all.sort_unstable();
        let rank = |v: u64| {
            let lo = all.partition_point(|&x| x < v);
            let hi = all.partition_point(|&x| x <= v);
            (lo + hi - 1) as f64 / 2.0
        };
        let ranked: Vec<Vec<f64>> = blocks
            .iter()
            .map(|b| b.iter().map(|r| rank(r.1)).collect())
            .collect();
        let n = all.len() as f64;
        let mean = (n - 1.0) / 2.0;
        let var = ranked
            .iter()
            .flatten()
            .map(|r| (r - mean).powi(2))
            .sum::<f64>()
            / n;
        if var <= 0.0 {
            return Some(Measured {
                lag1: 0.0,
                fades_after: Some(1),
                sample: all.len(),
            });
        }
        let rho = |lag: usize| {
            let (mut sum, mut pairs) = (0.0, 0usize);
            for b in &ranked {
                for w in b.windows(lag + 1) {
                    sum += (w[0] - mean) * (w[lag] - mean);
                    pairs += 1;
                }
            }
            sum / pairs.max(1) as f64 / var
        };
        let lag1 = rho(1);
        let fades_after = (1..=BLOCK / 2).find(|&k| rho(k) < FADED);
        Some(Measured {
            lag1,
            fades_after,
            sample: all.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn independent_latencies_have_no_dependence_and_bursts_do() {
        let mut x = 88172645463325252u64;
        let mut unit = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut iid = Dependence::default();
        let mut bursty = Dependence::default();
        let mut slow = false;
        for i in 0..100_000u64 {
            let base = (1000.0 * -(1.0 - unit()).ln()) as u64 + 1;
            iid.record(i * 1000, base);
            // Slow stretches of ~50 requests: dependence that fades over tens of requests.
            if i % 50 == 0 {
                slow = unit() < 0.2;
            }
            bursty.record(i * 1000, base + if slow { 20_000 } else { 0 });
        }
        let m = iid.measure().unwrap();
        assert!(m.lag1.abs() < 0.05, "{m:?}");
        assert_eq!(m.fades_after, Some(1));
        assert_eq!(m.sample, KEPT * BLOCK);
        let m = bursty.measure().unwrap();
        assert!(m.lag1 > 0.3, "{m:?}");
        let fade = m.fades_after.unwrap();
        assert!((20..=80).contains(&fade), "{m:?}");
    }
}
