//! Interop: ratebench against real servers we did not write — nginx, h2o, Apache httpd with
//! mod_http2 and nghttpd — from the distribution's packages (`.ci/run` installs them), each
//! started on loopback with a config kept in `tests/interop/`.
//!
//! The truth is the server's own access log: for every run, the lines it added for the
//! run's port are exactly the requests ratebench counts completed, and nothing the server
//! answered is an error. Cases: GETs, 1 MB and 10 MB bodies, HEAD, a 100 KB POST, 204,
//! chunked and streamed (SSE) answers, connections the server recycles (nginx
//! `keepalive_requests 100`, Apache `MaxKeepAliveRequests 100`), a small stream limit under
//! `--streams 100`, and a short idle timeout under a low rate — over HTTP/1.1, h2c and h2
//! over TLS.

mod common;

use common::*;
use ratebench::outcome::{ErrorClass, Retry};
use ratebench::run::RunResult;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process started for a test, stopped (by its PID) when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
    dir: PathBuf,
    /// Its access log (nghttpd: its verbose trace, one `recv HEADERS` per request).
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signalling a child this test started, by its PID.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Lines of its access log for `port` (the first field of each line).
    fn served(&self, port: u16) -> u64 {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if self.name == "nghttpd" {
            // One instance per port; no access log: each request's HEADERS as it traced it.
            return text.matches("recv HEADERS frame").count() as u64;
        }
        let p = port.to_string();
        text.lines()
            .filter(|l| l.split_whitespace().next() == Some(p.as_str()))
            .count() as u64
    }

    fn error_log(&self) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains("error") || name.ends_with(".out") {
                out += &format!(
                    "--- {name}\n{}",
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                );
            }
        }
        out
    }
}

/// The path of a server binary, or a failure saying how to get it.
fn need(binary: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(binary);
        if p.exists() {
            return p;
        }
    }
    panic!("{binary} is not installed: apt-get install {package} (.ci/run does)");
}

/// The files every server serves, and a certificate for TLS.
fn site(dir: &Path) {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(
        www.join("index.html"),
        "<html>ratebench interop</html>\n".repeat(20),
    )
    .unwrap();
    std::fs::write(www.join("1m.bin"), vec![b'x'; 1 << 20]).unwrap();
    std::fs::write(www.join("10m.bin"), vec![b'y'; 10 << 20]).unwrap();
    let mut events = String::new();
    // Words that are one token each (by the default tokenizer, which counts a stream
    // without usage): every event delivered is every token counted.
    for i in 0..TOKENS {
        events += &format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            ratebench::serve::word(i)
        );
    }
    events += "data: [DONE]\n\n";
    std::fs::write(www.join("events.sse"), events).unwrap();
    std::fs::write(dir.join("post.bin"), vec![b'p'; 100 << 10]).unwrap();
    std::fs::write(dir.join("mime.types"), "text/html html\n").unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// Content events in `events.sse`.
const TOKENS: u64 = 20;

/// Fills a config template's `{{NAME}}`s.
fn config(template: &str, dir: &Path, values: &[(&str, String)]) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop")
            .join(template),
    )
    .unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    let mut text = text.replace("{{DIR}}", dir.to_str().unwrap());
    // As root, the workers run as nobody (who can read the site: directories are 0755).
    let users = [
        ("{{USER}}", "user nobody nogroup;"),
        ("{{H2O_USER}}", "user: nobody"),
        ("{{APACHE_USER}}", "User nobody\nGroup nogroup"),
    ];
    for (k, v) in users {
        text = text.replace(k, if root { v } else { "" });
    }
    for (k, v) in values {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    assert!(!text.contains("{{"), "unfilled placeholder in {template}");
    text
}

