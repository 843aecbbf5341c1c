//! Broker features built on the core send/pull path: message filters (SQL92).

pub mod filter;
