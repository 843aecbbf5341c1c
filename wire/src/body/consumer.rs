//! The `consumer` JSON bodies.
