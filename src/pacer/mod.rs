//! The arrival schedule: when each request is due.
//!
//! `Schedule` maps a thread's sequence number to an intended send time, as an offset from
//! the start of the run. It never reads the clock or hears from the server; that is what
//! keeps the test open-loop. The aggregate stream is one request every 1/R, numbered
//! 0, 1, 2, …; thread `t` of `T` owns the global numbers `t, t+T, t+2T, …`, so each thread
//! is phase-shifted by `t/R` and all threads together send exactly one request every 1/R,
//! for any rate and any `T` (also when R < T). Offsets are integer nanoseconds computed
//! from the global number, never summed, so there is no drift.
//!
//! `Rate` lives here too: the exact fraction of requests per second the schedule is made of.
//!
//! Used by `engine::worker` (when to send) and, through the intended time, by `record`
//! (where latency starts).

pub mod shape;

use crate::error::BadValue;
use crate::units;
pub use shape::{Arrival, Profile, Rng, Stage};
use std::sync::Arc;
use std::time::Duration;

/// A request rate as an exact fraction: `per_sec_num / per_sec_den` requests per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    num: u128,
    den: u128,
}

impl Rate {
    /// A rate of `num / den` requests per second (`den` > 0).
    pub fn new(num: u128, den: u128) -> Rate {
        let (num, den) = units::reduce(num, den);
        Rate { num, den }
    }

    /// Parses a rate as typed: `1000`, `2.5k`, `0.5`, `30/m` (see `units::parse_rate`).
    pub fn parse(s: &str) -> Result<Rate, BadValue> {
        let (num, den) = units::parse_rate(s)?;
        Ok(Rate { num, den })
    }

    /// A whole number of requests per second.
    pub fn per_second(n: u64) -> Rate {
        Rate::new(n as u128, 1)
    }

    /// The rate as a float, for display and ratios only (never for scheduling).
    pub fn as_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Nanoseconds from the start of the run at which the `n`-th request (from 0) is due,
    /// rounded down: `n * 1e9 * den / num`, exact in integers, so there is no drift.
    pub fn due_ns(&self, n: u64) -> u128 {
        (n as u128) * 1_000_000_000 * self.den / self.num
    }

    /// Whether the rate is zero.
    pub fn is_zero(&self) -> bool {
        self.num == 0
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.as_f64();
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else if r >= 1.0 {
            write!(f, "{r:.2}")
        } else {
            write!(f, "{r:.4}")
        }
    }
}

/// One thread's share of the arrival schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    /// This share takes global requests `offset`, `offset + stride`, … (thread t of T:
    /// stride T, offset t; within shard I of N: stride N·T, offset I + N·t).
    stride: u64,
    offset: u64,
}

/// How due times are computed.
#[derive(Debug, Clone)]
enum Kind {
    /// A constant rate with even spacing: exact integer nanoseconds from the global number.
    Exact(Rate),
    /// A rate profile and an arrival process: Λ⁻¹ of the unit-rate arrival sequence.
    Shaped(Arc<Shaped>),
}

#[derive(Debug)]
struct Shaped {
    profile: Profile,
    arrival: Arrival,
    seed: u64,
}

impl Schedule {
    /// The schedule of thread `thread` (from 0) of `threads`, sharing the total `rate`,
    /// evenly spaced.
    pub fn for_thread(rate: Rate, threads: usize, thread: usize) -> Schedule {
        assert!(thread < threads, "thread index within the thread count");
        Schedule {
            kind: Kind::Exact(rate),
            stride: threads as u64,
            offset: thread as u64,
        }
    }

    /// The schedule of thread `thread` of `threads` for a rate `profile` and `arrival`
    /// process (random ones drawn from `seed`).
    pub fn shaped(
        profile: Profile,
        arrival: Arrival,
        seed: u64,
        threads: usize,
        thread: usize,
    ) -> Schedule {
        assert!(thread < threads, "thread index within the thread count");
        Schedule {
            kind: Kind::Shaped(Arc::new(Shaped {
                profile,
                arrival,
                seed,
            })),
            stride: threads as u64,
            offset: thread as u64,
        }
    }

    /// This share of shard `shard` of `shards`: the shards together take every global request
    /// once, each at exactly the time the single-process run would give it.
    pub fn in_shard(self, shard: u64, shards: u64) -> Schedule {
        assert!(shard < shards, "shard index within the shard count");
        Schedule {
            stride: self.stride * shards,
            offset: shard + shards * self.offset,
            ..self
        }
    }

