//! Truth in every configuration: the default mode (kernel receive stamps) reports the
//! server's latency, never the generator's own queue, across the configuration space —
//! threads and connections split every way, servers that close every connection, random
//! arrivals and ramps, coarse, spin-less and all-spin pacing, HTTP/1.1 and HTTP/2 in clear
//! and over TLS, a script.
//!
//! Each case runs against `serve` on loopback with a known service time S and checks, from
//! first principles:
//! - corrected p50 ≤ S + 0.4 ms, plus the precision when pacing is coarse, plus opening the
//!   connection (as the simpler path timed it) where the server closes every one: what
//!   loopback, the server and a VM's wake-up add is tens of microseconds; each of the
//!   defects this guards against added a whole per-thread gap between requests (1 ms or
//!   more) to nearly every request;
//! - corrected p99 ≤ max(S, p99 from the actual send) + 1 ms (+ the precision): the server's
//!   own tail is its own, and a late send past 1 ms is what the report calls the generator
//!   falling behind;
//! - the share of requests that waited for a busy connection is what queueing theory allows:
//!   a connection busy ρ = (rate per connection) × (time per request) of the time is found
//!   busy by about ρ of the arrivals (PASTA); allowed 2ρ + 5 %. A generator that leaves
//!   answers unread makes nearly all of them wait;
//! - the same case with `--no-kernel-timestamps` (the simpler path, which stays awake for
//!   responses) agrees: default p50 within 3× of it, plus 0.1 ms;
//! - and no warning that blames the generator.
//!
//! Beside each default run a plain thread paces its own deadlines the same way (`Floor`):
//! how late *it* got is the machine's share of any lateness — the p99 and read-lag bounds
//! are widened by it, and on a machine late by more than 0.5 ms at p99 the generator may
//! say it fell behind (it did, and said so). On a quiet machine it is tens of µs, and the
//! bounds are as stated.

mod common;
use common::*;
use ratebench::record::histogram::percentile;
use ratebench::report::Summary;
use ratebench::run::RunResult;
use ratebench::serve::ServeConfig;
use std::sync::Mutex;
use std::time::Duration;

/// These tests measure time; running them one at a time keeps them from loading each other.
static TIMING: Mutex<()> = Mutex::new(());

/// What loopback, the server and the generator's wake-ups may add to the median.
const P50_SLACK_MS: f64 = 0.4;
/// What they may add to the 99th percentile: the report's own bound for generator lateness.
const P99_SLACK_MS: f64 = 1.0;

/// The numbers of one run a case checks.
#[derive(Debug)]
struct Seen {
    p50: f64,
    p99: f64,
    uncorrected_p99: f64,
    queued_share: f64,
    read_lag_p99: f64,
    warnings: Vec<String>,
    arrivals: Option<ratebench::report::ArrivalCheck>,
}

fn seen(r: &RunResult) -> Seen {
    let rec = &r.recorder;
    let s = Summary::of(r);
    Seen {
        p50: ms(percentile(&rec.corrected, 50.0)),
        p99: ms(percentile(&rec.corrected, 99.0)),
        uncorrected_p99: ms(percentile(&rec.uncorrected, 99.0)),
        queued_share: rec.queued as f64 / rec.total.scheduled.max(1) as f64,
        read_lag_p99: ms(percentile(&rec.read_lag, 99.0)),
        warnings: s.warnings,
        arrivals: s.arrivals,
    }
}

/// One configuration: the server, the load, its service time and how coarse its pacing is.
struct Case {
    name: &'static str,
    server: fn(&mut ServeConfig),
    /// The load, given the server's URL.
    load: Box<dyn Fn(&str) -> Load>,
    /// Requests per second per connection (for the queueing bound).
    per_connection: f64,
    /// The server's service time, ms.
    service_ms: f64,
    /// `--precision`, ms (0 for exact pacing).
    precision_ms: f64,
    /// The URL scheme.
    tls: bool,
}

