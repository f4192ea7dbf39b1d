//! HTTP/2 on one connection, spoken directly (RFC 9113): the streams of a connection share
//! it through `H2Conn`, a task of its own (`drive`) reads and writes the socket, and each
//! request is one `H2Stream`.
//!
//! A request's header block is encoded once per template (HPACK literals without indexing:
//! no encoder state, so every request's block is the same bytes) and goes out as one
//! HEADERS frame with only its stream id filled in; its body as DATA frames within the
//! server's flow-control windows. Responses are read frame by frame: header blocks decoded
//! with HPACK (the server's dynamic table, Huffman strings) into the stream's own reused
//! buffer, DATA handed on without a copy, and the receive windows credited back as data
//! arrives, in batches (a load generator reads everything at once: flow control never paces
//! a response).
//!
//! Why not the `h2` crate's client: per request it builds a `Request` and its `HeaderMap`,
//! encodes the head with HPACK again, stores the stream in a slab behind a mutex, and
//! decodes the response into a `HeaderMap` — at 120k req/s on one core the h2 crate,
//! header maps and their allocations were about half of the generator's CPU (README,
//! performance). `serve --http2` still uses hyper (and so h2) as the server.
//!
//! Handled: SETTINGS (the server's stream limit, initial window and frame size; ACKed),
//! PING (answered), WINDOW_UPDATE, RST_STREAM (the stream fails; the connection stays),
//! GOAWAY (streams above its last id fail at once, those below finish; no new streams),
//! CONTINUATION, padding, trailers (read and ignored), interim 1xx heads (skipped).
//! A dropped stream that had not ended is reset (RST_STREAM CANCEL).
//!
//! Used by `engine::conn` (opening) and `engine::slot` / `engine::exchange` (requests).

