//! What each command does, wiring the pieces together: a load test (`run`), merging
//! interval logs (`report`), the built-in target (`serve`) and the newcomer's tour (`demo`).
//!
//! The text report is always printed before any file is written, so a failed write (full
//! disk, vanished directory) never loses it; write failures are then reported together
//! (exit 1), and failed thresholds exit 99.
//!
//! Every failure is one `Error`, whose variant fixes the exit code (`Error::exit_code`):
//! `main` prints it once and exits with that code, never inspecting the chain.
//!
//! Used by `main`.

use crate::cli::{
    Cli, Command, CompareArgs, DemoArgs, Outputs, ReportArgs, RunCommand, ServeArgs, SweepCommand,
};
use crate::engine::{self, Plan, RunError, RunOptions, Stop};
use crate::error::{ConfigError, EXIT_RUNTIME, EXIT_THRESHOLD};
use crate::outcome::ErrorClass;
use crate::record::histogram::percentile;
use crate::record::histogram::{new_hist, Hist};
use crate::record::{Interval, IntervalStats};
use crate::report::hdr::{HlogWriter, ReadError};
use crate::report::text::Spectra;
use crate::report::threshold::Verdict;
use crate::report::{self, fmt_us, Summary};
use crate::run::{RunResult, Warmup};
use crate::script::{DoneSummary, HookError, Script, ScriptError};
use crate::serve::{self, ServeConfig, ServeError, Stall};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

/// Why a command failed, with the context the user needs; the variant decides the exit
/// code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input (exit 2).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A script that cannot run (exit 2).
    #[error("{0}")]
    Script(#[from] ScriptError),
    /// The load test could not start or run (exit 1, or 2 when its script or plan is bad).
    #[error("load test of {url}: {source}")]
    Run {
        /// The target.
        url: String,
        /// What went wrong.
        source: RunError,
    },
    /// The interval log could not be created (exit 1).
    #[error("--hdr-log {path}: {source}")]
    HdrLog {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics endpoint could not listen (exit 2: pick another --metrics-addr).
    #[error("{0}")]
    Metrics(#[from] crate::metrics::MetricsError),
    /// Interval logs could not be read (exit 1).
    #[error("{0}")]
    Read(#[from] ReadError),
    /// The built-in server could not start (exit 1).
    #[error("{0}")]
    Serve(#[from] ServeError),
    /// The script's done() failed after the report was printed (exit 1).
    #[error("script {0}")]
    Done(HookError),
    /// Some report files could not be written; the text report was printed (exit 1).
    #[error("could not write {0}")]
    Write(String),
    /// No step of a sweep met all thresholds (exit 99).
    #[error("no step of the sweep met all thresholds")]
    NoPassingRate,
    /// Ctrl-C during the warm-up: nothing was measured (exit 1).
    #[error("stopped during the warm-up: nothing was measured")]
    Interrupted,
    /// `compare --fail-if`: a change was significant and beyond its bound (exit 99).
    #[error("{failed} of {total} --fail-if rules failed: {which}")]
    FailIf {
        /// How many failed.
        failed: usize,
        /// How many were checked (rules × comparisons).
        total: usize,
        /// The failed expressions.
        which: String,
    },
    /// One or more thresholds did not hold (exit 99).
    #[error("{failed} of {total} thresholds failed: {which}")]
    Threshold {
        /// How many failed.
        failed: usize,
        /// How many were checked.
        total: usize,
        /// The failed expressions.
        which: String,
    },
}

impl Error {
    /// The process exit code: 2 bad input, 99 a threshold failed, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(e) => e.exit_code(),
            Error::Script(e) => e.exit_code(),
            Error::Run { source, .. } => source.exit_code(),
            Error::Serve(e) => e.exit_code(),
            Error::Read(e) => e.exit_code(),
            Error::Metrics(_) => crate::error::EXIT_USAGE,
            Error::Threshold { .. } | Error::FailIf { .. } | Error::NoPassingRate => EXIT_THRESHOLD,
            Error::HdrLog { .. } | Error::Done(_) | Error::Write(_) | Error::Interrupted => {
                EXIT_RUNTIME
            }
        }
    }
}

/// A command's result.
pub type Result<T> = std::result::Result<T, Error>;

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Serve(args)) => serve_cmd(&args),
        Some(Command::Demo(args)) => demo(&args),
        Some(Command::Report(args)) => report_cmd(&args),
        Some(Command::Compare(args)) => compare_cmd(&args),
        Some(Command::Sweep(args)) => {
            let command = args.validate()?;
            fit_open_files(command.base.plan.connections, command.base.plan.threads)?;
            sweep_cmd(&command)
        }
        None => {
            let command = cli.run.validate()?;
            fit_open_files(command.plan.connections, command.plan.threads)?;
            load(&command)
        }
    }
}

