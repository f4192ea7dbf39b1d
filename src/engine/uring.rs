//! Sends by the kernel's own timer: an io_uring per worker thread, on which each HTTP/1.1
//! request is queued ahead of its due time as a chain of three — `TIMEOUT` (absolute,
//! `CLOCK_MONOTONIC`, `ETIME_SUCCESS` so the expiry does not break the link) → `SEND` (the
//! request's bytes, `MSG_WAITALL`) → `RECVMSG(MSG_ERRQUEUE)` (the kernel's transmit stamp
//! of the send, `SO_TIMESTAMPING`). The kernel's hrtimer sends the request at its due time:
//! the thread neither wakes early nor spins for it, and when it was sent is read from the
//! kernel's stamp rather than from a clock read after the fact.
//!
//! The ring lives beside tokio's reactor: its file descriptor is registered there, and a
//! reaper task takes completions when it becomes readable (they are also taken whenever a
//! send's future is polled). The sockets stay tokio's for reading; nothing is written to
//! them through tokio while the ring sends (a transmit stamp queued on the socket's error
//! queue makes epoll report `EPOLLERR`, which tokio keeps as a final "write closed").
//!
//! Safety of the buffers: every operation's memory (the timespec, the request's bytes, the
//! message header for the stamp) is owned by an `Op` the ring's table keeps until the last
//! of its completions has come, whatever happened to the future that asked for it; a
//! future dropped early cancels its operations first (a send not yet issued would otherwise
//! go to whatever file the descriptor number names by then).
//!
//! Used by `engine::worker` (one ring per thread, and the pacer arms ahead with it) and
//! `engine::slot` (a request's send); `usable` by `engine::run` (the start's probe).

use bytes::Bytes;
use io_uring::{opcode, squeue, types, IoUring};
use std::cell::{Cell, RefCell, UnsafeCell};
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;

/// How far ahead of its due time a request is queued on the ring: more than the pacer's
/// own wake-up is ever late on a loaded VM, so the kernel, not the thread, decides when
/// the request leaves.
pub(super) const LEAD: Duration = Duration::from_millis(1);

/// The largest request sent through the ring: it goes out whole (`MSG_WAITALL`), so an
/// answer that comes before the body is taken (a 413 to an upload) cannot end it early as
/// the timer path does; runs with larger requests keep the timer path.
pub const MAX_REQUEST: usize = 64 * 1024;

/// What is marked on a completion: the operation's index and which of its parts.
const PART_TIMEOUT: u64 = 0;
const PART_SEND: u64 = 1;
const PART_STAMP: u64 = 2;
/// Completions of cancellations (nothing waits for them).
const CANCEL: u64 = u64::MAX;

/// One queued send and everything the kernel reads or writes for it.
struct Op {
    timespec: types::Timespec,
    bytes: Bytes,
    msg: UnsafeCell<libc::msghdr>,
    control: UnsafeCell<[u64; 16]>,
    /// Completions still to come.
    pending: Cell<u8>,
    /// The send's result: bytes sent, or a negative errno.
    sent: Cell<Option<i32>>,
    /// The transmit stamp read with it (`CLOCK_REALTIME`) and its key.
    stamp: Cell<Option<(libc::timespec, u32)>>,
    waker: Cell<Option<Waker>>,
}

/// A worker thread's ring.
pub(super) struct Ring {
    /// The ring's descriptor in the reactor (declared first: deregistered before the ring
    /// closes it).
    fd: AsyncFd<RingFd>,
    ring: RefCell<IoUring>,
    ops: RefCell<Vec<Option<Rc<Op>>>>,
    free: RefCell<Vec<usize>>,
    /// `Instant` and `CLOCK_MONOTONIC` read together (to turn a due time into the
    /// timeout's absolute time).
    base: (Instant, u128),
    /// Sends made, and how many of them the kernel stamped.
    counts: Cell<(u64, u64)>,
}

