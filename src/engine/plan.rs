//! The engine's input: what to send, where, how fast, for how long, and with what limits.
//!
//! `Plan` is built by the CLI layer from validated flags (or by tests directly) and read by
//! the engine alone; where report files go and how the text is printed are not part of it
//! (that is the app's business). A finished run is described by `run::RunMeta`, which the
//! plan produces (`Plan::meta`), so reports never need a plan, and `ratebench report` can
//! describe a merged run it never planned.
//!
//! Used by `engine` (run), `cli` (building it) and `app`.

use super::tls::TlsSettings;
use crate::error::{invalid, ConfigError};
use crate::mix::RequestSpec;
use crate::pacer::{Arrival, Profile, Rate, Schedule, Stage};
use crate::prompts::Prompts;
use crate::run::RunMeta;
use crate::script::ScriptBase;
use crate::stream::{Slo, TokenRule};
use crate::units::trim_decimal;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};
use std::time::{Duration, SystemTime};

/// Where requests go, taken apart from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// `https`?
    pub tls: bool,
    /// Host name or IP, without IPv6 brackets.
    pub host: String,
    /// Port (the scheme's default when the URL names none).
    pub port: u16,
    /// The `Host` header value: the URL's authority without user info.
    pub authority: String,
    /// Path and query, `/` when empty.
    pub path: String,
}

impl Target {
    /// Parses and checks a target URL.
    pub fn parse(url: &str) -> Result<Target, ConfigError> {
        let example = "e.g. http://127.0.0.1:8080/";
        // `localhost:8080` parses as scheme "localhost", `127.0.0.1:8080/` not at all: both
        // miss the scheme, and both get the same hint, with the URL they probably meant.
        if !url.contains("://") {
            // `http//host/`, `https:/host/`: a scheme typed with its punctuation wrong.
            for scheme in ["https", "http"] {
                if let Some(rest) = url.strip_prefix(scheme) {
                    let rest = rest.trim_start_matches([':', '/']);
                    if rest.len() + scheme.len() < url.len() && !rest.is_empty() {
                        let path = if rest.contains('/') { "" } else { "/" };
                        return Err(invalid(
                            "URL",
                            url,
                            format!("malformed scheme: did you mean {scheme}://{rest}{path} ?"),
                        ));
                    }
                }
            }
            let path = if url.contains('/') { "" } else { "/" };
            return Err(invalid(
                "URL",
                url,
                format!("missing scheme (http:// or https://): did you mean http://{url}{path} ?"),
            ));
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| invalid("URL", url, format!("not a valid URL ({e}); {example}")))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(invalid(
                    "URL",
                    url,
                    format!(
                        "unsupported scheme {other:?}: ratebench speaks http and https; {example}"
                    ),
                ))
            }
            None => {
                return Err(invalid(
                    "URL",
                    url,
                    format!("missing scheme (http:// or https://); {example}"),
                ))
            }
        };
        let auth = uri
            .authority()
            .ok_or_else(|| invalid("URL", url, format!("missing host; {example}")))?;
        let host = auth.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("URL", url, format!("missing host; {example}")));
        }
        // (http's parser reads a port past 65535 as no port at all: port 80 would be tested.)
        let port = match auth.port() {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => p.as_u16(),
        };
        if let Some(typed) = auth.as_str().rsplit_once(':').map(|(_, p)| p) {
            let is_port =
                !auth.as_str().ends_with(']') && typed.bytes().all(|b| b.is_ascii_digit());
            if is_port && !typed.is_empty() && typed.parse::<u16>().is_err() {
                return Err(invalid(
                    "URL",
                    url,
                    format!("port {typed} out of range (1–65535); {example}"),
                ));
            }
        }
        if auth.port().is_some() && port == 0 {
            return Err(invalid(
                "URL",
                url,
                format!("port 0 cannot be load-tested; {example}"),
            ));
        }
        let authority = auth
            .as_str()
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_string();
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
            .to_string();
        Ok(Target {
            url: url.to_string(),
            tls,
            host: host.to_string(),
            port,
            authority,
            path,
        })
    }
}

