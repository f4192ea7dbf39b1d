//! The command line, in two stages: raw clap `Args` (strings, as typed) and a validated
//! `RunConfig` (typed values). Every run flag is parsed by hand from its string so a bad
//! value becomes one line that names the flag, says what is wrong and shows what works
//! (`ConfigError`), before any traffic is sent.
//!
//! wrk2 command lines parse the same way: `-R1000 -c100 -d30s -t2 -L -U URL`.
//!
//! Used by `app` (which dispatches on the subcommand) and by tests (which build configs
//! from argument lists exactly as a user types them).

pub mod units;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};
use std::path::PathBuf;
use std::time::Duration;
use units::{parse_duration, parse_rate, parse_size, Rate};

/// ratebench: an open-loop, constant-rate HTTP load generator with coordinated-omission
/// corrected latency.
#[derive(Debug, Parser)]
#[command(
    name = "ratebench",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "Example: ratebench -R1000 -c100 -d30s http://127.0.0.1:8080/"
)]
pub struct Cli {
    /// What to do instead of a load test.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The load test's flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in target server (for demos, tests and experiments).
    Serve(ServeArgs),
    /// Start `serve` with a stall and run a short test against it: corrected vs uncorrected.
    Demo(DemoArgs),
    /// Merge HdrHistogram interval logs (.hlog) from one or more runs and report on them.
    Report(ReportArgs),
}

/// Where to write reports, and what must hold: shared by a run and `report`.
#[derive(Debug, Args, Default, Clone)]
pub struct OutputArgs {
    /// Write the percentile table (corrected and uncorrected) as CSV.
    #[arg(long = "csv", value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the per-second time series as CSV.
    #[arg(long = "csv-timeseries", value_name = "FILE")]
    pub csv_timeseries: Option<PathBuf>,
    /// Write the JSON summary (`-` for stdout; the text report then goes to stderr).
    #[arg(long = "json", value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with plots.
    #[arg(long = "html", value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Fail the run (exit 99) unless this holds: p99<250ms, p99.9<1s, max<2s, mean<10ms,
    /// errors<1%, errors<=5, rate>990 (repeatable).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
}

/// `-L` and `-U`, shared by a run and `report`.
#[derive(Debug, Args, Default, Clone, Copy)]
pub struct SpectraArgs {
    /// Print the detailed (corrected) latency percentile spectrum.
    #[arg(short = 'L', long = "latency")]
    pub latency: bool,
    /// Also print the uncorrected latency percentile spectrum.
    #[arg(short = 'U', long = "u_latency", alias = "u-latency")]
    pub u_latency: bool,
}

