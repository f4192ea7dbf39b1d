//! The text report on stdout, shaped like wrk2's so its readers feel at home, plus what
//! wrk2 does not say: the accounting line, status codes, error classes, connections, send
//! lag and the uncorrected latency beside the corrected one.
//!
//! `spectrum` writes HdrHistogram's percentile-distribution format (values in ms), which
//! HdrHistogram's plotters read.
//!
//! Used by `app` (run, demo, report) and `report::html` (the same text in the page).

use super::threshold::Verdict;
use super::{fmt_bytes, fmt_us, na_max, na_us, within_stdev, Summary};
use crate::outcome::{ErrorClass, Retry};
use crate::record::batches::{interval, Batches};
use crate::record::histogram::percentile;
use crate::record::histogram::{Hist, SIGFIGS};
use crate::record::Recorder;
use crate::run::{RunMeta, RunResult};
use crate::units::trim_decimal;
use std::fmt::Write;

/// `Regimes: 0–30s p99 1.00ms · 30–45s p99 10.00ms · … (latency rose at 30s, fell at 45s)`
/// when the run was not one regime, and `Incidents: …` when seconds left the baseline.
fn regimes_and_incidents(o: &mut String, s: &Summary) {
    if s.regimes.len() > 1 {
        let parts: Vec<String> = s
            .regimes
            .iter()
            .map(|g| {
                let mut p = format!(
                    "{}–{}s p99 {}",
                    g.start_s,
                    g.end_s,
                    fmt_us(g.p99_ms * 1000.0)
                );
                if g.error_share >= 0.001 {
                    p += &format!(", errors {:.1}%", 100.0 * g.error_share);
                }
                p
            })
            .collect();
        let changes: Vec<String> = s
            .regimes
            .windows(2)
            .map(|w| {
                let (a, b) = (&w[0], &w[1]);
                let what = if (b.p99_ms / a.p99_ms.max(1e-9)).ln().abs() >= 0.223 {
                    if b.p99_ms > a.p99_ms {
                        "latency rose"
                    } else {
                        "latency fell"
                    }
                } else if b.error_share > a.error_share {
                    "errors rose"
                } else {
                    "errors fell"
                };
                format!("{what} at {}s", b.start_s)
            })
            .collect();
        let _ = writeln!(o, "Regimes: {} ({})", parts.join(" · "), changes.join(", "));
    }
    if !s.incidents.is_empty() {
        let parts: Vec<String> = s
            .incidents
            .iter()
            .map(|i| {
                let errors: u64 = i.errors.iter().sum();
                let mut p = format!(
                    "{}s–{}s ({} s): {} requests, {} errors",
                    i.start_s,
                    i.end_s,
                    i.duration_s(),
                    i.requests,
                    errors
                );
                let classes: Vec<String> = ErrorClass::ALL
                    .iter()
                    .filter(|c| i.errors[c.index()] > 0)
                    .map(|c| format!("{} {}", c.name(), i.errors[c.index()]))
                    .collect();
                if !classes.is_empty() {
                    p += &format!(" ({})", classes.join(", "));
                }
                p + &format!(", p99 {}", fmt_us(i.worst_p99_ms * 1000.0))
            })
            .collect();
        let _ = writeln!(o, "Incidents: {} — {}", s.incidents.len(), parts.join("; "));
    }
}

/// The end of a foreign log's report: its regimes, incidents and warnings.
fn after_accounting_foreign(s: &Summary) -> String {
    let mut o = String::new();
    regimes_and_incidents(&mut o, s);
    for w in &s.warnings {
        let _ = writeln!(o, "WARNING: {w}");
    }
    o
}

/// The 95 % interval of percentile `p` (0–100) as the distribution lines print it:
/// ` [1.85ms, 1.97ms]`, ` [n/a: needs ≥ 1000 requests]`; nothing for the maximum.
fn ci_text(h: &Hist, batches: &Batches, p: f64) -> String {
    if p >= 100.0 || h.is_empty() {
        return String::new();
    }
    match interval(h, batches, p / 100.0) {
        Ok((lo, hi)) => format!("  [{}, {}]", fmt_us(lo as f64), fmt_us(hi as f64)),
        Err(0) => "  [n/a: not kept over time]".to_string(),
        Err(n) => format!("  [n/a: needs ≥ {n} requests]"),
    }
}

