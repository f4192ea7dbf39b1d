//! Results broken down by tag (what kind of request) and by `--group-by-header` value (who
//! answered it): bounded to `MAX_TAGS` each (the rest go to `(other)`), kept per thread
//! and merged by name, so memory stays flat however many requests.
//!
//! Used by `record::Recorder`.

use super::batches::Batches;
use super::histogram::{new_hist, record, Hist};
use super::{Counts, StreamRecorder};
use crate::mix::MAX_TAGS;
use crate::outcome::{ErrorClass, Outcome};
use std::time::Duration;

/// Where tags and group values beyond `MAX_TAGS` go.
pub const OTHER: &str = "(other)";

/// One tag's results.
#[derive(Debug, Clone)]
pub struct TagStats {
    /// The tag.
    pub name: String,
    /// Its counters: `scheduled` is the requests that carried it.
    pub counts: Counts,
    /// Responses per status code.
    pub status: Vec<(u16, u64)>,
    /// Corrected latency, µs (completed requests and timeouts, as the whole run's).
    pub corrected: Hist,
    /// Its streams' measurements, once it had one.
    pub stream: Option<Box<StreamRecorder>>,
    /// `Retry-After` of its 429s, ms.
    pub retry_after: Option<Hist>,
    /// The lowest `x-ratelimit-remaining-requests` and `-tokens` seen.
    pub remaining: [Option<u64>; 2],
    /// Input tokens, from `usage.prompt_tokens`, where the server sent it.
    pub prompt_tokens: u64,
    /// Input tokens as sent, by the run's tokenizer (`--prompts`, `--input-tokens`).
    pub input_sent: u64,
    /// Output tokens: `usage.completion_tokens`, else the stream's content events.
    pub completion_tokens: u64,
    /// Completed requests that met every `--slo`.
    pub slo_met: u64,
    /// Its corrected latency in time slots (the first `TAG_BATCHES` tags only: flat
    /// memory), for the p99's confidence interval.
    pub batches: Batches,
}

/// How many tags keep their latency in time slots (each up to ~250 KB per thread).
pub const TAG_BATCHES: usize = 16;

impl TagStats {
    /// An empty tag.
    pub fn new(name: &str) -> TagStats {
        TagStats {
            name: name.to_string(),
            counts: Counts::default(),
            status: Vec::new(),
            corrected: new_hist(),
            batches: Batches::default(),
            stream: None,
            retry_after: None,
            remaining: [None, None],
            prompt_tokens: 0,
            input_sent: 0,
            completion_tokens: 0,
            slo_met: 0,
        }
    }

    /// Records `o`; `at`: its completion, ns from the start, when this tag keeps slots.
    pub(super) fn record(&mut self, o: &Outcome, at: Option<u64>) {
        let m = &o.meta;
        match o.result {
            Ok(status) => {
                self.counts.completed += 1;
                self.counts.status_classes[usize::from(status / 100).clamp(1, 5) - 1] += 1;
                add_status(&mut self.status, status, 1);
                if status == 429 {
                    self.counts.rate_limited += 1;
                    if let Some(ra) = m.retry_after {
                        record(self.retry_after.get_or_insert_with(new_hist), ra);
                    }
                }
                self.latency(o, at);
            }
            Err(class) => {
                self.counts.errors[class.index()] += 1;
                if class == ErrorClass::Timeout {
                    self.latency(o, at);
                }
            }
        }
        if o.sent.is_some() {
            self.counts.sent += 1;
            self.input_sent += m.input_tokens.unwrap_or(0);
        }
        self.counts.bytes += o.bytes;
        for (mine, seen) in self.remaining.iter_mut().zip(m.remaining) {
            if let Some(v) = seen {
                *mine = Some(mine.map_or(v, |x| x.min(v)));
            }
        }
        if let Some((p, c)) = m.usage {
            self.prompt_tokens += p;
            self.completion_tokens += c;
        }
        if let Some(st) = &o.stream {
            self.prompt_tokens += st.prompt_tokens.unwrap_or(0);
            let tokens = st.tokens();
            self.completion_tokens += tokens;
            self.counts.tokens += tokens;
            self.stream
                .get_or_insert_with(|| Box::new(StreamRecorder::new()))
                .add(o, st);
        }
    }

    fn latency(&mut self, o: &Outcome, at: Option<u64>) {
        let d = o.done.saturating_duration_since(o.intended);
        record(&mut self.corrected, d);
        if let Some(at) = at {
            self.batches.record(at, super::histogram::micros(d));
        }
    }

    pub(super) fn merge(&mut self, o: &TagStats) {
        self.batches.merge(&o.batches);
        self.counts.add(&o.counts);
        for (code, n) in &o.status {
            add_status(&mut self.status, *code, *n);
        }
        self.corrected.add(&o.corrected).expect("same HDR settings");
        if let Some(s) = &o.stream {
            self.stream
                .get_or_insert_with(|| Box::new(StreamRecorder::new()))
                .merge(s);
        }
        if let Some(r) = &o.retry_after {
            self.retry_after
                .get_or_insert_with(new_hist)
                .add(r)
                .expect("same HDR settings");
        }
        for (mine, theirs) in self.remaining.iter_mut().zip(o.remaining) {
            if let Some(v) = theirs {
                *mine = Some(mine.map_or(v, |x| x.min(v)));
            }
        }
        self.prompt_tokens += o.prompt_tokens;
        self.input_sent += o.input_sent;
        self.completion_tokens += o.completion_tokens;
        self.slo_met += o.slo_met;
    }

    /// Requests that carried this tag and neither completed nor failed: still queued or in
    /// flight when the run ended.
    pub fn unfinished(&self) -> u64 {
        self.counts
            .scheduled
            .saturating_sub(self.counts.completed + self.counts.error_total())
    }
}

fn add_status(list: &mut Vec<(u16, u64)>, code: u16, n: u64) {
    match list.iter_mut().find(|(c, _)| *c == code) {
        Some(e) => e.1 += n,
        None => {
            list.push((code, n));
            list.sort_unstable();
        }
    }
}

/// One `--group-by-header` value's results.
#[derive(Debug, Clone)]
pub struct GroupStats {
    /// The header's value (`(none)` when a response did not send it).
    pub value: String,
    /// Completed responses that carried it.
    pub requests: u64,
    /// Their corrected latency, µs.
    pub corrected: Hist,
}

impl GroupStats {
    /// An empty group.
    pub fn new(value: &str) -> GroupStats {
        GroupStats {
            value: value.to_string(),
            requests: 0,
            corrected: new_hist(),
        }
    }

    pub(super) fn record(&mut self, latency: Duration) {
        self.requests += 1;
        record(&mut self.corrected, latency);
    }

    pub(super) fn merge(&mut self, o: &GroupStats) {
        self.requests += o.requests;
        self.corrected.add(&o.corrected).expect("same HDR settings");
    }
}

/// The index of `name` in a bounded list, adding it (or `(other)` once full).
pub fn intern<T>(
    list: &mut Vec<T>,
    name: &str,
    key: impl Fn(&T) -> &str,
    new: impl Fn(&str) -> T,
) -> u16 {
    if let Some(i) = list.iter().position(|t| key(t) == name) {
        return i as u16;
    }
    if list.len() < MAX_TAGS {
        list.push(new(name));
        return (list.len() - 1) as u16;
    }
    if let Some(i) = list.iter().position(|t| key(t) == OTHER) {
        return i as u16;
    }
    list.push(new(OTHER));
    (list.len() - 1) as u16
}
