//! Shared test vocabulary: in-process targets on 127.0.0.1:0 (ratebench's own `serve`, and
//! raw TCP servers that misbehave on cue and count what they received), a load-test
//! builder (`load(url).rate("200").duration("2s").run()`), and runners for the built binary.
#![allow(dead_code)]

use clap::Parser;
use ratebench::cli::{Cli, RunCommand};
use ratebench::engine::{self, RunOptions};
use ratebench::report::Summary;
use ratebench::run::RunResult;
use ratebench::serve::{self, ServeConfig, ServerHandle};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod h2;

/// The built-in server on a free loopback port.
pub fn serve(f: impl FnOnce(&mut ServeConfig)) -> ServerHandle {
    let mut c = ServeConfig::default();
    f(&mut c);
    serve::spawn(c).expect("serve starts")
}

/// A load test as a user would type it, built one flag at a time. It starts from the
/// command line's own defaults, except one thread (`-t1`: the default follows the machine's
/// cores, and a test's numbers must not).
#[derive(Debug, Clone)]
pub struct Load {
    url: String,
    threads: usize,
    args: Vec<String>,
    script_args: Vec<String>,
}

/// A load test of the targets in a `--targets` file (no URL argument).
pub fn load_targets(path: &std::path::Path) -> Load {
    load("").flag("--targets", path.to_str().expect("a UTF-8 path"))
}

/// A load test of `url`.
pub fn load(url: &str) -> Load {
    Load {
        url: url.to_string(),
        threads: 1,
        args: Vec::new(),
        script_args: Vec::new(),
    }
}

impl Load {
    /// `-R`: total requests per second, as typed (`200`, `2.5k`, `30/m`).
    pub fn rate(self, r: &str) -> Load {
        self.flag("-R", r)
    }
    /// `-d`: the measured load duration, as typed (`2s`, `1500ms`).
    pub fn duration(self, d: &str) -> Load {
        self.flag("-d", d)
    }
    /// `-c`: connections.
    pub fn connections(self, n: usize) -> Load {
        self.flag("-c", &n.to_string())
    }
    /// `-t`: worker threads.
    pub fn threads(mut self, n: usize) -> Load {
        self.threads = n;
        self
    }
    /// `--timeout`.
    pub fn timeout(self, t: &str) -> Load {
        self.flag("--timeout", t)
    }
    /// `--grace`.
    pub fn grace(self, t: &str) -> Load {
        self.flag("--grace", t)
    }
    /// `-s FILE`.
    pub fn script(self, path: &str) -> Load {
        self.flag("-s", path)
    }
    /// Words after `--`, for the script's `init(args)`.
    pub fn script_args(mut self, args: &[&str]) -> Load {
        self.script_args.extend(args.iter().map(|a| a.to_string()));
        self
    }
    /// Any other flag with its value, e.g. `flag("-H", "X-A: 1")`.
    pub fn flag(mut self, name: &str, value: &str) -> Load {
        self.args.push(name.into());
        self.args.push(value.into());
        self
    }
    /// A flag without a value, e.g. `switch("-k")`.
    pub fn switch(mut self, name: &str) -> Load {
        self.args.push(name.into());
        self
    }
    /// The command line, as the binary would get it (without the program name).
    pub fn argv(&self) -> Vec<String> {
        let mut v = vec![format!("-t{}", self.threads)];
        v.extend(self.args.iter().cloned());
        if !self.url.is_empty() {
            v.push(self.url.clone());
        }
        if !self.script_args.is_empty() {
            v.push("--".into());
            v.extend(self.script_args.iter().cloned());
        }
        v
    }
    /// The validated command, exactly as `ratebench` would build it.
    pub fn command(&self) -> RunCommand {
        let argv = self.argv();
        let cli = Cli::try_parse_from(
            std::iter::once("ratebench").chain(argv.iter().map(|a| a.as_str())),
        )
        .expect("command line parses");
        cli.run.validate().expect("command line is valid")
    }
    /// Runs in-process and returns what was measured; checks principle 3 on the way.
    pub fn run(&self) -> RunResult {
        let command = self.command();
        let plan = &command.plan;
        // A script's setup state runs first, as `ratebench` itself does it.
        let thread_setups = ratebench::app::load_script(plan)
            .expect("script loads")
            .map(|s| s.thread_setups());
        let options = RunOptions {
            thread_setups,
            ..RunOptions::default()
        };
        let r = engine::run(plan, options).expect("run starts");
        let t = &r.recorder.total;
        // Principle 3 holds in every run a test makes.
        assert_eq!(
            t.scheduled,
            t.completed + t.error_total() + r.unfinished,
            "scheduled = completed + errors + unfinished"
        );
        r
    }
    /// Runs in-process and returns the result with its JSON summary (as `--json` writes it).
    pub fn run_json(&self) -> (RunResult, serde_json::Value) {
        let r = self.run();
        let doc = summary_json(&r);
        (r, doc)
    }
    /// Runs the built binary with this command line, within `limit`.
    pub fn run_bin(&self, limit: Duration) -> Output {
        let argv = self.argv();
        let args: Vec<&str> = argv.iter().map(|a| a.as_str()).collect();
        run_bin(&args, limit)
    }
}