/// `ratebench report` arguments, as typed.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Interval logs written with --hdr-log (several: runs that happened at the same time,
    /// e.g. on several load machines).
    #[arg(value_name = "FILE.hlog", required = true)]
    pub logs: Vec<PathBuf>,
    /// Percentile spectra to print.
    #[command(flatten)]
    pub spectra: SpectraArgs,
    /// Outputs and thresholds.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A load test's flags, as typed.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Total requests per second across all threads and connections: 1000, 2.5k, 0.5, 30/m.
    #[arg(short = 'R', long = "rate", value_name = "N")]
    pub rate: Option<String>,
    /// Connections kept open (HTTP/1.1: at most one request in flight on each).
    #[arg(
        short = 'c',
        long = "connections",
        value_name = "N",
        default_value = "10"
    )]
    pub connections: String,
    /// Worker threads [default: number of cores, at most -c].
    #[arg(short = 't', long = "threads", value_name = "N")]
    pub threads: Option<String>,
    /// Measured load duration: 30s, 2m, 1h, 1500ms.
    #[arg(
        short = 'd',
        long = "duration",
        value_name = "T",
        default_value = "10s"
    )]
    pub duration: String,
    /// Add a request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "K: V")]
    pub headers: Vec<String>,
    /// Per-request timeout, counted from the actual send.
    #[arg(long = "timeout", value_name = "T", default_value = "10s")]
    pub timeout: String,
    /// How long to wait for requests still queued or in flight after the load duration
    /// [default: the --timeout value].
    #[arg(long = "grace", value_name = "T")]
    pub grace: Option<String>,
    /// Percentile spectra to print.
    #[command(flatten)]
    pub spectra: SpectraArgs,
    /// Request method.
    #[arg(
        short = 'm',
        long = "method",
        value_name = "METHOD",
        default_value = "GET"
    )]
    pub method: String,
    /// Request body.
    #[arg(long = "body", value_name = "STRING", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body, read from a file.
    #[arg(long = "body-file", value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Skip TLS certificate verification.
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
    /// Pacing: sleep in a kernel timer until this long before each due time, then
    /// busy-wait (yielding to other tasks); the thread also stays awake for responses
    /// expected within 1ms when that costs under a quarter of its time. 0 sleeps only.
    #[arg(long = "spin", value_name = "T", default_value = "50us")]
    pub spin: String,
    /// Lua script with wrk's API (setup, init, request, response, delay, done).
    #[arg(short = 's', long = "script", value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Words after `--`, passed to the script's init(args) as args[1]…
    #[arg(last = true, value_name = "ARGS", index = 2)]
    pub script_args: Vec<String>,
    /// Which events of a text/event-stream response are tokens: `openai` (choices[].delta
    /// .content, tool-call arguments, choices[].text), `any` (every data event), or a JSON
    /// path with `*` for arrays, e.g. `delta.text`.
    #[arg(long = "sse-token", value_name = "RULE", default_value = "openai")]
    pub sse_token: String,
    /// A per-request goodput target for streamed responses: ttft<500ms, itl<50ms (the
    /// longest gap), tpot<20ms, e2e<2s (repeatable; a request is good if it meets all).
    #[arg(long = "slo", value_name = "EXPR")]
    pub slos: Vec<String>,
    /// Write an HdrHistogram interval log (one line per second, tags `corrected` and
    /// `uncorrected`), readable by HdrHistogram tools and `ratebench report`.
    #[arg(long = "hdr-log", value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,
    /// Outputs and thresholds.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Target URL, http:// or https://.
    #[arg(value_name = "URL", index = 1)]
    pub url: Option<String>,
}

/// `ratebench serve` flags, as typed.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Fixed service delay per response: 0, 200us, 5ms.
    #[arg(long, default_value = "0")]
    pub delay: String,
    /// Response body size: 100, 4k, 1Mi.
    #[arg(long = "body-size", default_value = "100")]
    pub body_size: String,
    /// Freeze every response for FOR, starting AT after the server starts: 1s@5s.
    #[arg(long, value_name = "FOR@AT")]
    pub stall: Option<String>,
    /// Repeat the stall every PERIOD (needs --stall).
    #[arg(long = "stall-every", value_name = "PERIOD")]
    pub stall_every: Option<String>,
    /// Serve HTTPS with a freshly generated self-signed certificate.
    #[arg(long)]
    pub tls: bool,
    /// Runtime threads for the server.
    #[arg(long, default_value = "1")]
    pub threads: String,
    /// /v1/chat/completions: time to first token, fixed or a range: 200ms, 100ms..300ms.
    #[arg(long, default_value = "200ms")]
    pub ttft: String,
    /// /v1/chat/completions: gap between tokens, fixed or a range: 20ms, 10ms..30ms.
    #[arg(long = "token-interval", default_value = "20ms")]
    pub token_interval: String,
    /// /v1/chat/completions: tokens per answer, fixed or a range: 50, 20..80.
    #[arg(long, default_value = "50")]
    pub tokens: String,
    /// Answer an exact share of requests with this status instead: 429:5% (429 and 503
    /// carry Retry-After: 1). Repeatable.
    #[arg(long = "status", value_name = "CODE:SHARE%")]
    pub statuses: Vec<String>,
}

/// `ratebench demo` flags, as typed.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Demo load duration.
    #[arg(short = 'd', long, default_value = "6s")]
    pub duration: String,
    /// Demo rate.
    #[arg(short = 'R', long, default_value = "1000")]
    pub rate: String,
}

/// A bad command-line value; the message names the flag and shows a value that works.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag's value did not parse or is out of range: fix the value as the message shows.
    #[error("{flag} {value:?}: {reason}")]
    Invalid {
        /// The flag, e.g. `--rate`.
        flag: &'static str,
        /// The value as typed.
        value: String,
        /// What is wrong and what would work.
        reason: String,
    },
    /// A required input is missing: add it.
    #[error("{0}")]
    Missing(String),
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

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
        let port = auth.port_u16().unwrap_or(if tls { 443 } else { 80 });
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

