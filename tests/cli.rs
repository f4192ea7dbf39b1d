//! The command line as users meet it: bad input rejected before any traffic, TLS trust,
//! Ctrl-C, and the newcomer's demo.

mod common;
use common::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[test]
fn bad_input_exits_2_naming_the_flag_and_sends_nothing() {
    let target = counting_listener();
    let url = format!("http://{}/", target.addr);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-R1000", "http//missing-colon"], "URL"),
        (vec!["-R1000", "ftp://127.0.0.1/"], "unsupported scheme"),
        (vec!["-R1000", "-d", "10x", &url], "-d/--duration"),
        (vec!["-R", "0", &url], "-R/--rate"),
        (vec!["-R1000", "-c", "0", &url], "-c/--connections"),
        (vec!["-R1000", "-c", "2", "-t", "4", &url], "-t/--threads"),
        (vec![&url], "-R/--rate"),
        // No scheme, either way it is written: the same hint, with the URL meant.
        (
            vec!["-R1000", "127.0.0.1:8080/"],
            "did you mean http://127.0.0.1:8080/",
        ),
        (
            vec!["-R1000", "localhost:8080"],
            "did you mean http://localhost:8080/",
        ),
        // clap's own errors, in the same one-line style.
        (
            vec!["-R1000", "--frobnicate", &url],
            "unexpected argument '--frobnicate'",
        ),
        (vec!["-R", "-5", &url], "-R/--rate \"-5\""),
        // A port past 65535 is not port 80 (the URL parser reads it as no port at all).
        (
            vec!["-R1000", "http://127.0.0.1:99999/"],
            "port 99999 out of range",
        ),
        (vec!["-R1000", "http://127.0.0.1:0/"], "port 0"),
        // A scheme with its punctuation wrong gets the URL meant, not http://http//…
        (
            vec!["-R1000", "http//127.0.0.1:8080/x"],
            "did you mean http://127.0.0.1:8080/x",
        ),
        (vec!["-R1000", "https:/host/"], "did you mean https://host/"),
        // Unit-less SLO limits are refused as unit-less thresholds are (150 meant seconds).
        (vec!["-R1000", "--slo", "ttft<150", &url], "has no unit"),
        // Goodput without an SLO would be 0 % whatever the server did.
        (
            vec!["-R1000", "--threshold", "goodput>95%", &url],
            "add one, e.g. --slo",
        ),
        // A missing argument is named, with the subcommand's help.
        (
            vec!["sweep", "--from", "10", &url],
            "missing --to <R1> (see ratebench sweep --help)",
        ),
        (
            vec!["report"],
            "missing <FILE.hlog>... (see ratebench report --help)",
        ),
        // What a sweep would not write is refused, not dropped.
        (
            vec![
                "sweep",
                "--from",
                "10",
                "--to",
                "20",
                "--threshold",
                "p99<1s",
                "--junit",
                "j.xml",
                &url,
            ],
            "--junit is for a single run",
        ),
        (
            vec![
                "sweep",
                "--from",
                "10",
                "--to",
                "20",
                "--threshold",
                "p99<1s",
                "--requests-log",
                "r.tsv",
                &url,
            ],
            "--requests-log is for a single run",
        ),
        (
            vec!["serve", "--tls", "--cert", "c.pem"],
            "missing --key <FILE> (see ratebench serve --help)",
        ),
    ];
    for (args, flag) in &cases {
        let out = run_bin(args, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {stderr}"
        );
        assert!(
            stderr.contains(flag),
            "{args:?}: {stderr} should name {flag}"
        );
        assert!(stderr.starts_with("ratebench: error: "), "{stderr}");
    }
    assert_eq!(
        target.accepted.load(Ordering::SeqCst),
        0,
        "no connection was made"
    );
}