use super::stamp::Arrival;
use super::tls::Stream;
use crate::outcome::{h2_code_name, Cause};
use bytes::{Buf, Bytes, BytesMut};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Frame types (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

// Flags.
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// RST_STREAM's code for a stream let go of (§7).
const CANCEL: u32 = 0x8;
/// The error code of a stream the server refused before processing it (§8.7).
pub const REFUSED_STREAM: u32 = 0x7;
/// Error codes this client resets streams with.
const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const STREAM_CLOSED: u32 = 0x5;

/// The receive window of each stream, announced in SETTINGS: wide enough that no
/// response waits for a WINDOW_UPDATE.
const STREAM_WINDOW: u32 = 1 << 20;
/// The connection's receive window (raised from the default 65,535 right after SETTINGS).
const CONN_WINDOW: u32 = 16 << 20;
/// The largest frame accepted (the default SETTINGS_MAX_FRAME_SIZE is 16 KiB; a server
/// must not send more unless told, and this client does not tell it).
const FRAME_MAX: usize = 16 << 10;
/// The most a response's header block may take, and the most its decoded header list may
/// (SETTINGS_MAX_HEADER_LIST_SIZE: names, values and 32 bytes per field, RFC 9113 §6.5.2).
const HEAD_MAX: usize = 256 << 10;
/// A stream's head buffer that grew past this for one response is let go of when the
/// stream is reused.
const HEAD_KEEP: usize = 16 << 10;
/// How much of the read buffer to have free before each read.
const READ_CHUNK: usize = 32 << 10;

/// Why an HTTP/2 exchange or connection failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum H2Error {
    /// Reading from the connection failed, or it closed (`UnexpectedEof`).
    #[error("reading failed: {}", Cause::Io(*.0).describe())]
    Read(std::io::ErrorKind),
    /// Writing to the connection failed.
    #[error("writing failed: {}", Cause::Io(*.0).describe())]
    Write(std::io::ErrorKind),
    /// The server reset the stream (RST_STREAM with this error code).
    #[error("the server reset the stream ({})", h2_code_name(*.0))]
    Reset(u32),
    /// The server sent GOAWAY: the stream was above its last one (not processed), or the
    /// connection can take no new streams.
    #[error("the server sent GOAWAY ({})", h2_code_name(*.0))]
    GoAway(u32),
    /// The server broke the protocol (a connection error: the connection is dropped).
    #[error("HTTP/2 protocol error from the server: {0}")]
    Protocol(&'static str),
    /// The server broke the protocol on one stream (the stream is reset; the connection
    /// stays).
    #[error("HTTP/2 protocol error from the server on a stream: {0}")]
    Stream(&'static str),
    /// A connection silent through a stream's timeout did not answer a PING in time: it is
    /// gone (a load balancer dropped it), and its streams with it.
    #[error("the connection did not answer a PING")]
    Silent,
}

impl H2Error {
    /// The connection is gone or going (I/O, GOAWAY, protocol): no new streams on it.
    pub fn ends_connection(&self) -> bool {
        !matches!(self, H2Error::Reset(_) | H2Error::Stream(_))
    }

    /// Why, for the report.
    pub fn cause(&self) -> Cause {
        match self {
            H2Error::Read(k) | H2Error::Write(k) => Cause::Io(*k),
            H2Error::Reset(c) => Cause::Reset(*c),
            H2Error::GoAway(c) => Cause::GoAway(*c),
            H2Error::Protocol(r) | H2Error::Stream(r) => Cause::Reason(r),
            H2Error::Silent => Cause::Reason("no answer to PING"),
        }
    }
}

/// A request as HTTP/2 sends it: its HPACK header block and its body.
#[derive(Debug, Clone)]
pub struct H2Request {
    /// The header block (pseudo-headers first), encoded without indexing.
    pub block: Bytes,
    /// The body (empty: none).
    pub body: Bytes,
    /// A HEAD request: its answer's content-length describes no DATA.
    pub head: bool,
}

/// Encodes a request head as an HPACK header block: literals without indexing (names
/// from the static table where it has them), no Huffman — any server decodes them, and
/// the block is the same bytes every time.
pub fn encode_head(head: &hyper::Request<()>, content_length: Option<usize>) -> Bytes {
    let uri = head.uri();
    let mut out = Vec::with_capacity(64 + head.headers().len() * 32);
    match head.method().as_str() {
        "GET" => out.push(0x82),
        "POST" => out.push(0x83),
        m => literal_indexed_name(&mut out, 2, m.as_bytes()),
    }
    match uri.scheme_str() {
        Some("https") => out.push(0x87),
        Some(s) if s != "http" => literal_indexed_name(&mut out, 6, s.as_bytes()),
        _ => out.push(0x86),
    }
    if let Some(a) = uri.authority() {
        literal_indexed_name(&mut out, 1, a.as_str().as_bytes());
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    if path == "/" {
        out.push(0x84);
    } else {
        literal_indexed_name(&mut out, 4, path.as_bytes());
    }
    for (name, value) in head.headers() {
        literal(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(n) = content_length {
        append_content_length(&mut out, n);
    }
    out.into()
}

/// Appends `content-length: n` to a header block.
pub fn append_content_length(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    literal_indexed_name(out, 28, &digits[at..]);
}

/// A literal header field without indexing whose name is static table entry `index`.
fn literal_indexed_name(out: &mut Vec<u8>, index: usize, value: &[u8]) {
    integer(out, 4, 0x00, index);
    string(out, value);
}

/// A literal header field without indexing, with a new name.
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    string(out, name);
    string(out, value);
}

/// An HPACK string literal, not Huffman-coded.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 7, 0x00, s.len());
    out.extend_from_slice(s);
}

/// An HPACK integer with an `n`-bit prefix, the first byte's other bits `flags` (RFC 7541
/// §5.1).
fn integer(out: &mut Vec<u8>, n: u8, flags: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

/// Writes a frame header.
fn frame_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// A response head as decoded: its status and headers (names lower-case, as HTTP/2
/// sends them), kept in one reused buffer.
#[derive(Default)]
pub struct H2Head {
    /// The status code (0 until the final head arrived).
    pub status: u16,
    /// Names and values, back to back.
    text: Vec<u8>,
    /// Each header: where its name starts, where its value starts, where it ends.
    spans: Vec<[u32; 3]>,
}

impl H2Head {
    fn clear(&mut self) {
        self.status = 0;
        self.text.clear();
        self.spans.clear();
    }

    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|&[n, v, e]| {
            (
                &self.text[n as usize..v as usize],
                &self.text[v as usize..e as usize],
            )
        })
    }

    /// The first value of the header `name` (lower-case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }
}

/// One stream's state, kept by the connection for as long as its `H2Stream` lives.
#[derive(Default)]
struct StreamState {
    id: u32,
    waker: Option<Waker>,
    head: H2Head,
    /// Body bytes not yet taken by the stream's reader, each with the kernel's stamp of
    /// the read that carried it.
    data: std::collections::VecDeque<(Bytes, Option<Instant>)>,
    /// The kernel's stamp of the read that carried the final head, then of the one that
    /// carried END_STREAM: this stream's own times, not the connection's latest read.
    stamp: Option<Instant>,
    /// The request was HEAD (its answer's content-length counts no DATA).
    head_request: bool,
    /// The final head's content-length.
    expected: Option<u64>,
    /// DATA bytes received (padding excluded).
    received: u64,
    /// The server ended the stream (END_STREAM).
    ended: bool,
    /// Our side ended it (the whole body sent).
    sent_all: bool,
    error: Option<H2Error>,
    /// What the server lets us send on it.
    send_window: i64,
    /// Body not yet sent (waiting for window).
    pending: Bytes,
    /// Bytes received and not yet credited back.
    uncredited: u32,
}

impl StreamState {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The state of one connection, shared by its streams and its driver.
struct Inner {
    /// When the kernel stamps receives: the arrival of the last bytes read.
    arrival: Option<Arrival>,
    /// Frames read since the connection opened (a PING can tell a silent connection).
    frames_read: u64,
    /// The payload of a PING sent to check the connection, and whether its ACK came.
    ping: Option<([u8; 8], bool)>,
    /// Frames to write.
    out: Vec<u8>,
    /// The driver's waker (it writes `out`).
    driver: Option<Waker>,
    streams: Vec<StreamState>,
    /// Unused entries of `streams`.
    free: Vec<usize>,
    /// Stream id → entry.
    ids: HashMap<u32, usize, IdHash>,
    next_id: u32,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (`usize::MAX` when it set none).
    max_streams: usize,
    /// The server's SETTINGS_INITIAL_WINDOW_SIZE: each new stream's send window.
    initial_window: i64,
    /// The connection's send window.
    send_window: i64,
    /// The server's SETTINGS_MAX_FRAME_SIZE.
    max_frame: usize,
    /// Connection-level bytes received and not yet credited back.
    uncredited: u32,
    decoder: Hpack,
    /// A header block still arriving in CONTINUATION frames: stream, END_STREAM, bytes.
    partial: Option<(u32, bool, Vec<u8>)>,
    /// The error code of the server's GOAWAY (or 0 once this client ran out of stream
    /// ids): no new streams.
    goaway: Option<u32>,
    /// The connection ended with this error (or cleanly after GOAWAY).
    ended: Option<H2Error>,
    /// Streams with body waiting for window.
    blocked: Vec<usize>,
    /// Frames were written and not yet flushed out of the TLS layer.
    unflushed: bool,
    /// Requests waiting for the server's stream limit to leave room for one more.
    room: Vec<Waker>,
}

/// A hasher for stream ids (already unique small integers: no need for SipHash).
#[derive(Default, Clone, Copy)]
struct IdHash(u64);

impl std::hash::Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u32(&mut self, n: u32) {
        // Spread the odd ids over the buckets.
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHash;
    fn build_hasher(&self) -> IdHash {
        IdHash(0)
    }
}

impl Inner {
    /// A connection's state before the server's SETTINGS: `out` holds what is to be
    /// written first (the preface and our SETTINGS).
    fn new(arrival: Option<Arrival>, out: Vec<u8>) -> Inner {
        Inner {
            arrival,
            frames_read: 0,
            ping: None,
            out,
            driver: None,
            streams: Vec::new(),
            free: Vec::new(),
            ids: HashMap::with_hasher(IdHash(0)),
            next_id: 1,
            max_streams: usize::MAX,
            initial_window: 65_535,
            send_window: 65_535,
            max_frame: 16_384,
            uncredited: 0,
            decoder: Hpack::new(),
            partial: None,
            goaway: None,
            ended: None,
            blocked: Vec::new(),
            unflushed: false,
            room: Vec::new(),
        }
    }

    /// Opens a stream with an empty GET, for tests of the frame reader.
    #[cfg(test)]
    fn open_for_test(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        self.streams.push(StreamState {
            id,
            send_window: self.initial_window,
            sent_all: true,
            ..StreamState::default()
        });
        self.ids.insert(id, self.streams.len() - 1);
        id
    }

    fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }

    fn open_streams(&self) -> usize {
        self.streams.len() - self.free.len()
    }

    /// A stream ended, the limit rose, or the connection can take no more: those waiting
    /// for room look again.
    fn wake_room(&mut self) {
        for w in self.room.drain(..) {
            w.wake();
        }
    }

    /// Ends the connection: every stream still waiting gets `e`.
    fn fail(&mut self, e: H2Error) {
        for s in &mut self.streams {
            if s.id != 0 && !s.ended && s.error.is_none() {
                s.error = Some(e.clone());
                s.wake();
            }
        }
        if self.ended.is_none() {
            self.ended = Some(e);
        }
        self.wake_room();
    }

    fn rst(&mut self, id: u32, code: u32) {
        frame_head(&mut self.out, 4, RST_STREAM, 0, id);
        self.out.extend_from_slice(&code.to_be_bytes());
    }

    fn window_update(&mut self, id: u32, n: u32) {
        frame_head(&mut self.out, 4, WINDOW_UPDATE, 0, id);
        self.out.extend_from_slice(&n.to_be_bytes());
    }

    /// Sends as much of stream `key`'s pending body as the windows allow.
    fn send_body(&mut self, key: usize) {
        let max_frame = self.max_frame;
        loop {
            let s = &mut self.streams[key];
            if s.pending.is_empty() {
                return;
            }
            let room = s.send_window.min(self.send_window).min(max_frame as i64);
            if room <= 0 {
                if !self.blocked.contains(&key) {
                    self.blocked.push(key);
                }
                return;
            }
            let n = (room as usize).min(s.pending.len());
            let chunk = s.pending.split_to(n);
            let last = s.pending.is_empty();
            s.send_window -= n as i64;
            s.sent_all = last;
            let id = s.id;
            self.send_window -= n as i64;
            frame_head(
                &mut self.out,
                n,
                DATA,
                if last { END_STREAM } else { 0 },
                id,
            );
            self.out.extend_from_slice(&chunk);
        }
    }

    /// Windows grew: send what waited for them.
    fn unblock(&mut self) {
        for key in std::mem::take(&mut self.blocked) {
            if self.streams[key].id != 0 {
                self.send_body(key);
            }
        }
    }

    /// Handles one whole frame; an `Err` is a connection error.
    fn frame(&mut self, kind: u8, flags: u8, id: u32, mut payload: Bytes) -> Result<(), H2Error> {
        if let Some((pid, _, _)) = &self.partial {
            if kind != CONTINUATION || id != *pid {
                return Err(protocol("a header block was interrupted"));
            }
        }
        match kind {
            DATA => {
                let len = payload.len() as u32;
                let body = unpad(flags, &mut payload)?;
                self.uncredited += len;
                if self.uncredited >= CONN_WINDOW / 2 {
                    let n = std::mem::take(&mut self.uncredited);
                    self.window_update(0, n);
                }
                let Some(&key) = self.ids.get(&id) else {
                    return Ok(()); // a stream already let go of (reset, timed out)
                };
                let stamp = self.stamp();
                let s = &mut self.streams[key];
                if s.ended || s.error.is_some() {
                    // DATA after END_STREAM (or on a stream already failed): a stream error
                    // (RFC 9113 §5.1, STREAM_CLOSED), not more bytes of the response.
                    if s.error.is_none() {
                        s.error = Some(H2Error::Stream("DATA after END_STREAM"));
                        s.wake();
                        self.rst(id, STREAM_CLOSED);
                    }
                    return Ok(());
                }
                if s.head.status == 0 {
                    s.error = Some(H2Error::Stream("DATA before the response head"));
                    s.wake();
                    self.stream_error(key, PROTOCOL_ERROR);
                    return Ok(());
                }
                s.received += body.len() as u64;
                if !body.is_empty() {
                    s.data.push_back((body, stamp));
                }
                s.uncredited += len;
                let end = flags & END_STREAM != 0;
                if end {
                    s.ended = true;
                    s.stamp = stamp;
                    // A content-length the DATA does not match: a truncated (or padded)
                    // body is malformed (RFC 9113 §8.1.1), not a complete response.
                    let bodiless = s.head_request || matches!(s.head.status, 204 | 304);
                    if !bodiless && s.expected.is_some_and(|n| n != s.received) {
                        s.error = Some(H2Error::Stream("a content-length the DATA does not match"));
                    }
                } else if s.received > s.expected.unwrap_or(u64::MAX) && !s.head_request {
                    s.error = Some(H2Error::Stream("a content-length the DATA does not match"));
                    s.wake();
                    self.stream_error(key, PROTOCOL_ERROR);
                    return Ok(());
                } else if s.uncredited >= STREAM_WINDOW / 2 {
                    let n = std::mem::take(&mut s.uncredited);
                    self.window_update(id, n);
                }
                self.streams[key].wake();
            }
            HEADERS => {
                let mut block = unpad(flags, &mut payload)?;
                if flags & PRIORITY != 0 {
                    if block.len() < 5 {
                        return Err(protocol("a short HEADERS frame"));
                    }
                    block.advance(5);
                }
                let end = flags & END_STREAM != 0;
                if flags & END_HEADERS == 0 {
                    self.partial = Some((id, end, block.to_vec()));
                } else {
                    self.headers(id, end, &block)?;
                }
            }
            CONTINUATION => {
                let Some((pid, end, mut block)) = self.partial.take() else {
                    return Err(protocol("CONTINUATION without HEADERS"));
                };
                block.extend_from_slice(&payload);
                if block.len() > HEAD_MAX {
                    return Err(protocol("a response head over 256 KiB"));
                }
                if flags & END_HEADERS == 0 {
                    self.partial = Some((pid, end, block));
                } else {
                    self.headers(pid, end, &block)?;
                }
            }
            RST_STREAM => {
                if payload.len() != 4 {
                    return Err(protocol("RST_STREAM of the wrong size"));
                }
                if let Some(&key) = self.ids.get(&id) {
                    let s = &mut self.streams[key];
                    if !s.ended {
                        s.error = Some(H2Error::Reset(payload.get_u32()));
                        s.wake();
                    }
                    s.pending = Bytes::new();
                    s.sent_all = true;
                }
            }
            SETTINGS if flags & ACK == 0 => {
                self.settings(&payload)?;
                frame_head(&mut self.out, 0, SETTINGS, ACK, 0);
            }
            PING => {
                if payload.len() != 8 {
                    return Err(protocol("PING of the wrong size"));
                }
                if flags & ACK == 0 {
                    frame_head(&mut self.out, 8, PING, ACK, 0);
                    self.out.extend_from_slice(&payload);
                } else if let Some((sent, answered)) = &mut self.ping {
                    *answered |= payload[..] == sent[..];
                }
            }
            GOAWAY => {
                if payload.len() < 8 {
                    return Err(protocol("GOAWAY too short"));
                }
                let last = payload.get_u32() & 0x7fff_ffff;
                let code = payload.get_u32();
                self.goaway = Some(code);
                self.wake_room();
                // Streams above `last` were not processed and never will be.
                for s in &mut self.streams {
                    if s.id > last && !s.ended && s.error.is_none() {
                        s.error = Some(H2Error::GoAway(code));
                        s.wake();
                    }
                }
            }
            WINDOW_UPDATE => {
                if payload.len() != 4 {
                    return Err(protocol("WINDOW_UPDATE of the wrong size"));
                }
                let n = (payload.get_u32() & 0x7fff_ffff) as i64;
                if id == 0 {
                    if n == 0 {
                        return Err(protocol("a WINDOW_UPDATE of 0"));
                    }
                    self.send_window += n;
                    if self.send_window > i32::MAX as i64 {
                        return Err(protocol("window over 2^31-1"));
                    }
                } else if let Some(&key) = self.ids.get(&id) {
                    // A stream's own flow-control faults are that stream's errors (§6.9).
                    let s = &mut self.streams[key];
                    let fault = if n == 0 {
                        Some(("a WINDOW_UPDATE of 0", PROTOCOL_ERROR))
                    } else if s.send_window + n > i32::MAX as i64 {
                        Some(("a stream window over 2^31-1", FLOW_CONTROL_ERROR))
                    } else {
                        s.send_window += n;
                        None
                    };
                    if let Some((why, code)) = fault {
                        if s.error.is_none() {
                            s.error = Some(H2Error::Stream(why));
                            s.wake();
                            self.stream_error(key, code);
                        }
                    }
                }
                self.unblock();
            }
            PUSH_PROMISE => {
                return Err(protocol("PUSH_PROMISE, though push is off"));
            }
            _ => {} // PRIORITY and unknown types are ignored (§5.5).
        }
        Ok(())
    }

    fn settings(&mut self, mut p: &[u8]) -> Result<(), H2Error> {
        if !p.len().is_multiple_of(6) {
            return Err(protocol("SETTINGS of the wrong size"));
        }
        while p.len() >= 6 {
            let key = u16::from_be_bytes([p[0], p[1]]);
            let value = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
            p = &p[6..];
            match key {
                0x3 => {
                    // Honoured at once, also when lowered (even to 0: no new stream until it
                    // rises); streams already open finish.
                    let raised = value as usize > self.max_streams;
                    self.max_streams = value as usize;
                    if raised {
                        self.wake_room();
                    }
                }
                0x4 => {
                    if value > i32::MAX as u32 {
                        return Err(protocol("initial window over 2^31-1"));
                    }
                    let delta = value as i64 - self.initial_window;
                    self.initial_window = value as i64;
                    for s in &mut self.streams {
                        s.send_window += delta;
                    }
                    self.unblock();
                }
                0x5 => {
                    if !(16_384..=16_777_215).contains(&value) {
                        return Err(protocol("a bad SETTINGS_MAX_FRAME_SIZE"));
                    }
                    self.max_frame = value as usize;
                }
                _ => {} // HEADER_TABLE_SIZE: this encoder keeps no table; others unused.
            }
        }
        Ok(())
    }

    /// A whole header block for stream `id`: its response head, an interim one, or
    /// trailers. Decoded whatever the stream (the HPACK table must stay in step); what it
    /// says wrong is a stream error (the stream is reset, the connection stays): a
    /// `:status` that is not three digits of a final or interim status (`2000`, `abc`,
    /// `99`, `101` — HTTP/2 has no upgrade), twice, or with other pseudo-headers; an
    /// interim head that ends the stream; a list over SETTINGS_MAX_HEADER_LIST_SIZE.
    fn headers(&mut self, id: u32, end: bool, block: &[u8]) -> Result<(), H2Error> {
        let key = self.ids.get(&id).copied();
        let mut scratch = H2Head::default();
        let trailers = key.is_some_and(|k| self.streams[k].head.status != 0);
        let head = match key {
            Some(k) if !trailers => &mut self.streams[k].head,
            _ => &mut scratch, // trailers, or a stream let go of
        };
        head.clear();
        let mut bad: Option<&'static str> = None;
        let mut size = 0usize;
        let mut statuses = 0;
        let mut regular = false;
        self.decoder
            .decode(block, |name, value| {
                size += name.len() + value.len() + 32;
                if size > HEAD_MAX {
                    bad.get_or_insert("a header list over 256 KiB");
                    return;
                }
                if name.first() == Some(&b':') {
                    if name != b":status" || trailers {
                        bad.get_or_insert("a request pseudo-header in a response");
                    } else if regular {
                        bad.get_or_insert("a pseudo-header after a regular one");
                    }
                    statuses += 1;
                    head.status = parse_status(value).unwrap_or_else(|| {
                        bad.get_or_insert("a malformed :status");
                        0
                    });
                    return;
                }
                regular = true;
                let n = head.text.len() as u32;
                head.text.extend_from_slice(name);
                let v = head.text.len() as u32;
                head.text.extend_from_slice(value);
                head.spans.push([n, v, head.text.len() as u32]);
            })
            .map_err(protocol)?;
        self.decoder.shrink();
        let Some(key) = key else { return Ok(()) };
        if trailers {
            if end {
                let stamp = self.stamp();
                let s = &mut self.streams[key];
                s.ended = true;
                s.stamp = stamp;
                let bodiless = s.head_request || matches!(s.head.status, 204 | 304);
                if !bodiless && s.expected.is_some_and(|n| n != s.received) {
                    s.error = Some(H2Error::Stream("a content-length the DATA does not match"));
                }
                s.wake();
            } else {
                self.streams[key].error = Some(H2Error::Stream("trailers without END_STREAM"));
                self.streams[key].wake();
                self.stream_error(key, PROTOCOL_ERROR);
            }
            return Ok(());
        }
        let status = self.streams[key].head.status;
        if bad.is_none() && statuses != 1 {
            bad = Some(if statuses == 0 {
                "a response head without :status"
            } else {
                "a response head with two :status"
            });
        }
        let interim = (100..200).contains(&status);
        if bad.is_none() && interim && end {
            bad = Some("an interim (1xx) head that ends the stream");
        }
        if let Some(why) = bad {
            let s = &mut self.streams[key];
            s.head.clear();
            s.error = Some(H2Error::Stream(why));
            s.wake();
            self.stream_error(key, PROTOCOL_ERROR);
            return Ok(());
        }
        let stamp = self.stamp();
        let s = &mut self.streams[key];
        if interim {
            s.head.clear(); // interim (1xx): the real head follows
            return Ok(());
        }
        s.stamp = stamp;
        s.expected = None;
        if let Some(v) = s.head.get("content-length") {
            match parse_length(v) {
                Some(n) => s.expected = Some(n),
                None => {
                    s.error = Some(H2Error::Stream("a malformed content-length"));
                    s.wake();
                    self.stream_error(key, PROTOCOL_ERROR);
                    return Ok(());
                }
            }
        }
        if end {
            s.ended = true;
            let bodiless = s.head_request || matches!(status, 204 | 304);
            if !bodiless && s.expected.is_some_and(|n| n != 0) {
                s.error = Some(H2Error::Stream("a content-length the DATA does not match"));
            }
        }
        s.wake();
        Ok(())
    }

    /// The kernel's stamp of the read being handled (None without kernel stamps).
    fn stamp(&self) -> Option<Instant> {
        self.arrival.as_ref().and_then(|a| a.get())
    }

    /// Stream `key` broke the protocol: it is reset (RST_STREAM `code`), its body no
    /// longer sent; the connection stays.
    fn stream_error(&mut self, key: usize, code: u32) {
        let s = &mut self.streams[key];
        s.pending = Bytes::new();
        s.sent_all = true;
        s.ended = true;
        let id = s.id;
        self.rst(id, code);
    }
}

/// A `:status` value: exactly three digits, 100–599 (1xx interim, the rest final); 101 is
/// not one in HTTP/2, which has no upgrade (RFC 9113 §8.6).
fn parse_status(v: &[u8]) -> Option<u16> {
    if v.len() != 3 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = v.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    ((100..600).contains(&n) && n != 101).then_some(n)
}

/// A content-length value: digits only (a list of one value repeated, `100, 100`, is that
/// value, as in HTTP/1.1).
fn parse_length(v: &[u8]) -> Option<u64> {
    let mut length = None;
    for part in v.split(|c| *c == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u64 = std::str::from_utf8(part).ok()?.parse().ok()?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    length
}

/// The HPACK decoder of a connection (RFC 7541): the server's dynamic table (kept by
/// `httlib_hpack`'s table), strings Huffman-decoded by `httlib_huffman` into reused buffers.
/// Each field is handed on borrowed, without an allocation; only fields the server adds to
/// its table are copied (into the table).
struct Hpack {
    table: httlib_hpack::table::Table<'static>,
    name: Vec<u8>,
    value: Vec<u8>,
}

/// The dynamic table size this client allows (SETTINGS_HEADER_TABLE_SIZE's default).
const TABLE_MAX: u32 = 4096;

impl Hpack {
    fn new() -> Hpack {
        Hpack {
            table: httlib_hpack::table::Table::with_dynamic_size(TABLE_MAX),
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Lets go of scratch buffers a very long string grew.
    fn shrink(&mut self) {
        for b in [&mut self.name, &mut self.value] {
            if b.capacity() > HEAD_KEEP {
                *b = Vec::new();
            }
        }
    }

    /// Decodes a whole header block, calling `f` with each field.
    fn decode(
        &mut self,
        mut b: &[u8],
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), &'static str> {
        while let Some(&first) = b.first() {
            if first & 0x80 != 0 {
                // Indexed field.
                let index = hpack_int(&mut b, 7)?;
                let (n, v) = self
                    .table
                    .get(index)
                    .ok_or("HPACK: an index not in the table")?;
                f(n, v);
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update.
                let size = hpack_int(&mut b, 5)?;
                if size > TABLE_MAX {
                    return Err("HPACK: a table size update over the size allowed");
                }
                self.table.update_max_dynamic_size(size);
            } else {
                // A literal: with incremental indexing (6-bit prefix), or without / never
                // indexed (4-bit prefix).
                let indexing = first & 0xc0 == 0x40;
                let index = hpack_int(&mut b, if indexing { 6 } else { 4 })?;
                let name = if index == 0 {
                    hpack_string(&mut b, &mut self.name)?
                } else {
                    self.table
                        .get(index)
                        .ok_or("HPACK: an index not in the table")?
                        .0
                };
                let value = hpack_string(&mut b, &mut self.value)?;
                f(name, value);
                if indexing {
                    let (n, v) = (name.to_vec(), value.to_vec());
                    self.table.insert(n, v);
                }
            }
        }
        Ok(())
    }
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), taken off the front of `b`.
fn hpack_int(b: &mut &[u8], n: u8) -> Result<u32, &'static str> {
    let max = (1u32 << n) - 1;
    let (&first, rest) = b.split_first().ok_or("HPACK: a header block cut short")?;
    *b = rest;
    let mut value = (first as u32) & max;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let (&byte, rest) = b.split_first().ok_or("HPACK: a header block cut short")?;
        *b = rest;
        if shift > 21 {
            return Err("HPACK: an integer too large");
        }
        value += ((byte & 0x7f) as u32) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// An HPACK string taken off the front of `b`: borrowed from it when plain, decoded into
/// `scratch` when Huffman-coded.
fn hpack_string<'r, 'a: 'r, 's: 'r>(
    b: &mut &'a [u8],
    scratch: &'s mut Vec<u8>,
) -> Result<&'r [u8], &'static str> {
    let huffman = b.first().ok_or("HPACK: a header block cut short")? & 0x80 != 0;
    let len = hpack_int(b, 7)? as usize;
    if len > b.len() {
        return Err("HPACK: a string longer than its header block");
    }
    let (s, rest) = b.split_at(len);
    *b = rest;
    if !huffman {
        return Ok(s);
    }
    scratch.clear();
    httlib_huffman::decode(s, scratch, httlib_huffman::DecoderSpeed::FiveBits)
        .map_err(|_| "HPACK: a bad Huffman string")?;
    Ok(scratch)
}

/// A connection error: the server broke the protocol (the connection is dropped).
fn protocol(what: &'static str) -> H2Error {
    H2Error::Protocol(what)
}

/// A DATA or HEADERS payload without its padding.
fn unpad(flags: u8, payload: &mut Bytes) -> Result<Bytes, H2Error> {
    if flags & PADDED == 0 {
        return Ok(std::mem::take(payload));
    }
    if payload.is_empty() {
        return Err(protocol("a padded frame without its pad length"));
    }
    let pad = payload[0] as usize;
    if pad + 1 > payload.len() {
        return Err(protocol("padding longer than the frame"));
    }
    let len = payload.len() - pad;
    Ok(payload.slice(1..len))
}

/// An open HTTP/2 connection; clones share it.
#[derive(Clone)]
pub struct H2Conn(Rc<RefCell<Inner>>);

impl H2Conn {
    /// Starts HTTP/2 on `io`: the preface and SETTINGS, then reads until the server's
    /// SETTINGS (its first frame) arrived, so its stream limit is known before the first
    /// request. Returns the connection and its driver, to be spawned.
    pub async fn handshake(
        mut io: Stream,
        arrival: Option<Arrival>,
    ) -> Result<(H2Conn, impl std::future::Future<Output = ()>), H2Error> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(PREFACE);
        // SETTINGS: ENABLE_PUSH 0, INITIAL_WINDOW_SIZE, MAX_HEADER_LIST_SIZE.
        frame_head(&mut out, 18, SETTINGS, 0, 0);
        out.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
        out.extend_from_slice(&[0, 4]);
        out.extend_from_slice(&STREAM_WINDOW.to_be_bytes());
        out.extend_from_slice(&[0, 6]);
        out.extend_from_slice(&(HEAD_MAX as u32).to_be_bytes());
        let inner = Inner::new(arrival, out);
        let conn = H2Conn(Rc::new(RefCell::new(inner)));
        conn.0.borrow_mut().window_update(0, CONN_WINDOW - 65_535);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut written = 0;
        // Write the preface while waiting for the server's SETTINGS.
        poll_fn(|cx| {
            let mut inner = conn.0.borrow_mut();
            if let Poll::Ready(Err(e)) = write_out(&mut io, cx, &mut inner, &mut written) {
                return Poll::Ready(Err(e));
            }
            loop {
                match read_some(&mut io, cx, &mut buf) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(H2Error::Read(std::io::ErrorKind::UnexpectedEof)))
                    }
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
                if buf.len() >= 9 {
                    let len = frame_len(&buf);
                    if buf[3] != SETTINGS || buf[4] & ACK != 0 || len > FRAME_MAX {
                        return Poll::Ready(Err(H2Error::Protocol(
                            "the server's first frame was not SETTINGS: is it HTTP/2?",
                        )));
                    }
                    if buf.len() >= 9 + len {
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        })
        .await?;
        conn.0.borrow_mut().read_frames(&mut buf)?;
        let driver = drive(conn.0.clone(), io, buf, written);
        Ok((conn, driver))
    }

    /// The connection can take no new streams (it ended, or the server sent GOAWAY).
    pub fn is_closed(&self) -> bool {
        let inner = self.0.borrow();
        inner.ended.is_some() || inner.goaway.is_some()
    }

    /// Whether `other` is a handle on the same connection.
    pub fn same(&self, other: &H2Conn) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (`usize::MAX` when it set none).
    pub fn server_limit(&self) -> usize {
        self.0.borrow().max_streams
    }

    /// Frames read on it so far (the same count before and after a wait: it was silent).
    pub fn frames_read(&self) -> u64 {
        self.0.borrow().frames_read
    }

    /// Sends a PING (unless one is still unanswered); `answered` says when its ACK came.
    pub fn ping(&self) {
        let mut inner = self.0.borrow_mut();
        if inner.ping.is_some_and(|(_, answered)| !answered) {
            return;
        }
        let payload = inner.frames_read.to_be_bytes();
        frame_head(&mut inner.out, 8, PING, 0, 0);
        inner.out.extend_from_slice(&payload);
        inner.ping = Some((payload, false));
        inner.wake_driver();
    }

    /// Whether the last PING was answered.
    pub fn answered(&self) -> bool {
        self.0.borrow().ping.is_none_or(|(_, answered)| answered)
    }

    /// Ends the connection: its streams fail with `e`, and it takes no new ones.
    pub fn retire(&self, e: H2Error) {
        let mut inner = self.0.borrow_mut();
        inner.fail(e);
        inner.wake_driver();
    }

    /// Ready when the server's SETTINGS_MAX_CONCURRENT_STREAMS leaves room for one more
    /// stream (or the connection can take none at all, which `open` then says): never more
    /// streams in flight than the server allows, whatever it announced last — 0 included.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.has_room() {
            return Poll::Ready(());
        }
        self.0.borrow_mut().room.push(cx.waker().clone());
        Poll::Pending
    }

    /// `poll_room` without waiting: whether a stream may be opened now.
    pub fn has_room(&self) -> bool {
        let inner = self.0.borrow();
        inner.ended.is_some() || inner.goaway.is_some() || inner.open_streams() < inner.max_streams
    }

    /// Opens a stream with `request`: its HEADERS (and what of its body the windows
    /// allow) are queued for the driver to write. Fails, with nothing sent, when the
    /// connection can take no new streams.
    pub fn open(&self, request: &H2Request) -> Result<H2Stream, H2Error> {
        let mut inner = self.0.borrow_mut();
        if let Some(e) = &inner.ended {
            return Err(e.clone());
        }
        if let Some(code) = inner.goaway {
            return Err(H2Error::GoAway(code));
        }
        let id = inner.next_id;
        if id > 0x7fff_ffff - 2 {
            inner.goaway = Some(0); // ids used up: the next request reconnects
            return Err(H2Error::GoAway(0));
        }
        inner.next_id += 2;
        let key = match inner.free.pop() {
            Some(k) => k,
            None => {
                inner.streams.push(StreamState::default());
                inner.streams.len() - 1
            }
        };
        let window = inner.initial_window;
        let s = &mut inner.streams[key];
        s.id = id;
        s.send_window = window;
        s.ended = false;
        s.error = None;
        s.head.clear();
        if s.head.text.capacity() > HEAD_KEEP {
            s.head = H2Head::default(); // grown for one large head: let it go
        }
        s.data.clear();
        s.uncredited = 0;
        s.stamp = None;
        s.head_request = request.head;
        s.expected = None;
        s.received = 0;
        s.pending = request.body.clone();
        s.sent_all = request.body.is_empty();
        inner.ids.insert(id, key);
        // HEADERS (and CONTINUATION when the block is longer than a frame).
        let block = &request.block;
        let max = inner.max_frame;
        let end = if request.body.is_empty() {
            END_STREAM
        } else {
            0
        };
        let first = block.len().min(max);
        let flags = end | if first == block.len() { END_HEADERS } else { 0 };
        frame_head(&mut inner.out, first, HEADERS, flags, id);
        inner.out.extend_from_slice(&block[..first]);
        let mut at = first;
        while at < block.len() {
            let n = (block.len() - at).min(max);
            let flags = if at + n == block.len() {
                END_HEADERS
            } else {
                0
            };
            frame_head(&mut inner.out, n, CONTINUATION, flags, id);
            inner.out.extend_from_slice(&block[at..at + n]);
            at += n;
        }
        inner.send_body(key);
        inner.wake_driver();
        Ok(H2Stream {
            conn: self.0.clone(),
            key,
        })
    }
}

impl Drop for H2Conn {
    fn drop(&mut self) {
        // The last handle (besides the driver's) let go: the driver ends once no stream
        // is open.
        if Rc::strong_count(&self.0) <= 2 {
            if let Ok(mut inner) = self.0.try_borrow_mut() {
                inner.wake_driver();
            }
        }
    }
}

/// A piece of a body with the kernel's stamp of the read that carried it.
pub type Stamped = (Bytes, Option<Instant>);

/// One request's stream.
pub struct H2Stream {
    conn: Rc<RefCell<Inner>>,
    key: usize,
}

impl H2Stream {
    /// Waits for the response head (interim 1xx heads skipped).
    pub fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), H2Error>> {
        let mut inner = self.conn.borrow_mut();
        let s = &mut inner.streams[self.key];
        if s.head.status != 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = &s.error {
            return Poll::Ready(Err(e.clone()));
        }
        if s.ended {
            return Poll::Ready(Err(H2Error::Protocol(
                "the server ended the stream without a response head",
            )));
        }
        set_waker(&mut s.waker, cx);
        Poll::Pending
    }

    /// The response head (after `poll_head` said it is there).
    pub fn head<R>(&self, f: impl FnOnce(&H2Head) -> R) -> R {
        f(&self.conn.borrow().streams[self.key].head)
    }

    /// The kernel's stamp of the read that carried this stream's final head, or (once
    /// `poll_data` said the body ended) its END_STREAM.
    pub fn stamp(&self) -> Option<Instant> {
        self.conn.borrow().streams[self.key].stamp
    }

    /// The next piece of the body, with the kernel's stamp of the read that carried it;
    /// `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Stamped, H2Error>>> {
        let mut inner = self.conn.borrow_mut();
        let s = &mut inner.streams[self.key];
        if let Some(d) = s.data.pop_front() {
            return Poll::Ready(Some(Ok(d)));
        }
        if let Some(e) = &s.error {
            return Poll::Ready(Some(Err(e.clone())));
        }
        if s.ended {
            return Poll::Ready(None);
        }
        set_waker(&mut s.waker, cx);
        Poll::Pending
    }
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        let Ok(mut inner) = self.conn.try_borrow_mut() else {
            return;
        };
        let inner = &mut *inner;
        let s = &mut inner.streams[self.key];
        let id = s.id;
        // Not ended both ways (a timeout, or a body the server did not wait for): reset,
        // so the server stops working on it.
        let reset = !(s.ended && s.sent_all) && s.error.is_none() && inner.ended.is_none();
        s.id = 0;
        s.waker = None;
        s.pending = Bytes::new();
        s.data.clear();
        // (Its bytes were credited to the connection's window as they arrived; the
        // stream's own window goes with it.)
        s.uncredited = 0;
        inner.ids.remove(&id);
        inner.free.push(self.key);
        inner.blocked.retain(|&k| k != self.key);
        if reset {
            inner.rst(id, CANCEL);
        }
        if !inner.room.is_empty() {
            inner.wake_room();
        }
        // The driver writes the reset, or ends when this was the last stream of a
        // connection let go of.
        if reset || inner.goaway.is_some() || Rc::strong_count(&self.conn) <= 2 {
            inner.wake_driver();
        }
    }
}

