//! HTTP/2 as real servers speak it on a bad day, and as hostile ones break it: refused
//! streams and GOAWAY sent again (once), stream limits kept at every moment, malformed
//! answers as stream errors with their cause, bounded header lists, and no hang or panic
//! whatever the server sends. Each against a raw server (`common::h2`) that counts what it
//! received, so the numbers are checked against the server's own view.

mod common;

use common::h2::*;
use common::*;
use ratebench::outcome::{ErrorClass, Retry};
use ratebench::run::RunResult;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn h2(addr: std::net::SocketAddr) -> Load {
    load(&format!("http://{addr}/")).switch("--http2")
}

fn errors(r: &RunResult, class: ErrorClass) -> u64 {
    r.recorder.total.errors[class.index()]
}

/// How often `cause` was given for failures of `class`.
fn cause(r: &RunResult, class: ErrorClass, cause: &str) -> u64 {
    r.recorder.causes[class.index()]
        .iter()
        .find(|(c, _)| c == cause)
        .map_or(0, |(_, n)| *n)
}

/// Serves requests one by one: `answer` decides what each stream gets.
fn serve_each(peer: &mut Peer, settings: &[(u16, u32)], mut answer: impl FnMut(&mut Peer, u32)) {
    if !peer.handshake(settings) {
        return;
    }
    loop {
        match peer.next(Duration::from_secs(30)) {
            Event::Request(id, _) => answer(peer, id),
            Event::Closed => return,
            _ => {}
        }
    }
}

#[test]
fn refused_streams_are_sent_again_once_and_counted() {
    // The server refuses every third stream it sees (REFUSED_STREAM: not processed,
    // RFC 9113 §8.7) and answers the rest. One request at a time: each refused request is
    // sent again on the next stream, which is answered.
    let answered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let (a, f) = (answered.clone(), refused.clone());
    let server = h2_server(move |peer| {
        let mut seen = 0;
        serve_each(peer, &[], |peer, id| {
            seen += 1;
            if seen % 3 == 1 {
                f.fetch_add(1, Ordering::SeqCst);
                peer.reset(id, REFUSED_STREAM);
            } else {
                a.fetch_add(1, Ordering::SeqCst);
                peer.respond(id, b"ok");
            }
        })
    });
    let (r, doc) = h2(server.addr)
        .rate("40")
        .duration("1s")
        .connections(1)
        .run_json();
    let t = &r.recorder.total;
    assert_eq!(t.scheduled, 40);
    assert_eq!(
        t.completed, 40,
        "errors {:?} {:?}",
        t.errors, r.recorder.causes
    );
    assert_eq!(answered.load(Ordering::SeqCst), 40);
    let refused_n = refused.load(Ordering::SeqCst);
    assert!(refused_n >= 13, "refused {refused_n}");
    assert_eq!(r.recorder.retried[Retry::RefusedStream.index()], refused_n);
    assert_eq!(doc["accounting"]["retried"]["refused_stream"], refused_n);
    assert_eq!(doc["accounting"]["retried"]["total"], refused_n);
    // The same server with --no-retry: each refusal is an error, with its cause.
    answered.store(0, Ordering::SeqCst);
    refused.store(0, Ordering::SeqCst);
    let r = h2(server.addr)
        .rate("40")
        .duration("1s")
        .connections(1)
        .switch("--no-retry")
        .run();
    let refused_n = refused.load(Ordering::SeqCst);
    assert_eq!(errors(&r, ErrorClass::Protocol), refused_n);
    assert_eq!(
        cause(&r, ErrorClass::Protocol, "RST_STREAM REFUSED_STREAM"),
        refused_n
    );
    assert_eq!(r.recorder.total.completed, answered.load(Ordering::SeqCst));
    assert_eq!(r.recorder.retried, [0; 3]);
}

#[test]
fn a_second_refusal_of_the_same_request_is_an_error() {
    // Every stream refused: each request is sent twice (once again after the first
    // refusal), then counted as an error — never a third time.
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let server = h2_server(move |peer| {
        serve_each(peer, &[], |peer, id| {
            s.fetch_add(1, Ordering::SeqCst);
            peer.reset(id, REFUSED_STREAM);
        })
    });
    let r = h2(server.addr)
        .rate("20")
        .duration("1s")
        .connections(1)
        .run();
    assert_eq!(errors(&r, ErrorClass::Protocol), 20);
    assert_eq!(r.recorder.retried[Retry::RefusedStream.index()], 20);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        40,
        "each request sent exactly twice"
    );
}

