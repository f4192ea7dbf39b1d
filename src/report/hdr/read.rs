//! Reading interval logs back and merging them into one run: histograms second by second
//! (each log's seconds counted from its own start), counters and rates summed, the run's
//! description rebuilt from what the logs wrote down (never an invented plan).

use super::{
    stream_hists_mut, COUNTS, STREAM_TAGS, TAG_CONNECT_TCP, TAG_CONNECT_TLS, TAG_CORRECTED,
    TAG_READ_LAG, TAG_RELEASE_LAG, TAG_SEND_LAG, TAG_TTFT, TAG_UNCORRECTED, TOTALS,
};
use crate::outcome::ErrorClass;
use crate::pacer::Rate;
use crate::record::histogram::{new_hist, Hist};
use crate::record::{Counts, Interval, Recorder};
use crate::report::json::{ConfigDoc, Document, SecondDoc};
use crate::run::{RunMeta, RunResult, ShardLine};
use crate::stream::Slo;
use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry, LogIteratorError};
use hdrhistogram::serialization::Deserializer;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read: check the path.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A line is not an interval-log line, or its histogram does not decode: is this an
    /// HdrHistogram log?
    #[error("{path}:{line}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Logs of a sharded plan that are not its whole set, each shard once: add or remove
    /// the logs named, or pass --allow-partial.
    #[error(
        "these logs are not one plan's shards, each once: {0} (--allow-partial merges them anyway)"
    )]
    Set(String),
    /// No interval lines at all: is this an HdrHistogram log?
    #[error("{0}: no histograms found (expected an interval log written with --hdr-log)")]
    Empty(PathBuf),
}

/// A time stamp at or above this many seconds is absolute (since the epoch), below it
/// relative: the rule HdrHistogram's own log readers apply to logs without a BaseTime.
const ABSOLUTE_S: f64 = 365.0 * 24.0 * 3600.0;

/// Decodes one interval's histogram into ours (µs, 1 µs .. 1 h), converting its unit. Other
/// tools log nanoseconds (jHiccup, HdrHistogram_py and Java's writer print the max column as
/// value / 1e6, in ms) where ratebench logs microseconds (max / 1e3, also ms): the ratio of
/// the histogram's own max to the max column, rounded to a power of 1000, says which.
fn decode(encoded: &str, max_column: f64) -> Result<Hist, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let decoded: Hist = Deserializer::new()
        .deserialize(&mut io::Cursor::new(bytes))
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    // Microseconds per recorded unit: 1 for µs (ratebench), 1e-3 for ns, 1e3 for ms.
    let per_unit = if max_column > 0.0 && max_column.is_finite() && decoded.max() > 0 {
        let thousands = ((decoded.max() as f64 / max_column).log10() / 3.0).round();
        10f64.powi(3 * (1 - thousands.clamp(0.0, 3.0) as i32))
    } else {
        1.0
    };
    let mut hist = new_hist();
    if per_unit == 1.0 && hist.add(&decoded).is_ok() {
        return Ok(hist);
    }
    // Other bounds or another unit: re-record each value in ours (saturating at 1 h).
    let mut hist = new_hist();
    for v in decoded.iter_recorded() {
        let us = (v.value_iterated_to() as f64 * per_unit).round();
        hist.saturating_record_n(us.clamp(0.0, u64::MAX as f64) as u64, v.count_at_value());
    }
    Ok(hist)
}

/// What one log file holds.
#[derive(Default)]
struct LogData {
    /// Per second: corrected, uncorrected.
    seconds: BTreeMap<u32, (Hist, Hist)>,
    /// Per second: time to first token.
    ttft: BTreeMap<u32, Hist>,
    /// Whole-run stream histograms, by tag.
    stream: BTreeMap<String, Hist>,
    counts: BTreeMap<u32, SecondDoc>,
    send_lag: Option<Hist>,
    release_lag: Option<Hist>,
    read_lag: Option<Hist>,
    connect_tcp: Option<Hist>,
    connect_tls: Option<Hist>,
    /// Whole-run corrected latency by request tag.
    tags: BTreeMap<String, Hist>,
    totals: Option<Document>,
}

