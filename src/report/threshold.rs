//! Thresholds for CI, k6-style: `p99<250ms`, `p99.9<1s`, `errors<1%`, `rate>990`,
//! `ttft_p99<2s`, `rate_limited<1%`, and per tag: `p99{tag=large}<3s`.
//!
//! Grammar: `METRIC[{tag=T}] OP VALUE`, no spaces needed.
//! - METRIC: `pN` (corrected latency percentile, e.g. `p50`, `p99.9`), `max`, `mean` (a
//!   duration VALUE: `250ms`, `1s`, `800us`); `errors` (a count, or a share of scheduled
//!   requests with `%`; unfinished requests count as errors here, since a user never got an
//!   answer); `rate` (achieved send rate, requests/s); `ttft_pN`, `itl_pN`, `tpot_pN`
//!   (streams' time to first token, inter-token gap, time per output token; durations);
//!   `goodput` (share of scheduled requests that met every `--slo`, `%`); `rate_limited`
//!   (429s, a count or a `%` of scheduled).
//! - `{tag=T}` (or k6's `{tag:T}`): the same measured over requests tagged T only.
//! - OP: `<`, `<=`, `>`, `>=`.
//!
//! Parsed before the run (a malformed threshold is a usage error) and evaluated on the
//! merged numbers by `report`; any failure makes the process exit 99.

use crate::error::BadValue;
use crate::record::histogram::percentile;
use crate::report::Summary;
use crate::run::RunResult;
use crate::units::parse_duration;

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// Corrected latency at this percentile (0–100), µs.
    Percentile(f64),
    /// Largest corrected latency, µs.
    Max,
    /// Mean corrected latency, µs.
    Mean,
    /// Failed plus unfinished requests, as a count.
    Errors,
    /// Failed plus unfinished requests, as a percentage of scheduled.
    ErrorShare,
    /// Achieved send rate, requests/s.
    Rate,
    /// Time to first token at this percentile, µs.
    Ttft(f64),
    /// Inter-token latency at this percentile, µs.
    Itl(f64),
    /// Time per output token at this percentile, µs.
    Tpot(f64),
    /// Share of scheduled requests that met every `--slo`, %.
    Goodput,
    /// 429 responses, as a count.
    RateLimited,
    /// 429 responses, as a percentage of scheduled.
    RateLimitedShare,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// One condition that must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As typed.
    pub expr: String,
    /// What is measured.
    pub metric: Metric,
    /// How it is compared.
    pub op: Op,
    /// The limit, in the metric's unit (µs for latencies).
    pub limit: f64,
    /// `{tag=T}`: measured over this tag's requests only.
    pub tag: Option<String>,
}

/// A threshold's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The threshold as typed.
    pub expr: String,
    /// The measured value, in the metric's display unit (ms for latencies).
    pub actual: f64,
    /// The unit of `actual`.
    pub unit: &'static str,
    /// Whether it held.
    pub pass: bool,
}

const HINT: &str = "expected METRIC OP VALUE, e.g. p99<250ms, p99.9<1s, max<2s, mean<10ms, \
                    errors<1%, errors<=5, rate>990, ttft_p99<2s, itl_p99<100ms, \
                    tpot_p50<50ms, goodput>95%, rate_limited<1%, p99{tag=large}<3s";

impl Threshold {
    /// Parses one threshold expression; the error says what is wrong and what works.
    pub fn parse(s: &str) -> Result<Threshold, BadValue> {
        Threshold::parse_reason(s).map_err(BadValue)
    }

