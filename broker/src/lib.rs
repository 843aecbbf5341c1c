//! The ringmq broker library: the shard runtime, the per-shard store, and (later) the
//! request handlers. The `ringmq-broker` binary is a thin layer over it.
//!
//! See `ARCHITECTURE.md` §3, §4 and §8 for the design: one shard per core, each a complete
//! RocketMQ broker with its own io_uring ring and its own store.

pub mod admin;
pub mod config;
pub mod features;
pub mod ops;
pub mod runtime;
pub mod server;
pub mod store;
