//! Queue selectors for ordered sends: the same key always goes to the same queue while the
//! route does not change, so messages with one key are stored (and consumed) in order.

use std::sync::Arc;

use crate::queue::MessageQueue;

/// Chooses the queue of a send among the topic's writable queues (sorted by broker name,
/// then queue id): returns an index into `queues`, or `None` to refuse the send.
pub type QueueSelector = Arc<dyn Fn(&[MessageQueue]) -> Option<usize> + Send + Sync>;

pub use ringmq_wire::record::java_string_hash;

/// RocketMQ's `SelectMessageQueueByHash`: `abs(hashCode(key)) % queues`. `None` if there are
/// no queues.
pub fn index_by_key_hash(key: &str, queue_count: usize) -> Option<usize> {
    if queue_count == 0 {
        return None;
    }
    // Java's Math.abs(Integer.MIN_VALUE) is negative and then `% n` is negative or zero;
    // unsigned_abs keeps the index valid where Java would throw.
    let hash = java_string_hash(key).unsigned_abs() as usize;
    Some(hash % queue_count)
}

/// A selector sending every message with `key` to the same queue.
pub fn by_key_hash(key: impl Into<String>) -> QueueSelector {
    let key = key.into();
    Arc::new(move |queues: &[MessageQueue]| index_by_key_hash(&key, queues.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_known_values() {
        // "hello".hashCode() == 99162322, "".hashCode() == 0, "polygenelubricants" == i32::MIN.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // Non-BMP characters hash by their surrogate pair, as in Java.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn same_key_same_queue_and_index_in_range() {
        let queues: Vec<_> = (0..8).map(|q| MessageQueue::new("T", "b", q)).collect();
        let selector = by_key_hash("order-42");
        let first = selector(&queues).expect("index");
        assert!(first < 8);
        for _ in 0..10 {
            assert_eq!(selector(&queues), Some(first));
        }
        assert_eq!(index_by_key_hash("polygenelubricants", 8), Some(0));
        assert_eq!(index_by_key_hash("hello", 8), Some(99_162_322 % 8));
        assert_eq!(index_by_key_hash("k", 0), None);
    }
}
