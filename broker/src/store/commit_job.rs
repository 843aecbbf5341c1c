//! One group commit as an owned unit of work, so that the CommitLog is not borrowed while the
//! disk works: [`super::commit_log::CommitLog::begin_commit`] (submit half) takes the dirty
//! buffers out of the log into a [`CommitJob`]; [`CommitJob::run`] does the file operations
//! and yields a [`CommitDone`]; [`super::commit_log::CommitLog::finish_commit`] (complete
//! half) gives the buffers back and advances the written / synced offsets.
//!
//! A job runs in one of two ways:
//! * blocking-safe (`ring == false`): [`super::Store::commit_step`] awaits it at once; every
//!   operation of the std and simulated file layers completes when polled;
//! * on the ring (`ring == true`): the broker spawns it as a task of the shard; the writes of
//!   the job are submitted together (`O_DIRECT`, `WriteFixed` where registered) and the
//!   shard goes on serving, appending into the next buffer, until the completions arrive.
//!
//! Order inside a job: create the next segment when the log asks for it (opened through the
//! ring in ring mode: `OpenAt`), preallocate new segments (`fallocate`) and make their
//! directory entry durable, then the writes (all in flight together: they never overlap, see
//! `CommitLog::begin_commit`), then in sync mode one `fdatasync` per segment touched. Only one
//! job is in flight at a time, because the next job rewrites the partly filled last page of
//! this one: two writes of one page in flight together could land in either order.
//!
//! Runs on the shard's thread (`!Send`).

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use super::commit_log::Segment;
use super::error::{StoreError, StoreResult};
use super::io::{AlignedBuf, OpenMode, StoreFile, StoreFs};

/// One write of a job: `buf[..write_len]` at `file_pos` of a segment.
#[derive(Debug)]
pub(super) struct JobWrite<File> {
    pub(super) file: Rc<File>,
    pub(super) path: PathBuf,
    pub(super) buf: AlignedBuf,
    pub(super) write_len: usize,
    pub(super) file_pos: u64,
}

/// A segment file to create (and preallocate) ahead of the appends that will fill it.
#[derive(Debug)]
pub(super) struct JobCreate {
    pub(super) start: u64,
    pub(super) path: PathBuf,
    /// Ask for `O_DIRECT` on the writer.
    pub(super) direct: bool,
    /// Bytes to preallocate.
    pub(super) len: u64,
}

/// A segment to preallocate (`fallocate` of `len` bytes) before the writes.
#[derive(Debug)]
pub(super) struct JobAllocate<File> {
    pub(super) file: Rc<File>,
    pub(super) path: PathBuf,
    pub(super) start: u64,
    pub(super) len: u64,
}

/// A group commit taken out of the CommitLog: owns its buffers and file handles, so it can
/// run while the log goes on taking appends. Give its [`CommitDone`] back to
/// [`super::commit_log::CommitLog::finish_commit`] (or [`super::Store::finish_commit`]).
#[derive(Debug)]
pub struct CommitJob<F: StoreFs> {
    pub(super) seq: u64,
    pub(super) fs: F,
    pub(super) dir: PathBuf,
    /// New segments: created (through the ring in ring mode) and preallocated first.
    pub(super) create: Vec<JobCreate>,
    /// Where created segments go, for the log to install when the job is handed back.
    pub(super) created: Rc<RefCell<Vec<Segment<F::File>>>>,
    pub(super) allocate: Vec<JobAllocate<F::File>>,
    pub(super) writes: Vec<JobWrite<F::File>>,
    pub(super) syncs: Vec<(Rc<F::File>, PathBuf)>,
    pub(super) target_written: u64,
    pub(super) target_synced: Option<u64>,
    pub(super) ring: bool,
}

/// The outcome of a [`CommitJob`]: its buffers, for reuse, and what became durable.
#[derive(Debug)]
pub struct CommitDone {
    pub(super) seq: u64,
    pub(super) buffers: Vec<AlignedBuf>,
    pub(super) allocated: Vec<u64>,
    pub(super) target_written: u64,
    pub(super) target_synced: Option<u64>,
    pub(super) result: StoreResult<()>,
}

impl CommitDone {
    /// Whether every operation of the job succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

impl<F: StoreFs> CommitJob<F> {
    /// Bytes this job writes.
    pub fn write_bytes(&self) -> u64 {
        self.writes.iter().map(|w| w.write_len as u64).sum()
    }

    /// Whether the job runs its operations on the shard's ring.
    pub fn on_ring(&self) -> bool {
        self.ring
    }

