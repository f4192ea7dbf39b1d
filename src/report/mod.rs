//! The merged numbers of a run, and the judgements drawn from them (achieved rate,
//! warnings), shared by every output format; one file per format renders them.
//!
//! Reads only a finished run (`run::RunResult`), never the engine that produced it.
//!
//! Used by `app` after `engine::run` or after reading logs.

pub mod compare;
pub mod csv;
pub mod hdr;
pub mod html;
pub mod json;
pub mod junit;
pub mod regimes;
pub mod scatter;
pub mod text;
pub mod threshold;

use crate::outcome::ErrorClass;
use crate::record::arrivals;
use crate::record::histogram::percentile;
use crate::record::histogram::Hist;
use crate::run::RunResult;
use std::time::Duration;

/// A worker thread busy more than this share of the load window had no headroom left: the
/// generator itself was the bottleneck.
pub const BUSY_WARN: f64 = 0.95;

/// Send lag above this at p99 means the generator itself was late (CPU, scheduling), so
/// measured latencies include its own delay.
pub const SEND_LAG_WARN: Duration = Duration::from_millis(1);

/// Numbers derived from a run, for every format.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Target requests per second.
    pub target_rate: f64,
    /// Requests written per second of the load window.
    pub achieved_rate: f64,
    /// Completed requests per second of the time completions took (`completion_secs`), as
    /// wrk2 divides by the real elapsed time: a backlog that drained after the load window
    /// is not credited to the window.
    pub completed_rate: f64,
    /// The seconds `completed_rate` divides by: the load window, or, when completions took
    /// longer than that (first to last), the time they took.
    pub completion_secs: f64,
    /// Completed requests that finished after the load window (drained in the grace period).
    pub drained: u64,
    /// Response bytes per second of `completion_secs`.
    pub bytes_rate: f64,
    /// Output tokens of streams per second of `completion_secs`.
    pub tokens_rate: f64,
    /// Requests that met every `--slo`, as a percentage of scheduled.
    pub goodput_share: f64,
    /// Requests that met every `--slo`, per second of `completion_secs`.
    pub goodput_rate: f64,
    /// Problems a reader must know about, most important first.
    pub warnings: Vec<String>,
    /// The run's steady stretches (one when it was one regime).
    pub regimes: Vec<regimes::Regime>,
    /// Stretches of seconds that left the run's baseline.
    pub incidents: Vec<regimes::Incident>,
    /// What the gaps between sends say about the arrival process (constant-rate plans,
    /// constant or Poisson, with enough sends).
    pub arrivals: Option<ArrivalCheck>,
}

/// The arrival process that left the machine, judged against the one asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArrivalCheck {
    /// What the gaps were tested for, and how they fared.
    pub fit: ArrivalFit,
    /// `--precision` coarser than the mean gap: requests were asked to leave in batches
    /// (each tick's at once), so gaps are not judged against the process.
    pub batched: Option<std::time::Duration>,
}

/// The sent gaps' test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArrivalFit {
    /// `--arrival poisson`: the gaps against the exponential.
    Poisson(arrivals::PoissonFit),
    /// Constant: the share of gaps within ±50 % of the spacing (the mean gap).
    Constant {
        /// Gaps judged.
        gaps: usize,
        /// The mean gap, ns.
        spacing_ns: f64,
        /// The share within ±50 % of it.
        even: f64,
    },
}

/// A constant rate is as asked when at least this share of its gaps is within ±50 % of
/// the spacing.
pub const EVEN_SHARE: f64 = 0.9;

impl ArrivalCheck {
    /// Judges the run's sample (None: a ramp, gamma arrivals, or too few sends).
    pub fn of(r: &RunResult) -> Option<ArrivalCheck> {
        if !r.meta.stages.is_empty() {
            return None;
        }
        let gaps = r.recorder.arrivals.gaps();
        let mean_ns = gaps.iter().sum::<u64>() as f64 / gaps.len().max(1) as f64;
        let fit = match r.meta.arrival.as_str() {
            "poisson" => arrivals::poisson_fit(&gaps).map(ArrivalFit::Poisson),
            "constant" => arrivals::even_share(&gaps, mean_ns).map(|even| ArrivalFit::Constant {
                gaps: gaps.len(),
                spacing_ns: mean_ns,
                even,
            }),
            _ => None,
        }?;
        let batched = r
            .meta
            .precision
            .filter(|p| p.as_nanos() as f64 > 0.5 * mean_ns);
        Some(ArrivalCheck { fit, batched })
    }