/// The 1-based line of byte `offset` in `bytes`.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn read_one(path: &Path) -> Result<LogData, ReadError> {
    let mut bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.last().is_some_and(|b| *b != b'\n') {
        bytes.push(b'\n'); // the last line counts even without its newline
    }
    // A log collected with `kubectl logs` from `--hdr-log -` has the text report (stderr)
    // interleaved: keep only the lines a log can have (comments, the legend, intervals).
    let log_line = |l: &[u8]| {
        l.first()
            .is_some_and(|c| matches!(c, b'#' | b'"' | b'0'..=b'9'))
            || l.starts_with(b"Tag=")
    };
    if bytes
        .split(|b| *b == b'\n')
        .any(|l| !l.is_empty() && !log_line(l))
    {
        bytes = bytes
            .split(|b| *b == b'\n')
            .filter(|l| log_line(l))
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect();
    }
    let err = |line: usize, reason: String| ReadError::Format {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut d = LogData::default();
    // ratebench's own counters travel in comment lines, which HdrHistogram readers skip.
    for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
        let line = line.trim();
        if let Some(json) = line.strip_prefix(COUNTS).and_then(|l| l.strip_suffix(']')) {
            let s: SecondDoc = serde_json::from_str(json).map_err(|e| err(i + 1, e.to_string()))?;
            d.counts.insert(s.second, s);
        } else if let Some(json) = line.strip_prefix(TOTALS).and_then(|l| l.strip_suffix(']')) {
            d.totals = Some(serde_json::from_str(json).map_err(|e| err(i + 1, e.to_string()))?);
        }
    }
    // The histograms, through the hdrhistogram crate's own log reader.
    let (mut start_time, mut base_time) = (None, None);
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        match entry {
            Ok(LogEntry::StartTime(t)) => start_time = Some(t.as_secs_f64()),
            Ok(LogEntry::BaseTime(t)) => base_time = Some(t.as_secs_f64()),
            Ok(LogEntry::Interval(h)) => {
                // Absolute time of the interval's start, as HdrHistogram's readers see it.
                let stamp = h.start_timestamp().as_secs_f64();
                let absolute = match base_time {
                    Some(base) => stamp + base,
                    None if stamp < ABSOLUTE_S => stamp + start_time.unwrap_or(0.0),
                    None => stamp,
                };
                let hist = decode(h.encoded_histogram(), h.max()).map_err(|reason| {
                    err(
                        line_of(&bytes, interval_offset(&bytes, h.encoded_histogram())),
                        reason,
                    )
                })?;
                intervals.push((h.tag().map(|t| t.as_str().to_string()), absolute, hist));
            }
            Err(LogIteratorError::ParseError { offset }) => {
                return Err(err(
                    line_of(&bytes, offset),
                    "not an interval-log line (expected [Tag=T,]start,length,max,histogram)".into(),
                ))
            }
        }
    }
    if intervals.is_empty() {
        return Err(ReadError::Empty(path.to_path_buf()));
    }
    // Seconds of the run count from its StartTime, else from its first interval.
    let run_start = start_time.unwrap_or_else(|| {
        intervals
            .iter()
            .map(|(_, a, _)| *a)
            .fold(f64::INFINITY, f64::min)
    });
    for (tag, absolute, hist) in intervals {
        let second = (absolute - run_start)
            .floor()
            .clamp(0.0, f64::from(u32::MAX - 1)) as u32;
        match tag.as_deref() {
            // Untagged lines (other tools' logs) are taken as corrected latency.
            None | Some(TAG_CORRECTED) => {
                add(&mut d.seconds.entry(second).or_insert_with(pair).0, &hist)
            }
            Some(TAG_UNCORRECTED) => {
                add(&mut d.seconds.entry(second).or_insert_with(pair).1, &hist)
            }
            Some(TAG_SEND_LAG) => d.send_lag = Some(hist),
            Some(TAG_RELEASE_LAG) => d.release_lag = Some(hist),
            Some(TAG_READ_LAG) => d.read_lag = Some(hist),
            Some(TAG_CONNECT_TCP) => d.connect_tcp = Some(hist),
            Some(TAG_CONNECT_TLS) => d.connect_tls = Some(hist),
            Some(TAG_TTFT) => add(d.ttft.entry(second).or_insert_with(new_hist), &hist),
            Some(tag) if STREAM_TAGS.contains(&tag) => add(
                d.stream.entry(tag.to_string()).or_insert_with(new_hist),
                &hist,
            ),
            Some(label) if label.starts_with(super::TAG_PREFIX) => {
                if let Some(name) = super::tag_of_label(label) {
                    add(d.tags.entry(name).or_insert_with(new_hist), &hist);
                }
            }
            Some(_) => {} // someone else's tag
        }
    }
    Ok(d)
}

/// The byte offset of `part` (a slice of `bytes`) in `bytes`.
fn interval_offset(bytes: &[u8], part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize)
}

fn pair() -> (Hist, Hist) {
    (new_hist(), new_hist())
}

fn add(into: &mut Hist, h: &Hist) {
    into.add(h).expect("same HDR settings");
}

