//! Consumers: queue allocation ([`rebalance`]).

pub mod rebalance;

pub use rebalance::AllocateStrategy;
