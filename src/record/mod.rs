//! What one worker thread measured: its histograms and counters, merged once at the end.
//!
//! The correction is one line in `Recorder::record`: corrected latency is `done - intended`
//! (the time a user waited since the request should have gone out), uncorrected is
//! `done - sent`, and send lag is `sent - intended` only when a connection was free (so it
//! is the generator's own delay, not queueing behind a slow server).
//!
//! Used by `engine::worker` (one `Recorder` per thread, no locks), `engine` (the merge) and
//! `report` (reading the merged counts).

pub mod arrivals;
pub mod batches;
pub mod dependence;
pub mod histogram;
pub mod interval;
pub mod tags;

use crate::outcome::StreamStats;
use crate::outcome::{ErrorClass, Outcome};
use crate::stream::{Slo, SloMetric};
use batches::Batches;
use histogram::{new_hist, record, Hist};
pub use interval::{Interval, IntervalStats};
use std::time::Duration;
pub use tags::{GroupStats, TagStats};

/// Request counters, kept for the whole run and for the current one-second interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests whose intended time fell in the period.
    pub scheduled: u64,
    /// Requests actually written in the period.
    pub sent: u64,
    /// Requests that got a complete response (any status).
    pub completed: u64,
    /// Failed requests, by `ErrorClass::index`.
    pub errors: [u64; 6],
    /// Response bytes read.
    pub bytes: u64,
    /// Output tokens of event streams.
    pub tokens: u64,
    /// Completed responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx (others in 5xx).
    pub status_classes: [u64; 5],
    /// Of those, 429 Too Many Requests: rate limited.
    pub rate_limited: u64,
}

impl Counts {
    /// Total failed requests over all classes.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        self.scheduled += other.scheduled;
        self.sent += other.sent;
        self.completed += other.completed;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.bytes += other.bytes;
        self.tokens += other.tokens;
        for (a, b) in self.status_classes.iter_mut().zip(other.status_classes) {
            *a += b;
        }
        self.rate_limited += other.rate_limited;
    }
}

/// Measurements of streamed (`text/event-stream`) responses; allocated at the first stream,
/// so runs without streams pay nothing for them.
#[derive(Debug, Clone)]
pub struct StreamRecorder {
    /// Time to first byte (response head) from the intended send time, µs.
    pub ttfb: Hist,
    /// Time to first token from the intended send time, µs.
    pub ttft: Hist,
    /// Time to first token from the actual send, µs.
    pub ttft_uncorrected: Hist,
    /// Every gap between consecutive content events, µs.
    pub itl: Hist,
    /// Time per output token after the first, (e2e − TTFT) / (tokens − 1), µs.
    pub tpot: Hist,
    /// Output tokens per stream (a count, not a time).
    pub tokens_per_request: Hist,
    /// Streamed responses seen (completed or not).
    pub streams: u64,
    /// Of those, how many reported `usage.completion_tokens`.
    pub with_usage: u64,
    /// Of those, how many disagreed with the count of content events.
    pub usage_mismatch: u64,
    /// Streams without usage whose output the tokenizer counted.
    pub by_tokenizer: u64,
    /// That tokenizer.
    pub tokenizer: Option<&'static str>,
    /// When the run started (the run's recorder only; tags' keep no batches).
    pub start: Option<std::time::Instant>,
    /// TTFT, ITL and TPOT in time slots, for their confidence intervals.
    pub batches: [Batches; 3],
}

impl Default for StreamRecorder {
    fn default() -> Self {
        StreamRecorder::new()
    }
}

