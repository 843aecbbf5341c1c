//! The connection loop of one shard, on the shard runtime: listeners, one reader and one
//! writer task per connection, and a timer task, all driving the shard's [`ShardService`].
//!
//! Runs on the shard's thread; everything here is `!Send` and shared through `Rc`. The
//! service is borrowed only between awaits, never across one.
//!
//! - Each connection's reader feeds received bytes to [`ShardService::on_read`]; requests
//!   are answered as soon as their answer exists, in any order (matched by `opaque`).
//! - Each connection's writer sends whatever the service queued for it; writers of all
//!   connections are woken after every read, progress step and tick, because a request on
//!   one connection can complete a deferred request of another (a send wakes a parked pull).
//! - The progress task runs [`ShardService::on_progress`] when [`ShardServer::kick`] is
//!   called (a group commit or a deferred read completed) and after reads that processed
//!   requests: the service runs in deferred-commit mode, so the group commit of what the
//!   reads appended starts there. Being a task woken like the readers, it runs after the
//!   readers woken in the same turn of the shard's loop: under load their appends leave in
//!   one write; a lone send is written at once (nothing else is ready). A completed write
//!   releases its acknowledgements and starts the next write in the same turn, with no
//!   wait for the timer.
//! - The timer task ticks the service at its next deadline (long-poll expiry, durable
//!   acknowledgement timeouts, client expiry), at least every [`TICK_MS_MAX`] ms.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::runtime::{TcpListener, TcpStream, sleep, spawn_local, timeout};
use crate::server::ConnId;
use crate::server::service::{CloseReason, Outbound, ShardService};
use crate::server::splice::SegmentFiles;
use crate::server::store::ShardStore;

/// Longest time between two ticks.
pub const TICK_MS_MAX: u64 = 100;

/// Bytes asked for per receive.
pub const RECV_BYTES: usize = 64 * 1024;

/// Pause before re-checking a connection held at its in-flight limit.
pub const BACKPRESSURE_PAUSE_MS: u64 = 1;

/// Bytes of queued responses a connection's writer sends as one splice batch (at most).
pub const SPLICE_BATCH_BYTES: usize = 1 << 20;

/// Pieces (frames, file spans) in one splice batch (at most).
pub const SPLICE_BATCH_ITEMS: usize = 256;

fn outbound_len(out: &Outbound) -> usize {
    match out {
        Outbound::Bytes(bytes) => bytes.len(),
        Outbound::File(span) => span.len as usize,
    }
}

/// Wall-clock milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A single-threaded wake-up flag: `notify` sets it and wakes the one waiter.
#[derive(Debug, Default)]
pub struct Signal {
    set: Cell<bool>,
    closed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    /// Sets the flag and wakes the waiter.
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Marks the signal closed (the waiter returns false) and wakes the waiter.
    pub fn close(&self) {
        self.closed.set(true);
        self.notify();
    }

    /// Waits until notified; false once closed.
    pub fn wait(&self) -> impl Future<Output = bool> + '_ {
        std::future::poll_fn(move |cx| {
            if self.closed.get() {
                return Poll::Ready(false);
            }
            if self.set.replace(false) {
                return Poll::Ready(true);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
    }
}

/// One shard's server: its service and the signals of its tasks.
pub struct ShardServer<S> {
    /// The service (state + connections).
    pub service: RefCell<ShardService<S>>,
    writers: RefCell<HashMap<ConnId, Rc<Signal>>>,
    timer: Signal,
    /// Wakes the progress task (store progress, requests processed by a read).
    progress: Signal,
    /// When the timer task will tick next unless notified (0: not waiting yet).
    timer_armed_ms: Cell<u64>,
    stopped: Signal,
    fanout: RefCell<Option<AdminFanout>>,
    segments: SegmentFiles,
}

/// Delivers admin changes made on this shard to the other shards.
pub type AdminFanout = Box<dyn Fn(Vec<crate::server::state::AdminChange>)>;

impl<S> std::fmt::Debug for ShardServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardServer")
            .field("connections", &self.writers.borrow().len())
            .finish()
    }
}

