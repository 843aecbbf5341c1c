//! The store's file I/O boundary: a small trait pair ([`StoreFs`], [`StoreFile`]) that every
//! other store module goes through, an aligned buffer type, and the implementation on std
//! files ([`StdFs`]), which is also the fallback where io_uring is unavailable.
//!
//! The file operations are `async fn`s that take owned buffers and hand them back, the shape
//! of completion-based I/O (io_uring): while an operation runs its buffer belongs to it. The
//! std implementation completes every operation before returning, so its futures are always
//! ready; [`block_on`] drives such futures (offline tools, tests, benchmarks). The io_uring
//! implementation ([`super::uring::UringFs`]) keeps those blocking-safe operations and adds the
//! `*_ring` ones, which only jobs running as tasks of the shard use (commit, persist and
//! metadata snapshot jobs, ConsumeQueue page loads).
//!
//! Everything here runs on the shard's thread; nothing is `Send`-bound.

use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Alignment of every I/O buffer and of every `O_DIRECT` write offset and length. The disks
/// we run on need 512; 4 KiB also matches the page size, so a buffer page is a disk page.
pub const IO_ALIGN: usize = 4096;

/// A heap buffer whose start is aligned to [`IO_ALIGN`] and whose capacity is a multiple of
/// it, as `O_DIRECT` and registered io_uring buffers require. Its bytes start zeroed.
pub struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    cap: usize,
}

// SAFETY: AlignedBuf uniquely owns its allocation, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of at least `cap` bytes (rounded up to [`IO_ALIGN`], at least one page).
    pub fn zeroed(cap: usize) -> Self {
        let cap = align_up(cap.max(1) as u64) as usize;
        let layout = Self::layout(cap);
        // SAFETY: layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        AlignedBuf { ptr, cap }
    }

    /// A buffer holding a copy of `data` (zero-padded to a page multiple).
    pub fn from_slice(data: &[u8]) -> Self {
        let mut buf = AlignedBuf::zeroed(data.len());
        buf[..data.len()].copy_from_slice(data);
        buf
    }

    fn layout(cap: usize) -> Layout {
        match Layout::from_size_align(cap, IO_ALIGN) {
            Ok(layout) => layout,
            Err(_) => panic!("aligned buffer of {cap} bytes exceeds the address space"),
        }
    }

    /// Capacity in bytes (a multiple of [`IO_ALIGN`]).
    pub fn capacity(&self) -> usize {
        self.cap
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this exact layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.cap)) }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid for cap initialised (zeroed) bytes, owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.cap) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.cap)
    }
}

/// Rounds up to a multiple of [`IO_ALIGN`].
pub fn align_up(n: u64) -> u64 {
    n.div_ceil(IO_ALIGN as u64) * IO_ALIGN as u64
}

/// Rounds down to a multiple of [`IO_ALIGN`].
pub fn align_down(n: u64) -> u64 {
    n / IO_ALIGN as u64 * IO_ALIGN as u64
}

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenMode {
    /// Create the file if it does not exist.
    pub create: bool,
    /// Ask for `O_DIRECT` (writes must then be aligned). An implementation that cannot do
    /// direct I/O on this file falls back to buffered I/O and reports it in
    /// [`StoreFile::is_direct`].
    pub direct: bool,
}

