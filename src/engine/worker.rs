//! One worker thread's loop: due → free connection (else FIFO queue) → send → record.
//!
//! Everything here runs on one current-thread runtime, so state is shared through
//! `Rc`/`Cell` without locks. The pacer task walks the thread's `Schedule`, waits for each
//! due time with the precise `Timer`, and hands the request to an idle connection, or
//! queues it when all are busy; its latency keeps running from the intended time either
//! way. At high rates the pacer sends everything already due before it waits again, so a
//! late wake-up costs latency (recorded) rather than rate.
//!
//! With a Lua script, the thread's own `WorkerScript` builds each request (its `request()`
//! may return several, sent in order on the same connection), sees each response, and may
//! give a connection a think time (`delay()`) or stop the thread; none of it moves the
//! schedule.
//!
//! Every request the pacer releases is counted as scheduled and ends in exactly one place:
//! the recorder (completed or an error class) or, if still queued or in flight when the
//! grace period ends, the `unfinished` count.
//!
//! Used by `engine::run`, one call per thread.

use super::conn::{classify, exchange, Connector, Progress};
use super::outcome::{ErrorClass, Outcome};
use super::Stop;
use crate::clock::{self, set_thread_timer_slack_min, RecentP90, Timer, MAX_AWAKE};
use crate::pacer::Schedule;
use crate::record::{Interval, Recorder};
use crate::script::{Portable, ScriptBase, ThreadSetup, WorkerScript};
use crate::stream::{Slo, TokenRule};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch, Notify};

/// What a worker thread needs to run its share of the test.
pub struct WorkerSpec {
    /// This thread's share of the schedule.
    pub schedule: Schedule,
    /// Connections this thread owns.
    pub connections: usize,
    /// The measured load duration.
    pub duration: Duration,
    /// Per-request timeout from the actual send.
    pub timeout: Duration,
    /// Wait for queued and in-flight requests after the schedule ends.
    pub grace: Duration,
    /// Busy-wait window before each due time.
    pub spin: Duration,
    /// Opens connections and builds requests.
    pub connector: Arc<Connector>,
    /// Which event-stream events are tokens.
    pub rule: TokenRule,
    /// Goodput targets.
    pub slos: Vec<Slo>,
    /// The Lua script and what `setup()` gave this thread; `check` on thread 0.
    pub script: Option<(ScriptBase, ThreadSetup, bool)>,
    /// Stop requests from the coordinator (Ctrl-C).
    pub stop: watch::Receiver<Stop>,
    /// Where the per-second snapshots go.
    pub intervals: mpsc::UnboundedSender<Interval>,
    /// Told once the initial connections are open (or failed), or why the thread cannot
    /// start (its script's init() failed).
    pub ready: std::sync::mpsc::Sender<Result<(), String>>,
    /// The run's common start time, from the coordinator.
    pub start: oneshot::Receiver<Instant>,
}

/// What a worker thread hands back at the end.
#[derive(Debug)]
pub struct WorkerResult {
    /// Its measurements.
    pub recorder: Recorder,
    /// Requests still queued or in flight when the grace period ended.
    pub unfinished: u64,
    /// Connections open at the end of the load.
    pub open: usize,
    /// When it stopped releasing requests (the end of the load window, or the Ctrl-C).
    pub schedule_end: Instant,
    /// Whether a stop request ended the schedule early.
    pub interrupted: bool,
    /// Requests written by the time the schedule ended (for the achieved rate).
    pub sent_in_window: u64,
    /// Share of the load window the thread was busy (not parked, not spinning idle), 0..=1.
    pub busy: f64,
    /// The pacer's waits for due times, and how many stayed awake for a response.
    pub waits: (u64, u64),
    /// The script's globals at the end (for `thread:get` in `done()`).
    pub globals: Vec<(String, Portable)>,
}

impl WorkerResult {
    /// The result of a thread whose run never started (nothing was scheduled).
    fn not_started(recorder: Recorder) -> WorkerResult {
        WorkerResult {
            recorder,
            unfinished: 0,
            open: 0,
            schedule_end: Instant::now(),
            interrupted: true,
            sent_in_window: 0,
            busy: 0.0,
            waits: (0, 0),
            globals: Vec::new(),
        }
    }
}

/// A released request.
#[derive(Clone, Copy)]
struct Job {
    intended: Instant,
    /// A connection was idle when it became due.
    free: bool,
}

struct Slot {
    job: Cell<Option<Job>>,
    wake: Notify,
}