/// Raises the open-file soft limit to the hard limit (as wrk users do by hand with
/// `ulimit -n`), and refuses, before any traffic, a `-c` that still does not fit: otherwise
/// the connections past the limit would fail one by one as connect errors mid-run.
fn fit_open_files(connections: usize, threads: usize) -> Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the one struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok(()); // unknown: let the run find out
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    // One descriptor per connection, plus each thread's runtime (epoll, timers, wakers),
    // the preflight and the standard streams.
    let needed = connections as u64 + 16 * threads as u64 + 32;
    if limit.rlim_cur != libc::RLIM_INFINITY && needed > limit.rlim_cur {
        return Err(ConfigError::Invalid {
            flag: "-c/--connections",
            value: connections.to_string(),
            reason: format!(
                "{connections} connections need about {needed} open files, but this process \
                 may open only {} (the hard limit; see `ulimit -n`): raise it, e.g. \
                 `ulimit -n {needed}` as root or in /etc/security/limits.conf, or lower -c",
                limit.rlim_cur
            ),
        }
        .into());
    }
    Ok(())
}

fn serve_cmd(args: &ServeArgs) -> Result<()> {
    let config = args.validate()?;
    Ok(serve::run(config)?)
}

/// Live progress on stderr, once a second, only on a terminal.
struct Progress {
    tty: bool,
    total: Duration,
    running: Hist,
    /// What the line is about, before the seconds (a sweep's step: `step 89/s `).
    label: String,
}

impl Progress {
    fn new(total: Duration) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            total,
            running: new_hist(),
            label: String::new(),
        }
    }

    fn second(&mut self, iv: &Interval, s: &IntervalStats) {
        if !self.tty {
            return;
        }
        let _ = self.running.add(&iv.corrected);
        let mut e = std::io::stderr();
        let _ = write!(
            e,
            "\r\x1b[K[{}{:>4}s/{}s] sent {} req/s, {} errors, p99 {} this second, {} so far",
            self.label,
            s.index + 1,
            self.total.as_secs_f64().ceil(),
            s.counts.sent,
            s.counts.error_total(),
            if iv.corrected.is_empty() {
                "n/a".to_string()
            } else {
                fmt_us(s.p99_us as f64)
            },
            if self.running.is_empty() {
                "n/a".to_string()
            } else {
                fmt_us(percentile(&self.running, 99.0) as f64)
            }
        );
        let _ = e.flush();
    }

    fn clear(&self) {
        if self.tty {
            progress_clear_line();
        }
    }
}

/// Clears the progress line on a terminal, so a message can take its place.
fn progress_clear_line() {
    if std::io::stderr().is_terminal() {
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
}

/// Prints a line to stdout (a closed pipe is not an error).
fn out_line(text: &str) {
    out(false, &format!("{text}\n"));
}

/// Prints to stdout, or to stderr when stdout carries the JSON summary. A closed pipe
/// (`ratebench … | head -1`) is not an error: the report files are still written.
fn out(to_stderr: bool, text: &str) {
    if to_stderr {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes()).and_then(|_| o.flush());
    }
}

/// Runs one load test, prints its report and writes the requested files.
pub fn load(command: &RunCommand) -> Result<()> {
    load_result(command).map(|_| ())
}

/// The run's script (if any), loaded with its setup(thread) run against the resolved
/// target, before any traffic: what `RunOptions::thread_setups` is made from.
pub fn load_script(plan: &Plan) -> Result<Option<Script>> {
    let Some(base) = &plan.script else {
        return Ok(None);
    };
    let addr = engine::resolve(plan).map_err(|source| Error::Run {
        url: plan.target.url.clone(),
        source,
    })?;
    Ok(Some(Script::load(base, plan.threads, addr)?))
}

