//! `--io-uring`: requests sent by the kernel's timer (io_uring linked timeouts), the
//! report and JSON saying which way they went, the fallback where a run or the machine
//! does not allow it, and faults counted on that path exactly as on the timer path.
//!
//! How punctual the path is and that it tells the truth about latency is in
//! `tests/truth.rs` (the truth matrix, and each request's arrival by the server's own
//! clock); its stalls in `tests/open_loop.rs` and `tests/sse.rs`.

mod common;
use common::*;
use ratebench::outcome::ErrorClass;
use ratebench::run::Pacing;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

/// These tests measure time; running them one at a time keeps them from loading each other.
static TIMING: Mutex<()> = Mutex::new(());

/// The text report of `r`, as `ratebench` prints it.
fn report_text(r: &ratebench::run::RunResult) -> String {
    let s = ratebench::report::Summary::of(r);
    ratebench::report::text::render(r, &s, &[], Default::default())
}

/// Whether this machine lets a process use io_uring (else the tests below check that the
/// run says so and falls back).
fn usable() -> bool {
    send_paths().contains(&"on")
}

#[test]
fn the_report_and_the_json_say_which_way_requests_were_sent() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let base = load(&url).rate("500").duration("1s").connections(5);

    // The default: the timer and spin, each send timed by the kernel's transmit stamp.
    let (r, doc) = base.clone().run_json();
    assert_eq!(doc["pacing"]["path"], "timer and spin");
    assert_eq!(doc["pacing"]["io_uring_not_used"], "--io-uring off");
    assert_eq!(doc["pacing"]["sends"], 0);
    let stamped = doc["pacing"]["kernel_stamped"].as_u64().unwrap();
    assert!(stamped + 5 >= 500, "{stamped} of 500 stamped");
    assert!(
        report_text(&r).contains(&format!("; {stamped} of 500 sends stamped by the kernel")),
        "{}",
        report_text(&r)
    );
    // The simpler path: no kernel stamps at all.
    let (_, doc) = base.clone().switch("--no-kernel-timestamps").run_json();
    assert_eq!(doc["pacing"]["kernel_stamped"], 0);
    let text = report_text(&r);
    assert!(
        text.contains("pacing by timer and spin\n") || text.contains("pacing by timer and spin;"),
        "{text}"
    );
    let (_, doc) = base.clone().flag("--spin", "0").run_json();
    assert_eq!(doc["pacing"]["path"], "timer");

    // Asked for where it can run: every request through the ring, stamped as it left.
    let (r, doc) = base.clone().flag("--io-uring", "auto").run_json();
    if !usable() {
        assert_eq!(doc["pacing"]["path"], "timer and spin");
        assert!(doc["pacing"]["io_uring_not_used"].is_string(), "{doc}");
        return;
    }
    let scheduled = r.recorder.total.scheduled;
    assert_eq!(scheduled, 500);
    assert_eq!(doc["pacing"]["path"], Pacing::IO_URING);
    assert_eq!(doc["pacing"]["io_uring_not_used"], serde_json::Value::Null);
    assert_eq!(doc["pacing"]["sends"], scheduled);
    // A connection's first bytes may leave before the kernel stamps its sends.
    let stamped = doc["pacing"]["kernel_stamped"].as_u64().unwrap();
    assert!(stamped + 5 >= scheduled, "{stamped} of {scheduled} stamped");
    let text = report_text(&r);
    let line = text
        .lines()
        .find(|l| l.starts_with("Generator:"))
        .expect("a Generator line");
    assert!(
        line.contains(&format!(
            "pacing by io_uring linked timeouts ({stamped} of {scheduled} sends stamped by the \
             kernel as they left)"
        )),
        "{line}"
    );
}

#[test]
fn auto_falls_back_to_the_timer_where_the_run_does_not_allow_it_and_says_why() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let tls = serve(|c| c.tls = true);
    let h2c = serve(|c| c.http2 = true);
    let plain = serve(|_| {});
    let script = tmpdir("io_uring").join("hello.lua");
    std::fs::write(&script, "function request()\n  return wrk.format()\nend\n").unwrap();
    let auto = |url: String| {
        load(&url)
            .rate("200")
            .duration("1s")
            .connections(2)
            .flag("--io-uring", "auto")
    };
    let cases = [
        (auto(format!("https://{}/", tls.addr)).switch("-k"), "TLS"),
        (
            auto(format!("http://{}/", h2c.addr)).switch("--http2"),
            "HTTP/2",
        ),
        (
            auto(format!("http://{}/", plain.addr)).script(script.to_str().unwrap()),
            "Lua script",
        ),
        (
            auto(format!("http://{}/", plain.addr)).flag("--body", &"x".repeat(70_000)),
            "over 64 KiB",
        ),
        (
            auto(format!("http://{}/", plain.addr)).flag("--precision", "1ms"),
            "--precision",
        ),
    ];
    for (l, why) in cases {
        let (r, doc) = l.run_json();
        let t = &r.recorder.total;
        assert_eq!(t.completed, t.scheduled, "{why}: every request answered");
        let not_used = doc["pacing"]["io_uring_not_used"]
            .as_str()
            .unwrap_or_default();
        assert!(not_used.contains(why), "{why}: {}", doc["pacing"]);
        assert_eq!(doc["pacing"]["sends"], 0);
        let path = doc["pacing"]["path"].as_str().unwrap();
        if why == "--precision" {
            assert_eq!(path, "precision grid");
        } else {
            assert_eq!(path, "timer and spin");
            let text = report_text(&r);
            assert!(
                text.contains(&format!("(io_uring not used: {not_used})")),
                "{why}: {text}"
            );
        }
    }
}