/// Requests that found every connection busy, oldest first. Requests are released in
/// schedule order and only queue when no connection is idle, so the queue is always a run
/// of consecutive sequence numbers: two integers, whatever the backlog — memory stays flat
/// even when a server stops answering for an hour.
struct Backlog {
    schedule: Schedule,
    start: Cell<Instant>,
    head: Cell<u64>,
    len: Cell<u64>,
}

impl Backlog {
    fn push(&self, seq: u64) {
        if self.len.get() == 0 {
            self.head.set(seq);
        }
        debug_assert_eq!(
            seq,
            self.head.get() + self.len.get(),
            "backlog is consecutive"
        );
        self.len.set(self.len.get() + 1);
    }

    fn pop(&self) -> Option<Job> {
        if self.len.get() == 0 {
            return None;
        }
        let seq = self.head.get();
        self.head.set(seq + 1);
        self.len.set(self.len.get() - 1);
        Some(Job {
            intended: self.start.get() + self.schedule.due(seq),
            free: false,
        })
    }

    fn len(&self) -> u64 {
        self.len.get()
    }

    fn clear(&self) {
        self.len.set(0);
    }
}

/// The thread's shared state (single-threaded: `Rc`, `Cell`, `RefCell`).
struct Shared {
    queue: Backlog,
    idle: RefCell<VecDeque<usize>>,
    slots: Vec<Slot>,
    closing: Cell<bool>,
    /// Released to a connection and not yet recorded.
    outstanding: Cell<u64>,
    drained: Notify,
    open: Cell<usize>,
    connecting: Cell<usize>,
    connected: Notify,
    recorder: RefCell<Recorder>,
    intervals: mpsc::UnboundedSender<Interval>,
    rule: TokenRule,
    script: Option<WorkerScript>,
    /// Recent response times (send to end), for staying awake while one is on its way.
    response_times: RefCell<RecentP90>,
    /// Whether the thread may spin at all (`--spin` > 0).
    may_spin: bool,
    /// The end of the load window (set at the start).
    window_end: Cell<Option<Instant>>,
    /// Requests written before the end of the load window (for the achieved rate).
    sent_in_window: Cell<u64>,
}

/// The most of a thread's time spent awake waiting for responses: the expected response
/// time × the thread's rate must stay under this share (a quarter of the core).
const RESPONSE_SPIN_BUDGET: f64 = 0.25;

impl Shared {
    /// Releases a due request: to an idle connection, else to the FIFO queue.
    fn dispatch(&self, seq: u64, intended: Instant, now: Instant) {
        let mut rec = self.recorder.borrow_mut();
        rec.scheduled(now.saturating_duration_since(intended));
        if let Some(id) = self.idle.borrow_mut().pop_front() {
            self.outstanding.set(self.outstanding.get() + 1);
            let slot = &self.slots[id];
            slot.job.set(Some(Job {
                intended,
                free: true,
            }));
            slot.wake.notify_one();
        } else {
            rec.queued += 1;
            self.queue.push(seq);
        }
    }

    /// Keeps the thread awake for the response to a request sent at `sent`, when responses
    /// have been coming back within `MAX_AWAKE` and staying awake for them costs at
    /// most `RESPONSE_SPIN_BUDGET` of the thread's time; says whether it did.
    fn stay_awake_for_response(&self, sent: Instant) -> bool {
        match self.expected_response() {
            Some(expected) => {
                clock::await_response(sent + expected);
                true
            }
            None => false,
        }
    }

    /// The response time worth staying awake for (see `stay_awake_for_response`), if any.
    fn expected_response(&self) -> Option<Duration> {
        if !self.may_spin {
            return None;
        }
        let recent = self.response_times.borrow();
        let expected = recent.p90();
        if recent.len() < 8 || expected.is_zero() || expected > MAX_AWAKE {
            return None;
        }
        let rate = self.queue.schedule.per_second();
        (rate * expected.as_secs_f64() <= RESPONSE_SPIN_BUDGET).then_some(expected)
    }

    /// The next request for connection `id`, or None when the run is over.
    async fn next_job(&self, id: usize) -> Option<Job> {
        if let Some(job) = self.queue.pop() {
            self.outstanding.set(self.outstanding.get() + 1);
            return Some(job);
        }
        if self.closing.get() {
            return None;
        }
        self.idle.borrow_mut().push_back(id);
        let slot = &self.slots[id];
        loop {
            slot.wake.notified().await;
            if let Some(job) = slot.job.take() {
                return Some(job);
            }
            if self.closing.get() {
                return None;
            }
        }
    }

