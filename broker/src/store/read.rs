//! Reads: by queue (pull), by physical offset (msgId), by key (index), by time; and the
//! read pins that keep retention away from segments a reader still uses.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_wire::record::{RecordAt, StoredMessage, decode_record_at};

use super::Store;
use super::commit_log::FileRange;
use super::consume_queue::{ConsumeQueue, CqEntry, CqPageCache, CqPageLoad};
use super::error::{StoreError, StoreResult};
use super::io::{StoreFile, StoreFs};

/// A pull request as the store sees it.
#[derive(Debug, Clone)]
pub struct GetMessage<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Queue id.
    pub queue_id: i32,
    /// First logical offset wanted.
    pub offset: u64,
    /// At most this many messages (capped by the store's `pull_messages_max`).
    pub max_count: usize,
    /// At most this many bytes (the first message is always returned whole).
    pub max_bytes: usize,
    /// Tag hash codes accepted; `None` or empty = every message.
    pub tag_codes: Option<&'a [i64]>,
    /// Return records not in memory as file ranges (for `splice`) instead of reading them.
    pub file_ranges: bool,
}

/// The outcome of a queue read (RocketMQ's `GetMessageStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// Messages were found.
    Found,
    /// Messages exist from `offset` on but none matched the tag filter (within the scan).
    NoMatchedMessage,
    /// The queue is empty.
    NoMessageInQueue,
    /// `offset` equals the max offset: nothing new yet (long-poll).
    OffsetOverflowOne,
    /// `offset` is beyond the max offset.
    OffsetOverflowBadly,
    /// `offset` is below the min offset (retention deleted it): answer "offset moved".
    OffsetTooSmall,
    /// The queue does not exist.
    NoMatchedLogicQueue,
}

/// Where a returned record's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// In memory (tail cache or read from the file).
    Memory(Bytes),
    /// On disk, for `splice`; the range is pinned while the [`ReadRecord`] lives.
    File(FileRange),
}

/// One record of a read.
#[derive(Debug)]
pub struct ReadRecord {
    /// Logical offset in its queue.
    pub queue_offset: u64,
    /// CommitLog offset.
    pub physical_offset: u64,
    /// Record size.
    pub size: u32,
    /// Tag code from the queue entry.
    pub tag_code: i64,
    /// The bytes.
    pub data: RecordData,
    _pin: Option<Pin>,
}

/// Result of [`Store::get_message`].
#[derive(Debug)]
pub struct GetResult {
    /// Status.
    pub status: GetStatus,
    /// Records, in queue order.
    pub records: Vec<ReadRecord>,
    /// Offset to pull next (for `OffsetTooSmall`, the new minimum).
    pub next_offset: u64,
    /// Queue min offset.
    pub min_offset: u64,
    /// Queue max (visible) offset.
    pub max_offset: u64,
    /// Sum of record sizes.
    pub total_bytes: usize,
}

impl GetResult {
    fn push(&mut self, queue_offset: u64, entry: CqEntry, data: RecordData, pin: Option<Pin>) {
        self.total_bytes += entry.size as usize;
        self.records.push(ReadRecord {
            queue_offset,
            physical_offset: entry.phys,
            size: entry.size,
            tag_code: entry.tag_code,
            data,
            _pin: pin,
        });
    }
}

/// Segment pin counts shared with outstanding [`ReadRecord`]s.
#[derive(Debug, Default, Clone)]
pub(super) struct Pins(Rc<RefCell<BTreeMap<u64, u32>>>);

impl Pins {
    fn pin(&self, segment: u64) -> Pin {
        *self.0.borrow_mut().entry(segment).or_default() += 1;
        Pin {
            pins: self.clone(),
            segment,
        }
    }

    pub(super) fn is_pinned(&self, segment: u64) -> bool {
        self.0.borrow().get(&segment).is_some_and(|n| *n > 0)
    }
}

