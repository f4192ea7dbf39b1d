//! The engine: one OS thread per `-t`, each with its own current-thread runtime,
//! connections, share of the schedule and recorder; and the coordinator that starts them
//! together, merges their per-second snapshots as they arrive and their recorders at the
//! end.
//!
//! Before the clock starts, the target is resolved and one connection (TCP, and TLS for
//! https) is opened and closed: an unreachable target or an untrusted certificate is a
//! clear error, not a run full of connect errors. (It comes after the worker threads have
//! run their scripts' init(), so a failing script sends nothing at all.)
//!
//! Used by `app` (run, demo) and by the integration tests.

pub mod conn;
pub mod dispatch;
pub mod exchange;
pub mod h1;
pub mod http2;
pub mod plan;
pub mod requests_log;
pub mod slot;
pub mod stamp;
pub mod tls;
pub mod uring;
pub mod worker;

use crate::error::{ConfigError, EXIT_RUNTIME, EXIT_USAGE};
use crate::record::batches::{self, Batches};
use crate::record::histogram::{self, new_hist, Hist};
use crate::record::{Interval, IntervalStats, Recorder};
use crate::run::{Pacing, RunResult};
use crate::script::ScriptError;
use conn::{ConnectError, Connector};
pub use plan::{Plan, Target};
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// The share of an `--until` bound the running estimate must reach before the load stops.
const UNTIL_MARGIN: f64 = 0.7;

/// Whether every `--until` goal's 95 % interval is within its bound of the estimate —
/// judged only on at least 10 seconds' batches (fewer would fall back to the i.i.d.
/// interval, too narrow to stop on), and with a margin (`UNTIL_MARGIN` of the bound): this
/// running estimate has one-second batches, the report's finer ones, and the report must
/// back the stop.
fn precise(so_far: &[(Hist, Batches); 2], goals: &[(String, f64, f64)]) -> bool {
    goals.iter().all(|(name, q, bound)| {
        // Latency goals from the corrected latency; `ttft_` goals from time to first token.
        let (h, b) = &so_far[usize::from(name.starts_with("ttft_"))];
        b.batches() >= 10
            && batches::interval(h, b, *q).is_ok_and(|(lo, hi)| {
                let x = histogram::percentile(h, q * 100.0) as f64;
                x > 0.0 && (hi - lo) as f64 / 2.0 <= UNTIL_MARGIN * bound * x
            })
    })
}

/// A stop request: `Soft` ends the schedule and waits out the grace period (first
/// Ctrl-C); `Hard` skips the grace period (second Ctrl-C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    /// Keep going.
    Run,
    /// Stop sending; wait for in-flight requests up to the grace period.
    Soft,
    /// Stop now.
    Hard,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The host name did not resolve: check the URL.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// host:port as given.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// The target refused or failed the first connection: is it running, and trusted?
    #[error("target not reachable: {0}")]
    Unreachable(#[from] ConnectError),
    /// The host name has several addresses and none accepted a connection: is the server
    /// running, and listening on which of them?
    #[error("target not reachable: no address of {host} accepts connections ({tried})")]
    NoAddress {
        /// host:port as given.
        host: String,
        /// Each address tried, with what it answered.
        tried: String,
    },
    /// The script failed in a worker's init() or first request(): fix the line named.
    #[error("{0}")]
    Script(#[from] ScriptError),
    /// The plan cannot be sent as it is (e.g. a host that cannot be a TLS name): fix the
    /// input named.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The machine refused a resource (threads, timers, sockets).
    #[error("cannot set up the run: {0}")]
    Setup(String),
}

impl RunError {
    /// A bad script or plan is bad input (2); anything else failed at run time (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Script(_) | RunError::Config(_) => EXIT_USAGE,
            _ => EXIT_RUNTIME,
        }
    }
}

/// Resolves the target's host and port to the first address.
///
/// A name with several addresses (`localhost` → `::1`, `127.0.0.1`) gets the first that
/// accepts a TCP connection, tried in the resolver's order, as wrk and curl do; a single
/// address is taken as it is, without a connection (the preflight comes later).
pub fn resolve(config: &Plan) -> Result<SocketAddr, RunError> {
    let t = &config.target;
    let host = format!("{}:{}", t.host, t.port);
    // --resolve HOST:PORT:ADDR, as curl's: this host and port go to ADDR.
    if let Some((_, _, ip)) = config
        .resolve
        .iter()
        .find(|(h, p, _)| h.eq_ignore_ascii_case(&t.host) && *p == t.port)
    {
        return Ok(SocketAddr::new(*ip, t.port));
    }
    let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| RunError::Resolve {
            host: host.clone(),
            reason: e.to_string(),
        })?
        .collect();
    match addrs.as_slice() {
        [] => Err(RunError::Resolve {
            host,
            reason: "no addresses".into(),
        }),
        [one] => Ok(*one),
        several => first_reachable(&host, several, config.timeout),
    }
}