    fn finish(&self, outcome: &Outcome) {
        self.recorder.borrow_mut().record(outcome);
        self.outstanding.set(self.outstanding.get() - 1);
        if self.closing.get() && self.outstanding.get() == 0 && self.queue.len() == 0 {
            self.drained.notify_one();
        }
    }

    /// Sends the current interval (and any empty ones after it) once `t` has passed its end,
    /// so a second's counts follow the schedule's clock: a request due at 1.0004 s is
    /// counted in second 1 even if the once-a-second tick comes a millisecond late.
    fn rotate(&self, start: Instant, t: Instant) {
        let mut rec = self.recorder.borrow_mut();
        while start + Duration::from_secs(u64::from(rec.interval.index) + 1) <= t {
            let next = rec.interval.index + 1;
            let _ = self.intervals.send(rec.take_interval(next));
        }
    }

    /// Ends the schedule: idle connections exit, busy ones finish what they have.
    fn close(&self) {
        self.closing.set(true);
        for id in self.idle.borrow_mut().drain(..) {
            self.slots[id].wake.notify_one();
        }
    }
}

/// One connection slot's loop: keep a connection, take jobs, record outcomes.
async fn connection(shared: Rc<Shared>, id: usize, connector: Arc<Connector>, timeout: Duration) {
    let mut sender = None;
    if let Ok(Ok(s)) = tokio::time::timeout(timeout, connector.connect()).await {
        sender = Some(s);
        shared.open.set(shared.open.get() + 1);
        shared.recorder.borrow_mut().connects += 1;
    }
    shared.connecting.set(shared.connecting.get() - 1);
    if shared.connecting.get() == 0 {
        shared.connected.notify_one();
    }
    while let Some(job) = shared.next_job(id).await {
        let outcome = attempt(&shared, &mut sender, job, &connector, timeout).await;
        shared.finish(&outcome);
        // A script's delay(): this connection thinks before its next request; the
        // schedule does not wait (due requests go to other connections, or queue).
        let think = shared.script.as_ref().map(|s| s.delay());
        match think {
            Some(Ok(Some(d))) if !d.is_zero() => tokio::time::sleep(d).await,
            Some(Err(m)) => shared.recorder.borrow_mut().script_message(m),
            _ => {}
        }
    }
}

/// Drops a broken or abandoned connection.
fn close_conn(shared: &Shared, sender: &mut Option<SendRequest<Full<Bytes>>>) {
    if sender.take().is_some() {
        shared.open.set(shared.open.get() - 1);
    }
}

/// Sends one request on this slot's connection (re-opening it if needed).
async fn attempt(
    shared: &Shared,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    job: Job,
    connector: &Connector,
    timeout: Duration,
) -> Outcome {
    // What to send: the fixed request, or what the script builds (building is not I/O,
    // and never moves the schedule).
    let scripted = match &shared.script {
        None => None,
        Some(sc) => match sc.requests() {
            Ok(list) => Some(list),
            Err(m) => {
                shared.recorder.borrow_mut().script_message(m);
                return Outcome {
                    intended: job.intended,
                    sent: None,
                    conn_was_free: false,
                    done: Instant::now(),
                    result: Err(ErrorClass::Script),
                    bytes: 0,
                    first_byte: None,
                    stream: None,
                };
            }
        },
    };
    let usable = match sender.as_mut() {
        Some(s) => s.ready().await.is_ok(),
        None => false,
    };
    let mut free = job.free;
    if !usable {
        close_conn(shared, sender);
        free = false; // time spent connecting is not the generator's send lag
        match tokio::time::timeout(timeout, connector.connect()).await {
            Ok(Ok(s)) => {
                *sender = Some(s);
                shared.open.set(shared.open.get() + 1);
                let mut rec = shared.recorder.borrow_mut();
                rec.connects += 1;
                rec.reconnects += 1;
            }
            _ => {
                return Outcome {
                    intended: job.intended,
                    sent: None,
                    conn_was_free: false,
                    done: Instant::now(),
                    result: Err(ErrorClass::Connect),
                    bytes: 0,
                    first_byte: None,
                    stream: None,
                }
            }
        }
    }
    let s = sender.as_mut().expect("connected above");
    let sent = Instant::now();
    shared.recorder.borrow_mut().sent();
    if shared.window_end.get().is_some_and(|end| sent < end) {
        shared.sent_in_window.set(shared.sent_in_window.get() + 1);
    }
    let awaited = shared.stay_awake_for_response(sent);
    let mut progress = Progress::default();
    let gap = |gap| shared.recorder.borrow_mut().record_gap(gap);
    let mut script_failed = None;
    let work = async {
        let Some(list) = &scripted else {
            return exchange(
                s,
                connector.request(),
                &shared.rule,
                &mut progress,
                false,
                gap,
            )
            .await;
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
                s.ready().await?;
                let mut rec = shared.recorder.borrow_mut();
                rec.status[usize::from(progress.status).min(999)] += 1;
                rec.extra_requests += 1;
            }
            progress = Progress::default();
            exchange(s, r.to_request(), &shared.rule, &mut progress, collect, gap).await?;
            bytes += progress.bytes;
            first_byte = first_byte.or(progress.first_byte);
            if let Some((headers, body)) = progress.collected.take() {
                if let Err(m) = script.response(progress.status, &headers, &body) {
                    script_failed = Some(m);
                }
            }
        }
        progress.bytes = bytes;
        progress.first_byte = first_byte;
        Ok(())
    };
    let result = tokio::time::timeout_at((sent + timeout).into(), work).await;
    let done = Instant::now();
    if awaited {
        clock::response_arrived();
    }
    if matches!(result, Ok(Ok(()))) {
        shared.response_times.borrow_mut().record(done - sent);
    }
    let result = match result {
        Ok(Ok(())) if script_failed.is_some() => {
            let m = script_failed.take().expect("checked");
            shared.recorder.borrow_mut().script_message(m);
            Err(ErrorClass::Script)
        }
        // A stream the token rule could not read is a protocol error, measured as far as it went.
        Ok(Ok(())) if progress.stream.is_some_and(|s| s.malformed) => Err(ErrorClass::Protocol),
        Ok(Ok(())) => Ok(progress.status),
        Ok(Err(e)) => {
            close_conn(shared, sender);
            // An event stream cut off mid-way is a broken stream, not just a lost read.
            if progress.stream.is_some() {
                Err(ErrorClass::Protocol)
            } else {
                Err(classify(&e))
            }
        }
        Err(_elapsed) => {
            // HTTP/1.1 cannot cancel a request: the connection is abandoned with it.
            close_conn(shared, sender);
            Err(ErrorClass::Timeout)
        }
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
    }
}

