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

/// The checked-in schema, made strict for the tests: every object schema that lists its
/// properties and says nothing about others gets `additionalProperties: false`, so a field
/// the tool writes but the schema does not document fails. (The file itself stays open to
/// additions, as its readers need: fields are only ever added.)
fn strict_schema() -> Value {
    fn tighten(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.contains_key("properties") && !m.contains_key("additionalProperties") {
                    m.insert("additionalProperties".into(), Value::Bool(false));
                }
                m.values_mut().for_each(tighten);
            }
            Value::Array(a) => a.iter_mut().for_each(tighten),
            _ => {}
        }
    }
    let mut s = json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/summary.schema.json"));
    tighten(&mut s);
    s
}

/// Every violation of the (strict) schema in `doc`, one line each.
fn schema_violations(doc: &Value) -> Vec<String> {
    let schema = strict_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn check_schema(doc: &Value) {
    let v = schema_violations(doc);
    assert!(
        v.is_empty(),
        "the summary breaks its schema:\n{}",
        v.join("\n")
    );
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
        c.stall = Some(ratebench::serve::Stall {
            length: Duration::from_millis(300),
            at: Duration::from_millis(1000),
            every: None,
            chance_ppm: 1_000_000,
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
    check_schema(&j);
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
        // No response was an event stream: a gate on TTFT or ITL fails (it used to pass
        // with "actual 0.000 ms"), so a CI gate cannot go green when streaming breaks.
        ("ttft_p99<2s", false),
        ("itl_p99<1s", false),
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
    assert!(stderr.contains("7 of 15 thresholds failed"), "{stderr}");
    assert!(
        stdout.contains("Threshold ttft_p99<2s: FAIL (actual 0.000 (no event streams to measure))"),
        "{stdout}"
    );

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

#[test]
fn the_schema_check_catches_what_it_should() {
    // A real summary passes; the same summary with a required field removed, a field the
    // schema does not document, or a count of the wrong type does not — so the check above
    // cannot pass on a broken document.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let (_, doc) = load(&url)
        .rate("50")
        .duration("1s")
        .connections(2)
        .run_json();
    check_schema(&doc);
    let mut missing = doc.clone();
    missing["accounting"]
        .as_object_mut()
        .unwrap()
        .remove("unfinished");
    let mut extra = doc.clone();
    extra["rates"]["undocumented_per_s"] = Value::from(1.0);
    let mut wrong = doc.clone();
    wrong["accounting"]["scheduled"] = Value::from("fifty");
    for (what, bad) in [
        ("missing", missing),
        ("extra", extra),
        ("wrong type", wrong),
    ] {
        assert!(!schema_violations(&bad).is_empty(), "{what} was not caught");
    }
}

/// A fixed run, built by hand: 2 s at 100/s on one thread, 4 connections. Each second's
/// 100 requests take 1.0, 1.1, …, 1.9 ms (ten of each), sent 20 µs after they were due;
/// second 1 also has one 503 and one timeout at 2 s.
fn fixed_run() -> ratebench::run::RunResult {
    use ratebench::outcome::{ErrorClass, Outcome};
    use ratebench::pacer::Rate;
    use ratebench::run::{RunMeta, RunResult};
    use std::time::{Instant, UNIX_EPOCH};
    let mut r = RunResult::empty(RunMeta {
        url: "http://127.0.0.1:8080/".into(),
        method: "GET".into(),
        rate: Rate::per_second(100),
        connections: 4,
        threads: 1,
        duration: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        grace: Duration::from_secs(2),
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
    let t0 = Instant::now();
    let mut rec = ratebench::record::Recorder::new();
    rec.start = Some(t0);
    for second in 0..2u64 {
        for i in 0..100u64 {
            let intended = t0 + Duration::from_millis(second * 1000 + i * 10);
            let sent = intended + Duration::from_micros(20);
            rec.scheduled(Duration::from_micros(20));
            rec.sent();
            let (result, done) = match (second, i) {
                (1, 98) => (Ok(503), sent + Duration::from_millis(1)),
                (1, 99) => (Err(ErrorClass::Timeout), sent + Duration::from_secs(2)),
                _ => (
                    Ok(200),
                    intended + Duration::from_micros(1000 + (i % 10) * 100),
                ),
            };
            if result.is_ok() {
                // Read 5–50 µs after the kernel's stamp.
                rec.read(Duration::from_micros(5 + (i % 10) * 5));
            }
            rec.record(&Outcome {
                intended,
                sent: Some(sent),
                conn_was_free: true,
                done,
                result,
                bytes: 100,
                first_byte: None,
                stream: None,
                meta: Default::default(),
                cause: result
                    .is_err()
                    .then_some(ratebench::outcome::Cause::Reason("no answer in time")),
            });
        }
        let iv = rec.take_interval(second as u32 + 1);
        r.intervals.push(iv.stats());
    }
    rec.connects = 4;
    r.recorder = rec;
    r.started_at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    r.load_duration = Duration::from_secs(2);
    r.elapsed = Duration::from_secs(4);
    r.open = 4;
    r.sent_in_window = 200;
    // Completions from 1.02 ms to 1.9919 s (the timeout is not a completion), all in the
    // window.
    r.completed_in_window = 199;
    r.completion_span = Duration::from_micros(1_991_900 - 1_020);
    r.busy = vec![0.05];
    r.waits = (200, 0);
    r
}

#[test]
fn text_report_layout_matches_the_golden_file() {
    // The whole text report of a fixed run, byte for byte, against a file a human read
    // (tests/golden/report.txt). To change the layout on purpose, run with
    // RATEBENCH_BLESS=1, read the new file, and commit it with the change.
    let r = fixed_run();
    let s = ratebench::report::Summary::of(&r);
    let text = format!(
        "{}{}",
        ratebench::report::text::header(&r.meta),
        ratebench::report::text::render(&r, &s, &[], Default::default())
    );
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.txt");
    if std::env::var_os("RATEBENCH_BLESS").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("tests/golden/report.txt");
    assert_eq!(text, want, "the text report's layout changed");
}

#[test]
fn report_reads_a_log_written_by_another_implementation() {
    // tests/data/hdrhistogram_py.hlog was written by HdrHistogram_py
    // (tests/data/make_hdrhistogram_py_log.py): untagged histograms in nanoseconds,
    // absolute time stamps from 1800000000 s with BaseTime 0. Three one-second intervals of
    // 1000 values each at 1, 2 and 3 ms: 3000 requests over 3 s, p50 2 ms, max 3 ms. Read
    // as a 1800000003 s run or as microseconds, it would be off by nine or three orders.
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hdrhistogram_py.hlog");
    let dir = tmpdir("foreign-log");
    let json_path = dir.join("r.json");
    let out = run_bin(
        &[
            "report",
            log.to_str().unwrap(),
            "--json",
            json_path.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3000 latencies in 3s"), "{stdout}");
    assert!(
        stdout.contains("written by another HdrHistogram tool"),
        "{stdout}"
    );
    // It says what the log knows and nothing it does not: no plan, so no target rate,
    // nothing "scheduled", no bytes, statuses or connections; the file named once.
    for invented in [
        "Target rate",
        "Accounting",
        "read\n",
        "Status codes",
        "Connections:",
    ] {
        assert!(!stdout.contains(invented), "{invented:?} in {stdout}");
    }
    assert_eq!(
        stdout.matches("hdrhistogram_py.hlog").count(),
        1,
        "{stdout}"
    );
    let j = json(&json_path);
    check_schema(&j);
    let lat = &j["latency_ms"]["corrected"];
    // HDR keeps 3 significant digits: each value is within 0.1 % of what was recorded.
    let near = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() <= want * 0.001;
    assert!(near(&lat["p50"], 2.0) && near(&lat["max"], 3.0), "{lat}");
    assert_eq!(lat["count"], 3000);
    assert_eq!(j["series"].as_array().unwrap().len(), 3);
}

#[test]
fn damaged_logs_are_errors_not_panics() {
    // Each damaged log is a clear error (exit 1 naming the file and line) or a report of
    // what it holds — never a panic (exit 101). The one-second line below holds 1000 values.
    let dir = tmpdir("damaged-logs");
    let good = "Tag=corrected,0.000,1.000,1.000,HISTFAAAACZ4nJNpmSzMwMDAygABzFCaEch0M9ixgMH+A0Tg4DrGC/wAbJ0Gnw==\n";
    // A real log whose totals say absurd things: a negative load, an elapsed time and a
    // start beyond any duration (once a panic converting them).
    let server = serve(|_| {});
    let real = dir.join("real.hlog");
    let out = load(&format!("http://{}/", server.addr))
        .rate("10")
        .duration("1s")
        .connections(1)
        .flag("--hdr-log", real.to_str().unwrap())
        .run_bin(Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&real).unwrap();
    let set = |text: &str, key: &str, value: &str| {
        let at = text.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
        let end = at + text[at..].find([',', '}']).unwrap();
        format!("{}{value}{}", &text[..at], &text[end..])
    };
    let absurd = set(
        &set(
            &set(&text, "load_duration_s", "-1e308"),
            "elapsed_s",
            "1e308",
        ),
        "started_at_unix_s",
        "1e308",
    );
    let cases: [(&str, String, Option<i32>, &str); 6] = [
        (
            "garbage",
            "this is not a log\n".into(),
            Some(1),
            "no histograms",
        ),
        (
            "bad base64",
            "0.0,1.0,1.0,HIST!!!\n".into(),
            Some(1),
            ":1: histogram is not base64",
        ),
        (
            "huge stamp",
            good.replace("0.000,1.000", "1e300,1.000"),
            Some(1),
            ":1: not an interval-log line",
        ),
        (
            "far future",
            good.replace("0.000,1.000", "99999999999999.000,1.000"),
            Some(0),
            "1000 latencies in 1s",
        ),
        (
            "no newline",
            good.trim_end().to_string(),
            Some(0),
            "1000 latencies in 1s",
        ),
        ("absurd totals", absurd, Some(0), "10 requests in 1s"),
    ];
    for (name, text, code, says) in cases {
        let p = dir.join(format!("{}.hlog", name.replace(' ', "-")));
        std::fs::write(&p, text).unwrap();
        let out = run_bin(&["report", p.to_str().unwrap()], Duration::from_secs(20));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), code, "{name}: {all}");
        assert!(all.contains(says), "{name}: {all}");
    }
}

#[test]
fn a_run_that_never_started_leaves_no_empty_files() {
    // The target refuses: exit 1 before any traffic, and none of the report files asked for
    // exists afterwards (an empty JSON or CSV breaks whatever reads it next).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let dir = tmpdir("never-started");
    let f = |n: &str| dir.join(n).display().to_string();
    let out = run_bin(
        &[
            "-R10",
            "-d1s",
            "--json",
            &f("s.json"),
            "--csv",
            &f("p.csv"),
            "--csv-timeseries",
            &f("ts.csv"),
            "--html",
            &f("r.html"),
            "--hdr-log",
            &f("run.hlog"),
            &url,
        ],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1));
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn a_closed_stdout_still_writes_every_file() {
    // `ratebench … | head -1`: head exits after the first line, and every later write to
    // stdout fails. That is no reason to lose the run: no panic, and the files are written.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("closed-stdout");
    let json_path = dir.join("s.json");
    let csv_path = dir.join("p.csv");
    let cmd = format!(
        "{} -R50 -d1s -c2 -t1 -L --json {} --csv {} {url} | head -1; echo \"rb=${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_ratebench"),
        json_path.display(),
        csv_path.display()
    );
    let out = shell(&cmd, Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("rb=0"),
        "ratebench's own exit status: {stdout}{stderr}"
    );
    let j = json(&json_path);
    assert_eq!(j["accounting"]["scheduled"], 50);
    assert!(std::fs::read_to_string(&csv_path).unwrap().lines().count() > 5);
}

#[test]
fn an_interval_log_on_stdout_survives_being_mixed_with_the_report() {
    // `--hdr-log -` puts the log on stdout and the text report on stderr; `kubectl logs`
    // hands both back interleaved. `ratebench report` reads the log out of that mix.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("hlog-stdout");
    let mixed = dir.join("pod.log");
    let cmd = format!(
        "{} -R100 -d2s -c2 -t1 --hdr-log - {url} > {} 2>&1",
        env!("CARGO_BIN_EXE_ratebench"),
        mixed.display()
    );
    assert_eq!(shell(&cmd, Duration::from_secs(20)).status.code(), Some(0));
    let text = std::fs::read_to_string(&mixed).unwrap();
    assert!(text.contains("Running 2s test") && text.contains("Tag=corrected,"));
    let out = run_bin(
        &["report", mixed.to_str().unwrap()],
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Accounting: scheduled 200 = completed 200"),
        "{stdout}"
    );
}

#[test]
fn every_percentile_has_an_interval_or_says_why_not() {
    // 2 s at 1000/s: 2,000 requests. p50 … p99 get a 95 % interval that contains the
    // percentile; p99.9 and beyond need more requests (10 above the percentile) and say
    // how many, in the text and as null in the JSON. `ratebench report` of the run's
    // interval log gives intervals too (its seconds are the batches).
    let server = serve(|c| c.delay = Duration::from_micros(300));
    let dir = tmpdir("intervals");
    let log = dir.join("run.hlog").display().to_string();
    let url = format!("http://{}/", server.addr);
    let (r, doc) = load(&url)
        .rate("1000")
        .duration("2s")
        .connections(8)
        .run_json();
    let n = r.recorder.corrected.len();
    let text = ratebench::report::text::render(
        &r,
        &ratebench::report::Summary::of(&r),
        &[],
        Default::default(),
    );
    let c = &doc["latency_ms"]["corrected"];
    for (key, q) in ratebench::report::json::CI_PERCENTILES {
        let p = c[key].as_f64().unwrap();
        let ci = &c["ci95"][key];
        let need = ratebench::record::batches::needed(q);
        if n >= need {
            let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
            assert!(lo <= p && p <= hi, "{key}: {p} not in [{lo}, {hi}]");
        } else {
            assert!(ci.is_null(), "{key}: {ci}");
            assert!(
                text.contains(&format!("[n/a: needs ≥ {need} requests]")),
                "{text}"
            );
        }
    }
    assert!(
        c["ci95"]["p99"].is_array(),
        "2,000 requests are enough for p99"
    );
    // The HTML spectrum carries them as error bars: one per percentile with an interval.
    let with = ratebench::report::json::CI_PERCENTILES
        .iter()
        .filter(|(key, _)| c["ci95"][key].is_array())
        .count();
    let html = ratebench::report::html::render(&r, &ratebench::report::Summary::of(&r), &[]);
    assert!(
        html.contains(&format!(
            r#"class="ci" data-series="corrected" data-bars="{with}""#
        )),
        "{with} bars"
    );
    assert!(doc["latency_ms"]["uncorrected"]["ci95"]["p50"].is_array());
    let out = run_bin(
        &["-R1000", "-d2s", "-c8", "--hdr-log", &log, &url],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0));
    let out = run_bin(&["report", &log], Duration::from_secs(30));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(" 50.000%")
            && report
                .lines()
                .any(|l| l.contains(" 99.000%") && l.contains(", ")),
        "{report}"
    );
}

#[test]
fn a_server_that_slows_down_mid_run_shows_three_regimes_and_one_incident() {
    // `serve --delay 2ms --slow 10@4s+4s`: ten times slower from 4 s to 8 s of the server's
    // life (the run starts a fraction of a second after it). A 12 s run: regimes 0–4, 4–8,
    // 8–12 s, each boundary within 2 s of the truth, and one incident of 4 ± 2 s. (A busy
    // test machine can add a slow second of its own: two attempts, as the issue allows a
    // steady run to be misread once in ten.)
    let attempt = || -> Result<(), String> {
        let server = serve(|c| {
            c.delay = Duration::from_millis(2);
            c.slow = Some(ratebench::serve::Slow {
                factor: 10.0,
                at: Duration::from_secs(4),
                length: Duration::from_secs(4),
            });
        });
        let (r, doc) = load(&format!("http://{}/", server.addr))
            .rate("200")
            .duration("12s")
            .connections(20)
            .run_json();
        let s = ratebench::report::Summary::of(&r);
        let bounds: Vec<(u32, u32)> = s.regimes.iter().map(|g| (g.start_s, g.end_s)).collect();
        if bounds.len() != 3 {
            return Err(format!("regimes {bounds:?}"));
        }
        for (got, want) in [(bounds[0].1, 4), (bounds[1].1, 8)] {
            if got.abs_diff(want) > 2 {
                return Err(format!("boundary {got}, truth {want}: {bounds:?}"));
            }
        }
        if s.regimes[1].p99_ms <= 5.0 * s.regimes[0].p99_ms {
            return Err(format!("{:?}", s.regimes));
        }
        if s.incidents.len() != 1 || s.incidents[0].duration_s().abs_diff(4) > 2 {
            return Err(format!("incidents {:?}", s.incidents));
        }
        assert_eq!(doc["regimes"].as_array().unwrap().len(), 3);
        // Slow seconds make runs of slow requests: consecutive latencies depend on each
        // other, and the Dependence line says how much.
        let rho = doc["dependence"]["lag1_rho"].as_f64().unwrap();
        assert!(rho > 0.3, "lag-1 ρ {rho}");
        assert_eq!(
            doc["incidents"][0]["duration_s"],
            s.incidents[0].duration_s()
        );
        let text = ratebench::report::text::render(&r, &s, &[], Default::default());
        assert!(
            text.contains("Regimes: 0–") && text.contains("latency rose at"),
            "{text}"
        );
        assert!(text.contains("Incidents: 1 — "), "{text}");
        assert!(
            text.contains("the run was not one regime (3 of them"),
            "{text}"
        );
        // The HTML shades every other regime: the middle one of three.
        let html = ratebench::report::html::render(&r, &s, &[]);
        assert!(html.contains(r#"class="regimes" data-bands="1""#));
        Ok(())
    };
    if let Err(first) = attempt() {
        eprintln!("first attempt: {first}");
        attempt().unwrap();
    }
}

#[test]
fn until_precise_stops_when_the_interval_is_tight_and_says_so() {
    // p99 within ±20 % at 1000/s of a 1 ms server: the load runs past -d 3s, stops once the
    // running estimate (one-second batches, from 10 s on, with a margin) meets it — well
    // before --max-duration — and what the report claims is what its interval shows.
    let server = serve(|c| c.delay = Duration::from_millis(1));
    let url = format!("http://{}/", server.addr);
    let t0 = std::time::Instant::now();
    let (r, doc) = load(&url)
        .rate("1000")
        .duration("3s")
        .connections(20)
        .flag("--until", "p99:±20%")
        .flag("--max-duration", "60s")
        .run_json();
    let p = r.precision.as_ref().expect("--until reports its precision");
    assert!(p.stopped, "stopped early");
    assert!((10.0..60.0).contains(&p.after_s), "after {} s", p.after_s);
    assert!(t0.elapsed() < Duration::from_secs(70));
    let c = &doc["latency_ms"]["corrected"];
    let (p99, lo, hi) = (
        c["p99"].as_f64().unwrap(),
        c["ci95"]["p99"][0].as_f64().unwrap(),
        c["ci95"]["p99"][1].as_f64().unwrap(),
    );
    let half = (hi - lo) / 2.0 / p99 * 100.0;
    // The claim is the printed interval's: reached exactly when it is within the bound
    // (and the margin makes that the usual case).
    assert_eq!(
        doc["precision"]["reached"],
        half <= 20.0,
        "±{half:.2}%: {}",
        doc["precision"]
    );
    assert!(half <= 30.0, "±{half:.2}% at p99 {p99} [{lo}, {hi}]");
    let said = doc["precision"]["goals"][0]["achieved_pct"]
        .as_f64()
        .unwrap();
    assert!((said - half).abs() < 0.01, "{said} vs {half}");
    assert_eq!(r.recorder.total.scheduled, r.recorder.total.completed);
    assert!(
        !r.interrupted,
        "a stop for precision is not an interruption"
    );
    let text = ratebench::report::text::render(
        &r,
        &ratebench::report::Summary::of(&r),
        &[],
        Default::default(),
    );
    assert!(
        text.contains("Precision: p99 ±") && text.contains("reached after"),
        "{text}"
    );
}

#[test]
fn until_not_reached_runs_to_max_duration_and_warns() {
    let server = serve(|c| c.delay = Duration::from_millis(1));
    let url = format!("http://{}/", server.addr);
    let (r, doc) = load(&url)
        .rate("200")
        .duration("1s")
        .connections(10)
        .flag("--until", "p99.9:±0.5%")
        .flag("--max-duration", "3s")
        .run_json();
    assert_eq!(
        r.recorder.total.scheduled, 600,
        "ran the whole --max-duration"
    );
    assert_eq!(doc["precision"]["reached"], false);
    assert_eq!(doc["precision"]["stopped"], false);
    assert!(doc["precision"]["goals"][0]["achieved_pct"].is_null());
    let warned = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().starts_with("--until not reached"));
    assert!(warned, "{}", doc["warnings"]);
    // Bad goals and a lone --max-duration are usage errors before any traffic.
    for (args, flag) in [
        (vec!["-R10", "--until", "p99:2", url.as_str()], "--until"),
        (
            vec!["-R10", "--until", "itl_p99:±2%", url.as_str()],
            "--until",
        ),
        (
            vec!["-R10", "--max-duration", "1m", url.as_str()],
            "--max-duration",
        ),
    ] {
        let out = run_bin(&args, Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(flag), "{err}");
    }
}

#[test]
fn stream_metrics_have_intervals_too() {
    // TTFT, inter-token latency and time per output token carry 95 % intervals in the
    // JSON (and a "95 %:" line under each in the text), from the run's time slots.
    let server = serve(|c| {
        c.llm.ttft = (Duration::from_millis(5), Duration::from_millis(15));
        c.llm.token_interval = (Duration::from_millis(1), Duration::from_millis(2));
        c.llm.tokens = (20, 20);
    });
    let dir = tmpdir("stream-intervals");
    let prompts = dir.join("p.jsonl");
    std::fs::write(&prompts, "{\"prompt\": \"hello\"}\n").unwrap();
    let (r, doc) = load(&format!("http://{}/v1/chat/completions", server.addr))
        .rate("40")
        .duration("2s")
        .connections(40)
        .flag("--prompts", prompts.to_str().unwrap())
        .flag("--model", "m")
        .run_json();
    let st = &doc["streaming"];
    for (metric, key) in [("ttft_ms", "p50"), ("itl_ms", "p99"), ("tpot_ms", "p50")] {
        let p = st[metric][key].as_f64().unwrap();
        let ci = &st[metric]["ci95"][key];
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        assert!(
            lo <= p && p <= hi,
            "{metric} {key}: {p} not in [{lo}, {hi}]"
        );
    }
    let text = ratebench::report::text::render(
        &r,
        &ratebench::report::Summary::of(&r),
        &[],
        Default::default(),
    );
    assert_eq!(text.matches(" 95 %: p50 [").count(), 3, "{text}");
    // A prompts run's summary, input tokens and vLLM-named keys and all, keeps to the
    // schema; the vLLM keys are the run's own numbers under other names.
    assert_eq!(doc["input_tokens"]["per_request"]["count"], 80);
    let v = &doc["vllm"]["all"];
    assert_eq!(v["completed"], 80);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["total_output_tokens"], 80 * 20);
    assert_eq!(v["median_ttft_ms"], st["ttft_ms"]["p50"]);
    assert_eq!(v["p99_itl_ms"], st["itl_ms"]["p99"]);
    assert_eq!(v["p99.9_e2el_ms"], doc["latency_ms"]["corrected"]["p99_9"]);
    assert_eq!(
        doc["vllm"]["models"]["m"]["total_input_tokens"],
        v["total_input_tokens"]
    );
    check_schema(&doc);
}

#[test]
fn until_precise_works_for_time_to_first_token() {
    // --until ttft_p50:±10% on a streaming endpoint whose TTFT is 5–15 ms: the load runs past
    // -d until the TTFT interval (not the whole-response latency's) is tight, and the claim
    // is the printed TTFT interval's.
    let server = serve(|c| {
        c.llm.ttft = (Duration::from_millis(5), Duration::from_millis(15));
        c.llm.token_interval = (Duration::from_millis(1), Duration::from_millis(1));
        c.llm.tokens = (10, 10);
    });
    let dir = tmpdir("until-ttft");
    let prompts = dir.join("p.jsonl");
    std::fs::write(&prompts, "{\"prompt\": \"hello\"}\n").unwrap();
    let (r, doc) = load(&format!("http://{}/v1/chat/completions", server.addr))
        .rate("100")
        .duration("3s")
        .connections(50)
        .flag("--prompts", prompts.to_str().unwrap())
        .flag("--model", "m")
        .flag("--until", "ttft_p50:±10%")
        .flag("--max-duration", "60s")
        .run_json();
    let p = r.precision.as_ref().expect("--until reports its precision");
    assert!(p.stopped, "stopped early: {}", doc["precision"]);
    assert!((10.0..60.0).contains(&p.after_s), "after {} s", p.after_s);
    let t = &doc["streaming"]["ttft_ms"];
    let (p50, lo, hi) = (
        t["p50"].as_f64().unwrap(),
        t["ci95"]["p50"][0].as_f64().unwrap(),
        t["ci95"]["p50"][1].as_f64().unwrap(),
    );
    let half = (hi - lo) / 2.0 / p50 * 100.0;
    let goal = &doc["precision"]["goals"][0];
    assert_eq!(goal["metric"], "ttft_p50");
    assert!(
        (goal["achieved_pct"].as_f64().unwrap() - half).abs() < 0.01,
        "{goal} vs ±{half}"
    );
    assert_eq!(doc["precision"]["reached"], half <= 10.0);
}

#[test]
fn junit_has_a_test_case_per_threshold_and_fails_the_ones_that_did_not_hold() {
    // Read with an XML parser as a CI system would: one suite, a case per threshold, a
    // failure (with the measured value) for each that failed; exit 99 as without --junit.
    let server = serve(|c| c.delay = Duration::from_millis(2));
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("junit");
    let path = dir.join("thresholds.xml");
    let out = run_bin(
        &[
            "-R100",
            "-d1s",
            "-c2",
            "-t1",
            "--threshold",
            "p99<1s",
            "--threshold",
            "p50<1ms",
            "--threshold",
            "errors<1%",
            "--junit",
            path.to_str().unwrap(),
            &url,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(99));
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(
        (root.attribute("tests"), root.attribute("failures")),
        (Some("3"), Some("1"))
    );
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(
        suite.attribute("name"),
        Some(format!("ratebench GET {url}").as_str())
    );
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, ["p99<1s", "p50<1ms", "errors<1%"]);
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, ["p50<1ms"]);
    let failure = cases[1]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(failure
        .attribute("message")
        .unwrap()
        .starts_with("p50<1ms did not hold: actual 2."));
}

#[test]
fn the_requests_log_has_a_line_per_request_that_agrees_with_the_report() {
    // 300 requests at 200/s over two threads: 300 lines; the intended times are exactly the
    // schedule's (k × 5 ms); done − intended is the corrected latency the report counts (its
    // max agrees to the histogram's precision); every line names its thread and connection.
    let server = serve(|c| c.delay = Duration::from_millis(2));
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("requests-log");
    let path = dir.join("requests.tsv");
    let r = load(&url)
        .rate("200")
        .threads(2)
        .connections(4)
        .flag("-n", "300")
        .flag("--requests-log", path.to_str().unwrap())
        .run();
    assert_eq!(r.recorder.total.completed, 300);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("# ratebench requests log"));
    assert_eq!(
        lines.next().unwrap(),
        "intended_s\tsent_s\tfirst_byte_s\tdone_s\tstatus\tbytes\terror\ttag\tconnection"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 300);
    let us = |s: &str| (s.parse::<f64>().unwrap() * 1e6).round() as u64;
    let mut intended: Vec<u64> = rows.iter().map(|f| us(f[0])).collect();
    intended.sort_unstable();
    assert_eq!(intended, (0..300).map(|k| k * 5000).collect::<Vec<_>>());
    let max = rows.iter().map(|f| us(f[3]) - us(f[0])).max().unwrap();
    let reported = r.recorder.corrected.max();
    assert!(
        max.abs_diff(reported) <= reported / 500 + 2,
        "log max {max} µs, report max {reported} µs"
    );
    for f in &rows {
        assert_eq!((f[4], f[6], f[7]), ("200", "-", "GET /"), "{f:?}");
        assert!(
            us(f[1]) >= us(f[0]) && us(f[3]) >= us(f[2]) && us(f[2]) >= us(f[1]),
            "{f:?}"
        );
        let (t, c) = f[8].split_once('.').unwrap();
        assert!(t == "0" || t == "1", "{f:?}");
        assert!(c.parse::<usize>().unwrap() < 2, "{f:?}");
    }
    // Failed requests are lines too: no status, their error class.
    let garbage = raw_server(Behaviour::Garbage);
    let r = load(&format!("http://{}/", garbage.addr))
        .rate("50")
        .flag("-n", "20")
        .flag("--requests-log", path.to_str().unwrap())
        .run();
    assert_eq!(r.recorder.total.error_total(), 20);
    let text = std::fs::read_to_string(&path).unwrap();
    let errors: Vec<&str> = text
        .lines()
        .skip(2)
        .map(|l| l.split('\t').nth(6).unwrap())
        .collect();
    assert_eq!(errors.len(), 20);
    assert!(errors.iter().all(|e| *e != "-"), "{errors:?}");
    // `ratebench report` draws a log as a scatter (and says it needs --html).
    let html = dir.join("requests.html");
    let out = run_bin(
        &[
            "report",
            path.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("20 requests: 0 answered 1xx–3xx (blue), 0 answered 4xx/5xx (orange), 20 failed (red); 20 drawn."), "{page}");
    assert_eq!(page.matches("<circle").count(), 20);
    let out = run_bin(&["report", path.to_str().unwrap()], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --html FILE"));
}