fn set_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

fn frame_len(buf: &[u8]) -> usize {
    (buf[0] as usize) << 16 | (buf[1] as usize) << 8 | buf[2] as usize
}

impl Inner {
    /// Handles every whole frame in `buf`.
    fn read_frames(&mut self, buf: &mut BytesMut) -> Result<(), H2Error> {
        while buf.len() >= 9 {
            let len = frame_len(buf);
            if len > FRAME_MAX {
                return Err(protocol("a frame over 16 KiB"));
            }
            if buf.len() < 9 + len {
                break;
            }
            let kind = buf[3];
            let flags = buf[4];
            let id = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            buf.advance(9);
            let payload = buf.split_to(len).freeze();
            self.frames_read += 1;
            self.frame(kind, flags, id, payload)?;
        }
        Ok(())
    }
}

/// Reads what is there into `buf`; the number of bytes, 0 at the end of the stream.
fn read_some(
    io: &mut Stream,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<Result<usize, H2Error>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    let spare = buf.spare_capacity_mut();
    let mut rb = ReadBuf::uninit(spare);
    match Pin::new(io).poll_read(cx, &mut rb) {
        Poll::Ready(Ok(())) => {
            let n = rb.filled().len();
            // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
            unsafe { buf.set_len(buf.len() + n) };
            Poll::Ready(Ok(n))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(H2Error::Read(e.kind()))),
        Poll::Pending => Poll::Pending,
    }
}

