//! Sending stored records straight from the CommitLog segment files to a socket with
//! `splice` (file → pipe → socket, no copy through user space), for pull bodies that are no
//! longer in the tail cache.
//!
//! # Why these splices are plain syscalls on the shard thread
//!
//! io_uring runs every `IORING_OP_SPLICE` on an io-wq worker thread (the kernel forces it
//! async): one pull of 32 scattered 1 KiB records used to cost dozens of worker wake-ups and
//! context switches, ≈ 8× the broker CPU per message of the copy path (docs/benchmarks.md,
//! "cold backlog"). Here a splice is issued only when it cannot block:
//!
//! - **Read-ahead.** Each segment keeps a few read-ahead windows (one per sequential reader,
//!   [`READAHEAD_WINDOWS_MAX`]); when a span comes within [`READAHEAD_LOW_WATER`] of its
//!   window's end, the next [`READAHEAD_BYTES`] are asked for with
//!   `posix_fadvise(WILLNEED)`, which starts the disk reads and returns without waiting.
//! - **Residency.** A span is spliced only if its pages are in the page cache and up to date:
//!   `cachestat(2)` over a region of [`VERIFY_BYTES`] around it counts cached pages, and a
//!   1-byte `preadv2(RWF_NOWAIT)` at the region's end proves the read-ahead completed. A
//!   verified region is trusted for [`VERIFIED_TTL`].
//! - **Small spans are copied.** A spliced span becomes its own pipe slot and socket buffer
//!   fragment; for the scattered ~1 KiB records of a many-queue topic the TCP stack's
//!   per-fragment cost is larger than the copy saved. Spans under [`SPLICE_MIN_BYTES`] are
//!   read with `preadv2(RWF_NOWAIT)` into a staging buffer sent with one `send` (as the copy
//!   path would), and so is any span whose pages are not resident, except that those are
//!   read with an io_uring `Read` (asynchronous, no worker for buffered reads): the shard
//!   thread never waits for the disk.
//! - **Non-blocking socket.** The socket is switched to `O_NONBLOCK` (io_uring's own send
//!   and receive ignore the file flag and keep using their internal poll), the pipe → socket
//!   splice uses `SPLICE_F_NONBLOCK`, and `EAGAIN` waits for writability with an io_uring
//!   poll ([`TcpStream::writable`]).
//! - **Batching.** A connection's writer hands over every piece queued behind a file span
//!   (response headers, in-memory records, further spans, up to
//!   [`crate::server::net::SPLICE_BATCH_BYTES`]): several pull responses leave with one
//!   `send` or one pipe → socket splice.
//!
//! Each shard keeps a few segment files open for this, read-only and buffered (the store's
//! writer handle may be `O_DIRECT`, which `splice` cannot use at arbitrary offsets).
//! Bounded by [`OPEN_SEGMENTS_MAX`]; the least recently used is closed first. A segment
//! deleted by retention while open stays readable through its descriptor, and the store pins
//! the segments of spans not yet sent, so a span is never cut short by a deletion. Pipes
//! are pooled per shard ([`PIPES_KEPT`]); a pipe still holding bytes when its batch is
//! abandoned (connection closed mid-send) is closed, never reused.
//!
//! Single-threaded: lives in its shard's server.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::runtime::{File, TcpStream};
use crate::server::service::Outbound;
use crate::server::store::FileSpan;

/// Segment files kept open per shard for `splice`.
pub const OPEN_SEGMENTS_MAX: usize = 8;

/// Bytes asked for per read-ahead (`posix_fadvise(WILLNEED)`).
pub const READAHEAD_BYTES: u64 = 8 << 20;

/// A read-ahead window is extended when a span ends closer than this to its end.
pub const READAHEAD_LOW_WATER: u64 = 4 << 20;

/// Read-ahead windows kept per segment (one per sequential reader; oldest dropped first).
pub const READAHEAD_WINDOWS_MAX: usize = 8;

/// Bytes checked at once for residency (one `cachestat` + one probe).
pub const VERIFY_BYTES: u64 = 256 << 10;

/// How long a region found resident is trusted without checking again.
pub const VERIFIED_TTL: Duration = Duration::from_millis(500);

/// Verified regions kept per segment.
pub const VERIFIED_MAX: usize = 8;

