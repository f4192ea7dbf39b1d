//! Faults during a run are counted, never fatal, and every scheduled request ends in
//! exactly one bucket: `scheduled = completed + errors + unfinished` (checked by
//! `common::run` for every run).

mod common;
use common::*;
use ratebench::outcome::ErrorClass;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn errors(r: &ratebench::run::RunResult, class: ErrorClass) -> u64 {
    r.recorder.total.errors[class.index()]
}

#[test]
fn connection_refused_is_a_clear_runtime_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = run_bin(&["-R100", "-d5s", &url], Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("cannot connect to 127.0.0.1") && stderr.contains("refused"),
        "{stderr}"
    );
}

#[test]
fn server_closing_every_connection_after_one_response() {
    let server = raw_server(Behaviour::CloseAfterOne);
    let url = format!("http://{}/", server.addr);
    let r = load(&url).rate("200").duration("2s").connections(4).run();
    let t = &r.recorder.total;
    assert_eq!(t.scheduled, 400);
    // The server says `Connection: close`, so nothing fails: each request after a
    // connection's first needs a new connection.
    assert_eq!(t.completed, 400);
    assert!(
        r.recorder.reconnects >= 400 - 4,
        "reconnects {}",
        r.recorder.reconnects
    );
    // Preflight + initial + reconnects: the server saw them all.
    assert_eq!(
        server.accepted.load(Ordering::SeqCst),
        1 + r.recorder.connects
    );
}

#[test]
fn server_closing_keep_alive_silently() {
    // The server closes after each response without announcing it: a request written into
    // the closing connection fails (read error); the run goes on and reconnects.
    let server = raw_server(Behaviour::SilentClose);
    let url = format!("http://{}/", server.addr);
    let r = load(&url).rate("200").duration("2s").connections(4).run();
    let t = &r.recorder.total;
    assert_eq!(t.scheduled, 400);
    assert!(t.completed > 0, "completed {}", t.completed);
    assert_eq!(t.errors[ErrorClass::Protocol.index()], 0);
    assert!(r.recorder.reconnects > 0);
}

#[test]
fn server_that_never_answers_times_out() {
    let server = raw_server(Behaviour::NeverAnswer);
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("50")
        .duration("1s")
        .connections(5)
        .timeout("300ms")
        .grace("1s")
        .run();
    let t = &r.recorder.total;
    assert_eq!(t.scheduled, 50);
    assert_eq!(t.completed, 0);
    let timeouts = errors(&r, ErrorClass::Timeout);
    // Five connections, each request held 300 ms, over the 1 s run plus 1 s of grace: at
    // most 5 × ⌈2 s / 300 ms⌉ = 35 can time out; the rest are still waiting: unfinished.
    assert!((5..=35).contains(&timeouts), "timeouts {timeouts}");
    assert_eq!(t.error_total(), timeouts, "no other kind of error");
    assert_eq!(r.unfinished, 50 - timeouts);
    assert!(r.unfinished >= 15);
    // Each timeout is in the latency distribution at its abandon time: at least 300 ms
    // after it was sent, so at least 300 ms after it was due.
    // (HDR histograms keep 3 significant digits: `min()` is the bottom of the smallest
    // value's bucket, which for a value of exactly 300 ms lies a little below it.)
    assert_eq!(r.recorder.corrected.len(), timeouts);
    for h in [&r.recorder.corrected, &r.recorder.uncorrected] {
        assert!(
            h.min() >= h.lowest_equivalent(300_000),
            "min {} µs",
            h.min()
        );
    }
}

#[test]
fn garbage_responses_are_protocol_errors() {
    let server = raw_server(Behaviour::Garbage);
    let url = format!("http://{}/", server.addr);
    let r = load(&url).rate("100").duration("1s").connections(2).run();
    let t = &r.recorder.total;
    assert_eq!(t.scheduled, 100);
    assert_eq!(t.completed, 0);
    assert_eq!(errors(&r, ErrorClass::Protocol), 100);
    // Garbage is not a latency.
    assert_eq!(r.recorder.corrected.len(), 0);
}