/// A machine whose plain sleeping thread wakes later than this at p99 is too busy for the
/// generator's own lateness to be told from the machine's.
const MACHINE_LATE_MS: f64 = 0.5;

/// The machine's own floor for exact pacing while a run goes on: a plain thread that paces
/// deadlines 1 ms apart as the generator does by default — sleeps (`clock_nanosleep`,
/// 1 ns timer slack) to 50 µs before each, then spins to it — and notes how late it got
/// there. A spinning thread is what a contended scheduler preempts for a whole time slice,
/// so this is the yardstick for the generator's own lateness, not a sleep alone.
struct Floor {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
}

impl Floor {
    fn start() -> Floor {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // SAFETY: prctl with PR_SET_TIMERSLACK takes an integer and touches no memory.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
            let now = || {
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: clock_gettime writes into the timespec we own.
                unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
                ts.tv_sec * 1_000_000_000 + ts.tv_nsec
            };
            let mut late = Vec::new();
            let mut due = now();
            while !flag.load(Ordering::Relaxed) {
                due += 1_000_000;
                let wake = due - 50_000;
                let ts = libc::timespec {
                    tv_sec: (wake / 1_000_000_000) as libc::time_t,
                    tv_nsec: (wake % 1_000_000_000) as libc::c_long,
                };
                // SAFETY: an absolute sleep reads the timespec we own.
                unsafe {
                    libc::clock_nanosleep(
                        libc::CLOCK_MONOTONIC,
                        libc::TIMER_ABSTIME,
                        &ts,
                        std::ptr::null_mut(),
                    )
                };
                let mut t = now();
                while t < due {
                    std::hint::spin_loop();
                    t = now();
                }
                // (Every deadline counts, also those already past after a late wake-up,
                // as every request released late counts in the generator's lags.)
                late.push((t - due).max(0) as u64);
            }
            late
        });
        Floor { stop, thread }
    }

    /// Stops it; its wake-up lateness p99, ms.
    fn stop(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut late = self.thread.join().expect("the floor thread");
        if late.is_empty() {
            return 0.0;
        }
        late.sort_unstable();
        late[(late.len() * 99 / 100).min(late.len() - 1)] as f64 / 1e6
    }
}