/// Pipe size asked for (the default `/proc/sys/fs/pipe-max-size`).
pub const PIPE_BYTES: usize = 1 << 20;

/// Empty pipes kept for reuse per shard.
pub const PIPES_KEPT: usize = 8;

/// Spans shorter than this are copied, not spliced: a spliced span becomes its own pipe
/// slot and socket buffer fragment, and for scattered records of a few KiB the per-fragment
/// cost of the TCP stack exceeds the copy saved (measured: docs/benchmarks.md, "cold
/// backlog").
pub const SPLICE_MIN_BYTES: usize = 16 << 10;

/// In-memory pieces up to this size are written into the pipe (one copy, as a send would
/// do) so that they leave with the spliced records; larger ones are sent directly.
pub const INLINE_BYTES_MAX: usize = 64 << 10;

/// Counters of the splice path (for tests and diagnostics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpliceStats {
    /// Spans sent with `splice`.
    pub spliced_spans: u64,
    /// Spans read and copied because their pages were not resident.
    pub copied_spans: u64,
    /// Bytes sent with `splice` from the files.
    pub spliced_bytes: u64,
    /// Bytes read and copied.
    pub copied_bytes: u64,
    /// Copies that had to wait for the disk (an io_uring `Read`, not `RWF_NOWAIT`).
    pub disk_reads: u64,
    /// Read-aheads issued.
    pub readaheads: u64,
    /// Pipe → socket splices that found the socket full.
    pub socket_full: u64,
}

/// One open segment: its file, read-ahead windows and regions known resident.
#[derive(Debug)]
struct Segment {
    path: Rc<Path>,
    file: Rc<File>,
    /// `[start, end)` ranges asked for with `WILLNEED`, most recently used last.
    windows: Vec<(u64, u64)>,
    /// `[start, end)` ranges found resident, with when.
    verified: Vec<(u64, u64, Instant)>,
}

/// The shard's open segment files and pipes, most recently used last.
#[derive(Debug, Default)]
pub struct SegmentFiles {
    open: RefCell<Vec<Segment>>,
    pipes: RefCell<Vec<Pipe>>,
    stats: Cell<SpliceStats>,
}

/// A pipe and the bytes in it.
#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    filled: usize,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("creating a splice pipe: {e}"),
            ));
        }
        // SAFETY: both descriptors are fresh and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A refused resize keeps the default 64 KiB: only more flushes.
        // SAFETY: fcntl on a descriptor we own.
        let _ = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES as i32) };
        Ok(Pipe {
            read,
            write,
            filled: 0,
        })
    }

    /// Sends everything in the pipe to `stream`.
    async fn flush(&mut self, stream: &TcpStream, stats: &Cell<SpliceStats>) -> io::Result<()> {
        while self.filled > 0 {
            // SAFETY: splice(2) between descriptors we hold open; null offsets (pipe, socket).
            let n = unsafe {
                libc::splice(
                    self.read.as_raw_fd(),
                    std::ptr::null_mut(),
                    stream.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.filled,
                    libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
                )
            };
            if n > 0 {
                self.filled -= n as usize;
                continue;
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "socket took no bytes from the splice pipe",
                ));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => {
                    bump(stats, |s| s.socket_full += 1);
                    stream.writable().await?;
                }
                Some(libc::EINTR) => {}
                _ => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends `data` to the pipe, flushing it to `stream` whenever it is full.
    async fn write(
        &mut self,
        stream: &TcpStream,
        mut data: &[u8],
        stats: &Cell<SpliceStats>,
    ) -> io::Result<()> {
        while !data.is_empty() {
            // SAFETY: write(2) from a live slice to a descriptor we hold open.
            let n =
                unsafe { libc::write(self.write.as_raw_fd(), data.as_ptr().cast(), data.len()) };
            if n > 0 {
                self.filled += n as usize;
                data = &data[n as usize..];
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) if self.filled > 0 => self.flush(stream, stats).await?,
                Some(libc::EINTR) => {}
                _ => return Err(e),
            }
        }
        Ok(())
    }
}

fn bump(stats: &Cell<SpliceStats>, f: impl FnOnce(&mut SpliceStats)) {
    let mut s = stats.get();
    f(&mut s);
    stats.set(s);
}

