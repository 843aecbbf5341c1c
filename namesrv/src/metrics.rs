//! Process-wide counters of the NameServer, read by [`crate::NameServerHandle::stats`] and
//! logged once a minute (when there was traffic) by the scan task.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters (and one gauge), updated with relaxed atomics from every connection.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests received (oneway included).
    pub requests: AtomicU64,
    /// Responses with a code other than SUCCESS.
    pub error_responses: AtomicU64,
    /// `GET_ROUTEINFO_BY_TOPIC` requests.
    pub route_queries: AtomicU64,
    /// Route queries answered from the cache.
    pub route_cache_hits: AtomicU64,
    /// Connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections refused at the connection limit.
    pub connections_refused: AtomicU64,
    /// Connections closed because of a framing or header error.
    pub connections_closed_on_error: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
}

impl Counters {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
