//! The per-shard storage engine: CommitLog, ConsumeQueues, IndexFile, checkpoint, recovery,
//! retention, and the config/offset snapshots.
//!
//! A [`Store`] lives on one shard's thread and is never shared (`!Send` is fine). All file
//! I/O goes through the [`io::StoreFs`]/[`io::StoreFile`] traits: [`io::StdFs`] on std files
//! (also the non-io_uring fallback), [`sim::SimFs`] for fault-injection tests, and later an
//! io_uring implementation over `runtime/`.
//!
//! Driving it (what the server does each executor tick):
//!
//! ```
//! use ringmq_broker::store::{io::{block_on, StdFs}, AppendMessage, Store, StoreConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let config = StoreConfig::for_tests(dir.path());
//! let mut store = block_on(Store::open(StdFs, config)).unwrap();
//! let ticket = store.append(&AppendMessage::new("TopicA", 0, b"hello")).unwrap();
//! // ... at the end of the tick: one group commit for everything appended in it.
//! block_on(store.commit_step()).unwrap();
//! assert!(store.is_acknowledged(&ticket));
//! block_on(store.close()).unwrap();
//! ```
//!
//! See `docs/storage.md` for the formats, the guarantees of each flush mode and recovery.

pub mod ack;
pub mod checkpoint;
pub mod commit_job;
pub mod commit_log;
pub mod config;
pub mod consume_queue;
pub mod error;
pub mod index;
pub mod io;
pub mod meta_job;
pub mod persist_job;
mod read;
pub mod recovery;
pub mod retention;
pub mod sim;
pub mod snapshot;
mod tail_cache;
pub mod uring;
pub mod verify;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ringmq_wire::record::{self, RecordFields, property, sys_flag};

pub use ack::PendingAcks;
pub use commit_job::{CommitDone, CommitJob};
pub use config::{FlushMode, StoreConfig};
pub use error::{StoreError, StoreResult};
pub use meta_job::{MetaDone, MetaJob};
pub use persist_job::{PersistDone, PersistJob};
pub use read::{GetMessage, GetResult, GetStatus, ReadRecord, RecordData};

use checkpoint::{Checkpoint, CheckpointFile};
use commit_log::{CommitLog, CommitLogConfig};
use consume_queue::{ConsumeQueue, CqEntry};
use index::IndexService;
use io::{OpenMode, StoreFile, StoreFs};

/// One message to append. Borrowed: the store encodes it straight into its write buffer.
#[derive(Debug, Clone)]
pub struct AppendMessage<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Queue id.
    pub queue_id: i32,
    /// User flag.
    pub flag: i32,
    /// SYSFLAG bits (host bits are set by the store).
    pub sys_flag: i32,
    /// Producer timestamp (ms).
    pub born_timestamp: i64,
    /// Producer address.
    pub born_host: SocketAddr,
    /// Reconsume times.
    pub reconsume_times: i32,
    /// Prepared transaction offset.
    pub prepared_transaction_offset: i64,
    /// Body as sent.
    pub body: &'a [u8],
    /// Encoded properties string.
    pub properties: &'a [u8],
    /// ConsumeQueue tag slot override; `None` = [`recovery::tag_code_of`] (the TAGS hash, or
    /// the delivery time for `SCHEDULE_TOPIC_XXXX`), which is also what recovery rebuilds.
    pub tag_code: Option<i64>,
}

impl<'a> AppendMessage<'a> {
    /// A message with defaults for everything but topic, queue and body.
    pub fn new(topic: &'a str, queue_id: i32, body: &'a [u8]) -> Self {
        AppendMessage {
            topic,
            queue_id,
            flag: 0,
            sys_flag: 0,
            born_timestamp: now_ms(),
            born_host: SocketAddr::from(([127, 0, 0, 1], 0)),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body,
            properties: b"",
            tag_code: None,
        }
    }
}

/// What an append was assigned. The send is acknowledged once
/// [`Store::is_acknowledged`] says so (at once in `memory` mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendTicket {
    /// CommitLog offset of the record.
    pub physical_offset: u64,
    /// Logical offset in its queue.
    pub queue_offset: u64,
    /// Record size.
    pub size: u32,
    /// Store timestamp written into the record.
    pub store_timestamp: i64,
}

impl AppendTicket {
    /// CommitLog offset just past the record.
    pub fn end_offset(&self) -> u64 {
        self.physical_offset + u64::from(self.size)
    }
}