/// Returns a pipe to its pool when empty; closes it otherwise (a batch abandoned midway).
struct PipeLease<'a> {
    pipe: Option<Pipe>,
    pool: &'a RefCell<Vec<Pipe>>,
}

impl Drop for PipeLease<'_> {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take()
            && pipe.filled == 0
        {
            let mut pool = self.pool.borrow_mut();
            if pool.len() < PIPES_KEPT {
                pool.push(pipe);
            }
        }
    }
}

/// What [`resident`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Residency {
    /// Every page is cached and the last one is up to date.
    Resident,
    /// Some page must still come from the disk.
    NotResident,
}

/// Whether `[offset, offset + len)` of `fd` can be read without waiting for the disk.
fn resident(fd: RawFd, offset: u64, len: u64) -> Residency {
    if len == 0 {
        return Residency::Resident;
    }
    // SAFETY: sysconf has no memory effects.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as u64,
        _ => 4096,
    };
    let pages = (offset + len).div_ceil(page) - offset / page;
    match cachestat(fd, offset, len) {
        Ok(cached) if cached < pages => return Residency::NotResident,
        Ok(_) => {}
        // No cachestat (kernel < 6.5, seccomp): the probes below decide alone.
        Err(_) => {
            if !probe(fd, offset) {
                return Residency::NotResident;
            }
        }
    }
    if probe(fd, offset + len - 1) {
        Residency::Resident
    } else {
        Residency::NotResident
    }
}

/// `cachestat(2)`: pages of the range present in the page cache.
fn cachestat(fd: RawFd, offset: u64, len: u64) -> io::Result<u64> {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    /// The syscall's number (the same on every architecture since the unified table).
    const SYS_CACHESTAT: libc::c_long = 451;
    let range = Range { off: offset, len };
    let mut stat = Stat::default();
    // SAFETY: both structs are live, laid out as the kernel's, and outlive the call.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd,
            &range as *const Range,
            &mut stat as *mut Stat,
            0u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat.nr_cache)
}

/// Whether the byte at `offset` reads without waiting for the disk (its page is cached and
/// up to date): a 1-byte `preadv2(RWF_NOWAIT)`.
fn probe(fd: RawFd, offset: u64) -> bool {
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    // SAFETY: one iovec over a live byte; the descriptor is open.
    let n = unsafe { libc::preadv2(fd, &iov, 1, offset as libc::off_t, libc::RWF_NOWAIT) };
    n == 1
}

impl Segment {
    /// Extends or starts the read-ahead window serving `[start, end)`.
    fn read_ahead(&mut self, start: u64, end: u64, stats: &Cell<SpliceStats>) {
        let at = self
            .windows
            .iter()
            .position(|&(s, e)| s <= start && start < e);
        let (from, to) = match at {
            Some(i) => {
                let window = self.windows.remove(i);
                if window.1 >= end + READAHEAD_LOW_WATER {
                    self.windows.push(window);
                    return;
                }
                let to = end + READAHEAD_BYTES;
                self.windows.push((window.0, to));
                (window.1, to)
            }
            None => {
                if self.windows.len() >= READAHEAD_WINDOWS_MAX {
                    self.windows.remove(0);
                }
                let to = end + READAHEAD_BYTES;
                self.windows.push((start, to));
                (start, to)
            }
        };
        // SAFETY: posix_fadvise on a descriptor we hold open. WILLNEED starts the reads and
        // returns; a failure only costs the copy fallback later, so it is not an error.
        let rc = unsafe {
            libc::posix_fadvise(
                self.file.as_raw_fd(),
                from as libc::off_t,
                (to - from) as libc::off_t,
                libc::POSIX_FADV_WILLNEED,
            )
        };
        if rc != 0 {
            tracing::debug!(target: "ringmq::server::splice", path = %self.path.display(), rc,
                "read-ahead refused");
        }
        bump(stats, |s| s.readaheads += 1);
    }

