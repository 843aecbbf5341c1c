//! [`Op`]: one operation ([`IoOp`]) as a future that owns the operation's resources (buffers,
//! fds, sockaddrs) until the kernel is done with them, whichever driver runs it. Shard-local.
//!
//! The cancellation rule: dropping an `Op` before its completion moves its resources into the
//! driver's slot and cancels what can be cancelled (`AsyncCancel` on io_uring; a waiting
//! socket operation, a timer or a queued file job on the fallback driver); they are dropped
//! only when the operation is over.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::driver::Completion;
use super::executor::{Core, core};
use super::io_op::IoOp;
use super::pool::LeaseTag;

/// An in-flight operation whose resources are `T`.
pub(crate) struct Op<T: 'static> {
    core: Rc<Core>,
    idx: usize,
    data: Option<T>,
}

// The data is never pinned: the kernel only sees heap memory owned by it.
impl<T> Unpin for Op<T> {}

impl<T: 'static> Op<T> {
    /// Queues `op`, whose pointers must point into `data` (heap memory) or be 'static.
    pub(crate) fn submit(
        op: IoOp,
        data: T,
        tag: Option<LeaseTag>,
    ) -> Result<Op<T>, (io::Error, T)> {
        let core = core();
        let pushed = core.driver.borrow_mut().push(op, tag);
        match pushed {
            Ok(idx) => Ok(Op {
                core,
                idx,
                data: Some(data),
            }),
            Err(e) => Err((e, data)),
        }
    }

    /// Queues operations as one linked chain: each starts only once the previous one completed
    /// in full; a failure or a short result completes the rest with `ECANCELED`. Returns the
    /// operations in order.
    pub(crate) fn submit_chain(ops: Vec<(IoOp, T)>) -> io::Result<Vec<Op<T>>> {
        let core = core();
        let (ops, data): (Vec<_>, Vec<_>) = ops.into_iter().unzip();
        let idxs = core.driver.borrow_mut().push_chain(&ops)?;
        Ok(idxs
            .into_iter()
            .zip(data)
            .map(|(idx, data)| Op {
                core: core.clone(),
                idx,
                data: Some(data),
            })
            .collect())
    }
}

impl<T: 'static> Op<T> {
    /// Declares that the result is a new fd (accept), so the driver closes it if this future
    /// is dropped and the operation completes anyway.
    pub(crate) fn returns_fd(self) -> Self {
        self.core.driver.borrow_mut().mark_fd_result(self.idx);
        self
    }
}

impl<T: 'static> Future for Op<T> {
    type Output = (Completion, T);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let polled = this.core.driver.borrow_mut().poll_op(this.idx, cx);
        match polled {
            Poll::Ready(c) => {
                let data = this.data.take().expect("Op polled after completion");
                Poll::Ready((c, data))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: 'static> Drop for Op<T> {
    fn drop(&mut self) {
        if let Some(data) = self.data.take() {
            let back = self
                .core
                .driver
                .borrow_mut()
                .abandon(self.idx, Box::new(data));
            // Already complete: the resources are free to go, outside the driver borrow.
            drop(back);
        }
    }
}
