//! [`IoOp`]: what one operation asks the kernel to do, independent of the driver that does
//! it. `fs.rs`, `net.rs` and `time.rs` describe their operations with it; each driver lowers
//! it its own way: the io_uring driver into an SQE ([`IoOp::to_entry`]), the fallback driver
//! into non-blocking syscalls on the shard thread (sockets, driven by epoll readiness) or
//! blocking syscalls on its file helper threads (files). Shard-local.
//!
//! The pointers inside point into the operation's data (heap memory owned by the `Op` future,
//! or parked in the driver once that future is dropped), so they stay valid until the
//! operation's completion, whichever driver runs it.

use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{opcode, squeue, types};

/// One operation, as the kernel sees it (fds, pointers into owned memory, lengths).
#[derive(Debug, Clone, Copy)]
pub(crate) enum IoOp {
    /// `pread`: up to `len` bytes at `offset` into `buf`; `fixed` = registered buffer index.
    Read {
        fd: RawFd,
        buf: *mut u8,
        len: u32,
        offset: u64,
        fixed: Option<u16>,
    },
    /// `pwrite`: `len` bytes of `buf` at `offset`; `fixed` = registered buffer index.
    Write {
        fd: RawFd,
        buf: *const u8,
        len: u32,
        offset: u64,
        fixed: Option<u16>,
    },
    /// `fsync` (or `fdatasync` when `datasync`).
    Fsync { fd: RawFd, datasync: bool },
    /// `pwritev2(RWF_DSYNC)`: `len` bytes of `buf` at `offset`, durable on completion;
    /// `fixed` = registered buffer index.
    WriteDsync {
        fd: RawFd,
        buf: *const u8,
        len: u32,
        offset: u64,
        fixed: Option<u16>,
    },
    /// `openat(AT_FDCWD, path, flags, mode)`; the result is the new fd.
    OpenAt {
        path: *const libc::c_char,
        flags: i32,
        mode: u32,
    },
    /// `renameat(AT_FDCWD, from, AT_FDCWD, to)`.
    RenameAt {
        from: *const libc::c_char,
        to: *const libc::c_char,
    },
    /// `fallocate(fd, mode, offset, len)`.
    Fallocate {
        fd: RawFd,
        offset: u64,
        len: u64,
        mode: i32,
    },
    /// `recv` into `buf` (up to `len` bytes).
    Recv { fd: RawFd, buf: *mut u8, len: u32 },
    /// `send` of `len` bytes of `buf` with `flags` (`MSG_*`); `zc` = io_uring `SendZc`.
    Send {
        fd: RawFd,
        buf: *const u8,
        len: u32,
        flags: i32,
        zc: bool,
    },
    /// `accept4` (close-on-exec); the peer address lands in `addr`/`addrlen`.
    Accept {
        fd: RawFd,
        addr: *mut libc::sockaddr,
        addrlen: *mut libc::socklen_t,
    },
    /// `connect` to `addr`.
    Connect {
        fd: RawFd,
        addr: *const libc::sockaddr,
        addrlen: libc::socklen_t,
    },
    /// A timer of `duration`; `ts` is the same duration as the kernel's timespec (io_uring
    /// reads it through the pointer). Completes with `-ETIME`.
    Timeout {
        ts: *const types::Timespec,
        duration: Duration,
    },
    /// Waits until `fd` is writable (or failed); completes with the ready poll mask.
    PollWritable { fd: RawFd },
    /// `splice` of up to `len` bytes from `fd_in` (at `off_in`, or its own position when
    /// `off_in` is -1, e.g. a pipe) to `fd_out` (a pipe or a socket, at its own position).
    Splice {
        fd_in: RawFd,
        off_in: i64,
        fd_out: RawFd,
        len: u32,
    },
}

