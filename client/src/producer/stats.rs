//! Send statistics of a producer: counts and a latency histogram, updated lock-free on every
//! send attempt and read with [`crate::producer::Producer::stats`].
//!
//! Buckets are powers of two of microseconds (bucket `i` holds latencies below `2^i` µs,
//! the last one everything above ~17 min), so percentiles are within a factor of two;
//! `ringmq-perf` keeps its own HdrHistogram for exact figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Number of latency buckets.
pub const LATENCY_BUCKETS: usize = 31;

/// Live counters (shared by all clones of a producer).
#[derive(Debug)]
pub struct SendStats {
    sent: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    bytes: AtomicU64,
    latency_us_total: AtomicU64,
    latency_us_max: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS],
}

impl Default for SendStats {
    fn default() -> Self {
        SendStats {
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            latency_us_total: AtomicU64::new(0),
            latency_us_max: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendStatsSnapshot {
    /// Sends that succeeded.
    pub sent: u64,
    /// Sends that failed after all attempts.
    pub failed: u64,
    /// Attempts retried on another broker.
    pub retried: u64,
    /// Body bytes of successful sends (as sent, i.e. compressed if compressed).
    pub bytes: u64,
    /// Sum of successful send latencies (µs), each measured from the moment the send held
    /// a slot of the in-flight window to the broker's answer.
    pub latency_us_total: u64,
    /// Largest successful send latency (µs).
    pub latency_us_max: u64,
    /// Successful sends per latency bucket (bucket `i`: below `2^i` µs).
    pub buckets: [u64; LATENCY_BUCKETS],
}

impl SendStats {
    /// Records a successful send.
    pub fn record_success(&self, latency: Duration, body_bytes: usize) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(body_bytes as u64, Ordering::Relaxed);
        self.latency_us_total.fetch_add(us, Ordering::Relaxed);
        self.latency_us_max.fetch_max(us, Ordering::Relaxed);
        let bucket = (64 - us.leading_zeros() as usize).min(LATENCY_BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Records a send that failed for good.
    pub fn record_failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a retried attempt.
    pub fn record_retry(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> SendStatsSnapshot {
        SendStatsSnapshot {
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            latency_us_total: self.latency_us_total.load(Ordering::Relaxed),
            latency_us_max: self.latency_us_max.load(Ordering::Relaxed),
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
        }
    }
}

impl SendStatsSnapshot {
    /// Upper bound (µs) of the latency below which `quantile` (0..=1) of successful sends
    /// fell; `None` before the first success.
    pub fn latency_us_quantile(&self, quantile: f64) -> Option<u64> {
        if self.sent == 0 {
            return None;
        }
        let target = (quantile.clamp(0.0, 1.0) * self.sent as f64)
            .ceil()
            .max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= target {
                return Some(1u64 << i);
            }
        }
        Some(self.latency_us_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_quantiles() {
        let stats = SendStats::default();
        assert_eq!(stats.snapshot().latency_us_quantile(0.5), None);
        for us in [100, 200, 300, 5000] {
            stats.record_success(Duration::from_micros(us), 10);
        }
        stats.record_failure();
        stats.record_retry();
        let snapshot = stats.snapshot();
        assert_eq!(
            (snapshot.sent, snapshot.failed, snapshot.retried),
            (4, 1, 1)
        );
        assert_eq!(snapshot.bytes, 40);
        assert_eq!(snapshot.latency_us_max, 5000);
        // 100 µs is below 128 µs and 200 µs below 256 µs: the median is below 256 µs.
        assert_eq!(snapshot.latency_us_quantile(0.5), Some(256));
        assert_eq!(snapshot.latency_us_quantile(1.0), Some(8192));
    }
}