/// A validated load-test configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Where requests go.
    pub target: Target,
    /// Total rate across all threads.
    pub rate: Rate,
    /// Connections to keep open.
    pub connections: usize,
    /// Worker threads (≤ connections).
    pub threads: usize,
    /// Measured load duration.
    pub duration: Duration,
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
    /// Print the corrected percentile spectrum.
    pub latency: bool,
    /// Print the uncorrected percentile spectrum.
    pub u_latency: bool,
    /// Busy-wait window before each due time.
    pub spin: Duration,
    /// Where to write the interval log.
    pub hdr_log: Option<PathBuf>,
    /// The Lua script, if any.
    pub script: Option<crate::script::ScriptBase>,
    /// Which event-stream events count as tokens.
    pub token_rule: crate::stream::TokenRule,
    /// Per-request goodput targets.
    pub slos: Vec<crate::stream::Slo>,
    /// Report files to write and thresholds to check.
    pub output: Outputs,
}

/// Validated report outputs and thresholds.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Percentile CSV.
    pub csv: Option<PathBuf>,
    /// Per-second CSV.
    pub csv_timeseries: Option<PathBuf>,
    /// JSON summary (`-` is stdout).
    pub json: Option<PathBuf>,
    /// HTML report.
    pub html: Option<PathBuf>,
    /// Conditions that must hold.
    pub thresholds: Vec<crate::report::threshold::Threshold>,
}

impl Outputs {
    /// Whether the JSON summary goes to stdout (so the text report must not).
    pub fn json_to_stdout(&self) -> bool {
        self.json.as_deref() == Some(std::path::Path::new("-"))
    }
}

impl OutputArgs {
    /// Checks the thresholds' grammar and that each output file can be created, so a typo
    /// or an unwritable path fails before any traffic, not after a long run.
    pub fn validate(&self) -> Result<Outputs, ConfigError> {
        let thresholds = self
            .thresholds
            .iter()
            .map(|t| {
                crate::report::threshold::Threshold::parse(t)
                    .map_err(|r| invalid("--threshold", t, r))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (flag, path) in [
            ("--csv", &self.csv),
            ("--csv-timeseries", &self.csv_timeseries),
            ("--json", &self.json),
            ("--html", &self.html),
        ] {
            if let Some(p) = path {
                if p.as_os_str() != "-" || flag != "--json" {
                    check_writable(flag, p)?;
                }
            }
        }
        Ok(Outputs {
            csv: self.csv.clone(),
            csv_timeseries: self.csv_timeseries.clone(),
            json: self.json.clone(),
            html: self.html.clone(),
            thresholds,
        })
    }
}

/// Fails unless `path` can be opened for writing (creating it, empty, if it is new).
pub fn check_writable(flag: &'static str, path: &std::path::Path) -> Result<(), ConfigError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(|_| ())
        .map_err(|e| {
            invalid(
                flag,
                &path.display().to_string(),
                format!("cannot write there: {e}"),
            )
        })
}

/// Parses a positive whole number for `flag`.
fn parse_count(flag: &'static str, s: &str) -> Result<usize, ConfigError> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err(invalid(flag, s, "must be at least 1")),
        Ok(n) if n > 1_000_000 => Err(invalid(flag, s, "must be at most 1000000")),
        Ok(n) => Ok(n),
        Err(_) => Err(invalid(flag, s, "expected a whole number, e.g. 10")),
    }
}

/// Parses one `-H` value: `Name: value` or `Name:value`.
pub fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), ConfigError> {
    let example = "expected \"Name: value\", e.g. -H \"Authorization: Bearer xyz\"";
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| invalid("-H/--header", s, format!("no colon; {example}")))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| invalid("-H/--header", s, format!("invalid header name; {example}")))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| invalid("-H/--header", s, format!("invalid header value; {example}")))?;
    Ok((name, value))
}