/// `load`, handing back the run's numbers.
fn load_result(command: &RunCommand) -> Result<RunResult> {
    let config = &command.plan;
    // The text report goes to stderr when stdout carries the JSON or the interval log.
    let to_stderr =
        command.outputs.json_to_stdout() || command.hdr_log.as_deref() == Some(Path::new("-"));
    let script = load_script(config)?;
    if to_stderr && script.as_ref().is_some_and(|s| s.has_done()) {
        return Err(ConfigError::Missing(
            "--json - and the script's done() would both write to stdout: write the JSON to a file, e.g. --json run.json".into(),
        )
        .into());
    }
    let metrics = match command.metrics_addr {
        Some(addr) => {
            let m = std::sync::Arc::new(std::sync::Mutex::new(crate::metrics::Metrics::new(
                config.shard,
                config.shards,
                &config.identity(),
                config.rate.as_f64() / config.shards as f64,
            )));
            crate::metrics::serve(addr, m.clone())?;
            Some(m)
        }
        None => None,
    };
    // The warm-up: a run of its own before the measured one (its connections close with it),
    // so nothing of it can reach a histogram, the accounting or a threshold of the window.
    let warmup = match config.warmup_plan() {
        Some(plan) => {
            let w = engine::run(
                &plan,
                RunOptions {
                    handle_sigint: true,
                    thread_setups: script.as_ref().map(|s| s.thread_setups()),
                    on_start: Some(Box::new(|| {
                        progress_clear_line();
                        let mut e = std::io::stderr();
                        let _ = writeln!(
                            e,
                            "ratebench: warming up for {:?} at {} req/s (not measured)",
                            plan.duration, plan.rate
                        );
                    })),
                    ..RunOptions::default()
                },
            )
            .map_err(|source| Error::Run {
                url: config.target.url.clone(),
                source,
            })?;
            if w.interrupted {
                return Err(Error::Interrupted);
            }
            let t = &w.recorder.total;
            Some(Warmup {
                duration: w.load_duration,
                rate: plan.rate.as_f64(),
                scheduled: t.scheduled,
                completed: t.completed,
                errors: t.error_total(),
                unfinished: w.unfinished,
            })
        }
        None => None,
    };
    let mut hlog = match &command.hdr_log {
        Some(p) => Some(
            HlogWriter::create(p, &config.meta()).map_err(|source| Error::HdrLog {
                path: p.display().to_string(),
                source,
            })?,
        ),
        None => None,
    };
    let header = report::text::header(&config.meta());
    let grace = config.grace;
    let mut progress = Progress::new(config.duration);
    // The live view, on a terminal (both streams: the report goes to stdout after it), not
    // when stdout carries JSON or a log, and not with --no-tui. It takes the screen when the
    // run starts (after the header) and gives it back before the report.
    let tui = !command.no_tui
        && !to_stderr
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal();
    if tui {
        progress.tty = false;
    }
    let live: std::cell::RefCell<Option<crate::live::LiveView>> = std::cell::RefCell::new(None);
    let live_title = format!("{} {}", config.method, config.target.url);
    let (live_total, live_rate) = (config.duration, config.rate.as_f64());
    let result = engine::run(
        config,
        RunOptions {
            handle_sigint: true,
            on_interval: Box::new(|iv, s| {
                progress.second(iv, s);
                if let Some(v) = live.borrow_mut().as_mut() {
                    v.second(iv, s);
                }
                if let Some(m) = &metrics {
                    if let Ok(mut m) = m.lock() {
                        m.second(iv, s);
                    }
                }
                if let Some(h) = hlog.as_mut() {
                    h.interval(iv, s);
                }
            }),
            thread_setups: script.as_ref().map(|s| s.thread_setups()),
            on_start: Some(Box::new(|| {
                out(to_stderr, &header);
                if tui {
                    *live.borrow_mut() =
                        crate::live::LiveView::start(live_title, live_total, live_rate).ok();
                }
            })),
            on_stop: Some(Box::new(|stop| {
                if let Some(v) = live.borrow_mut().as_mut() {
                    v.stopping(if stop == Stop::Hard {
                        "second Ctrl-C: not waiting any longer".into()
                    } else {
                        format!("Ctrl-C: no new requests; waiting up to {grace:?} for those in flight (Ctrl-C again to stop now)")
                    });
                    return;
                }
                progress_clear_line();
                if stop == Stop::Hard {
                    eprintln!(
                        "ratebench: second Ctrl-C: not waiting any longer; requests still in \
                         flight are counted as unfinished"
                    );
                } else {
                    eprintln!(
                        "ratebench: Ctrl-C: no new requests; waiting up to {grace:?} (--grace) for \
                         those in flight, then the report (Ctrl-C again to stop now)"
                    );
                }
            })),
        },
    )
    .map_err(|source| {
        // A run that never started leaves no half-written log behind to mislead a reader.
        if let (Some(h), Some(p)) = (hlog.take(), &command.hdr_log) {
            drop(h);
            if p.as_os_str() != "-" {
                let _ = std::fs::remove_file(p);
            }
        }
        Error::Run {
            url: config.target.url.clone(),
            source,
        }
    })?;
    progress.clear();
    if let Some(mut v) = live.borrow_mut().take() {
        v.close();
    }
    let result = RunResult { warmup, ..result };
    let summary = Summary::of(&result);
    let mut failures = Vec::new();
    if let (Some(h), Some(p)) = (hlog, &command.hdr_log) {
        if let Err(e) = h.finish(&result, &summary) {
            failures.push(format!("{}: {e}", p.display()));
        }
    }
    let finished = finish(
        &result,
        &summary,
        &command.outputs,
        command.spectra,
        to_stderr,
        failures,
    );
    // done() runs after the report, as in wrk, whatever the thresholds said.
    if let Some(script) = &script {
        script
            .done(&done_summary(&result), &result.thread_globals)
            .map_err(Error::Done)?;
    }
    finished?;
    Ok(result)
}