    /// This thread's requests per second (its share of the total rate; the peak rate for a
    /// profile that changes).
    pub fn per_second(&self) -> f64 {
        let total = match &self.kind {
            Kind::Exact(rate) => rate.as_f64(),
            Kind::Shaped(s) => s.profile.peak(),
        };
        total / self.stride as f64
    }

    /// The global sequence number of this thread's `n`-th request.
    pub fn global(&self, n: u64) -> u64 {
        n * self.stride + self.offset
    }

    /// This thread's due times within `[0, window)`, in order.
    pub fn cursor(&self, window: Duration) -> Cursor {
        let rng = match &self.kind {
            Kind::Shaped(s) => Some(Rng::new(s.seed)),
            Kind::Exact(_) => None,
        };
        Cursor {
            schedule: self.clone(),
            window,
            n: 0,
            global: 0,
            unit: 0.0,
            rng,
        }
    }

    /// When this thread's `n`-th request (from 0) is due, from the start of the run. Exact
    /// for an evenly spaced schedule; a shaped one is walked from its start (use a `Cursor`
    /// to go through it in order).
    pub fn due(&self, n: u64) -> Duration {
        match &self.kind {
            Kind::Exact(rate) => {
                let ns = rate.due_ns(self.global(n));
                Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
            }
            Kind::Shaped(_) => self
                .cursor(Duration::MAX)
                .nth(n as usize)
                .unwrap_or(Duration::MAX),
        }
    }
}

/// A walk over one thread's due times, in order: cheap to clone (the queue of requests
/// waiting for a connection keeps one at its head, so it stays two numbers and a cursor
/// however long it grows).
#[derive(Debug, Clone)]
pub struct Cursor {
    schedule: Schedule,
    window: Duration,
    /// This thread's next request number.
    n: u64,
    /// The next global request number to generate (shaped schedules).
    global: u64,
    /// The unit-rate arrival of global request `global` (shaped schedules).
    unit: f64,
    rng: Option<Rng>,
}

impl Cursor {
    /// The global sequence number (across threads and shards) of the request `next_due`
    /// returned last: what a mix picks request kinds by.
    pub fn last_global(&self) -> u64 {
        self.schedule.global(self.n.saturating_sub(1))
    }

    /// This thread's next due time, or None once it falls outside the window.
    pub fn next_due(&mut self) -> Option<Duration> {
        let due = match &self.schedule.kind {
            Kind::Exact(_) => self.schedule.due(self.n),
            Kind::Shaped(shaped) => {
                let target = self.schedule.global(self.n);
                let unit = match (shaped.arrival, self.rng.as_mut()) {
                    // Constant arrivals: the k-th is exactly at k, no walk needed.
                    (Arrival::Constant, _) | (_, None) => target as f64,
                    // Random ones: walk the global sequence up to this thread's next request
                    // (every thread draws every gap, so all agree on the sequence).
                    (arrival, Some(rng)) => {
                        while self.global < target {
                            self.unit += gap(arrival, rng);
                            self.global += 1;
                        }
                        let at = self.unit;
                        self.unit += gap(arrival, rng);
                        self.global += 1;
                        at
                    }
                };
                let secs = shaped.profile.inverse(unit)?;
                Duration::try_from_secs_f64(secs).ok()?
            }
        };
        if due >= self.window {
            return None;
        }
        self.n += 1;
        Some(due)
    }
}

/// One unit-mean gap of a random arrival process.
fn gap(arrival: Arrival, rng: &mut Rng) -> f64 {
    match arrival {
        Arrival::Constant => 1.0,
        Arrival::Poisson => rng.exponential(),
        Arrival::Gamma(k) => rng.gamma_unit_mean(k),
    }
}