/// Each error class with failures, and its causes: `protocol 20 (RST_STREAM INTERNAL_ERROR
/// 12, GOAWAY ENHANCE_YOUR_CALM 8), read 3 (connection reset 3)`.
fn error_causes(rec: &Recorder) -> String {
    let t = &rec.total;
    let mut parts = Vec::new();
    for e in ErrorClass::ALL {
        let n = t.errors[e.index()];
        if n == 0 {
            continue;
        }
        let mut causes = rec.causes[e.index()].clone();
        causes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let known: u64 = causes.iter().map(|c| c.1).sum();
        let mut list: Vec<String> = causes.iter().map(|(c, k)| format!("{c} {k}")).collect();
        // (Script errors are explained by their messages, listed on their own.)
        if n > known && e != ErrorClass::Script {
            list.push(format!("other {}", n - known));
        }
        if list.is_empty() {
            parts.push(format!("{} {n}", e.name()));
        } else {
            parts.push(format!("{} {n} ({})", e.name(), list.join(", ")));
        }
    }
    parts.join(", ")
}

/// The percentiles of the short latency distribution, as in wrk2.
pub const PERCENTILES: [f64; 8] = [50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0];

/// Which detailed spectra the text report prints (`-L`, `-U`): a choice of the reader,
/// not a property of the run, so it travels beside the run rather than inside it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spectra {
    /// `-L`: the corrected latency's percentile spectrum.
    pub corrected: bool,
    /// `-U`: the uncorrected latency's percentile spectrum.
    pub uncorrected: bool,
}

/// The header printed before the run starts.
pub fn header(m: &RunMeta) -> String {
    let target = if m.stages.is_empty() {
        format!("target {} requests/s", m.rate)
    } else {
        format!("stages {} ({} requests/s on average)", m.stages, m.rate)
    };
    let shard = if m.shards > 1 {
        format!(
            ", shard {}/{} (its share: {} requests/s)",
            m.shard,
            m.shards,
            fmt_count(m.rate.as_f64() / m.shards as f64)
        )
    } else {
        String::new()
    };
    let arrivals = if m.arrival == "constant" {
        String::new()
    } else {
        format!(", {} arrivals (seed {})", m.arrival, m.seed)
    };
    let connections = match m.http2_streams {
        Some(n) => format!(
            "{} HTTP/2 connections (up to {n} streams each)",
            m.connections
        ),
        None => format!("{} connections", m.connections),
    };
    let duration = match &m.until {
        Some((goals, min)) => format!(
            "{} (then on until {goals}, at most {})",
            humantime(*min),
            humantime(m.duration)
        ),
        None => humantime(m.duration),
    };
    format!(
        "Running {} test @ {}\n  {} threads and {connections}, {target}{shard}{arrivals} \
         (open loop; latency from each request's intended send time)\n",
        duration, m.url, m.threads,
    )
}

/// The per-second series as text, for a ramp: what was asked and what happened, in at
/// most 30 rows (seconds grouped when the run is longer).
fn ramp_series(o: &mut String, r: &RunResult) {
    let rows = &r.intervals;
    if rows.is_empty() {
        return;
    }
    let per_row = rows.len().div_ceil(30);
    let _ = writeln!(
        o,
        "  Per {}: intended → sent → completed, corrected p99",
        if per_row == 1 {
            "second".to_string()
        } else {
            format!("{per_row} seconds")
        }
    );
    for group in rows.chunks(per_row) {
        let first = group[0].index;
        let sum = |f: fn(&crate::record::IntervalStats) -> u64| group.iter().map(f).sum::<u64>();
        let p99 = group.iter().map(|i| i.p99_us).max().unwrap_or(0);
        let _ = writeln!(
            o,
            "  {:>6}s {:>8} → {:>8} → {:>8}  {:>10}",
            first,
            sum(|i| i.counts.scheduled),
            sum(|i| i.counts.sent),
            sum(|i| i.counts.completed),
            if sum(|i| i.counts.completed) == 0 {
                "n/a".to_string()
            } else {
                fmt_us(p99 as f64)
            }
        );
    }
}

fn humantime(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if d.subsec_nanos() == 0 && s >= 60.0 && d.as_secs().is_multiple_of(60) {
        format!("{}m", d.as_secs() / 60)
    } else if d.subsec_millis() * 1_000_000 == d.subsec_nanos() && d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", trim_decimal(s))
    }
}

/// HdrHistogram's percentile spectrum of `h` (µs), printed in milliseconds.
pub fn spectrum(h: &Hist) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let ms = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{ms:12.3} {q:14.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{ms:12.3} {q:14.12} {total:10}");
            }
        }
    }
    let sub_buckets = 2u64.pow((2.0 * 10f64.powi(SIGFIGS as i32)).log2().ceil() as u32);
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / 1000.0,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets
    );
    out
}

