//! `ringmq-perf`: the pressure-test harness. RocketMQ's benchmark tools' options
//! ([`args`]), statistics and report lines ([`stats`], [`report`]), with HdrHistogram
//! percentiles on top ([`latency`]); the tools themselves are [`producer`] and [`consumer`].

pub mod args;
pub mod consumer;
pub mod latency;
pub mod producer;
pub mod report;
pub mod stats;