/// Writes `inner.out` from `written` on, and flushes; `Ready(Ok)` once it is all out —
/// out of the TLS layer's buffer too (a flush that could not finish is tried again on the
/// next call, also when nothing new was queued).
fn write_out(
    io: &mut Stream,
    cx: &mut Context<'_>,
    inner: &mut Inner,
    written: &mut usize,
) -> Poll<Result<(), H2Error>> {
    while *written < inner.out.len() {
        match Pin::new(&mut *io).poll_write(cx, &inner.out[*written..]) {
            Poll::Ready(Ok(0)) => {
                return Poll::Ready(Err(H2Error::Write(std::io::ErrorKind::WriteZero)))
            }
            Poll::Ready(Ok(n)) => *written += n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(H2Error::Write(e.kind()))),
            Poll::Pending => return Poll::Pending,
        }
    }
    if !inner.out.is_empty() {
        inner.out.clear();
        *written = 0;
        inner.unflushed = true;
    }
    if inner.unflushed {
        match Pin::new(io).poll_flush(cx) {
            Poll::Ready(Ok(())) => inner.unflushed = false,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(H2Error::Write(e.kind()))),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(()))
}

/// The connection's driver: reads and handles frames, writes what the streams queued,
/// until the connection fails, or it went away (or was let go of) with no stream open.
async fn drive(inner: Rc<RefCell<Inner>>, mut io: Stream, mut buf: BytesMut, mut written: usize) {
    poll_fn(|cx| {
        let mut guard = inner.borrow_mut();
        let state = &mut *guard;
        // Read everything there is.
        loop {
            match read_some(&mut io, cx, &mut buf) {
                Poll::Ready(Ok(0)) => {
                    state.fail(H2Error::Read(std::io::ErrorKind::UnexpectedEof));
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(_)) => {
                    if let Err(e) = state.read_frames(&mut buf) {
                        state.fail(e);
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(Err(e)) => {
                    state.fail(e);
                    return Poll::Ready(());
                }
                Poll::Pending => break,
            }
        }
        // Write what was queued (answers to the frames just read included).
        if let Poll::Ready(Err(e)) = write_out(&mut io, cx, state, &mut written) {
            state.fail(e);
            return Poll::Ready(());
        }
        // Retired (a PING unanswered): nothing more to wait for once its streams let go.
        if state.ended.is_some() && state.open_streams() == 0 {
            return Poll::Ready(());
        }
        let unwanted = Rc::strong_count(&inner) == 1 || state.goaway.is_some();
        if unwanted && state.open_streams() == 0 && state.out.is_empty() && !state.unflushed {
            if state.ended.is_none() {
                state.ended = Some(H2Error::GoAway(state.goaway.unwrap_or(0)));
            }
            return Poll::Ready(());
        }
        set_waker(&mut state.driver, cx);
        Poll::Pending
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_rfc7541_examples() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix.
        let mut out = Vec::new();
        integer(&mut out, 5, 0, 10);
        assert_eq!(out, [10]);
        out.clear();
        integer(&mut out, 5, 0, 1337);
        assert_eq!(out, [31, 154, 10]);
    }

    #[test]
    fn an_encoded_head_decodes_to_the_request() {
        let mut req = hyper::Request::new(());
        *req.method_mut() = hyper::Method::PUT;
        *req.uri_mut() = "https://example.com:8443/a/b?c=d".parse().unwrap();
        req.headers_mut()
            .insert("x-long", "v".repeat(300).parse().unwrap());
        req.headers_mut().insert("accept", "*/*".parse().unwrap());
        let block = encode_head(&req, Some(1234));
        let mut got = Vec::new();
        Hpack::new()
            .decode(&block, |n, v| {
                got.push((
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                ))
            })
            .unwrap();
        let want = [
            (":method", "PUT".to_string()),
            (":scheme", "https".into()),
            (":authority", "example.com:8443".into()),
            (":path", "/a/b?c=d".into()),
            ("x-long", "v".repeat(300)),
            ("accept", "*/*".into()),
            ("content-length", "1234".into()),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        assert_eq!(got, want);
        // A length of 0 has its one digit: name index 28, then the string "0".
        let mut b = Vec::new();
        append_content_length(&mut b, 0);
        assert_eq!(b, [0x0f, 0x0d, 0x01, b'0']);
    }

    #[test]
    fn rfc7541_c4_requests_with_huffman_decode_in_sequence() {
        // RFC 7541 C.4.1–C.4.3: one decoder, the dynamic table carried between blocks.
        let hex = |h: &str| -> Vec<u8> {
            let h: String = h.split_whitespace().collect();
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        };
        let mut d = Hpack::new();
        let mut run = |block: &str| {
            let mut got = Vec::new();
            d.decode(&hex(block), |n, v| {
                got.push(format!(
                    "{}: {}",
                    String::from_utf8_lossy(n),
                    String::from_utf8_lossy(v)
                ))
            })
            .unwrap();
            got
        };
        assert_eq!(
            run("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
            [
                ":method: GET",
                ":scheme: http",
                ":path: /",
                ":authority: www.example.com"
            ]
        );
        assert_eq!(
            run("8286 84be 5886 a8eb 1064 9cbf"),
            [
                ":method: GET",
                ":scheme: http",
                ":path: /",
                ":authority: www.example.com",
                "cache-control: no-cache"
            ]
        );
        assert_eq!(
            run("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
            [
                ":method: GET",
                ":scheme: https",
                ":path: /index.html",
                ":authority: www.example.com",
                "custom-key: custom-value"
            ]
        );
    }

    fn hex(h: &str) -> Vec<u8> {
        let h: String = h.split_whitespace().collect();
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Decodes `blocks` in turn with one decoder whose table holds `size` bytes.
    fn decode_all(size: u32, blocks: &[&str]) -> Vec<Vec<String>> {
        let mut d = Hpack::new();
        d.table.update_max_dynamic_size(size);
        blocks
            .iter()
            .map(|b| {
                let mut got = Vec::new();
                d.decode(&hex(b), |n, v| {
                    got.push(format!(
                        "{}: {}",
                        String::from_utf8_lossy(n),
                        String::from_utf8_lossy(v)
                    ))
                })
                .unwrap();
                got
            })
            .collect()
    }

    #[test]
    fn rfc7541_c2_literal_and_indexed_fields() {
        // C.2.1–C.2.4, each with a fresh decoder.
        let cases = [
            (
                "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
                "custom-key: custom-header",
            ),
            ("040c 2f73 616d 706c 652f 7061 7468", ":path: /sample/path"),
            (
                "1008 7061 7373 776f 7264 0673 6563 7265 74",
                "password: secret",
            ),
            ("82", ":method: GET"),
        ];
        for (block, want) in cases {
            assert_eq!(decode_all(4096, &[block]), [[want]]);
        }
    }

    #[test]
    fn rfc7541_c3_requests_without_huffman_decode_in_sequence() {
        let got = decode_all(
            4096,
            &[
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
        );
        let base = [
            ":method: GET",
            ":scheme: http",
            ":path: /",
            ":authority: www.example.com",
        ];
        assert_eq!(got[0], base);
        assert_eq!(got[1], [&base[..], &["cache-control: no-cache"]].concat());
        assert_eq!(
            got[2],
            [
                ":method: GET",
                ":scheme: https",
                ":path: /index.html",
                ":authority: www.example.com",
                "custom-key: custom-value"
            ]
        );
    }

    /// The three responses of RFC 7541 C.5 and C.6 (a 256-byte table: entries are evicted).
    fn rfc7541_responses() -> [Vec<&'static str>; 3] {
        [
            vec![
                ":status: 302",
                "cache-control: private",
                "date: Mon, 21 Oct 2013 20:13:21 GMT",
                "location: https://www.example.com",
            ],
            vec![
                ":status: 307",
                "cache-control: private",
                "date: Mon, 21 Oct 2013 20:13:21 GMT",
                "location: https://www.example.com",
            ],
            vec![
                ":status: 200",
                "cache-control: private",
                "date: Mon, 21 Oct 2013 20:13:22 GMT",
                "location: https://www.example.com",
                "content-encoding: gzip",
                "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            ],
        ]
    }

    #[test]
    fn rfc7541_c5_responses_without_huffman_evict_from_a_small_table() {
        let got = decode_all(
            256,
            &[
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 \
                 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 \
                 7861 6d70 6c65 2e63 6f6d",
                "4803 3330 37c1 c0bf",
                "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 \
                 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 \
                 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 \
                 6572 7369 6f6e 3d31",
            ],
        );
        assert_eq!(got, rfc7541_responses());
    }

    #[test]
    fn rfc7541_c6_responses_with_huffman_evict_from_a_small_table() {
        let got = decode_all(
            256,
            &[
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 \
                 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                "4883 640e ffc1 c0bf",
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b \
                 d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 \
                 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ],
        );
        assert_eq!(got, rfc7541_responses());
    }

    proptest::proptest! {
        /// Header lists encoded by another implementation (the `hpack` crate: indexing,
        /// a shared dynamic table across blocks) decode to the same lists, in order.
        #[test]
        fn blocks_from_another_encoder_decode_to_their_lists(
            lists in proptest::collection::vec(
                proptest::collection::vec(("[a-z][a-z0-9-]{0,15}", "[ -~]{0,60}"), 0..12),
                1..6,
            )
        ) {
            let mut enc = hpack::Encoder::new();
            let mut dec = Hpack::new();
            for list in &lists {
                let block = enc.encode(list.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
                let mut got = Vec::new();
                dec.decode(&block, |n, v| {
                    got.push((String::from_utf8(n.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap()))
                }).unwrap();
                proptest::prop_assert_eq!(&got, list);
            }
        }

        /// Random bytes read as frames by a connection with a stream open: errors, never a
        /// panic, and memory bounded by what was fed.
        #[test]
        fn random_bytes_never_panic_the_frame_reader(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let mut inner = Inner::new(None, Vec::new());
            let _ = inner.open_for_test();
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = inner.read_frames(&mut buf);
            proptest::prop_assert!(inner.out.len() < 64 * 1024 + 4 * bytes.len());
        }

        /// Valid-but-odd frame sequences (any type, flags and stream, payloads of plausible
        /// sizes, a HEADERS block from a real encoder now and then): handled without a panic.
        #[test]
        fn odd_frame_sequences_never_panic(
            frames in proptest::collection::vec(
                (0u8..12, proptest::num::u8::ANY, 0u32..6, proptest::collection::vec(proptest::num::u8::ANY, 0..64), proptest::bool::ANY),
                0..40,
            )
        ) {
            let mut inner = Inner::new(None, Vec::new());
            let _ = inner.open_for_test();
            let mut enc = hpack::Encoder::new();
            let mut wire = Vec::new();
            for (kind, flags, stream, mut payload, real_head) in frames {
                if kind == HEADERS && real_head {
                    payload = enc.encode([(&b":status"[..], &b"200"[..]), (b"content-length", b"3")]);
                }
                frame_head(&mut wire, payload.len(), kind, flags, stream);
                wire.extend_from_slice(&payload);
            }
            let mut buf = BytesMut::from(&wire[..]);
            // Frame by frame, going on after a connection error as a fuzzer would.
            while !buf.is_empty() {
                if inner.read_frames(&mut buf).is_err() {
                    if buf.len() >= 9 {
                        let len = frame_len(&buf).min(buf.len() - 9);
                        buf.advance(9 + len);
                    } else {
                        break;
                    }
                }
                if buf.len() < 9 {
                    break;
                }
            }
        }
    }

    #[test]
    fn each_stream_keeps_the_stamp_of_the_read_that_carried_its_frames() {
        // Two streams answered in two reads, 50 ms apart by the kernel's stamps. Each
        // stream's head, body and end carry its own read's stamp — not the connection's
        // latest read, which a stream handled after the second read would otherwise take.
        let arrival: Arrival = Rc::new(std::cell::Cell::new(None));
        let mut inner = Inner::new(Some(arrival.clone()), Vec::new());
        let (a, b) = (inner.open_for_test(), inner.open_for_test());
        let t1 = Instant::now();
        let t2 = t1 + std::time::Duration::from_millis(50);
        let answer = |id: u32| {
            let mut enc = hpack::Encoder::new();
            let block = enc.encode([(&b":status"[..], &b"200"[..]), (b"content-length", b"2")]);
            let mut wire = Vec::new();
            frame_head(&mut wire, block.len(), HEADERS, END_HEADERS, id);
            wire.extend_from_slice(&block);
            frame_head(&mut wire, 2, DATA, END_STREAM, id);
            wire.extend_from_slice(b"ok");
            BytesMut::from(&wire[..])
        };
        arrival.set(Some(t1));
        inner.read_frames(&mut answer(a)).unwrap();
        arrival.set(Some(t2));
        // (B's block is decoded by the same connection's HPACK state: a fresh encoder's
        // literals with indexing add entries again, which is fine for the table.)
        inner.read_frames(&mut answer(b)).unwrap();
        let stream = |id: u32| &inner.streams[inner.ids[&id]];
        assert_eq!(stream(a).stamp, Some(t1));
        assert_eq!(stream(a).data.front().map(|d| d.1), Some(Some(t1)));
        assert_eq!(stream(b).stamp, Some(t2));
        assert_eq!(stream(b).data.front().map(|d| d.1), Some(Some(t2)));
        assert!(stream(a).ended && stream(a).error.is_none());
    }

    #[test]
    fn padding_is_removed() {
        let mut p = Bytes::from_static(&[2, b'h', b'i', 0, 0]);
        assert_eq!(&unpad(PADDED, &mut p).unwrap()[..], b"hi");
        let mut bad = Bytes::from_static(&[9, b'h']);
        assert!(unpad(PADDED, &mut bad).is_err());
    }
}
