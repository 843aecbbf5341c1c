//! The I/O-free core of one shard's server: its connections' protocol state on top of the
//! [`ShardState`]. The runtime's connection loop drives it:
//!
//! 1. [`ShardService::accept`] when a connection arrives (refused past `max_connections`);
//! 2. [`ShardService::on_read`] with whatever bytes arrived; it decodes frames, runs each
//!    request, and queues the encoded responses;
//! 3. [`ShardService::take_writes`] for each connection in [`ShardService::writable`] and
//!    writes the bytes out;
//! 4. [`ShardService::on_progress`] when the store made progress (a group commit or a
//!    deferred read completed) and, in deferred-commit mode, after the reads of a loop turn;
//! 5. [`ShardService::tick`] at [`ShardService::next_deadline_ms`];
//! 6. [`ShardService::close`] when the peer goes away (or when `on_read` says to close).
//!
//! Deferred-commit mode ([`ShardService::set_deferred_commits`], what the shard server runs):
//! `on_read` only appends and answers what can be answered at once; the group commit and
//! the release of what became durable run in `on_progress`, which the server calls once
//! the reads woken together have run. Appends of every connection read in one turn of the
//! shard's loop then leave in one write, and a completed write releases its acknowledgements
//! (in append order) and starts the next write in the same turn.
//!
//! Requests on one connection are processed concurrently in the sense that matters to
//! clients: each is answered by its `opaque`, in whatever order its answer is ready, so a
//! long-polling pull never delays a later `QUERY_CONSUMER_OFFSET` (rocketmq-facts §B.7).
//! Oneway requests get no reply. A connection holding `max_in_flight_requests_per_connection`
//! unanswered requests is not decoded further until one completes ([`ShardService::wants_read`]
//! tells the loop to stop reading it meanwhile). A frame that cannot be decoded closes that
//! connection only, with a log line.
//!
//! Single-threaded: lives on its shard's thread.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use bytes::BytesMut;
use ringmq_wire::{FrameDecoder, RemotingCommand, WireError};

use crate::server::ConnId;
use crate::server::state::{Conn, Outgoing, ShardState};
use crate::server::store::{FileSpan, RecordBytes, ShardStore};

