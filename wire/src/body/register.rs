//! The `register` JSON bodies.
