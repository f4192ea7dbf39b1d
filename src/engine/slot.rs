//! One connection slot of a worker thread: keep a connection open (re-opening it when the
//! server closed it or a request failed on it), take the next due request, send it (the
//! fixed request or what the script builds), and turn what happened into an `Outcome`.
//!
//! Every request a slot takes ends in exactly one `Outcome`: a status, or an error class
//! (connect, read, write, timeout, protocol, script). Faults are data, never `Err`.
//!
//! Over HTTP/2 a slot is one stream of a connection its slots share (`dispatch::Conn`):
//! one of them opens it (the others wait for that attempt), a timed-out stream is reset
//! and the connection kept, and a connection the server closed or sent GOAWAY on is
//! replaced by the next slot that needs it; a request that could not open a stream on it
//! (nothing went on the wire) goes on the new connection.
//!
//! Used by `engine::worker`, one task per slot.

use super::conn::{ConnectError, ConnectTiming, Connector, Link};
use super::dispatch::{Conn, Job, Shared};
use super::exchange::{
    answer, arrived, cause, classify, exchange, read_h2, ExchangeError, Progress, Reader,
};
use super::h1::{H1Conn, H1Error, Wire};
use super::http2::{H2Conn, H2Error, H2Request, H2Stream, REFUSED_STREAM};
use crate::clock;
use crate::outcome::{Cause, ErrorClass, Outcome, ResponseMeta, Retry};
use crate::script::HookError;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One connection slot's loop: keep a connection, take jobs, record outcomes.
pub(super) async fn connection(
    shared: Rc<Shared>,
    id: usize,
    connector: Arc<Connector>,
    timeout: Duration,
) {
    if connector.http2() {
        return streams(shared, id, connector, timeout).await;
    }
    let mut sender = None;
    if let Ok(Ok((Link::H1(conn), timing))) = open_timed(&shared, &connector, timeout).await {
        shared.stamped.set(conn.arrival().is_some());
        sender = Some(conn);
        shared.open.set(shared.open.get() + 1);
        let mut rec = shared.recorder.borrow_mut();
        rec.connects += 1;
        rec.connected(timing.tcp, timing.tls);
    }
    connected(&shared);
    let mut deadline = Deadline::new(timeout);
    while let Some(job) = shared.next_job(id).await {
        let outcome = attempt(&shared, &mut sender, job, &connector, &mut deadline).await;
        shared.finish(&outcome, shared.slots[id].conn);
        shared.release(id);
        think(&shared).await;
    }
}

/// A slot's per-request timeout: one timer entry kept for the slot's life and moved to each
/// request's deadline. Deadlines only grow, so moving it updates the entry in place; a
/// fresh `timeout_at` per request inserted one into tokio's timer wheel and removed it again
/// every time (~2.5 % of the CPU at high rates).
pub(super) struct Deadline {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// `--timeout`, from the send.
    timeout: Duration,
}

/// The request's deadline came before its exchange ended.
#[derive(Debug)]
pub(super) struct TimedOut;