/// A directory tree of store files: the filesystem-level operations (metadata, rare).
/// Implementations are cheap handles (`Clone`).
#[allow(async_fn_in_trait)]
pub trait StoreFs: Clone {
    /// The file handle type.
    type File: StoreFile;
    /// Opens (and with `mode.create`, creates) a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File>;
    /// Deletes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries of a directory (not recursive).
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if needed) for as long as the returned
    /// guard lives; fails at once if another process holds it. Keeps two brokers off one
    /// data directory (RocketMQ's `lock` file).
    fn lock_exclusive(&self, path: &Path) -> io::Result<Box<dyn std::any::Any>>;
    /// Makes the directory's entries (files created or removed in it) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Atomically and durably renames a file (the directory entry is synced).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Whether a path exists.
    fn exists(&self, path: &Path) -> bool;
    /// Used fraction (0.0–1.0) of the filesystem holding `path`.
    fn disk_used_ratio(&self, path: &Path) -> io::Result<f64>;
    /// Last-modified time of a file, in ms since the epoch.
    fn modified_ms(&self, path: &Path) -> io::Result<i64>;

    /// The CommitLog's write buffers, all allocated once at open (`count` buffers of
    /// `bytes`, zeroed, [`IO_ALIGN`]-aligned). The io_uring implementation also registers
    /// them with the ring when the memlock budget allows.
    fn write_buffers(&self, count: usize, bytes: usize) -> Vec<AlignedBuf> {
        (0..count).map(|_| AlignedBuf::zeroed(bytes)).collect()
    }

    /// [`StoreFs::sync_dir`] from a commit job; the io_uring implementation syncs the
    /// directory through the ring.
    async fn sync_dir_ring(&self, path: &Path) -> io::Result<()> {
        self.sync_dir(path)
    }

    /// [`StoreFs::open`] from a job running as a task of the shard (a new ConsumeQueue file,
    /// a new CommitLog segment, a snapshot's temp file); with `truncate` an existing file is
    /// emptied first. The io_uring implementation opens through the ring (`OpenAt`), so the
    /// shard never waits in `open(2)`; the default opens at once.
    async fn open_ring(
        &self,
        path: &Path,
        mode: OpenMode,
        truncate: bool,
    ) -> io::Result<Self::File> {
        let file = self.open(path, mode)?;
        if truncate {
            file.set_len(0).await?;
        }
        Ok(file)
    }

    /// Renames `from` over `to` (atomically replacing it) from a job running as a task of
    /// the shard. Durable once the directory is synced ([`StoreFs::sync_dir_ring`]). The
    /// io_uring implementation renames through the ring (`RenameAt`); the default is
    /// [`StoreFs::rename`], durable at once.
    async fn rename_ring(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rename(from, to)
    }
}

/// One open file with positional, completion-style operations.
#[allow(async_fn_in_trait, clippy::len_without_is_empty)]
pub trait StoreFile {
    /// Writes `buf[..len]` at `offset` and hands the buffer back. On a direct file, `offset`
    /// and `len` must be multiples of [`IO_ALIGN`].
    async fn write_at(
        &self,
        buf: AlignedBuf,
        len: usize,
        offset: u64,
    ) -> (AlignedBuf, io::Result<()>);
    /// Reads up to `buf.len()` bytes at `offset`; returns the buffer and how many bytes were
    /// read (fewer only at end of file). Readers open files without `direct`, so reads need
    /// no alignment.
    async fn read_at(&self, buf: Vec<u8>, offset: u64) -> (Vec<u8>, io::Result<usize>);
    /// `fdatasync`: everything written before is durable when this completes.
    async fn sync_data(&self) -> io::Result<()>;
    /// Reserves `len` bytes from the start (`fallocate`); the file reads as zeros there.
    async fn allocate(&self, len: u64) -> io::Result<()>;
    /// Truncates or extends the file.
    async fn set_len(&self, len: u64) -> io::Result<()>;
    /// Current file length.
    fn len(&self) -> io::Result<u64>;
    /// Whether writes bypass the page cache.
    fn is_direct(&self) -> bool;

    /// The group-commit write: like [`StoreFile::write_at`], but an implementation on the
    /// shard's io_uring ([`super::uring::UringFs`]) submits it to the ring (split into pieces
    /// in flight together, `WriteFixed` from a registered buffer) and its future is really
    /// pending until the completion arrives. Only a CommitLog commit job running as a task of
    /// the shard calls it; everything else uses the blocking-safe `write_at`.
    async fn write_at_ring(
        &self,
        buf: AlignedBuf,
        len: usize,
        offset: u64,
    ) -> (AlignedBuf, io::Result<()>) {
        self.write_at(buf, len, offset).await
    }

