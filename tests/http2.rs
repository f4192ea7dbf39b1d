//! HTTP/2 against `serve --http2` on loopback: h2c and h2 over TLS keep the accounting
//! exact; many streams on one connection keep a slow service's latency where it is; the
//! server's stream limit is kept (the rest waits in ratebench's queue, as send lag); a
//! timed-out stream is reset and its connection kept; GOAWAY and streams the server resets
//! are counted, nothing lost; scripts work unchanged, and pipelining is refused.

mod common;
use common::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn stat(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

#[test]
fn h2c_and_h2_over_tls_account_for_every_request() {
    for tls in [false, true] {
        let server = serve(|c| {
            c.http2 = true;
            c.tls = tls;
        });
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}/", server.addr);
        let mut load = load(&url)
            .rate("2000")
            .duration("3s")
            .connections(4)
            .switch("--http2");
        if tls {
            load = load.switch("-k");
        }
        let (r, doc) = load.run_json();
        let t = &r.recorder.total;
        assert_eq!(t.scheduled, 6000, "{scheme}");
        assert_eq!((t.completed, t.error_total(), r.unfinished), (6000, 0, 0));
        assert_eq!(r.recorder.status[200], 6000);
        // Every request reached the server, on the 4 connections (+ the preflight's).
        assert_eq!(stat(&server.stats.requests), 6000);
        assert_eq!(stat(&server.stats.connections), 5);
        let c = &doc["connections"];
        assert_eq!(c["opened"], 4);
        assert_eq!(c["streams_per_connection"], 100);
        // hyper's server announces 200 streams unless told otherwise.
        assert_eq!(c["server_max_streams"], 200);
        let negotiated = c["negotiated"].as_str().unwrap();
        let expected = if tls {
            "HTTP/2 over TLSv1.3"
        } else {
            "HTTP/2 (h2c, cleartext)"
        };
        assert!(negotiated.starts_with(expected), "{negotiated}");
        // The header says what -c counts here.
        let text = ratebench::report::text::header(&r.meta);
        assert!(
            text.contains("1 threads and 4 HTTP/2 connections (up to 100 streams each)"),
            "{text}"
        );
    }
}

#[test]
fn many_streams_on_one_connection_keep_a_slow_service_at_its_latency() {
    // 200 req/s against a 50 ms service: about 10 requests in flight at any time. On one
    // HTTP/2 connection with 32 streams none of them waits, so the corrected p99 is the
    // service time plus loopback, far below twice the service time.
    let server = serve(|c| {
        c.http2 = true;
        c.delay = Duration::from_millis(50);
    });
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("200")
        .duration("2s")
        .connections(1)
        .switch("--http2")
        .flag("--streams", "32")
        .run();
    let t = &r.recorder.total;
    assert_eq!((t.completed, t.error_total()), (400, 0));
    let p99 = ms(r.recorder.corrected.value_at_quantile(0.99));
    assert!((50.0..100.0).contains(&p99), "p99 {p99} ms");
    assert_eq!(r.recorder.queued, 0, "no request waited for a stream");
    // The server really had several at once on the one connection.
    assert!(stat(&server.stats.max_in_flight) >= 8);
    assert_eq!(r.recorder.connects, 1);

    // The same over HTTP/1.1 with one connection: 20 answers a second for 200 asked, so the
    // queue grows all second long and the corrected p99 is most of the run, not 50 ms.
    let h1 = serve(|c| c.delay = Duration::from_millis(50));
    let r = load(&format!("http://{}/", h1.addr))
        .rate("200")
        .duration("1s")
        .connections(1)
        .grace("1s")
        .run();
    let p99 = ms(r.recorder.corrected.value_at_quantile(0.99));
    assert!(p99 > 500.0, "HTTP/1.1 -c1 p99 {p99} ms");
}

