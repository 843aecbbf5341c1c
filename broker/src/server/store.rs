//! The store interface the handlers use: the few operations a RocketMQ broker needs from
//! its CommitLog, ConsumeQueues and index, on one shard.
//!
//! The real per-shard store (`crate::store`) plugs in through a small adapter implementing
//! [`ShardStore`]; [`crate::server::mem_store::MemStore`] is an in-memory implementation for tests. All calls
//! are synchronous and run on the shard's thread: `append` only places the record in the
//! shard's write buffer and returns where it went; durability is reported separately by
//! [`ShardStore::durable_offset`], which the shard polls to release send acknowledgements.

use std::net::SocketAddr;

use bytes::Bytes;

/// One message to append, as the send handler prepared it. The store fills in the queue
/// offset, the physical offset and the store timestamp, encodes the record in RocketMQ's
/// format, and indexes `keys` and `uniq_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutMessage {
    /// Topic.
    pub topic: String,
    /// Queue id within the topic.
    pub queue_id: i32,
    /// User flag.
    pub flag: i32,
    /// SYSFLAG (compression, transaction type, …).
    pub sys_flag: i32,
    /// Producer timestamp, ms.
    pub born_timestamp: i64,
    /// Producer address.
    pub born_host: SocketAddr,
    /// This shard's published address.
    pub store_host: SocketAddr,
    /// Times the message was reconsumed.
    pub reconsume_times: i32,
    /// Offset of the prepared message, for transaction commits.
    pub prepared_transaction_offset: i64,
    /// The body, as sent (compressed if the producer compressed it).
    pub body: Bytes,
    /// The encoded properties string (`name\x01value\x02…`).
    pub properties: String,
    /// Tag hash code for the ConsumeQueue entry (0 without tags).
    pub tags_code: i64,
    /// Keys to index (`KEYS` property, split on spaces).
    pub keys: Vec<String>,
    /// Client-generated unique key (`UNIQ_KEY`), indexed too.
    pub uniq_key: Option<String>,
}

impl PutMessage {
    /// The index keys of a `KEYS` property value: its space-separated tokens, empty ones
    /// dropped (RocketMQ's `MessageConst.KEY_SEPARATOR`).
    pub fn index_keys(keys: Option<&str>) -> Vec<String> {
        keys.map(|k| {
            k.split(ringmq_wire::record::property::KEY_SEPARATOR)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
    }
}

/// Where an appended message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// CommitLog offset of the record.
    pub physical_offset: i64,
    /// Logical offset in its ConsumeQueue.
    pub queue_offset: i64,
    /// Store timestamp written in the record, ms.
    pub store_timestamp: i64,
    /// Record size in bytes.
    pub size: u32,
    /// CommitLog offset just past the record: the send is durable once
    /// [`ShardStore::durable_offset`] reaches it.
    pub end_offset: u64,
}

/// One ConsumeQueue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueEntry {
    /// Logical offset.
    pub queue_offset: i64,
    /// CommitLog offset of the record.
    pub physical_offset: i64,
    /// Record size.
    pub size: u32,
    /// Tag hash code.
    pub tags_code: i64,
}

/// Which end of a run of equal timestamps `offset_by_time` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Boundary {
    /// The first message at or after the time.
    #[default]
    Lower,
    /// The last message at or before the time.
    Upper,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The disk is above `disk_space_warning_level_ratio`, or the store is read-only.
    #[error("store not writable: {reason}")]
    NotWritable {
        /// Why.
        reason: String,
    },
    /// The store is behind the writers (its write-buffer budget is used up): retry later.
    #[error("store busy: {reason}")]
    Busy {
        /// Why.
        reason: String,
    },
    /// The message cannot be stored as it is (too large for a record, …).
    #[error("message illegal: {reason}")]
    MessageIllegal {
        /// Why.
        reason: String,
    },
    /// The requested data is gone (deleted by retention) or was never written.
    #[error("no data at commitlog offset {offset}")]
    NotFound {
        /// The offset asked for.
        offset: i64,
    },
    /// An I/O or corruption error, with context.
    #[error("store error: {context}")]
    Failed {
        /// What failed, with the file and offset.
        context: String,
    },
}

