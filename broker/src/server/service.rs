//! The I/O-free core of one shard's server: its connections' protocol state on top of the
//! [`ShardState`]. The runtime's connection loop drives it:
//!
//! 1. [`ShardService::accept`] when a connection arrives (refused past `max_connections`);
//! 2. [`ShardService::on_read`] with whatever bytes arrived; it decodes frames, runs each
//!    request, and queues the encoded responses;
//! 3. [`ShardService::take_writes`] for each connection in [`ShardService::writable`] and
//!    writes the bytes out;
//! 4. [`ShardService::tick`] at [`ShardService::next_deadline_ms`] and after store progress;
//! 5. [`ShardService::close`] when the peer goes away (or when `on_read` says to close).
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

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::BytesMut;
use ringmq_wire::{FrameDecoder, RemotingCommand, WireError};

use crate::server::ConnId;
use crate::server::state::{Conn, Outgoing, ShardState};
use crate::server::store::ShardStore;

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

#[derive(Debug)]
struct Session {
    remote: SocketAddr,
    decoder: FrameDecoder,
    /// Requests answered later (parked pulls, sends awaiting durability).
    deferred: usize,
    write: BytesMut,
}

/// One shard's connections and state.
#[derive(Debug)]
pub struct ShardService<S> {
    /// The shard's broker state.
    pub state: ShardState<S>,
    sessions: HashMap<ConnId, Session>,
    next_conn: u64,
}

impl<S: ShardStore> ShardService<S> {
    /// A service over `state` with no connections.
    pub fn new(state: ShardState<S>) -> Self {
        ShardService {
            state,
            sessions: HashMap::new(),
            next_conn: 1,
        }
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
                write: BytesMut::new(),
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
        self.state.after_requests(now_ms);
        self.route_outbox();
        processed?;
        Ok(())
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
                // An answer to a request we sent (we only send oneway notifications).
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
                Some(response) => write_command(conn, session, &response)?,
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
            let Some(session) = self.sessions.get_mut(&conn) else {
                continue;
            };
            if command.is_response() {
                session.deferred = session.deferred.saturating_sub(1);
            }
            if let Err(error) = write_command(conn, session, &command) {
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
            .filter(|(_, s)| !s.write.is_empty())
            .map(|(c, _)| *c)
            .collect();
        conns.sort();
        conns
    }

    /// Takes the bytes to write to a connection.
    pub fn take_writes(&mut self, conn: ConnId) -> Option<BytesMut> {
        let session = self.sessions.get_mut(&conn)?;
        (!session.write.is_empty()).then(|| session.write.split())
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

    /// Forgets a connection and everything registered over it.
    pub fn close(&mut self, conn: ConnId) {
        if let Some(session) = self.sessions.remove(&conn) {
            tracing::debug!(target: "ringmq::server::conn", conn = conn.0, remote = %session.remote,
                "connection closed");
        }
        self.state.connection_closed(conn);
    }
}

fn write_command(
    conn: ConnId,
    session: &mut Session,
    command: &RemotingCommand,
) -> Result<(), CloseReason> {
    if let Err(error) = command.encode_into(&mut session.write) {
        // Only an oversized response can fail to encode: answer with an error instead.
        tracing::error!(target: "ringmq::server::conn", conn = conn.0, %error, "response too large");
        let fallback = RemotingCommand::error_response(
            command,
            ringmq_wire::ResponseCode::SystemError,
            format!("response could not be encoded: {error}"),
        );
        fallback.encode_into(&mut session.write)?;
    }
    if session.write.len() > PENDING_WRITE_BYTES_MAX {
        return Err(CloseReason::NotReading {
            pending: session.write.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
