//! The table of in-flight operations that both drivers keep: one slot per operation, from
//! `push` to the moment its future takes the result (or, for a dropped future, to its final
//! completion). Holds the wakers to wake and the parked resources to drop until the executor
//! takes them, so no user code runs while a driver harvests. Shard-local.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use super::driver::{Completion, StatsCells, bump};
use super::executor::Shared;
use super::pool::LeaseTag;

/// Where an operation is in its life.
pub(crate) enum Lifecycle {
    /// In the kernel (or the fallback driver); nobody polled yet.
    Submitted,
    /// In flight; this waker wants the result.
    Waiting(Waker),
    /// Done; the future will pick it up.
    Completed(Completion),
    /// The future was dropped: its resources wait here for the final completion.
    Abandoned(Box<dyn Any>),
}

/// One in-flight operation.
pub(crate) struct Slot {
    pub(crate) life: Lifecycle,
    /// Result of the first CQE of a two-CQE operation (`SendZc`: result, then notification).
    pub(crate) first_res: Option<i32>,
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

/// The slots of one driver, with the deferred wakes and drops.
pub(crate) struct OpTable {
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    in_flight: usize,
    wakes: Vec<Waker>,
    graveyard: Vec<Box<dyn Any>>,
    shared: Arc<Shared>,
}

impl OpTable {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        OpTable {
            slots: Vec::new(),
            free_slots: Vec::new(),
            in_flight: 0,
            wakes: Vec::new(),
            graveyard: Vec::new(),
            shared,
        }
    }

    pub(crate) fn stats(&self) -> &StatsCells {
        &self.shared.stats
    }

    /// Operations not yet finished with (including abandoned ones still out).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Takes a slot for a new operation; counts it as submitted.
    pub(crate) fn alloc(&mut self, tag: Option<LeaseTag>) -> usize {
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
        bump(&self.stats().submitted, 1);
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

    fn free(&mut self, idx: usize) -> Option<Slot> {
        let slot = self.slots.get_mut(idx).and_then(Option::take);
        if slot.is_some() {
            self.free_slots.push(idx);
            self.in_flight -= 1;
            self.stats()
                .in_flight
                .store(self.in_flight as u64, Ordering::Relaxed);
        }
        slot
    }

    /// The live slot `idx`, if any.
    pub(crate) fn get_mut(&mut self, idx: usize) -> Option<&mut Slot> {
        self.slots.get_mut(idx).and_then(Option::as_mut)
    }

    /// Whether operation `idx` was abandoned by its future.
    pub(crate) fn is_abandoned(&self, idx: usize) -> bool {
        self.slots
            .get(idx)
            .and_then(Option::as_ref)
            .is_some_and(|s| matches!(s.life, Lifecycle::Abandoned(_)))
    }

    /// Marks operation `idx` as returning a new fd, to be closed if its future is dropped.
    pub(crate) fn mark_fd_result(&mut self, idx: usize) {
        if let Some(slot) = self.get_mut(idx) {
            slot.fd_result = true;
        }
    }

    /// Polls operation `idx`: its completion, or registers the waker.
    pub(crate) fn poll(&mut self, idx: usize, cx: &mut Context<'_>) -> Poll<Completion> {
        let slot = self
            .get_mut(idx)
            .expect("polled an operation that no longer exists");
        match &mut slot.life {
            Lifecycle::Completed(c) => {
                let c = *c;
                self.free(idx);
                Poll::Ready(c)
            }
            Lifecycle::Waiting(w) if w.will_wake(cx.waker()) => Poll::Pending,
            life => {
                *life = Lifecycle::Waiting(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The future of operation `idx` was dropped: if it already completed, frees the slot and
    /// gives `data` back (to drop outside the driver); otherwise parks `data` in the slot
    /// until the final completion, counts a cancellation and returns `None`: the driver then
    /// cancels what it can.
    pub(crate) fn abandon(&mut self, idx: usize, data: Box<dyn Any>) -> Option<Box<dyn Any>> {
        let slot = self
            .get_mut(idx)
            .expect("abandoned an operation that no longer exists");
        if let Lifecycle::Completed(c) = slot.life {
            slot.close_orphan_fd(c.res);
            self.free(idx);
            return Some(data);
        }
        slot.life = Lifecycle::Abandoned(data);
        bump(&self.stats().cancellations, 1);
        None
    }

    /// Records the final completion of operation `idx`: checks its pool buffer, wakes its
    /// future (deferred) or, if the future is gone, frees the slot and defers the drop of its
    /// resources. Unknown indexes are logged and ignored.
    pub(crate) fn finish(&mut self, idx: usize, c: Completion) {
        let Some(slot) = self.slots.get_mut(idx).and_then(Option::as_mut) else {
            tracing::error!(target: "ringmq::runtime", idx, "completion for an unknown operation");
            return;
        };
        if let Some(tag) = &slot.tag {
            tag.check();
        }
        bump(&self.shared.stats.completed, 1);
        match std::mem::replace(&mut slot.life, Lifecycle::Completed(c)) {
            Lifecycle::Waiting(w) => self.wakes.push(w),
            Lifecycle::Abandoned(data) => {
                slot.close_orphan_fd(c.res);
                self.free(idx);
                self.graveyard.push(data);
            }
            Lifecycle::Submitted | Lifecycle::Completed(_) => {}
        }
    }

    /// Indexes of the operations whose futures still exist and that are not complete.
    pub(crate) fn live_unfinished(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| {
                self.slots[i].as_ref().is_some_and(|s| {
                    !matches!(s.life, Lifecycle::Abandoned(_) | Lifecycle::Completed(_))
                })
            })
            .collect()
    }

    /// At shutdown: frees completed-but-unclaimed slots, whose futures no longer exist.
    pub(crate) fn free_unclaimed(&mut self) {
        for i in 0..self.slots.len() {
            if let Some(slot) = &self.slots[i]
                && let Lifecycle::Completed(c) = slot.life
            {
                slot.close_orphan_fd(c.res);
                self.free(i);
            }
        }
    }

    /// At a failed shutdown: forgets (leaks) every slot and its resources, since the kernel
    /// or a helper thread may still write into them.
    pub(crate) fn leak_all(&mut self) {
        for slot in self.slots.iter_mut().filter_map(Option::take) {
            std::mem::forget(slot);
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
}
