//! `ringmq-perf`: the pressure-test harness. RocketMQ's benchmark tools' options, statistics
//! and report lines ([`stats`]), with HdrHistogram percentiles on top ([`latency`]).

pub mod latency;
pub mod stats;