/// Prints the text report, writes the files, and turns write failures and failed
/// thresholds into errors (in that order of importance: a file the user asked for is lost
/// data; a threshold is a verdict on data that exists).
fn finish(
    r: &RunResult,
    s: &Summary,
    o: &Outputs,
    spectra: Spectra,
    to_stderr: bool,
    mut failures: Vec<String>,
) -> Result<()> {
    let verdicts: Vec<Verdict> = o.thresholds.iter().map(|t| t.evaluate(r, s)).collect();
    out(to_stderr, &report::text::render(r, s, &verdicts, spectra));
    let mut write = |path: &Path, bytes: std::result::Result<Vec<u8>, String>| {
        if let Err(e) = bytes.and_then(|b| write_output(path, &b)) {
            failures.push(format!("{}: {e}", path.display()));
        }
    };
    if let Some(p) = &o.csv {
        write(p, report::csv::percentiles(r).map_err(|e| e.to_string()));
    }
    if let Some(p) = &o.csv_timeseries {
        write(p, report::csv::timeseries(r).map_err(|e| e.to_string()));
    }
    if let Some(p) = &o.json {
        write(p, Ok(report::json::render(r, s, &verdicts).into_bytes()));
    }
    if let Some(p) = &o.html {
        write(p, Ok(report::html::render(r, s, &verdicts).into_bytes()));
    }
    if let Some(p) = &o.junit {
        write(p, Ok(report::junit::render(r, s, &verdicts).into_bytes()));
    }
    if !failures.is_empty() {
        return Err(Error::Write(failures.join("; ")));
    }
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.pass)
        .map(|v| v.expr.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(Error::Threshold {
            failed: failed.len(),
            total: verdicts.len(),
            which: failed.join(", "),
        });
    }
    Ok(())
}

/// What a script's `done()` is told.
fn done_summary(r: &RunResult) -> DoneSummary {
    use ErrorClass as E;
    let t = &r.recorder.total;
    let status_errors: u64 = r.recorder.status.iter().skip(400).sum();
    let mut per_second = new_hist();
    for i in &r.intervals {
        per_second.saturating_record(i.counts.completed);
    }
    DoneSummary {
        duration_us: r.load_duration.as_micros() as u64,
        requests: t.completed,
        bytes: t.bytes,
        errors: [
            t.errors[E::Connect.index()],
            t.errors[E::Read.index()],
            t.errors[E::Write.index()],
            status_errors,
            t.errors[E::Timeout.index()],
        ],
        latency: r.recorder.corrected.clone(),
        requests_per_s: per_second,
    }
}

/// Whether `path` starts as a `--requests-log` does.
fn is_requests_log(path: &Path) -> bool {
    let mut first = String::new();
    std::fs::File::open(path)
        .map(std::io::BufReader::new)
        .and_then(|mut f| std::io::BufRead::read_line(&mut f, &mut first))
        .is_ok()
        && first.starts_with(report::scatter::MAGIC)
}

