//! One multiplexed TCP connection to a broker or NameServer.
//!
//! A connection runs two tokio tasks: a writer that takes whatever frames callers encoded
//! into the connection's [`Outbox`] since its last write and writes them with one `write`,
//! and a reader that decodes every whole frame of each read and either completes the
//! pending request with the same `opaque` or dispatches a broker-initiated request to its
//! registered handler. A request that is the only one outstanding on its connection (one
//! send at a time: nothing to coalesce with) is written by its caller at once, without the
//! hop through the writer task (see [`Outbox::push_direct`]). Requests wait for a permit of a
//! per-connection semaphore, so at most `max_in_flight` requests are outstanding; callers
//! beyond that wait (backpressure), bounded by their own timeout.
//!
//! When either task fails (EOF, I/O error, a frame that breaks the stream), the connection
//! is marked closed and every pending request fails at once with
//! [`ClientError::ConnectionLost`] naming the reason; nothing waits for its timeout.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use ringmq_wire::{FrameDecoder, RemotingCommand, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tracing::{debug, trace, warn};

use super::outbox::{Outbox, PushError};
use super::{Handlers, RemotingConfig};
use crate::error::{ClientError, Result};
use crate::limits::{INBOUND_REQUESTS_MAX, READ_CHUNK_BYTES};

type Reply = std::result::Result<RemotingCommand, String>;

/// The requests waiting for a response, and whether the connection is already closed.
#[derive(Default)]
struct Pending {
    waiting: HashMap<i32, oneshot::Sender<Reply>>,
    closed: Option<String>,
}

/// State shared by the connection handle and its tasks.
struct Shared {
    addr: String,
    pending: Mutex<Pending>,
    /// Broker-initiated requests being handled; past the limit they are refused.
    inbound: Arc<Semaphore>,
    /// Frames waiting for the writer.
    outbox: Outbox,
    /// The socket again (a duplicated descriptor, non-blocking like tokio's), for callers
    /// that hold the write turn ([`Outbox::push_direct`]); `None` if it could not be
    /// duplicated (then every frame goes through the writer task).
    direct: Option<std::net::TcpStream>,
}

impl Shared {
    /// Marks the connection closed and fails every pending request with `reason`.
    fn close(&self, reason: String) {
        let drained = {
            let mut pending = lock(&self.pending);
            if pending.closed.is_some() {
                return;
            }
            pending.closed = Some(reason.clone());
            std::mem::take(&mut pending.waiting)
        };
        self.outbox.close();
        if !drained.is_empty() {
            warn!(addr = %self.addr, pending = drained.len(), %reason, "connection closed, failing pending requests");
        } else {
            debug!(addr = %self.addr, %reason, "connection closed");
        }
        for (_, waiter) in drained {
            let _ = waiter.send(Err(reason.clone()));
        }
    }

    fn closed_reason(&self) -> Option<String> {
        lock(&self.pending).closed.clone()
    }

    /// Queues `command`, writing it (and whatever else is queued) from this task when
    /// `direct` and nobody else holds the write turn.
    async fn push(&self, command: &RemotingCommand, direct: bool) -> Result<(), PushError> {
        match &self.direct {
            Some(socket) if direct => {
                if let Some(batch) = self.outbox.push_direct(command).await? {
                    self.write_direct(socket, batch);
                }
                Ok(())
            }
            _ => self.outbox.push(command).await,
        }
    }