impl Iterator for Cursor {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.next_due()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_to_exact_fractions() {
        // (input, requests per second as num/den)
        let ok = [
            ("1000", Rate::new(1000, 1)),
            ("2.5k", Rate::new(2500, 1)),
            ("0.5", Rate::new(1, 2)),
            ("30/m", Rate::new(1, 2)), // 30 per minute = 0.5/s
            ("3600/h", Rate::new(1, 1)),
            ("1M", Rate::new(1_000_000, 1)),
        ];
        for (s, want) in ok {
            assert_eq!(Rate::parse(s), Ok(want), "{s}");
        }
        for bad in ["0", "0.0", "10q", "", "k", "-5", "5/d", "1e3"] {
            assert!(Rate::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn rate_due_times_are_exact() {
        // 3/s: due at 0, 333333333, 666666666, 1e9 ns: floor of exact thirds, and the 3e7-th
        // request lands exactly on 1e7 s — no accumulated error.
        let r = Rate::new(3, 1);
        assert_eq!(r.due_ns(1), 333_333_333);
        assert_eq!(r.due_ns(2), 666_666_666);
        assert_eq!(r.due_ns(3), 1_000_000_000);
        assert_eq!(r.due_ns(30_000_000), 10_000_000 * 1_000_000_000);
    }

    fn merged(rate: Rate, threads: usize, per_thread: u64) -> Vec<Duration> {
        let mut due: Vec<Duration> = (0..threads)
            .map(|t| Schedule::for_thread(rate, threads, t))
            .flat_map(|s| (0..per_thread).map(move |n| s.due(n)))
            .collect();
        due.sort();
        due
    }

    #[test]
    fn threads_merge_into_one_even_stream() {
        // 1000/s over 4 threads: each thread every 4 ms, phases 0, 1, 2, 3 ms,
        // so the merged stream is one request per millisecond, exactly (integer ns).
        let due = merged(Rate::per_second(1000), 4, 250);
        assert_eq!(due.len(), 1000);
        assert_eq!(due[0], Duration::ZERO);
        assert!(due
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::from_millis(1)));
    }

    #[test]
    fn uneven_rate_over_threads_stays_even() {
        // 3/s over 2 threads: the aggregate is every 1/3 s; floor rounding makes the gaps
        // 333333333 or 333333334 ns, never further apart.
        let due = merged(Rate::per_second(3), 2, 30);
        for w in due.windows(2) {
            let gap = (w[1] - w[0]).as_nanos();
            assert!(gap == 333_333_333 || gap == 333_333_334, "gap {gap}");
        }
    }

    #[test]
    fn rate_below_thread_count() {
        // 0.5/s over 4 threads: one request every 2 s overall; thread t sends at 2t s,
        // then every 8 s.
        let rate = Rate::new(1, 2);
        let s = Schedule::for_thread(rate, 4, 3);
        assert_eq!(s.due(0), Duration::from_secs(6));
        assert_eq!(s.due(1), Duration::from_secs(14));
        let due = merged(rate, 4, 5);
        assert!(due
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::from_secs(2)));
    }

    #[test]
    fn no_drift_over_ten_million_requests() {
        // 7 req/s is 142857142.857… ns apart: a float or integer-sum schedule drifts; ours
        // puts request 7e7 at exactly 1e7 s, and every gap is within 1 ns of 1/7 s.
        let rate = Rate::per_second(7);
        let s = Schedule::for_thread(rate, 1, 0);
        assert_eq!(s.due(70_000_000), Duration::from_secs(10_000_000));
        let mut prev = s.due(0);
        for n in 1..10_000_000u64 {
            let d = s.due(n);
            let gap = (d - prev).as_nanos();
            assert!(gap == 142_857_142 || gap == 142_857_143, "gap {gap} at {n}");
            prev = d;
        }
        // Across 3 threads, the merged 10^7-th request is where the single stream puts it.
        let t = Schedule::for_thread(rate, 3, (10_000_000 % 3) as usize);
        assert_eq!(t.due(10_000_000 / 3), s.due(10_000_000));
    }

    #[test]
    fn counts_split_exactly() {
        // 2000/s for 3 s is 6000 requests: over 4 threads, 1500 each; over 7 threads,
        // 6000 = 7*857 + 1, so thread 0 gets 858 and the others 857.
        let rate = Rate::per_second(2000);
        let w = Duration::from_secs(3);
        // (Counted as the engine counts them: by walking each thread's cursor.)
        let count = |threads, t| Schedule::for_thread(rate, threads, t).cursor(w).count() as u64;
        let four: Vec<u64> = (0..4).map(|t| count(4, t)).collect();
        assert_eq!(four, vec![1500; 4]);
        let seven: u64 = (0..7).map(|t| count(7, t)).sum();
        assert_eq!(seven, 6000);
        assert_eq!(count(7, 0), 858);
        // Each thread's last request is inside the window and the next is not.
        for t in 0..7 {
            let s = Schedule::for_thread(rate, 7, t);
            let n = count(7, t);
            assert!(s.due(n - 1) < w && s.due(n) >= w);
        }
        // 0.5/s for 3 s: due at 0 s and 2 s; 3/s for 1 s: 0, 1/3, 2/3 s (1 s is outside).
        let one = |rate: Rate, w: u64| {
            Schedule::for_thread(rate, 1, 0)
                .cursor(Duration::from_secs(w))
                .count()
        };
        assert_eq!((one(Rate::new(1, 2), 3), one(Rate::new(3, 1), 1)), (2, 3));
    }

