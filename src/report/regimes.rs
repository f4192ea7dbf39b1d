//! Was the run one regime? Change points and incidents over the per-second series.
//!
//! **Regimes** — binary segmentation (Scott & Knott 1974; Killick & Eckley's `changepoint`
//! calls it BinSeg) over two per-second series at once: the log of each second's corrected
//! p99, and each second's error share. Each series is scaled by its own noise (the MAD of
//! its first differences, which a level shift barely moves), and a segment splits where
//! that most reduces the summed squared deviation from the segment means, if the reduction
//! beats a penalty of `PENALTY` · ln(n) (a BIC-like penalty) and the two sides differ by
//! an effect worth telling a user about: p99 by at least `P99_EFFECT` (25 %) or the error
//! share by at least 1 percentage point. Each side keeps at least `MIN_SECONDS` seconds.
//! The regimes' values are the median of their seconds (the seconds' histograms are not
//! kept: memory stays flat in run length).
//!
//! **Incidents** — runs of seconds that left the run's baseline: more than 1 % of the
//! second's requests failed, or the second's p99 was over `INCIDENT_FACTOR` (5) × the run's
//! median second p99 (and at least 1 ms above it). With start, end, requests, errors by
//! class and the worst p99: how long until the service recovered.
//!
//! Used by `report::text` and `report::json`.

use crate::outcome::ErrorClass;
use crate::record::IntervalStats;

/// Penalty per change point, times ln(n) (in units of each series' noise variance).
const PENALTY: f64 = 4.0;
/// The smallest p99 change that makes two regimes: 25 %.
const P99_EFFECT: f64 = 0.223; // ln 1.25
/// The smallest error-share change that makes two regimes: 1 point.
const ERROR_EFFECT: f64 = 0.01;
/// The shortest regime, seconds.
const MIN_SECONDS: usize = 3;
/// A second whose p99 is this many times the median second's is an incident.
const INCIDENT_FACTOR: f64 = 5.0;

/// One steady stretch of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Regime {
    /// From this second of the run (inclusive)…
    pub start_s: u32,
    /// …to this one (exclusive).
    pub end_s: u32,
    /// Completed requests per second (median second).
    pub rate: f64,
    /// Failed share of the regime's requests.
    pub error_share: f64,
    /// Median of its seconds' corrected p50, ms.
    pub p50_ms: f64,
    /// Median of its seconds' corrected p99, ms.
    pub p99_ms: f64,
}

/// A stretch of seconds that left the run's baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// First second (inclusive).
    pub start_s: u32,
    /// Last second (exclusive).
    pub end_s: u32,
    /// Requests that ended in it (completed or failed).
    pub requests: u64,
    /// Failures in it, by `ErrorClass::index`.
    pub errors: [u64; 6],
    /// The worst second's corrected p99, ms.
    pub worst_p99_ms: f64,
}

impl Incident {
    /// Its length, seconds.
    pub fn duration_s(&self) -> u32 {
        self.end_s - self.start_s
    }
}

