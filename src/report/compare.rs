//! `ratebench compare`: is NEW faster or slower than BASE, and is the difference more than
//! noise?
//!
//! Each side is one run or several repeated runs (JSON summaries, or interval logs turned
//! into the same document). Per percentile (latency p50, p90, p99, p99.9; TTFT, ITL and
//! TPOT when both sides streamed; each tag's p99), the change is estimated on the log scale:
//!
//! - a side's centre is the mean of its runs' log percentiles (a geometric mean);
//! - its variance is the spread *between* its runs (s²/k, Student's t with k−1 degrees of
//!   freedom — Treadmill's point: run-to-run variance dominates), floored by the runs' own
//!   95 % intervals (each run's batch-means interval, read as ±1.96 standard errors on the
//!   log scale, averaged /k): a side never claims more precision than one run has; one run
//!   per side has only its own interval (and the report says so);
//! - the change's interval is the difference ± t·se with Welch–Satterthwaite degrees of
//!   freedom, shown as a relative change; the intervals of one table hold together
//!   (Bonferroni over its m rows with an interval: each at 1 − 0.05/m); the verdict is
//!   `slower`/`faster` when the interval excludes 0, else `no significant change`.
//!
//! Where a run has no interval for a percentile (too few requests, or a log without time
//! slots), that percentile gets no verdict. The error rate is compared in percentage points
//! (binomial variance within a run, between-run spread across runs); the achieved rate by
//! between-run spread (one run per side: values only).
//!
//! `--fail-if 'p99>+5%'` fails (exit 99) only when the change is significant in that
//! direction *and* its point estimate is beyond the bound, so noise never fails a build.
//!
//! Used by `app::compare`; reads only `json::Document`s.

use super::html::esc;
use super::json::{Document, Percentiles, CI_PERCENTILES};
use crate::error::{invalid, ConfigError};
use crate::record::batches::needed;
use crate::units::parse_duration;
use serde::Serialize;
use std::fmt::Write;

/// The compare document's schema identifier.
pub const SCHEMA: &str = "ratebench-compare/1";

/// One side of a comparison: a label and its repeated runs.
#[derive(Debug, Clone)]
pub struct Side {
    /// The file names, joined, or the one file.
    pub label: String,
    /// The files, in the order given.
    pub files: Vec<String>,
    /// Their summaries.
    pub runs: Vec<Document>,
}

/// What a change means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly higher latency (or error rate).
    Slower,
    /// Significantly lower.
    Faster,
    /// The interval contains 0.
    NoSignificantChange,
    /// No interval could be given.
    NotAvailable,
}

impl Verdict {
    fn words(self, unit: Unit) -> &'static str {
        match (self, unit) {
            (Verdict::Slower, Unit::Ms) => "slower",
            (Verdict::Faster, Unit::Ms) => "faster",
            (Verdict::Slower, Unit::Share) => "more errors",
            (Verdict::Faster, Unit::Share) => "fewer errors",
            (Verdict::Slower, Unit::PerS) => "higher",
            (Verdict::Faster, Unit::PerS) => "lower",
            (Verdict::NoSignificantChange, _) => "no significant change",
            (Verdict::NotAvailable, _) => "",
        }
    }
}

/// What a metric is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds; changes are relative.
    Ms,
    /// A share (0–1); changes are absolute, in percentage points.
    Share,
    /// Per second; changes are relative.
    PerS,
}

/// One metric's change from BASE to NEW.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `p99`, `p99.9`, `ttft_p99`, `tag:checkout p99`, `errors`, `rate`.
    pub metric: String,
    /// What `base`, `new` and `change` are in.
    pub unit: Unit,
    /// BASE's centre (geometric mean of its runs for ms and rates; mean for shares).
    pub base: f64,
    /// NEW's centre.
    pub new: f64,
    /// Relative change (`Ms`, `PerS`: 0.137 = +13.7 %) or absolute (`Share`: points as a
    /// fraction, 0.001 = +0.1 pt).
    pub change: f64,
    /// The change's 95 % interval, or null.
    pub ci95: Option<[f64; 2]>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why there is no interval, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// BASE's and NEW's estimates (log scale, or shares), until `settle` turns them into
    /// the interval.
    #[serde(skip)]
    estimates: Option<(Estimate, Estimate)>,
}

