//! `ratebench sweep`: where does the tail break? Constant-rate steps from R0 to R1
//! (geometric, so each step asks the same factor more), each a full run with its own
//! accounting, judged against the thresholds; the first failing step ends the climb, and a
//! bisection (geometric midpoints) between the last passing and the first failing rate
//! narrows the knee. A step fails when a threshold fails, when the rate was not held
//! (achieved < 99 % of asked: the server, or the connections, could not take it), or when
//! the generator itself was saturated (then the numbers are not the server's).
//!
//! This file holds the rule (rates, midpoints, verdicts) and the outputs (table, JSON,
//! HTML); `app` drives the runs.

use crate::record::histogram::percentile;
use crate::report::html::{chart, esc, spectrum_points, Scale, Series};
use crate::report::threshold::Verdict;
use crate::report::{Summary, BUSY_WARN};
use crate::run::RunResult;
use serde::Serialize;
use std::fmt::Write;

/// The JSON schema identifier of `ratebench sweep --json`.
pub const SCHEMA: &str = "ratebench-sweep/1";

/// A step's rate must be held to this share of what was asked.
pub const HELD: f64 = 0.99;

/// `steps` geometric rates from `from` to `to`, both included.
pub fn step_rates(from: f64, to: f64, steps: usize) -> Vec<f64> {
    if steps <= 1 {
        return vec![from];
    }
    let ratio = to / from;
    (0..steps)
        .map(|i| round_rate(from * ratio.powf(i as f64 / (steps - 1) as f64)))
        .collect()
}

/// The geometric midpoint of two rates, rounded for reading.
pub fn midpoint(lo: f64, hi: f64) -> f64 {
    round_rate((lo * hi).sqrt())
}

/// Whole requests/s from 10/s up, hundredths below.
fn round_rate(r: f64) -> f64 {
    if r >= 10.0 {
        r.round()
    } else {
        (r * 100.0).round() / 100.0
    }
}

/// One step of the sweep: what was asked, what happened, and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Asked rate, requests/s.
    pub asked_per_s: f64,
    /// Achieved (sent) rate, requests/s.
    pub achieved_per_s: f64,
    /// Corrected latency percentiles, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p99_9_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Scheduled requests.
    pub scheduled: u64,
    /// Failed requests.
    pub errors: u64,
    /// Requests still in flight when the step's grace period ended.
    pub unfinished: u64,
    /// Whether the step met everything.
    pub pass: bool,
    /// Why it failed (empty when it passed).
    pub why: Vec<String>,
    /// `step` (the climb) or `refine` (the bisection).
    pub phase: &'static str,
    /// The corrected spectrum, for the HTML (not in the JSON).
    #[serde(skip)]
    pub spectrum: Vec<(f64, Option<f64>)>,
}

/// Judges one finished step.
pub fn judge(
    asked: f64,
    r: &RunResult,
    s: &Summary,
    verdicts: &[Verdict],
    phase: &'static str,
) -> Step {
    let c = &r.recorder.corrected;
    let ms = |p: f64| percentile(c, p) as f64 / 1000.0;
    let mut why: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.pass)
        .map(|v| {
            format!(
                "{} (actual {:.3}{}{})",
                v.expr,
                v.actual,
                if v.unit.is_empty() { "" } else { " " },
                v.unit
            )
        })
        .collect();
    if s.achieved_rate < HELD * asked {
        why.push(format!(
            "rate not held ({:.1} of {asked} req/s)",
            s.achieved_rate
        ));
    }
    let busiest = r.busy.iter().cloned().fold(0.0, f64::max);
    let generator_behind = s
        .warnings
        .iter()
        .any(|w| w.starts_with("target rate not achieved — the generator fell behind"));
    if busiest > BUSY_WARN || generator_behind {
        why.push(format!(
            "generator saturated (busiest thread {:.0}% busy): add -t",
            busiest * 100.0
        ));
    }
    let t = &r.recorder.total;
    Step {
        asked_per_s: asked,
        achieved_per_s: s.achieved_rate,
        p50_ms: ms(50.0),
        p90_ms: ms(90.0),
        p99_ms: ms(99.0),
        p99_9_ms: ms(99.9),
        max_ms: c.max() as f64 / 1000.0,
        scheduled: t.scheduled,
        errors: t.error_total(),
        unfinished: r.unfinished,
        pass: why.is_empty(),
        why,
        phase,
        spectrum: spectrum_points(c),
    }
}

/// The table's header line.
pub fn table_header() -> String {
    format!(
        "{:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}  verdict\n",
        "asked/s", "achieved/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
    )
}

/// One step as a table row.
pub fn table_row(s: &Step) -> String {
    format!(
        "{:>10} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7}  {}{}\n",
        s.asked_per_s,
        s.achieved_per_s,
        s.p50_ms,
        s.p90_ms,
        s.p99_ms,
        s.p99_9_ms,
        s.max_ms,
        s.errors,
        if s.pass { "pass" } else { "FAIL: " },
        s.why.join("; ")
    )
}