impl RunArgs {
    /// Checks every value and builds the configuration; the first bad value is the error.
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let url = self.url.as_deref().ok_or_else(|| {
            ConfigError::Missing(
                "missing target URL, e.g. ratebench -R1000 -c100 -d30s http://127.0.0.1:8080/ \
                 (or try `ratebench demo`)"
                    .into(),
            )
        })?;
        let target = Target::parse(url)?;
        let rate_s = self.rate.as_deref().ok_or_else(|| {
            ConfigError::Missing(
                "-R/--rate is required: ratebench sends a fixed rate whatever the server does \
                 (open loop), e.g. -R 1000"
                    .into(),
            )
        })?;
        let rate = parse_rate(rate_s).map_err(|r| invalid("-R/--rate", rate_s, r))?;
        let duration = parse_duration(&self.duration)
            .map_err(|r| invalid("-d/--duration", &self.duration, r))?;
        if duration.is_zero() {
            return Err(invalid(
                "-d/--duration",
                &self.duration,
                "must be longer than 0",
            ));
        }
        let connections = parse_count("-c/--connections", &self.connections)?;
        let threads = match &self.threads {
            Some(t) => {
                let n = parse_count("-t/--threads", t)?;
                if n > connections {
                    return Err(invalid(
                        "-t/--threads",
                        t,
                        format!(
                            "more threads than connections ({connections}); each thread needs \
                             at least one connection: use -t {connections} or raise -c"
                        ),
                    ));
                }
                n
            }
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(connections),
        };
        let timeout =
            parse_duration(&self.timeout).map_err(|r| invalid("--timeout", &self.timeout, r))?;
        if timeout.is_zero() {
            return Err(invalid("--timeout", &self.timeout, "must be longer than 0"));
        }
        let grace = match &self.grace {
            Some(g) => parse_duration(g).map_err(|r| invalid("--grace", g, r))?,
            None => timeout,
        };
        let spin = parse_duration(&self.spin).map_err(|r| invalid("--spin", &self.spin, r))?;
        if spin > Duration::from_millis(10) {
            return Err(invalid("--spin", &self.spin, "at most 10ms, e.g. 50us"));
        }
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let method = Method::from_bytes(self.method.as_bytes())
            .map_err(|_| invalid("-m/--method", &self.method, "not an HTTP method, e.g. POST"))?;
        let body = match (&self.body, &self.body_file) {
            (Some(b), _) => Bytes::from(b.clone()),
            (None, Some(path)) => std::fs::read(path).map(Bytes::from).map_err(|e| {
                invalid(
                    "--body-file",
                    &path.display().to_string(),
                    format!("cannot read: {e}"),
                )
            })?,
            (None, None) => Bytes::new(),
        };
        let script = match &self.script {
            Some(path) => Some(crate::script::ScriptBase {
                path: path.clone(),
                source: std::sync::Arc::new(std::fs::read(path).map_err(|e| {
                    invalid(
                        "-s/--script",
                        &path.display().to_string(),
                        format!("cannot read: {e}"),
                    )
                })?),
                args: self.script_args.clone(),
                target: target.clone(),
                method: method.to_string(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: (!body.is_empty()).then(|| body.to_vec()),
            }),
            None if !self.script_args.is_empty() => {
                return Err(ConfigError::Missing(
                    "arguments after -- are for a script's init(args): add -s FILE".into(),
                ))
            }
            None => None,
        };
        Ok(RunConfig {
            target,
            rate,
            connections,
            threads,
            duration,
            timeout,
            grace,
            method,
            headers,
            body,
            insecure: self.insecure,
            latency: self.spectra.latency,
            u_latency: self.spectra.u_latency,
            spin,
            script,
            token_rule: crate::stream::TokenRule::parse(&self.sse_token)
                .map_err(|r| invalid("--sse-token", &self.sse_token, r))?,
            slos: self
                .slos
                .iter()
                .map(|s| crate::stream::Slo::parse(s).map_err(|r| invalid("--slo", s, r)))
                .collect::<Result<_, _>>()?,
            hdr_log: match &self.hdr_log {
                Some(p) => {
                    check_writable("--hdr-log", p)?;
                    Some(p.clone())
                }
                None => None,
            },
            output: self.output.validate()?,
        })
    }
}

/// A validated `serve` configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub addr: std::net::SocketAddr,
    /// Fixed service delay.
    pub delay: Duration,
    /// Response body size in bytes.
    pub body_size: usize,
    /// Stall: (length, first start after server start, repeat period).
    pub stall: Option<Stall>,
    /// HTTPS with a self-signed certificate.
    pub tls: bool,
    /// Runtime threads.
    pub threads: usize,
    /// The OpenAI-compatible chat endpoint's timing and length.
    pub llm: LlmConfig,
    /// Statuses returned instead of an answer, each on an exact share of requests.
    pub statuses: Vec<(u16, f64)>,
}