/// Seconds as written in a log, as a duration: negative, NaN or absurd values (a damaged or
/// hostile file) become 0 or the largest duration instead of a panic.
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(if s.is_nan() {
        Duration::ZERO
    } else {
        Duration::MAX
    })
}

/// Rebuilds a run's description from its written-down form.
fn meta_of(c: &ConfigDoc) -> RunMeta {
    RunMeta {
        url: c.url.clone(),
        method: c.method.clone(),
        rate: Rate::new(
            (c.rate_per_s.clamp(0.0, 1e12) * 1e6).round() as u128,
            1_000_000,
        ),
        connections: c.connections,
        threads: c.threads,
        duration: secs(c.duration_s),
        timeout: secs(c.timeout_s),
        grace: secs(c.grace_s),
        headers: c
            .headers
            .iter()
            .map(|[k, v]| (k.clone(), v.clone()))
            .collect(),
        body_bytes: c.body_bytes,
        arrival: c.arrival.clone(),
        seed: c.seed,
        stages: c.stages.clone(),
        shard: c.shard,
        shards: c.shards.max(1),
        start_at: c
            .start_at_unix_s
            .map(|s| UNIX_EPOCH.checked_add(secs(s)).unwrap_or(UNIX_EPOCH)),
        plan_id: c.plan_id.clone(),
        precision: c.precision_s.map(secs),
        prices: Vec::new(),
        group_by: None,
        http2_streams: None,
        tokenizer: None,
        until: None,
    }
}