#[test]
fn streams_above_a_goaway_are_sent_again_on_a_new_connection() {
    // Each connection answers four streams; on the fifth the server sends GOAWAY with the
    // fourth as its last stream (the fifth was not processed), then closes. The fifth goes
    // again on a new connection.
    let answered = Arc::new(AtomicU64::new(0));
    let goaways = Arc::new(AtomicU64::new(0));
    let (a, g) = (answered.clone(), goaways.clone());
    let server = h2_server(move |peer| {
        let mut n = 0;
        let mut last = 0;
        if !peer.handshake(&[]) {
            return;
        }
        loop {
            match peer.next(Duration::from_secs(30)) {
                Event::Request(id, _) => {
                    n += 1;
                    if n == 5 {
                        g.fetch_add(1, Ordering::SeqCst);
                        peer.goaway(last, 0);
                        std::thread::sleep(Duration::from_millis(50));
                        return;
                    }
                    a.fetch_add(1, Ordering::SeqCst);
                    peer.respond(id, b"ok");
                    last = id;
                }
                Event::Closed => return,
                _ => {}
            }
        }
    });
    let r = h2(server.addr)
        .rate("50")
        .duration("1s")
        .connections(1)
        .run();
    let t = &r.recorder.total;
    assert_eq!(
        t.completed, 50,
        "errors {:?} {:?}",
        t.errors, r.recorder.causes
    );
    assert_eq!(answered.load(Ordering::SeqCst), 50);
    let g = goaways.load(Ordering::SeqCst);
    assert!(g >= 10, "{g} GOAWAYs");
    assert_eq!(r.recorder.retried[Retry::GoAway.index()], g);
}

/// A server answering each request after `delay`, counting the most streams open at once
/// (`max_open`) and those the client opened over the limit it had acknowledged
/// (`over`): refused, as servers do.
struct Limited {
    max_open: AtomicUsize,
    over: AtomicU64,
    answered: AtomicU64,
}

fn limited_server(
    delay: Duration,
    initial: u32,
    change: impl Fn(&mut Peer, u64, Instant) -> Option<u32> + Send + Sync + 'static,
) -> (H2Server, Arc<Limited>) {
    let stats = Arc::new(Limited {
        max_open: AtomicUsize::new(0),
        over: AtomicU64::new(0),
        answered: AtomicU64::new(0),
    });
    let st = stats.clone();
    let server = h2_server(move |peer| {
        if !peer.handshake(&[(MAX_CONCURRENT_STREAMS, initial)]) {
            return;
        }
        let t0 = Instant::now();
        // The limit in force (acknowledged), and one announced but not yet acknowledged.
        let mut limit = initial as usize;
        let mut pending: Option<u32> = None;
        let mut open: Vec<(u32, Instant)> = Vec::new();
        let mut received = 0u64;
        loop {
            let now = Instant::now();
            while let Some(&(id, due)) = open.first() {
                if due > now {
                    break;
                }
                peer.respond(id, b"ok");
                st.answered.fetch_add(1, Ordering::SeqCst);
                open.remove(0);
            }
            if pending.is_none() {
                if let Some(new) = change(peer, received, t0) {
                    peer.settings(&[(MAX_CONCURRENT_STREAMS, new)]);
                    pending = Some(new);
                }
            }
            let wait = open
                .first()
                .map_or(Duration::from_millis(5), |(_, due)| {
                    due.saturating_duration_since(now)
                })
                .min(Duration::from_millis(5));
            match peer.next(wait) {
                Event::Request(id, _) => {
                    received += 1;
                    if open.len() >= limit {
                        st.over.fetch_add(1, Ordering::SeqCst);
                        peer.reset(id, REFUSED_STREAM);
                        continue;
                    }
                    open.push((id, Instant::now() + delay));
                    st.max_open.fetch_max(open.len(), Ordering::SeqCst);
                }
                Event::SettingsAck => {
                    if let Some(new) = pending.take() {
                        limit = new as usize;
                    }
                }
                Event::Reset(id) => open.retain(|(i, _)| *i != id),
                Event::Closed => return,
                _ => {}
            }
        }
    });
    (server, stats)
}

