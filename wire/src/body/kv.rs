//! The `kv` JSON bodies.
