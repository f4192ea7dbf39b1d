//! The JSON summary (`--json FILE`, `--json -`): configuration, accounting, status codes,
//! errors, rates, percentiles and the per-second series, in a stable, versioned schema
//! (`schema: "ratebench-summary/1"`, documented in the README; fields are only ever added).
//!
//! Header values that look secret (Authorization, cookies, API keys, tokens) are replaced by
//! `<redacted>` before they reach any file.
//!
//! Used by `app` (writing) and `report::hdr` (the same pieces travel inside interval logs).

use super::threshold::Verdict;
use super::Summary;
use crate::outcome::{ErrorClass, Retry};
use crate::record::batches::{interval, Batches};
use crate::record::histogram::percentile;
use crate::record::histogram::Hist;
use crate::record::{Counts, IntervalStats};
use crate::run::{RunMeta, RunResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The schema identifier; bumped only for incompatible changes.
pub const SCHEMA: &str = "ratebench-summary/1";

/// The whole summary document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    /// Always `SCHEMA`.
    pub schema: String,
    /// `ratebench <version>`.
    pub tool: String,
    /// What was run.
    pub config: ConfigDoc,
    /// Wall-clock start of the load, seconds since the Unix epoch.
    pub started_at_unix_s: f64,
    /// Seconds requests were released for (the duration, or less after Ctrl-C).
    pub load_duration_s: f64,
    /// Seconds from the start to the end of the grace period.
    pub elapsed_s: f64,
    /// Seconds the completions took: first to last completion, at least the load duration
    /// (`rates.completed_per_s` divides by it).
    #[serde(default)]
    pub completion_span_s: f64,
    /// Whether Ctrl-C ended the run early.
    pub interrupted: bool,
    /// scheduled = completed + errors + unfinished.
    pub accounting: AccountingDoc,
    /// Completed responses per HTTP status code.
    pub status_codes: BTreeMap<String, u64>,
    /// Failed requests per class.
    pub errors: ErrorsDoc,
    /// Connection counts.
    pub connections: ConnectionsDoc,
    /// Response bytes read.
    pub bytes: u64,
    /// Rates over the load duration.
    pub rates: RatesDoc,
    /// Latency distributions, in milliseconds.
    pub latency_ms: LatencyDoc,
    /// How long opening connections took: TCP connect and TLS handshake, ms (null in logs of
    /// versions before it).
    #[serde(default)]
    pub connect_ms: Option<ConnectDoc>,
    /// Per response, the kernel's receive stamp to when ratebench processed it, ms: the
    /// generator's own delay on the receive side (count 0 without kernel stamps; null in
    /// logs of versions before it).
    #[serde(default)]
    pub read_lag_ms: Option<Percentiles>,
    /// Streamed (`text/event-stream`) responses: tokens, TTFT, ITL, goodput.
    pub streaming: StreamingDoc,
    /// Prompts as sent (`--prompts`, `--input-tokens`), by the run's tokenizer (absent in
    /// other runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<InputTokensDoc>,
    /// An LLM run's numbers under the names `vllm bench serve` writes in its result JSON,
    /// for the whole run and per model (absent when no answer was a stream and no prompt
    /// was sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vllm: Option<VllmDoc>,
    /// Per worker thread, the share of the load window it was busy (0..1).
    pub threads_busy: Vec<f64>,
    /// How requests were sent on time (absent when rebuilt from logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<PacingDoc>,
    /// The report's warnings.
    pub warnings: Vec<String>,
    /// How dependent consecutive latencies were (absent when too few were sampled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependence: Option<DependenceDoc>,
    /// The arrival process on the wire against the one asked for (constant-rate plans,
    /// constant or Poisson; absent with too few sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrivals: Option<ArrivalsDoc>,
    /// `--until`: the precision asked for and reached (absent without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionDoc>,
    /// The run's steady stretches, from change points of the per-second p99 and error
    /// share (one when the run was one regime).
    #[serde(default)]
    pub regimes: Vec<RegimeDoc>,
    /// Stretches of seconds that left the run's baseline (errors over 1 % of a second, or
    /// a second's p99 over 5× the median second's).
    #[serde(default)]
    pub incidents: Vec<IncidentDoc>,
    /// Threshold verdicts (empty without --threshold).
    pub thresholds: Vec<VerdictDoc>,
    /// One row per second of the run.
    pub series: Vec<SecondDoc>,
    /// The warm-up before the measured window (`--warmup`), or null; none of it is in any
    /// other field.
    #[serde(default)]
    pub warmup: Option<WarmupDoc>,
    /// 429 Too Many Requests responses (also in `status_codes`).
    #[serde(default)]
    pub rate_limited: RateLimitedDoc,
    /// Results by tag (a targets file's tags, `--model`s, a script's second return value;
    /// "METHOD path" otherwise).
    #[serde(default)]
    pub tags: BTreeMap<String, TagDoc>,
    /// `--group-by-header`: the header's name (lower case) → each value's results.
    #[serde(default)]
    pub groups: BTreeMap<String, BTreeMap<String, GroupDoc>>,
    /// `--price`: estimated cost by model and in total, or null.
    #[serde(default)]
    pub cost: Option<CostDoc>,
}

/// 429 responses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RateLimitedDoc {
    /// How many.
    pub count: u64,
    /// As a percentage of scheduled requests.
    pub share: f64,
    /// Their `Retry-After`, ms, when any sent one.
    pub retry_after_ms: Option<Percentiles>,
}