/// `ratebench report requests.tsv --html FILE`: a requests log drawn as a scatter.
fn scatter_cmd(path: &Path, args: &ReportArgs, outputs: &Outputs) -> Result<()> {
    let name = path.display().to_string();
    let Some(html) = &outputs.html else {
        return Err(ConfigError::Missing(format!(
            "{name} is a requests log (--requests-log): it is drawn as a scatter, so give \
             --html FILE (the text report and --json come from the run or its --hdr-log)"
        ))
        .into());
    };
    if args.logs.len() > 1 {
        return Err(ConfigError::Missing("one requests log at a time".into()).into());
    }
    let file =
        std::fs::File::open(path).map_err(|e| ConfigError::Missing(format!("{name}: {e}")))?;
    let s = report::scatter::read(std::io::BufReader::new(file), &name)
        .map_err(ConfigError::Missing)?;
    write_output(html, s.html(&name).as_bytes())
        .map_err(|e| Error::Write(format!("{}: {e}", html.display())))?;
    eprintln!(
        "{name}: {} requests, {} drawn in {}",
        s.lines(),
        s.drawn(),
        html.display()
    );
    Ok(())
}

/// `ratebench report`: merge interval logs and report on them.
fn report_cmd(args: &ReportArgs) -> Result<()> {
    let outputs = args.output.validate()?;
    if let Some(first) = args.logs.first().filter(|p| is_requests_log(p)) {
        return scatter_cmd(first, args, &outputs);
    }
    let result = report::hdr::read(&args.logs, args.allow_partial)?;
    let spectra = Spectra {
        corrected: args.spectra.latency,
        uncorrected: args.spectra.u_latency,
    };
    let to_stderr = outputs.json_to_stdout();
    let names: Vec<String> = args.logs.iter().map(|p| p.display().to_string()).collect();
    let what = if result.meta.threads == 0 {
        // A log of another HdrHistogram tool: latencies only, no plan written down.
        format!(
            "  written by another HdrHistogram tool: latency distributions only (no rate, \
             threads or connections recorded; {} per second observed)\n",
            result.meta.rate
        )
    } else {
        format!(
            "  {} threads and {} connections in all, target {} requests/s\n",
            result.meta.threads, result.meta.connections, result.meta.rate
        )
    };
    // (A foreign log has no URL: the file is named once.)
    let target = if result.meta.threads == 0 {
        String::new()
    } else {
        format!(" @ {}", result.meta.url)
    };
    out(
        to_stderr,
        &format!(
            "Report of {} interval log{} ({}){target}\n{what}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
        ),
    );
    let summary = Summary::of(&result);
    finish(&result, &summary, &outputs, spectra, to_stderr, Vec::new())
}

/// One file of `compare` as a summary document: a JSON summary as written, or an interval
/// log merged as `report` would.
fn compare_input(path: &Path) -> Result<report::json::Document> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::Missing(format!("compare: cannot read {}: {e}", path.display()))
    })?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return serde_json::from_slice(&bytes).map_err(|e| {
            ConfigError::Missing(format!(
                "compare: {} is not a ratebench JSON summary (--json): {e}",
                path.display()
            ))
            .into()
        });
    }
    let result = report::hdr::read(&[path.to_path_buf()], true)?;
    let summary = Summary::of(&result);
    Ok(report::json::document(&result, &summary, &[]))
}

/// `ratebench compare`: each NEW side against BASE, with intervals and verdicts; exit 2
/// for runs of different plans (unless --force), 99 when a --fail-if holds.
fn compare_cmd(args: &CompareArgs) -> Result<()> {
    use report::compare;
    let rules = args
        .fail_if
        .iter()
        .map(|s| compare::parse_fail_if(s))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for (flag, path) in [("--json", &args.json), ("--html", &args.html)] {
        if let Some(p) = path.as_ref().filter(|p| p.as_os_str() != "-") {
            crate::cli::check_writable(flag, p)?;
        }
    }
    let (base, news) = compare_sides(args)?;
    let differences = compare_plans(&base, &news, args.force)?;
    let to_stderr = args.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
    let mut texts = Vec::new();
    let mut comparisons = Vec::new();
    let mut results = Vec::new();
    for new in &news {
        let changes = compare::changes(&base, new);
        let mut text = compare::render_text(&base, new, &changes);
        for rule in &rules {
            let r = compare::check(rule, &new.label, &changes);
            text.push_str(&format!(
                "  fail-if {}: {} ({})\n",
                r.expr,
                if r.failed { "FAILED" } else { "passed" },
                r.reason
            ));
            results.push(r);
        }
        if !differences.is_empty() {
            text.push_str(&format!(
                "  warning: compared with --force although the plans differ: {}\n",
                differences.join("; ")
            ));
        }
        out(to_stderr, &text);
        texts.push(text);
        comparisons.push(compare::ComparisonDoc {
            new: new.label.clone(),
            new_files: new.files.clone(),
            changes,
        });
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.failed)
        .map(|r| r.expr.clone())
        .collect();
    let doc = compare::CompareDoc {
        schema: compare::SCHEMA.into(),
        tool: format!("ratebench {}", env!("CARGO_PKG_VERSION")),
        base: base.label.clone(),
        base_files: base.files.clone(),
        comparisons,
        plan_differences: differences,
        fail_if: results,
        passed: failed.is_empty(),
    };
    write_compare(args, &doc, &compare::render_html(&base, &news, &texts))?;
    if !failed.is_empty() {
        return Err(Error::FailIf {
            failed: failed.len(),
            total: doc.fail_if.len(),
            which: failed.join(", "),
        });
    }
    Ok(())
}