/// How `POST /v1/chat/completions` answers: time to first token, gap between tokens, and
/// tokens per answer, each fixed or uniformly random in a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlmConfig {
    /// Time to first token, (min, max).
    pub ttft: (Duration, Duration),
    /// Gap between tokens, (min, max).
    pub token_interval: (Duration, Duration),
    /// Tokens per answer, (min, max).
    pub tokens: (u64, u64),
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            ttft: (Duration::from_millis(200), Duration::from_millis(200)),
            token_interval: (Duration::from_millis(20), Duration::from_millis(20)),
            tokens: (50, 50),
        }
    }
}

/// Parses `A` or `A..B` with `one` for each end.
fn parse_range<T: PartialOrd + Copy>(
    flag: &'static str,
    s: &str,
    one: impl Fn(&str) -> Result<T, String>,
) -> Result<(T, T), ConfigError> {
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (
            one(a).map_err(|r| invalid(flag, s, r))?,
            one(b).map_err(|r| invalid(flag, s, r))?,
        ),
        None => {
            let v = one(s).map_err(|r| invalid(flag, s, r))?;
            (v, v)
        }
    };
    if b < a {
        return Err(invalid(
            flag,
            s,
            "the range's end is below its start, e.g. 100ms..300ms",
        ));
    }
    Ok((a, b))
}

/// Parses `--status CODE:SHARE%`, e.g. `429:5%`.
fn parse_status(s: &str) -> Result<(u16, f64), ConfigError> {
    let hint = "expected CODE:SHARE%, e.g. 429:5% or 503:0.5%";
    let (code, share) = s
        .split_once(':')
        .ok_or_else(|| invalid("--status", s, hint))?;
    let code: u16 = code
        .trim()
        .parse()
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| invalid("--status", s, hint))?;
    let share: f64 = share
        .trim()
        .strip_suffix('%')
        .and_then(|p| p.parse().ok())
        .filter(|p: &f64| (0.0..=100.0).contains(p))
        .ok_or_else(|| invalid("--status", s, hint))?;
    Ok((code, share / 100.0))
}

/// A period during which every response is held until the stall ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// How long each stall lasts.
    pub length: Duration,
    /// When the first stall starts, from server start.
    pub at: Duration,
    /// Repeat period, if the stall repeats.
    pub every: Option<Duration>,
}