impl Deadline {
    fn new(timeout: Duration) -> Deadline {
        Deadline {
            sleep: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }

    /// Runs `work` until `at`.
    async fn run<F: std::future::Future>(
        &mut self,
        at: Instant,
        work: F,
    ) -> Result<F::Output, TimedOut> {
        self.sleep.as_mut().reset(at.into());
        tokio::select! {
            biased;
            r = work => Ok(r),
            () = self.sleep.as_mut() => Err(TimedOut),
        }
    }
}

/// A script's delay(): this slot thinks before its next request; the schedule does not
/// wait (due requests go to other slots, or queue).
async fn think(shared: &Shared) {
    match shared.script.as_ref().map(|s| s.delay()) {
        Some(Ok(Some(d))) if !d.is_zero() => tokio::time::sleep(d).await,
        Some(Err(m)) => shared.recorder.borrow_mut().script_message(m.to_string()),
        _ => {}
    }
}

/// A request has just been handed to the connection at `sent`: count it, and say whether
/// the thread stays awake for its response (pair with `clock::response_arrived`).
fn mark_sent(shared: &Shared, sent: Instant) -> bool {
    shared.recorder.borrow_mut().sent();
    if shared.window_end.get().is_some_and(|end| sent < end) {
        shared.sent_in_window.set(shared.sent_in_window.get() + 1);
    }
    shared.stay_awake_for_response(sent)
}

/// When an exchange that started at `sent` ended: a complete response when its last bytes
/// arrived (the kernel's stamp), anything else now. Also ends the stay-awake of `awaited`
/// and feeds the recent response times.
fn ended<T, E>(
    shared: &Shared,
    result: &Result<Result<(), E>, T>,
    arrival: Option<&std::cell::Cell<Option<Instant>>>,
    sent: Instant,
    awaited: bool,
) -> Instant {
    let done = match result {
        Ok(Ok(())) => arrived(arrival, sent),
        _ => Instant::now(),
    };
    // Stamped by the kernel: how long the answer waited for us after it arrived.
    if matches!(result, Ok(Ok(()))) && arrival.and_then(|a| a.get()) == Some(done) {
        shared.recorder.borrow_mut().read(done.elapsed());
    }
    if awaited {
        clock::response_arrived();
    }
    if matches!(result, Ok(Ok(()))) {
        shared.response_times.borrow_mut().record(done - sent);
    }
    done
}

/// How an exchange ended: a status, or an error class with its cause when one is known.
type Ended = Result<u16, (ErrorClass, Option<Cause>)>;

/// How a completed exchange counts: a script's `response()` failure, an event stream the
/// token rule could not read (measured as far as it went), else its status.
fn completed(shared: &Shared, script_failed: Option<HookError>, progress: &Progress) -> Ended {
    if let Some(m) = script_failed {
        shared.recorder.borrow_mut().script_message(m.to_string());
        return Err((ErrorClass::Script, None));
    }
    if progress.stream.is_some_and(|s| s.malformed) {
        let why = Cause::Reason("an event the token rule could not read");
        return Err((ErrorClass::Protocol, Some(why)));
    }
    Ok(progress.status)
}

/// A failed exchange's class and cause: an event stream cut off mid-way is a broken
/// stream, not just a lost read.
fn failed(progress: &Progress, e: &ExchangeError) -> (ErrorClass, Option<Cause>) {
    if progress.stream.is_some() {
        (
            ErrorClass::Protocol,
            Some(Cause::Reason("an event stream cut off")),
        )
    } else {
        (classify(e), Some(cause(e)))
    }
}

/// A timeout's cause: whether the answer had begun.
fn timed_out(progress: &Progress) -> (ErrorClass, Option<Cause>) {
    let why = if progress.first_byte.is_some() {
        "the answer did not end in time"
    } else {
        "no answer in time"
    };
    (ErrorClass::Timeout, Some(Cause::Reason(why)))
}

/// The outcome of a request sent at `sent`, with what its response said (`meta`).
fn outcome(
    job: &Job,
    sent: Instant,
    free: bool,
    done: Instant,
    result: Ended,
    progress: Progress,
    meta: ResponseMeta,
) -> Outcome {
    let (result, cause) = match result {
        Ok(status) => (Ok(status), None),
        Err((class, cause)) => (Err(class), cause),
    };
    Outcome {
        intended: job.intended,
        sent: Some(sent),
        conn_was_free: free,
        done,
        result,
        bytes: progress.bytes,
        first_byte: progress.first_byte,
        stream: progress.stream,
        meta,
        cause,
    }
}

/// Opens a connection within `timeout`. Meanwhile the connection counts as being opened,
/// which keeps the pacer attentive to I/O (`Shared::waits_for_io`), so the connect is
/// driven as fast as the kernel allows and its time is the kernel's, not the pacer's.
async fn open_timed(
    shared: &Shared,
    connector: &Connector,
    timeout: Duration,
) -> Result<Result<(Link, ConnectTiming), ConnectError>, tokio::time::error::Elapsed> {
    struct Opening<'a>(&'a Shared);
    impl Drop for Opening<'_> {
        fn drop(&mut self) {
            self.0.opening.set(self.0.opening.get() - 1);
        }
    }
    shared.opening.set(shared.opening.get() + 1);
    let _opening = Opening(shared);
    // (Boxed: the connect is rare and its future large; inline, it would be part of —
    // and copied with — every request's future.)
    let r = tokio::time::timeout(timeout, Box::pin(connector.connect_timed())).await;
    // The first failure is kept: if no initial connection opens, it is why the run cannot
    // start (said at once, without waiting out another connect).
    if shared.first_failure.borrow().is_none() {
        let failure = match &r {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.again()),
            Err(_) => Some(ConnectError::Slow {
                addr: connector.addr(),
                limit: timeout,
            }),
        };
        *shared.first_failure.borrow_mut() = failure;
    }
    r
}

