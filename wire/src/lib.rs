//! RocketMQ's remoting protocol, byte for byte, with no I/O.