/// The ring's descriptor, for the reactor (the ring owns and closes it).
struct RingFd(RawFd);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Whether this process may use io_uring linked timeouts: None if so, else why not (a
/// kernel without io_uring or without `ETIME_SUCCESS`, `kernel.io_uring_disabled`, a
/// seccomp profile that refuses `io_uring_setup` — Docker's default does).
pub fn unusable() -> Option<String> {
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        Ok(s) if s.trim() == "2" => return Some("disabled by kernel.io_uring_disabled=2".into()),
        _ => {}
    }
    let mut ring = match IoUring::new(8) {
        Ok(r) => r,
        Err(e) => {
            return Some(match e.raw_os_error() {
                Some(libc::ENOSYS) => "not in this kernel (io_uring_setup: ENOSYS)".into(),
                Some(libc::EPERM) | Some(libc::EACCES) => format!(
                    "refused to this process ({e}): kernel.io_uring_disabled, or a seccomp \
                     profile such as a container's"
                ),
                _ => format!("io_uring_setup failed: {e}"),
            })
        }
    };
    let mut probe = io_uring::Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return Some("the kernel cannot say which operations it has (Linux < 5.6)".into());
    }
    for (code, name) in [
        (opcode::Timeout::CODE, "TIMEOUT"),
        (opcode::Send::CODE, "SEND"),
        (opcode::RecvMsg::CODE, "RECVMSG"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    ] {
        if !probe.is_supported(code) {
            return Some(format!("the kernel's io_uring lacks {name}"));
        }
    }
    // A timeout already past, linked to a no-op: with ETIME_SUCCESS (Linux 5.16) the no-op
    // runs; without it the link is cut and the no-op is cancelled.
    let ts = types::Timespec::new();
    let entries = [
        opcode::Timeout::new(&ts)
            .flags(types::TimeoutFlags::ABS | types::TimeoutFlags::ETIME_SUCCESS)
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(1),
        opcode::Nop::new().build().user_data(2),
    ];
    // SAFETY: the timespec outlives the wait below, which reaps both completions.
    if unsafe { ring.submission().push_multiple(&entries) }.is_err() {
        return Some("the probe's ring was full".into());
    }
    if let Err(e) = ring.submit_and_wait(2) {
        return Some(format!("io_uring_enter failed: {e}"));
    }
    let nop = ring
        .completion()
        .find(|c| c.user_data() == 2)
        .map(|c| c.result());
    match nop {
        Some(0) => None,
        Some(r) => Some(format!(
            "the kernel's linked timeouts cut their link (no ETIME_SUCCESS, Linux < 5.16; \
             result {r})"
        )),
        None => Some("the probe's no-op never completed".into()),
    }
}

impl Ring {
    /// A ring for `connections` connections' sends (three entries each in flight).
    pub(super) fn new(connections: usize) -> io::Result<Ring> {
        let entries = (connections * 3).next_power_of_two().clamp(16, 4096) as u32;
        let ring = IoUring::builder().build(entries)?;
        let raw = ring.as_raw_fd();
        // SAFETY: the ring owns the descriptor and outlives this registration (both are
        // fields of the Ring, the AsyncFd dropped first).
        let fd =
            unsafe { AsyncFd::register_with_interest(RingFd(raw), tokio::io::Interest::READABLE) }
                .map_err(|e| e.into_parts().1)?;
        Ok(Ring {
            fd,
            ring: RefCell::new(ring),
            ops: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            base: crate::clock::instant_and_ns(),
            counts: Cell::new((0, 0)),
        })
    }

    /// Sends made through the ring, and how many the kernel stamped.
    pub(super) fn counts(&self) -> (u64, u64) {
        self.counts.get()
    }

