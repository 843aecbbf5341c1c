//! `ringmq-perf`: the pressure-test harness. RocketMQ's benchmark tools' options
//! ([`args`]), statistics and report lines ([`stats`], [`report`]), with HdrHistogram
//! percentiles on top ([`latency`]); the tools themselves are [`producer`], [`consumer`] and [`transaction`];
//! [`scenario`] runs matrices of them and [`plot`] draws the results.

pub mod args;
pub mod consumer;
pub mod latency;
pub mod plot;
pub mod producer;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod transaction;
