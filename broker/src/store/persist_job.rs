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
//! 0. new ConsumeQueue files are created (`OpenAt` through the ring in ring mode);
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
use super::io::{AlignedBuf, OpenMode, StoreFile, StoreFs};

/// The files a persist job created, by index in [`PersistBatch::creates`] (`None` for one
/// that failed); shared between the job and the store, which installs them.
pub(super) type CreatedFiles<File> = Rc<std::cell::RefCell<Vec<Option<Rc<File>>>>>;

/// A file a persist job writes: open already, or created by the job (an index into its
/// [`PersistBatch::creates`]).
#[derive(Debug)]
pub(super) enum FileRef<File> {
    /// An open file.
    Open(Rc<File>),
    /// The file the job creates first.
    New(usize),
}

impl<File> FileRef<File> {
    fn same(&self, other: &FileRef<File>) -> bool {
        match (self, other) {
            (FileRef::Open(a), FileRef::Open(b)) => Rc::ptr_eq(a, b),
            (FileRef::New(a), FileRef::New(b)) => a == b,
            _ => false,
        }
    }

    /// The open file: `created` holds what the job created, by index.
    fn resolve(&self, created: &[Option<Rc<File>>]) -> Option<Rc<File>> {
        match self {
            FileRef::Open(file) => Some(file.clone()),
            FileRef::New(i) => created.get(*i).cloned().flatten(),
        }
    }
}

/// One write of a persist job: `buf[..len]` at `offset` of `file`.
#[derive(Debug)]
pub(super) struct PersistWrite<File> {
    pub(super) file: FileRef<File>,
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
    /// Queue files the job creates: (topic, queue id, first logical offset of the file,
    /// index in [`PersistBatch::creates`]); installed in their queue when the job is back.
    pub(super) queue_files: Vec<(String, i32, u64, usize)>,
    pub(super) index: Vec<IndexTarget>,
    /// The checkpoint written last (sequence assigned), if it changed.
    pub(super) checkpoint: Option<Checkpoint>,
}

/// Everything a persist job writes, gathered by the submit half.
#[derive(Debug)]
pub(super) struct PersistBatch<File> {
    /// Files to create first (new ConsumeQueue files): opened through the ring in ring mode.
    pub(super) creates: Vec<PathBuf>,
    pub(super) dir_syncs: Vec<PathBuf>,
    pub(super) writes: Vec<PersistWrite<File>>,
    pub(super) syncs: Vec<(FileRef<File>, PathBuf)>,
}

impl<File> Default for PersistBatch<File> {
    fn default() -> Self {
        PersistBatch {
            creates: Vec::new(),
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
        self.write_to(FileRef::Open(file.clone()), path, bytes, offset);
    }

    /// Asks the job to create `path` (in a directory it syncs before the writes); returns
    /// the index to write to it with [`Self::write_new`].
    pub(super) fn create(&mut self, path: &std::path::Path) -> usize {
        if let Some(dir) = path.parent() {
            self.sync_dir(dir);
        }
        self.creates.push(path.to_path_buf());
        self.creates.len() - 1
    }

    /// [`Self::write`] to a file the job creates ([`Self::create`]).
    pub(super) fn write_new(
        &mut self,
        created: usize,
        path: &std::path::Path,
        bytes: &[u8],
        offset: u64,
    ) {
        self.write_to(FileRef::New(created), path, bytes, offset);
    }

    fn write_to(&mut self, file: FileRef<File>, path: &std::path::Path, bytes: &[u8], offset: u64) {
        if !self.syncs.iter().any(|(f, _)| f.same(&file)) {
            let again = match &file {
                FileRef::Open(f) => FileRef::Open(f.clone()),
                FileRef::New(i) => FileRef::New(*i),
            };
            self.syncs.push((again, path.to_path_buf()));
        }
        self.writes.push(PersistWrite {
            file,
            path: path.to_path_buf(),
            buf: AlignedBuf::from_slice(bytes),
            len: bytes.len(),
            offset,
        });
    }

    /// Asks for `dir` to be synced before the writes (a file was created in it).
    pub(super) fn sync_dir(&mut self, dir: &std::path::Path) {
        if !self.dir_syncs.iter().any(|d| d == dir) {
            self.dir_syncs.push(dir.to_path_buf());
        }
    }

    /// Whether there is nothing to write.
    pub(super) fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.dir_syncs.is_empty() && self.creates.is_empty()
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
    /// Where the files the job creates go, by index in [`PersistBatch::creates`] (`None`
    /// for one that failed), for the store to install when the job is handed back.
    pub(super) created: CreatedFiles<F::File>,
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
            created,
        } = self;
        let result = run_batch(&fs, ring, batch, checkpoint, &created).await;
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
    created: &std::cell::RefCell<Vec<Option<Rc<F::File>>>>,
) -> StoreResult<()> {
    let mode = OpenMode {
        create: true,
        direct: false,
    };
    for path in &batch.creates {
        let file = if ring {
            fs.open_ring(path, mode, false).await
        } else {
            fs.open(path, mode)
        };
        match file {
            Ok(file) => created.borrow_mut().push(Some(Rc::new(file))),
            Err(e) => return Err(StoreError::io("create", path, e)),
        }
    }
    let created = created.borrow().clone();
    let missing = |path: &std::path::Path| {
        StoreError::Failed(format!(
            "{}: file to create was not created",
            path.display()
        ))
    };
    for dir in &batch.dir_syncs {
        let r = if ring {
            fs.sync_dir_ring(dir).await
        } else {
            fs.sync_dir(dir)
        };
        r.map_err(|e| StoreError::io("fsync directory", dir, e))?;
    }
    let mut writes = Vec::with_capacity(batch.writes.len());
    for w in batch.writes {
        let file = w.file.resolve(&created).ok_or_else(|| missing(&w.path))?;
        writes.push((file, w));
    }
    let mut syncs = Vec::with_capacity(batch.syncs.len());
    for (f, path) in batch.syncs {
        syncs.push((f.resolve(&created).ok_or_else(|| missing(&path))?, path));
    }
    if ring {
        let writes = writes
            .into_iter()
            .map(|(file, w)| write_ring(file, w))
            .collect();
        for r in join_all(writes).await {
            r?;
        }
        let syncs = syncs.iter().map(|(f, p)| sync_ring(f, p)).collect();
        for r in join_all(syncs).await {
            r?;
        }
    } else {
        for (file, w) in writes {
            let (_, r) = file.write_at(w.buf, w.len, w.offset).await;
            r.map_err(|e| StoreError::io("write", &w.path, e))?;
        }
        for (file, path) in &syncs {
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

async fn write_ring<File: StoreFile>(file: Rc<File>, w: PersistWrite<File>) -> StoreResult<()> {
    let (_, r) = file.write_at_ring(w.buf, w.len, w.offset).await;
    r.map_err(|e| StoreError::io("write", &w.path, e))
}

async fn sync_ring<File: StoreFile>(file: &Rc<File>, path: &std::path::Path) -> StoreResult<()> {
    file.sync_data_ring()
        .await
        .map_err(|e| StoreError::io("fdatasync", path, e))
}
