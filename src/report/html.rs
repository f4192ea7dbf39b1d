//! The HTML report (`--html FILE`): one self-contained file — inline SVG plots, inline
//! CSS, no scripts, nothing fetched — that opens anywhere, offline.
//!
//! Plots: corrected latency percentiles per second (p50/p99/p99.9/max); the percentile
//! spectrum on a "number of nines" axis, corrected against uncorrected (where coordinated
//! omission shows); intended vs achieved vs completed requests per second; errors per
//! second by class; for streams, tokens per second and TTFT per second. Then the summary
//! table and the text report.
//!
//! Latency axes are logarithmic (a 0.2 ms service and a 1 s stall are both readable on one
//! plot), each axis has one unit, a second with nothing to plot is a gap in its line (not a
//! zero), and lines that coincide stay visible (each series has its own dash and width).
//! Every series carries `data-series` and `data-points` attributes, so a test can read back
//! from the rendered page what was plotted.
//!
//! Used by `app` after a run or a `report` merge.

use super::threshold::Verdict;
use super::{na_max, na_us, text, Summary};
use crate::outcome::ErrorClass;
use crate::record::batches::interval;
use crate::record::histogram::Hist;
use crate::run::RunResult;
use crate::units::trim_decimal;
use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 45.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// One line of a chart: a name and its points; a `None` y is a gap (nothing to plot then).
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, Option<f64>)>,
}

/// How the y axis maps values.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    /// From 0, evenly.
    Linear,
    /// Logarithmic (latencies); values ≤ 0 cannot be drawn and are gaps.
    Log,
}

/// Dash patterns, one per series, so lines that lie on top of each other stay visible.
const DASHES: [&str; 6] = ["", "6 3", "2 2", "10 3 2 3", "1 3", "4 4"];

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" step for about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A line chart as inline SVG. `x_ticks` overrides the numeric x axis labels.
pub(crate) fn chart(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    scale: Scale,
    series: &[Series],
    x_ticks: Option<&[(f64, String)]>,
) -> String {
    chart_with_bars(
        id,
        title,
        x_label,
        y_label,
        scale,
        series,
        x_ticks,
        &[],
        &[],
    )
}