#[test]
fn a_stream_limit_lowered_mid_run_is_kept_at_once() {
    // The server allows 100 streams, answers each after 100 ms, and after 20 requests
    // lowers its limit to 4. At 60 req/s about 6 are in flight: from the SETTINGS on,
    // never more than 4 may be — the rest wait (queued), none is refused.
    let (server, st) = limited_server(Duration::from_millis(100), 100, |_, received, _| {
        (received >= 20).then_some(4)
    });
    let (r, doc) = h2(server.addr)
        .rate("60")
        .duration("2s")
        .connections(1)
        .flag("--streams", "100")
        .grace("5s")
        .run_json();
    let t = &r.recorder.total;
    assert_eq!(
        st.over.load(Ordering::SeqCst),
        0,
        "streams over the acknowledged limit"
    );
    assert_eq!(
        t.completed, 120,
        "errors {:?} {:?}",
        t.errors, r.recorder.causes
    );
    assert_eq!(st.answered.load(Ordering::SeqCst), 120);
    assert_eq!(r.recorder.stream_limit, Some((4, 4)));
    assert_eq!(doc["connections"]["server_max_streams_last"], 4);
    // With the limit at 4 and 100 ms per answer, 40/s got through: the rest queued.
    assert!(r.recorder.queued > 0);
}

#[test]
fn no_stream_opens_while_the_limit_is_zero() {
    // SETTINGS_MAX_CONCURRENT_STREAMS 0 for the first second, then 100: the requests of
    // that second wait (none is sent, none refused) and go once it rises.
    let (server, st) = limited_server(Duration::from_millis(1), 0, |_, _, t0| {
        (t0.elapsed() >= Duration::from_secs(1)).then_some(100)
    });
    let r = h2(server.addr)
        .rate("50")
        .duration("2s")
        .connections(1)
        .grace("5s")
        .run();
    let t = &r.recorder.total;
    assert_eq!(st.over.load(Ordering::SeqCst), 0);
    assert_eq!(
        t.completed, 100,
        "errors {:?} {:?}",
        t.errors, r.recorder.causes
    );
    // The first second's requests waited ~1 s: the corrected latency says so.
    assert!(r.recorder.corrected.max() >= 500_000);
}

#[test]
fn a_limit_that_stays_zero_times_requests_out_unsent() {
    let (server, st) = limited_server(Duration::from_millis(1), 0, |_, _, _| None);
    let r = h2(server.addr)
        .rate("20")
        .duration("1s")
        .connections(1)
        .timeout("300ms")
        .grace("2s")
        .run();
    assert_eq!(st.over.load(Ordering::SeqCst), 0);
    let timeouts = errors(&r, ErrorClass::Timeout);
    assert_eq!(timeouts + r.unfinished, 20);
    assert!(timeouts > 0);
    assert_eq!(
        cause(
            &r,
            ErrorClass::Timeout,
            "no room under the server's SETTINGS_MAX_CONCURRENT_STREAMS"
        ),
        timeouts
    );
    assert_eq!(r.recorder.total.sent, 0, "nothing went on the wire");
}

#[test]
fn malformed_statuses_are_stream_errors_and_the_connection_stays() {
    // Six bad answers in turn with six good ones, on one connection: `2000`, `abc`, `99`,
    // `101`, two `:status`, and a 103 that ends the stream. Each bad one is a protocol
    // error with its cause; no status is invented (no 999); the connection is kept.
    let bad: [&[(&str, &str)]; 6] = [
        &[(":status", "2000")],
        &[(":status", "abc")],
        &[(":status", "99")],
        &[(":status", "101")],
        &[(":status", "200"), (":status", "204")],
        &[(":status", "103")],
    ];
    let server = h2_server(move |peer| {
        let mut n = 0;
        serve_each(peer, &[], |peer, id| {
            n += 1;
            if n % 2 == 0 {
                peer.respond(id, b"ok");
            } else {
                let fields = bad[(n / 2) % bad.len()];
                peer.send(HEADERS, END_HEADERS | END_STREAM, id, &head_block(fields));
            }
        })
    });
    let r = h2(server.addr)
        .rate("48")
        .duration("1s")
        .connections(1)
        .run();
    let t = &r.recorder.total;
    assert_eq!(t.completed, 24);
    assert_eq!(r.recorder.status[200], 24);
    assert_eq!(r.recorder.status[999], 0);
    assert_eq!(errors(&r, ErrorClass::Protocol), 24);
    assert_eq!(cause(&r, ErrorClass::Protocol, "a malformed :status"), 16);
    assert_eq!(
        cause(&r, ErrorClass::Protocol, "a response head with two :status"),
        4
    );
    assert_eq!(
        cause(
            &r,
            ErrorClass::Protocol,
            "an interim (1xx) head that ends the stream"
        ),
        4
    );
    assert_eq!(r.recorder.connects, 1, "one connection for the whole run");
}