/// Runs `case` in the default mode and with `--no-kernel-timestamps`, and checks both;
/// returns what did not hold, one line each.
fn check(case: &Case) -> Vec<String> {
    let server = serve(case.server);
    let scheme = if case.tls { "https" } else { "http" };
    let url = format!("{scheme}://{}/", server.addr);
    let base = (case.load)(&url);
    let probe = Floor::start();
    let default = base.clone().run();
    let floor = probe.stop();
    let plain = base.switch("--no-kernel-timestamps").run();
    let (d, p) = (seen(&default), seen(&plain));
    let mut failed = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            failed.push(format!("{}: {what}", case.name));
        }
    };
    let t = &default.recorder.total;
    expect(
        t.completed == t.scheduled,
        format!("{} of {} answered", t.completed, t.scheduled),
    );
    // What the machine itself did meanwhile: a thread of ours woke this late at p99. The
    // generator's wake-ups can be no better; beyond it, lateness is the generator's.
    let widen = case.precision_ms;
    let late = floor;
    // A request that must open its connection first (the server closes every one) is
    // served in the open plus the answer: the open as the simpler path timed it (TCP
    // connect and TLS handshake, p50), for the share of requests that reopened.
    let rec = &plain.recorder;
    let open_ms = ms(percentile(&rec.connect_tcp, 50.0)) + ms(percentile(&rec.connect_tls, 50.0));
    let reopened = rec.reconnects as f64 / rec.total.completed.max(1) as f64;
    let service = case.service_ms + reopened.min(1.0) * open_ms;
    expect(
        d.p50 <= service + widen + P50_SLACK_MS,
        format!("corrected p50 {} ms for a {service:.3} ms service", d.p50),
    );
    // The process that left the machine is the one asked for: Poisson gaps exponential,
    // a constant rate evenly spaced (or batched, where --precision asked for batches).
    if let Some(a) = &d.arrivals {
        expect(
            a.as_asked(),
            format!("arrivals on the wire: {}", a.describe()),
        );
    }
    // The server's own tail (a burst of arrivals slows it) is measured from the actual
    // send; what the generator may add to it at p99 is bounded.
    let tail = service.max(d.uncorrected_p99);
    expect(
        d.p99 <= tail + widen + P99_SLACK_MS + late,
        format!(
            "corrected p99 {} ms for a {service:.3} ms service (p99 from the send {} ms)",
            d.p99, d.uncorrected_p99
        ),
    );
    // A connection is busy per request for what the simpler path measures end to end
    // (with a reconnect where the server closes connections); the share of arrivals that
    // find it busy is about its utilisation ρ.
    let rho = case.per_connection * p.p50 / 1000.0;
    expect(
        d.queued_share <= 2.0 * rho + 0.05,
        format!(
            "{:.0}% waited for a busy connection where ρ = {rho:.3}",
            d.queued_share * 100.0
        ),
    );
    expect(
        d.p50 <= 3.0 * p.p50 + 0.1,
        format!("p50 {} ms vs {} ms without kernel stamps", d.p50, p.p50),
    );
    // (On a machine that woke even a plain sleeping thread late at p99, the generator's
    // saying it fell behind is the truth: the bounds above and below carry that lateness.)
    for w in &d.warnings {
        expect(
            !w.contains("generator") || late > MACHINE_LATE_MS,
            format!("the generator blamed itself (the machine's floor p99 {late} ms): {w}"),
        );
    }
    // The responses were read as they came: the generator's own receive-side delay is
    // counted, and small.
    let json = summary_json(&default);
    expect(
        json["read_lag_ms"]["count"].as_u64() == Some(default.recorder.read_lag.len()),
        format!("read_lag_ms in the JSON summary: {}", json["read_lag_ms"]),
    );
    expect(
        !default.recorder.read_lag.is_empty(),
        "no read lag recorded".into(),
    );
    expect(
        d.read_lag_p99 <= P99_SLACK_MS + late,
        format!(
            "read lag p99 {} ms (the machine's floor p99 {late} ms)",
            d.read_lag_p99
        ),
    );
    if !failed.is_empty() {
        failed.push(format!("  the machine's floor: p99 {floor} ms"));
        failed.push(format!("  default: {d:?}\n  without kernel stamps: {p:?}"));
    }
    failed
}

/// Runs of a case before it fails.
const ATTEMPTS: usize = 3;