impl StreamRecorder {
    /// Records one stream's measurements (TTFB, TTFT, TPOT, tokens; gaps are recorded as
    /// they happen); returns its output tokens.
    fn add(&mut self, o: &Outcome, st: &StreamStats) -> u64 {
        self.streams += 1;
        let at = self
            .start
            .map(|s| o.done.saturating_duration_since(s).as_nanos() as u64);
        if let Some(fb) = o.first_byte {
            record(&mut self.ttfb, fb.saturating_duration_since(o.intended));
        }
        if let Some(ft) = st.first_token {
            let ttft = ft.saturating_duration_since(o.intended);
            record(&mut self.ttft, ttft);
            if let Some(at) = at {
                self.batches[0].record(at, histogram::micros(ttft));
            }
            if let Some(sent) = o.sent {
                record(
                    &mut self.ttft_uncorrected,
                    ft.saturating_duration_since(sent),
                );
            }
        }
        let tokens = st.tokens();
        self.tokens_per_request.saturating_record(tokens);
        if let Some(u) = st.usage_tokens {
            self.with_usage += 1;
            if u != st.content_events {
                self.usage_mismatch += 1;
            }
        } else if st.tokenized.is_some() {
            self.by_tokenizer += 1;
            self.tokenizer = st.tokenizer;
        }
        if let (Ok(_), Some(ft), true) = (o.result, st.first_token, tokens >= 2) {
            let tpot = o.done.saturating_duration_since(ft) / (tokens - 1) as u32;
            record(&mut self.tpot, tpot);
            if let Some(at) = at {
                self.batches[2].record(at, histogram::micros(tpot));
            }
        }
        tokens
    }

    fn new() -> StreamRecorder {
        StreamRecorder {
            ttfb: new_hist(),
            ttft: new_hist(),
            ttft_uncorrected: new_hist(),
            itl: new_hist(),
            tpot: new_hist(),
            tokens_per_request: new_hist(),
            streams: 0,
            with_usage: 0,
            usage_mismatch: 0,
            by_tokenizer: 0,
            tokenizer: None,
            start: None,
            batches: Default::default(),
        }
    }

    /// The run's own (not a tag's): its TTFT, ITL and TPOT are also kept in time slots
    /// from `start`, for their confidence intervals.
    fn timed(start: Option<std::time::Instant>) -> StreamRecorder {
        StreamRecorder {
            start,
            ..StreamRecorder::new()
        }
    }

    fn merge(&mut self, o: &StreamRecorder) {
        for (mine, theirs) in [
            (&mut self.ttfb, &o.ttfb),
            (&mut self.ttft, &o.ttft),
            (&mut self.ttft_uncorrected, &o.ttft_uncorrected),
            (&mut self.itl, &o.itl),
            (&mut self.tpot, &o.tpot),
            (&mut self.tokens_per_request, &o.tokens_per_request),
        ] {
            mine.add(theirs).expect("same HDR settings");
        }
        self.streams += o.streams;
        self.with_usage += o.with_usage;
        self.usage_mismatch += o.usage_mismatch;
        self.by_tokenizer += o.by_tokenizer;
        self.tokenizer = self.tokenizer.or(o.tokenizer);
        for (mine, theirs) in self.batches.iter_mut().zip(&o.batches) {
            mine.merge(theirs);
        }
    }
}

