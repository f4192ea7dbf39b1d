//! HTTP/1.1 on one connection, spoken directly: a request goes out as the bytes built for it
//! once (`Wire`: the template's, or the string a script returned, as wrk sends it), and the
//! response is parsed in the connection's own buffer (httparse for the head; Content-Length,
//! chunked, or until-close bodies), its body handed on slice by slice as it is read.
//!
//! Why not hyper's client connection: it costs a task, two channels and a request/response
//! object per request, and re-encodes a head that never changes — about a fifth of the
//! generator's CPU at high rates (see docs/performance.md). A load generator
//! needs one request at a time per connection and exact bytes on the wire, nothing more.
//!
//! A connection is kept while the server keeps it: a response saying `Connection: close`
//! (or an HTTP/1.0 one without keep-alive, or a body delimited by the close) ends it, and
//! before each request an idle connection is checked — without a system call unless the
//! socket became readable — for a close or bytes nobody asked for.
//!
//! Used by `engine::exchange` (one exchange) and `engine::slot` (keeping the connection).

use super::stamp::Arrival;
use super::tls::Stream;
use bytes::Bytes;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// A request as it goes on the wire.
#[derive(Debug, Clone)]
pub struct Wire {
    /// Head and body, as sent.
    pub bytes: Bytes,
    /// A HEAD request: its response has no body, whatever its headers say.
    pub head: bool,
    /// The request says `Connection: close`: the connection is not used again after it.
    pub close: bool,
}

impl Wire {
    /// A request's bytes as a script built them (its head read for HEAD and
    /// `Connection: close`).
    pub fn scripted(bytes: Bytes, head: bool) -> Wire {
        let close = asks_close(&bytes);
        Wire { bytes, head, close }
    }

    /// Whether sending it twice is harmless when the server provably did not answer the
    /// first: an idempotent method (RFC 9110 §9.2.2), or no body.
    pub fn retry_safe(&self) -> bool {
        let method = self.bytes.split(|&c| c == b' ').next().unwrap_or_default();
        if [
            &b"GET"[..],
            b"HEAD",
            b"OPTIONS",
            b"PUT",
            b"DELETE",
            b"TRACE",
        ]
        .contains(&method)
        {
            return true;
        }
        match self.bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) => end + 4 == self.bytes.len(),
            None => false,
        }
    }
}

