//! `ratebench report requests.tsv --html FILE`: every request of a `--requests-log` as a
//! point — when it ended against how long it took from when it was due — the view that
//! shows a stall as a diagonal wall, a slow connection as a band, errors as red crosses.
//!
//! The log is read as a stream; at most `KEEP` points are drawn, a uniform sample kept by
//! reservoir sampling (Algorithm R, seeded: the same file draws the same picture), so a
//! log of any length is drawn in constant memory and the page stays small. The counts
//! above the plot are of every line.

use super::html::esc;
use std::fmt::Write;
use std::io::BufRead;

/// The most points drawn.
pub const KEEP: usize = 20_000;

/// The first line of a requests log.
pub const MAGIC: &str = "# ratebench requests log";

/// One request: when it ended (s), its latency from the due time (ms), and its kind.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    done_s: f64,
    latency_ms: f64,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    Status,
    Error,
}

/// What a log held.
#[derive(Debug, Default)]
pub struct Scatter {
    points: Vec<Point>,
    /// Lines read, by kind (2xx/3xx, 4xx/5xx, errors).
    counts: [u64; 3],
}

/// Reads a requests log; `Err` says which line is not one.
pub fn read(input: impl BufRead, name: &str) -> Result<Scatter, String> {
    let mut s = Scatter::default();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut seen: u64 = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("{name}: {e}"))?;
        if line.starts_with('#') || line.starts_with("intended_s") || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let num = |k: usize| f.get(k).and_then(|v| v.parse::<f64>().ok());
        let (Some(intended), Some(done)) = (num(0), num(3)) else {
            return Err(format!(
                "{name}:{}: not a requests-log line: {line:?}",
                i + 1
            ));
        };
        let kind = match (f.get(4).copied(), f.get(6).copied()) {
            (_, Some(e)) if e != "-" => Kind::Error,
            (Some(st), _) if st.starts_with(['4', '5']) => Kind::Status,
            _ => Kind::Ok,
        };
        s.counts[kind as usize] += 1;
        let p = Point {
            done_s: done,
            latency_ms: (done - intended) * 1000.0,
            kind,
        };
        seen += 1;
        if s.points.len() < KEEP {
            s.points.push(p);
        } else {
            // xorshift; keep the new point with probability KEEP / seen.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let j = rng % seen;
            if (j as usize) < KEEP {
                s.points[j as usize] = p;
            }
        }
    }
    Ok(s)
}

impl Scatter {
    /// Lines read in all.
    pub fn lines(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Points drawn.
    pub fn drawn(&self) -> usize {
        self.points.len()
    }

    /// The page: counts, and the plot (latency on a log axis: a tail spans decades).
    pub fn html(&self, title: &str) -> String {
        let (w, h, left, bottom) = (960.0, 480.0, 70.0, 40.0);
        let x1 = self
            .points
            .iter()
            .map(|p| p.done_s)
            .fold(0.0, f64::max)
            .max(1e-3);
        let lat = |p: &Point| p.latency_ms.max(0.001);
        let ylo = self
            .points
            .iter()
            .map(lat)
            .fold(f64::MAX, f64::min)
            .min(1e9);
        let yhi = self
            .points
            .iter()
            .map(lat)
            .fold(0.0, f64::max)
            .max(ylo * 10.0);
        let (d0, d1) = (ylo.log10().floor(), yhi.log10().ceil());
        let x = |s: f64| left + s / x1 * (w - left - 10.0);
        let y =
            |ms: f64| h - bottom - (ms.max(0.001).log10() - d0) / (d1 - d0) * (h - bottom - 20.0);
        let mut svg = format!(
            "<svg width=\"{w}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"11\">"
        );
        let mut d = d0;
        while d <= d1 {
            let ms = 10f64.powf(d);
            let label = if ms >= 1000.0 {
                format!("{}s", ms / 1000.0)
            } else {
                format!("{ms}ms")
            };
            let _ = write!(
                svg,
                "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
                w - 10.0,
                left - 4.0,
                y(ms) + 4.0,
                yy = y(ms)
            );
            d += 1.0;
        }
        for i in 0..=5 {
            let s = x1 * i as f64 / 5.0;
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{s:.1}s</text>",
                x(s),
                h - bottom + 16.0
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">when it ended (s from the start)</text><text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">latency from its due time</text>",
            (w + left) / 2.0,
            h - 6.0,
            h / 2.0,
            h / 2.0
        );
        // Ok first, errors last: the rare kinds on top.
        for kind in [Kind::Ok, Kind::Status, Kind::Error] {
            let colour = match kind {
                Kind::Ok => "#1f5fa8",
                Kind::Status => "#e08000",
                Kind::Error => "#c00000",
            };
            let _ = write!(svg, "<g fill=\"{colour}\" fill-opacity=\"0.5\">");
            for p in self.points.iter().filter(|p| p.kind == kind) {
                let _ = write!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.6\"/>",
                    x(p.done_s),
                    y(p.latency_ms)
                );
            }
            svg.push_str("</g>");
        }
        svg.push_str("</svg>");
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ratebench requests: {t}</title></head>\
             <body style=\"font-family: system-ui, sans-serif; margin: 2em\"><h1>ratebench requests log</h1><p>{t}</p>\
             <p>{} requests: {} answered 1xx–3xx (blue), {} answered 4xx/5xx (orange), {} failed (red); {} drawn{}.</p>{svg}</body></html>\n",
            self.lines(),
            self.counts[0],
            self.counts[1],
            self.counts[2],
            self.drawn(),
            if (self.drawn() as u64) < self.lines() { ", a uniform sample" } else { "" },
            t = esc(title),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_is_sampled_uniformly_in_constant_memory() {
        // 100,000 requests, the second half 10× slower: the sample keeps KEEP points, about
        // half from each half (uniform), and counts every line.
        let mut log = format!("{MAGIC}\nintended_s\tsent_s\tfirst_byte_s\tdone_s\tstatus\tbytes\terror\ttag\tconnection\n");
        for k in 0..100_000u64 {
            let t = k as f64 / 1000.0;
            let lat = if k < 50_000 { 0.001 } else { 0.010 };
            let (status, err) = if k % 1000 == 0 {
                ("-", "timeout")
            } else {
                ("200", "-")
            };
            log.push_str(&format!(
                "{t}\t{t}\t{t}\t{}\t{status}\t10\t{err}\tGET /\t0.0\n",
                t + lat
            ));
        }
        let s = read(log.as_bytes(), "t").unwrap();
        assert_eq!((s.lines(), s.drawn()), (100_000, KEEP));
        assert_eq!(s.counts, [99_900, 0, 100]);
        let slow = s.points.iter().filter(|p| p.latency_ms > 5.0).count() as f64;
        // Binomial(20,000, ½): sd 71; 5 sd either side.
        assert!((slow - 10_000.0).abs() < 355.0, "{slow}");
        assert!(s.html("t").contains("a uniform sample"));
        assert!(read("0.1\tx\n".as_bytes(), "bad.tsv")
            .unwrap_err()
            .contains("bad.tsv:1"));
    }
}