    /// `fdatasync` through the ring (see [`StoreFile::write_at_ring`]).
    async fn sync_data_ring(&self) -> io::Result<()> {
        self.sync_data().await
    }

    /// A write followed by `fdatasync` of the same file through the ring: what a sync-mode
    /// commit of one small write does. [`super::uring::UringFs`] submits both together as a
    /// linked chain, so the sync starts in the kernel the moment the write completes.
    async fn write_and_sync_ring(
        &self,
        buf: AlignedBuf,
        len: usize,
        offset: u64,
    ) -> (AlignedBuf, io::Result<()>) {
        let (buf, r) = self.write_at_ring(buf, len, offset).await;
        match r {
            Ok(()) => (buf, self.sync_data_ring().await),
            Err(e) => (buf, Err(e)),
        }
    }

    /// `fallocate` through the ring (see [`StoreFile::write_at_ring`]).
    async fn allocate_ring(&self, len: u64) -> io::Result<()> {
        self.allocate(len).await
    }

    /// [`StoreFile::read_at`] through the ring: what a read running as a task of the shard
    /// calls (a ConsumeQueue page evicted from memory). The io_uring implementation submits
    /// `Read`s to the ring (continuing short reads); the default reads at once.
    async fn read_at_ring(&self, buf: Vec<u8>, offset: u64) -> (Vec<u8>, io::Result<usize>) {
        self.read_at(buf, offset).await
    }
}

/// Drives a future whose operations complete without an external reactor (the std and
/// simulated implementations). A future that returns `Pending` is polled again after a
/// yield; do not use it with the io_uring implementation.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

// ---------------------------------------------------------------------------------------------
// std implementation

/// The store on std files: `pwrite`/`pread`/`fdatasync`/`fallocate`, `O_DIRECT` when the
/// filesystem accepts it (tmpfs does not: then buffered writes).
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

/// A std file; see [`StdFs`].
#[derive(Debug)]
pub struct StdFile {
    file: RefCell<File>,
    path: PathBuf,
    direct: Cell<bool>,
}

fn open_std(path: &Path, create: bool, direct: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(create);
    if direct {
        opts.custom_flags(libc::O_DIRECT);
    }
    opts.open(path)
}

impl StdFile {
    /// Wraps a file opened elsewhere (e.g. through the ring by [`super::uring::UringFs`]).
    pub(super) fn from_parts(file: File, path: PathBuf, direct: bool) -> StdFile {
        StdFile {
            file: RefCell::new(file),
            path,
            direct: Cell::new(direct),
        }
    }

    /// A second descriptor for the same open file (same flags, e.g. `O_DIRECT`), for the
    /// ring side of [`super::uring::UringFile`].
    pub(super) fn try_clone_handle(&self) -> io::Result<File> {
        self.file.borrow().try_clone()
    }

    /// Falls back to buffered I/O after the kernel refused a direct write.
    fn reopen_buffered(&self) -> io::Result<()> {
        let file = open_std(&self.path, false, false)?;
        *self.file.borrow_mut() = file;
        self.direct.set(false);
        tracing::info!(target: "store::io", path = %self.path.display(),
            "O_DIRECT refused on write; using buffered writes for this file");
        Ok(())
    }
}

impl std::os::fd::AsRawFd for StdFile {
    /// The descriptor, e.g. to `splice` a [`super::commit_log::FileRange`] from a segment's
    /// reader. Valid while the file is open (the segment is pinned by the read).
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.borrow().as_raw_fd()
    }
}