/// The first of `addrs` that accepts a TCP connection within `timeout` (at most 3 s each).
pub fn first_reachable(
    host: &str,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<SocketAddr, RunError> {
    let mut tried = Vec::new();
    for a in addrs {
        match std::net::TcpStream::connect_timeout(a, timeout.min(Duration::from_secs(3))) {
            Ok(_) => return Ok(*a),
            Err(e) => tried.push(format!("{a}: {e}")),
        }
    }
    Err(RunError::NoAddress {
        host: host.to_string(),
        tried: tried.join("; "),
    })
}

/// Opens and closes one connection, to fail early and clearly.
fn preflight(connector: &Connector, timeout: Duration) -> Result<(), RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        match tokio::time::timeout(timeout, connector.connect()).await {
            Ok(Ok(_sender)) => Ok(()),
            Ok(Err(e)) => Err(RunError::Unreachable(e)),
            Err(_) => Err(RunError::Setup(format!(
                "connecting to the target took longer than --timeout ({timeout:?})"
            ))),
        }
    })
}

/// A callback that sees each second's merged snapshot and its summary row.
pub type IntervalSink<'a> = Box<dyn FnMut(&Interval, &IntervalStats) + 'a>;

/// Options for how `run` interacts with its caller.
pub struct RunOptions<'a> {
    /// Stop on SIGINT (Ctrl-C): the first stops sending, a second skips the grace period.
    pub handle_sigint: bool,
    /// Called with each second's merged snapshot, in order (progress, interval logs).
    pub on_interval: IntervalSink<'a>,
    /// What the script's `setup()` gave each thread (None: no setup state ran).
    pub thread_setups: Option<Vec<crate::script::ThreadSetup>>,
    /// Called once every thread has run its script's `init()` and the target answered the
    /// preflight connection, just before the clock starts (the report's header goes here,
    /// after what `init()` printed, as in wrk).
    pub on_start: Option<Box<dyn FnOnce() + 'a>>,
    /// Called when a Ctrl-C is taken: `Soft` (sending stopped, waiting out the grace
    /// period) or `Hard` (the wait cut short), so the user hears what is happening.
    pub on_stop: Option<Box<dyn FnMut(Stop) + 'a>>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            handle_sigint: false,
            on_interval: Box::new(|_, _| {}),
            thread_setups: None,
            on_start: None,
            on_stop: None,
        }
    }
}

/// Which way the run's requests are sent on time: by io_uring linked timeouts (true) where
/// `--io-uring` and the run allow it and the kernel lets this process, else by the timer.
/// `--io-uring on` in a run that cannot is an error, before any traffic.
fn pacing(config: &Plan, connector: &Connector) -> Result<(bool, Pacing), RunError> {
    use plan::IoUringMode;
    let why_not = if let Some(why) = config.io_uring_blocked() {
        Some(why)
    } else if connector.tls() {
        Some("TLS (rustls encrypts in the process)".into())
    } else if connector.largest_fixed_request() > uring::MAX_REQUEST {
        Some(format!(
            "a request over {} KiB (sent whole, an early answer could not stop it)",
            uring::MAX_REQUEST / 1024
        ))
    } else {
        uring::unusable()
    };
    if let (IoUringMode::On, Some(why)) = (config.io_uring, &why_not) {
        let why = format!("this run cannot send by io_uring: {why}");
        // A request too large is the plan's doing (2); a kernel that refuses, the machine's.
        return Err(if connector.largest_fixed_request() > uring::MAX_REQUEST {
            RunError::Config(crate::error::invalid("--io-uring", "on", why))
        } else {
            RunError::Setup(format!("--io-uring on: {why}"))
        });
    }
    let path = match (&why_not, config.precision) {
        (None, _) => Pacing::IO_URING,
        (_, Some(_)) => "precision grid",
        _ if config.spin.is_zero() => "timer",
        _ => "timer and spin",
    };
    Ok((
        why_not.is_none(),
        Pacing {
            path: path.into(),
            io_uring_not_used: why_not,
            sends: 0,
            stamped: 0,
        },
    ))
}