/// Keeps a segment from being deleted while a reader uses it.
#[derive(Debug)]
struct Pin {
    pins: Pins,
    segment: u64,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut map = self.pins.0.borrow_mut();
        if let Some(n) = map.get_mut(&self.segment) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.segment);
            }
        }
    }
}

/// How many queue entries one read may scan past non-matching tags (bounds the work of a
/// filtered pull).
const FILTER_SCAN_MAX: usize = 16 * 1024;

/// The ConsumeQueue half of a queue read: which entries it returns, scanned from
/// `req.offset` within the count, byte and filter limits. Resumable: [`QueueScan::advance`]
/// stops at the first page that is neither in memory nor cached and goes on from there once
/// that page is loaded.
struct QueueScan<'r> {
    filter: Option<&'r [i64]>,
    max_count: usize,
    max_bytes: usize,
    /// The queue's visible end.
    end: u64,
    offset: u64,
    scanned: usize,
    picked_bytes: usize,
    picked: Vec<(u64, CqEntry)>,
    /// Offset to pull next.
    next: u64,
    memo: Option<(u64, Rc<[CqEntry]>)>,
}

impl<'r> QueueScan<'r> {
    fn new(req: &GetMessage<'r>, pull_messages_max: usize, end: u64) -> Self {
        QueueScan {
            filter: req.tag_codes.filter(|c| !c.is_empty()),
            max_count: req.max_count.clamp(1, pull_messages_max.max(1)),
            max_bytes: req.max_bytes,
            end,
            offset: req.offset,
            scanned: 0,
            picked_bytes: 0,
            picked: Vec::new(),
            next: req.offset,
            memo: None,
        }
    }

    /// Scans on until a limit; `Err` with the page to load when one is missing.
    fn advance<File: StoreFile>(
        &mut self,
        q: &ConsumeQueue<File>,
        cache: &Rc<CqPageCache>,
    ) -> StoreResult<Result<(), CqPageLoad<File>>> {
        while self.offset < self.end
            && self.picked.len() < self.max_count
            && self.scanned < FILTER_SCAN_MAX
        {
            let entry = match q.entry_cached(self.offset, cache, &mut self.memo)? {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(load) => return Ok(Err(load)),
            };
            if !self.picked.is_empty() && self.picked_bytes + entry.size as usize > self.max_bytes {
                break;
            }
            self.scanned += 1;
            self.offset += 1;
            self.next = self.offset;
            if self
                .filter
                .is_some_and(|codes| !codes.contains(&entry.tag_code))
            {
                continue;
            }
            self.picked_bytes += entry.size as usize;
            self.picked.push((self.offset - 1, entry));
        }
        Ok(Ok(()))
    }
}

