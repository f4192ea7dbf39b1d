//! Dispatch of due requests within one worker thread: a due request goes to an idle
//! connection, else to the FIFO backlog, and its latency keeps running from its intended
//! time either way. `Shared` is the thread's state, shared by the pacer and the connection
//! slots through `Rc`/`Cell` (one current-thread runtime: no locks).
//!
//! The backlog is a run of consecutive sequence numbers (two integers), so memory stays
//! flat whatever the server does.
//!
//! Used by `engine::worker` (the pacer releases into it) and `engine::slot` (connections
//! take from it and report back).

use super::conn::H2Link;
use crate::clock::{self, RecentP90, MAX_AWAKE};
use crate::outcome::Outcome;
use crate::pacer::{Cursor, Schedule};
use crate::record::{Interval, Recorder};
use crate::script::WorkerScript;
use crate::stream::TokenRule;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// A released request.
#[derive(Clone, Copy)]
pub(super) struct Job {
    pub(super) intended: Instant,
    /// A connection was idle when it became due.
    pub(super) free: bool,
    /// Its global sequence number (which kind of request a mix sends).
    pub(super) seq: u64,
}

/// One request at a time: a connection's, or one HTTP/2 stream's.
pub(super) struct Slot {
    pub(super) job: Cell<Option<Job>>,
    pub(super) wake: Notify,
    /// The connection it sends on (an index into `Shared::conns`).
    pub(super) conn: usize,
}

/// One connection of the thread and the slots that share it: one for HTTP/1.1, up to
/// `--streams` for HTTP/2. A slot waits idle for a request only while its connection has
/// room (`reserved < limit`), so a request never waits for a stream inside h2, where it
/// would look like server latency: with every connection full it waits in the backlog,
/// as send lag.
pub(super) struct Conn {
    /// Slots of this connection holding a request or idle waiting for one.
    pub(super) reserved: Cell<usize>,
    /// How many may: 1 for HTTP/1.1; `--streams` capped by the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS for HTTP/2.
    pub(super) limit: Cell<usize>,
    /// Wakes a slot waiting for room.
    pub(super) room: Notify,
    /// HTTP/2: the open connection, shared by its slots (HTTP/1.1 slots keep their own).
    pub(super) link: RefCell<Option<H2Link>>,
    /// HTTP/2: a slot is opening it; the others wait for `attempted`.
    pub(super) connecting: Cell<bool>,
    /// HTTP/2: an attempt to open it ended.
    pub(super) attempted: Notify,
    /// HTTP/2: it was open once (the next opening is a reconnect).
    pub(super) was_open: Cell<bool>,
    /// HTTP/2: the server's SETTINGS_MAX_CONCURRENT_STREAMS as last noted (`usize::MAX`:
    /// none yet).
    pub(super) announced: Cell<usize>,
    /// HTTP/2: its slots waiting idle for a request (HTTP/1.1 slots wait in
    /// `Shared::idle`).
    pub(super) idle: RefCell<Vec<usize>>,
}

impl Conn {
    pub(super) fn new(limit: usize, connecting: bool) -> Conn {
        Conn {
            reserved: Cell::new(0),
            limit: Cell::new(limit),
            room: Notify::new(),
            link: RefCell::new(None),
            connecting: Cell::new(connecting),
            attempted: Notify::new(),
            was_open: Cell::new(false),
            idle: RefCell::new(Vec::new()),
            announced: Cell::new(usize::MAX),
        }
    }

    /// Sets the limit (e.g. from the server's SETTINGS); more room wakes waiting slots.
    pub(super) fn set_limit(&self, limit: usize) {
        let was = self.limit.replace(limit.max(1));
        if limit > was {
            self.room.notify_waiters();
        }
    }
}