/// The text report after the run, with the thresholds' verdicts if any.
pub fn render(r: &RunResult, s: &Summary, verdicts: &[Verdict], spectra: Spectra) -> String {
    let mut o = String::new();
    thread_stats(&mut o, r);
    distribution(&mut o, r, spectra);
    judgements(&mut o, r, s);
    uncorrected(&mut o, r);
    // A log another HdrHistogram tool wrote has latencies only: no plan, nothing
    // scheduled, no bytes, statuses or connections — none of those is made up for it.
    if r.meta.threads == 0 {
        foreign(&mut o, r, s);
        return o;
    }
    totals(&mut o, r, s);
    accounting(&mut o, r);
    errors(&mut o, r);
    connections(&mut o, r);
    // Logs of other HdrHistogram tools carry latencies only: no generator to speak of.
    let generator_known = !r.busy.is_empty();
    lags(&mut o, r, generator_known);
    if let Some(st) = r.recorder.stream.as_deref() {
        streaming(&mut o, r, s, st);
    }
    if let Some(i) = r.recorder.input.as_deref() {
        prompts(&mut o, r, s, i);
    }
    by_tag(&mut o, r);
    by_group(&mut o, r);
    cost(&mut o, r);
    if generator_known {
        generator(&mut o, r);
    }
    shards(&mut o, r);
    regimes_and_incidents(&mut o, s);
    for w in &s.warnings {
        let _ = writeln!(o, "WARNING: {w}");
    }
    thresholds(&mut o, verdicts);
    o
}