#[test]
fn a_body_shorter_than_its_content_length_is_an_error_and_head_answers_are_not() {
    // content-length 100 with 50 bytes of DATA: truncated, a protocol error. A HEAD's
    // answer says content-length 100 and sends no DATA: complete.
    let server = h2_server(move |peer| {
        serve_each(peer, &[], |peer, id| {
            let block = head_block(&[(":status", "200"), ("content-length", "100")]);
            peer.send(HEADERS, END_HEADERS, id, &block);
            peer.send(DATA, END_STREAM, id, &[b'x'; 50]);
        })
    });
    let r = h2(server.addr)
        .rate("20")
        .duration("1s")
        .connections(1)
        .run();
    assert_eq!(errors(&r, ErrorClass::Protocol), 20);
    assert_eq!(
        cause(
            &r,
            ErrorClass::Protocol,
            "a content-length the DATA does not match"
        ),
        20
    );
    let server = h2_server(move |peer| {
        serve_each(peer, &[], |peer, id| {
            let block = head_block(&[(":status", "200"), ("content-length", "100")]);
            peer.send(HEADERS, END_HEADERS | END_STREAM, id, &block);
        })
    });
    let r = h2(server.addr)
        .rate("20")
        .duration("1s")
        .connections(1)
        .flag("--method", "HEAD")
        .run();
    assert_eq!(r.recorder.total.completed, 20);
}

#[test]
fn data_after_end_stream_is_not_counted_as_more_response() {
    // A whole answer (END_STREAM), then more DATA on the same stream: the answer counts
    // with its own bytes only; the connection stays.
    let server = h2_server(move |peer| {
        serve_each(peer, &[], |peer, id| {
            peer.respond(id, &[b'a'; 100]);
            peer.send(DATA, 0, id, &[b'b'; 500]);
        })
    });
    let r = h2(server.addr)
        .rate("20")
        .duration("1s")
        .connections(1)
        .run();
    let t = &r.recorder.total;
    assert_eq!(t.completed + errors(&r, ErrorClass::Protocol), 20);
    // Head (~44 bytes as HTTP/1.1 would send it) plus 100 of body each, never the 500.
    assert!(
        t.bytes <= 20 * 200,
        "{} bytes for 20 answers of 100",
        t.bytes
    );
    assert_eq!(r.recorder.connects, 1);
}

#[test]
fn a_header_list_that_decodes_past_its_bound_is_a_stream_error() {
    // 4 KiB added to the HPACK table once, then referenced 4,000 times in one block of
    // ~4 KB: 16 MB decoded. Over SETTINGS_MAX_HEADER_LIST_SIZE (256 KiB): a stream error,
    // and memory does not grow with it.
    let server = h2_server(move |peer| {
        serve_each(peer, &[], |peer, id| {
            let mut block = head_block(&[(":status", "200")]);
            // Literal with incremental indexing, new name: "x-big: <4000 x>".
            block.push(0x40);
            string(&mut block, b"x-big");
            string(&mut block, &[b'x'; 4000]);
            block.extend(std::iter::repeat_n(0xbe, 4000)); // indexed: dynamic entry 62
            let mut at = 0;
            while at < block.len() {
                let n = (block.len() - at).min(16_384);
                let (kind, flags) = match (at == 0, at + n == block.len()) {
                    (true, true) => (HEADERS, END_HEADERS | END_STREAM),
                    (true, false) => (HEADERS, END_STREAM),
                    (false, true) => (CONTINUATION, END_HEADERS),
                    (false, false) => (CONTINUATION, 0),
                };
                peer.send(kind, flags, id, &block[at..at + n]);
                at += n;
            }
        })
    });
    let r = h2(server.addr)
        .rate("20")
        .duration("1s")
        .connections(1)
        .run();
    assert_eq!(errors(&r, ErrorClass::Protocol), 20);
    assert_eq!(
        cause(&r, ErrorClass::Protocol, "a header list over 256 KiB"),
        20
    );
    assert!(
        r.recorder.total.bytes < 1 << 20,
        "{} bytes",
        r.recorder.total.bytes
    );
    assert_eq!(
        r.recorder.connects, 1,
        "a stream error: the connection stays"
    );
}

/// Hostile servers: each misbehaviour ends in exact accounting with the right class and
/// cause, within the timeout, without a panic.
fn hostile(
    what: &str,
    serve: impl Fn(&mut Peer) + Send + Sync + 'static,
    check: impl Fn(&RunResult),
) {
    let server = h2_server(serve);
    let t0 = Instant::now();
    let r = h2(server.addr)
        .rate("10")
        .duration("1s")
        .connections(1)
        .timeout("1s")
        .flag("--connect-timeout", "1s")
        .grace("3s")
        .run();
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "{what}: took {:?}",
        t0.elapsed()
    );
    let t = &r.recorder.total;
    assert_eq!(t.scheduled, 10, "{what}");
    check(&r);
}

