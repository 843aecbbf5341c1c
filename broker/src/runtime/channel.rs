//! Bounded multi-producer, single-consumer channel for talking between shards (or from any
//! thread to a shard). Senders are `Send + Clone`; the receiver lives on one shard. A send to
//! a full channel waits (or fails with [`TrySendError::Full`]): nothing grows without bound.
//!
//! Waking the receiving shard from another thread goes through its waker, which rings that
//! shard's eventfd doorbell; batch messages where you can, since waking an idle core costs
//! tens of microseconds.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

/// Wakes a thread parked in [`block_on_thread`].
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` on the current (non-shard) thread, parking between polls. Panics on a shard
/// thread, where blocking would stall every task of the shard.
pub(crate) fn block_on_thread<F: std::future::Future>(future: F) -> F::Output {
    assert!(
        super::executor::try_core().is_none(),
        "ringmq runtime: blocking call on a shard thread; use the async variant"
    );
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

struct State<T> {
    queue: VecDeque<T>,
    capacity: usize,
    receiver_waker: Option<Waker>,
    sender_wakers: VecDeque<Waker>,
    senders: usize,
    receiver_alive: bool,
}

struct Chan<T> {
    state: Mutex<State<T>>,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Creates a bounded channel holding at most `capacity` (>= 1) messages.
pub fn channel<T: Send>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity >= 1, "channel capacity must be at least 1");
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            receiver_waker: None,
            sender_wakers: VecDeque::new(),
            senders: 1,
            receiver_alive: true,
        }),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Why [`Sender::try_send`] failed; the message comes back.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel holds `capacity` messages.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("channel full"),
            TrySendError::Closed(_) => f.write_str("channel closed"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

/// The receiver is gone; the message comes back.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Sending half; clone it for more producers. Usable from any thread.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender")
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.chan.lock();
            s.senders -= 1;
            if s.senders == 0 {
                s.receiver_waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Sender<T> {
    /// Queues `value` if there is room.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let waker = {
            let mut s = self.chan.lock();
            if !s.receiver_alive {
                return Err(TrySendError::Closed(value));
            }
            if s.queue.len() >= s.capacity {
                return Err(TrySendError::Full(value));
            }
            s.queue.push_back(value);
            s.receiver_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Queues `value`, waiting while the channel is full.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut value = Some(value);
        poll_fn(|cx| {
            let v = value.take().expect("send polled after completion");
            match self.try_send(v) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(TrySendError::Closed(v)) => Poll::Ready(Err(SendError(v))),
                Err(TrySendError::Full(v)) => {
                    let mut s = self.chan.lock();
                    if s.queue.len() < s.capacity || !s.receiver_alive {
                        drop(s);
                        cx.waker().wake_by_ref();
                    } else {
                        s.sender_wakers.push_back(cx.waker().clone());
                    }
                    value = Some(v);
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl<T> Sender<T> {
    /// Queues `value` from a thread that is not a shard (e.g. the main or admin thread),
    /// blocking while the channel is full. Panics on a shard thread.
    pub fn send_blocking(&self, value: T) -> Result<(), SendError<T>> {
        block_on_thread(self.send(value))
    }
}

/// Receiving half; lives on one shard (it is `Send` so it can be moved there).
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver")
    }
}

impl<T> Receiver<T> {
    /// Takes one message if any; `Err(true)` when empty and every sender is gone.
    fn poll_take(&self, waker: Option<&Waker>) -> Poll<Option<T>> {
        let (out, wake) = {
            let mut s = self.chan.lock();
            match s.queue.pop_front() {
                Some(v) => (Poll::Ready(Some(v)), s.sender_wakers.pop_front()),
                None if s.senders == 0 => (Poll::Ready(None), None),
                None => {
                    if let Some(w) = waker {
                        s.receiver_waker = Some(w.clone());
                    }
                    (Poll::Pending, None)
                }
            }
        };
        if let Some(w) = wake {
            w.wake();
        }
        out
    }

    /// Takes a message if one is queued.
    pub fn try_recv(&self) -> Option<T> {
        match self.poll_take(None) {
            Poll::Ready(v) => v,
            Poll::Pending => None,
        }
    }

    /// Waits for the next message; `None` once every sender is dropped and the queue is empty.
    pub async fn recv(&self) -> Option<T> {
        poll_fn(|cx| self.poll_take(Some(cx.waker()))).await
    }
}

impl<T> Receiver<T> {
    /// Waits for the next message on a thread that is not a shard. Panics on a shard thread.
    pub fn recv_blocking(&self) -> Option<T> {
        block_on_thread(self.recv())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (wakers, dropped) = {
            let mut s = self.chan.lock();
            s.receiver_alive = false;
            (
                std::mem::take(&mut s.sender_wakers),
                std::mem::take(&mut s.queue),
            )
        };
        drop(dropped);
        for w in wakers {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_try_send_and_close() {
        let (tx, rx) = channel::<u32>(2);
        tx.try_send(1).expect("room");
        tx.try_send(2).expect("room");
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.try_recv(), Some(1));
        tx.try_send(3).expect("room again");
        drop(rx);
        assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
    }

    #[test]
    fn blocking_ends_across_threads() {
        let (tx, rx) = channel::<u32>(1);
        let t = std::thread::spawn(move || {
            for i in 0..1000 {
                tx.send_blocking(i).expect("receiver alive");
            }
        });
        let got: Vec<u32> = std::iter::from_fn(|| rx.recv_blocking()).collect();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        t.join().expect("sender");
    }
}