    /// Whether `[start, end)` can be spliced without waiting for the disk.
    fn can_splice(&mut self, start: u64, end: u64, now: Instant) -> bool {
        self.verified
            .retain(|&(_, _, at)| now.duration_since(at) < VERIFIED_TTL);
        if self
            .verified
            .iter()
            .any(|&(s, e, _)| s <= start && end <= e)
        {
            return true;
        }
        let fd = self.file.as_raw_fd();
        // A whole region first (one check serves the next spans too), else just the span.
        let region_end = (start + VERIFY_BYTES).max(end);
        let (s, e) = if resident(fd, start, region_end - start) == Residency::Resident {
            (start, region_end)
        } else if region_end > end && resident(fd, start, end - start) == Residency::Resident {
            (start, end)
        } else {
            return false;
        };
        if self.verified.len() >= VERIFIED_MAX {
            self.verified.remove(0);
        }
        self.verified.push((s, e, now));
        true
    }
}

impl SegmentFiles {
    /// Index of the open segment of `path` (moved to the back), opening it (and closing the
    /// least recently used one past [`OPEN_SEGMENTS_MAX`]) if needed.
    fn segment(&self, path: &Rc<Path>) -> io::Result<std::cell::RefMut<'_, Segment>> {
        let mut open = self.open.borrow_mut();
        if let Some(at) = open.iter().position(|s| &s.path == path) {
            let entry = open.remove(at);
            open.push(entry);
        } else {
            let file = Rc::new(File::open(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("opening {} for splice: {e}", path.display()),
                )
            })?);
            if open.len() >= OPEN_SEGMENTS_MAX {
                open.remove(0);
            }
            open.push(Segment {
                path: path.clone(),
                file,
                windows: Vec::new(),
                verified: Vec::new(),
            });
        }
        Ok(std::cell::RefMut::map(open, |open| {
            let last = open.len() - 1;
            &mut open[last]
        }))
    }

    /// Sends `items` in order on `stream`. File spans of at least [`SPLICE_MIN_BYTES`] whose
    /// pages are resident are spliced; smaller spans, and spans not resident, are read into
    /// a staging buffer (a `preadv2(RWF_NOWAIT)`, or an io_uring `Read` when the pages must
    /// come from the disk) that also takes the small in-memory pieces. An error leaves a
    /// frame on the wire incomplete: the caller must close the connection.
    pub async fn send(&self, stream: &TcpStream, items: Vec<Outbound>) -> io::Result<()> {
        let pipe = match self.pipes.borrow_mut().pop() {
            Some(pipe) => pipe,
            None => Pipe::new()?,
        };
        let mut lease = PipeLease {
            pipe: Some(pipe),
            pool: &self.pipes,
        };
        let Some(pipe) = lease.pipe.as_mut() else {
            return Err(io::Error::other("splice pipe lease is empty"));
        };
        // Invariant: what the pipe holds goes before what `staging` holds.
        let mut staging: Vec<u8> = Vec::new();
        for item in items {
            match item {
                Outbound::Bytes(bytes) if bytes.len() <= INLINE_BYTES_MAX => {
                    staging.extend_from_slice(&bytes);
                }
                Outbound::Bytes(bytes) => {
                    self.flush(stream, pipe, &mut staging).await?;
                    stream.send_all(bytes).await.0?;
                }
                Outbound::File(span) => {
                    self.send_span(stream, pipe, &mut staging, &span).await?;
                }
            }
        }
        self.flush(stream, pipe, &mut staging).await
    }

    /// Sends what the pipe and then `staging` hold: `staging` with one send when the pipe is
    /// empty, else written into the pipe behind its content.
    async fn flush(
        &self,
        stream: &TcpStream,
        pipe: &mut Pipe,
        staging: &mut Vec<u8>,
    ) -> io::Result<()> {
        if pipe.filled == 0 {
            if !staging.is_empty() {
                let (result, mut buf) = stream.send_all(std::mem::take(staging)).await;
                result?;
                buf.clear();
                *staging = buf;
            }
            return Ok(());
        }
        if !staging.is_empty() {
            set_nonblocking(stream)?;
            pipe.write(stream, staging, &self.stats).await?;
            staging.clear();
        }
        pipe.flush(stream, &self.stats).await
    }

    /// Sends one span: spliced into `pipe` when large and resident, else copied into
    /// `staging`.
    async fn send_span(
        &self,
        stream: &TcpStream,
        pipe: &mut Pipe,
        staging: &mut Vec<u8>,
        span: &FileSpan,
    ) -> io::Result<()> {
        let start = span.offset;
        let end = span.offset + u64::from(span.len);
        let (file, splice_ok) = {
            let mut segment = self.segment(&span.path)?;
            segment.read_ahead(start, end, &self.stats);
            let ok = span.len as usize >= SPLICE_MIN_BYTES
                && segment.can_splice(start, end, Instant::now());
            (segment.file.clone(), ok)
        };
        let mut at = start;
        if splice_ok {
            set_nonblocking(stream)?;
            if !staging.is_empty() {
                pipe.write(stream, staging, &self.stats).await?;
                staging.clear();
            }
            while at < end {
                let mut off = at as libc::loff_t;
                // SAFETY: splice(2) from a file we hold open into our pipe; `off` is live.
                let n = unsafe {
                    libc::splice(
                        file.as_raw_fd(),
                        &mut off,
                        pipe.write.as_raw_fd(),
                        std::ptr::null_mut(),
                        (end - at) as usize,
                        libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
                    )
                };
                if n > 0 {
                    at += n as u64;
                    pipe.filled += n as usize;
                    continue;
                }
                if n == 0 {
                    return Err(short_file(span, at - start));
                }
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    // The pipe is full: send what it holds, then go on.
                    Some(libc::EAGAIN) if pipe.filled > 0 => {
                        pipe.flush(stream, &self.stats).await?
                    }
                    // Empty pipe and still EAGAIN: the file side would block; copy the rest.
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => {}
                    _ => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("splicing {} at {at}: {e}", span.path.display()),
                        ));
                    }
                }
            }
            bump(&self.stats, |s| {
                s.spliced_spans += u64::from(at == end);
                s.spliced_bytes += at - start;
            });
        }
        if at < end {
            self.copy_range(&file, span, at, end, staging).await?;
        }
        Ok(())
    }

    /// The copy: appends `[at, end)` of the span's file to `staging`, with a
    /// `preadv2(RWF_NOWAIT)` for the pages in the page cache and an io_uring `Read`
    /// (asynchronous) for the rest, so the shard thread never waits for the disk.
    async fn copy_range(
        &self,
        file: &File,
        span: &FileSpan,
        mut at: u64,
        end: u64,
        staging: &mut Vec<u8>,
    ) -> io::Result<()> {
        let len = end - at;
        let base = staging.len();
        staging.resize(base + len as usize, 0);
        let mut filled = base;
        while at < end {
            let iov = libc::iovec {
                iov_base: staging[filled..].as_mut_ptr().cast(),
                iov_len: (end - at) as usize,
            };
            // SAFETY: one iovec over the live, initialised tail of `staging`.
            let n = unsafe {
                libc::preadv2(
                    file.as_raw_fd(),
                    &iov,
                    1,
                    at as libc::off_t,
                    libc::RWF_NOWAIT,
                )
            };
            if n > 0 {
                at += n as u64;
                filled += n as usize;
                continue;
            }
            if n == 0 {
                staging.truncate(base);
                return Err(short_file(span, at - span.offset));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                // Not in the page cache (or no RWF_NOWAIT): read the rest through the ring.
                _ => break,
            }
        }
        if at < end {
            bump(&self.stats, |s| s.disk_reads += 1);
        }
        while at < end {
            let want = (end - at) as usize;
            let (result, buf) = file.read_at(Vec::with_capacity(want), at).await;
            let n = result.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("reading {} at {at}: {e}", span.path.display()),
                )
            })?;
            if n == 0 {
                staging.truncate(base);
                return Err(short_file(span, at - span.offset));
            }
            staging[filled..filled + n].copy_from_slice(&buf[..n]);
            filled += n;
            at += n as u64;
        }
        bump(&self.stats, |s| {
            s.copied_spans += 1;
            s.copied_bytes += len;
        });
        Ok(())
    }

    /// Counters since the shard started.
    pub fn stats(&self) -> SpliceStats {
        self.stats.get()
    }

    /// Files open now.
    pub fn len(&self) -> usize {
        self.open.borrow().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open.borrow().is_empty()
    }

    /// Empty pipes kept for reuse.
    pub fn pipes_kept(&self) -> usize {
        self.pipes.borrow().len()
    }
}

