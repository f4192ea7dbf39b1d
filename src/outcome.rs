//! The accounting vocabulary: how one scheduled request ended.
//!
//! Every scheduled request ends in exactly one bucket — completed (any HTTP status), one
//! `ErrorClass`, or unfinished (still queued or in flight when the grace period ended) —
//! which is what lets the report show `scheduled = completed + errors + unfinished`.
//!
//! A leaf below the engine: the engine produces outcomes, the recorder counts them, the
//! reports read the counts, and none of those needs to import the engine to do so.
//!
//! Produced by `engine::exchange`/`engine::slot`, consumed by `record::Recorder`.

use std::time::{Duration, Instant};

/// Why a request failed; each class has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The TCP connection (or TLS handshake) could not be opened.
    Connect,
    /// Reading the response failed: reset, or closed before the response was complete.
    Read,
    /// Writing the request failed.
    Write,
    /// No complete response within `--timeout` of sending.
    Timeout,
    /// The server sent bytes that are not valid HTTP/1.1.
    Protocol,
    /// The Lua script's `request()` or `response()` failed for this request.
    Script,
}

impl ErrorClass {
    /// Every class, in report order.
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Connect,
        ErrorClass::Read,
        ErrorClass::Write,
        ErrorClass::Timeout,
        ErrorClass::Protocol,
        ErrorClass::Script,
    ];

    /// The class's index in `ALL` (for counter arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Read => "read",
            ErrorClass::Write => "write",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Protocol => "protocol",
            ErrorClass::Script => "script",
        }
    }
}

/// How one request ended, with its timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// When the schedule said it should be sent.
    pub intended: Instant,
    /// When it was actually written (None if it never got that far).
    pub sent: Option<Instant>,
    /// Whether a connection was free when it became due (so `sent - intended` is the
    /// generator's own send lag, not time spent waiting for a busy connection).
    pub conn_was_free: bool,
    /// When it completed or was abandoned.
    pub done: Instant,
    /// The HTTP status, or the error class.
    pub result: Result<u16, ErrorClass>,
    /// Response bytes read (headers estimated, body exact).
    pub bytes: u64,
    /// When the response head arrived, if it did.
    pub first_byte: Option<Instant>,
    /// For `text/event-stream` responses: what the stream carried (kept when the request
    /// later failed, as far as it got).
    pub stream: Option<StreamStats>,
    /// Its tag, and what its response said about limits, upstream and usage.
    pub meta: ResponseMeta,
    /// Why it failed, beyond its class (None for completed requests, and where nothing
    /// more is known).
    pub cause: Option<Cause>,
}

/// Why a request failed, beyond its class: an HTTP/2 error code with the frame that
/// carried it, an I/O error, or a short reason (a parse error, a rule of the protocol the
/// server broke). Copied into every outcome, so it holds no heap data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// HTTP/2 RST_STREAM with this error code.
    Reset(u32),
    /// HTTP/2 GOAWAY with this error code (the stream was not processed, or the connection
    /// could take no new stream).
    GoAway(u32),
    /// An I/O error of this kind (connection reset, refused, broken pipe, ...).
    Io(std::io::ErrorKind),
    /// A short reason.
    Reason(&'static str),
}

impl Cause {
    /// How the report names it: `RST_STREAM INTERNAL_ERROR`, `connection reset`, ...
    pub fn describe(&self) -> String {
        match self {
            Cause::Reset(code) => format!("RST_STREAM {}", h2_code_name(*code)),
            Cause::GoAway(code) => format!("GOAWAY {}", h2_code_name(*code)),
            Cause::Io(kind) => io_kind_name(*kind),
            Cause::Reason(r) => (*r).to_string(),
        }
    }
}

/// Why a request was sent again: the server provably never processed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// HTTP/2: the stream was above the last stream id of the server's GOAWAY.
    GoAway,
    /// HTTP/2: the server reset the stream with REFUSED_STREAM.
    RefusedStream,
    /// HTTP/1.1: a reused connection was closed before a byte of the answer came (the
    /// keep-alive race).
    ClosedOnReuse,
}

impl Retry {
    /// Every cause, in report order.
    pub const ALL: [Retry; 3] = [Retry::GoAway, Retry::RefusedStream, Retry::ClosedOnReuse];

    /// Its index in `ALL` (for counter arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// How the text report names it.
    pub fn name(self) -> &'static str {
        match self {
            Retry::GoAway => "GOAWAY",
            Retry::RefusedStream => "REFUSED_STREAM",
            Retry::ClosedOnReuse => "closed on reuse",
        }
    }
}

/// An HTTP/2 error code by its RFC 9113 §7 name (unknown codes in hex).
pub fn h2_code_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    match NAMES.get(code as usize) {
        Some(n) => (*n).to_string(),
        None => format!("0x{code:x}"),
    }
}

/// An I/O error kind as a short phrase.
fn io_kind_name(kind: std::io::ErrorKind) -> String {
    use std::io::ErrorKind as K;
    match kind {
        K::ConnectionReset => "connection reset".into(),
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::BrokenPipe => "broken pipe".into(),
        K::UnexpectedEof => "closed early".into(),
        K::TimedOut => "timed out".into(),
        K::AddrNotAvailable => "no local port free".into(),
        K::NotConnected => "not connected".into(),
        k => {
            // ErrorKind's Display ("entity not found") is already a phrase.
            k.to_string()
        }
    }
}

/// Which tag a request carried, and what its response's head and body said beyond the
/// status: rate-limit hints, the `--group-by-header` value, token usage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResponseMeta {
    /// The request's tag (an index into the recorder's tags).
    pub tag: u16,
    /// The `--group-by-header` value's index in the recorder's groups.
    pub group: Option<u16>,
    /// `Retry-After` of a 429 (seconds, or an HTTP date converted), when sent.
    pub retry_after: Option<Duration>,
    /// `x-ratelimit-remaining-requests` and `x-ratelimit-remaining-tokens`, when sent.
    pub remaining: [Option<u64>; 2],
    /// `usage.prompt_tokens` and `usage.completion_tokens` of a JSON (non-streamed) answer.
    pub usage: Option<(u64, u64)>,
    /// The prompt's tokens by the run's tokenizer, as sent (`--prompts`, `--input-tokens`).
    pub input_tokens: Option<u64>,
}

/// What a `text/event-stream` response carried, measured as it arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamStats {
    /// When the first content event arrived.
    pub first_token: Option<Instant>,
    /// When the last content event arrived.
    pub last_token: Option<Instant>,
    /// Content events seen.
    pub content_events: u64,
    /// `usage.completion_tokens` from the stream, if it sent one.
    pub usage_tokens: Option<u64>,
    /// The content texts' tokens by the run's tokenizer (None without one).
    pub tokenized: Option<u64>,
    /// That tokenizer's name.
    pub tokenizer: Option<&'static str>,
    /// `usage.prompt_tokens` from the stream, if it sent one.
    pub prompt_tokens: Option<u64>,
    /// The longest gap between two content events.
    pub max_gap: Duration,
    /// An event the token rule could not read (the stream is then a protocol error).
    pub malformed: bool,
}

impl StreamStats {
    /// Output tokens: the server's own count when it sent one, else the tokenizer's, else
    /// content events (`--tokenizer none`).
    pub fn tokens(&self) -> u64 {
        self.usage_tokens
            .or(self.tokenized)
            .unwrap_or(self.content_events)
    }
}