/// Starts `cmd` and waits until every port in `ports` accepts connections.
fn start(name: &'static str, mut cmd: Command, dir: PathBuf, log: &str, ports: &[u16]) -> Daemon {
    let out = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} did not start: {e}"));
    let mut d = Daemon {
        name,
        child,
        log: dir.join(log),
        dir,
    };
    let t0 = Instant::now();
    for &p in ports {
        while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("{name} exited ({status}):\n{}", d.error_log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "{name} never listened on {p}:\n{}",
                d.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    d
}

/// How a case is sent and what the server answers.
struct Case {
    what: &'static str,
    path: &'static str,
    args: Vec<String>,
    rate: &'static str,
    duration: &'static str,
    connections: usize,
    /// The status every request gets (None: any).
    status: Option<u16>,
    /// Each answer is an event stream of `TOKENS` content events.
    stream: bool,
}

fn case(what: &'static str, path: &'static str) -> Case {
    Case {
        what,
        path,
        args: Vec::new(),
        rate: "200",
        duration: "1s",
        connections: 4,
        status: Some(200),
        stream: false,
    }
}

impl Case {
    fn rate(mut self, r: &'static str, d: &'static str, c: usize) -> Case {
        (self.rate, self.duration, self.connections) = (r, d, c);
        self
    }
    fn arg(mut self, a: &str) -> Case {
        self.args.push(a.to_string());
        self
    }
    fn status(mut self, s: Option<u16>) -> Case {
        self.status = s;
        self
    }
    fn stream(mut self) -> Case {
        self.stream = true;
        self
    }
}

/// The cases every server gets (those needing a server's own locations added by it).
fn common_cases(dir: &Path) -> Vec<Case> {
    let post = dir.join("post.bin").to_str().unwrap().to_string();
    vec![
        case("GET", "/index.html").rate("300", "1s", 4),
        case("1 MB body", "/1m.bin").rate("40", "1s", 4),
        case("10 MB body", "/10m.bin").rate("6", "1s", 2),
        case("HEAD", "/index.html").arg("--method=HEAD"),
        // Static files do not take POST: any status, but answered and logged.
        case("100 KB POST", "/index.html")
            .arg("--method=POST")
            .arg(&format!("--body-file={post}"))
            .rate("50", "1s", 2)
            .status(None),
        case("SSE", "/events.sse").rate("50", "1s", 2).stream(),
    ]
}

/// The protocols a port speaks.
#[derive(Clone, Copy, PartialEq)]
enum Proto {
    H1,
    /// HTTP/1.1 in clear, sent by io_uring linked timeouts (`--io-uring auto`).
    H1Uring,
    H1Tls,
    H2c,
    H2Tls,
}

impl Proto {
    fn url(self, port: u16, path: &str) -> (String, Vec<&'static str>) {
        match self {
            Proto::H1 => (format!("http://127.0.0.1:{port}{path}"), vec![]),
            Proto::H1Uring => (
                format!("http://127.0.0.1:{port}{path}"),
                vec!["--io-uring", "auto"],
            ),
            Proto::H1Tls => (format!("https://127.0.0.1:{port}{path}"), vec!["-k"]),
            Proto::H2c => (format!("http://127.0.0.1:{port}{path}"), vec!["--http2"]),
            Proto::H2Tls => (
                format!("https://127.0.0.1:{port}{path}"),
                vec!["--http2", "-k"],
            ),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Proto::H1 => "HTTP/1.1",
            Proto::H1Uring => "HTTP/1.1 by io_uring",
            Proto::H1Tls => "HTTP/1.1 over TLS",
            Proto::H2c => "h2c",
            Proto::H2Tls => "h2 over TLS",
        }
    }
}

/// Runs `c` against `port` of `d` over `proto` and checks it against the access log:
/// every request completed is one the server logged, none is an error, none unfinished.
fn check(d: &Daemon, port: u16, proto: Proto, c: &Case) -> RunResult {
    let (url, flags) = proto.url(port, c.path);
    let before = d.served(port);
    let mut l = load(&url)
        .rate(c.rate)
        .duration(c.duration)
        .connections(c.connections)
        .timeout("5s")
        .grace("5s");
    for f in flags {
        l = l.switch(f);
    }
    // (`--io-uring auto`: a request over 64 KiB keeps the timer path; every other one
    // must go by the ring.)
    let by_ring = proto == Proto::H1Uring && !c.what.contains("100 KB");
    let http2 = matches!(proto, Proto::H2c | Proto::H2Tls);
    for a in &c.args {
        let (k, v) = a.split_once('=').unwrap_or((a, ""));
        if k == "--streams" && !http2 {
            continue; // an HTTP/1.1 connection carries one request at a time
        }
        l = if v.is_empty() {
            l.switch(k)
        } else {
            l.flag(k, v)
        };
    }
    let r = l.run();
    if by_ring {
        let p = r.pacing.as_ref().expect("a live run says how it paced");
        assert_eq!(
            (p.path.as_str(), p.sends),
            (ratebench::run::Pacing::IO_URING, r.recorder.total.scheduled),
            "{} {}: {p:?}",
            d.name,
            c.what
        );
    }
    // The server logs an answer once it is sent: give it a moment.
    let mut served = d.served(port) - before;
    let t0 = Instant::now();
    while served < r.recorder.total.completed && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
        served = d.served(port) - before;
    }
    let t = &r.recorder.total;
    let what = format!("{} {} {}", d.name, proto.name(), c.what);
    let errors: Vec<String> = ErrorClass::ALL
        .iter()
        .filter(|e| t.errors[e.index()] > 0)
        .map(|e| {
            format!(
                "{} {} {:?}",
                e.name(),
                t.errors[e.index()],
                r.recorder.causes[e.index()]
            )
        })
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: errors {errors:?}\n{}",
        d.error_log()
    );
    assert_eq!(r.unfinished, 0, "{what}: unfinished");
    assert_eq!(t.completed, t.scheduled, "{what}: every request completed");
    assert_eq!(
        served, t.completed,
        "{what}: the server logged {served}, ratebench completed {}",
        t.completed
    );
    if let Some(s) = c.status {
        assert_eq!(
            r.recorder.status[usize::from(s)],
            t.completed,
            "{what}: all {s}"
        );
    }
    if c.stream {
        let st = r.recorder.stream.as_ref().expect("event streams recorded");
        assert_eq!(st.streams, t.completed, "{what}: every answer a stream");
        assert_eq!(
            t.tokens,
            TOKENS * t.completed,
            "{what}: every token counted"
        );
    }
    r
}

