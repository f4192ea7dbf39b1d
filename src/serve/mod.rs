//! `ratebench serve`: the built-in target server, for demos, tests and experiments.
//!
//! A hyper HTTP/1.1 or HTTP/2 server (optionally HTTPS with a self-signed certificate or
//! the given one, optionally requiring client certificates) that answers
//! every request with a body of a fixed size after a fixed service delay, and can *stall*:
//! from `AT` after it starts, for `FOR`, every response is held until the stall ends (once,
//! or every `PERIOD`) — the classic coordinated-omission experiment. Delays use the precise
//! `clock::Timer`, so `--delay 200us` means 200 µs, not a millisecond tick.
//!
//! Used by `app` (the `serve` and `demo` commands) and by tests, which start it in-process
//! on port 0 with `spawn`.

pub mod config;
pub mod llm;

use crate::clock::{set_thread_timer_slack_min, sleep_until, Timer};
use bytes::Bytes;
pub use config::{LlmConfig, ServeConfig, Slow, Stall};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

impl Stall {
    /// If `elapsed` (since server start) is inside a stall, which one (from 0).
    pub fn window(&self, elapsed: Duration) -> Option<u64> {
        self.end_at(elapsed)?;
        Some(match self.every {
            Some(p) => ((elapsed - self.at).as_nanos() / p.as_nanos()) as u64,
            None => 0,
        })
    }

    /// If `elapsed` (since server start) is inside a stall, when that stall ends.
    pub fn end_at(&self, elapsed: Duration) -> Option<Duration> {
        if elapsed < self.at {
            return None;
        }
        let since = elapsed - self.at;
        let (begin, period) = match self.every {
            Some(p) => {
                let i = (since.as_nanos() / p.as_nanos()) as u64;
                (self.at + p * i as u32, i)
            }
            None => (self.at, 0),
        };
        if self.chance_ppm < 1_000_000
            && mix(period ^ 0x57a1) % 1_000_000 >= u64::from(self.chance_ppm)
        {
            return None;
        }
        let end = begin + self.length;
        (elapsed < end).then_some(end)
    }
}

/// Counters a test or the operator can read while the server runs.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests received.
    pub requests: AtomicU64,
    /// Requests being answered right now (until the response head is ready).
    pub in_flight: AtomicU64,
    /// The most requests ever answered at once (to check a client kept a stream limit).
    pub max_in_flight: AtomicU64,
    /// Requests reset instead of answered (`--reset`).
    pub resets: AtomicU64,
    /// Connections closed gracefully after `--goaway-after` requests.
    pub goaways: AtomicU64,
    /// Requests answered 429 by `--key-limit` or `--key-token-limit`.
    pub limited: AtomicU64,
    /// LLM answers begun (admitted).
    pub answers: AtomicU64,
    /// LLM answers being generated right now (admitted, not finished).
    pub generating: AtomicU64,
    /// The most LLM answers ever generated at once.
    pub max_generating: AtomicU64,
    /// LLM requests that waited for `--max-concurrency`.
    pub queued: AtomicU64,
    /// LLM requests answered 429 by `--reject-when-full`.
    pub rejected: AtomicU64,
}

/// Counts an LLM answer as being generated while it lives (moved into a stream's task).
struct Generating(Arc<ServerStats>);

impl Generating {
    fn new(stats: &Arc<ServerStats>) -> Generating {
        stats.answers.fetch_add(1, Ordering::Relaxed);
        let now = stats.generating.fetch_add(1, Ordering::Relaxed) + 1;
        stats.max_generating.fetch_max(now, Ordering::Relaxed);
        Generating(stats.clone())
    }

    /// How much slower a token interval is now: 1 + slowdown × (other answers in flight).
    fn slowdown(&self, ppm: u64) -> f64 {
        let others = self.0.generating.load(Ordering::Relaxed).saturating_sub(1);
        1.0 + (ppm * others) as f64 / 1e6
    }
}

