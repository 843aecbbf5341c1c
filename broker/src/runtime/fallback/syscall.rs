//! The fallback lowering of each [`IoOp`]: a non-blocking attempt for socket operations (run
//! on the shard thread; `WouldBlock` means "wait for readiness"), a blocking call for file
//! operations (run on a helper thread), and the small epoll and eventfd wrappers.
//!
//! Results follow io_uring's convention, so the operations above the driver cannot tell the
//! drivers apart: a byte count or 0 on success, `-errno` on failure.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::runtime::io_op::IoOp;

/// Which readiness a waiting socket operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// `EPOLLIN`: recv, accept.
    Read,
    /// `EPOLLOUT`: send, connect, poll for writability, splice into a socket.
    Write,
}

/// Outcome of a non-blocking attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The operation finished with this result (io_uring convention).
    Done(i32),
    /// Not ready: wait for readiness of this fd in this direction, then attempt again.
    WouldBlock(RawFd, Dir),
}

/// The last OS error as a negative errno.
fn neg_errno() -> i32 {
    -io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Runs `call` (a syscall returning -1 on error) until it is not interrupted; returns the
/// result or `-errno`.
fn retry_eintr(mut call: impl FnMut() -> isize) -> i32 {
    loop {
        let rc = call();
        if rc >= 0 {
            return rc.min(i32::MAX as isize) as i32;
        }
        let e = neg_errno();
        if e != -libc::EINTR {
            return e;
        }
    }
}

/// Maps `EAGAIN` to `WouldBlock(fd, dir)`.
fn nonblocking(res: i32, fd: RawFd, dir: Dir) -> Attempt {
    if res == -libc::EAGAIN || res == -libc::EWOULDBLOCK {
        Attempt::WouldBlock(fd, dir)
    } else {
        Attempt::Done(res)
    }
}

/// One non-blocking attempt of a socket operation, on the shard thread. Must not be called
/// for operations that [`IoOp::blocks_on_disk`] or for timers.
///
/// # Safety
/// The op's pointers must be valid for the operation (they point into its owned data).
pub(crate) unsafe fn attempt(op: &IoOp) -> Attempt {
    match *op {
        IoOp::Recv { fd, buf, len } => {
            // SAFETY: `buf` points to `len` writable bytes owned by the operation.
            let res = retry_eintr(|| unsafe {
                libc::recv(fd, buf.cast(), len as usize, libc::MSG_DONTWAIT)
            });
            nonblocking(res, fd, Dir::Read)
        }
        IoOp::Send {
            fd,
            buf,
            len,
            flags,
            ..
        } => {
            // MSG_WAITALL is io_uring's "retry partial sends"; send(2) returns what fit and
            // the caller (`send_all`) continues.
            let flags = (flags & !libc::MSG_WAITALL) | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
            // SAFETY: `buf` points to `len` readable bytes owned by the operation.
            let res = retry_eintr(|| unsafe { libc::send(fd, buf.cast(), len as usize, flags) });
            nonblocking(res, fd, Dir::Write)
        }
        IoOp::Accept { fd, addr, addrlen } => {
            // SAFETY: `addr`/`addrlen` point to a sockaddr_storage and its length, owned by
            // the operation.
            let res = retry_eintr(|| unsafe {
                libc::accept4(fd, addr, addrlen, libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) as isize
            });
            nonblocking(res, fd, Dir::Read)
        }
        IoOp::Connect { fd, addr, addrlen } => {
            // The first call starts the handshake (EINPROGRESS); a later call reports its
            // outcome: EALREADY while pending, 0 or EISCONN once connected, else the error.
            // SAFETY: `addr` points to `addrlen` bytes of socket address owned by the op.
            let res = retry_eintr(|| unsafe { libc::connect(fd, addr, addrlen) as isize });
            match -res {
                libc::EINPROGRESS | libc::EALREADY | libc::EAGAIN => {
                    Attempt::WouldBlock(fd, Dir::Write)
                }
                libc::EISCONN => Attempt::Done(0),
                _ => Attempt::Done(res),
            }
        }
        IoOp::PollWritable { fd } => {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd, no wait.
            let res = retry_eintr(|| unsafe { libc::poll(&mut p, 1, 0) as isize });
            match res {
                r if r < 0 => Attempt::Done(r),
                0 => Attempt::WouldBlock(fd, Dir::Write),
                _ => Attempt::Done(i32::from(p.revents)),
            }
        }
        IoOp::Splice {
            fd_in,
            off_in,
            fd_out,
            len,
        } => {
            debug_assert!(off_in < 0, "file splices run on a helper thread");
            // SAFETY: plain splice between two descriptors the operation holds open.
            let res = retry_eintr(|| unsafe {
                libc::splice(
                    fd_in,
                    std::ptr::null_mut(),
                    fd_out,
                    std::ptr::null_mut(),
                    len as usize,
                    libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
                )
            });
            nonblocking(res, fd_out, Dir::Write)
        }
        IoOp::Read { .. }
        | IoOp::Write { .. }
        | IoOp::WriteDsync { .. }
        | IoOp::Fsync { .. }
        | IoOp::Fallocate { .. }
        | IoOp::OpenAt { .. }
        | IoOp::RenameAt { .. }
        | IoOp::Timeout { .. } => {
            unreachable!("file operations and timers are not attempted on the shard")
        }
    }
}

/// Runs a file operation to completion, blocking: on a helper thread only.
///
/// # Safety
/// The op's pointers must be valid until this returns (the operation's owner keeps them
/// alive until the completion is posted).
pub(crate) unsafe fn run_blocking(op: &IoOp) -> i32 {
    match *op {
        IoOp::Read {
            fd,
            buf,
            len,
            offset,
            ..
        } => {
            // SAFETY: `buf` points to `len` writable bytes owned by the operation.
            retry_eintr(|| unsafe { libc::pread(fd, buf.cast(), len as usize, offset as i64) })
        }
        IoOp::Write {
            fd,
            buf,
            len,
            offset,
            ..
        } => {
            // SAFETY: `buf` points to `len` readable bytes owned by the operation.
            retry_eintr(|| unsafe { libc::pwrite(fd, buf.cast(), len as usize, offset as i64) })
        }
        IoOp::WriteDsync {
            fd,
            buf,
            len,
            offset,
            ..
        } => {
            let iov = libc::iovec {
                iov_base: buf as *mut libc::c_void,
                iov_len: len as usize,
            };
            // SAFETY: `buf` points to `len` readable bytes owned by the operation; `iov`
            // lives across the call.
            retry_eintr(|| unsafe { libc::pwritev2(fd, &iov, 1, offset as i64, libc::RWF_DSYNC) })
        }
        IoOp::Fsync { fd, datasync } => retry_eintr(|| {
            // SAFETY: plain syscall on a descriptor the operation holds open.
            (unsafe {
                if datasync {
                    libc::fdatasync(fd)
                } else {
                    libc::fsync(fd)
                }
            }) as isize
        }),
        IoOp::Fallocate {
            fd,
            offset,
            len,
            mode,
        } => retry_eintr(|| {
            // SAFETY: plain syscall on a descriptor the operation holds open.
            (unsafe { libc::fallocate(fd, mode, offset as i64, len as i64) }) as isize
        }),
        IoOp::OpenAt { path, flags, mode } => retry_eintr(|| {
            // SAFETY: `path` is a NUL-terminated string owned by the operation.
            (unsafe { libc::openat(libc::AT_FDCWD, path, flags, mode) }) as isize
        }),
        IoOp::RenameAt { from, to } => retry_eintr(|| {
            // SAFETY: both paths are NUL-terminated strings owned by the operation.
            (unsafe { libc::renameat(libc::AT_FDCWD, from, libc::AT_FDCWD, to) }) as isize
        }),
        IoOp::Splice {
            fd_in,
            off_in,
            fd_out,
            len,
        } => {
            let mut off = off_in;
            // SAFETY: `off` lives across the call; both descriptors are held open by the op.
            retry_eintr(|| unsafe {
                libc::splice(
                    fd_in,
                    &mut off,
                    fd_out,
                    std::ptr::null_mut(),
                    len as usize,
                    libc::SPLICE_F_MOVE,
                )
            })
        }
        IoOp::Recv { .. }
        | IoOp::Send { .. }
        | IoOp::Accept { .. }
        | IoOp::Connect { .. }
        | IoOp::PollWritable { .. }
        | IoOp::Timeout { .. } => -libc::EINVAL,
    }
}

/// An epoll instance (close-on-exec).
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptor owned by nobody else.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Adds `fd` with `events` and `token`; if it is already registered, modifies it.
    pub(crate) fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
        // SAFETY: as above.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, &mut ev) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits up to `timeout_ms` (-1 = forever) and fills `events`; returns how many.
    /// `EINTR` counts as 0 events.
    pub(crate) fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout_ms: i32,
    ) -> io::Result<usize> {
        // SAFETY: `events` is a valid, writable array of its length.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.len().min(i32::MAX as usize) as i32,
                timeout_ms,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            Ok(0)
        } else {
            Err(e)
        }
    }
}

/// Creates a non-blocking, close-on-exec eventfd.
pub(crate) fn eventfd_nonblocking() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned below.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Resets a non-blocking eventfd's counter (nothing happens if it is already 0).
pub(crate) fn eventfd_drain(fd: RawFd) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64.
    let _ = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
}

/// Adds 1 to an eventfd's counter (EAGAIN, a saturated counter, still means "signalled").
pub(crate) fn eventfd_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64.
    let _ = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Sets `O_NONBLOCK` on `fd` (a no-op when already set).
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller holds open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