    /// Sends `bytes` on `fd` at `due` (at once if it has passed); `key` is the transmit
    /// stamp's expected key (the offset of its last byte since stamping began), None when
    /// the socket's sends are not stamped.
    pub(super) fn send_at(
        self: &Rc<Self>,
        fd: RawFd,
        bytes: Bytes,
        due: Instant,
        key: Option<u32>,
    ) -> SendFuture {
        let now = Instant::now();
        let timed = due > now;
        let at_ns = self.base.1 + due.saturating_duration_since(self.base.0).as_nanos();
        let op = Rc::new(Op {
            timespec: types::Timespec::new()
                .sec((at_ns / 1_000_000_000) as u64)
                .nsec((at_ns % 1_000_000_000) as u32),
            bytes,
            // SAFETY: all-zero is a valid msghdr; the pointers are set below.
            msg: UnsafeCell::new(unsafe { std::mem::zeroed() }),
            control: UnsafeCell::new([0; 16]),
            pending: Cell::new(if timed { 3 } else { 2 }),
            sent: Cell::new(None),
            stamp: Cell::new(None),
            waker: Cell::new(None),
        });
        // SAFETY: the Op is on the heap (Rc) and is not moved; nobody else touches these
        // cells until the operation is submitted.
        unsafe {
            let msg = &mut *op.msg.get();
            msg.msg_control = op.control.get().cast();
            msg.msg_controllen = std::mem::size_of::<[u64; 16]>() as _;
        }
        let index = self.insert(op.clone());
        let ud = (index as u64) << 2;
        let send = opcode::Send::new(types::Fd(fd), op.bytes.as_ptr(), op.bytes.len() as u32)
            .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(ud | PART_SEND);
        let stamp = opcode::RecvMsg::new(types::Fd(fd), op.msg.get())
            .flags((libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) as u32)
            .build()
            .user_data(ud | PART_STAMP);
        let result = if timed {
            let timeout = opcode::Timeout::new(&op.timespec)
                .flags(types::TimeoutFlags::ABS | types::TimeoutFlags::ETIME_SUCCESS)
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(ud | PART_TIMEOUT);
            self.push(&[timeout, send, stamp])
        } else {
            self.push(&[send, stamp])
        };
        if let Err(e) = result {
            // Never queued: nothing of it is in the kernel.
            self.remove(index);
            op.sent.set(Some(-e.raw_os_error().unwrap_or(libc::EIO)));
            op.pending.set(0);
        }
        SendFuture {
            ring: self.clone(),
            op,
            index,
            fd,
            key,
            done: false,
        }
    }