/// A side's estimate on the log scale: centre, variance of the centre, degrees of freedom
/// (`f64::INFINITY` when only the runs' own intervals spoke).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    centre: f64,
    var: f64,
    dof: f64,
}

/// Combines k runs' values and their own standard errors (on the same scale).
fn estimate(values: &[f64], own_se: &[f64]) -> Estimate {
    let k = values.len() as f64;
    let centre = values.iter().sum::<f64>() / k;
    let within = own_se.iter().map(|s| s * s).sum::<f64>() / k / k;
    if values.len() < 2 {
        return Estimate {
            centre,
            var: within,
            dof: f64::INFINITY,
        };
    }
    // The spread between runs holds every source of variance (the machine's too) and its
    // Student's t is exact whatever it came out as; the runs' own intervals only floor it
    // (three runs can agree by chance far more closely than any one of them is precise).
    let between = values.iter().map(|v| (v - centre).powi(2)).sum::<f64>() / (k - 1.0) / k;
    Estimate {
        centre,
        var: between.max(within),
        dof: k - 1.0,
    }
}

/// The standard normal's quantile (Acklam's rational approximation, within 1.2e-9).
fn z_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        let r = (-2.0 * q.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    if p < 0.02425 {
        tail(p)
    } else if p > 1.0 - 0.02425 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Student's t quantile `p` (> 0.5) with `dof` degrees of freedom: exact for 1, 2 and 4,
/// log-linear in 1/dof between 2 and 4 for 3, Cornish–Fisher from 5 on.
fn t_quantile(p: f64, dof: f64) -> f64 {
    let exact = |v: u32| match v {
        1 => (std::f64::consts::PI * (p - 0.5)).tan(),
        2 => (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt(),
        _ => {
            let a = 4.0 * p * (1.0 - p);
            let q = ((a.sqrt()).acos() / 3.0).cos() / a.sqrt();
            2.0 * (q - 1.0).sqrt()
        }
    };
    if !dof.is_finite() || dof > 1e6 {
        return z_quantile(p);
    }
    let v = dof.floor().max(1.0);
    match v as u32 {
        1 | 2 | 4 => exact(v as u32),
        // ln t is nearly linear in 1/dof (within 2 % here, on the wide side).
        3 => (exact(4).ln() + (exact(2).ln() - exact(4).ln()) / 3.0).exp(),
        _ => {
            let z = z_quantile(p);
            z + (z.powi(3) + z) / (4.0 * v)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
                + (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z)
                    / (384.0 * v * v * v)
        }
    }
}

/// The half-width multiplier for the difference of two estimates (Welch's degrees of
/// freedom) at two-sided level `level` (0.95, or higher for simultaneous intervals).
fn t_welch_at(a: Estimate, b: Estimate, level: f64) -> f64 {
    let p = 1.0 - (1.0 - level) / 2.0;
    let v = a.var + b.var;
    let part = |e: Estimate| {
        if e.dof.is_finite() {
            e.var * e.var / e.dof
        } else {
            0.0
        }
    };
    let denom = part(a) + part(b);
    if denom <= 0.0 || v <= 0.0 {
        return z_quantile(p);
    }
    t_quantile(p, (v * v / denom).max(1.0))
}

/// The 95 % half-width multiplier for the difference of two estimates (Welch).
#[cfg(test)]
fn t_welch(a: Estimate, b: Estimate) -> f64 {
    t_welch_at(a, b, 0.95)
}

fn verdict(lo: f64, hi: f64) -> Verdict {
    if lo > 0.0 {
        Verdict::Slower
    } else if hi < 0.0 {
        Verdict::Faster
    } else {
        Verdict::NoSignificantChange
    }
}

/// The percentiles compared: (label, `Percentiles` field / `ci95` key, quantile).
const PERCENTILES: [(&str, &str, f64); 4] = [
    ("p50", "p50", 0.5),
    ("p90", "p90", 0.9),
    ("p99", "p99", 0.99),
    ("p99.9", "p99_9", 0.999),
];

fn value(p: &Percentiles, key: &str) -> f64 {
    match key {
        "p50" => p.p50,
        "p75" => p.p75,
        "p90" => p.p90,
        "p99" => p.p99,
        "p99_9" => p.p99_9,
        "p99_99" => p.p99_99,
        "p99_999" => p.p99_999,
        _ => f64::NAN,
    }
}

/// The change of one percentile, given each run's `Percentiles`.
fn percentile_change(
    metric: String,
    key: &str,
    q: f64,
    base: &[&Percentiles],
    new: &[&Percentiles],
) -> Change {
    let ln = |x: f64| x.max(1e-6).ln();
    let gmean = |ps: &[&Percentiles]| {
        (ps.iter().map(|p| ln(value(p, key))).sum::<f64>() / ps.len() as f64).exp()
    };
    let (b, n) = (gmean(base), gmean(new));
    let mut change = Change {
        metric,
        unit: Unit::Ms,
        base: b,
        new: n,
        change: n / b - 1.0,
        ci95: None,
        verdict: Verdict::NotAvailable,
        note: None,
        estimates: None,
    };
    // Each run's own standard error on the log scale, from its 95 % interval.
    let own = |ps: &[&Percentiles]| -> Option<(Vec<f64>, Vec<f64>)> {
        let mut values = Vec::new();
        let mut se = Vec::new();
        for p in ps {
            let [lo, hi] = p.ci95.as_ref()?.get(key).copied().flatten()?;
            values.push(ln(value(p, key)));
            se.push((ln(hi) - ln(lo)) / (2.0 * 1.959_964));
        }
        Some((values, se))
    };
    let (Some((bv, bs)), Some((nv, ns))) = (own(base), own(new)) else {
        let short = base.iter().chain(new).any(|p| p.count < needed(q));
        change.note = Some(if short {
            format!("n/a: needs ≥ {} requests per run", needed(q))
        } else {
            "n/a: a run has no interval".into()
        });
        return change;
    };
    change.estimates = Some((estimate(&bv, &bs), estimate(&nv, &ns)));
    change
}

/// The change of the error share (points).
fn error_change(base: &[Document], new: &[Document]) -> Change {
    let shares = |runs: &[Document]| -> (Vec<f64>, Vec<f64>) {
        runs.iter()
            .map(|r| {
                let n = r.accounting.scheduled.max(1) as f64;
                let p = r.accounting.errors as f64 / n;
                // Binomial, never zero (half an error's worth when none was seen).
                let pp = p.max(0.5 / n);
                (p, (pp * (1.0 - pp) / n).sqrt())
            })
            .unzip()
    };
    let (bv, bs) = shares(base);
    let (nv, ns) = shares(new);
    let (eb, en) = (estimate(&bv, &bs), estimate(&nv, &ns));
    let none = bv.iter().chain(&nv).all(|p| *p == 0.0);
    Change {
        metric: "errors".into(),
        unit: Unit::Share,
        base: eb.centre,
        new: en.centre,
        change: en.centre - eb.centre,
        ci95: None,
        verdict: if none {
            Verdict::NoSignificantChange
        } else {
            Verdict::NotAvailable
        },
        note: none.then(|| "no errors on either side".into()),
        estimates: (!none).then_some((eb, en)),
    }
}

/// The change of the achieved rate (relative; an interval only from repeated runs).
fn rate_change(base: &[Document], new: &[Document]) -> Change {
    let logs = |runs: &[Document]| -> Vec<f64> {
        runs.iter()
            .map(|r| r.rates.achieved_per_s.max(1e-9).ln())
            .collect()
    };
    let (bv, nv) = (logs(base), logs(new));
    let zero = |v: &[f64]| vec![0.0; v.len()];
    let (eb, en) = (estimate(&bv, &zero(&bv)), estimate(&nv, &zero(&nv)));
    let d = en.centre - eb.centre;
    let mut c = Change {
        metric: "rate".into(),
        unit: Unit::PerS,
        base: eb.centre.exp(),
        new: en.centre.exp(),
        change: d.exp() - 1.0,
        ci95: None,
        verdict: Verdict::NotAvailable,
        note: Some("n/a: one run per side".into()),
        estimates: None,
    };
    if bv.len() >= 2 && nv.len() >= 2 {
        c.note = None;
        c.estimates = Some((eb, en));
    }
    c
}

/// Each run's percentiles of one distribution, if every run has it.
fn pick<'a>(
    runs: &'a [Document],
    f: impl Fn(&'a Document) -> Option<&'a Percentiles>,
) -> Option<Vec<&'a Percentiles>> {
    runs.iter()
        .map(f)
        .collect::<Option<Vec<_>>>()
        .filter(|ps| ps.iter().all(|p| p.count > 0))
}

/// Every metric's change from `base` to `new`.
pub fn changes(base: &Side, new: &Side) -> Vec<Change> {
    let mut out = Vec::new();
    type Of = fn(&Document) -> &Percentiles;
    let groups: [(&str, Of); 4] = [
        ("", |d| &d.latency_ms.corrected),
        ("ttft_", |d| &d.streaming.ttft_ms),
        ("itl_", |d| &d.streaming.itl_ms),
        ("tpot_", |d| &d.streaming.tpot_ms),
    ];
    for (prefix, f) in groups {
        let b = pick(&base.runs, |d| Some(f(d)));
        let n = pick(&new.runs, |d| Some(f(d)));
        if let (Some(b), Some(n)) = (b, n) {
            for (label, key, q) in PERCENTILES {
                out.push(percentile_change(
                    format!("{prefix}{label}"),
                    key,
                    q,
                    &b,
                    &n,
                ));
            }
        }
    }
    // Tags both sides have, p99 only (a run of one tag: that is the whole run's p99).
    let tags = &base.runs[0].tags;
    for tag in tags.keys().filter(|_| tags.len() > 1) {
        let b = pick(&base.runs, |d| d.tags.get(tag).map(|t| &t.latency_ms));
        let n = pick(&new.runs, |d| d.tags.get(tag).map(|t| &t.latency_ms));
        if let (Some(b), Some(n)) = (b, n) {
            out.push(percentile_change(
                format!("tag:{tag} p99"),
                "p99",
                0.99,
                &b,
                &n,
            ));
        }
    }
    out.push(error_change(&base.runs, &new.runs));
    out.push(rate_change(&base.runs, &new.runs));
    settle(&mut out);
    out
}

/// Turns the estimates into intervals and verdicts that hold *together*: with m rows that
/// have an interval, each is at level 1 − 0.05/m (Bonferroni), so the chance that any
/// verdict of the table is noise stays under 5 % — a table of a dozen rows at 95 % each
/// would call one of them changed in almost half of identical comparisons.
fn settle(changes: &mut [Change]) {
    let m = changes
        .iter()
        .filter(|c| c.estimates.is_some())
        .count()
        .max(1);
    let level = 1.0 - 0.05 / m as f64;
    for c in changes.iter_mut() {
        let Some((eb, en)) = c.estimates.take() else {
            continue;
        };
        let d = en.centre - eb.centre;
        let half = t_welch_at(eb, en, level) * (eb.var + en.var).sqrt();
        let (lo, hi) = (d - half, d + half);
        c.ci95 = Some(match c.unit {
            Unit::Share => [lo, hi],
            _ => [lo.exp() - 1.0, hi.exp() - 1.0],
        });
        c.verdict = verdict(lo, hi);
    }
}

/// What differs between two runs' plans (URL, rate, arrival, connections); nothing for a
/// log of another tool (no plan written down).
pub fn plan_differences(a: &Document, b: &Document) -> Vec<String> {
    let (x, y) = (&a.config, &b.config);
    if x.threads == 0 || y.threads == 0 {
        return Vec::new();
    }
    let mut d = Vec::new();
    if x.url != y.url {
        d.push(format!("URL {} vs {}", x.url, y.url));
    }
    if (x.rate_per_s - y.rate_per_s).abs() > 1e-9 * x.rate_per_s.max(1.0) {
        d.push(format!("rate {}/s vs {}/s", x.rate_per_s, y.rate_per_s));
    }
    if x.arrival != y.arrival {
        d.push(format!("arrival {} vs {}", x.arrival, y.arrival));
    }
    if x.connections != y.connections {
        d.push(format!(
            "connections {} vs {}",
            x.connections, y.connections
        ));
    }
    d
}

/// A `--fail-if` rule: `p99>+5%`, `p50<-10%`, `ttft_p99>+50ms`, `errors>+1%` (points).
#[derive(Debug, Clone, PartialEq)]
pub struct FailIf {
    /// As typed.
    pub expr: String,
    /// The metric, as `Change::metric` names it.
    pub metric: String,
    /// `>`: fails on a significant rise beyond the bound; `<`: a significant fall.
    pub above: bool,
    /// The bound: relative (0.05) or absolute in the metric's unit (ms; share for errors).
    pub bound: f64,
    /// Whether `bound` is relative.
    pub relative: bool,
}

/// Parses `--fail-if`.
pub fn parse_fail_if(s: &str) -> Result<FailIf, ConfigError> {
    let hint = "expected METRIC>+BOUND or METRIC<-BOUND, e.g. p99>+5%, p50>+2ms, \
                ttft_p99>+10%, errors>+1% (points), rate<-5%";
    let bad = || invalid("--fail-if", s, hint);
    let (at, above) = match (s.find('>'), s.find('<')) {
        (Some(i), None) => (i, true),
        (None, Some(i)) => (i, false),
        _ => return Err(bad()),
    };
    let mut metric = s[..at].trim().to_ascii_lowercase();
    if metric == "p99_9" {
        metric = "p99.9".into();
    }
    let known = ["", "ttft_", "itl_", "tpot_"].iter().any(|p| {
        PERCENTILES
            .iter()
            .any(|(l, _, _)| metric == format!("{p}{l}"))
    });
    if !known && metric != "errors" && metric != "rate" {
        return Err(invalid(
            "--fail-if",
            s,
            "unknown metric: use p50, p90, p99, p99.9 (optionally ttft_/itl_/tpot_), errors or rate",
        ));
    }
    let rest = s[at + 1..].trim();
    let sign = match rest.chars().next() {
        Some('+') => 1.0,
        Some('-') => -1.0,
        _ => return Err(bad()),
    };
    if (sign > 0.0) != above {
        return Err(invalid(
            "--fail-if",
            s,
            "a rise is '>+BOUND' and a fall '<-BOUND', e.g. p99>+5% or rate<-5%",
        ));
    }
    let body = rest[1..].trim();
    let (bound, relative) = if let Some(p) = body.strip_suffix('%') {
        let v: f64 = p.trim().parse().map_err(|_| bad())?;
        // For errors, a percentage is in points of the error share.
        (v / 100.0, metric != "errors")
    } else {
        if metric == "errors" || metric == "rate" {
            return Err(invalid(
                "--fail-if",
                s,
                "errors and rate take a percentage, e.g. errors>+1% or rate<-5%",
            ));
        }
        let d = parse_duration(body).map_err(|r| invalid("--fail-if", s, r))?;
        (d.as_secs_f64() * 1000.0, false)
    };
    if !(bound.is_finite() && bound >= 0.0) {
        return Err(bad());
    }
    Ok(FailIf {
        expr: s.to_string(),
        metric,
        above,
        bound: sign * bound,
        relative,
    })
}

/// A `--fail-if` rule's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailIfResult {
    /// As typed.
    pub expr: String,
    /// Which comparison (NEW's label).
    pub new: String,
    /// Whether it failed.
    pub failed: bool,
    /// Why, in words.
    pub reason: String,
}