/// One of the thread's initial connections is open (or failed).
fn connected(shared: &Shared) {
    shared.connecting.set(shared.connecting.get() - 1);
    if shared.connecting.get() == 0 {
        shared.connected.notify_one();
    }
}

/// One HTTP/2 slot's loop: the first slot of each connection opens it before the start;
/// the others wait for that, then every slot takes jobs and sends each on a stream.
async fn streams(shared: Rc<Shared>, id: usize, connector: Arc<Connector>, timeout: Duration) {
    let conn = &shared.conns[shared.slots[id].conn];
    if id < shared.conns.len() {
        let _ = open_h2(&shared, conn, &connector, timeout).await;
        connected(&shared);
    } else {
        while conn.connecting.get() {
            conn.attempted.notified().await;
        }
    }
    let mut deadline = Deadline::new(timeout);
    while let Some(job) = shared.next_job(id).await {
        let outcome = attempt_h2(&shared, conn, job, &connector, &mut deadline).await;
        shared.finish(&outcome, shared.slots[id].conn);
        shared.release(id);
        think(&shared).await;
    }
}

/// Opens `conn`'s HTTP/2 connection (this slot is the one doing it; the others wait).
async fn open_h2(
    shared: &Shared,
    conn: &Conn,
    connector: &Connector,
    timeout: Duration,
) -> Result<H2Conn, Cause> {
    conn.connecting.set(true);
    let r = open_timed(shared, connector, timeout).await;
    conn.connecting.set(false);
    conn.attempted.notify_waiters();
    let (link, timing) = match r {
        Ok(Ok((Link::H2(link), timing))) => (link, timing),
        Ok(Ok((Link::H1(_), _))) => unreachable!("an HTTP/2 connector opens HTTP/2 links"),
        Ok(Err(e)) => return Err(e.cause()),
        Err(_) => return Err(Cause::Reason("no connection within --timeout")),
    };
    shared.stamped.set(link.arrival.is_some());
    let sender = link.sender.clone();
    note_limit(shared, conn, &sender);
    *conn.link.borrow_mut() = Some(link);
    shared.open.set(shared.open.get() + 1);
    let mut rec = shared.recorder.borrow_mut();
    rec.connects += 1;
    if conn.was_open.replace(true) {
        rec.reconnects += 1;
    }
    rec.connected(timing.tcp, timing.tls);
    Ok(sender)
}

/// Keeps `conn`'s room for requests within the server's SETTINGS_MAX_CONCURRENT_STREAMS
/// as `sender` last heard it, and notes each new value for the report.
fn note_limit(shared: &Shared, conn: &Conn, sender: &H2Conn) {
    let limit = sender.server_limit();
    if conn.announced.replace(limit) != limit {
        conn.set_limit(shared.streams.min(limit));
        if limit != usize::MAX {
            shared.recorder.borrow_mut().saw_stream_limit(limit as u64);
            shared.connector.saw_server_limit(limit);
        }
    }
}

/// Takes `conn`'s HTTP/2 connection `which` out of use (closed, broken, or gone away: the
/// streams already on it finish on their own) — unless another slot already replaced it.
fn retire_h2(shared: &Shared, conn: &Conn, which: &H2Conn) {
    let mut link = conn.link.borrow_mut();
    if link.as_ref().is_some_and(|l| l.sender.same(which)) {
        link.take();
        shared.open.set(shared.open.get() - 1);
    }
}