    /// Every due time of a schedule over `threads` threads, merged and sorted.
    fn merged_shaped(
        profile: &Profile,
        arrival: Arrival,
        seed: u64,
        threads: usize,
    ) -> Vec<Duration> {
        let mut all: Vec<Duration> = (0..threads)
            .flat_map(|t| {
                Schedule::shaped(profile.clone(), arrival, seed, threads, t)
                    .cursor(profile.duration())
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn poisson_gaps_are_exponential_with_mean_one_over_r() {
        // 10⁵ arrivals at 1000/s (100 s). The gaps' mean is 1 ms within 1 % (its standard
        // error is 1 ms/√10⁵ ≈ 0.3 %); and the Kolmogorov–Smirnov distance between the gaps
        // and Exp(mean 1 ms) is below 1.63/√n, the 1 % critical value.
        let profile = Profile::constant(1000.0, Duration::from_secs(100));
        let due = merged_shaped(&profile, Arrival::Poisson, 42, 1);
        assert!(due.len().abs_diff(100_000) < 1_500, "{}", due.len()); // Poisson(10⁵): σ ≈ 316
        let mut gaps: Vec<f64> = due
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        assert!((mean * 1000.0 - 1.0).abs() < 0.01, "mean gap {mean}");
        gaps.sort_by(f64::total_cmp);
        let d = gaps
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let cdf = 1.0 - (-g * 1000.0).exp();
                (cdf - i as f64 / n)
                    .abs()
                    .max(((i + 1) as f64 / n - cdf).abs())
            })
            .fold(0.0, f64::max);
        assert!(d < 1.63 / n.sqrt(), "KS distance {d}");
    }

    #[test]
    fn shaped_threads_partition_one_sequence_and_seeds_repeat() {
        // The same seed over 1 and over 3 threads gives the same due times, every one once
        // (threads take every third request of one sequence); another seed gives others.
        let profile = Profile::constant(500.0, Duration::from_secs(4));
        let one = merged_shaped(&profile, Arrival::Poisson, 7, 1);
        let three = merged_shaped(&profile, Arrival::Poisson, 7, 3);
        assert_eq!(one, three);
        assert_ne!(one, merged_shaped(&profile, Arrival::Poisson, 8, 1));
        // Constant arrivals through a profile are the exact schedule's times (to the ns).
        let even = merged_shaped(&profile, Arrival::Constant, 0, 2);
        assert_eq!(even.len(), 2000);
        assert!(even
            .iter()
            .enumerate()
            .all(|(k, d)| d.as_nanos().abs_diff(k as u128 * 2_000_000) <= 1));
    }

    #[test]
    fn shards_partition_the_single_schedule() {
        // For N = 1..5 shards of 2 threads each, the union of every share's due times is the
        // single process's schedule (1 thread), each time exactly once: constant, Poisson
        // with a seed, and a ramp.
        let ramp = Profile::new(
            0.0,
            &[Stage {
                duration: Duration::from_secs(2),
                rate: 300.0,
            }],
        );
        let shapes: [(Option<Rate>, Profile, Arrival); 3] = [
            (
                Some(Rate::per_second(250)),
                Profile::constant(250.0, Duration::from_secs(2)),
                Arrival::Constant,
            ),
            (
                None,
                Profile::constant(250.0, Duration::from_secs(2)),
                Arrival::Poisson,
            ),
            (None, ramp, Arrival::Constant),
        ];
        let window = Duration::from_secs(2);
        let schedule =
            |exact: Option<Rate>, p: &Profile, a: Arrival, threads: usize, t: usize| match exact {
                Some(r) => Schedule::for_thread(r, threads, t),
                None => Schedule::shaped(p.clone(), a, 99, threads, t),
            };
        for (exact, profile, arrival) in &shapes {
            let single = schedule(*exact, profile, *arrival, 1, 0).cursor(window);
            let single: Vec<Duration> = single.collect();
            assert!(single.len() > 200);
            for shards in 1..=5u64 {
                let mut union: Vec<Duration> = Vec::new();
                for shard in 0..shards {
                    for t in 0..2 {
                        let c = schedule(*exact, profile, *arrival, 2, t)
                            .in_shard(shard, shards)
                            .cursor(window);
                        union.extend(c);
                    }
                }
                union.sort();
                assert_eq!(union, single, "{shards} shards, {arrival:?}");
            }
        }
    }
}