/// Checks every case and fails with everything that did not hold. A case is judged by the
/// best of up to `ATTEMPTS` runs: each defect this guards against is systematic — it failed
/// every run of every case it touched — while this VM now and then resumes a sleeping
/// virtual CPU milliseconds late (`benches/wake_floor.c` has seen a p99 of 3 ms in a noisy
/// hour), which fails one run in many through no fault of the generator.
fn check_all(cases: &[Case]) {
    let mut failed = Vec::new();
    for case in cases {
        for attempt in 1..=ATTEMPTS {
            let f = check(case);
            if f.is_empty() {
                break;
            }
            eprintln!("attempt {attempt} of {ATTEMPTS}:\n{}", f.join("\n"));
            if attempt == ATTEMPTS {
                failed.extend(f);
            }
        }
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

/// A case against a server of no service delay, in clear, exactly paced.
fn case(
    name: &'static str,
    server: fn(&mut ServeConfig),
    per_connection: f64,
    load: impl Fn(&str) -> Load + 'static,
) -> Case {
    Case {
        name,
        server,
        load: Box::new(load),
        per_connection,
        service_ms: 0.0,
        precision_ms: 0.0,
        tls: false,
    }
}

fn keep_alive(_: &mut ServeConfig) {}

fn close_every_connection(c: &mut ServeConfig) {
    c.goaway_after = Some(1);
}

fn tls(c: &mut ServeConfig) {
    c.tls = true;
}

fn tls_close_every_connection(c: &mut ServeConfig) {
    c.tls = true;
    c.goaway_after = Some(1);
}

fn h2c(c: &mut ServeConfig) {
    c.http2 = true;
}

fn h2_tls(c: &mut ServeConfig) {
    c.http2 = true;
    c.tls = true;
}

fn ten_ms(c: &mut ServeConfig) {
    c.delay = Duration::from_millis(10);
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "-R1000 -c1 -t1 (one connection per thread)",
            keep_alive,
            1000.0,
            |u| load(u).rate("1000").duration("2s").connections(1),
        ),
        case("-R1000 -c2 -t2", keep_alive, 500.0, |u| {
            load(u)
                .rate("1000")
                .duration("2s")
                .connections(2)
                .threads(2)
        }),
        case("-R2000 -c3 -t2 (uneven split)", keep_alive, 1000.0, |u| {
            load(u)
                .rate("2000")
                .duration("2s")
                .connections(3)
                .threads(2)
        }),
        case("-R1000 -c100 -t1", keep_alive, 10.0, |u| {
            load(u).rate("1000").duration("2s").connections(100)
        }),
        case(
            "-R1000 -c20 against a server that closes every connection",
            close_every_connection,
            50.0,
            |u| load(u).rate("1000").duration("2s").connections(20),
        ),
        case("-R300 -c10 --arrival poisson", keep_alive, 30.0, |u| {
            load(u)
                .rate("300")
                .duration("3s")
                .connections(10)
                .flag("--arrival", "poisson")
                .flag("--seed", "1")
        }),
        Case {
            service_ms: 10.0,
            ..case(
                "-R500 -c10 --arrival gamma:0.5 against a 10 ms service",
                ten_ms,
                25.0,
                |u| {
                    load(u)
                        .rate("500")
                        .duration("2s")
                        .connections(20)
                        .flag("--arrival", "gamma:0.5")
                        .flag("--seed", "2")
                },
            )
        },
        case("--stages 1s:200,1s:1500 -c1", keep_alive, 1500.0, |u| {
            load(u).flag("--stages", "1s:200,1s:1500").connections(1)
        }),
        Case {
            precision_ms: 1.0,
            ..case("-R1000 -c1 --precision 1ms", keep_alive, 1000.0, |u| {
                load(u)
                    .rate("1000")
                    .duration("2s")
                    .connections(1)
                    .flag("--precision", "1ms")
            })
        },
        case("-R1000 -c1 --spin 0", keep_alive, 1000.0, |u| {
            load(u)
                .rate("1000")
                .duration("2s")
                .connections(1)
                .flag("--spin", "0")
        }),
        case(
            "-R500 -c1 --spin 2ms (a spin as long as the gap)",
            keep_alive,
            500.0,
            |u| {
                load(u)
                    .rate("500")
                    .duration("2s")
                    .connections(1)
                    .flag("--spin", "2ms")
            },
        ),
        Case {
            tls: true,
            ..case("HTTP/1.1 over TLS -R1000 -c1", tls, 1000.0, |u| {
                load(u)
                    .rate("1000")
                    .duration("2s")
                    .connections(1)
                    .switch("-k")
            })
        },
        Case {
            tls: true,
            ..case(
                "HTTP/1.1 over TLS -R500 -c10, a handshake per request",
                tls_close_every_connection,
                50.0,
                |u| {
                    load(u)
                        .rate("500")
                        .duration("2s")
                        .connections(10)
                        .switch("-k")
                },
            )
        },
        case("--http2 (h2c) -R1000 -c1", h2c, 1000.0, |u| {
            load(u)
                .rate("1000")
                .duration("2s")
                .connections(1)
                .switch("--http2")
        }),
        Case {
            tls: true,
            ..case("--http2 over TLS -R1000 -c2 -t2", h2_tls, 500.0, |u| {
                load(u)
                    .rate("1000")
                    .duration("2s")
                    .connections(2)
                    .threads(2)
                    .switch("--http2")
                    .switch("-k")
            })
        },
    ]
}