    /// Writes `batch` without blocking; what does not fit in the socket buffer now is left
    /// to the writer task. A failed write closes the connection.
    fn write_direct(&self, mut socket: &std::net::TcpStream, batch: bytes::BytesMut) {
        let mut written = 0;
        let result = loop {
            if written == batch.len() {
                break Ok(());
            }
            match socket.write(&batch[written..]) {
                Ok(0) => break Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        self.outbox.direct_done(batch, written);
        if let Err(error) = result {
            self.close(format!("write failed: {error}"));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map inconsistent (single inserts and
    // removes), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes a pending entry when the waiting request finishes or is dropped (cancelled), so
/// that abandoned requests never leak map entries.
struct PendingGuard<'a> {
    shared: &'a Shared,
    opaque: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).waiting.remove(&self.opaque);
    }
}

/// A live connection. Dropping the last handle stops its tasks and closes the socket.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    in_flight: Arc<Semaphore>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close("connection handle dropped".into());
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Connection {
    /// Starts the reader and writer tasks over an established stream.
    pub(crate) fn start(
        addr: String,
        stream: TcpStream,
        config: &RemotingConfig,
        handlers: Handlers,
    ) -> Connection {
        let _ = stream.set_nodelay(true);
        let direct = match stream.as_fd().try_clone_to_owned() {
            Ok(fd) => Some(std::net::TcpStream::from(fd)),
            Err(error) => {
                debug!(%addr, %error, "cannot duplicate the socket; every write goes through the writer task");
                None
            }
        };
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            addr,
            pending: Mutex::new(Pending::default()),
            inbound: Arc::new(Semaphore::new(INBOUND_REQUESTS_MAX)),
            outbox: Outbox::new(config.write_buffer_bytes),
            direct,
        });
        let writer = tokio::spawn(write_loop(shared.clone(), write));
        let reader = tokio::spawn(read_loop(
            shared.clone(),
            read,
            handlers,
            config.max_frame_bytes,
        ));
        Connection {
            shared,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            tasks: [writer, reader],
        }
    }

    /// The peer address.
    pub(crate) fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Whether the connection has failed or been closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed_reason().is_some()
    }

    /// Closes the connection, failing pending requests with `reason`.
    pub(crate) fn close(&self, reason: &str) {
        self.shared.close(reason.to_owned());
    }

    fn lost(&self, reason: String) -> ClientError {
        ClientError::ConnectionLost {
            addr: self.shared.addr.clone(),
            reason,
        }
    }

    fn timed_out(&self, request_code: i32, timeout: Duration) -> ClientError {
        ClientError::Timeout {
            addr: self.shared.addr.clone(),
            request_code,
            timeout,
        }
    }

    /// Sends `request` and waits for the response with its opaque, at most `timeout` in all
    /// (waiting for an in-flight permit included).
    pub(crate) async fn request(
        &self,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let deadline = Instant::now() + timeout;
        let code = request.code;
        let _permit = match timeout_at(deadline, self.in_flight.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(self.lost("in-flight semaphore closed".into())),
            Err(_) => return Err(self.timed_out(code, timeout)),
        };
        let (reply_tx, reply_rx) = oneshot::channel();
        // The only request outstanding: nothing to coalesce it with, so write it now.
        let alone = {
            let mut pending = lock(&self.shared.pending);
            if let Some(reason) = &pending.closed {
                return Err(self.lost(reason.clone()));
            }
            pending.waiting.insert(request.opaque, reply_tx);
            pending.waiting.len() == 1
        };
        let _guard = PendingGuard {
            shared: &self.shared,
            opaque: request.opaque,
        };
        trace!(addr = %self.shared.addr, code, opaque = request.opaque, "request");
        match timeout_at(deadline, self.shared.push(&request, alone)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(self.push_failed(error)),
            Err(_) => return Err(self.timed_out(code, timeout)),
        }
        match timeout_at(deadline, reply_rx).await {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(reason))) => Err(self.lost(reason)),
            Ok(Err(_)) => {
                let reason = self.shared.closed_reason();
                Err(self.lost(reason.unwrap_or_else(|| "response channel dropped".into())))
            }
            Err(_) => Err(self.timed_out(code, timeout)),
        }
    }

    /// Sends `request` flagged oneway; returns once the frame is queued for writing.
    pub(crate) async fn oneway(
        &self,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<()> {
        request.set_oneway();
        let code = request.code;
        let alone = {
            let pending = lock(&self.shared.pending);
            if let Some(reason) = &pending.closed {
                return Err(self.lost(reason.clone()));
            }
            pending.waiting.is_empty()
        };
        match tokio::time::timeout(timeout, self.shared.push(&request, alone)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.push_failed(error)),
            Err(_) => Err(self.timed_out(code, timeout)),
        }
    }

    fn push_failed(&self, error: PushError) -> ClientError {
        match error {
            PushError::Closed => {
                let reason = self.shared.closed_reason();
                self.lost(reason.unwrap_or_else(|| "writer stopped".into()))
            }
            PushError::Encode(source) => ClientError::Wire {
                addr: self.shared.addr.clone(),
                source,
            },
        }
    }
}