/// One tag's results.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TagDoc {
    /// Scheduled requests of this tag.
    pub requests: u64,
    /// Completed (any status).
    pub completed: u64,
    /// Failed, by class.
    pub errors: ErrorsDoc,
    /// Still queued or in flight at the end.
    pub unfinished: u64,
    /// Completed responses per status code.
    pub status_codes: BTreeMap<String, u64>,
    /// 429 responses.
    pub rate_limited: u64,
    /// Their `Retry-After`, ms, when any sent one.
    pub retry_after_ms: Option<Percentiles>,
    /// The lowest `x-ratelimit-remaining-requests` / `-tokens` seen (null: never sent).
    pub ratelimit_remaining: RemainingDoc,
    /// Corrected latency, ms.
    pub latency_ms: Percentiles,
    /// Input (`usage.prompt_tokens`) and output tokens.
    pub tokens: TokensDoc,
    /// Its streams, or null when none was a stream.
    pub streaming: Option<TagStreamingDoc>,
}

/// The lowest rate-limit headroom a server reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemainingDoc {
    /// `x-ratelimit-remaining-requests`.
    pub requests: Option<u64>,
    /// `x-ratelimit-remaining-tokens`.
    pub tokens: Option<u64>,
}

/// `vllm bench serve`'s result keys (`duration`, `completed`, `failed`,
/// `total_input_tokens`, `total_output_tokens`, `request_throughput`, `output_throughput`,
/// `total_token_throughput`, and `mean_`/`median_`/`std_`/`pNN_` of `ttft`, `tpot`, `itl`,
/// `e2el` in ms), for the run and per model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VllmDoc {
    /// The whole run.
    pub all: BTreeMap<String, serde_json::Value>,
    /// Per model (tag).
    pub models: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

/// The percentiles written besides mean, median and std (vLLM's `--metric-percentiles`).
pub const VLLM_PERCENTILES: [f64; 4] = [90.0, 95.0, 99.0, 99.9];

/// One set of vLLM-named numbers: requests scheduled and answered 2xx, their tokens in and out, the
/// seconds throughput divides by, and the TTFT, TPOT, ITL and end-to-end histograms (µs).
fn vllm_keys(
    (scheduled, ok): (u64, u64),
    (input, output): (u64, u64),
    secs: f64,
    hists: [Option<&Hist>; 4],
) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    let mut put = |k: String, v: serde_json::Value| {
        m.insert(k, v);
    };
    put("duration".into(), secs.into());
    put("completed".into(), ok.into());
    put("failed".into(), scheduled.saturating_sub(ok).into());
    put("total_input_tokens".into(), input.into());
    put("total_output_tokens".into(), output.into());
    put("request_throughput".into(), (ok as f64 / secs).into());
    put("output_throughput".into(), (output as f64 / secs).into());
    put(
        "total_token_throughput".into(),
        ((input + output) as f64 / secs).into(),
    );
    for (name, h) in ["ttft", "tpot", "itl", "e2el"].iter().zip(hists) {
        let Some(h) = h.filter(|h| !h.is_empty()) else {
            continue;
        };
        let ms = |us: f64| us / 1000.0;
        put(format!("mean_{name}_ms"), ms(h.mean()).into());
        put(
            format!("median_{name}_ms"),
            ms(percentile(h, 50.0) as f64).into(),
        );
        put(format!("std_{name}_ms"), ms(h.stdev()).into());
        for p in VLLM_PERCENTILES {
            let word = if p.fract() == 0.0 {
                format!("{p:.0}")
            } else {
                format!("{p}")
            };
            put(
                format!("p{word}_{name}_ms"),
                ms(percentile(h, p) as f64).into(),
            );
        }
    }
    m
}

/// The vLLM-named document of an LLM run (None for other runs). Input tokens are those
/// sent by the tokenizer where known (as vLLM counts them), else the server's usage.
fn vllm_doc(r: &RunResult, s: &Summary) -> Option<VllmDoc> {
    let rec = &r.recorder;
    if rec.stream.is_none() && rec.input.is_none() {
        return None;
    }
    let secs = s.completion_secs;
    let input_of = |sent: u64, usage: u64| if sent > 0 { sent } else { usage };
    let st = rec.stream.as_deref();
    let all_input = rec
        .tags
        .iter()
        .map(|t| input_of(t.input_sent, t.prompt_tokens))
        .sum();
    let all_output = rec.tags.iter().map(|t| t.completion_tokens).sum();
    let ok: u64 = rec.status.get(200..300).map_or(0, |c| c.iter().sum());
    let all = vllm_keys(
        (rec.total.scheduled, ok),
        (all_input, all_output),
        secs,
        [
            st.map(|x| &x.ttft),
            st.map(|x| &x.tpot),
            st.map(|x| &x.itl),
            Some(&rec.corrected),
        ],
    );
    let models = rec
        .tags
        .iter()
        .filter(|t| t.counts.scheduled > 0)
        .map(|t| {
            let st = t.stream.as_deref();
            let keys = vllm_keys(
                (t.counts.scheduled, t.counts.status_classes[1]),
                (input_of(t.input_sent, t.prompt_tokens), t.completion_tokens),
                secs,
                [
                    st.map(|x| &x.ttft),
                    st.map(|x| &x.tpot),
                    st.map(|x| &x.itl),
                    Some(&t.corrected),
                ],
            );
            (t.name.clone(), keys)
        })
        .collect();
    Some(VllmDoc { all, models })
}

