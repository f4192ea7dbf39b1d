//! A finished run: what was planned (`RunMeta`, a neutral description) and everything it
//! measured (`RunResult`: the merged recorder, the per-second rows, the accounting).
//!
//! Both the engine (after a live run) and `report::hdr` (after merging interval logs)
//! produce a `RunResult`; every report format reads one. Nothing here knows how a run was
//! driven, so reports never import the engine and a merged run needs no invented plan.
//!
//! Used by `engine` (producing), `report` (reading) and `app`.

use crate::pacer::Rate;
use crate::record::{IntervalStats, Recorder};
use crate::script::Portable;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// What was run, as the reports describe it: the plan's numbers, without its machinery
/// (no script state, no TLS settings, no output files).
#[derive(Debug, Clone, PartialEq)]
pub struct RunMeta {
    /// Target URL (for merged logs of other tools: the first log's path).
    pub url: String,
    /// Request method.
    pub method: String,
    /// Total target rate (summed over merged logs).
    pub rate: Rate,
    /// Connections asked for (`-c`, summed over merged logs).
    pub connections: usize,
    /// Worker threads (`-t`, summed over merged logs).
    pub threads: usize,
    /// Measured load duration (`-d`).
    pub duration: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Grace period after the load.
    pub grace: Duration,
    /// Extra request headers as (name, value), unredacted (formats redact on output).
    pub headers: Vec<(String, String)>,
    /// Request body size in bytes.
    pub body_bytes: usize,
    /// How arrivals were spaced: constant, poisson or gamma:K.
    pub arrival: String,
    /// The seed of random arrivals.
    pub seed: u64,
    /// The ramp as `D:R,…` (seconds and req/s), empty for a constant rate.
    pub stages: String,
    /// Which shard of the plan this is (0 of 1: the whole plan).
    pub shard: u64,
    /// How many shards share the plan.
    pub shards: u64,
    /// The common wall-clock start of the shards, when one was given.
    pub start_at: Option<SystemTime>,
    /// The plan's identity (shared by all its shards): what `ratebench report` checks.
    pub plan_id: String,
    /// `--precision`, when pacing was coarsened on purpose.
    pub precision: Option<Duration>,
    /// `--price`: what each model's tokens cost, for the estimated cost.
    pub prices: Vec<Price>,
    /// `--group-by-header`, as given.
    pub group_by: Option<String>,
    /// HTTP/2: `--streams`, the most requests in flight per connection (None: HTTP/1.1, or
    /// rebuilt from logs).
    pub http2_streams: Option<usize>,
    /// `--until`: the goals as typed (`p99:±2%`) and `-d`, the least the load runs (the
    /// duration is then the most, `--max-duration`).
    pub until: Option<(String, Duration)>,
    /// The tokenizer that sized or counted the prompts (`--prompts`, `--input-tokens`;
    /// None otherwise, and for runs rebuilt from logs).
    pub tokenizer: Option<String>,
}

/// `--price MODEL=IN/OUT`: USD per million input and output tokens of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// The model (a tag of the run).
    pub model: String,
    /// USD per million input (prompt) tokens.
    pub input_per_m: f64,
    /// USD per million output (completion) tokens.
    pub output_per_m: f64,
}

/// Everything a run measured, merged across threads (and, for `ratebench report`, logs).
#[derive(Debug)]
pub struct RunResult {
    /// What was run.
    pub meta: RunMeta,
    /// The resolved address (None when the run was rebuilt from logs).
    pub addr: Option<SocketAddr>,
    /// All threads' measurements merged.
    pub recorder: Recorder,
    /// One row per second of the run, in order.
    pub intervals: Vec<IntervalStats>,
    /// Wall-clock time of the start of the load.
    pub started_at: SystemTime,
    /// How long requests were released (the duration, or less after Ctrl-C).
    pub load_duration: Duration,
    /// From the start to the end of the grace period.
    pub elapsed: Duration,
    /// Requests still queued or in flight when the grace period ended.
    pub unfinished: u64,
    /// Connections open at the end of the load.
    pub open: usize,
    /// Whether Ctrl-C (or a stop) ended the run early.
    pub interrupted: bool,
    /// Whether a second Ctrl-C cut the grace period short.
    pub cut_short: bool,
    /// Requests written before the schedule ended.
    pub sent_in_window: u64,
    /// Requests completed (any status) before the load window ended; the rest of
    /// `completed` drained during the grace period.
    pub completed_in_window: u64,
    /// From the first completion to the last: the time the completions took (about the load
    /// window when the target kept up; longer when a backlog drained after it).
    pub completion_span: Duration,
    /// Per worker thread, the share of the load window it was busy (0..=1): near 1 means
    /// the generator itself was saturated.
    pub busy: Vec<f64>,
    /// All threads' pacer waits for due times, and how many of them stayed awake for a
    /// response instead of sleeping.
    pub waits: (u64, u64),
    /// Per worker thread, its script's final globals.
    pub thread_globals: Vec<Vec<(String, Portable)>>,
    /// How late the schedule really started after `--start-at` (zero without one).
    pub start_late: Duration,
    /// What was negotiated with the target: protocol, TLS version and cipher (empty when
    /// rebuilt from logs that did not say).
    pub negotiated: String,
    /// HTTP/2: the lowest SETTINGS_MAX_CONCURRENT_STREAMS the server announced (None over
    /// HTTP/1.1, or when it set no limit).
    pub server_max_streams: Option<u64>,
    /// Requests in flight one connection may carry: `--streams` over HTTP/2, 1 over
    /// HTTP/1.1.
    pub streams_per_connection: u64,
    /// For a merge of shards: one line per shard, to spot the one that fell behind.
    pub shard_lines: Vec<ShardLine>,
    /// For a merge that was not the whole set of a plan's shards (`--allow-partial`): what
    /// was missing or mixed.
    pub incomplete: Option<String>,
    /// What the warm-up before the measured window did, if there was one (never part of
    /// any number above).
    pub warmup: Option<Warmup>,
    /// `--until`: the precision asked for and what the run reached (None without it).
    pub precision: Option<Precision>,
    /// `--requests-log`: the first write that failed (the log is then incomplete).
    pub requests_log_error: Option<String>,
    /// How requests were sent on time (None when rebuilt from logs that did not say).
    pub pacing: Option<Pacing>,
}

