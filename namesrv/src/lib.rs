//! The ringmq NameServer: a RocketMQ-compatible route registry, as a library (embedded by
//! `ringmq-broker standalone`) with a thin binary.