/// RocketMQ's topic rule (`^[%|a-zA-Z0-9_-]+$`, at most 255 bytes here). Topics name
/// directories, so this also keeps paths like `../x` out of the store.
pub fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= ringmq_wire::limits::TOPIC_BYTES_MAX
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-'))
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

type Queues<File> = HashMap<String, BTreeMap<i32, ConsumeQueue<File>>>;

/// The queue `topic`/`queue_id` of `queues`, created empty if missing. A free function over
/// the map, so that [`Store::append`] can hold it while it appends to the log.
fn queue_in<'a, File: StoreFile>(
    queues: &'a mut Queues<File>,
    config: &StoreConfig,
    topic: &str,
    queue_id: i32,
) -> &'a mut ConsumeQueue<File> {
    // The common case (the queue exists) allocates nothing.
    let exists = queues
        .get(topic)
        .is_some_and(|qs| qs.contains_key(&queue_id));
    if !exists {
        let dir = config
            .consume_queue_dir()
            .join(topic)
            .join(queue_id.to_string());
        let queue = ConsumeQueue::new(dir, config.cq_entries_per_file, 0);
        queues
            .entry(topic.to_owned())
            .or_default()
            .insert(queue_id, queue);
    }
    queues
        .get_mut(topic)
        .and_then(|qs| qs.get_mut(&queue_id))
        .unwrap_or_else(|| unreachable!("queue inserted above"))
}

/// The storage engine of one shard.
#[derive(Debug)]
pub struct Store<F: StoreFs> {
    fs: F,
    config: StoreConfig,
    log: CommitLog<F>,
    queues: Queues<F::File>,
    index: IndexService<F::File>,
    checkpoint: CheckpointFile<F::File>,
    pins: read::Pins,
    meta: snapshot::MetaStore,
    last_store_timestamp: i64,
    disk_full: bool,
    /// Set by [`Store::shutdown`]: appends are refused from then on.
    shut_down: bool,
    /// A job from [`Store::begin_persist`] is out.
    persist_in_flight: bool,
    /// Files the persist job out creates (queue files), by index, for `finish_persist`.
    persist_created: persist_job::CreatedFiles<F::File>,
    /// The tables of the job from [`Store::begin_meta_persist`] that is out, if one is.
    meta_in_flight: Option<Vec<usize>>,
    /// Recently read pages of queue entries no longer held in memory.
    cq_pages: std::rc::Rc<consume_queue::CqPageCache>,
    /// Whether the last open found the `abort` file (the previous run crashed).
    pub recovered_from_crash: bool,
    /// Held for the store's lifetime: the directory's `lock` file.
    _lock: Box<dyn std::any::Any>,
}

fn abort_path(root: &Path) -> PathBuf {
    root.join("abort")
}

