//! The `stats` JSON bodies.
