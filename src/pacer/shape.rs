//! Traffic shapes: how the rate changes over the run (`--stages`, k6's ramping arrival
//! rate) and how arrivals are spaced at a given rate (`--arrival constant|poisson|gamma:K`).
//!
//! One idea makes both exact and shardable: a *unit-rate* arrival sequence s₀, s₁, … (the
//! k-th request's position in "expected requests": s_k = k for constant arrivals; for
//! Poisson the cumulative sum of Exp(1) gaps; for gamma, of Gamma(K, 1/K) gaps, which have
//! mean 1 and are burstier for K < 1) is mapped through the inverse of the cumulative rate
//! Λ(t) = ∫₀ᵗ r: request k is due at Λ⁻¹(s_k) (the time-rescaling theorem). So the intended
//! time of request k is a pure function of (profile, arrival, seed, k); threads (and shards)
//! take every T-th k of the same sequence, and the same seed gives the same schedule.
//!
//! Used by `pacer::Schedule` (cursors over the sequence) and `cli` (parsing the flags).

use crate::error::BadValue;
use crate::units::parse_duration;
use std::time::Duration;

/// How arrivals are spaced at a given rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    /// Evenly: one every 1/R (the default; what wrk2 does).
    Constant,
    /// Exponential gaps with mean 1/R: independent arrivals, as from many users.
    Poisson,
    /// Gamma gaps with mean 1/R and this shape: below 1 burstier than Poisson, above 1
    /// more regular (vLLM's benchmark calls it burstiness).
    Gamma(f64),
}

impl Arrival {
    /// Parses `--arrival`: `constant`, `poisson` or `gamma:K`.
    pub fn parse(s: &str) -> Result<Arrival, BadValue> {
        let hint = "expected constant, poisson or gamma:K (K > 0: burstiness, 1 is Poisson), \
                    e.g. --arrival poisson";
        match s.trim() {
            "constant" => Ok(Arrival::Constant),
            "poisson" => Ok(Arrival::Poisson),
            other => match other.strip_prefix("gamma:").map(str::parse::<f64>) {
                Some(Ok(k)) if k.is_finite() && k > 0.0 && k <= 1000.0 => Ok(Arrival::Gamma(k)),
                _ => Err(hint.into()),
            },
        }
    }

    /// The name as the flag takes it.
    pub fn name(&self) -> String {
        match self {
            Arrival::Constant => "constant".into(),
            Arrival::Poisson => "poisson".into(),
            Arrival::Gamma(k) => format!("gamma:{k}"),
        }
    }
}

/// One stage of `--stages`: over `duration`, the rate moves linearly to `rate` (req/s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// The rate at its end, requests per second.
    pub rate: f64,
}

/// Parses `--stages D:R,D:R,…`, e.g. `30s:100,1m:100,30s:0`.
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, BadValue> {
    let hint = "expected DURATION:RATE,… e.g. 30s:100,1m:100,30s:0 (ramp to 100/s over 30 s, \
                hold a minute, ramp down)";
    let mut out = Vec::new();
    for part in s.split(',') {
        let (d, r) = part
            .trim()
            .split_once(':')
            .ok_or_else(|| BadValue(format!("{part:?}: {hint}")))?;
        let duration = parse_duration(d).map_err(|e| BadValue(format!("{part:?}: {e}")))?;
        if duration.is_zero() {
            return Err(format!("{part:?}: a stage lasts longer than 0; {hint}").into());
        }
        let (num, den) = if r.trim().parse::<f64>() == Ok(0.0) {
            (0, 1)
        } else {
            crate::units::parse_rate(r).map_err(|e| BadValue(format!("{part:?}: {e}")))?
        };
        out.push(Stage {
            duration,
            rate: num as f64 / den as f64,
        });
    }
    Ok(out)
}

/// One linear piece of the rate profile.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Start, seconds from the start of the run.
    t0: f64,
    /// Length, seconds.
    len: f64,
    /// Rate at the start and at the end, req/s.
    r0: f64,
    r1: f64,
    /// Λ at the start: expected requests before this segment.
    cum: f64,
}

impl Segment {
    /// Expected requests in the whole segment.
    fn area(&self) -> f64 {
        (self.r0 + self.r1) / 2.0 * self.len
    }
}

/// A piecewise-linear rate over the run, and the inverse of its integral.
#[derive(Debug, Clone)]
pub struct Profile {
    segments: Vec<Segment>,
}