/// wrk's Thread Stats: corrected latency, and completions per second of the load.
fn thread_stats(o: &mut String, r: &RunResult) {
    let c = &r.recorder.corrected;
    let _ = writeln!(o, "  Thread Stats   Avg      Stdev     Max   +/- Stdev");
    let _ = writeln!(
        o,
        "    Latency {:>10} {:>10} {:>10} {:>8.2}%",
        fmt_us(c.mean()),
        fmt_us(c.stdev()),
        fmt_us(c.max() as f64),
        within_stdev(c)
    );
    // Completions per full second of the load (all threads together).
    let full = r.load_duration.as_secs() as usize;
    let per_sec: Vec<f64> = r
        .intervals
        .iter()
        .take(full)
        .map(|i| i.counts.completed as f64)
        .collect();
    if !per_sec.is_empty() {
        let n = per_sec.len() as f64;
        let mean = per_sec.iter().sum::<f64>() / n;
        let sd = (per_sec.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let max = per_sec.iter().cloned().fold(0.0, f64::max);
        let within = per_sec.iter().filter(|x| (**x - mean).abs() <= sd).count() as f64 / n * 100.0;
        let _ = writeln!(
            o,
            "    Req/Sec {:>10} {:>10} {:>10} {:>8.2}%",
            fmt_count(mean),
            fmt_count(sd),
            fmt_count(max),
            within
        );
    }
}

/// The corrected distribution, each percentile with its 95 % interval; the spectra asked for.
fn distribution(o: &mut String, r: &RunResult, spectra: Spectra) {
    let rec = &r.recorder;
    let c = &rec.corrected;
    let _ = writeln!(
        o,
        "  Latency Distribution (HdrHistogram - Recorded Latency)"
    );
    for p in PERCENTILES {
        let v = percentile(c, p);
        let _ = writeln!(
            o,
            " {p:7.3}% {:>10}{}",
            fmt_us(v as f64),
            ci_text(c, &rec.batches[0], p)
        );
    }
    if spectra.corrected {
        let _ = writeln!(o, "\n  Detailed Percentile spectrum:");
        o.push_str(&spectrum(c));
    }
    if spectra.uncorrected {
        let _ = writeln!(
            o,
            "\n  Uncorrected Latency (measured without taking delayed starts into account)"
        );
        o.push_str(&spectrum(&rec.uncorrected));
    }
}

/// How far the distribution can be trusted: dependence, the arrivals on the wire, `--until`.
fn judgements(o: &mut String, r: &RunResult, s: &Summary) {
    let rec = &r.recorder;
    if let Some(m) = rec.dependence.measure() {
        let fade = match m.fades_after {
            Some(1) => "gone by the next request".to_string(),
            Some(k) => format!("fades after ~{k} requests"),
            None => format!(
                "does not fade within {} requests",
                crate::record::dependence::BLOCK / 2
            ),
        };
        let _ = writeln!(
            o,
            "  Dependence: lag-1 ρ={:.2}, {fade} (rank autocorrelation in send order, sample of {})",
            m.lag1, m.sample
        );
    }
    if let Some(a) = &s.arrivals {
        let _ = writeln!(o, "  Arrivals: {}", a.describe());
    }
    if let Some(p) = &r.precision {
        let goals: Vec<String> = super::precision_achieved(r)
            .iter()
            .map(|(name, bound, got)| match got {
                Some(g) => format!("{name} ±{:.1}% (asked ±{:.1}%)", g * 100.0, bound * 100.0),
                None => format!("{name} n/a (asked ±{:.1}%)", bound * 100.0),
            })
            .collect();
        let _ = writeln!(
            o,
            "  Precision: {} {} after {:.0}s",
            goals.join(", "),
            if super::precision_reached(r) {
                "reached"
            } else {
                "not reached"
            },
            p.after_s
        );
    }
}

/// The uncorrected latency's line (a log of another tool may have none).
fn uncorrected(o: &mut String, r: &RunResult) {
    let u = &r.recorder.uncorrected;
    if r.meta.threads > 0 || !u.is_empty() {
        let _ = writeln!(
            o,
            "  Uncorrected (from actual send): p50 {}, p99 {}, p99.9 {}, max {}",
            na_us(u, 50.0),
            na_us(u, 99.0),
            na_us(u, 99.9),
            na_max(u),
        );
    }
}

/// What a log of another tool knows: its latencies and the time they took.
fn foreign(o: &mut String, r: &RunResult, s: &Summary) {
    let t = &r.recorder.total;
    let _ = writeln!(
        o,
        "  {} latencies in {}s",
        t.completed,
        trim_decimal(s.completion_secs)
    );
    let _ = writeln!(o, "Requests/sec: {:>10.2}", s.completed_rate);
    o.push_str(&after_accounting_foreign(s));
}

/// Requests, bytes and rates; the ramp and the common start when there were any.
fn totals(o: &mut String, r: &RunResult, s: &Summary) {
    let t = &r.recorder.total;
    let _ = writeln!(
        o,
        "  {} requests in {}s, {} read",
        t.completed,
        trim_decimal(s.completion_secs),
        fmt_bytes(t.bytes as f64)
    );
    if s.drained > 0 {
        // Say how much of the work ran past the load window (a few in-flight requests, or
        // a backlog the server could not keep up with).
        let _ = writeln!(
            o,
            "  {} completed within the {}s load window, {} after it (in the grace period)",
            t.completed - s.drained,
            trim_decimal(r.load_duration.as_secs_f64()),
            s.drained,
        );
    }
    let _ = writeln!(o, "Requests/sec: {:>10.2}", s.completed_rate);
    let _ = writeln!(o, "Transfer/sec: {:>10}", fmt_bytes(s.bytes_rate));
    let _ = writeln!(
        o,
        "Target rate:  {:>10} req/s, achieved (sent) {:.2} req/s",
        r.meta.rate.to_string(),
        s.achieved_rate
    );
    if !r.meta.stages.is_empty() {
        ramp_series(o, r);
    }
    if let Some(at) = r.meta.start_at {
        let unix = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let _ = writeln!(
            o,
            "Start: --start-at {unix:.3} (Unix seconds); this process started {} after it",
            fmt_us(r.start_late.as_micros() as f64)
        );
    }
}

/// The warm-up, the accounting identity, status codes and 429s.
fn accounting(o: &mut String, r: &RunResult) {
    let rec = &r.recorder;
    let t = &rec.total;
    if let Some(w) = &r.warmup {
        let _ = writeln!(
            o,
            "Warm-up (not measured, before the load window): {}s at {} req/s: scheduled {} = \
             completed {} + errors {} + unfinished {}",
            trim_decimal(w.duration.as_secs_f64()),
            fmt_count(w.rate),
            w.scheduled,
            w.completed,
            w.errors,
            w.unfinished
        );
    }
    let _ = writeln!(
        o,
        "Accounting: scheduled {} = completed {} + errors {} + unfinished {}{}",
        t.scheduled,
        t.completed,
        t.error_total(),
        r.unfinished,
        if r.interrupted { " (interrupted)" } else { "" }
    );
    let codes: Vec<String> = rec
        .status
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(code, n)| format!("{code}: {n}"))
        .collect();
    let _ = writeln!(
        o,
        "Status codes: {}",
        if codes.is_empty() {
            "none".into()
        } else {
            codes.join(", ")
        }
    );
    if t.rate_limited > 0 {
        let _ = write!(
            o,
            "Rate limited: {} ({:.2}% of scheduled) got 429",
            t.rate_limited,
            100.0 * t.rate_limited as f64 / t.scheduled.max(1) as f64
        );
        match &rec.retry_after {
            Some(h) => {
                let _ = writeln!(
                    o,
                    ", Retry-After p50 {}, max {} ({} sent one)",
                    na_us(h, 50.0),
                    na_max(h),
                    h.len()
                );
            }
            None => {
                let _ = writeln!(o, ", none with Retry-After");
            }
        }
    }
}

