//! The rebalance lock manager of one shard, for orderly consumption
//! (`LOCK_BATCH_MQ` 41 / `UNLOCK_BATCH_MQ` 42): (group, queue) → the client holding it.
//!
//! Lives on its shard's thread. A lock not renewed for [`LOCK_MAX_LIVE_MS`] is free for
//! another client (RocketMQ's `rocketmq.broker.rebalance.lockMaxLiveTime`, 60 s); clients
//! renew every 20 s.

use std::collections::HashMap;

/// A lock not renewed for this long may be taken by another client.
pub const LOCK_MAX_LIVE_MS: u64 = 60_000;

/// Most locked queues per shard.
pub const LOCKS_MAX: usize = 1_000_000;

pub use ringmq_wire::body::consumer::MessageQueue;

#[derive(Debug, Clone)]
struct LockEntry {
    client_id: String,
    last_update_ms: u64,
}

impl LockEntry {
    fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_update_ms) > LOCK_MAX_LIVE_MS
    }
}

/// Queue locks held by clients of each group.
#[derive(Debug, Default)]
pub struct RebalanceLockManager {
    locks: HashMap<(String, MessageQueue), LockEntry>,
}

impl RebalanceLockManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks as many of `queues` as possible for `client_id` (`tryLockBatch`): queues it
    /// already holds are renewed, free or expired ones are taken, queues held live by
    /// another client are left out. Returns the queues now held by `client_id`.
    pub fn try_lock_batch(
        &mut self,
        group: &str,
        queues: &[MessageQueue],
        client_id: &str,
        now_ms: u64,
    ) -> Vec<MessageQueue> {
        let mut locked = Vec::with_capacity(queues.len());
        for queue in queues {
            let key = (group.to_owned(), queue.clone());
            match self.locks.get_mut(&key) {
                Some(entry) if entry.client_id == client_id => {
                    entry.last_update_ms = now_ms;
                    locked.push(queue.clone());
                }
                Some(entry) if entry.expired(now_ms) => {
                    tracing::warn!(target: "ringmq::server::lock", group, topic = %queue.topic,
                        queue = queue.queue_id, old = %entry.client_id, new = client_id,
                        "expired queue lock taken over");
                    entry.client_id = client_id.to_owned();
                    entry.last_update_ms = now_ms;
                    locked.push(queue.clone());
                }
                Some(_) => {}
                None => {
                    if self.locks.len() >= LOCKS_MAX {
                        self.purge_expired(now_ms);
                        if self.locks.len() >= LOCKS_MAX {
                            continue;
                        }
                    }
                    self.locks.insert(
                        key,
                        LockEntry {
                            client_id: client_id.to_owned(),
                            last_update_ms: now_ms,
                        },
                    );
                    locked.push(queue.clone());
                }
            }
        }
        locked
    }

    /// Releases the queues `client_id` holds among `queues`; others' locks are untouched.
    pub fn unlock_batch(&mut self, group: &str, queues: &[MessageQueue], client_id: &str) {
        for queue in queues {
            let key = (group.to_owned(), queue.clone());
            if self
                .locks
                .get(&key)
                .is_some_and(|e| e.client_id == client_id)
            {
                self.locks.remove(&key);
            }
        }
    }

    /// Whether `client_id` holds a live lock on `queue` for `group`.
    pub fn is_locked_by(
        &self,
        group: &str,
        queue: &MessageQueue,
        client_id: &str,
        now_ms: u64,
    ) -> bool {
        self.locks
            .get(&(group.to_owned(), queue.clone()))
            .is_some_and(|e| e.client_id == client_id && !e.expired(now_ms))
    }

    /// Drops expired locks (housekeeping; expiry is also checked on every lock attempt).
    pub fn purge_expired(&mut self, now_ms: u64) {
        self.locks.retain(|_, e| !e.expired(now_ms));
    }

    /// Number of lock entries (live or not yet purged).
    pub fn len(&self) -> usize {
        self.locks.len()
    }

    /// Whether no lock is recorded.
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(queue_id: i32) -> MessageQueue {
        MessageQueue {
            topic: "T".into(),
            broker_name: "b-s0".into(),
            queue_id,
        }
    }

    #[test]
    fn a_live_lock_is_not_given_to_another_client() {
        let mut locks = RebalanceLockManager::new();
        assert_eq!(
            locks.try_lock_batch("G", &[mq(0), mq(1)], "a", 0),
            vec![mq(0), mq(1)]
        );
        assert_eq!(
            locks.try_lock_batch("G", &[mq(1), mq(2)], "b", 1_000),
            vec![mq(2)]
        );
        assert!(locks.is_locked_by("G", &mq(1), "a", 1_000));
        // Another group is independent.
        assert_eq!(locks.try_lock_batch("H", &[mq(1)], "b", 1_000), vec![mq(1)]);
    }

    #[test]
    fn lock_expires_after_60_seconds_without_renewal() {
        let mut locks = RebalanceLockManager::new();
        locks.try_lock_batch("G", &[mq(0)], "a", 0);
        assert!(locks.try_lock_batch("G", &[mq(0)], "b", 60_000).is_empty());
        assert!(!locks.is_locked_by("G", &mq(0), "a", 60_001));
        assert_eq!(
            locks.try_lock_batch("G", &[mq(0)], "b", 60_001),
            vec![mq(0)]
        );
        assert!(locks.is_locked_by("G", &mq(0), "b", 60_001));
    }

    #[test]
    fn renewal_keeps_the_lock_alive() {
        let mut locks = RebalanceLockManager::new();
        locks.try_lock_batch("G", &[mq(0)], "a", 0);
        locks.try_lock_batch("G", &[mq(0)], "a", 50_000);
        assert!(locks.try_lock_batch("G", &[mq(0)], "b", 100_000).is_empty());
    }

    #[test]
    fn unlock_releases_only_own_locks() {
        let mut locks = RebalanceLockManager::new();
        locks.try_lock_batch("G", &[mq(0)], "a", 0);
        locks.unlock_batch("G", &[mq(0)], "b");
        assert!(locks.is_locked_by("G", &mq(0), "a", 1));
        locks.unlock_batch("G", &[mq(0)], "a");
        assert!(locks.is_empty());
        assert_eq!(locks.try_lock_batch("G", &[mq(0)], "b", 2), vec![mq(0)]);
    }
}