/// A validated load test, as the engine runs it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where requests go.
    pub target: Target,
    /// Total rate across all threads.
    pub rate: Rate,
    /// Connections to keep open.
    pub connections: usize,
    /// Worker threads (≤ connections).
    pub threads: usize,
    /// Measured load duration (with `--until`: the most it may run, `--max-duration`).
    pub duration: Duration,
    /// `--until`: each goal's name (`p99`), quantile (0.99) and the relative half-width its
    /// 95 % interval must reach (0.02); the load then runs at least `min_duration`.
    pub until: Vec<(String, f64, f64)>,
    /// With `--until`: `-d`, the least the load runs.
    pub min_duration: Option<Duration>,
    /// Per-request timeout from the actual send.
    pub timeout: Duration,
    /// Wait for queued and in-flight requests after the load duration.
    pub grace: Duration,
    /// Request method.
    pub method: Method,
    /// Extra request headers, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body (empty for none).
    pub body: Bytes,
    /// Skip TLS verification.
    pub insecure: bool,
    /// TLS trust and client certificate (`insecure` is copied into it).
    pub tls: TlsSettings,
    /// `--resolve HOST:PORT:ADDR`: connect to ADDR for HOST:PORT (the URL, Host header and
    /// SNI keep HOST).
    pub resolve: Vec<(String, u16, std::net::IpAddr)>,
    /// TCP connect plus TLS handshake limit, apart from the request's `timeout`.
    pub connect_timeout: Duration,
    /// `--http2`: h2 over https (ALPN offers only h2), h2c with prior knowledge over http.
    pub http2: bool,
    /// `--streams`: the most requests in flight on one HTTP/2 connection (further capped by
    /// the server's SETTINGS_MAX_CONCURRENT_STREAMS).
    pub streams: usize,
    /// Busy-wait window before each due time.
    pub spin: Duration,
    /// Time responses by the kernel's receive stamps (`SO_TIMESTAMPNS`) where it gives them
    /// (`--no-kernel-timestamps` turns it off: responses are timed when read).
    pub kernel_stamps: bool,
    /// Send again, once per cause, a request the server provably never processed (HTTP/2
    /// GOAWAY above its last stream or REFUSED_STREAM; HTTP/1.1 a reused connection closed
    /// before any answer). `--no-retry` turns it off: each is then an error.
    pub retry: bool,
    /// `--io-uring`: send by io_uring linked timeouts where the run allows it (`Auto`),
    /// always (`On`: an error when it cannot), or never (`Off`).
    pub io_uring: IoUringMode,
    /// `--precision T`: wake at most once per T, sending everything then due (None: exact
    /// pacing, a wake-up per due time).
    pub precision: Option<Duration>,
    /// How arrivals are spaced.
    pub arrival: Arrival,
    /// The seed of random arrivals (kept for constant ones, so every run names one).
    pub seed: u64,
    /// The ramp, if any: the rate follows these stages and `duration` is their sum (`rate`
    /// is then their average, for the reports).
    pub stages: Vec<Stage>,
    /// `-R` when given: a constant run's rate, or where the first stage ramps from.
    pub start_rate: Option<Rate>,
    /// Traffic before the measured window, if asked for.
    pub warmup: Option<Duration>,
    /// This process runs shard `shard` of `shards` (0 of 1: the whole plan).
    pub shard: u64,
    /// How many shards share the plan.
    pub shards: u64,
    /// The wall-clock start of the schedule, when every shard must start together.
    pub start_at: Option<SystemTime>,
    /// The Lua script, if any.
    pub script: Option<ScriptBase>,
    /// Which event-stream events count as tokens.
    pub token_rule: TokenRule,
    /// `--tokenizer`: counts streamed output where the server sends no `usage` (None:
    /// `--tokenizer none`, one token per content event).
    pub tokenizer: Option<crate::tokens::Tokenizer>,
    /// Per-request goodput targets.
    pub slos: Vec<Slo>,
    /// `--targets`: the kinds of request, each with its tag and weight (empty: the URL,
    /// method, headers and body above, as one kind).
    pub mix: Vec<RequestSpec>,
    /// `--prompts` and `--model`: chat-completions bodies, one kind per model.
    pub prompts: Option<std::sync::Arc<Prompts>>,
    /// `--group-by-header`: results split by this response header's value.
    pub group_by: Option<HeaderName>,
    /// `--price`: token prices per model, for the reports' estimated cost.
    pub prices: Vec<crate::run::Price>,
    /// `--requests-log`: a line per request to this file.
    pub requests_log: Option<std::path::PathBuf>,
}

