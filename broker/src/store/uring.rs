//! The store on the shard's io_uring runtime: [`UringFs`], the production file layer of the
//! broker.
//!
//! It is the std implementation ([`StdFs`]) for everything that is rare or must complete when
//! polled (opening at startup, metadata, reads driven by [`super::io::block_on`], recovery,
//! the blocking persist of a clean shutdown), plus the ring operations of the CommitLog's
//! commit jobs ([`super::commit_job`]), of the persist jobs ([`super::persist_job`]:
//! ConsumeQueue, index and checkpoint writes and their `fdatasync`s, buffered, on the ring),
//! of the metadata snapshot jobs ([`super::meta_job`]) and of ConsumeQueue page loads
//! ([`super::consume_queue::CqPageLoad`]):
//! * group-commit writes go to the ring as `O_DIRECT` writes of at most
//!   [`RING_WRITE_PIECE_BYTES`] each, all pieces of a job in flight together (queue depth >
//!   1 is what lets a preallocated file reach the disk's bandwidth), `WriteFixed` when the
//!   write buffers are registered;
//! * `fdatasync` (sync flush mode, and the periodic sync of async mode) and the `fallocate`
//!   of new segments go through the ring too, so the shard never blocks on them;
//! * files the jobs create — the next CommitLog segment, new ConsumeQueue files, the temp
//!   files of metadata snapshots — are opened with `OpenAt` on the ring (`open_ring`),
//!   snapshots are published with `RenameAt` (`rename_ring`) and directories synced after an
//!   `OpenAt` of the directory; pages of ConsumeQueue entries evicted from memory are read
//!   with `Read` on the ring (`read_at_ring`) by a task of the shard;
//! * the write buffers are allocated once at open and registered with the ring after the
//!   runtime's pool ([`crate::runtime::register_extra_buffers`]) when the memlock budget
//!   allows (always with `CAP_IPC_LOCK`); otherwise, or on `ENOMEM`, the same aligned buffers
//!   are written with plain `Write` (logged once).
//!
//! Shard-local (`!Send`): build it on the shard thread that owns the store. Its ring
//! operations panic off a shard thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::runtime::{self, IoBuf};

use super::commit_job::join_all;
use super::io::{AlignedBuf, OpenMode, StdFile, StdFs, StoreFile, StoreFs};

/// Largest single write a commit job submits: a buffer is split into pieces of this size,
/// in flight together (fio's 1 MiB blocks at depth 8 are the raw baseline we compare with).
pub const RING_WRITE_PIECE_BYTES: usize = 1 << 20;

/// Logged once per process: the write buffers could not be registered.
static UNREGISTERED_LOGGED: AtomicBool = AtomicBool::new(false);

/// Start address of a write buffer → its registered index.
type FixedTable = Rc<RefCell<HashMap<usize, u16>>>;

/// The store's file layer on the shard's io_uring; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct UringFs {
    fixed: FixedTable,
}

impl UringFs {
    /// A file layer for the store of the current shard.
    pub fn new() -> Self {
        UringFs::default()
    }

    /// How many write buffers are registered with the ring (0: plain `Write`).
    pub fn registered_buffers(&self) -> usize {
        self.fixed.borrow().len()
    }
}

/// A file of [`UringFs`]: a std handle, and a duplicate of its descriptor driven by the ring.
#[derive(Debug)]
pub struct UringFile {
    std: StdFile,
    ring: Option<runtime::File>,
    /// Cleared when the ring path met `EINVAL` (O_DIRECT refused): std writes from then on.
    ring_ok: Cell<bool>,
    fixed: FixedTable,
}

impl AsRawFd for UringFile {
    /// The std descriptor, e.g. to `splice` a [`super::commit_log::FileRange`].
    fn as_raw_fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

/// One piece of a write buffer shared by the pieces in flight; the buffer comes back when the
/// last piece does.
struct Piece {
    buf: Rc<AlignedBuf>,
    at: usize,
    len: usize,
    fixed: Option<u16>,
}

// SAFETY: the AlignedBuf's heap allocation is kept alive and unmoved by the Rc while any piece
// lives, and `at + len` lies inside it (checked when the pieces are cut).
unsafe impl IoBuf for Piece {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: at < capacity, inside the allocation.
        unsafe { self.buf.as_ptr().add(self.at) }
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.len
    }
    fn fixed_index(&self) -> Option<u16> {
        self.fixed
    }
}