/// nginx's ports, by behaviour and protocol.
struct NginxPorts {
    /// Client certificates required (h2 and HTTP/1.1 over TLS).
    mtls: u16,
    default: [u16; 3],
    recycle: [u16; 3],
    streams: [u16; 3],
    idle: [u16; 3],
}

fn nginx(name: &str) -> (Daemon, NginxPorts) {
    let bin = need("nginx", "nginx-light");
    let dir = tmpdir(&format!("interop-{name}"));
    site(&dir);
    let ports = NginxPorts {
        mtls: free_port(),
        default: [free_port(), free_port(), free_port()],
        recycle: [free_port(), free_port(), free_port()],
        streams: [free_port(), free_port(), free_port()],
        idle: [free_port(), free_port(), free_port()],
    };
    let mut values = Vec::new();
    for (k, p) in [
        ("DEFAULT", ports.default),
        ("RECYCLE", ports.recycle),
        ("STREAMS", ports.streams),
        ("IDLE", ports.idle),
    ] {
        for (suffix, port) in ["H1", "H2C", "TLS"].iter().zip(p) {
            values.push((format!("{k}_{suffix}"), port.to_string()));
        }
    }
    values.push(("MTLS".into(), ports.mtls.to_string()));
    values.push(("FIXTURES".into(), fixtures().to_str().unwrap().to_string()));
    let values: Vec<(&str, String)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config("nginx.conf", &dir, &values)).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("nginx-error.log"));
    let mut all: Vec<u16> = [ports.default, ports.recycle, ports.streams, ports.idle].concat();
    all.push(ports.mtls);
    let d = start("nginx", cmd, dir, "nginx-access.log", &all);
    (d, ports)
}

/// nginx: every common case, 204, chunked, on one protocol (index into its ports).
fn nginx_cases(proto: Proto, i: usize) {
    let (d, ports) = nginx(&format!("nginx-{i}-{}", proto as u8));
    let port = ports.default[i];
    for c in common_cases(&d.dir) {
        check(&d, port, proto, &c);
    }
    check(&d, port, proto, &case("204", "/204").status(Some(204)));
    check(
        &d,
        port,
        proto,
        &case("POST answered", "/post")
            .arg("--method=POST")
            .arg("--body=hello"),
    );
    let chunked = case("chunked (gzip)", "/chunked").arg("-H=Accept-Encoding: gzip");
    check(&d, port, proto, &chunked);
    // Connections recycled after 100 requests: at 1000 req/s over 2 connections, each
    // closes every 0.2 s. Nothing lost: HTTP/2's GOAWAY-refused streams are sent again.
    let r = check(
        &d,
        ports.recycle[i],
        proto,
        &case("keepalive_requests 100", "/index.html").rate("1000", "2s", 2),
    );
    assert!(
        r.recorder.reconnects >= 2000 / 100 - 2,
        "reconnects {}",
        r.recorder.reconnects
    );
    // A low rate against a 1 s idle timeout: connections the server closed are reopened.
    check(
        &d,
        ports.idle[i],
        proto,
        &case("1 s idle timeout", "/index.html").rate("1", "4s", 1),
    );
    if matches!(proto, Proto::H2c | Proto::H2Tls) {
        // 8 streams allowed: never more in flight, so none refused.
        let r = check(
            &d,
            ports.streams[i],
            proto,
            &case("8 streams", "/1m.bin")
                .rate("400", "1s", 1)
                .arg("--streams=100"),
        );
        assert_eq!(r.recorder.stream_limit.map(|l| l.1), Some(8));
    }
}

