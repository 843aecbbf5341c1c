//! [`ShardStore`] over the real per-shard store ([`crate::store::Store`]).
//!
//! Lives on its shard's thread. The store's reads and metadata writes are `async`; the
//! handlers are synchronous, so this adapter drives those futures with
//! [`crate::store::io::block_on`], which is correct because every file layer completes those
//! operations when polled ([`crate::store::io::StdFs`], the simulated one, and the blocking-safe
//! half of [`crate::store::uring::UringFs`]).
//!
//! Group commit has two modes:
//! * blocking ([`RealStore::open`]): `commit` runs [`Store::commit_step`] to completion;
//! * on the shard's io_uring ([`RealStore::open_on_ring`], what the broker runs): `commit`
//!   takes a [`crate::store::CommitJob`] out of the store and spawns it as a task of the
//!   shard (its `O_DIRECT` writes and `fdatasync` go through the ring), then returns at once;
//!   appends go on into the next write buffer meanwhile. When the job completes, the task
//!   parks its outcome here and calls the commit notifier (the server's `kick`), whose
//!   progress step (in the same turn of the shard's loop) calls `commit` again: the outcome
//!   is handed back to the store (offsets advance, buffers return), the acknowledgements it
//!   covers are released, and the next job starts. One job is in flight at a time.
//!
//! In ring mode the metadata snapshots (topics, groups, offsets) are jobs of the shard too
//! ([`crate::store::MetaJob`]): `save_meta` updates the tables and starts a job (temp file,
//! `fdatasync`, rename, directory sync on the ring) or, when one is out, leaves the change to
//! exactly one more job started when it completes. While a topic or group change is not yet
//! durable, [`ShardStore::durable_offset`] stays where it was at the change, so a message
//! sent to a topic just created is not acknowledged before the topic is on disk. Stopping,
//! `drain_commits` writes the last changes on the ring and waits for them.
//!
//! A pull that needs a ConsumeQueue page evicted from memory is given a ring read of it
//! ([`ShardStore::load_for`]); the pull handler runs it as a deferred task and answers once
//! the page is in the store's page cache.
//!
//! Pulls ask for file ranges ([`QueueRead::splice`]): records no longer in the tail cache
//! come back as [`FileSpan`]s, holding the store's pin on their segment, and the connection
//! writer splices them to the socket (see [`crate::server::splice`]); such a read never
//! touches the disk. Reads that need the bytes (`splice: false`, views by id or key, time
//! lookups) still read cold records through `block_on`.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;

use ringmq_wire::body::subscription::SubscriptionGroupConfig;
use ringmq_wire::body::topic::{TopicConfig, TopicFilterType};

use crate::server::store::{
    Appended, Boundary, FileSpan, GetStatus, MetaSnapshot, PutMessage, QueueRead, QueueReadResult,
    RecordBytes, ShardStore, StoreError,
};
use crate::store::io::{StoreFs, block_on};
use crate::store::{
    self, AppendMessage, CommitDone, GetMessage, RecordData, Store, StoreConfig,
    StoreError as DiskError, snapshot,
};

/// Called when a background commit completes (the server ticks on it).
pub type CommitNotify = Rc<dyn Fn()>;

/// The ring-mode state: where a finished job parks its outcome, and whom to tell.
struct RingCommits {
    done: Rc<RefCell<Option<CommitDone>>>,
    notify: Option<CommitNotify>,
    /// Set by [`ShardStore::drain_commits`]: no more background jobs.
    draining: bool,
    /// Where a finished persist job (queues, index, checkpoint) parks its outcome.
    persisted: Rc<RefCell<Option<crate::store::PersistDone>>>,
    /// Metadata snapshots on the ring; see [`RingMeta`].
    meta: RingMeta,
}

/// Ring mode's metadata snapshots: the job out, what was asked, and the acknowledgement
/// fence.
#[derive(Default)]
struct RingMeta {
    /// Where a finished snapshot job parks its outcome.
    done: Rc<RefCell<Option<crate::store::MetaDone>>>,
    /// A save asked for a job since the last one started.
    wanted: bool,
    /// While a topic or group change is not durable yet: acknowledgements stop at this
    /// CommitLog offset (what was acknowledged when the change was saved), so that a send
    /// to a topic created by it is never acknowledged before the topic is on disk.
    fence: Option<u64>,
    /// Jobs started (tests, stats).
    jobs_started: u64,
}