/// Checks a rule against one comparison's changes.
pub fn check(rule: &FailIf, new: &str, changes: &[Change]) -> FailIfResult {
    let result = |failed: bool, reason: String| FailIfResult {
        expr: rule.expr.clone(),
        new: new.to_string(),
        failed,
        reason,
    };
    let Some(c) = changes.iter().find(|c| c.metric == rule.metric) else {
        return result(false, format!("{} not measured on both sides", rule.metric));
    };
    let moved = if rule.relative || c.unit == Unit::Share {
        c.change
    } else {
        c.new - c.base
    };
    let significant = matches!(
        (rule.above, c.verdict),
        (true, Verdict::Slower) | (false, Verdict::Faster)
    );
    let beyond = if rule.above {
        moved > rule.bound
    } else {
        moved < rule.bound
    };
    let shown = fmt_change(c);
    match (significant, beyond) {
        (true, true) => result(true, format!("{shown}: significant and beyond the bound")),
        (false, true) => result(
            false,
            format!("{shown}: beyond the bound but not significant"),
        ),
        (true, false) => result(false, format!("{shown}: significant but within the bound")),
        (false, false) => result(false, format!("{shown}: within the bound")),
    }
}

fn fmt_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms if v >= 1000.0 => format!("{:.2}s", v / 1000.0),
        Unit::Ms if v >= 1.0 => format!("{v:.2}ms"),
        Unit::Ms => format!("{:.0}us", v * 1000.0),
        Unit::Share => format!("{:.2}%", v * 100.0),
        Unit::PerS => format!("{v:.1}/s"),
    }
}

