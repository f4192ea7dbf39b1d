//! What `ratebench serve` is told: address, service delay, body size, stalls, TLS, the
//! streaming chat endpoint's timing, and status codes to answer instead; with the parsers
//! for the values only `serve` takes (`A..B` ranges, `CODE:SHARE%`).
//!
//! Built by `cli` from `serve`'s flags (and by `app::demo` and tests directly); read by
//! `serve`.

use crate::error::{invalid, BadValue, ConfigError};
use std::time::Duration;

/// A validated `serve` configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub addr: std::net::SocketAddr,
    /// Service delay (the shortest, with `delay_max`).
    pub delay: Duration,
    /// `--delay A..B`: each request's delay is uniformly random in `delay..delay_max`
    /// (independent service times); `None`: always `delay`.
    pub delay_max: Option<Duration>,
    /// Response body size in bytes.
    pub body_size: usize,
    /// Stall: (length, first start after server start, repeat period).
    pub stall: Option<Stall>,
    /// `--slow`: a window in which the service delay is multiplied.
    pub slow: Option<Slow>,
    /// HTTPS (with a fresh self-signed certificate unless `cert` gives one).
    pub tls: bool,
    /// `--cert`/`--key`: the server's certificate chain and key (PEM files).
    pub cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// `--client-ca`: require client certificates signed by this CA (PEM), i.e. mTLS.
    pub client_ca: Option<std::path::PathBuf>,
    /// Runtime threads.
    pub threads: usize,
    /// The OpenAI-compatible chat endpoint's timing and length.
    pub llm: LlmConfig,
    /// Statuses returned instead of an answer, each on an exact share of requests.
    pub statuses: Vec<(u16, f64)>,
    /// `--http2`: HTTP/2 (h2 via ALPN over TLS, with prior knowledge (h2c) in cleartext).
    pub http2: bool,
    /// `--max-streams`: the SETTINGS_MAX_CONCURRENT_STREAMS announced over HTTP/2.
    pub max_streams: Option<u32>,
    /// `--goaway-after`: close each connection gracefully after this many requests
    /// (HTTP/2: GOAWAY; HTTP/1.1: `Connection: close`), as load balancers recycle them.
    pub goaway_after: Option<u64>,
    /// `--reset SHARE%`: an exact share of requests is reset instead of answered (HTTP/2:
    /// RST_STREAM with INTERNAL_ERROR; HTTP/1.1: the connection is closed).
    pub reset: f64,
    /// `--key-limit N/PERIOD`: requests allowed per distinct `Authorization` value (a token
    /// bucket of N refilled over PERIOD); over it, 429 with `Retry-After`.
    pub key_limit: Option<(u64, Duration)>,
    /// `--key-token-limit N/PERIOD`: output tokens allowed per key on the chat endpoint.
    pub key_token_limit: Option<(u64, Duration)>,
    /// `--upstreams a,b`: answer as these upstreams in turn (`X-Upstream`); a `--stall`
    /// then takes one of them down at a time instead of freezing every response.
    pub upstreams: Vec<String>,
}

/// Parses `N/PERIOD` (`100/m`, `10/s`, `5000/h`, `60/30s`): a limit of N per PERIOD.
pub fn parse_limit(flag: &'static str, s: &str) -> Result<(u64, Duration), ConfigError> {
    let hint = "expected N/PERIOD, e.g. 100/m, 10/s, 5000/h or 60/30s";
    let (n, per) = s.split_once('/').ok_or_else(|| invalid(flag, s, hint))?;
    let n: u64 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid(flag, s, hint))?;
    let per = match per.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => crate::units::parse_duration(other)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| invalid(flag, s, hint))?,
    };
    Ok((n, per))
}

impl Default for ServeConfig {
    /// `serve`'s own defaults, on a free loopback port (port 0): no delay, 100-byte
    /// bodies, no stall, no faults, plain HTTP/1.1, one thread.
    fn default() -> Self {
        ServeConfig {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            delay: Duration::ZERO,
            delay_max: None,
            body_size: 100,
            stall: None,
            slow: None,
            tls: false,
            cert: None,
            client_ca: None,
            threads: 1,
            llm: LlmConfig::default(),
            statuses: Vec::new(),
            http2: false,
            max_streams: None,
            goaway_after: None,
            reset: 0.0,
            key_limit: None,
            key_token_limit: None,
            upstreams: Vec::new(),
        }
    }
}

/// How `POST /v1/chat/completions` answers: time to first token, gap between tokens, and
/// tokens per answer, each fixed or uniformly random in a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlmConfig {
    /// Time to first token, (min, max).
    pub ttft: (Duration, Duration),
    /// Gap between tokens, (min, max).
    pub token_interval: (Duration, Duration),
    /// Tokens per answer, (min, max): the answer's natural length, cut by a request's
    /// `max_tokens` and stretched by its `min_tokens` (or to `max_tokens` by `ignore_eos`).
    pub tokens: (u64, u64),
    /// `--tokenizer`: counts the prompt's tokens for `usage.prompt_tokens`.
    pub tokenizer: crate::tokens::Tokenizer,
    /// `--prefill-rate`: prompt tokens processed per second before the first token, on top
    /// of `ttft` (a long prompt answers later, as on an inference server).
    pub prefill_rate: Option<u64>,
    /// `--decode-slowdown`: each token interval grows by this share, parts per million
    /// (10,000 = 1 %), per other answer in flight.
    pub decode_slowdown_ppm: u64,
    /// `--max-concurrency`: at most this many answers at once.
    pub max_concurrency: Option<usize>,
    /// `--reject-when-full`: beyond `max_concurrency`, 429 instead of a queue.
    pub reject_when_full: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            ttft: (Duration::from_millis(200), Duration::from_millis(200)),
            token_interval: (Duration::from_millis(20), Duration::from_millis(20)),
            tokens: (50, 50),
            tokenizer: Default::default(),
            prefill_rate: None,
            decode_slowdown_ppm: 0,
            max_concurrency: None,
            reject_when_full: false,
        }
    }
}

/// Parses `A` or `A..B` with `one` for each end.
pub fn parse_range<T: PartialOrd + Copy>(
    flag: &'static str,
    s: &str,
    one: impl Fn(&str) -> Result<T, BadValue>,
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
pub fn parse_status(s: &str) -> Result<(u16, f64), ConfigError> {
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
    let share = parse_share("--status", share).map_err(|_| invalid("--status", s, hint))?;
    Ok((code, share))
}

/// Parses a share of requests, `SHARE%` (0% to 100%), as a fraction.
pub fn parse_share(flag: &'static str, s: &str) -> Result<f64, ConfigError> {
    s.trim()
        .strip_suffix('%')
        .and_then(|p| p.trim().parse().ok())
        .filter(|p: &f64| (0.0..=100.0).contains(p))
        .map(|p| p / 100.0)
        .ok_or_else(|| invalid(flag, s, "expected a share in percent, e.g. 1% or 0.5%"))
}

/// A window during which the service delay is `factor` times longer (a server that slows
/// down, then recovers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slow {
    /// The multiplier.
    pub factor: f64,
    /// When the window starts, from server start.
    pub at: Duration,
    /// How long it lasts.
    pub length: Duration,
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
    /// `--stall-chance`: the chance, per million, that a repeated stall happens in its
    /// period (each period drawn independently, the same every time the server runs):
    /// bursts of slow responses at random, not like clockwork.
    pub chance_ppm: u32,
}