/// One thread's measurements (or, after `merge`, the whole run's).
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency from the intended send time (coordinated-omission corrected), µs.
    pub corrected: Hist,
    /// Latency from the actual send time, µs.
    pub uncorrected: Hist,
    /// Actual minus intended send time for requests that found a free connection, µs.
    pub send_lag: Hist,
    /// How late the pacer released each request (its wake-up minus the due time), µs:
    /// the generator's own delay whether or not a connection was free.
    pub release_lag: Hist,
    /// How long each response waited between reaching the socket (the kernel's receive
    /// stamp) and ratebench processing it, µs: the generator's own delay on the receive
    /// side, which holds a connection busy after its answer came. Only with kernel stamps.
    pub read_lag: Hist,
    /// Whole-run counters.
    pub total: Counts,
    /// Responses per HTTP status code (index = code, 0..=999).
    pub status: Vec<u64>,
    /// Requests that found every connection busy and waited in the FIFO queue.
    pub queued: u64,
    /// Requests that found a connection free but had to wait for it to be re-opened (the
    /// server had closed it): neither send lag nor queueing.
    pub reconnect_waits: u64,
    /// Connections opened (initial ones and re-opens).
    pub connects: u64,
    /// Connections re-opened after the server closed one or a request failed on it.
    pub reconnects: u64,
    /// How long each opened connection's TCP connect took, µs.
    pub connect_tcp: Hist,
    /// How long each opened https connection's TLS handshake took, µs.
    pub connect_tls: Hist,
    /// The current interval (swapped out every second by the worker).
    pub interval: Interval,
    /// Streamed responses' measurements, once there has been one.
    pub stream: Option<Box<StreamRecorder>>,
    /// Goodput targets each completed request is checked against.
    pub slos: Vec<Slo>,
    /// Completed requests that met every goodput target.
    pub slo_met: u64,
    /// The first few distinct script error messages, each with how often it came (the
    /// rest are only counted, in `script_messages_more`).
    pub script_messages: Vec<(String, u64)>,
    /// Script errors whose message was not among the kept ones.
    pub script_messages_more: u64,
    /// Requests never written because they failed first (connect, or the script's
    /// request()): missing from the achieved rate through no fault of the pacer.
    pub never_sent: u64,
    /// HTTP requests sent beyond one per scheduled request (a script's pipelined strings).
    pub extra_requests: u64,
    /// Results by tag (the plan's tags first, in order; a script's as they come).
    pub tags: Vec<TagStats>,
    /// Results by `--group-by-header` value, as they come.
    pub groups: Vec<GroupStats>,
    /// `Retry-After` of every 429 that sent one, ms.
    pub retry_after: Option<Hist>,
    /// Requests sent again because the server never processed them, by `Retry::index`.
    pub retried: [u64; 3],
    /// Why requests failed, per `ErrorClass::index`: each cause (`Cause::describe`) with
    /// its count, at most `CAUSES_KEPT` per class (the rest under `other`).
    pub causes: [Vec<(String, u64)>; 6],
    /// HTTP/2: the SETTINGS_MAX_CONCURRENT_STREAMS the servers announced: the last one
    /// seen and the lowest.
    pub stream_limit: Option<(u64, u64)>,
    /// When the run's schedule started (time slots of the batches count from it).
    pub start: Option<std::time::Instant>,
    /// Corrected and uncorrected latency in time slots, for the percentiles' confidence
    /// intervals (`batches::interval`).
    pub batches: [Batches; 2],
    /// A bounded sample of consecutive corrected latencies, for their rank
    /// autocorrelation.
    pub dependence: dependence::Dependence,
    /// A bounded sample of when requests were written, for the arrival process on the wire.
    pub arrivals: arrivals::Arrivals,
    /// Prompts as sent (`--prompts`, `--input-tokens`), where the run sized them.
    pub input: Option<Box<InputTokens>>,
}

/// The prompts' tokens as sent, by the run's tokenizer, beside what the server counted.
#[derive(Debug, Clone)]
pub struct InputTokens {
    /// Each sent request's prompt tokens.
    pub per_request: Hist,
    /// Their sum.
    pub sent: u64,
    /// Answers that said `usage.prompt_tokens`.
    pub with_usage: u64,
    /// Of those, answers whose count differed from the one sent.
    pub usage_mismatch: u64,
}

impl InputTokens {
    fn new() -> InputTokens {
        InputTokens {
            per_request: new_hist(),
            sent: 0,
            with_usage: 0,
            usage_mismatch: 0,
        }
    }

    /// A sent request of `n` prompt tokens, of which the server said `usage` (if it did).
    fn record(&mut self, n: u64, usage: Option<u64>) {
        self.per_request.saturating_record(n);
        self.sent += n;
        if let Some(u) = usage {
            self.with_usage += 1;
            self.usage_mismatch += u64::from(u != n);
        }
    }

    fn merge(&mut self, o: &InputTokens) {
        self.per_request
            .add(&o.per_request)
            .expect("same HDR settings");
        self.sent += o.sent;
        self.with_usage += o.with_usage;
        self.usage_mismatch += o.usage_mismatch;
    }
}