/// The JSON summary of a finished run, as `--json` writes it, parsed.
pub fn summary_json(r: &RunResult) -> serde_json::Value {
    let s = Summary::of(r);
    serde_json::from_str(&ratebench::report::json::render(r, &s, &[])).expect("valid JSON")
}

/// The built binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ratebench"))
}

/// Runs the binary to completion, failing the test if it takes longer than `limit`.
pub fn run_bin(args: &[&str], limit: Duration) -> Output {
    let child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    wait_limited(child, limit)
}

/// Runs a shell command line (`bash -c`, for pipes, redirections and `ulimit`), within
/// `limit`.
pub fn shell(cmd: &str, limit: Duration) -> Output {
    let child = Command::new("bash")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash starts");
    wait_limited(child, limit)
}

/// Waits for `child`, killing it (and failing) after `limit`.
pub fn wait_limited(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ratebench did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How a raw test server treats each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// `200 OK`, keep-alive.
    Ok,
    /// `200 OK` with `Connection: close`, then close.
    CloseAfterOne,
    /// `200 OK` without saying so, then close (a keep-alive connection closed under the client).
    SilentClose,
    /// Read the request, never answer.
    NeverAnswer,
    /// Answer with bytes that are not HTTP, then close.
    Garbage,
    /// Start an event stream, send two tokens, then close mid-stream.
    CutStream,
    /// A complete event stream whose second event is not JSON.
    MalformedStream,
    /// `200 OK` with an `X-Token: abc123` header, keep-alive.
    Token,
    /// Request k gets `FRAMINGS[k mod 5]`: every way HTTP/1.1 delimits a response, two of
    /// them ending the connection.
    Framings,
    /// A HEAD answer: `Content-Length: 2` and no body.
    HeadOnly,
    /// `FRAMINGS[1]` (chunked, with an extension and a trailer) written one byte at a time,
    /// 200 µs apart: every line and every CRLF arrives split across reads.
    Trickle,
    /// `ODD_FORMS[k mod 3]`: lenient but legal answers a user agent must read.
    OddForms,
    /// `big_head()`: 500 headers in a 196 KiB head, then "ok".
    BigHead,
    /// `101 Switching Protocols`, after which the connection speaks no more HTTP/1.1: what
    /// comes in is read and never answered.
    Upgrade,
}

/// `Behaviour::BigHead`'s answer: 500 headers of 400 bytes each (as large `Set-Cookie` and
/// CSP heads are), `content-length: 2`, then "ok".
pub fn big_head() -> String {
    let mut head = String::from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n");
    for i in 0..500 {
        head.push_str(&format!("x-h{i:03}: {}\r\n", "v".repeat(392)));
    }
    head + "\r\nok"
}

/// `Behaviour::OddForms`' answers, in turn, each "hello" in 5 body bytes, keep-alive: a
/// chunked body with bare-LF line ends (RFC 9112 §2.2 lets a recipient take LF as a line
/// end); `Transfer-Encoding` on two lines, `gzip` then `chunked` (one list: chunked); a
/// header value folded onto a second line (obs-fold, which a user agent must accept).
pub const ODD_FORMS: [&str; 3] = [
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\nhello\n0\n\n",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nx-folded: one\r\n two\r\ncontent-length: 5\r\n\r\nhello",
];

