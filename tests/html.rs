//! The HTML report in a real browser: headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) loads the report of a run with a stall and of a streaming run, with no
//! console errors, and the page's plots hold the run's data points — read back from the DOM
//! Chromium built (`--dump-dom`), compared with the run's own JSON summary.

mod common;
use common::*;
use ratebench::serve::{LlmConfig, Stall};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("headless Chromium (Debian package `chromium`, installed by .ci/run) is needed")
}

/// Chromium's flags for a closed, sandboxed machine: no network of its own, a fresh profile.
fn headless(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// The DOM of `page` after Chromium loaded it, and what Chromium logged on stderr.
fn load_in_chromium(page: &Path, dir: &Path) -> (String, String) {
    let child = std::process::Command::new(chromium())
        .args(headless(&dir.join("profile")))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let out = wait_limited(child, Duration::from_secs(60));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `<svg data-chart="{chart}" …>…</svg>` element of `dom`.
fn chart<'a>(dom: &'a str, chart: &str) -> &'a str {
    let start = dom
        .find(&format!("data-chart=\"{chart}\""))
        .unwrap_or_else(|| panic!("no chart {chart}"));
    let end = start + dom[start..].find("</svg>").expect("closed svg");
    &dom[start..end]
}

/// How many points the series `name` of a chart plots (its `data-points`), and how many
/// line pieces and dots draw them.
fn series(chart: &str, name: &str) -> (u64, usize) {
    let at = chart
        .find(&format!("data-series=\"{name}\""))
        .unwrap_or_else(|| panic!("no series {name}"));
    let rest = &chart[at..];
    let points: u64 = rest
        .split("data-points=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("data-points");
    let group = &rest[..rest.find("</g>").expect("closed group")];
    let pieces = group.matches("<polyline").count() + group.matches("<circle").count();
    (points, pieces)
}

/// No console message in what Chromium logged.
fn assert_quiet_console(stderr: &str) {
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_stall_report_plots_every_second_with_data_and_gaps_where_there_is_none() {
    // 500/s for 5 s; the server freezes every response from 1 s to 3.5 s after it starts.
    // Second 2 of the run lies wholly inside the freeze: nothing completes in it, so its
    // latency is a gap in the line, not 0 ms; the seconds around it have points.
    let server = serve(|c| {
        c.stall = Some(Stall {
            length: Duration::from_millis(2500),
            at: Duration::from_secs(1),
            every: None,
            chance_ppm: 1_000_000,
        })
    });
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("html-stall");
    let (page, summary) = (dir.join("r.html"), dir.join("s.json"));
    let out = load(&url)
        .rate("500")
        .duration("5s")
        .connections(20)
        .flag("--html", page.to_str().unwrap())
        .flag("--json", summary.to_str().unwrap())
        .run_bin(Duration::from_secs(40));
    assert_eq!(out.status.code(), Some(0));
    let j = json(&summary);
    let rows = j["series"].as_array().unwrap();
    let with_latency = rows
        .iter()
        .filter(|r| r["completed"].as_u64().unwrap() + r["errors"]["timeout"].as_u64().unwrap() > 0)
        .count() as u64;
    assert!(
        with_latency < rows.len() as u64,
        "a second without completions: {rows:?}"
    );

    let (dom, log) = load_in_chromium(&page, &dir);
    assert_quiet_console(&log);
    let latency = chart(&dom, "latency");
    assert!(
        latency.contains("data-scale=\"log\""),
        "latency on a log axis"
    );
    for name in ["p50", "p99", "p99.9", "max"] {
        let (points, pieces) = series(latency, name);
        assert_eq!(
            points, with_latency,
            "{name}: one point per second with data"
        );
        assert!(
            pieces >= 2,
            "{name}: the empty second splits the line ({pieces} pieces)"
        );
    }
    // Requests per second: a point for every second, for each of the three series.
    let throughput = chart(&dom, "throughput");
    for name in ["intended", "achieved (sent)", "completed"] {
        assert_eq!(series(throughput, name).0, rows.len() as u64, "{name}");
    }
    // The spectrum has both distributions, on a log axis.
    let spectrum = chart(&dom, "spectrum");
    assert!(spectrum.contains("data-scale=\"log\""));
    assert!(series(spectrum, "corrected").0 > 10 && series(spectrum, "uncorrected").0 > 10);
    // The text report is in the page, whole.
    assert!(
        dom.contains("Accounting: scheduled 2500 = completed 2500"),
        "text report"
    );
}

#[test]
fn a_streaming_report_plots_tokens_and_ttft_on_charts_of_their_own() {
    let server = serve(|c| {
        c.llm = LlmConfig {
            ttft: (Duration::from_millis(30), Duration::from_millis(30)),
            token_interval: (Duration::from_millis(5), Duration::from_millis(5)),
            tokens: (10, 10),
            tokenizer: Default::default(),
            prefill_rate: None,
            ..Default::default()
        }
    });
    let url = format!("http://{}/v1/chat/completions", server.addr);
    let dir = tmpdir("html-stream");
    let (page, summary) = (dir.join("r.html"), dir.join("s.json"));
    let out = load(&url)
        .rate("40")
        .duration("3s")
        .connections(10)
        .flag("-m", "POST")
        .flag(
            "--body",
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .flag("--html", page.to_str().unwrap())
        .flag("--json", summary.to_str().unwrap())
        .run_bin(Duration::from_secs(40));
    assert_eq!(out.status.code(), Some(0));
    let j = json(&summary);
    let rows = j["series"].as_array().unwrap();
    let with_ttft = rows
        .iter()
        .filter(|r| r["ttft_p99_ms"].as_f64().unwrap() > 0.0)
        .count() as u64;
    assert!(with_ttft >= 3, "{rows:?}");

    let (dom, log) = load_in_chromium(&page, &dir);
    assert_quiet_console(&log);
    // Tokens per second and TTFT each have a chart and a unit of their own.
    assert_eq!(
        series(chart(&dom, "tokens"), "tokens/s").0,
        rows.len() as u64
    );
    let ttft = chart(&dom, "ttft");
    assert!(ttft.contains("data-scale=\"log\"") && ttft.contains("TTFT (ms"));
    assert_eq!(series(ttft, "TTFT p99").0, with_ttft);
    assert!(
        dom.contains("Streaming: 120 event streams, 1200 output tokens"),
        "text report"
    );
}