#[test]
fn on_is_refused_before_any_traffic_where_it_cannot_run() {
    let server = raw_server(Behaviour::Ok);
    let url = format!("http://{}/", server.addr);
    for (extra, why) in [
        (&["--http2"][..], "HTTP/2"),
        (&["--precision", "1ms"][..], "--precision"),
    ] {
        let mut args = vec!["-R100", "-d1s", "--io-uring", "on", "--no-tui"];
        args.extend_from_slice(extra);
        args.push(&url);
        let out = run_bin(&args, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{why}: {err}");
        assert!(
            err.contains("--io-uring") && err.contains(why),
            "{why}: {err}"
        );
    }
    let https = format!("https://{}/", server.addr);
    let out = run_bin(
        &[
            "-R100",
            "-d1s",
            "--io-uring",
            "on",
            "-k",
            "--no-tui",
            &https,
        ],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"));
    let big = "x".repeat(70_000);
    let out = run_bin(
        &[
            "-R100",
            "-d1s",
            "--io-uring",
            "on",
            "--body",
            &big,
            "--no-tui",
            &url,
        ],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("over 64 KiB"));
    let out = run_bin(
        &["-R100", "-d1s", "--io-uring", "sometimes", &url],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one of auto, on, off"));
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        0,
        "nothing was sent"
    );
}

/// What a run against a faulty server ended in: the error classes, completions and
/// retries, whichever way its requests were sent.
fn outcome(behaviour: Behaviour, path: &str, rate: &str, extra: &[&str]) -> (Vec<u64>, u64, u64) {
    let server = raw_server(behaviour);
    let url = format!("http://{}/", server.addr);
    let mut l = load(&url)
        .rate(rate)
        .duration("1s")
        .connections(4)
        .flag("--io-uring", path);
    for pair in extra.chunks(2) {
        l = l.flag(pair[0], pair[1]);
    }
    let r = l.run();
    let t = &r.recorder.total;
    // The path asked for is the one that sent: with `on`, every request that went out
    // (retries too) went through the ring.
    let sends = r
        .pacing
        .as_ref()
        .expect("a live run says how it paced")
        .sends;
    if path == "on" {
        assert!(
            t.sent > 0 && sends >= t.sent,
            "{sends} ring sends of {} sent",
            t.sent
        );
    } else {
        assert_eq!(sends, 0);
    }
    let classes = ErrorClass::ALL
        .iter()
        .map(|c| t.errors[c.index()])
        .collect();
    let retried = r.recorder.retried.iter().sum();
    (classes, t.completed, retried)
}

#[test]
fn faults_are_counted_on_the_io_uring_path_as_on_the_timer_path() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    if !usable() {
        return;
    }
    // Each fault ends every request the same way whichever path sent it: the same error
    // classes, completions and retries (the simpler path is the truth here).
    for (behaviour, rate, extra, name) in [
        (
            Behaviour::SilentClose,
            "100",
            &[][..],
            "a keep-alive connection closed under us",
        ),
        (
            Behaviour::CloseAfterOne,
            "100",
            &[][..],
            "Connection: close",
        ),
        (Behaviour::Garbage, "50", &[][..], "not HTTP"),
        (
            Behaviour::NeverAnswer,
            "20",
            &["--timeout", "200ms", "--grace", "300ms"][..],
            "never answers",
        ),
        (Behaviour::Framings, "100", &[][..], "every framing"),
    ] {
        let timer = outcome(behaviour, "off", rate, extra);
        let ring = outcome(behaviour, "on", rate, extra);
        assert_eq!(ring, timer, "{name}: (errors by class, completed, retried)");
    }
}

/// Runs the binary with `args` under a seccomp filter that refuses `io_uring_setup` with
/// EPERM, as a container's default profile does (Docker's).
#[cfg(target_arch = "x86_64")]
fn run_without_io_uring(args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    // Classic BPF over struct seccomp_data: arch at offset 4, nr at offset 0.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const NR_IO_URING_SETUP: u32 = 425;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = Box::leak(Box::new([
        op(LD_W_ABS, 0, 0, 4),
        op(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        op(RET_K, 0, 0, RET_ALLOW),
        op(LD_W_ABS, 0, 0, 0),
        op(JEQ_K, 0, 1, NR_IO_URING_SETUP),
        op(RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, RET_ALLOW),
    ]));
    let prog = Box::leak(Box::new(libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    }));
    // (As an address: a raw pointer is not Send, which pre_exec's closure must be.)
    let prog = prog as *const libc::sock_fprog as usize;
    let mut cmd = bin();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the child only makes two prctl calls on memory leaked
    // above (alive for the process's life); both are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    2, // SECCOMP_MODE_FILTER
                    prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    wait_limited(cmd.spawn().expect("binary starts"), Duration::from_secs(30))
}

#[test]
#[cfg(target_arch = "x86_64")]
fn a_process_refused_io_uring_falls_back_and_says_why() {
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("io_uring_seccomp");
    let json = dir.join("out.json");
    let out = run_without_io_uring(&[
        "-R500",
        "-d1s",
        "-c5",
        "--io-uring",
        "auto",
        "--no-tui",
        "--json",
        json.to_str().unwrap(),
        &url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let why = doc["pacing"]["io_uring_not_used"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(doc["pacing"]["path"], "timer and spin", "{}", doc["pacing"]);
    assert!(why.contains("refused to this process"), "{why}");
    assert!(
        text.contains(&format!("(io_uring not used: {why})")),
        "{text}"
    );
    assert_eq!(doc["accounting"]["completed"], 500);
    // Asked for outright, the run is refused before any traffic: the machine's doing (1).
    let out = run_without_io_uring(&["-R500", "-d1s", "--io-uring", "on", "--no-tui", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--io-uring on") && err.contains("refused"),
        "{err}"
    );
}