/// Requests that found every connection busy, oldest first. Requests are released in
/// schedule order and only queue when no connection is idle, so the queue is always a run
/// of consecutive requests of the schedule: the head's due time, a cursor over the schedule
/// just past it, and a count — whatever the backlog, memory stays flat even when a server
/// stops answering for an hour.
pub(super) struct Backlog {
    pub(super) schedule: Schedule,
    pub(super) start: Cell<Instant>,
    pub(super) head: Cell<Option<Instant>>,
    pub(super) after_head: RefCell<Option<Cursor>>,
    pub(super) len: Cell<u64>,
}

impl Backlog {
    /// Queues the request due at `intended`; `after` is the pacer's cursor just past it.
    pub(super) fn push(&self, intended: Instant, after: &Cursor) {
        if self.len.get() == 0 {
            self.head.set(Some(intended));
            *self.after_head.borrow_mut() = Some(after.clone());
        }
        self.len.set(self.len.get() + 1);
    }

    pub(super) fn pop(&self) -> Option<Job> {
        if self.len.get() == 0 {
            return None;
        }
        let intended = self.head.get().expect("a queue with requests has a head");
        let seq = self
            .after_head
            .borrow()
            .as_ref()
            .map_or(0, Cursor::last_global);
        self.len.set(self.len.get() - 1);
        if self.len.get() > 0 {
            // The next queued request is the schedule's next one after the head.
            let next = self
                .after_head
                .borrow_mut()
                .as_mut()
                .and_then(Cursor::next_due)
                .expect("a queued request was released, so it is within the window");
            self.head.set(Some(self.start.get() + next));
        }
        Some(Job {
            intended,
            free: false,
            seq,
        })
    }

    pub(super) fn len(&self) -> u64 {
        self.len.get()
    }

    pub(super) fn clear(&self) {
        self.len.set(0);
    }
}

/// The thread's shared state (single-threaded: `Rc`, `Cell`, `RefCell`).
pub(super) struct Shared {
    pub(super) queue: Backlog,
    /// HTTP/1.1: idle slots, longest idle first (so requests take the connections in turn).
    pub(super) idle: RefCell<VecDeque<usize>>,
    /// HTTP/2: the connection after the one that took the last request (ties in
    /// `least_loaded` go to the next in turn).
    pub(super) turn: Cell<usize>,
    pub(super) slots: Vec<Slot>,
    pub(super) conns: Vec<Conn>,
    /// `--streams` for HTTP/2 (1 for HTTP/1.1).
    pub(super) streams: usize,
    pub(super) closing: Cell<bool>,
    /// Released to a connection and not yet recorded.
    pub(super) outstanding: Cell<u64>,
    pub(super) drained: Notify,
    pub(super) open: Cell<usize>,
    /// Initial connections not yet open (or failed).
    pub(super) connecting: Cell<usize>,
    /// The first connection that failed to open, and why.
    pub(super) first_failure: RefCell<Option<super::conn::ConnectError>>,
    /// Connections being opened right now (TCP connect and TLS handshake), at any time.
    pub(super) opening: Cell<usize>,
    pub(super) connected: Notify,
    pub(super) recorder: RefCell<Recorder>,
    pub(super) intervals: mpsc::UnboundedSender<Interval>,
    pub(super) rule: TokenRule,
    pub(super) script: Option<WorkerScript>,
    /// Builds the requests (and knows each one's kind).
    pub(super) connector: std::sync::Arc<super::conn::Connector>,
    /// What to read from responses beyond the status.
    pub(super) inspect: super::exchange::Inspect,
    /// Recent response times (send to end), for staying awake while one is on its way.
    pub(super) response_times: RefCell<RecentP90>,
    /// Whether the thread may spin at all (`--spin` > 0).
    pub(super) may_spin: bool,
    /// Whether responses are timed by the kernel's receive stamps (then the thread need
    /// not stay awake for them: its own wake-up delay is not in what it measures).
    pub(super) stamped: Cell<bool>,
    /// The end of the load window (set at the start).
    pub(super) window_end: Cell<Option<Instant>>,
    /// `--requests-log`: this thread's writer.
    pub(super) log: Option<super::requests_log::ThreadLog>,
    /// Requests written before the end of the load window (for the achieved rate).
    pub(super) sent_in_window: Cell<u64>,
    /// Requests completed (any status) before the end of the load window.
    pub(super) completed_in_window: Cell<u64>,
    /// When the first and the last request completed (throughput is counted over the time
    /// completions took).
    pub(super) completions: Cell<Option<(Instant, Instant)>>,
    /// The io_uring path: the thread's ring (requests are handed out up to `uring::LEAD`
    /// ahead of their due time and sent by the kernel's timer).
    pub(super) ring: Option<std::rc::Rc<super::uring::Ring>>,
    /// A slot went idle (the pacer, holding a request not yet due, may hand it out now).
    pub(super) went_idle: Notify,
    /// The timer path: requests whose send time is the kernel's transmit stamp.
    pub(super) kernel_stamped: Cell<u64>,
}