impl Profile {
    /// The profile of `stages`, the first ramping from `start` req/s.
    pub fn new(start: f64, stages: &[Stage]) -> Profile {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut t0, mut r0, mut cum) = (0.0, start, 0.0);
        for st in stages {
            let seg = Segment {
                t0,
                len: st.duration.as_secs_f64(),
                r0,
                r1: st.rate,
                cum,
            };
            cum += seg.area();
            t0 += seg.len;
            r0 = st.rate;
            segments.push(seg);
        }
        Profile { segments }
    }

    /// A constant rate for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Profile {
        Profile::new(rate, &[Stage { duration, rate }])
    }

    /// Λ over the whole profile: the expected number of requests.
    pub fn total(&self) -> f64 {
        self.segments.last().map_or(0.0, |s| s.cum + s.area())
    }

    /// The profile's length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.segments.last().map_or(0.0, |s| s.t0 + s.len))
    }

    /// The highest rate anywhere in the profile, req/s.
    pub fn peak(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.r0.max(s.r1))
            .fold(0.0, f64::max)
    }

    /// Λ⁻¹(s): the time, seconds from the start, at which `s` requests are expected; None
    /// past the end of the profile.
    pub fn inverse(&self, s: f64) -> Option<f64> {
        // The segment holding s (the last one whose start is ≤ s with some area after it).
        let i = self
            .segments
            .partition_point(|seg| seg.cum + seg.area() <= s);
        let seg = self.segments.get(i)?;
        let c = (s - seg.cum).max(0.0);
        // Within the segment, Λ(τ) − cum = r0·τ + a·τ² with a = (r1 − r0) / (2·len). Solved
        // for τ in the cancellation-free form 2c / (r0 + √(r0² + 4ac)).
        let a = (seg.r1 - seg.r0) / (2.0 * seg.len);
        let disc = (seg.r0 * seg.r0 + 4.0 * a * c).max(0.0);
        let denom = seg.r0 + disc.sqrt();
        let tau = if denom > 0.0 { 2.0 * c / denom } else { 0.0 };
        Some(seg.t0 + tau.min(seg.len))
    }
}

/// A small, fast, deterministic random generator (SplitMix64 seeding xoshiro256**): the
/// same seed gives the same arrivals on every machine.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in (0, 1]: never 0, so −ln(u) is finite.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Exp(1).
    pub fn exponential(&mut self) -> f64 {
        -self.uniform().ln()
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller (one of the pair).
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Gamma(k, 1/k): mean 1, variance 1/k (Marsaglia and Tsang; k < 1 boosted by U^(1/k)).
    pub fn gamma_unit_mean(&mut self, k: f64) -> f64 {
        let (shape, boost) = if k < 1.0 {
            (k + 1.0, self.uniform().powf(1.0 / k))
        } else {
            (k, 1.0)
        };
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v * boost / k;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_integrate_exactly() {
        // 2s:200, 2s:200, 2s:0 from 0: a ramp (200 requests), a plateau (400), a ramp down
        // (200) — 800 in all. Λ⁻¹ of the 50th request: 50 = 50·t² (ramp of slope 100/s²),
        // t = 1 s; of the 400th: 200 + 200·(t − 2), t = 3 s.
        let p = Profile::new(0.0, &parse_stages("2s:200,2s:200,2s:0").unwrap());
        assert_eq!(p.total(), 800.0);
        assert!((p.inverse(50.0).unwrap() - 1.0).abs() < 1e-9);
        assert!((p.inverse(400.0).unwrap() - 3.0).abs() < 1e-9);
        // The 799th leaves one request of the ramp down, whose tail holds 50·(6−t)²: t = 6 − √(1/50).
        assert!((p.inverse(799.0).unwrap() - (6.0 - (1.0f64 / 50.0).sqrt())).abs() < 1e-9);
        assert_eq!(p.inverse(800.0), None);
        assert_eq!(p.peak(), 200.0);
    }

    #[test]
    fn per_second_counts_follow_the_ramp() {
        // Expected requests in each second of 2s:200,2s:200,2s:0: ∫ of the rate over it:
        // 50, 150, 200, 200, 150, 50.
        let p = Profile::new(0.0, &parse_stages("2s:200,2s:200,2s:0").unwrap());
        let mut per_second = [0u64; 6];
        let mut k = 0.0;
        while let Some(t) = p.inverse(k) {
            per_second[t as usize] += 1;
            k += 1.0;
        }
        assert_eq!(per_second, [50, 150, 200, 200, 150, 50]);
    }

    #[test]
    fn stage_and_arrival_grammar() {
        assert_eq!(parse_stages("30s:100,1m:100.5,30s:0").unwrap().len(), 3);
        for bad in ["", "30s", "30s:", "x:100", "0s:10", "30s:-5", "30s:10,"] {
            assert!(parse_stages(bad).is_err(), "{bad}");
        }
        assert_eq!(Arrival::parse("poisson"), Ok(Arrival::Poisson));
        assert_eq!(Arrival::parse("gamma:0.5"), Ok(Arrival::Gamma(0.5)));
        for bad in ["", "uniform", "gamma:", "gamma:0", "gamma:-1", "gamma:nan"] {
            assert!(Arrival::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gamma_gaps_have_unit_mean_and_the_asked_variance() {
        // Gamma(k, 1/k): mean 1, variance 1/k. Over 10⁵ draws the sample mean is within
        // 5 standard errors (5·√(1/k/10⁵)) of 1, and the variance within 10 % of 1/k.
        for k in [0.25, 1.0, 4.0] {
            let mut rng = Rng::new(7);
            let xs: Vec<f64> = (0..100_000).map(|_| rng.gamma_unit_mean(k)).collect();
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            assert!(
                (mean - 1.0).abs() < 5.0 * (1.0 / k / n).sqrt(),
                "k {k}: mean {mean}"
            );
            assert!((var * k - 1.0).abs() < 0.1, "k {k}: variance {var}");
        }
    }
}