impl StoreFs for StdFs {
    type File = StdFile;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<StdFile> {
        let (file, direct) = if mode.direct {
            match open_std(path, mode.create, true) {
                Ok(file) => (file, true),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    (open_std(path, mode.create, false)?, false)
                }
                Err(e) => return Err(e),
            }
        } else {
            (open_std(path, mode.create, false)?, false)
        };
        Ok(StdFile {
            file: RefCell::new(file),
            path: path.to_path_buf(),
            direct: Cell::new(direct),
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn lock_exclusive(&self, path: &Path) -> io::Result<Box<dyn std::any::Any>> {
        use std::os::fd::AsRawFd;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // SAFETY: valid fd owned by `file`; flock takes plain integers.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!("{} is locked by another process ({err})", path.display()),
            ));
        }
        // The lock lives as long as the descriptor.
        Ok(Box::new(file))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)?;
        if let Some(dir) = to.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn disk_used_ratio(&self, path: &Path) -> io::Result<f64> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: statvfs is plain data; zeroed is a valid value for it.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: c is a valid NUL-terminated path and st a valid out pointer.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let total = st.f_blocks as f64;
        if total == 0.0 {
            return Ok(0.0);
        }
        Ok(1.0 - st.f_bavail as f64 / total)
    }

    fn modified_ms(&self, path: &Path) -> io::Result<i64> {
        let modified = std::fs::metadata(path)?.modified()?;
        Ok(modified
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0))
    }
}

impl StoreFile for StdFile {
    async fn write_at(
        &self,
        buf: AlignedBuf,
        len: usize,
        offset: u64,
    ) -> (AlignedBuf, io::Result<()>) {
        let data = &buf[..len.min(buf.len())];
        let mut result = self.file.borrow().write_all_at(data, offset);
        if self.direct.get() && matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL))
        {
            result = self
                .reopen_buffered()
                .and_then(|()| self.file.borrow().write_all_at(data, offset));
        }
        (buf, result)
    }

    async fn read_at(&self, mut buf: Vec<u8>, offset: u64) -> (Vec<u8>, io::Result<usize>) {
        let file = self.file.borrow();
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return (buf, Err(e)),
            }
        }
        (buf, Ok(done))
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.file.borrow().sync_data()
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let file = self.file.borrow();
        let len_i = libc::off_t::try_from(len)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: valid fd owned by `file`, plain integer arguments.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len_i) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
            if file.metadata()?.len() < len {
                file.set_len(len)?;
            }
            return Ok(());
        }
        Err(err)
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.borrow().set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.borrow().metadata()?.len())
    }

    fn is_direct(&self) -> bool {
        self.direct.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buf_is_aligned_and_zeroed() {
        let b = AlignedBuf::zeroed(10);
        assert_eq!(b.capacity(), IO_ALIGN);
        assert_eq!(b.as_ptr() as usize % IO_ALIGN, 0);
        assert!(b.iter().all(|x| *x == 0));
        assert_eq!(align_up(4097), 8192);
        assert_eq!(align_down(4097), 4096);
    }

    #[test]
    fn std_file_round_trip_direct_or_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = StdFs
            .open(
                &path,
                OpenMode {
                    create: true,
                    direct: true,
                },
            )
            .unwrap();
        block_on(f.allocate(1 << 16)).unwrap();
        let mut buf = AlignedBuf::zeroed(IO_ALIGN);
        buf[..5].copy_from_slice(b"hello");
        let (_buf, r) = block_on(f.write_at(buf, IO_ALIGN, IO_ALIGN as u64));
        r.unwrap();
        block_on(f.sync_data()).unwrap();
        // Reads go through a buffered handle (a direct one would need aligned reads).
        let reader = StdFs
            .open(
                &path,
                OpenMode {
                    create: false,
                    direct: false,
                },
            )
            .unwrap();
        let (got, n) = block_on(reader.read_at(vec![0; 5], IO_ALIGN as u64));
        assert_eq!(n.unwrap(), 5);
        assert_eq!(&got, b"hello");
        assert_eq!(f.len().unwrap(), 1 << 16);
        assert!(StdFs.disk_used_ratio(dir.path()).unwrap() <= 1.0);
    }
}