/// `conn`'s open HTTP/2 connection: the one there, the one another slot is opening, or a
/// new one. `free` is cleared (and the wait counted) when the request waits for a
/// connection.
async fn h2_sender(
    shared: &Shared,
    conn: &Conn,
    connector: &Connector,
    timeout: Duration,
    free: &mut bool,
) -> Result<H2Conn, Cause> {
    loop {
        let (usable, gone) = match conn.link.borrow().as_ref() {
            Some(l) if !l.sender.is_closed() => (Some(l.sender.clone()), None),
            Some(l) => (None, Some(l.sender.clone())),
            None => (None, None),
        };
        if let Some(sender) = usable {
            return Ok(sender);
        }
        if *free {
            shared.recorder.borrow_mut().reconnect_waits += 1;
        }
        *free = false; // time spent connecting is not the generator's send lag
        if conn.connecting.get() {
            conn.attempted.notified().await;
            continue;
        }
        if let Some(gone) = gone {
            retire_h2(shared, conn, &gone);
        }
        return open_h2(shared, conn, connector, timeout).await;
    }
}

/// An outcome of tag `tag` that ends with `class` (and `cause`) before anything was sent
/// — or, for a request sent again, before it could be (`sent`: the first time).
fn unsent(
    job: &Job,
    class: ErrorClass,
    cause: Option<Cause>,
    tag: u16,
    sent: Option<Instant>,
) -> Outcome {
    Outcome {
        intended: job.intended,
        sent,
        conn_was_free: false,
        done: Instant::now(),
        result: Err(class),
        bytes: 0,
        first_byte: None,
        stream: None,
        meta: ResponseMeta {
            tag,
            ..ResponseMeta::default()
        },
        cause,
    }
}

/// The tag of a request a script built: the one `request()` returned, else the plan's
/// first; counted as scheduled for that tag.
fn script_tag(shared: &Shared, tag: Option<&str>) -> u16 {
    let mut rec = shared.recorder.borrow_mut();
    let id = tag.map_or(0, |t| rec.tag_id(t));
    rec.tag_scheduled(id);
    id
}

/// What the response said beyond its status, with the request's tag; the group value
/// gets its index here.
fn meta_of(shared: &Shared, progress: &mut Progress, tag: u16, input: Option<u64>) -> ResponseMeta {
    // (A valid UTF-8 value is read in place: no allocation per response.)
    let group = progress.group.take().map(|value| {
        let name = value
            .as_ref()
            .map_or("(none)".into(), |v| String::from_utf8_lossy(v.as_bytes()));
        shared.recorder.borrow_mut().group_id(&name)
    });
    ResponseMeta {
        tag,
        group,
        input_tokens: input,
        ..progress.meta
    }
}