#[test]
fn the_default_mode_reports_the_servers_latency_in_every_configuration() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    check_all(&cases());
}

/// The cases the io_uring path runs in (HTTP/1.1 in clear, exact pacing; `--spin` does not
/// apply to it), each with `--io-uring on`.
fn io_uring_cases() -> Vec<Case> {
    cases()
        .into_iter()
        .filter(|c| {
            !c.tls
                && c.precision_ms == 0.0
                && !c.name.contains("--http2")
                && !c.name.contains("--spin")
        })
        .map(|c| {
            let inner = c.load;
            Case {
                name: Box::leak(format!("{} --io-uring on", c.name).into_boxed_str()),
                load: Box::new(move |u| inner(u).flag("--io-uring", "on")),
                ..c
            }
        })
        .collect()
}

#[test]
fn the_io_uring_path_reports_the_servers_latency_in_every_configuration_it_runs_in() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    if !send_paths().contains(&"on") {
        return;
    }
    let cases = io_uring_cases();
    assert_eq!(cases.len(), 8, "the HTTP/1.1 cases in clear");
    check_all(&cases);
}

#[test]
fn each_request_reaches_the_server_at_its_due_time_and_the_send_lag_says_how_late() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    // The server's kernel stamps each request as it reaches its socket (CLOCK_REALTIME);
    // the k-th arrival belongs to the k-th due time, the run's wall-clock start plus k/R.
    // Independent of anything the generator says, then: no request arrives before its due
    // time (a send ahead of the schedule would shorten its measured latency), and the
    // median arrival is within the 0.4 ms a wake-up may add. The generator's own send lag
    // — on both paths the kernel's transmit stamp less the due time — must be at most the
    // arrival's lateness (a send precedes its arrival) and within 0.1 ms of it (loopback's
    // transit).
    for path in send_paths() {
        let server = stamping_server();
        let url = format!("http://{}/", server.addr);
        let r = load(&url)
            .rate("1000")
            .duration("3s")
            .connections(10)
            .flag("--io-uring", path)
            .run();
        let t = &r.recorder.total;
        assert_eq!(t.completed, 3000, "--io-uring {path}");
        let pacing = r.pacing.clone().expect("a live run says how it paced");
        if path == "on" {
            assert_eq!(pacing.path, ratebench::run::Pacing::IO_URING);
            assert_eq!(pacing.sends, 3000, "every request went through the ring");
            // The first bytes of a connection may go before the kernel stamps its sends.
            assert!(pacing.stamped + 10 >= 3000, "{} stamped", pacing.stamped);
        } else {
            assert_eq!(pacing.path, "timer and spin");
            assert_eq!(pacing.sends, 0);
            assert!(pacing.stamped + 10 >= 3000, "{} stamped", pacing.stamped);
        }
        let start = r
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        let mut arrivals = server.arrivals.lock().unwrap().clone();
        arrivals.sort();
        // Each connection's first request may have come unstamped: match from the end,
        // where every request is stamped.
        assert!(arrivals.len() + 10 >= 3000, "{} stamped", arrivals.len());
        let skip = 3000 - arrivals.len();
        let late: Vec<i128> = arrivals
            .iter()
            .enumerate()
            .map(|(i, a)| a - (start + (skip + i) as i128 * 1_000_000))
            .collect();
        let earliest = *late.iter().min().unwrap() as f64 / 1e6;
        let mut sorted = late.clone();
        sorted.sort();
        let p50 = sorted[sorted.len() / 2] as f64 / 1e6;
        let lag_p50 = ms(percentile(&r.recorder.send_lag, 50.0));
        eprintln!(
            "--io-uring {path}: arrival after its due time: earliest {earliest:.4} ms, p50 {p50:.4} ms; send lag p50 {lag_p50:.4} ms"
        );
        // (The two clocks are one, read a microsecond apart at the start.)
        assert!(
            earliest >= -0.005,
            "--io-uring {path}: a request arrived {earliest} ms early"
        );
        assert!(
            p50 <= P50_SLACK_MS,
            "--io-uring {path}: arrivals p50 {p50} ms late"
        );
        assert!(
            lag_p50 <= p50 + 0.005 && p50 - lag_p50 <= 0.1,
            "--io-uring {path}: send lag p50 {lag_p50} ms against arrivals p50 {p50} ms late"
        );
    }
}

