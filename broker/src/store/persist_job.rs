//! What runs behind the CommitLog — ConsumeQueue entries, index pages and headers, the
//! checkpoint — as one owned unit of work, the way [`super::commit_job`] does it for the
//! CommitLog: [`super::Store::begin_persist`] (submit half, synchronous apart from the
//! CommitLog sync of blocking mode) encodes everything to write into owned buffers and takes
//! `Rc` handles of the files; [`PersistJob::run`] does the file operations and yields a
//! [`PersistDone`]; [`super::Store::finish_persist`] (complete half) advances the persisted
//! positions. The store is not borrowed while the disk works, so in ring mode the broker
//! spawns the job as a task of the shard and keeps serving.
//!
//! Order inside a job:
//! 1. the directories that got a new queue or index file are synced (a file's entry is
//!    durable before the checkpoint counts on its contents);
//! 2. every write — queue entries, index entries, dirty slot-table pages, index headers — in
//!    flight together (they never overlap: one range per queue file, and an index file's
//!    entries, slot pages and header are disjoint);
//! 3. one `fdatasync` per file written, in flight together;
//! 4. only then the checkpoint (write into its older slot, `fdatasync`): it promises that
//!    every record below `dispatch_persisted` has its queue and index entries on disk.
//!
//! A failed operation leaves the positions where they were: the next persist writes the
//! same ranges again (idempotent: same bytes at the same offsets), and recovery can always
//! rebuild queues and index from the CommitLog. One job at a time.
//!
//! With `ring == false` (tests, tools, `StdFs`/`SimFs`, clean shutdown) the same job runs
//! its operations one after the other with the blocking-safe calls.
//!
//! Runs on the shard's thread (`!Send`).

use std::path::PathBuf;
use std::rc::Rc;

use super::checkpoint::Checkpoint;
use super::commit_job::join_all;
use super::error::{StoreError, StoreResult};
use super::io::{AlignedBuf, StoreFile, StoreFs};

/// One write of a persist job: `buf[..len]` at `offset` of `file`.
#[derive(Debug)]
pub(super) struct PersistWrite<File> {
    pub(super) file: Rc<File>,
    pub(super) path: PathBuf,
    pub(super) buf: AlignedBuf,
    pub(super) len: usize,
    pub(super) offset: u64,
}

/// What an index file's part of a job covers, to advance it when the job is done.
#[derive(Debug)]
pub(super) struct IndexTarget {
    /// The index file (matched by path: retention may drop files meanwhile).
    pub(super) path: PathBuf,
    /// Pending entries the job writes (the first ones of the file's pending list).
    pub(super) entries: usize,
    /// The file's entry count once they are written.
    pub(super) persisted_count: i32,
    /// Slot-table pages the job writes; marked dirty again if it fails.
    pub(super) slot_pages: Vec<u64>,
}

/// Positions a job advances when it succeeds.
#[derive(Debug, Default)]
pub(super) struct PersistTargets {
    /// (topic, queue id, logical offset up to which entries are written).
    pub(super) queues: Vec<(String, i32, u64)>,
    pub(super) index: Vec<IndexTarget>,
    /// The checkpoint written last (sequence assigned), if it changed.
    pub(super) checkpoint: Option<Checkpoint>,
}

/// Everything a persist job writes, gathered by the submit half.
#[derive(Debug)]
pub(super) struct PersistBatch<File> {
    pub(super) dir_syncs: Vec<PathBuf>,
    pub(super) writes: Vec<PersistWrite<File>>,
    pub(super) syncs: Vec<(Rc<File>, PathBuf)>,
}

impl<File> Default for PersistBatch<File> {
    fn default() -> Self {
        PersistBatch {
            dir_syncs: Vec::new(),
            writes: Vec::new(),
            syncs: Vec::new(),
        }
    }
}

impl<File> PersistBatch<File> {
    /// Queues a write of `bytes` at `offset` and, once per file, its `fdatasync`.
    pub(super) fn write(
        &mut self,
        file: &Rc<File>,
        path: &std::path::Path,
        bytes: &[u8],
        offset: u64,
    ) {
        self.writes.push(PersistWrite {
            file: file.clone(),
            path: path.to_path_buf(),
            buf: AlignedBuf::from_slice(bytes),
            len: bytes.len(),
            offset,
        });
        if !self.syncs.iter().any(|(f, _)| Rc::ptr_eq(f, file)) {
            self.syncs.push((file.clone(), path.to_path_buf()));
        }
    }

