//! Latency percentiles on top of RocketMQ's averages: an HdrHistogram of microseconds,
//! summarised at the end of a run.

use hdrhistogram::Histogram;

/// Highest latency recorded exactly (60 s); larger values are clamped to it, so one stuck
/// request cannot make the histogram fail.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// A latency histogram in microseconds, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            // 1 µs .. 60 s at 3 significant digits is a valid configuration by construction.
            histogram: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                .unwrap_or_else(|e| panic!("histogram bounds are constant and valid: {e}")),
        }
    }
}

/// The percentiles reported at the end of a run, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// 99.99th percentile.
    pub p9999_us: u64,
    /// Largest sample.
    pub max_us: u64,
    /// Mean, in µs (exact RTs, unlike RocketMQ's Average RT, which sums whole ms).
    pub mean_us: f64,
}

impl Latency {
    /// Records one latency.
    pub fn record_us(&mut self, us: u64) {
        self.histogram
            .saturating_record(us.clamp(1, LATENCY_US_MAX));
    }

    /// Adds another histogram's samples (e.g. one per sender task).
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    /// The percentiles.
    pub fn summary(&self) -> Summary {
        let h = &self.histogram;
        Summary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            p9999_us: h.value_at_quantile(0.9999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

impl Summary {
    /// One human-readable line, in milliseconds like RocketMQ's RT fields.
    pub fn line(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "Latency(ms) | samples: {} | p50: {:.3} | p90: {:.3} | p99: {:.3} | p999: {:.3} | p9999: {:.3} | max: {:.3}",
            self.count,
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.p9999_us),
            ms(self.max_us)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut latency = Latency::default();
        for us in 1..=10_000u64 {
            latency.record_us(us);
        }
        let summary = latency.summary();
        assert_eq!(summary.count, 10_000);
        // 3 significant digits: within 0.1 % of the exact value.
        assert!((4_995..=5_005).contains(&summary.p50_us), "{summary:?}");
        assert!((9_890..=9_910).contains(&summary.p99_us), "{summary:?}");
        assert!((9_995..=10_010).contains(&summary.max_us), "{summary:?}");
    }

    #[test]
    fn merge_and_clamp() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        a.record_us(0);
        b.record_us(u64::MAX);
        a.merge(&b);
        let summary = a.summary();
        assert_eq!(summary.count, 2);
        assert!(summary.max_us >= LATENCY_US_MAX);
        assert!(
            summary
                .line()
                .starts_with("Latency(ms) | samples: 2 | p50: 0.001")
        );
    }
}
