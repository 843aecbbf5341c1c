//! Store configuration: sizes, flush mode, retention policy. Every limit has its reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::commit_log::{record_bytes_max, write_buffer_bytes_min};
use super::consume_queue::CQ_ENTRIES_PER_FILE;
use super::error::{StoreError, StoreResult};
use super::index::{INDEX_ENTRIES_DEFAULT, INDEX_SLOTS_DEFAULT, IndexConfig};
use super::io::IO_ALIGN;

/// When a producer is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushMode {
    /// Once the write holding the record has completed: a killed process loses nothing
    /// acknowledged (a power loss may). RocketMQ's ASYNC_FLUSH guarantee. The default.
    #[default]
    Async,
    /// Once written and `fdatasync`ed (group commit: one sync covers everything before it).
    Sync,
    /// On append, before any write: for benchmarks and throwaway data only.
    Memory,
}

impl std::str::FromStr for FlushMode {
    type Err = StoreError;
    fn from_str(s: &str) -> StoreResult<Self> {
        match s.to_ascii_lowercase().as_str() {
            "async" | "async_flush" => Ok(FlushMode::Async),
            "sync" | "sync_flush" => Ok(FlushMode::Sync),
            "memory" => Ok(FlushMode::Memory),
            other => Err(StoreError::Config(format!(
                "flush mode {other:?}: expected async, sync or memory"
            ))),
        }
    }
}

/// Configuration of one shard's store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The shard's directory (`<store>/shard-<i>`).
    pub root: PathBuf,
    /// CommitLog segment size (RocketMQ `mappedFileSizeCommitLog`, 1 GiB).
    pub segment_bytes: u64,
    /// Flush mode.
    pub flush_mode: FlushMode,
    /// Capacity of one aligned write buffer; at least one largest record plus two pages.
    pub write_buffer_bytes: usize,
    /// Write buffers that may hold unwritten data: the in-flight budget. Past it appends
    /// are refused with `Busy` instead of growing memory.
    pub write_buffers_max: usize,
    /// Ask for `O_DIRECT` on CommitLog writes (falls back to buffered where refused).
    pub direct_io: bool,
    /// Bytes of recent records served from memory.
    pub tail_cache_bytes: usize,
    /// Largest body accepted (`maxMessageSize`, 4 MiB).
    pub max_body_bytes: usize,
    /// ConsumeQueue entries per file (300 000).
    pub cq_entries_per_file: u64,
    /// Build the key/unique-key index (`messageIndexEnable`).
    pub index_enabled: bool,
    /// Index geometry (`maxHashSlotNum` 5 000 000, `maxIndexNum` 20 000 000).
    pub index: IndexConfig,
    /// Address written as STOREHOST (and used in offset msgIds).
    pub store_host: SocketAddr,
    /// Hours a segment is kept after its last write (`fileReservedTime`, 72).
    pub file_reserved_hours: u32,
    /// Hours of the day (UTC) when expired segments are deleted (`deleteWhen` "04").
    pub delete_when_hours: Vec<u32>,
    /// Above this disk usage, deletion runs at any hour (`diskMaxUsedSpaceRatio` 75).
    pub disk_max_used_percent: u32,
    /// Above this, even unexpired segments are deleted (`diskSpaceCleanForciblyRatio` 85).
    pub disk_clean_forcibly_percent: u32,
    /// Above this, appends are refused (`diskSpaceWarningLevelRatio` 90).
    pub disk_warning_percent: u32,
    /// Segments deleted per retention run at most (`deleteFileBatchMax` 10).
    pub delete_files_batch_max: usize,
    /// Pull responses carry at most this many messages.
    pub pull_messages_max: usize,
    /// Memory for ConsumeQueue entries of all queues together (20 B each): past it, the
    /// oldest written entries are dropped from memory and read back from the queue files
    /// when needed (`[store] consume_queue_cache_bytes`, 64 MiB ≈ 3.3 M entries).
    pub consume_queue_cache_bytes: usize,
    /// Delay of each level in ms, level n at index n − 1 (`[schedule] message_delay_level`):
    /// what the ConsumeQueue tag slot of a `SCHEDULE_TOPIC_XXXX` record (its delivery time)
    /// is rebuilt from after a crash. RocketMQ's 18 default levels unless configured.
    pub delay_levels_ms: Vec<i64>,
}

/// Default of [`StoreConfig::consume_queue_cache_bytes`].
pub const CONSUME_QUEUE_CACHE_BYTES_DEFAULT: usize = 64 << 20;