/// The most of a thread's time spent awake waiting for responses: the expected response
/// time × the thread's rate must stay under this share (a quarter of the core).
pub(super) const RESPONSE_SPIN_BUDGET: f64 = 0.25;

impl Shared {
    /// Releases a due request: to an idle connection, else to the FIFO queue.
    pub(super) fn dispatch(&self, intended: Instant, now: Instant, after: &Cursor) {
        let mut rec = self.recorder.borrow_mut();
        rec.scheduled(now.saturating_duration_since(intended));
        let seq = after.last_global();
        // A mix's kind (and tag) is a function of the sequence number; a script's request
        // is tagged when it is built.
        if self.script.is_none() {
            rec.tag_scheduled(self.connector.tag_of(seq));
        }
        let idle = if self.connector.http2() {
            self.least_loaded()
        } else {
            self.idle.borrow_mut().pop_front()
        };
        if let Some(id) = idle {
            self.outstanding.set(self.outstanding.get() + 1);
            let slot = &self.slots[id];
            slot.job.set(Some(Job {
                intended,
                free: true,
                seq,
            }));
            slot.wake.notify_one();
        } else {
            rec.queued += 1;
            self.queue.push(intended, after);
        }
    }

    /// Whether an HTTP/1.1 slot is idle (a request handed out now goes out without waiting).
    pub(super) fn has_idle(&self) -> bool {
        !self.idle.borrow().is_empty()
    }

    /// HTTP/2: an idle slot of the connection with the fewest requests in flight (ties go
    /// to the next connection in turn), so the load spreads over every connection — and
    /// over the backends an L4 balancer put them on — rather than filling one
    /// connection's streams first. O(connections), stopping at the first idle one.
    fn least_loaded(&self) -> Option<usize> {
        let n = self.conns.len();
        let start = self.turn.get();
        let mut best: Option<(usize, usize)> = None;
        for i in 0..n {
            let c = (start + i) % n;
            let conn = &self.conns[c];
            let idle = conn.idle.borrow().len();
            if idle == 0 {
                continue;
            }
            let busy = conn.reserved.get() - idle;
            if best.is_none_or(|(b, _)| busy < b) {
                best = Some((busy, c));
                if busy == 0 {
                    break;
                }
            }
        }
        let (_, c) = best?;
        self.turn.set((c + 1) % n);
        self.conns[c].idle.borrow_mut().pop()
    }

    /// Keeps the thread awake for the response to a request sent at `sent`, when responses
    /// have been coming back within `MAX_AWAKE` and staying awake for them costs at
    /// most `RESPONSE_SPIN_BUDGET` of the thread's time; says whether it did.
    pub(super) fn stay_awake_for_response(&self, sent: Instant) -> bool {
        match self.expected_response() {
            Some(expected) => {
                clock::await_response(sent + expected);
                true
            }
            None => false,
        }
    }

