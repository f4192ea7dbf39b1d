//! Kernel receive timestamps: a TCP stream that reads with `recvmsg` and keeps the time the
//! kernel stamped on the bytes it read (`SO_TIMESTAMPNS`, the software receive stamp taken
//! when the packet reached the socket layer).
//!
//! A response is timed by when its last bytes reached the socket, not by when the worker
//! thread got round to reading them: the thread's own wake-up delay (tens of microseconds on
//! a VM, more when it is busy) stays out of the measured latency, and the thread need not
//! stay awake for responses to measure them precisely.
//!
//! The kernel turns stamping on in the background when the first socket asks, so the very
//! first bytes may come unstamped; those (and any without a stamp) are timed when read.
//!
//! The kernel stamps with `CLOCK_REALTIME`; a stamp is turned into an `Instant` by its age
//! (realtime now − stamp) subtracted from `Instant::now()`, read together, so clock slewing
//! between stamps does not accumulate.
//!
//! Used by `engine::conn` (every connection's byte stream) and `engine::slot` (the times).

use std::cell::Cell;
use std::io;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// When the bytes last read from a connection reached the socket (None: not known).
pub type Arrival = Rc<Cell<Option<Instant>>>;

/// A TCP stream whose reads record the kernel's receive timestamp in `arrival`.
///
/// It drives the socket through `AsyncFd` itself (rather than tokio's `TcpStream`) so that
/// a short read — the kernel had no more — clears the readiness at once, as tokio's own
/// reads do: otherwise every response would cost one more `recvmsg` that fails with EAGAIN.
pub struct StampedTcp {
    fd: AsyncFd<std::net::TcpStream>,
    arrival: Arrival,
    /// Whether the kernel agreed to stamp (else plain reads).
    stamping: bool,
    /// Whether the kernel stamps what is sent (`SO_TIMESTAMPING`).
    sends_stamped: bool,
    /// Bytes written through `poll_write` (the kernel keys each transmit stamp by the
    /// offset of the write's last byte).
    written: u32,
    /// The first transmit stamp since `take_sent`: when the current request began to leave.
    first_sent: Option<Instant>,
}

impl StampedTcp {
    /// Wraps `tcp`, asking the kernel for receive timestamps if `stamp`.
    pub fn new(tcp: TcpStream, stamp: bool, stamp_sends: bool) -> io::Result<StampedTcp> {
        let tcp = tcp.into_std()?;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads an int we own, for the length we give.
        let stamping = stamp
            && unsafe {
                libc::setsockopt(
                    tcp.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_TIMESTAMPNS,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            } == 0;
        let sends_stamped = stamp_sends && self::stamp_sends(tcp.as_raw_fd());
        // SAFETY: the AsyncFd owns the stream, and deregisters it before the stream closes.
        let fd = unsafe { AsyncFd::register(tcp) }.map_err(|e| e.into_parts().1)?;
        Ok(StampedTcp {
            fd,
            arrival: Rc::default(),
            stamping,
            sends_stamped,
            written: 0,
            first_sent: None,
        })
    }

    /// When the bytes written since the last call began to leave, by the kernel's transmit
    /// stamp (None when it does not stamp this socket's sends, or no write was stamped).
    pub fn take_sent(&mut self) -> Option<Instant> {
        self.first_sent.take()
    }

    /// `n` bytes were just written: their transmit stamp is read from the error queue at
    /// once, before the thread next waits in epoll (where a stamp left queued would be
    /// reported as `EPOLLERR`, which tokio keeps as a final "write closed").
    fn wrote(&mut self, n: usize) {
        if !self.sends_stamped || n == 0 {
            return;
        }
        self.written = self.written.wrapping_add(n as u32);
        let key = self.written.wrapping_sub(1);
        if let Some(ts) = sent_stamp(self.fd.as_raw_fd(), key) {
            self.first_sent.get_or_insert(to_instant(ts));
        }
    }

    /// The socket's descriptor and whether its sends are stamped (for the io_uring path).
    pub fn send_fd(&self) -> (std::os::fd::RawFd, bool) {
        (self.fd.as_raw_fd(), self.sends_stamped)
    }

    /// Where the arrival time of the last bytes read is kept.
    pub fn arrival(&self) -> Arrival {
        self.arrival.clone()
    }

    /// Whether reads carry kernel timestamps.
    pub fn stamping(&self) -> bool {
        self.stamping
    }
}

/// `recvmsg` into `buf`, with the kernel's receive stamp when it sent one.
fn recv_stamped(fd: i32, buf: &mut [u8]) -> io::Result<(usize, Option<libc::timespec>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one timespec control message, aligned for cmsghdr.
    // (Room for two: a socket whose sends are stamped may get SCM_TIMESTAMPING as well.)
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is a valid empty header; we fill in what we use.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at our iovec and control buffer, both alive for the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG macros walk the control buffer the kernel filled in, within
    // msg_controllen; the timespec is read unaligned from the message's data.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                stamp = Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(c) as *const libc::timespec
                ));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, stamp))
}