/// `Behaviour::Framings`' answers, in turn, and whether the server closes after each: an
/// interim 100 before the answer; chunked with an extension and a trailer; HTTP/1.0
/// (closes); a body delimited by the close; 204 without a body.
pub const FRAMINGS: [(&str, bool); 5] = [
    (
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        false,
    ),
    (
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nx-trailer: t\r\n\r\n",
        false,
    ),
    ("HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nabc", true),
    ("HTTP/1.1 200 OK\r\n\r\nuntil-close", true),
    ("HTTP/1.1 204 No Content\r\n\r\n", false),
];

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
const TOKEN_EVENT: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";

/// One HTTP/1.1 chunk.
fn http_chunk(s: &str) -> String {
    format!("{:x}\r\n{s}\r\n", s.len())
}

/// How many requests a raw server keeps byte for byte.
pub const SEEN_KEPT: usize = 1024;

/// A raw TCP server on 127.0.0.1:0 that answers GETs as told and records arrivals.
pub struct RawServer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicU64>,
    pub requests: Arc<AtomicU64>,
    pub arrivals: Arc<Mutex<Vec<Instant>>>,
    /// The first `SEEN_KEPT` requests exactly as they came off the wire.
    pub seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

pub fn raw_server(behaviour: Behaviour) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let s = RawServer {
        addr,
        accepted: Arc::default(),
        requests: Arc::default(),
        arrivals: Arc::default(),
        seen: Arc::default(),
        stop: Arc::default(),
    };
    let (accepted, requests, arrivals, seen, stop) = (
        s.accepted.clone(),
        s.requests.clone(),
        s.arrivals.clone(),
        s.seen.clone(),
        s.stop.clone(),
    );
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(mut conn) = conn else { continue };
            accepted.fetch_add(1, Ordering::SeqCst);
            let (requests, arrivals, seen, stop) = (
                requests.clone(),
                arrivals.clone(),
                seen.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    // Every test request is a GET: a request ends at the blank line.
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        // A request is its head plus Content-Length bytes of body.
                        let head = String::from_utf8_lossy(&buf[..end + 4]).to_string();
                        let body_len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() < end + 4 + body_len {
                            break; // the body is still on its way
                        }
                        let raw: Vec<u8> = buf.drain(..end + 4 + body_len).collect();
                        {
                            let mut seen = seen.lock().unwrap();
                            if seen.len() < SEEN_KEPT {
                                seen.push(String::from_utf8_lossy(&raw).into_owned());
                            }
                        }
                        arrivals.lock().unwrap().push(Instant::now());
                        let k = requests.fetch_add(1, Ordering::SeqCst) as usize;
                        let stream_reply;
                        let reply: &[u8] = match behaviour {
                            Behaviour::CutStream => {
                                stream_reply = format!("{SSE_HEAD}{}", http_chunk(&TOKEN_EVENT.repeat(2)));
                                stream_reply.as_bytes()
                            }
                            Behaviour::MalformedStream => {
                                let events = format!("{TOKEN_EVENT}data: {{not json\n\n{TOKEN_EVENT}data: [DONE]\n\n");
                                stream_reply = format!("{SSE_HEAD}{}0\r\n\r\n", http_chunk(&events));
                                stream_reply.as_bytes()
                            }
                            Behaviour::Ok => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                            Behaviour::Token => {
                                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Token: abc123\r\n\r\nok"
                            }
                            Behaviour::CloseAfterOne => {
                                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                            }
                            Behaviour::SilentClose => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                            Behaviour::NeverAnswer => b"",
                            Behaviour::Garbage => b"SSH-2.0-this is not http\r\n\r\n",
                            Behaviour::Framings => FRAMINGS[k % FRAMINGS.len()].0.as_bytes(),
                            Behaviour::HeadOnly => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n",
                            Behaviour::OddForms => ODD_FORMS[k % ODD_FORMS.len()].as_bytes(),
                            Behaviour::BigHead => {
                                stream_reply = big_head();
                                stream_reply.as_bytes()
                            }
                            Behaviour::Upgrade => {
                                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: example/1\r\nconnection: upgrade\r\n\r\n"
                            }
                            Behaviour::Trickle => {
                                for b in FRAMINGS[1].0.as_bytes() {
                                    if conn.write_all(&[*b]).is_err() {
                                        return;
                                    }
                                    std::thread::sleep(Duration::from_micros(200));
                                }
                                b""
                            }
                        };
                        if conn.write_all(reply).is_err() {
                            return;
                        }
                        if behaviour == Behaviour::Upgrade {
                            // Another protocol from here: read what comes, answer nothing.
                            loop {
                                if stop.load(Ordering::SeqCst) {
                                    return;
                                }
                                match conn.read(&mut chunk) {
                                    Ok(0) => return,
                                    Ok(_) => {}
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => return,
                                }
                            }
                        }
                        if matches!(
                            behaviour,
                            Behaviour::CloseAfterOne
                                | Behaviour::SilentClose
                                | Behaviour::Garbage
                                | Behaviour::CutStream
                        ) || (behaviour == Behaviour::Framings && FRAMINGS[k % FRAMINGS.len()].1)
                        {
                            return; // drop closes
                        }
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return,
                    }
                }
            });
        }
    });
    s
}