    fn parse_reason(s: &str) -> Result<Threshold, String> {
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let at = t
            .find(['<', '>'])
            .ok_or_else(|| format!("no comparison (< <= > >=); {HINT}"))?;
        let (name, rest) = t.split_at(at);
        // A tag filter: p99{tag=large}, or k6's p99{tag:large}.
        let (name, tag) = match name.split_once('{') {
            None => (name, None),
            Some((base, filter)) => {
                let inner = filter.strip_suffix('}').ok_or_else(|| {
                    format!("filter {{{filter}: missing }}; e.g. p99{{tag=large}}<3s")
                })?;
                let tag = inner
                    .strip_prefix("tag=")
                    .or_else(|| inner.strip_prefix("tag:"))
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        format!("filter {{{inner}}}: only {{tag=NAME}} is known, e.g. p99{{tag=large}}<3s")
                    })?;
                (base, Some(tag.to_string()))
            }
        };
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else {
            (Op::Gt, &rest[1..])
        };
        if value.is_empty() {
            return Err(format!("no value after the comparison; {HINT}"));
        }
        let number = |v: &str| v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0);
        // A latency limit needs its unit: `p99<0.5` could mean 0.5 s (a bare duration
        // elsewhere) or 0.5 ms (k6), and guessing wrong passes a run 1000× too slow.
        let latency = |v: &str| {
            if number(v).is_some() {
                return Err(format!(
                    "latency limit {v:?} has no unit: write it with one, e.g. {name}<{v}ms or \
                     {name}<{v}s (k6's spelling p(99)<{v} is taken as milliseconds)"
                ));
            }
            parse_duration(v)
                .map(|d| d.as_nanos() as f64 / 1000.0)
                .map_err(|r| format!("latency limit {v:?}: {r}"))
        };
        // k6's spelling: p(99)<200 — the percentile in parentheses, a bare limit in ms.
        let k6 = name
            .strip_prefix("p(")
            .and_then(|p| p.strip_suffix(')'))
            .filter(|p| !p.is_empty());
        if let Some(p) = k6 {
            let q = number(p).filter(|q| *q <= 100.0).ok_or_else(|| {
                format!("percentile {name:?}: expected p(0)..p(100), e.g. p(99) or p(99.9)")
            })?;
            let limit = match number(value) {
                Some(ms) => ms * 1000.0,
                None => latency(value)?,
            };
            return Ok(Threshold {
                expr: s.trim().to_string(),
                metric: Metric::Percentile(q),
                op,
                limit,
                tag,
            });
        }
        let (metric, limit) = match name {
            "max" => (Metric::Max, latency(value)?),
            "mean" | "avg" => (Metric::Mean, latency(value)?),
            "rate" => (
                Metric::Rate,
                number(value).ok_or_else(|| {
                    format!("rate limit {value:?}: expected requests/s, e.g. rate>990")
                })?,
            ),
            "errors" => match value.strip_suffix('%') {
                Some(p) => (
                    Metric::ErrorShare,
                    number(p).filter(|x| *x <= 100.0).ok_or_else(|| {
                        format!("error share {value:?}: expected a percentage, e.g. errors<1%")
                    })?,
                ),
                None => (
                    Metric::Errors,
                    number(value).ok_or_else(|| {
                        format!("error count {value:?}: expected a number, e.g. errors<=5")
                    })?,
                ),
            },
            "goodput" => (
                Metric::Goodput,
                value
                    .strip_suffix('%')
                    .and_then(number)
                    .filter(|x| *x <= 100.0)
                    .ok_or_else(|| {
                        format!("goodput {value:?}: expected a percentage, e.g. goodput>95%")
                    })?,
            ),
            "rate_limited" => match value.strip_suffix('%') {
                Some(p) => (
                    Metric::RateLimitedShare,
                    number(p).filter(|x| *x <= 100.0).ok_or_else(|| {
                        format!(
                            "rate_limited {value:?}: expected a percentage, e.g. rate_limited<1%"
                        )
                    })?,
                ),
                None => (
                    Metric::RateLimited,
                    number(value).ok_or_else(|| {
                        format!("rate_limited {value:?}: expected a count or a percentage")
                    })?,
                ),
            },
            stream
                if ["ttft_p", "itl_p", "tpot_p"]
                    .iter()
                    .any(|x| stream.starts_with(x)) =>
            {
                let (kind, p) = stream.split_once("_p").expect("checked");
                let q = number(p).filter(|q| *q <= 100.0).ok_or_else(|| {
                    format!("percentile {stream:?}: expected e.g. {kind}_p99 or {kind}_p50")
                })?;
                let metric = match kind {
                    "ttft" => Metric::Ttft(q),
                    "itl" => Metric::Itl(q),
                    _ => Metric::Tpot(q),
                };
                (metric, latency(value)?)
            }
            p if p.starts_with('p') => {
                let q = number(&p[1..]).filter(|q| *q <= 100.0).ok_or_else(|| {
                    format!("percentile {p:?}: expected p0..p100, e.g. p99 or p99.9")
                })?;
                (Metric::Percentile(q), latency(value)?)
            }
            other => return Err(format!("unknown metric {other:?}; {HINT}")),
        };
        Ok(Threshold {
            expr: s.trim().to_string(),
            metric,
            op,
            limit,
            tag,
        })
    }

    /// Checks this threshold against a run.
    pub fn evaluate(&self, r: &RunResult, s: &Summary) -> Verdict {
        let rec = &r.recorder;
        // The distributions and counts measured: the whole run's, or one tag's.
        let (c, t, unfinished, stream, slo_met) = match &self.tag {
            None => (
                &rec.corrected,
                &rec.total,
                r.unfinished,
                rec.stream.as_deref(),
                Some(rec.slo_met),
            ),
            Some(name) => match rec.tags.iter().find(|x| &x.name == name) {
                Some(tag) => (
                    &tag.corrected,
                    &tag.counts,
                    tag.unfinished(),
                    tag.stream.as_deref(),
                    Some(tag.slo_met),
                ),
                None => {
                    return Verdict {
                        expr: self.expr.clone(),
                        actual: 0.0,
                        unit: "(no requests with this tag)",
                        pass: false,
                    }
                }
            },
        };
        let failed = (t.error_total() + unfinished) as f64;
        let share = |n: f64| {
            if t.scheduled == 0 {
                0.0
            } else {
                100.0 * n / t.scheduled as f64
            }
        };
        // A stream metric of a run without streams fails: a CI gate on TTFT must not go
        // green because streaming broke and nothing was measured.
        let streamed = match self.metric {
            Metric::Ttft(_) => stream.map(|x| &x.ttft),
            Metric::Itl(_) => stream.map(|x| &x.itl),
            Metric::Tpot(_) => stream.map(|x| &x.tpot),
            _ => None,
        };
        if matches!(
            self.metric,
            Metric::Ttft(_) | Metric::Itl(_) | Metric::Tpot(_)
        ) && streamed.is_none_or(|h| h.is_empty())
        {
            return Verdict {
                expr: self.expr.clone(),
                actual: 0.0,
                unit: "(no event streams to measure)",
                pass: false,
            };
        }
        let stream_q = |h: Option<&crate::record::histogram::Hist>, q: f64| {
            let v = h.map_or(0, |h| percentile(h, q)) as f64;
            (v, v / 1000.0, "ms")
        };
        let (value, actual, unit) = match self.metric {
            Metric::Ttft(q) => stream_q(stream.map(|x| &x.ttft), q),
            Metric::Itl(q) => stream_q(stream.map(|x| &x.itl), q),
            Metric::Tpot(q) => stream_q(stream.map(|x| &x.tpot), q),
            Metric::Goodput => {
                let g = match (&self.tag, slo_met) {
                    (None, _) => s.goodput_share * 100.0,
                    (Some(_), Some(met)) => share(met as f64),
                    (Some(_), None) => 0.0,
                };
                (g, g, "%")
            }
            Metric::RateLimited => (t.rate_limited as f64, t.rate_limited as f64, ""),
            Metric::RateLimitedShare => {
                let v = share(t.rate_limited as f64);
                (v, v, "%")
            }
            Metric::Percentile(q) => {
                let v = percentile(c, q) as f64;
                (v, v / 1000.0, "ms")
            }
            Metric::Max => (c.max() as f64, c.max() as f64 / 1000.0, "ms"),
            Metric::Mean => (c.mean(), c.mean() / 1000.0, "ms"),
            Metric::Errors => (failed, failed, ""),
            Metric::ErrorShare => {
                let v = share(failed);
                (v, v, "%")
            }
            Metric::Rate if self.tag.is_some() => {
                let secs = r.load_duration.as_secs_f64().max(1e-9);
                let v = t.sent as f64 / secs;
                (v, v, "req/s")
            }
            Metric::Rate => (s.achieved_rate, s.achieved_rate, "req/s"),
        };
        let pass = match self.op {
            Op::Lt => value < self.limit,
            Op::Le => value <= self.limit,
            Op::Gt => value > self.limit,
            Op::Ge => value >= self.limit,
        };
        Verdict {
            expr: self.expr.clone(),
            actual,
            unit,
            pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let ok = [
            ("p99<250ms", Metric::Percentile(99.0), Op::Lt, 250_000.0),
            ("p99.9 < 1s", Metric::Percentile(99.9), Op::Lt, 1_000_000.0),
            ("max<=2s", Metric::Max, Op::Le, 2_000_000.0),
            ("mean<800us", Metric::Mean, Op::Lt, 800.0),
            ("errors<1%", Metric::ErrorShare, Op::Lt, 1.0),
            ("errors<=5", Metric::Errors, Op::Le, 5.0),
            ("rate>990", Metric::Rate, Op::Gt, 990.0),
            ("rate>=99.5", Metric::Rate, Op::Ge, 99.5),
            // k6's spelling: a bare limit is milliseconds; a unit is honoured.
            ("p(99)<200", Metric::Percentile(99.0), Op::Lt, 200_000.0),
            ("p(99.9)<1s", Metric::Percentile(99.9), Op::Lt, 1_000_000.0),
            ("ttft_p99<2s", Metric::Ttft(99.0), Op::Lt, 2_000_000.0),
            ("itl_p99<100ms", Metric::Itl(99.0), Op::Lt, 100_000.0),
            ("tpot_p50<50ms", Metric::Tpot(50.0), Op::Lt, 50_000.0),
            ("goodput>95%", Metric::Goodput, Op::Gt, 95.0),
            ("rate_limited<1%", Metric::RateLimitedShare, Op::Lt, 1.0),
            ("rate_limited<=3", Metric::RateLimited, Op::Le, 3.0),
            (
                "p99{tag=large}<3s",
                Metric::Percentile(99.0),
                Op::Lt,
                3_000_000.0,
            ),
        ];
        for (s, metric, op, limit) in ok {
            let t = Threshold::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!((t.metric, t.op, t.limit), (metric, op, limit), "{s}");
        }
        for bad in [
            "p99",
            "p99<",
            "p101<1s",
            "p99<fast",
            "latency<1s",
            "errors<150%",
            "rate>lots",
            "<1s",
            "p99=1s",
            "p()<200",
            "p(101)<200",
            "p99{tag=}<1s",
            "p99{model=x}<1s",
            "p99{tag=x<1s",
            "goodput>95",
            "ttft_p<1s",
        ] {
            assert!(Threshold::parse(bad).is_err(), "{bad} should be rejected");
        }
        // A latency limit without a unit is refused, with the fix in the message.
        for bare in ["p99<0.5", "max<2", "mean<10", "p99.9<250"] {
            let e = Threshold::parse(bare).expect_err(bare).to_string();
            assert!(e.contains("no unit") && e.contains("ms"), "{bare}: {e}");
        }
    }
}