/// `chart`, with error bars (x, low, high) on the first series — its 95 % intervals — and
/// shaded bands (x from, x to) under the lines: every other regime of the run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn chart_with_bars(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    scale: Scale,
    series: &[Series],
    x_ticks: Option<&[(f64, String)]>,
    bars: &[(f64, f64, f64)],
    bands: &[(f64, f64)],
) -> String {
    let drawable = |y: f64| y.is_finite() && (scale == Scale::Linear || y > 0.0);
    let (mut x0, mut x1) = (f64::MAX, f64::MIN);
    let (mut ylo, mut yhi) = (f64::MAX, f64::MIN);
    for &(x, y) in series.iter().flat_map(|s| s.points.iter()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        if let Some(y) = y.filter(|y| drawable(*y)) {
            ylo = ylo.min(y);
            yhi = yhi.max(y);
        }
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    // The y range and its ticks: from 0 on a linear axis; whole decades on a log axis.
    let (ymin, ymax, yticks): (f64, f64, Vec<f64>) = match scale {
        Scale::Linear => {
            let top = if yhi > 0.0 { yhi } else { 1.0 };
            let step = nice_step(top, 5.0);
            let ymax = (top / step).ceil().max(1.0) * step;
            let n = (ymax / step).round() as usize;
            (0.0, ymax, (0..=n).map(|i| i as f64 * step).collect())
        }
        Scale::Log => {
            let (lo, hi) = if ylo <= yhi { (ylo, yhi) } else { (1.0, 10.0) };
            let dlo = lo.log10().floor() as i32;
            let dhi = (hi.log10().ceil() as i32).max(dlo + 1);
            // 1-2-5 ticks over a few decades; decades only over many.
            let steps: &[f64] = if dhi - dlo <= 3 {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0]
            };
            let ticks = (dlo..=dhi)
                .flat_map(|d| steps.iter().map(move |m| m * 10f64.powi(d)))
                .filter(|t| *t <= 10f64.powi(dhi) * 1.000_001)
                .collect();
            (10f64.powi(dlo), 10f64.powi(dhi), ticks)
        }
    };
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| match scale {
        Scale::Linear => TOP + ph - (y - ymin) / (ymax - ymin) * ph,
        Scale::Log => TOP + ph - (y.log10() - ymin.log10()) / (ymax.log10() - ymin.log10()) * ph,
    };
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" data-chart="{id}" data-scale="{sc}"><title>{t}</title>"#,
        t = esc(title),
        sc = if scale == Scale::Log { "log" } else { "linear" }
    );
    let _ = write!(
        o,
        r##"<text x="{}" y="18" class="title">{}</text>"##,
        LEFT,
        esc(title)
    );
    // Axes and grid.
    for y in yticks {
        let py = sy(y);
        let _ = write!(
            o,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            py + 4.0,
            trim_decimal(y)
        );
    }
    let ticks: Vec<(f64, String)> = match x_ticks {
        Some(t) => t.to_vec(),
        None => {
            let integral = series
                .iter()
                .flat_map(|s| &s.points)
                .all(|(x, _)| x.fract() == 0.0);
            let mut step = nice_step(x1 - x0, 8.0);
            if integral {
                step = step.max(1.0); // whole seconds
            }
            let mut v = Vec::new();
            let mut x = (x0 / step).ceil() * step;
            while x <= x1 + 1e-9 {
                v.push((x, trim_decimal(x)));
                x += step;
            }
            v
        }
    };
    for (x, label) in ticks
        .iter()
        .filter(|(x, _)| *x >= x0 - 1e-9 && *x <= x1 + 1e-9)
    {
        let px = sx(*x);
        let _ = write!(
            o,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" class="grid"/><text x="{px:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 16.0,
            esc(label)
        );
    }
    let _ = write!(
        o,
        r##"<text x="{:.1}" y="{:.1}" class="label" text-anchor="middle">{}</text><text x="14" y="{:.1}" class="label" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"##,
        LEFT + pw / 2.0,
        H - 8.0,
        esc(x_label),
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(y_label)
    );
    draw_bands(&mut o, bands, &sx, LEFT, LEFT + pw, ph);
    // Widest first, so a line drawn later on top of an earlier one leaves its edges showing.
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let dash = DASHES[i % DASHES.len()];
        let width = 3.2 - 0.5 * (i.min(4) as f64);
        let plotted: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|&(x, y)| y.filter(|y| drawable(*y)).map(|y| (x, y)))
            .collect();
        let _ = write!(
            o,
            r##"<g class="series" data-series="{}" data-points="{}">"##,
            esc(&s.name),
            plotted.len()
        );
        // Runs of consecutive points; a gap (None, or a value a log axis cannot show)
        // ends one. A run of one point is a dot.
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, o: &mut String| {
            match run.len() {
                0 => {}
                1 => {
                    let (x, y) = run[0].split_once(',').expect("x,y");
                    let _ = write!(o, r##"<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>"##);
                }
                _ => {
                    let _ = write!(
                        o,
                        r##"<polyline fill="none" stroke="{color}" stroke-width="{width:.1}" stroke-dasharray="{dash}" stroke-linejoin="round" points="{}"/>"##,
                        run.join(" ")
                    );
                }
            }
            run.clear();
        };
        for &(x, y) in &s.points {
            match y.filter(|y| drawable(*y)) {
                Some(y) => run.push(format!("{:.1},{:.1}", sx(x), sy(y))),
                None => flush(&mut run, &mut o),
            }
        }
        flush(&mut run, &mut o);
        o.push_str("</g>");
        let ly = TOP + 10.0 + 18.0 * i as f64;
        let _ = write!(
            o,
            r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3" stroke-dasharray="{dash}"/><text x="{:.1}" y="{:.1}" class="tick">{}</text>"##,
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
    let name = series.first().map_or("", |s| s.name.as_str());
    draw_bars(&mut o, name, bars, &sx, &sy, &drawable);
    o.push_str("</svg>");
    o
}

/// Shaded bands (x from, x to) under a chart's lines, clipped to the plot (`left`–`right`).
fn draw_bands(
    o: &mut String,
    bands: &[(f64, f64)],
    sx: &dyn Fn(f64) -> f64,
    left: f64,
    right: f64,
    height: f64,
) {
    if bands.is_empty() {
        return;
    }
    let _ = write!(o, r##"<g class="regimes" data-bands="{}">"##, bands.len());
    for &(a, b) in bands {
        let (pa, pb) = (sx(a).max(left), sx(b).min(right));
        if pb > pa {
            let _ = write!(
                o,
                r##"<rect x="{pa:.1}" y="{TOP}" width="{:.1}" height="{height:.1}" fill="#000" fill-opacity="0.07"/>"##,
                pb - pa
            );
        }
    }
    o.push_str("</g>");
}

/// Error bars (x, low, high) in the first series' colour: its 95 % intervals.
fn draw_bars(
    o: &mut String,
    series: &str,
    bars: &[(f64, f64, f64)],
    sx: &dyn Fn(f64) -> f64,
    sy: &dyn Fn(f64) -> f64,
    drawable: &dyn Fn(f64) -> bool,
) {
    if bars.is_empty() {
        return;
    }
    let color = COLORS[0];
    let _ = write!(
        o,
        r##"<g class="ci" data-series="{}" data-bars="{}">"##,
        esc(series),
        bars.len()
    );
    for &(x, lo, hi) in bars.iter().filter(|b| drawable(b.1) && drawable(b.2)) {
        let (px, plo, phi) = (sx(x), sy(lo), sy(hi));
        let line = |x1: f64, y1: f64, x2: f64, y2: f64| {
            format!(
                r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{color}" stroke-width="1.5"/>"##
            )
        };
        o.push_str(&line(px, plo, px, phi));
        o.push_str(&line(px - 4.0, plo, px + 4.0, plo));
        o.push_str(&line(px - 4.0, phi, px + 4.0, phi));
    }
    o.push_str("</g>");
}

/// The percentile spectrum as (number of nines, ms) points: x = log10(1 / (1 − q)).
pub(crate) fn spectrum_points(h: &Hist) -> Vec<(f64, Option<f64>)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, us)| {
            (
                (1.0 / (1.0 - q)).log10(),
                Some(h.highest_equivalent(us) as f64 / 1000.0),
            )
        })
        .collect()
}

