//! The HTML report (`--html FILE`): one self-contained file — inline SVG plots, inline
//! CSS, no scripts, nothing fetched — that opens anywhere, offline.
//!
//! Plots: corrected latency percentiles per second (p50/p99/p99.9/max); the percentile
//! spectrum on a "number of nines" axis, corrected against uncorrected (where coordinated
//! omission shows); intended vs achieved vs completed requests per second; errors per
//! second by class. Then the summary table and the text report.
//!
//! Used by `app` after a run or a `report` merge.

use super::threshold::Verdict;
use super::{fmt_us, text, Summary};
use crate::outcome::ErrorClass;
use crate::record::histogram::percentile;
use crate::record::histogram::Hist;
use crate::run::RunResult;
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

/// One line of a chart: a name and its points.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

fn esc(s: &str) -> String {
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
fn chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    x_ticks: Option<&[(f64, String)]>,
) -> String {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if y1 <= 0.0 {
        y1 = 1.0;
    }
    let ystep = nice_step(y1, 5.0);
    let ymax = (y1 / ystep).ceil().max(1.0) * ystep;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + ph - y / ymax * ph;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    let _ = write!(
        o,
        r##"<text x="{}" y="18" class="title">{}</text>"##,
        LEFT,
        esc(title)
    );
    // Axes and grid.
    let mut y = 0.0;
    while y <= ymax + ystep / 2.0 {
        let py = sy(y);
        let _ = write!(
            o,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            py + 4.0,
            trim(y)
        );
        y += ystep;
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
                v.push((x, trim(x)));
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
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if !path.is_empty() {
            let _ = write!(
                o,
                r##"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"##,
                path.join(" ")
            );
        }
        let ly = TOP + 10.0 + 18.0 * i as f64;
        let _ = write!(
            o,
            r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}" class="tick">{}</text>"##,
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
    o.push_str("</svg>");
    o
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The percentile spectrum as (number of nines, ms) points: x = log10(1 / (1 − q)).
fn spectrum_points(h: &Hist) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, us)| {
            (
                (1.0 / (1.0 - q)).log10(),
                h.highest_equivalent(us) as f64 / 1000.0,
            )
        })
        .collect()
}

/// The HTML report.
pub fn render(r: &RunResult, s: &Summary, verdicts: &[Verdict]) -> String {
    let rec = &r.recorder;
    let per_sec = |f: &dyn Fn(&crate::record::IntervalStats) -> f64| -> Vec<(f64, f64)> {
        r.intervals
            .iter()
            .map(|i| (f64::from(i.index), f(i)))
            .collect()
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let latency = chart(
        "Corrected latency per second",
        "second of the run",
        "latency (ms)",
        &[
            Series {
                name: "p50".into(),
                points: per_sec(&|i| ms(i.p50_us)),
            },
            Series {
                name: "p99".into(),
                points: per_sec(&|i| ms(i.p99_us)),
            },
            Series {
                name: "p99.9".into(),
                points: per_sec(&|i| ms(i.p999_us)),
            },
            Series {
                name: "max".into(),
                points: per_sec(&|i| ms(i.max_us)),
            },
        ],
        None,
    );
    let nines: Vec<(f64, String)> = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
        .iter()
        .enumerate()
        .map(|(i, l)| (i as f64, l.to_string()))
        .collect();
    let spectrum = chart(
        "Latency by percentile (corrected vs uncorrected)",
        "percentile (log scale: number of nines)",
        "latency (ms)",
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
    );
    let throughput = chart(
        "Requests per second",
        "second of the run",
        "requests/s",
        &[
            Series {
                name: "intended".into(),
                points: per_sec(&|i| i.counts.scheduled as f64),
            },
            Series {
                name: "achieved (sent)".into(),
                points: per_sec(&|i| i.counts.sent as f64),
            },
            Series {
                name: "completed".into(),
                points: per_sec(&|i| i.counts.completed as f64),
            },
        ],
        None,
    );
    let mut error_series = vec![Series {
        name: "all errors".into(),
        points: per_sec(&|i| i.counts.error_total() as f64),
    }];
    for class in ErrorClass::ALL {
        if rec.total.errors[class.index()] > 0 {
            error_series.push(Series {
                name: class.name().into(),
                points: per_sec(&|i| i.counts.errors[class.index()] as f64),
            });
        }
    }
    let errors = chart(
        "Errors per second",
        "second of the run",
        "errors/s",
        &error_series,
        None,
    );

    let tokens = rec.stream.as_ref().map(|st| {
        let tt = chart(
            "Streams: output tokens per second, and time to first token",
            "second of the run",
            "tokens/s  ·  ms",
            &[
                Series {
                    name: "tokens/s".into(),
                    points: per_sec(&|i| i.counts.tokens as f64),
                },
                Series {
                    name: "TTFT p99 (ms)".into(),
                    points: per_sec(&|i| ms(i.ttft_p99_us)),
                },
            ],
            None,
        );
        (tt, st)
    });
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
                fmt_us(percentile(&rec.corrected, p) as f64),
                fmt_us(percentile(&rec.uncorrected, p) as f64)
            ),
        ));
    }
    if let Some((_, st)) = &tokens {
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
                format!(
                    "{} / {} / {}",
                    fmt_us(percentile(h, 50.0) as f64),
                    fmt_us(percentile(h, 99.0) as f64),
                    fmt_us(h.max() as f64)
                ),
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
    let table: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>"))
        .collect();
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
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 800px; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ text-align: left; padding: 3px 12px; border-bottom: 1px solid #ddd; }}
svg {{ display: block; margin: 1.5em 0; }} .title {{ font-weight: bold; font-size: 14px; }}
.tick {{ font-size: 11px; fill: #444; }} .label {{ font-size: 12px; fill: #222; }} .grid {{ stroke: #e4e4e4; }}
.warn {{ color: #a40000; font-weight: bold; }} pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }}
</style></head><body>
<h1>ratebench report</h1>
<p>{title}</p>
{warnings}
<table>{table}</table>
{latency}
{spectrum}
{throughput}
{errors}
{tokens}
<h2>Text report</h2>
<pre>{report}</pre>
</body></html>
"#,
        title = esc(&r.meta.url),
        tokens = tokens.map(|(t, _)| t).unwrap_or_default(),
    )
}