#[test]
fn the_servers_stream_limit_is_kept_and_the_rest_waits_as_send_lag() {
    // The server allows 4 streams; we ask for 32. At 100 req/s a 50 ms service needs 5 at
    // once, so the 5th must wait — in ratebench's queue (counted, in the corrected
    // latency), never as a 5th stream the server did not allow.
    let server = serve(|c| {
        c.http2 = true;
        c.max_streams = Some(4);
        c.delay = Duration::from_millis(50);
    });
    let url = format!("http://{}/", server.addr);
    let (r, doc) = load(&url)
        .rate("100")
        .duration("2s")
        .connections(1)
        .switch("--http2")
        .flag("--streams", "32")
        .run_json();
    let t = &r.recorder.total;
    assert_eq!((t.scheduled, t.completed, t.error_total()), (200, 200, 0));
    assert_eq!(
        stat(&server.stats.max_in_flight),
        4,
        "never more than the limit"
    );
    assert!(r.recorder.queued > 0, "requests waited for a stream");
    assert_eq!(doc["accounting"]["queued"], r.recorder.queued);
    assert_eq!(doc["connections"]["server_max_streams"], 4);
    let negotiated = doc["connections"]["negotiated"].as_str().unwrap();
    assert!(
        negotiated.contains("server allows 4 streams"),
        "{negotiated}"
    );
    // Capacity 4 / 50 ms = 80 req/s for 100 asked: the warning names the server's limit.
    let warnings = doc["warnings"].to_string();
    assert!(
        warnings.contains("server's limit of 4 streams"),
        "{warnings}"
    );
}

#[test]
fn a_timed_out_stream_is_reset_and_its_connection_kept() {
    // A 5 s service and a 100 ms timeout: every request times out. Over HTTP/2 the stream
    // is reset (RST_STREAM), so the server drops it: at 50 req/s about 50 × 0.1 s + 1 = 6
    // are in flight at the server at any time (unreset, all 100 would be by the end), and
    // the one connection stays.
    let server = serve(|c| {
        c.http2 = true;
        c.delay = Duration::from_secs(5);
    });
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("50")
        .duration("2s")
        .connections(1)
        .timeout("100ms")
        .switch("--http2")
        .run();
    let t = &r.recorder.total;
    assert_eq!(
        t.errors[ratebench::outcome::ErrorClass::Timeout.index()],
        100
    );
    assert_eq!((r.recorder.connects, r.recorder.reconnects), (1, 0));
    let most = stat(&server.stats.max_in_flight);
    assert!(most <= 12, "{most} requests in flight at the server");
}

#[test]
fn goaway_and_server_resets_are_counted_and_nothing_is_lost() {
    // The server resets 2% of streams (RST_STREAM INTERNAL_ERROR) and sends GOAWAY on
    // every connection after 50 requests; ratebench reconnects and goes on.
    let server = serve(|c| {
        c.http2 = true;
        c.goaway_after = Some(50);
        c.reset = 0.02;
        c.delay = Duration::from_millis(1);
    });
    let url = format!("http://{}/", server.addr);
    let (r, doc) = load(&url)
        .rate("1000")
        .duration("2s")
        .connections(2)
        .switch("--http2")
        .run_json();
    let t = &r.recorder.total;
    assert_eq!(t.scheduled, 2000);
    assert_eq!(r.unfinished, 0);
    let answered = stat(&server.stats.requests) - stat(&server.stats.resets);
    // Every request the server answered was completed; every one it reset is an error.
    assert_eq!(t.completed, answered);
    let protocol = t.errors[ratebench::outcome::ErrorClass::Protocol.index()];
    assert!(protocol >= stat(&server.stats.resets));
    assert_eq!(t.completed + t.error_total(), 2000);
    // 2% of what reached the server was reset, exactly (⌊n·0.02⌋ of n).
    let received = stat(&server.stats.requests);
    assert_eq!(
        stat(&server.stats.resets),
        (received as f64 * 0.02).floor() as u64
    );
    // Each GOAWAY cost a connection; every connection the server accepted but the
    // preflight's is one ratebench opened and counted.
    let goaways = stat(&server.stats.goaways);
    assert!(goaways >= 2000 / 50 - 2, "{goaways} GOAWAYs");
    assert_eq!(r.recorder.connects, stat(&server.stats.connections) - 1);
    assert_eq!(doc["connections"]["reconnects"], r.recorder.reconnects);
    assert!(r.recorder.reconnects >= goaways - 2);
}

