//! The `heartbeat` JSON bodies.