/// Sends one request on a stream of `conn` (opening the connection if needed).
async fn attempt_h2(
    shared: &Shared,
    conn: &Conn,
    job: Job,
    connector: &Connector,
    deadline: &mut Deadline,
) -> Outcome {
    // What to send: the fixed request, or the one the script builds (HTTP/2 has no
    // pipelining: a script returning several requests in one string is told so).
    let script = shared.script.as_ref();
    let mut context = None;
    let (request, tag) = match script {
        None => {
            let (r, tag) = connector.request_h2(job.seq);
            (Ok(r), tag)
        }
        Some(sc) => match sc.requests() {
            Ok(built) => {
                let tag = script_tag(shared, built.tag.as_deref());
                context = built.context;
                let list = built.requests;
                if list.len() == 1 {
                    (connector.to_h2(list[0].to_request()), tag)
                } else {
                    let m = format!(
                        "request() returned {} requests in one string (wrk's pipelining); \
                         HTTP/2 has no pipelining: return one request per call, or drop --http2",
                        list.len()
                    );
                    (Err(m), tag)
                }
            }
            Err(m) => (Err(m.to_string()), script_tag(shared, None)),
        },
    };
    // The context goes back to the script with the response, or is let go of.
    let forget = Forget(script, std::cell::Cell::new(context));
    let request = match request {
        Ok(r) => r,
        Err(m) => {
            shared.recorder.borrow_mut().script_message(m);
            return unsent(&job, ErrorClass::Script, None, tag, None);
        }
    };
    let collect = script.is_some_and(|s| s.wants_response());
    let mut free = job.free;
    let timeout = deadline.timeout;
    // Sent (the first time), and whether the thread stays awake for the answer.
    let mut first: Option<(Instant, bool)> = None;
    let mut retried = [false; 3];
    let (sent, done, result, mut progress, sender, frames) = loop {
        let opened = open_stream(
            shared, conn, connector, &request, deadline, first, &mut free,
        );
        let (stream, sender) = match opened.await {
            Ok(s) => s,
            Err((class, cause)) => {
                if first.is_some_and(|(_, awaited)| awaited) {
                    clock::response_arrived();
                }
                return unsent(&job, class, Some(cause), tag, first.map(|f| f.0));
            }
        };
        let (sent, awaited) = *first.get_or_insert_with(|| {
            let sent = Instant::now();
            (sent, mark_sent(shared, sent))
        });
        let frames = sender.frames_read();
        let mut progress = Progress::default();
        let gap = |gap| shared.recorder.borrow_mut().record_gap(tag, gap);
        // This stream's own stamps (not the connection's latest read: that may be another
        // stream's).
        let stamped = conn
            .link
            .borrow()
            .as_ref()
            .is_some_and(|l| l.arrival.is_some());
        let arrival = stamped.then(|| std::cell::Cell::new(None));
        let how = Reader {
            arrival: arrival.as_ref(),
            since: sent,
            rule: &shared.rule,
            collect,
            inspect: &shared.inspect,
        };
        let work = read_h2(stream, how, &mut progress, gap);
        // A timeout drops the stream, which resets it (RST_STREAM CANCEL); the connection
        // stays. The deadline runs from the first send, retries included.
        let result = deadline.run(sent + timeout, work).await;
        // Never processed by the server (RFC 9113 §8.7): sent again, once per cause, on
        // another connection (a GOAWAY's connection takes no more streams).
        let refused = match &result {
            Ok(Err(ExchangeError::H2(H2Error::GoAway(_)))) => Some(Retry::GoAway),
            Ok(Err(ExchangeError::H2(H2Error::Reset(REFUSED_STREAM)))) => {
                Some(Retry::RefusedStream)
            }
            _ => None,
        };
        if let Some(why) = refused.filter(|w| connector.retry() && !retried[w.index()]) {
            retried[why.index()] = true;
            shared.recorder.borrow_mut().retried[why.index()] += 1;
            if why == Retry::GoAway {
                retire_h2(shared, conn, &sender);
            }
            continue;
        }
        let done = ended(shared, &result, arrival.as_ref(), sent, awaited);
        break (sent, done, result, progress, sender, frames);
    };
    note_limit(shared, conn, &sender);
    let mut script_failed = None;
    if let (Ok(Ok(())), Some(sc)) = (&result, script) {
        if let Some((headers, body)) = progress.collected.take() {
            let ctx = forget.1.take();
            if let Err(m) = sc.response(progress.status, &headers, &body, ctx.as_ref()) {
                script_failed = Some(m);
            }
            forget.1.set(ctx);
        }
    }
    let result = match result {
        Ok(Ok(())) => completed(shared, script_failed, &progress),
        Ok(Err(e)) => {
            // A connection-level failure (I/O, GOAWAY) retires the connection; a stream the
            // server reset leaves it as it is.
            if let ExchangeError::H2(h) = &e {
                if h.ends_connection() {
                    retire_h2(shared, conn, &sender);
                }
            }
            Err(failed(&progress, &e))
        }
        Err(_elapsed) => {
            if sender.frames_read() == frames {
                check_alive(sender, connector.connect_timeout());
            }
            Err(timed_out(&progress))
        }
    };
    let meta = meta_of(shared, &mut progress, tag, connector.input_tokens(job.seq));
    outcome(&job, sent, free, done, result, progress, meta)
}