/// The prompts' tokens as sent, beside what the server counted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputTokensDoc {
    /// The tokenizer that sized or counted them (null: `--tokenizer none`).
    pub tokenizer: Option<String>,
    /// Input tokens sent, in all.
    pub sent: u64,
    /// Per second of the completions' span (as output tokens/s).
    pub per_s: f64,
    /// Per sent request (counts, not ms).
    pub per_request: Percentiles,
    /// Answers that said `usage.prompt_tokens`.
    pub with_usage: u64,
    /// Of those, answers whose count differed from the one sent (a chat template adds a
    /// few tokens on a real server).
    pub usage_mismatch: u64,
}

/// Token counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokensDoc {
    /// Input tokens (`usage.prompt_tokens`, where the server sent it).
    pub prompt: u64,
    /// Input tokens as sent, by the run's tokenizer (`--prompts`, `--input-tokens`).
    #[serde(default)]
    pub input_sent: u64,
    /// Output tokens (`usage.completion_tokens`, else a stream's content events).
    pub completion: u64,
}

/// One tag's streams.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TagStreamingDoc {
    /// Streams seen.
    pub streams: u64,
    /// Time to first token from the intended send time, ms.
    pub ttft_ms: Percentiles,
    /// Gaps between consecutive tokens, ms.
    pub itl_ms: Percentiles,
    /// Time per output token after the first, ms.
    pub tpot_ms: Percentiles,
    /// Output tokens per stream.
    pub tokens_per_request: Percentiles,
}

/// One `--group-by-header` value's results.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupDoc {
    /// Completed responses that carried it.
    pub requests: u64,
    /// Their corrected latency, ms.
    pub latency_ms: Percentiles,
}

/// Estimated cost from `--price` and the tokens counted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CostDoc {
    /// Per priced model (tag).
    pub models: BTreeMap<String, ModelCostDoc>,
    /// The sum, USD.
    pub total_usd: f64,
}

/// One model's cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelCostDoc {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// USD per million input tokens.
    pub input_per_m_usd: f64,
    /// USD per million output tokens.
    pub output_per_m_usd: f64,
    /// Estimated cost, USD.
    pub usd: f64,
}

/// The warm-up's own accounting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WarmupDoc {
    /// Its length, seconds.
    pub duration_s: f64,
    /// Its rate, requests/s.
    pub rate_per_s: f64,
    /// Requests due in it.
    pub scheduled: u64,
    /// Completed (any status).
    pub completed: u64,
    /// Failed.
    pub errors: u64,
    /// Still in flight when it ended.
    pub unfinished: u64,
}

/// The configuration, with secret-looking header values redacted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConfigDoc {
    /// Target URL.
    pub url: String,
    /// Request method.
    pub method: String,
    /// Target rate, requests/s (summed over merged logs).
    pub rate_per_s: f64,
    /// -c
    pub connections: usize,
    /// -t
    pub threads: usize,
    /// -d, seconds.
    pub duration_s: f64,
    /// --timeout, seconds.
    pub timeout_s: f64,
    /// --grace, seconds.
    pub grace_s: f64,
    /// Extra request headers as [name, value].
    pub headers: Vec<[String; 2]>,
    /// Request body size in bytes.
    pub body_bytes: usize,
    /// How arrivals were spaced: `constant`, `poisson` or `gamma:K`.
    #[serde(default = "constant")]
    pub arrival: String,
    /// The seed of random arrivals (repeat a run with `--seed`).
    #[serde(default)]
    pub seed: u64,
    /// The ramp as `D:R,…` (seconds and req/s), empty for a constant rate.
    #[serde(default)]
    pub stages: String,
    /// Which shard of the plan this process ran (`--shard I/N`; 0 of 1 without).
    #[serde(default)]
    pub shard: u64,
    /// How many shards share the plan.
    #[serde(default = "one")]
    pub shards: u64,
    /// The shards' common start (`--start-at`), seconds since the Unix epoch, or null.
    #[serde(default)]
    pub start_at_unix_s: Option<f64>,
    /// The plan's identity, shared by all its shards (what `ratebench report` checks).
    #[serde(default)]
    pub plan_id: String,
    /// How late this process really started after `--start-at`, seconds.
    #[serde(default)]
    pub start_late_s: f64,
    /// `--precision`, seconds, or null for exact pacing.
    #[serde(default)]
    pub precision_s: Option<f64>,
}

fn one() -> u64 {
    1
}

fn constant() -> String {
    "constant".into()
}

/// The rank autocorrelation of corrected latency in send order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DependenceDoc {
    /// Spearman's ρ one request apart.
    pub lag1_rho: f64,
    /// The first lag (requests) at which ρ fell below 0.1 (null: not within 128).
    pub fades_after: Option<usize>,
    /// Requests in the bounded sample it was computed on.
    pub sample: usize,
}

/// The sent gaps, judged (`report::ArrivalCheck`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArrivalsDoc {
    /// `constant` or `poisson`: the process asked for.
    pub process: String,
    /// Whether the sends matched it.
    pub as_asked: bool,
    /// Gaps judged (a bounded sample, pooled over threads).
    pub gaps: usize,
    /// Their mean, ms.
    pub mean_gap_ms: f64,
    /// Poisson: the Kolmogorov–Smirnov distance to the exponential of that mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_d: Option<f64>,
    /// Poisson: Stephens' modified statistic (above 1.308: not exponential at 1 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<f64>,
    /// Constant: the share of gaps within ±50 % of the mean gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub even_share: Option<f64>,
    /// `--precision` coarser than half the mean gap, ms: requests were asked to leave in
    /// batches, so the gaps are not judged (`as_asked` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batched_ms: Option<f64>,
}