#[test]
fn a_script_is_timed_as_truly_as_the_fixed_request() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tmpdir("truth-script");
    let script = dir.join("plain.lua");
    std::fs::write(
        &script,
        "request = function()\n  return wrk.format(\"GET\", \"/scripted\")\nend\n",
    )
    .unwrap();
    let path = script.to_str().unwrap().to_string();
    check_all(&[case(
        "a script, -R1000 -c1 -t1",
        keep_alive,
        1000.0,
        move |u| {
            load(u)
                .rate("1000")
                .duration("2s")
                .connections(1)
                .script(&path)
        },
    )]);
}

#[test]
fn a_reopened_connection_is_timed_as_the_kernel_opens_it() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    // A server that closes every connection after one answer: each request opens a new
    // one. A loopback TCP connect takes tens of microseconds; a generator that leaves the
    // connect to be finished at its next due time reports the gap between due times.
    let server = serve(close_every_connection);
    let url = format!("http://{}/", server.addr);
    let r = load(&url).rate("1000").duration("2s").connections(20).run();
    let rec = &r.recorder;
    assert!(rec.reconnects >= 1500, "reconnects {}", rec.reconnects);
    let p50 = ms(percentile(&rec.connect_tcp, 50.0));
    assert!(p50 < 0.3, "Connect: TCP p50 {p50} ms");
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1:0 that notes when each request reached its
/// socket by the kernel's own receive stamp (`SO_TIMESTAMPNS`), not when a thread of the
/// test got round to reading it. Answers `200 ok`; stops when dropped.
struct StampingServer {
    addr: std::net::SocketAddr,
    /// `CLOCK_REALTIME` nanoseconds of each request's arrival.
    arrivals: std::sync::Arc<Mutex<Vec<i128>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for StampingServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// `recvmsg` with the kernel's receive stamp (ns of `CLOCK_REALTIME`), if it sent one.
fn recv_stamped(fd: i32, buf: &mut [u8]) -> std::io::Result<(usize, Option<i128>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid; it points at our iovec and control buffer, which
    // outlive the call; the control messages are walked within what the kernel filled in.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut stamp = None;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                stamp = Some(ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok((n as usize, stamp))
    }
}