    /// Whether the process on the wire is the one asked for (batches, when asked for).
    pub fn as_asked(&self) -> bool {
        self.batched.is_some()
            || match self.fit {
                ArrivalFit::Poisson(f) => {
                    f.statistic <= arrivals::KS_EXP_1PCT || f.d <= arrivals::KS_MATERIAL
                }
                ArrivalFit::Constant { even, .. } => even >= EVEN_SHARE,
            }
    }

    /// The report's words: `Poisson as asked (KS D=0.012 on 2,048 gaps, mean gap 3.33ms)`.
    pub fn describe(&self) -> String {
        let verdict = match self.batched {
            Some(p) => format!(
                "in --precision {} batches, as asked",
                fmt_us(p.as_secs_f64() * 1e6)
            ),
            None if self.as_asked() => "as asked".into(),
            None => "NOT as asked".into(),
        };
        match self.fit {
            ArrivalFit::Poisson(f) => format!(
                "Poisson {verdict} (Kolmogorov–Smirnov D={:.3} from the exponential on {} gaps, \
                 mean gap {})",
                f.d,
                f.gaps,
                fmt_us(f.mean_ns / 1000.0)
            ),
            ArrivalFit::Constant {
                gaps,
                spacing_ns,
                even,
            } => format!(
                "constant {verdict} ({:.1} % of {gaps} gaps within ±50 % of the {} spacing)",
                even * 100.0,
                fmt_us(spacing_ns / 1000.0)
            ),
        }
    }
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// Formats microseconds the way wrk does: `123.00us`, `1.23ms`, `1.23s`, `2.05m`.
pub fn fmt_us(v: f64) -> String {
    if v < 1_000.0 {
        format!("{v:.2}us")
    } else if v < 1_000_000.0 {
        format!("{:.2}ms", v / 1e3)
    } else if v < 60_000_000.0 {
        format!("{:.2}s", v / 1e6)
    } else {
        format!("{:.2}m", v / 60e6)
    }
}

/// A percentile of `h` in wrk's units, or `n/a` when nothing was recorded (a 0 would
/// read as a measurement).
pub fn na_us(h: &Hist, p: f64) -> String {
    if h.is_empty() {
        "n/a".into()
    } else {
        fmt_us(percentile(h, p) as f64)
    }
}

/// The largest value of `h`, or `n/a`.
pub fn na_max(h: &Hist) -> String {
    if h.is_empty() {
        "n/a".into()
    } else {
        fmt_us(h.max() as f64)
    }
}

/// Formats a byte count with binary units as wrk does: `512.00B`, `1.21MB`.
pub fn fmt_bytes(v: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = v;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2}{}", units[i])
}

/// The share of recorded values within one standard deviation of the mean, in percent.
pub fn within_stdev(h: &Hist) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let (mean, sd) = (h.mean(), h.stdev());
    let (lo, hi) = (mean - sd, mean + sd);
    let within: u64 = h
        .iter_recorded()
        .filter(|v| {
            let x = v.value_iterated_to() as f64;
            x >= lo && x <= hi
        })
        .map(|v| v.count_at_value())
        .sum();
    100.0 * within as f64 / h.len() as f64
}

/// The generator's own delays whose p99 is over `SEND_LAG_WARN`, named, in µs: sending on
/// a free connection (send lag), the pacer's wake-up (release lag), and reading an answer
/// that had arrived (read lag).
fn generator_lags(r: &RunResult) -> Vec<(&'static str, u64)> {
    let rec = &r.recorder;
    [
        ("send lag", &rec.send_lag),
        ("release lag", &rec.release_lag),
        ("read lag", &rec.read_lag),
    ]
    .into_iter()
    .map(|(what, h)| (what, percentile(h, 99.0)))
    .filter(|(_, v)| *v > us(SEND_LAG_WARN))
    .collect()
}