/// Errors by class and cause, retries, pipelined requests and script errors.
fn errors(o: &mut String, r: &RunResult) {
    let rec = &r.recorder;
    let t = &rec.total;
    if t.error_total() == 0 {
        let _ = writeln!(o, "Errors: none");
    } else {
        let classes: Vec<String> = ErrorClass::ALL
            .iter()
            .map(|e| format!("{} {}", e.name(), t.errors[e.index()]))
            .collect();
        let _ = writeln!(o, "Errors: {} ({})", t.error_total(), classes.join(", "));
        let _ = writeln!(o, "Error causes: {}", error_causes(rec));
    }
    let retried: u64 = rec.retried.iter().sum();
    if retried > 0 {
        let causes: Vec<String> = Retry::ALL
            .iter()
            .filter(|c| rec.retried[c.index()] > 0)
            .map(|c| format!("{} {}", c.name(), rec.retried[c.index()]))
            .collect();
        let _ = writeln!(
            o,
            "Retried: {retried} ({}; never processed by the server, sent again once)",
            causes.join(", ")
        );
    }
    if rec.extra_requests > 0 {
        let _ = writeln!(
            o,
            "Pipelined: {} HTTP requests in all ({} beyond one per scheduled request; each response is in the status codes)",
            t.completed + t.error_total() + rec.extra_requests,
            rec.extra_requests
        );
    }
    for (m, n) in &rec.script_messages {
        let _ = writeln!(o, "Script error ({n}×): {m}");
    }
    if rec.script_messages_more > 0 {
        let _ = writeln!(
            o,
            "Script error: {} more with other messages",
            rec.script_messages_more
        );
    }
}

/// Connections opened, and how long opening them took.
fn connections(o: &mut String, r: &RunResult) {
    let rec = &r.recorder;
    let _ = writeln!(
        o,
        "Connections: {} asked, {} open at end of load, {} opened ({} reconnects){}",
        r.meta.connections,
        r.open,
        rec.connects,
        rec.reconnects,
        if r.negotiated.is_empty() {
            String::new()
        } else {
            format!("; {}", r.negotiated)
        }
    );
    if !rec.connect_tcp.is_empty() {
        let _ = write!(
            o,
            "Connect: TCP p50 {}, p99 {}, max {}",
            na_us(&rec.connect_tcp, 50.0),
            na_us(&rec.connect_tcp, 99.0),
            na_max(&rec.connect_tcp)
        );
        if !rec.connect_tls.is_empty() {
            let _ = write!(
                o,
                "; TLS handshake p50 {}, p99 {}, max {}",
                na_us(&rec.connect_tls, 50.0),
                na_us(&rec.connect_tls, 99.0),
                na_max(&rec.connect_tls)
            );
        }
        let _ = writeln!(o, " ({} connections opened)", rec.connects);
    }
}

/// How busy the generator's threads were, and how it paced.
fn generator(o: &mut String, r: &RunResult) {
    let busy: Vec<String> = r
        .busy
        .iter()
        .map(|b| format!("{:.0}%", b * 100.0))
        .collect();
    let _ = write!(
        o,
        "Generator: threads busy {} of the load window",
        busy.join(", ")
    );
    if let Some(p) = r.meta.precision {
        let _ = write!(
            o,
            "; pacing precision {} (--precision: a request may go out up to that late)",
            fmt_us(p.as_micros() as f64)
        );
    }
    if let Some(p) = &r.pacing {
        if p.path == crate::run::Pacing::IO_URING {
            let _ = write!(
                o,
                "; pacing by {} ({} of {} sends stamped by the kernel as they left)",
                p.path, p.stamped, p.sends
            );
        } else if p.path != "precision grid" {
            let _ = write!(o, "; pacing by {}", p.path);
            // (Said when the run asked for io_uring and did not get it.)
            if let Some(why) = p
                .io_uring_not_used
                .as_ref()
                .filter(|w| *w != "--io-uring off")
            {
                let _ = write!(o, " (io_uring not used: {why})");
            }
            if p.stamped > 0 {
                let _ = write!(
                    o,
                    "; {} of {} sends stamped by the kernel as they left",
                    p.stamped, r.recorder.total.sent
                );
            }
        }
    }
    let (waits, awake) = r.waits;
    if awake > 0 {
        let _ = write!(
            o,
            "; stayed awake for a response in {awake} of {waits} waits"
        );
    }
    let _ = writeln!(o);
}