/// The seconds that count: those in which requests ended.
fn seconds(series: &[IntervalStats]) -> Vec<&IntervalStats> {
    series
        .iter()
        .filter(|s| s.counts.completed + s.counts.error_total() > 0)
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn error_share(s: &IntervalStats) -> f64 {
    let e = s.counts.error_total();
    e as f64 / (s.counts.completed + e).max(1) as f64
}

/// The noise of a series: 1.4826 · MAD of its first differences / √2 (robust to shifts).
fn noise(y: &[f64]) -> f64 {
    let d: Vec<f64> = y.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    1.4826 * median(d) / std::f64::consts::SQRT_2
}

/// The run's regimes, in order (one when it was steady).
pub fn regimes(series: &[IntervalStats]) -> Vec<Regime> {
    let secs = seconds(series);
    if secs.is_empty() {
        return Vec::new();
    }
    let p99: Vec<f64> = secs.iter().map(|s| (s.p99_us.max(1) as f64).ln()).collect();
    let err: Vec<f64> = secs.iter().map(|s| error_share(s)).collect();
    // Each series in units of its noise (a floor keeps a perfectly flat series from
    // turning a rounding step into a regime).
    let scale = |y: &[f64], floor: f64| noise(y).max(floor);
    let (s1, s2) = (scale(&p99, 0.02), scale(&err, 0.002));
    let mut cuts = vec![0, secs.len()];
    let penalty = PENALTY * (secs.len() as f64).ln().max(1.0);
    let mut stack = vec![(0, secs.len())];
    while let Some((a, b)) = stack.pop() {
        if let Some(k) = best_split(&p99[a..b], &err[a..b], s1, s2, penalty) {
            cuts.push(a + k);
            stack.push((a, a + k));
            stack.push((a + k, b));
        }
    }
    cuts.sort_unstable();
    cuts.windows(2)
        .map(|w| {
            let part = &secs[w[0]..w[1]];
            let completed: u64 = part.iter().map(|s| s.counts.completed).sum();
            let errors: u64 = part.iter().map(|s| s.counts.error_total()).sum();
            let ms = |f: fn(&IntervalStats) -> u64| {
                median(part.iter().map(|s| f(s) as f64 / 1000.0).collect())
            };
            Regime {
                start_s: part[0].index,
                end_s: part[part.len() - 1].index + 1,
                rate: median(part.iter().map(|s| s.counts.completed as f64).collect()),
                error_share: errors as f64 / (completed + errors).max(1) as f64,
                p50_ms: ms(|s| s.p50_us),
                p99_ms: ms(|s| s.p99_us),
            }
        })
        .collect()
}

/// Where a segment splits best, if the split is worth it (see the module docs).
fn best_split(p99: &[f64], err: &[f64], s1: f64, s2: f64, penalty: f64) -> Option<usize> {
    let n = p99.len();
    if n < 2 * MIN_SECONDS {
        return None;
    }
    let sse = |y: &[f64], s: f64| {
        let m = y.iter().sum::<f64>() / y.len() as f64;
        y.iter().map(|v| ((v - m) / s).powi(2)).sum::<f64>()
    };
    let mean = |y: &[f64]| y.iter().sum::<f64>() / y.len() as f64;
    let whole = sse(p99, s1) + sse(err, s2);
    let mut best: Option<(f64, usize)> = None;
    for k in MIN_SECONDS..=n - MIN_SECONDS {
        let cost =
            sse(&p99[..k], s1) + sse(&p99[k..], s1) + sse(&err[..k], s2) + sse(&err[k..], s2);
        let gain = whole - cost;
        let effect = (mean(&p99[..k]) - mean(&p99[k..])).abs() >= P99_EFFECT
            || (mean(&err[..k]) - mean(&err[k..])).abs() >= ERROR_EFFECT;
        if gain > penalty && effect && best.is_none_or(|(g, _)| gain > g) {
            best = Some((gain, k));
        }
    }
    best.map(|(_, k)| k)
}

/// The run's incidents, in order.
pub fn incidents(series: &[IntervalStats]) -> Vec<Incident> {
    let secs = seconds(series);
    let base = median(secs.iter().map(|s| s.p99_us as f64).collect());
    let bad = |s: &IntervalStats| {
        let p99 = s.p99_us as f64;
        error_share(s) > 0.01 || (p99 > INCIDENT_FACTOR * base && p99 - base >= 1000.0)
    };
    let mut out: Vec<Incident> = Vec::new();
    for s in secs {
        if !bad(s) {
            continue;
        }
        let worst = s.p99_us as f64 / 1000.0;
        match out.last_mut() {
            Some(i) if i.end_s == s.index => {
                i.end_s += 1;
                i.requests += s.counts.completed + s.counts.error_total();
                for c in ErrorClass::ALL {
                    i.errors[c.index()] += s.counts.errors[c.index()];
                }
                i.worst_p99_ms = i.worst_p99_ms.max(worst);
            }
            _ => out.push(Incident {
                start_s: s.index,
                end_s: s.index + 1,
                requests: s.counts.completed + s.counts.error_total(),
                errors: s.counts.errors,
                worst_p99_ms: worst,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Counts;

    fn second(i: u32, p99_us: u64, errors: u64) -> IntervalStats {
        let mut counts = Counts {
            completed: 1000 - errors,
            ..Counts::default()
        };
        counts.errors[ErrorClass::Connect.index()] = errors;
        IntervalStats {
            index: i,
            counts,
            p50_us: p99_us / 3,
            p90_us: p99_us / 2,
            p99_us,
            p999_us: p99_us,
            max_us: p99_us,
            uncorrected_p99_us: p99_us,
            ttft_p99_us: 0,
            groups: Vec::new(),
        }
    }

    /// xorshift jitter in [-j, j] as a factor.
    fn jitter(state: &mut u64, j: f64) -> f64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        1.0 + j * ((*state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
    }

    #[test]
    fn a_slowdown_makes_three_regimes_and_one_incident() {
        let mut st = 7;
        let series: Vec<IntervalStats> = (0..60)
            .map(|i| {
                let base = if (30..45).contains(&i) {
                    10_000.0
                } else {
                    1_000.0
                };
                second(i, (base * jitter(&mut st, 0.2)) as u64, 0)
            })
            .collect();
        let r = regimes(&series);
        let bounds: Vec<(u32, u32)> = r.iter().map(|g| (g.start_s, g.end_s)).collect();
        assert_eq!(bounds, [(0, 30), (30, 45), (45, 60)], "{r:?}");
        let inc = incidents(&series);
        assert_eq!(inc.len(), 1, "{inc:?}");
        assert_eq!((inc[0].start_s, inc[0].duration_s()), (30, 15));
    }

    #[test]
    fn a_steady_run_is_one_regime_without_incidents() {
        for seed in 1..=20u64 {
            let mut st = seed * 0x9e37_79b9;
            let series: Vec<IntervalStats> = (0..60)
                .map(|i| second(i, (1_000.0 * jitter(&mut st, 0.3)) as u64, 0))
                .collect();
            assert_eq!(regimes(&series).len(), 1, "seed {seed}");
            assert!(incidents(&series).is_empty(), "seed {seed}");
        }
    }

    #[test]
    fn an_error_burst_is_an_incident_with_its_errors() {
        let series: Vec<IntervalStats> = (0..20)
            .map(|i| second(i, 1_000, if (12..14).contains(&i) { 500 } else { 0 }))
            .collect();
        let inc = incidents(&series);
        assert_eq!(inc.len(), 1);
        assert_eq!((inc[0].start_s, inc[0].end_s), (12, 14));
        assert_eq!(inc[0].errors[ErrorClass::Connect.index()], 1000);
        assert_eq!(inc[0].requests, 2000);
    }
}