/// Whether a request head carries `Connection: close`.
fn asks_close(bytes: &[u8]) -> bool {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    bytes[..end].split(|&c| c == b'\n').skip(1).any(|line| {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return false;
        };
        line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"connection")
            && line[colon + 1..]
                .split(|&c| c == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

/// Why an HTTP/1.1 exchange failed.
#[derive(Debug)]
pub enum H1Error {
    /// Writing the request failed.
    Write(io::Error),
    /// Reading the response failed.
    Read(io::Error),
    /// The server closed the connection before the response was complete.
    Closed,
    /// The response is not HTTP/1.1 (why, in a few words).
    Parse(&'static str),
}

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
    /// 101 Switching Protocols: no body, and the connection is no longer HTTP/1.1.
    Switched,
}

/// A response head as parsed: status, headers and its size on the wire.
pub struct RawHead<'a> {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: &'a [httparse::Header<'a>],
    /// Bytes of the head, status line to blank line.
    pub len: usize,
}

/// The most a response head may take (large `Set-Cookie` and CSP heads are real).
const HEAD_MAX: usize = 256 << 10;
/// The read buffer's size (grown only for a longer head).
const BUF: usize = 16 << 10;
/// Headers parsed without a heap allocation; a head with more is parsed again with room
/// for one per line.
const HEADERS_MAX: usize = 100;

/// One HTTP/1.1 connection: its byte stream and read buffer.
pub struct H1Conn {
    io: Stream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Whether the connection may carry another request.
    reusable: bool,
    /// When the kernel stamps receives: the arrival of the last bytes read.
    arrival: Option<Arrival>,
    /// Requests written on it.
    sends: u64,
    /// A byte came since the last request was written.
    answered: bool,
    /// The server's `Keep-Alive: timeout=N`, less a margin: how long it may sit idle.
    idle_limit: Option<std::time::Duration>,
    /// When its last answer ended (kept only with an `idle_limit`).
    idle_since: Option<std::time::Instant>,
    /// Bytes sent by the io_uring path (the kernel keys its transmit stamps by this).
    ring_bytes: u32,
    /// When the last request `send` wrote began to leave, by the kernel's stamp.
    kernel_sent: Option<std::time::Instant>,
}

impl H1Conn {
    /// A connection on `io`, whose reads stamp `arrival` when the kernel stamps them.
    pub fn new(io: Stream, arrival: Option<Arrival>) -> H1Conn {
        H1Conn {
            io,
            buf: vec![0; BUF],
            start: 0,
            end: 0,
            reusable: true,
            arrival,
            sends: 0,
            answered: false,
            idle_limit: None,
            idle_since: None,
            ring_bytes: 0,
            kernel_sent: None,
        }
    }

    /// When the last request written by `send` began to leave, by the kernel's transmit
    /// stamp (None when it does not stamp this connection's sends).
    pub fn kernel_sent(&self) -> Option<std::time::Instant> {
        self.kernel_sent
    }

    /// A request of `len` bytes is about to go out on this connection through the io_uring
    /// path, not `send`: the socket to send it on, and the key the kernel's transmit stamp
    /// of it will carry if it stamps this socket's sends (the offset of its last byte).
    /// None over TLS.
    pub fn send_elsewhere(&mut self, len: usize) -> Option<(std::os::fd::RawFd, Option<u32>)> {
        let (fd, stamped) = self.io.send_fd()?;
        self.sends += 1;
        self.answered = false;
        self.ring_bytes = self.ring_bytes.wrapping_add(len as u32);
        Some((fd, stamped.then(|| self.ring_bytes.wrapping_sub(1))))
    }

    /// The last request went on a connection used before, and the server closed it
    /// without a byte of an answer: the keep-alive race (it closed an idle connection as
    /// the request went out), so the request was never processed.
    pub fn closed_on_reuse(&self) -> bool {
        self.sends > 1 && !self.answered
    }

    /// An exchange ended: not to be used again when its request said `Connection: close`;
    /// its idle time counts from here when the server said how long it keeps it.
    pub fn finished(&mut self, wire: &Wire) {
        if wire.close {
            self.reusable = false;
        }
        if self.idle_limit.is_some() {
            self.idle_since = Some(std::time::Instant::now());
        }
    }

    /// Where the arrival of the last bytes read is kept, when the kernel stamps them.
    pub fn arrival(&self) -> Option<&Arrival> {
        self.arrival.as_ref()
    }

    /// Whether the next request may go on this connection: the last response left it open,
    /// and while idle the server neither closed it nor sent anything. Costs a system call
    /// only when the socket has become readable.
    pub fn usable(&mut self) -> bool {
        if !self.reusable || self.start != self.end {
            return false;
        }
        // Idle longer than the server keeps it (its `Keep-Alive: timeout`): a new one,
        // rather than a request racing the server's close.
        if let (Some(limit), Some(since)) = (self.idle_limit, self.idle_since) {
            if since.elapsed() >= limit {
                self.reusable = false;
                return false;
            }
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut spare = [0u8; 1];
        let mut rb = ReadBuf::new(&mut spare);
        match Pin::new(&mut self.io).poll_read(&mut cx, &mut rb) {
            Poll::Pending => true,
            // A close (0 bytes), an error, or bytes no request asked for.
            Poll::Ready(_) => {
                self.reusable = false;
                false
            }
        }
    }

    /// Whether the last response left the connection open for another request.
    pub fn reusable(&self) -> bool {
        self.reusable
    }

    /// Writes a request.
    pub async fn send(&mut self, wire: &[u8]) -> Result<(), H1Error> {
        self.sends += 1;
        self.answered = false;
        self.io.take_sent();
        self.kernel_sent = None;
        let mut written = 0;
        // Written as the socket takes it; while it takes no more (a large body the server
        // is not reading), what the server sent is read: an answer before the whole body
        // (a 413 or 401 to an upload, as Go's net/http and gateways send) ends the sending
        // and is the response — as curl does. The connection then is not reused.
        let early = std::future::poll_fn(|cx| loop {
            if written == wire.len() {
                return Poll::Ready(Ok(false));
            }
            match Pin::new(&mut self.io).poll_write(cx, &wire[written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero)))
                }
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => {
                    // The server may have answered and closed: what it sent is still
                    // readable (unless a reset took it).
                    return Poll::Ready(if self.read_now(cx) { Ok(true) } else { Err(e) });
                }
                Poll::Pending => {
                    return if self.read_now(cx) {
                        Poll::Ready(Ok(true))
                    } else {
                        Poll::Pending
                    };
                }
            }
        })
        .await
        .map_err(H1Error::Write)?;
        self.kernel_sent = self.io.take_sent();
        if early {
            self.reusable = false;
            return Ok(());
        }
        self.io.flush().await.map_err(H1Error::Write)
    }

    /// Reads what the server already sent into the buffer, without waiting (the read is
    /// registered with `cx` when nothing is there); true when a byte came.
    fn read_now(&mut self, cx: &mut Context<'_>) -> bool {
        if self.end == self.buf.len() {
            return false;
        }
        let mut rb = ReadBuf::new(&mut self.buf[self.end..]);
        match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                self.end += rb.filled().len();
                self.answered = true;
                true
            }
            _ => false,
        }
    }

    /// Reads more bytes into the buffer (compacting, or growing it up to `HEAD_MAX` when
    /// `grow`); the number read, 0 at the end of the stream.
    async fn fill(&mut self, grow: bool) -> Result<usize, H1Error> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            } else if grow && self.buf.len() < HEAD_MAX {
                self.buf.resize(HEAD_MAX, 0);
            } else {
                return Err(H1Error::Parse(if grow {
                    "a response head over 256 KiB"
                } else {
                    "a chunk line over 16 KiB"
                }));
            }
        }
        let n = tokio::io::AsyncReadExt::read(&mut self.io, &mut self.buf[self.end..])
            .await
            .map_err(H1Error::Read)?;
        self.end += n;
        self.answered |= n > 0;
        Ok(n)
    }

    /// Reads a response head (skipping interim 1xx answers) and calls `on_head` with it;
    /// returns what that gave and how the body ends.
    pub async fn read_head<R>(
        &mut self,
        head_request: bool,
        on_head: impl FnOnce(&RawHead<'_>) -> R,
    ) -> Result<(R, Framing), H1Error> {
        let mut on_head = Some(on_head);
        loop {
            let parsed = {
                let buf = &self.buf[self.start..self.end];
                let mut headers = [const { MaybeUninit::uninit() }; HEADERS_MAX];
                match parse_head(buf, &mut headers, head_request, &mut on_head)? {
                    Parsed::TooManyHeaders => {
                        // More headers than the common case: room for one per line (rare,
                        // so on the heap).
                        let lines = buf.iter().filter(|&&c| c == b'\n').count() + 1;
                        let mut more = Vec::with_capacity(lines);
                        more.resize_with(lines, MaybeUninit::uninit);
                        parse_head(buf, &mut more, head_request, &mut on_head)?
                    }
                    p => p,
                }
            };
            let parsed = match parsed {
                Parsed::Final(r, framing, close, n, keep) => Some(Ok((r, framing, close, n, keep))),
                Parsed::Interim(n) => Some(Err(n)),
                Parsed::Partial => None,
                Parsed::TooManyHeaders => return Err(H1Error::Parse("more headers than lines")),
            };
            match parsed {
                Some(Ok((r, framing, close, n, keep))) => {
                    self.start += n;
                    // The server's idle timeout, less a margin for the request's trip.
                    self.idle_limit = keep.map(|secs| {
                        let t = std::time::Duration::from_secs(u64::from(secs));
                        t - (t / 2).min(std::time::Duration::from_secs(1))
                    });
                    // After 101 Switching Protocols the connection speaks another protocol.
                    if close || framing == Framing::UntilClose || framing == Framing::Switched {
                        self.reusable = false;
                    }
                    let framing = match framing {
                        Framing::Switched => Framing::Empty,
                        f => f,
                    };
                    return Ok((r, framing));
                }
                Some(Err(n)) => self.start += n,
                None => {
                    if self.fill(true).await? == 0 {
                        return Err(H1Error::Closed);
                    }
                }
            }
        }
    }

    /// Reads a body framed by `framing`, handing each piece of it to `on_data`.
    pub async fn read_body(
        &mut self,
        framing: Framing,
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<(), H1Error> {
        match framing {
            Framing::Empty | Framing::Switched => Ok(()),
            Framing::Length(n) => self.read_exact(n, &mut on_data).await,
            Framing::UntilClose => loop {
                if self.start < self.end {
                    on_data(&self.buf[self.start..self.end]);
                    self.start = self.end;
                }
                if self.fill(false).await? == 0 {
                    return Ok(());
                }
            },
            Framing::Chunked => loop {
                let size = self.chunk_size().await?;
                if size == 0 {
                    return self.trailers().await;
                }
                self.read_exact(size, &mut on_data).await?;
                self.crlf().await?;
            },
        }
    }

    /// Hands on the next `n` bytes.
    async fn read_exact(
        &mut self,
        mut n: u64,
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<(), H1Error> {
        while n > 0 {
            if self.start == self.end && self.fill(false).await? == 0 {
                return Err(H1Error::Closed);
            }
            let take = (self.end - self.start).min(usize::try_from(n).unwrap_or(usize::MAX));
            on_data(&self.buf[self.start..self.start + take]);
            self.start += take;
            n -= take as u64;
        }
        Ok(())
    }

    /// The next line (without its CRLF, or a bare LF, which RFC 9112 §2.2 lets a recipient
    /// take as a line end) as a range of the buffer, reading until it is whole.
    async fn line(&mut self) -> Result<(usize, usize), H1Error> {
        let mut from = self.start;
        loop {
            if let Some(i) = self.buf[from..self.end].iter().position(|&c| c == b'\n') {
                let lf = from + i;
                let end = if lf > self.start && self.buf[lf - 1] == b'\r' {
                    lf - 1
                } else {
                    lf
                };
                let line = (self.start, end);
                self.start = lf + 1;
                return Ok(line);
            }
            from = self.end.max(self.start);
            let before = self.start;
            if self.fill(true).await? == 0 {
                return Err(H1Error::Closed);
            }
            // (fill may have moved the unread bytes to the front.)
            from = from - before + self.start;
        }
    }

    /// A chunk's size line: hex digits, perhaps `;extensions`.
    async fn chunk_size(&mut self) -> Result<u64, H1Error> {
        let (a, b) = self.line().await?;
        let line = &self.buf[a..b];
        let digits = line.split(|c| *c == b';').next().unwrap_or_default();
        let digits = digits.trim_ascii();
        // Hex digits only: a sign (`+1e`, which `from_str_radix` would take) is not a size.
        let hex = !digits.is_empty() && digits.iter().all(u8::is_ascii_hexdigit);
        let digits = std::str::from_utf8(digits).unwrap_or("");
        hex.then(|| u64::from_str_radix(digits, 16).ok())
            .flatten()
            .ok_or(H1Error::Parse("a bad chunk size"))
    }

    /// The CRLF after a chunk's data.
    async fn crlf(&mut self) -> Result<(), H1Error> {
        let (a, b) = self.line().await?;
        if a == b {
            Ok(())
        } else {
            Err(H1Error::Parse("chunk data longer than its size"))
        }
    }

    /// Trailer lines after the last chunk, up to the blank line.
    async fn trailers(&mut self) -> Result<(), H1Error> {
        loop {
            let (a, b) = self.line().await?;
            if a == b {
                return Ok(());
            }
        }
    }
}

/// A response head parsed from the buffer, or why not yet.
enum Parsed<R> {
    /// The final answer: what `on_head` gave, its framing, whether the server closes after
    /// it, the head's length, and its `Keep-Alive: timeout` (seconds).
    Final(R, Framing, bool, usize, Option<u32>),
    /// An interim 1xx answer of this length: the real one follows.
    Interim(usize),
    /// Not all there yet.
    Partial,
    /// More headers than `headers` has room for.
    TooManyHeaders,
}

/// Parses a response head at the start of `buf` into `headers`, calling `on_head` (once)
/// with the final one.
fn parse_head<'b, R, F: FnOnce(&RawHead<'_>) -> R>(
    buf: &'b [u8],
    headers: &mut [MaybeUninit<httparse::Header<'b>>],
    head_request: bool,
    on_head: &mut Option<F>,
) -> Result<Parsed<R>, H1Error> {
    let mut resp = httparse::Response::new(&mut []);
    // obs-fold (a header value continued on an indented line) is obsolete, but a user
    // agent must accept it in responses (RFC 9112 §5.2).
    let mut config = httparse::ParserConfig::default();
    config.allow_obsolete_multiline_headers_in_responses(true);
    match config.parse_response_with_uninit_headers(&mut resp, buf, headers) {
        Ok(httparse::Status::Complete(n)) => {
            let status = resp.code.unwrap_or(0);
            if (100..200).contains(&status) && status != 101 {
                return Ok(Parsed::Interim(n));
            }
            let framing = framing(head_request, status, resp.headers)?;
            let close = closes(resp.version.unwrap_or(1), resp.headers);
            let keep = keep_alive_timeout(resp.headers);
            let head = RawHead {
                status,
                headers: resp.headers,
                len: n,
            };
            let f = on_head
                .take()
                .expect("called once: the final head ends the reading of heads");
            Ok(Parsed::Final(f(&head), framing, close, n, keep))
        }
        Ok(httparse::Status::Partial) => Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => Ok(Parsed::TooManyHeaders),
        Err(e) => Err(H1Error::Parse(match e {
            httparse::Error::Status => "a bad status line",
            httparse::Error::Version => "not an HTTP/1.x response",
            httparse::Error::HeaderName => "a bad header name",
            httparse::Error::HeaderValue => "a bad header value",
            httparse::Error::NewLine => "a bad line end in the head",
            _ => "a malformed response head",
        })),
    }
}

/// How the body of a response with this status and headers ends (RFC 9112 §6.3).
fn framing(
    head_request: bool,
    status: u16,
    headers: &[httparse::Header<'_>],
) -> Result<Framing, H1Error> {
    if status == 101 {
        return Ok(Framing::Switched);
    }
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Framing::Empty);
    }
    let mut length = None;
    // Transfer-Encoding lines are one list (RFC 9110 §5.3): the body is chunked when the
    // last coding of the last line is, and a Transfer-Encoding overrides Content-Length.
    let mut chunked = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|c| *c == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            // A list of one value repeated (`100, 100`, as some proxies send) is that value
            // (RFC 9110 §8.6); digits only — `+100` is not a length.
            for v in h.value.split(|c| *c == b',') {
                let v = v.trim_ascii();
                let n = (!v.is_empty() && v.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                    .flatten()
                    .ok_or(H1Error::Parse("a Content-Length that is not a number"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(H1Error::Parse("two different Content-Lengths"));
                }
                length = Some(n);
            }
        }
    }
    match chunked {
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Ok(Framing::UntilClose),
        None => Ok(length.map_or(Framing::UntilClose, Framing::Length)),
    }
}

/// The `timeout=N` of a `Keep-Alive` header (RFC 2068 §19.7.1.1; Apache and nginx send
/// it), when over 0.
fn keep_alive_timeout(headers: &[httparse::Header<'_>]) -> Option<u32> {
    let h = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("keep-alive"))?;
    h.value.split(|c| *c == b',').find_map(|p| {
        let (k, v) = std::str::from_utf8(p).ok()?.split_once('=')?;
        let secs: u32 = k
            .trim()
            .eq_ignore_ascii_case("timeout")
            .then(|| v.trim().parse().ok())??;
        (secs > 0).then_some(secs)
    })
}

/// Whether the server closes the connection after this response: `Connection: close`, or
/// HTTP/1.0 without `Connection: keep-alive`.
fn closes(version: u8, headers: &[httparse::Header<'_>]) -> bool {
    let has = |token: &[u8]| {
        headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("connection")
                && h.value
                    .split(|c| *c == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
        })
    };
    if version == 0 {
        !has(b"keep-alive")
    } else {
        has(b"close")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(name: &'a str, value: &'a [u8]) -> httparse::Header<'a> {
        httparse::Header { name, value }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let cl = [header("Content-Length", b"12")];
        assert_eq!(framing(false, 200, &cl).unwrap(), Framing::Length(12));
        assert_eq!(framing(true, 200, &cl).unwrap(), Framing::Empty);
        assert_eq!(framing(false, 204, &cl).unwrap(), Framing::Empty);
        assert_eq!(framing(false, 304, &[]).unwrap(), Framing::Empty);
        let te = [header("transfer-encoding", b"gzip, chunked"), cl[0]];
        assert_eq!(framing(false, 200, &te).unwrap(), Framing::Chunked);
        assert_eq!(framing(false, 200, &[]).unwrap(), Framing::UntilClose);
        assert!(framing(false, 200, &[header("content-length", b"x")]).is_err());
        let two = [
            header("content-length", b"1"),
            header("content-length", b"2"),
        ];
        assert!(framing(false, 200, &two).is_err());
        // Transfer-Encoding lines are one list: `gzip` then `chunked` is chunked, and
        // `chunked` then `gzip` is not (delimited by the close).
        let lines = [
            header("transfer-encoding", b"gzip"),
            header("transfer-encoding", b"chunked"),
        ];
        assert_eq!(framing(false, 200, &lines).unwrap(), Framing::Chunked);
        let lines = [
            header("transfer-encoding", b"chunked"),
            header("transfer-encoding", b"gzip"),
        ];
        assert_eq!(framing(false, 200, &lines).unwrap(), Framing::UntilClose);
        // A repeated Content-Length list is its value; a sign or a disagreeing list is not.
        let list = [header("content-length", b"100, 100")];
        assert_eq!(framing(false, 200, &list).unwrap(), Framing::Length(100));
        for bad in [&b"+100"[..], b"100, 101", b"", b"1 0", b"-1"] {
            let h = [header("content-length", bad)];
            assert!(framing(false, 200, &h).is_err(), "{bad:?}");
        }
        // 101: no body, and the connection is another protocol's from here on.
        assert_eq!(framing(false, 101, &cl).unwrap(), Framing::Switched);
    }

    #[test]
    fn close_by_header_or_version() {
        assert!(closes(1, &[header("Connection", b"Close")]));
        assert!(!closes(1, &[header("connection", b"keep-alive")]));
        assert!(closes(0, &[]));
        assert!(!closes(0, &[header("connection", b"Keep-Alive")]));
    }
}
