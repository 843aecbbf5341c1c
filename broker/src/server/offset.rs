//! The consumer offset table of one shard: `topic@group → queueId → offset`, committed by
//! `UPDATE_CONSUMER_OFFSET` and by pulls carrying a commit offset.
//!
//! Lives on its shard's thread. Persisting the table (RocketMQ's `consumerOffset.json`,
//! every 5 s) is done by the shard's housekeeping with [`ConsumerOffsetTable::snapshot`].

use std::collections::{BTreeMap, HashMap};

/// Most `topic@group` entries per shard.
pub const OFFSET_ENTRIES_MAX: usize = 1_000_000;

/// The key RocketMQ uses: `topic@group`.
pub fn offset_key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

/// Committed consumer offsets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConsumerOffsetTable {
    table: HashMap<String, BTreeMap<i32, i64>>,
    version: u64,
}

impl ConsumerOffsetTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a committed offset. Returns false (nothing recorded) when the table is full
    /// or the offset is negative.
    pub fn commit(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) -> bool {
        if offset < 0 {
            return false;
        }
        let key = offset_key(topic, group);
        if !self.table.contains_key(&key) && self.table.len() >= OFFSET_ENTRIES_MAX {
            tracing::warn!(target: "ringmq::server::offset", group, topic, "offset table full");
            return false;
        }
        self.table.entry(key).or_default().insert(queue_id, offset);
        self.version += 1;
        true
    }

    /// The committed offset, if any.
    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table
            .get(&offset_key(topic, group))
            .and_then(|queues| queues.get(&queue_id).copied())
    }

    /// Every queue's offset of `group` on `topic`.
    pub fn queues(&self, group: &str, topic: &str) -> Option<&BTreeMap<i32, i64>> {
        self.table.get(&offset_key(topic, group))
    }

    /// Topics `group` has offsets for.
    pub fn topics_of_group(&self, group: &str) -> Vec<String> {
        let suffix = format!("@{group}");
        let mut topics: Vec<String> = self
            .table
            .keys()
            .filter_map(|k| k.strip_suffix(&suffix).map(str::to_owned))
            .filter(|t| !t.contains('@'))
            .collect();
        topics.sort();
        topics
    }

    /// Groups with offsets on `topic`.
    pub fn groups_of_topic(&self, topic: &str) -> Vec<String> {
        let prefix = format!("{topic}@");
        let mut groups: Vec<String> = self
            .table
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        groups.sort();
        groups
    }

    /// Forgets every offset of `group`.
    pub fn remove_group(&mut self, group: &str) {
        let suffix = format!("@{group}");
        self.table.retain(|k, _| !k.ends_with(&suffix));
        self.version += 1;
    }

    /// Forgets every offset on `topic`.
    pub fn remove_topic(&mut self, topic: &str) {
        let prefix = format!("{topic}@");
        self.table.retain(|k, _| !k.starts_with(&prefix));
        self.version += 1;
    }

    /// Bumped on every change, to know when to persist.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The whole table, sorted, for persistence and `GET_ALL_CONSUMER_OFFSET`.
    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<i32, i64>> {
        self.table
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Replaces the table with a persisted snapshot.
    pub fn restore(&mut self, snapshot: BTreeMap<String, BTreeMap<i32, i64>>) {
        self.table = snapshot.into_iter().collect();
        self.version += 1;
    }
}

/// What `QUERY_CONSUMER_OFFSET` answers for a group without a committed offset
/// (RocketMQ's `ConsumerManageProcessor.queryConsumerOffset`, rocketmq-facts §B.6/§C.8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetAnswer {
    /// Answer this offset with SUCCESS.
    Offset(i64),
    /// Answer QUERY_NOT_FOUND.
    NotFound,
}

/// Decides the answer: the committed offset if any; otherwise 0 when the queue still starts
/// at 0 and its first message is hot (so that a brand-new group on a young queue reads from
/// the beginning even with CONSUME_FROM_LAST_OFFSET); otherwise not found. A request with
/// `setZeroIfNotFound=false` never gets the 0.
pub fn answer_query(
    committed: Option<i64>,
    queue_min_offset: i64,
    first_message_hot: bool,
    set_zero_if_not_found: Option<bool>,
) -> OffsetAnswer {
    match committed {
        Some(offset) => OffsetAnswer::Offset(offset),
        None if set_zero_if_not_found == Some(false) => OffsetAnswer::NotFound,
        None if queue_min_offset <= 0 && first_message_hot => OffsetAnswer::Offset(0),
        None => OffsetAnswer::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_query_per_group_topic_queue() {
        let mut table = ConsumerOffsetTable::new();
        assert!(table.commit("G", "T", 0, 10));
        assert!(table.commit("G", "T", 1, 20));
        assert!(table.commit("H", "T", 0, 5));
        assert!(!table.commit("G", "T", 2, -1));
        assert_eq!(table.query("G", "T", 0), Some(10));
        assert_eq!(table.query("G", "T", 1), Some(20));
        assert_eq!(table.query("G", "T", 2), None);
        assert_eq!(table.query("H", "T", 0), Some(5));
        assert_eq!(table.groups_of_topic("T"), vec!["G", "H"]);
        assert_eq!(table.topics_of_group("G"), vec!["T"]);
        table.remove_group("G");
        assert_eq!(table.query("G", "T", 0), None);
        let snap = table.snapshot();
        let mut restored = ConsumerOffsetTable::new();
        restored.restore(snap);
        assert_eq!(restored.snapshot(), table.snapshot());
    }

    #[test]
    fn new_group_on_young_queue_gets_offset_zero() {
        assert_eq!(answer_query(None, 0, true, None), OffsetAnswer::Offset(0));
    }

    #[test]
    fn new_group_on_rolled_queue_gets_not_found() {
        assert_eq!(answer_query(None, 100, true, None), OffsetAnswer::NotFound);
        assert_eq!(answer_query(None, 0, false, None), OffsetAnswer::NotFound);
    }

    #[test]
    fn set_zero_if_not_found_false_is_honoured() {
        assert_eq!(
            answer_query(None, 0, true, Some(false)),
            OffsetAnswer::NotFound
        );
        assert_eq!(
            answer_query(None, 0, true, Some(true)),
            OffsetAnswer::Offset(0)
        );
    }

    #[test]
    fn committed_offset_always_wins() {
        assert_eq!(
            answer_query(Some(7), 100, false, Some(false)),
            OffsetAnswer::Offset(7)
        );
    }
}