/// How requests were sent on time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PacingDoc {
    /// `io_uring linked timeouts`, `timer and spin`, `timer` or `precision grid`.
    pub path: String,
    /// Why the io_uring path did not run (null when it did).
    pub io_uring_not_used: Option<String>,
    /// The io_uring path: requests sent through it.
    pub sends: u64,
    /// Requests (either path) whose send time is the kernel's stamp as they left: their
    /// send lag is the stamp less the due time.
    pub kernel_stamped: u64,
}

/// `--until`'s outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrecisionDoc {
    /// The final 95 % intervals meet every goal.
    pub reached: bool,
    /// The load stopped before --max-duration: the running estimate (one-second batches,
    /// from 10 s on) met every goal.
    pub stopped: bool,
    /// How long the load ran, seconds.
    pub after_s: f64,
    /// Each goal.
    pub goals: Vec<PrecisionGoalDoc>,
}

/// One `--until` goal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrecisionGoalDoc {
    /// `p99`.
    pub metric: String,
    /// The relative half-width asked for, percent.
    pub bound_pct: f64,
    /// The relative half-width of the final 95 % interval, percent (null: none).
    pub achieved_pct: Option<f64>,
}

/// One regime of the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegimeDoc {
    /// First second (inclusive).
    pub start_s: u32,
    /// Last second (exclusive).
    pub end_s: u32,
    /// Completed requests per second (median second).
    pub rate: f64,
    /// Failed share of its requests.
    pub error_share: f64,
    /// Median of its seconds' corrected p50, ms.
    pub p50_ms: f64,
    /// Median of its seconds' corrected p99, ms.
    pub p99_ms: f64,
}

/// One incident of the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentDoc {
    /// First second (inclusive).
    pub start_s: u32,
    /// Last second (exclusive).
    pub end_s: u32,
    /// Its length, seconds.
    pub duration_s: u32,
    /// Requests that ended in it.
    pub requests: u64,
    /// Its failures by class.
    pub errors: ErrorsDoc,
    /// The worst second's corrected p99, ms.
    pub worst_p99_ms: f64,
}

/// The accounting line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccountingDoc {
    /// Requests whose due time came.
    pub scheduled: u64,
    /// Got a complete response (any status).
    pub completed: u64,
    /// Failed (sum of `errors`).
    pub errors: u64,
    /// Still queued or in flight when the grace period ended.
    pub unfinished: u64,
    /// Written to a connection (at any time).
    pub sent: u64,
    /// Written before the load duration ended.
    pub sent_in_window: u64,
    /// Completed before the load duration ended (the rest of `completed` drained after it).
    #[serde(default)]
    pub completed_in_window: u64,
    /// Found every connection busy and waited.
    pub queued: u64,
    /// Found a connection free, but waited for it to be re-opened.
    #[serde(default)]
    pub reconnect_waits: u64,
    /// Requests sent again because the server provably never processed them.
    #[serde(default)]
    pub retried: RetriedDoc,
}

/// Requests sent again, by cause (each at most once per cause; `total` is their sum).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct RetriedDoc {
    /// All retries.
    pub total: u64,
    /// HTTP/2 streams above the last stream id of the server's GOAWAY.
    pub goaway: u64,
    /// HTTP/2 streams the server reset with REFUSED_STREAM.
    pub refused_stream: u64,
    /// HTTP/1.1 requests on a reused connection the server closed before answering.
    pub closed_on_reuse: u64,
}

impl RetriedDoc {
    /// From a counter array indexed by `Retry::index`.
    pub fn from_counts(r: &[u64; 3]) -> RetriedDoc {
        RetriedDoc {
            total: r.iter().sum(),
            goaway: r[Retry::GoAway.index()],
            refused_stream: r[Retry::RefusedStream.index()],
            closed_on_reuse: r[Retry::ClosedOnReuse.index()],
        }
    }

    /// Back to a counter array.
    pub fn counts(&self) -> [u64; 3] {
        let mut r = [0; 3];
        r[Retry::GoAway.index()] = self.goaway;
        r[Retry::RefusedStream.index()] = self.refused_stream;
        r[Retry::ClosedOnReuse.index()] = self.closed_on_reuse;
        r
    }
}

/// Failed requests per class.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ErrorsDoc {
    /// TCP/TLS connect failed.
    pub connect: u64,
    /// Reset or closed before a complete response.
    pub read: u64,
    /// Sending failed.
    pub write: u64,
    /// No complete response within --timeout.
    pub timeout: u64,
    /// Not HTTP/1.1.
    pub protocol: u64,
    /// The Lua script's request() or response() failed.
    #[serde(default)]
    pub script: u64,
    /// Why, per class with failures: each cause (`RST_STREAM INTERNAL_ERROR`, `connection
    /// reset`, ...) with its count, at most 16 per class (the rest as `other`). Whole-run
    /// only (absent from tags and the per-second series).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub causes: BTreeMap<String, BTreeMap<String, u64>>,
}

impl ErrorsDoc {
    /// From a counter array indexed by `ErrorClass::index`.
    pub fn from_counts(e: &[u64; 6]) -> ErrorsDoc {
        let g = |c: ErrorClass| e[c.index()];
        ErrorsDoc {
            connect: g(ErrorClass::Connect),
            read: g(ErrorClass::Read),
            write: g(ErrorClass::Write),
            timeout: g(ErrorClass::Timeout),
            protocol: g(ErrorClass::Protocol),
            script: g(ErrorClass::Script),
            causes: BTreeMap::new(),
        }
    }
}