/// One line per shard of a merged plan.
fn shards(o: &mut String, r: &RunResult) {
    for l in &r.shard_lines {
        let _ = writeln!(
            o,
            "Shard {}/{}: achieved {:.2} of {:.2} req/s, send lag p99 {}, busiest thread {:.0}%, \
             started {} after --start-at",
            l.shard,
            r.shard_lines.len(),
            l.achieved_per_s,
            l.target_per_s,
            fmt_us(l.send_lag_p99_ms * 1000.0),
            l.busiest * 100.0,
            fmt_us(l.start_late_s * 1e6),
        );
    }
}

/// Each threshold's verdict.
fn thresholds(o: &mut String, verdicts: &[Verdict]) {
    for v in verdicts {
        let _ = writeln!(
            o,
            "Threshold {}: {} (actual {:.3}{}{})",
            v.expr,
            if v.pass { "pass" } else { "FAIL" },
            v.actual,
            if v.unit.is_empty() { "" } else { " " },
            v.unit
        );
    }
}

/// The generator's own delays: send lag (with where every scheduled request went), release
/// lag, and read lag.
fn lags(o: &mut String, r: &RunResult, generator_known: bool) {
    let rec = &r.recorder;
    let t = &rec.total;
    if generator_known {
        let lag = &rec.send_lag;
        // Every scheduled request is in exactly one of these: measured on a free connection,
        // waited for a busy one, waited for a reconnect, or not measured (never written, or still
        // in flight at the end).
        let measured = lag.len();
        let unmeasured = t
            .scheduled
            .saturating_sub(measured + rec.queued + rec.reconnect_waits);
        let _ = write!(
            o,
            "Send lag: p50 {}, p99 {}, p99.9 {}, max {} ({} sent on a free connection; {} waited for a busy one",
            na_us(lag, 50.0),
            na_us(lag, 99.0),
            na_us(lag, 99.9),
            na_max(lag),
            measured,
            rec.queued,
        );
        if rec.reconnect_waits > 0 {
            let _ = write!(o, "; {} waited for a reconnect", rec.reconnect_waits);
        }
        if unmeasured > 0 {
            let _ = write!(o, "; {unmeasured} not sent or not finished");
        }
        let _ = writeln!(o, "); release lag p99 {}", na_us(&rec.release_lag, 99.0));
        let read = &rec.read_lag;
        if read.is_empty() {
            let _ = writeln!(
                o,
                "Read lag: not measured (no kernel receive stamps: responses are timed when read)"
            );
        } else {
            let _ = writeln!(
                o,
                "Read lag: p50 {}, p99 {}, p99.9 {}, max {} (answer reaching the socket to ratebench reading it)",
                na_us(read, 50.0),
                na_us(read, 99.0),
                na_us(read, 99.9),
                na_max(read),
            );
        }
    } else {
        let _ = writeln!(o, "Send lag: not recorded in these logs");
    }
}

fn dist(o: &mut String, label: &str, h: &Hist) {
    let _ = writeln!(
        o,
        "  {label:<22} p50 {:>9}  p90 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}",
        na_us(h, 50.0),
        na_us(h, 90.0),
        na_us(h, 99.0),
        na_us(h, 99.9),
        na_max(h),
    );
}

/// The 95 % intervals of the line above's p50, p90, p99 and p99.9.
fn dist_ci(o: &mut String, h: &Hist, batches: &Batches) {
    if h.is_empty() {
        return;
    }
    let parts: Vec<String> = [50.0, 90.0, 99.0, 99.9]
        .iter()
        .map(|p| {
            format!(
                "p{}{}",
                trim_decimal(*p),
                ci_text(h, batches, *p).trim_start()
            )
        })
        .map(|s| s.replacen('[', " [", 1))
        .collect();
    let _ = writeln!(o, "  {:<22} 95 %: {}", "", parts.join("  "));
}