/// Resolves when a stop at least as strong as `level` is requested; never if the
/// coordinator is gone.
async fn stop_requested(rx: &mut watch::Receiver<Stop>, level: Stop) -> Stop {
    loop {
        let now = *rx.borrow_and_update();
        if now >= level {
            return now;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs one worker thread to completion (call on its own OS thread).
pub fn run(spec: WorkerSpec) -> std::io::Result<WorkerResult> {
    set_thread_timer_slack_min();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(clock::on_park)
        .on_thread_unpark(clock::on_unpark)
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run_local(spec))
}

async fn run_local(spec: WorkerSpec) -> std::io::Result<WorkerResult> {
    let WorkerSpec {
        schedule,
        connections,
        duration,
        timeout,
        grace,
        spin,
        connector,
        rule,
        slos,
        script,
        mut stop,
        intervals,
        ready,
        start,
    } = spec;
    // The script's state lives on this thread; init() runs before any connection opens.
    let (script, connector) = match script {
        None => (None, connector),
        Some((base, setup, check)) => match WorkerScript::new(&base, &setup, check) {
            Ok(s) => {
                let c = match setup.addr {
                    Some(a) => Arc::new(connector.with_addr(a)),
                    None => connector,
                };
                (Some(s), c)
            }
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return Ok(WorkerResult::not_started(Recorder::new()));
            }
        },
    };
    let shared = Rc::new(Shared {
        queue: Backlog {
            schedule,
            start: Cell::new(Instant::now()),
            head: Cell::new(0),
            len: Cell::new(0),
        },
        idle: RefCell::new(VecDeque::with_capacity(connections)),
        slots: (0..connections)
            .map(|_| Slot {
                job: Cell::new(None),
                wake: Notify::new(),
            })
            .collect(),
        closing: Cell::new(false),
        outstanding: Cell::new(0),
        drained: Notify::new(),
        open: Cell::new(0),
        connecting: Cell::new(connections),
        connected: Notify::new(),
        recorder: RefCell::new(Recorder {
            slos,
            ..Recorder::new()
        }),
        intervals,
        rule,
        script,
        response_times: RefCell::new(RecentP90::new()),
        may_spin: !spin.is_zero(),
        window_end: Cell::new(None),
        sent_in_window: Cell::new(0),
    });
    let mut timer = Timer::new(spin)?;

    // Open every connection before the clock starts, as wrk does.
    for id in 0..connections {
        tokio::task::spawn_local(connection(shared.clone(), id, connector.clone(), timeout));
    }
    if connections > 0 {
        shared.connected.notified().await;
    }
    let _ = ready.send(Ok(()));
    let Ok(start) = start.await else {
        // The coordinator gave up before the start (e.g. another thread failed).
        return Ok(WorkerResult::not_started(shared.recorder.take()));
    };
    let idle_at_start = clock::idle_time();
    let waits_at_start = clock::wait_counts();
    shared.queue.start.set(start);
    shared.window_end.set(Some(start + duration));

    // Per-second snapshots, by completion time.
    let finished = Rc::new(Cell::new(false));
    {
        let shared = shared.clone();
        let finished = finished.clone();
        tokio::task::spawn_local(async move {
            for k in 1u64.. {
                tokio::time::sleep_until((start + Duration::from_secs(k)).into()).await;
                if finished.get() {
                    break;
                }
                shared.rotate(start, Instant::now());
            }
        });
    }

    // The pacer.
    let total = schedule.count_within(duration);
    let mut n = 0u64;
    let mut stopped = Stop::Run;
    while n < total {
        if shared.script.as_ref().is_some_and(|s| s.stopped()) {
            stopped = Stop::Soft; // wrk.thread:stop(): this thread stops as at Ctrl-C
            break;
        }
        let due = start + schedule.due(n);
        if due > Instant::now() {
            tokio::select! {
                biased;
                s = stop_requested(&mut stop, Stop::Soft) => { stopped = s; break; }
                r = timer.wait_until(due) => r?,
            }
        }
        // Release everything already due (a late wake-up releases several at once).
        let now = Instant::now();
        while n < total {
            let due = start + schedule.due(n);
            if due > now {
                break;
            }
            shared.rotate(start, due);
            shared.dispatch(n, due, now);
            n += 1;
        }
        // Let the connections just given a request send it before the pacer waits, so the
        // wait knows whether to stay awake for their responses (`stay_awake_for_response`).
        // Only when it may: at high rates the extra round (a reactor poll) would cost.
        if shared.expected_response().is_some() {
            tokio::task::yield_now().await;
        }
    }
    let mut schedule_end = start + duration;
    if stopped == Stop::Run {
        // The last request is due just before the end of the load window: let the window
        // close (and the last requests go out) before counting what was sent in it.
        tokio::select! {
            s = stop_requested(&mut stop, Stop::Soft) => stopped = s,
            _ = tokio::time::sleep_until(schedule_end.into()) => {}
        }
    }
    if stopped != Stop::Run {
        schedule_end = Instant::now().min(schedule_end);
    }
    shared.close();
    let open = shared.open.get();
    // Counted by send time: a saturated thread may reach this line well after the window.
    let sent_in_window = shared.sent_in_window.get();
    let window = schedule_end.saturating_duration_since(start).as_secs_f64();
    let idle = (clock::idle_time() - idle_at_start).as_secs_f64();
    let waits = clock::wait_counts();
    let waits = (waits.0 - waits_at_start.0, waits.1 - waits_at_start.1);
    let busy = if window > 0.0 {
        (1.0 - idle / window).clamp(0.0, 1.0)
    } else {
        0.0
    };

    // Grace: let queued and in-flight requests finish, up to the limit.
    let mut dropped = 0;
    if stopped != Stop::Run {
        // Ctrl-C stops sending: what is still queued is never sent.
        dropped = shared.queue.len();
        shared.queue.clear();
    }
    let grace_end = schedule_end.max(Instant::now()) + grace;
    while stopped != Stop::Hard && (shared.outstanding.get() > 0 || shared.queue.len() > 0) {
        tokio::select! {
            _ = shared.drained.notified() => {}
            _ = tokio::time::sleep_until(grace_end.into()) => break,
            s = stop_requested(&mut stop, Stop::Hard) => stopped = s,
        }
    }
    let unfinished = dropped + shared.queue.len() + shared.outstanding.get();
    finished.set(true);
    shared.rotate(start, Instant::now());
    let last = {
        let mut rec = shared.recorder.borrow_mut();
        let next = rec.interval.index + 1;
        rec.take_interval(next)
    };
    // A last second in which nothing happened is not a second of the run.
    if last.counts != Default::default() || !last.corrected.is_empty() {
        let _ = shared.intervals.send(last);
    }
    let recorder = shared.recorder.replace(Recorder::new());
    Ok(WorkerResult {
        recorder,
        unfinished,
        open,
        schedule_end,
        interrupted: stopped != Stop::Run,
        sent_in_window,
        busy,
        waits,
        globals: shared
            .script
            .as_ref()
            .map(|s| s.export_globals())
            .unwrap_or_default(),
    })
}
