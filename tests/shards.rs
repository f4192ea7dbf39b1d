//! Scale-out without a coordinator: N processes, each `--shard I/N` of one plan, started
//! together with `--start-at`, make the single run's schedule at the server; `ratebench
//! report` merges their logs into the single run's report, and refuses a set that is not
//! the plan's shards, each once.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Starts shard `i` of `n` of `-R rate -d2s` with `--start-at at`, logging to `dir`.
fn shard(url: &str, rate: &str, extra: &[&str], i: u64, n: u64, at: f64, dir: &Path) -> Child {
    let log = dir.join(format!("shard-{i}.hlog"));
    let mut args = vec![
        format!("-R{rate}"),
        "-d2s".into(),
        "-c4".into(),
        "-t1".into(),
        "--shard".into(),
        format!("{i}/{n}"),
        "--start-at".into(),
        format!("{at:.3}"),
        "--hdr-log".into(),
        log.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(url.to_string());
    bin()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shard starts")
}

fn report(logs: &[PathBuf], extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec!["report".into()];
    args.extend(logs.iter().map(|p| p.display().to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    run_bin(&args, Duration::from_secs(20))
}

#[test]
fn three_shards_make_one_run() {
    // 600/s for 2 s over 3 shards: 1200 requests, one every 1/600 s at the server, each
    // shard sending every third; the merge reports 1200 at 600/s with a line per shard.
    let server = raw_server(Behaviour::Ok);
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("shards");
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 2.0;
    let children: Vec<Child> = (0..3)
        .map(|i| shard(&url, "600", &[], i, 3, at, &dir))
        .collect();
    for c in children {
        let out = wait_limited(c, Duration::from_secs(30));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("its share: 200.00 requests/s"), "{stdout}");
        assert!(
            stdout.contains(&format!("Start: --start-at {at:.3}")),
            "{stdout}"
        );
    }
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        1200
    );
    // The union at the server is one even stream: gaps near 1.67 ms, not bursts of three.
    let mut arrivals = server.arrivals.lock().unwrap().clone();
    arrivals.sort();
    let mut gaps: Vec<u128> = arrivals
        .windows(2)
        .map(|w| (w[1] - w[0]).as_micros())
        .collect();
    gaps.sort();
    let median = gaps[gaps.len() / 2];
    assert!(
        (1300..=2000).contains(&median),
        "median gap {median} µs, expected ~1667"
    );
    let near_zero = gaps.iter().filter(|&&g| g < 400).count() as f64 / gaps.len() as f64;
    assert!(
        near_zero < 1.0 / 3.0,
        "{:.0}% of gaps under 400 µs",
        near_zero * 100.0
    );

    let logs: Vec<PathBuf> = (0..3)
        .map(|i| dir.join(format!("shard-{i}.hlog")))
        .collect();
    let merged = dir.join("merged.json");
    let out = report(&logs, &["--json", merged.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&merged);
    assert_eq!(j["accounting"]["scheduled"], 1200);
    assert_eq!(j["accounting"]["completed"], 1200);
    assert_eq!(j["rates"]["target_per_s"], 600.0);
    assert!((j["rates"]["achieved_per_s"].as_f64().unwrap() - 600.0).abs() < 6.0);
    assert_eq!(j["latency_ms"]["corrected"]["count"], 1200);
    for i in 0..3 {
        assert!(
            stdout.contains(&format!("Shard {i}/3: achieved")),
            "{stdout}"
        );
    }
    // Thresholds judge the whole: 600/s was held, and no p99 is under a microsecond.
    assert_eq!(
        report(&logs, &["--threshold", "rate>590"]).status.code(),
        Some(0)
    );
    assert_eq!(
        report(&logs, &["--threshold", "p99<1us"]).status.code(),
        Some(99)
    );

    // Not the set: a shard missing, one twice, or one of another plan — exit 2, named.
    let out = report(&logs[..2], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("shard 2/3 is missing"), "{err}");
    let twice = [logs.clone(), vec![logs[0].clone()]].concat();
    let out = report(&twice, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("shard 0/3 is there twice"), "{err}");
    let other_dir = tmpdir("shards-other");
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 1.0;
    let other = wait_limited(
        shard(&url, "300", &[], 2, 3, at, &other_dir),
        Duration::from_secs(30),
    );
    assert_eq!(other.status.code(), Some(0));
    let mixed = vec![
        logs[0].clone(),
        logs[1].clone(),
        other_dir.join("shard-2.hlog"),
    ];
    let out = report(&mixed, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("from another plan"), "{err}");
    // --allow-partial merges anyway, and says so.
    let out = report(&logs[..2], &["--allow-partial"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("partial merge (--allow-partial): shard 2/3 is missing"),
        "{stdout}"
    );
}

#[test]
fn merged_shards_are_the_exact_union_and_match_one_process() {
    // A 5 ms service, two shards of -R400. The merged distribution is exactly the union of
    // the shards' own histograms (decoded here by the hdrhistogram crate, independently of
    // ratebench's reader): same count, same percentiles to the microsecond. And it tells the
    // same story as one process at -R400: both medians sit just above the 5 ms service.
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    use ratebench::record::histogram::{new_hist, percentile, Hist};
    let server = serve(|c| c.delay = Duration::from_millis(5));
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("shards-vs-one");
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 2.0;
    let children: Vec<Child> = (0..2)
        .map(|i| shard(&url, "400", &[], i, 2, at, &dir))
        .collect();
    for c in children {
        assert_eq!(
            wait_limited(c, Duration::from_secs(30)).status.code(),
            Some(0)
        );
    }
    let logs: Vec<PathBuf> = (0..2)
        .map(|i| dir.join(format!("shard-{i}.hlog")))
        .collect();
    let merged = dir.join("merged.json");
    assert_eq!(
        report(&logs, &["--json", merged.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let m = json(&merged);
    let mut union = new_hist();
    for log in &logs {
        let bytes = std::fs::read(log).unwrap();
        for entry in IntervalLogIterator::new(&bytes) {
            if let Ok(LogEntry::Interval(h)) = entry {
                if h.tag().map(|t| t.as_str()) == Some("corrected") {
                    use base64::Engine as _;
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(h.encoded_histogram())
                        .unwrap();
                    let decoded: Hist = Deserializer::new()
                        .deserialize(&mut std::io::Cursor::new(raw))
                        .unwrap();
                    union.add(&decoded).unwrap();
                }
            }
        }
    }
    let lat = &m["latency_ms"]["corrected"];
    assert_eq!(lat["count"].as_u64().unwrap(), union.len());
    assert_eq!(union.len(), 800);
    for (key, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)] {
        let want = percentile(&union, p) as f64 / 1000.0;
        assert_eq!(lat[key].as_f64().unwrap(), want, "{key}");
    }
    let (_, one) = load(&url)
        .rate("400")
        .duration("2s")
        .connections(8)
        .run_json();
    for doc in [&m, &one] {
        let p50 = doc["latency_ms"]["corrected"]["p50"].as_f64().unwrap();
        assert!(
            (5.0..=5.0 * 1.5).contains(&p50),
            "p50 {p50} ms for a 5 ms service"
        );
    }
    assert_eq!(one["latency_ms"]["corrected"]["count"], 800);
}

#[test]
fn bad_shard_and_start_flags_exit_2() {
    let target = counting_listener();
    let url = format!("http://{}/", target.addr);
    for (args, says) in [
        (vec!["-R10", "--shard", "3/3", &url], "--shard"),
        (vec!["-R10", "--shard", "x", &url], "--shard"),
        (vec!["-R10", "--start-at", "1000", &url], "in the past"),
        (
            vec!["-R10", "--start-at", "2999-01-01T00:00:00Z", &url],
            "more than a day ahead",
        ),
        (vec!["-R10", "--start-at", "soon", &url], "RFC 3339"),
    ] {
        let out = run_bin(&args, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(target.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn metrics_show_the_run_live() {
    // -R100 for 3 s with --metrics-addr: read while the run goes, the counters agree with
    // each other and with the schedule so far (100 per elapsed second), and the latency
    // histogram's buckets count every completed request.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = load(&url)
        .rate("100")
        .duration("3s")
        .connections(2)
        .flag("--metrics-addr", &addr)
        .flag("--shard", "0/1")
        .argv();
    let child = bin()
        .args(&child)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2300));
    let mut conn = std::net::TcpStream::connect(&addr).expect("the endpoint listens");
    use std::io::{Read, Write};
    conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let out = wait_limited(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0));
    let value = |metric: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(metric) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{metric} in {text}"))
    };
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let scheduled = value("ratebench_requests_scheduled_total{");
    // Two full seconds reported (the third is still running): 200 of 100/s.
    assert!((100.0..=300.0).contains(&scheduled), "{scheduled}");
    assert_eq!(value("ratebench_requests_completed_total{"), scheduled);
    assert_eq!(value("ratebench_latency_seconds_count{"), scheduled);
    // Buckets are cumulative: they never decrease, and the last (+Inf) holds every one.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("ratebench_latency_seconds_bucket{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(buckets.last().copied(), Some(scheduled));
    assert_eq!(value("ratebench_target_rate{"), 100.0);
    assert_eq!(value("ratebench_requests_rate_limited_total{"), 0.0);
    // Send lag counts the requests that found a free connection: some, at most all.
    let lagged = value("ratebench_send_lag_seconds_count{");
    assert!(
        lagged > 0.0 && lagged <= scheduled,
        "{lagged} of {scheduled}"
    );
}

#[test]
fn the_kubernetes_manifest_is_an_indexed_job_of_shards() {
    // No cluster is reachable here: check the manifest is valid YAML and says what the
    // README says — an Indexed Job, N completions = N in parallel = N shards, no retries,
    // one --start-at, the pod index as the shard, metrics annotated for scraping.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/ratebench-job.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .collect();
    let job = docs.iter().find(|d| d["kind"] == "Job").expect("a Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["backoffLimit"], 0);
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--shard"), format!("$(JOB_COMPLETION_INDEX)/{n}"));
    assert_eq!(after("--start-at"), "$(START_AT)");
    assert_eq!(after("--hdr-log"), "-");
    assert_eq!(after("--metrics-addr"), "0.0.0.0:9464");
    let notes = &spec["template"]["metadata"]["annotations"];
    assert_eq!(notes["prometheus.io/scrape"], "true");
    assert!(docs.iter().any(|d| d["kind"] == "ConfigMap"));
}
