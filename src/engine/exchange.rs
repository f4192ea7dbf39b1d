//! One exchange on an open connection: send a request, read the whole response (parsing
//! event streams as they arrive: first token, gaps, token counts), and classify what went
//! wrong when it fails.
//!
//! What was measured is kept in `Progress` as it arrives, so a request that fails or times
//! out half-way keeps what it got.
//!
//! Used by `engine::slot` (the request loop).

use super::h1::{H1Conn, H1Error, RawHead, Wire};
use super::http2::{H2Error, H2Head, H2Stream};
use crate::outcome::{Cause, ErrorClass, ResponseMeta, StreamStats};
use crate::stream::{Event, SseParser, TokenRule};
use hyper::header::{HeaderName, CONTENT_TYPE, RETRY_AFTER};
use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::time::{Duration, Instant};

/// A response's headers (name, value) and body, for a script's `response()`.
pub type Collected = (Vec<(String, String)>, Vec<u8>);

/// What is known about one exchange so far; filled in as the response arrives, so a
/// request that fails or times out half-way keeps what was measured.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Response headers and body, collected only when a script's `response()` wants them.
    pub collected: Option<Collected>,
    /// When the response head arrived.
    pub first_byte: Option<Instant>,
    /// Its status.
    pub status: u16,
    /// Response bytes read (headers estimated, body exact).
    pub bytes: u64,
    /// Set for event streams.
    pub stream: Option<StreamStats>,
    /// Rate-limit hints and token usage read from the response.
    pub meta: ResponseMeta,
    /// The `--group-by-header` value: `Some(None)` when the response did not send it.
    pub group: Option<Option<hyper::header::HeaderValue>>,
    /// A JSON body kept to read its `usage` (`Inspect::usage`).
    usage_body: Option<Vec<u8>>,
}

/// How to read a response: which stream events are tokens, whether a script wants the
/// headers and body, and what else to read.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    /// When the kernel stamps receives, the arrival of the last bytes read on the
    /// connection (used from `since`, the send, on); else the time of reading.
    pub arrival: Option<&'a Cell<Option<Instant>>>,
    /// When the request was sent.
    pub since: Instant,
    /// Which event-stream events are tokens.
    pub rule: &'a TokenRule,
    /// Keep headers and body for a script's `response()`.
    pub collect: bool,
    /// What else to read.
    pub inspect: &'a Inspect,
}

/// What to read from responses beyond status, size and streams.
#[derive(Debug, Clone, Default)]
pub struct Inspect {
    /// `--group-by-header`.
    pub group_by: Option<hyper::header::HeaderName>,
    /// Read `usage` from JSON (non-streamed) answers: LLM runs (`--prompts`).
    pub usage: bool,
    /// `--tokenizer`: counts streamed content where the server sends no `usage`.
    pub tokenizer: Option<crate::tokens::Tokenizer>,
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// HTTP/1.1.
    H1(H1Error),
    /// HTTP/2: a stream or connection error.
    H2(H2Error),
    /// HTTP/2: no stream could be opened (the connection is gone or was told to go away).
    H2NotOpened(H2Error),
}

impl From<H1Error> for ExchangeError {
    fn from(e: H1Error) -> Self {
        ExchangeError::H1(e)
    }
}

/// Sends `wire` on `conn` and reads the whole response into `progress`; event streams are
/// parsed as they arrive, with each gap between content events passed to `on_gap`.
pub async fn exchange(
    conn: &mut H1Conn,
    wire: &Wire,
    how: Reader<'_>,
    progress: &mut Progress,
    on_gap: impl FnMut(Duration),
) -> Result<(), ExchangeError> {
    conn.send(&wire.bytes).await?;
    answer(conn, wire, how, progress, on_gap).await
}

/// The response to `wire`, which was sent some other way (the io_uring path).
pub async fn answer(
    conn: &mut H1Conn,
    wire: &Wire,
    how: Reader<'_>,
    progress: &mut Progress,
    on_gap: impl FnMut(Duration),
) -> Result<(), ExchangeError> {
    let (mut reading, framing) = conn
        .read_head(wire.head, |head| Reading::head(how, progress, on_gap, head))
        .await?;
    conn.read_body(framing, |data| reading.data(data)).await?;
    reading.finish();
    conn.finished(wire);
    Ok(())
}

/// A response head, however it was read: HTTP/1.1 straight from the bytes, HTTP/2 as
/// h2 decoded it.
pub trait Head {
    /// The status code.
    fn status(&self) -> u16;
    /// The first value of a header.
    fn header(&self, name: &HeaderName) -> Option<&[u8]>;
    /// Every header, in order.
    fn each(&self, f: &mut dyn FnMut(&str, &[u8]));
    /// Its size on the wire (HTTP/2: as HTTP/1.1 would send it).
    fn wire_len(&self) -> u64;
}

impl Head for RawHead<'_> {
    fn status(&self) -> u16 {
        self.status
    }
    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_str()))
            .map(|h| h.value)
    }
    fn each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        for h in self.headers {
            f(h.name, h.value);
        }
    }
    fn wire_len(&self) -> u64 {
        self.len as u64
    }
}

