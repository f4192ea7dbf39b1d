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
//! The dispatch of due requests lives in `engine::dispatch`, one connection's loop in
//! `engine::slot`; this file is the thread's body: set up, pace, drain, hand back.
//!
//! Used by `engine::run`, one call per thread.

use super::conn::Connector;
use super::dispatch::{Backlog, Conn, Shared, Slot};
use super::exchange::Inspect;
use super::slot::connection;
use super::Stop;
use crate::clock::{self, set_thread_timer_slack_min, RecentP90, Timer};
use crate::pacer::{Cursor, Schedule};
use crate::record::{Interval, Recorder};
use crate::script::{Portable, ScriptBase, ScriptError, ThreadSetup, WorkerScript};
use crate::stream::{Slo, TokenRule};
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
    /// HTTP/2: the most streams in flight on one connection.
    pub streams: usize,
    /// The measured load duration.
    pub duration: Duration,
    /// Per-request timeout from the actual send.
    pub timeout: Duration,
    /// Wait for queued and in-flight requests after the schedule ends.
    pub grace: Duration,
    /// Busy-wait window before each due time.
    pub spin: Duration,
    /// `--precision`: wake at most once per this, on a grid from the start.
    pub precision: Option<Duration>,
    /// Send through an io_uring by the kernel's timer (`engine::uring`), not the timer
    /// and spin.
    pub ring: bool,
    /// Opens connections and builds requests.
    pub connector: Arc<Connector>,
    /// Which event-stream events are tokens.
    pub rule: TokenRule,
    /// Goodput targets.
    pub slos: Vec<Slo>,
    /// The plan's tags, in order (tag i of the connector's requests is `tags[i]`).
    pub tags: Vec<String>,
    /// What to read from responses beyond the status.
    pub inspect: Inspect,
    /// The Lua script, what `setup()` gave this thread, and the thread's index.
    pub script: Option<(ScriptBase, ThreadSetup, usize)>,
    /// Stop requests from the coordinator (Ctrl-C).
    pub stop: watch::Receiver<Stop>,
    /// Where the per-second snapshots go.
    pub intervals: mpsc::UnboundedSender<Interval>,
    /// Told once the initial connections are open (or failed): how many opened, and the
    /// first failure; or why the thread cannot start (its script's init() failed).
    pub ready: std::sync::mpsc::Sender<Result<Ready, ScriptError>>,
    /// The run's common start time, from the coordinator.
    pub start: oneshot::Receiver<Instant>,
    /// `--requests-log`: this thread's writer.
    pub log: Option<super::requests_log::ThreadLog>,
}