/// How many distinct causes of one error class are kept (the rest count as `other`).
pub const CAUSES_KEPT: usize = 16;

/// How many script error messages are kept for the report.
pub const SCRIPT_MESSAGES_KEPT: usize = 5;

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder {
            corrected: new_hist(),
            uncorrected: new_hist(),
            send_lag: new_hist(),
            release_lag: new_hist(),
            read_lag: new_hist(),
            total: Counts::default(),
            status: vec![0; 1000],
            queued: 0,
            reconnect_waits: 0,
            connects: 0,
            reconnects: 0,
            connect_tcp: new_hist(),
            connect_tls: new_hist(),
            interval: Interval::new(0),
            stream: None,
            slos: Vec::new(),
            slo_met: 0,
            script_messages: Vec::new(),
            script_messages_more: 0,
            never_sent: 0,
            extra_requests: 0,
            tags: Vec::new(),
            groups: Vec::new(),
            retry_after: None,
            retried: [0; 3],
            causes: Default::default(),
            stream_limit: None,
            start: None,
            batches: Default::default(),
            dependence: Default::default(),
            arrivals: Default::default(),
            input: None,
        }
    }

    /// Counts `n` failures of class `class` under `cause` (bounded: see `CAUSES_KEPT`).
    pub fn add_cause(&mut self, class: ErrorClass, cause: &str, n: u64) {
        let list = &mut self.causes[class.index()];
        if let Some(kept) = list.iter_mut().find(|(k, _)| k == cause) {
            kept.1 += n;
        } else if list.len() < CAUSES_KEPT {
            list.push((cause.to_string(), n));
        } else if let Some(other) = list.iter_mut().find(|(k, _)| k == "other") {
            other.1 += n;
        } else {
            // The last kept cause makes room for `other`.
            let last = list.pop().expect("CAUSES_KEPT > 0");
            list.push(("other".into(), last.1 + n));
        }
    }

    /// Notes a server's announced stream limit.
    pub fn saw_stream_limit(&mut self, limit: u64) {
        let lowest = self.stream_limit.map_or(limit, |(_, l)| l.min(limit));
        self.stream_limit = Some((limit, lowest));
    }

    /// A recorder whose tags start as `names`, in order (tag i is `names[i]`).
    pub fn with_tags(names: &[String]) -> Recorder {
        let mut r = Recorder::new();
        for n in names {
            r.tag_id(n);
        }
        r
    }

    /// The index of tag `name` (added if new; past `MAX_TAGS`, the `(other)` tag's).
    pub fn tag_id(&mut self, name: &str) -> u16 {
        tags::intern(&mut self.tags, name, |t| &t.name, TagStats::new)
    }

    /// The index of `--group-by-header` value `value` (bounded as tags are).
    pub fn group_id(&mut self, value: &str) -> u16 {
        tags::intern(&mut self.groups, value, |g| &g.value, GroupStats::new)
    }

    /// Counts a request of tag `tag` as scheduled (its share of the mix).
    pub fn tag_scheduled(&mut self, tag: u16) {
        if let Some(t) = self.tags.get_mut(usize::from(tag)) {
            t.counts.scheduled += 1;
        }
    }

    /// Counts a script error message: under its own line if it is one of the first
    /// `SCRIPT_MESSAGES_KEPT` distinct ones, else among the "more".
    pub fn script_message(&mut self, m: String) {
        self.script_messages_n(m, 1);
    }

    fn script_messages_n(&mut self, m: String, n: u64) {
        if let Some(kept) = self.script_messages.iter_mut().find(|(k, _)| *k == m) {
            kept.1 += n;
        } else if self.script_messages.len() < SCRIPT_MESSAGES_KEPT {
            self.script_messages.push((m, n));
        } else {
            self.script_messages_more += n;
        }
    }

    /// Records how long opening a connection took: TCP connect, and TLS handshake if any.
    pub fn connected(&mut self, tcp: Duration, tls: Option<Duration>) {
        record(&mut self.connect_tcp, tcp);
        if let Some(t) = tls {
            record(&mut self.connect_tls, t);
        }
    }

    /// Records one gap between two content events of a stream of tag `tag`, as it happens.
    pub fn record_gap(&mut self, tag: u16, gap: Duration) {
        let start = self.start;
        let s = self
            .stream
            .get_or_insert_with(|| Box::new(StreamRecorder::timed(start)));
        record(&mut s.itl, gap);
        record(self.interval.itl.get_or_insert_with(new_hist), gap);
        if let Some(start) = start {
            let at = start.elapsed().as_nanos() as u64;
            s.batches[1].record(at, histogram::micros(gap));
        }
        if let Some(t) = self.tags.get_mut(usize::from(tag)) {
            let s = t
                .stream
                .get_or_insert_with(|| Box::new(StreamRecorder::new()));
            record(&mut s.itl, gap);
        }
    }

    fn record_stream(&mut self, o: &Outcome, st: &StreamStats) {
        let start = self.start;
        let tokens = self
            .stream
            .get_or_insert_with(|| Box::new(StreamRecorder::timed(start)))
            .add(o, st);
        if let Some(ft) = st.first_token {
            record(
                self.interval.ttft.get_or_insert_with(new_hist),
                ft.saturating_duration_since(o.intended),
            );
        }
        self.total.tokens += tokens;
        self.interval.counts.tokens += tokens;
    }

    /// Whether a completed request met every goodput target.
    fn meets_slos(&self, o: &Outcome) -> bool {
        let st = o.stream.as_ref();
        self.slos.iter().all(|slo| {
            let value = match slo.metric {
                SloMetric::E2e => Some(o.done.saturating_duration_since(o.intended)),
                SloMetric::Ttft => st
                    .and_then(|s| s.first_token)
                    .map(|t| t.saturating_duration_since(o.intended)),
                SloMetric::Itl => st.filter(|s| s.content_events > 0).map(|s| s.max_gap),
                SloMetric::Tpot => st.and_then(|s| {
                    let n = s.tokens();
                    let ft = s.first_token?;
                    (n >= 2).then(|| o.done.saturating_duration_since(ft) / (n - 1) as u32)
                }),
            };
            value.is_some_and(|v| v < slo.limit)
        })
    }

    /// Counts a request whose intended time has come, released by the pacer `lag` late.
    pub fn scheduled(&mut self, lag: Duration) {
        self.total.scheduled += 1;
        self.interval.counts.scheduled += 1;
        record(&mut self.release_lag, lag);
    }

    /// Records that a response reached its socket `lag` before ratebench processed it.
    pub fn read(&mut self, lag: Duration) {
        record(&mut self.read_lag, lag);
    }

    /// Counts a request written to a connection.
    pub fn sent(&mut self) {
        self.total.sent += 1;
        self.interval.counts.sent += 1;
    }

    /// Records how one request ended.
    pub fn record(&mut self, o: &Outcome) {
        if let Some(st) = &o.stream {
            self.record_stream(o, st);
        }
        if let (Some(n), Some(_)) = (o.meta.input_tokens, o.sent) {
            let usage = o
                .meta
                .usage
                .map(|u| u.0)
                .or(o.stream.and_then(|s| s.prompt_tokens));
            self.input
                .get_or_insert_with(|| Box::new(InputTokens::new()))
                .record(n, usage);
        }
        if o.result.is_ok() && !self.slos.is_empty() && self.meets_slos(o) {
            self.slo_met += 1;
            if let Some(t) = self.tags.get_mut(usize::from(o.meta.tag)) {
                t.slo_met += 1;
            }
        }
        match o.result {
            Ok(status) => {
                self.total.completed += 1;
                self.interval.counts.completed += 1;
                self.status[usize::from(status).min(999)] += 1;
                let class = usize::from(status / 100).clamp(1, 5) - 1;
                self.interval.counts.status_classes[class] += 1;
                if status == 429 {
                    self.total.rate_limited += 1;
                    self.interval.counts.rate_limited += 1;
                    if let Some(ra) = o.meta.retry_after {
                        record(self.retry_after.get_or_insert_with(new_hist), ra);
                    }
                }
                if let Some(g) = o.meta.group {
                    if let Some(group) = self.groups.get_mut(usize::from(g)) {
                        group.record(o.done.saturating_duration_since(o.intended));
                        self.interval.count_group(&group.value);
                    }
                }
                self.record_latency(o);
            }
            Err(class) => {
                self.total.errors[class.index()] += 1;
                if let Some(c) = o.cause {
                    self.add_cause(class, &c.describe(), 1);
                }
                if o.sent.is_none() {
                    self.never_sent += 1;
                }
                self.interval.counts.errors[class.index()] += 1;
                // A timeout is a latency the user experienced, at least this long: keep it
                // in the distribution so timeouts never hide the tail.
                if class == ErrorClass::Timeout {
                    self.record_latency(o);
                }
            }
        }
        if let (Some(sent), Some(start)) = (o.sent, self.start) {
            self.arrivals
                .record(sent.saturating_duration_since(start).as_nanos() as u64);
        }
        if let (Some(sent), true) = (o.sent, o.conn_was_free) {
            let lag = sent.saturating_duration_since(o.intended);
            record(&mut self.send_lag, lag);
            record(&mut self.interval.send_lag, lag);
        }
        self.total.bytes += o.bytes;
        self.interval.counts.bytes += o.bytes;
        let tag = usize::from(o.meta.tag);
        let at = self
            .start
            .filter(|_| tag < tags::TAG_BATCHES)
            .map(|s| o.done.saturating_duration_since(s).as_nanos() as u64);
        if let Some(t) = self.tags.get_mut(tag) {
            t.record(o, at);
        }
    }

    /// The correction, in one place: corrected from the intended time, uncorrected from
    /// the actual send.
    fn record_latency(&mut self, o: &Outcome) {
        let corrected = o.done.saturating_duration_since(o.intended);
        record(&mut self.corrected, corrected);
        record(&mut self.interval.corrected, corrected);
        let at = self
            .start
            .map(|s| o.done.saturating_duration_since(s).as_nanos() as u64);
        if let (Some(at), Some(start)) = (at, self.start) {
            self.batches[0].record(at, histogram::micros(corrected));
            let intended = o.intended.saturating_duration_since(start).as_nanos() as u64;
            self.dependence
                .record(intended, histogram::micros(corrected));
        }
        if let Some(sent) = o.sent {
            let uncorrected = o.done.saturating_duration_since(sent);
            record(&mut self.uncorrected, uncorrected);
            record(&mut self.interval.uncorrected, uncorrected);
            if let Some(at) = at {
                self.batches[1].record(at, histogram::micros(uncorrected));
            }
        }
    }

    /// Takes the current interval, starting a fresh one numbered `next_index`.
    pub fn take_interval(&mut self, next_index: u32) -> Interval {
        std::mem::replace(&mut self.interval, Interval::new(next_index))
    }

    /// Adds another thread's measurements into this one (intervals are merged separately).
    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in [
            (&mut self.corrected, &other.corrected),
            (&mut self.uncorrected, &other.uncorrected),
            (&mut self.send_lag, &other.send_lag),
            (&mut self.release_lag, &other.release_lag),
            (&mut self.read_lag, &other.read_lag),
            (&mut self.connect_tcp, &other.connect_tcp),
            (&mut self.connect_tls, &other.connect_tls),
        ] {
            mine.add(theirs).expect("same HDR settings");
        }
        self.total.add(&other.total);
        for (a, b) in self.status.iter_mut().zip(&other.status) {
            *a += b;
        }
        self.queued += other.queued;
        self.reconnect_waits += other.reconnect_waits;
        self.slo_met += other.slo_met;
        self.extra_requests += other.extra_requests;
        for (m, n) in &other.script_messages {
            self.script_messages_n(m.clone(), *n);
        }
        self.script_messages_more += other.script_messages_more;
        self.never_sent += other.never_sent;
        if let Some(o) = &other.stream {
            self.stream
                .get_or_insert_with(|| Box::new(StreamRecorder::new()))
                .merge(o);
        }
        self.connects += other.connects;
        self.reconnects += other.reconnects;
        for t in &other.tags {
            let i = self.tag_id(&t.name);
            self.tags[usize::from(i)].merge(t);
        }
        for g in &other.groups {
            let i = self.group_id(&g.value);
            self.groups[usize::from(i)].merge(g);
        }
        for (mine, theirs) in self.batches.iter_mut().zip(&other.batches) {
            mine.merge(theirs);
        }
        self.dependence.merge(&other.dependence);
        self.arrivals.merge(&other.arrivals);
        if let Some(i) = &other.input {
            self.input
                .get_or_insert_with(|| Box::new(InputTokens::new()))
                .merge(i);
        }
        for (a, b) in self.retried.iter_mut().zip(other.retried) {
            *a += b;
        }
        for class in ErrorClass::ALL {
            for (c, n) in &other.causes[class.index()] {
                self.add_cause(class, c, *n);
            }
        }
        if let Some((last, lowest)) = other.stream_limit {
            let (l, w) = self.stream_limit.unwrap_or((last, lowest));
            self.stream_limit = Some((l.max(last), w.min(lowest)));
        }
        if let Some(r) = &other.retry_after {
            self.retry_after
                .get_or_insert_with(new_hist)
                .add(r)
                .expect("same HDR settings");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn outcome(t0: Instant, intended_ms: u64, sent_ms: u64, done_ms: u64, free: bool) -> Outcome {
        let at = |ms| t0 + Duration::from_millis(ms);
        Outcome {
            intended: at(intended_ms),
            sent: Some(at(sent_ms)),
            conn_was_free: free,
            done: at(done_ms),
            result: Ok(200),
            bytes: 100,
            first_byte: None,
            stream: None,
            meta: Default::default(),
            cause: None,
        }
    }

    #[test]
    fn corrected_uncorrected_and_lag() {
        let t0 = Instant::now();
        let mut r = Recorder::new();
        // Due at 0, queued behind a busy connection until 40 ms, answered at 50 ms:
        // the user waited 50 ms, the server took 10 ms, no send lag (it was queueing).
        r.record(&outcome(t0, 0, 40, 50, false));
        // (HDR reports the top of the 0.1 % bucket a value fell in, hence `equivalent`.)
        assert!(r.corrected.equivalent(r.corrected.max(), 50_000));
        assert!(r.uncorrected.equivalent(r.uncorrected.max(), 10_000));
        assert_eq!(r.send_lag.len(), 0);
        // Due at 100, free connection, sent 2 ms late, answered at 103: lag 2 ms.
        r.record(&outcome(t0, 100, 102, 103, true));
        assert_eq!(r.send_lag.max(), 2_000);
        assert_eq!(r.total.completed, 2);
        assert_eq!(r.status[200], 2);
    }

    #[test]
    fn timeouts_stay_in_the_distribution() {
        let t0 = Instant::now();
        let mut r = Recorder::new();
        let mut o = outcome(t0, 0, 0, 2000, true);
        o.result = Err(ErrorClass::Timeout);
        r.record(&o);
        o.result = Err(ErrorClass::Read);
        r.record(&o);
        assert_eq!(r.total.errors[ErrorClass::Timeout.index()], 1);
        assert_eq!(r.total.errors[ErrorClass::Read.index()], 1);
        // Only the timeout is a latency; the reset is not.
        assert_eq!(r.corrected.len(), 1);
        assert!(r.corrected.equivalent(r.corrected.max(), 2_000_000));
    }
}