impl StoreFs for UringFs {
    type File = UringFile;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<UringFile> {
        let std = StdFs.open(path, mode)?;
        // Every file gets a ring handle: segments for the commit jobs, queue, index and
        // checkpoint files for the persist jobs (buffered writes and syncs on the ring).
        let ring = Some(runtime::File::from_std(std.try_clone_handle()?));
        Ok(UringFile {
            std,
            ring,
            ring_ok: Cell::new(true),
            fixed: self.fixed.clone(),
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }

    fn lock_exclusive(&self, path: &Path) -> io::Result<Box<dyn std::any::Any>> {
        StdFs.lock_exclusive(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }

    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }

    fn disk_used_ratio(&self, path: &Path) -> io::Result<f64> {
        StdFs.disk_used_ratio(path)
    }

    fn modified_ms(&self, path: &Path) -> io::Result<i64> {
        StdFs.modified_ms(path)
    }

    fn write_buffers(&self, count: usize, bytes: usize) -> Vec<AlignedBuf> {
        let buffers: Vec<AlignedBuf> = (0..count).map(|_| AlignedBuf::zeroed(bytes)).collect();
        let spans: Vec<(*const u8, usize)> =
            buffers.iter().map(|b| (b.as_ptr(), b.capacity())).collect();
        // SAFETY: the buffers live as long as the CommitLog, which lives as long as the store
        // on this shard; a buffer freed before the ring only leaves pages the kernel pinned,
        // never used again (a registered index is only used with its own buffer, looked up
        // by address).
        match unsafe { runtime::register_extra_buffers(&spans) } {
            Ok(first) => {
                let mut table = self.fixed.borrow_mut();
                for (i, (start, _)) in spans.iter().enumerate() {
                    table.insert(*start as usize, first + i as u16);
                }
                tracing::info!(target: "store::uring", buffers = count, bytes_each = bytes,
                    "CommitLog write buffers registered with the ring (WriteFixed)");
            }
            Err(error) => {
                if !UNREGISTERED_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(target: "store::uring", %error, buffers = count,
                        bytes_each = bytes,
                        "CommitLog write buffers not registered (memlock budget or ENOMEM): \
                         plain O_DIRECT writes from the same aligned buffers");
                }
            }
        }
        buffers
    }

    async fn sync_dir_ring(&self, path: &Path) -> io::Result<()> {
        let dir = runtime::File::open_at(path, libc::O_RDONLY | libc::O_DIRECTORY, 0).await?;
        dir.sync_all().await
    }

    async fn open_ring(
        &self,
        path: &Path,
        mode: OpenMode,
        truncate: bool,
    ) -> io::Result<UringFile> {
        let mut flags = libc::O_RDWR;
        if mode.create {
            flags |= libc::O_CREAT;
        }
        if truncate {
            flags |= libc::O_TRUNC;
        }
        let (ring, direct) = if mode.direct {
            match runtime::File::open_at(path, flags | libc::O_DIRECT, 0o666).await {
                Ok(file) => (file, true),
                // The filesystem refuses O_DIRECT (tmpfs): buffered, as StdFs does.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    (runtime::File::open_at(path, flags, 0o666).await?, false)
                }
                Err(e) => return Err(e),
            }
        } else {
            (runtime::File::open_at(path, flags, 0o666).await?, false)
        };
        // SAFETY: `ring` owns this descriptor and is alive for the whole borrow.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(ring.as_raw_fd()) };
        let std = std::fs::File::from(borrowed.try_clone_to_owned()?);
        Ok(UringFile {
            std: StdFile::from_parts(std, path.to_path_buf(), direct),
            ring: Some(ring),
            ring_ok: Cell::new(true),
            fixed: self.fixed.clone(),
        })
    }

    async fn rename_ring(&self, from: &Path, to: &Path) -> io::Result<()> {
        runtime::rename(from, to).await
    }
}

impl UringFile {
    async fn ring_write(
        &self,
        ring: &runtime::File,
        buf: AlignedBuf,
        len: usize,
        offset: u64,
    ) -> (AlignedBuf, io::Result<()>) {
        let len = len.min(buf.capacity());
        let fixed = self.fixed.borrow().get(&(buf.as_ptr() as usize)).copied();
        let shared = Rc::new(buf);
        let mut writes = Vec::with_capacity(len.div_ceil(RING_WRITE_PIECE_BYTES));
        let mut at = 0;
        while at < len {
            let piece = Piece {
                buf: shared.clone(),
                at,
                len: RING_WRITE_PIECE_BYTES.min(len - at),
                fixed,
            };
            writes.push(ring.write_all_at(piece, offset + at as u64));
            at += RING_WRITE_PIECE_BYTES;
        }
        let mut error = None;
        for (result, piece) in join_all(writes).await {
            drop(piece);
            if let Err(e) = result {
                error.get_or_insert(e);
            }
        }
        let buf = match Rc::try_unwrap(shared) {
            Ok(buf) => buf,
            Err(shared) => {
                // Cannot happen: every piece came back with its completion above.
                let cap = shared.capacity();
                return (
                    AlignedBuf::zeroed(cap),
                    Err(io::Error::other("write buffer still lent after its writes")),
                );
            }
        };
        match error {
            None => (buf, Ok(())),
            Some(e) => (buf, Err(e)),
        }
    }
}