fn stamping_server() -> StampingServer {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = StampingServer {
        addr: listener.local_addr().unwrap(),
        arrivals: Default::default(),
        stop: Default::default(),
    };
    let (arrivals, stop) = (s.arrivals.clone(), s.stop.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(mut conn) = conn else { continue };
            let (arrivals, stop) = (arrivals.clone(), stop.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = conn.set_nodelay(true);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
                let on: libc::c_int = 1;
                // SAFETY: setsockopt reads the int we own, for the length given.
                let rc = unsafe {
                    libc::setsockopt(
                        conn.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_TIMESTAMPNS,
                        (&on as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    )
                };
                assert_eq!(rc, 0, "SO_TIMESTAMPNS");
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::SeqCst) {
                    let (n, stamp) = match recv_stamped(conn.as_raw_fd(), &mut buf) {
                        Ok((0, _)) => return,
                        Ok(r) => r,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(_) => return,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    // Every request is a GET without a body: it ends at the blank line.
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        // (The kernel turns stamping on in the background: the first
                        // bytes of a connection may come without a stamp.)
                        if let Some(t) = stamp {
                            arrivals.lock().unwrap().push(t);
                        }
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if conn.write_all(ok).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    s
}

/// The Kolmogorov–Smirnov distance between `gaps` (seconds) and the exponential
/// distribution of mean `mean`.
fn ks_exponential(gaps: &mut [f64], mean: f64) -> f64 {
    gaps.sort_by(f64::total_cmp);
    let n = gaps.len() as f64;
    gaps.iter()
        .enumerate()
        .map(|(i, g)| {
            let cdf = 1.0 - (-g / mean).exp();
            (cdf - i as f64 / n)
                .abs()
                .max(((i + 1) as f64 / n - cdf).abs())
        })
        .fold(0.0, f64::max)
}

#[test]
fn poisson_arrivals_reach_the_server_with_exponential_gaps() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    for path in send_paths() {
        eprintln!("--io-uring {path}");
        poisson_arrivals(path);
    }
}

fn poisson_arrivals(path: &str) {
    // 300/s Poisson for 7.5 s: about 2,250 arrivals, stamped by the server's kernel as they
    // reach its sockets. Their gaps must be exponential with mean 1/300 s: the
    // Kolmogorov–Smirnov distance below 1.63/√n, the 1 % critical value. A generator that
    // holds short gaps back until its next wake-up sends them in bunches (seen: a fifth of
    // the gaps under 0.16 ms, where the exponential puts 4.7 % — distance 0.19).
    // The seed fixes the schedule; that the schedule itself passes is checked first, so a
    // failure below is the generator's.
    let seed = "7";
    let rate = 300.0;
    let due: Vec<f64> = {
        let profile = ratebench::pacer::Profile::constant(rate, Duration::from_millis(7500));
        let schedule = ratebench::pacer::Schedule::shaped(
            profile,
            ratebench::pacer::Arrival::Poisson,
            seed.parse().unwrap(),
            1,
            0,
        );
        schedule
            .cursor(Duration::from_millis(7500))
            .map(|d| d.as_secs_f64())
            .collect()
    };
    let mut planned: Vec<f64> = due.windows(2).map(|w| w[1] - w[0]).collect();
    let critical = 1.63 / (planned.len() as f64).sqrt();
    let d_planned = ks_exponential(&mut planned, 1.0 / rate);
    assert!(d_planned < critical, "the schedule itself: {d_planned}");

    let server = stamping_server();
    let url = format!("http://{}/", server.addr);
    let r = load(&url)
        .rate("300")
        .duration("7500ms")
        .connections(10)
        .flag("--arrival", "poisson")
        .flag("--seed", seed)
        .flag("--io-uring", path)
        .run();
    assert_eq!(r.recorder.total.completed, due.len() as u64);
    let mut arrivals = server.arrivals.lock().unwrap().clone();
    // Every connection's first request may have come unstamped.
    assert!(
        arrivals.len() + 10 >= due.len(),
        "{} stamped",
        arrivals.len()
    );
    arrivals.sort();
    let mut gaps: Vec<f64> = arrivals
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e9)
        .collect();
    assert!(gaps.len() >= 2000, "{} gaps", gaps.len());
    let critical = 1.63 / (gaps.len() as f64).sqrt();
    let short = gaps.iter().filter(|&&g| g <= 0.16e-3).count() as f64 / gaps.len() as f64;
    let d = ks_exponential(&mut gaps, 1.0 / rate);
    assert!(
        d < critical,
        "KS distance {d:.4} ≥ {critical:.4}; {:.1}% of gaps ≤ 0.16 ms (exponential: 4.7%)",
        short * 100.0
    );
    let s = Summary::of(&r);
    assert!(
        s.warnings.iter().all(|w| !w.contains("generator")),
        "{:?}",
        s.warnings
    );
}