#[test]
fn scripts_run_unchanged_over_http2_and_pipelining_is_refused() {
    // A wrk script POSTing a streamed chat request: the body must arrive whole (the
    // server streams only when it reads "stream": true), and the SSE tokens are counted.
    let server = serve(|c| {
        c.http2 = true;
        c.llm.ttft = (Duration::from_millis(5), Duration::from_millis(5));
        c.llm.token_interval = (Duration::from_millis(1), Duration::from_millis(1));
        c.llm.tokens = (10, 10);
    });
    let dir = tmpdir("http2-script");
    let chat = dir.join("chat.lua");
    std::fs::write(
        &chat,
        r#"
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Connection"] = "keep-alive"
wrk.body = '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
responses = 0
response = function(status, headers, body) responses = responses + 1 end
"#,
    )
    .unwrap();
    let url = format!("http://{}/", server.addr);
    let (r, doc) = load(&url)
        .rate("100")
        .duration("1s")
        .connections(1)
        .switch("--http2")
        .script(chat.to_str().unwrap())
        .run_json();
    let t = &r.recorder.total;
    assert_eq!((t.completed, t.error_total()), (100, 0));
    assert_eq!(doc["streaming"]["streams"], 100);
    assert_eq!(doc["streaming"]["tokens"], 1000);

    // Two requests in one string: no pipelining over HTTP/2, exit 2 before traffic.
    let pipe = dir.join("pipe.lua");
    std::fs::write(
        &pipe,
        r#"request = function() return wrk.format("GET", "/a") .. wrk.format("GET", "/b") end"#,
    )
    .unwrap();
    let before = stat(&server.stats.requests);
    let out = load(&url)
        .rate("100")
        .duration("1s")
        .switch("--http2")
        .script(pipe.to_str().unwrap())
        .run_bin(Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("pipelining"), "{err}");
    assert_eq!(stat(&server.stats.requests), before, "no traffic");
}

#[test]
fn a_server_that_does_not_speak_http2_stops_the_run_before_traffic() {
    // Over TLS, ALPN offers only h2 and an HTTP/1.1-only server refuses; in cleartext the
    // h2c preface meets an HTTP/1.1 server. Both: exit 1, one line, nothing sent.
    for tls in [true, false] {
        let server = serve(|c| c.tls = tls);
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}/", server.addr);
        let out = load(&url)
            .rate("100")
            .duration("1s")
            .switch("--http2")
            .switch("-k")
            .run_bin(Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{scheme}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("HTTP/2"), "{err}");
        assert_eq!(stat(&server.stats.requests), 0);
    }
    // --streams without --http2 is a usage error.
    let out = load("http://127.0.0.1:9/")
        .rate("10")
        .flag("--streams", "8")
        .run_bin(Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http2"));
}

/// An in-process hyper HTTP/2 server that answers 200 only when the request carried an
/// `x-big` header of `header` bytes and a body of `body` bytes (else 400), with a response
/// of `reply` body bytes and an `x-big-response` header of 30,000 bytes.
fn big_h2_server(header: usize, body: usize, reply: usize) -> std::net::SocketAddr {
    use http_body_util::BodyExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = bytes::Bytes::from(vec![b'r'; reply]);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let reply = reply.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let reply = reply.clone();
                            async move {
                                let got_header = req.headers().get("x-big").map_or(0, |v| v.len());
                                let got_body = match req.into_body().collect().await {
                                    Ok(b) => b.to_bytes().len(),
                                    Err(_) => 0,
                                };
                                let mut resp =
                                    hyper::Response::new(http_body_util::Full::new(reply));
                                if got_header != header || got_body != body {
                                    *resp.status_mut() = hyper::StatusCode::BAD_REQUEST;
                                }
                                resp.headers_mut()
                                    .insert("x-big-response", "b".repeat(30_000).parse().unwrap());
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .max_header_list_size(1 << 20)
                    // The protocol's default windows (hyper's own are wider): a 200,000-byte
                    // body needs the server's WINDOW_UPDATEs to get through.
                    .initial_stream_window_size(65_535)
                    .initial_connection_window_size(65_535)
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
                });
            }
        });
    });
    addr
}