#[test]
fn hostile_servers_are_survived_and_explained() {
    // WINDOW_UPDATE taking the connection window over 2^31-1: a connection error.
    hostile(
        "window overflow",
        |peer| {
            serve_each(peer, &[], |peer, _| {
                peer.send(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes());
            })
        },
        |r| {
            assert_eq!(errors(r, ErrorClass::Protocol), 10);
            assert_eq!(cause(r, ErrorClass::Protocol, "window over 2^31-1"), 10);
        },
    );
    // A zero WINDOW_UPDATE increment on a stream: that stream's error.
    hostile(
        "zero increment",
        |peer| {
            serve_each(peer, &[], |peer, id| {
                peer.send(WINDOW_UPDATE, 0, id, &0u32.to_be_bytes());
            })
        },
        |r| {
            assert_eq!(errors(r, ErrorClass::Protocol), 10);
            assert_eq!(cause(r, ErrorClass::Protocol, "a WINDOW_UPDATE of 0"), 10);
        },
    );
    // Two GOAWAYs (the graceful pattern: 2^31-1 first, then the real last stream), then
    // answers to what was below it: every request completes.
    hostile(
        "two GOAWAYs",
        |peer| {
            serve_each(peer, &[], |peer, id| {
                peer.goaway(0x7fff_ffff, 0);
                peer.respond(id, b"ok");
                peer.goaway(id, 0);
            })
        },
        |r| assert_eq!(r.recorder.total.completed, 10, "{:?}", r.recorder.causes),
    );
    // An HPACK dynamic table size update to 0 and back to 4096 at the start of a block.
    hostile(
        "table size 0 and back",
        |peer| {
            serve_each(peer, &[], |peer, id| {
                let mut block = vec![0x20];
                integer(&mut block, 5, 0x20, 4096);
                block.extend(head_block(&[(":status", "200"), ("content-length", "2")]));
                peer.send(HEADERS, END_HEADERS, id, &block);
                peer.send(DATA, END_STREAM, id, b"ok");
            })
        },
        |r| assert_eq!(r.recorder.total.completed, 10, "{:?}", r.recorder.causes),
    );
    // A frame larger than the frame size the client allows: a connection error.
    hostile(
        "frame over 16 KiB",
        |peer| {
            serve_each(peer, &[], |peer, id| {
                peer.send(DATA, END_STREAM, id, &vec![0; 20_000]);
            })
        },
        |r| {
            assert_eq!(errors(r, ErrorClass::Protocol), 10);
            assert_eq!(cause(r, ErrorClass::Protocol, "a frame over 16 KiB"), 10);
        },
    );
    // 500 headers in one head (over CONTINUATION frames): read.
    hostile(
        "500 headers",
        |peer| {
            serve_each(peer, &[], |peer, id| {
                let names: Vec<String> = (0..500).map(|i| format!("x-h{i}")).collect();
                let mut fields = vec![(":status", "200"), ("content-length", "0")];
                fields.extend(names.iter().map(|n| (n.as_str(), "value")));
                let block = head_block(&fields);
                let (a, b) = block.split_at(block.len() / 2);
                peer.send(HEADERS, END_STREAM, id, a);
                peer.send(CONTINUATION, END_HEADERS, id, b);
            })
        },
        |r| assert_eq!(r.recorder.total.completed, 10, "{:?}", r.recorder.causes),
    );
    // A 1 MB head: over the 256 KiB bound, a protocol error with its cause.
    hostile(
        "1 MB head",
        |peer| {
            serve_each(peer, &[], |peer, id| {
                let value = "v".repeat(1000);
                let names: Vec<String> = (0..1000).map(|i| format!("x-h{i}")).collect();
                let mut fields = vec![(":status", "200")];
                fields.extend(names.iter().map(|n| (n.as_str(), value.as_str())));
                let block = head_block(&fields);
                let chunks: Vec<&[u8]> = block.chunks(16_000).collect();
                for (i, c) in chunks.iter().enumerate() {
                    let last = i + 1 == chunks.len();
                    let kind = if i == 0 { HEADERS } else { CONTINUATION };
                    let flags =
                        if last { END_HEADERS } else { 0 } | if i == 0 { END_STREAM } else { 0 };
                    peer.send(kind, flags, id, c);
                }
            })
        },
        |r| {
            assert_eq!(errors(r, ErrorClass::Protocol), 10);
            assert_eq!(
                cause(r, ErrorClass::Protocol, "a response head over 256 KiB"),
                10
            );
        },
    );
}