/// `--io-uring`: whether requests go out by the kernel's timer (`engine::uring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoUringMode {
    /// Where the run allows it and the kernel lets this process use io_uring.
    Auto,
    /// Always: a run that cannot is refused before any traffic.
    On,
    /// Never: the timer and spin.
    Off,
}

impl Plan {
    /// A plan with wrk2's defaults (10 connections, 10 s, GET, 10 s timeout and grace) and
    /// one thread, for `rate` against `target`; callers change what they need.
    pub fn new(target: Target, rate: Rate) -> Plan {
        Plan {
            target,
            rate,
            connections: 10,
            threads: 1,
            duration: Duration::from_secs(10),
            until: Vec::new(),
            min_duration: None,
            timeout: Duration::from_secs(10),
            grace: Duration::from_secs(10),
            method: Method::GET,
            headers: Vec::new(),
            body: Bytes::new(),
            insecure: false,
            tls: TlsSettings::default(),
            resolve: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            http2: false,
            streams: 100,
            spin: Duration::from_micros(50),
            kernel_stamps: true,
            retry: true,
            precision: None,
            io_uring: IoUringMode::Off,
            arrival: Arrival::Constant,
            seed: 0,
            stages: Vec::new(),
            start_rate: Some(rate),
            warmup: None,
            shard: 0,
            shards: 1,
            start_at: None,
            script: None,
            token_rule: TokenRule::OpenAi,
            tokenizer: Some(Default::default()),
            slos: Vec::new(),
            mix: Vec::new(),
            prompts: None,
            group_by: None,
            prices: Vec::new(),
            requests_log: None,
        }
    }

