//! The guide's examples run as written: every ```sh block in `docs/*.md` marked
//! `<!-- runnable -->` is run as one `sh -e` script in a scratch directory of its own, where
//! `ratebench` is this build and `127.0.0.1:8080` is a `ratebench serve --delay 1ms..3ms`
//! (as the README starts one); any other `127.0.0.1:PORT` in a block becomes a free port, so
//! a block may start a server of its own (`ratebench serve --addr 127.0.0.1:8443 --tls &`),
//! which ends with the block. Each block must exit 0.
//!
//! Durations are shortened so the suite stays short: a `-dT` or `--duration T` longer than
//! `RATEBENCH_EXAMPLES_MAX_SECONDS` (default 1) runs for that long instead; set it to 0 to
//! run every example for as long as it is written.

mod common;
use common::*;
use std::time::Duration;

/// The runnable blocks of `text`: (the line the block starts on, its script).
fn runnable(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, l)) = lines.next() {
        if l.trim() != "<!-- runnable -->" {
            continue;
        }
        assert_eq!(
            lines.next().map(|(_, l)| l.trim()),
            Some("```sh"),
            "line {}: a runnable block is ```sh",
            n + 1
        );
        let mut script = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            script.push_str(l);
            script.push('\n');
        }
        out.push((n + 1, script));
    }
    out
}

#[test]
fn duration_caps_shorten_only_longer_runs() {
    let two = Some(Duration::from_secs(2));
    assert_eq!(
        shortened("ratebench -R10 -d30s --duration 1m x\n", two),
        "ratebench -R10 -d2s --duration 2s x\n"
    );
    assert_eq!(shortened("ratebench -d1s -d\n", two), "ratebench -d1s -d\n");
    assert_eq!(shortened("ratebench -d30s\n", None), "ratebench -d30s\n");
}

/// Ports of `127.0.0.1:PORT` in `script` other than 8080.
fn other_ports(script: &str) -> Vec<String> {
    let mut ports: Vec<String> = Vec::new();
    for (i, _) in script.match_indices("127.0.0.1:") {
        let port: String = script[i + 10..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        // (Not a port that cannot be one: an example of the error it is.)
        let real = port.parse::<u32>().is_ok_and(|p| p <= 65535);
        if real && port != "8080" && !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

#[test]
fn every_runnable_example_in_the_guide_runs() {
    use std::os::unix::process::CommandExt;
    let max = examples_max_duration();
    let server = serve(|c| {
        c.delay = Duration::from_millis(1);
        c.delay_max = Some(Duration::from_millis(3));
    });
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut pages: Vec<_> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    let bin = env!("CARGO_BIN_EXE_ratebench");
    // Pages without an example to run: how to build and test, and one benchmark run's figures.
    let exempt = ["development.md", "performance.md"];
    let mut ran = 0;
    for page in &pages {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(page).unwrap();
        let blocks = runnable(&text);
        assert!(
            !blocks.is_empty() || exempt.contains(&name.as_str()),
            "{name} has no runnable example"
        );
        for (line, script) in blocks {
            let mut script = shortened(&script, max);
            for port in other_ports(&script) {
                script = script.replace(
                    &format!("127.0.0.1:{port}"),
                    &format!("127.0.0.1:{}", free_port()),
                );
            }
            let script = script.replace("127.0.0.1:8080", &server.addr.to_string());
            let dir = tmpdir(&format!("docs-{}-{line}", name.trim_end_matches(".md")));
            // The repository's examples/ and lua/ where the docs name them, and `ratebench`
            // this build.
            for d in ["examples", "lua"] {
                let _ = std::os::unix::fs::symlink(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(d),
                    dir.join(d),
                );
            }
            let whole = format!("ratebench() {{ \"{bin}\" \"$@\"; }}\n{script}");
            let mut child = std::process::Command::new("sh")
                .args(["-ec", &whole])
                .current_dir(&dir)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .process_group(0)
                .spawn()
                .unwrap();
            let started = std::time::Instant::now();
            let out = wait_with_timeout(&mut child, Duration::from_secs(120));
            eprintln!("{name}:{line}: {:.1?}", started.elapsed());
            let out = out.unwrap_or_else(|| panic!("{name}:{line} did not end in 120 s"));
            assert!(
                out.status.success(),
                "{name}:{line}\n{script}\n--- stdout\n{}--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= pages.len() - exempt.len(), "{ran} blocks ran");
}

/// Waits for `child` (a process group's leader) up to `limit`, collecting its output (None:
/// still running; killed). Whatever the group left running in the background (a server)
/// ends with it.
fn wait_with_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::Output> {
    use std::io::Read;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let started = std::time::Instant::now();
    let pgid = child.id() as i32;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let status = status?;
    Some(std::process::Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    })
}