impl Drop for Generating {
    fn drop(&mut self) {
        self.0.generating.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request reset instead of answered (`--reset`): hyper turns a service error into
/// RST_STREAM (INTERNAL_ERROR) over HTTP/2, and closes the connection over HTTP/1.1.
#[derive(Debug)]
pub struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reset by --reset")
    }
}

impl std::error::Error for Reset {}

/// Counts a request in flight while it lives.
struct InFlight<'a>(&'a ServerStats);

impl<'a> InFlight<'a> {
    fn new(stats: &'a ServerStats) -> InFlight<'a> {
        let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A server running on a background thread; dropping it shuts the server down.
pub struct ServerHandle {
    /// Where it listens (the real port when asked for port 0).
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<ServerStats>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound: pick a free port (or port 0) with --addr.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The self-signed certificate or TLS settings could not be made (a bug: please report).
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The machine refused a thread, socket or runtime.
    #[error("cannot start the server: {0}")]
    Setup(#[from] std::io::Error),
}

impl ServeError {
    /// A server that cannot start failed at run time: exit 1.
    pub fn exit_code(&self) -> i32 {
        crate::error::EXIT_RUNTIME
    }
}

fn tls_acceptor(config: &ServeConfig) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    use crate::pem::{read_certs, read_key};
    let http2 = config.http2;
    let (chain, key) = match &config.cert {
        Some((c, k)) => (
            read_certs(c).map_err(|e| ServeError::Tls(format!("{}: {e}", c.display())))?,
            read_key(k).map_err(|e| ServeError::Tls(format!("{}: {e}", k.display())))?,
        ),
        None => {
            let cert =
                rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                    .map_err(|e| {
                        ServeError::Tls(format!("generating a self-signed certificate: {e}"))
                    })?;
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
            (vec![cert.cert.der().clone()], key)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let builder = match &config.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(
                read_certs(ca).map_err(|e| ServeError::Tls(format!("{}: {e}", ca.display())))?,
            );
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| ServeError::Tls(format!("client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| ServeError::Tls(format!("server config: {e}")))?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

struct Service {
    config: ServeConfig,
    body: Bytes,
    started: Instant,
    stats: Arc<ServerStats>,
    seed: u64,
    /// `--key-limit`: requests per key.
    requests: Option<Limiter>,
    /// `--key-token-limit`: output tokens per key.
    tokens: Option<Limiter>,
    /// `--max-concurrency`: one permit per answer at once.
    batch: Option<Arc<tokio::sync::Semaphore>>,
}

/// Token buckets, one per distinct `Authorization` value: N tokens, refilled over PERIOD.
struct Limiter {
    size: f64,
    per_sec: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    fn new((n, period): (u64, Duration)) -> Limiter {
        Limiter {
            size: n as f64,
            per_sec: n as f64 / period.as_secs_f64(),
            buckets: Default::default(),
        }
    }

    /// Takes `n` from `key`'s bucket: what is left, or how long until there is enough.
    fn take(&self, key: &str, n: f64) -> Result<f64, Duration> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = map.entry(key.to_string()).or_insert((self.size, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.size);
        *at = now;
        if *tokens >= n {
            *tokens -= n;
            Ok(*tokens)
        } else {
            Err(Duration::from_secs_f64((n - *tokens) / self.per_sec))
        }
    }
}

/// A 429 answer: `Retry-After` in whole seconds (at least 1), as HTTP has it.
/// `remaining` (`x-ratelimit-remaining-requests` or `-tokens`) is 0.
fn too_many(wait: Duration, what: &str, remaining: &'static str) -> Response<Body> {
    let retry = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut resp = error_answer(
        hyper::StatusCode::TOO_MANY_REQUESTS,
        &format!("{what} limit reached"),
        Some(retry),
    );
    resp.headers_mut()
        .insert(remaining, HeaderValue::from_static("0"));
    resp
}

/// A JSON error answer (OpenAI's shape) with this status, and `Retry-After` when given.
fn error_answer(
    status: hyper::StatusCode,
    message: &str,
    retry_after_s: Option<u64>,
) -> Response<Body> {
    let text = format!(
        "{{\"error\":{{\"message\":\"ratebench serve: {message}\",\"type\":\"rate_limit\"}}}}"
    );
    let mut resp = Response::new(Full::new(Bytes::from(text)).boxed());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if let Some(s) = retry_after_s {
        h.insert(hyper::header::RETRY_AFTER, HeaderValue::from(s));
    }
    h.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

type Body = BoxBody<Bytes, Infallible>;

/// A response body fed from a channel: the streaming endpoint's events, as they are made.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Whether request `n` is one of an exact share `p`, spread evenly: ⌊(n+1)·p⌋ > ⌊n·p⌋.
fn chosen(n: u64, p: f64) -> bool {
    ((n + 1) as f64 * p).floor() > (n as f64 * p).floor()
}

/// A well-mixed 64-bit hash (splitmix64): request `n`'s random draws, with no shared RNG.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// How many tokens an answer has: its natural length `natural` (from `--tokens`), cut by
/// the request's `max_tokens` (or `max_completion_tokens`, or the Responses API's
/// `max_output_tokens`), stretched to its `min_tokens`,
/// and exactly `max_tokens` with `ignore_eos` — as vLLM, SGLang and TGI honour them.
fn answer_length(natural: u64, json: &serde_json::Value) -> u64 {
    let field = |k: &str| json.get(k).and_then(|v| v.as_u64());
    let max = field("max_tokens")
        .or_else(|| field("max_completion_tokens"))
        .or_else(|| field("max_output_tokens"));
    let ignore_eos = json
        .get("ignore_eos")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let mut n = match (max, ignore_eos) {
        (Some(m), true) => m,
        (Some(m), false) => natural.min(m),
        (None, _) => natural,
    };
    if let Some(min) = field("min_tokens") {
        n = n.max(min.min(max.unwrap_or(u64::MAX)));
    }
    n.max(1)
}

/// The answer's i-th token: a common word that is one token in every bundled tokenizer,
/// so that a client counting the text gets `usage.completion_tokens`.
pub fn word(i: u64) -> &'static str {
    const WORDS: [&str; 8] = [" the", " of", " and", " to", " in", " is", " it", " for"];
    WORDS[(i % WORDS.len() as u64) as usize]
}

/// A uniform draw in [lo, hi] from `h`.
fn pick(lo: Duration, hi: Duration, h: u64) -> Duration {
    if hi <= lo {
        return lo;
    }
    lo + (hi - lo).mul_f64((h >> 11) as f64 / (1u64 << 53) as f64)
}

impl Service {
    /// Holds until the current stall (if any) is over.
    async fn stall(&self) {
        if !self.config.upstreams.is_empty() {
            return; // with upstreams, a stall is a failover instead
        }
        hold_stall(self.config.stall, self.started).await;
    }

    /// The status request `n` gets instead of an answer, if any: each `--status` share is
    /// met exactly, spread evenly (request n is chosen when ⌊(n+1)·p⌋ > ⌊n·p⌋).
    fn forced_status(&self, n: u64) -> Option<u16> {
        self.config
            .statuses
            .iter()
            .find(|(_, p)| chosen(n, *p))
            .map(|(code, _)| *code)
    }

    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Body>, Reset> {
        let n = self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight::new(&self.stats);
        if chosen(n, self.config.reset) {
            self.stats.resets.fetch_add(1, Ordering::Relaxed);
            return Err(Reset);
        }
        let upstream = self.upstream(n);
        let key = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let remaining = match &self.requests {
            Some(l) => match l.take(&key, 1.0) {
                Ok(left) => Some(left.floor() as u64),
                Err(wait) => {
                    self.stats.limited.fetch_add(1, Ordering::Relaxed);
                    let mut resp = too_many(wait, "request", "x-ratelimit-remaining-requests");
                    name_upstream(&mut resp, upstream);
                    return Ok(resp);
                }
            },
            None => None,
        };
        let mut resp = self.answer(req, n, &key).await;
        if let Some(left) = remaining {
            resp.headers_mut()
                .insert("x-ratelimit-remaining-requests", HeaderValue::from(left));
        }
        name_upstream(&mut resp, upstream);
        Ok(resp)
    }

    /// Which upstream answers request `n`: the upstreams in turn, skipping the one a stall
    /// has taken down (the i-th stall takes down upstream i mod U).
    fn upstream(&self, n: u64) -> Option<&str> {
        let ups = &self.config.upstreams;
        if ups.is_empty() {
            return None;
        }
        let down = self.config.stall.and_then(|s| {
            s.window(self.started.elapsed())
                .map(|i| (i % ups.len() as u64) as usize)
        });
        let live: Vec<usize> = (0..ups.len()).filter(|i| Some(*i) != down).collect();
        let pick = if live.is_empty() {
            0
        } else {
            live[(n % live.len() as u64) as usize]
        };
        Some(&ups[pick])
    }

    async fn answer(&self, req: Request<Incoming>, n: u64, key: &str) -> Response<Body> {
        if let Some(code) = self.forced_status(n) {
            let status =
                hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::TOO_MANY_REQUESTS);
            let retry = (code == 429 || code == 503).then_some(1);
            return error_answer(status, &format!("status {code} (--status)"), retry);
        }
        if req.method() == hyper::Method::POST {
            if let Some(format) = llm::Format::of_path(req.uri().path()) {
                return self.llm(req, n, key, format).await;
            }
        }
        if !self.config.delay.is_zero() || self.config.delay_max.is_some() {
            let mut delay = match self.config.delay_max {
                Some(max) => pick(self.config.delay, max, mix(self.seed ^ n ^ 0x5e55)),
                None => self.config.delay,
            };
            if let Some(s) = self.config.slow {
                let t = self.started.elapsed();
                if t >= s.at && t < s.at + s.length {
                    delay = delay.mul_f64(s.factor);
                }
            }
            sleep_until(Instant::now() + delay).await;
        }
        self.stall().await;
        let mut resp = Response::new(Full::new(self.body.clone()).boxed());
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        resp
    }

    /// The LLM endpoints (`llm::Format`): streamed (SSE) when the request says
    /// `"stream": true`, else one JSON answer once the whole answer is ready.
    async fn llm(
        &self,
        req: Request<Incoming>,
        n: u64,
        key: &str,
        format: llm::Format,
    ) -> Response<Body> {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let stream = json
            .get("stream")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let model: String = json
            .get("model")
            .and_then(|v| v.as_str())
            .unwrap_or("ratebench-serve")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(*c))
            .collect();
        let llm = self.config.llm;
        let h = mix(self.seed ^ n);
        let ttft = pick(llm.ttft.0, llm.ttft.1, h);
        let (lo, hi) = llm.tokens;
        let tokens = answer_length(lo + mix(h) % (hi - lo + 1), &json);
        let prompt_tokens = llm.tokenizer.count(&crate::tokens::request_text(&json));
        // Prefill: the prompt is read at --prefill-rate tokens/s before the first token.
        let ttft = ttft
            + llm.prefill_rate.map_or(Duration::ZERO, |r| {
                Duration::from_secs_f64(prompt_tokens as f64 / r as f64)
            });
        let include_usage = format.include_usage(&json);
        let mut tokens_left = None;
        if let Some(l) = &self.tokens {
            match l.take(key, tokens as f64) {
                Ok(left) => tokens_left = Some(left.floor() as u64),
                Err(wait) => {
                    self.stats.limited.fetch_add(1, Ordering::Relaxed);
                    return too_many(wait, "token", "x-ratelimit-remaining-tokens");
                }
            }
        }
        // Admission: at most --max-concurrency answers at once; the others wait their turn
        // (the wait is part of their TTFT, as in a server's queue) or are turned away.
        let permit = match &self.batch {
            None => None,
            Some(b) => match b.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) if llm.reject_when_full => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    return error_answer(
                        hyper::StatusCode::TOO_MANY_REQUESTS,
                        "the server is full (--max-concurrency, --reject-when-full)",
                        Some(1),
                    );
                }
                Err(_) => {
                    self.stats.queued.fetch_add(1, Ordering::Relaxed);
                    Some(
                        b.clone()
                            .acquire_owned()
                            .await
                            .expect("the batch is never closed"),
                    )
                }
            },
        };
        let generating = Generating::new(&self.stats);
        let slowdown = llm.decode_slowdown_ppm;
        let gap = move |i: u64, g: &Generating| {
            pick(llm.token_interval.0, llm.token_interval.1, mix(h ^ i))
                .mul_f64(g.slowdown(slowdown))
        };
        let arrived = Instant::now();
        let id = format!("ans-{n}");
        if !stream {
            let at = (1..tokens).fold(arrived + ttft, |at, i| at + gap(i, &generating));
            sleep_until(at).await;
            self.stall().await;
            let content: String = (0..tokens).map(word).collect();
            let answer = llm::Answer {
                id: &id,
                model: &model,
                prompt_tokens,
                tokens,
            };
            let text = format.whole(&answer, &content);
            let mut resp = Response::new(Full::new(Bytes::from(text)).boxed());
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(left) = tokens_left {
                resp.headers_mut()
                    .insert("x-ratelimit-remaining-tokens", HeaderValue::from(left));
            }
            return resp;
        }
        let (tx, rx) = mpsc::channel(16);
        let stall = self
            .config
            .stall
            .filter(|_| self.config.upstreams.is_empty());
        let started = self.started;
        tokio::spawn(async move {
            // Held until the answer is done: its place in the batch, and its count.
            let _permit = permit;
            let answer = llm::Answer {
                id: &id,
                model: &model,
                prompt_tokens,
                tokens,
            };
            for e in format.opening(&answer) {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            // One timer for the whole stream: a timerfd per token would cost the target a
            // descriptor's creation, registration and close per token.
            let mut timer = Timer::new(Duration::ZERO).ok();
            let mut at = arrived + ttft;
            for i in 0..tokens {
                if i > 0 {
                    at += gap(i, &generating);
                }
                let waited = match timer.as_mut() {
                    Some(t) => t.wait_until(at).await.is_ok(),
                    None => false,
                };
                if !waited {
                    sleep_until(at).await;
                }
                hold_stall(stall, started).await;
                if tx.send(format.token(&answer, word(i))).await.is_err() {
                    return; // the client went away
                }
            }
            // Usage at the end, unless an OpenAI request said stream_options.include_usage
            // false (OpenAI's own default is to leave it out).
            let text: String = (0..tokens).map(word).collect();
            for e in format.closing(&answer, &text, include_usage) {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
        });
        let mut resp = Response::new(ChannelBody(rx).boxed());
        let hd = resp.headers_mut();
        if let Some(left) = tokens_left {
            hd.insert("x-ratelimit-remaining-tokens", HeaderValue::from(left));
        }
        hd.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        hd.insert(
            hyper::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        resp
    }
}

/// Names the upstream that answered, if the server plays several.
fn name_upstream(resp: &mut Response<Body>, upstream: Option<&str>) {
    if let Some(u) = upstream.and_then(|u| HeaderValue::from_str(u).ok()) {
        resp.headers_mut().insert("x-upstream", u);
    }
}

/// Holds until the stall in progress at this moment (if any) ends.
async fn hold_stall(stall: Option<Stall>, started: Instant) {
    if let Some(end) = stall.and_then(|s| s.end_at(started.elapsed())) {
        sleep_until(started + end).await;
    }
}

async fn serve_on(
    listener: TcpListener,
    config: ServeConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stats: Arc<ServerStats>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let service = Arc::new(Service {
        body: Bytes::from(vec![b'x'; config.body_size]),
        started: Instant::now(),
        stats: stats.clone(),
        seed: mix(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)),
        requests: config.key_limit.map(Limiter::new),
        tokens: config.key_token_limit.map(Limiter::new),
        batch: config
            .llm
            .max_concurrency
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
        config,
    });
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => continue, // e.g. EMFILE: keep serving the connections we have
            },
            _ = &mut shutdown => return,
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        let service = service.clone();
        let tls = tls.clone();
        tokio::spawn(serve_connection(tcp, service.clone(), tls.clone()));
    }
}

/// Serves one accepted connection: TLS if configured, then HTTP/1.1 or HTTP/2 (by ALPN over
/// TLS, by `--http2` in cleartext), closing it gracefully after `--goaway-after` requests.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    service: Arc<Service>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    match tls {
        None => {
            let h2 = service.config.http2;
            serve_http(TokioIo::new(tcp), service, h2).await;
        }
        Some(acceptor) => {
            if let Ok(stream) = acceptor.accept(tcp).await {
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                serve_http(TokioIo::new(stream), service, h2).await;
            }
        }
    }
}

async fn serve_http<I>(io: I, service: Arc<Service>, h2: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let served = Arc::new(AtomicU64::new(0));
    let recycle = Arc::new(tokio::sync::Notify::new());
    let limit = service.config.goaway_after;
    let svc = {
        let (served, recycle, service) = (served.clone(), recycle.clone(), service.clone());
        hyper::service::service_fn(move |req| {
            let service = service.clone();
            if limit.is_some_and(|l| served.fetch_add(1, Ordering::Relaxed) + 1 == l) {
                recycle.notify_one();
            }
            async move { service.handle(req).await }
        })
    };
    // Runs the connection to its end, closing it gracefully once `--goaway-after` is met.
    macro_rules! drive {
        ($conn:expr) => {{
            let mut conn = std::pin::pin!($conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = recycle.notified() => {}
            }
            service.stats.goaways.fetch_add(1, Ordering::Relaxed);
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }};
    }
    if h2 {
        let mut b = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        if let Some(m) = service.config.max_streams {
            b.max_concurrent_streams(m);
        }
        drive!(b.serve_connection(io, svc));
    } else {
        drive!(hyper::server::conn::http1::Builder::new().serve_connection(io, svc));
    }
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .on_thread_start(set_thread_timer_slack_min)
            .enable_all()
            .build()
    }
}