    /// Asks for `dir` to be synced before the writes (a file was created in it).
    pub(super) fn sync_dir(&mut self, dir: &std::path::Path) {
        if !self.dir_syncs.iter().any(|d| d == dir) {
            self.dir_syncs.push(dir.to_path_buf());
        }
    }

    /// Whether there is nothing to write.
    pub(super) fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.dir_syncs.is_empty()
    }
}

/// The checkpoint write that ends a job.
#[derive(Debug)]
pub(super) struct CheckpointWrite<File> {
    pub(super) file: Rc<File>,
    pub(super) path: PathBuf,
    pub(super) buf: AlignedBuf,
    pub(super) len: usize,
    pub(super) offset: u64,
}

/// A persist taken out of the store; see the module docs. Give its [`PersistDone`] back to
/// [`super::Store::finish_persist`].
#[derive(Debug)]
pub struct PersistJob<F: StoreFs> {
    pub(super) fs: F,
    pub(super) ring: bool,
    pub(super) batch: PersistBatch<F::File>,
    pub(super) checkpoint: Option<CheckpointWrite<F::File>>,
    pub(super) targets: PersistTargets,
}

/// The outcome of a [`PersistJob`].
#[derive(Debug)]
pub struct PersistDone {
    pub(super) targets: PersistTargets,
    pub(super) result: StoreResult<()>,
}

impl PersistDone {
    /// Whether every operation of the job succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

impl<F: StoreFs> PersistJob<F> {
    /// Writes (queue entries, index pages and headers, checkpoint) this job makes.
    pub fn write_count(&self) -> usize {
        self.batch.writes.len() + usize::from(self.checkpoint.is_some())
    }

    /// Whether the job runs its operations on the shard's ring.
    pub fn on_ring(&self) -> bool {
        self.ring
    }

    /// Does the job's file operations. Never fails as a future: the outcome is in the
    /// [`PersistDone`].
    pub async fn run(self) -> PersistDone {
        let PersistJob {
            fs,
            ring,
            batch,
            checkpoint,
            targets,
        } = self;
        let result = run_batch(&fs, ring, batch, checkpoint).await;
        if let Err(error) = &result {
            tracing::warn!(target: "store::persist", %error,
                "persisting queues/index/checkpoint failed; retried at the next persist");
        }
        PersistDone { targets, result }
    }
}

async fn run_batch<F: StoreFs>(
    fs: &F,
    ring: bool,
    batch: PersistBatch<F::File>,
    checkpoint: Option<CheckpointWrite<F::File>>,
) -> StoreResult<()> {
    for dir in &batch.dir_syncs {
        let r = if ring {
            fs.sync_dir_ring(dir).await
        } else {
            fs.sync_dir(dir)
        };
        r.map_err(|e| StoreError::io("fsync directory", dir, e))?;
    }
    if ring {
        let writes = batch.writes.into_iter().map(write_ring).collect();
        for r in join_all(writes).await {
            r?;
        }
        let syncs = batch.syncs.iter().map(|(f, p)| sync_ring(f, p)).collect();
        for r in join_all(syncs).await {
            r?;
        }
    } else {
        for w in batch.writes {
            let (_, r) = w.file.write_at(w.buf, w.len, w.offset).await;
            r.map_err(|e| StoreError::io("write", &w.path, e))?;
        }
        for (file, path) in &batch.syncs {
            file.sync_data()
                .await
                .map_err(|e| StoreError::io("fdatasync", path, e))?;
        }
    }
    if let Some(c) = checkpoint {
        let (_, r) = if ring {
            c.file.write_at_ring(c.buf, c.len, c.offset).await
        } else {
            c.file.write_at(c.buf, c.len, c.offset).await
        };
        r.map_err(|e| StoreError::io("write", &c.path, e))?;
        let r = if ring {
            c.file.sync_data_ring().await
        } else {
            c.file.sync_data().await
        };
        r.map_err(|e| StoreError::io("fdatasync", &c.path, e))?;
    }
    Ok(())
}

async fn write_ring<File: StoreFile>(w: PersistWrite<File>) -> StoreResult<()> {
    let (_, r) = w.file.write_at_ring(w.buf, w.len, w.offset).await;
    r.map_err(|e| StoreError::io("write", &w.path, e))
}

async fn sync_ring<File: StoreFile>(file: &Rc<File>, path: &std::path::Path) -> StoreResult<()> {
    file.sync_data_ring()
        .await
        .map_err(|e| StoreError::io("fdatasync", path, e))
}
