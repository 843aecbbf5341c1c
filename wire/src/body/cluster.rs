//! The `cluster` JSON bodies.