fn short_file(span: &FileSpan, sent: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "{} ends inside a spliced body: {sent} of {} bytes at {}",
            span.path.display(),
            span.len,
            span.offset
        ),
    )
}

/// Switches the socket to `O_NONBLOCK` (once; a no-op when already set), so that a
/// pipe → socket splice returns `EAGAIN` instead of blocking the shard thread.
fn set_nonblocking(stream: &TcpStream) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    // SAFETY: fcntl on a descriptor the stream holds open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{RuntimeConfig, Shard, TcpListener, sleep, spawn_local};
    use bytes::BytesMut;
    use std::io::Write;
    use std::net::SocketAddr;

    /// Generous wait for the disk to bring read-ahead pages in on a loaded machine.
    const RESIDENT_WAIT: Duration = Duration::from_secs(20);

    fn localhost() -> SocketAddr {
        "127.0.0.1:0".parse().expect("addr")
    }

    /// A file of `len` patterned bytes (pattern shifted by `seed`), synced to disk.
    fn data_file(dir: &Path, name: &str, len: usize, seed: u8) -> (Rc<Path>, Vec<u8>) {
        let path = dir.join(name);
        let data: Vec<u8> = (0..len)
            .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(31))
            .collect();
        let mut f = std::fs::File::create(&path).expect("create");
        f.write_all(&data).expect("write");
        f.sync_all().expect("sync");
        (Rc::from(path.as_path()), data)
    }

    /// Drops the file's pages from the page cache (they are clean: synced).
    fn evict(path: &Path) {
        let f = std::fs::File::open(path).expect("open");
        // SAFETY: posix_fadvise on a descriptor we own.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "fadvise");
    }

    /// Reads the page cache in (so spans are resident).
    fn warm(path: &Path) {
        std::fs::read(path).expect("warm");
    }

    fn span(path: &Rc<Path>, offset: u64, len: u32) -> FileSpan {
        FileSpan {
            path: path.clone(),
            offset,
            len,
            guard: None,
        }
    }

    fn bytes(data: &[u8]) -> Outbound {
        Outbound::Bytes(BytesMut::from(data))
    }

    /// Runs `send` of `items` on a fresh connection; returns what the peer received (it
    /// reads to EOF, sleeping `pause` between small reads) and the send's result.
    fn run(
        files: Rc<SegmentFiles>,
        batches: Vec<Vec<Outbound>>,
        small_buffers: bool,
        pause: Duration,
    ) -> (Vec<u8>, io::Result<()>) {
        let shard = Shard::new(&RuntimeConfig::for_tests()).expect("shard");
        shard.block_on(async move {
            let l = TcpListener::bind(localhost()).expect("bind");
            let c = crate::runtime::TcpStream::connect(l.local_addr())
                .await
                .expect("connect");
            let (s, _) = l.accept().await.expect("accept");
            if small_buffers {
                set_buf(s.as_raw_fd(), libc::SO_SNDBUF, 32 << 10);
                set_buf(c.as_raw_fd(), libc::SO_RCVBUF, 32 << 10);
            }
            let reader = spawn_local(async move {
                let mut got = Vec::new();
                loop {
                    let cap = if small_buffers { 16 << 10 } else { 1 << 16 };
                    let (n, buf) = c.recv(Vec::with_capacity(cap)).await;
                    if n.expect("recv") == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf);
                    if !pause.is_zero() {
                        sleep(pause).await;
                    }
                }
                got
            });
            let mut result = Ok(());
            for batch in batches {
                result = files.send(&s, batch).await;
                if result.is_err() {
                    break;
                }
            }
            s.shutdown(std::net::Shutdown::Both).expect("shutdown");
            (reader.await, result)
        })
    }

    fn set_buf(fd: RawFd, opt: libc::c_int, bytes: libc::c_int) {
        // SAFETY: setsockopt with a live int on a socket we hold.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&bytes as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt");
    }

    #[test]
    fn resident_spans_are_spliced_with_their_headers_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, data) = data_file(dir.path(), "a", 300_000, 1);
        warm(&path);
        let files = Rc::new(SegmentFiles::default());
        let batch = vec![
            bytes(b"header-1"),
            Outbound::File(span(&path, 100, 1000)),
            Outbound::File(span(&path, 5000, 70_000)),
            bytes(b"header-2"),
            Outbound::File(span(&path, 200_000, 99_999)),
        ];
        let (got, result) = run(files.clone(), vec![batch], false, Duration::ZERO);
        result.expect("send");
        let mut expect = b"header-1".to_vec();
        expect.extend_from_slice(&data[100..1100]);
        expect.extend_from_slice(&data[5000..75_000]);
        expect.extend_from_slice(b"header-2");
        expect.extend_from_slice(&data[200_000..299_999]);
        assert_eq!(got, expect);
        let stats = files.stats();
        assert_eq!(stats.spliced_spans, 2, "the two large spans ({stats:?})");
        assert_eq!(stats.copied_spans, 1, "the 1000-byte span ({stats:?})");
        assert_eq!(stats.disk_reads, 0, "{stats:?}");
        assert_eq!(files.pipes_kept(), 1, "the pipe went back to the pool");
    }

    #[test]
    fn spans_not_in_the_page_cache_are_copied_then_spliced_once_read_ahead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, data) = data_file(dir.path(), "cold", 1 << 20, 2);
        evict(&path);
        let fd = std::fs::File::open(&*path).expect("open");
        if resident(fd.as_raw_fd(), 4096, 4096) == Residency::Resident {
            eprintln!("skipping: the page cache kept the file after DONTNEED");
            return;
        }
        let files = Rc::new(SegmentFiles::default());
        let first = vec![bytes(b"h"), Outbound::File(span(&path, 4096, 65_536))];
        let (got, result) = run(files.clone(), vec![first], false, Duration::ZERO);
        result.expect("send");
        assert_eq!(&got[..1], b"h");
        assert_eq!(&got[1..], &data[4096..4096 + 65_536]);
        let stats = files.stats();
        // Copied (the read-ahead only just started; on a stalled machine it may have
        // finished before the check, and then the span is spliced: both are correct).
        assert_eq!(stats.copied_spans + stats.spliced_spans, 1, "{stats:?}");
        assert!(stats.readaheads >= 1, "read-ahead issued ({stats:?})");
        // The read-ahead brings the rest in; then the same kind of span is spliced.
        let deadline = Instant::now() + RESIDENT_WAIT;
        while resident(fd.as_raw_fd(), 500_000, 100_000) != Residency::Resident {
            assert!(Instant::now() < deadline, "read-ahead never completed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let second = vec![Outbound::File(span(&path, 500_000, 100_000))];
        let (got, result) = run(files.clone(), vec![second], false, Duration::ZERO);
        result.expect("send");
        assert_eq!(got, &data[500_000..600_000]);
        assert_eq!(
            stats.spliced_spans + 1,
            files.stats().spliced_spans,
            "{:?}",
            files.stats()
        );
    }

    #[test]
    fn a_copy_of_pages_not_in_the_cache_reads_through_the_ring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, data) = data_file(dir.path(), "cold", 256 << 10, 8);
        evict(&path);
        let file = File::open(&path).expect("open");
        if resident(file.as_raw_fd(), 8192, 50_000) == Residency::Resident {
            eprintln!("skipping: the page cache kept the file after DONTNEED");
            return;
        }
        let files = SegmentFiles::default();
        let shard = Shard::new(&RuntimeConfig::for_tests()).expect("shard");
        let mut staging = b"pre".to_vec();
        shard
            .block_on(files.copy_range(
                &file,
                &span(&path, 8192, 50_000),
                8192,
                58_192,
                &mut staging,
            ))
            .expect("copy");
        assert_eq!(&staging[..3], b"pre");
        assert_eq!(&staging[3..], &data[8192..58_192]);
        assert_eq!(files.stats().disk_reads, 1, "{:?}", files.stats());
    }

    #[test]
    fn a_full_socket_and_a_slow_reader_get_every_byte_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, data) = data_file(dir.path(), "a", 3 << 20, 3);
        warm(&path);
        let files = Rc::new(SegmentFiles::default());
        // Larger than the pipe: spans are spliced in several fills and flushes.
        let batch = vec![
            bytes(&[7u8; 100]),
            Outbound::File(span(&path, 1, (3 << 20) - 2)),
            bytes(&[9u8; 70_000]),
        ];
        let (got, result) = run(files.clone(), vec![batch], true, Duration::from_millis(0));
        result.expect("send");
        let mut expect = vec![7u8; 100];
        expect.extend_from_slice(&data[1..(3 << 20) - 1]);
        expect.extend_from_slice(&[9u8; 70_000]);
        assert_eq!(got.len(), expect.len());
        assert!(got == expect, "bytes differ");
        assert!(
            files.stats().socket_full > 0,
            "the socket filled up: {:?}",
            files.stats()
        );
    }

    #[test]
    fn a_batch_spanning_two_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, data_a) = data_file(dir.path(), "00000000000000000000", 200_000, 4);
        let (b, data_b) = data_file(dir.path(), "00000000000000200000", 200_000, 5);
        warm(&a);
        evict(&b);
        let files = Rc::new(SegmentFiles::default());
        let batch = vec![
            bytes(b"hdr"),
            Outbound::File(span(&a, 150_000, 50_000)),
            Outbound::File(span(&b, 0, 30_000)),
        ];
        let (got, result) = run(files.clone(), vec![batch], false, Duration::ZERO);
        result.expect("send");
        let mut expect = b"hdr".to_vec();
        expect.extend_from_slice(&data_a[150_000..]);
        expect.extend_from_slice(&data_b[..30_000]);
        assert!(got == expect, "bytes differ");
        assert_eq!(files.len(), 2, "both segments open");
    }

    /// Descriptors of this process that are pipes.
    fn pipe_fds() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .expect("fd dir")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("pipe:"))
            .count()
    }

    #[test]
    fn a_connection_closed_mid_splice_fails_the_send_and_leaks_no_pipe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = data_file(dir.path(), "a", 4 << 20, 6);
        warm(&path);
        let files = Rc::new(SegmentFiles::default());
        let shard = Shard::new(&RuntimeConfig::for_tests()).expect("shard");
        let before = pipe_fds();
        let result = shard.block_on({
            let files = files.clone();
            async move {
                let l = TcpListener::bind(localhost()).expect("bind");
                let c = crate::runtime::TcpStream::connect(l.local_addr())
                    .await
                    .expect("connect");
                let (s, _) = l.accept().await.expect("accept");
                set_buf(s.as_raw_fd(), libc::SO_SNDBUF, 4096);
                set_buf(c.as_raw_fd(), libc::SO_RCVBUF, 4096);
                // The peer reads a little, then goes away.
                let reader = spawn_local(async move {
                    let (n, _) = c.recv(Vec::with_capacity(1000)).await;
                    n.expect("recv");
                    drop(c);
                });
                let batch = vec![Outbound::File(span(&path, 0, 4 << 20))];
                let result = files.send(&s, batch).await;
                reader.await;
                result
            }
        });
        assert!(result.is_err(), "the send must fail, not hang or succeed");
        assert_eq!(files.pipes_kept(), 0, "a pipe holding bytes is not kept");
        drop(shard);
        assert!(
            pipe_fds() <= before,
            "pipes leaked: {} > {before}",
            pipe_fds()
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

            /// Whatever the offsets, lengths and residency, the bytes sent are the file's.
            #[test]
            fn spliced_or_copied_bodies_are_the_stored_bytes(
                spans in proptest::collection::vec((0u64..600_000, 1u32..80_000, any::<bool>()), 1..12),
                evict_first in any::<bool>(),
            ) {
                let dir = tempfile::tempdir().expect("tempdir");
                let (path, data) = data_file(dir.path(), "p", 700_000, 7);
                if evict_first { evict(&path) } else { warm(&path) }
                let files = Rc::new(SegmentFiles::default());
                let mut expect = Vec::new();
                let mut batch = Vec::new();
                for (i, &(offset, len, header)) in spans.iter().enumerate() {
                    let end = (offset + u64::from(len)).min(data.len() as u64);
                    if header {
                        let h = format!("frame-{i}");
                        expect.extend_from_slice(h.as_bytes());
                        batch.push(bytes(h.as_bytes()));
                    }
                    expect.extend_from_slice(&data[offset as usize..end as usize]);
                    batch.push(Outbound::File(span(&path, offset, (end - offset) as u32)));
                }
                let (got, result) = run(files.clone(), vec![batch], false, Duration::ZERO);
                result.expect("send");
                prop_assert!(got == expect, "bytes differ");
                let stats = files.stats();
                prop_assert_eq!(stats.spliced_bytes + stats.copied_bytes,
                    spans.iter().map(|&(o, l, _)| (o + u64::from(l)).min(data.len() as u64) - o).sum::<u64>());
            }
        }
    }
}
