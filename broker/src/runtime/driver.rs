//! The io_uring driver of one shard: ring setup with the startup checks, the table of
//! in-flight operations, submission with backpressure, completion harvesting, the doorbell.
//!
//! Runs only on its shard's thread. Harvesting never runs user code: it records results and
//! collects wakers (and the parked buffers of abandoned operations) for the executor to wake
//! (and drop) after the driver is released, so nothing is re-entrant.

use std::any::Any;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::error::RuntimeError;
use super::pool::LeaseTag;
use super::setup::{RingFlavor, build_ring, probe_opcodes};

/// `user_data` of the CQEs of our `AsyncCancel` requests (ignored).
const CANCEL_UD: u64 = u64::MAX;
/// `user_data` of the doorbell read on the shard's eventfd.
const DOORBELL_UD: u64 = u64::MAX - 1;
/// `IORING_ENTER_GETEVENTS`: with `DEFER_TASKRUN`, completions are only posted by an enter
/// carrying it, so even a non-waiting submit passes it.
const ENTER_GETEVENTS: u32 = 1;

/// Counters of one shard, written only by the shard's thread (plain load+store, no locked
/// instructions), readable from any thread.
#[derive(Debug, Default)]
pub(crate) struct StatsCells {
    pub(crate) submitted: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) ring_full: AtomicU64,
    pub(crate) cancellations: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) tasks_spawned: AtomicU64,
    pub(crate) tasks_live: AtomicU64,
    pub(crate) fixed_fallback_ops: AtomicU64,
}

/// Adds `n` to a single-writer counter.
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Final result of an operation: the CQE's `res` and `flags`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completion {
    pub(crate) res: i32,
    #[allow(dead_code)]
    pub(crate) flags: u32,
}

impl Completion {
    /// `res` as an io::Result (negative = errno).
    pub(crate) fn result(self) -> io::Result<u32> {
        if self.res < 0 {
            Err(io::Error::from_raw_os_error(-self.res))
        } else {
            Ok(self.res as u32)
        }
    }
}

enum Lifecycle {
    /// In the kernel; nobody polled yet.
    Submitted,
    /// In the kernel; this waker wants the result.
    Waiting(Waker),
    /// Done; the future will pick it up.
    Completed(Completion),
    /// The future was dropped: its resources wait here for the final CQE.
    Abandoned(Box<dyn Any>),
}

struct Slot {
    life: Lifecycle,
    /// Result of the first CQE of a two-CQE operation (`SendZc`: result, then notification).
    first_res: Option<i32>,
    /// Pool buffer lent to the kernel by this operation, checked on completion.
    tag: Option<LeaseTag>,
    /// The result is a new fd (accept): closed here if nobody is left to take it.
    fd_result: bool,
}

impl Slot {
    /// Closes the fd a completed accept returned when its future is gone.
    fn close_orphan_fd(&self, res: i32) {
        if self.fd_result && res >= 0 {
            // SAFETY: the kernel just created this descriptor for an operation whose future
            // was dropped; nothing else knows about it.
            unsafe { libc::close(res) };
        }
    }
}

/// One shard's ring and its in-flight operation table.
pub(crate) struct Driver {
    ring: IoUring,
    flavor: RingFlavor,
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    in_flight: usize,
    send_zc: bool,
    doorbell: File,
    /// Where the doorbell read lands; boxed so its address is stable.
    doorbell_buf: Box<u64>,
    doorbell_armed: bool,
    wakes: Vec<Waker>,
    graveyard: Vec<Box<dyn Any>>,
    /// Reused buffer of harvested CQEs (user_data, res, flags).
    cqe_buf: Vec<(u64, i32, u32)>,
    stats: std::sync::Arc<super::executor::Shared>,
}

