//! [`ProcessQueue`]: the messages pulled from one queue and not yet consumed, RocketMQ's
//! `ProcessQueue`.
//!
//! The pull loop puts messages in; consumption removes them. The offset to commit is the
//! smallest offset still held (so a crash re-delivers, never loses: at-least-once), or one
//! past the largest offset seen when nothing is held. Flow control reads the count, the
//! bytes and the span (largest − smallest offset held). Orderly consumption takes messages
//! out in offset order into a "consuming" set, then commits or rolls them back.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use ringmq_wire::body::client::ProcessQueueInfo;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::consumer::message_ext::MessageExt;

#[derive(Default)]
struct State {
    held: BTreeMap<i64, MessageExt>,
    consuming: BTreeMap<i64, MessageExt>,
    held_bytes: usize,
    max_offset_seen: Option<i64>,
    last_lock: Option<Instant>,
}

/// Messages of one owned queue in flight between pull and consumption.
#[derive(Default)]
pub struct ProcessQueue {
    state: Mutex<State>,
    dropped: AtomicBool,
    locked: AtomicBool,
    /// When the last pull of this queue answered, ms since the epoch (0: never).
    last_pull_ms: AtomicI64,
    /// When messages of this queue were last consumed, ms since the epoch (0: never).
    last_consume_ms: AtomicI64,
    /// Woken when messages arrive (orderly consumption waits on it).
    pub(crate) arrived: Notify,
    /// Serializes orderly consumption of this queue.
    pub(crate) consume_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ProcessQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessQueue")
            .field("count", &self.count())
            .field("dropped", &self.is_dropped())
            .finish_non_exhaustive()
    }
}