fn fmt_rel(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Share => format!("{:+.2} pt", v * 100.0),
        _ => format!("{:+.1}%", v * 100.0),
    }
}

fn fmt_change(c: &Change) -> String {
    fmt_rel(c.change, c.unit)
}

fn fmt_interval(c: &Change) -> String {
    match (c.ci95, &c.note) {
        (Some([lo, hi]), _) => format!("[{}, {}]", fmt_rel(lo, c.unit), fmt_rel(hi, c.unit)),
        (None, Some(n)) => format!("[{n}]"),
        (None, None) => "[n/a]".into(),
    }
}

fn runs_word(side: &Side) -> String {
    match side.runs.len() {
        1 => "1 run".into(),
        k => format!("{k} runs"),
    }
}

/// The text report of one comparison.
pub fn render_text(base: &Side, new: &Side, changes: &[Change]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Compare: base {} ({}) → new {} ({})",
        base.label,
        runs_word(base),
        new.label,
        runs_word(new)
    );
    if base.runs.len() < 2 || new.runs.len() < 2 {
        out.push_str(
            "  (a side with one run: the variance between runs is not measured, only each \
             run's own; repeat runs, --base a1 a2 a3 --new b1 b2 b3, for a verdict that \
             holds from run to run)\n",
        );
    }
    let rows: Vec<[String; 5]> = changes
        .iter()
        .map(|c| {
            [
                c.metric.clone(),
                format!(
                    "{} → {}",
                    fmt_value(c.base, c.unit),
                    fmt_value(c.new, c.unit)
                ),
                fmt_change(c),
                fmt_interval(c),
                c.verdict.words(c.unit).to_string(),
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let w: Vec<usize> = (0..4).map(width).collect();
    for r in &rows {
        let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n - s.chars().count()));
        let line = format!(
            "  {}  {}  {}  {}  {}",
            pad(&r[0], w[0]),
            pad(&r[1], w[1]),
            format_args!("{:>1$}", r[2], w[2]),
            pad(&r[3], w[3]),
            r[4]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// One comparison in the JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonDoc {
    /// NEW's label.
    pub new: String,
    /// NEW's files.
    pub new_files: Vec<String>,
    /// Every metric's change.
    pub changes: Vec<Change>,
}

/// The JSON document (`--json`, schema `schema/compare.schema.json`).
#[derive(Debug, Clone, Serialize)]
pub struct CompareDoc {
    /// Always `SCHEMA`.
    pub schema: String,
    /// `ratebench <version>`.
    pub tool: String,
    /// BASE's label.
    pub base: String,
    /// BASE's files.
    pub base_files: Vec<String>,
    /// One per NEW.
    pub comparisons: Vec<ComparisonDoc>,
    /// What differed between the plans (compared anyway with `--force`).
    pub plan_differences: Vec<String>,
    /// `--fail-if` outcomes.
    pub fail_if: Vec<FailIfResult>,
    /// Whether no `--fail-if` failed.
    pub passed: bool,
}

/// The HTML page: each side's corrected percentile spectrum (centre and 95 % band between
/// the lowest and highest run intervals) on a "number of nines" axis, then the tables.
pub fn render_html(base: &Side, news: &[Side], texts: &[String]) -> String {
    let mut sides: Vec<&Side> = vec![base];
    sides.extend(news);
    let svg = spectra_svg(&sides, &spectra(&sides));
    let mut page = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ratebench compare</title>\
         <style>body{font-family:sans-serif;margin:2em}pre{background:#f6f6f6;padding:1em}\
         </style></head><body><h1>ratebench compare</h1>",
    );
    page.push_str(&svg);
    for t in texts {
        let _ = write!(page, "<pre>{}</pre>", esc(t));
    }
    page.push_str("</body></html>\n");
    page
}

/// Per side: (nines, centre, low, high) of each percentile all its runs have enough
/// requests for; the centre is the runs' geometric mean, the band the widest of their
/// intervals.
fn spectra(sides: &[&Side]) -> Vec<Vec<(f64, f64, f64, f64)>> {
    sides
        .iter()
        .map(|s| {
            let ps: Vec<&Percentiles> = s.runs.iter().map(|r| &r.latency_ms.corrected).collect();
            CI_PERCENTILES
                .iter()
                .filter_map(|(k, q)| {
                    if ps.iter().any(|p| p.count < needed(*q)) {
                        return None;
                    }
                    let c = (ps.iter().map(|p| value(p, k).max(1e-6).ln()).sum::<f64>()
                        / ps.len() as f64)
                        .exp();
                    let ci = |i: usize, f: fn(f64, f64) -> f64, init: f64| {
                        ps.iter()
                            .filter_map(|p| p.ci95.as_ref()?.get(*k).copied().flatten())
                            .map(|b: [f64; 2]| b[i])
                            .fold(init, f)
                    };
                    let lo = ci(0, f64::min, c);
                    let hi = ci(1, f64::max, c);
                    Some((-(1.0 - q).log10(), c, lo, hi))
                })
                .collect()
        })
        .collect()
}

/// The overlaid spectra as inline SVG (log latency axis, one colour per side).
fn spectra_svg(sides: &[&Side], curves: &[Vec<(f64, f64, f64, f64)>]) -> String {
    let mut svg = String::new();
    let (w, h, left, right, top, bottom) = (760.0, 320.0, 70.0, 200.0, 30.0, 45.0);
    let all = curves.iter().flatten();
    let ymin = all.clone().map(|p| p.2).fold(f64::MAX, f64::min).max(1e-3);
    let ymax = all
        .clone()
        .map(|p| p.3)
        .fold(f64::MIN, f64::max)
        .max(ymin * 1.01);
    let (l0, l1) = (
        ymin.log10().floor(),
        ymax.log10().ceil().max(ymin.log10().floor() + 1.0),
    );
    let xmax = 5.0;
    let px = |x: f64| left + (w - left - right) * (x - 0.3) / (xmax - 0.3);
    let py = |y: f64| top + (h - top - bottom) * (1.0 - (y.max(1e-9).log10() - l0) / (l1 - l0));
    let _ = write!(
        svg,
        "<svg id=\"spectra\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{left}\" y=\"18\" font-size=\"13\">Corrected latency by percentile (95 % \
         intervals shaded)</text>"
    );
    for d in (l0 as i32)..=(l1 as i32) {
        let y = py(10f64.powi(d));
        let label = fmt_value(10f64.powi(d), Unit::Ms);
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            w - right,
            left - 6.0,
            y + 4.0
        );
    }
    for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)]
        .into_iter()
        .chain([("p99.99", 0.9999), ("p99.999", 0.99999)])
    {
        let x = px(-(1.0f64 - q).log10());
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{}\" stroke=\"#eee\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            h - bottom,
            h - bottom + 16.0
        );
    }
    const COLORS: [&str; 6] = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    for (i, (side, curve)) in sides.iter().zip(curves).enumerate() {
        let color = COLORS[i % COLORS.len()];
        if curve.is_empty() {
            continue;
        }
        let upper: Vec<String> = curve
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.3)))
            .collect();
        let lower: Vec<String> = curve
            .iter()
            .rev()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.2)))
            .collect();
        let line: Vec<String> = curve
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let points: Vec<String> = curve
            .iter()
            .map(|p| format!("{:.4}:{:.4}", p.0, p.1))
            .collect();
        let name = esc(&side.label);
        let _ = write!(
            svg,
            "<polygon points=\"{} {}\" fill=\"{color}\" fill-opacity=\"0.18\" stroke=\"none\"/>\
             <polyline data-series=\"{name}\" data-points=\"{}\" points=\"{}\" fill=\"none\" \
             stroke=\"{color}\" stroke-width=\"2\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{color}\">{name}</text>",
            upper.join(" "),
            lower.join(" "),
            points.join(" "),
            line.join(" "),
            w - right + 10.0,
            top + 16.0 * (i as f64 + 1.0)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_per_side_uses_each_runs_interval() {
        // ±1.96 se of 0.05 on the log scale each: the difference's se is 0.05·√2.
        let a = estimate(&[0.0], &[0.05]);
        let b = estimate(&[0.2], &[0.05]);
        assert_eq!(a.dof, f64::INFINITY);
        let half = t_welch(a, b) * (a.var + b.var).sqrt();
        assert!((half - 1.959_964 * 0.05 * 2f64.sqrt()).abs() < 1e-9);
        assert_eq!(verdict(0.2 - half, 0.2 + half), Verdict::Slower);
    }

    #[test]
    fn repeated_runs_use_the_spread_between_them_when_larger() {
        // Three runs 0, 0.1, 0.2: s² = 0.01, s²/k = 0.01/3, t with 2 degrees of freedom.
        let e = estimate(&[0.0, 0.1, 0.2], &[0.001; 3]);
        assert!((e.var - 0.01 / 3.0).abs() < 1e-12 && e.dof == 2.0);
        // The runs agree more closely than each is precise: their own intervals count.
        let e = estimate(&[0.0, 0.001, 0.002], &[0.05; 3]);
        assert!((e.var - 0.05f64.powi(2) / 3.0).abs() < 1e-12 && e.dof == 2.0);
        // Welch: two sides of 3 runs with equal variance → 4 degrees of freedom.
        let a = estimate(&[0.0, 0.1, 0.2], &[0.0; 3]);
        assert!((t_welch(a, a) - t_quantile(0.975, 4.0)).abs() < 1e-12);
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // Two-sided 95 % (0.975) and 99.5 % (0.9975), from the usual t table.
        for (dof, t975, t9975) in [
            (1.0, 12.706, 127.32),
            (2.0, 4.303, 14.089),
            (3.0, 3.182, 7.453),
            (4.0, 2.776, 5.598),
            (6.0, 2.447, 4.317),
            (10.0, 2.228, 3.581),
            (30.0, 2.042, 3.030),
        ] {
            let (a, b) = (t_quantile(0.975, dof), t_quantile(0.9975, dof));
            assert!((a / t975 - 1.0).abs() < 0.02, "t(0.975, {dof}) = {a}");
            assert!((b / t9975 - 1.0).abs() < 0.06, "t(0.9975, {dof}) = {b}");
        }
        assert!((z_quantile(0.975) - 1.959_964).abs() < 1e-6);
        assert!((z_quantile(0.9975) - 2.807_034).abs() < 1e-5);
    }

    #[test]
    fn fail_if_parses_and_refuses() {
        let r = parse_fail_if("p99>+5%").unwrap();
        assert!(r.above && r.relative && (r.bound - 0.05).abs() < 1e-12 && r.metric == "p99");
        let r = parse_fail_if("ttft_p99.9>+20ms").unwrap();
        assert!(!r.relative && (r.bound - 20.0).abs() < 1e-9 && r.metric == "ttft_p99.9");
        let r = parse_fail_if("errors>+1%").unwrap();
        assert!(!r.relative && (r.bound - 0.01).abs() < 1e-12);
        let r = parse_fail_if("rate<-5%").unwrap();
        assert!(!r.above && (r.bound + 0.05).abs() < 1e-12);
        for bad in [
            "p99>5%",
            "p98>+5%",
            "p99<+5%",
            "p99",
            "errors>+2ms",
            "p99>+x%",
        ] {
            let e = parse_fail_if(bad).unwrap_err().to_string();
            assert!(e.contains("--fail-if"), "{bad}: {e}");
        }
    }

    #[test]
    fn fail_if_needs_significance_and_the_bound() {
        let change = |change: f64, ci: [f64; 2], v: Verdict| Change {
            metric: "p99".into(),
            unit: Unit::Ms,
            base: 10.0,
            new: 10.0 * (1.0 + change),
            change,
            ci95: Some(ci),
            verdict: v,
            note: None,
            estimates: None,
        };
        let rule = parse_fail_if("p99>+5%").unwrap();
        let slower = change(0.137, [0.082, 0.195], Verdict::Slower);
        assert!(check(&rule, "b", &[slower]).failed);
        let noisy = change(0.137, [-0.02, 0.3], Verdict::NoSignificantChange);
        assert!(!check(&rule, "b", &[noisy]).failed);
        let small = change(0.03, [0.01, 0.05], Verdict::Slower);
        assert!(!check(&rule, "b", std::slice::from_ref(&small)).failed);
        let abs = parse_fail_if("p99>+0.2ms").unwrap();
        assert!(check(&abs, "b", &[small]).failed, "+0.3 ms > +0.2 ms");
    }
}