impl Driver {
    /// Sets up the ring and checks the kernel. `shared` carries the doorbell and the counters.
    pub(crate) fn new(
        entries: u32,
        shared: std::sync::Arc<super::executor::Shared>,
    ) -> Result<Self, RuntimeError> {
        let (ring, flavor) = build_ring(entries)?;
        let send_zc = probe_opcodes(&ring)?;
        let doorbell = shared
            .doorbell
            .try_clone()
            .map_err(|e| RuntimeError::io("duplicating the shard doorbell eventfd", e))?;
        tracing::debug!(target: "ringmq::runtime", flavor = flavor.name(), entries, "ring ready");
        Ok(Driver {
            ring,
            flavor,
            slots: Vec::new(),
            free_slots: Vec::new(),
            in_flight: 0,
            send_zc,
            doorbell,
            doorbell_buf: Box::new(0),
            doorbell_armed: false,
            wakes: Vec::new(),
            graveyard: Vec::new(),
            cqe_buf: Vec::with_capacity(entries as usize * 2),
            stats: shared,
        })
    }

    pub(crate) fn flavor(&self) -> RingFlavor {
        self.flavor
    }

    pub(crate) fn supports_send_zc(&self) -> bool {
        self.send_zc
    }

    pub(crate) fn ring(&self) -> &IoUring {
        &self.ring
    }

    fn stats(&self) -> &StatsCells {
        &self.stats.stats
    }