/// Connection counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionsDoc {
    /// -c
    pub asked: usize,
    /// Open when the load ended.
    pub open_at_end: usize,
    /// Opened in total.
    pub opened: u64,
    /// Of those, re-opens.
    pub reconnects: u64,
    /// What was negotiated: protocol, and TLS version and cipher for https.
    #[serde(default)]
    pub negotiated: String,
    /// Requests one connection may carry at once: `--streams` over HTTP/2, 1 over HTTP/1.1.
    #[serde(default = "one")]
    pub streams_per_connection: u64,
    /// HTTP/2: the lowest SETTINGS_MAX_CONCURRENT_STREAMS the server announced (null over
    /// HTTP/1.1 or when it set none).
    #[serde(default)]
    pub server_max_streams: Option<u64>,
    /// HTTP/2: the SETTINGS_MAX_CONCURRENT_STREAMS the server announced last (differs from
    /// `server_max_streams` when the server changed it during the run).
    #[serde(default)]
    pub server_max_streams_last: Option<u64>,
}

/// Rates over the load duration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RatesDoc {
    /// -R
    pub target_per_s: f64,
    /// Requests written per second.
    pub achieved_per_s: f64,
    /// Requests completed per second of `completion_span_s`.
    pub completed_per_s: f64,
    /// Response bytes per second of `completion_span_s`.
    pub bytes_per_s: f64,
}

/// Connection phases.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectDoc {
    /// TCP connect, per connection opened.
    pub tcp: Percentiles,
    /// TLS handshake, per https connection opened.
    pub tls: Percentiles,
}

/// The four distributions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencyDoc {
    /// From the intended send time.
    pub corrected: Percentiles,
    /// From the actual send time.
    pub uncorrected: Percentiles,
    /// Actual minus intended send time, on a free connection.
    pub send_lag: Percentiles,
    /// Pacer wake-up minus due time.
    pub release_lag: Percentiles,
}

/// One distribution's summary, milliseconds (count is a count).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Largest.
    pub max: f64,
    /// 50th percentile.
    pub p50: f64,
    /// 75th.
    pub p75: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p99_9: f64,
    /// 99.99th.
    pub p99_99: f64,
    /// 99.999th.
    pub p99_999: f64,
    /// The 95 % confidence interval of each percentile (`p50` … `p99_999`), `[low, high]`,
    /// or null where too few values were recorded for one (corrected and uncorrected
    /// latency only; see `record::batches`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<BTreeMap<String, Option<[f64; 2]>>>,
}

/// The percentiles the reports give intervals for: (JSON key, quantile).
pub const CI_PERCENTILES: [(&str, f64); 7] = [
    ("p50", 0.5),
    ("p75", 0.75),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99_9", 0.999),
    ("p99_99", 0.9999),
    ("p99_999", 0.99999),
];

impl Percentiles {
    /// Summarises a µs histogram in ms.
    pub fn of(h: &Hist) -> Percentiles {
        Percentiles::scaled(h, 1000.0)
    }

    /// `of`, with each percentile's 95 % interval from the run's time batches.
    pub fn with_ci(h: &Hist, batches: &Batches) -> Percentiles {
        let ci = CI_PERCENTILES
            .iter()
            .map(|(key, q)| {
                let bounds = interval(h, batches, *q)
                    .ok()
                    .map(|(lo, hi)| [lo as f64 / 1000.0, hi as f64 / 1000.0]);
                (key.to_string(), bounds)
            })
            .collect();
        Percentiles {
            ci95: Some(ci),
            ..Percentiles::of(h)
        }
    }

    /// Summarises a histogram of counts, unscaled.
    pub fn of_counts(h: &Hist) -> Percentiles {
        Percentiles::scaled(h, 1.0)
    }

    fn scaled(h: &Hist, div: f64) -> Percentiles {
        let ms = |us: u64| us as f64 / div;
        let q = |p: f64| ms(percentile(h, p));
        Percentiles {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean() / div,
            stdev: h.stdev() / div,
            max: ms(h.max()),
            p50: q(50.0),
            p75: q(75.0),
            p90: q(90.0),
            p99: q(99.0),
            p99_9: q(99.9),
            p99_99: q(99.99),
            p99_999: q(99.999),
            ci95: None,
        }
    }
}

/// Streamed responses' measurements (all zero when no response was a stream).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamingDoc {
    /// Streamed responses seen.
    pub streams: u64,
    /// Output tokens in all (`usage.completion_tokens` where sent, else content events).
    pub tokens: u64,
    /// Output tokens per second of the load duration.
    pub tokens_per_s: f64,
    /// Streams that reported `usage.completion_tokens`.
    pub with_usage: u64,
    /// Of those, streams whose usage differed from the count of content events.
    pub usage_mismatch: u64,
    /// Streams without usage whose output tokens the tokenizer counted (the others without
    /// usage: one token per content event, `--tokenizer none`).
    #[serde(default)]
    pub by_tokenizer: u64,
    /// That tokenizer (null: none counted).
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Time to first byte from the intended send time, ms.
    pub ttfb_ms: Percentiles,
    /// Time to first token from the intended send time, ms.
    pub ttft_ms: Percentiles,
    /// Time to first token from the actual send, ms.
    pub ttft_uncorrected_ms: Percentiles,
    /// Gaps between consecutive tokens, ms.
    pub itl_ms: Percentiles,
    /// Time per output token after the first, ms.
    pub tpot_ms: Percentiles,
    /// Output tokens per stream (counts, not ms).
    pub tokens_per_request: Percentiles,
    /// Goodput targets (`--slo`), as typed.
    pub slos: Vec<String>,
    /// Completed requests that met every target.
    pub slo_met: u64,
    /// `slo_met` as a percentage of scheduled requests.
    pub goodput_share: f64,
    /// `slo_met` per second of the load duration.
    pub goodput_per_s: f64,
}

