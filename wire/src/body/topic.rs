//! The `topic` JSON bodies.