/// The "Streaming" section, shown only when event streams were seen.
fn streaming(o: &mut String, r: &RunResult, s: &Summary, st: &crate::record::StreamRecorder) {
    let rec = &r.recorder;
    let _ = writeln!(
        o,
        "Streaming: {} event streams, {} output tokens",
        st.streams, rec.total.tokens
    );
    dist(o, "TTFT (corrected)", &st.ttft);
    dist_ci(o, &st.ttft, &st.batches[0]);
    dist(o, "TTFT (uncorrected)", &st.ttft_uncorrected);
    dist(o, "TTFB (corrected)", &st.ttfb);
    dist(o, "Inter-token latency", &st.itl);
    dist_ci(o, &st.itl, &st.batches[1]);
    dist(o, "Time per output token", &st.tpot);
    dist_ci(o, &st.tpot, &st.batches[2]);
    let source = format!(
        "{} of {} streams sent usage; {} disagreed with the events counted{}",
        st.with_usage,
        st.streams,
        st.usage_mismatch,
        match (st.by_tokenizer, st.tokenizer) {
            (n, Some(t)) if n > 0 => format!("; {n} counted by the tokenizer {t}"),
            (_, None) if st.streams > st.with_usage => format!(
                "; {} counted one per content event: no tokenizer",
                st.streams - st.with_usage
            ),
            _ => String::new(),
        }
    );
    counts_line(o, "Output tokens/request", &st.tokens_per_request, &source);
    let _ = writeln!(o, "  Output tokens/sec:     {:.2}", s.tokens_rate);
    if !rec.slos.is_empty() {
        let slos: Vec<&str> = rec.slos.iter().map(|x| x.expr.as_str()).collect();
        let _ = writeln!(
            o,
            "  Goodput:               {} requests ({:.2}% of scheduled, {:.2}/s) met {}",
            rec.slo_met,
            s.goodput_share,
            s.goodput_rate,
            slos.join(" and ")
        );
    }
}

/// Prompts as sent (`--prompts`, `--input-tokens`): their tokens, beside the server's count.
fn prompts(o: &mut String, r: &RunResult, s: &Summary, i: &crate::record::InputTokens) {
    let by = match &r.meta.tokenizer {
        Some(t) => format!("counted by the tokenizer {t}"),
        None => "not counted: --tokenizer none".into(),
    };
    let _ = writeln!(o, "Prompts (input tokens as sent, {by}):");
    let h = &i.per_request;
    let source = format!(
        "{} sent; {} answers said usage.prompt_tokens, {} differed",
        h.len(),
        i.with_usage,
        i.usage_mismatch
    );
    counts_line(o, "Input tokens/request", h, &source);
    let _ = writeln!(
        o,
        "  Input tokens/sec:      {:.2}",
        i.sent as f64 / s.completion_secs
    );
}

/// A distribution of counts (tokens per request): p50, p90, p99, min, max, and where the
/// counts came from.
fn counts_line(o: &mut String, label: &str, h: &Hist, source: &str) {
    let _ = writeln!(
        o,
        "  {label:<22} p50 {:>9}  p90 {:>9}  p99 {:>9}  min {:>9}  max {:>9}  ({source})",
        percentile(h, 50.0),
        percentile(h, 90.0),
        percentile(h, 99.0),
        h.min(),
        h.max(),
    );
}

fn fmt_count(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1_000.0 {
        format!("{:.2}k", v / 1e3)
    } else {
        format!("{v:.2}")
    }
}