impl<F: StoreFs> Store<F> {
    /// Reads messages of a queue from `req.offset`. Only acknowledged records are visible.
    pub async fn get_message(&self, req: &GetMessage<'_>) -> StoreResult<GetResult> {
        let mut result = GetResult {
            status: GetStatus::NoMatchedLogicQueue,
            records: Vec::new(),
            next_offset: req.offset,
            min_offset: 0,
            max_offset: 0,
            total_bytes: 0,
        };
        let Some(q) = self.queue(req.topic, req.queue_id) else {
            result.next_offset = 0;
            return Ok(result);
        };
        let limit = self.ack_offset();
        result.min_offset = q.min_offset();
        result.max_offset = q.visible_max_offset(limit);
        if result.max_offset == result.min_offset {
            result.status = GetStatus::NoMessageInQueue;
            result.next_offset = result.min_offset;
            return Ok(result);
        }
        if req.offset < result.min_offset {
            result.status = GetStatus::OffsetTooSmall;
            result.next_offset = result.min_offset;
            return Ok(result);
        }
        if req.offset == result.max_offset {
            result.status = GetStatus::OffsetOverflowOne;
            return Ok(result);
        }
        if req.offset > result.max_offset {
            result.status = GetStatus::OffsetOverflowBadly;
            result.next_offset = result.max_offset;
            return Ok(result);
        }
        let mut scan = QueueScan::new(req, self.config.pull_messages_max, result.max_offset);
        // Old offsets come from the queue's files (evicted entries, through the page cache):
        // a page not in the cache is read here, on the calling thread, and the scan resumes.
        while let Err(load) = scan.advance(q, &self.cq_pages)? {
            load.read(false).await?;
        }
        let QueueScan { picked, next, .. } = scan;
        let mut i = 0;
        while i < picked.len() {
            let (offset, entry) = picked[i];
            if let Some(bytes) = self.log.cached(entry.phys, entry.size as usize) {
                result.push(offset, entry, RecordData::Memory(bytes), None);
                i += 1;
                continue;
            }
            if req.file_ranges
                && let Some(range) = self.log.file_range(entry.phys, entry.size)
            {
                let pin = self.pins.pin(range.segment);
                result.push(offset, entry, RecordData::File(range), Some(pin));
                i += 1;
                continue;
            }
            // Cold records: one read for each run of records adjacent in the CommitLog.
            let seg = self.log.segment_start(entry.phys);
            let mut run_end = i + 1;
            while run_end < picked.len()
                && picked[run_end].1.phys == picked[run_end - 1].1.end()
                && self.log.segment_start(picked[run_end].1.phys) == seg
                && self
                    .log
                    .cached(picked[run_end].1.phys, picked[run_end].1.size as usize)
                    .is_none()
                && picked[run_end].1.end() <= self.log.written_offset()
            {
                run_end += 1;
            }
            let run_len = (picked[run_end - 1].1.end() - entry.phys) as usize;
            let raw = self.log.read(entry.phys, run_len).await?;
            for &(offset, e) in &picked[i..run_end] {
                let at = (e.phys - entry.phys) as usize;
                let bytes = raw.slice(at..at + e.size as usize);
                self.check_record(&bytes, e.phys, e.size)?;
                result.push(offset, e, RecordData::Memory(bytes), None);
            }
            i = run_end;
        }
        result.next_offset = next;
        result.status = if result.records.is_empty() {
            GetStatus::NoMatchedMessage
        } else {
            GetStatus::Found
        };
        Ok(result)
    }

    /// The first ConsumeQueue page [`Self::get_message`] would read from a queue file for
    /// `req` (entries evicted from memory, not in the page cache), as a read to run anywhere
    /// (in ring mode: as a task of the shard, through the ring). `None` when the read needs
    /// no page from the files: then `get_message` does not wait on a queue file. A read may
    /// need several pages: ask again once this one is loaded.
    pub fn missing_queue_page(
        &self,
        req: &GetMessage<'_>,
    ) -> StoreResult<Option<CqPageLoad<F::File>>> {
        let Some(q) = self.queue(req.topic, req.queue_id) else {
            return Ok(None);
        };
        // The hot path: pulls at or past the in-memory tail never touch the files.
        if req.offset >= q.mem_from() || req.offset < q.min_offset() {
            return Ok(None);
        }
        let max = q.visible_max_offset(self.ack_offset());
        let mut scan = QueueScan::new(req, self.config.pull_messages_max, max);
        Ok(scan.advance(q, &self.cq_pages)?.err())
    }

    /// ConsumeQueue pages read so far through the ring (by [`CqPageLoad::load`]) and on the
    /// calling thread.
    pub fn queue_page_reads(&self) -> (u64, u64) {
        (self.cq_pages.ring_loads(), self.cq_pages.blocking_reads())
    }

    /// Checks a record read from the CommitLog (structure, CRC, position) before it is
    /// served: a damaged record is an error, never a response.
    fn check_record(&self, raw: &[u8], phys: u64, size: u32) -> StoreResult<()> {
        match decode_record_at(raw, phys as usize, true) {
            Ok(RecordAt::Message(l))
                if l.physical_offset == phys as i64 && l.total_size == size as usize =>
            {
                Ok(())
            }
            Ok(_) => Err(self.corrupt(
                phys,
                "queue entry does not point at a record of its size".into(),
            )),
            Err(e) => Err(self.corrupt(phys, e.to_string())),
        }
    }

