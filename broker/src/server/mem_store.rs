//! An in-memory [`ShardStore`]: a growing CommitLog buffer in RocketMQ's record format,
//! ConsumeQueues and a key index in maps. For handler tests and for trying the server
//! without the real store; it never persists anything.
//!
//! Test hooks: [`MemStore::set_auto_durable`]/[`MemStore::set_durable_offset`] control
//! when sends become durable, [`MemStore::drop_before`] simulates retention deleting the
//! head of a queue, [`MemStore::set_now_ms`] fixes the store clock, [`MemStore::commits`]
//! counts the group commits asked for.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use ringmq_wire::record::{RecordFields, StoredMessage};

use crate::server::store::{
    Appended, Boundary, GetStatus, MetaSnapshot, PutMessage, QueueEntry, QueueRead,
    QueueReadResult, RecordBytes, ShardStore, StoreError,
};

/// ConsumeQueue entries one read may scan while filtering (RocketMQ's
/// `maxFilterMessageCount` floor).
pub const FILTER_SCAN_ENTRIES_MAX: usize = 16_000;

/// Largest CommitLog the in-memory store holds: it is for tests and trials.
pub const MEM_STORE_BYTES_MAX: usize = 1 << 30;

/// In-memory store of one shard.
#[derive(Debug, Default)]
pub struct MemStore {
    log: BytesMut,
    queues: HashMap<(String, i32), Queue>,
    index: HashMap<(String, String), Vec<(i64, i64)>>,
    durable: u64,
    manual_durability: bool,
    now_ms: Option<i64>,
    hot: bool,
    meta: MetaSnapshot,
    commits: usize,
}

#[derive(Debug, Default)]
struct Queue {
    /// Logical offset of `entries[0]`.
    min: i64,
    entries: Vec<(QueueEntry, i64)>,
}

impl Queue {
    fn max(&self) -> i64 {
        self.min + self.entries.len() as i64
    }
}

impl MemStore {
    /// An empty store; every append is durable at once and every message is hot.
    pub fn new() -> Self {
        MemStore {
            hot: true,
            ..Self::default()
        }
    }

    /// When false, appends stay non-durable until [`Self::set_durable_offset`].
    pub fn set_auto_durable(&mut self, auto: bool) {
        self.manual_durability = !auto;
        if auto {
            self.durable = self.log.len() as u64;
        }
    }

    /// How many times [`ShardStore::commit`] was called.
    pub fn commits(&self) -> usize {
        self.commits
    }

    /// Marks everything before `offset` durable.
    pub fn set_durable_offset(&mut self, offset: u64) {
        self.durable = offset.min(self.log.len() as u64);
    }

    /// Fixes the store clock (store timestamps) at `now_ms`.
    pub fn set_now_ms(&mut self, now_ms: i64) {
        self.now_ms = Some(now_ms);
    }

    /// Whether messages count as in memory for [`ShardStore::is_hot`].
    pub fn set_hot(&mut self, hot: bool) {
        self.hot = hot;
    }

    /// Drops the queue's entries below `offset`, as retention would.
    pub fn drop_before(&mut self, topic: &str, queue_id: i32, offset: i64) {
        let queue = self.queues.entry((topic.to_owned(), queue_id)).or_default();
        let cut = (offset - queue.min).clamp(0, queue.entries.len() as i64) as usize;
        queue.entries.drain(..cut);
        queue.min = queue.min.max(offset);
    }

    fn now(&self) -> i64 {
        self.now_ms.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
    }

    fn queue(&self, topic: &str, queue_id: i32) -> Option<&Queue> {
        self.queues.get(&(topic.to_owned(), queue_id))
    }

    /// Up to `max` ConsumeQueue entries from logical offset `from`.
    pub fn entries(&self, topic: &str, queue_id: i32, from: i64, max: usize) -> Vec<QueueEntry> {
        let Some(queue) = self.queue(topic, queue_id) else {
            return Vec::new();
        };
        if from < queue.min {
            return Vec::new();
        }
        let start = (from - queue.min) as usize;
        queue
            .entries
            .iter()
            .skip(start)
            .take(max)
            .map(|(e, _)| *e)
            .collect()
    }

    /// The record bytes at `physical_offset` of `size` bytes.
    pub fn read(&self, physical_offset: i64, size: u32) -> Result<Bytes, StoreError> {
        let start = usize::try_from(physical_offset).map_err(|_| StoreError::NotFound {
            offset: physical_offset,
        })?;
        let end = start + size as usize;
        if end > self.log.len() {
            return Err(StoreError::NotFound {
                offset: physical_offset,
            });
        }
        Ok(Bytes::copy_from_slice(&self.log[start..end]))
    }