/// How a run's requests were sent on time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    /// Which way: `io_uring linked timeouts`, `timer and spin`, `timer` (`--spin 0`) or
    /// `precision grid` (`--precision`).
    pub path: String,
    /// Why the io_uring path did not run (None when it did).
    pub io_uring_not_used: Option<String>,
    /// The io_uring path: sends made through it.
    pub sends: u64,
    /// Requests (on either path) whose send time is the kernel's transmit stamp: their
    /// send lag is the stamp less the due time. The others' is the ring's completion as
    /// the thread saw it, or the clock read just before the write.
    pub stamped: u64,
}

impl Pacing {
    /// The io_uring path's name, as reports and JSON say it.
    pub const IO_URING: &'static str = "io_uring linked timeouts";
}

/// One shard of a merged run, as its own log told it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardLine {
    /// Its index.
    pub shard: u64,
    /// Its achieved (sent) rate, requests/s.
    pub achieved_per_s: f64,
    /// Its share of the target rate, requests/s.
    pub target_per_s: f64,
    /// Its send lag p99, ms.
    pub send_lag_p99_ms: f64,
    /// Its busiest thread's share of the load window.
    pub busiest: f64,
    /// How late it started after `--start-at`, seconds.
    pub start_late_s: f64,
}

/// The warm-up's own accounting: sent before the measured window, kept out of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warmup {
    /// How long it ran.
    pub duration: Duration,
    /// Its rate, requests/s.
    pub rate: f64,
    /// Requests due in it.
    pub scheduled: u64,
    /// Of those, completed (any status).
    pub completed: u64,
    /// Failed.
    pub errors: u64,
    /// Still in flight when its grace period ended.
    pub unfinished: u64,
}

impl RunResult {
    /// An empty result of a run described by `meta`, to be filled in (merged logs, tests).
    pub fn empty(meta: RunMeta) -> RunResult {
        RunResult {
            meta,
            addr: None,
            recorder: Recorder::new(),
            intervals: Vec::new(),
            started_at: SystemTime::UNIX_EPOCH,
            load_duration: Duration::ZERO,
            elapsed: Duration::ZERO,
            unfinished: 0,
            open: 0,
            interrupted: false,
            cut_short: false,
            sent_in_window: 0,
            completed_in_window: 0,
            completion_span: Duration::ZERO,
            busy: Vec::new(),
            waits: (0, 0),
            thread_globals: Vec::new(),
            warmup: None,
            start_late: Duration::ZERO,
            negotiated: String::new(),
            server_max_streams: None,
            streams_per_connection: 1,
            shard_lines: Vec::new(),
            incomplete: None,
            requests_log_error: None,
            precision: None,
            pacing: None,
        }
    }

    /// `scheduled = completed + errors + unfinished`: true unless the engine lost a request.
    pub fn accounting_holds(&self) -> bool {
        let t = &self.recorder.total;
        t.scheduled == t.completed + t.error_total() + self.unfinished
    }
}

/// `--until`: the precision asked for and what the run reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Precision {
    /// Each goal: its name (`p99`), quantile, the relative half-width asked for (0.02).
    pub goals: Vec<(String, f64, f64)>,
    /// The load stopped early: the running estimate met every goal (else it ran to
    /// `--max-duration`). Whether the final numbers meet them is the report's to say.
    pub stopped: bool,
    /// How long the load ran, seconds.
    pub after_s: f64,
}