/// Runs the load test described by `config`.
pub fn run(config: &Plan, mut options: RunOptions<'_>) -> Result<RunResult, RunError> {
    let addr = resolve(config)?;
    let connector = Connector::new(config, addr)?;
    let (ring, mut pacing) = pacing(config, &connector)?;
    let connector = Arc::new(if ring {
        connector.with_stamped_sends()
    } else {
        connector
    });

    let threads = config.threads;
    if config.script.is_some() && options.thread_setups.is_none() {
        return Err(RunError::Setup(
            "a script needs its setup() run first (app::load does it)".into(),
        ));
    }
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let (iv_tx, mut iv_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut starts = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    let requests_log = match &config.requests_log {
        Some(p) => Some(std::sync::Arc::new(
            requests_log::RequestsLog::create(p)
                .map_err(|e| RunError::Setup(format!("--requests-log {}: {e}", p.display())))?,
        )),
        None => None,
    };
    for t in 0..threads {
        let (start_tx, start_rx) = oneshot::channel();
        starts.push(start_tx);
        let spec = worker::WorkerSpec {
            log: requests_log
                .as_ref()
                .map(|l| requests_log::ThreadLog::new(l.clone(), t)),
            schedule: config.schedule(t),
            connections: config.connections / threads
                + usize::from(t < config.connections % threads),
            streams: config.streams,
            tags: config.tag_names(),
            inspect: exchange::Inspect {
                group_by: config.group_by.clone(),
                usage: config.prompts.is_some(),
                tokenizer: config.tokenizer,
            },
            duration: config.duration,
            timeout: config.timeout,
            grace: config.grace,
            // Coarse pacing never spins: it trades precision for wake-ups and CPU.
            spin: if config.precision.is_some() {
                Duration::ZERO
            } else {
                config.spin
            },
            precision: config.precision,
            ring,
            connector: connector.clone(),
            rule: config.token_rule.clone(),
            slos: config.slos.clone(),
            script: match (&config.script, &options.thread_setups) {
                (Some(base), Some(setups)) => {
                    Some((base.clone(), setups.get(t).cloned().unwrap_or_default(), t))
                }
                _ => None,
            },
            stop: stop_rx.clone(),
            intervals: iv_tx.clone(),
            ready: ready_tx.clone(),
            start: start_rx,
        };
        let h = std::thread::Builder::new()
            .name(format!("ratebench-{t}"))
            .spawn(move || worker::run(spec))
            .map_err(|e| RunError::Setup(format!("spawning worker thread: {e}")))?;
        handles.push(h);
    }
    drop(iv_tx);
    drop(ready_tx);
    let mut failure = None;
    let (mut opened, mut refused) = (0, None);
    for _ in 0..threads {
        match ready_rx.recv() {
            Ok(Ok(ready)) => {
                opened += ready.opened;
                refused = refused.or(ready.failure);
            }
            Ok(Err(m)) => failure = failure.or(Some(m)),
            Err(_) => break, // a worker died; its join below reports it
        }
    }
    if let Some(m) = failure {
        drop(starts); // the other threads see the start never come, and end
        for h in handles {
            let _ = h.join();
        }
        return Err(RunError::Script(m));
    }
    // Not one initial connection opened: the target cannot be reached, and the first
    // failure says why — at once, not after waiting out another connect of our own.
    if let (0, Some(e)) = (opened, refused) {
        drop(starts);
        for h in handles {
            let _ = h.join();
        }
        return Err(RunError::Unreachable(e));
    }
    // Scripts are ready (a failing init() stops the run before any connection of ours);
    // now one connection of our own says clearly whether the target can be reached at all.
    if let Err(e) = preflight(&connector, config.timeout) {
        drop(starts);
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }
    if let Some(f) = options.on_start.take() {
        f();
    }
    // A common start a little ahead, so every thread is waiting when it comes; or the
    // wall-clock `--start-at`, read once into the monotonic clock. A shard that is ready
    // late keeps that start all the same (its first requests are then released late, and
    // their latency says so), so the shards' union stays the single run's schedule.
    let (start, started_at, start_late) = match config.start_at {
        Some(at) => {
            let (now, wall) = (Instant::now(), std::time::SystemTime::now());
            match at.duration_since(wall) {
                Ok(ahead) => (now + ahead, at, Duration::ZERO),
                Err(e) => {
                    let late = e.duration();
                    (now.checked_sub(late).unwrap_or(now), at, late)
                }
            }
        }
        None => (
            Instant::now() + Duration::from_millis(2),
            std::time::SystemTime::now() + Duration::from_millis(2),
            Duration::ZERO,
        ),
    };
    for s in starts {
        let _ = s.send(start);
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let mut pending: BTreeMap<u32, (Interval, usize)> = BTreeMap::new();
    let mut stats = Vec::new();
    let mut emit = |iv: &Interval, stats: &mut Vec<IntervalStats>| {
        let s = iv.stats();
        (options.on_interval)(iv, &s);
        stats.push(s);
    };
    let mut sigint = Stop::Run;
    // --until: the run so far (from each second's merged histogram; its seconds are the
    // batches), checked once the load passed -d; the second at which every goal held.
    let mut so_far = [
        (new_hist(), Batches::default()),
        (new_hist(), Batches::default()),
    ];
    let mut precise_at: Option<u32> = None;
    rt.block_on(async {
        loop {
            let ctrl_c = async {
                if options.handle_sigint && sigint < Stop::Hard {
                    let _ = tokio::signal::ctrl_c().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                iv = iv_rx.recv() => {
                    let Some(iv) = iv else { break };
                    let idx = iv.index;
                    let entry = pending.entry(idx).or_insert_with(|| (Interval::new(idx), 0));
                    entry.0.merge(&iv);
                    entry.1 += 1;
                    // Emit every second all threads have reported, in order.
                    while let Some(e) = pending.first_entry() {
                        if e.get().1 < threads { break; }
                        let (iv, _) = e.remove();
                        if !config.until.is_empty() && precise_at.is_none() && sigint == Stop::Run {
                            let at = u64::from(iv.index) * 1_000_000_000;
                            for (k, h) in [Some(&iv.corrected), iv.ttft.as_ref()].into_iter().enumerate() {
                                if let Some(h) = h {
                                    let _ = so_far[k].0.add(h);
                                    so_far[k].1.record_hist(at, h);
                                }
                            }
                            let past_min = config
                                .min_duration
                                .is_some_and(|m| Duration::from_secs(u64::from(iv.index) + 1) >= m);
                            if past_min && precise(&so_far, &config.until) {
                                precise_at = Some(iv.index + 1);
                                let _ = stop_tx.send(Stop::Soft);
                            }
                        }
                        emit(&iv, &mut stats);
                    }
                }
                _ = ctrl_c => {
                    sigint = if sigint == Stop::Run { Stop::Soft } else { Stop::Hard };
                    let _ = stop_tx.send(sigint);
                    if let Some(f) = options.on_stop.as_mut() {
                        f(sigint);
                    }
                }
            }
        }
    });
    for (_, (iv, _)) in std::mem::take(&mut pending) {
        emit(&iv, &mut stats);
    }

    let mut recorder = Recorder {
        slos: config.slos.clone(),
        ..Recorder::new()
    };
    let mut unfinished = 0;
    let mut open = 0;
    let mut schedule_end = start;
    let mut interrupted = false;
    let mut sent_in_window = 0;
    let mut completed_in_window = 0;
    let mut completions: Option<(Instant, Instant)> = None;
    let mut busy = Vec::with_capacity(threads);
    let mut waits = (0, 0);
    let mut thread_globals = Vec::with_capacity(threads);
    for h in handles {
        let r = h
            .join()
            .map_err(|_| RunError::Setup("a worker thread panicked".into()))?
            .map_err(|e| RunError::Setup(format!("worker: {e}")))?;
        recorder.merge(&r.recorder);
        unfinished += r.unfinished;
        open += r.open;
        schedule_end = schedule_end.max(r.schedule_end);
        interrupted |= r.interrupted;
        sent_in_window += r.sent_in_window;
        completed_in_window += r.completed_in_window;
        if let Some((first, last)) = r.completions {
            completions =
                Some(completions.map_or((first, last), |(f, l)| (f.min(first), l.max(last))));
        }
        busy.push(r.busy);
        waits = (waits.0 + r.waits.0, waits.1 + r.waits.1);
        pacing.sends += r.ring_sends.0;
        pacing.stamped += r.ring_sends.1 + r.kernel_stamped;
        thread_globals.push(r.globals);
    }
    // A script that tags every request leaves the plan's default tag empty: not a kind of
    // request this run had.
    if recorder.tags.iter().any(|t| t.counts.scheduled > 0) {
        recorder.tags.retain(|t| t.counts.scheduled > 0);
    }
    // A stop for precision is not an interruption.
    if precise_at.is_some() && sigint == Stop::Run {
        interrupted = false;
    }
    let load_duration = schedule_end.saturating_duration_since(start);
    let precision = (!config.until.is_empty()).then(|| crate::run::Precision {
        goals: config.until.clone(),
        stopped: precise_at.is_some(),
        after_s: load_duration.as_secs_f64(),
    });
    let meta = config.meta();
    Ok(RunResult {
        precision,
        meta,
        addr: Some(addr),
        recorder,
        intervals: stats,
        started_at,
        load_duration,
        elapsed: start.elapsed(),
        unfinished,
        open,
        interrupted,
        cut_short: sigint == Stop::Hard,
        sent_in_window,
        completed_in_window,
        completion_span: completions.map_or(Duration::ZERO, |(f, l)| l - f),
        busy,
        waits,
        thread_globals,
        warmup: None,
        start_late,
        negotiated: connector.negotiated(),
        server_max_streams: connector.server_max_streams().map(|n| n as u64),
        streams_per_connection: if config.http2 {
            config.streams as u64
        } else {
            1
        },
        shard_lines: Vec::new(),
        incomplete: None,
        requests_log_error: requests_log.and_then(|l| l.failure()),
        pacing: Some(pacing),
    })
}