/// The real store of one shard behind the [`ShardStore`] interface.
pub struct RealStore<F: StoreFs> {
    store: Store<F>,
    ring: Option<RingCommits>,
    /// The last segment path handed out, shared by the spans of one segment.
    last_path: RefCell<Option<(u64, Rc<Path>)>>,
}

impl<F: StoreFs> std::fmt::Debug for RealStore<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealStore")
            .field("ack_offset", &self.store.ack_offset())
            .finish()
    }
}

impl<F: StoreFs + 'static> RealStore<F> {
    /// Opens (recovering if needed) the store of one shard; group commits are blocking.
    pub fn open(fs: F, config: StoreConfig) -> Result<Self, DiskError> {
        Ok(RealStore {
            store: block_on(Store::open(fs, config))?,
            ring: None,
            last_path: RefCell::new(None),
        })
    }

    /// Opens the store of one shard with group commits run as tasks of the shard, on its
    /// io_uring (with [`crate::store::uring::UringFs`]; see the module docs). Must be
    /// called on the shard's thread.
    pub fn open_on_ring(fs: F, config: StoreConfig) -> Result<Self, DiskError> {
        let mut store = block_on(Store::open(fs, config))?;
        store.set_ring_mode(true);
        Ok(RealStore {
            store,
            ring: Some(RingCommits {
                done: Rc::new(RefCell::new(None)),
                notify: None,
                draining: false,
                persisted: Rc::new(RefCell::new(None)),
                meta: RingMeta::default(),
            }),
            last_path: RefCell::new(None),
        })
    }

    /// Sets what to call when a background commit completes (the server's `kick`, so that
    /// acknowledgements go out at once, in the same turn of the shard's loop).
    pub fn set_commit_notify(&mut self, notify: CommitNotify) {
        if let Some(ring) = self.ring.as_mut() {
            ring.notify = Some(notify);
        }
    }

    /// Whether a background commit job is running (its outcome not yet parked).
    pub fn commit_running(&self) -> bool {
        self.ring
            .as_ref()
            .is_some_and(|r| r.done.borrow().is_none() && self.store.commit_in_flight())
    }

    /// Hands a finished background job back to the store. Returns whether a job is still
    /// in flight.
    fn harvest(&mut self) -> Result<bool, StoreError> {
        let Some(ring) = self.ring.as_ref() else {
            return Ok(false);
        };
        let done = ring.done.borrow_mut().take();
        if let Some(done) = done {
            self.store.finish_commit(done).map_err(convert)?;
        }
        Ok(self.store.commit_in_flight())
    }

    /// Ring mode: hands a finished persist job back, and starts the next one (queue and
    /// index writes, checkpoint) as a task of the shard if none is out. Returns whether a
    /// persist job is in flight.
    fn persist_on_ring(&mut self, start: bool) -> Result<bool, StoreError> {
        let Some(ring) = self.ring.as_ref() else {
            return Ok(false);
        };
        let parked = ring.persisted.clone();
        let done = parked.borrow_mut().take();
        if let Some(done) = done {
            self.store.finish_persist(done).map_err(convert)?;
        }
        if self.store.persist_in_flight() || !start {
            return Ok(self.store.persist_in_flight());
        }
        // Ready at once in ring mode: the CommitLog sync is asked of the next commit job.
        let Some(job) = block_on(self.store.begin_persist(true)).map_err(convert)? else {
            return Ok(false);
        };
        crate::runtime::spawn_local(async move {
            let outcome = job.run().await;
            *parked.borrow_mut() = Some(outcome);
        });
        Ok(true)
    }

    /// Ring mode: finishes the previous job if it is done and starts the next one.
    fn commit_on_ring(&mut self) -> Result<(), StoreError> {
        if self.harvest()? {
            return Ok(());
        }
        let Some(ring) = self.ring.as_ref() else {
            return Ok(());
        };
        if ring.draining {
            return block_on(self.store.commit_step())
                .map(drop)
                .map_err(convert);
        }
        let Some(job) = self.store.begin_commit(true).map_err(convert)? else {
            return Ok(());
        };
        let done = ring.done.clone();
        let notify = ring.notify.clone();
        crate::runtime::spawn_local(async move {
            let outcome = job.run().await;
            *done.borrow_mut() = Some(outcome);
            if let Some(notify) = notify {
                notify();
            }
        });
        Ok(())
    }

    /// Ring mode: hands a finished metadata snapshot job back, then starts the next one if
    /// a save asked for it (`meta.wanted`) and tables changed: changes made while a job is
    /// out coalesce into exactly one more job. Updates the acknowledgement fence. Returns
    /// whether a job is in flight.
    fn meta_on_ring(&mut self) -> Result<bool, StoreError> {
        let Some(ring) = self.ring.as_mut() else {
            return Ok(false);
        };
        let done = ring.meta.done.borrow_mut().take();
        let mut result = Ok(());
        if let Some(done) = done {
            result = self.store.finish_meta_persist(done).map_err(convert);
        }
        if ring.meta.wanted && !self.store.meta_persist_in_flight() {
            ring.meta.wanted = false;
            if let Some(job) = self.store.begin_meta_persist(true).map_err(convert)? {
                ring.meta.jobs_started += 1;
                let parked = ring.meta.done.clone();
                let notify = ring.notify.clone();
                crate::runtime::spawn_local(async move {
                    let outcome = job.run().await;
                    *parked.borrow_mut() = Some(outcome);
                    if let Some(notify) = notify {
                        notify();
                    }
                });
            }
        }
        if !self.store.meta_config_pending() {
            ring.meta.fence = None;
        }
        result.map(|()| self.store.meta_persist_in_flight())
    }

    /// Metadata snapshot jobs started on the ring so far (tests, stats).
    pub fn meta_jobs_started(&self) -> u64 {
        self.ring.as_ref().map_or(0, |r| r.meta.jobs_started)
    }

    fn segment_path(&self, segment: u64, path: &Path) -> Rc<Path> {
        let mut last = self.last_path.borrow_mut();
        match last.as_ref() {
            Some((start, shared)) if *start == segment => shared.clone(),
            _ => {
                let shared: Rc<Path> = Rc::from(path);
                *last = Some((segment, shared.clone()));
                shared
            }
        }
    }

    /// The store itself (admin tools, retention, snapshots).
    pub fn inner(&self) -> &Store<F> {
        &self.store
    }

    /// The store itself, mutably.
    pub fn inner_mut(&mut self) -> &mut Store<F> {
        &mut self.store
    }

    /// Flushes and closes the store (clean shutdown).
    pub fn close(self) -> Result<(), DiskError> {
        block_on(self.store.close())
    }
}

