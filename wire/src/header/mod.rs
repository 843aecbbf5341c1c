//! Typed request and response headers, one module per command family.