impl Summary {
    /// Derives the summary of `r`.
    pub fn of(r: &RunResult) -> Summary {
        let t = &r.recorder.total;
        let secs = r.load_duration.as_secs_f64().max(1e-9);
        // A shard's target is its share of the plan's rate.
        let target_rate = r.meta.rate.as_f64() / r.meta.shards.max(1) as f64;
        let achieved_rate = r.sent_in_window as f64 / secs;
        // Completions are counted over the time they took, never over a window they
        // overran: 3000 answers that took 6.5 s are 460/s, not 1000/s over a 3 s window.
        // When the target kept up, first-to-last completion is the load window shifted by
        // one response time, and the window itself is the divisor (as in wrk2); a burst of
        // answers at the very end is never divided by less than the window.
        let completion_secs = secs.max(r.completion_span.as_secs_f64());
        let completed_rate = t.completed as f64 / completion_secs;
        let drained = t.completed.saturating_sub(r.completed_in_window);
        let mut warnings = Vec::new();

        // The generator is late if requests went out late on free connections (send lag),
        // if the pacer itself woke late (release lag: when the thread is saturated,
        // connections stay busy and send lag alone would not show it), or if answers that
        // had arrived waited to be read (read lag: their connections looked busy meanwhile,
        // and requests queued behind them). Only the lags over the bound are named.
        let late = generator_lags(r);
        let late_named = late
            .iter()
            .map(|(what, v)| format!("{what} p99 {}", fmt_us(*v as f64)))
            .collect::<Vec<_>>()
            .join(", ");
        let busiest = r.busy.iter().cloned().fold(0.0, f64::max);
        let saturated = busiest > BUSY_WARN;
        let lagging = !late.is_empty();
        // Requests that failed before they could be written (the script's request() threw,
        // or no connection could be opened) are missing from the sent count through no fault
        // of the pacer: they are errors, said below, not a generator or connection shortfall.
        let never_sent = r.recorder.never_sent;
        let shortfall = t.scheduled.saturating_sub(r.sent_in_window + never_sent);
        let short = shortfall > 1 && shortfall as f64 > 0.01 * t.scheduled as f64;
        // Who is to blame for a shortfall: a thread with no headroom left is; otherwise, if
        // most of what was due had to wait for a connection, the connections (the server) are,
        // even when the machine also woke us late; only a late thread with free connections
        // is the generator falling behind for want of CPU time it did not get.
        let waited_for_connections = r.recorder.queued as f64 >= 0.5 * shortfall as f64;
        let generator_short = short && (saturated || (lagging && !waited_for_connections));
        if generator_short {
            warnings.push(format!(
                "target rate not achieved — the generator fell behind: {achieved_rate:.1} of \
                 {target_rate} req/s sent, busiest thread {:.0}% busy{}; latencies include \
                 ratebench's own delay (use more threads -t on more cores, or a lower rate)",
                busiest * 100.0,
                if late.is_empty() {
                    String::new()
                } else {
                    format!(", {late_named}")
                }
            ));
        } else if short {
            // Over HTTP/2 a connection carries several requests: say how many it could.
            let capacity = match (r.streams_per_connection, r.server_max_streams) {
                (1, _) => format!("-c {}", r.meta.connections),
                (n, Some(m)) if m < n => format!(
                    "-c {} and the server's limit of {m} streams per connection (--streams {n})",
                    r.meta.connections
                ),
                (n, _) => format!("-c {} and --streams {n}", r.meta.connections),
            };
            warnings.push(format!(
                "target rate not achieved: {achieved_rate:.1} of {target_rate} req/s sent; \
                 {} requests found every connection busy and waited (the server is slower than \
                 -R allows with {capacity}; the wait is in the corrected latency — raise -c to \
                 offer the full rate)",
                r.recorder.queued
            ));
        }
        if never_sent > 1 && never_sent as f64 > 0.01 * t.scheduled as f64 {
            let connect = t.errors[ErrorClass::Connect.index()].min(never_sent);
            let script = never_sent - connect;
            let mut why = Vec::new();
            if script > 0 {
                why.push(format!("{script} because the script failed before sending"));
            }
            if connect > 0 {
                why.push(format!("{connect} because no connection could be opened"));
            }
            warnings.push(format!(
                "target rate not achieved: {never_sent} scheduled requests were never sent \
                 ({}); they are counted as errors",
                why.join(", ")
            ));
        }
        // Whatever was not already blamed for a shortfall above.
        if !generator_short && saturated {
            warnings.push(format!(
                "the generator ran at its limit (busiest thread {:.0}% busy): latencies may \
                 include its own delay; add threads (-t) on more cores",
                busiest * 100.0
            ));
        } else if !generator_short && lagging {
            warnings.push(format!(
                "the generator fell behind its schedule at times: {late_named} (> {}); \
                 latencies include ratebench's own delay (its threads were at most {:.0}% busy: \
                 the machine woke them late)",
                fmt_us(us(SEND_LAG_WARN) as f64),
                busiest * 100.0
            ));
        }
        if let Some(why) = &r.incomplete {
            warnings.push(format!(
                "partial merge (--allow-partial): {why}; these numbers are not the whole plan's"
            ));
        }
        warnings.extend(price_warnings(r));
        if let Some(e) = &r.requests_log_error {
            warnings.push(format!(
                "the requests log (--requests-log) is incomplete: a write failed ({e}); the \
                 numbers here are whole"
            ));
        }
        if r.start_late > Duration::from_millis(10) {
            warnings.push(format!(
                "this process started {} after --start-at: its first requests went out late \
                 (the lateness is in their corrected latency)",
                fmt_us(us(r.start_late) as f64)
            ));
        }
        if let Some(st) = r.recorder.stream.as_deref() {
            // Streams came back, but not one event counted as a token: the token rule does
            // not fit this API, and TTFT, ITL and tokens/s are empty for that reason alone.
            if st.streams > 0 && st.ttft.is_empty() {
                warnings.push(format!(
                    "{} event streams came back but no event in them matched the token rule: \
                     TTFT, inter-token latency and tokens/s are empty; check --sse-token \
                     (openai, responses, anthropic, any, or a JSON path such as \
                     choices.*.delta.content) or --api",
                    st.streams
                ));
            }
        }
        // --group-by-header with a header no answer carried: every result is under
        // "(none)", which is a typo in the name far more often than a finding.
        if let Some(h) = &r.meta.group_by {
            let completed = r.recorder.total.completed;
            let none = r
                .recorder
                .groups
                .iter()
                .filter(|g| g.value == "(none)")
                .map(|g| g.requests)
                .sum::<u64>();
            if completed > 0 && none == r.recorder.groups.iter().map(|g| g.requests).sum::<u64>() {
                warnings.push(format!(
                    "--group-by-header {h}: none of the {completed} answers carried that header, \
                     so every result is under (none); check its name"
                ));
            }
        }
        if r.unfinished > 0 {
            let when = if r.cut_short {
                "when a second Ctrl-C cut the wait short".to_string()
            } else {
                format!("when the grace period ({:?}) ended", r.meta.grace)
            };
            warnings.push(format!(
                "{} requests were still queued or in flight {when}; they are counted as \
                 unfinished, not in the latency distribution",
                r.unfinished
            ));
        }
        let timeouts = t.errors[ErrorClass::Timeout.index()];
        if timeouts > 0 {
            warnings.push(format!(
                "{timeouts} requests timed out (--timeout {:?}); they are in the latency \
                 distribution at the time they were abandoned",
                r.meta.timeout
            ));
        }
        if r.open < r.meta.connections && !r.interrupted {
            warnings.push(format!(
                "only {} of {} connections were open at the end of the load",
                r.open, r.meta.connections
            ));
        }
        if !r.accounting_holds() {
            warnings.push(format!(
                "internal accounting mismatch: scheduled {} != completed {} + errors {} + \
                 unfinished {} (please report this bug)",
                t.scheduled,
                t.completed,
                t.error_total(),
                r.unfinished
            ));
        }
        if let Some(p) = &r.precision {
            if !precision_reached(r) {
                let goals: Vec<String> = precision_achieved(r)
                    .iter()
                    .map(|(name, bound, got)| match got {
                        Some(g) => {
                            format!(
                                "{name} is ±{:.1}% (asked ±{:.1}%)",
                                g * 100.0,
                                bound * 100.0
                            )
                        }
                        None => {
                            format!("{name} has no interval yet (asked ±{:.1}%)", bound * 100.0)
                        }
                    })
                    .collect();
                let how = if p.stopped {
                    "stopped when the running estimate met it, but the final one does not"
                } else {
                    "ran its --max-duration"
                };
                warnings.push(format!(
                    "--until not reached: the load {how} ({:.0}s) and {}; the intervals above \
                     say how precise the numbers are",
                    p.after_s,
                    goals.join(", ")
                ));
            }
        }
        let regimes = regimes::regimes(&r.intervals);
        if regimes.len() > 1 {
            warnings.push(format!(
                "the run was not one regime ({} of them, see Regimes): its whole-run percentiles \
                 mix them; look at each regime, or run again once the target is steady",
                regimes.len()
            ));
        }
        let incidents = regimes::incidents(&r.intervals);
        let arrivals = ArrivalCheck::of(r);
        if let Some(a) = arrivals.filter(|a| !a.as_asked()) {
            warnings.push(format!(
                "the requests left the machine as a different process than asked: {} — the \
                 server saw {}; see Send lag, and connections that were not free",
                a.describe(),
                match a.fit {
                    ArrivalFit::Poisson(_) => "gaps that are not exponential",
                    ArrivalFit::Constant { .. } => "bunched requests, not an even stream",
                }
            ));
        }
        Summary {
            regimes,
            incidents,
            arrivals,
            target_rate,
            achieved_rate,
            completed_rate,
            completion_secs,
            drained,
            bytes_rate: t.bytes as f64 / completion_secs,
            tokens_rate: t.tokens as f64 / completion_secs,
            goodput_share: if t.scheduled == 0 {
                0.0
            } else {
                100.0 * r.recorder.slo_met as f64 / t.scheduled as f64
            },
            goodput_rate: r.recorder.slo_met as f64 / completion_secs,
            warnings,
        }
    }
}

