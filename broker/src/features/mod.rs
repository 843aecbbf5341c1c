//! Broker features built on top of the per-shard store and state (ARCHITECTURE §7):
//! re-appending stored messages under another topic ([`requeue`]), the delay-level service
//! that holds messages in `SCHEDULE_TOPIC_XXXX` until they are due ([`schedule`]), the
//! retry / dead-letter routing of messages consumers hand back ([`retry`]), and
//! transactional messages: half messages, their ends and check-backs ([`transaction`]).
//!
//! Everything here runs on its shard's thread, over that shard's [`ShardState`]; nothing is
//! shared between shards (a delayed message is delivered by the shard that stored it).
//!
//! [`ShardState`]: crate::server::state::ShardState

pub mod requeue;
pub mod retry;
pub mod schedule;
pub mod transaction;