/// `compare`'s sides as given: BASE and each NEW (one run each), or --base and --new
/// (repeated runs each), every file read.
fn compare_sides(
    args: &CompareArgs,
) -> Result<(report::compare::Side, Vec<report::compare::Side>)> {
    let usage = |m: &str| Error::Config(ConfigError::Missing(format!("compare: {m}")));
    let (base, news): (Vec<&Path>, Vec<Vec<&Path>>) =
        match (args.files.len(), args.base.is_empty(), args.new.is_empty()) {
            (0, false, false) => (
                args.base.iter().map(|p| p.as_path()).collect(),
                vec![args.new.iter().map(|p| p.as_path()).collect()],
            ),
            (n, true, true) if n >= 2 => (
                vec![args.files[0].as_path()],
                args.files[1..].iter().map(|p| vec![p.as_path()]).collect(),
            ),
            (_, true, true) => {
                return Err(usage(
                    "give BASE NEW [NEW…], or --base FILE… --new FILE… for repeated runs",
                ))
            }
            _ => {
                return Err(usage(
                    "give either BASE NEW [NEW…] or --base FILE… --new FILE…, not both \
                     (and --base needs --new)",
                ))
            }
        };
    let side = |paths: &[&Path]| -> Result<report::compare::Side> {
        let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        Ok(report::compare::Side {
            label: files.join(" "),
            runs: paths
                .iter()
                .map(|p| compare_input(p))
                .collect::<Result<Vec<_>>>()?,
            files,
        })
    };
    let base = side(&base)?;
    let news = news.iter().map(|n| side(n)).collect::<Result<Vec<_>>>()?;
    Ok((base, news))
}

/// What differs between BASE's first run's plan and every other run's: an error (exit 2)
/// unless `force`, then the differences to warn of.
fn compare_plans(
    base: &report::compare::Side,
    news: &[report::compare::Side],
    force: bool,
) -> Result<Vec<String>> {
    let first = &base.runs[0];
    let mut differences = Vec::new();
    for (file, run) in news
        .iter()
        .chain(std::iter::once(base))
        .flat_map(|s| s.files.iter().zip(&s.runs))
    {
        for d in report::compare::plan_differences(first, run) {
            differences.push(format!("{} vs {file}: {d}", base.files[0]));
        }
    }
    if !differences.is_empty() && !force {
        return Err(Error::Config(ConfigError::Missing(format!(
            "compare: these runs are of different plans ({}); compare them anyway with --force",
            differences.join("; ")
        ))));
    }
    Ok(differences)
}

