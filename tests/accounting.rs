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
    // The cause is said once, on one line.
    assert_eq!(stderr.matches("refused").count(), 1, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
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
    // The send-lag line accounts for every scheduled request: measured on a free
    // connection, waited for a busy one, waited for a reconnect (nearly all here), or not
    // measured. Its counts add up to the scheduled 400.
    let text = ratebench::report::text::render(
        &r,
        &ratebench::report::Summary::of(&r),
        &[],
        Default::default(),
    );
    let line = text.lines().find(|l| l.starts_with("Send lag:")).unwrap();
    let inside = line.split_once('(').unwrap().1.split_once(')').unwrap().0;
    let counts: Vec<u64> = inside
        .split("; ")
        .map(|part| part.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 400, "{line}");
    assert!(line.contains("waited for a reconnect"), "{line}");
}

#[test]
fn every_http1_framing_is_read_to_its_end() {
    // One connection, answers cycling through an interim 100, a chunked body with an
    // extension and a trailer, HTTP/1.0 (closes), a body delimited by the close, and a 204.
    // A client that misreads one either hangs until the timeout, fails the next request on
    // leftover bytes, or keeps a connection the server closed: here every request completes.
    let server = raw_server(Behaviour::Framings);
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("200")
        .duration("1s")
        .connections(1)
        .timeout("1s")
        .run();
    let t = &r.recorder.total;
    assert_eq!((t.scheduled, t.completed, t.error_total()), (200, 200, 0));
    // The preflight connection took no request: answer k went to request k.
    assert_eq!(server.requests.load(Ordering::SeqCst), 200);
    // Two answers in five close the connection; each is followed by a reconnect (the last
    // one, request 198's, by request 199's).
    assert_eq!(r.recorder.reconnects, 80);
    assert_eq!(
        server.accepted.load(Ordering::SeqCst),
        1 + r.recorder.connects
    );
    // Bytes: each final head as sent, plus the body de-chunked (interim answers and chunk
    // framing are not response bytes): 40 of each answer.
    let head = |s: &str| s.find("\r\n\r\n").unwrap() as u64 + 4;
    let per_cycle = (head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n") + 5)
        + (head("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n") + 7)
        + (head(FRAMINGS[2].0) + 3)
        + (head(FRAMINGS[3].0) + 11)
        + head(FRAMINGS[4].0);
    assert_eq!(t.bytes, 40 * per_cycle);
    // By status: the interim 100s are not answers.
    let status = &r.recorder.status;
    assert_eq!((status[100], status[200], status[204]), (0, 160, 40));
}

#[test]
fn a_chunked_answer_split_into_single_bytes_is_read_whole() {
    // Each byte of a chunked answer (chunk-size lines with an extension, data, CRLFs, a
    // trailer) comes in its own segment: every line is split across reads.
    let server = raw_server(Behaviour::Trickle);
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("10")
        .duration("2s")
        .connections(1)
        .timeout("2s")
        .run();
    let t = &r.recorder.total;
    assert_eq!(
        (t.completed, t.error_total(), r.recorder.reconnects),
        (20, 0, 0)
    );
    // Head as sent, plus the 7 body bytes de-chunked ("abc" + "defg").
    let head = FRAMINGS[1].0.find("\r\n\r\n").unwrap() as u64 + 4;
    assert_eq!(t.bytes, 20 * (head + 7));
}

#[test]
fn lenient_but_legal_answers_are_read() {
    // Bare-LF chunk lines, Transfer-Encoding on two lines, an obs-folded header: each a
    // complete 5-byte answer on a kept connection. Misread, the first two wait for a line
    // end or a body end that never comes (every request times out) and the third is a
    // parse error.
    let server = raw_server(Behaviour::OddForms);
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("30")
        .duration("1s")
        .connections(1)
        .timeout("1s")
        .run();
    let t = &r.recorder.total;
    assert_eq!(
        (t.completed, t.error_total(), r.recorder.reconnects),
        (30, 0, 0)
    );
    // The preflight connection and the one kept for every request.
    assert_eq!(server.accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Each answer's head as sent plus its 5 body bytes, de-chunked.
    let bytes: u64 = (0..30)
        .map(|k| {
            let a = ODD_FORMS[k % 3];
            a.find("\r\n\r\n").unwrap() as u64 + 4 + 5
        })
        .sum();
    assert_eq!(t.bytes, bytes);
}

#[test]
fn a_head_of_196_kib_and_500_headers_is_read() {
    // Large Set-Cookie and CSP heads are real: 500 headers in ~196 KiB, then a 2-byte body,
    // on a kept connection. Refused (over 64 KiB, or over 100 headers), each would be a
    // protocol error.
    let server = raw_server(Behaviour::BigHead);
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("20")
        .duration("1s")
        .connections(1)
        .timeout("1s")
        .run();
    let t = &r.recorder.total;
    assert_eq!(
        (t.completed, t.error_total(), r.recorder.reconnects),
        (20, 0, 0)
    );
    let answer = big_head();
    assert!(
        answer.len() > 3 * (64 << 10),
        "three times the old 64 KiB limit"
    );
    assert_eq!(t.bytes, 20 * answer.len() as u64);
}

#[test]
fn a_connection_switched_to_another_protocol_is_not_reused() {
    // Every answer is 101 Switching Protocols, after which the server speaks no more
    // HTTP/1.1 on that connection. Each request is completed with its 101; the next one
    // goes on a new connection — sent on the switched one it would never be answered.
    let server = raw_server(Behaviour::Upgrade);
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("20")
        .duration("1s")
        .connections(1)
        .timeout("1s")
        .run();
    let t = &r.recorder.total;
    assert_eq!((t.completed, t.error_total()), (20, 0));
    assert_eq!(r.recorder.status[101], 20);
    // The preflight connection, then one per request.
    assert_eq!(
        server.accepted.load(std::sync::atomic::Ordering::SeqCst),
        21
    );
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        20
    );
}

#[test]
fn head_answers_have_no_body() {
    // A HEAD answer says Content-Length: 2 and sends no body: waiting for one would time
    // every request out.
    let server = raw_server(Behaviour::HeadOnly);
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("100")
        .duration("1s")
        .connections(1)
        .timeout("1s")
        .flag("-m", "HEAD")
        .run();
    let t = &r.recorder.total;
    assert_eq!(
        (t.completed, t.error_total(), r.recorder.reconnects),
        (100, 0, 0)
    );
    assert!(server.seen.lock().unwrap()[0].starts_with("HEAD / HTTP/1.1\r\n"));
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

#[test]
fn throughput_counts_the_time_a_backlog_took_to_drain() {
    // 5 connections to a server that takes at least 10 ms per answer carry at most
    // 5 / 10 ms = 500 completions a second. At -R1000 for 2 s, 2000 requests are due; the
    // backlog drains during the grace period, so all 2000 complete, the first to the last
    // at least 1999 / 500 ≈ 4.0 s apart. Requests/sec is completions over the time they took:
    // at most 2000 / 3.998 s ≈ 500.3, never the 1000 that dividing by the 2 s window claims.
    let server = serve(|c| c.delay = Duration::from_millis(10));
    let url = format!("http://{}/", server.addr);
    let (r, j) = load(&url)
        .rate("1000")
        .duration("2s")
        .connections(5)
        .run_json();
    let s = ratebench::report::Summary::of(&r);
    assert_eq!(r.recorder.total.completed, 2000);
    assert!(s.completion_secs >= 4.0, "took {} s", s.completion_secs);
    assert!(
        s.completed_rate <= 500.0 + 1.0,
        "{} req/s",
        s.completed_rate
    );
    // Within the 2 s window at most 500/s × 2 s (plus the 5 already on the wire) finished;
    // the rest drained after it, and the report says so.
    let within = j["accounting"]["completed_in_window"].as_u64().unwrap();
    assert!(within <= 1005, "within the window: {within}");
    assert_eq!(s.drained, 2000 - within);
    assert_eq!(
        j["completion_span_s"].as_f64().unwrap(),
        s.completion_secs,
        "the JSON carries the divisor"
    );
    let text = ratebench::report::text::render(&r, &s, &[], Default::default());
    assert!(
        text.contains(&format!(
            "{within} completed within the 2s load window, {} after it",
            2000 - within
        )),
        "{text}"
    );
}

#[test]
fn a_host_with_several_addresses_gets_the_first_that_answers() {
    // `localhost` may resolve to ::1 first while the server listens on 127.0.0.1 only; as
    // wrk and curl do, each address is tried in the resolver's order. Here: a port nothing
    // listens on, then the live server.
    // Port 1 (tcpmux) is below the ephemeral range, so no other test's server can take it
    // meanwhile (a freed ephemeral port can be, and then it answers).
    let refused: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let server = raw_server(Behaviour::Ok);
    let timeout = Duration::from_secs(1);
    let got = ratebench::engine::first_reachable("localhost:x", &[refused, server.addr], timeout)
        .expect("the second address answers");
    assert_eq!(got, server.addr);
    // None answers: one error naming every address tried and what it said.
    let e = ratebench::engine::first_reachable("localhost:x", &[refused, refused], timeout)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no address of localhost:x accepts connections")
            && e.matches(&refused.to_string()).count() == 2,
        "{e}"
    );
}
