//! The accounting vocabulary: how one scheduled request ended.
//!
//! Every scheduled request ends in exactly one bucket — completed (any HTTP status), one
//! `ErrorClass`, or unfinished (still queued or in flight when the grace period ended) —
//! which is what lets the report show `scheduled = completed + errors + unfinished`.
//!
//! Produced by `engine::conn`/`engine::worker`, consumed by `record::Recorder`.

use std::time::Instant;

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
    pub stream: Option<crate::engine::conn::StreamStats>,
}