/// Encoded bytes waiting to be written to one connection beyond which the peer is
/// considered stuck (it does not read its responses) and the connection is closed.
pub const PENDING_WRITE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Why a connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseReason {
    /// The peer sent bytes that are not a valid frame.
    #[error("bad frame: {0}")]
    BadFrame(#[from] WireError),
    /// The peer does not read its responses.
    #[error("peer not reading: {pending} bytes of responses pending")]
    NotReading {
        /// Bytes waiting.
        pending: usize,
    },
    /// The connection is not known (already closed).
    #[error("unknown connection")]
    Unknown,
}

/// Something for the connection writer to send, in order.
#[derive(Debug)]
pub enum Outbound {
    /// Encoded frames (or the header part of a frame whose body follows as file spans).
    Bytes(BytesMut),
    /// Part of a frame's body, to splice from a CommitLog segment file.
    File(FileSpan),
}

#[derive(Debug)]
struct Session {
    remote: SocketAddr,
    decoder: FrameDecoder,
    /// Requests answered later (parked pulls, sends awaiting durability).
    deferred: usize,
    /// What to write before `tail`, in order (present only once a file span was queued).
    queued: VecDeque<Outbound>,
    /// Frames in memory after everything in `queued`; new frames are appended here.
    tail: BytesMut,
    /// Bytes in `queued` and `tail`, file spans included.
    write_bytes: usize,
}

impl Session {
    fn has_writes(&self) -> bool {
        !self.queued.is_empty() || !self.tail.is_empty()
    }

    /// Queues a file span after everything written so far.
    fn push_span(&mut self, span: FileSpan) {
        if !self.tail.is_empty() {
            let frames = self.tail.split();
            self.queued.push_back(Outbound::Bytes(frames));
        }
        self.write_bytes += span.len as usize;
        self.queued.push_back(Outbound::File(span));
    }

    /// Appends to the in-memory tail, counting the bytes.
    fn append(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.write_bytes += bytes.len();
    }
}

/// One shard's connections and state.
#[derive(Debug)]
pub struct ShardService<S> {
    /// The shard's broker state.
    pub state: ShardState<S>,
    /// Keyed by our own connection ids: a fast hasher (looked up several times per request).
    sessions: HashMap<ConnId, Session, foldhash::fast::RandomState>,
    next_conn: u64,
    /// Group commits wait for [`Self::on_progress`] instead of running in `on_read`.
    defer_commits: bool,
    /// Requests were processed since the last [`Self::on_progress`] (deferred mode).
    progress_due: bool,
}

impl<S: ShardStore> ShardService<S> {
    /// A service over `state` with no connections.
    pub fn new(state: ShardState<S>) -> Self {
        ShardService {
            state,
            sessions: HashMap::default(),
            next_conn: 1,
            defer_commits: false,
            progress_due: false,
        }
    }

    /// Deferred-commit mode (see the module docs): `on_read` leaves the group commit and
    /// the release of durable acknowledgements to [`Self::on_progress`], which the caller
    /// must then run once [`Self::take_progress_due`] says so.
    pub fn set_deferred_commits(&mut self, on: bool) {
        self.defer_commits = on;
    }

    /// Whether reads processed requests whose commit waits for [`Self::on_progress`]
    /// (deferred mode); clears the flag.
    pub fn take_progress_due(&mut self) -> bool {
        std::mem::take(&mut self.progress_due)
    }

    /// Registers a new connection, or refuses it (`None`: close it at once) past
    /// `limits.max_connections`.
    pub fn accept(&mut self, remote: SocketAddr) -> Option<ConnId> {
        if self.sessions.len() >= self.state.config.limits.max_connections {
            tracing::warn!(target: "ringmq::server::conn", %remote,
                limit = self.state.config.limits.max_connections, "connection refused: limit reached");
            return None;
        }
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.sessions.insert(
            id,
            Session {
                remote,
                decoder: FrameDecoder::new(self.state.config.limits.max_frame_bytes),
                deferred: 0,
                queued: VecDeque::new(),
                tail: BytesMut::new(),
                write_bytes: 0,
            },
        );
        tracing::debug!(target: "ringmq::server::conn", conn = id.0, %remote, "connection accepted");
        Some(id)
    }

    /// Number of open connections.
    pub fn connections(&self) -> usize {
        self.sessions.len()
    }

    /// Feeds received bytes and processes every whole request the in-flight limit allows.
    /// An error means: close this connection (then call [`Self::close`]).
    pub fn on_read(&mut self, conn: ConnId, data: &[u8], now_ms: u64) -> Result<(), CloseReason> {
        let session = self.sessions.get_mut(&conn).ok_or(CloseReason::Unknown)?;
        session.decoder.extend(data);
        let processed = self.process_buffered(conn, now_ms);
        if self.defer_commits {
            self.progress_due = true;
        } else {
            self.state.after_requests(now_ms);
        }
        self.route_outbox();
        processed?;
        Ok(())
    }

    /// After store progress (a group commit completed, a deferred read finished) and, in
    /// deferred-commit mode, after the reads of a loop turn: starts the next group commit
    /// of what was appended, queues the acknowledgements that became durable (in append
    /// order), and processes requests of connections that were held at their in-flight
    /// limit and may run again. Returns the connections to close.
    pub fn on_progress(&mut self, now_ms: u64) -> Vec<(ConnId, CloseReason)> {
        self.progress_due = false;
        self.state.after_requests(now_ms);
        self.route_outbox();
        let mut to_close = Vec::new();
        let max_in_flight = self
            .state
            .config
            .limits
            .max_in_flight_requests_per_connection;
        // Collecting nothing allocates nothing: the common case.
        let runnable: Vec<ConnId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deferred < max_in_flight && s.decoder.has_frame())
            .map(|(conn, _)| *conn)
            .collect();
        if !runnable.is_empty() {
            for conn in runnable {
                if let Err(reason) = self.process_buffered(conn, now_ms) {
                    to_close.push((conn, reason));
                }
            }
            // What those requests appended is committed now, not at the next tick.
            self.state.after_requests(now_ms);
            self.route_outbox();
        }
        to_close
    }

    fn process_buffered(&mut self, conn: ConnId, now_ms: u64) -> Result<(), CloseReason> {
        let max_in_flight = self
            .state
            .config
            .limits
            .max_in_flight_requests_per_connection;
        loop {
            let Some(session) = self.sessions.get_mut(&conn) else {
                return Err(CloseReason::Unknown);
            };
            if session.deferred >= max_in_flight {
                return Ok(());
            }
            let command = match session.decoder.next_command() {
                Ok(Some(command)) => command,
                Ok(None) => return Ok(()),
                Err(error) => {
                    tracing::warn!(target: "ringmq::server::conn", conn = conn.0,
                        remote = %session.remote, %error, "closing connection: bad frame");
                    return Err(CloseReason::BadFrame(error));
                }
            };
            if command.is_response() {
                // An answer to a request the broker sent (a relayed admin request).
                self.state.handle_response(conn, command);
                continue;
            }
            let remote = session.remote;
            let oneway = command.is_oneway();
            let response = self
                .state
                .handle(Conn { id: conn, remote }, command, now_ms);
            let Some(session) = self.sessions.get_mut(&conn) else {
                return Err(CloseReason::Unknown);
            };
            match response {
                Some(response) => {
                    let body = self.state.bodies.take(conn, response.opaque);
                    write_command(conn, session, &response, body)?
                }
                None if !oneway => session.deferred += 1,
                None => {}
            }
        }
    }

    /// Housekeeping (long-poll expiry, durable acknowledgements, client expiry), then
    /// routes what became ready. Connections whose deferred requests completed may have
    /// buffered requests to process: they are processed too.
    pub fn tick(&mut self, now_ms: u64) -> Vec<(ConnId, CloseReason)> {
        self.state.tick(now_ms);
        self.route_outbox();
        let mut to_close = Vec::new();
        let conns: Vec<ConnId> = self.sessions.keys().copied().collect();
        for conn in conns {
            if let Err(reason) = self.process_buffered(conn, now_ms) {
                to_close.push((conn, reason));
            }
        }
        self.route_outbox();
        to_close
    }

    /// The next time [`Self::tick`] has work.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.state.next_deadline_ms()
    }

    fn route_outbox(&mut self) {
        for Outgoing { conn, command } in self.state.take_outbox() {
            let body = if command.is_response() {
                self.state.bodies.take(conn, command.opaque)
            } else {
                None
            };
            let Some(session) = self.sessions.get_mut(&conn) else {
                continue;
            };
            if command.is_response() {
                session.deferred = session.deferred.saturating_sub(1);
            }
            if let Err(error) = write_command(conn, session, &command, body) {
                tracing::warn!(target: "ringmq::server::conn", conn = conn.0, %error,
                    "response not written");
            }
        }
    }

    /// Connections with bytes to write.
    pub fn writable(&self) -> Vec<ConnId> {
        let mut conns: Vec<ConnId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.has_writes())
            .map(|(c, _)| *c)
            .collect();
        conns.sort();
        conns
    }

    /// Takes the next thing to write to a connection: all frames buffered in memory up to
    /// the next file span, or that span. Written in the order taken, they form whole frames.
    pub fn take_writes(&mut self, conn: ConnId) -> Option<Outbound> {
        let session = self.sessions.get_mut(&conn)?;
        let next = match session.queued.pop_front() {
            Some(next) => next,
            None if !session.tail.is_empty() => Outbound::Bytes(session.tail.split()),
            None => return None,
        };
        let len = match &next {
            Outbound::Bytes(bytes) => bytes.len(),
            Outbound::File(span) => span.len as usize,
        };
        session.write_bytes = session.write_bytes.saturating_sub(len);
        Some(next)
    }

    /// Whether the loop should keep reading this connection: false while it is at its
    /// in-flight limit or has a full frame's worth of unprocessed bytes buffered.
    pub fn wants_read(&self, conn: ConnId) -> bool {
        self.sessions.get(&conn).is_some_and(|s| {
            s.deferred
                < self
                    .state
                    .config
                    .limits
                    .max_in_flight_requests_per_connection
                || s.decoder.buffered() < self.state.config.limits.max_frame_bytes
        })
    }

    /// Whether some connection has a whole request buffered that it may process now (it
    /// was held at its in-flight limit and is below it again): [`Self::tick`] processes it.
    pub fn has_runnable_backlog(&self) -> bool {
        let max_in_flight = self
            .state
            .config
            .limits
            .max_in_flight_requests_per_connection;
        self.sessions
            .values()
            .any(|s| s.deferred < max_in_flight && s.decoder.has_frame())
    }

    /// Forgets a connection and everything registered over it.
    pub fn close(&mut self, conn: ConnId) {
        if let Some(session) = self.sessions.remove(&conn) {
            tracing::debug!(target: "ringmq::server::conn", conn = conn.0, remote = %session.remote,
                "connection closed");
        }
        self.state.connection_closed(conn);
        self.state.bodies.forget(conn);
    }
}

