//! Topic configs, subscription groups and consumer offsets, persisted as `rkyv` snapshots.
//!
//! Each snapshot file is `magic "RQSN" | u32 version | u64 payload length | u32 crc32 of the
//! payload | 12 zero bytes | rkyv payload`. It is written to `<name>.tmp`, synced, and renamed
//! over `<name>` (the rename is synced too), so a crash leaves either the old or the new
//! snapshot, never a mix. A damaged snapshot is an error naming the file, never silently
//! replaced by defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::de::Pool;
use rkyv::rancor::{self, Strategy};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use super::error::{StoreError, StoreResult};
use super::io::{AlignedBuf, OpenMode, StoreFile, StoreFs};
use super::meta_job::{MetaJob, SnapshotWrite};

const MAGIC: [u8; 4] = *b"RQSN";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 32;
/// Largest snapshot accepted: a flipped length byte must not allocate gigabytes.
pub const SNAPSHOT_BYTES_MAX: usize = 256 << 20;

/// A topic's configuration (RocketMQ `TopicConfig`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Topic name.
    pub topic_name: String,
    /// Readable queues.
    pub read_queue_nums: u32,
    /// Writable queues.
    pub write_queue_nums: u32,
    /// Permission bits: 2 write, 4 read, 6 both.
    pub perm: u32,
    /// 0 = single tag, 1 = multi tag.
    pub topic_filter_type: u8,
    /// Topic system flag.
    pub topic_sys_flag: u32,
    /// Ordered topic.
    pub order: bool,
    /// Extra attributes (`+key=value`).
    pub attributes: Vec<(String, String)>,
}

/// A consumer group's configuration (RocketMQ `SubscriptionGroupConfig`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionGroupConfig {
    /// Group name.
    pub group_name: String,
    /// Consumption allowed.
    pub consume_enable: bool,
    /// Start from the min offset when the group has none.
    pub consume_from_min_enable: bool,
    /// Broadcasting allowed.
    pub consume_broadcast_enable: bool,
    /// Queues of the retry topic.
    pub retry_queue_nums: i32,
    /// Reconsume times before the DLQ.
    pub retry_max_times: i32,
    /// Broker to consume from.
    pub broker_id: i64,
    /// Broker to consume from when slow.
    pub which_broker_when_consume_slowly: i64,
    /// Notify consumers when the group's membership changes.
    pub notify_consumer_ids_changed_enable: bool,
}

/// Committed consumer offsets: `(topic, group) → queue id → offset`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerOffsets {
    /// The table.
    pub table: BTreeMap<(String, String), BTreeMap<i32, i64>>,
}

/// Topics with the data version RocketMQ reports to NameServers.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicTable {
    /// Data version timestamp (ms).
    pub version_timestamp: i64,
    /// Data version counter.
    pub version_counter: i64,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicConfig>,
}

/// Subscription groups by name.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTable {
    /// Groups by name.
    pub groups: BTreeMap<String, SubscriptionGroupConfig>,
}