/// A stream timed out and nothing at all was read on its connection meanwhile: the
/// connection may be gone without a word (a load balancer dropped it). It is PINGed, and
/// retired — its streams failing at once, the next request opening a new one — if the PING
/// is not answered within the connect timeout; otherwise it stays.
fn check_alive(sender: H2Conn, within: Duration) {
    sender.ping();
    tokio::task::spawn_local(async move {
        tokio::time::sleep(within).await;
        if !sender.answered() && !sender.is_closed() {
            sender.retire(H2Error::Silent);
        }
    });
}

/// Opens a stream for `request` on `conn`'s connection (opening the connection if need
/// be), once the server's stream limit leaves room for it: never more streams in flight
/// than the server allows. Waiting for room counts as waiting for a connection (not the
/// generator's send lag) and ends, a timeout, at `--timeout` after the first send (or
/// from now, before it). A connection found gone (nothing sent) is replaced once.
async fn open_stream(
    shared: &Shared,
    conn: &Conn,
    connector: &Connector,
    request: &H2Request,
    deadline: &mut Deadline,
    first: Option<(Instant, bool)>,
    free: &mut bool,
) -> Result<(H2Stream, H2Conn), (ErrorClass, Cause)> {
    let timeout = deadline.timeout;
    let mut tries = 0;
    loop {
        let sender = h2_sender(shared, conn, connector, timeout, free)
            .await
            .map_err(|c| (ErrorClass::Connect, c))?;
        if !sender.has_room() {
            *free = false;
            let limit = first.map_or_else(Instant::now, |f| f.0) + timeout;
            let room = poll_fn(|cx| sender.poll_room(cx));
            if deadline.run(limit, room).await.is_err() {
                let why = "no room under the server's SETTINGS_MAX_CONCURRENT_STREAMS";
                return Err((ErrorClass::Timeout, Cause::Reason(why)));
            }
        }
        match sender.open(request) {
            Ok(stream) => return Ok((stream, sender)),
            Err(e) => {
                retire_h2(shared, conn, &sender);
                if tries == 0 {
                    tries += 1;
                    continue;
                }
                let e = ExchangeError::H2NotOpened(e);
                return Err((classify(&e), cause(&e)));
            }
        }
    }
}

/// A request's script context, let go of whatever way the request ends.
struct Forget<'a>(
    Option<&'a crate::script::WorkerScript>,
    std::cell::Cell<Option<mlua::RegistryKey>>,
);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.0 {
            s.forget(self.1.take());
        }
    }
}

/// Drops a broken or abandoned connection.
pub(super) fn close_conn(shared: &Shared, sender: &mut Option<H1Conn>) {
    if sender.take().is_some() {
        shared.open.set(shared.open.get() - 1);
    }
}