impl Head for H2Head {
    fn status(&self) -> u16 {
        self.status
    }
    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.get(name.as_str())
    }
    fn each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        for (k, v) in self.iter() {
            f(std::str::from_utf8(k).unwrap_or("?"), v);
        }
    }
    fn wire_len(&self) -> u64 {
        // Status line (~17) plus "name: value\r\n" each, plus the blank line.
        19 + self
            .iter()
            .map(|(k, v)| (k.len() + v.len() + 4) as u64)
            .sum::<u64>()
    }
}

/// Reads an HTTP/2 response (its request and body already on their way) into `progress`,
/// as `exchange` does. Dropping the future (a timeout) drops the stream, which resets it
/// (RST_STREAM CANCEL); the connection stays. With kernel stamps, `how.arrival` is this
/// stream's own: set, before each step, to the stamp of the read that carried its frame.
pub async fn read_h2(
    mut stream: H2Stream,
    how: Reader<'_>,
    progress: &mut Progress,
    on_gap: impl FnMut(Duration),
) -> Result<(), ExchangeError> {
    poll_fn(|cx| stream.poll_head(cx))
        .await
        .map_err(ExchangeError::H2)?;
    let mine = how.arrival;
    let stamp = |t: Option<Instant>| {
        if let Some(cell) = mine {
            cell.set(t);
        }
    };
    stamp(stream.stamp());
    let mut reading = stream.head(|head| Reading::head(how, progress, on_gap, head));
    while let Some(data) = poll_fn(|cx| stream.poll_data(cx)).await {
        let (data, at) = data.map_err(ExchangeError::H2)?;
        stamp(at);
        reading.data(&data);
    }
    stamp(stream.stamp());
    reading.finish();
    Ok(())
}

/// One response being read: its head taken into `Progress`, then its body (counted,
/// collected for a script, and parsed as an event stream when it is one).
struct Reading<'a, G> {
    arrival: Option<&'a Cell<Option<Instant>>>,
    since: Instant,
    rule: &'a TokenRule,
    tokenizer: Option<&'a crate::tokens::Tokenizer>,
    progress: &'a mut Progress,
    on_gap: G,
    sse: Option<SseParser>,
}

impl<'a, G: FnMut(Duration)> Reading<'a, G> {
    fn head(how: Reader<'a>, progress: &'a mut Progress, on_gap: G, resp: &impl Head) -> Self {
        let Reader {
            arrival,
            since,
            rule,
            collect,
            inspect,
        } = how;
        progress.first_byte = Some(arrived(arrival, since));
        progress.status = resp.status();
        read_meta(progress, resp, inspect);
        progress.bytes = resp.wire_len();
        let is_stream = resp
            .header(&CONTENT_TYPE)
            .is_some_and(|v| v.starts_with(b"text/event-stream"));
        if collect {
            let mut headers = Vec::new();
            resp.each(&mut |k, v| {
                headers.push((
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(v).into_owned(),
                ))
            });
            progress.collected = Some((headers, Vec::new()));
        }
        // Event streams are parsed as they arrive; other bodies are only counted (and
        // collected for a script's response()).
        let sse = is_stream.then(|| {
            progress.stream = Some(StreamStats::default());
            SseParser::new()
        });
        Reading {
            arrival,
            since,
            rule,
            tokenizer: inspect.tokenizer.as_ref(),
            progress,
            on_gap,
            sse,
        }
    }

    fn data(&mut self, data: &[u8]) {
        let Reading {
            arrival,
            since,
            rule,
            tokenizer,
            progress,
            on_gap,
            sse,
            ..
        } = self;
        progress.bytes += data.len() as u64;
        if let Some((_, b)) = progress.collected.as_mut() {
            b.extend_from_slice(data);
        }
        if let Some(b) = progress.usage_body.as_mut() {
            if b.len() < USAGE_BODY_MAX {
                b.extend_from_slice(data);
            }
        }
        if let (Some(parser), Some(stats)) = (sse.as_mut(), progress.stream.as_mut()) {
            // (Read the time only for event streams: it is their tokens' time.)
            let now = arrived(*arrival, *since);
            parser.feed(data, |d| {
                on_event((rule, *tokenizer), on_gap, d, stats, now)
            });
        }
    }

    fn finish(self) {
        let Reading {
            arrival,
            since,
            rule,
            tokenizer,
            progress,
            mut on_gap,
            sse,
        } = self;
        if let (Some(mut parser), Some(stats)) = (sse, progress.stream.as_mut()) {
            let now = arrived(arrival, since);
            parser.finish(|d| on_event((rule, tokenizer), &mut on_gap, d, stats, now));
        }
        if let Some(b) = progress.usage_body.take() {
            progress.meta.usage = json_usage(&b);
        }
    }
}

/// When the bytes just read arrived: the kernel's stamp when there is one from after the
/// send, else now.
pub fn arrived(arrival: Option<&Cell<Option<Instant>>>, since: Instant) -> Instant {
    arrival
        .and_then(Cell::get)
        .filter(|t| *t >= since)
        .unwrap_or_else(Instant::now)
}

