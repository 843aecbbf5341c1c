//! The fallback driver's file helpers: [`FILE_HELPERS`] threads per shard that run blocking
//! file operations (`pread`, `pwrite`, `fdatasync`, `fallocate`, `openat`, `renameat`, file →
//! pipe `splice`) off
//! the shard thread, and post each result to a list the shard drains after an eventfd
//! registered in its epoll instance rings.
//!
//! A job still queued can be cancelled (the helper skips it); a job already running cannot,
//! and its memory stays parked in the driver until its completion is posted.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::syscall::{eventfd_nonblocking, eventfd_signal, run_blocking};
use crate::runtime::io_op::IoOp;

/// Helper threads per shard. Two, so that a read of cold data is not stuck behind a long
/// `fdatasync` (each shard's appends are already serialised by the store).
pub(crate) const FILE_HELPERS: usize = 2;

/// Jobs queued per shard before `submit` makes the shard wait for room (the counterpart of
/// a full submission queue: bounded, counted in `ring_full_events`).
pub(crate) const HELPER_QUEUE_MAX: usize = 4096;

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;

/// The state of one job, shared by the driver (to cancel) and the helpers.
#[derive(Debug, Default)]
pub(crate) struct JobState(AtomicU8);

impl JobState {
    /// Cancels the job if no helper has started it; true if it will never run.
    pub(crate) fn cancel(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn start(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// One file operation for a helper.
struct Job {
    idx: usize,
    seq: u64,
    op: IoOp,
    state: Arc<JobState>,
}

// SAFETY: the op's raw pointers point into memory that the driver keeps alive and untouched
// (the operation's data, parked if its future is dropped) until this job's completion is
// posted, so using them on the helper thread is sound.
unsafe impl Send for Job {}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the pool closes.
    work: Condvar,
    /// Signalled when a job is taken (room in the queue).
    room: Condvar,
    /// Posted results: (slot index, op sequence number, result).
    done: Mutex<Vec<(usize, u64, i32)>>,
    /// Rung when `done` goes from empty to non-empty.
    done_fd: OwnedFd,
}

impl Inner {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn done(&self) -> MutexGuard<'_, Vec<(usize, u64, i32)>> {
        self.done.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A shard's helper threads.
pub(crate) struct Helpers {
    inner: Arc<Inner>,
}

impl Helpers {
    /// Starts [`FILE_HELPERS`] threads named `ringmq-io-<shard>-<k>`.
    pub(crate) fn start(shard: usize) -> io::Result<Self> {
        let inner = Arc::new(Inner {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            done: Mutex::new(Vec::new()),
            done_fd: eventfd_nonblocking()?,
        });
        for k in 0..FILE_HELPERS {
            let inner = inner.clone();
            // Detached: at shutdown the pool closes and each thread ends after its current
            // job; a job stuck in the kernel past the drain deadline must not hang the shard.
            std::thread::Builder::new()
                .name(format!("ringmq-io-{shard}-{k}"))
                .spawn(move || helper_main(&inner))?;
        }
        Ok(Helpers { inner })
    }

    /// The eventfd rung when results are posted (registered in the shard's epoll).
    pub(crate) fn done_fd(&self) -> RawFd {
        self.inner.done_fd.as_raw_fd()
    }

    /// Queues a file operation; returns its cancellation handle and whether the shard had to
    /// wait for room first.
    pub(crate) fn submit(&self, idx: usize, seq: u64, op: IoOp) -> (Arc<JobState>, bool) {
        let state = Arc::new(JobState::default());
        let mut q = self.inner.queue();
        let mut waited = false;
        while q.jobs.len() >= HELPER_QUEUE_MAX {
            waited = true;
            q = self.inner.room.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        q.jobs.push_back(Job {
            idx,
            seq,
            op,
            state: state.clone(),
        });
        drop(q);
        self.inner.work.notify_one();
        (state, waited)
    }

    /// Moves every posted result into `out` (after resetting the eventfd, so a result posted
    /// meanwhile rings it again).
    pub(crate) fn take_done(&self, out: &mut Vec<(usize, u64, i32)>) {
        super::syscall::eventfd_drain(self.done_fd());
        out.append(&mut self.inner.done());
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        self.inner.queue().closed = true;
        self.inner.work.notify_all();
    }
}

fn helper_main(inner: &Inner) {
    loop {
        let job = {
            let mut q = inner.queue();
            loop {
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                if q.closed {
                    return;
                }
                q = inner.work.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        inner.room.notify_one();
        if !job.state.start() {
            // Cancelled while queued: the driver already completed it.
            continue;
        }
        // SAFETY: see `unsafe impl Send for Job`: the memory stays valid until we post.
        let res = unsafe { run_blocking(&job.op) };
        let was_empty = {
            let mut done = inner.done();
            let was_empty = done.is_empty();
            done.push((job.idx, job.seq, res));
            was_empty
        };
        if was_empty {
            eventfd_signal(inner.done_fd.as_raw_fd());
        }
    }
}