/// A threshold and how it came out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VerdictDoc {
    /// As typed.
    pub expr: String,
    /// Measured value.
    pub actual: f64,
    /// Unit of `actual` (`ms`, `%`, `req/s`, or empty for counts).
    pub unit: String,
    /// Whether it held.
    pub pass: bool,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecondDoc {
    /// Second of the run, from 0.
    pub second: u32,
    /// Requests due in this second (the intended rate).
    pub scheduled: u64,
    /// Requests written in this second (the achieved rate).
    pub sent: u64,
    /// Requests completed in this second.
    pub completed: u64,
    /// Requests failed in this second, by class.
    pub errors: ErrorsDoc,
    /// Response bytes read in this second.
    pub bytes: u64,
    /// Corrected latency of requests that ended in this second, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p99_9_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Uncorrected 99th percentile, ms.
    pub uncorrected_p99_ms: f64,
    /// Output tokens of streams in this second.
    pub tokens: u64,
    /// 99th percentile time to first token of this second's streams, ms.
    pub ttft_p99_ms: f64,
    /// 429 responses completed in this second (admitted = completed − rate_limited).
    #[serde(default)]
    pub rate_limited: u64,
    /// `--group-by-header`: completed responses per value in this second.
    #[serde(default)]
    pub groups: BTreeMap<String, u64>,
}

impl SecondDoc {
    /// From a merged interval row.
    pub fn of(s: &IntervalStats) -> SecondDoc {
        let ms = |us: u64| us as f64 / 1000.0;
        SecondDoc {
            second: s.index,
            scheduled: s.counts.scheduled,
            sent: s.counts.sent,
            completed: s.counts.completed,
            errors: ErrorsDoc::from_counts(&s.counts.errors),
            bytes: s.counts.bytes,
            p50_ms: ms(s.p50_us),
            p90_ms: ms(s.p90_us),
            p99_ms: ms(s.p99_us),
            p99_9_ms: ms(s.p999_us),
            max_ms: ms(s.max_us),
            uncorrected_p99_ms: ms(s.uncorrected_p99_us),
            tokens: s.counts.tokens,
            ttft_p99_ms: ms(s.ttft_p99_us),
            rate_limited: s.counts.rate_limited,
            groups: s.groups.iter().cloned().collect(),
        }
    }

    /// The counters of this row.
    pub fn counts(&self) -> Counts {
        let e = &self.errors;
        Counts {
            scheduled: self.scheduled,
            sent: self.sent,
            completed: self.completed,
            errors: [e.connect, e.read, e.write, e.timeout, e.protocol, e.script],
            bytes: self.bytes,
            tokens: self.tokens,
            status_classes: [0; 5],
            rate_limited: self.rate_limited,
        }
    }
}

/// Whether a header's value should never be written to a file.
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "api-key",
        "apikey",
        "password",
        "x-api-key",
        "session",
    ]
    .iter()
    .any(|s| n.contains(s))
}

impl ConfigDoc {
    /// The configuration as it may be written down (secrets redacted).
    pub fn of(c: &RunMeta) -> ConfigDoc {
        ConfigDoc {
            url: c.url.clone(),
            method: c.method.clone(),
            rate_per_s: c.rate.as_f64(),
            connections: c.connections,
            threads: c.threads,
            duration_s: c.duration.as_secs_f64(),
            timeout_s: c.timeout.as_secs_f64(),
            grace_s: c.grace.as_secs_f64(),
            headers: c
                .headers
                .iter()
                .map(|(k, v)| {
                    let value = if is_secret(k) {
                        "<redacted>".to_string()
                    } else {
                        v.clone()
                    };
                    [k.clone(), value]
                })
                .collect(),
            body_bytes: c.body_bytes,
            arrival: c.arrival.clone(),
            seed: c.seed,
            stages: c.stages.clone(),
            shard: c.shard,
            shards: c.shards,
            start_at_unix_s: c
                .start_at
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64()),
            plan_id: c.plan_id.clone(),
            start_late_s: 0.0,
            precision_s: c.precision.map(|p| p.as_secs_f64()),
        }
    }
}

