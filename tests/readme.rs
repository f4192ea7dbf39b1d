//! The README's examples run as written: every line of a ```sh block marked
//! `<!-- runnable -->` is run through `sh` (the `ratebench` of the line being this build, the
//! address the `serve` the README starts first), in a scratch directory, and must exit 0 —
//! so a renamed flag or a changed default cannot leave the first page a user reads wrong.
//! Durations over `RATEBENCH_EXAMPLES_MAX_SECONDS` (default 1) are cut to it, as for the
//! guide's examples (`tests/docs.rs`); `0` runs them as written, and then each must also
//! finish in the 15 s the README promises.

mod common;
use common::*;
use std::time::Duration;

/// The runnable blocks' command lines, in order.
fn runnable(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim() != "<!-- runnable -->" {
            continue;
        }
        assert_eq!(
            lines.next().map(str::trim),
            Some("```sh"),
            "a runnable block is ```sh"
        );
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            if !l.trim().is_empty() && !l.trim_start().starts_with('#') {
                out.push(l.trim().to_string());
            }
        }
    }
    out
}

#[test]
fn every_runnable_readme_example_runs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // The README starts `ratebench serve --delay 1ms..3ms &`: the same, on a free port.
    assert!(readme.contains("    ratebench serve --delay 1ms..3ms &"));
    let server = serve(|c| {
        c.delay = Duration::from_millis(1);
        c.delay_max = Some(Duration::from_millis(3));
    });
    let commands = runnable(&readme);
    assert!(commands.len() >= 12, "a dozen examples: {commands:?}");
    let dir = tmpdir("readme");
    let bin = env!("CARGO_BIN_EXE_ratebench");
    let max = examples_max_duration();
    for c in &commands {
        let c = shortened(c, max);
        let c = c.trim_end();
        assert!(c.starts_with("ratebench "), "{c}");
        let line = format!("{bin}{}", &c["ratebench".len()..])
            .replace("127.0.0.1:8080", &server.addr.to_string());
        let started = std::time::Instant::now();
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .current_dir(&dir)
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{c}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // "Each finishes in 15 s or less" (a loaded machine gets some slack).
        assert!(took < Duration::from_secs(25), "{c} took {took:?}");
    }
}

#[test]
fn the_readmes_sample_report_is_the_golden_one() {
    // tests/reports.rs checks the golden file against the code's layout; this checks the
    // README shows that file, so its sample cannot go stale.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let golden = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/report.txt"
    ))
    .unwrap();
    let block: Vec<String> = golden
        .trim_end()
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect();
    assert!(
        readme.contains(&block.join("\n")),
        "README's sample report differs from tests/golden/report.txt"
    );
}