/// Writes `compare`'s --json and --html files, if asked for.
fn write_compare(args: &CompareArgs, doc: &report::compare::CompareDoc, page: &str) -> Result<()> {
    let mut errors = Vec::new();
    if let Some(path) = &args.json {
        let mut bytes = serde_json::to_vec_pretty(doc).expect("serialisable");
        bytes.push(b'\n');
        if let Err(e) = write_output(path, &bytes) {
            errors.push(format!("--json {}: {e}", path.display()));
        }
    }
    if let Some(path) = &args.html {
        if let Err(e) = write_output(path, page.as_bytes()) {
            errors.push(format!("--html {}: {e}", path.display()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Write(errors.join("; ")))
    }
}

/// Writes a report file, or stdout for `-`.
fn write_output(path: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    if path.as_os_str() == "-" {
        let mut so = std::io::stdout();
        so.write_all(bytes).and_then(|_| so.flush())
    } else {
        std::fs::write(path, bytes)
    }
    .map_err(|e| e.to_string())
}

/// `ratebench sweep`: the climb, the bisection, the table and the answer.
fn sweep_cmd(command: &SweepCommand) -> Result<()> {
    use crate::sweep::{self, Step};
    let base = &command.base;
    let to_stderr = base.outputs.json_to_stdout();
    let script = load_script(&base.plan)?;
    let config = sweep::SweepConfig {
        url: base.plan.target.url.clone(),
        from_per_s: command.from,
        to_per_s: command.to,
        steps: command.steps,
        refine: command.refine,
        duration_s: base.plan.duration.as_secs_f64(),
        connections: base.plan.connections,
        threads: base.plan.threads,
        thresholds: base
            .outputs
            .thresholds
            .iter()
            .map(|t| t.expr.clone())
            .collect(),
    };
    let mut text = format!(
        "Sweep of {}: {} → {} req/s in {} geometric steps, then {} bisections; each step {:?} \
         with {} threads and {} connections, judged by {}\n",
        config.url,
        config.from_per_s,
        config.to_per_s,
        config.steps,
        config.refine,
        base.plan.duration,
        config.threads,
        config.connections,
        config.thresholds.join(", ")
    );
    text.push_str(&sweep::table_header());
    // On a terminal, the live view of each step with the table growing below it; the sweep's
    // text prints when the view closes. Otherwise a progress line a second and the rows as
    // they come.
    let tui = !base.no_tui
        && !to_stderr
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal();
    let live: std::cell::RefCell<Option<crate::live::LiveView>> = std::cell::RefCell::new(None);
    if tui {
        *live.borrow_mut() = crate::live::LiveView::start(
            format!("sweep {}", config.url),
            base.plan.duration,
            command.from,
        )
        .ok();
        if let Some(v) = live.borrow_mut().as_mut() {
            v.table_line(&sweep::table_header());
        }
    }
    if live.borrow().is_none() {
        out(to_stderr, &text);
    }
    let mut steps: Vec<Step> = Vec::new();
    // Ctrl-C ends the sweep after the step it interrupted (whose numbers are partial).
    let interrupted = std::cell::Cell::new(false);
    // One step: a full run at `rate`, its own accounting, judged; then a short drain.
    let mut run_step = |rate: f64, phase: &'static str, text: &mut String| -> Result<bool> {
        let mut plan = base.plan.clone();
        plan.rate = crate::pacer::Rate::new((rate * 1000.0).round() as u128, 1000);
        plan.start_rate = Some(plan.rate);
        // The step's progress, a line a second on a terminal, as a single run's.
        let mut progress = Progress::new(plan.duration);
        progress.label = format!("{phase} {}/s ", crate::units::trim_decimal(rate));
        if let Some(v) = live.borrow_mut().as_mut() {
            progress.tty = false;
            v.step(
                format!(
                    "sweep {}: {phase} {}/s",
                    config.url,
                    crate::units::trim_decimal(rate)
                ),
                plan.duration,
                rate,
            );
        }
        let r = engine::run(
            &plan,
            RunOptions {
                handle_sigint: true,
                thread_setups: script.as_ref().map(|s| s.thread_setups()),
                on_interval: Box::new(|iv, s| {
                    progress.second(iv, s);
                    if let Some(v) = live.borrow_mut().as_mut() {
                        v.second(iv, s);
                    }
                }),
                ..RunOptions::default()
            },
        )
        .map_err(|source| Error::Run {
            url: plan.target.url.clone(),
            source,
        })?;
        progress.clear();
        interrupted.set(interrupted.get() || r.interrupted);
        let s = Summary::of(&r);
        let verdicts: Vec<Verdict> = base
            .outputs
            .thresholds
            .iter()
            .map(|t| t.evaluate(&r, &s))
            .collect();
        let step = sweep::judge(rate, &r, &s, &verdicts, phase);
        let row = sweep::table_row(&step);
        match live.borrow_mut().as_mut() {
            Some(v) => v.table_line(&row),
            None => out(to_stderr, &row),
        }
        text.push_str(&row);
        let pass = step.pass;
        steps.push(step);
        std::thread::sleep(Duration::from_secs(1));
        Ok(pass)
    };
    let (mut lo, mut hi) = (None, None);
    for rate in sweep::step_rates(command.from, command.to, command.steps) {
        if interrupted.get() {
            break;
        }
        if run_step(rate, "step", &mut text)? {
            lo = Some(rate);
        } else {
            hi = Some(rate);
            break;
        }
    }
    if let (Some(mut l), Some(mut h)) = (lo, hi) {
        for _ in 0..command.refine {
            let m = sweep::midpoint(l, h);
            if interrupted.get() {
                break;
            }
            if m <= l || m >= h {
                break; // nothing left between them at this resolution
            }
            if run_step(m, "refine", &mut text)? {
                l = m;
            } else {
                h = m;
            }
        }
    }
    let highest = sweep::highest_passing(&steps);
    if let Some(mut v) = live.borrow_mut().take() {
        v.close();
        out(to_stderr, &text);
    }
    let answer = match highest {
        Some(r) => format!("Highest rate meeting all thresholds: {r} req/s\n"),
        None => format!(
            "No rate met all thresholds: the lowest step ({} req/s) failed\n",
            command.from
        ),
    };
    out(to_stderr, &answer);
    text.push_str(&answer);
    let mut failures = Vec::new();
    let mut write = |path: &Path, text: String| {
        if let Err(e) = write_output(path, text.as_bytes()) {
            failures.push(format!("{}: {e}", path.display()));
        }
    };
    if let Some(p) = &base.outputs.json {
        write(p, sweep::json(&config, &steps));
    }
    if let Some(p) = &base.outputs.html {
        write(p, sweep::html(&config, &steps, &text));
    }
    if !failures.is_empty() {
        return Err(Error::Write(failures.join("; ")));
    }
    if highest.is_none() {
        return Err(Error::NoPassingRate);
    }
    Ok(())
}

/// `ratebench demo`: a stalling built-in server and a short test against it.
fn demo(args: &DemoArgs) -> Result<()> {
    let stall_at = Duration::from_secs(2);
    let stall_for = Duration::from_secs(1);
    let server = serve::spawn(ServeConfig {
        delay: Duration::from_micros(100),
        stall: Some(Stall {
            length: stall_for,
            at: stall_at,
            every: None,
            chance_ppm: 1_000_000,
        }),
        ..ServeConfig::default()
    })?;
    // The demo's run, spelled as a user would type it, so every default applies.
    let url = format!("http://{}/", server.addr);
    let argv = [
        "ratebench",
        "-R",
        &args.rate,
        "-d",
        &args.duration,
        "-c20",
        "-t1",
        &url,
    ];
    let run_args = <Cli as clap::Parser>::try_parse_from(argv)
        .map_err(|e| ConfigError::Missing(format!("demo arguments: {e}")))?
        .run;
    let command = run_args.validate()?;
    out_line(&format!(
        "ratebench demo: a built-in server on {} answers in ~100us, but {}s after it starts it \
         freezes every response for {}s.\nratebench keeps sending {} requests/s through the \
         freeze (open loop) and times each from when it was due.\n",
        server.addr,
        stall_at.as_secs(),
        stall_for.as_secs(),
        command.plan.rate
    ));
    let result = load_result(&command)?;
    let c = &result.recorder.corrected;
    let u = &result.recorder.uncorrected;
    let p = |h: &Hist, q: f64| fmt_us(percentile(h, q) as f64);
    // The words follow the numbers: of the requests due during the freeze, only those
    // already on the wire when it began (at most one per connection) are slow when timed
    // from the actual send; the rest waited for a connection before they were sent.
    let due_in_freeze = (command.plan.rate.as_f64() * stall_for.as_secs_f64()).round() as u64;
    let in_flight = command.plan.connections;
    let total = result.recorder.total.scheduled.max(1);
    out_line(&format!(
        "\nWhat this shows:\n  corrected   p99 {:>10}  p99.9 {:>10}  — what users saw: the ~{due_in_freeze} requests \
         due during the freeze ({:.0}% of {total}) waited for it to end\n  uncorrected p99 {:>10}  p99.9 {:>10}  — \
         what a closed-loop tool reports: timed from the actual send, only the ≤ {in_flight} requests already in \
         flight when the freeze began ({:.1}%) show it, at the very top of the distribution; the other \
         ~{} waited unseen",
        p(c, 99.0),
        p(c, 99.9),
        100.0 * due_in_freeze as f64 / total as f64,
        p(u, 99.0),
        p(u, 99.9),
        100.0 * in_flight as f64 / total as f64,
        due_in_freeze.saturating_sub(in_flight as u64)));
    if Summary::of(&result)
        .warnings
        .iter()
        .any(|w| w.contains("generator fell behind"))
    {
        out_line(
            "  (The generator-lag warning above comes from the end of the freeze: the queued \
             requests and their answers all arrive at once, on a machine that also runs the demo's \
             server. In your own tests, take that warning seriously: it means the latencies \
             include ratebench's own delay.)",
        );
    }
    out_line(
        "Run your own: `ratebench serve --stall 1s@5s` in one shell, \
         `ratebench -R1000 -d10s -L http://127.0.0.1:8080/` in another.",
    );
    Ok(())
}
