//! [`MessageQueue`]: one queue of a topic on one broker, the unit of routing and rebalance.
//!
//! The type is the wire crate's (`body::consumer::MessageQueue`), so that queues go into
//! lock, stats and offset bodies as they are. It orders queues as RocketMQ does before
//! rebalancing (topic, broker name, queue id), and displays as Java's `toString()`, which
//! the consistent-hash strategy hashes.

pub use ringmq_wire::body::consumer::MessageQueue;