/// The transmit stamp asked of a socket whose sends are timed by the kernel: software stamps when the
/// packet leaves (`TX_SOFTWARE`, reported by `SOFTWARE`), keyed by byte offset (`OPT_ID`),
/// without the packet (`OPT_TSONLY`).
const TX_FLAGS: libc::c_uint = libc::SOF_TIMESTAMPING_TX_SOFTWARE
    | libc::SOF_TIMESTAMPING_SOFTWARE
    | libc::SOF_TIMESTAMPING_OPT_ID
    | libc::SOF_TIMESTAMPING_OPT_TSONLY;

/// Asks the kernel to stamp what `fd` sends; true when it agreed. `SOFTWARE` would also add
/// a second receive stamp to every read: `OPT_RX_FILTER` (Linux 6.12) keeps reads as they
/// were; older kernels get the second one too, which the reads' control buffer has room for.
pub fn stamp_sends(fd: RawFd) -> bool {
    let set = |flags: libc::c_uint| {
        // SAFETY: setsockopt reads an int we own, for the length we give.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPING,
                (&flags as *const libc::c_uint).cast(),
                std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
            ) == 0
        }
    };
    set(TX_FLAGS | libc::SOF_TIMESTAMPING_OPT_RX_FILTER) || set(TX_FLAGS)
}

/// `ee_info` of a stamp taken when the packet left (`linux/net_tstamp.h`).
const SCM_TSTAMP_SND: u32 = 0;

/// The transmit stamp in a message read from the error queue, with its key.
///
/// # Safety
/// `msg` must be a header the kernel filled in, its control buffer alive.
pub(super) unsafe fn tx_stamp(msg: &libc::msghdr) -> Option<(libc::timespec, u32)> {
    let (mut ts, mut key) = (None, None);
    let mut c = libc::CMSG_FIRSTHDR(msg);
    while !c.is_null() {
        let (level, kind) = ((*c).cmsg_level, (*c).cmsg_type);
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPING {
            // struct scm_timestamping: ts[0] is the software stamp.
            ts = Some(std::ptr::read_unaligned(
                libc::CMSG_DATA(c) as *const libc::timespec
            ));
        } else if (level == libc::SOL_IP && kind == libc::IP_RECVERR)
            || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR)
        {
            let e: libc::sock_extended_err =
                std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::sock_extended_err);
            if e.ee_errno == libc::ENOMSG as u32
                && e.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
                && e.ee_info == SCM_TSTAMP_SND
            {
                key = Some(e.ee_data);
            }
        }
        c = libc::CMSG_NXTHDR(msg, c);
    }
    Some((ts?, key?))
}