/// A thread's initial connections, once tried (before the start).
pub struct Ready {
    /// How many opened.
    pub opened: usize,
    /// The first that failed, and why.
    pub failure: Option<super::conn::ConnectError>,
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
    /// Requests completed before the end of the load window (the rest drained after it).
    pub completed_in_window: u64,
    /// When its first and its last request completed, if any did.
    pub completions: Option<(Instant, Instant)>,
    /// Share of the load window the thread was busy (not parked, not spinning idle), 0..=1.
    pub busy: f64,
    /// The pacer's waits for due times, and how many stayed awake for a response.
    pub waits: (u64, u64),
    /// The io_uring path: sends made through the ring, and how many the kernel stamped.
    pub ring_sends: (u64, u64),
    /// The timer path: requests whose send time is the kernel's transmit stamp.
    pub kernel_stamped: u64,
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
            completed_in_window: 0,
            completions: None,
            busy: 0.0,
            waits: (0, 0),
            ring_sends: (0, 0),
            kernel_stamped: 0,
            globals: Vec::new(),
        }
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
        streams,
        duration,
        timeout,
        grace,
        spin,
        precision,
        ring,
        connector,
        rule,
        slos,
        tags,
        inspect,
        script,
        stop,
        intervals,
        ready,
        start,
        log,
    } = spec;
    // The script's state lives on this thread; init() runs before any connection opens.
    let (script, connector) = match script {
        None => (None, connector),
        Some((base, setup, thread)) => {
            match WorkerScript::new(&base, &setup, thread, connector.addr(), connector.http2()) {
                Ok(s) => {
                    let c = match setup.addr {
                        Some(a) => Arc::new(connector.with_addr(a)),
                        None => connector,
                    };
                    (Some(s), c)
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return Ok(WorkerResult::not_started(Recorder::new()));
                }
            }
        }
    };
    // HTTP/2: `--streams` slots per connection (fewer once the server's limit is known).
    let http2 = connector.http2();
    let streams = if http2 { streams.max(1) } else { 1 };
    let slots = connections * streams;
    let ring = if ring {
        Some(Rc::new(super::uring::Ring::new(slots)?))
    } else {
        None
    };
    let shared = Rc::new(Shared {
        queue: Backlog {
            schedule: schedule.clone(),
            start: Cell::new(Instant::now()),
            head: Cell::new(None),
            after_head: RefCell::new(None),
            len: Cell::new(0),
        },
        idle: RefCell::new(VecDeque::with_capacity(slots)),
        turn: Cell::new(0),
        // Slot k sends on connection k mod c (HTTP/2: `least_loaded` picks among them).
        slots: (0..slots)
            .map(|k| Slot {
                job: Cell::new(None),
                wake: Notify::new(),
                conn: k % connections.max(1),
            })
            .collect(),
        conns: (0..connections)
            .map(|_| Conn::new(streams, http2))
            .collect(),
        streams,
        closing: Cell::new(false),
        outstanding: Cell::new(0),
        drained: Notify::new(),
        open: Cell::new(0),
        connecting: Cell::new(connections),
        first_failure: RefCell::new(None),
        opening: Cell::new(0),
        connected: Notify::new(),
        recorder: RefCell::new(Recorder {
            slos,
            ..Recorder::with_tags(&tags)
        }),
        intervals,
        rule,
        script,
        connector: connector.clone(),
        inspect,
        response_times: RefCell::new(RecentP90::new()),
        may_spin: !spin.is_zero(),
        stamped: Cell::new(false),
        window_end: Cell::new(None),
        log,
        sent_in_window: Cell::new(0),
        completed_in_window: Cell::new(0),
        completions: Cell::new(None),
        ring: ring.clone(),
        went_idle: Notify::new(),
        kernel_stamped: Cell::new(0),
    });
    // The io_uring path never spins: the kernel's timer sends.
    let timer = Timer::new(if ring.is_some() { Duration::ZERO } else { spin })?;
    if let Some(r) = &ring {
        tokio::task::spawn_local(r.clone().reaper());
    }

    // Open every connection before the clock starts, as wrk does.
    for id in 0..slots {
        tokio::task::spawn_local(connection(shared.clone(), id, connector.clone(), timeout));
    }
    if connections > 0 {
        shared.connected.notified().await;
    }
    let _ = ready.send(Ok(Ready {
        opened: shared.open.get(),
        failure: shared.first_failure.borrow().as_ref().map(|e| e.again()),
    }));
    let Ok(start) = start.await else {
        // The coordinator gave up before the start (e.g. another thread failed).
        return Ok(WorkerResult::not_started(shared.recorder.take()));
    };
    // A `--start-at` can be seconds away: wait for it before counting busy time.
    if let Some(early) = start.checked_sub(Duration::from_millis(5)) {
        if early > Instant::now() {
            tokio::time::sleep_until(early.into()).await;
        }
    }
    let idle_at_start = clock::idle_time();
    let waits_at_start = clock::wait_counts();
    shared.queue.start.set(start);
    shared.recorder.borrow_mut().start = Some(start);
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

    // The pacer, as a task of its own on the thread (see `pace`, `pace_ahead`).
    let pacer = if ring.is_some() {
        tokio::task::spawn_local(pace_ahead(
            shared.clone(),
            schedule.cursor(duration),
            start,
            timer,
            stop,
        ))
    } else {
        tokio::task::spawn_local(pace(
            shared.clone(),
            schedule.cursor(duration),
            start,
            precision,
            timer,
            stop,
        ))
    };
    let (mut stopped, mut stop) = match pacer.await {
        Ok(r) => r?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
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
    // Sends still queued in the kernel end here, before the sockets they name close.
    if let Some(r) = &ring {
        r.cancel_all();
    }
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
        completed_in_window: shared.completed_in_window.get(),
        completions: shared.completions.get(),
        busy,
        waits,
        ring_sends: ring.as_ref().map_or((0, 0), |r| r.counts()),
        kernel_stamped: shared.kernel_stamped.get(),
        globals: shared
            .script
            .as_ref()
            .map(|s| s.export_globals())
            .unwrap_or_default(),
    })
}

