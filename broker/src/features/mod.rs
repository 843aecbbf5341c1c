//! Broker features built on top of the per-shard store and state (ARCHITECTURE §7):
//! re-appending stored messages under another topic ([`requeue`]), the delay-level service
//! that holds messages in `SCHEDULE_TOPIC_XXXX` until they are due ([`schedule`]), the
//! retry / dead-letter routing of messages consumers hand back ([`retry`]), and
//! transactional messages: half messages, commit/rollback and the check-back
//! ([`transaction`]), and SQL92 message filters ([`filter`]).
//!
//! Everything here runs on its shard's thread, over that shard's [`ShardState`], inside
//! request handling or the shard tick; nothing is shared between shards (a delayed message is
//! delivered by the shard that stored it).
//!
//! [`ShardState`]: crate::server::state::ShardState

pub mod filter;
pub mod requeue;
pub mod retry;
pub mod schedule;
pub mod transaction;
