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
use super::exchange::{arrived, classify, exchange, read_h2, ExchangeError, Progress, Reader};
use super::h1::{H1Conn, Wire};
use super::http2::H2Conn;
use crate::clock;
use crate::outcome::{ErrorClass, Outcome, ResponseMeta};
use crate::script::HookError;
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
        shared.finish(&outcome);
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

/// How a completed exchange counts: a script's `response()` failure, an event stream the
/// token rule could not read (measured as far as it went), else its status.
fn completed(
    shared: &Shared,
    script_failed: Option<HookError>,
    progress: &Progress,
) -> Result<u16, ErrorClass> {
    if let Some(m) = script_failed {
        shared.recorder.borrow_mut().script_message(m.to_string());
        return Err(ErrorClass::Script);
    }
    if progress.stream.is_some_and(|s| s.malformed) {
        return Err(ErrorClass::Protocol);
    }
    Ok(progress.status)
}

/// A failed exchange's class: an event stream cut off mid-way is a broken stream, not just
/// a lost read.
fn failed(progress: &Progress, e: &ExchangeError) -> ErrorClass {
    if progress.stream.is_some() {
        ErrorClass::Protocol
    } else {
        classify(e)
    }
}

/// The outcome of a request sent at `sent`, with what its response said (`meta`).
fn outcome(
    job: &Job,
    sent: Instant,
    free: bool,
    done: Instant,
    result: Result<u16, ErrorClass>,
    progress: Progress,
    meta: ResponseMeta,
) -> Outcome {
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
    tokio::time::timeout(timeout, Box::pin(connector.connect_timed())).await
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
        shared.finish(&outcome);
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
) -> Option<H2Conn> {
    conn.connecting.set(true);
    let r = open_timed(shared, connector, timeout).await;
    conn.connecting.set(false);
    conn.attempted.notify_waiters();
    let Ok(Ok((Link::H2(link), timing))) = r else {
        return None;
    };
    shared.stamped.set(link.arrival.is_some());
    conn.set_limit(shared.streams.min(link.server_limit()));
    let sender = link.sender.clone();
    *conn.link.borrow_mut() = Some(link);
    shared.open.set(shared.open.get() + 1);
    let mut rec = shared.recorder.borrow_mut();
    rec.connects += 1;
    if conn.was_open.replace(true) {
        rec.reconnects += 1;
    }
    rec.connected(timing.tcp, timing.tls);
    Some(sender)
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
) -> Option<H2Conn> {
    loop {
        let (usable, gone) = match conn.link.borrow().as_ref() {
            Some(l) if !l.sender.is_closed() => (Some(l.sender.clone()), None),
            Some(l) => (None, Some(l.sender.clone())),
            None => (None, None),
        };
        if let Some(sender) = usable {
            return Some(sender);
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

/// An outcome of tag `tag` that ends before anything was sent.
fn unsent(job: &Job, class: ErrorClass, tag: u16) -> Outcome {
    Outcome {
        intended: job.intended,
        sent: None,
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
fn meta_of(shared: &Shared, progress: &mut Progress, tag: u16) -> ResponseMeta {
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
            return unsent(&job, ErrorClass::Script, tag);
        }
    };
    let collect = script.is_some_and(|s| s.wants_response());
    let mut free = job.free;
    // Open the stream; if the connection turns out gone (nothing was sent), once more on a
    // new one.
    let mut tries = 0;
    let (sent, stream, sender) = loop {
        let Some(sender) = h2_sender(shared, conn, connector, deadline.timeout, &mut free).await
        else {
            return unsent(&job, ErrorClass::Connect, tag);
        };
        match sender.open(&request) {
            Ok(stream) => break (Instant::now(), stream, sender),
            Err(e) => {
                retire_h2(shared, conn, &sender);
                if tries == 0 {
                    tries += 1;
                    continue;
                }
                return unsent(&job, classify(&ExchangeError::H2NotOpened(e)), tag);
            }
        }
    };
    let awaited = mark_sent(shared, sent);
    let mut progress = Progress::default();
    let gap = |gap| shared.recorder.borrow_mut().record_gap(tag, gap);
    let arrival = conn.link.borrow().as_ref().and_then(|l| l.arrival.clone());
    let how = Reader {
        arrival: arrival.as_deref(),
        since: sent,
        rule: &shared.rule,
        collect,
        inspect: &shared.inspect,
    };
    let work = read_h2(stream, how, &mut progress, gap);
    // A timeout drops the stream, which resets it (RST_STREAM CANCEL); the connection stays.
    let result = deadline.run(sent + deadline.timeout, work).await;
    let done = ended(shared, &result, arrival.as_deref(), sent, awaited);
    conn.set_limit(shared.streams.min(sender.server_limit()));
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
        Err(_elapsed) => Err(ErrorClass::Timeout),
    };
    let meta = meta_of(shared, &mut progress, tag);
    outcome(&job, sent, free, done, result, progress, meta)
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
                return unsent(&job, ErrorClass::Script, tag);
            }
        },
    };
    let forget = Forget(shared.script.as_ref(), std::cell::Cell::new(context));
    let usable = sender.as_mut().is_some_and(H1Conn::usable);
    let mut free = job.free;
    if !usable {
        close_conn(shared, sender);
        if free {
            shared.recorder.borrow_mut().reconnect_waits += 1;
        }
        // Time spent connecting is not the generator's send lag.
        free = false;
        match open_timed(shared, connector, deadline.timeout).await {
            Ok(Ok((Link::H1(conn), timing))) => {
                *sender = Some(conn);
                shared.open.set(shared.open.get() + 1);
                let mut rec = shared.recorder.borrow_mut();
                rec.connects += 1;
                rec.reconnects += 1;
                rec.connected(timing.tcp, timing.tls);
            }
            _ => return unsent(&job, ErrorClass::Connect, tag),
        }
    }
    let s = sender.as_mut().expect("connected above");
    // The kernel's stamp of what is read from here on is this request's response.
    let arrival = s.arrival().cloned();
    if let Some(a) = &arrival {
        a.set(None);
    }
    let sent = Instant::now();
    let awaited = mark_sent(shared, sent);
    let mut progress = Progress::default();
    let gap = |gap| shared.recorder.borrow_mut().record_gap(tag, gap);
    let mut script_failed = None;
    let work = async {
        let Some(list) = &scripted else {
            let (wire, _) = connector.request(job.seq);
            let how = Reader {
                arrival: arrival.as_deref(),
                since: sent,
                rule: &shared.rule,
                collect: false,
                inspect: &shared.inspect,
            };
            return exchange(s, &wire, how, &mut progress, gap).await;
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
            let wire = Wire {
                bytes: r.wire().clone(),
                head: r.is_head(),
            };
            exchange(s, &wire, how, &mut progress, gap).await?;
            bytes += progress.bytes;
            first_byte = first_byte.or(progress.first_byte);
            if let Some((headers, body)) = progress.collected.take() {
                let ctx = forget.1.take();
                if let Err(m) = script.response(progress.status, &headers, &body, ctx.as_ref()) {
                    script_failed = Some(m);
                }
                forget.1.set(ctx);
            }
        }
        progress.bytes = bytes;
        progress.first_byte = first_byte;
        Ok(())
    };
    let result = deadline.run(sent + deadline.timeout, work).await;
    let done = ended(shared, &result, arrival.as_deref(), sent, awaited);
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
            Err(ErrorClass::Timeout)
        }
    };
    let meta = meta_of(shared, &mut progress, tag);
    outcome(&job, sent, free, done, result, progress, meta)
}