#[test]
fn reconnects_to_a_server_gone_wrong_fail_as_connect_errors_with_their_cause() {
    // The check before the run and the first connection are fine; that connection goes
    // away after 3 answers (GOAWAY, close), and every later connection misbehaves at the
    // handshake: one never sends SETTINGS (the connect times out), one answers the h2c
    // preface in HTTP/1.1. Each request then is a connect error with its cause, within
    // --connect-timeout, and nothing is lost.
    for (what, cause_want) in [
        ("silent", "no connection within --connect-timeout"),
        (
            "http/1.1",
            "the server's first frame was not SETTINGS: is it HTTP/2?",
        ),
    ] {
        let server = h2_server(move |peer| {
            if peer.index >= 2 {
                let mut preface = [0u8; 24];
                let _ = std::io::Read::read_exact(&mut peer.conn, &mut preface);
                if what == "silent" {
                    std::thread::sleep(Duration::from_secs(3));
                } else {
                    let _ = std::io::Write::write_all(
                        &mut peer.conn,
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                }
                return;
            }
            let mut n = 0;
            serve_each(peer, &[], |peer, id| {
                n += 1;
                peer.respond(id, b"ok");
                if n == 3 {
                    peer.goaway(id, 0);
                }
            })
        });
        let t0 = Instant::now();
        let r = h2(server.addr)
            .rate("10")
            .duration("1s")
            .connections(1)
            .flag("--connect-timeout", "300ms")
            .timeout("1s")
            .grace("3s")
            .run();
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "{what}: {:?}",
            t0.elapsed()
        );
        let t = &r.recorder.total;
        assert_eq!(
            t.completed, 3,
            "{what}: {:?} {:?}",
            t.errors, r.recorder.causes
        );
        let connect = errors(&r, ErrorClass::Connect);
        assert_eq!(connect + r.unfinished, 7, "{what}: {:?}", t.errors);
        assert!(connect > 0, "{what}");
        assert_eq!(
            cause(&r, ErrorClass::Connect, cause_want),
            connect,
            "{what}: {:?}",
            r.recorder.causes
        );
    }
}

#[test]
fn initial_window_lowered_to_zero_and_raised_mid_upload() {
    // The server sets SETTINGS_INITIAL_WINDOW_SIZE 0 before the first request's body, so
    // nothing of it may be sent; 200 ms later it raises the window: every body arrives
    // whole and is answered.
    let bodies = Arc::new(Mutex::new(HashMap::<u32, usize>::new()));
    let b = bodies.clone();
    let server = h2_server(move |peer| {
        if !peer.handshake(&[(INITIAL_WINDOW_SIZE, 0)]) {
            return;
        }
        let t0 = Instant::now();
        let mut raised = false;
        loop {
            if !raised && t0.elapsed() > Duration::from_millis(200) {
                peer.settings(&[(INITIAL_WINDOW_SIZE, 65_535)]);
                raised = true;
            }
            match peer.next(Duration::from_millis(10)) {
                Event::Data(id, n, end) => {
                    let total = {
                        let mut m = b.lock().unwrap();
                        *m.entry(id).or_insert(0) += n;
                        m[&id]
                    };
                    if end {
                        assert_eq!(total, 20_000);
                        peer.respond(id, b"ok");
                    }
                }
                Event::Closed => return,
                _ => {}
            }
        }
    });
    let body = "b".repeat(20_000);
    let r = h2(server.addr)
        .rate("10")
        .duration("1s")
        .connections(1)
        .flag("--method", "POST")
        .flag("--body", &body)
        .run();
    assert_eq!(r.recorder.total.completed, 10, "{:?}", r.recorder.causes);
    assert!(bodies.lock().unwrap().values().all(|&n| n == 20_000));
}

#[test]
fn a_silent_connection_is_pinged_and_replaced() {
    // The first connection the run uses goes silent after its first answer (as one a load
    // balancer dropped: nothing read, nothing answered — PINGs included). The stream that
    // timed out on it leads to a PING; unanswered within the connect timeout, the
    // connection is retired and later requests go on a new one, which answers.
    let claimed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = h2_server(move |peer| {
        if !peer.handshake(&[]) {
            return;
        }
        let mut n = 0;
        let mut silent = false;
        loop {
            if n == 1 && !silent {
                // The first connection to answer a request goes silent after it.
                silent = !claimed.swap(true, Ordering::SeqCst);
            }
            if silent {
                std::thread::sleep(Duration::from_secs(6));
                return;
            }
            match peer.next(Duration::from_secs(30)) {
                Event::Request(id, _) => {
                    n += 1;
                    peer.respond(id, b"ok");
                }
                Event::Closed => return,
                _ => {}
            }
        }
    });
    let r = h2(server.addr)
        .rate("10")
        .duration("3s")
        .connections(1)
        .timeout("300ms")
        .flag("--connect-timeout", "300ms")
        .grace("2s")
        .run();
    let t = &r.recorder.total;
    // Without the PING every request after the first would time out; with it, only those
    // sent before the connection was found dead (~0.3 s timeout + 0.3 s PING).
    assert!(
        t.completed >= 20,
        "completed {}: {:?} {:?}",
        t.completed,
        t.errors,
        r.recorder.causes
    );
    assert!(r.recorder.reconnects >= 1);
}