    /// Does the job's file operations. Never fails as a future: the outcome, buffers
    /// included, is in the [`CommitDone`].
    pub async fn run(self) -> CommitDone {
        let CommitJob {
            seq,
            fs,
            dir,
            create,
            created,
            allocate,
            writes,
            syncs,
            target_written,
            target_synced,
            ring,
        } = self;
        let mut done = CommitDone {
            seq,
            buffers: Vec::with_capacity(writes.len()),
            allocated: Vec::new(),
            target_written,
            target_synced,
            result: Ok(()),
        };
        let prepared = run_creations(&fs, &create, ring, &created).await;
        let prepared = match prepared {
            Ok(()) => {
                run_allocations(
                    &fs,
                    &dir,
                    &allocate,
                    ring,
                    !create.is_empty(),
                    &mut done.allocated,
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = prepared {
            done.buffers.extend(writes.into_iter().map(|w| w.buf));
            done.result = Err(e);
            return done;
        }
        // Sync mode, one write (one appender, or a small batch): write and sync go to the
        // ring as one linked chain, so the sync starts without a round trip through the
        // shard.
        let linked = ring
            && writes.len() == 1
            && syncs.len() == 1
            && Rc::ptr_eq(&writes[0].file, &syncs[0].0);
        let results = if linked {
            let mut out = Vec::with_capacity(1);
            for w in writes {
                let (buf, r) = w
                    .file
                    .write_and_sync_ring(w.buf, w.write_len, w.file_pos)
                    .await;
                // The write or the sync failed: the log stops either way.
                out.push((
                    buf,
                    r.map_err(|e| StoreError::io("write + fdatasync", &w.path, e)),
                ));
            }
            out
        } else if ring {
            join_all(writes.into_iter().map(write_one_ring).collect()).await
        } else {
            let mut out = Vec::with_capacity(writes.len());
            let mut failed = false;
            for w in writes {
                if failed {
                    // After a failed write the rest are not attempted: the log stops anyway.
                    out.push((w.buf, Ok(())));
                    continue;
                }
                let r = write_one(w, false).await;
                failed = r.1.is_err();
                out.push(r);
            }
            out
        };
        for (buf, r) in results {
            done.buffers.push(buf);
            if let Err(e) = r
                && done.result.is_ok()
            {
                done.result = Err(e);
            }
        }
        if done.result.is_err() {
            return done;
        }
        for (file, path) in syncs.iter().filter(|_| !linked) {
            let r = if ring {
                file.sync_data_ring().await
            } else {
                file.sync_data().await
            };
            if let Err(e) = r {
                done.result = Err(StoreError::io("fdatasync", path, e));
                return done;
            }
        }
        done
    }
}

/// Creates the new segments: the writer (`O_DIRECT` when asked and accepted) and a
/// buffered reader, both opened through the ring in ring mode, and preallocates them.
async fn run_creations<F: StoreFs>(
    fs: &F,
    create: &[JobCreate],
    ring: bool,
    created: &RefCell<Vec<Segment<F::File>>>,
) -> StoreResult<()> {
    for c in create {
        let open = |create: bool, direct: bool| async move {
            let mode = OpenMode { create, direct };
            let file = if ring {
                fs.open_ring(&c.path, mode, false).await
            } else {
                fs.open(&c.path, mode)
            };
            file.map_err(|e| StoreError::io("create", &c.path, e))
        };
        let writer = open(true, c.direct).await?;
        let r = if ring {
            writer.allocate_ring(c.len).await
        } else {
            writer.allocate(c.len).await
        };
        r.map_err(|e| StoreError::io("fallocate", &c.path, e))?;
        let reader = open(false, false).await?;
        created
            .borrow_mut()
            .push(Segment::created(c.start, c.path.clone(), writer, reader));
    }
    Ok(())
}

async fn run_allocations<F: StoreFs>(
    fs: &F,
    dir: &std::path::Path,
    allocate: &[JobAllocate<F::File>],
    ring: bool,
    new_files: bool,
    allocated: &mut Vec<u64>,
) -> StoreResult<()> {
    for a in allocate {
        let r = if ring {
            a.file.allocate_ring(a.len).await
        } else {
            a.file.allocate(a.len).await
        };
        r.map_err(|e| StoreError::io("fallocate", &a.path, e))?;
        allocated.push(a.start);
    }
    if new_files || !allocate.is_empty() {
        // The new file's directory entry must be durable before data in it is acked.
        let r = if ring {
            fs.sync_dir_ring(dir).await
        } else {
            fs.sync_dir(dir)
        };
        r.map_err(|e| StoreError::io("fsync directory", dir, e))?;
    }
    Ok(())
}

async fn write_one<File: StoreFile>(
    w: JobWrite<File>,
    ring: bool,
) -> (AlignedBuf, StoreResult<()>) {
    let (buf, r) = if ring {
        w.file.write_at_ring(w.buf, w.write_len, w.file_pos).await
    } else {
        w.file.write_at(w.buf, w.write_len, w.file_pos).await
    };
    (buf, r.map_err(|e| StoreError::io("write", &w.path, e)))
}

fn write_one_ring<File: StoreFile>(
    w: JobWrite<File>,
) -> impl Future<Output = (AlignedBuf, StoreResult<()>)> {
    write_one(w, true)
}

/// Polls every future until all are done; outputs in input order. Small and local: the
/// writes of one job (a handful) run together on the shard's ring.
pub(super) async fn join_all<Fut: Future>(futures: Vec<Fut>) -> Vec<Fut::Output> {
    let mut futures: Vec<Pin<Box<Fut>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<Fut::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_some() {
                continue;
            }
            match future.as_mut().poll(cx) {
                Poll::Ready(v) => *output = Some(v),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
