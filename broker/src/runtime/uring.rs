//! The io_uring driver of one shard: ring setup with the startup checks, submission with
//! backpressure, completion harvesting, cancellation, the doorbell. The operation table is
//! [`OpTable`], shared with the fallback driver.
//!
//! Runs only on its shard's thread. Harvesting never runs user code: it records results and
//! collects wakers (and the parked buffers of abandoned operations) for the executor to wake
//! (and drop) after the driver is released, so nothing is re-entrant.

use std::any::Any;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::driver::{Completion, bump};
use super::error::RuntimeError;
use super::io_op::IoOp;
use super::pool::LeaseTag;
use super::setup::{RingFlavor, build_ring, probe_opcodes};
use super::table::OpTable;

/// `user_data` of the CQEs of our `AsyncCancel` requests (ignored).
const CANCEL_UD: u64 = u64::MAX;
/// `user_data` of the doorbell read on the shard's eventfd.
const DOORBELL_UD: u64 = u64::MAX - 1;
/// `IORING_ENTER_GETEVENTS`: with `DEFER_TASKRUN`, completions are only posted by an enter
/// carrying it, so even a non-waiting submit passes it.
const ENTER_GETEVENTS: u32 = 1;

/// One shard's ring and its in-flight operation table.
pub(crate) struct UringDriver {
    ring: IoUring,
    flavor: RingFlavor,
    table: OpTable,
    send_zc: bool,
    doorbell: File,
    /// Where the doorbell read lands; boxed so its address is stable.
    doorbell_buf: Box<u64>,
    doorbell_armed: bool,
    /// Reused buffer of harvested CQEs (user_data, res, flags).
    cqe_buf: Vec<(u64, i32, u32)>,
}

impl UringDriver {
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
        Ok(UringDriver {
            ring,
            flavor,
            table: OpTable::new(shared),
            send_zc,
            doorbell,
            doorbell_buf: Box::new(0),
            doorbell_armed: false,
            cqe_buf: Vec::with_capacity(entries as usize * 2),
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

    pub(crate) fn table(&mut self) -> &mut OpTable {
        &mut self.table
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
            bump(&self.table.stats().ring_full, 1);
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

    /// Queues `op` as a new operation and returns its slot index. The op's pointers must stay
    /// valid until its CQE arrives (callers keep the pointed-to memory in the operation's
    /// data).
    pub(crate) fn push(&mut self, op: IoOp, tag: Option<LeaseTag>) -> io::Result<usize> {
        self.reserve(1)?;
        Ok(self.push_reserved(op.to_entry(false), tag))
    }

    /// Queues `ops` back to back, with no submit in between, each but the last linked
    /// (`IO_LINK`) to the next; returns their slot indexes in order. At most
    /// [`max_chain`](UringDriver::max_chain) operations.
    pub(crate) fn push_chain(&mut self, ops: &[IoOp]) -> io::Result<Vec<usize>> {
        assert!(
            ops.len() <= self.max_chain(),
            "chain longer than the submission queue"
        );
        self.reserve(ops.len())?;
        let last = ops.len().saturating_sub(1);
        Ok(ops
            .iter()
            .enumerate()
            .map(|(i, op)| self.push_reserved(op.to_entry(i < last), None))
            .collect())
    }

    /// The longest chain [`push_chain`](UringDriver::push_chain) accepts: the SQ size.
    pub(crate) fn max_chain(&mut self) -> usize {
        self.ring.submission().capacity()
    }

    fn push_reserved(&mut self, entry: squeue::Entry, tag: Option<LeaseTag>) -> usize {
        let idx = self.table.alloc(tag);
        let entry = entry.user_data(idx as u64);
        // SAFETY: `reserve` made room, so the push cannot fail; the entry's buffers are owned
        // by the operation's data, which lives in the future or, once the future is dropped,
        // in this slot until the CQE arrives.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        assert!(pushed.is_ok(), "submission queue full right after reserve");
        idx
    }

    /// Polls operation `idx`: its completion, or registers the waker.
    pub(crate) fn poll_op(&mut self, idx: usize, cx: &mut Context<'_>) -> Poll<Completion> {
        self.table.poll(idx, cx)
    }

    /// The future of operation `idx` was dropped before completion: park `data` (its buffers)
    /// in the slot and ask the kernel to cancel. If it already completed, `data` is returned
    /// so the caller can drop it outside the driver.
    pub(crate) fn abandon(&mut self, idx: usize, data: Box<dyn Any>) -> Option<Box<dyn Any>> {
        match self.table.abandon(idx, data) {
            Some(data) => Some(data),
            None => {
                self.push_cancel(idx as u64);
                None
            }
        }
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
        let res = match self.table.get_mut(idx) {
            Some(slot) if cqueue::more(flags) => {
                // First CQE of SendZc: the buffer stays with the kernel until the notification.
                slot.first_res = Some(res);
                return;
            }
            Some(slot) if cqueue::notif(flags) => slot.first_res.take().unwrap_or(res),
            _ => res,
        };
        self.table.finish(idx, Completion { res, flags });
    }

    /// Swaps out the wakers to wake and the abandoned resources to drop (see
    /// [`OpTable::swap_deferred`]).
    pub(crate) fn swap_deferred(
        &mut self,
        wakes: &mut Vec<Waker>,
        graveyard: &mut Vec<Box<dyn Any>>,
    ) {
        self.table.swap_deferred(wakes, graveyard);
    }

    pub(crate) fn has_deferred(&self) -> bool {
        self.table.has_deferred()
    }

    /// At shutdown, after every task was dropped: cancels whatever is still in flight (and the
    /// doorbell) and waits for every CQE, up to `limit`. Returns how many operations were
    /// still in flight at the deadline (their buffers are then leaked, never freed).
    pub(crate) fn shutdown_drain(&mut self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        for idx in self.table.live_unfinished() {
            self.push_cancel(idx as u64);
        }
        if self.doorbell_armed {
            self.push_cancel(DOORBELL_UD);
        }
        loop {
            // Completed-but-unclaimed slots belong to futures that no longer exist.
            self.table.free_unclaimed();
            if self.table.in_flight() == 0 && !self.doorbell_armed {
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
        let left = self.table.in_flight();
        tracing::error!(
            target: "ringmq::runtime",
            left,
            "shutdown: operations still in flight at the deadline; leaking their buffers"
        );
        self.table.leak_all();
        if self.doorbell_armed {
            std::mem::forget(std::mem::replace(&mut self.doorbell_buf, Box::new(0)));
        }
        left
    }
}
