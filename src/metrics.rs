//! `--metrics-addr ADDR`: a live view of the run in Prometheus' text exposition format, as
//! Vegeta's `-prometheus-addr` gives — on one machine or on every shard of a plan, labelled
//! with the shard and the plan's identity so PromQL can sum them.
//!
//! The measurement is not disturbed: the worker threads never see this. The coordinator
//! folds each second's merged snapshot into `Metrics` (once a second, under a mutex no
//! worker takes), and a thread of its own answers `GET /metrics`.
//!
//! Used by `app` (a run with `--metrics-addr`).

use crate::outcome::ErrorClass;
use crate::record::histogram::{new_hist, Hist};
use crate::record::{Counts, Interval, IntervalStats};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, seconds.
const BUCKETS_S: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// What the endpoint reports: the run so far.
#[derive(Debug)]
pub struct Metrics {
    labels: String,
    target_per_s: f64,
    totals: Counts,
    corrected: Hist,
    send_lag: Hist,
    last_second_sent: u64,
}

impl Metrics {
    /// Empty metrics for a run of `target_per_s` (this process's share), labelled.
    pub fn new(shard: u64, shards: u64, plan: &str, target_per_s: f64) -> Metrics {
        Metrics {
            labels: format!("shard=\"{shard}\",shards=\"{shards}\",plan=\"{plan}\""),
            target_per_s,
            totals: Counts::default(),
            corrected: new_hist(),
            send_lag: new_hist(),
            last_second_sent: 0,
        }
    }

    /// Folds one second's merged snapshot in.
    pub fn second(&mut self, iv: &Interval, s: &IntervalStats) {
        self.totals.add(&s.counts);
        let _ = self.corrected.add(&iv.corrected);
        let _ = self.send_lag.add(&iv.send_lag);
        self.last_second_sent = s.counts.sent;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let l = &self.labels;
        let t = &self.totals;
        let mut o = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = write!(
                o,
                "# HELP ratebench_{name} {help}\n# TYPE ratebench_{name} counter\nratebench_{name}{{{l}}} {v}\n"
            );
        };
        counter(
            "requests_scheduled_total",
            "Requests whose intended send time has come.",
            t.scheduled,
        );
        counter(
            "requests_sent_total",
            "Requests written to a connection.",
            t.sent,
        );
        counter(
            "requests_completed_total",
            "Requests answered (any status).",
            t.completed,
        );
        counter(
            "requests_rate_limited_total",
            "Requests answered 429 Too Many Requests.",
            t.rate_limited,
        );
        let _ = write!(
            o,
            "# HELP ratebench_requests_failed_total Requests that failed, by error class.\n\
             # TYPE ratebench_requests_failed_total counter\n"
        );
        for class in ErrorClass::ALL {
            let _ = writeln!(
                o,
                "ratebench_requests_failed_total{{{l},class=\"{}\"}} {}",
                class.name(),
                t.errors[class.index()]
            );
        }
        let _ = write!(
            o,
            "# HELP ratebench_responses_total Completed responses by status class.\n\
             # TYPE ratebench_responses_total counter\n"
        );
        for (i, n) in t.status_classes.iter().enumerate() {
            let _ = writeln!(
                o,
                "ratebench_responses_total{{{l},status=\"{}xx\"}} {n}",
                i + 1
            );
        }
        let _ = write!(
            o,
            "# HELP ratebench_target_rate Requests per second this process is asked to send.\n\
             # TYPE ratebench_target_rate gauge\nratebench_target_rate{{{l}}} {}\n\
             # HELP ratebench_achieved_rate Requests sent in the last full second.\n\
             # TYPE ratebench_achieved_rate gauge\nratebench_achieved_rate{{{l}}} {}\n",
            self.target_per_s, self.last_second_sent
        );
        // Corrected latency (from each request's intended send time) and the generator's
        // own send lag, as cumulative buckets, exact from the HDR histograms so far.
        histogram(
            &mut o,
            l,
            "latency_seconds",
            "Corrected latency, from each request's intended send time.",
            &self.corrected,
        );
        histogram(
            &mut o,
            l,
            "send_lag_seconds",
            "Actual minus intended send time, on a free connection: ratebench's own delay.",
            &self.send_lag,
        );
        o
    }
}

/// One HDR histogram (µs) as a Prometheus histogram in seconds.
fn histogram(o: &mut String, l: &str, name: &str, help: &str, h: &Hist) {
    let _ = write!(
        o,
        "# HELP ratebench_{name} {help}\n# TYPE ratebench_{name} histogram\n"
    );
    for le in BUCKETS_S {
        let limit_us = (le * 1e6) as u64;
        let n: u64 = h
            .iter_recorded()
            .take_while(|v| h.highest_equivalent(v.value_iterated_to()) <= limit_us)
            .map(|v| v.count_at_value())
            .sum();
        let _ = writeln!(o, "ratebench_{name}_bucket{{{l},le=\"{le}\"}} {n}");
    }
    let _ = writeln!(
        o,
        "ratebench_{name}_bucket{{{l},le=\"+Inf\"}} {}\n\
         ratebench_{name}_sum{{{l}}} {}\n\
         ratebench_{name}_count{{{l}}} {}",
        h.len(),
        h.mean() * h.len() as f64 / 1e6,
        h.len()
    );
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("--metrics-addr {addr}: cannot listen: {source}")]
pub struct MetricsError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: std::io::Error,
}

/// Serves `metrics` at `addr` on a thread of its own, for the life of the process.
pub fn serve(addr: SocketAddr, metrics: Arc<Mutex<Metrics>>) -> Result<SocketAddr, MetricsError> {
    let listener = TcpListener::bind(addr).map_err(|source| MetricsError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError { addr, source })?;
    std::thread::Builder::new()
        .name("ratebench-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf); // the request line; any path gets the metrics
                let body = metrics.lock().map(|m| m.render()).unwrap_or_default();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
        .map_err(|source| MetricsError { addr, source })?;
    Ok(bound)
}