impl ProcessQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds pulled messages.
    pub fn put(&self, messages: &[MessageExt]) {
        let mut state = self.state();
        for message in messages {
            state.max_offset_seen = Some(
                state
                    .max_offset_seen
                    .map_or(message.queue_offset, |m| m.max(message.queue_offset)),
            );
            if state.consuming.contains_key(&message.queue_offset) {
                continue;
            }
            if state
                .held
                .insert(message.queue_offset, message.clone())
                .is_none()
            {
                state.held_bytes += message.body.len();
            }
        }
        drop(state);
        self.arrived.notify_one();
    }

    /// Records that a pull of this queue answered.
    pub fn mark_pulled(&self) {
        self.last_pull_ms
            .store(crate::producer::now_ms(), Ordering::Relaxed);
    }

    /// Removes consumed messages; returns the offset to commit, if any is known.
    pub fn remove(&self, offsets: &[i64]) -> Option<i64> {
        self.last_consume_ms
            .store(crate::producer::now_ms(), Ordering::Relaxed);
        let mut state = self.state();
        for offset in offsets {
            if let Some(message) = state.held.remove(offset) {
                state.held_bytes -= message.body.len();
            }
        }
        Self::commit_point(&state)
    }

    fn commit_point(state: &State) -> Option<i64> {
        match (state.held.keys().next(), state.consuming.keys().next()) {
            (Some(a), Some(b)) => Some(*a.min(b)),
            (Some(a), None) | (None, Some(a)) => Some(*a),
            (None, None) => state.max_offset_seen.map(|m| m + 1),
        }
    }

    /// Messages held.
    pub fn count(&self) -> usize {
        let state = self.state();
        state.held.len() + state.consuming.len()
    }

    /// Body bytes held.
    pub fn bytes(&self) -> usize {
        self.state().held_bytes
    }

    /// Largest minus smallest offset held (0 when fewer than two are held).
    pub fn span(&self) -> i64 {
        let state = self.state();
        match (state.held.keys().next(), state.held.keys().next_back()) {
            (Some(first), Some(last)) => last - first,
            _ => 0,
        }
    }

    /// Takes up to `n` messages in offset order for orderly consumption.
    pub fn take(&self, n: usize) -> Vec<MessageExt> {
        let mut state = self.state();
        let mut taken = Vec::with_capacity(n);
        while taken.len() < n {
            let Some((offset, message)) = state.held.pop_first() else {
                break;
            };
            state.held_bytes -= message.body.len();
            state.consuming.insert(offset, message.clone());
            taken.push(message);
        }
        taken
    }

    /// Commits the messages taken for orderly consumption; returns the offset to commit.
    pub fn commit_taken(&self) -> Option<i64> {
        self.last_consume_ms
            .store(crate::producer::now_ms(), Ordering::Relaxed);
        let mut state = self.state();
        let last = state.consuming.keys().next_back().copied();
        state.consuming.clear();
        match state.held.keys().next() {
            Some(first) => Some(*first),
            None => last.map(|l| l + 1).or(state.max_offset_seen.map(|m| m + 1)),
        }
    }

    /// Puts the taken messages back (to be consumed again), counting one more delivery.
    pub fn rollback_taken(&self) {
        let mut state = self.state();
        let consuming = std::mem::take(&mut state.consuming);
        for (offset, mut message) in consuming {
            message.reconsume_times += 1;
            state.held_bytes += message.body.len();
            state.held.insert(offset, message);
        }
    }

    /// Marks the queue no longer owned: its pull loop and consumers stop.
    pub fn drop_queue(&self) {
        self.dropped.store(true, Ordering::Release);
        self.arrived.notify_waiters();
        self.arrived.notify_one();
    }

    /// Whether the queue is no longer owned.
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    /// Records the outcome of a lock request.
    pub fn set_locked(&self, locked: bool) {
        self.locked.store(locked, Ordering::Release);
        if locked {
            self.state().last_lock = Some(Instant::now());
            self.arrived.notify_one();
        }
    }

    /// The queue's state as a `GET_CONSUMER_RUNNING_INFO` answer reports it (RocketMQ's
    /// `ProcessQueue.fillProcessQueueInfo`); `commit_offset` is the consume progress.
    pub fn info(&self, commit_offset: i64) -> ProcessQueueInfo {
        let state = self.state();
        let now_ms = crate::producer::now_ms();
        let first = |map: &BTreeMap<i64, MessageExt>| map.keys().next().copied().unwrap_or(0);
        let last = |map: &BTreeMap<i64, MessageExt>| map.keys().next_back().copied().unwrap_or(0);
        let mib = state.held_bytes / (1024 * 1024);
        ProcessQueueInfo {
            cached_msg_count: i32::try_from(state.held.len()).unwrap_or(i32::MAX),
            cached_msg_max_offset: last(&state.held),
            cached_msg_min_offset: first(&state.held),
            cached_msg_size_in_mib: i32::try_from(mib).unwrap_or(i32::MAX),
            commit_offset,
            dropped: self.is_dropped(),
            last_consume_timestamp: self.last_consume_ms.load(Ordering::Relaxed),
            last_lock_timestamp: state.last_lock.map_or(0, |at| {
                now_ms.saturating_sub(i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX))
            }),
            last_pull_timestamp: self.last_pull_ms.load(Ordering::Relaxed),
            locked: self.locked.load(Ordering::Acquire),
            transaction_msg_count: i32::try_from(state.consuming.len()).unwrap_or(i32::MAX),
            transaction_msg_max_offset: last(&state.consuming),
            transaction_msg_min_offset: first(&state.consuming),
            try_unlock_times: 0,
        }
    }

    /// Whether the broker lock is held and was renewed within `max_age`.
    pub fn is_locked(&self, max_age: std::time::Duration) -> bool {
        self.locked.load(Ordering::Acquire)
            && self
                .state()
                .last_lock
                .is_some_and(|at| at.elapsed() < max_age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64) -> MessageExt {
        MessageExt {
            topic: "T".into(),
            broker_name: "b".into(),
            queue_id: 0,
            queue_offset: offset,
            commit_log_offset: offset,
            body: bytes::Bytes::from_static(b"0123456789"),
            flag: 0,
            sys_flag: 0,
            properties: BTreeMap::new(),
            born_timestamp: 0,
            born_host: "127.0.0.1:1".parse().expect("addr"),
            store_timestamp: 0,
            store_host: "127.0.0.1:2".parse().expect("addr"),
            reconsume_times: 0,
            offset_msg_id: String::new(),
        }
    }

    #[test]
    fn commit_point_is_the_smallest_unconsumed_offset() {
        let queue = ProcessQueue::default();
        assert_eq!(queue.remove(&[]), None);
        queue.put(&(10..15).map(message).collect::<Vec<_>>());
        assert_eq!((queue.count(), queue.bytes(), queue.span()), (5, 50, 4));
        // Out-of-order completion: 11 and 12 done, 10 still running.
        assert_eq!(queue.remove(&[11, 12]), Some(10));
        assert_eq!(queue.remove(&[10]), Some(13));
        assert_eq!(queue.remove(&[13, 14]), Some(15));
        assert_eq!(queue.count(), 0);
        assert_eq!(queue.bytes(), 0);
    }

    #[test]
    fn orderly_take_commit_and_rollback() {
        let queue = ProcessQueue::default();
        queue.put(&(0..5).map(message).collect::<Vec<_>>());
        let first: Vec<i64> = queue.take(2).iter().map(|m| m.queue_offset).collect();
        assert_eq!(first, [0, 1]);
        queue.rollback_taken();
        let again = queue.take(2);
        assert_eq!(
            again.iter().map(|m| m.queue_offset).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(again[0].reconsume_times, 1);
        assert_eq!(queue.commit_taken(), Some(2));
        queue.take(10);
        assert_eq!(queue.commit_taken(), Some(5));
        // A re-pulled duplicate of a message being consumed is not held twice.
        queue.put(&[message(7)]);
        queue.take(1);
        queue.put(&[message(7)]);
        assert_eq!(queue.count(), 1);
    }

    #[test]
    fn info_reports_cached_and_consuming_messages() {
        let queue = ProcessQueue::default();
        let empty = queue.info(0);
        assert_eq!((empty.cached_msg_count, empty.last_pull_timestamp), (0, 0));
        queue.put(&(3..8).map(message).collect::<Vec<_>>());
        queue.mark_pulled();
        queue.take(2);
        queue.set_locked(true);
        let info = queue.info(3);
        assert_eq!(info.cached_msg_count, 3);
        assert_eq!(
            (info.cached_msg_min_offset, info.cached_msg_max_offset),
            (5, 7)
        );
        assert_eq!(info.transaction_msg_count, 2);
        assert_eq!(
            (
                info.transaction_msg_min_offset,
                info.transaction_msg_max_offset
            ),
            (3, 4)
        );
        assert_eq!(info.commit_offset, 3);
        assert!(info.locked && !info.dropped);
        assert!(info.last_pull_timestamp > 0 && info.last_lock_timestamp > 0);
        queue.drop_queue();
        assert!(queue.info(3).dropped);
    }

    #[test]
    fn locks_expire_without_renewal() {
        let queue = ProcessQueue::default();
        assert!(!queue.is_locked(std::time::Duration::from_secs(30)));
        queue.set_locked(true);
        assert!(queue.is_locked(std::time::Duration::from_secs(30)));
        assert!(!queue.is_locked(std::time::Duration::ZERO));
        queue.set_locked(false);
        assert!(!queue.is_locked(std::time::Duration::from_secs(30)));
    }
}