/// Polls `future` once: its output if it is ready without waiting, else `None` (the future
/// is dropped, which cancels whatever it started).
fn now_or_never<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

fn convert(error: DiskError) -> StoreError {
    match error {
        DiskError::DiskFull { .. } => StoreError::NotWritable {
            reason: error.to_string(),
        },
        DiskError::Busy { .. } => StoreError::Busy {
            reason: error.to_string(),
        },
        DiskError::ShutDown => StoreError::NotWritable {
            reason: error.to_string(),
        },
        DiskError::Message(_) => StoreError::MessageIllegal {
            reason: error.to_string(),
        },
        other => StoreError::Failed {
            context: other.to_string(),
        },
    }
}

fn status(status: store::GetStatus) -> GetStatus {
    match status {
        store::GetStatus::Found => GetStatus::Found,
        store::GetStatus::NoMatchedMessage => GetStatus::NoMatchedMessage,
        store::GetStatus::NoMessageInQueue => GetStatus::NoMessageInQueue,
        store::GetStatus::OffsetOverflowOne => GetStatus::OffsetOverflowOne,
        store::GetStatus::OffsetOverflowBadly => GetStatus::OffsetOverflowBadly,
        store::GetStatus::OffsetTooSmall => GetStatus::OffsetTooSmall,
        store::GetStatus::NoMatchedLogicQueue => GetStatus::NoMatchedLogicQueue,
    }
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl<F: StoreFs + 'static> ShardStore for RealStore<F> {
    fn append(&mut self, message: PutMessage) -> Result<Appended, StoreError> {
        let append = AppendMessage {
            topic: &message.topic,
            queue_id: message.queue_id,
            flag: message.flag,
            sys_flag: message.sys_flag,
            born_timestamp: message.born_timestamp,
            born_host: message.born_host,
            reconsume_times: message.reconsume_times,
            prepared_transaction_offset: message.prepared_transaction_offset,
            body: &message.body,
            properties: message.properties.as_bytes(),
            tag_code: Some(message.tags_code),
        };
        let ticket = self.store.append(&append).map_err(convert)?;
        Ok(Appended {
            physical_offset: signed(ticket.physical_offset),
            queue_offset: signed(ticket.queue_offset),
            store_timestamp: ticket.store_timestamp,
            size: ticket.size,
            end_offset: ticket.end_offset(),
        })
    }

    fn durable_offset(&self) -> u64 {
        let ack = self.store.ack_offset();
        match self.ring.as_ref().and_then(|r| r.meta.fence) {
            Some(fence) => ack.min(fence),
            None => ack,
        }
    }

    fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
        signed(self.store.min_offset(topic, queue_id))
    }

    fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        signed(self.store.max_offset(topic, queue_id))
    }

    fn get(&self, read: &QueueRead<'_>) -> Result<QueueReadResult, StoreError> {
        if read.offset < 0 {
            let min = self.min_offset(read.topic, read.queue_id);
            return Ok(QueueReadResult {
                status: GetStatus::OffsetTooSmall,
                next_begin_offset: min,
                min_offset: min,
                max_offset: self.max_offset(read.topic, read.queue_id),
                records: Vec::new(),
            });
        }
        let request = GetMessage {
            topic: read.topic,
            queue_id: read.queue_id,
            offset: read.offset as u64,
            max_count: read.max_count,
            max_bytes: read.max_bytes,
            tag_codes: read.tag_codes,
            file_ranges: read.splice,
        };
        let result = if read.splice {
            // A read that may answer with file ranges never waits for the disk: records are
            // in the tail cache, in the write buffers, or spliced later by the writer. Poll
            // it once; a read that would still wait is refused rather than blocking the
            // shard (it cannot happen with the std file layer, whose reads are immediate).
            now_or_never(self.store.get_message(&request)).ok_or_else(|| StoreError::Busy {
                reason: format!(
                    "a pull of {}:{} at {} needed a blocking disk read",
                    read.topic, read.queue_id, read.offset
                ),
            })?
        } else {
            block_on(self.store.get_message(&request))
        }
        .map_err(convert)?;
        let mut records = Vec::with_capacity(result.records.len());
        for record in result.records {
            let bytes = match &record.data {
                RecordData::Memory(bytes) => RecordBytes::Memory(bytes.clone()),
                RecordData::File(range) => {
                    let segment =
                        self.store
                            .commit_log()
                            .segment(range.segment)
                            .ok_or_else(|| StoreError::Failed {
                                context: format!(
                                    "no commit log segment at offset {} for a file read",
                                    range.segment
                                ),
                            })?;
                    let path = self.segment_path(range.segment, &segment.path);
                    RecordBytes::File(FileSpan {
                        path,
                        offset: range.file_pos,
                        len: range.len,
                        // The read record holds the store's pin on its segment.
                        guard: Some(Rc::new(record) as Rc<dyn std::any::Any>),
                    })
                }
            };
            records.push(bytes);
        }
        Ok(QueueReadResult {
            status: status(result.status),
            next_begin_offset: signed(result.next_offset),
            min_offset: signed(result.min_offset),
            max_offset: signed(result.max_offset),
            records,
        })
    }

    fn read_at(&self, physical_offset: i64) -> Result<Bytes, StoreError> {
        let offset = u64::try_from(physical_offset).map_err(|_| StoreError::NotFound {
            offset: physical_offset,
        })?;
        match block_on(self.store.read_message_at(offset)).map_err(convert)? {
            Some(message) => Ok(message.raw),
            None => Err(StoreError::NotFound {
                offset: physical_offset,
            }),
        }
    }

    fn is_hot(&self, topic: &str, queue_id: i32, offset: i64) -> bool {
        // The first record of a queue that never rolled is what the offset-0 rule asks about;
        // the store keeps recent data in its tail cache and the rest in the page cache, so
        // "still stored" is the closest honest answer without a residency probe.
        offset >= self.min_offset(topic, queue_id) && offset < self.max_offset(topic, queue_id)
    }

    fn offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> i64 {
        let lookup = |ts: i64| {
            block_on(self.store.offset_by_timestamp(topic, queue_id, ts))
                .map(signed)
                .unwrap_or_else(|e| {
                    tracing::warn!(target: "ringmq::server::store", %e, "offset by time failed");
                    self.max_offset(topic, queue_id)
                })
        };
        match boundary {
            Boundary::Lower => lookup(timestamp_ms),
            Boundary::Upper => {
                let after = lookup(timestamp_ms.saturating_add(1));
                (after - 1).max(self.min_offset(topic, queue_id))
            }
        }
    }

    fn store_time(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        let result = self
            .get(&QueueRead {
                topic,
                queue_id,
                offset,
                max_count: 1,
                max_bytes: usize::MAX,
                tag_codes: None,
                splice: false,
            })
            .ok()?;
        let record = result.records.first()?.memory()?;
        ringmq_wire::record::StoredMessage::decode(record, false)
            .ok()
            .map(|m| m.layout.store_timestamp)
    }

    fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Bytes>, StoreError> {
        let found = block_on(self.store.query_by_key(topic, key, max, begin_ms, end_ms))
            .map_err(convert)?;
        Ok(found.into_iter().map(|m| m.raw).collect())
    }

    fn read_record(&self, physical_offset: i64) -> crate::server::store::RecordRead {
        crate::server::ring_read::read_record(
            &self.store,
            self.ring.is_some(),
            physical_offset,
            || self.read_at(physical_offset),
        )
    }

    fn query_by_key_read(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> crate::server::store::RecordsRead {
        crate::server::ring_read::query_by_key_read(
            &self.store,
            self.ring.is_some(),
            topic,
            key,
            max,
            (begin_ms, end_ms),
            || self.query_by_key(topic, key, max, begin_ms, end_ms),
        )
    }

    fn candidates_read(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        candidates: Vec<u64>,
    ) -> crate::server::store::RecordsRead {
        if self.ring.is_none() {
            return crate::server::store::read_candidates_now(self, topic, key, max, candidates);
        }
        crate::server::ring_read::records_of_candidates(&self.store, topic, key, max, candidates)
    }

    fn load_for(&self, read: &QueueRead<'_>) -> Option<crate::server::store::ReadFuture<()>> {
        self.ring.as_ref()?;
        let request = GetMessage {
            topic: read.topic,
            queue_id: read.queue_id,
            offset: u64::try_from(read.offset).ok()?,
            max_count: read.max_count,
            max_bytes: read.max_bytes,
            tag_codes: read.tag_codes,
            file_ranges: read.splice,
        };
        match self.store.missing_queue_page(&request) {
            Ok(Some(load)) => Some(Box::pin(async move { load.load().await.map_err(convert) })),
            Ok(None) => None,
            // The read itself reports it.
            Err(_) => None,
        }
    }

    fn commit_log_min_offset(&self) -> i64 {
        signed(self.store.commit_log().min_offset())
    }

    fn commit_log_max_offset(&self) -> i64 {
        signed(self.store.commit_log().append_offset())
    }

    fn delete_topic(&mut self, topic: &str) {
        // The store has no queue deletion yet: the topic's queue files stay until retention
        // removes the CommitLog data they point at.
        tracing::info!(target: "ringmq::server::store", topic,
            "topic deleted; its queue files are left to retention");
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if self.ring.is_some() {
            if let Err(error) = self.meta_on_ring() {
                tracing::error!(target: "ringmq::server::store", %error,
                    "metadata snapshot failed; retried at the next persist");
            }
            return self.commit_on_ring();
        }
        block_on(self.store.commit_step())
            .map(|_| ())
            .map_err(convert)
    }

    fn drain_commits(&mut self) -> bool {
        let Some(ring) = self.ring.as_mut() else {
            return false;
        };
        if !ring.draining {
            ring.draining = true;
            // The periodic CommitLog sync blocks again from here on: the shard is stopping.
            self.store.set_ring_mode(false);
        }
        let persisting = match self.persist_on_ring(false) {
            Ok(in_flight) => in_flight,
            Err(error) => {
                tracing::error!(target: "ringmq::server::store", %error, "persist failed");
                false
            }
        };
        // The last metadata changes are written (on the ring) and awaited before the stop.
        if let Some(ring) = self.ring.as_mut() {
            ring.meta.wanted |= self.store.meta().is_dirty();
        }
        let persisting = match self.meta_on_ring() {
            Ok(in_flight) => in_flight || persisting,
            Err(error) => {
                tracing::error!(target: "ringmq::server::store", %error,
                    "metadata snapshot failed while stopping");
                persisting
            }
        };
        match self.harvest() {
            Ok(in_flight) => in_flight || persisting,
            Err(error) => {
                tracing::error!(target: "ringmq::server::store", %error, "group commit failed");
                persisting
            }
        }
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        match self.ring.as_ref().map(|r| r.draining) {
            Some(false) => {
                self.persist_on_ring(true)?;
            }
            // Stopping: the shutdown waits for a persist job still out (drain_commits).
            Some(true) if self.persist_on_ring(false)? => {}
            _ => block_on(self.store.persist_step()).map_err(convert)?,
        }
        // In ring mode the CommitLog sync was asked of the next job: start it if idle. A
        // metadata snapshot that failed is retried here (not at every commit).
        if let Some(ring) = self.ring.as_mut() {
            ring.meta.wanted |= self.store.meta().is_dirty();
            self.commit()?;
        }
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        if self.drain_commits() {
            return Err(StoreError::Failed {
                context: "a group commit is still in flight on the ring; shutdown must wait \
                          for drain_commits() to return false"
                    .into(),
            });
        }
        block_on(self.store.shutdown()).map_err(convert)
    }

    fn load_meta(&self) -> MetaSnapshot {
        let meta = self.store.meta();
        MetaSnapshot {
            topics: meta.topics().topics.values().map(topic_from_disk).collect(),
            groups: meta.groups().groups.values().map(group_from_disk).collect(),
            offsets: meta.offsets().table.clone(),
        }
    }

    fn save_meta(&mut self, snapshot: &MetaSnapshot) -> Result<(), StoreError> {
        let now = store::now_ms();
        let meta = self.store.meta_mut();
        let stale_topics: Vec<String> = meta
            .topics()
            .topics
            .keys()
            .filter(|name| !snapshot.topics.iter().any(|t| &t.topic_name == *name))
            .cloned()
            .collect();
        for name in stale_topics {
            meta.remove_topic(&name, now);
        }
        for topic in &snapshot.topics {
            let disk = topic_to_disk(topic);
            if meta.topics().topics.get(&topic.topic_name) != Some(&disk) {
                meta.put_topic(disk, now);
            }
        }
        let stale_groups: Vec<String> = meta
            .groups()
            .groups
            .keys()
            .filter(|name| !snapshot.groups.iter().any(|g| &g.group_name == *name))
            .cloned()
            .collect();
        for name in stale_groups {
            meta.remove_group(&name);
        }
        for group in &snapshot.groups {
            let disk = group_to_disk(group);
            if meta.groups().groups.get(&group.group_name) != Some(&disk) {
                meta.put_group(disk);
            }
        }
        for ((topic, group), queues) in &snapshot.offsets {
            for (queue_id, offset) in queues {
                if meta.query_offset(topic, group, *queue_id) != Some(*offset) {
                    meta.commit_offset(topic, group, *queue_id, *offset);
                }
            }
        }
        let config_changed = meta.config_dirty();
        match self.ring.as_mut() {
            // On the ring: the snapshot job starts now (or after the one in flight); a topic
            // or group change holds acknowledgements back until it is durable.
            Some(ring) if !ring.draining => {
                if config_changed {
                    let ack = self.store.ack_offset();
                    ring.meta.fence = Some(ring.meta.fence.map_or(ack, |f| f.min(ack)));
                }
                ring.meta.wanted = true;
                self.meta_on_ring().map(drop)
            }
            // Stopping (the job in flight was awaited by drain_commits), or blocking mode.
            _ => block_on(self.store.persist_meta()).map_err(convert),
        }
    }
}

