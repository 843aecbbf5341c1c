//! Files on the shard's driver: the io_uring ring, or the fallback driver's helper threads
//! (blocking `pread`/`pwrite`/`fdatasync` off the shard thread). Operations take owned
//! buffers and return them with the result (`(io::Result<usize>, B)`); the fd is shared with
//! in-flight operations so it is never closed (and its number reused) while the kernel may
//! still use it. Shard-local (`!Send`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;

use super::buf::{IoBuf, IoBufMut};
use super::driver::{DriverKind, bump};
use super::executor::core;
use super::io_op::IoOp;
use super::op::Op;

/// Logged once per process: pool buffers are being written with plain Read/Write.
static FIXED_FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);

/// A file driven by the shard's driver. Opening is a plain (blocking) `open`; every read,
/// write and sync goes through io_uring (or, on the fallback driver, a helper thread).
#[derive(Debug)]
pub struct File {
    fd: Rc<OwnedFd>,
}

impl File {
    /// Wraps an open std file (e.g. one opened with `custom_flags(libc::O_DIRECT)`).
    pub fn from_std(file: std::fs::File) -> Self {
        File {
            fd: Rc::new(OwnedFd::from(file)),
        }
    }

    /// Opens an existing file read-only.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self::from_std(std::fs::File::open(path)?))
    }

    /// Opens with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: &std::fs::OpenOptions) -> io::Result<Self> {
        Ok(Self::from_std(options.open(path)?))
    }

    pub(crate) fn shared_fd(&self) -> &Rc<OwnedFd> {
        &self.fd
    }

    /// Reads into `buf` (filling up to its capacity) at `pos`; `buf` comes back with its length
    /// set to the bytes read. Uses `ReadFixed` for registered pool buffers.
    pub async fn read_at<B: IoBufMut>(&self, mut buf: B, pos: u64) -> (io::Result<usize>, B) {
        let fixed = buf.fixed_index();
        if fixed.is_none() {
            note_fixed_fallback(&buf);
        }
        let op = IoOp::Read {
            fd: self.fd.as_raw_fd(),
            buf: buf.stable_mut_ptr(),
            len: clamp_len(buf.bytes_total()),
            offset: pos,
            fixed,
        };
        let tag = buf.lease_tag();
        let (c, (mut buf, _fd)) = match Op::submit(op, (buf, self.fd.clone()), tag) {
            Ok(op) => op.await,
            Err((e, (buf, _))) => return (Err(e), buf),
        };
        match c.result() {
            Ok(n) => {
                // SAFETY: the kernel initialised the first n bytes it reported.
                unsafe { buf.set_filled(n as usize) };
                (Ok(n as usize), buf)
            }
            Err(e) => (Err(e), buf),
        }
    }

    /// Writes `buf`'s contents at `pos` once (may be short). Uses `WriteFixed` for registered
    /// pool buffers, plain `Write` otherwise.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> (io::Result<usize>, B) {
        let len = buf.bytes_init();
        self.write_range(buf, 0, len, pos, false).await
    }

    /// Writes all of `buf` at `pos`, continuing short writes.
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, pos: u64) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        self.write_rest(buf, 0, total, pos, false).await
    }

    /// Writes `buf[done..total]` at `pos + done`, continuing short writes.
    pub(super) async fn write_rest<B: IoBuf>(
        &self,
        mut buf: B,
        mut done: usize,
        total: usize,
        pos: u64,
        dsync: bool,
    ) -> (io::Result<()>, B) {
        while done < total {
            let (res, b) = self
                .write_range(buf, done, total - done, pos + done as u64, dsync)
                .await;
            buf = b;
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// One write of `buf[start..start + len]` at `pos`; with `dsync`, `RWF_DSYNC` (durable on
    /// completion).
    async fn write_range<B: IoBuf>(
        &self,
        buf: B,
        start: usize,
        len: usize,
        pos: u64,
        dsync: bool,
    ) -> (io::Result<usize>, B) {
        let fixed = buf.fixed_index();
        let fd = self.fd.as_raw_fd();
        // SAFETY: start + len <= bytes_init, inside the buffer's allocation.
        let ptr = unsafe { buf.stable_ptr().add(start) };
        let len = clamp_len(len);
        let op = if dsync {
            IoOp::WriteDsync {
                fd,
                buf: ptr,
                len,
                offset: pos,
                fixed,
            }
        } else {
            if fixed.is_none() {
                note_fixed_fallback(&buf);
            }
            IoOp::Write {
                fd,
                buf: ptr,
                len,
                offset: pos,
                fixed,
            }
        };
        let tag = buf.lease_tag();
        match Op::submit(op, (buf, self.fd.clone()), tag) {
            Ok(op) => {
                let (c, (buf, _fd)) = op.await;
                (c.result().map(|n| n as usize), buf)
            }
            Err((e, (buf, _))) => (Err(e), buf),
        }
    }

    /// `fsync`: data and metadata.
    pub async fn sync_all(&self) -> io::Result<()> {
        self.fsync(false).await
    }

    /// `fdatasync`: data and the metadata needed to read it back.
    pub async fn sync_data(&self) -> io::Result<()> {
        self.fsync(true).await
    }

    async fn fsync(&self, datasync: bool) -> io::Result<()> {
        let op = IoOp::Fsync {
            fd: self.fd.as_raw_fd(),
            datasync,
        };
        simple(op, self.fd.clone()).await.map(drop)
    }

    /// Writes all of `buf` at `pos`, then `fdatasync`s, submitted together as one linked
    /// chain (`Write`/`WriteFixed` with `IO_LINK`, then `Fsync(DATASYNC)`): the kernel starts
    /// the sync as soon as the write completes, with no round trip through the shard in
    /// between (what a single sync-mode appender waits for). A short write breaks the chain
    /// (the sync is cancelled): the rest is then written and synced as separate operations.
    /// For buffers of the pool (lease-tagged) the two operations are separate.
    pub async fn write_all_and_sync_data_at<B: IoBuf>(
        &self,
        buf: B,
        pos: u64,
    ) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        if buf.lease_tag().is_some() || total == 0 {
            let (r, buf) = self.write_all_at(buf, pos).await;
            return match r {
                Ok(()) => (self.sync_data().await, buf),
                Err(e) => (Err(e), buf),
            };
        }
        let fd = self.fd.as_raw_fd();
        let write = IoOp::Write {
            fd,
            buf: buf.stable_ptr(),
            len: clamp_len(total),
            offset: pos,
            fixed: buf.fixed_index(),
        };
        let sync = IoOp::Fsync { fd, datasync: true };
        // The buffer is shared with the chain's data, so that it comes back even when the
        // chain cannot be queued, and stays alive in the driver if this future is dropped.
        let holder = Rc::new(std::cell::RefCell::new(Some(buf)));
        let chain = vec![
            (write, (holder.clone(), self.fd.clone())),
            (sync, (holder.clone(), self.fd.clone())),
        ];
        let take = |holder: &Rc<std::cell::RefCell<Option<B>>>| holder.borrow_mut().take();
        let ops = match Op::submit_chain(chain) {
            Ok(ops) => ops,
            Err(e) => match take(&holder) {
                Some(buf) => return (Err(e), buf),
                None => unreachable!("the buffer is only taken after its completion"),
            },
        };
        let mut completions = Vec::with_capacity(2);
        for op in ops {
            completions.push(op.await.0);
        }
        let Some(buf) = take(&holder) else {
            unreachable!("the buffer is only taken here, once");
        };
        let (written, synced) = (completions[0], completions[1]);
        match written.result() {
            Ok(n) if n as usize == total => (synced.result().map(drop), buf),
            Ok(0) => (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => {
                // Short write: the sync was cancelled with the chain.
                let (res, buf) = self.write_rest(buf, n as usize, total, pos, false).await;
                if let Err(e) = res {
                    return (Err(e), buf);
                }
                (self.sync_data().await, buf)
            }
            Err(e) => (Err(e), buf),
        }
    }

    /// `fallocate(mode, offset, len)`; mode 0 allocates and extends the size, e.g.
    /// `libc::FALLOC_FL_KEEP_SIZE` does not extend it.
    pub async fn fallocate(&self, offset: u64, len: u64, mode: i32) -> io::Result<()> {
        let op = IoOp::Fallocate {
            fd: self.fd.as_raw_fd(),
            offset,
            len,
            mode,
        };
        simple(op, self.fd.clone()).await.map(drop)
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Registers extra aligned buffers (`(start, len)`, e.g. the store's write buffers) with the
/// current shard's ring, after the pool's registered buffers, and returns the index of the
/// first one (for `WriteFixed`). The whole table is registered again (pool + extra), within
/// the same memlock budget as the pool (unlimited with `CAP_IPC_LOCK`, else the soft
/// `RLIMIT_MEMLOCK` minus a margin, per shard). Fails, and the caller then writes those
/// buffers with plain `Write`, when that budget is exceeded (`ENOMEM`), when pool buffers are
/// lent (their indexes must not move under an operation), when the kernel refuses, or on the
/// fallback driver (`Unsupported`: it registers nothing); the
/// pool's own registration is restored in that case. Call it at startup, before the shard
/// serves. Panics off a shard thread.
///
/// # Safety
/// Every `(start, len)` must describe memory that stays allocated and unmoved for as long as
/// the shard's ring lives.
pub unsafe fn register_extra_buffers(extra: &[(*const u8, usize)]) -> io::Result<u16> {
    let core = core();
    let stats = core.pool.stats();
    if stats.lent > 0 {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "pool buffers are lent: the registered table cannot be rebuilt now",
        ));
    }
    let registered = stats.registered;
    if registered + extra.len() > usize::from(u16::MAX) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "more than 65535 registered buffers",
        ));
    }
    let cap = super::sys::has_cap_ipc_lock();
    let limit = super::sys::memlock_soft_limit_bytes().unwrap_or(Some(0));
    let budget = super::pool::registration_budget_bytes(cap, limit, core.shards);
    let extra_bytes: u64 = extra.iter().map(|(_, len)| *len as u64).sum();
    let pool_bytes = (registered * stats.buf_bytes) as u64;
    if pool_bytes.saturating_add(extra_bytes) > budget {
        return Err(io::Error::from_raw_os_error(libc::ENOMEM));
    }
    let mut iovecs = core.pool.iovecs();
    iovecs.truncate(registered);
    let pool_iovecs = iovecs.clone();
    iovecs.extend(extra.iter().map(|(start, len)| libc::iovec {
        iov_base: *start as *mut libc::c_void,
        iov_len: *len,
    }));
    let driver = core.driver.borrow();
    let Some(uring) = driver.uring() else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the fallback driver has no registered buffers",
        ));
    };
    let submitter = uring.ring().submitter();
    if registered > 0 {
        submitter.unregister_buffers()?;
    }
    // SAFETY: the pool's iovecs describe its buffers, alive as long as the shard; the
    // caller guarantees the same for `extra`.
    match unsafe { submitter.register_buffers(&iovecs) } {
        Ok(()) => Ok(registered as u16),
        Err(e) => {
            // SAFETY: as above; this restores the registration the pool had.
            if registered > 0 && unsafe { submitter.register_buffers(&pool_iovecs) }.is_err() {
                core.pool.set_registered(0);
            }
            Err(e)
        }
    }
}