/// Sends one request on this slot's connection (re-opening it if needed).
pub(super) async fn attempt(
    shared: &Shared,
    sender: &mut Option<H1Conn>,
    job: Job,
    connector: &Connector,
    deadline: &mut Deadline,
) -> Outcome {
    // What to send: the fixed request, or what the script builds (building is not I/O,
    // and never moves the schedule).
    let mut context = None;
    let (scripted, tag) = match &shared.script {
        None => (None, connector.tag_of(job.seq)),
        Some(sc) => match sc.requests() {
            Ok(built) => {
                context = built.context;
                (
                    Some(built.requests),
                    script_tag(shared, built.tag.as_deref()),
                )
            }
            Err(m) => {
                let tag = script_tag(shared, None);
                shared.recorder.borrow_mut().script_message(m.to_string());
                return unsent(&job, ErrorClass::Script, None, tag, None);
            }
        },
    };
    let forget = Forget(shared.script.as_ref(), std::cell::Cell::new(context));
    // The fixed request (or the mix's kind), built once for every try.
    let fixed = scripted.is_none().then(|| connector.request(job.seq).0);
    let mut free = job.free;
    // Sent (the first time), and whether the thread stays awake for the answer.
    let mut first: Option<(Instant, bool)> = None;
    let mut retried = false;
    loop {
        if !sender.as_mut().is_some_and(H1Conn::usable) {
            close_conn(shared, sender);
            if free {
                shared.recorder.borrow_mut().reconnect_waits += 1;
            }
            // Time spent connecting is not the generator's send lag.
            free = false;
            let cause = match open_timed(shared, connector, deadline.timeout).await {
                Ok(Ok((Link::H1(conn), timing))) => {
                    *sender = Some(conn);
                    shared.open.set(shared.open.get() + 1);
                    let mut rec = shared.recorder.borrow_mut();
                    rec.connects += 1;
                    rec.reconnects += 1;
                    rec.connected(timing.tcp, timing.tls);
                    None
                }
                Ok(Ok((Link::H2(_), _))) => unreachable!("an HTTP/1.1 connector opens HTTP/1.1"),
                Ok(Err(e)) => Some(e.cause()),
                Err(_) => Some(Cause::Reason("no connection within --timeout")),
            };
            if cause.is_some() {
                if first.is_some_and(|(_, awaited)| awaited) {
                    clock::response_arrived();
                }
                return unsent(&job, ErrorClass::Connect, cause, tag, first.map(|f| f.0));
            }
        }
        let s = sender.as_mut().expect("connected above");
        // The kernel's stamp of what is read from here on is this request's response.
        let arrival = s.arrival().cloned();
        if let Some(a) = &arrival {
            a.set(None);
        }
        // The io_uring path: the kernel's timer sends it at its due time (a retry at once),
        // and its transmit stamp says when it left.
        let mut by_ring = None;
        if let (Some(ring), Some(wire)) = (&shared.ring, &fixed) {
            let due = if first.is_some() {
                Instant::now()
            } else {
                job.intended
            };
            by_ring = send_by_ring(ring, s, wire, due, deadline)
                .await
                .map(|r| match r {
                    Ok(t) => {
                        if first.is_none() {
                            first = Some((t, mark_sent(shared, t)));
                        }
                        None
                    }
                    Err(ended) => Some(ended),
                });
        }
        let (ring_sent, ring_failed) = (by_ring.is_some(), by_ring.flatten());
        let (sent, awaited) = *first.get_or_insert_with(|| {
            let sent = Instant::now();
            (sent, mark_sent(shared, sent))
        });
        let mut progress = Progress::default();
        let gap = |gap| shared.recorder.borrow_mut().record_gap(tag, gap);
        let mut script_failed = None;
        let work = async {
            let Some(list) = &scripted else {
                let wire = fixed
                    .as_ref()
                    .expect("built for a request without a script");
                let how = Reader {
                    arrival: arrival.as_deref(),
                    since: sent,
                    rule: &shared.rule,
                    collect: false,
                    inspect: &shared.inspect,
                };
                if ring_sent {
                    return answer(s, wire, how, &mut progress, gap).await;
                }
                return exchange(s, wire, how, &mut progress, gap).await;
            };
            let script = shared
                .script
                .as_ref()
                .expect("scripted requests come from a script");
            let collect = script.wants_response();
            let (mut bytes, mut first_byte) = (0, None);
            // Several requests in one string (wrk's pipelining idiom) go out in order on this
            // connection; each response is counted, the last one ends the scheduled request.
            for (i, r) in list.iter().enumerate() {
                if i > 0 {
                    if !s.reusable() {
                        // The server closed the connection after the last answer: the rest
                        // of the string cannot go on it.
                        return Err(super::h1::H1Error::Closed.into());
                    }
                    let mut rec = shared.recorder.borrow_mut();
                    rec.status[usize::from(progress.status).min(999)] += 1;
                    rec.extra_requests += 1;
                }
                progress = Progress::default();
                let how = Reader {
                    arrival: arrival.as_deref(),
                    since: sent,
                    rule: &shared.rule,
                    collect,
                    inspect: &shared.inspect,
                };
                let wire = Wire::scripted(r.wire().clone(), r.is_head());
                exchange(s, &wire, how, &mut progress, gap).await?;
                bytes += progress.bytes;
                first_byte = first_byte.or(progress.first_byte);
                if let Some((headers, body)) = progress.collected.take() {
                    let ctx = forget.1.take();
                    if let Err(m) = script.response(progress.status, &headers, &body, ctx.as_ref())
                    {
                        script_failed = Some(m);
                    }
                    forget.1.set(ctx);
                }
            }
            progress.bytes = bytes;
            progress.first_byte = first_byte;
            Ok(())
        };
        let result = match ring_failed {
            Some(failed) => {
                drop(work);
                failed
            }
            None => deadline.run(sent + deadline.timeout, work).await,
        };
        // The keep-alive race: the server closed this reused connection as the request went
        // out, without a byte of an answer, so it never processed it. Sent again once, on a
        // new connection, when that is harmless (RFC 9110 §9.2.2).
        if let Ok(Err(_)) = &result {
            let race = sender.as_ref().is_some_and(H1Conn::closed_on_reuse);
            if race
                && !retried
                && connector.retry()
                && retry_safe(connector, &job, scripted.as_deref())
            {
                retried = true;
                shared.recorder.borrow_mut().retried[Retry::ClosedOnReuse.index()] += 1;
                close_conn(shared, sender);
                continue;
            }
        }
        let done = ended(shared, &result, arrival.as_deref(), sent, awaited);
        // The timer path: when the request began to leave, by the kernel's transmit stamp
        // (the io_uring path's `sent` is its stamp already; a request sent again keeps its
        // first time; a script's string of requests, its first).
        let kernel_sent = sender.as_ref().and_then(H1Conn::kernel_sent);
        let sent = match kernel_sent {
            Some(k) if !ring_sent && !retried && scripted.is_none() => {
                shared.kernel_stamped.set(shared.kernel_stamped.get() + 1);
                k.max(sent)
            }
            _ => sent,
        };
        let result = match result {
            Ok(Ok(())) => {
                // The server said it closes the connection after this answer.
                if sender.as_ref().is_some_and(|c| !c.reusable()) {
                    close_conn(shared, sender);
                }
                completed(shared, script_failed, &progress)
            }
            Ok(Err(e)) => {
                close_conn(shared, sender);
                Err(failed(&progress, &e))
            }
            Err(_elapsed) => {
                // HTTP/1.1 cannot cancel a request: the connection is abandoned with it.
                close_conn(shared, sender);
                Err(timed_out(&progress))
            }
        };
        let meta = meta_of(shared, &mut progress, tag, connector.input_tokens(job.seq));
        return outcome(&job, sent, free, done, result, progress, meta);
    }
}

