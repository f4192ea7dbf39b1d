//! Traffic shapes against `serve` on loopback: ramps (`--stages`), Poisson arrivals with a
//! seed, a warm-up kept out of the results, and `ratebench sweep` finding a known knee.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

static TIMING: Mutex<()> = Mutex::new(());

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn stages_ramp_the_rate_exactly() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    // 2s:200, 2s:200, 2s:0 from 0: the integral is 200 + 400 + 200 = 800 requests; per
    // second ∫ of the rate: 50, 150, 200, 200, 150, 50.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let (r, j) = load(&url)
        .flag("--stages", "2s:200,2s:200,2s:0")
        .connections(10)
        .run_json();
    assert_eq!(r.recorder.total.scheduled, 800);
    assert_eq!(r.recorder.total.completed, 800);
    assert_eq!(server.stats.requests.load(Ordering::SeqCst), 800);
    let per_second: Vec<u64> = r
        .intervals
        .iter()
        .take(6)
        .map(|i| i.counts.scheduled)
        .collect();
    for (got, want) in per_second.iter().zip([50u64, 150, 200, 200, 150, 50]) {
        assert!(got.abs_diff(want) <= 1, "{per_second:?}");
    }
    assert_eq!(j["config"]["stages"], "2s:200,2s:200,2s:0");
    assert_eq!(j["load_duration_s"].as_f64().unwrap().round(), 6.0);
}

#[test]
fn poisson_arrivals_repeat_with_their_seed() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    // The same seed gives the same schedule (so the same count due in each second),
    // another seed another one; the seed is in the report and the JSON either way.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let run = |seed: &str| {
        load(&url)
            .rate("500")
            .duration("2s")
            .connections(10)
            .threads(2)
            .flag("--arrival", "poisson")
            .flag("--seed", seed)
            .run_json()
    };
    let per_second = |r: &ratebench::run::RunResult| -> Vec<u64> {
        r.intervals
            .iter()
            .take(2)
            .map(|i| i.counts.scheduled)
            .collect()
    };
    let (a, ja) = run("7");
    let (b, _) = run("7");
    let (c, _) = run("8");
    assert_eq!(per_second(&a), per_second(&b));
    assert_ne!(per_second(&a), per_second(&c));
    // About 1000 due (Poisson: σ ≈ 32), all completed.
    let n = a.recorder.total.scheduled;
    assert!(n.abs_diff(1000) < 160, "{n}");
    assert_eq!(a.recorder.total.completed, n);
    assert_eq!(
        (
            ja["config"]["arrival"].as_str(),
            ja["config"]["seed"].as_u64()
        ),
        (Some("poisson"), Some(7))
    );
    let text = ratebench::report::text::header(&a.meta);
    assert!(text.contains("poisson arrivals (seed 7)"), "{text}");
}

#[test]
fn a_warmup_reaches_the_server_and_none_of_it_is_in_the_results() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    // 1 s of warm-up and 1 s measured at 200/s: the server answers 400, the results hold
    // the measured 200 only, and the warm-up has its own line and JSON object.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("warmup");
    let json_path = dir.join("s.json");
    let out = load(&url)
        .rate("200")
        .duration("1s")
        .connections(4)
        .flag("--warmup", "1s")
        .flag("--json", json_path.to_str().unwrap())
        .run_bin(Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(server.stats.requests.load(Ordering::SeqCst), 400);
    let j = json(&json_path);
    assert_eq!(j["accounting"]["scheduled"], 200);
    assert_eq!(j["latency_ms"]["corrected"]["count"], 200);
    assert_eq!(j["warmup"]["scheduled"], 200);
    assert_eq!(j["warmup"]["completed"], 200);
    assert!(
        stdout.contains(
            "Warm-up (not measured, before the load window): 1s at 200.00 req/s: scheduled 200"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("Accounting: scheduled 200 = completed 200"),
        "{stdout}"
    );
}

#[test]
fn sweep_finds_the_knee_of_a_server_with_known_capacity() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    // 4 connections to a server that takes at least 10 ms per answer carry at most
    // 4 / 10 ms = 400 req/s. Below that the queue is empty and p99 stays near 10 ms; above
    // it requests queue without bound and p99 grows with the run. So with p99<50ms the
    // climb 100, 208, 433, 900 fails at 433 (8 % over: the backlog grows by ≥ 33 req/s, 66
    // requests — 165 ms of waiting — by the end of 2 s) and the bisection (300, 360, then
    // 395 or 329) ends between 250 and 400. (A step exactly at the capacity, 400, is the
    // knee itself and may pass or fail: the climb does not land on it.)
    let server = serve(|c| c.delay = Duration::from_millis(10));
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("sweep");
    let (json_path, html_path) = (dir.join("sweep.json"), dir.join("sweep.html"));
    let out = run_bin(
        &[
            "sweep",
            "--from",
            "100",
            "--to",
            "900",
            "--steps",
            "4",
            "--refine",
            "3",
            "-d2s",
            "-c4",
            "-t1",
            "--threshold",
            "p99<50ms",
            "--json",
            json_path.to_str().unwrap(),
            "--html",
            html_path.to_str().unwrap(),
            &url,
        ],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&json_path);
    let schema = json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/sweep.schema.json"));
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(&j).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let highest = j["highest_passing_rate"].as_f64().expect("a passing rate");
    assert!(highest > 250.0 && highest < 400.0, "{highest}: {stdout}");
    let steps = j["steps"].as_array().unwrap();
    let asked: Vec<f64> = steps
        .iter()
        .map(|s| s["asked_per_s"].as_f64().unwrap())
        .collect();
    assert_eq!(
        &asked[..3],
        &[100.0, 208.0, 433.0],
        "the climb stops at the first failure"
    );
    assert_eq!(steps[2]["pass"], false);
    assert_eq!(steps.len(), 6, "three steps and three bisections");
    assert!(stdout.contains(&format!(
        "Highest rate meeting all thresholds: {highest} req/s"
    )));
    // The hockey stick has a point per step.
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("data-chart=\"knee\""));
    assert!(html.contains(&format!(
        "data-series=\"p99\" data-points=\"{}\"",
        steps.len()
    )));
}

#[test]
fn sweep_refuses_bad_input_and_says_when_nothing_passed() {
    let target = counting_listener();
    let url = format!("http://{}/", target.addr);
    for (args, says) in [
        (
            vec![
                "sweep",
                "--from",
                "800",
                "--to",
                "100",
                "--threshold",
                "p99<1s",
                &url,
            ],
            "--to",
        ),
        (
            vec!["sweep", "--from", "100", "--to", "800", &url],
            "threshold",
        ),
        (
            vec![
                "sweep",
                "-R",
                "5",
                "--from",
                "1",
                "--to",
                "2",
                "--threshold",
                "p99<1s",
                &url,
            ],
            "-R/--rate",
        ),
    ] {
        let out = run_bin(&args, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(
        target.accepted.load(Ordering::SeqCst),
        0,
        "nothing was sent"
    );
    // A threshold no step can meet: the first step fails, the sweep ends, exit 99.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let out = run_bin(
        &[
            "sweep",
            "--from",
            "50",
            "--to",
            "100",
            "--steps",
            "2",
            "-d1s",
            "-c2",
            "-t1",
            "--threshold",
            "p99<1us",
            &url,
        ],
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(99), "{stdout}");
    assert!(stdout.contains("No rate met all thresholds"), "{stdout}");
}