/// Runs an operation whose only resource is an fd; returns `res`.
pub(crate) async fn simple(op: IoOp, fd: Rc<OwnedFd>) -> io::Result<u32> {
    match Op::submit(op, fd, None) {
        Ok(op) => op.await.0.result(),
        Err((e, _)) => Err(e),
    }
}

/// The kernel takes 32-bit lengths; a longer buffer is handled as a short operation.
pub(crate) fn clamp_len(len: usize) -> u32 {
    len.min(i32::MAX as usize & !4095) as u32
}

fn note_fixed_fallback<B: IoBuf>(buf: &B) {
    if buf.lease_tag().is_none() {
        return;
    }
    let core = core();
    if core.driver.borrow().kind() == DriverKind::Fallback {
        // Nothing is registered on the fallback driver: not a degradation worth counting.
        return;
    }
    bump(&core.shared.stats.fixed_fallback_ops, 1);
    if !FIXED_FALLBACK_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            target: "ringmq::runtime",
            "pool buffers are not registered with io_uring (memlock budget or ENOMEM): \
             using plain Read/Write on the same aligned buffers"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::tests::{config_on, on_both_drivers};
    use crate::runtime::{AlignedBuf, DriverChoice, Shard};
    use std::os::unix::fs::OpenOptionsExt;

    fn shard() -> Shard {
        Shard::new(&config_on(DriverChoice::IoUring)).expect("shard")
    }

    on_both_drivers! {
    fn write_read_sync_fallocate(cfg) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        Shard::new(&cfg).expect("shard").block_on(async {
            let mut o = std::fs::OpenOptions::new();
            o.read(true).write(true).create(true).truncate(true);
            let f = File::open_with(&path, &o).expect("open");
            f.fallocate(0, 1 << 20, 0).await.expect("fallocate");
            assert_eq!(std::fs::metadata(&path).expect("meta").len(), 1 << 20);
            let (r, _) = f.write_all_at(b"hello world".to_vec(), 4096).await;
            r.expect("write");
            f.sync_data().await.expect("fdatasync");
            f.sync_all().await.expect("fsync");
            let (r, buf) = f.read_at(Vec::with_capacity(11), 4096).await;
            assert_eq!(r.expect("read"), 11);
            assert_eq!(&buf[..], b"hello world");
            // Reading past the end gives 0.
            let (r, _) = f.read_at(Vec::with_capacity(16), 2 << 20).await;
            assert_eq!(r.expect("read eof"), 0);
            // The linked write + fdatasync, and a plain write + sync of a pool buffer.
            let (r, _) = f.write_all_and_sync_data_at(b"linked".to_vec(), 100).await;
            r.expect("write + fdatasync chain");
            let mut b = crate::runtime::buf_pool().take().await;
            b.extend_from_slice(b"pooled");
            let (r, _) = f.write_all_and_sync_data_at(b, 200).await;
            r.expect("pool buffer write + fdatasync");
            let (r, buf) = f.read_at(Vec::with_capacity(106), 100).await;
            assert_eq!(r.expect("read"), 106);
            assert_eq!(&buf[..6], b"linked");
            assert_eq!(&buf[100..], b"pooled");
            // Writing to a read-only fd fails with the OS error, on both drivers.
            let ro = File::open(&path).expect("open read-only");
            let (r, _) = ro.write_at(b"x".to_vec(), 0).await;
            assert_eq!(r.expect_err("read-only").raw_os_error(), Some(libc::EBADF));
        });
    }
    }

    on_both_drivers! {
    /// `O_DIRECT` with pool buffers and plain aligned buffers (registered or not).
    fn direct_io_round_trip(cfg) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("direct");
        Shard::new(&cfg).expect("shard").block_on(async {
            let mut o = std::fs::OpenOptions::new();
            o.read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_DIRECT);
            let f = File::open_with(&path, &o).expect("open O_DIRECT");
            let pool = crate::runtime::buf_pool();
            let mut b = pool.take().await;
            b.extend_from_slice(&[5u8; 8192]);
            let (r, b) = f.write_all_at(b, 4096).await;
            r.expect("O_DIRECT write");
            drop(b);
            let a = AlignedBuf::with_capacity(8192);
            let (r, a) = f.read_at(a, 4096).await;
            assert_eq!(r.expect("O_DIRECT read"), 8192);
            assert!(a.iter().all(|&x| x == 5));
            f.sync_data().await.expect("fdatasync");
            assert_eq!(pool.stats().violations, 0);
        });
    }
    }

    #[test]
    fn fixed_and_direct_io() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d");
        let shard = shard();
        shard.block_on(async {
            let mut o = std::fs::OpenOptions::new();
            o.read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_DIRECT);
            let f = File::open_with(&path, &o).expect("open O_DIRECT");
            f.fallocate(0, 1 << 20, 0).await.expect("fallocate");
            let pool = crate::runtime::buf_pool();
            let mut b = pool.take().await;
            let cap = b.capacity();
            b.as_full_mut().fill(7);
            b.set_len(cap);
            assert!(b.is_registered());
            let (r, b) = f.write_all_at(b, 0).await;
            r.expect("WriteFixed");
            drop(b);
            let b = pool.take().await;
            let (r, b) = f.read_at(b, 0).await;
            assert_eq!(r.expect("ReadFixed"), cap);
            assert!(b.iter().all(|&x| x == 7));
            // Plain aligned buffer, O_DIRECT, non-fixed path.
            let a = AlignedBuf::from_slice(&[9u8; 4096]);
            let (r, _) = f.write_at(a, 8192).await;
            assert_eq!(r.expect("write aligned"), 4096);
            drop(b);
            assert_eq!(pool.stats().violations, 0);
        });
        assert_eq!(shard.stats().fixed_fallback_ops, 0);
    }

    #[test]
    fn unregistered_pool_falls_back_to_plain_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("u");
        let mut cfg = config_on(DriverChoice::IoUring);
        cfg.register_buffers = false;
        let shard = Shard::new(&cfg).expect("shard");
        shard.block_on(async {
            let mut o = std::fs::OpenOptions::new();
            o.read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_DIRECT);
            let f = File::open_with(&path, &o).expect("open");
            let mut b = crate::runtime::buf_pool().take().await;
            assert!(!b.is_registered());
            b.extend_from_slice(&[1u8; 4096]);
            let (r, _) = f.write_all_at(b, 0).await;
            r.expect("plain write from pool buffer");
        });
        assert!(shard.stats().fixed_fallback_ops >= 1);
        assert_eq!(shard.stats().fixed_buffers_registered, 0);
    }
}