/// The highest asked rate of a passing step.
pub fn highest_passing(steps: &[Step]) -> Option<f64> {
    steps
        .iter()
        .filter(|s| s.pass)
        .map(|s| s.asked_per_s)
        .fold(None, |m, r| Some(m.map_or(r, |m: f64| m.max(r))))
}

/// What the sweep was asked to do, for its outputs.
#[derive(Debug, Clone, Serialize)]
pub struct SweepConfig {
    /// The target.
    pub url: String,
    /// R0 and R1, requests/s.
    pub from_per_s: f64,
    /// R1.
    pub to_per_s: f64,
    /// Steps of the climb.
    pub steps: usize,
    /// Bisections.
    pub refine: usize,
    /// Each step's load duration, seconds.
    pub duration_s: f64,
    /// Connections and threads of each step.
    pub connections: usize,
    /// Threads.
    pub threads: usize,
    /// The thresholds every step is judged by.
    pub thresholds: Vec<String>,
}

#[derive(Serialize)]
struct Doc<'a> {
    schema: &'static str,
    tool: String,
    config: &'a SweepConfig,
    steps: &'a [Step],
    highest_passing_rate: Option<f64>,
}

/// `--json`: the sweep's steps and its answer.
pub fn json(config: &SweepConfig, steps: &[Step]) -> String {
    let mut s = serde_json::to_string_pretty(&Doc {
        schema: SCHEMA,
        tool: format!("ratebench {}", env!("CARGO_PKG_VERSION")),
        config,
        steps,
        highest_passing_rate: highest_passing(steps),
    })
    .expect("plain data serializes");
    s.push('\n');
    s
}

/// `--html`: the hockey stick (latency percentiles against the asked rate, log y), each
/// step's spectrum, and the table.
pub fn html(config: &SweepConfig, steps: &[Step], text: &str) -> String {
    let mut by_rate: Vec<&Step> = steps.iter().collect();
    by_rate.sort_by(|a, b| a.asked_per_s.total_cmp(&b.asked_per_s));
    let line = |name: &str, f: fn(&Step) -> f64| Series {
        name: name.into(),
        points: by_rate
            .iter()
            .map(|s| (s.asked_per_s, Some(f(s))))
            .collect(),
    };
    let stick = chart(
        "knee",
        "Corrected latency against the asked rate",
        "asked rate (requests/s)",
        "latency (ms, log scale)",
        Scale::Log,
        &[
            line("p50", |s| s.p50_ms),
            line("p90", |s| s.p90_ms),
            line("p99", |s| s.p99_ms),
            line("p99.9", |s| s.p99_9_ms),
        ],
        None,
    );
    let nines: Vec<(f64, String)> = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
        .map(|(i, l)| (i as f64, l.to_string()))
        .collect();
    let spectra: Vec<Series> = by_rate
        .iter()
        .map(|s| Series {
            name: format!("{} req/s{}", s.asked_per_s, if s.pass { "" } else { " ✗" }),
            points: s.spectrum.clone(),
        })
        .collect();
    let spectrum = chart(
        "spectra",
        "Each step's latency by percentile (corrected)",
        "percentile (log scale: number of nines)",
        "latency (ms, log scale)",
        Scale::Log,
        &spectra,
        Some(&nines),
    );
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ratebench sweep: {url}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
svg {{ display: block; margin: 1.5em 0; }} .title {{ font-weight: bold; font-size: 14px; }}
.tick {{ font-size: 11px; fill: #444; }} .label {{ font-size: 12px; fill: #222; }} .grid {{ stroke: #e4e4e4; }}
pre {{ background: #f6f6f6; padding: 1em; font-size: 12px; width: max-content; min-width: 760px; }}
</style></head><body>
<h1>ratebench sweep</h1>
<p>{url}: {from} → {to} req/s in {n} steps, {k} bisections; thresholds {th}</p>
<h2>{answer}</h2>
{stick}
{spectrum}
<pre>{text}</pre>
</body></html>
"#,
        url = esc(&config.url),
        from = config.from_per_s,
        to = config.to_per_s,
        n = config.steps,
        k = config.refine,
        th = esc(&config.thresholds.join(", ")),
        answer = match highest_passing(steps) {
            Some(r) => format!("Highest rate meeting all thresholds: {r} req/s"),
            None => "No step met all thresholds".into(),
        },
        text = esc(text),
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometric_steps_and_midpoints() {
        // 100 → 800 in 4 steps: ×2 each. Between 200 and 400, the geometric mean 282.8.
        assert_eq!(
            step_rates(100.0, 800.0, 4),
            vec![100.0, 200.0, 400.0, 800.0]
        );
        assert_eq!(step_rates(1.0, 100.0, 3), vec![1.0, 10.0, 100.0]);
        assert_eq!(midpoint(200.0, 400.0), 283.0);
        assert_eq!(midpoint(0.5, 2.0), 1.0);
    }
}
