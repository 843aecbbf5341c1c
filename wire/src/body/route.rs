//! The `route` JSON bodies.