    /// The tags of the kinds of request, in order, without repeats: each model of
    /// `--prompts`; each target's tag ("METHOD path" when it has none); else the URL's
    /// "METHOD path".
    pub fn tag_names(&self) -> Vec<String> {
        let all: Vec<String> = match (&self.prompts, self.mix.is_empty()) {
            (Some(p), _) => p.models.iter().map(|(m, _)| m.clone()).collect(),
            (None, false) => self.mix.iter().map(default_tag).collect(),
            (None, true) => vec![format!("{} {}", self.method, self.target.path)],
        };
        let mut out: Vec<String> = Vec::new();
        for t in all {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// Thread `thread`'s share of the schedule: exact integer spacing for a constant rate
    /// with constant arrivals, else the rate profile through the arrival process.
    pub fn schedule(&self, thread: usize) -> Schedule {
        self.thread_schedule(thread)
            .in_shard(self.shard, self.shards)
    }

    fn thread_schedule(&self, thread: usize) -> Schedule {
        if self.stages.is_empty() && self.arrival == Arrival::Constant {
            return Schedule::for_thread(self.rate, self.threads, thread);
        }
        let profile = if self.stages.is_empty() {
            Profile::constant(self.rate.as_f64(), self.duration)
        } else {
            Profile::new(self.start_rate.map_or(0.0, |r| r.as_f64()), &self.stages)
        };
        Schedule::shaped(profile, self.arrival, self.seed, self.threads, thread)
    }

    /// The plan of the warm-up before it: the same traffic at the first stage's rate (or
    /// `-R`) for the warm-up's length, with nothing of its own to warm up.
    pub fn warmup_plan(&self) -> Option<Plan> {
        let length = self.warmup?;
        let rate = match (self.start_rate, self.stages.first()) {
            (Some(r), _) => r,
            (None, Some(first)) => Rate::new((first.rate * 1e6).round() as u128, 1_000_000),
            (None, None) => self.rate,
        };
        (!rate.is_zero()).then(|| Plan {
            rate,
            start_rate: Some(rate),
            duration: length,
            stages: Vec::new(),
            warmup: None,
            start_at: None,
            ..self.clone()
        })
    }

    /// Why this plan's requests cannot go out by io_uring linked timeouts, as far as the
    /// plan alone says (the engine also checks the requests' sizes and the kernel).
    pub fn io_uring_blocked(&self) -> Option<String> {
        if self.io_uring == IoUringMode::Off {
            Some("--io-uring off".into())
        } else if self.precision.is_some() {
            Some("--precision sends in batches".into())
        } else if self.http2 {
            Some("HTTP/2 (its frames go out through one writer per connection)".into())
        } else if self.target.tls {
            Some("TLS (rustls encrypts in the process)".into())
        } else if self.script.is_some() {
            Some("a Lua script builds the requests".into())
        } else {
            None
        }
    }

    /// The description of this plan that travels with its results.
    pub fn meta(&self) -> RunMeta {
        RunMeta {
            url: self.target.url.clone(),
            method: self.method.to_string(),
            rate: self.rate,
            connections: self.connections,
            threads: self.threads,
            duration: self.duration,
            timeout: self.timeout,
            grace: self.grace,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body_bytes: self.body.len(),
            arrival: self.arrival.name(),
            seed: self.seed,
            stages: self
                .stages
                .iter()
                .map(|s| {
                    format!(
                        "{}s:{}",
                        trim_decimal(s.duration.as_secs_f64()),
                        trim_decimal(s.rate)
                    )
                })
                .collect::<Vec<_>>()
                .join(","),
            shard: self.shard,
            shards: self.shards,
            start_at: self.start_at,
            plan_id: self.identity(),
            precision: self.precision,
            prices: self.prices.clone(),
            group_by: self.group_by.as_ref().map(|h| h.to_string()),
            http2_streams: self.http2.then_some(self.streams),
            until: self.min_duration.map(|min| {
                let goals: Vec<String> = self
                    .until
                    .iter()
                    .map(|(name, _, b)| {
                        format!("{name} ±{}%", crate::units::trim_decimal(b * 100.0))
                    })
                    .collect();
                (goals.join(", "), min)
            }),
            tokenizer: self
                .prompts
                .as_ref()
                .and(self.tokenizer.as_ref())
                .map(|t| t.name().to_string()),
        }
    }

    /// What makes shards parts of one plan: the target and request, the schedule (rate,
    /// stages, arrival, seed, duration), the shard count and the common start, as a short
    /// hash (FNV-1a). The shard index is not in it: the N shards share it.
    pub fn identity(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}:{}", String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let stages: Vec<String> = self
            .stages
            .iter()
            .map(|s| format!("{}:{}", s.duration.as_nanos(), s.rate))
            .collect();
        let mix: Vec<String> = self
            .mix
            .iter()
            .map(|t| {
                format!(
                    "{} {} {:?} {} {}",
                    t.method,
                    t.url,
                    t.headers,
                    t.body.len(),
                    t.weight
                )
            })
            .chain(self.prompts.iter().map(|p| format!("{:?}", p.models)))
            .collect();
        let text = format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{:?}|{}|{}",
            self.target.url,
            self.method,
            self.rate,
            self.start_rate.map(|r| r.to_string()).unwrap_or_default(),
            stages.join(","),
            self.arrival.name(),
            self.seed,
            self.duration.as_nanos(),
            self.shards,
            self.body.len(),
            self.start_at
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis()),
            headers.join("\n"),
            mix.join("\n"),
        );
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// A target's tag: its own, else "METHOD path" (without the query).
pub fn default_tag(t: &RequestSpec) -> String {
    t.tag.clone().unwrap_or_else(|| {
        let path = t
            .url
            .parse::<Uri>()
            .ok()
            .map_or_else(|| "/".to_string(), |u| u.path().to_string());
        format!("{} {path}", t.method)
    })
}
