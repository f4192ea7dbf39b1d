//! Did the process that left the machine match the one asked for? A bounded sample of the
//! times requests were actually written, pooled over every thread, whose gaps are tested:
//! against the exponential for Poisson arrivals (Kolmogorov–Smirnov with the mean gap
//! estimated, Stephens' modification), and for a constant rate by the share of gaps within
//! ±50 % of the spacing.
//!
//! Sampling keeps whole windows (one second at first): those whose index is a multiple of
//! `stride` (1 at first). When a thread holds more than `CAP` stamps, the stride doubles and
//! the windows no longer kept are dropped; when one window alone holds more (over 4,096
//! sends a second on a thread), the window halves and the stride doubles, which keeps the
//! first half of each kept window. Either way memory is flat, and the kept windows are
//! always "the first W of every P" with W and P powers of two apart, so every thread's
//! kept set contains the run's (the smallest W of the largest P): pooled, the sample is
//! complete inside it. Gaps are taken between
//! consecutive sends of the pooled sample, within a window when windows are apart (a
//! stride over 1: by then a window holds thousands of sends, and the one gap lost at each
//! edge is noise), across windows when every one was kept.
//!
//! Used by `record::Recorder` (sampling, merging) and `report` (the Arrivals line).

/// Stamps a thread keeps at most (then the stride doubles).
const CAP: usize = 4096;
/// The first window, ns.
const WINDOW_NS: u64 = 1_000_000_000;
/// The shortest window, ns (then a thread stops sampling: over 4 million sends a second).
const MIN_WINDOW_NS: u64 = 1_000_000_000 >> 10;
/// The fewest gaps worth a judgement.
pub const MIN_GAPS: usize = 100;

/// A thread's (or, merged, the run's) send stamps.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrivals {
    /// The window length, ns: `WINDOW_NS` halved 0 or more times.
    window_ns: u64,
    /// Windows kept: index ≡ 0 (mod stride).
    stride: u64,
    /// Send times, ns from the start of the run, in no particular order.
    stamps: Vec<u64>,
}

impl Default for Arrivals {
    fn default() -> Self {
        Arrivals {
            window_ns: WINDOW_NS,
            stride: 1,
            stamps: Vec::new(),
        }
    }
}

impl Arrivals {
    /// Records a request written `at_ns` after the start of the run.
    pub fn record(&mut self, at_ns: u64) {
        if !self.kept(at_ns) {
            return;
        }
        self.stamps.push(at_ns);
        while self.stamps.len() > CAP {
            self.thin();
        }
    }

    fn kept(&self, t: u64) -> bool {
        self.window_ns >= MIN_WINDOW_NS && (t / self.window_ns).is_multiple_of(self.stride)
    }

    /// Halves what is kept: every other window, or, when one window holds it all, the
    /// second half of each window.
    fn thin(&mut self) {
        let w = self.window_ns;
        let lo = self.stamps.iter().map(|t| t / w).min();
        let hi = self.stamps.iter().map(|t| t / w).max();
        if lo == hi {
            self.window_ns /= 2;
        }
        self.stride *= 2;
        self.keep();
    }

    fn keep(&mut self) {
        let (w, stride) = (self.window_ns, self.stride);
        if w < MIN_WINDOW_NS {
            self.stamps.clear();
            return;
        }
        self.stamps.retain(|t| (t / w).is_multiple_of(stride));
    }

    /// Adds another thread's stamps (the same run's clock): the windows both kept.
    pub fn merge(&mut self, other: &Arrivals) {
        let period = (self.window_ns * self.stride).max(other.window_ns * other.stride);
        self.window_ns = self.window_ns.min(other.window_ns);
        self.stride = period / self.window_ns;
        self.stamps.extend_from_slice(&other.stamps);
        self.keep();
    }

    /// The gaps between consecutive sends of the pooled sample, ns.
    pub fn gaps(&self) -> Vec<u64> {
        let mut s = self.stamps.clone();
        s.sort_unstable();
        s.windows(2)
            .filter(|w| self.stride == 1 || w[0] / self.window_ns == w[1] / self.window_ns)
            .map(|w| w[1] - w[0])
            .collect()
    }
}

/// What the gaps say about a Poisson process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoissonFit {
    /// Gaps tested.
    pub gaps: usize,
    /// Their mean, ns.
    pub mean_ns: f64,
    /// The Kolmogorov–Smirnov distance to the exponential of that mean.
    pub d: f64,
    /// Stephens' modified statistic (D − 0.2/n)(√n + 0.26 + 0.5/√n); above 1.308 the gaps
    /// are not exponential at the 1 % level (Stephens 1974, mean estimated).
    pub statistic: f64,
}

/// The exponential's 1 % critical value of `PoissonFit::statistic`.
pub const KS_EXP_1PCT: f64 = 1.308;
/// A distance worth a warning: at most 5 points of the CDF apart from the exponential is
/// what a fraction of a mean gap of send jitter does, and the server cannot tell.
pub const KS_MATERIAL: f64 = 0.05;