/// How an HTTP/1.1 exchange ended: the response read (or what failed), or its deadline.
type Exchanged = Result<Result<(), ExchangeError>, TimedOut>;

/// The io_uring path: queues `wire` on the thread's ring to leave at `due` (at once if that
/// has passed) and waits until it left — when, by the kernel's transmit stamp — or until the
/// send failed or outlived `--timeout` (what the exchange then ended in). None where the
/// connection cannot (TLS: never on this path).
async fn send_by_ring(
    ring: &Rc<super::uring::Ring>,
    conn: &mut H1Conn,
    wire: &Wire,
    due: Instant,
    deadline: &mut Deadline,
) -> Option<Result<Instant, Exchanged>> {
    let (fd, key) = conn.send_elsewhere(wire.bytes.len())?;
    let limit = due.max(Instant::now()) + deadline.timeout;
    let send = ring.send_at(fd, wire.bytes.clone(), due, key);
    Some(match deadline.run(limit, send).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(Ok(Err(ExchangeError::from(H1Error::Write(e))))),
        Err(t) => Err(Err(t)),
    })
}

/// Whether request `job` may be sent twice: the fixed request or a script's single one
/// (not a pipelined string), with an idempotent method or no body.
fn retry_safe(
    connector: &Connector,
    job: &Job,
    scripted: Option<&[crate::script::raw::RawRequest]>,
) -> bool {
    match scripted {
        None => connector.request(job.seq).0.retry_safe(),
        Some([one]) => Wire::scripted(one.wire().clone(), one.is_head()).retry_safe(),
        Some(_) => false,
    }
}