impl ServeArgs {
    /// Checks every value and builds the server configuration.
    pub fn validate(&self) -> Result<ServeConfig, ConfigError> {
        let addr = self.addr.parse().map_err(|_| {
            invalid(
                "--addr",
                &self.addr,
                "expected IP:PORT, e.g. 127.0.0.1:8080",
            )
        })?;
        let delay = parse_duration(&self.delay).map_err(|r| invalid("--delay", &self.delay, r))?;
        let body_size = parse_size(&self.body_size)
            .map_err(|r| invalid("--body-size", &self.body_size, r))?
            as usize;
        let every = match &self.stall_every {
            Some(p) => {
                let d = parse_duration(p).map_err(|r| invalid("--stall-every", p, r))?;
                if d.is_zero() {
                    return Err(invalid("--stall-every", p, "must be longer than 0"));
                }
                Some(d)
            }
            None => None,
        };
        let stall = match &self.stall {
            Some(s) => {
                let hint = "expected FOR@AT, e.g. 1s@5s (5 s after start, hold responses for 1 s)";
                let (len, at) = s
                    .split_once('@')
                    .ok_or_else(|| invalid("--stall", s, hint))?;
                let length = parse_duration(len).map_err(|r| invalid("--stall", s, r))?;
                let at = parse_duration(at).map_err(|r| invalid("--stall", s, r))?;
                if every.is_some_and(|e| e <= length) {
                    return Err(invalid(
                        "--stall-every",
                        self.stall_every.as_deref().unwrap_or_default(),
                        "must be longer than the stall itself",
                    ));
                }
                Some(Stall { length, at, every })
            }
            None if every.is_some() => {
                return Err(ConfigError::Missing(
                    "--stall-every needs --stall FOR@AT, e.g. --stall 1s@5s --stall-every 10s"
                        .into(),
                ))
            }
            None => None,
        };
        let threads = parse_count("--threads", &self.threads)?;
        let llm = LlmConfig {
            ttft: parse_range("--ttft", &self.ttft, parse_duration)?,
            token_interval: parse_range("--token-interval", &self.token_interval, parse_duration)?,
            tokens: parse_range("--tokens", &self.tokens, |t| {
                t.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        "expected a whole number of tokens ≥ 1, e.g. 50 or 20..80".to_string()
                    })
            })?,
        };
        let statuses = self
            .statuses
            .iter()
            .map(|s| parse_status(s))
            .collect::<Result<Vec<_>, _>>()?;
        if statuses.iter().map(|(_, p)| p).sum::<f64>() > 1.0 + 1e-9 {
            return Err(invalid(
                "--status",
                &self.statuses.join(" "),
                "the shares add up to more than 100%",
            ));
        }
        Ok(ServeConfig {
            addr,
            delay,
            body_size,
            stall,
            tls: self.tls,
            threads,
            llm,
            statuses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RunConfig, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("ratebench").chain(args.iter().copied()))
            .expect("clap accepts the shape");
        cli.run.validate()
    }

    #[test]
    fn wrk2_command_lines() {
        let c = parse(&[
            "-R1000",
            "-c100",
            "-d30s",
            "-t2",
            "http://127.0.0.1:8080/x?y=1",
        ])
        .unwrap();
        assert_eq!(c.rate, Rate::per_second(1000));
        assert_eq!((c.connections, c.threads), (100, 2));
        assert_eq!(c.duration, Duration::from_secs(30));
        assert_eq!(c.target.path, "/x?y=1");
        assert_eq!(c.target.authority, "127.0.0.1:8080");
        let c = parse(&[
            "-t",
            "1",
            "-c",
            "1",
            "-R",
            "30/m",
            "-d",
            "1m",
            "-L",
            "-U",
            "https://[::1]/",
        ])
        .unwrap();
        assert!(c.target.tls && c.latency && c.u_latency);
        assert_eq!((c.target.host.as_str(), c.target.port), ("::1", 443));
    }

    #[test]
    fn headers_with_and_without_space() {
        let c = parse(&["-R1", "-H", "X-A: 1", "-H", "X-B:2", "http://h/"]).unwrap();
        assert_eq!(c.headers[0].0, "x-a");
        assert_eq!(c.headers[1].1, "2");
    }

    #[test]
    fn bad_values_name_their_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["-R1000", "not a url"], "URL"),
            (&["-R1000", "ftp://h/"], "unsupported scheme"),
            (&["-R1000", "-d", "10x", "http://h/"], "-d/--duration"),
            (&["-R", "0", "http://h/"], "-R/--rate"),
            (&["-R1", "-c", "0", "http://h/"], "-c/--connections"),
            (&["-R1", "-c", "2", "-t", "3", "http://h/"], "-t/--threads"),
            (&["http://h/"], "-R/--rate"),
            (&["-R1", "-H", "nocolon", "http://h/"], "-H/--header"),
            (&["-R1", "--timeout", "0s", "http://h/"], "--timeout"),
        ];
        for (args, flag) in cases {
            let e = parse(args)
                .expect_err(&format!("{args:?} should fail"))
                .to_string();
            assert!(e.contains(flag), "{args:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn serve_stall() {
        let a = ServeArgs {
            addr: "127.0.0.1:0".into(),
            delay: "200us".into(),
            body_size: "1k".into(),
            stall: Some("1s@5s".into()),
            stall_every: Some("10s".into()),
            tls: false,
            threads: "1".into(),
            ttft: "100ms..300ms".into(),
            token_interval: "20ms".into(),
            tokens: "50".into(),
            statuses: vec!["429:5%".into()],
        };
        let c = a.validate().unwrap();
        assert_eq!(c.delay, Duration::from_micros(200));
        assert_eq!(c.body_size, 1000);
        assert_eq!(
            c.stall,
            Some(Stall {
                length: Duration::from_secs(1),
                at: Duration::from_secs(5),
                every: Some(Duration::from_secs(10))
            })
        );
        assert_eq!(
            c.llm.ttft,
            (Duration::from_millis(100), Duration::from_millis(300))
        );
        assert_eq!(c.llm.tokens, (50, 50));
        assert_eq!(c.statuses, vec![(429, 0.05)]);
    }
}