    fn corrupt(&self, phys: u64, reason: String) -> StoreError {
        let seg = self.log.segment_start(phys);
        StoreError::Corrupt {
            what: "commit log record",
            path: self
                .config
                .commit_log_dir()
                .join(super::commit_log::file_name(seg)),
            offset: phys - seg,
            reason,
        }
    }

    /// Reads and checks (CRC included) the record at a CommitLog offset, e.g. from an offset
    /// msgId. `None` when the offset is outside the visible log or holds no record.
    pub async fn read_message_at(&self, phys: u64) -> StoreResult<Option<StoredMessage>> {
        if phys < self.log.min_offset() || phys + 8 > self.ack_offset() {
            return Ok(None);
        }
        let head = self.log.read(phys, 8).await?;
        let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if size < 8
            || phys + size as u64 > self.ack_offset()
            || size as usize > self.config.max_record_bytes()
        {
            return Ok(None);
        }
        let raw = self.log.read(phys, size as usize).await?;
        match decode_record_at(&raw, phys as usize, true) {
            Ok(RecordAt::Message(layout)) if layout.physical_offset == phys as i64 => {
                Ok(Some(StoredMessage { raw, layout }))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(self.corrupt(phys, e.to_string())),
        }
    }

    /// Messages of `topic` whose KEYS or UNIQ_KEY include `key`, stored within
    /// `[begin_ms, end_ms]`, newest first, at most `max`.
    pub async fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> StoreResult<Vec<StoredMessage>> {
        let max = max.min(self.config.pull_messages_max.max(64));
        let candidates = self
            .index
            .query(topic, key, max * 2, begin_ms, end_ms)
            .await?;
        let mut out = Vec::new();
        for phys in candidates {
            if out.len() >= max {
                break;
            }
            let Ok(Some(msg)) = self.read_message_at(phys).await else {
                continue;
            };
            let matches = msg.topic() == topic
                && (msg.uniq_key() == Some(key) || msg.keys().any(|k| k == key));
            if matches {
                out.push(msg);
            }
        }
        Ok(out)
    }

    /// The first logical offset of a queue whose store time is at or after `timestamp_ms`
    /// (the max offset when none is). Binary search: store times never decrease.
    pub async fn offset_by_timestamp(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
    ) -> StoreResult<u64> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(0);
        };
        let (mut lo, mut hi) = (q.min_offset(), q.visible_max_offset(self.ack_offset()));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some(entry) = q.entry(mid, &self.cq_pages).await? else {
                break;
            };
            let ts = self.store_timestamp_at(entry.phys, entry.size).await?;
            if ts < timestamp_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    async fn store_timestamp_at(&self, phys: u64, size: u32) -> StoreResult<i64> {
        let raw = self.log.read(phys, size as usize).await?;
        match decode_record_at(&raw, phys as usize, false) {
            Ok(RecordAt::Message(layout)) => Ok(layout.store_timestamp),
            Ok(RecordAt::Blank { .. }) | Err(_) => Err(StoreError::Corrupt {
                what: "commit log record",
                path: self.config.commit_log_dir(),
                offset: phys,
                reason: "queue entry points at no valid record".into(),
            }),
        }
    }

    /// Starts a lookup of the records indexed under `topic#key` within `[begin_ms, end_ms]`,
    /// at most `max` candidates (hash collisions included), without I/O: what the index
    /// holds in memory is looked up now, the rest is left to the caller's reader
    /// ([`super::index::lookup::KeyLookup::finish`]; the server reads on the shard's ring).
    pub fn key_lookup(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> super::index::lookup::KeyLookup {
        self.index.lookup(topic, key, max, begin_ms, end_ms)
    }

    /// Whether retention must keep the segment starting at `start` (a reader holds it).
    pub fn is_segment_pinned(&self, start: u64) -> bool {
        self.pins.is_pinned(start)
    }
}