#[test]
fn nginx_http1() {
    nginx_cases(Proto::H1, 0);
}

#[test]
fn nginx_http1_by_io_uring() {
    if send_paths().contains(&"on") {
        nginx_cases(Proto::H1Uring, 0);
    }
}

#[test]
fn nginx_http1_over_tls() {
    nginx_cases(Proto::H1Tls, 2);
}

#[test]
fn nginx_h2c() {
    nginx_cases(Proto::H2c, 1);
}

#[test]
fn nginx_h2_over_tls() {
    nginx_cases(Proto::H2Tls, 2);
}

#[test]
fn nginx_recycling_http2_connections_at_2000_per_s_loses_nothing() {
    // nginx closes each HTTP/2 connection after keepalive_requests (100 here) with one
    // GOAWAY; the streams sent meanwhile were never processed and go again on a new
    // connection. 10 s at 2000 req/s: 20,000 requests, each logged once, none an error.
    let (d, ports) = nginx("nginx-recycle");
    let c = case("keepalive_requests 100, 2000/s", "/index.html").rate("2000", "10s", 4);
    let r = check(&d, ports.recycle[1], Proto::H2c, &c);
    assert!(r.recorder.reconnects >= 20_000 / 100 - 4);
    // Refused streams are counted as retried (how many depends on the round trip).
    let goaway = r.recorder.retried[Retry::GoAway.index()];
    eprintln!(
        "retried after GOAWAY: {goaway} (reconnects {})",
        r.recorder.reconnects
    );
}

#[test]
fn http2_load_is_spread_over_the_connections() {
    // -R100 -c10 over HTTP/2: the requests go to the least-loaded connection, ties in
    // turn, so each of the 10 connections carries 10 % ± 3 % of them (nginx logs the
    // connection of each request).
    let (d, ports) = nginx("nginx-spread");
    let before = std::fs::read_to_string(&d.log)
        .unwrap_or_default()
        .lines()
        .count();
    let url = format!("http://127.0.0.1:{}/index.html", ports.default[1]);
    let r = load(&url)
        .rate("100")
        .duration("3s")
        .connections(10)
        .switch("--http2")
        .run();
    assert_eq!(r.recorder.total.completed, 300);
    std::thread::sleep(Duration::from_millis(200));
    let _ = before;
    let conns = connections_of(&d, ports.default[1]);
    assert_eq!(conns.len(), 10, "{conns:?}");
    for (c, n) in &conns {
        assert!(
            (21..=39).contains(n),
            "connection {c} carried {n} of 300: {conns:?}"
        );
    }
}

/// Requests per connection, from a second nginx log that names each request's connection.
fn connections_of(d: &Daemon, port: u16) -> std::collections::BTreeMap<String, u64> {
    let text = std::fs::read_to_string(d.dir.join("nginx-conns.log")).unwrap_or_default();
    let p = port.to_string();
    let mut m = std::collections::BTreeMap::new();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        if f.next() == Some(p.as_str()) {
            *m.entry(f.next().unwrap_or("?").to_string()).or_insert(0) += 1;
        }
    }
    m
}

#[test]
fn h2o_http1_h2c_and_h2() {
    let bin = need("h2o", "h2o");
    let dir = tmpdir("interop-h2o");
    site(&dir);
    let (plain, tls) = (free_port(), free_port());
    let values = [
        ("H2O_PLAIN", plain.to_string()),
        ("H2O_TLS", tls.to_string()),
    ];
    let conf = dir.join("h2o.conf");
    std::fs::write(&conf, config("h2o.conf", &dir, &values)).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&conf);
    let d = start("h2o", cmd, dir, "h2o-access.log", &[plain, tls]);
    for (port, proto) in [
        (plain, Proto::H1),
        (plain, Proto::H2c),
        (tls, Proto::H2Tls),
        (tls, Proto::H1Tls),
    ] {
        for c in common_cases(&d.dir) {
            check(&d, port, proto, &c);
        }
        check(
            &d,
            port,
            proto,
            &case("1 s idle timeout", "/index.html").rate("1", "3s", 1),
        );
        // Load spread over connections: h2o's per-connection request limit does not queue.
        check(
            &d,
            port,
            proto,
            &case("-c10", "/index.html").rate("500", "1s", 10),
        );
    }
}