#[test]
fn heads_and_bodies_larger_than_a_frame_and_a_window_arrive_whole_both_ways() {
    // Request: a 20,000-byte header (more than one 16 KiB frame: HEADERS + CONTINUATION)
    // and a 200,000-byte body (three times the server's 65,535-byte initial window: the
    // rest waits for its WINDOW_UPDATEs). Response: a 30,000-byte header (the server's
    // CONTINUATION) and a 3,000,000-byte body (three times the 1 MiB stream window this
    // client announces; 20 of them are 60 MB, over the 16 MiB connection window): every
    // window must be credited back or the run stalls into timeouts.
    let addr = big_h2_server(20_000, 200_000, 3_000_000);
    let dir = tmpdir("http2-big");
    let body = dir.join("body.bin");
    std::fs::write(&body, vec![b'q'; 200_000]).unwrap();
    let (r, _) = load(&format!("http://{addr}/upload"))
        .rate("20")
        .duration("1s")
        .connections(1)
        .timeout("5s")
        .switch("--http2")
        .flag("-m", "POST")
        .flag("--body-file", body.to_str().unwrap())
        .flag("-H", &format!("x-big: {}", "a".repeat(20_000)))
        .run_json();
    let t = &r.recorder.total;
    assert_eq!((t.completed, t.error_total()), (20, 0));
    // All 200: the server saw the whole header and the whole body every time.
    assert_eq!(
        r.recorder.status[200], 20,
        "400s: {}",
        r.recorder.status[400]
    );
    // Body bytes exact; each head is the 30,000-byte header plus a few short ones.
    assert!(t.bytes >= 20 * 3_030_000, "{}", t.bytes);
    assert!(t.bytes < 20 * (3_030_000 + 1_000), "{}", t.bytes);
    assert_eq!((r.recorder.connects, r.recorder.reconnects), (1, 0));
}

#[test]
fn a_request_goes_out_when_due_not_at_the_next_wake_up() {
    // 500 req/s on one connection against an instant service: due times 2 ms apart, so the
    // thread blocks between them. Over HTTP/2 the connection's own task writes the frames
    // the slots queued; if it only ran after the thread's next block, every request would
    // leave a whole interval late and the corrected p50 would be 2 ms or more. Sent when
    // due, the p50 is loopback plus the service: well under half the interval.
    let server = serve(|c| c.http2 = true);
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("500")
        .duration("2s")
        .connections(1)
        .switch("--http2")
        .run();
    assert_eq!(r.recorder.total.completed, 1000);
    let p50 = ms(r.recorder.corrected.value_at_quantile(0.5));
    assert!(p50 < 1.0, "corrected p50 {p50} ms at 2 ms between requests");
}

#[test]
fn a_server_breaking_the_protocol_mid_run_is_counted_and_the_run_goes_on() {
    // A raw server that completes the HTTP/2 handshake (its SETTINGS) and then answers the
    // first request on each connection with something that is not HTTP/2: on odd
    // connections a frame header announcing 16 MiB (over the 16 KiB frame limit), on even
    // ones a HEADERS frame whose HPACK block names a table entry that does not exist. Each
    // request fails as a protocol error, its connection is dropped, the next request
    // reconnects; nothing is lost and the run is not stopped.
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf); // the preface and SETTINGS
                let _ = conn.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS, empty
                                                                      // Wait for a HEADERS frame (type 1) among what the client sends.
                let mut seen = Vec::new();
                while !seen.windows(2).any(|w| w == [1, 5] || w == [1, 4]) {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(k) => seen.extend_from_slice(&buf[..k]),
                    }
                }
                let bad: &[u8] = if n % 2 == 1 {
                    &[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]
                } else {
                    // HEADERS, END_HEADERS|END_STREAM, stream 1: indexed field 126 (no table).
                    &[0, 0, 2, 1, 5, 0, 0, 0, 1, 0xff, 0x3f]
                };
                let _ = conn.write_all(bad);
                let _ = conn.read(&mut buf); // until the client drops the connection
            });
        }
    });
    let (r, doc) = load(&format!("http://{addr}/"))
        .rate("20")
        .duration("1s")
        .connections(1)
        .switch("--http2")
        .run_json();
    let t = &r.recorder.total;
    assert_eq!(t.scheduled, 20);
    assert_eq!(r.unfinished, 0);
    assert_eq!(t.completed, 0);
    assert_eq!(
        t.errors[ratebench::outcome::ErrorClass::Protocol.index()],
        20,
        "{:?}",
        t.errors
    );
    // One connection per request (the first one opened before the start).
    assert_eq!(r.recorder.connects, 20);
    assert_eq!(doc["accounting"]["scheduled"], 20);
}