/// The pacer: walks the thread's schedule, waits for each due time, and hands what is due
/// to idle connection slots (or queues it). Returns why it stopped, and the stop channel.
///
/// It runs as a task of its own (not as the thread's main future) so that it can let the
/// connections it just gave requests send them (`clock::yield_local`) without a poll of
/// the reactor — a system call — each time.
async fn pace(
    shared: Rc<Shared>,
    mut cursor: Cursor,
    start: Instant,
    precision: Option<Duration>,
    mut timer: Timer,
    mut stop: watch::Receiver<Stop>,
) -> std::io::Result<(Stop, watch::Receiver<Stop>)> {
    let mut next = cursor.next_due();
    let mut stopped = Stop::Run;
    while let Some(offset) = next {
        if shared.script.as_ref().is_some_and(|s| s.stopped()) {
            stopped = Stop::Soft; // wrk.thread:stop(): this thread stops as at Ctrl-C
            break;
        }
        // With --precision P the thread wakes on a grid of P from the start, at the first
        // tick at or after the due time, and releases everything due by then: at most one
        // wake-up per P, each request at most P late (in its corrected latency and send lag).
        let wake = match precision {
            Some(p) => {
                let ticks = offset.as_nanos().div_ceil(p.as_nanos().max(1));
                start + Duration::from_nanos((ticks * p.as_nanos()).min(u64::MAX as u128) as u64)
            }
            None => start + offset,
        };
        let now = Instant::now();
        let mut deaf = false;
        if wake > now {
            // The thread waits in the reactor, on a timer set to the due time: answers,
            // connects and handshakes are handled the moment they arrive, never held until
            // the next due time (an answer left unread holds its connection busy, and a
            // connect left unfinished is timed with the wait in it). Only the last stretch
            // before the due time (`--spin`) may be spent deaf on the clock, and only
            // while nothing waits for I/O (`Shared::waits_for_io`).
            tokio::select! {
                biased;
                s = stop_requested(&mut stop, Stop::Soft) => { stopped = s; break; }
                r = timer.wait(wake, || shared.waits_for_io()) => deaf = r?,
            }
        }
        // Answers that came during a deaf spin free their connections before what is due
        // is handed out (one poll of the reactor), or those would look busy to it.
        if deaf && shared.outstanding.get() > 0 {
            tokio::task::yield_now().await;
        }
        // Release everything already due (a late wake-up releases several at once).
        let now = Instant::now();
        while let Some(offset) = next {
            let due = start + offset;
            if due > now {
                break;
            }
            shared.rotate(start, due);
            // (The cursor is just past this request: where a queue starting here goes on.)
            shared.dispatch(due, now, &cursor);
            next = cursor.next_due();
        }
        // Let the connections just given a request send it before the pacer waits again:
        // no reactor poll is needed for that, and the wait then knows whether to stay
        // awake for their answers (`stay_awake_for_response`). Over HTTP/2 the slots queue
        // their frames and wake their connection's writer, which runs after this round.
        clock::yield_local().await;
        if shared.connector.http2() {
            clock::yield_local().await;
        }
    }
    Ok((stopped, stop))
}

/// The pacer of the io_uring path: hands each request to an idle connection up to
/// `uring::LEAD` before it is due (its slot queues it on the ring, and the kernel's timer
/// sends it), so the thread wakes about once per `LEAD` for the schedule rather than once
/// per request, and never spins. A request that finds no connection idle waits — for one
/// to go idle before its due time (then it is handed out ahead all the same) or for its due
/// time, when it is released as on the timer path: to a connection, else to the backlog,
/// its latency running from its due time either way.
async fn pace_ahead(
    shared: Rc<Shared>,
    mut cursor: Cursor,
    start: Instant,
    mut timer: Timer,
    mut stop: watch::Receiver<Stop>,
) -> std::io::Result<(Stop, watch::Receiver<Stop>)> {
    let lead = super::uring::LEAD;
    let mut next = cursor.next_due();
    let mut stopped = Stop::Run;
    while let Some(offset) = next {
        let due = start + offset;
        let now = Instant::now();
        let idle = shared.has_idle();
        if due > now && (due > now + lead || !idle) {
            // Until it may be handed out ahead (a connection is idle), else until it is
            // due or a connection goes idle, whichever comes first.
            let until = if idle { due - lead } else { due };
            tokio::select! {
                biased;
                s = stop_requested(&mut stop, Stop::Soft) => { stopped = s; break; }
                r = timer.wait_until(until) => r?,
                () = shared.went_idle.notified(), if !idle => {}
            }
            continue;
        }
        // Everything due by now, and what is due within the lead while connections are
        // idle.
        let now = Instant::now();
        while let Some(offset) = next {
            let due = start + offset;
            if due > now + lead || (due > now && !shared.has_idle()) {
                break;
            }
            shared.rotate(start, due.min(now));
            shared.dispatch(due, now, &cursor);
            next = cursor.next_due();
        }
        // (No script runs on this path: `Plan::io_uring_blocked`, so no wrk.thread:stop().)
        // Let the slots just given a request queue it before the pacer waits again.
        clock::yield_local().await;
    }
    Ok((stopped, stop))
}