impl<S: ShardStore + 'static> ShardServer<S> {
    /// A server over `service` (switched to deferred-commit mode: the server's progress
    /// task commits).
    pub fn new(mut service: ShardService<S>) -> Rc<Self> {
        service.set_deferred_commits(true);
        Rc::new(ShardServer {
            service: RefCell::new(service),
            writers: RefCell::new(HashMap::new()),
            timer: Signal::default(),
            progress: Signal::default(),
            timer_armed_ms: Cell::new(0),
            stopped: Signal::default(),
            fanout: RefCell::new(None),
            segments: SegmentFiles::default(),
        })
    }

    /// Sets where admin changes made on this shard go (the other shards).
    pub fn set_admin_fanout(&self, fanout: AdminFanout) {
        *self.fanout.borrow_mut() = Some(fanout);
    }

    fn fan_out_admin_changes(&self) {
        let changes = self.service.borrow_mut().state.take_admin_changes();
        if changes.is_empty() {
            return;
        }
        if let Some(fanout) = self.fanout.borrow().as_ref() {
            fanout(changes);
        }
    }

    /// Serves `listeners` (the shard's client port and its VIP port) until [`Self::stop`].
    /// Returns when the accept loops and the timer have ended.
    pub async fn serve(self: Rc<Self>, listeners: Vec<TcpListener>) {
        let mut tasks = Vec::new();
        for listener in listeners {
            let server = self.clone();
            tasks.push(spawn_local(
                async move { server.accept_loop(listener).await },
            ));
        }
        let timer = {
            let server = self.clone();
            spawn_local(async move { server.timer_loop().await })
        };
        let progress = {
            let server = self.clone();
            spawn_local(async move { server.progress_loop().await })
        };
        self.stopped.wait().await;
        drop(tasks);
        drop(timer);
        drop(progress);
        let stats = self.segments.stats();
        if stats != Default::default() {
            tracing::info!(target: "ringmq::server::splice", ?stats, "pull bodies sent from the files");
        }
        for writer in self.writers.borrow().values() {
            writer.close();
        }
    }

    /// Asks [`Self::serve`] to return (connection tasks end when their peers go or their
    /// next read completes).
    pub fn stop(&self) {
        self.stopped.close();
        self.timer.close();
        self.progress.close();
    }

    /// Runs the progress step soon (in this turn of the shard's loop, after the tasks
    /// already woken): call when the store made progress (a group commit completed, the
    /// durable offset moved) or a deferred task finished.
    pub fn kick(&self) {
        self.progress.notify();
    }

    async fn accept_loop(self: Rc<Self>, listener: TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(target: "ringmq::server::net", %error, "accept failed");
                    sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Some(conn) = self.service.borrow_mut().accept(peer) else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            spawn_local(async move { server.connection(Rc::new(stream), conn, peer).await });
        }
    }

    async fn connection(self: Rc<Self>, stream: Rc<TcpStream>, conn: ConnId, peer: SocketAddr) {
        let signal = Rc::new(Signal::default());
        self.writers.borrow_mut().insert(conn, signal.clone());
        let writer = {
            let server = self.clone();
            let stream = stream.clone();
            let signal = signal.clone();
            spawn_local(async move { server.writer(stream, conn, signal).await })
        };
        let result = self.reader(&stream, conn).await;
        if let Err(error) = result {
            tracing::debug!(target: "ringmq::server::net", conn = conn.0, %peer, %error, "connection ended");
        }
        self.writers.borrow_mut().remove(&conn);
        self.service.borrow_mut().close(conn);
        signal.close();
        let _ = writer.await;
        self.wake_writers();
    }

    async fn reader(&self, stream: &TcpStream, conn: ConnId) -> io::Result<()> {
        let mut buf = Vec::with_capacity(RECV_BYTES);
        loop {
            while !self.service.borrow().wants_read(conn) {
                sleep(Duration::from_millis(BACKPRESSURE_PAUSE_MS)).await;
            }
            buf.clear();
            let (result, returned) = stream.recv(buf).await;
            buf = returned;
            let n = result?;
            if n == 0 {
                return Ok(());
            }
            let outcome = self.service.borrow_mut().on_read(conn, &buf[..n], now_ms());
            if self.service.borrow_mut().take_progress_due() {
                self.progress.notify();
            }
            self.wake_writers();
            self.fan_out_admin_changes();
            self.tick_if_due_earlier();
            if let Err(reason) = outcome {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    reason.to_string(),
                ));
            }
        }
    }

    async fn writer(&self, stream: Rc<TcpStream>, conn: ConnId, signal: Rc<Signal>) {
        loop {
            let next = self.service.borrow_mut().take_writes(conn);
            match next {
                Some(out) => {
                    if !self.write_one(&stream, conn, out).await {
                        return;
                    }
                }
                None => {
                    if !signal.wait().await {
                        // Closed: flush what is left, then end.
                        loop {
                            let left = self.service.borrow_mut().take_writes(conn);
                            let Some(out) = left else { return };
                            if !self.write_one(&stream, conn, out).await {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes one piece; false when the connection failed (and was shut down, so that its
    /// reader ends too: a frame cut in the middle of a spliced body cannot be resumed).
    async fn write_one(&self, stream: &TcpStream, conn: ConnId, out: Outbound) -> bool {
        let result = match out {
            Outbound::Bytes(bytes) => {
                // Frames followed by a file span (a pull's header) leave with the span.
                let next = self.service.borrow_mut().take_writes(conn);
                match next {
                    None => stream.send_all(bytes).await.0,
                    Some(next) => {
                        let batch = self.take_batch(conn, vec![Outbound::Bytes(bytes), next]);
                        self.segments.send(stream, batch).await
                    }
                }
            }
            Outbound::File(span) => {
                let batch = self.take_batch(conn, vec![Outbound::File(span)]);
                self.segments.send(stream, batch).await
            }
        };
        match result {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(target: "ringmq::server::net", conn = conn.0, %error,
                    "write failed; closing the connection");
                let _ = stream.shutdown(std::net::Shutdown::Both);
                false
            }
        }
    }

    /// Wakes the timer task when what a read or a progress step did needs a tick before the
    /// one it waits for: a deadline earlier than the armed one (a new long poll, a delayed
    /// message, a durable acknowledgement deadline). A tick per read would cost a whole tick
    /// of housekeeping per received batch (per message at one send in flight) for nothing.
    /// (Connections that can process buffered requests again are the progress step's.)
    fn tick_if_due_earlier(&self) {
        let earlier = self
            .service
            .borrow()
            .next_deadline_ms()
            .is_some_and(|deadline| deadline < self.timer_armed_ms.get());
        if earlier {
            self.timer.notify();
        }
    }

    /// Adds to `batch` what else is queued for `conn`, up to [`SPLICE_BATCH_BYTES`] (so
    /// that several pull responses leave with one pipe → socket splice).
    fn take_batch(&self, conn: ConnId, mut batch: Vec<Outbound>) -> Vec<Outbound> {
        let mut bytes: usize = batch.iter().map(outbound_len).sum();
        let mut service = self.service.borrow_mut();
        while bytes < SPLICE_BATCH_BYTES && batch.len() < SPLICE_BATCH_ITEMS {
            let Some(next) = service.take_writes(conn) else {
                break;
            };
            bytes += outbound_len(&next);
            batch.push(next);
        }
        batch
    }

    fn wake_writers(&self) {
        let ready = self.service.borrow().writable();
        let writers = self.writers.borrow();
        for conn in ready {
            if let Some(signal) = writers.get(&conn) {
                signal.notify();
            }
        }
    }

    async fn timer_loop(&self) {
        loop {
            let now = now_ms();
            let next = self
                .service
                .borrow()
                .next_deadline_ms()
                .unwrap_or(now + TICK_MS_MAX);
            let wait_ms = next.saturating_sub(now).clamp(1, TICK_MS_MAX);
            self.timer_armed_ms.set(now + wait_ms);
            if let Ok(false) = timeout(Duration::from_millis(wait_ms), self.timer.wait()).await {
                return;
            }
            let closes = self.service.borrow_mut().tick(now_ms());
            self.close_all(closes);
            // Requests the tick processed (held connections) are committed by the progress
            // step.
            self.progress.notify();
            self.wake_writers();
        }
    }

    /// The progress task: see the module docs.
    async fn progress_loop(&self) {
        while self.progress.wait().await {
            let closes = self.service.borrow_mut().on_progress(now_ms());
            self.close_all(closes);
            self.wake_writers();
            self.fan_out_admin_changes();
            self.tick_if_due_earlier();
        }
    }

    fn close_all(&self, closes: Vec<(ConnId, CloseReason)>) {
        for (conn, reason) in closes {
            tracing::warn!(target: "ringmq::server::net", conn = conn.0, %reason, "closing connection");
            self.service.borrow_mut().close(conn);
            if let Some(signal) = self.writers.borrow_mut().remove(&conn) {
                signal.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_wakes_once_per_notify_and_reports_close() {
        let signal = Signal::default();
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        {
            let mut wait = std::pin::pin!(signal.wait());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            signal.notify();
            assert_eq!(wait.as_mut().poll(&mut cx), Poll::Ready(true));
        }
        {
            let mut wait = std::pin::pin!(signal.wait());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            signal.close();
            assert_eq!(wait.as_mut().poll(&mut cx), Poll::Ready(false));
        }
    }
}
