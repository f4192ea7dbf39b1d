//! Per-second snapshots, for progress, time series and interval logs.
//!
//! Each worker swaps out its current `Interval` once a second (numbered from the start of
//! the run, by completion time) and sends it to the coordinator, which merges the threads'
//! snapshots of the same second into one `IntervalStats` row and lets the histograms go,
//! so memory stays flat however long the run.
//!
//! Used by `engine` (swap and merge) and `report` (time series).

use super::histogram::{new_hist, percentile, Hist};
use super::Counts;

/// One thread's (or, merged, all threads') measurements for one second of the run.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Which second of the run, from 0 (`[index, index+1)` seconds after the start).
    pub index: u32,
    /// Corrected latency of requests that ended in this second, µs.
    pub corrected: Hist,
    /// Uncorrected latency of requests that ended in this second, µs.
    pub uncorrected: Hist,
    /// Counters for this second.
    pub counts: Counts,
    /// Time to first token of streams whose first token came in this second, µs.
    pub ttft: Option<Hist>,
    /// Gaps between content events of streams, recorded as they happened in this second, µs.
    pub itl: Option<Hist>,
    /// Send lag of requests sent on a free connection in this second, µs (live metrics).
    pub send_lag: Hist,
    /// Completed responses per `--group-by-header` value in this second.
    pub groups: Vec<(String, u64)>,
}

impl Interval {
    /// An empty interval for second `index`.
    pub fn new(index: u32) -> Interval {
        Interval {
            index,
            corrected: new_hist(),
            uncorrected: new_hist(),
            counts: Counts::default(),
            ttft: None,
            itl: None,
            send_lag: new_hist(),
            groups: Vec::new(),
        }
    }

    /// Counts a completed response whose `--group-by-header` value was `value`.
    pub fn count_group(&mut self, value: &str) {
        add_group(&mut self.groups, value, 1);
    }

    /// Adds another thread's snapshot of the same second.
    pub fn merge(&mut self, other: &Interval) {
        self.corrected
            .add(&other.corrected)
            .expect("same HDR settings");
        self.uncorrected
            .add(&other.uncorrected)
            .expect("same HDR settings");
        self.counts.add(&other.counts);
        self.send_lag
            .add(&other.send_lag)
            .expect("same HDR settings");
        for (v, n) in &other.groups {
            add_group(&mut self.groups, v, *n);
        }
        if let Some(t) = &other.ttft {
            self.ttft
                .get_or_insert_with(new_hist)
                .add(t)
                .expect("same HDR settings");
        }
        if let Some(t) = &other.itl {
            self.itl
                .get_or_insert_with(new_hist)
                .add(t)
                .expect("same HDR settings");
        }
    }

    /// The summary row kept after the histograms are gone.
    pub fn stats(&self) -> IntervalStats {
        let q = |p: f64| percentile(&self.corrected, p);
        IntervalStats {
            index: self.index,
            counts: self.counts.clone(),
            p50_us: q(50.0),
            p90_us: q(90.0),
            p99_us: q(99.0),
            p999_us: q(99.9),
            max_us: self.corrected.max(),
            uncorrected_p99_us: percentile(&self.uncorrected, 99.0),
            ttft_p99_us: self.ttft.as_ref().map_or(0, |t| percentile(t, 99.0)),
            groups: self.groups.clone(),
        }
    }
}

fn add_group(list: &mut Vec<(String, u64)>, value: &str, n: u64) {
    match list.iter_mut().find(|(v, _)| v == value) {
        Some(e) => e.1 += n,
        None => list.push((value.to_string(), n)),
    }
}

/// One second of the run as numbers: counts and corrected latency percentiles (µs; 0 when
/// nothing completed).
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalStats {
    /// Which second of the run, from 0.
    pub index: u32,
    /// Counters for this second.
    pub counts: Counts,
    /// Corrected latency percentiles, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Largest corrected latency, µs.
    pub max_us: u64,
    /// Uncorrected 99th percentile, µs.
    pub uncorrected_p99_us: u64,
    /// 99th percentile time to first token of this second's streams, µs (0 without streams).
    pub ttft_p99_us: u64,
    /// Completed responses per `--group-by-header` value in this second.
    pub groups: Vec<(String, u64)>,
}
