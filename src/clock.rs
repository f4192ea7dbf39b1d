//! Precise waiting on a current-thread tokio runtime.
//!
//! tokio's own timer ticks in milliseconds, which would add up to a millisecond to every
//! corrected latency. `Timer` arms a Linux `timerfd` with an absolute `CLOCK_MONOTONIC`
//! deadline (the clock `std::time::Instant` reads) and waits for it through the reactor
//! (`AsyncFd`), so the thread sleeps in `epoll` and other tasks keep running. The thread's
//! timer slack is set to 1 ns (`PR_SET_TIMERSLACK`), which removes the kernel's default
//! 50 µs of deliberate lateness. An optional spin window (`yield_now` until the deadline)
//! trades a core for the last few microseconds.
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
        let base_ns = monotonic_ns();
        let base_instant = Instant::now();
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

    /// Waits until `deadline`; returns at once if it has passed.
    pub async fn wait_until(&mut self, deadline: Instant) -> io::Result<()> {
        let wake = deadline.checked_sub(self.spin).unwrap_or(deadline);
        if Instant::now() < wake {
            self.arm(wake)?;
            loop {
                let mut guard = self.fd.readable().await?;
                let mut buf = [0u8; 8];
                // SAFETY: reading 8 bytes (the expiration count) into our buffer.
                let n =
                    unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                // A one-shot timer expires once: having read it, the descriptor is not
                // readable any more, so clear the readiness now rather than pay a read
                // that fails with EAGAIN at the start of the next wait.
                guard.clear_ready();
                if n == 8 {
                    break;
                }
                if Instant::now() >= wake {
                    break;
                }
            }
        }
        let mut now = Instant::now();
        while now < deadline {
            tokio::task::yield_now().await;
            let back = Instant::now();
            if back - now <= IDLE_YIELD {
                add_idle(back - now);
            }
            now = back;
        }
        Ok(())
    }
}

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