/// Checks that logs of a sharded plan are the whole set: every shard of one plan, each
/// once. Logs of unsharded runs are independent runs merged side by side, as before.
fn check_shards(paths: &[PathBuf], logs: &[LogData]) -> Result<(), String> {
    let docs: Vec<(&PathBuf, &ConfigDoc)> = paths
        .iter()
        .zip(logs)
        .filter_map(|(p, l)| l.totals.as_ref().map(|t| (p, &t.config)))
        .collect();
    let Some((_, first)) = docs.iter().find(|(_, c)| c.shards > 1) else {
        return Ok(());
    };
    let n = first.shards;
    let mut problems = Vec::new();
    for (p, c) in &docs {
        if c.plan_id != first.plan_id || c.shards != n {
            problems.push(format!(
                "{} is from another plan (plan {}, shards {}; expected plan {}, shards {n})",
                p.display(),
                c.plan_id,
                c.shards,
                first.plan_id
            ));
        }
    }
    if docs.len() < logs.len() {
        problems.push("some logs carry no ratebench totals (not from a sharded run)".into());
    }
    for i in 0..n {
        let holders: Vec<String> = docs
            .iter()
            .filter(|(_, c)| c.shard == i && c.plan_id == first.plan_id)
            .map(|(p, _)| p.display().to_string())
            .collect();
        match holders.len() {
            0 => problems.push(format!("shard {i}/{n} is missing")),
            1 => {}
            _ => problems.push(format!(
                "shard {i}/{n} is there twice ({})",
                holders.join(", ")
            )),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

impl ReadError {
    /// An incomplete or mixed set of shards is bad input (2); a file that cannot be read
    /// or parsed is a runtime failure (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            ReadError::Set(_) => crate::error::EXIT_USAGE,
            _ => crate::error::EXIT_RUNTIME,
        }
    }
}

/// Reads and merges interval logs into one run: histograms merged second by second (each
/// log's seconds counted from its own start), counters summed. The shards of one plan must
/// all be there, each once (unless `allow_partial`); independent runs' rates are summed.
pub fn read(paths: &[PathBuf], allow_partial: bool) -> Result<RunResult, ReadError> {
    let logs = paths
        .iter()
        .map(|p| read_one(p))
        .collect::<Result<Vec<_>, _>>()?;
    let partial = match check_shards(paths, &logs) {
        Ok(()) => None,
        Err(why) if allow_partial => Some(why),
        Err(why) => return Err(ReadError::Set(why)),
    };
    let mut shard_lines = Vec::new();
    let mut negotiated: Option<String> = None;
    let mut streams_per_connection = 1;
    let mut server_max_streams = None;
    let mut recorder = Recorder::new();
    let mut seconds: BTreeMap<u32, Interval> = BTreeMap::new();
    let mut config: Option<ConfigDoc> = None;
    let (mut unfinished, mut open, mut sent_in_window) = (0, 0, 0);
    let mut completed_in_window = 0;
    let mut span = 0.0f64;
    let (mut load, mut elapsed) = (0.0f64, 0.0f64);
    let mut started_at = f64::MAX;
    let mut interrupted = false;
    let mut busy = Vec::new();
    for log in &logs {
        for (&s, (c, u)) in &log.seconds {
            let iv = seconds.entry(s).or_insert_with(|| Interval::new(s));
            add(&mut iv.corrected, c);
            add(&mut iv.uncorrected, u);
            add(&mut recorder.corrected, c);
            add(&mut recorder.uncorrected, u);
            // The logs' seconds are the batches of the intervals (one-second slots).
            let at = u64::from(s) * 1_000_000_000;
            recorder.batches[0].record_hist(at, c);
            recorder.batches[1].record_hist(at, u);
            if let Some(doc) = log.counts.get(&s) {
                iv.counts.add(&doc.counts());
            } else {
                iv.counts.completed += c.len();
            }
        }
        let has_stream = !log.ttft.is_empty() || !log.stream.is_empty();
        if has_stream {
            let st = recorder.stream.get_or_insert_with(Default::default);
            for (&s, t) in &log.ttft {
                add(&mut st.ttft, t);
                let iv = seconds.entry(s).or_insert_with(|| Interval::new(s));
                add(iv.ttft.get_or_insert_with(new_hist), t);
            }
            for (tag, h) in stream_hists_mut(st) {
                if let Some(x) = log.stream.get(tag) {
                    add(h, x);
                }
            }
        }
        if let Some(h) = &log.send_lag {
            add(&mut recorder.send_lag, h);
        }
        if let Some(h) = &log.release_lag {
            add(&mut recorder.release_lag, h);
        }
        if let Some(h) = &log.read_lag {
            add(&mut recorder.read_lag, h);
        }
        if let Some(h) = &log.connect_tcp {
            add(&mut recorder.connect_tcp, h);
        }
        if let Some(h) = &log.connect_tls {
            add(&mut recorder.connect_tls, h);
        }
        match &log.totals {
            Some(t) => {
                let a = &t.accounting;
                let e = &t.errors;
                recorder.total.add(&Counts {
                    scheduled: a.scheduled,
                    sent: a.sent,
                    completed: a.completed,
                    errors: [e.connect, e.read, e.write, e.timeout, e.protocol, e.script],
                    bytes: t.bytes,
                    tokens: t.streaming.tokens,
                    status_classes: [0; 5],
                    rate_limited: 0,
                });
                for (code, n) in &t.status_codes {
                    if let Ok(i) = code.parse::<usize>() {
                        recorder.status[i.min(999)] += n;
                    }
                }
                recorder.queued += a.queued;
                recorder.reconnect_waits += a.reconnect_waits;
                for (mine, theirs) in recorder.retried.iter_mut().zip(a.retried.counts()) {
                    *mine += theirs;
                }
                for class in ErrorClass::ALL {
                    for (cause, n) in e.causes.get(class.name()).into_iter().flatten() {
                        recorder.add_cause(class, cause, *n);
                    }
                }
                if let (Some(last), Some(lowest)) = (
                    t.connections.server_max_streams_last,
                    t.connections.server_max_streams,
                ) {
                    let (l, w) = recorder.stream_limit.unwrap_or((last, lowest));
                    recorder.stream_limit = Some((l.max(last), w.min(lowest)));
                }
                recorder.slo_met += t.streaming.slo_met;
                if recorder.slos.is_empty() {
                    recorder.slos = t
                        .streaming
                        .slos
                        .iter()
                        .filter_map(|s| Slo::parse(s).ok())
                        .collect();
                }
                if let Some(st) = recorder.stream.as_mut() {
                    st.streams += t.streaming.streams;
                    st.with_usage += t.streaming.with_usage;
                    st.usage_mismatch += t.streaming.usage_mismatch;
                }
                recorder.connects += t.connections.opened;
                recorder.reconnects += t.connections.reconnects;
                recorder.total.rate_limited += t.rate_limited.count;
                // Each tag's counts from the totals; its latency from its log line.
                for (name, td) in &t.tags {
                    let i = usize::from(recorder.tag_id(name));
                    let tag = &mut recorder.tags[i];
                    let e = &td.errors;
                    tag.counts.add(&Counts {
                        scheduled: td.requests,
                        sent: 0,
                        completed: td.completed,
                        errors: [e.connect, e.read, e.write, e.timeout, e.protocol, e.script],
                        bytes: 0,
                        tokens: td.tokens.completion,
                        status_classes: [0; 5],
                        rate_limited: td.rate_limited,
                    });
                    for (code, n) in &td.status_codes {
                        if let Ok(c) = code.parse::<u16>() {
                            let class = usize::from(c / 100).clamp(1, 5) - 1;
                            tag.counts.status_classes[class] += n;
                            match tag.status.iter_mut().find(|(x, _)| *x == c) {
                                Some(e) => e.1 += n,
                                None => tag.status.push((c, *n)),
                            }
                        }
                    }
                    tag.prompt_tokens += td.tokens.prompt;
                    tag.completion_tokens += td.tokens.completion;
                    if let Some(h) = log.tags.get(name) {
                        add(&mut tag.corrected, h);
                    }
                }
                unfinished += a.unfinished;
                open += t.connections.open_at_end;
                sent_in_window += a.sent_in_window;
                completed_in_window += a.completed_in_window;
                span = span.max(t.completion_span_s);
                load = load.max(t.load_duration_s);
                elapsed = elapsed.max(t.elapsed_s);
                started_at = started_at.min(t.started_at_unix_s);
                interrupted |= t.interrupted;
                busy.extend(&t.threads_busy);
                if negotiated.is_none() && !t.connections.negotiated.is_empty() {
                    negotiated = Some(t.connections.negotiated.clone());
                }
                streams_per_connection = t.connections.streams_per_connection;
                if let Some(m) = t.connections.server_max_streams {
                    server_max_streams = Some(server_max_streams.map_or(m, |s: u64| s.min(m)));
                }
                if t.config.shards > 1 {
                    shard_lines.push(ShardLine {
                        shard: t.config.shard,
                        achieved_per_s: t.rates.achieved_per_s,
                        target_per_s: t.rates.target_per_s,
                        send_lag_p99_ms: t.latency_ms.send_lag.p99,
                        busiest: t.threads_busy.iter().cloned().fold(0.0, f64::max),
                        start_late_s: t.config.start_late_s,
                    });
                }
                config = Some(match config {
                    None => t.config.clone(),
                    Some(mut c) => {
                        // Shards of one plan share its whole rate; independent runs add up.
                        if t.config.shards <= 1 {
                            c.rate_per_s += t.config.rate_per_s;
                        }
                        c.connections += t.config.connections;
                        c.threads += t.config.threads;
                        c.duration_s = c.duration_s.max(t.config.duration_s);
                        c
                    }
                });
            }
            None => {
                // Another tool's log: what it measured is what completed.
                let n: u64 = log.seconds.values().map(|(c, _)| c.len()).sum();
                recorder.total.scheduled += n;
                recorder.total.completed += n;
                recorder.total.sent += n;
                sent_in_window += n;
                completed_in_window += n;
                let secs = log
                    .seconds
                    .keys()
                    .last()
                    .map_or(0.0, |s| f64::from(*s) + 1.0);
                load = load.max(secs);
                elapsed = elapsed.max(secs);
            }
        }
    }
    let config = config.unwrap_or(ConfigDoc {
        url: paths[0].display().to_string(),
        method: "GET".into(),
        rate_per_s: recorder.total.scheduled as f64 / load.max(1e-9),
        connections: 0,
        threads: 0,
        duration_s: load,
        timeout_s: 0.0,
        grace_s: 0.0,
        headers: Vec::new(),
        body_bytes: 0,
        arrival: "unknown".into(),
        seed: 0,
        stages: String::new(),
        shard: 0,
        shards: 1,
        start_at_unix_s: None,
        plan_id: String::new(),
        start_late_s: 0.0,
        precision_s: None,
    });
    shard_lines.sort_by_key(|l| l.shard);
    // The merge of a plan's shards is the whole plan: its rate, no shard of its own.
    let mut config = config;
    if !shard_lines.is_empty() {
        config.shard = 0;
        config.shards = 1;
    }

    Ok(RunResult {
        pacing: None,
        meta: meta_of(&config),
        addr: None,
        recorder,
        intervals: seconds.values().map(Interval::stats).collect(),
        load_duration: secs(load),
        elapsed: secs(elapsed),
        started_at: if started_at == f64::MAX {
            UNIX_EPOCH
        } else {
            UNIX_EPOCH
                .checked_add(secs(started_at))
                .unwrap_or(UNIX_EPOCH)
        },
        unfinished,
        open,
        interrupted,
        cut_short: false,
        sent_in_window,
        completed_in_window,
        completion_span: secs(span),
        busy,
        waits: (0, 0), // not in the log
        thread_globals: Vec::new(),
        warmup: None,
        start_late: Duration::ZERO,
        negotiated: negotiated.unwrap_or_default(),
        server_max_streams,
        streams_per_connection,
        shard_lines,
        incomplete: partial,
        precision: None,
        requests_log_error: None,
    })
}