    /// RocketMQ's `getMessage` over the in-memory queues.
    fn get_messages(&self, read: &QueueRead<'_>) -> QueueReadResult {
        let min_offset = self.min_offset(read.topic, read.queue_id);
        let max_offset = self.max_offset(read.topic, read.queue_id);
        let offset = read.offset;
        let mut result = QueueReadResult {
            status: GetStatus::NoMessageInQueue,
            next_begin_offset: offset,
            min_offset,
            max_offset,
            records: Vec::new(),
        };
        if self.queue(read.topic, read.queue_id).is_none() {
            result.status = GetStatus::NoMatchedLogicQueue;
            result.next_begin_offset = 0;
        } else if max_offset == 0 {
            result.next_begin_offset = 0;
        } else if offset < min_offset {
            result.status = GetStatus::OffsetTooSmall;
            result.next_begin_offset = min_offset;
        } else if offset == max_offset {
            result.status = GetStatus::OffsetOverflowOne;
        } else if offset > max_offset {
            result.status = GetStatus::OffsetOverflowBadly;
            result.next_begin_offset = if min_offset == 0 {
                min_offset
            } else {
                max_offset
            };
        } else {
            self.read_range(read, &mut result);
        }
        result
    }

    fn read_range(&self, read: &QueueRead<'_>, result: &mut QueueReadResult) {
        let max_count = read.max_count.max(1);
        let scan_max = FILTER_SCAN_ENTRIES_MAX.max(max_count * 20);
        let entries = self.entries(read.topic, read.queue_id, read.offset, scan_max);
        if entries.is_empty() {
            result.status = GetStatus::OffsetFoundNull;
            return;
        }
        result.status = GetStatus::NoMatchedMessage;
        let mut bytes = 0usize;
        let mut scanned = 0i64;
        for entry in &entries {
            if !result.records.is_empty()
                && (result.records.len() >= max_count
                    || bytes + entry.size as usize > read.max_bytes)
            {
                break;
            }
            scanned += 1;
            if let Some(codes) = read.tag_codes
                && !codes.is_empty()
                && !codes.contains(&entry.tags_code)
            {
                continue;
            }
            let Ok(record) = self.read(entry.physical_offset, entry.size) else {
                if result.records.is_empty() {
                    result.status = GetStatus::MessageWasRemoving;
                }
                continue;
            };
            bytes += record.len();
            result.records.push(RecordBytes::Memory(record));
            result.status = GetStatus::Found;
        }
        result.next_begin_offset = read.offset + scanned;
    }
}

impl ShardStore for MemStore {
    fn append(&mut self, message: PutMessage) -> Result<Appended, StoreError> {
        let key = (message.topic.clone(), message.queue_id);
        let queue_offset = self.queues.get(&key).map_or(0, Queue::max);
        let physical_offset = self.log.len() as i64;
        let store_timestamp = self.now();
        let fields = RecordFields {
            topic: &message.topic,
            queue_id: message.queue_id,
            flag: message.flag,
            queue_offset,
            physical_offset,
            sys_flag: message.sys_flag,
            born_timestamp: message.born_timestamp,
            born_host: message.born_host,
            store_timestamp,
            store_host: message.store_host,
            reconsume_times: message.reconsume_times,
            prepared_transaction_offset: message.prepared_transaction_offset,
            body: &message.body,
            properties: message.properties.as_bytes(),
        };
        let size = fields
            .encoded_len()
            .map_err(|e| StoreError::MessageIllegal {
                reason: e.to_string(),
            })?;
        if self.log.len() + size > MEM_STORE_BYTES_MAX {
            return Err(StoreError::NotWritable {
                reason: format!("in-memory store full ({MEM_STORE_BYTES_MAX} bytes)"),
            });
        }
        fields
            .encode(&mut self.log)
            .map_err(|e| StoreError::MessageIllegal {
                reason: e.to_string(),
            })?;
        let entry = QueueEntry {
            queue_offset,
            physical_offset,
            size: size as u32,
            tags_code: message.tags_code,
        };
        self.queues
            .entry(key)
            .or_default()
            .entries
            .push((entry, store_timestamp));
        for index_key in message.keys.iter().chain(message.uniq_key.iter()) {
            self.index
                .entry((message.topic.clone(), index_key.clone()))
                .or_default()
                .push((physical_offset, store_timestamp));
        }
        let end_offset = self.log.len() as u64;
        if !self.manual_durability {
            self.durable = end_offset;
        }
        Ok(Appended {
            physical_offset,
            queue_offset,
            store_timestamp,
            size: size as u32,
            end_offset,
        })
    }

    fn durable_offset(&self) -> u64 {
        self.durable
    }

    fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.queue(topic, queue_id).map_or(0, |q| q.min)
    }

    fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.queue(topic, queue_id).map_or(0, Queue::max)
    }

    fn get(&self, read: &QueueRead<'_>) -> Result<QueueReadResult, StoreError> {
        Ok(self.get_messages(read))
    }

    fn read_at(&self, physical_offset: i64) -> Result<Bytes, StoreError> {
        let start = usize::try_from(physical_offset).map_err(|_| StoreError::NotFound {
            offset: physical_offset,
        })?;
        let header = self.log.get(start..start + 4).ok_or(StoreError::NotFound {
            offset: physical_offset,
        })?;
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let bytes = self.read(physical_offset, size)?;
        StoredMessage::decode(&bytes, false).map_err(|_| StoreError::NotFound {
            offset: physical_offset,
        })?;
        Ok(bytes)
    }

    fn is_hot(&self, topic: &str, queue_id: i32, offset: i64) -> bool {
        self.hot
            && self
                .queue(topic, queue_id)
                .is_some_and(|q| offset >= q.min && offset < q.max())
    }

    fn offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> i64 {
        let Some(queue) = self.queue(topic, queue_id) else {
            return 0;
        };
        let found = match boundary {
            Boundary::Lower => queue
                .entries
                .iter()
                .find(|(_, ts)| *ts >= timestamp_ms)
                .map(|(e, _)| e.queue_offset),
            Boundary::Upper => queue
                .entries
                .iter()
                .rev()
                .find(|(_, ts)| *ts <= timestamp_ms)
                .map(|(e, _)| e.queue_offset),
        };
        match (found, boundary) {
            (Some(offset), _) => offset,
            (None, Boundary::Lower) => queue.max(),
            (None, Boundary::Upper) => queue.min,
        }
    }

    fn store_time(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        let queue = self.queue(topic, queue_id)?;
        let at = usize::try_from(offset.checked_sub(queue.min)?).ok()?;
        queue.entries.get(at).map(|(_, ts)| *ts)
    }

    fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Bytes>, StoreError> {
        let offsets: Vec<i64> = self
            .index
            .get(&(topic.to_owned(), key.to_owned()))
            .map(|hits| {
                hits.iter()
                    .rev()
                    .filter(|(_, ts)| *ts >= begin_ms && *ts <= end_ms)
                    .take(max)
                    .map(|(offset, _)| *offset)
                    .collect()
            })
            .unwrap_or_default();
        offsets.into_iter().map(|o| self.read_at(o)).collect()
    }

    fn commit_log_min_offset(&self) -> i64 {
        0
    }

    fn commit_log_max_offset(&self) -> i64 {
        self.log.len() as i64
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.commits += 1;
        Ok(())
    }

    fn delete_topic(&mut self, topic: &str) {
        self.queues.retain(|(t, _), _| t != topic);
        self.index.retain(|(t, _), _| t != topic);
    }

    fn load_meta(&self) -> MetaSnapshot {
        self.meta.clone()
    }

    fn save_meta(&mut self, snapshot: &MetaSnapshot) -> Result<(), StoreError> {
        self.meta = snapshot.clone();
        Ok(())
    }
}

/// Convenience for tests: an address.
pub fn test_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(topic: &str, queue_id: i32, body: &'static [u8], keys: &[&str]) -> PutMessage {
        PutMessage {
            topic: topic.into(),
            queue_id,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 1,
            born_host: test_addr(5000),
            store_host: test_addr(10911),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: Bytes::from_static(body),
            properties: String::new(),
            tags_code: 0,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            uniq_key: None,
        }
    }

    #[test]
    fn appends_are_real_records_with_growing_offsets() {
        let mut store = MemStore::new();
        store.set_now_ms(100);
        let a = store.append(put("T", 0, b"one", &["k1"])).expect("append");
        let b = store.append(put("T", 0, b"two", &[])).expect("append");
        let c = store.append(put("T", 1, b"three", &[])).expect("append");
        assert_eq!((a.queue_offset, b.queue_offset, c.queue_offset), (0, 1, 0));
        assert_eq!(b.physical_offset, i64::from(a.size));
        assert_eq!(store.max_offset("T", 0), 2);
        assert_eq!(store.durable_offset(), c.end_offset);
        let raw = store.read(b.physical_offset, b.size).expect("read");
        let message = StoredMessage::decode(&raw, true).expect("decodes");
        assert_eq!(&message.body()[..], b"two");
        assert_eq!(message.layout.queue_offset, 1);
        assert_eq!(
            store.read_at(a.physical_offset).expect("read_at").len(),
            a.size as usize
        );
        assert_eq!(
            store.query_by_key("T", "k1", 10, 0, 200).expect("query"),
            vec![store.read_at(a.physical_offset).expect("read")]
        );
        assert_eq!(store.offset_by_time("T", 0, 100, Boundary::Lower), 0);
        assert_eq!(store.offset_by_time("T", 0, 101, Boundary::Lower), 2);
    }

    #[test]
    fn durability_can_lag_and_head_can_be_dropped() {
        let mut store = MemStore::new();
        store.set_auto_durable(false);
        let a = store.append(put("T", 0, b"x", &[])).expect("append");
        assert_eq!(store.durable_offset(), 0);
        store.set_durable_offset(a.end_offset);
        assert_eq!(store.durable_offset(), a.end_offset);
        store.append(put("T", 0, b"y", &[])).expect("append");
        store.drop_before("T", 0, 1);
        assert_eq!(store.min_offset("T", 0), 1);
        assert!(store.entries("T", 0, 0, 10).is_empty());
        assert_eq!(store.entries("T", 0, 1, 10).len(), 1);
    }
}