/// Reads the error queue of `fd` until the transmit stamp keyed `key` comes (stamps of
/// earlier writes may be ahead of it), without waiting.
pub(super) fn sent_stamp(fd: RawFd, key: u32) -> Option<libc::timespec> {
    for _ in 0..8 {
        let mut control = [0u64; 16];
        // SAFETY: an all-zero msghdr is valid; we point it at our control buffer.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at our control buffer, alive for the call.
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
        if n < 0 {
            return None;
        }
        // SAFETY: the kernel just filled msg and control.
        if let Some((ts, k)) = unsafe { tx_stamp(&msg) } {
            if k == key {
                return Some(ts);
            }
        }
    }
    None
}

/// The `Instant` of a `CLOCK_REALTIME` stamp: now, less the stamp's age.
pub(super) fn to_instant(stamp: libc::timespec) -> Instant {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let instant = Instant::now();
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let ns = |t: libc::timespec| t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128;
    let age = (ns(now) - ns(stamp)).clamp(0, 10_000_000_000) as u64;
    instant
        .checked_sub(Duration::from_nanos(age))
        .unwrap_or(instant)
}

impl AsyncRead for StampedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.fd.poll_read_ready(cx))?;
            // SAFETY: the reads below only write initialized bytes into the unfilled part,
            // and exactly the bytes they wrote are marked initialized.
            let unfilled = unsafe { buf.unfilled_mut() };
            let len = unfilled.len();
            let slice =
                unsafe { std::slice::from_raw_parts_mut(unfilled.as_mut_ptr().cast::<u8>(), len) };
            let stamping = this.stamping;
            let read = guard.try_io(|inner| {
                if stamping {
                    recv_stamped(inner.as_raw_fd(), slice)
                } else {
                    inner.get_ref().read(slice).map(|n| (n, None))
                }
            });
            match read {
                Ok(Ok((n, stamp))) => {
                    // A short read emptied the socket: no need to find that out with one
                    // more read that fails.
                    if n > 0 && n < len {
                        guard.clear_ready();
                    }
                    // SAFETY: the kernel wrote n bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    if let Some(s) = stamp {
                        this.arrival.set(Some(to_instant(s)));
                    }
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl StampedTcp {
    /// Writes with `write` once the socket takes bytes, reading the write's transmit stamp.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&std::net::TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            let closed = guard.ready().is_write_closed();
            match guard.try_io(|inner| write(inner.get_ref())) {
                Ok(r) => {
                    if let Ok(n) = r {
                        self.wrote(n);
                    }
                    return Poll::Ready(r);
                }
                // A transmit stamp that came after its write was reported as EPOLLERR, and
                // tokio now says "writable" for good: waiting for room cannot be left to it.
                // Yield instead of spinning here (deadlines and other tasks still run).
                Err(_would_block) if closed && self.sends_stamped => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for StampedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_with(cx, |mut tcp| tcp.write(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.fd.get_ref().shutdown(std::net::Shutdown::Write))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |mut tcp| tcp.write_vectored(bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_read_back_as_its_instant() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let client = TcpStream::connect(addr).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let mut s = StampedTcp::new(client, true, false).unwrap();
            assert!(s.stamping(), "Linux stamps TCP receives");
            let mut buf = [0u8; 16];
            // The kernel turns stamping on in the background: the first bytes after the
            // option may come without a stamp. Warm up until one comes.
            for _ in 0..50 {
                server.write_all(b"w").await.unwrap();
                let _ = s.read(&mut buf).await.unwrap();
                if s.arrival().get().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let sent = Instant::now();
            server.write_all(b"hello").await.unwrap();
            // Read well after the bytes arrived: the stamp is their arrival, not the read.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let read_at = Instant::now();
            let n = s.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"hello");
            let arrived = s.arrival().get().expect("a stamp");
            assert!(
                arrived >= sent - Duration::from_millis(1),
                "not before the write"
            );
            assert!(
                read_at - arrived >= Duration::from_millis(40),
                "the stamp is the arrival, {:?} before the read",
                read_at - arrived
            );
        });
    }
}