fn topic_to_disk(topic: &TopicConfig) -> snapshot::TopicConfig {
    snapshot::TopicConfig {
        topic_name: topic.topic_name.clone(),
        read_queue_nums: topic.read_queue_nums.max(0) as u32,
        write_queue_nums: topic.write_queue_nums.max(0) as u32,
        perm: topic.perm.max(0) as u32,
        topic_filter_type: match topic.topic_filter_type {
            TopicFilterType::SingleTag => 0,
            TopicFilterType::MultiTag => 1,
        },
        topic_sys_flag: topic.topic_sys_flag.max(0) as u32,
        order: topic.order,
        attributes: topic
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn topic_from_disk(topic: &snapshot::TopicConfig) -> TopicConfig {
    TopicConfig {
        attributes: topic.attributes.iter().cloned().collect(),
        order: topic.order,
        perm: topic.perm as i32,
        read_queue_nums: topic.read_queue_nums as i32,
        topic_filter_type: if topic.topic_filter_type == 1 {
            TopicFilterType::MultiTag
        } else {
            TopicFilterType::SingleTag
        },
        topic_name: topic.topic_name.clone(),
        topic_sys_flag: topic.topic_sys_flag as i32,
        write_queue_nums: topic.write_queue_nums as i32,
    }
}

fn group_to_disk(group: &SubscriptionGroupConfig) -> snapshot::SubscriptionGroupConfig {
    snapshot::SubscriptionGroupConfig {
        group_name: group.group_name.clone(),
        consume_enable: group.consume_enable,
        consume_from_min_enable: group.consume_from_min_enable,
        consume_broadcast_enable: group.consume_broadcast_enable,
        retry_queue_nums: group.retry_queue_nums,
        retry_max_times: group.retry_max_times,
        broker_id: group.broker_id,
        which_broker_when_consume_slowly: group.which_broker_when_consume_slowly,
        notify_consumer_ids_changed_enable: group.notify_consumer_ids_changed_enable,
    }
}

fn group_from_disk(group: &snapshot::SubscriptionGroupConfig) -> SubscriptionGroupConfig {
    SubscriptionGroupConfig {
        consume_enable: group.consume_enable,
        consume_from_min_enable: group.consume_from_min_enable,
        consume_broadcast_enable: group.consume_broadcast_enable,
        retry_queue_nums: group.retry_queue_nums,
        retry_max_times: group.retry_max_times,
        broker_id: group.broker_id,
        which_broker_when_consume_slowly: group.which_broker_when_consume_slowly,
        notify_consumer_ids_changed_enable: group.notify_consumer_ids_changed_enable,
        ..SubscriptionGroupConfig::new(group.group_name.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ringmq_wire::header::CommandHeader;
    use ringmq_wire::header::send::SendMessageResponseHeader;
    use ringmq_wire::msgid::parse_offset_msg_id;

    use super::*;
    use crate::config::{BrokerConfig, FlushMode};
    use crate::server::handler::testing::{CONN, pull_request, records, send_request};
    use crate::server::mem_store::test_addr;
    use crate::server::state::{ShardIdentity, ShardState};
    use crate::store::io::StdFs;

    fn shard(dir: &std::path::Path, mode: store::FlushMode) -> ShardState<RealStore<StdFs>> {
        let mut store_config = StoreConfig::for_tests(dir);
        store_config.flush_mode = mode;
        store_config.direct_io = false;
        store_config.store_host = test_addr(10911);
        let mut config = BrokerConfig::standalone();
        config.store.flush_mode = match mode {
            store::FlushMode::Sync => FlushMode::Sync,
            store::FlushMode::Memory => FlushMode::Memory,
            store::FlushMode::Async => FlushMode::Async,
        };
        let store = RealStore::open(StdFs, store_config).expect("store opens");
        let identity = ShardIdentity::of(&config, 0, test_addr(10911));
        ShardState::new(identity, Arc::new(config), store, 1_700_000_000_000)
    }

    #[test]
    fn send_then_pull_round_trips_through_the_real_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = shard(dir.path(), store::FlushMode::Async);
        let now = 1_700_000_000_000;
        let mut offsets = Vec::new();
        for body in [&b"one"[..], b"two"] {
            let sent = state.handle(CONN, send_request("T", 0, body, &[("KEYS", "k")]), now);
            // Async flush: the ack waits for the group commit at the end of the batch.
            assert!(sent.is_none());
            state.after_requests(now);
            let out = state.take_outbox();
            assert_eq!(out.len(), 1);
            let header = SendMessageResponseHeader::decode(&out[0].command).expect("header");
            offsets.push(header.queue_offset);
            let (_, phys) = parse_offset_msg_id(&header.msg_id).expect("msg id");
            assert_eq!(state.store.read_at(phys).map(|r| !r.is_empty()), Ok(true));
        }
        assert_eq!(offsets, vec![0, 1]);
        let pulled = state
            .handle(CONN, pull_request("G", "T", 0, 0, "*", false), now)
            .expect("answer");
        assert_eq!(pulled.code, 0, "{:?}", pulled.remark);
        let messages = records(&pulled.body);
        assert_eq!(messages.len(), 2);
        assert_eq!(&messages[1].body()[..], b"two");
        assert_eq!(
            state
                .store
                .query_by_key("T", "k", 10, 0, i64::MAX)
                .expect("query")
                .len(),
            2
        );
        assert!(state.store.is_hot("T", 0, 0));
        state.store.persist().expect("persist");
    }

    #[test]
    fn topics_groups_and_offsets_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = 1_700_000_000_000;
        {
            let mut state = shard(dir.path(), store::FlushMode::Async);
            state
                .topics
                .create_or_update(TopicConfig::new("Kept", 3), now)
                .expect("topic");
            let mut group = SubscriptionGroupConfig::new("G");
            group.retry_max_times = 5;
            state.groups.update(group, now).expect("group");
            state.offsets.commit("G", "Kept", 2, 42);
            state.persist_meta().expect("persist meta");
            state.store.persist().expect("persist");
            let ShardState { store, .. } = state;
            store.close().expect("close");
        }
        let state = shard(dir.path(), store::FlushMode::Async);
        assert_eq!(state.topics.get("Kept").map(|t| t.read_queue_nums), Some(3));
        assert_eq!(state.groups.get("G").map(|g| g.retry_max_times), Some(5));
        assert_eq!(state.offsets.query("G", "Kept", 2), Some(42));
    }

    #[test]
    fn ring_commits_release_acks_after_the_write_completes_and_drain_before_shutdown() {
        use crate::runtime::{RuntimeConfig, Shard, yield_now};
        use crate::store::uring::UringFs;
        let dir = tempfile::tempdir().expect("tempdir");
        let shard = Shard::new(&RuntimeConfig::for_tests()).expect("shard");
        shard.block_on(async {
            let mut store_config = StoreConfig::for_tests(dir.path());
            store_config.flush_mode = store::FlushMode::Sync;
            store_config.store_host = test_addr(10911);
            let mut store =
                RealStore::open_on_ring(UringFs::new(), store_config).expect("store opens");
            let kicked = Rc::new(std::cell::Cell::new(0u32));
            let counter = kicked.clone();
            store.set_commit_notify(Rc::new(move || counter.set(counter.get() + 1)));
            let mut config = BrokerConfig::standalone();
            config.store.flush_mode = FlushMode::Sync;
            let identity = ShardIdentity::of(&config, 0, test_addr(10911));
            let mut state = ShardState::new(identity, Arc::new(config), store, 1_700_000_000_000);
            let now = 1_700_000_000_000;
            assert!(
                state
                    .handle(CONN, send_request("T", 0, b"a", &[]), now)
                    .is_none()
            );
            // The commit is submitted to the ring; the ack waits for its completion.
            state.after_requests(now);
            assert!(state.take_outbox().is_empty());
            assert!(state.store.commit_running());
            // The send auto-created "T": its ack also waits for the topic's snapshot job,
            // whose completion notifies the server too.
            let mut acked = Vec::new();
            for _ in 0..10_000 {
                if kicked.get() > 0 {
                    state.tick(now);
                    acked.extend(state.take_outbox());
                    if !acked.is_empty() {
                        break;
                    }
                }
                yield_now().await;
            }
            assert!(kicked.get() >= 1, "the completion notifies the server");
            assert!(!state.store.inner().meta_config_pending());
            assert_eq!(acked.len(), 1, "send acknowledged after the fdatasync");
            // A second send: its job is in flight when shutdown starts draining.
            state.handle(CONN, send_request("T", 0, b"b", &[]), now);
            state.after_requests(now);
            while state.store.drain_commits() {
                yield_now().await;
            }
            state.after_requests(now);
            assert_eq!(state.take_outbox().len(), 1);
            state.store.shutdown().expect("clean shutdown");
        });
        let reopened = shard_on_std(dir.path());
        assert_eq!(reopened.store.max_offset("T", 0), 2);
        assert!(!reopened.store.inner().recovered_from_crash);
    }

    fn shard_on_std(dir: &std::path::Path) -> ShardState<RealStore<StdFs>> {
        shard(dir, store::FlushMode::Sync)
    }

    #[test]
    fn long_poll_is_woken_after_the_group_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = shard(dir.path(), store::FlushMode::Sync);
        let now = 1_700_000_000_000;
        assert!(
            state
                .handle(CONN, send_request("T", 0, b"a", &[]), now)
                .is_none()
        );
        state.after_requests(now);
        state.take_outbox();
        assert!(
            state
                .handle(CONN, pull_request("G", "T", 0, 1, "*", true), now)
                .is_none()
        );
        assert!(
            state
                .handle(CONN, send_request("T", 0, b"b", &[]), now)
                .is_none()
        );
        assert!(state.take_outbox().is_empty());
        state.after_requests(now);
        let out = state.take_outbox();
        assert_eq!(out.len(), 2, "send ack and woken pull: {out:?}");
        let pull = out
            .iter()
            .find(|o| !o.command.body.is_empty())
            .expect("pull answer");
        assert_eq!(&records(&pull.command.body)[0].body()[..], b"b");
    }
}

#[cfg(test)]
#[path = "store_ring_tests.rs"]
mod ring_tests;