/// Tests `gaps` (ns) against the exponential with their own mean.
pub fn poisson_fit(gaps: &[u64]) -> Option<PoissonFit> {
    if gaps.len() < MIN_GAPS {
        return None;
    }
    let mut g: Vec<f64> = gaps.iter().map(|&x| x as f64).collect();
    g.sort_by(f64::total_cmp);
    let n = g.len() as f64;
    let mean = g.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return None;
    }
    let d = g
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let f = 1.0 - (-x / mean).exp();
            (f - i as f64 / n).abs().max((i as f64 + 1.0) / n - f)
        })
        .fold(0.0, f64::max);
    let statistic = (d - 0.2 / n) * (n.sqrt() + 0.26 + 0.5 / n.sqrt());
    Some(PoissonFit {
        gaps: g.len(),
        mean_ns: mean,
        d,
        statistic,
    })
}

/// The share of `gaps` within ±50 % of `spacing_ns` (a constant rate's on the wire).
pub fn even_share(gaps: &[u64], spacing_ns: f64) -> Option<f64> {
    if gaps.len() < MIN_GAPS || spacing_ns <= 0.0 {
        return None;
    }
    let within = gaps
        .iter()
        .filter(|&&g| (g as f64 - spacing_ns).abs() <= 0.5 * spacing_ns)
        .count();
    Some(within as f64 / gaps.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*, uniform in (0, 1).
    fn uniform(state: &mut u64) -> f64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        ((state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A Poisson process at `rate`/s over `secs` s, as `threads` threads record it (each
    /// takes every threads-th send).
    fn poisson(rate: f64, secs: f64, threads: usize, seed: u64) -> Arrivals {
        let mut per: Vec<Arrivals> = vec![Arrivals::default(); threads];
        let (mut t, mut s, mut i) = (0.0, seed, 0);
        while t < secs {
            t += -uniform(&mut s).ln() / rate;
            per[i % threads].record((t * 1e9) as u64);
            i += 1;
        }
        let mut all = Arrivals::default();
        for p in &per {
            all.merge(p);
        }
        all
    }

    #[test]
    fn poisson_sends_pass_and_memory_stays_flat() {
        let mut false_alarms = 0;
        for seed in 1..=50u64 {
            // 2000/s for 20 s on 2 threads: 40,000 sends, more than two threads keep.
            let a = poisson(2000.0, 20.0, 2, seed * 7919);
            assert!(a.stamps.len() <= 2 * CAP && a.stride > 1);
            let fit = poisson_fit(&a.gaps()).unwrap();
            assert!((fit.mean_ns / 5e5 - 1.0).abs() < 0.05, "{fit:?}");
            if fit.statistic > KS_EXP_1PCT {
                false_alarms += 1;
            }
            assert!(fit.d < KS_MATERIAL, "{fit:?}");
        }
        // A 1 % test on 50 Poisson samples: rarely more than 3 false alarms.
        assert!(false_alarms <= 3, "{false_alarms} of 50");
    }

    #[test]
    fn a_dense_window_halves_and_threads_with_different_windows_pool() {
        // 20,000/s on one thread (a second holds 20,000 sends) and 1,000/s on another.
        let fast = poisson(20_000.0, 3.0, 1, 5);
        assert!(
            fast.stamps.len() <= CAP && fast.window_ns < WINDOW_NS,
            "{}",
            fast.window_ns
        );
        let fit = poisson_fit(&fast.gaps()).unwrap();
        assert!(
            (fit.mean_ns / 5e4 - 1.0).abs() < 0.05 && fit.d < KS_MATERIAL,
            "{fit:?}"
        );
        let slow = poisson(1000.0, 3.0, 1, 6);
        let mut all = slow.clone();
        all.merge(&fast);
        // Pooled in the windows both kept: only stamps from those, and the merge is
        // symmetric.
        let mut other = fast.clone();
        other.merge(&slow);
        let (mut a, mut b) = (all.stamps.clone(), other.stamps.clone());
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        assert!(!a.is_empty() && a.iter().all(|&t| fast.kept(t) && slow.kept(t)));
    }

    #[test]
    fn bunched_or_even_sends_are_not_poisson() {
        // Sends in pairs 10 µs apart (a mean gap of 1 ms, but no gap between 10 µs and
        // the pair's spacing): far from exponential.
        let mut a = Arrivals::default();
        let mut s = 42;
        let mut t = 0.0;
        for _ in 0..2000 {
            t += -uniform(&mut s).ln() * 2e-3;
            a.record((t * 1e9) as u64);
            a.record((t * 1e9) as u64 + 10_000);
        }
        let fit = poisson_fit(&a.gaps()).unwrap();
        assert!(
            fit.statistic > KS_EXP_1PCT && fit.d > KS_MATERIAL,
            "{fit:?}"
        );
        // Evenly spaced sends: not exponential either, and all within ±50 % of the spacing.
        let mut even = Arrivals::default();
        for i in 0..3000u64 {
            even.record(i * 1_000_000 + (i * 7919 % 100) * 1000);
        }
        let gaps = even.gaps();
        assert!(poisson_fit(&gaps).unwrap().d > KS_MATERIAL);
        assert_eq!(even_share(&gaps, 1e6), Some(1.0));
        // The pairs, judged as a constant 1000/s: about half the gaps are far off.
        assert!(even_share(&a.gaps(), 1e6).unwrap() < 0.5);
    }
}
