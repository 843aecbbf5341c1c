//! The long-poll registry of one shard (RocketMQ's `PullRequestHoldService`): pulls that
//! found nothing wait here, keyed by topic and queue, until a message is appended to that
//! queue past the offset they asked for, or until their suspend timeout.
//!
//! Lives on its shard's thread. Bounded by `limits.max_pending_pulls`: when full, a pull is
//! not parked and the caller answers it at once. The registry holds an opaque payload per
//! pull (the request to re-run) and hands it back on wake-up or expiry; it never answers
//! anything itself.

use std::collections::{BTreeSet, HashMap};

use crate::server::ConnId;

/// One parked pull.
#[derive(Debug)]
struct Parked<T> {
    key: (String, i32),
    offset: i64,
    deadline_ms: u64,
    conn: ConnId,
    payload: T,
}

/// Why a pull woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeReason {
    /// A message arrived past the requested offset.
    Arrival,
    /// The suspend timeout passed.
    Timeout,
}

/// Pulls waiting for messages.
#[derive(Debug)]
pub struct LongPollRegistry<T> {
    by_queue: HashMap<(String, i32), Vec<u64>>,
    entries: HashMap<u64, Parked<T>>,
    deadlines: BTreeSet<(u64, u64)>,
    next_id: u64,
    capacity: usize,
}

impl<T> LongPollRegistry<T> {
    /// An empty registry holding at most `capacity` pulls.
    pub fn new(capacity: usize) -> Self {
        LongPollRegistry {
            by_queue: HashMap::new(),
            entries: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_id: 0,
            capacity,
        }
    }

    /// Parks a pull for `offset` on `topic`/`queue_id` until `deadline_ms`. When the
    /// registry is full the payload is handed back (`Err`) and the caller answers at once.
    pub fn park(
        &mut self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        conn: ConnId,
        deadline_ms: u64,
        payload: T,
    ) -> Result<u64, T> {
        if self.entries.len() >= self.capacity {
            tracing::warn!(target: "ringmq::server::long_poll", capacity = self.capacity,
                "long-poll registry full; answering pull at once");
            return Err(payload);
        }
        let id = self.next_id;
        self.next_id += 1;
        let key = (topic.to_owned(), queue_id);
        self.by_queue.entry(key.clone()).or_default().push(id);
        self.deadlines.insert((deadline_ms, id));
        self.entries.insert(
            id,
            Parked {
                key,
                offset,
                deadline_ms,
                conn,
                payload,
            },
        );
        Ok(id)
    }

    /// A message was appended to `topic`/`queue_id` and the queue now ends at
    /// `max_offset`: returns the payloads of the pulls that asked for an offset below it.
    pub fn notify_arrival(&mut self, topic: &str, queue_id: i32, max_offset: i64) -> Vec<T> {
        let key = (topic.to_owned(), queue_id);
        let Some(ids) = self.by_queue.get_mut(&key) else {
            return Vec::new();
        };
        let entries = &self.entries;
        let (ready, waiting): (Vec<u64>, Vec<u64>) = ids
            .iter()
            .partition(|id| entries.get(id).is_some_and(|p| p.offset < max_offset));
        if waiting.is_empty() {
            self.by_queue.remove(&key);
        } else {
            *ids = waiting;
        }
        ready
            .into_iter()
            .filter_map(|id| self.take(id, false))
            .collect()
    }

    /// Returns the payloads of pulls whose deadline is at or before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) -> Vec<T> {
        let due: Vec<u64> = self
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .map(|(_, id)| *id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.take(id, true))
            .collect()
    }

    /// Drops the pulls of a closed connection (nobody is left to answer).
    pub fn connection_closed(&mut self, conn: ConnId) -> usize {
        let ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, p)| p.conn == conn)
            .map(|(id, _)| *id)
            .collect();
        let count = ids.len();
        for id in ids {
            self.take(id, true);
        }
        count
    }

    /// The earliest deadline, for the executor's timer.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Pulls parked now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes entry `id`; `unlink` also removes it from its queue's list.
    fn take(&mut self, id: u64, unlink: bool) -> Option<T> {
        let parked = self.entries.remove(&id)?;
        self.deadlines.remove(&(parked.deadline_ms, id));
        if unlink && let Some(ids) = self.by_queue.get_mut(&parked.key) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_queue.remove(&parked.key);
            }
        }
        Some(parked.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_wakes_only_pulls_below_the_new_max_on_that_queue() {
        let mut registry = LongPollRegistry::new(10);
        registry
            .park("T", 0, 5, ConnId(1), 1_000, "a")
            .expect("parked");
        registry
            .park("T", 0, 9, ConnId(1), 1_000, "b")
            .expect("parked");
        registry
            .park("T", 1, 0, ConnId(2), 1_000, "c")
            .expect("parked");
        assert_eq!(registry.notify_arrival("T", 0, 6), vec!["a"]);
        assert_eq!(registry.len(), 2);
        assert!(registry.notify_arrival("U", 0, 100).is_empty());
        assert_eq!(registry.notify_arrival("T", 0, 10), vec!["b"]);
        assert_eq!(registry.notify_arrival("T", 1, 1), vec!["c"]);
        assert!(registry.is_empty());
        assert_eq!(registry.next_deadline_ms(), None);
    }

    #[test]
    fn pulls_expire_at_their_suspend_deadline() {
        let mut registry = LongPollRegistry::new(10);
        registry
            .park("T", 0, 0, ConnId(1), 15_000, 1)
            .expect("parked");
        registry
            .park("T", 0, 0, ConnId(1), 20_000, 2)
            .expect("parked");
        assert_eq!(registry.next_deadline_ms(), Some(15_000));
        assert!(registry.expire(14_999).is_empty());
        assert_eq!(registry.expire(15_000), vec![1]);
        assert_eq!(registry.expire(30_000), vec![2]);
        assert!(registry.notify_arrival("T", 0, 10).is_empty());
    }

    #[test]
    fn full_registry_hands_the_pull_back() {
        let mut registry = LongPollRegistry::new(1);
        registry
            .park("T", 0, 0, ConnId(1), 10, "a")
            .expect("parked");
        assert_eq!(registry.park("T", 0, 0, ConnId(1), 10, "b"), Err("b"));
    }

    #[test]
    fn closed_connection_drops_its_pulls() {
        let mut registry = LongPollRegistry::new(10);
        registry
            .park("T", 0, 0, ConnId(1), 10, "a")
            .expect("parked");
        registry
            .park("T", 0, 0, ConnId(2), 10, "b")
            .expect("parked");
        assert_eq!(registry.connection_closed(ConnId(1)), 1);
        assert_eq!(registry.notify_arrival("T", 0, 1), vec!["b"]);
    }
}