/// Whether the final numbers meet every `--until` goal.
pub fn precision_reached(r: &RunResult) -> bool {
    precision_achieved(r)
        .iter()
        .all(|(_, bound, got)| got.is_some_and(|g| g <= *bound))
}

/// Each `--until` goal: its name, the bound asked for, and the relative half-width of its
/// 95 % interval in the final numbers (None: too few requests for one).
pub fn precision_achieved(r: &RunResult) -> Vec<(String, f64, Option<f64>)> {
    let Some(p) = &r.precision else {
        return Vec::new();
    };
    let rec = &r.recorder;
    p.goals
        .iter()
        .map(|(name, q, bound)| {
            let (h, b) = match (name.starts_with("ttft_"), rec.stream.as_deref()) {
                (true, Some(st)) => (&st.ttft, &st.batches[0]),
                (true, None) => return (name.clone(), *bound, None),
                (false, _) => (&rec.corrected, &rec.batches[0]),
            };
            let x = crate::record::histogram::percentile(h, q * 100.0) as f64;
            let got = crate::record::batches::interval(h, b, *q)
                .ok()
                .filter(|_| x > 0.0)
                .map(|(lo, hi)| (hi - lo) as f64 / 2.0 / x);
            (name.clone(), *bound, got)
        })
        .collect()
}

