//! Property tests for the parsers that take outside input: whatever arrives, they give the
//! same answer however it is split, and never panic on garbage.

mod common;
use proptest::prelude::*;
use ratebench::stream::SseParser;
use std::time::Duration;

/// Every event's data, fed as the chunks given, in order.
fn events(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c, |d| out.push(d.to_vec()));
    }
    p.finish(|d| out.push(d.to_vec()));
    out
}

/// A valid event stream: each event's data lines (no CR or LF inside), maybe a comment,
/// an `event:` or `id:` field, LF or CRLF line ends.
fn stream() -> impl Strategy<Value = (Vec<u8>, usize)> {
    let data = "[ -~]{0,40}"; // printable ASCII, as JSON chunks are
    let event = (
        prop::collection::vec(data, 1..3),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    prop::collection::vec(event, 0..12).prop_map(|evs| {
        let mut s = String::new();
        for (lines, comment, named, crlf) in &evs {
            let nl = if *crlf { "\r\n" } else { "\n" };
            if *comment {
                s.push_str(&format!(": keep-alive{nl}"));
            }
            if *named {
                s.push_str(&format!("event: message{nl}id: 7{nl}"));
            }
            for l in lines {
                s.push_str(&format!("data: {l}{nl}"));
            }
            s.push_str(nl);
        }
        (s.into_bytes(), evs.len())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sse_any_split_gives_the_same_events(
        (bytes, n) in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = events(&[&bytes]);
        prop_assert_eq!(whole.len(), n, "one event per blank-line-terminated block");
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        at.dedup();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for a in at {
            chunks.push(&bytes[prev..a]);
            prev = a;
        }
        chunks.push(&bytes[prev..]);
        prop_assert_eq!(events(&chunks), whole);
    }

    #[test]
    fn sse_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = events(&[&bytes]);
    }

    #[test]
    fn raw_requests_round_trip(
        method in "(GET|POST|PUT|DELETE|PATCH)",
        path in "/[a-z0-9/]{0,20}",
        headers in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~&&[^ ]]{1,20}"), 0..6),
        body in "[ -~]{0,64}",
        copies in 1usize..4,
    ) {
        let mut one = format!("{method} {path} HTTP/1.1\r\nHost: h\r\n");
        for (k, v) in &headers {
            one.push_str(&format!("X-{k}: {v}\r\n"));
        }
        one.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let raw = one.repeat(copies);
        let parsed = ratebench::script::raw::parse(raw.as_bytes()).expect("a valid request");
        prop_assert_eq!(parsed.len(), copies, "pipelined requests, in order");
        for r in parsed {
            let req = r.to_request();
            prop_assert_eq!(req.method().as_str(), method.as_str());
            prop_assert_eq!(req.uri().path(), path.as_str());
            for (k, v) in &headers {
                let got = req.headers().get_all(format!("x-{k}").as_str());
                prop_assert!(got.iter().any(|g| g.as_bytes() == v.as_bytes()), "{k}: {v}");
            }
        }
    }

    #[test]
    fn raw_parser_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ratebench::script::raw::parse(&bytes);
    }

    #[test]
    fn durations_parse_exactly(n in 0u64..10_000_000, unit in 0usize..6) {
        let (suffix, ns) = [("ns", 1u64), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
            ("m", 60_000_000_000), ("h", 3_600_000_000_000)][unit];
        let got = ratebench::units::parse_duration(&format!("{n}{suffix}"));
        match n.checked_mul(ns) {
            Some(want) => prop_assert_eq!(got, Ok(Duration::from_nanos(want))),
            None => prop_assert!(got.is_err()),
        }
    }

    #[test]
    fn rates_parse_exactly(whole in 1u64..1_000_000, tenths in 0u64..10, per in 0usize..3) {
        // "W.T/unit" is (10·W + T) / (10 · seconds per unit) requests per second, exactly.
        let (suffix, secs) = [("", 1u128), ("/m", 60), ("/h", 3600)][per];
        let got = ratebench::pacer::Rate::parse(&format!("{whole}.{tenths}{suffix}")).unwrap();
        prop_assert_eq!(got, ratebench::pacer::Rate::new(u128::from(10 * whole + tenths), 10 * secs));
    }

    #[test]
    fn unit_parsers_never_panic(s in "\\PC{0,24}") {
        let _ = ratebench::units::parse_duration(&s);
        let _ = ratebench::units::parse_size(&s);
        let _ = ratebench::pacer::Rate::parse(&s);
        let _ = ratebench::report::threshold::Threshold::parse(&s);
        let _ = ratebench::stream::Slo::parse(&s);
    }
}

/// A real one-second log line of ours, to mutate.
const LINE: &str = "Tag=corrected,0.000,1.000,1.000,HISTFAAAACZ4nJNpmSzMwMDAygABzFCaEch0M9ixgMH+A0Tg4DrGC/wAbJ0Gnw==\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn hlog_reader_never_panics(
        garbage in prop::collection::vec(any::<u8>(), 0..400),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let dir = common::tmpdir("prop-hlog");
        // Pure garbage, and a valid log with a few bytes changed.
        let mut mutated = format!("#[StartTime: 1800000000.000 (seconds since epoch)]\n{LINE}{LINE}").into_bytes();
        for (i, b) in &flips {
            let at = i.index(mutated.len());
            mutated[at] = *b;
        }
        for (name, bytes) in [("garbage", &garbage), ("mutated", &mutated)] {
            let p = dir.join(format!("{name}.hlog"));
            std::fs::write(&p, bytes).unwrap();
            let _ = ratebench::report::hdr::read(std::slice::from_ref(&p), false);
        }
    }
}

/// Reads one response from `bytes` (sent by a loopback peer that then closes) with the
/// HTTP/1.1 reader, as an exchange does.
fn read_http1(bytes: &[u8], head_request: bool) -> Result<(), String> {
    use ratebench::engine::{h1::H1Conn, stamp::StampedTcp, tls::Stream};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let payload = bytes.to_vec();
    let peer = std::thread::spawn(move || {
        use std::io::Write;
        let (mut conn, _) = listener.accept().unwrap();
        let _ = conn.write_all(&payload);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut conn = H1Conn::new(
            Stream::Plain(StampedTcp::new(tcp, false, false).unwrap()),
            None,
        );
        let work = async {
            let (_, framing) = conn
                .read_head(head_request, |h| h.status)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let mut n = 0usize;
            conn.read_body(framing, |d| n += d.len())
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok::<usize, String>(n)
        };
        match tokio::time::timeout(Duration::from_secs(5), work).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err("no end within 5 s after the peer closed".into()),
        }
    });
    peer.join().unwrap();
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random bytes, and a valid answer with bytes changed, to the HTTP/1.1 reader: an
    /// answer or an error, never a panic, and never a wait past the peer's close.
    #[test]
    fn http1_reader_never_panics_or_hangs(
        garbage in prop::collection::vec(any::<u8>(), 0..2048),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        head in any::<bool>(),
    ) {
        let mut mutated = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a: b\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec();
        for (i, b) in &flips {
            let at = i.index(mutated.len());
            mutated[at] = *b;
        }
        for bytes in [&garbage, &mutated] {
            let r = read_http1(bytes, head);
            prop_assert!(r.as_ref().map_or_else(|e| !e.contains("no end"), |_| true), "{r:?}");
        }
    }
}