/// Builds the document for a run.
pub fn document(r: &RunResult, s: &Summary, verdicts: &[Verdict]) -> Document {
    let rec = &r.recorder;
    let t = &rec.total;
    let mut config = ConfigDoc::of(&r.meta);
    config.start_late_s = r.start_late.as_secs_f64();
    Document {
        schema: SCHEMA.into(),
        tool: format!("ratebench {}", env!("CARGO_PKG_VERSION")),
        config,
        started_at_unix_s: r
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        load_duration_s: r.load_duration.as_secs_f64(),
        elapsed_s: r.elapsed.as_secs_f64(),
        completion_span_s: s.completion_secs,
        interrupted: r.interrupted,
        accounting: AccountingDoc {
            scheduled: t.scheduled,
            completed: t.completed,
            errors: t.error_total(),
            unfinished: r.unfinished,
            sent: t.sent,
            sent_in_window: r.sent_in_window,
            completed_in_window: r.completed_in_window,
            queued: rec.queued,
            reconnect_waits: rec.reconnect_waits,
            retried: RetriedDoc::from_counts(&rec.retried),
        },
        status_codes: rec
            .status
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code.to_string(), *n))
            .collect(),
        errors: ErrorsDoc {
            causes: ErrorClass::ALL
                .iter()
                .filter(|e| !rec.causes[e.index()].is_empty())
                .map(|e| {
                    (
                        e.name().to_string(),
                        rec.causes[e.index()].iter().cloned().collect(),
                    )
                })
                .collect(),
            ..ErrorsDoc::from_counts(&t.errors)
        },
        connections: ConnectionsDoc {
            asked: r.meta.connections,
            open_at_end: r.open,
            opened: rec.connects,
            reconnects: rec.reconnects,
            negotiated: r.negotiated.clone(),
            streams_per_connection: r.streams_per_connection,
            server_max_streams: r.server_max_streams,
            server_max_streams_last: rec.stream_limit.map(|l| l.0),
        },
        bytes: t.bytes,
        rates: RatesDoc {
            target_per_s: s.target_rate,
            achieved_per_s: s.achieved_rate,
            completed_per_s: s.completed_rate,
            bytes_per_s: s.bytes_rate,
        },
        connect_ms: Some(ConnectDoc {
            tcp: Percentiles::of(&rec.connect_tcp),
            tls: Percentiles::of(&rec.connect_tls),
        }),
        read_lag_ms: Some(Percentiles::of(&rec.read_lag)),
        latency_ms: LatencyDoc {
            corrected: Percentiles::with_ci(&rec.corrected, &rec.batches[0]),
            uncorrected: Percentiles::with_ci(&rec.uncorrected, &rec.batches[1]),
            send_lag: Percentiles::of(&rec.send_lag),
            release_lag: Percentiles::of(&rec.release_lag),
        },
        streaming: streaming_doc(r, s),
        vllm: vllm_doc(r, s),
        input_tokens: r.recorder.input.as_deref().map(|i| InputTokensDoc {
            tokenizer: r.meta.tokenizer.clone(),
            sent: i.sent,
            per_s: i.sent as f64 / s.completion_secs,
            per_request: Percentiles::of_counts(&i.per_request),
            with_usage: i.with_usage,
            usage_mismatch: i.usage_mismatch,
        }),
        threads_busy: r.busy.clone(),
        pacing: r.pacing.as_ref().map(|p| PacingDoc {
            path: p.path.clone(),
            io_uring_not_used: p.io_uring_not_used.clone(),
            sends: p.sends,
            kernel_stamped: p.stamped,
        }),
        warnings: s.warnings.clone(),
        dependence: rec.dependence.measure().map(|m| DependenceDoc {
            lag1_rho: m.lag1,
            fades_after: m.fades_after,
            sample: m.sample,
        }),
        arrivals: s.arrivals.map(|a| {
            let as_asked = a.as_asked();
            match a.fit {
                super::ArrivalFit::Poisson(f) => ArrivalsDoc {
                    process: "poisson".into(),
                    as_asked,
                    gaps: f.gaps,
                    mean_gap_ms: f.mean_ns / 1e6,
                    ks_d: Some(f.d),
                    ks_statistic: Some(f.statistic),
                    even_share: None,
                    batched_ms: a.batched.map(|p| p.as_secs_f64() * 1e3),
                },
                super::ArrivalFit::Constant {
                    gaps,
                    spacing_ns,
                    even,
                } => ArrivalsDoc {
                    process: "constant".into(),
                    as_asked,
                    gaps,
                    mean_gap_ms: spacing_ns / 1e6,
                    ks_d: None,
                    ks_statistic: None,
                    even_share: Some(even),
                    batched_ms: a.batched.map(|p| p.as_secs_f64() * 1e3),
                },
            }
        }),
        precision: r.precision.as_ref().map(|p| PrecisionDoc {
            reached: super::precision_reached(r),
            stopped: p.stopped,
            after_s: p.after_s,
            goals: super::precision_achieved(r)
                .into_iter()
                .map(|(metric, bound, got)| PrecisionGoalDoc {
                    metric,
                    bound_pct: bound * 100.0,
                    achieved_pct: got.map(|g| g * 100.0),
                })
                .collect(),
        }),
        regimes: s
            .regimes
            .iter()
            .map(|g| RegimeDoc {
                start_s: g.start_s,
                end_s: g.end_s,
                rate: g.rate,
                error_share: g.error_share,
                p50_ms: g.p50_ms,
                p99_ms: g.p99_ms,
            })
            .collect(),
        incidents: s
            .incidents
            .iter()
            .map(|i| IncidentDoc {
                start_s: i.start_s,
                end_s: i.end_s,
                duration_s: i.duration_s(),
                requests: i.requests,
                errors: ErrorsDoc::from_counts(&i.errors),
                worst_p99_ms: i.worst_p99_ms,
            })
            .collect(),
        thresholds: verdicts
            .iter()
            .map(|v| VerdictDoc {
                expr: v.expr.clone(),
                actual: v.actual,
                unit: v.unit.to_string(),
                pass: v.pass,
            })
            .collect(),
        series: r.intervals.iter().map(SecondDoc::of).collect(),
        warmup: r.warmup.map(|w| WarmupDoc {
            duration_s: w.duration.as_secs_f64(),
            rate_per_s: w.rate,
            scheduled: w.scheduled,
            completed: w.completed,
            errors: w.errors,
            unfinished: w.unfinished,
        }),
        rate_limited: RateLimitedDoc {
            count: t.rate_limited,
            share: if t.scheduled == 0 {
                0.0
            } else {
                100.0 * t.rate_limited as f64 / t.scheduled as f64
            },
            retry_after_ms: rec.retry_after.as_ref().map(Percentiles::of),
        },
        tags: rec
            .tags
            .iter()
            .map(|tag| (tag.name.clone(), tag_doc(tag)))
            .collect(),
        groups: match &r.meta.group_by {
            Some(h) if !rec.groups.is_empty() => {
                let values = rec
                    .groups
                    .iter()
                    .map(|g| {
                        (
                            g.value.clone(),
                            GroupDoc {
                                requests: g.requests,
                                latency_ms: Percentiles::of(&g.corrected),
                            },
                        )
                    })
                    .collect();
                BTreeMap::from([(h.to_ascii_lowercase(), values)])
            }
            _ => BTreeMap::new(),
        },
        cost: cost_doc(r),
    }
}

