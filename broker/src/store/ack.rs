//! Pending acknowledgements, released in append order as the ack offset advances.
//!
//! The server keeps one `PendingAcks` per shard: after each `append` it pushes the ticket
//! with whatever it needs to answer the producer (connection, opaque, …); after each
//! `commit_step` it drains the entries the new ack offset covers and sends the responses.
//! Its length is bounded by the store's in-flight budget: appends past it are refused.

use std::collections::VecDeque;

use super::AppendTicket;

/// Acknowledgements waiting for the disk, oldest first.
#[derive(Debug)]
pub struct PendingAcks<T> {
    queue: VecDeque<(u64, T)>,
}

impl<T> Default for PendingAcks<T> {
    fn default() -> Self {
        PendingAcks {
            queue: VecDeque::new(),
        }
    }
}

impl<T> PendingAcks<T> {
    /// An empty queue.
    pub fn new() -> Self {
        PendingAcks::default()
    }

    /// Adds the acknowledgement of an append. Tickets arrive in append order.
    pub fn push(&mut self, ticket: &AppendTicket, value: T) {
        let end = ticket.end_offset();
        if let Some((last, _)) = self.queue.back() {
            assert!(end > *last, "tickets must be pushed in append order");
        }
        self.queue.push_back((end, value));
    }

    /// Removes and returns, in append order, every entry covered by `ack_offset`.
    pub fn drain_acknowledged(&mut self, ack_offset: u64) -> impl Iterator<Item = T> + '_ {
        let n = self.queue.partition_point(|(end, _)| *end <= ack_offset);
        self.queue.drain(..n).map(|(_, v)| v)
    }

    /// Entries still waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::io::block_on;
    use crate::store::sim::SimFs;
    use crate::store::{AppendMessage, FlushMode, Store, StoreConfig};

    #[test]
    fn acks_leave_in_append_order_once_covered() {
        let config = StoreConfig {
            flush_mode: FlushMode::Sync,
            ..StoreConfig::for_tests("/s")
        };
        let mut store = block_on(Store::open(SimFs::new(1), config)).unwrap();
        let mut acks = PendingAcks::new();
        for i in 0..5 {
            let t = store.append(&AppendMessage::new("T", i % 2, b"x")).unwrap();
            acks.push(&t, i);
        }
        assert_eq!(acks.drain_acknowledged(store.ack_offset()).count(), 0);
        let ack = block_on(store.commit_step()).unwrap();
        assert_eq!(
            acks.drain_acknowledged(ack).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(acks.is_empty());
    }
}