#[test]
fn apache_http1_h2c_and_h2() {
    let bin = need("apache2", "apache2");
    let dir = tmpdir("interop-apache");
    site(&dir);
    let (plain, tls) = (free_port(), free_port());
    let values = [
        ("APACHE_PLAIN", plain.to_string()),
        ("APACHE_TLS", tls.to_string()),
    ];
    let conf = dir.join("apache.conf");
    std::fs::write(&conf, config("apache.conf", &dir, &values)).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-f").arg(&conf).arg("-DFOREGROUND");
    let d = start("apache", cmd, dir, "apache-access.log", &[plain, tls]);
    for (port, proto) in [
        (plain, Proto::H1),
        (plain, Proto::H2c),
        (tls, Proto::H2Tls),
        (tls, Proto::H1Tls),
    ] {
        for c in common_cases(&d.dir) {
            check(&d, port, proto, &c);
        }
        // MaxKeepAliveRequests 100 (HTTP/1.1) and H2MaxSessionStreams 8 with --streams 100.
        let r = check(
            &d,
            port,
            proto,
            &case("recycled, 8 streams", "/index.html")
                .rate("500", "2s", 2)
                .arg("--streams=100"),
        );
        if proto == Proto::H1 {
            assert!(
                r.recorder.reconnects >= 1000 / 100 - 2,
                "reconnects {}",
                r.recorder.reconnects
            );
        }
        check(
            &d,
            port,
            proto,
            &case("1 s idle timeout", "/index.html").rate("1", "3s", 1),
        );
    }
}

/// `tests/data/tls`: certificates made with the OpenSSL command line.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls")
}

#[test]
fn nginx_accepts_an_x509_v1_client_certificate() {
    // `openssl x509 -req` without extensions makes a v1 certificate; OpenSSL servers take
    // it as a client certificate, so ratebench sends it (over HTTP/1.1 and h2).
    let (d, ports) = nginx("nginx-mtls");
    let cert = fixtures().join("client.pem");
    let key = fixtures().join("client.key");
    for proto in [Proto::H1Tls, Proto::H2Tls] {
        let c = case("v1 client certificate", "/index.html")
            .rate("20", "1s", 1)
            .arg(&format!("--cert={}", cert.display()))
            .arg(&format!("--key={}", key.display()));
        check(&d, ports.mtls, proto, &c);
    }
    // Without a certificate nginx answers 400 (and logs it): answered, so completed.
    check(
        &d,
        ports.mtls,
        Proto::H1Tls,
        &case("no client certificate", "/index.html").status(Some(400)),
    );
}

#[test]
fn nghttpd_h2c_and_h2() {
    // nghttp2's own server, allowing 8 concurrent streams, over h2c and h2 over TLS (one
    // instance each: its trace counts requests per instance).
    let bin = need("nghttpd", "nghttp2-server");
    for tls in [false, true] {
        let dir = tmpdir(&format!("interop-nghttpd-{tls}"));
        site(&dir);
        std::fs::write(
            dir.join("mime.types"),
            "text/event-stream sse\ntext/html html\n",
        )
        .unwrap();
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.arg("-v")
            .arg("-a")
            .arg("127.0.0.1")
            .arg("-m")
            .arg("8")
            .arg("-d")
            .arg(dir.join("www"))
            .arg(format!(
                "--mime-types-file={}",
                dir.join("mime.types").display()
            ))
            .arg(port.to_string());
        if tls {
            cmd.arg(dir.join("key.pem")).arg(dir.join("cert.pem"));
        } else {
            cmd.arg("--no-tls");
        }
        let d = start("nghttpd", cmd, dir, "nghttpd.out", &[port]);
        let proto = if tls { Proto::H2Tls } else { Proto::H2c };
        for c in common_cases(&d.dir) {
            check(&d, port, proto, &c);
        }
        let c = case("8 streams", "/1m.bin")
            .rate("200", "1s", 1)
            .arg("--streams=100");
        let r = check(&d, port, proto, &c);
        assert_eq!(r.recorder.stream_limit.map(|l| l.1), Some(8));
    }
}