/// What the handlers need from one shard's store.
pub trait ShardStore: 'static {
    /// Appends one message; the returned offsets are final.
    fn append(&mut self, message: PutMessage) -> Result<Appended, StoreError>;

    /// CommitLog offset up to which appended records are durable under the configured
    /// flush mode (equal to the append position in `memory` mode).
    fn durable_offset(&self) -> u64;

    /// First logical offset still stored in a queue (0 for an unknown queue).
    fn min_offset(&self, topic: &str, queue_id: i32) -> i64;

    /// Logical offset the next message of a queue will get (0 for an unknown queue).
    fn max_offset(&self, topic: &str, queue_id: i32) -> i64;

    /// Reads messages of a queue (RocketMQ's `getMessage`): statuses, offset corrections
    /// and limits as described on [`QueueRead`] and [`GetStatus`]. Only records the flush
    /// mode lets us acknowledge are visible.
    fn get(&self, read: &QueueRead<'_>) -> Result<QueueReadResult, StoreError>;

    /// The stored record at `physical_offset`, size read from its header (view by id).
    fn read_at(&self, physical_offset: i64) -> Result<Bytes, StoreError>;

    /// Whether the message at `offset` of a queue is served from memory (RocketMQ's
    /// `checkInMemByConsumeOffset`); false when there is no such message.
    fn is_hot(&self, topic: &str, queue_id: i32, offset: i64) -> bool;

    /// The logical offset of the message stored at `timestamp_ms` (by store time).
    fn offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> i64;

    /// Store time of the message at `offset` of a queue.
    fn store_time(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64>;

    /// Records of `topic` indexed under `key` (KEYS or UNIQ_KEY) stored between `begin_ms`
    /// and `end_ms`, at most `max`, newest first.
    fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Bytes>, StoreError>;

    /// The record at `physical_offset` without blocking the shard on the disk: the bytes
    /// when they are in memory, or a read for the shard to run as a task (see
    /// [`crate::server::deferred`]). The default reads at once ([`ShardStore::read_at`]).
    fn read_record(&self, physical_offset: i64) -> RecordRead {
        RecordRead::Ready(self.read_at(physical_offset))
    }

    /// [`ShardStore::query_by_key`] without blocking the shard on the disk: the records when
    /// the index entries and every candidate are in memory, a read of the records to run as
    /// a task, or ([`RecordsRead::Index`]) a read of the index entries to run as a task,
    /// whose candidates then go to [`ShardStore::candidates_read`]. The default queries at
    /// once.
    fn query_by_key_read(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> RecordsRead {
        RecordsRead::Ready(self.query_by_key(topic, key, max, begin_ms, end_ms))
    }

    /// The records of `topic` indexed under `key` among the CommitLog offsets `candidates`
    /// (from a [`RecordsRead::Index`] read; newest first), at most `max`: now, or a read to
    /// run as a task. The default reads them at once with [`ShardStore::read_at`].
    fn candidates_read(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        candidates: Vec<u64>,
    ) -> RecordsRead {
        read_candidates_now(self, topic, key, max, candidates)
    }

    /// A read that brings into memory what [`ShardStore::get`] would otherwise read from a
    /// file on the shard thread for `read` (a ConsumeQueue page evicted from memory), for the
    /// shard to run as a task (on its ring); ask `get` (and this) again once it is done.
    /// `None` when `get` needs nothing from the files. The default needs nothing.
    fn load_for(&self, _read: &QueueRead<'_>) -> Option<ReadFuture<()>> {
        None
    }

    /// The first CommitLog offset still stored.
    fn commit_log_min_offset(&self) -> i64;

    /// The CommitLog append position.
    fn commit_log_max_offset(&self) -> i64;

    /// Forgets a topic's queues (admin delete); CommitLog data ages out normally.
    fn delete_topic(&mut self, topic: &str);

    /// Group commit of what was appended since the last call; the shard calls it after each
    /// batch of requests and on every tick. Durability progress shows in
    /// [`ShardStore::durable_offset`].
    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Before a clean shutdown: stop starting group commits in the background (later ones
    /// complete before returning) and report whether one started earlier is still running.
    /// The shard polls it, letting its tasks run in between, until it returns `false`.
    fn drain_commits(&mut self) -> bool {
        false
    }

    /// Periodic persistence of what runs behind the CommitLog (queues, index, checkpoint).
    fn persist(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Clean shutdown at broker stop: everything written and synced, the checkpoint stored
    /// and the crash marker removed, so the next start trusts the checkpoint. Appends are
    /// refused afterwards.
    fn shutdown(&mut self) -> Result<(), StoreError> {
        self.persist()
    }

    /// The broker metadata (topics, groups, offsets) as last saved; empty when none was.
    fn load_meta(&self) -> MetaSnapshot {
        MetaSnapshot::default()
    }

    /// Saves the broker metadata durably (atomic replacement of the previous snapshot).
    fn save_meta(&mut self, _snapshot: &MetaSnapshot) -> Result<(), StoreError> {
        Ok(())
    }
}

/// [`ShardStore::candidates_read`] done at once with [`ShardStore::read_at`]: the records
/// of `topic` under `key` among `candidates`, at most `max`; unreadable ones are skipped.
pub fn read_candidates_now<S: ShardStore + ?Sized>(
    store: &S,
    topic: &str,
    key: &str,
    max: usize,
    candidates: Vec<u64>,
) -> RecordsRead {
    let records = candidates
        .into_iter()
        .filter_map(|phys| store.read_at(i64::try_from(phys).ok()?).ok())
        .filter(|record| crate::server::ring_read::matches_key(record, topic, key))
        .take(max)
        .collect();
    RecordsRead::Ready(Ok(records))
}

/// A future the shard runs as a task; it owns what it reads from (never the store).
pub type ReadFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>>>>;

/// One record read: done now, or to run on the shard's ring.
pub enum RecordRead {
    /// The bytes (in memory), or why there are none.
    Ready(Result<Bytes, StoreError>),
    /// A disk read to run as a task of the shard.
    Pending(ReadFuture<Bytes>),
}

/// A read of several records (a query by key): done now, or to run on the shard's ring.
pub enum RecordsRead {
    /// The records, or why there are none.
    Ready(Result<Vec<Bytes>, StoreError>),
    /// Disk reads to run as a task of the shard.
    Pending(ReadFuture<Vec<Bytes>>),
    /// Index entries to read as a task of the shard; its candidates (CommitLog offsets,
    /// newest first) go to [`ShardStore::candidates_read`].
    Index(ReadFuture<Vec<u64>>),
}

impl std::fmt::Debug for RecordRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordRead::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            RecordRead::Pending(_) => f.write_str("Pending"),
        }
    }
}

impl std::fmt::Debug for RecordsRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordsRead::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            RecordsRead::Pending(_) => f.write_str("Pending"),
            RecordsRead::Index(_) => f.write_str("Index"),
        }
    }
}

