//! RocketMQ benchmark statistics: a snapshot of cumulative counters every second, a sliding
//! window of the last ten, and one report line per interval in RocketMQ 5.x's exact format
//! (`example/.../benchmark/{Producer,Consumer,TransactionProducer,BatchProducer}.java`).
//!
//! Rates are `(last − first) / (t_last − t_first) × 1000`, truncated, over the window; a line
//! is printed only once the window is full (so the first appears after ~10 s), as RocketMQ
//! does. Where RocketMQ would print `NaN` (no message in the window) we print `0.000`, so
//! that scripts parsing the numbers keep working.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

/// Snapshots kept in the sliding window (RocketMQ keeps 10, one per second).
pub const WINDOW_SNAPSHOTS: usize = 10;

/// Cumulative counters shared by all sender/consumer tasks, in RocketMQ's order.
#[derive(Debug)]
pub struct Counters<const N: usize> {
    values: [AtomicU64; N],
    /// Largest latency seen (ms); for the producer this is cumulative, for the others it is
    /// reset after each printed line.
    max_ms: AtomicU64,
    /// Second maximum (the consumer's MAX(S2C)).
    max2_ms: AtomicU64,
}

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Counters {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
            max_ms: AtomicU64::new(0),
            max2_ms: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Counters<N> {
    /// Adds `by` to counter `index`.
    pub fn add(&self, index: usize, by: u64) {
        self.values[index].fetch_add(by, Ordering::Relaxed);
    }

    /// Raises the first maximum to `ms` if larger.
    pub fn observe_max(&self, ms: u64) {
        self.max_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Raises the second maximum to `ms` if larger.
    pub fn observe_max2(&self, ms: u64) {
        self.max2_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The current values, stamped with `at_ms`.
    pub fn snapshot(&self, at_ms: u64) -> Snapshot<N> {
        Snapshot {
            at_ms,
            values: std::array::from_fn(|i| self.values[i].load(Ordering::Relaxed)),
        }
    }

    /// The maxima, resetting them to zero.
    pub fn take_maxima(&self) -> (u64, u64) {
        (
            self.max_ms.swap(0, Ordering::Relaxed),
            self.max2_ms.swap(0, Ordering::Relaxed),
        )
    }

    /// The maxima, leaving them in place.
    pub fn maxima(&self) -> (u64, u64) {
        (
            self.max_ms.load(Ordering::Relaxed),
            self.max2_ms.load(Ordering::Relaxed),
        )
    }
}

/// Cumulative counter values at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot<const N: usize> {
    /// Wall-clock milliseconds when taken.
    pub at_ms: u64,
    /// The counters.
    pub values: [u64; N],
}

/// The sliding window of the last [`WINDOW_SNAPSHOTS`] snapshots.
#[derive(Debug, Clone)]
pub struct Window<const N: usize> {
    snapshots: VecDeque<Snapshot<N>>,
}

impl<const N: usize> Default for Window<N> {
    fn default() -> Self {
        Window {
            snapshots: VecDeque::with_capacity(WINDOW_SNAPSHOTS + 1),
        }
    }
}

impl<const N: usize> Window<N> {
    /// Adds a snapshot, dropping the oldest beyond the window size.
    pub fn push(&mut self, snapshot: Snapshot<N>) {
        self.snapshots.push_back(snapshot);
        while self.snapshots.len() > WINDOW_SNAPSHOTS {
            self.snapshots.pop_front();
        }
    }

    /// Whether the window is full (RocketMQ prints only then).
    pub fn is_full(&self) -> bool {
        self.snapshots.len() == WINDOW_SNAPSHOTS
    }

    /// How many snapshots it holds.
    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }

    /// The first and last snapshots, if there are at least two.
    pub fn span(&self) -> Option<Delta<N>> {
        let first = self.snapshots.front()?;
        let last = self.snapshots.back()?;
        (self.snapshots.len() >= 2).then_some(Delta {
            first: *first,
            last: *last,
        })
    }
}

/// Differences between the first and last snapshot of a window.
#[derive(Debug, Clone, Copy)]
pub struct Delta<const N: usize> {
    /// Oldest snapshot.
    pub first: Snapshot<N>,
    /// Newest snapshot.
    pub last: Snapshot<N>,
}

impl<const N: usize> Delta<N> {
    /// Growth of counter `index` over the window.
    pub fn of(&self, index: usize) -> u64 {
        self.last.values[index].saturating_sub(self.first.values[index])
    }

    /// `Δcounter / Δt × 1000`, truncated, as RocketMQ computes a TPS.
    pub fn rate(&self, index: usize) -> u64 {
        let elapsed_ms = self.last.at_ms.saturating_sub(self.first.at_ms);
        if elapsed_ms == 0 {
            return 0;
        }
        ((self.of(index) as f64 / elapsed_ms as f64) * 1000.0) as u64
    }

    /// `Δnumerator / Δdenominator` as a float; 0 when the denominator did not grow.
    pub fn ratio(&self, numerator: usize, denominator: usize) -> f64 {
        match self.of(denominator) {
            0 => 0.0,
            d => self.of(numerator) as f64 / d as f64,
        }
    }
}

/// Producer counters: `[success, send failed, response failed, total RT ms]`.
pub mod producer {
    /// Successful sends.
    pub const SUCCESS: usize = 0;
    /// Sends that failed in the client or the network.
    pub const SEND_FAILED: usize = 1;
    /// Sends the broker answered with an error.
    pub const RESPONSE_FAILED: usize = 2;
    /// Sum of successful sends' RT in ms.
    pub const RT_TOTAL_MS: usize = 3;
    /// Counter count.
    pub const N: usize = 4;
}

/// The producer's periodic line (RocketMQ 5.1+).
pub fn producer_line(now: &str, delta: &Delta<{ producer::N }>, max_rt_ms: u64) -> String {
    format!(
        "Current Time: {now} | Send TPS: {} | Max RT(ms): {max_rt_ms} | Average RT(ms): {:7.3} | Send Failed: {} | Response Failed: {}",
        delta.rate(producer::SUCCESS),
        delta.ratio(producer::RT_TOTAL_MS, producer::SUCCESS),
        delta.last.values[producer::SEND_FAILED],
        delta.last.values[producer::RESPONSE_FAILED],
    )
}

/// The producer's final line once `-q` messages were sent.
pub fn producer_complete_line(window: &Window<{ producer::N }>, max_rt_ms: u64) -> Option<String> {
    let last = window.snapshots.back()?;
    let total = last.values[producer::SUCCESS] + last.values[producer::SEND_FAILED];
    Some(match window.span() {
        Some(delta) => format!(
            "[Complete] Send Total: {total} | Send TPS: {} | Max RT(ms): {max_rt_ms} | Average RT(ms): {:7.3} | Send Failed: {} | Response Failed: {}",
            delta.rate(producer::SUCCESS),
            delta.ratio(producer::RT_TOTAL_MS, producer::SUCCESS),
            last.values[producer::SEND_FAILED],
            last.values[producer::RESPONSE_FAILED],
        ),
        None => format!(
            "[Complete] Send Total: {total} Send Failed: {} Response Failed: {}",
            last.values[producer::SEND_FAILED],
            last.values[producer::RESPONSE_FAILED],
        ),
    })
}

/// Consumer counters: `[received, B2C total ms, S2C total ms, failed]`.
pub mod consumer {
    /// Messages received.
    pub const RECEIVED: usize = 0;
    /// Sum of born-to-consume latencies (ms).
    pub const B2C_TOTAL_MS: usize = 1;
    /// Sum of store-to-consume latencies (ms).
    pub const S2C_TOTAL_MS: usize = 2;
    /// Messages whose listener asked for a retry.
    pub const FAILED: usize = 3;
    /// Counter count.
    pub const N: usize = 4;
}

/// The consumer's periodic line (RocketMQ 5.1+); maxima are per interval.
pub fn consumer_line(
    now: &str,
    delta: &Delta<{ consumer::N }>,
    max_b2c_ms: u64,
    max_s2c_ms: u64,
) -> String {
    format!(
        "Current Time: {now} | Consume TPS: {} | AVG(B2C) RT(ms): {:7.3} | AVG(S2C) RT(ms): {:7.3} | MAX(B2C) RT(ms): {max_b2c_ms} | MAX(S2C) RT(ms): {max_s2c_ms} | Consume Fail: {}",
        delta.rate(consumer::RECEIVED),
        delta.ratio(consumer::B2C_TOTAL_MS, consumer::RECEIVED),
        delta.ratio(consumer::S2C_TOTAL_MS, consumer::RECEIVED),
        delta.of(consumer::FAILED),
    )
}

/// Transaction producer counters.
pub mod transaction {
    /// Sends answered SEND_OK.
    pub const SUCCESS: usize = 0;
    /// Failed sends.
    pub const FAILED: usize = 1;
    /// Sum of successful sends' RT in ms.
    pub const RT_TOTAL_MS: usize = 2;
    /// Transaction checks received.
    pub const CHECK: usize = 3;
    /// Checks for messages whose outcome was already final.
    pub const UNEXPECTED_CHECK: usize = 4;
    /// Checks received more than once for the same message and round.
    pub const DUPLICATED_CHECK: usize = 5;
    /// Counter count.
    pub const N: usize = 6;
}

/// The transaction producer's periodic line (RocketMQ 5.1+); everything is per window.
pub fn transaction_line(now: &str, delta: &Delta<{ transaction::N }>, max_rt_ms: u64) -> String {
    format!(
        "Current Time: {now} | Send TPS: {:5} | Max RT(ms): {max_rt_ms:5} | AVG RT(ms): {:3.1} | Send Failed: {} | Check: {} | UnexpectedCheck: {} | DuplicatedCheck: {}",
        delta.rate(transaction::SUCCESS),
        delta.ratio(transaction::RT_TOTAL_MS, transaction::SUCCESS),
        delta.of(transaction::FAILED),
        delta.of(transaction::CHECK),
        delta.of(transaction::UNEXPECTED_CHECK),
        delta.of(transaction::DUPLICATED_CHECK),
    )
}

/// Batch producer counters.
pub mod batch {
    /// Successful batch requests.
    pub const SUCCESS: usize = 0;
    /// Messages in successful batches.
    pub const MESSAGES: usize = 1;
    /// Sum of successful requests' RT in ms.
    pub const RT_TOTAL_MS: usize = 2;
    /// Failed requests.
    pub const FAILED: usize = 3;
    /// Messages in failed requests.
    pub const MESSAGES_FAILED: usize = 4;
    /// Counter count.
    pub const N: usize = 5;
}

/// The batch producer's periodic line (RocketMQ 5.1+).
pub fn batch_line(now: &str, delta: &Delta<{ batch::N }>, max_rt_ms: u64) -> String {
    format!(
        "Current Time: {now} | Send TPS: {} | Send MPS: {} | Max RT(ms): {max_rt_ms} | Average RT(ms): {:7.3} | Average Message RT(ms): {:7.3} | Send Failed: {} | Send Message Failed: {}",
        delta.rate(batch::SUCCESS),
        delta.rate(batch::MESSAGES),
        delta.ratio(batch::RT_TOTAL_MS, batch::SUCCESS),
        delta.ratio(batch::RT_TOTAL_MS, batch::MESSAGES),
        delta.last.values[batch::FAILED],
        delta.last.values[batch::MESSAGES_FAILED],
    )
}

/// RocketMQ's `yyyy-MM-dd HH:mm:ss,SSS` local time.
pub fn current_time() -> String {
    chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S,%3f")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window_of<const N: usize>(points: &[(u64, [u64; N])]) -> Window<N> {
        let mut window = Window::default();
        for (at_ms, values) in points {
            window.push(Snapshot {
                at_ms: *at_ms,
                values: *values,
            });
        }
        window
    }

    #[test]
    fn window_keeps_the_last_ten() {
        let mut window = Window::<1>::default();
        for i in 0..25u64 {
            window.push(Snapshot {
                at_ms: i * 1000,
                values: [i * 7],
            });
            assert_eq!(window.is_full(), i >= 9);
        }
        let delta = window.span().unwrap();
        assert_eq!(delta.first.at_ms, 15_000);
        assert_eq!(delta.last.at_ms, 24_000);
        // 9 s, 63 messages: 7/s exactly.
        assert_eq!(delta.rate(0), 7);
    }

    /// Hand-computed: 9 000 ms, 45 001 sends, 90 007 ms of RT in total.
    #[test]
    fn producer_line_arithmetic() {
        let window = window_of(&[(1_000, [10, 1, 2, 20]), (10_000, [45_011, 3, 4, 90_027])]);
        let delta = window.span().unwrap();
        // 45001 / 9000 * 1000 = 5000.11 -> 5000; 90007 / 45001 = 2.000111 -> "  2.000"
        assert_eq!(
            producer_line("T", &delta, 17),
            "Current Time: T | Send TPS: 5000 | Max RT(ms): 17 | Average RT(ms):   2.000 | Send Failed: 3 | Response Failed: 4"
        );
        assert_eq!(
            producer_complete_line(&window, 17).unwrap(),
            "[Complete] Send Total: 45014 | Send TPS: 5000 | Max RT(ms): 17 | Average RT(ms):   2.000 | Send Failed: 3 | Response Failed: 4"
        );
        let single = window_of(&[(1_000, [5, 1, 0, 9])]);
        assert_eq!(
            producer_complete_line(&single, 0).unwrap(),
            "[Complete] Send Total: 6 Send Failed: 1 Response Failed: 0"
        );
    }

    #[test]
    fn consumer_line_arithmetic_and_empty_window() {
        let delta = window_of(&[(0, [0, 0, 0, 0]), (2_000, [300, 1_200, 450, 7])])
            .span()
            .unwrap();
        // 300 / 2 s = 150/s; B2C 1200/300 = 4.0; S2C 450/300 = 1.5
        assert_eq!(
            consumer_line("T", &delta, 9, 5),
            "Current Time: T | Consume TPS: 150 | AVG(B2C) RT(ms):   4.000 | AVG(S2C) RT(ms):   1.500 | MAX(B2C) RT(ms): 9 | MAX(S2C) RT(ms): 5 | Consume Fail: 7"
        );
        let idle = window_of(&[(0, [5, 5, 5, 0]), (1_000, [5, 5, 5, 0])])
            .span()
            .unwrap();
        assert!(
            consumer_line("T", &idle, 0, 0).contains("Consume TPS: 0 | AVG(B2C) RT(ms):   0.000")
        );
    }

    #[test]
    fn transaction_and_batch_lines() {
        let delta = window_of(&[(0, [0, 0, 0, 0, 0, 0]), (1_000, [12, 1, 30, 4, 0, 1])])
            .span()
            .unwrap();
        assert_eq!(
            transaction_line("T", &delta, 8),
            "Current Time: T | Send TPS:    12 | Max RT(ms):     8 | AVG RT(ms): 2.5 | Send Failed: 1 | Check: 4 | UnexpectedCheck: 0 | DuplicatedCheck: 1"
        );
        let delta = window_of(&[(0, [0, 0, 0, 0, 0]), (4_000, [100, 1_600, 500, 2, 32])])
            .span()
            .unwrap();
        assert_eq!(
            batch_line("T", &delta, 30),
            "Current Time: T | Send TPS: 25 | Send MPS: 400 | Max RT(ms): 30 | Average RT(ms):   5.000 | Average Message RT(ms):   0.312 | Send Failed: 2 | Send Message Failed: 32"
        );
    }

    #[test]
    fn maxima_reset_only_when_taken() {
        let counters = Counters::<1>::default();
        counters.observe_max(5);
        counters.observe_max(3);
        counters.observe_max2(9);
        assert_eq!(counters.maxima(), (5, 9));
        assert_eq!(counters.take_maxima(), (5, 9));
        assert_eq!(counters.maxima(), (0, 0));
        counters.add(0, 4);
        assert_eq!(counters.snapshot(1).values, [4]);
    }
}
