//! Reports people keep: every output parsed back and checked against the run's own
//! numbers, by an independent reader where one exists.

mod common;
use common::*;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use ratebench::record::histogram::{new_hist, percentile, Hist};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A small JSON Schema checker (type, const, required, properties, items, min/max,
/// additionalProperties) — enough for the checked-in schema, which uses nothing else.
fn check_schema(schema: &Value, v: &Value, at: &str) {
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            other => panic!("schema uses unsupported type {other}"),
        };
        assert!(ok, "{at}: expected {t}, got {v}");
    }
    if let Some(c) = schema.get("const") {
        assert_eq!(v, c, "{at}");
    }
    if let (Some(min), Some(x)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        assert!(x >= min, "{at}: {x} < {min}");
    }
    if let (Some(max), Some(x)) = (schema.get("maximum").and_then(Value::as_f64), v.as_f64()) {
        assert!(x <= max, "{at}: {x} > {max}");
    }
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for k in req {
            assert!(v.get(k.as_str().unwrap()).is_some(), "{at}: missing {k}");
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, s) in props {
            if let Some(x) = v.get(k) {
                check_schema(s, x, &format!("{at}.{k}"));
            }
        }
        // Every field the tool writes is documented in the schema.
        for k in v.as_object().unwrap().keys() {
            assert!(props.contains_key(k), "{at}.{k} is not in the schema");
        }
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|s| s.is_object()) {
        for (k, x) in v.as_object().unwrap() {
            check_schema(extra, x, &format!("{at}.{k}"));
        }
    }
    if let Some(items) = schema.get("items") {
        for (i, x) in v.as_array().unwrap().iter().enumerate() {
            check_schema(items, x, &format!("{at}[{i}]"));
        }
    }
}

