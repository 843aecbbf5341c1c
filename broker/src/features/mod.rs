//! Broker features built on the shard state and store: transactional messages (and, from
//! other modules, delay, retry and filters).
//!
//! Everything here runs on one shard's thread, inside request handling or the shard tick.

pub mod transaction;