/// The most of a JSON answer kept to read its `usage`.
const USAGE_BODY_MAX: usize = 1 << 20;

/// `usage.prompt_tokens` and `usage.completion_tokens` of a JSON answer (OpenAI's chat and
/// completions; the Responses API and Anthropic name them `input_tokens`, `output_tokens`).
fn json_usage(body: &[u8]) -> Option<(u64, u64)> {
    #[derive(serde::Deserialize)]
    struct Answer {
        usage: Option<Usage>,
    }
    #[derive(serde::Deserialize)]
    struct Usage {
        #[serde(default, alias = "input_tokens")]
        prompt_tokens: u64,
        #[serde(default, alias = "output_tokens")]
        completion_tokens: u64,
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    a.usage.map(|u| (u.prompt_tokens, u.completion_tokens))
}

/// Rate-limit headroom headers OpenAI-style gateways send.
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");

/// Reads what the response head says beyond the status: a 429's `Retry-After`, the
/// `x-ratelimit-remaining-requests`/`-tokens` hints, the
/// `--group-by-header` value.
fn read_meta(progress: &mut Progress, head: &impl Head, inspect: &Inspect) {
    let number = |name: &HeaderName| {
        head.header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if progress.status == 429 {
        progress.meta.retry_after = number(&RETRY_AFTER).map(Duration::from_secs_f64);
    }
    progress.meta.remaining = [
        number(&REMAINING_REQUESTS).map(|v| v as u64),
        number(&REMAINING_TOKENS).map(|v| v as u64),
    ];
    if let Some(name) = &inspect.group_by {
        progress.group = Some(
            head.header(name)
                .and_then(|v| hyper::header::HeaderValue::from_bytes(v).ok()),
        );
    }
    if inspect.usage
        && head
            .header(&CONTENT_TYPE)
            .is_some_and(|v| v.starts_with(b"application/json"))
    {
        progress.usage_body = Some(Vec::new());
    }
}

/// One event of a stream: a token (its gap from the last one), usage, or a malformed one.
fn on_event(
    (rule, tokenizer): (&TokenRule, Option<&crate::tokens::Tokenizer>),
    on_gap: &mut impl FnMut(Duration),
    data: &[u8],
    stats: &mut StreamStats,
    now: Instant,
) {
    let c = rule.classify_counted(data, tokenizer);
    let (event, usage, prompt) = (c.event, c.usage, c.prompt);
    if let (Some(t), Event::Content) = (tokenizer, event) {
        *stats.tokenized.get_or_insert(0) += c.tokens;
        stats.tokenizer = Some(t.name());
    }
    if usage.is_some() {
        stats.usage_tokens = usage;
    }
    if prompt.is_some() {
        stats.prompt_tokens = prompt;
    }
    match event {
        Event::Content => {
            if let Some(last) = stats.last_token {
                let gap = now.saturating_duration_since(last);
                stats.max_gap = stats.max_gap.max(gap);
                on_gap(gap);
            } else {
                stats.first_token = Some(now);
            }
            stats.last_token = Some(now);
            stats.content_events += 1;
        }
        Event::Malformed => stats.malformed = true,
        Event::Empty | Event::Done => {}
    }
}

/// The error class of a failed exchange.
pub fn classify(e: &ExchangeError) -> ErrorClass {
    match e {
        ExchangeError::H1(e) => classify_h1(e),
        ExchangeError::H2(e) | ExchangeError::H2NotOpened(e) => classify_h2(e),
    }
}

/// Why an exchange failed, for the report (beside its class).
pub fn cause(e: &ExchangeError) -> Cause {
    match e {
        ExchangeError::H1(e) => match e {
            H1Error::Parse(r) => Cause::Reason(r),
            H1Error::Write(io) | H1Error::Read(io) => Cause::Io(io.kind()),
            H1Error::Closed => Cause::Reason("closed before a complete response"),
        },
        ExchangeError::H2(e) | ExchangeError::H2NotOpened(e) => e.cause(),
    }
}

/// An HTTP/2 error's class: the server resetting the stream, refusing it in a GOAWAY or
/// breaking the protocol is a protocol error; a broken connection is a read or write error.
fn classify_h2(e: &H2Error) -> ErrorClass {
    match e {
        H2Error::Read(_) | H2Error::Silent => ErrorClass::Read,
        H2Error::Write(_) => ErrorClass::Write,
        H2Error::Reset(_) | H2Error::GoAway(_) | H2Error::Protocol(_) | H2Error::Stream(_) => {
            ErrorClass::Protocol
        }
    }
}

/// An HTTP/1.1 error's class: a response that is not HTTP is a protocol error; a broken
/// or closed connection, a read or write error.
fn classify_h1(e: &H1Error) -> ErrorClass {
    match e {
        H1Error::Parse(_) => ErrorClass::Protocol,
        H1Error::Write(_) => ErrorClass::Write,
        H1Error::Closed => ErrorClass::Read,
        H1Error::Read(io) => match io.kind() {
            io::ErrorKind::InvalidData => ErrorClass::Protocol,
            _ => ErrorClass::Read,
        },
    }
}