/// One tag's document.
pub fn tag_doc(tag: &crate::record::TagStats) -> TagDoc {
    let c = &tag.counts;
    TagDoc {
        requests: c.scheduled,
        completed: c.completed,
        errors: ErrorsDoc::from_counts(&c.errors),
        unfinished: tag.unfinished(),
        status_codes: tag
            .status
            .iter()
            .map(|(code, n)| (code.to_string(), *n))
            .collect(),
        rate_limited: c.rate_limited,
        retry_after_ms: tag.retry_after.as_ref().map(Percentiles::of),
        ratelimit_remaining: RemainingDoc {
            requests: tag.remaining[0],
            tokens: tag.remaining[1],
        },
        latency_ms: Percentiles::with_ci(&tag.corrected, &tag.batches),
        tokens: TokensDoc {
            prompt: tag.prompt_tokens,
            input_sent: tag.input_sent,
            completion: tag.completion_tokens,
        },
        streaming: tag.stream.as_deref().map(|st| TagStreamingDoc {
            streams: st.streams,
            ttft_ms: Percentiles::of(&st.ttft),
            itl_ms: Percentiles::of(&st.itl),
            tpot_ms: Percentiles::of(&st.tpot),
            tokens_per_request: Percentiles::of_counts(&st.tokens_per_request),
        }),
    }
}

/// The estimated cost of a run with `--price`: each priced model's tag's tokens.
pub fn cost_doc(r: &RunResult) -> Option<CostDoc> {
    if r.meta.prices.is_empty() {
        return None;
    }
    let mut models = BTreeMap::new();
    for p in &r.meta.prices {
        let (input, output) = r
            .recorder
            .tags
            .iter()
            .find(|t| t.name == p.model)
            .map_or((0, 0), |t| (t.prompt_tokens, t.completion_tokens));
        let usd = (input as f64 * p.input_per_m + output as f64 * p.output_per_m) / 1e6;
        models.insert(
            p.model.clone(),
            ModelCostDoc {
                input_tokens: input,
                output_tokens: output,
                input_per_m_usd: p.input_per_m,
                output_per_m_usd: p.output_per_m,
                usd,
            },
        );
    }
    let total_usd = models.values().map(|m| m.usd).sum();
    Some(CostDoc { models, total_usd })
}

fn streaming_doc(r: &RunResult, s: &Summary) -> StreamingDoc {
    let rec = &r.recorder;
    let empty = crate::record::histogram::new_hist();
    let st = rec.stream.as_deref();
    let h = |f: fn(&crate::record::StreamRecorder) -> &Hist| st.map_or(&empty, f);
    let no_batches = Batches::default();
    let b = |i: usize| st.map_or(&no_batches, |x| &x.batches[i]);
    StreamingDoc {
        streams: st.map_or(0, |x| x.streams),
        tokens: rec.total.tokens,
        tokens_per_s: s.tokens_rate,
        with_usage: st.map_or(0, |x| x.with_usage),
        by_tokenizer: st.map_or(0, |x| x.by_tokenizer),
        tokenizer: st.and_then(|x| x.tokenizer).map(str::to_string),
        usage_mismatch: st.map_or(0, |x| x.usage_mismatch),
        ttfb_ms: Percentiles::of(h(|x| &x.ttfb)),
        ttft_ms: Percentiles::with_ci(h(|x| &x.ttft), b(0)),
        ttft_uncorrected_ms: Percentiles::of(h(|x| &x.ttft_uncorrected)),
        itl_ms: Percentiles::with_ci(h(|x| &x.itl), b(1)),
        tpot_ms: Percentiles::with_ci(h(|x| &x.tpot), b(2)),
        tokens_per_request: Percentiles::of_counts(h(|x| &x.tokens_per_request)),
        slos: rec.slos.iter().map(|x| x.expr.clone()).collect(),
        slo_met: rec.slo_met,
        goodput_share: s.goodput_share,
        goodput_per_s: s.goodput_rate,
    }
}

/// The document as pretty-printed JSON text.
pub fn render(r: &RunResult, s: &Summary, verdicts: &[Verdict]) -> String {
    let mut text =
        serde_json::to_string_pretty(&document(r, s, verdicts)).expect("plain data serializes");
    text.push('\n');
    text
}
