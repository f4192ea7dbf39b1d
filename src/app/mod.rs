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
//! Here: errors, a run (`load`) and what every command shares (progress, output, files);
//! `report`, `compare`, `sweep` and `demo` are the other commands.
//!
//! Used by `main`.

mod compare;
mod demo;
mod report_cmd;
mod sweep;

use compare::compare_cmd;
use demo::demo;
use report_cmd::report_cmd;
use sweep::sweep_cmd;

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
    let metrics = metrics_server(command)?;
    let warmup = warm_up(config, script.as_ref())?;
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
    let tui = live_view_wanted(command.no_tui, to_stderr);
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

/// `--metrics-addr`: the Prometheus view, served by a thread of its own.
fn metrics_server(
    command: &RunCommand,
) -> Result<Option<std::sync::Arc<std::sync::Mutex<crate::metrics::Metrics>>>> {
    let Some(addr) = command.metrics_addr else {
        return Ok(None);
    };
    let config = &command.plan;
    let m = std::sync::Arc::new(std::sync::Mutex::new(crate::metrics::Metrics::new(
        config.shard,
        config.shards,
        &config.identity(),
        config.rate.as_f64() / config.shards as f64,
    )));
    crate::metrics::serve(addr, m.clone())?;
    Ok(Some(m))
}

/// `--warmup`: a run of its own before the measured one (its connections close with it),
/// so nothing of it can reach a histogram, the accounting or a threshold of the window.
fn warm_up(config: &Plan, script: Option<&Script>) -> Result<Option<Warmup>> {
    Ok(match config.warmup_plan() {
        Some(plan) => {
            let w = engine::run(
                &plan,
                RunOptions {
                    handle_sigint: true,
                    thread_setups: script.map(|s| s.thread_setups()),
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
    })
}

/// Whether to draw the live view: on a terminal (stdout and stderr both: the report goes
/// to stdout after it), not when stdout carries JSON or a log, and not with --no-tui.
fn live_view_wanted(no_tui: bool, to_stderr: bool) -> bool {
    !no_tui && !to_stderr && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
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