/// Queues one command; `body`, when given, replaces the command's (empty) body with stored
/// records, those in files to be spliced after the frame's header.
fn write_command(
    conn: ConnId,
    session: &mut Session,
    command: &RemotingCommand,
    body: Option<Vec<RecordBytes>>,
) -> Result<(), CloseReason> {
    let encoded = match body {
        None => {
            let before = session.tail.len();
            command.encode_into(&mut session.tail).map(|()| {
                session.write_bytes += session.tail.len() - before;
            })
        }
        Some(parts) => write_with_parts(session, command, parts),
    };
    if let Err(error) = encoded {
        // Only an oversized response can fail to encode: answer with an error instead.
        tracing::error!(target: "ringmq::server::conn", conn = conn.0, %error, "response too large");
        let fallback = RemotingCommand::error_response(
            command,
            ringmq_wire::ResponseCode::SystemError,
            format!("response could not be encoded: {error}"),
        );
        let before = session.tail.len();
        fallback.encode_into(&mut session.tail)?;
        session.write_bytes += session.tail.len() - before;
    }
    if session.write_bytes > PENDING_WRITE_BYTES_MAX {
        return Err(CloseReason::NotReading {
            pending: session.write_bytes,
        });
    }
    Ok(())
}

/// Queues the header frame of `command` sized for `parts`, then the parts: memory records
/// are copied after the header, file spans queued for `splice`. Nothing is queued on error.
fn write_with_parts(
    session: &mut Session,
    command: &RemotingCommand,
    parts: Vec<RecordBytes>,
) -> Result<(), WireError> {
    let body_len: usize = parts.iter().map(RecordBytes::len).sum();
    let prefix = command.encode_prefix(body_len)?;
    session.append(&prefix);
    for part in parts {
        match part {
            RecordBytes::Memory(bytes) => session.append(&bytes),
            RecordBytes::File(span) => session.push_span(span),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