    /// The response time worth staying awake for (see `stay_awake_for_response`), if any.
    pub(super) fn expected_response(&self) -> Option<Duration> {
        if !self.may_spin || self.stamped.get() {
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

    /// Whether anything on the thread is waiting for I/O that must be handled the moment
    /// it comes: requests queued for a busy connection (its answer frees it), a connection
    /// being opened (its connect time is measured), answers timed when read (no kernel
    /// stamps), or event streams (coalesced reads would hide the gaps between tokens).
    pub(super) fn waits_for_io(&self) -> bool {
        self.queue.len() > 0
            || self.opening.get() > 0
            || (!self.stamped.get() && self.outstanding.get() > 0)
            || self.recorder.borrow().stream.is_some()
    }

    /// The next request for slot `id`, or None when the run is over. The slot holds a
    /// place on its connection from here until `release`.
    pub(super) async fn next_job(&self, id: usize) -> Option<Job> {
        let slot = &self.slots[id];
        let conn = &self.conns[slot.conn];
        // Wait for room on the connection (HTTP/2 streams; always there for HTTP/1.1).
        while conn.reserved.get() >= conn.limit.get() {
            if self.closing.get() && self.queue.len() == 0 {
                return None;
            }
            conn.room.notified().await;
        }
        conn.reserved.set(conn.reserved.get() + 1);
        if let Some(job) = self.queue.pop() {
            self.outstanding.set(self.outstanding.get() + 1);
            return Some(job);
        }
        if self.closing.get() {
            self.release(id);
            return None;
        }
        if self.connector.http2() {
            conn.idle.borrow_mut().push(id);
        } else {
            self.idle.borrow_mut().push_back(id);
            if self.ring.is_some() {
                self.went_idle.notify_one();
            }
        }
        loop {
            slot.wake.notified().await;
            if let Some(job) = slot.job.take() {
                return Some(job);
            }
            if self.closing.get() {
                self.release(id);
                return None;
            }
        }
    }

    /// Slot `id` is done with its request: its place on the connection is free.
    pub(super) fn release(&self, id: usize) {
        let conn = &self.conns[self.slots[id].conn];
        conn.reserved.set(conn.reserved.get() - 1);
        conn.room.notify_one();
    }

    /// Records `outcome`, which went over this thread's connection `conn`.
    pub(super) fn finish(&self, outcome: &Outcome, conn: usize) {
        self.recorder.borrow_mut().record(outcome);
        if let Some(log) = &self.log {
            let rec = self.recorder.borrow();
            let tag = rec
                .tags
                .get(usize::from(outcome.meta.tag))
                .map_or("", |t| t.name.as_str());
            log.line(outcome, self.queue.start.get(), tag, conn);
        }
        if outcome.result.is_ok() {
            if self.window_end.get().is_some_and(|end| outcome.done < end) {
                self.completed_in_window
                    .set(self.completed_in_window.get() + 1);
            }
            let d = outcome.done;
            let span = self
                .completions
                .get()
                .map_or((d, d), |(first, last)| (first.min(d), last.max(d)));
            self.completions.set(Some(span));
        }
        self.outstanding.set(self.outstanding.get() - 1);
        if self.closing.get() && self.outstanding.get() == 0 && self.queue.len() == 0 {
            self.drained.notify_one();
        }
    }

    /// Sends the current interval (and any empty ones after it) once `t` has passed its end,
    /// so a second's counts follow the schedule's clock: a request due at 1.0004 s is
    /// counted in second 1 even if the once-a-second tick comes a millisecond late.
    pub(super) fn rotate(&self, start: Instant, t: Instant) {
        let mut rec = self.recorder.borrow_mut();
        while start + Duration::from_secs(u64::from(rec.interval.index) + 1) <= t {
            let next = rec.interval.index + 1;
            let _ = self.intervals.send(rec.take_interval(next));
        }
    }

    /// Ends the schedule: idle connections exit, busy ones finish what they have.
    pub(super) fn close(&self) {
        self.closing.set(true);
        for id in self.idle.borrow_mut().drain(..) {
            self.slots[id].wake.notify_one();
        }
        for c in &self.conns {
            for id in c.idle.borrow_mut().drain(..) {
                self.slots[id].wake.notify_one();
            }
            c.room.notify_waiters();
        }
    }
}