impl IoOp {
    /// The io_uring lowering: the SQE of this operation, with `IO_LINK` when `link` (the next
    /// operation of the chain starts only if this one completes in full).
    pub(crate) fn to_entry(self, link: bool) -> squeue::Entry {
        let entry = match self {
            IoOp::Read {
                fd,
                buf,
                len,
                offset,
                fixed,
            } => match fixed {
                Some(i) => opcode::ReadFixed::new(types::Fd(fd), buf, len, i)
                    .offset(offset)
                    .build(),
                None => opcode::Read::new(types::Fd(fd), buf, len)
                    .offset(offset)
                    .build(),
            },
            IoOp::Write {
                fd,
                buf,
                len,
                offset,
                fixed,
            } => match fixed {
                Some(i) => opcode::WriteFixed::new(types::Fd(fd), buf, len, i)
                    .offset(offset)
                    .build(),
                None => opcode::Write::new(types::Fd(fd), buf, len)
                    .offset(offset)
                    .build(),
            },
            IoOp::WriteDsync {
                fd,
                buf,
                len,
                offset,
                fixed,
            } => match fixed {
                Some(i) => opcode::WriteFixed::new(types::Fd(fd), buf, len, i)
                    .offset(offset)
                    .rw_flags(libc::RWF_DSYNC)
                    .build(),
                None => opcode::Write::new(types::Fd(fd), buf, len)
                    .offset(offset)
                    .rw_flags(libc::RWF_DSYNC)
                    .build(),
            },
            IoOp::Fsync { fd, datasync } => opcode::Fsync::new(types::Fd(fd))
                .flags(if datasync {
                    types::FsyncFlags::DATASYNC
                } else {
                    types::FsyncFlags::empty()
                })
                .build(),
            IoOp::Fallocate {
                fd,
                offset,
                len,
                mode,
            } => opcode::Fallocate::new(types::Fd(fd), len)
                .offset(offset)
                .mode(mode)
                .build(),
            IoOp::OpenAt { path, flags, mode } => {
                opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path)
                    .flags(flags)
                    .mode(mode)
                    .build()
            }
            IoOp::RenameAt { from, to } => opcode::RenameAt::new(
                types::Fd(libc::AT_FDCWD),
                from,
                types::Fd(libc::AT_FDCWD),
                to,
            )
            .build(),
            IoOp::Recv { fd, buf, len } => opcode::Recv::new(types::Fd(fd), buf, len).build(),
            IoOp::Send {
                fd,
                buf,
                len,
                flags,
                zc,
            } => {
                if zc {
                    opcode::SendZc::new(types::Fd(fd), buf, len)
                        .flags(flags)
                        .build()
                } else {
                    opcode::Send::new(types::Fd(fd), buf, len)
                        .flags(flags)
                        .build()
                }
            }
            IoOp::Accept { fd, addr, addrlen } => opcode::Accept::new(types::Fd(fd), addr, addrlen)
                .flags(libc::SOCK_CLOEXEC)
                .build(),
            IoOp::Connect { fd, addr, addrlen } => {
                opcode::Connect::new(types::Fd(fd), addr, addrlen).build()
            }
            IoOp::Timeout { ts, .. } => opcode::Timeout::new(ts).build(),
            IoOp::PollWritable { fd } => {
                opcode::PollAdd::new(types::Fd(fd), libc::POLLOUT as u32).build()
            }
            IoOp::Splice {
                fd_in,
                off_in,
                fd_out,
                len,
            } => opcode::Splice::new(types::Fd(fd_in), off_in, types::Fd(fd_out), -1, len).build(),
        };
        if link {
            entry.flags(squeue::Flags::IO_LINK)
        } else {
            entry
        }
    }

    /// The byte count that counts as "complete" for a link: a shorter result breaks the chain
    /// (io_uring's rule for reads, writes, sends and splices). `None` for operations without
    /// a length.
    pub(crate) fn full_len(&self) -> Option<u32> {
        match *self {
            IoOp::Read { len, .. }
            | IoOp::Write { len, .. }
            | IoOp::WriteDsync { len, .. }
            | IoOp::Recv { len, .. }
            | IoOp::Send { len, .. }
            | IoOp::Splice { len, .. } => Some(len),
            _ => None,
        }
    }

    /// Whether this operation may wait on a disk (regular file I/O, or a splice out of a
    /// file): the fallback driver runs those on its helper threads, never on the shard.
    pub(crate) fn blocks_on_disk(&self) -> bool {
        matches!(
            *self,
            IoOp::Read { .. }
                | IoOp::Write { .. }
                | IoOp::WriteDsync { .. }
                | IoOp::Fsync { .. }
                | IoOp::Fallocate { .. }
                | IoOp::OpenAt { .. }
                | IoOp::RenameAt { .. }
        ) || matches!(*self, IoOp::Splice { off_in, .. } if off_in >= 0)
    }
}