impl<F: StoreFs> Store<F> {
    /// Opens the store at `config.root`, recovering from whatever state it was left in.
    pub async fn open(fs: F, config: StoreConfig) -> StoreResult<Self> {
        config.validate()?;
        for dir in [
            config.root.clone(),
            config.commit_log_dir(),
            config.consume_queue_dir(),
            config.index_dir(),
            config.config_dir(),
        ] {
            fs.create_dir_all(&dir)
                .map_err(|e| StoreError::io("create directory", &dir, e))?;
        }
        let lock_path = config.root.join("lock");
        let lock = fs
            .lock_exclusive(&lock_path)
            .map_err(|e| StoreError::io("lock", &lock_path, e))?;
        let abort = abort_path(&config.root);
        let crashed = fs.exists(&abort);
        let outcome = recovery::recover(&fs, &config, crashed).await?;
        let log = CommitLog::open(
            fs.clone(),
            &config.commit_log_dir(),
            CommitLogConfig {
                segment_bytes: config.segment_bytes,
                write_buffer_bytes: config.write_buffer_bytes,
                max_record_bytes: config.max_record_bytes(),
                write_buffers_max: config.write_buffers_max,
                sync: config.flush_mode == FlushMode::Sync,
                direct_io: config.direct_io,
                tail_cache_bytes: config.tail_cache_bytes,
            },
            outcome.end,
        )
        .await?;
        log.sync_from(outcome.scan_start).await?;
        let file = fs
            .open(
                &abort,
                OpenMode {
                    create: true,
                    direct: false,
                },
            )
            .map_err(|e| StoreError::io("create", &abort, e))?;
        file.sync_data()
            .await
            .map_err(|e| StoreError::io("fdatasync", &abort, e))?;
        fs.sync_dir(&config.root)
            .map_err(|e| StoreError::io("fsync directory", &config.root, e))?;
        let meta = snapshot::MetaStore::open(&fs, &config.config_dir()).await?;
        tracing::info!(target: "store", root = %config.root.display(), end = outcome.end,
            crashed, scanned_from = outcome.scan_start, "store opened");
        Ok(Store {
            fs,
            log,
            queues: outcome.queues,
            index: outcome.index,
            checkpoint: outcome.checkpoint,
            pins: read::Pins::default(),
            meta,
            last_store_timestamp: outcome.last_store_timestamp,
            disk_full: false,
            shut_down: false,
            persist_in_flight: false,
            persist_created: std::rc::Rc::default(),
            meta_in_flight: None,
            cq_pages: std::rc::Rc::default(),
            recovered_from_crash: crashed,
            _lock: lock,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Appends one message: encodes it once into the write buffer, assigns its queue offset,
    /// physical offset and store timestamp, and adds its ConsumeQueue and index entries.
    /// Never waits; refuses with [`StoreError::Busy`] when the disk is behind.
    pub fn append(&mut self, msg: &AppendMessage<'_>) -> StoreResult<AppendTicket> {
        if self.shut_down {
            return Err(StoreError::ShutDown);
        }
        if self.disk_full {
            return Err(StoreError::DiskFull {
                used_percent: f64::from(self.config.disk_warning_percent),
                limit_percent: self.config.disk_warning_percent,
            });
        }
        if !is_valid_topic(msg.topic) {
            return Err(StoreError::Message(ringmq_wire::WireError::invalid_field(
                "topic",
                msg.topic,
                "a topic is 1 to 255 characters of [%|a-zA-Z0-9_-]",
            )));
        }
        if msg.body.len() > self.config.max_body_bytes {
            return Err(StoreError::Message(ringmq_wire::WireError::TooLong {
                what: "message body",
                len: msg.body.len(),
                max: self.config.max_body_bytes,
            }));
        }
        // One queue lookup per append: the queue is a disjoint borrow from the log.
        let queue = queue_in(&mut self.queues, &self.config, msg.topic, msg.queue_id);
        let queue_offset = queue.max_offset();
        // Store timestamps never go backwards, so time lookups can binary-search a queue.
        let store_timestamp = now_ms().max(self.last_store_timestamp);
        let mut fields = RecordFields {
            topic: msg.topic,
            queue_id: msg.queue_id,
            flag: msg.flag,
            queue_offset: queue_offset as i64,
            physical_offset: 0,
            sys_flag: msg.sys_flag,
            born_timestamp: msg.born_timestamp,
            born_host: msg.born_host,
            store_timestamp,
            store_host: self.config.store_host,
            reconsume_times: msg.reconsume_times,
            prepared_transaction_offset: msg.prepared_transaction_offset,
            body: msg.body,
            properties: msg.properties,
        };
        let len = fields.encoded_len()?;
        let physical_offset = self.log.append(len, |out, phys| {
            fields.physical_offset = phys as i64;
            fields.encode_into(out)?;
            Ok(())
        })?;
        self.last_store_timestamp = store_timestamp;
        let tag_code = msg.tag_code.unwrap_or_else(|| {
            recovery::tag_code_of(
                msg.topic,
                msg.properties,
                store_timestamp,
                &self.config.delay_levels_ms,
            )
        });
        let entry = CqEntry {
            phys: physical_offset,
            size: len as u32,
            tag_code,
        };
        queue.push(entry);
        self.index_record(
            msg.topic,
            msg.sys_flag,
            msg.properties,
            physical_offset,
            store_timestamp,
        )?;
        Ok(AppendTicket {
            physical_offset,
            queue_offset,
            size: len as u32,
            store_timestamp,
        })
    }

    fn index_record(
        &mut self,
        topic: &str,
        sys: i32,
        properties: &[u8],
        phys: u64,
        store_ts: i64,
    ) -> StoreResult<()> {
        if !self.config.index_enabled
            || sys & sys_flag::TRANSACTION_MASK == sys_flag::TRANSACTION_ROLLBACK
        {
            return Ok(());
        }
        let uniq = record::property_value(properties, property::UNIQ_KEY);
        let keys = record::property_value(properties, property::KEYS).unwrap_or_default();
        let all = uniq.into_iter().chain(keys.split(property::KEY_SEPARATOR));
        self.index.put(&self.fs, all, topic, phys, store_ts)
    }

    /// The offset up to which appends are acknowledged: written (async), synced (sync) or
    /// appended (memory).
    pub fn ack_offset(&self) -> u64 {
        match self.config.flush_mode {
            FlushMode::Memory => self.log.append_offset(),
            FlushMode::Async | FlushMode::Sync => self.log.ack_offset(),
        }
    }

    /// Whether the append behind `ticket` may be acknowledged to the producer.
    pub fn is_acknowledged(&self, ticket: &AppendTicket) -> bool {
        self.ack_offset() >= ticket.end_offset()
    }

    /// Group commit; call at the end of each executor tick. Returns the new ack offset.
    /// Uses the blocking-safe file operations; the shard's io_uring path uses
    /// [`Self::begin_commit`] / [`Self::finish_commit`] instead.
    pub async fn commit_step(&mut self) -> StoreResult<u64> {
        self.log.commit_step().await?;
        Ok(self.ack_offset())
    }

    /// Submit half of a group commit (see [`CommitLog::begin_commit`]): the job to run, or
    /// `None` when there is nothing to write or a job is already in flight. With `ring`, the
    /// job uses the ring operations and must run as a task of the shard.
    pub fn begin_commit(&mut self, ring: bool) -> StoreResult<Option<CommitJob<F>>> {
        self.log.begin_commit(ring)
    }

    /// Complete half of a group commit: hands a finished job back. Returns the new ack
    /// offset.
    pub fn finish_commit(&mut self, done: CommitDone) -> StoreResult<u64> {
        self.log.finish_commit(done)?;
        Ok(self.ack_offset())
    }

    /// Whether a job from [`Self::begin_commit`] is still out.
    pub fn commit_in_flight(&self) -> bool {
        self.log.commit_in_flight()
    }

    /// Commits run as ring jobs: the periodic CommitLog `fdatasync` of
    /// [`Self::persist_step`] is then asked of the next job instead of blocking the shard.
    pub fn set_ring_mode(&mut self, on: bool) {
        self.log.set_ring_mode(on);
    }

    /// Persists what runs behind the CommitLog: syncs the CommitLog (the periodic flush of
    /// async mode), writes ConsumeQueue and index entries, changed config/offset snapshots,
    /// and stores the checkpoint. Call every `flush_interval_ms`. Blocking-safe operations:
    /// the broker's ring mode uses [`Self::begin_persist`] / [`Self::finish_persist`].
    /// Fails if a persist job from [`Self::begin_persist`] is still out.
    pub async fn persist_step(&mut self) -> StoreResult<()> {
        if self.persist_in_flight {
            return Err(StoreError::Failed(
                "persist_step while a persist job is in flight".into(),
            ));
        }
        if let Some(job) = self.begin_persist(false).await? {
            let done = job.run().await;
            self.finish_persist(done)?;
        }
        Ok(())
    }

    /// Submit half of a persist (see [`persist_job`]): asks for the CommitLog sync (blocking
    /// unless in ring mode, where the next commit job does it), writes changed metadata
    /// snapshots, and takes everything else to write — queue entries of written records,
    /// index pages, the checkpoint — into a job. `None` when there is nothing to do or a job
    /// is already out (one at a time). With `ring`, the job must run as a task of the shard.
    pub async fn begin_persist(&mut self, ring: bool) -> StoreResult<Option<PersistJob<F>>> {
        if self.persist_in_flight {
            return Ok(None);
        }
        let written = self.log.written_offset();
        let synced = self.log.sync().await?;
        // In ring mode the snapshots are jobs of their own (`begin_meta_persist`).
        if !ring && self.meta_in_flight.is_none() {
            self.meta.persist(&self.fs).await?;
        }
        let mut batch = persist_job::PersistBatch::default();
        let mut targets = persist_job::PersistTargets::default();
        let mut new_files = Vec::new();
        for (topic, queues) in &mut self.queues {
            for (qid, q) in queues.iter_mut() {
                if !q.is_dirty() {
                    continue;
                }
                new_files.clear();
                if let Some(upto) =
                    q.prepare_persist(&self.fs, written, &mut batch, &mut new_files)?
                {
                    targets.queues.push((topic.clone(), *qid, upto));
                }
                for (first, index) in &new_files {
                    targets
                        .queue_files
                        .push((topic.clone(), *qid, *first, *index));
                }
            }
        }
        if self.config.index_enabled {
            targets.index = self.index.prepare_persist(&mut batch);
        }
        let previous = self.checkpoint.get();
        let checkpoint =
            if previous.commit_log_synced == synced && previous.dispatch_persisted == written {
                None
            } else {
                let prepared = self.checkpoint.prepare(Checkpoint {
                    sequence: 0,
                    physic_msg_timestamp: self.last_store_timestamp,
                    logics_msg_timestamp: self.last_store_timestamp,
                    index_msg_timestamp: self.last_store_timestamp,
                    commit_log_synced: synced,
                    dispatch_persisted: written,
                });
                targets.checkpoint = Some(prepared.value);
                Some(prepared.write)
            };
        if batch.is_empty() && checkpoint.is_none() {
            return Ok(None);
        }
        self.persist_in_flight = true;
        Ok(Some(PersistJob {
            fs: self.fs.clone(),
            ring,
            batch,
            checkpoint,
            targets,
            created: {
                self.persist_created.borrow_mut().clear();
                self.persist_created.clone()
            },
        }))
    }

    /// Complete half of a persist: advances what the job wrote. A failed job changes
    /// nothing (the next persist writes the same ranges again) and its error is returned.
    pub fn finish_persist(&mut self, done: PersistDone) -> StoreResult<()> {
        self.persist_in_flight = false;
        let ok = done.result.is_ok();
        let targets = done.targets;
        // Files the job created exist even if a later step failed: keep them open.
        let created = std::mem::take(&mut *self.persist_created.borrow_mut());
        for (topic, qid, first, index) in targets.queue_files {
            let file = created.get(index).cloned().flatten();
            if let (Some(q), Some(file)) = (
                self.queues.get_mut(&topic).and_then(|qs| qs.get_mut(&qid)),
                file,
            ) {
                q.install_file(first, file);
            }
        }
        if ok {
            for (topic, qid, upto) in targets.queues {
                if let Some(q) = self.queues.get_mut(&topic).and_then(|qs| qs.get_mut(&qid)) {
                    q.persisted_to(upto);
                }
            }
            if let Some(value) = targets.checkpoint {
                self.checkpoint.stored(value);
            }
        }
        self.index.persisted(targets.index, ok);
        if ok {
            self.evict_queue_entries();
        }
        done.result
    }

    /// Keeps the queues' in-memory entries within `consume_queue_cache_bytes`: past it, each
    /// queue above an equal share drops its oldest written and acknowledged entries (they
    /// are read back from the files when needed). Runs after each persist, when more
    /// entries have become evictable.
    fn evict_queue_entries(&mut self) {
        let budget = self.config.consume_queue_cache_bytes / consume_queue::CQ_ENTRY_BYTES as usize;
        let (mut total, mut count) = (0usize, 0usize);
        for q in self.queues.values().flat_map(|qs| qs.values()) {
            total += q.in_memory();
            count += 1;
        }
        if total <= budget || count == 0 {
            return;
        }
        let share = budget / count;
        let limit = self.ack_offset();
        let mut dropped = 0;
        for q in self.queues.values_mut().flat_map(|qs| qs.values_mut()) {
            dropped += q.evict(share, limit);
        }
        tracing::debug!(target: "store", dropped, queues = count, budget_entries = budget,
            "consume queue entries evicted from memory");
    }

    /// ConsumeQueue entries held in memory, all queues together.
    pub fn queue_entries_in_memory(&self) -> usize {
        self.queues
            .values()
            .flat_map(|qs| qs.values())
            .map(|q| q.in_memory())
            .sum()
    }

    /// Whether a job from [`Self::begin_persist`] is still out.
    pub fn persist_in_flight(&self) -> bool {
        self.persist_in_flight
    }

    /// Clean shutdown: writes and syncs everything, stores the checkpoint and removes the
    /// `abort` file, so the next start trusts the checkpoint.
    pub async fn close(mut self) -> StoreResult<()> {
        self.shutdown().await
    }

    /// [`Store::close`] for a store that cannot be moved out of its owner: the same clean
    /// shutdown, after which every append is refused with [`StoreError::ShutDown`] (reads
    /// still work). Calling it again does nothing.
    pub async fn shutdown(&mut self) -> StoreResult<()> {
        if self.shut_down {
            return Ok(());
        }
        self.shut_down = true;
        // From here on the commits are blocking: the caller has let any ring job finish.
        self.log.set_ring_mode(false);
        while self.log.has_pending() {
            self.log.commit_step().await?;
        }
        self.persist_step().await?;
        let abort = abort_path(&self.config.root);
        self.fs
            .remove_file(&abort)
            .map_err(|e| StoreError::io("remove", &abort, e))?;
        tracing::info!(target: "store", root = %self.config.root.display(), "store closed cleanly");
        Ok(())
    }

    /// Smallest retained logical offset of a queue (0 for an unknown queue).
    pub fn min_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queue(topic, queue_id).map_or(0, |q| q.min_offset())
    }

    /// Offset the next visible message of a queue gets: only acknowledged records count.
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> u64 {
        let limit = self.ack_offset();
        self.queue(topic, queue_id)
            .map_or(0, |q| q.visible_max_offset(limit))
    }

    fn queue(&self, topic: &str, queue_id: i32) -> Option<&ConsumeQueue<F::File>> {
        self.queues.get(topic)?.get(&queue_id)
    }

    /// Every (topic, queue id) the store holds.
    pub fn queue_ids(&self) -> Vec<(String, i32)> {
        let mut out: Vec<(String, i32)> = self
            .queues
            .iter()
            .flat_map(|(t, qs)| qs.keys().map(move |q| (t.clone(), *q)))
            .collect();
        out.sort();
        out
    }

    /// The CommitLog (read-only view, e.g. for the server's splice path).
    pub fn commit_log(&self) -> &CommitLog<F> {
        &self.log
    }

    /// Topic configs, subscription groups and consumer offsets.
    pub fn meta(&self) -> &snapshot::MetaStore {
        &self.meta
    }

    /// Mutable metadata; changes are written by [`Self::persist_meta`] or the next
    /// [`Self::persist_step`].
    pub fn meta_mut(&mut self) -> &mut snapshot::MetaStore {
        &mut self.meta
    }

    /// Writes changed metadata snapshots now, with blocking-safe calls (call after a topic
    /// or group change). Fails if a job from [`Self::begin_meta_persist`] is still out (the
    /// two would share the temp files).
    pub async fn persist_meta(&mut self) -> StoreResult<()> {
        if self.meta_in_flight.is_some() {
            return Err(StoreError::Failed(
                "persist_meta while a metadata snapshot job is in flight".into(),
            ));
        }
        self.meta.persist(&self.fs).await
    }

    /// Submit half of a metadata persist (see [`meta_job`]): serializes every changed table
    /// (topics, groups, offsets) here, on the shard thread, into a job that publishes them
    /// (temp file, `fdatasync`, rename, directory sync). `None` when nothing changed or a job
    /// is already out (one at a time: changes made meanwhile are written by the next job).
    /// With `ring`, the job must run as a task of the shard.
    pub fn begin_meta_persist(&mut self, ring: bool) -> StoreResult<Option<MetaJob<F>>> {
        if self.meta_in_flight.is_some() || !self.meta.is_dirty() {
            return Ok(None);
        }
        let writes = self.meta.take_changed()?;
        if writes.is_empty() {
            return Ok(None);
        }
        self.meta_in_flight = Some(writes.iter().map(|w| w.table).collect());
        Ok(Some(MetaJob {
            fs: self.fs.clone(),
            ring,
            dir: self.meta.dir().to_path_buf(),
            writes,
        }))
    }

    /// Complete half of a metadata persist: tables whose write failed are marked changed
    /// again (the next job retries them); the job's error is returned.
    pub fn finish_meta_persist(&mut self, done: MetaDone) -> StoreResult<()> {
        self.meta_in_flight = None;
        self.meta.mark_changed(&done.failed);
        done.result
    }

    /// Whether a job from [`Self::begin_meta_persist`] is still out.
    pub fn meta_persist_in_flight(&self) -> bool {
        self.meta_in_flight.is_some()
    }

    /// Whether a topic or group change is not yet durable: changed since the last job, or
    /// carried by the job in flight.
    pub fn meta_config_pending(&self) -> bool {
        self.meta.config_dirty()
            || self.meta_in_flight.as_ref().is_some_and(|tables| {
                tables
                    .iter()
                    .copied()
                    .any(snapshot::MetaStore::is_config_table)
            })
    }

    /// Whether disk usage has crossed the warning ratio (appends refused).
    pub fn is_disk_full(&self) -> bool {
        self.disk_full
    }
}

#[cfg(test)]
mod tests;