/// A raw HTTP/1.1 server: `serve` gets each accepted connection (and its index).
fn h1_server(
    serve: impl Fn(std::net::TcpStream, usize) + Send + Sync + 'static,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let i = count.fetch_add(1, Ordering::SeqCst);
            let serve = serve.clone();
            std::thread::spawn(move || serve(conn, i));
        }
    });
    (addr, accepted)
}

/// Reads one request head (and `Content-Length` bytes of body, unless `body` is false)
/// from `conn`; false when the connection closed or went idle for `idle`.
fn read_request(
    conn: &mut std::net::TcpStream,
    buf: &mut Vec<u8>,
    body: bool,
    idle: Duration,
) -> bool {
    use std::io::Read;
    let _ = conn.set_read_timeout(Some(idle));
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let need = end + 4 + if body { len } else { 0 };
            if buf.len() >= need {
                buf.drain(..need);
                return true;
            }
        }
        let mut chunk = [0u8; 65536];
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

#[test]
fn a_reused_connection_closed_before_answering_is_retried_when_safe() {
    // The keep-alive race, every time: each connection answers its first request, then
    // reads the second and closes without a byte of answer. Idempotent GETs go again on a
    // new connection (and are answered there); POSTs with a body are not sent twice.
    let closed = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let (c, a) = (closed.clone(), answered.clone());
    let (addr, _) = h1_server(move |mut conn, _| {
        use std::io::Write;
        let mut buf = Vec::new();
        if read_request(&mut conn, &mut buf, true, Duration::from_secs(10)) {
            a.fetch_add(1, Ordering::SeqCst);
            let _ = conn.write_all(OK);
            if read_request(&mut conn, &mut buf, true, Duration::from_secs(10)) {
                c.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let url = format!("http://{addr}/");
    let (r, doc) = load(&url)
        .rate("20")
        .duration("1s")
        .connections(1)
        .run_json();
    let t = &r.recorder.total;
    assert_eq!(t.completed, 20, "{:?} {:?}", t.errors, r.recorder.causes);
    let closed_n = closed.load(Ordering::SeqCst);
    assert!(closed_n >= 9, "closed on reuse {closed_n}");
    assert_eq!(r.recorder.retried[Retry::ClosedOnReuse.index()], closed_n);
    assert_eq!(doc["accounting"]["retried"]["closed_on_reuse"], closed_n);
    // A POST with a body may have been processed: not sent again, an error with its cause.
    closed.store(0, Ordering::SeqCst);
    let r = load(&url)
        .rate("20")
        .duration("1s")
        .connections(1)
        .flag("--method", "POST")
        .flag("--body", "x=1")
        .run();
    let closed_n = closed.load(Ordering::SeqCst);
    assert!(closed_n > 0);
    assert_eq!(errors(&r, ErrorClass::Read), closed_n);
    assert_eq!(
        cause(&r, ErrorClass::Read, "closed before a complete response"),
        closed_n
    );
    assert_eq!(r.recorder.retried, [0; 3]);
}

#[test]
fn a_request_saying_connection_close_gets_a_connection_of_its_own() {
    // The server would keep every connection; the request says `Connection: close`, so
    // ratebench never sends a second request on it.
    let requests = Arc::new(AtomicU64::new(0));
    let n = requests.clone();
    let (addr, accepted) = h1_server(move |mut conn, _| {
        use std::io::Write;
        let mut buf = Vec::new();
        while read_request(&mut conn, &mut buf, true, Duration::from_secs(5)) {
            n.fetch_add(1, Ordering::SeqCst);
            let _ = conn.write_all(OK);
        }
    });
    let r = load(&format!("http://{addr}/"))
        .rate("20")
        .duration("1s")
        .connections(1)
        .flag("-H", "Connection: close")
        .run();
    assert_eq!(r.recorder.total.completed, 20);
    assert_eq!(requests.load(Ordering::SeqCst), 20);
    // 20 connections for 20 requests (plus the check before the run).
    assert!(accepted.load(Ordering::SeqCst) >= 20);
    assert!(r.recorder.reconnects >= 19);
}

#[test]
fn a_servers_keep_alive_timeout_is_honoured() {
    // The server says `Keep-Alive: timeout=1` and closes a connection idle for 1 s; the
    // client sends once a second, so each request would race the close. Honouring the
    // timeout (less a margin), ratebench opens a new connection instead: no race, nothing
    // sent again, no error.
    let (addr, _) = h1_server(move |mut conn, _| {
        use std::io::Write;
        let mut buf = Vec::new();
        while read_request(&mut conn, &mut buf, true, Duration::from_secs(1)) {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=1, max=100\r\n\r\nok",
            );
        }
    });
    let r = load(&format!("http://{addr}/"))
        .rate("1")
        .duration("4s")
        .connections(1)
        .run();
    assert_eq!(r.recorder.total.completed, 4, "{:?}", r.recorder.causes);
    assert_eq!(r.recorder.retried, [0; 3]);
    assert!(
        r.recorder.reconnects >= 3,
        "reconnects {}",
        r.recorder.reconnects
    );
}

#[test]
fn an_answer_before_the_upload_ends_is_recorded_with_its_status() {
    // A 10 MB POST; the server answers 413 after the head, without reading the body (as
    // Go's net/http and gateways do), and closes a little later. ratebench reads while it
    // sends: each request is a 413, not a write error.
    let (addr, _) = h1_server(move |mut conn, _| {
        use std::io::Write;
        let mut buf = Vec::new();
        if read_request(&mut conn, &mut buf, false, Duration::from_secs(5)) {
            let _ = conn.write_all(
                b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let dir = tmpdir("early-answer");
    let body = dir.join("10m.bin");
    std::fs::write(&body, vec![b'u'; 10 << 20]).unwrap();
    let r = load(&format!("http://{addr}/"))
        .rate("3")
        .duration("1s")
        .connections(1)
        .flag("--method", "POST")
        .flag("--body-file", body.to_str().unwrap())
        .run();
    assert_eq!(
        r.recorder.status[413], 3,
        "{:?} {:?}",
        r.recorder.total.errors, r.recorder.causes
    );
    assert_eq!(r.recorder.total.error_total(), 0);
}

#[test]
fn a_large_upload_over_tls_to_a_reader_that_pauses_arrives_whole() {
    // A 32 MB upload over h2 with TLS to a server that opens wide windows, sends nothing
    // back while the body arrives, and stops reading for a while every 4 MB: the socket
    // fills again and again, and TLS records wait in the TLS layer's buffer while the
    // socket drains. Every byte must still go out (the driver flushes until the TLS layer
    // reports done, also when its own queue is empty), or the server never sees
    // END_STREAM and the request times out. (On loopback this did not catch the unflushed
    // tail of the old driver: tokio-rustls pushed it out on later writes. It stands as the
    // behaviour users rely on.)
    let received = Arc::new(AtomicU64::new(0));
    let got = received.clone();
    let server = h2_server_tls(move |peer| {
        if !peer.handshake(&[(INITIAL_WINDOW_SIZE, 0x7fff_ffff)]) {
            return;
        }
        peer.send(WINDOW_UPDATE, 0, 0, &0x7fff_0000u32.to_be_bytes());
        // Nothing goes back while the body arrives (the windows are wide enough): no read
        // on ratebench's side happens to push its TLS layer's buffer out.
        peer.credit = false;
        let mut first = true;
        loop {
            match peer.next(Duration::from_secs(10)) {
                Event::Request(..) if first => {
                    first = false;
                    std::thread::sleep(Duration::from_millis(500));
                }
                Event::Data(id, n, end) => {
                    let before = got.fetch_add(n as u64, Ordering::SeqCst);
                    // Stop reading again for a while every 4 MB, so the socket fills
                    // whenever the body's last bytes may be written.
                    if (before >> 22) != ((before + n as u64) >> 22) {
                        std::thread::sleep(Duration::from_millis(150));
                    }
                    if end {
                        peer.respond(id, b"ok");
                    }
                }
                Event::Closed => return,
                _ => {}
            }
        }
    });
    let dir = tmpdir("tls-flush");
    let body = dir.join("32m.bin");
    std::fs::write(&body, vec![b'u'; 32 << 20]).unwrap();
    let r = load(&format!("https://localhost:{}/", server.addr.port()))
        .switch("--http2")
        .switch("-k")
        .rate("1")
        .duration("1s")
        .connections(1)
        .timeout("8s")
        .flag("--method", "POST")
        .flag("--body-file", body.to_str().unwrap())
        .run();
    assert_eq!(
        r.recorder.total.completed, 1,
        "{:?} {:?}",
        r.recorder.total.errors, r.recorder.causes
    );
    assert_eq!(received.load(Ordering::SeqCst), 32 << 20);
}
