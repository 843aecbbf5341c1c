//! Timers on the shard's driver: [`sleep`] (an io_uring `Timeout`, or a deadline in the
//! fallback driver's timer heap) and [`timeout`]. Shard-local.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use io_uring::types;

use super::io_op::IoOp;
use super::op::Op;

/// Waits for `duration` (a `Timeout` operation on the ring, or the fallback driver's timer
/// heap; cancelled if dropped).
pub async fn sleep(duration: Duration) {
    let ts = Box::new(types::Timespec::from(duration));
    let entry = IoOp::Timeout {
        ts: &*ts as *const types::Timespec,
        duration,
    };
    // The timespec is read when the kernel takes the SQE; it lives in the op's data until the
    // CQE anyway. A failed submit (broken ring) returns at once rather than hang.
    if let Ok(op) = Op::submit(entry, ts, None) {
        let _ = op.await;
    }
}

/// The deadline of [`timeout`] passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `future` for at most `duration`; when the deadline wins, `future` is dropped (its
/// operations are cancelled) and `Err(Elapsed)` returned.
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut timer = pin!(sleep(duration));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
