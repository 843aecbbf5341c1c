//! Latency fault avoidance: brokers that recently failed or answered slowly are skipped for
//! a while when choosing a queue to send to.
//!
//! RocketMQ's `MQFaultStrategy` table: a send that took at least `LATENCY_MS[i]` makes the
//! broker unavailable for `NOT_AVAILABLE_MS[i]`; a failed send counts as a 10 s latency
//! (so 3 minutes out, as RocketMQ 5 does). Queue choice then goes round robin over the
//! queues of available brokers, avoiding the broker that failed the previous attempt of the
//! same send; if every broker is marked unavailable, any queue not on that broker is used,
//! and as a last resort any queue — never "no queue" while the route has one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::queue::MessageQueue;

/// Latency thresholds (ms), ascending.
pub const LATENCY_MS: [u64; 7] = [50, 100, 550, 1000, 2000, 3000, 15000];
/// Time out of rotation (ms) for a latency at or above the threshold of the same index.
pub const NOT_AVAILABLE_MS: [u64; 7] = [0, 0, 30_000, 60_000, 120_000, 180_000, 600_000];
/// The latency a failed send is charged with.
pub const FAILURE_LATENCY_MS: u64 = 10_000;
/// Brokers tracked at most; the oldest entries are forgotten beyond this.
pub const TRACKED_BROKERS_MAX: usize = 4096;

const _: () = assert!(LATENCY_MS.len() == NOT_AVAILABLE_MS.len());

/// How long a broker stays out of rotation after a send with this latency.
pub fn not_available_for(latency: Duration) -> Duration {
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    LATENCY_MS
        .iter()
        .zip(NOT_AVAILABLE_MS)
        .rev()
        .find(|(threshold, _)| latency_ms >= **threshold)
        .map_or(Duration::ZERO, |(_, ms)| Duration::from_millis(ms))
}

#[derive(Debug, Clone, Copy)]
struct FaultItem {
    available_at: Instant,
}

/// Per-broker availability, updated after every send.
#[derive(Debug, Default)]
pub struct FaultAvoidance {
    items: Mutex<HashMap<String, FaultItem>>,
}

impl FaultAvoidance {
    /// Records the outcome of a send to `broker_name` at `now`.
    pub fn record_at(&self, broker_name: &str, latency: Duration, failed: bool, now: Instant) {
        let charged = if failed {
            Duration::from_millis(FAILURE_LATENCY_MS).max(latency)
        } else {
            latency
        };
        let available_at = now + not_available_for(charged);
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() >= TRACKED_BROKERS_MAX && !items.contains_key(broker_name) {
            items.retain(|_, item| item.available_at > now);
        }
        if items.len() < TRACKED_BROKERS_MAX || items.contains_key(broker_name) {
            items.insert(broker_name.to_owned(), FaultItem { available_at });
        }
    }

    /// Records the outcome of a send that just finished.
    pub fn record(&self, broker_name: &str, latency: Duration, failed: bool) {
        self.record_at(broker_name, latency, failed, Instant::now());
    }

    /// Whether sends may go to `broker_name` at `now`.
    pub fn is_available_at(&self, broker_name: &str, now: Instant) -> bool {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items
            .get(broker_name)
            .is_none_or(|item| item.available_at <= now)
    }

    /// Whether sends may go to `broker_name` now.
    pub fn is_available(&self, broker_name: &str) -> bool {
        self.is_available_at(broker_name, Instant::now())
    }
}

/// Picks a queue, round robin from `start`: first a queue of an available broker other than
/// `avoid`, then any queue not on `avoid`, then any queue. `None` only if `queues` is empty.
pub fn pick_queue<'a>(
    queues: &'a [MessageQueue],
    start: usize,
    avoid: Option<&str>,
    is_available: impl Fn(&str) -> bool,
) -> Option<&'a MessageQueue> {
    let n = queues.len();
    let rotation = || (0..n).map(move |i| &queues[(start.wrapping_add(i)) % n]);
    let not_avoided = |queue: &&MessageQueue| Some(queue.broker_name.as_str()) != avoid;
    rotation()
        .filter(not_avoided)
        .find(|queue| is_available(&queue.broker_name))
        .or_else(|| rotation().find(not_avoided))
        .or_else(|| rotation().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_table_matches_rocketmq() {
        assert_eq!(not_available_for(Duration::from_millis(10)), Duration::ZERO);
        assert_eq!(
            not_available_for(Duration::from_millis(120)),
            Duration::ZERO
        );
        assert_eq!(
            not_available_for(Duration::from_millis(550)),
            Duration::from_secs(30)
        );
        assert_eq!(
            not_available_for(Duration::from_millis(2500)),
            Duration::from_secs(120)
        );
        assert_eq!(
            not_available_for(Duration::from_secs(20)),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn failed_and_slow_brokers_are_skipped_until_their_time_is_up() {
        let faults = FaultAvoidance::default();
        let now = Instant::now();
        faults.record_at("fast", Duration::from_millis(3), false, now);
        faults.record_at("failed", Duration::from_millis(3), true, now);
        faults.record_at("slow", Duration::from_millis(1200), false, now);
        assert!(faults.is_available_at("fast", now));
        assert!(faults.is_available_at("never-seen", now));
        assert!(!faults.is_available_at("failed", now + Duration::from_secs(179)));
        assert!(faults.is_available_at("failed", now + Duration::from_secs(180)));
        assert!(!faults.is_available_at("slow", now + Duration::from_secs(59)));
        assert!(faults.is_available_at("slow", now + Duration::from_secs(60)));
        // A later fast send puts a broker back at once.
        faults.record_at("slow", Duration::from_millis(1), false, now);
        assert!(faults.is_available_at("slow", now));
    }

    fn route() -> Vec<MessageQueue> {
        ["a", "b", "c"]
            .iter()
            .flat_map(|b| (0..2).map(move |q| MessageQueue::new("T", *b, q)))
            .collect()
    }

    #[test]
    fn pick_goes_round_robin_over_available_brokers() {
        let queues = route();
        let picked: Vec<_> = (0..6)
            .map(|i| pick_queue(&queues, i, None, |_| true).cloned())
            .collect();
        assert_eq!(picked, queues.iter().cloned().map(Some).collect::<Vec<_>>());
        for start in 0..12 {
            let queue = pick_queue(&queues, start, None, |b| b != "b").expect("queue");
            assert_ne!(queue.broker_name, "b");
        }
    }

    #[test]
    fn pick_avoids_the_broker_of_the_failed_attempt() {
        let queues = route();
        for start in 0..12 {
            let queue = pick_queue(&queues, start, Some("a"), |_| true).expect("queue");
            assert_ne!(queue.broker_name, "a");
        }
        // Everything unavailable: still not the failed broker.
        let queue = pick_queue(&queues, 0, Some("a"), |_| false).expect("queue");
        assert_ne!(queue.broker_name, "a");
        // A single-broker route: the failed broker is all there is.
        let single = &queues[..2];
        assert_eq!(
            pick_queue(single, 1, Some("a"), |_| false).map(|q| q.queue_id),
            Some(1)
        );
        assert!(pick_queue(&[], 0, None, |_| true).is_none());
    }
}