    fn insert(&self, op: Rc<Op>) -> usize {
        let mut ops = self.ops.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(i) => {
                ops[i] = Some(op);
                i
            }
            None => {
                ops.push(Some(op));
                ops.len() - 1
            }
        }
    }

    fn remove(&self, index: usize) {
        self.ops.borrow_mut()[index] = None;
        self.free.borrow_mut().push(index);
    }

    /// Queues a chain and submits it (a full queue is submitted first).
    fn push(&self, entries: &[squeue::Entry]) -> io::Result<()> {
        let mut ring = self.ring.borrow_mut();
        // SAFETY: every pointer in the entries is into an Op the table keeps alive until
        // its completions come (see the module's safety note).
        if unsafe { ring.submission().push_multiple(entries) }.is_err() {
            ring.submit()?;
            // SAFETY: as above.
            unsafe { ring.submission().push_multiple(entries) }
                .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        }
        loop {
            match ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // Completions are full: take them and try again.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    drop(ring);
                    self.reap();
                    ring = self.ring.borrow_mut();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes every completion there is and wakes the sends they finish. (Waking only
    /// schedules a task: nothing re-enters the ring from here.)
    pub(super) fn reap(&self) {
        let mut ring = self.ring.borrow_mut();
        let mut ops = self.ops.borrow_mut();
        for cqe in ring.completion() {
            let ud = cqe.user_data();
            if ud == CANCEL {
                continue;
            }
            let index = (ud >> 2) as usize;
            let Some(op) = ops.get(index).and_then(Option::as_ref) else {
                continue;
            };
            match ud & 3 {
                PART_SEND => op.sent.set(Some(cqe.result())),
                PART_STAMP if cqe.result() >= 0 => {
                    // SAFETY: the kernel filled the message header and control buffer, and
                    // its completion is here: nothing else writes them now.
                    op.stamp
                        .set(unsafe { super::stamp::tx_stamp(&*op.msg.get()) });
                }
                _ => {}
            }
            op.pending.set(op.pending.get() - 1);
            if op.pending.get() == 0 {
                let waker = op.waker.take();
                ops[index] = None;
                self.free.borrow_mut().push(index);
                if let Some(w) = waker {
                    w.wake();
                }
            }
        }
    }

    /// Takes completions whenever the ring's descriptor says there are some (run as a task
    /// for the worker's life).
    pub(super) async fn reaper(self: Rc<Self>) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return;
            };
            guard.clear_ready();
            self.reap();
        }
    }

    /// Cancels every operation still in the kernel and waits (at most a second) for them
    /// to end — before the worker's sockets close.
    pub(super) fn cancel_all(&self) {
        let pending: Vec<usize> = self
            .ops
            .borrow()
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().map(|_| i))
            .collect();
        for i in pending {
            self.cancel(i);
        }
        let end = Instant::now() + Duration::from_secs(1);
        while self.ops.borrow().iter().any(Option::is_some) && Instant::now() < end {
            let wait = types::Timespec::new().nsec(10_000_000);
            let args = types::SubmitArgs::new().timespec(&wait);
            let _ = self.ring.borrow().submitter().submit_with_args(1, &args);
            self.reap();
        }
    }

    /// Asks the kernel to cancel operation `index`'s parts still queued.
    fn cancel(&self, index: usize) {
        let ud = (index as u64) << 2;
        let entries: Vec<squeue::Entry> = [PART_TIMEOUT, PART_SEND, PART_STAMP]
            .iter()
            .map(|p| opcode::AsyncCancel::new(ud | p).build().user_data(CANCEL))
            .collect();
        let _ = self.push(&entries);
    }
}

/// A send through the ring, until its last completion.
pub(super) struct SendFuture {
    ring: Rc<Ring>,
    op: Rc<Op>,
    index: usize,
    /// The socket it went on (for a stamp still queued).
    fd: RawFd,
    /// The transmit stamp's expected key (None: the socket's sends are not stamped).
    key: Option<u32>,
    done: bool,
}

impl Future for SendFuture {
    /// When the request left: the kernel's transmit stamp, else when its completion was
    /// taken.
    type Output = io::Result<Instant>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.op.pending.get() > 0 {
            self.ring.reap();
        }
        if self.op.pending.get() > 0 {
            self.op.waker.set(Some(cx.waker().clone()));
            return Poll::Pending;
        }
        self.done = true;
        let reaped = Instant::now();
        let (made, stamped) = self.ring.counts.get();
        let sent = self.op.sent.get().unwrap_or(-libc::ECANCELED);
        if sent < 0 {
            self.ring.counts.set((made + 1, stamped));
            return Poll::Ready(Err(io::Error::from_raw_os_error(-sent)));
        }
        if (sent as usize) < self.op.bytes.len() {
            self.ring.counts.set((made + 1, stamped));
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        let stamp = match (self.key, self.op.stamp.get()) {
            (None, _) => None,
            (Some(key), Some((ts, k))) if k == key => Some(ts),
            (Some(key), _) => super::stamp::sent_stamp(self.fd, key),
        };
        self.ring
            .counts
            .set((made + 1, stamped + u64::from(stamp.is_some())));
        Poll::Ready(Ok(match stamp {
            Some(ts) => super::stamp::to_instant(ts).min(reaped),
            None => reaped,
        }))
    }
}

impl Drop for SendFuture {
    fn drop(&mut self) {
        if !self.done && self.op.pending.get() > 0 {
            self.ring.cancel(self.index);
        }
    }
}
