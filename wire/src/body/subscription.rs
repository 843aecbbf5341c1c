//! The `subscription` JSON bodies.