async fn write_loop(shared: Arc<Shared>, mut write: OwnedWriteHalf) {
    let mut batch = BytesMut::new();
    // Everything callers queued since the last write goes out in one write. Between the
    // first frame and the take, let the other ready tasks run once: when a batch of
    // responses has just woken many senders, they queue their next requests first and all
    // go out together, instead of one write per sender or two. With a single sender this
    // costs one trip through the scheduler, microseconds.
    loop {
        shared.outbox.ready().await;
        tokio::task::yield_now().await;
        if !shared.outbox.take(&mut batch).await {
            break;
        }
        let written = write.write_all(&batch).await;
        shared.outbox.writer_done();
        if let Err(error) = written {
            shared.close(format!("write failed: {error}"));
            return;
        }
        Outbox::recycle(&mut batch);
    }
    let _ = write.shutdown().await;
}

async fn read_loop(
    shared: Arc<Shared>,
    mut read: OwnedReadHalf,
    handlers: Handlers,
    max_frame_bytes: usize,
) {
    let mut decoder = FrameDecoder::new(max_frame_bytes);
    let reason = loop {
        let buffer = decoder.buffer_mut();
        buffer.reserve(READ_CHUNK_BYTES);
        match read.read_buf(buffer).await {
            Ok(0) => break "peer closed the connection".to_owned(),
            Ok(_) => {}
            Err(error) => break format!("read failed: {error}"),
        }
        if let Err(reason) = drain_frames(&shared, &mut decoder, &handlers) {
            break reason;
        }
    };
    shared.close(reason);
}

/// Handles every whole frame in the decoder; an error string means the stream is broken.
fn drain_frames(
    shared: &Arc<Shared>,
    decoder: &mut FrameDecoder,
    handlers: &Handlers,
) -> std::result::Result<(), String> {
    loop {
        let command = match decoder.next_command() {
            Ok(Some(command)) => command,
            Ok(None) => return Ok(()),
            Err(error) if error.is_fatal_to_connection() => {
                return Err(format!("undecodable frame: {error}"));
            }
            Err(error) => {
                warn!(addr = %shared.addr, %error, "dropping a frame whose header does not decode");
                continue;
            }
        };
        if command.is_response() {
            let waiter = lock(&shared.pending).waiting.remove(&command.opaque);
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(Ok(command));
                }
                None => {
                    debug!(addr = %shared.addr, opaque = command.opaque, "response with no waiter (timed out or cancelled)")
                }
            }
        } else {
            dispatch_request(shared, command, handlers);
        }
    }
}

/// Runs the handler registered for a broker-initiated request on its own task and writes
/// its response (unless the request was oneway).
fn dispatch_request(shared: &Arc<Shared>, request: RemotingCommand, handlers: &Handlers) {
    let handler = handlers
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&request.code)
        .cloned();
    let addr = shared.addr.clone();
    debug!(%addr, code = request.code, opaque = request.opaque, "broker-initiated request");
    let Ok(permit) = shared.inbound.clone().try_acquire_owned() else {
        warn!(%addr, code = request.code, limit = INBOUND_REQUESTS_MAX, "too many broker requests in progress; refusing");
        if !request.is_oneway() {
            let busy = RemotingCommand::error_response(
                &request,
                ResponseCode::SystemBusy,
                "client busy: too many broker requests in progress",
            );
            if let Err(error) = shared.outbox.try_push(&busy) {
                debug!(%addr, %error, "cannot queue the busy answer to a broker request");
            }
        }
        return;
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let oneway = request.is_oneway();
        let response = match handler {
            Some(handler) => handler(addr.clone(), request).await,
            None => {
                let remark = format!(
                    "request code {} is not supported by this client",
                    request.code
                );
                Some(RemotingCommand::error_response(
                    &request,
                    ResponseCode::RequestCodeNotSupported,
                    remark,
                ))
            }
        };
        let Some(response) = response else { return };
        if oneway {
            return;
        }
        match shared.outbox.push(&response).await {
            Ok(()) => {}
            Err(PushError::Closed) => {}
            Err(error) => warn!(%addr, %error, "cannot encode the response to a broker request"),
        }
    });
}
