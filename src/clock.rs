//! Precise waiting on a current-thread tokio runtime.
//!
//! tokio's own timer ticks in milliseconds, which would add up to a millisecond to every
//! corrected latency. `Timer` arms a Linux `timerfd` with an absolute `CLOCK_MONOTONIC`
//! deadline (the clock `std::time::Instant` reads) and waits for it through the reactor
//! (`AsyncFd`), so the thread sleeps in `epoll` and other tasks keep running. The thread's
//! timer slack is set to 1 ns (`PR_SET_TIMERSLACK`), which removes the kernel's default
//! 50 µs of deliberate lateness. An optional spin window (`yield_now` until the deadline)
//! trades a core for the last few microseconds. While the worker awaits a fast response
//! (`await_response`), the timer yields instead of sleeping, so the thread's own wake-up
//! delay stays out of the measured latency.
//!
//! It also keeps the thread's *idle time* — parked in the reactor with nothing to do, or
//! spinning through yields that found no other work — so the engine can tell a generator
//! that kept up from one whose thread was saturated.
//!
//! Used by `engine::worker` (pacing) and `serve` (sub-millisecond service delays).

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;

thread_local! {
    static IDLE_NS: Cell<u64> = const { Cell::new(0) };
    static PARKED_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A spin-loop yield that comes back within this found no other task to run.
const IDLE_YIELD: Duration = Duration::from_micros(3);

fn add_idle(d: Duration) {
    IDLE_NS.with(|i| i.set(i.get() + d.as_nanos() as u64));
}

/// Runtime hook: the thread is about to block in the reactor (nothing to run).
pub fn on_park() {
    PARKED_AT.with(|p| p.set(Some(Instant::now())));
}

/// Runtime hook: the thread is back from the reactor.
pub fn on_unpark() {
    if let Some(t) = PARKED_AT.with(|p| p.take()) {
        add_idle(t.elapsed());
    }
}

/// This thread's idle time so far (parked, or spinning with nothing else to do).
pub fn idle_time() -> Duration {
    Duration::from_nanos(IDLE_NS.with(|i| i.get()))
}

/// A reusable waiter for absolute deadlines, backed by a `timerfd`.
pub struct Timer {
    fd: AsyncFd<OwnedFd>,
    /// `Instant` and `CLOCK_MONOTONIC` read together, to convert one into the other.
    base_instant: Instant,
    base_ns: u128,
    spin: Duration,
}

/// The longest response time a thread stays awake for (see `await_response`).
pub const MAX_AWAKE: Duration = Duration::from_millis(1);

/// The 90th percentile of the last `WINDOW` durations recorded (response times), cheap
/// enough to keep per request.
#[derive(Debug, Clone)]
pub struct RecentP90 {
    samples: [u32; RecentP90::WINDOW],
    len: usize,
    next: usize,
    p90: Duration,
}

impl RecentP90 {
    const WINDOW: usize = 32;
    /// Recompute the percentile every this many samples.
    const EVERY: usize = 8;

    /// Nothing recorded yet (the percentile reads 0).
    pub fn new() -> RecentP90 {
        RecentP90 {
            samples: [0; RecentP90::WINDOW],
            len: 0,
            next: 0,
            p90: Duration::ZERO,
        }
    }

    /// Adds one duration (kept in whole microseconds).
    pub fn record(&mut self, d: Duration) {
        self.samples[self.next] = d.as_micros().min(u128::from(u32::MAX)) as u32;
        self.next = (self.next + 1) % RecentP90::WINDOW;
        self.len = (self.len + 1).min(RecentP90::WINDOW);
        if self.next.is_multiple_of(RecentP90::EVERY) {
            let mut sorted = self.samples;
            let seen = &mut sorted[..self.len];
            seen.sort_unstable();
            // The value with 90 % of samples at or below it.
            let rank = (self.len * 9).div_ceil(10).max(1);
            self.p90 = Duration::from_micros(u64::from(seen[rank - 1]));
        }
    }

    /// The 90th percentile as of the last recomputation.
    pub fn p90(&self) -> Duration {
        self.p90
    }

    /// How many durations have been recorded, up to the window.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for RecentP90 {
    fn default() -> Self {
        RecentP90::new()
    }
}

thread_local! {
    /// Requests this thread is staying awake for, and until when (see `await_response`).
    static AWAITED: Cell<(u32, Option<Instant>)> = const { Cell::new((0, None)) };
    /// `Timer` waits so far, and how many of them stayed awake for a response.
    static WAITS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// This thread's `Timer` waits so far: (all, those that stayed awake for a response).
pub fn wait_counts() -> (u64, u64) {
    WAITS.with(|w| w.get())
}

/// Keeps this thread's `Timer` awake (spinning instead of sleeping) until `until` or until
/// the response arrives, whichever is first: a thread that sleeps while a response is on
/// its way is woken by it late — on a VM by tens of microseconds — and that delay would
/// land in the measured latency. Pair every call with `response_arrived`.
pub fn await_response(until: Instant) {
    AWAITED.with(|a| {
        let (n, u) = a.get();
        a.set((n + 1, Some(u.map_or(until, |u| u.max(until)))));
    });
}

/// One request passed to `await_response` has ended.
pub fn response_arrived() {
    AWAITED.with(|a| {
        let (n, u) = a.get();
        let n = n.saturating_sub(1);
        a.set((n, if n == 0 { None } else { u }));
    });
}

/// Until when the thread should stay awake for responses, if at all.
fn awaited_until() -> Option<Instant> {
    AWAITED.with(|a| a.get().1)
}

/// Lets the tasks already woken on this thread (a `LocalSet`'s) run before the caller goes
/// on, without the poll of the reactor — an `epoll_wait` — that tokio's `yield_now` makes.
/// Only for a task spawned on the `LocalSet`: its own wake-up puts it behind them.
pub async fn yield_local() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// One `yield_now` round of a spin; a round that found no other work is idle time.
async fn spin_once() {
    let before = Instant::now();
    tokio::task::yield_now().await;
    let back = Instant::now();
    if back - before <= IDLE_YIELD {
        add_idle(back - before);
    }
}

/// `Instant::now()` and the `CLOCK_MONOTONIC` nanoseconds of the same moment: the
/// instant read between two clock reads, of the closest of a few tries (a thread preempted
/// between two reads would otherwise put every timer deadline early by the preemption).
/// Used here (`Timer`) and by `engine::uring` (its timeouts' absolute times).
pub fn instant_and_ns() -> (Instant, u128) {
    let mut best: Option<(u128, Instant, u128)> = None;
    for _ in 0..4 {
        let before = monotonic_ns();
        let instant = Instant::now();
        let after = monotonic_ns();
        let width = after - before;
        if best.is_none_or(|(w, _, _)| width < w) {
            best = Some((width, instant, before + width / 2));
        }
    }
    let (_, instant, ns) = best.expect("four tries");
    (instant, ns)
}

fn monotonic_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Asks the kernel to wake this thread's timers on time (1 ns slack instead of 50 µs).
pub fn set_thread_timer_slack_min() {
    // SAFETY: prctl with PR_SET_TIMERSLACK takes an integer argument and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

impl Timer {
    /// A timer that sleeps until `spin` before each deadline, then yields until it.
    /// Must be created inside a tokio runtime with IO enabled.
    pub fn new(spin: Duration) -> io::Result<Timer> {
        // SAFETY: timerfd_create returns a new descriptor or -1.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just created and own.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        let (base_instant, base_ns) = instant_and_ns();
        // SAFETY: the timerfd is owned by the AsyncFd, which deregisters it before closing.
        let fd = unsafe { AsyncFd::register(owned) }.map_err(|e| e.into_parts().1)?;
        Ok(Timer {
            fd,
            base_instant,
            base_ns,
            spin,
        })
    }

    fn arm(&self, deadline: Instant) -> io::Result<()> {
        let ns = self.base_ns
            + deadline
                .saturating_duration_since(self.base_instant)
                .as_nanos();
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: the fd is a live timerfd; `spec` is a valid itimerspec.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until `deadline`; returns at once if it has passed. Sleeps in the reactor
    /// until the spin window before it, then yields in a loop until it; while a response is
    /// awaited (`await_response`), yields instead of sleeping.
    pub async fn wait_until(&mut self, deadline: Instant) -> io::Result<()> {
        self.wait(deadline, || true).await.map(|_| ())
    }

    /// Waits until `deadline` as `wait_until` does, but spends the spin window busy on the
    /// clock — cheaper and more punctual, but deaf to I/O — whenever `poll_while_spinning`
    /// says nothing on the thread is waiting for I/O. The sleep before it is always in the
    /// reactor, so everything that arrives meanwhile is handled as it comes. Returns whether
    /// the wait ended in such a deaf spin (I/O may have arrived unseen during it).
    pub async fn wait(
        &mut self,
        deadline: Instant,
        poll_while_spinning: impl Fn() -> bool,
    ) -> io::Result<bool> {
        let wake = deadline.checked_sub(self.spin).unwrap_or(deadline);
        // Stay awake for a response due before the wake-up.
        let mut awake = false;
        while let Some(until) = awaited_until() {
            let now = Instant::now();
            if now >= until || now >= wake {
                break;
            }
            awake = true;
            spin_once().await;
        }
        WAITS.with(|w| {
            let (all, awake_waits) = w.get();
            w.set((all + 1, awake_waits + u64::from(awake)));
        });
        if Instant::now() < wake {
            self.arm(wake)?;
            loop {
                let mut guard = self.fd.readable().await?;
                // The expiration count is never read: re-arming resets it, and each
                // expiry of the one-shot timer is an edge the reactor reports once — so
                // the readiness is cleared here instead, saving a read per wait.
                guard.clear_ready();
                if Instant::now() + TIMER_SKEW >= wake {
                    break;
                }
                // Early: a readiness left from an earlier, abandoned wait, or a deadline the
                // conversion between clocks put before `wake` (the thread was preempted
                // between the two reads in `new`). Arm again and wait on: a deadline already
                // passed fires at once, so this ends by `wake` whatever the cause.
                self.arm(wake)?;
            }
        }
        // The spin: deaf on the clock for at most the last `DEAF_MAX`, and only when
        // nothing waits for I/O; before that it looks at the reactor at least every
        // `DEAF_MAX` (a `--spin` longer than the gap between requests must not leave answers
        // unread for the whole gap), and at every round while something waits for I/O.
        let mut deaf_since = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if poll_while_spinning() {
                spin_once().await;
            } else if deadline - now > DEAF_MAX {
                spin_once().await;
                let until = (now + DEAF_MAX).min(deadline - DEAF_MAX);
                let deaf = Instant::now();
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                add_idle(deaf.elapsed());
            } else {
                deaf_since.get_or_insert(now);
                std::hint::spin_loop();
            }
        }
        if let Some(t) = deaf_since {
            add_idle(t.elapsed());
        }
        Ok(deaf_since.is_some())
    }
}

/// The longest stretch before a deadline a wait may spend deaf to I/O (see `Timer::wait`).
pub const DEAF_MAX: Duration = Duration::from_micros(50);

/// How far apart the timer's clock and `Instant` may read the same moment.
const TIMER_SKEW: Duration = Duration::from_micros(1);

/// Waits until `deadline` with a fresh timer (for occasional waits, e.g. a service delay).
pub async fn sleep_until(deadline: Instant) {
    match Timer::new(Duration::ZERO) {
        Ok(mut t) => {
            if t.wait_until(deadline).await.is_ok() {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await
        }
        Err(_) => tokio::time::sleep_until(deadline.into()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_p90_is_the_90th_percentile_of_the_last_32() {
        let us = Duration::from_micros;
        let mut r = RecentP90::new();
        assert_eq!(r.p90(), Duration::ZERO);
        // 28 at 120 µs and 4 at 5 ms: the 29th smallest of 32 is 5 ms.
        for i in 0..32 {
            r.record(if i < 4 { us(5000) } else { us(120) });
        }
        assert_eq!((r.len(), r.p90()), (32, us(5000)));
        // Eight more at 120 µs push out the oldest eight, the four slow ones among them.
        for _ in 0..8 {
            r.record(us(120));
        }
        assert_eq!(r.p90(), us(120));
    }

    #[test]
    fn a_wait_ends_at_its_deadline_not_at_an_abandoned_ones() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut t = Timer::new(Duration::ZERO).unwrap();
            // A wait for 1 ms from now, abandoned at once (its timer stays armed)…
            let abandoned = Instant::now() + Duration::from_millis(1);
            tokio::select! {
                biased;
                _ = t.wait_until(abandoned) => panic!("not yet"),
                _ = std::future::ready(()) => {}
            }
            // …whose expiry comes while nobody waits; the next wait must not take it for
            // its own, and must end.
            std::thread::sleep(Duration::from_millis(3));
            for deaf in [false, true] {
                let deadline = Instant::now() + Duration::from_millis(5);
                let waited = t.wait(deadline, || !deaf);
                tokio::time::timeout(Duration::from_secs(5), waited)
                    .await
                    .expect("the wait ends")
                    .unwrap();
                assert!(Instant::now() >= deadline);
            }
        });
    }

    #[test]
    fn awaited_responses_keep_the_thread_awake_until_the_last_arrives() {
        let t0 = Instant::now();
        let at = |us| t0 + Duration::from_micros(us);
        assert_eq!(awaited_until(), None);
        await_response(at(300));
        await_response(at(200));
        assert_eq!(awaited_until(), Some(at(300)), "the later of the two");
        response_arrived();
        assert_eq!(awaited_until(), Some(at(300)), "one still on its way");
        response_arrived();
        assert_eq!(awaited_until(), None);
        response_arrived(); // unpaired: stays at none
        assert_eq!(awaited_until(), None);
    }
}
