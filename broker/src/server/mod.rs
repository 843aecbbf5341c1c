//! The broker server: per-shard broker state (topics, groups, consumers, producers, locks,
//! offsets, long polling), the request handlers (one module per request family, in
//! [`handler`]), and the NameServer registration logic.
//!
//! Everything here runs on one shard's thread and is single-threaded: state is owned by the
//! shard and borrowed mutably by the handler of the request being processed.
//!
//! Layers, from the inside out:
//! - managers, one idea each: [`topic`], [`group`], [`consumer`], [`producer`], [`lock`],
//!   [`offset`], [`long_poll`];
//! - [`store`]: the [`store::ShardStore`] interface the handlers need, implemented by
//!   [`mem_store::MemStore`] (tests) and [`store_adapter::RealStore`] (the real store);
//! - [`state::ShardState`]: the managers + store + what is owed to the network (deferred
//!   responses, notifications, admin changes for other shards);
//! - [`handler`]: the dispatcher and one module per request family;
//! - [`service::ShardService`]: I/O-free connection sessions (framing, limits, replies by
//!   opaque) over the state;
//! - [`net::ShardServer`]: the connection loop on the shard runtime;
//! - [`register`]: NameServer registration requests; [`broker::Broker`]: the process (shards,
//!   admin fan-out, registration loop, persistence, shutdown).

pub mod body;
pub mod broker;
pub mod consumer;
pub mod deferred;
pub mod group;
pub mod handler;
pub mod lock;
pub mod long_poll;
pub mod mem_store;
pub mod net;
pub mod offset;
pub mod producer;
pub mod register;
pub mod ring_read;
pub mod service;
pub mod splice;
pub mod state;
pub mod store;
pub mod store_adapter;
pub mod topic;

/// Identifies one client connection on a shard. Assigned by the connection loop; never
/// reused while the shard runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A client (producer or consumer instance) as seen over one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The connection its heartbeats arrive on.
    pub conn_id: ConnId,
    /// The client's id (`clientID`, e.g. `10.0.0.5@12345`).
    pub client_id: String,
    /// Remote address, for admin listings.
    pub remote_addr: String,
    /// The client's language code.
    pub language: ringmq_wire::LanguageCode,
    /// The client's version ordinal.
    pub version: i32,
    /// Time of the latest heartbeat.
    pub last_update_ms: u64,
}

impl ClientInfo {
    /// A client with unknown address and language, seen at `now_ms`.
    pub fn new(conn_id: ConnId, client_id: impl Into<String>, now_ms: u64) -> Self {
        ClientInfo {
            conn_id,
            client_id: client_id.into(),
            remote_addr: String::new(),
            language: ringmq_wire::LanguageCode::Other,
            version: 0,
            last_update_ms: now_ms,
        }
    }
}