/// Decodes the corrected (or uncorrected) histograms of a log with the hdrhistogram
/// crate's own log reader, and merges them.
fn hlog_total(path: &Path, tag: &str) -> (Hist, usize) {
    let bytes = std::fs::read(path).unwrap();
    let mut total = new_hist();
    let mut lines = 0;
    for entry in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(h) = entry.expect("a well-formed interval log") {
            if h.tag().map(|t| t.as_str()) == Some(tag) {
                let raw = base64_decode(h.encoded_histogram());
                let decoded: Hist = Deserializer::new()
                    .deserialize(&mut std::io::Cursor::new(raw))
                    .unwrap();
                total.add(&decoded).unwrap();
                lines += 1;
            }
        }
    }
    (total, lines)
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn every_output_agrees_with_the_run() {
    // A stall makes the distribution interesting: 300 ms frozen 1 s after the server starts.
    let server = serve(|c| {
        c.stall = Some(ratebench::cli::Stall {
            length: Duration::from_millis(300),
            at: Duration::from_millis(1000),
            every: None,
        })
    });
    let dir = tmpdir("outputs");
    let f = |n: &str| dir.join(n).display().to_string();
    let url = format!("http://{}/", server.addr);
    let out = run_bin(
        &[
            "-R500",
            "-d3s",
            "-c10",
            "-t2",
            "-H",
            "Authorization: Bearer s3cret",
            "-H",
            "X-Trace: visible",
            "--csv",
            &f("p.csv"),
            "--csv-timeseries",
            &f("ts.csv"),
            "--json",
            &f("s.json"),
            "--hdr-log",
            &f("run.hlog"),
            "--html",
            &f("r.html"),
            &url,
        ],
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // JSON: valid against the checked-in schema, and the accounting adds up.
    let j = json(&dir.join("s.json"));
    let schema: Value =
        serde_json::from_str(include_str!("../schema/summary.schema.json")).unwrap();
    check_schema(&schema, &j, "$");
    let a = &j["accounting"];
    let n = |v: &Value| v.as_u64().unwrap();
    assert_eq!(n(&a["scheduled"]), 1500);
    assert_eq!(
        n(&a["scheduled"]),
        n(&a["completed"]) + n(&a["errors"]) + n(&a["unfinished"])
    );
    // Secrets never reach the file; other headers do.
    let written = std::fs::read_to_string(dir.join("s.json")).unwrap();
    assert!(
        !written.contains("s3cret")
            && written.contains("<redacted>")
            && written.contains("visible")
    );

    // JSON percentiles are the text report's (which prints them in wrk's units).
    let p99_ms = j["latency_ms"]["corrected"]["p99"].as_f64().unwrap();
    let text_p99 = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("99.000%"))
        .unwrap();
    assert_eq!(
        text_p99.split_whitespace().nth(1).unwrap(),
        ratebench::report::fmt_us(p99_ms * 1000.0)
    );

    // CSV time series: its rows add up to the run's totals.
    let (header, rows) = csv_rows(&dir.join("ts.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let sum = |name: &str| {
        rows.iter()
            .map(|r| r[col(name)].parse::<u64>().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("completed"), n(&a["completed"]));
    assert_eq!(sum("intended_per_s"), n(&a["scheduled"]));
    assert_eq!(sum("achieved_per_s"), n(&a["sent"]));
    assert_eq!(rows.len(), j["series"].as_array().unwrap().len());
    // CSV percentile table: the same p99 as the JSON.
    let (_, prows) = csv_rows(&dir.join("p.csv"));
    let p99_row = prows.iter().find(|r| r[0] == "99").unwrap();
    assert_eq!(p99_row[1].parse::<f64>().unwrap(), p99_ms);

    // The interval log, read by the hdrhistogram crate's own reader: same count and p99.
    let (corrected, lines) = hlog_total(&dir.join("run.hlog"), "corrected");
    assert_eq!(lines, rows.len(), "one corrected line per second");
    assert_eq!(corrected.len(), n(&j["latency_ms"]["corrected"]["count"]));
    assert_eq!(percentile(&corrected, 99.0) as f64 / 1000.0, p99_ms);
    let (uncorrected, _) = hlog_total(&dir.join("run.hlog"), "uncorrected");
    assert_eq!(
        percentile(&uncorrected, 99.0) as f64 / 1000.0,
        j["latency_ms"]["uncorrected"]["p99"].as_f64().unwrap()
    );

    // HTML: self-contained, with the four plots and the numbers.
    let html = std::fs::read_to_string(dir.join("r.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    for gone in ["<script", "src=", "href=", "<link"] {
        assert!(!html.contains(gone), "HTML must not load anything ({gone})");
    }
    assert!(html.contains(&ratebench::report::fmt_us(p99_ms * 1000.0)));
    assert!(html.contains("scheduled 1500 = completed"));
    assert!(html.contains("<polyline"));
}

#[test]
fn merging_two_logs_equals_both_runs() {
    let server = serve(|c| c.delay = Duration::from_micros(200));
    let dir = tmpdir("merge");
    let url = format!("http://{}/", server.addr);
    let mut docs = Vec::new();
    for (name, rate) in [("a", "300"), ("b", "200")] {
        let log = dir.join(format!("{name}.hlog")).display().to_string();
        let js = dir.join(format!("{name}.json")).display().to_string();
        let out = run_bin(
            &[
                "-R",
                rate,
                "-d2s",
                "-c4",
                "-t1",
                "--hdr-log",
                &log,
                "--json",
                &js,
                &url,
            ],
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(0));
        docs.push(json(Path::new(&js)));
    }
    let merged = dir.join("merged.json").display().to_string();
    let a = dir.join("a.hlog").display().to_string();
    let b = dir.join("b.hlog").display().to_string();
    let out = run_bin(
        &["report", &a, &b, "--json", &merged],
        Duration::from_secs(30),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = json(Path::new(&merged));
    let n = |v: &Value| v.as_u64().unwrap();
    // Counts add: 600 + 400 scheduled.
    assert_eq!(n(&m["accounting"]["scheduled"]), 1000);
    for k in ["scheduled", "completed", "sent", "errors", "unfinished"] {
        assert_eq!(
            n(&m["accounting"][k]),
            n(&docs[0]["accounting"][k]) + n(&docs[1]["accounting"][k]),
            "{k}"
        );
    }
    assert_eq!(m["config"]["rate_per_s"].as_f64().unwrap(), 500.0);
    // The merged distribution is exactly the histogram of both runs' requests.
    let (ha, _) = hlog_total(Path::new(&a), "corrected");
    let (hb, _) = hlog_total(Path::new(&b), "corrected");
    let mut both = ha.clone();
    both.add(&hb).unwrap();
    let c = &m["latency_ms"]["corrected"];
    assert_eq!(n(&c["count"]), both.len());
    for (key, q) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9)] {
        assert_eq!(
            c[key].as_f64().unwrap(),
            percentile(&both, q) as f64 / 1000.0,
            "{key}"
        );
    }
    assert_eq!(c["max"].as_f64().unwrap(), both.max() as f64 / 1000.0);
    // Second by second: each merged second holds both runs' requests of that second.
    let series = m["series"].as_array().unwrap();
    let total: u64 = series.iter().map(|s| n(&s["completed"])).sum();
    assert_eq!(total, n(&m["accounting"]["completed"]));
}

#[test]
fn thresholds_pass_and_fail_with_exit_99() {
    let server = serve(|c| c.delay = Duration::from_millis(2));
    let url = format!("http://{}/", server.addr);
    // A 2 ms service at 200/s on 4 connections: every latency is ≥ 2 ms and well under 1 s;
    // nothing fails; 200 are sent per second.
    let cases: &[(&str, bool)] = &[
        ("p99<1s", true),
        ("p99<1ms", false),
        ("p99.9<1s", true),
        ("p50>=2ms", true),
        ("max<2s", true),
        ("max<1ms", false),
        ("mean<1s", true),
        ("mean<1ms", false),
        ("errors<1%", true),
        ("errors<=0", true),
        ("errors>0", false),
        ("rate>190", true),
        ("rate>250", false),
    ];
    let mut args: Vec<String> = ["-R200", "-d1s", "-c4", "-t1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (t, _) in cases {
        args.push("--threshold".into());
        args.push((*t).into());
    }
    args.push(url.clone());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_bin(&argv, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(99), "{stdout}");
    for (t, pass) in cases {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("Threshold {t}:")))
            .expect(t);
        assert_eq!(line.contains(": pass"), *pass, "{line}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5 of 13 thresholds failed"), "{stderr}");

    // All passing: exit 0.
    let out = run_bin(
        &[
            "-R200",
            "-d1s",
            "-c4",
            "-t1",
            "--threshold",
            "p99<1s",
            "--threshold",
            "errors<1%",
            &url,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0));

    // Errors count against errors<1%: a server answering garbage fails every request.
    let garbage = raw_server(Behaviour::Garbage);
    let gurl = format!("http://{}/", garbage.addr);
    let out = run_bin(
        &[
            "-R100",
            "-d1s",
            "-c2",
            "-t1",
            "--threshold",
            "errors<1%",
            &gurl,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(99));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("Threshold errors<1%: FAIL (actual 100.000 %)"));
}