impl StoreFile for UringFile {
    async fn write_at(
        &self,
        buf: AlignedBuf,
        len: usize,
        offset: u64,
    ) -> (AlignedBuf, io::Result<()>) {
        self.std.write_at(buf, len, offset).await
    }

    async fn read_at(&self, buf: Vec<u8>, offset: u64) -> (Vec<u8>, io::Result<usize>) {
        self.std.read_at(buf, offset).await
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.std.sync_data().await
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        self.std.allocate(len).await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.std.set_len(len).await
    }

    fn len(&self) -> io::Result<u64> {
        self.std.len()
    }

    fn is_direct(&self) -> bool {
        self.std.is_direct()
    }

    async fn write_at_ring(
        &self,
        buf: AlignedBuf,
        len: usize,
        offset: u64,
    ) -> (AlignedBuf, io::Result<()>) {
        let Some(ring) = self.ring.as_ref().filter(|_| self.ring_ok.get()) else {
            return self.std.write_at(buf, len, offset).await;
        };
        let (buf, result) = self.ring_write(ring, buf, len, offset).await;
        match result {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // O_DIRECT refused for this file: the std handle reopens buffered.
                self.ring_ok.set(false);
                tracing::info!(target: "store::uring", error = %e,
                    "ring O_DIRECT write refused; blocking buffered writes for this file");
                self.std.write_at(buf, len, offset).await
            }
            other => (buf, other),
        }
    }

    async fn write_and_sync_ring(
        &self,
        buf: AlignedBuf,
        len: usize,
        offset: u64,
    ) -> (AlignedBuf, io::Result<()>) {
        let len = len.min(buf.capacity());
        let Some(ring) = self
            .ring
            .as_ref()
            .filter(|_| self.ring_ok.get() && len <= RING_WRITE_PIECE_BYTES)
        else {
            let (buf, r) = self.write_at_ring(buf, len, offset).await;
            return match r {
                Ok(()) => (buf, self.sync_data_ring().await),
                Err(e) => (buf, Err(e)),
            };
        };
        let fixed = self.fixed.borrow().get(&(buf.as_ptr() as usize)).copied();
        let piece = Piece {
            buf: Rc::new(buf),
            at: 0,
            len,
            fixed,
        };
        let (result, piece) = ring.write_all_and_sync_data_at(piece, offset).await;
        let Ok(buf) = Rc::try_unwrap(piece.buf) else {
            // Cannot happen: the only other holder was the completed operation.
            return (
                AlignedBuf::zeroed(len.max(super::io::IO_ALIGN)),
                Err(io::Error::other("write buffer still lent after its write")),
            );
        };
        match result {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // O_DIRECT refused for this file: blocking buffered writes from now on.
                self.ring_ok.set(false);
                let (buf, r) = self.std.write_at(buf, len, offset).await;
                match r {
                    Ok(()) => (buf, self.std.sync_data().await),
                    Err(e) => (buf, Err(e)),
                }
            }
            other => (buf, other),
        }
    }

    async fn sync_data_ring(&self) -> io::Result<()> {
        match self.ring.as_ref() {
            Some(ring) => ring.sync_data().await,
            None => self.std.sync_data().await,
        }
    }

    async fn read_at_ring(&self, mut buf: Vec<u8>, offset: u64) -> (Vec<u8>, io::Result<usize>) {
        let Some(ring) = self.ring.as_ref() else {
            return self.std.read_at(buf, offset).await;
        };
        let want = buf.len();
        let mut done = 0;
        while done < want {
            let (r, chunk) = ring
                .read_at(Vec::with_capacity(want - done), offset + done as u64)
                .await;
            match r {
                Ok(0) => break,
                Ok(n) => {
                    let n = n.min(chunk.len()).min(want - done);
                    buf[done..done + n].copy_from_slice(&chunk[..n]);
                    done += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (buf, Err(e)),
            }
        }
        (buf, Ok(done))
    }

    async fn allocate_ring(&self, len: u64) -> io::Result<()> {
        let Some(ring) = self.ring.as_ref() else {
            return self.std.allocate(len).await;
        };
        match ring.fallocate(0, len, 0).await {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => self.std.allocate(len).await,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{RuntimeConfig, Shard, spawn_local};
    use crate::store::io::block_on;
    use crate::store::{AppendMessage, FlushMode, GetMessage, GetStatus, Store, StoreConfig};

    fn config(dir: &Path, mode: FlushMode) -> StoreConfig {
        StoreConfig {
            flush_mode: mode,
            direct_io: true,
            ..StoreConfig::for_tests(dir)
        }
    }

    fn body_of(i: u64) -> String {
        format!("b-{i:06}-{}", "x".repeat(300))
    }

    /// Appends `n` records with bodies [`body_of`], keeping one ring job in flight and appending
    /// while it runs; returns the end offset of the last record.
    async fn append_on_ring(store: &mut Store<UringFs>, first: u64, n: u64) -> u64 {
        let mut job = None;
        let mut end = 0;
        let mut i = first;
        while i < first + n || job.is_some() {
            if i < first + n {
                let body = body_of(i);
                match store.append(&AppendMessage::new(
                    "RingTopic",
                    (i % 3) as i32,
                    body.as_bytes(),
                )) {
                    Ok(t) => {
                        end = t.end_offset();
                        i += 1;
                        if !i.is_multiple_of(50) {
                            continue;
                        }
                    }
                    Err(crate::store::StoreError::Busy { .. }) => {}
                    Err(e) => panic!("append: {e}"),
                }
            }
            if job.is_none() {
                job = store
                    .begin_commit(true)
                    .expect("begin")
                    .map(|j| spawn_local(j.run()));
            }
            if let Some(handle) = job.take() {
                if i < first + n && !handle.is_finished() {
                    // Keep appending while the write is in flight.
                    job = Some(handle);
                    crate::runtime::yield_now().await;
                    continue;
                }
                store.finish_commit(handle.await).expect("finish");
            }
        }
        while store.commit_in_flight() || store.ack_offset() < end {
            let job = store.begin_commit(true).expect("begin").expect("job");
            let done = spawn_local(job.run()).await;
            store.finish_commit(done).expect("finish");
        }
        end
    }

    fn bodies(store: &Store<impl StoreFs>) -> Vec<String> {
        let mut out = Vec::new();
        for (topic, qid) in store.queue_ids() {
            let mut offset = 0;
            loop {
                let res = block_on(store.get_message(&GetMessage {
                    topic: &topic,
                    queue_id: qid,
                    offset,
                    max_count: 64,
                    max_bytes: usize::MAX,
                    tag_codes: None,
                    file_ranges: false,
                }))
                .expect("read");
                if res.status != GetStatus::Found {
                    break;
                }
                for r in &res.records {
                    let msg = block_on(store.read_message_at(r.physical_offset))
                        .expect("read at")
                        .expect("record");
                    out.push(String::from_utf8_lossy(&msg.body()).into_owned());
                }
                offset = res.next_offset;
            }
        }
        out.sort();
        out
    }

    #[test]
    fn ring_commits_write_what_was_appended_across_segments_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shard = Shard::new(&RuntimeConfig::for_tests()).expect("shard");
        let n = 3000;
        shard.block_on(async {
            let fs = UringFs::new();
            let mut store = block_on(Store::open(
                fs.clone(),
                config(dir.path(), FlushMode::Async),
            ))
            .expect("open");
            store.set_ring_mode(true);
            let end = append_on_ring(&mut store, 0, n).await;
            assert!(store.ack_offset() >= end);
            // Several 256 KiB segments were written and preallocated through the ring.
            assert!(store.commit_log().segments().count() >= 3);
            assert!(store.commit_log().segments().all(|s| s.is_direct()));
            // Every new segment was created ahead by a job (OpenAt on the ring), none on the
            // append path.
            assert_eq!(store.commit_log().blocking_segment_opens(), 0);
            assert_eq!(bodies(&store).len(), n as usize);
            // The periodic sync is asked of the next job in ring mode.
            block_on(store.persist_step()).expect("persist");
            let job = store.begin_commit(true).expect("begin").expect("sync job");
            let done = spawn_local(job.run()).await;
            store.finish_commit(done).expect("finish");
            assert_eq!(store.commit_log().synced_offset(), end);
            block_on(store.close()).expect("close");
        });
        let store =
            block_on(Store::open(StdFs, config(dir.path(), FlushMode::Async))).expect("reopen");
        assert!(!store.recovered_from_crash);
        let mut want: Vec<String> = (0..n).map(body_of).collect();
        want.sort();
        assert_eq!(bodies(&store), want);
        let report = block_on(crate::store::verify::verify(
            &StdFs,
            dir.path(),
            store.config().segment_bytes,
        ))
        .expect("verify");
        assert!(report.damage.is_empty(), "{:?}", report.damage);
        assert_eq!(report.records, n);
    }

    #[test]
    fn ring_sync_mode_acks_only_after_the_job_with_its_fdatasync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shard = Shard::new(&RuntimeConfig::for_tests()).expect("shard");
        shard.block_on(async {
            let mut store = block_on(Store::open(
                UringFs::new(),
                config(dir.path(), FlushMode::Sync),
            ))
            .expect("open");
            store.set_ring_mode(true);
            let t = store
                .append(&AppendMessage::new("S", 0, b"durable"))
                .expect("append");
            assert!(!store.is_acknowledged(&t));
            let job = store.begin_commit(true).expect("begin").expect("job");
            // A second begin while one is in flight gives nothing (one job at a time).
            assert!(store.begin_commit(true).expect("begin again").is_none());
            assert!(!store.is_acknowledged(&t));
            let done = spawn_local(job.run()).await;
            assert!(done.is_ok());
            store.finish_commit(done).expect("finish");
            assert!(store.is_acknowledged(&t));
            assert_eq!(store.commit_log().synced_offset(), t.end_offset());
            block_on(store.close()).expect("close");
        });
    }

    #[test]
    fn ring_persist_writes_queues_and_checkpoint_while_appends_go_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path(), FlushMode::Async);
        let shard = Shard::new(&RuntimeConfig::for_tests()).expect("shard");
        let first_end = shard.block_on(async {
            let mut store = block_on(Store::open(UringFs::new(), cfg.clone())).expect("open");
            store.set_ring_mode(true);
            let end = append_on_ring(&mut store, 0, 300).await;
            let job = block_on(store.begin_persist(true))
                .expect("begin")
                .expect("a persist job");
            assert!(job.on_ring());
            assert!(job.write_count() >= 4, "3 queue files and the checkpoint");
            // The queue files are created by the job (OpenAt on the ring), not before.
            let first_file = cfg
                .consume_queue_dir()
                .join("RingTopic")
                .join("0")
                .join(crate::store::commit_log::file_name(0));
            assert!(!first_file.exists());
            // One persist job at a time.
            assert!(
                block_on(store.begin_persist(true))
                    .expect("again")
                    .is_none()
            );
            let handle = spawn_local(job.run());
            // The shard goes on appending and committing while the job is out.
            append_on_ring(&mut store, 300, 100).await;
            let done = handle.await;
            assert!(done.is_ok());
            assert!(first_file.exists());
            store.finish_persist(done).expect("finish");
            assert!(!store.persist_in_flight());
            // Crash: no close, the abort file stays.
            drop(store);
            end
        });
        let checkpoint = block_on(crate::store::checkpoint::CheckpointFile::<
            crate::store::io::StdFile,
        >::open(&StdFs, &cfg.checkpoint_path()))
        .expect("checkpoint")
        .get();
        assert_eq!(checkpoint.dispatch_persisted, first_end);
        for qid in 0..3u64 {
            let queue = block_on(crate::store::consume_queue::ConsumeQueue::<
                crate::store::io::StdFile,
            >::load(
                &StdFs,
                cfg.consume_queue_dir()
                    .join("RingTopic")
                    .join(qid.to_string()),
                cfg.cq_entries_per_file,
                0,
                usize::MAX,
                0,
            ))
            .expect("load queue");
            let want = (0..300u64).filter(|i| i % 3 == qid).count() as u64;
            assert!(
                queue.max_offset() >= want,
                "queue {qid}: {}",
                queue.max_offset()
            );
        }
        let store = block_on(Store::open(StdFs, cfg)).expect("recover");
        assert!(store.recovered_from_crash);
        let mut want: Vec<String> = (0..400).map(body_of).collect();
        want.sort();
        assert_eq!(bodies(&store), want);
    }

    #[test]
    fn write_buffers_are_registered_within_the_budget_or_written_plain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shard = Shard::new(&RuntimeConfig::for_tests()).expect("shard");
        shard.block_on(async {
            let fs = UringFs::new();
            let mut store = block_on(Store::open(
                fs.clone(),
                config(dir.path(), FlushMode::Async),
            ))
            .expect("open");
            let registered = fs.registered_buffers();
            // Four 64 KiB buffers fit any budget this machine can have except none at all.
            assert!(registered == 0 || registered == store.config().write_buffers_max);
            store.set_ring_mode(true);
            append_on_ring(&mut store, 0, 100).await;
            block_on(store.close()).expect("close");
        });
        assert_eq!(shard.stats().fixed_fallback_ops, 0);
    }
}