/// A listener that only counts connection attempts (to prove nothing was sent).
pub fn counting_listener() -> RawServer {
    raw_server(Behaviour::Ok)
}

/// A loopback address where a TCP connect never completes: a listener that never accepts,
/// its accept queue cut to one (`listen(fd, 0)`) and filled, so the kernel drops every
/// further SYN — as a firewall that drops packets, or a host that is gone. Kept open while
/// the returned value lives.
pub struct BlackHole {
    pub addr: std::net::SocketAddr,
    _listener: TcpListener,
    _filling: Vec<std::net::TcpStream>,
}

pub fn black_hole() -> BlackHole {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => filling.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("filling the accept queue: {e}"),
        }
        assert!(filling.len() < 16, "the accept queue did not fill");
    }
    BlackHole {
        addr,
        _listener: listener,
        _filling: filling,
    }
}

/// Microseconds as HDR reports them, in milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A fresh directory for one test's files.
pub fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ratebench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// How long a README or docs example may run in the tests: `RATEBENCH_EXAMPLES_MAX_SECONDS`
/// (default 1; `0`: as written, None).
pub fn examples_max_duration() -> Option<Duration> {
    match std::env::var("RATEBENCH_EXAMPLES_MAX_SECONDS") {
        Ok(v) if v.trim() == "0" => None,
        Ok(v) => Some(Duration::from_secs_f64(
            v.trim()
                .parse()
                .expect("RATEBENCH_EXAMPLES_MAX_SECONDS: seconds"),
        )),
        Err(_) => Some(Duration::from_secs(1)),
    }
}

/// `script` with every duration flag's value capped at `max` (None: as written).
pub fn shortened(script: &str, max: Option<Duration>) -> String {
    let Some(max) = max else {
        return script.to_string();
    };
    let cap = |v: &str| match ratebench::units::parse_duration(v) {
        Ok(d) if d > max => format!("{}s", max.as_secs_f64()),
        _ => v.to_string(),
    };
    let mut out = String::new();
    for line in script.lines() {
        let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
        for i in 0..words.len() {
            if let Some(v) = words[i].strip_prefix("-d").filter(|v| !v.is_empty()) {
                words[i] = format!("-d{}", cap(v));
            } else if words[i] == "--duration" && i + 1 < words.len() {
                words[i + 1] = cap(&words[i + 1]);
            }
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

/// The ways of sending on time a test runs through: `--io-uring off` (the timer and
/// spin, the default) and `--io-uring on` (the kernel's linked timeouts), the latter only
/// where this machine lets a process use io_uring (its reason is printed where not).
pub fn send_paths() -> Vec<&'static str> {
    match ratebench::engine::uring::unusable() {
        None => vec!["off", "on"],
        Some(why) => {
            eprintln!("io_uring cannot be used here ({why}): the timer path only");
            vec!["off"]
        }
    }
}

/// A free loopback port (bound and let go of: another process could take it meanwhile,
/// which the server's start would then report), never one this process handed out before —
/// the kernel may give a port just let go of to the next bind, and one server's config
/// with the same port twice does not start (nginx: "a duplicate listen").
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}