/// Encodes a snapshot file.
pub fn encode_snapshot<T>(value: &T) -> Result<Vec<u8>, String>
where
    T: for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
{
    let payload = rkyv::to_bytes::<rancor::Error>(value).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    out.resize(HEADER_BYTES, 0);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes a snapshot file, checking magic, version, length, CRC and the archive itself.
pub fn decode_snapshot<T>(bytes: &[u8]) -> Result<T, String>
where
    T: Archive,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
        + Deserialize<T, Strategy<Pool, rancor::Error>>,
{
    if bytes.len() < HEADER_BYTES || bytes[0..4] != MAGIC {
        return Err("not a ringmq snapshot (bad magic or too short)".into());
    }
    let version = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if version != VERSION {
        return Err(format!("snapshot version {version}, expected {VERSION}"));
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[8..16]);
    let len = u64::from_be_bytes(len8) as usize;
    if len > SNAPSHOT_BYTES_MAX || bytes.len() != HEADER_BYTES + len {
        return Err(format!(
            "payload length {len} does not match the file ({} bytes)",
            bytes.len()
        ));
    }
    let crc = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let payload = &bytes[HEADER_BYTES..];
    if crc32fast::hash(payload) != crc {
        return Err("payload CRC mismatch".into());
    }
    let mut aligned = AlignedVec::<16>::with_capacity(len);
    aligned.extend_from_slice(payload);
    rkyv::from_bytes::<T, rancor::Error>(&aligned).map_err(|e| e.to_string())
}

/// Writes a snapshot atomically with blocking-safe calls: temp file, `fdatasync`, rename,
/// directory sync (see [`super::meta_job`], which the store's own tables go through).
pub async fn save<F: StoreFs, T>(fs: &F, path: &Path, value: &T) -> StoreResult<()>
where
    T: for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
{
    let bytes = encode_snapshot(value).map_err(|reason| StoreError::Snapshot {
        path: path.to_path_buf(),
        reason,
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let job = MetaJob {
        fs: fs.clone(),
        ring: false,
        dir,
        writes: vec![SnapshotWrite {
            table: 0,
            path: path.to_path_buf(),
            len: bytes.len(),
            bytes: AlignedBuf::from_slice(&bytes),
        }],
    };
    job.run().await.result
}

/// Reads a snapshot; `Ok(None)` when the file does not exist.
pub async fn load<F: StoreFs, T>(fs: &F, path: &Path) -> StoreResult<Option<T>>
where
    T: Archive,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
        + Deserialize<T, Strategy<Pool, rancor::Error>>,
{
    if !fs.exists(path) {
        return Ok(None);
    }
    let file = fs
        .open(
            path,
            OpenMode {
                create: false,
                direct: false,
            },
        )
        .map_err(|e| StoreError::io("open", path, e))?;
    let len = file.len().map_err(|e| StoreError::io("stat", path, e))? as usize;
    if len > SNAPSHOT_BYTES_MAX + HEADER_BYTES {
        return Err(StoreError::Snapshot {
            path: path.to_path_buf(),
            reason: format!("file of {len} bytes is over the limit"),
        });
    }
    let (buf, n) = file.read_at(vec![0; len], 0).await;
    let n = n.map_err(|e| StoreError::io("read", path, e))?;
    decode_snapshot(&buf[..n])
        .map(Some)
        .map_err(|reason| StoreError::Snapshot {
            path: path.to_path_buf(),
            reason,
        })
}

/// The broker metadata of one shard, with dirty tracking; persisted by [`MetaStore::persist`].
#[derive(Debug, Default)]
pub struct MetaStore {
    dir: PathBuf,
    topics: TopicTable,
    groups: GroupTable,
    offsets: ConsumerOffsets,
    dirty: [bool; 3],
}

impl MetaStore {
    const TOPICS: &'static str = "topics.rkyv";
    const GROUPS: &'static str = "subscriptionGroup.rkyv";
    const OFFSETS: &'static str = "consumerOffset.rkyv";
    const TOPICS_TABLE: usize = 0;
    const GROUPS_TABLE: usize = 1;

    /// Loads the snapshots of `dir` (missing files = empty tables).
    pub async fn open<F: StoreFs>(fs: &F, dir: &Path) -> StoreResult<Self> {
        Ok(MetaStore {
            dir: dir.to_path_buf(),
            topics: load(fs, &dir.join(Self::TOPICS)).await?.unwrap_or_default(),
            groups: load(fs, &dir.join(Self::GROUPS)).await?.unwrap_or_default(),
            offsets: load(fs, &dir.join(Self::OFFSETS))
                .await?
                .unwrap_or_default(),
            dirty: [false; 3],
        })
    }

    /// Topics.
    pub fn topics(&self) -> &TopicTable {
        &self.topics
    }
    /// Creates or replaces a topic and bumps the data version.
    pub fn put_topic(&mut self, topic: TopicConfig, now_ms: i64) {
        self.topics.topics.insert(topic.topic_name.clone(), topic);
        self.topics.version_timestamp = now_ms;
        self.topics.version_counter += 1;
        self.dirty[0] = true;
    }
    /// Deletes a topic.
    pub fn remove_topic(&mut self, name: &str, now_ms: i64) -> Option<TopicConfig> {
        let removed = self.topics.topics.remove(name);
        if removed.is_some() {
            self.topics.version_timestamp = now_ms;
            self.topics.version_counter += 1;
            self.dirty[0] = true;
        }
        removed
    }
    /// Subscription groups.
    pub fn groups(&self) -> &GroupTable {
        &self.groups
    }
    /// Creates or replaces a group.
    pub fn put_group(&mut self, group: SubscriptionGroupConfig) {
        self.groups.groups.insert(group.group_name.clone(), group);
        self.dirty[1] = true;
    }
    /// Deletes a group.
    pub fn remove_group(&mut self, name: &str) -> Option<SubscriptionGroupConfig> {
        let removed = self.groups.groups.remove(name);
        self.dirty[1] |= removed.is_some();
        removed
    }
    /// Commits a consumer offset.
    pub fn commit_offset(&mut self, topic: &str, group: &str, queue_id: i32, offset: i64) {
        self.offsets
            .table
            .entry((topic.to_owned(), group.to_owned()))
            .or_default()
            .insert(queue_id, offset);
        self.dirty[2] = true;
    }
    /// A committed consumer offset.
    pub fn query_offset(&self, topic: &str, group: &str, queue_id: i32) -> Option<i64> {
        self.offsets
            .table
            .get(&(topic.to_owned(), group.to_owned()))
            .and_then(|q| q.get(&queue_id).copied())
    }
    /// The whole offset table.
    pub fn offsets(&self) -> &ConsumerOffsets {
        &self.offsets
    }

    /// Whether some table changed since its last durable snapshot.
    pub fn is_dirty(&self) -> bool {
        self.dirty.iter().any(|d| *d)
    }

    /// Whether topics or groups changed since their last durable snapshot (a message sent
    /// to a topic created meanwhile must not be acknowledged before the topic is on disk).
    pub fn config_dirty(&self) -> bool {
        self.dirty[Self::TOPICS_TABLE] || self.dirty[Self::GROUPS_TABLE]
    }

    /// Whether `table` (of a [`SnapshotWrite`]) holds topics or groups.
    pub(super) fn is_config_table(table: usize) -> bool {
        table == Self::TOPICS_TABLE || table == Self::GROUPS_TABLE
    }

    /// The directory holding the snapshots.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Serializes every changed table (on the calling thread) and clears its changed flag:
    /// the writes of a [`MetaJob`]. A table that cannot be serialized stays changed.
    pub(super) fn take_changed(&mut self) -> StoreResult<Vec<SnapshotWrite>> {
        let names = [Self::TOPICS, Self::GROUPS, Self::OFFSETS];
        let mut writes = Vec::new();
        for (table, name) in names.iter().enumerate() {
            if !self.dirty[table] {
                continue;
            }
            let path = self.dir.join(name);
            let encoded = match table {
                Self::TOPICS_TABLE => encode_snapshot(&self.topics),
                Self::GROUPS_TABLE => encode_snapshot(&self.groups),
                _ => encode_snapshot(&self.offsets),
            }
            .map_err(|reason| StoreError::Snapshot {
                path: path.clone(),
                reason,
            })?;
            writes.push(SnapshotWrite {
                table,
                path,
                len: encoded.len(),
                bytes: AlignedBuf::from_slice(&encoded),
            });
        }
        for w in &writes {
            self.dirty[w.table] = false;
        }
        Ok(writes)
    }

    /// Marks tables changed again (their snapshot job failed): the next job writes them.
    pub(super) fn mark_changed(&mut self, tables: &[usize]) {
        for table in tables {
            if let Some(d) = self.dirty.get_mut(*table) {
                *d = true;
            }
        }
    }

    /// Writes the changed snapshots now, with blocking-safe calls (temp file, sync, rename,
    /// directory sync; see [`super::meta_job`]). The broker's ring mode uses
    /// [`super::Store::begin_meta_persist`] instead.
    pub async fn persist<F: StoreFs>(&mut self, fs: &F) -> StoreResult<()> {
        let writes = self.take_changed()?;
        if writes.is_empty() {
            return Ok(());
        }
        let job = MetaJob {
            fs: fs.clone(),
            ring: false,
            dir: self.dir.clone(),
            writes,
        };
        let done = job.run().await;
        self.mark_changed(&done.failed);
        done.result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::io::block_on;
    use crate::store::sim::SimFs;

    #[test]
    fn meta_round_trip_and_damage_is_reported() {
        let fs = SimFs::new(7);
        let dir = Path::new("/s/config");
        fs.create_dir_all(dir).unwrap();
        let mut meta = block_on(MetaStore::open(&fs, dir)).unwrap();
        meta.put_topic(
            TopicConfig {
                topic_name: "T".into(),
                read_queue_nums: 8,
                write_queue_nums: 8,
                perm: 6,
                topic_filter_type: 0,
                topic_sys_flag: 0,
                order: false,
                attributes: vec![],
            },
            1,
        );
        meta.commit_offset("T", "G", 3, 42);
        block_on(meta.persist(&fs)).unwrap();
        let again = block_on(MetaStore::open(&fs, dir)).unwrap();
        assert_eq!(again.topics(), meta.topics());
        assert_eq!(again.query_offset("T", "G", 3), Some(42));
        let path = dir.join(MetaStore::OFFSETS);
        fs.flip_random_bit(&path, 32..40).unwrap();
        let err = block_on(MetaStore::open(&fs, dir)).unwrap_err();
        assert!(err.to_string().contains("consumerOffset"), "{err}");
        assert!(decode_snapshot::<GroupTable>(b"garbage").is_err());
    }
}