    fn alloc_slot(&mut self, tag: Option<LeaseTag>) -> usize {
        let slot = Slot {
            life: Lifecycle::Submitted,
            first_res: None,
            tag,
            fd_result: false,
        };
        self.in_flight += 1;
        self.stats()
            .in_flight
            .store(self.in_flight as u64, Ordering::Relaxed);
        match self.free_slots.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        }
    }

    fn free_slot(&mut self, idx: usize) -> Option<Slot> {
        let slot = self.slots[idx].take();
        if slot.is_some() {
            self.free_slots.push(idx);
            self.in_flight -= 1;
            self.stats()
                .in_flight
                .store(self.in_flight as u64, Ordering::Relaxed);
        }
        slot
    }

    /// Makes room for `n` SQEs: flushes the SQ to the kernel while it is too full, harvesting
    /// completions when the kernel pushes back (`EBUSY`/`EAGAIN`: CQ overflow backlog).
    fn reserve(&mut self, n: usize) -> io::Result<()> {
        loop {
            let (len, cap) = {
                let sq = self.ring.submission();
                (sq.len(), sq.capacity())
            };
            if cap - len >= n {
                return Ok(());
            }
            bump(&self.stats.stats.ring_full, 1);
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) => {
                    self.harvest();
                    if self.ring.submission().len() == len {
                        // Nothing moved: wait for one completion to free kernel resources.
                        self.wait_one(Some(Duration::from_millis(10)))?;
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues `entry` as a new operation and returns its slot index. The entry's pointers
    /// must stay valid until its CQE arrives (callers keep the pointed-to memory in the
    /// operation's data).
    pub(crate) fn push(
        &mut self,
        entry: squeue::Entry,
        tag: Option<LeaseTag>,
    ) -> io::Result<usize> {
        self.reserve(1)?;
        Ok(self.push_reserved(entry, tag))
    }

    /// Queues `entries` back to back, with no submit in between, so that `IO_LINK` flags
    /// link them; returns their slot indexes in order. At most [`Driver::max_chain`] entries.
    pub(crate) fn push_chain(&mut self, entries: Vec<squeue::Entry>) -> io::Result<Vec<usize>> {
        assert!(
            entries.len() <= self.max_chain(),
            "chain longer than the submission queue"
        );
        self.reserve(entries.len())?;
        Ok(entries
            .into_iter()
            .map(|e| self.push_reserved(e, None))
            .collect())
    }

    /// The longest chain [`push_chain`](Driver::push_chain) accepts: the SQ size.
    pub(crate) fn max_chain(&mut self) -> usize {
        self.ring.submission().capacity()
    }

    fn push_reserved(&mut self, entry: squeue::Entry, tag: Option<LeaseTag>) -> usize {
        let idx = self.alloc_slot(tag);
        let entry = entry.user_data(idx as u64);
        // SAFETY: `reserve` made room, so the push cannot fail; the entry's buffers are owned
        // by the operation's data, which lives in the future or, once the future is dropped,
        // in this slot until the CQE arrives.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        assert!(pushed.is_ok(), "submission queue full right after reserve");
        bump(&self.stats().submitted, 1);
        idx
    }

    /// Marks operation `idx` as returning a new fd, to be closed if its future is dropped.
    pub(crate) fn mark_fd_result(&mut self, idx: usize) {
        if let Some(slot) = self.slots[idx].as_mut() {
            slot.fd_result = true;
        }
    }

    /// Polls operation `idx`: its completion, or registers the waker.
    pub(crate) fn poll_op(&mut self, idx: usize, cx: &mut Context<'_>) -> Poll<Completion> {
        let slot = self.slots[idx]
            .as_mut()
            .expect("polled an operation that no longer exists");
        match &mut slot.life {
            Lifecycle::Completed(c) => {
                let c = *c;
                self.free_slot(idx);
                Poll::Ready(c)
            }
            Lifecycle::Waiting(w) if w.will_wake(cx.waker()) => Poll::Pending,
            life => {
                *life = Lifecycle::Waiting(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The future of operation `idx` was dropped before completion: park `data` (its buffers)
    /// in the slot and ask the kernel to cancel. If it already completed, `data` is returned
    /// so the caller can drop it outside the driver.
    pub(crate) fn abandon(&mut self, idx: usize, data: Box<dyn Any>) -> Option<Box<dyn Any>> {
        let slot = self.slots[idx]
            .as_mut()
            .expect("abandoned an operation that no longer exists");
        if let Lifecycle::Completed(c) = slot.life {
            slot.close_orphan_fd(c.res);
            self.free_slot(idx);
            return Some(data);
        }
        slot.life = Lifecycle::Abandoned(data);
        bump(&self.stats().cancellations, 1);
        self.push_cancel(idx as u64);
        None
    }

    fn push_cancel(&mut self, target: u64) {
        let entry = opcode::AsyncCancel::new(target)
            .build()
            .user_data(CANCEL_UD);
        if self.reserve(1).is_err() {
            // The ring is broken; the operation will still complete (or the ring be torn
            // down with its buffers leaked, never freed early).
            return;
        }
        // SAFETY: AsyncCancel carries no pointers; room was reserved.
        let _ = unsafe { self.ring.submission().push(&entry) };
    }

    /// Keeps one 8-byte read pending on the doorbell eventfd, so that a wake from another
    /// thread ends a blocking wait.
    fn arm_doorbell(&mut self) {
        if self.doorbell_armed || self.reserve(1).is_err() {
            return;
        }
        let ptr: *mut u64 = &mut *self.doorbell_buf;
        let entry = opcode::Read::new(types::Fd(self.doorbell.as_raw_fd()), ptr.cast(), 8)
            .build()
            .user_data(DOORBELL_UD);
        // SAFETY: `doorbell_buf` is boxed and owned by the driver, which does not free it
        // while the read is armed (see `shutdown_drain`).
        if unsafe { self.ring.submission().push(&entry) }.is_ok() {
            self.doorbell_armed = true;
        }
    }

    /// Submits queued SQEs; waits for at least one completion when `wait`, then harvests.
    pub(crate) fn park(&mut self, wait: bool) -> io::Result<()> {
        self.arm_doorbell();
        let res = if wait {
            self.ring.submitter().submit_and_wait(1)
        } else {
            let to_submit = self.ring.submission().len() as u32;
            // SAFETY: plain io_uring_enter with no extra argument.
            unsafe {
                self.ring
                    .submitter()
                    .enter::<libc::sigset_t>(to_submit, 0, ENTER_GETEVENTS, None)
            }
        };
        match res {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) => {}
            Err(e) => return Err(e),
        }
        self.harvest();
        Ok(())
    }

    fn wait_one(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let res = match timeout {
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submitter().submit_and_wait(1),
        };
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::ETIME | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Moves every available CQE into its slot. Collects wakers and abandoned data for the
    /// executor; runs no user code.
    fn harvest(&mut self) {
        let mut cqes = std::mem::take(&mut self.cqe_buf);
        cqes.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for &(ud, res, flags) in &cqes {
            self.complete(ud, res, flags);
        }
        cqes.clear();
        self.cqe_buf = cqes;
    }

    fn complete(&mut self, ud: u64, res: i32, flags: u32) {
        match ud {
            CANCEL_UD => return,
            DOORBELL_UD => {
                self.doorbell_armed = false;
                return;
            }
            _ => {}
        }
        let idx = ud as usize;
        let Some(slot) = self.slots.get_mut(idx).and_then(Option::as_mut) else {
            tracing::error!(target: "ringmq::runtime", idx, "completion for an unknown operation");
            return;
        };
        if cqueue::more(flags) {
            // First CQE of SendZc: the buffer stays with the kernel until the notification.
            slot.first_res = Some(res);
            return;
        }
        let res = if cqueue::notif(flags) {
            slot.first_res.take().unwrap_or(res)
        } else {
            res
        };
        if let Some(tag) = &slot.tag {
            tag.check();
        }
        bump(&self.stats.stats.completed, 1);
        let done = Lifecycle::Completed(Completion { res, flags });
        match std::mem::replace(&mut slot.life, done) {
            Lifecycle::Waiting(w) => self.wakes.push(w),
            Lifecycle::Abandoned(data) => {
                slot.close_orphan_fd(res);
                self.free_slot(idx);
                self.graveyard.push(data);
            }
            Lifecycle::Submitted | Lifecycle::Completed(_) => {}
        }
    }

    /// Swaps out the wakers to wake and the abandoned resources to drop, for the executor to
    /// handle outside the driver; the (empty) vectors passed in are kept for reuse.
    pub(crate) fn swap_deferred(
        &mut self,
        wakes: &mut Vec<Waker>,
        graveyard: &mut Vec<Box<dyn Any>>,
    ) {
        std::mem::swap(&mut self.wakes, wakes);
        std::mem::swap(&mut self.graveyard, graveyard);
    }

    pub(crate) fn has_deferred(&self) -> bool {
        !self.wakes.is_empty() || !self.graveyard.is_empty()
    }

    /// At shutdown, after every task was dropped: cancels whatever is still in flight (and the
    /// doorbell) and waits for every CQE, up to `limit`. Returns how many operations were
    /// still in flight at the deadline (their buffers are then leaked, never freed).
    pub(crate) fn shutdown_drain(&mut self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        let pending: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                self.slots[i]
                    .as_ref()
                    .is_some_and(|s| !matches!(s.life, Lifecycle::Abandoned(_)))
            })
            .collect();
        for idx in pending {
            self.push_cancel(idx as u64);
        }
        if self.doorbell_armed {
            self.push_cancel(DOORBELL_UD);
        }
        loop {
            // Completed-but-unclaimed slots belong to futures that no longer exist.
            for i in 0..self.slots.len() {
                if let Some(slot) = &self.slots[i]
                    && let Lifecycle::Completed(c) = slot.life
                {
                    slot.close_orphan_fd(c.res);
                    self.free_slot(i);
                }
            }
            if self.in_flight == 0 && !self.doorbell_armed {
                return 0;
            }
            let now = Instant::now();
            if now >= deadline
                || self
                    .wait_one(Some((deadline - now).min(Duration::from_millis(100))))
                    .is_err()
            {
                break;
            }
            self.harvest();
        }
        let left = self.in_flight;
        tracing::error!(
            target: "ringmq::runtime",
            left,
            "shutdown: operations still in flight at the deadline; leaking their buffers"
        );
        for slot in self.slots.iter_mut().filter_map(Option::take) {
            std::mem::forget(slot);
        }
        if self.doorbell_armed {
            std::mem::forget(std::mem::replace(&mut self.doorbell_buf, Box::new(0)));
        }
        left
    }
}