/// The HTML report.
pub fn render(r: &RunResult, s: &Summary, verdicts: &[Verdict]) -> String {
    let tokens = r
        .recorder
        .stream
        .as_deref()
        .map(|st| (stream_charts(r), st));
    let sections = [
        latency_chart(r, s),
        spectrum_chart(r),
        tags_chart(r),
        throughput_chart(r),
        rate_limit_chart(r),
        groups_chart(r),
        errors_chart(r),
        tokens.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
    ];
    page(
        r,
        s,
        verdicts,
        &summary_table(r, s, verdicts, tokens.map(|t| t.1)),
        &sections,
    )
}

/// Each second's value of `f` (a `None` is a gap in the line).
fn per_sec(
    r: &RunResult,
    f: impl Fn(&crate::record::IntervalStats) -> Option<f64>,
) -> Vec<(f64, Option<f64>)> {
    r.intervals
        .iter()
        .map(|i| (f64::from(i.index), f(i)))
        .collect()
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn count(n: u64) -> Option<f64> {
    Some(n as f64)
}

/// A second in which no latency was recorded (nothing completed or timed out) has no
/// percentile: a gap, not 0 ms.
fn latency_of(i: &crate::record::IntervalStats, us: u64) -> Option<f64> {
    let recorded = i.counts.completed + i.counts.errors[ErrorClass::Timeout.index()];
    (recorded > 0).then(|| ms(us))
}

/// The "number of nines" axis of the spectra.
fn nines() -> Vec<(f64, String)> {
    ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
        .iter()
        .enumerate()
        .map(|(i, l)| (i as f64, l.to_string()))
        .collect()
}

/// Corrected latency per second (p50, p99, p99.9, max), regimes shaded in turn.
fn latency_chart(r: &RunResult, s: &Summary) -> String {
    // Every other regime shaded, when the run was not one regime.
    let bands: Vec<(f64, f64)> = s
        .regimes
        .iter()
        .skip(1)
        .step_by(2)
        .map(|g| (f64::from(g.start_s) - 0.5, f64::from(g.end_s) - 0.5))
        .collect();
    chart_with_bars(
        "latency",
        if bands.is_empty() {
            "Corrected latency per second"
        } else {
            "Corrected latency per second (regimes shaded in turn)"
        },
        "second of the run",
        "latency (ms, log scale)",
        Scale::Log,
        &[
            Series {
                name: "p50".into(),
                points: per_sec(r, |i| latency_of(i, i.p50_us)),
            },
            Series {
                name: "p99".into(),
                points: per_sec(r, |i| latency_of(i, i.p99_us)),
            },
            Series {
                name: "p99.9".into(),
                points: per_sec(r, |i| latency_of(i, i.p999_us)),
            },
            Series {
                name: "max".into(),
                points: per_sec(r, |i| latency_of(i, i.max_us)),
            },
        ],
        None,
        &[],
        &bands,
    )
}

/// The percentile spectrum, corrected (with its 95 % intervals) against uncorrected.
fn spectrum_chart(r: &RunResult) -> String {
    let rec = &r.recorder;
    let nines = nines();
    // The corrected percentiles' 95 % intervals, as error bars.
    let bars: Vec<(f64, f64, f64)> = crate::report::json::CI_PERCENTILES
        .iter()
        .filter_map(|(_, q)| {
            let (lo, hi) = interval(&rec.corrected, &rec.batches[0], *q).ok()?;
            Some((
                (1.0 / (1.0 - q)).log10(),
                lo as f64 / 1000.0,
                hi as f64 / 1000.0,
            ))
        })
        .collect();
    chart_with_bars(
        "spectrum",
        "Latency by percentile (corrected vs uncorrected, with 95 % intervals)",
        "percentile (log scale: number of nines)",
        "latency (ms, log scale)",
        Scale::Log,
        &[
            Series {
                name: "corrected".into(),
                points: spectrum_points(&rec.corrected),
            },
            Series {
                name: "uncorrected".into(),
                points: spectrum_points(&rec.uncorrected),
            },
        ],
        Some(&nines),
        &bars,
        &[],
    )
}

/// One spectrum line per tag, when the run had several kinds of request.
fn tags_chart(r: &RunResult) -> String {
    let rec = &r.recorder;
    let nines = nines();
    if rec.tags.len() > 1 {
        {
            let series: Vec<Series> = rec
                .tags
                .iter()
                .map(|t| Series {
                    name: t.name.clone(),
                    points: spectrum_points(&t.corrected),
                })
                .collect();
            chart(
                "tags",
                "Corrected latency by percentile, by tag",
                "percentile (log scale: number of nines)",
                "latency (ms, log scale)",
                Scale::Log,
                &series,
                Some(&nines),
            )
        }
    } else {
        String::new()
    }
}

/// Rate limits: what was asked of the server each second and what it admitted.
fn rate_limit_chart(r: &RunResult) -> String {
    let rec = &r.recorder;
    if rec.total.rate_limited > 0 {
        chart(
            "ratelimited",
            "Rate limiting per second: answered vs admitted (not 429)",
            "second of the run",
            "responses/s",
            Scale::Linear,
            &[
                Series {
                    name: "answered".into(),
                    points: per_sec(r, |i| count(i.counts.completed)),
                },
                Series {
                    name: "admitted".into(),
                    points: per_sec(r, |i| {
                        count(i.counts.completed.saturating_sub(i.counts.rate_limited))
                    }),
                },
                Series {
                    name: "429".into(),
                    points: per_sec(r, |i| count(i.counts.rate_limited)),
                },
            ],
            None,
        )
    } else {
        String::new()
    }
}

/// `--group-by-header`: who answered each second (a failover shows as lines crossing).
fn groups_chart(r: &RunResult) -> String {
    let rec = &r.recorder;
    match &r.meta.group_by {
        Some(h) if !rec.groups.is_empty() => {
            let series: Vec<Series> = rec
                .groups
                .iter()
                .map(|g| Series {
                    name: g.value.clone(),
                    points: per_sec(r, |i| {
                        count(
                            i.groups
                                .iter()
                                .find(|(v, _)| *v == g.value)
                                .map_or(0, |(_, n)| *n),
                        )
                    }),
                })
                .collect();
            chart(
                "groups",
                &format!("Responses per second by {h}"),
                "second of the run",
                "responses/s",
                Scale::Linear,
                &series,
                None,
            )
        }
        _ => String::new(),
    }
}

/// Requests per second: intended, achieved (sent), completed.
fn throughput_chart(r: &RunResult) -> String {
    chart(
        "throughput",
        "Requests per second",
        "second of the run",
        "requests/s",
        Scale::Linear,
        &[
            Series {
                name: "intended".into(),
                points: per_sec(r, |i| count(i.counts.scheduled)),
            },
            Series {
                name: "achieved (sent)".into(),
                points: per_sec(r, |i| count(i.counts.sent)),
            },
            Series {
                name: "completed".into(),
                points: per_sec(r, |i| count(i.counts.completed)),
            },
        ],
        None,
    )
}

/// Errors per second, all and by class.
fn errors_chart(r: &RunResult) -> String {
    let rec = &r.recorder;
    let mut error_series = vec![Series {
        name: "all errors".into(),
        points: per_sec(r, |i| count(i.counts.error_total())),
    }];
    for class in ErrorClass::ALL {
        if rec.total.errors[class.index()] > 0 {
            error_series.push(Series {
                name: class.name().into(),
                points: per_sec(r, |i| count(i.counts.errors[class.index()])),
            });
        }
    }
    chart(
        "errors",
        "Errors per second",
        "second of the run",
        "errors/s",
        Scale::Linear,
        &error_series,
        None,
    )
}

/// Streams: output tokens per second and TTFT per second, on charts of their own.
fn stream_charts(r: &RunResult) -> String {
    let per_second = chart(
        "tokens",
        "Streams: output tokens per second",
        "second of the run",
        "tokens/s",
        Scale::Linear,
        &[Series {
            name: "tokens/s".into(),
            points: per_sec(r, |i| count(i.counts.tokens)),
        }],
        None,
    );
    let ttft = chart(
        "ttft",
        "Streams: time to first token per second (p99, corrected)",
        "second of the run",
        "TTFT (ms, log scale)",
        Scale::Log,
        &[Series {
            name: "TTFT p99".into(),
            points: per_sec(r, |i| (i.ttft_p99_us > 0).then(|| ms(i.ttft_p99_us))),
        }],
        None,
    );
    per_second + &ttft
}

/// The summary table: target, rates, accounting, percentiles, streams, thresholds.
fn summary_table(
    r: &RunResult,
    s: &Summary,
    verdicts: &[Verdict],
    stream: Option<&crate::record::StreamRecorder>,
) -> String {
    let rec = &r.recorder;
    let t = &rec.total;
    let mut rows: Vec<(String, String)> = vec![
        ("Target".into(), esc(&r.meta.url)),
        ("Target rate".into(), format!("{} req/s", s.target_rate)),
        (
            "Achieved (sent)".into(),
            format!("{:.2} req/s", s.achieved_rate),
        ),
        (
            "Accounting".into(),
            format!(
                "scheduled {} = completed {} + errors {} + unfinished {}",
                t.scheduled,
                t.completed,
                t.error_total(),
                r.unfinished
            ),
        ),
    ];
    for p in [50.0, 90.0, 99.0, 99.9, 99.99, 100.0] {
        rows.push((
            format!("p{p} corrected / uncorrected"),
            format!(
                "{} / {}",
                na_us(&rec.corrected, p),
                na_us(&rec.uncorrected, p)
            ),
        ));
    }
    if let Some(st) = stream {
        rows.push((
            "Output tokens/s".into(),
            format!(
                "{:.2} ({} tokens, {} streams)",
                s.tokens_rate, t.tokens, st.streams
            ),
        ));
        for (name, h) in [
            ("TTFT", &st.ttft),
            ("Inter-token latency", &st.itl),
            ("Time per output token", &st.tpot),
        ] {
            rows.push((
                format!("{name} p50 / p99 / max"),
                format!("{} / {} / {}", na_us(h, 50.0), na_us(h, 99.0), na_max(h)),
            ));
        }
        if !rec.slos.is_empty() {
            rows.push((
                "Goodput".into(),
                format!(
                    "{:.2}% of scheduled ({:.2}/s)",
                    s.goodput_share, s.goodput_rate
                ),
            ));
        }
    }
    for v in verdicts {
        rows.push((
            format!("Threshold {}", esc(&v.expr)),
            format!(
                "{} (actual {:.3}{})",
                if v.pass { "pass" } else { "FAIL" },
                v.actual,
                v.unit
            ),
        ));
    }
    rows.iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>"))
        .collect()
}

/// The page: title, warnings, the summary table, the charts, the text report.
fn page(
    r: &RunResult,
    s: &Summary,
    verdicts: &[Verdict],
    table: &str,
    sections: &[String],
) -> String {
    let warnings: String = s
        .warnings
        .iter()
        .map(|w| format!("<p class=\"warn\">WARNING: {}</p>", esc(w)))
        .collect();
    let report = esc(&format!(
        "{}{}",
        text::header(&r.meta),
        text::render(r, s, verdicts, text::Spectra::default())
    ));
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ratebench report: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ text-align: left; padding: 3px 12px; border-bottom: 1px solid #ddd; }}
svg {{ display: block; margin: 1.5em 0; }} .title {{ font-weight: bold; font-size: 14px; }}
.tick {{ font-size: 11px; fill: #444; }} .label {{ font-size: 12px; fill: #222; }} .grid {{ stroke: #e4e4e4; }}
.warn {{ color: #a40000; font-weight: bold; max-width: 900px; }}
pre {{ background: #f6f6f6; padding: 1em; font-size: 12px; width: max-content; min-width: 760px; }}
</style></head><body>
<h1>ratebench report</h1>
<p>{title}</p>
{warnings}
<table>{table}</table>
{charts}
<h2>Text report</h2>
<pre>{report}</pre>
</body></html>
"#,
        title = esc(&r.meta.url),
        charts = sections.join("\n"),
    )
}