/// Hard cap on messages per read, whatever the request asks: bounds one response's memory.
pub const PULL_MESSAGES_MAX: usize = 1024;

impl StoreConfig {
    /// RocketMQ's defaults under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StoreConfig {
            root: root.into(),
            segment_bytes: 1 << 30,
            flush_mode: FlushMode::Async,
            write_buffer_bytes: 8 << 20,
            write_buffers_max: 4,
            direct_io: true,
            tail_cache_bytes: 64 << 20,
            max_body_bytes: ringmq_wire::limits::MESSAGE_BODY_BYTES_MAX,
            cq_entries_per_file: CQ_ENTRIES_PER_FILE,
            index_enabled: true,
            index: IndexConfig {
                slots: INDEX_SLOTS_DEFAULT,
                entries: INDEX_ENTRIES_DEFAULT,
            },
            store_host: SocketAddr::from(([127, 0, 0, 1], 10911)),
            file_reserved_hours: 72,
            delete_when_hours: vec![4],
            disk_max_used_percent: 75,
            disk_clean_forcibly_percent: 85,
            disk_warning_percent: 90,
            delete_files_batch_max: 10,
            pull_messages_max: 32,
            delay_levels_ms: super::recovery::DELAY_LEVELS_MS.to_vec(),
            consume_queue_cache_bytes: CONSUME_QUEUE_CACHE_BYTES_DEFAULT,
        }
    }

    /// Small sizes for tests and examples: 4 KiB bodies, 64 KiB write buffers, 256 KiB
    /// segments, small index and queues.
    pub fn for_tests(root: impl Into<PathBuf>) -> Self {
        StoreConfig {
            max_body_bytes: 4096,
            segment_bytes: 256 * 1024,
            write_buffer_bytes: 64 * 1024,
            tail_cache_bytes: 1 << 20,
            cq_entries_per_file: 1000,
            index: IndexConfig {
                slots: 1024,
                entries: 4096,
            },
            ..StoreConfig::new(root)
        }
    }

    /// Checks the relations between the values.
    pub fn validate(&self) -> StoreResult<()> {
        let fail = |m: String| Err(StoreError::Config(m));
        if !self.segment_bytes.is_multiple_of(IO_ALIGN as u64) {
            return fail(format!(
                "segment_bytes {} is not a multiple of {IO_ALIGN}",
                self.segment_bytes
            ));
        }
        let buffer_min = write_buffer_bytes_min(self.max_body_bytes);
        if self.segment_bytes < 2 * buffer_min as u64 {
            return fail(format!(
                "segment_bytes {} is below twice the write buffer minimum ({buffer_min})",
                self.segment_bytes
            ));
        }
        if self.max_body_bytes > ringmq_wire::limits::MESSAGE_BODY_BYTES_MAX {
            return fail(format!(
                "max_body_bytes {} is above 4 MiB",
                self.max_body_bytes
            ));
        }
        if self.delay_levels_ms.is_empty() || self.delay_levels_ms.iter().any(|d| *d < 0) {
            return fail("delay_levels_ms must hold at least one non-negative delay".into());
        }
        if self.cq_entries_per_file == 0 || self.index.slots == 0 || self.index.entries < 2 {
            return fail("consume queue and index sizes must be positive".into());
        }
        if !(self.disk_max_used_percent <= self.disk_clean_forcibly_percent
            && self.disk_clean_forcibly_percent <= self.disk_warning_percent
            && self.disk_warning_percent <= 100)
        {
            return fail(
                "disk ratios must satisfy max_used <= clean_forcibly <= warning <= 100".into(),
            );
        }
        Ok(())
    }

    /// Largest record this configuration accepts.
    pub fn max_record_bytes(&self) -> usize {
        record_bytes_max(self.max_body_bytes)
    }

    /// `<root>/commitlog`.
    pub fn commit_log_dir(&self) -> PathBuf {
        self.root.join("commitlog")
    }
    /// `<root>/consumequeue`.
    pub fn consume_queue_dir(&self) -> PathBuf {
        self.root.join("consumequeue")
    }
    /// `<root>/index`.
    pub fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }
    /// `<root>/config`.
    pub fn config_dir(&self) -> PathBuf {
        self.root.join("config")
    }
    /// `<root>/checkpoint`.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    /// Whether `path` is under this store.
    pub fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.root)
    }
}