/// `--price` that does not fit the run: a price for a model no request asked (its cost is
/// $0, likely a typo), and models that used tokens without a price (left out of the
/// estimate) — both silent otherwise.
fn price_warnings(r: &RunResult) -> Vec<String> {
    let prices = &r.meta.prices;
    if prices.is_empty() {
        return Vec::new();
    }
    let tags = &r.recorder.tags;
    let used: Vec<&str> = tags
        .iter()
        .filter(|t| t.counts.scheduled > 0)
        .map(|t| t.name.as_str())
        .collect();
    let mut out = Vec::new();
    for p in prices {
        if !used.contains(&p.model.as_str()) {
            out.push(format!(
                "--price {}: no request of the run was for that model, so it adds nothing to \
                 the estimated cost (the run's models: {})",
                p.model,
                used.join(", ")
            ));
        }
    }
    for t in tags {
        let tokens = t.prompt_tokens.max(t.input_sent) + t.completion_tokens;
        if tokens > 0 && !prices.iter().any(|p| p.model == t.name) {
            out.push(format!(
                "{} used {tokens} tokens but has no --price: it is not in the estimated cost",
                t.name
            ));
        }
    }
    out
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacer::Rate;
    use crate::run::{RunMeta, RunResult};

    /// A one-second run at 200/s of which 40 were sent and completed, the rest unfinished.
    fn short_run(queued: u64, lag: Duration, busy: f64) -> RunResult {
        let mut r = RunResult::empty(RunMeta {
            url: "http://127.0.0.1:9/".into(),
            method: "GET".into(),
            rate: Rate::per_second(200),
            connections: 2,
            threads: 1,
            duration: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            grace: Duration::from_secs(10),
            headers: Vec::new(),
            body_bytes: 0,
            arrival: "constant".into(),
            seed: 0,
            stages: String::new(),
            shard: 0,
            shards: 1,
            start_at: None,
            plan_id: String::new(),
            precision: None,
            prices: Vec::new(),
            group_by: None,
            http2_streams: None,
            tokenizer: None,
            until: None,
        });
        for _ in 0..200 {
            r.recorder.scheduled(lag);
        }
        r.recorder.total.sent = 40;
        r.recorder.total.completed = 40;
        r.recorder.queued = queued;
        r.load_duration = Duration::from_secs(1);
        r.elapsed = Duration::from_secs(1);
        r.unfinished = 160;
        r.open = 2;
        r.sent_in_window = 40;
        r.busy = vec![busy];
        r
    }

    #[test]
    fn a_shortfall_is_blamed_on_what_caused_it() {
        let late = Duration::from_millis(2);
        let ontime = Duration::from_micros(10);
        let first = |queued, lag, busy| Summary::of(&short_run(queued, lag, busy)).warnings;
        // 160 of 200 missing, all of them waited for a connection: the connections are to
        // blame, even though a busy machine also woke the thread 2 ms late (its own line).
        let w = first(160, late, 0.1);
        assert!(w[0].starts_with("target rate not achieved:") && w[0].contains("raise -c"));
        assert!(w[1].starts_with("the generator fell behind its schedule at times"));
        // Free connections, but the thread woke 2 ms late: the generator fell behind.
        let w = first(0, late, 0.1);
        assert!(w[0].starts_with("target rate not achieved — the generator fell behind"));
        // A thread with no headroom is to blame whatever else happened.
        let w = first(160, ontime, 0.99);
        assert!(w[0].starts_with("target rate not achieved — the generator fell behind"));
        assert!(!w.iter().any(|l| l.contains("ran at its limit")), "{w:?}");
        // Connections alone, on time.
        let w = first(160, ontime, 0.1);
        assert!(w[0].contains("raise -c"));
        assert!(!w[1].contains("generator"), "{w:?}");
    }

    #[test]
    fn answers_left_unread_are_the_generators_delay_and_named_as_such() {
        // Everything sent on time, but answers waited 2 ms to be read (their connections
        // looked busy meanwhile): the generator fell behind, and the warning says where.
        let mut r = short_run(0, Duration::from_micros(10), 0.1);
        r.sent_in_window = 200;
        for _ in 0..100 {
            crate::record::histogram::record(&mut r.recorder.read_lag, Duration::from_millis(2));
        }
        let w = Summary::of(&r).warnings;
        let fell = w
            .iter()
            .find(|l| l.starts_with("the generator fell behind its schedule at times"))
            .unwrap_or_else(|| panic!("{w:?}"));
        assert!(fell.contains("read lag p99 2.00ms"), "{fell}");
        assert!(
            !fell.contains("send lag") && !fell.contains("release lag"),
            "{fell}"
        );
        // Read in time: no warning about the generator.
        let mut r = short_run(0, Duration::from_micros(10), 0.1);
        r.sent_in_window = 200;
        crate::record::histogram::record(&mut r.recorder.read_lag, Duration::from_micros(40));
        let w = Summary::of(&r).warnings;
        assert!(!w.iter().any(|l| l.contains("generator")), "{w:?}");
    }
}