#[test]
fn https_needs_trust_or_k() {
    let server = serve(|c| c.tls = true);
    let url = format!("https://127.0.0.1:{}/", server.addr.port());
    let out = run_bin(&["-R100", "-d1s", &url], Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("certificate") && stderr.contains("-k"),
        "{stderr}"
    );
    // The cause is said once, on one line.
    assert_eq!(stderr.matches("UnknownIssuer").count(), 1, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(server.stats.requests.load(Ordering::SeqCst), 0);

    let r = load(&url)
        .rate("100")
        .duration("1s")
        .connections(2)
        .switch("-k")
        .run();
    assert_eq!(r.recorder.total.scheduled, 100);
    assert_eq!(r.recorder.status[200], 100);
    assert_eq!(server.stats.requests.load(Ordering::SeqCst), 100);
}

#[test]
fn sigint_stops_the_run_and_prints_the_report() {
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let child = bin()
        .args(["-R100", "-d60s", "-c2", "-t1", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: sending SIGINT to the child we started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = wait_limited(child, Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Accounting:"))
        .expect("accounting line");
    assert!(line.ends_with("(interrupted)"), "{line}");
    // "Accounting: scheduled N = completed C + errors E + unfinished U (interrupted)"
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(n.len(), 4, "{line}");
    assert_eq!(n[0], n[1] + n[2] + n[3], "{line}");
    // At most 1.5 s at 100/s (151) were scheduled before the signal (plus however long a
    // busy machine takes to deliver it), nowhere near the 6000 of the full minute.
    assert!((1..=300).contains(&n[0]), "{line}");
    assert!(stdout.contains("Latency Distribution"));
}

#[test]
fn ctrl_c_says_what_it_waits_for_and_a_second_one_cuts_it_short() {
    // A server that never answers: after the first Ctrl-C the requests in flight could keep
    // the run waiting out its 30 s grace period; ratebench says so, and a second Ctrl-C ends
    // the wait at once, reported as cut short, not as the grace period ending.
    let server = raw_server(Behaviour::NeverAnswer);
    let url = format!("http://{}/", server.addr);
    let child = bin()
        .args([
            "-R50",
            "-d60s",
            "-c5",
            "-t1",
            "--timeout",
            "60s",
            "--grace",
            "30s",
            &url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    std::thread::sleep(Duration::from_millis(1000));
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(pid, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = wait_limited(child, Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("waiting up to 30s (--grace)") && stderr.contains("second Ctrl-C"),
        "{stderr}"
    );
    assert!(
        stdout.contains("when a second Ctrl-C cut the wait short")
            && !stdout.contains("grace period (30s) ended"),
        "{stdout}"
    );
}

#[test]
fn demo_runs_and_shows_the_correction() {
    let out = run_bin(&["demo", "-d", "4s"], Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Accounting: scheduled 4000 = completed 4000 + errors 0 + unfinished 0"),
        "{stdout}"
    );
    // The 1 s freeze covers 1000 of 4000 requests, whose corrected latencies spread over
    // 0..1 s: the slowest 1 % (40) are the first 40 of those, so p99 = 1 s × (1 − 40/1000)
    // = 960 ms. Uncorrected, only the ≤ 20 requests in flight saw it (0.5 %): p99 stays low.
    let p99 = |label: &str| {
        let line = stdout.lines().find(|l| l.contains(label)).expect(label);
        wrk_ms(line.split_whitespace().nth(2).unwrap())
    };
    let (corrected, uncorrected) = (p99("corrected   p99"), p99("uncorrected p99"));
    assert!(
        (corrected - 960.0).abs() <= 0.15 * 960.0,
        "corrected p99 {corrected} ms"
    );
    assert!(uncorrected < 100.0, "uncorrected p99 {uncorrected} ms");
    // And the words match those numbers: 1000/s × 1 s frozen = 1000 requests (25 % of
    // 4000) waited; the 20 connections held at most 20 in flight (0.5 %), the rest unseen.
    assert!(
        stdout.contains("the ~1000 requests due during the freeze (25% of 4000) waited"),
        "{stdout}"
    );
    assert!(
        stdout.contains("only the ≤ 20 requests already in flight when the freeze began (0.5%)")
            && stdout.contains("the other ~980 waited unseen"),
        "{stdout}"
    );
    assert!(!stdout.contains("all but disappears"), "{stdout}");
}

/// Parses wrk's duration format (`123.00us`, `1.23ms`, `1.23s`) into milliseconds.
fn wrk_ms(s: &str) -> f64 {
    let (num, scale) = if let Some(v) = s.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1e3)
    } else {
        panic!("not a wrk duration: {s}")
    };
    num.parse::<f64>().unwrap() * scale
}

#[test]
fn progress_only_on_a_terminal() {
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    // Piped stderr: not a terminal, so not a byte of progress.
    let out = run_bin(
        &["-R100", "-d2s", "-c2", "-t1", &url],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Under a pseudo-terminal (util-linux `script`, which `.ci/run` installs), with
    // --no-tui (the live view is the default there), one progress line per second.
    assert!(
        std::process::Command::new("script")
            .arg("--version")
            .output()
            .is_ok(),
        "`script` (util-linux, Debian package bsdutils) is needed for the terminal half"
    );
    let cmd = format!(
        "{} -R100 -d2s -c2 -t1 --no-tui {url}",
        env!("CARGO_BIN_EXE_ratebench")
    );
    let child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_limited(child, Duration::from_secs(20));
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains("[   1s/2s] sent 100 req/s, 0 errors, p99"),
        "{tty}"
    );
    assert!(tty.contains("so far"), "{tty}");
}

#[test]
fn method_headers_and_body_arrive_as_given() {
    let server = raw_server(Behaviour::Ok);
    let dir = tmpdir("body");
    let body_file = dir.join("req.json");
    std::fs::write(&body_file, r#"{"prompt":"héllo"}"#).unwrap();
    let url = format!("http://{}/v1/items?x=1", server.addr);
    let r = load(&url)
        .rate("10")
        .duration("1s")
        .connections(1)
        .flag("-m", "PUT")
        .flag("-H", "X-One: 1")
        .flag("-H", "X-Two:2")
        .flag("-H", "Content-Type: application/json")
        .flag("--body-file", body_file.to_str().unwrap())
        .run();
    assert_eq!(r.recorder.total.completed, 10);
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.len(), 10);
    let req = &seen[0];
    // The bytes on the wire: method and path with query, the URL's Host, our headers
    // (the space-less one too), an exact Content-Length, and the body byte for byte.
    assert!(req.starts_with("PUT /v1/items?x=1 HTTP/1.1\r\n"), "{req}");
    let lower = req.to_ascii_lowercase();
    assert!(
        lower.contains(&format!("host: {}\r\n", server.addr)),
        "{req}"
    );
    assert!(
        lower.contains("x-one: 1\r\n") && lower.contains("x-two: 2\r\n"),
        "{req}"
    );
    assert!(
        lower.contains("content-type: application/json\r\n"),
        "{req}"
    );
    let body = r#"{"prompt":"héllo"}"#;
    assert!(
        lower.contains(&format!("content-length: {}\r\n", body.len())),
        "{req}"
    );
    assert!(req.ends_with(&format!("\r\n\r\n{body}")), "{req}");
    // Every request is the same.
    assert!(seen.iter().all(|s| s == req));
}

#[test]
fn the_open_file_limit_is_raised_or_named_before_traffic() {
    // A soft limit of 64 open files is below what -c100 needs; the hard limit is not: the
    // soft limit is raised and all 100 connections open (none fails as a connect error).
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("ulimit");
    let json = dir.join("s.json");
    let bin = env!("CARGO_BIN_EXE_ratebench");
    let cmd = format!(
        "ulimit -Sn 64 && exec {bin} -R200 -d1s -c100 -t1 --json {} {url}",
        json.display()
    );
    let out = shell(&cmd, Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["connections"]["opened"], 100);
    assert_eq!(j["errors"]["connect"], 0);

    // A hard limit of 128 cannot hold -c200 (about 264 descriptors): exit 2 naming
    // `ulimit -n`, before a single connection.
    let target = counting_listener();
    let url = format!("http://{}/", target.addr);
    let cmd = format!("ulimit -Sn 64 && ulimit -Hn 128 && exec {bin} -R10 -d1s -c200 {url}");
    let out = shell(&cmd, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("-c/--connections") && stderr.contains("ulimit -n"),
        "{stderr}"
    );
    assert_eq!(target.accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn sweep_shows_each_steps_progress_on_a_terminal_and_none_in_a_pipe() {
    // Under `script` (a pseudo-terminal, as a user's shell): the live view of each step, with
    // the steps' table growing below it, then the sweep's text on the ordinary screen; with
    // --no-tui a progress line a second per step, labelled with the step's rate. Through a
    // pipe (CI): neither.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let sweep = format!(
        "stty cols 110 rows 35; {} sweep --from 10 --to 20 --steps 2 --refine 0 -d2s -c2 \
         --threshold 'p99<1s' {url}",
        env!("CARGO_BIN_EXE_ratebench")
    );
    let dir = tmpdir("sweep-tty");
    let typescript = dir.join("typescript");
    let status = std::process::Command::new("script")
        .args(["-qec", &sweep, typescript.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script(1) from bsdutils (.ci/run installs it)");
    assert!(status.success());
    let seen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    let (enter, leave) = ("\x1b[?1049h", "\x1b[?1049l");
    assert_eq!(
        (seen.matches(enter).count(), seen.matches(leave).count()),
        (1, 1),
        "one view for the whole sweep"
    );
    let (view, after) = seen.split_once(leave).unwrap();
    // (ratatui redraws only the cells that change: the second step's title is a digit.)
    for word in [
        "sweep steps",
        "asked/s",
        "step 10/s",
        "10.0",
        "20.0",
        "pass",
        "latency",
    ] {
        assert!(view.contains(word), "{word} not in the view");
    }
    assert!(
        !view.contains("] sent "),
        "no progress lines under the view"
    );
    // The table and the answer, after the view, as a pipe would have them.
    let rows: Vec<&str> = after
        .lines()
        .filter(|l| l.trim_end().ends_with("pass"))
        .collect();
    assert_eq!(rows.len(), 2, "{after}");
    assert!(after.contains("Highest rate meeting all thresholds: 20 req/s"));
    let sweep = sweep.replace(" sweep ", " sweep --no-tui ");
    let status = std::process::Command::new("script")
        .args(["-qec", &sweep, typescript.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let seen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(!seen.contains(enter));
    for line in [
        "[step 10/s    1s/2s] sent 10 req/s",
        "[step 20/s    2s/2s] sent 20 req/s",
    ] {
        assert!(seen.contains(line), "{line} not in {seen}");
    }
    let out = run_bin(
        &[
            "sweep",
            "--from",
            "10",
            "--to",
            "20",
            "--steps",
            "2",
            "--refine",
            "0",
            "-d2s",
            "-c2",
            "--threshold",
            "p99<1s",
            &url,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("[step "));
}

#[test]
fn n_sends_exactly_n_requests_at_the_rate() {
    // oha's -n: exactly N, every thread's share together, whatever N/R comes to (10/7 s is
    // not a whole number of nanoseconds).
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    for (n, rate, threads) in [(137u64, "100", 2usize), (10, "7", 3), (1, "1000", 1)] {
        let r = load(&url)
            .rate(rate)
            .threads(threads)
            .connections(6)
            .flag("-n", &n.to_string())
            .run();
        let t = &r.recorder.total;
        assert_eq!(
            (t.scheduled, t.sent, t.completed),
            (n, n, n),
            "-n {n} -R {rate} -t {threads}"
        );
    }
    assert_eq!(server.stats.requests.load(Ordering::SeqCst), 137 + 10 + 1);
    // -n with -d, random arrivals or a sweep: refused before any traffic.
    for (args, says) in [
        (
            vec!["-R10", "-n", "5", "-d", "2s", url.as_str()],
            "give one",
        ),
        (
            vec!["-R10", "-n", "5", "--arrival", "poisson", url.as_str()],
            "random arrivals",
        ),
        (
            vec!["sweep", "--from", "1", "--to", "2", "-n", "5", url.as_str()],
            "give -d",
        ),
        (vec!["-R10", "-n", "0", url.as_str()], "-n/--requests"),
    ] {
        let out = run_bin(&args, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn the_live_view_shows_on_a_terminal_and_not_in_a_pipe() {
    // Under `script` (a pseudo-terminal): the alternate screen is taken and given back, the
    // view's words are drawn in it (ratatui moves the cursor over blank cells, so words, not
    // whole lines), and the report prints after it, on the ordinary screen. Through a pipe,
    // and with --no-tui, no escape sequence at all.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("tui");
    let typescript = dir.join("typescript");
    let run = format!(
        "stty cols 100 rows 30; {} -R200 -d2s -c4 {url}",
        env!("CARGO_BIN_EXE_ratebench")
    );
    let status = std::process::Command::new("script")
        .args(["-qec", &run, typescript.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script(1) from bsdutils (.ci/run installs it)");
    assert!(status.success());
    let seen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    let (enter, leave) = ("\x1b[?1049h", "\x1b[?1049l");
    assert_eq!(
        (seen.matches(enter).count(), seen.matches(leave).count()),
        (1, 1)
    );
    let (before, after) = seen.split_once(leave).unwrap();
    let view = before.split_once(enter).unwrap().1;
    for word in [
        "ratebench",
        "target",
        "200/s",
        "latency",
        "p99.9",
        "answers",
        "2xx",
        "errors",
        "timeout",
        "lag",
        "each",
        "Ctrl-C",
    ] {
        assert!(view.contains(word), "{word} not in the view");
    }
    assert!(
        after.contains("Latency Distribution"),
        "the report after the view: {after}"
    );
    for args in [
        vec!["-R200", "-d1s", "-c4", url.as_str()],
        vec!["-R200", "-d1s", "-c4", "--no-tui", url.as_str()],
    ] {
        let out = run_bin(&args, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(0));
        let all = [out.stdout, out.stderr].concat();
        assert!(
            !all.contains(&0x1b),
            "{args:?}: an escape sequence in a pipe"
        );
    }
    // --no-tui on a terminal: the one-line progress, no alternate screen.
    let run = format!(
        "{} -R200 -d2s -c4 --no-tui {url}",
        env!("CARGO_BIN_EXE_ratebench")
    );
    let status = std::process::Command::new("script")
        .args(["-qec", &run, typescript.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let seen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(!seen.contains(enter));
    assert!(seen.contains("s/2s] sent 200 req/s"), "{seen}");
    // Event streams: TTFT, ITL (as the last second's gaps) and tokens/s in the view. Each
    // stream has 10 tokens 2 ms apart, so ITL p50 reads about 2 ms.
    let llm = serve(|c| {
        c.llm.ttft = (Duration::from_millis(5), Duration::from_millis(5));
        c.llm.token_interval = (Duration::from_millis(2), Duration::from_millis(2));
        c.llm.tokens = (10, 10);
    });
    let run = format!(
        "stty cols 120 rows 30; {} -R20 -d2s -c4 -m POST --body \
         '{{\"model\":\"m\",\"stream\":true,\"messages\":[]}}' \
         http://{}/v1/chat/completions",
        env!("CARGO_BIN_EXE_ratebench"),
        llm.addr
    );
    let status = std::process::Command::new("script")
        .args(["-qec", &run, typescript.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let seen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    let view = seen.split_once(leave).unwrap().0;
    for word in ["streams", "TTFT", "ITL", "p50 2.", "tokens"] {
        assert!(view.contains(word), "{word} not in the view");
    }
}

#[test]
fn an_unreachable_target_fails_after_one_connect_timeout() {
    // A target whose TCP connect never completes. Every initial connection waits out
    // --connect-timeout (in parallel), and that is the whole wait: the run does not then
    // try a connection of its own and wait as long again. So it ends after one limit —
    // at least 2 s, never the 4 s of two — and says what it waited for.
    let hole = black_hole();
    let url = format!("http://{}/", hole.addr);
    for extra in [None, Some("--http2")] {
        let mut args = vec!["-R10", "-d1s", "-c4", "-t2", "--connect-timeout", "2s"];
        args.extend(extra);
        args.push(&url);
        let started = std::time::Instant::now();
        let out = run_bin(&args, Duration::from_secs(30));
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "target not reachable: no connection to {} within --connect-timeout (2s), \
                 waiting for the TCP connect and any TLS handshake",
                hole.addr
            )),
            "{args:?}: {stderr}"
        );
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_millis(3500),
            "{args:?}: took {took:?}"
        );
    }
}