/// The shard's metadata as persisted: what must survive a restart besides messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaSnapshot {
    /// Topic configurations.
    pub topics: Vec<ringmq_wire::body::topic::TopicConfig>,
    /// Subscription group configurations.
    pub groups: Vec<ringmq_wire::body::subscription::SubscriptionGroupConfig>,
    /// Committed offsets: (topic, group) → queue id → offset.
    pub offsets: std::collections::BTreeMap<(String, String), std::collections::BTreeMap<i32, i64>>,
}

/// A queue read (a pull as the store sees it).
#[derive(Debug, Clone, Copy)]
pub struct QueueRead<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Queue id.
    pub queue_id: i32,
    /// First logical offset wanted.
    pub offset: i64,
    /// At most this many messages.
    pub max_count: usize,
    /// At most this many bytes; the first message is always returned.
    pub max_bytes: usize,
    /// Tag hash codes accepted (ConsumeQueue filter); `None` = every message.
    pub tag_codes: Option<&'a [i64]>,
    /// Records that are no longer in memory may come back as [`RecordBytes::File`] (sent
    /// with `splice`, never read by the shard). `false` when the caller needs every
    /// record's bytes (content filters, admin views).
    pub splice: bool,
}

/// A range of a CommitLog segment file holding one or more whole records, to send with
/// `splice`. Holding it keeps the segment from being deleted by retention.
#[derive(Clone)]
pub struct FileSpan {
    /// The segment file.
    pub path: std::rc::Rc<std::path::Path>,
    /// Position of the first byte within the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
    /// Whatever keeps the segment pinned while the span is alive (the store's read pin).
    pub guard: Option<std::rc::Rc<dyn std::any::Any>>,
}

impl std::fmt::Debug for FileSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSpan")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

impl PartialEq for FileSpan {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.offset == other.offset && self.len == other.len
    }
}

impl Eq for FileSpan {}

/// The stored bytes of one record of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordBytes {
    /// In memory (tail cache, or read from the file).
    Memory(Bytes),
    /// In a segment file, to be spliced to the socket.
    File(FileSpan),
}

impl RecordBytes {
    /// The record's size in bytes.
    pub fn len(&self) -> usize {
        match self {
            RecordBytes::Memory(bytes) => bytes.len(),
            RecordBytes::File(span) => span.len as usize,
        }
    }

    /// Whether the record is empty (never, for a stored record).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they are in memory.
    pub fn memory(&self) -> Option<&Bytes> {
        match self {
            RecordBytes::Memory(bytes) => Some(bytes),
            RecordBytes::File(_) => None,
        }
    }
}

/// RocketMQ's `GetMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// Messages found.
    Found,
    /// Entries scanned but none matched the filter.
    NoMatchedMessage,
    /// The entries point at CommitLog data already deleted.
    MessageWasRemoving,
    /// The ConsumeQueue has no entry at an offset inside its range.
    OffsetFoundNull,
    /// Offset past the end by more than one.
    OffsetOverflowBadly,
    /// Offset exactly at the end: nothing new yet.
    OffsetOverflowOne,
    /// Offset below the queue's first entry.
    OffsetTooSmall,
    /// No such queue.
    NoMatchedLogicQueue,
    /// The queue is empty.
    NoMessageInQueue,
}

/// The result of a [`QueueRead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueReadResult {
    /// Status.
    pub status: GetStatus,
    /// Where the client should pull next.
    pub next_begin_offset: i64,
    /// Queue min offset.
    pub min_offset: i64,
    /// Queue max (visible) offset.
    pub max_offset: i64,
    /// The records, in queue order, each the stored bytes (in memory, or a file range when
    /// the read allowed [`QueueRead::splice`]).
    pub records: Vec<RecordBytes>,
}