/// Starts the server on a background thread and returns once it is listening.
pub fn spawn(config: ServeConfig) -> Result<ServerHandle, ServeError> {
    let std_listener =
        std::net::TcpListener::bind(config.addr).map_err(|source| ServeError::Listen {
            addr: config.addr,
            source,
        })?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let tls = if config.tls {
        Some(tls_acceptor(&config)?)
    } else {
        None
    };
    let stats = Arc::new(ServerStats::default());
    let (tx, rx) = oneshot::channel();
    let thread_stats = stats.clone();
    let thread = std::thread::Builder::new()
        .name("ratebench-serve".into())
        .spawn(move || {
            set_thread_timer_slack_min();
            let Ok(rt) = runtime(config.threads) else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else {
                    return;
                };
                serve_on(listener, config, tls, thread_stats, rx).await;
            });
        })?;
    Ok(ServerHandle {
        addr,
        stats,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// Runs the server in the foreground until Ctrl-C.
pub fn run(config: ServeConfig) -> Result<(), ServeError> {
    let handle = spawn(config.clone())?;
    let scheme = if config.tls { "https" } else { "http" };
    eprintln!(
        "ratebench serve: listening on {scheme}://{}/ ({}delay {}, body {} B{}); Ctrl-C stops",
        handle.addr,
        match (config.http2, config.tls) {
            (true, true) => "HTTP/2 or HTTP/1.1 by ALPN, ",
            (true, false) => "HTTP/2 with prior knowledge (h2c), ",
            _ => "",
        },
        match config.delay_max {
            Some(max) => format!("{:?}..{:?}", config.delay, max),
            None => format!("{:?}", config.delay),
        },
        config.body_size,
        match config.stall {
            Some(s) => format!(
                ", stall {:?} at {:?}{}",
                s.length,
                s.at,
                s.every.map(|e| format!(" every {e:?}")).unwrap_or_default()
            ),
            None => String::new(),
        }
    );
    let llm = config.llm;
    let range = |(a, b): (Duration, Duration)| {
        if a == b {
            format!("{a:?}")
        } else {
            format!("{a:?}..{b:?}")
        }
    };
    eprintln!(
        "  POST /v1/chat/completions, /v1/completions, /v1/responses, /v1/messages: TTFT {}{}, \
         token interval {}{}, {} tokens an answer (a request's max_tokens, min_tokens and \
         ignore_eos honoured), prompt tokens by {}{}",
        range(llm.ttft),
        llm.prefill_rate
            .map(|r| format!(" + prompt tokens / {r} per s"))
            .unwrap_or_default(),
        range(llm.token_interval),
        if llm.decode_slowdown_ppm > 0 {
            format!(
                " (+{}% per other answer in flight)",
                crate::units::trim_decimal(llm.decode_slowdown_ppm as f64 / 1e4)
            )
        } else {
            String::new()
        },
        if llm.tokens.0 == llm.tokens.1 {
            llm.tokens.0.to_string()
        } else {
            format!("{}..{}", llm.tokens.0, llm.tokens.1)
        },
        llm.tokenizer.name(),
        match (llm.max_concurrency, llm.reject_when_full) {
            (Some(n), false) => format!("; at most {n} answers at once, the rest queued"),
            (Some(n), true) => format!("; at most {n} answers at once, the rest answered 429"),
            (None, _) => String::new(),
        }
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Ctrl-C, or a TERM (kill, a container stopping): either way, say what was served.
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    });
    eprintln!("{}", served(&handle.stats));
    drop(handle);
    Ok(())
}

/// What a server did, as it says on exit.
pub fn served(s: &ServerStats) -> String {
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = format!(
        "ratebench serve: served {} requests on {} connections",
        n(&s.requests),
        n(&s.connections)
    );
    if n(&s.answers) > 0 || n(&s.rejected) > 0 {
        out.push_str(&format!(
            "; {} LLM answers, at most {} at once, {} queued, {} turned away (429) when full",
            n(&s.answers),
            n(&s.max_generating),
            n(&s.queued),
            n(&s.rejected)
        ));
    }
    if n(&s.limited) > 0 {
        out.push_str(&format!("; {} rate-limited (429)", n(&s.limited)));
    }
    if n(&s.resets) > 0 {
        out.push_str(&format!("; {} reset", n(&s.resets)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_words_are_one_token_each_in_every_tokenizer() {
        for name in crate::tokens::names() {
            let t = crate::tokens::Tokenizer::named(name).unwrap();
            for i in 0..8 {
                let w = word(i);
                assert_eq!(t.count(w), 1, "{name}: {w:?}");
            }
        }
    }

    #[test]
    fn stall_windows() {
        let s = |ms| Duration::from_millis(ms);
        let once = Stall {
            length: s(1000),
            at: s(5000),
            every: None,
            chance_ppm: 1_000_000,
        };
        assert_eq!(once.end_at(s(4999)), None);
        assert_eq!(once.end_at(s(5000)), Some(s(6000)));
        assert_eq!(once.end_at(s(5999)), Some(s(6000)));
        assert_eq!(once.end_at(s(6000)), None);
        assert_eq!(once.end_at(s(16000)), None);
        // Every 10 s: 5–6 s, 15–16 s, 25–26 s, …
        let rep = Stall {
            every: Some(s(10_000)),
            ..once
        };
        assert_eq!(rep.end_at(s(15_500)), Some(s(16_000)));
        assert_eq!(rep.end_at(s(16_500)), None);
        assert_eq!(rep.end_at(s(25_000)), Some(s(26_000)));
        // A 30 % chance per period: about 30 % of 10,000 periods stall, the same ones each
        // time, and a stalled period stalls for its whole length.
        let odd = Stall {
            chance_ppm: 300_000,
            ..rep
        };
        let stalled: Vec<u64> = (0..10_000)
            .filter(|i| odd.end_at(s(5000 + 10_000 * i)).is_some())
            .collect();
        assert!((2700..3300).contains(&stalled.len()), "{}", stalled.len());
        for i in stalled.iter().take(20) {
            assert_eq!(odd.end_at(s(5999 + 10_000 * i)), Some(s(6000 + 10_000 * i)));
        }
        assert!(
            stalled.windows(2).any(|w| w[1] == w[0] + 1),
            "runs of bursts happen"
        );
    }
}