/// The "By tag" table: each kind of request on its own line (when there are several, or a
/// mix named them).
fn by_tag(o: &mut String, r: &RunResult) {
    let tags = &r.recorder.tags;
    if tags.len() < 2 {
        return;
    }
    let width = tags
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    let _ = writeln!(o, "By tag:");
    let _ = writeln!(
        o,
        "  {:<width$} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10}  p99 95 % interval",
        "tag",
        "requests",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "errors",
        "limited",
        "p50",
        "p99",
        "p99.9",
        "max",
    );
    for t in tags {
        let c = &t.counts;
        let sc = c.status_classes;
        let _ = writeln!(
            o,
            "  {:<width$} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10}  {}",
            t.name,
            c.scheduled,
            sc[1],
            sc[2],
            sc[3],
            sc[4] + sc[0],
            c.error_total() + t.unfinished(),
            c.rate_limited,
            na_us(&t.corrected, 50.0),
            na_us(&t.corrected, 99.0),
            na_us(&t.corrected, 99.9),
            na_max(&t.corrected),
            ci_text(&t.corrected, &t.batches, 99.0).trim_start(),
        );
    }
    // Streams, tokens and limits per tag, where there were any.
    for t in tags {
        let mut extra = Vec::new();
        if let Some(st) = t.stream.as_deref() {
            extra.push(format!(
                "TTFT p50 {} p99 {}, ITL p99 {}, TPOT p50 {}",
                na_us(&st.ttft, 50.0),
                na_us(&st.ttft, 99.0),
                na_us(&st.itl, 99.0),
                na_us(&st.tpot, 50.0)
            ));
        }
        if t.input_sent > 0 {
            extra.push(format!(
                "tokens in {} (sent {}) out {}",
                t.prompt_tokens, t.input_sent, t.completion_tokens
            ));
        } else if t.prompt_tokens + t.completion_tokens > 0 {
            extra.push(format!(
                "tokens in {} out {}",
                t.prompt_tokens, t.completion_tokens
            ));
        }
        if let Some(h) = &t.retry_after {
            extra.push(format!(
                "Retry-After p50 {} max {}",
                na_us(h, 50.0),
                na_max(h)
            ));
        }
        let names = ["requests", "tokens"];
        for (v, name) in t.remaining.iter().zip(names) {
            if let Some(v) = v {
                extra.push(format!("lowest x-ratelimit-remaining-{name} {v}"));
            }
        }
        if !extra.is_empty() {
            let _ = writeln!(o, "  {:<width$} {}", t.name, extra.join("; "));
        }
    }
    let _ = writeln!(
        o,
        "  (errors include unfinished requests; limited = 429, also counted in 4xx)"
    );
}

/// The `--group-by-header` table: who answered, how often, how fast.
fn by_group(o: &mut String, r: &RunResult) {
    let Some(header) = &r.meta.group_by else {
        return;
    };
    let groups = &r.recorder.groups;
    if groups.is_empty() {
        return;
    }
    let width = groups
        .iter()
        .map(|g| g.value.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(o, "By {header}:");
    let _ = writeln!(
        o,
        "  {:<width$} {:>9} {:>10} {:>10} {:>10}",
        "value", "responses", "p50", "p99", "max"
    );
    for g in groups {
        let _ = writeln!(
            o,
            "  {:<width$} {:>9} {:>10} {:>10} {:>10}",
            g.value,
            g.requests,
            na_us(&g.corrected, 50.0),
            na_us(&g.corrected, 99.0),
            na_max(&g.corrected)
        );
    }
}

/// `--price`: the estimated cost per model and in total.
fn cost(o: &mut String, r: &RunResult) {
    let Some(c) = crate::report::json::cost_doc(r) else {
        return;
    };
    let parts: Vec<String> = c
        .models
        .iter()
        .map(|(m, x)| {
            format!(
                "{m} ${:.4} ({} in × ${}/M + {} out × ${}/M)",
                x.usd,
                x.input_tokens,
                trim_decimal(x.input_per_m_usd),
                x.output_tokens,
                trim_decimal(x.output_per_m_usd)
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "Estimated cost: ${:.4} in total; {}",
        c.total_usd,
        parts.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::histogram::new_hist;

    #[test]
    fn spectrum_is_hdrhistogram_format() {
        let mut h = new_hist();
        for v in 1..=1000u64 {
            h.record(v).unwrap(); // 1 µs .. 1 ms, uniform
        }
        let s = spectrum(&h);
        let mut lines = s.lines();
        assert!(lines.next().unwrap().contains("1/(1-Percentile)"));
        let rows: Vec<Vec<&str>> = s
            .lines()
            .filter(|l| {
                l.trim_start()
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            })
            .map(|l| l.split_whitespace().collect())
            .collect();
        // Median of 1..=1000 µs is 0.500 ms; the last row is 1.000 ms at percentile 1, count 1000.
        let median = rows
            .iter()
            .find(|r| r[1].parse::<f64>().unwrap() >= 0.5)
            .unwrap();
        assert_eq!(median[0], "0.500");
        let last = rows.last().unwrap();
        assert_eq!((last[0], last[2]), ("1.000", "1000"));
        assert!(s.contains("#[Mean    =        0.500"));
        assert!(s.contains("Total count    =         1000]"));
    }

    #[test]
    fn wrk_units() {
        assert_eq!(fmt_us(123.0), "123.00us");
        assert_eq!(fmt_us(1_230.0), "1.23ms");
        assert_eq!(fmt_us(2_500_000.0), "2.50s");
        assert_eq!(fmt_bytes(1536.0), "1.50KB");
    }
}
