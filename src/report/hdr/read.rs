//! Reading interval logs back and merging them into one run: histograms second by second
//! (each log's seconds counted from its own start), counters and rates summed, the run's
//! description rebuilt from what the logs wrote down (never an invented plan).

use super::{
    stream_hists_mut, COUNTS, STREAM_TAGS, TAG_CORRECTED, TAG_RELEASE_LAG, TAG_SEND_LAG, TAG_TTFT,
    TAG_UNCORRECTED, TOTALS,
};
use crate::pacer::Rate;
use crate::record::histogram::{new_hist, Hist};
use crate::record::{Counts, Interval, Recorder};
use crate::report::json::{ConfigDoc, Document, SecondDoc};
use crate::run::{RunMeta, RunResult};
use crate::stream::Slo;
use base64::Engine as _;
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
    /// A line is not an interval-log line: is this an HdrHistogram log?
    #[error("{path}:{line}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No interval lines at all: is this an HdrHistogram log?
    #[error("{0}: no histograms found (expected an interval log written with --hdr-log)")]
    Empty(PathBuf),
}

/// One parsed data line.
struct Line {
    tag: Option<String>,
    start: f64,
    hist: Hist,
}

fn parse_line(text: &str) -> Result<Line, String> {
    let (tag, rest) = match text.strip_prefix("Tag=") {
        Some(r) => {
            let (t, rest) = r.split_once(',').ok_or("a tag with no fields after it")?;
            (Some(t.to_string()), rest)
        }
        None => (None, text),
    };
    let fields: Vec<&str> = rest.splitn(4, ',').collect();
    if fields.len() != 4 {
        return Err("expected start,length,max,histogram".into());
    }
    let start: f64 = fields[0]
        .trim()
        .parse()
        .map_err(|_| format!("bad start time {:?}", fields[0]))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(fields[3].trim())
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let decoded: Hist = Deserializer::new()
        .deserialize(&mut io::Cursor::new(bytes))
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    let mut hist = new_hist();
    // Another tool's histogram may use other bounds: re-record its values in ours.
    if hist.add(&decoded).is_err() {
        for v in decoded.iter_recorded() {
            hist.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
    Ok(Line { tag, start, hist })
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
    totals: Option<Document>,
}

fn read_one(path: &Path) -> Result<LogData, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut d = LogData::default();
    let mut any = false;
    for (i, line) in text.lines().enumerate() {
        let err = |reason: String| ReadError::Format {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let line = line.trim();
        if let Some(json) = line.strip_prefix(COUNTS).and_then(|l| l.strip_suffix(']')) {
            let s: SecondDoc = serde_json::from_str(json).map_err(|e| err(e.to_string()))?;
            d.counts.insert(s.second, s);
            continue;
        }
        if let Some(json) = line.strip_prefix(TOTALS).and_then(|l| l.strip_suffix(']')) {
            d.totals = Some(serde_json::from_str(json).map_err(|e| err(e.to_string()))?);
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with('"') {
            continue;
        }
        let l = parse_line(line).map_err(err)?;
        any = true;
        let second = l.start.max(0.0).floor() as u32;
        match l.tag.as_deref() {
            // Untagged lines (other tools' logs) are taken as corrected latency.
            None | Some(TAG_CORRECTED) => {
                add(&mut d.seconds.entry(second).or_insert_with(pair).0, &l.hist)
            }
            Some(TAG_UNCORRECTED) => {
                add(&mut d.seconds.entry(second).or_insert_with(pair).1, &l.hist)
            }
            Some(TAG_SEND_LAG) => d.send_lag = Some(l.hist),
            Some(TAG_RELEASE_LAG) => d.release_lag = Some(l.hist),
            Some(TAG_TTFT) => add(d.ttft.entry(second).or_insert_with(new_hist), &l.hist),
            Some(tag) if STREAM_TAGS.contains(&tag) => add(
                d.stream.entry(tag.to_string()).or_insert_with(new_hist),
                &l.hist,
            ),
            Some(_) => {} // someone else's tag
        }
    }
    if !any {
        return Err(ReadError::Empty(path.to_path_buf()));
    }
    Ok(d)
}

fn pair() -> (Hist, Hist) {
    (new_hist(), new_hist())
}

fn add(into: &mut Hist, h: &Hist) {
    into.add(h).expect("same HDR settings");
}

/// Rebuilds a run's description from its written-down form.
fn meta_of(c: &ConfigDoc) -> RunMeta {
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    RunMeta {
        url: c.url.clone(),
        method: c.method.clone(),
        rate: Rate::new((c.rate_per_s.max(0.0) * 1e6).round() as u128, 1_000_000),
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
    }
}

/// Reads and merges interval logs into one run: histograms merged second by second (each
/// log's seconds counted from its own start), counters and rates summed.
pub fn read(paths: &[PathBuf]) -> Result<RunResult, ReadError> {
    let logs = paths
        .iter()
        .map(|p| read_one(p))
        .collect::<Result<Vec<_>, _>>()?;
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
                });
                for (code, n) in &t.status_codes {
                    if let Ok(i) = code.parse::<usize>() {
                        recorder.status[i.min(999)] += n;
                    }
                }
                recorder.queued += a.queued;
                recorder.reconnect_waits += a.reconnect_waits;
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
                config = Some(match config {
                    None => t.config.clone(),
                    Some(mut c) => {
                        c.rate_per_s += t.config.rate_per_s;
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
    });
    Ok(RunResult {
        meta: meta_of(&config),
        addr: None,
        recorder,
        intervals: seconds.values().map(Interval::stats).collect(),
        load_duration: Duration::from_secs_f64(load),
        elapsed: Duration::from_secs_f64(elapsed),
        started_at: if started_at == f64::MAX {
            UNIX_EPOCH
        } else {
            UNIX_EPOCH + Duration::from_secs_f64(started_at)
        },
        unfinished,
        open,
        interrupted,
        sent_in_window,
        completed_in_window,
        completion_span: Duration::from_secs_f64(span.max(0.0)),
        busy,
        waits: (0, 0), // not in the log
        thread_globals: Vec::new(),
    })
}