#[test]
fn bad_thresholds_and_unwritable_paths_fail_before_traffic() {
    let target = counting_listener();
    let url = format!("http://{}/", target.addr);
    for (args, flag) in [
        (vec!["-R10", "--threshold", "p99<", &url], "--threshold"),
        (
            vec!["-R10", "--threshold", "latency<1s", &url],
            "--threshold",
        ),
        (
            vec!["-R10", "--json", "/nonexistent-dir/x.json", &url],
            "--json",
        ),
        (
            vec!["-R10", "--hdr-log", "/nonexistent-dir/x.hlog", &url],
            "--hdr-log",
        ),
    ] {
        let out = run_bin(&args, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{stderr}");
    }
    assert_eq!(target.accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn a_failed_write_keeps_the_text_report() {
    // /dev/full accepts the open and fails every write (ENOSPC), like a full disk.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let out = run_bin(
        &["-R50", "-d1s", "-c2", "-t1", "--csv", "/dev/full", &url],
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("Accounting: scheduled 50 = completed 50"),
        "{stdout}"
    );
    assert!(
        stderr.contains("/dev/full") && stderr.contains("No space left"),
        "{stderr}"
    );
}

#[test]
fn json_to_stdout_keeps_stdout_pure() {
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let out = run_bin(
        &["-R50", "-d1s", "-c2", "-t1", "--json", "-", &url],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0));
    let j: Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly the JSON document");
    assert_eq!(j["accounting"]["scheduled"], 50);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Accounting: scheduled 50"));
}
