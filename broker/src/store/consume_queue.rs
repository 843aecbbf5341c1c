//! ConsumeQueue: per topic/queue, the logical index of the CommitLog.
//!
//! Each entry is 20 bytes, as RocketMQ stores it: `commit log offset i64 | size i32 | tag
//! hash code i64`. Entry `n` lives at byte `n × 20` of the queue's address space, cut into
//! files of `entries_per_file` entries (300 000 by default) named by their 20-digit start
//! byte offset, under `consumequeue/<topic>/<queueId>/`.
//!
//! Entries are produced in memory at append time and written behind the CommitLog by a
//! persist job ([`super::persist_job`]: [`ConsumeQueue::prepare_persist`], then
//! [`ConsumeQueue::persisted_to`]); they can always be rebuilt from the CommitLog.
//!
//! Memory is bounded: only the hot tail of a queue is held in memory. Entries below
//! [`ConsumeQueue::mem_from`] have been written (and acknowledged) and are read back from the
//! files on demand, a page of [`CQ_PAGE_ENTRIES`] entries at a time, through a small cache
//! shared by the store's queues ([`CqPageCache`]). The store evicts persisted entries when
//! the queues together hold more than `consume_queue_cache_bytes`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::commit_log::{file_name, parse_file_name};
use super::error::{StoreError, StoreResult};
use super::io::{OpenMode, StoreFile, StoreFs};
use super::persist_job::PersistBatch;

/// Bytes of one entry.
pub const CQ_ENTRY_BYTES: u64 = 20;

/// Entries per ConsumeQueue file by default (`mappedFileSizeConsumeQueue` / 20).
pub const CQ_ENTRIES_PER_FILE: u64 = 300_000;

/// Entries read from a queue file at once for entries no longer in memory (20 KiB).
pub const CQ_PAGE_ENTRIES: u64 = 1024;

/// Pages kept by a store's [`CqPageCache`] (1.25 MiB): enough for a few consumers catching
/// up on old offsets and a binary search by time (≈ 20 pages for 300 000 entries).
pub const CQ_PAGE_CACHE_PAGES: usize = 64;

/// Identifies a queue in the page cache (never reused within a store's lifetime).
pub type QueueUid = u64;

/// One cached page: its queue, its first logical offset, its entries.
type CachedPage = (QueueUid, u64, Rc<[CqEntry]>);

/// Recently read pages of evicted queue entries, shared by the queues of one store, oldest
/// dropped first. Pages are immutable: only entries below a queue's `mem_from` (written,
/// synced behind the CommitLog) are read through it, and those never change until
/// retention drops them (reads check the queue's minimum first).
#[derive(Debug, Default)]
pub struct CqPageCache {
    pages: RefCell<VecDeque<CachedPage>>,
    /// Pages read through the ring by a [`CqPageLoad`] (a task of the shard).
    ring_loads: Cell<u64>,
    /// Pages read on the calling thread (blocking-safe reads: tools, tests, time lookups,
    /// retention, and pulls whose page was evicted again before they ran).
    blocking_reads: Cell<u64>,
}

impl CqPageCache {
    fn get(&self, uid: QueueUid, page: u64) -> Option<Rc<[CqEntry]>> {
        let mut pages = self.pages.borrow_mut();
        let at = pages.iter().position(|(u, p, _)| *u == uid && *p == page)?;
        // Most recently used at the back.
        let hit = pages.remove(at)?;
        let entries = hit.2.clone();
        pages.push_back(hit);
        Some(entries)
    }

    fn put(&self, uid: QueueUid, page: u64, entries: Rc<[CqEntry]>) {
        let mut pages = self.pages.borrow_mut();
        if pages.len() >= CQ_PAGE_CACHE_PAGES {
            pages.pop_front();
        }
        pages.push_back((uid, page, entries));
    }

    /// Pages read through the ring so far.
    pub fn ring_loads(&self) -> u64 {
        self.ring_loads.get()
    }

    /// Pages read on the calling thread so far.
    pub fn blocking_reads(&self) -> u64 {
        self.blocking_reads.get()
    }

    /// Pages cached (for tests and stats).
    pub fn len(&self) -> usize {
        self.pages.borrow().len()
    }

    /// Whether no page is cached.
    pub fn is_empty(&self) -> bool {
        self.pages.borrow().is_empty()
    }
}

/// One ConsumeQueue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    /// CommitLog offset of the record.
    pub phys: u64,
    /// Record size.
    pub size: u32,
    /// Tag hash code (delivery time for schedule topics).
    pub tag_code: i64,
}

impl CqEntry {
    /// CommitLog offset just past the record.
    pub fn end(&self) -> u64 {
        self.phys + u64::from(self.size)
    }

    fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&(self.phys as i64).to_be_bytes());
        out[8..12].copy_from_slice(&(self.size as i32).to_be_bytes());
        out[12..20].copy_from_slice(&self.tag_code.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Option<CqEntry> {
        let phys = i64::from_be_bytes(b[0..8].try_into().ok()?);
        let size = i32::from_be_bytes(b[8..12].try_into().ok()?);
        let tag_code = i64::from_be_bytes(b[12..20].try_into().ok()?);
        // size 0 = never written; i32::MAX = RocketMQ's pre-blank filler.
        if size <= 0 || size == i32::MAX || phys < 0 {
            return None;
        }
        Some(CqEntry {
            phys: phys as u64,
            size: size as u32,
            tag_code,
        })
    }
}

/// The ConsumeQueue of one topic/queue.
#[derive(Debug)]
pub struct ConsumeQueue<File> {
    dir: PathBuf,
    uid: QueueUid,
    min: u64,
    /// Logical offset of `entries[0]`: entries in `[min, mem_from)` are only in the files.
    mem_from: u64,
    entries: VecDeque<CqEntry>,
    persisted: u64,
    /// The files may hold non-zero bytes up to this logical offset (stale entries past the
    /// queue's end, left by a crash); `persist` zeroes them so they can never be read back.
    stale_until: u64,
    entries_per_file: u64,
    files: BTreeMap<u64, Rc<File>>,
}

impl<File: StoreFile> ConsumeQueue<File> {
    /// An empty queue whose files go to `dir`, starting at logical offset `min`.
    pub fn new(dir: PathBuf, entries_per_file: u64, min: u64) -> Self {
        ConsumeQueue {
            dir,
            uid: next_uid(),
            min,
            mem_from: min,
            entries: VecDeque::new(),
            persisted: min,
            stale_until: min,
            entries_per_file,
            files: BTreeMap::new(),
        }
    }

    /// Loads a queue from its files; entries pointing below `cl_min` (deleted by retention)
    /// are skipped. Stops at the first unwritten or invalid slot. Memory: at most `keep`
    /// entries pointing below `hot_from` stay in memory (the rest are read back from the
    /// files when needed); entries at or past `hot_from` (the recovery scan start, which
    /// may rewrite them) always do.
    pub async fn load<F: StoreFs<File = File>>(
        fs: &F,
        dir: PathBuf,
        entries_per_file: u64,
        cl_min: u64,
        keep: usize,
        hot_from: u64,
    ) -> StoreResult<Self> {
        let mut names: Vec<u64> = fs
            .list_dir(&dir)
            .map_err(|e| StoreError::io("list", &dir, e))?
            .iter()
            .filter_map(|n| parse_file_name(n))
            .collect();
        names.sort_unstable();
        let file_bytes = entries_per_file * CQ_ENTRY_BYTES;
        let mut queue = ConsumeQueue::new(dir.clone(), entries_per_file, 0);
        let mut started = false;
        let mut ended = false;
        let mut nonzero_until = 0u64;
        let mut last_end: Option<u64> = None;
        for start_byte in names {
            let path = dir.join(file_name(start_byte));
            let file = fs
                .open(
                    &path,
                    OpenMode {
                        create: false,
                        direct: false,
                    },
                )
                .map_err(|e| StoreError::io("open", &path, e))?;
            if !start_byte.is_multiple_of(file_bytes) {
                return Err(StoreError::Corrupt {
                    what: "consume queue file name",
                    path,
                    offset: 0,
                    reason: format!("start {start_byte} is not a multiple of {file_bytes}"),
                });
            }
            let (buf, n) = file.read_at(vec![0; file_bytes as usize], 0).await;
            let n = n.map_err(|e| StoreError::io("read", &path, e))?;
            let first = start_byte / CQ_ENTRY_BYTES;
            queue.files.insert(first, Rc::new(file));
            for (i, raw) in buf[..n].chunks_exact(CQ_ENTRY_BYTES as usize).enumerate() {
                let logical = first + i as u64;
                if raw.iter().any(|b| *b != 0) {
                    nonzero_until = logical + 1;
                }
                if ended {
                    continue;
                }
                let entry = CqEntry::decode(raw);
                let Some(entry) = entry else {
                    ended |= started;
                    continue;
                };
                if !started {
                    if entry.phys < cl_min {
                        continue;
                    }
                    started = true;
                    queue.min = logical;
                    queue.mem_from = logical;
                }
                // Entries follow the CommitLog: one out of order ends the queue.
                let in_order = last_end.is_none_or(|end| entry.phys >= end);
                if logical != queue.max_offset() || !in_order {
                    ended = true;
                    continue;
                }
                queue.entries.push_back(entry);
                last_end = Some(entry.end());
                if queue.entries.len() > keep
                    && queue.entries.front().is_some_and(|e| e.phys < hot_from)
                {
                    queue.entries.pop_front();
                    queue.mem_from += 1;
                }
            }
        }
        queue.persisted = queue.max_offset();
        queue.stale_until = nonzero_until.max(queue.max_offset());
        Ok(queue)
    }

    /// Logical offset of the first retained entry.
    pub fn min_offset(&self) -> u64 {
        self.min
    }

    /// Logical offset the next entry gets.
    pub fn max_offset(&self) -> u64 {
        self.mem_from + self.entries.len() as u64
    }

    /// Logical offset of the first entry held in memory; older ones are in the files only.
    pub fn mem_from(&self) -> u64 {
        self.mem_from
    }

    /// Entries held in memory.
    pub fn in_memory(&self) -> usize {
        self.entries.len()
    }

    /// Number of entries whose record ends at or below `limit` (entries are in CommitLog
    /// order, so these are a prefix); the queue's visible max offset is `min + this`.
    pub fn visible_max_offset(&self, limit: u64) -> u64 {
        // Evicted entries are acknowledged (see `evict`): only the memory tail can be ahead.
        let mut n = self.entries.len();
        while n > 0 && self.entries[n - 1].end() > limit {
            n -= 1;
        }
        self.mem_from + n as u64
    }

    /// The entry at a logical offset, if it is held in memory.
    pub fn get(&self, offset: u64) -> Option<CqEntry> {
        let idx = offset.checked_sub(self.mem_from)?;
        self.entries.get(usize::try_from(idx).ok()?).copied()
    }

    /// The entry at a logical offset, from memory or, for evicted entries, from the queue's
    /// file (a page at a time, through `cache`, read on the calling thread). `None` outside
    /// `[min, max)`.
    pub async fn entry(
        &self,
        offset: u64,
        cache: &Rc<CqPageCache>,
    ) -> StoreResult<Option<CqEntry>> {
        let mut memo = None;
        match self.entry_cached(offset, cache, &mut memo)? {
            Ok(entry) => Ok(entry),
            Err(load) => {
                let entries = load.read(false).await?;
                match entries.get((offset - load.page) as usize) {
                    Some(entry) => Ok(Some(*entry)),
                    None => Err(self.corrupt(offset, "entry missing from its queue file")),
                }
            }
        }
    }

    /// The entry at a logical offset if it is in memory or in `cache`, else the page read
    /// that would bring it ([`CqPageLoad`], to run on the calling thread or on the ring).
    /// `memo` keeps the last page used, so a scan does not look every entry up in the cache.
    /// `Ok(None)` outside `[min, max)`.
    pub fn entry_cached(
        &self,
        offset: u64,
        cache: &Rc<CqPageCache>,
        memo: &mut Option<(u64, Rc<[CqEntry]>)>,
    ) -> StoreResult<Result<Option<CqEntry>, CqPageLoad<File>>> {
        if offset < self.min || offset >= self.max_offset() {
            return Ok(Ok(None));
        }
        if offset >= self.mem_from {
            return Ok(Ok(self.get(offset)));
        }
        // Pages never straddle two files.
        let first = offset / self.entries_per_file * self.entries_per_file;
        let page = first + (offset - first) / CQ_PAGE_ENTRIES * CQ_PAGE_ENTRIES;
        let at = (offset - page) as usize;
        if let Some((start, entries)) = memo.as_ref()
            && *start == page
            && let Some(entry) = entries.get(at)
        {
            return Ok(Ok(Some(*entry)));
        }
        if let Some(entries) = cache.get(self.uid, page)
            && let Some(entry) = entries.get(at)
        {
            let entry = *entry;
            *memo = Some((page, entries));
            return Ok(Ok(Some(entry)));
        }
        // Not cached, or cached when fewer of its entries were evicted: read it (again).
        Ok(Err(self.page_load(first, page, cache)?))
    }

    /// The read of the page starting at logical offset `page` of the file starting at
    /// `first`: its entries below `mem_from` (written and synced before they were evicted,
    /// so every one must be valid). Slots below `min` are padding, never returned.
    fn page_load(
        &self,
        first: u64,
        page: u64,
        cache: &Rc<CqPageCache>,
    ) -> StoreResult<CqPageLoad<File>> {
        let from = page.max(self.min);
        let until = (page + CQ_PAGE_ENTRIES)
            .min(first + self.entries_per_file)
            .min(self.mem_from);
        let Some(file) = self.files.get(&first) else {
            return Err(self.corrupt(from, "queue file missing"));
        };
        Ok(CqPageLoad {
            file: file.clone(),
            dir: self.dir.clone(),
            entries_per_file: self.entries_per_file,
            uid: self.uid,
            first,
            page,
            from,
            until,
            cache: cache.clone(),
        })
    }

    fn corrupt(&self, offset: u64, reason: &str) -> StoreError {
        corrupt_entry(&self.dir, self.entries_per_file, offset, reason)
    }

    /// Drops persisted entries from memory, oldest first, until at most `keep` remain; only
    /// entries whose records end at or below `limit` (acknowledged) go, so the queue's
    /// visible end is always in memory. Returns how many were dropped.
    pub fn evict(&mut self, keep: usize, limit: u64) -> usize {
        let mut dropped = 0;
        while self.entries.len() > keep
            && self.mem_from < self.persisted
            && self.entries.front().is_some_and(|e| e.end() <= limit)
        {
            self.entries.pop_front();
            self.mem_from += 1;
            dropped += 1;
        }
        dropped
    }

    /// Appends an entry at [`Self::max_offset`].
    pub fn push(&mut self, entry: CqEntry) {
        if let Some(last) = self.entries.back() {
            assert!(
                entry.phys >= last.end(),
                "consume queue entries must follow the commit log"
            );
        }
        self.entries.push_back(entry);
    }

    /// Starts an empty queue at `offset` (rebuilding a queue whose earlier entries are gone).
    pub fn reset_to(&mut self, offset: u64) {
        assert!(self.entries.is_empty());
        self.min = offset;
        self.mem_from = offset;
        self.persisted = offset;
    }

    /// Drops entries whose record ends past `end` (recovery cut the CommitLog there).
    pub fn truncate_past(&mut self, end: u64) {
        while self.entries.back().is_some_and(|e| e.end() > end) {
            self.entries.pop_back();
        }
        self.persisted = self.persisted.min(self.max_offset());
    }

    /// Drops entries whose record starts at or after `phys` (recovery rebuilds them from
    /// the CommitLog, the source of truth).
    pub fn truncate_from_phys(&mut self, phys: u64) {
        while self.entries.back().is_some_and(|e| e.phys >= phys) {
            self.entries.pop_back();
        }
        self.persisted = self.persisted.min(self.max_offset());
    }

    /// Drops entries from `offset` on (evicted ones included: the files' bytes from there
    /// on are rewritten or zeroed by the next persist).
    pub fn truncate_from(&mut self, offset: u64) {
        if offset <= self.mem_from {
            self.entries.clear();
            self.mem_from = offset.max(self.min);
        } else {
            self.entries.truncate((offset - self.mem_from) as usize);
        }
        self.persisted = self.persisted.min(self.max_offset());
    }

    /// Drops entries pointing below `cl_min` (retention) and the files holding only those.
    pub async fn drop_below<F: StoreFs<File = File>>(
        &mut self,
        fs: &F,
        cl_min: u64,
        cache: &Rc<CqPageCache>,
    ) -> StoreResult<()> {
        // Evicted entries first: binary search for the first one still pointing at or past
        // `cl_min` (entries follow the CommitLog, so that is a prefix).
        let (mut lo, mut hi) = (self.min, self.mem_from);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid, cache).await? {
                Some(e) if e.phys < cl_min => lo = mid + 1,
                _ => hi = mid,
            }
        }
        self.min = lo;
        if self.min == self.mem_from {
            while self.entries.front().is_some_and(|e| e.phys < cl_min) {
                self.entries.pop_front();
                self.mem_from += 1;
            }
            self.min = self.mem_from;
        }
        self.persisted = self.persisted.max(self.min);
        let per_file = self.entries_per_file;
        let dead: Vec<u64> = self
            .files
            .keys()
            .copied()
            .filter(|first| first + per_file <= self.min)
            .collect();
        for first in dead {
            self.files.remove(&first);
            let path = self.dir.join(file_name(first * CQ_ENTRY_BYTES));
            fs.remove_file(&path)
                .map_err(|e| StoreError::io("remove", &path, e))?;
        }
        Ok(())
    }

    /// Whether some entries are not yet written to files.
    pub fn is_dirty(&self) -> bool {
        self.persisted < self.max_offset() || self.stale_until > self.persisted
    }

    /// Submit half of a persist ([`super::persist_job`]): opens (creating) the files the
    /// entries whose records end at or below `limit` go to, and queues their writes — plus
    /// zeros over stale bytes past the queue's end — into `batch`. Returns the logical
    /// offset up to which entries are written once the job succeeds (give it to
    /// [`Self::persisted_to`]), or `None` when there is nothing to write.
    pub(super) fn prepare_persist<F: StoreFs<File = File>>(
        &mut self,
        fs: &F,
        limit: u64,
        batch: &mut PersistBatch<File>,
        new_files: &mut Vec<(u64, usize)>,
    ) -> StoreResult<Option<u64>> {
        let upto = self.visible_max_offset(limit);
        if upto <= self.persisted && self.stale_until <= self.persisted {
            return Ok(None);
        }
        // Written: entries up to `upto`, zeros over stale bytes past it.
        let write_until = upto.max(self.stale_until);
        fs.create_dir_all(&self.dir)
            .map_err(|e| StoreError::io("create directory", &self.dir, e))?;
        let mut at = self.persisted;
        let mut raw = Vec::new();
        while at < write_until {
            let first = at / self.entries_per_file * self.entries_per_file;
            let end = write_until.min(first + self.entries_per_file);
            let path = self.dir.join(file_name(first * CQ_ENTRY_BYTES));
            // A new file is created by the job (through the ring in ring mode) and
            // installed by `install_file` when the job is handed back.
            let created = match self.files.get(&first) {
                Some(_) => None,
                None => match new_files.iter().find(|(f, _)| *f == first) {
                    Some((_, index)) => Some(*index),
                    None => {
                        let index = batch.create(&path);
                        new_files.push((first, index));
                        Some(index)
                    }
                },
            };
            raw.clear();
            raw.resize(((end - at) * CQ_ENTRY_BYTES) as usize, 0);
            for (i, chunk) in raw.chunks_exact_mut(CQ_ENTRY_BYTES as usize).enumerate() {
                let logical = at + i as u64;
                if logical < upto
                    && let Some(entry) = self.get(logical)
                {
                    entry.encode(chunk);
                }
            }
            let pos = (at - first) * CQ_ENTRY_BYTES;
            match (created, self.files.get(&first)) {
                (Some(index), _) => batch.write_new(index, &path, &raw, pos),
                (None, Some(file)) => batch.write(file, &path, &raw, pos),
                (None, None) => return Err(self.corrupt(at, "queue file missing")),
            }
            at = end;
        }
        Ok(Some(upto))
    }

    /// Installs a queue file a persist job created (starting at logical offset `first`).
    pub(super) fn install_file(&mut self, first: u64, file: Rc<File>) {
        self.files.entry(first).or_insert(file);
    }

    /// Complete half of a persist: the entries below `upto` are on disk.
    pub(super) fn persisted_to(&mut self, upto: u64) {
        self.persisted = upto.max(self.persisted).min(self.max_offset());
        self.stale_until = self.persisted;
    }

    /// The directory of this queue.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Iterates over `(logical offset, entry)` of the in-memory entries from `from`.
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = (u64, CqEntry)> + '_ {
        let skip = from.saturating_sub(self.mem_from) as usize;
        self.entries
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, e)| (self.mem_from + i as u64, *e))
    }
}

/// A fresh [`QueueUid`].
fn next_uid() -> QueueUid {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn corrupt_entry(dir: &Path, entries_per_file: u64, offset: u64, reason: &str) -> StoreError {
    let first = offset / entries_per_file * entries_per_file;
    StoreError::Corrupt {
        what: "consume queue entry",
        path: dir.join(file_name(first * CQ_ENTRY_BYTES)),
        offset: (offset - first) * CQ_ENTRY_BYTES,
        reason: reason.to_owned(),
    }
}

/// One page of evicted ConsumeQueue entries to read into a store's [`CqPageCache`]: what a
/// read found missing ([`ConsumeQueue::entry_cached`]). Owns its file handle and the cache,
/// so it borrows nothing from the store: in ring mode the broker runs [`CqPageLoad::load`]
/// as a task of the shard (the read goes through the ring) and answers the pull that needed
/// it once the page is in the cache.
#[derive(Debug)]
pub struct CqPageLoad<File> {
    file: Rc<File>,
    dir: PathBuf,
    entries_per_file: u64,
    uid: QueueUid,
    first: u64,
    page: u64,
    from: u64,
    until: u64,
    cache: Rc<CqPageCache>,
}

impl<File: StoreFile> CqPageLoad<File> {
    /// First logical offset of the page.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// Reads the page through the ring and puts it into the cache.
    pub async fn load(self) -> StoreResult<()> {
        self.read(true).await.map(drop)
    }

    /// Reads the page (`ring`: through the ring, else on the calling thread), checks every
    /// entry, puts it into the cache and returns it.
    pub(super) async fn read(&self, ring: bool) -> StoreResult<Rc<[CqEntry]>> {
        let len = ((self.until - self.from) * CQ_ENTRY_BYTES) as usize;
        let pos = (self.from - self.first) * CQ_ENTRY_BYTES;
        let (raw, n) = if ring {
            self.file.read_at_ring(vec![0; len], pos).await
        } else {
            self.file.read_at(vec![0; len], pos).await
        };
        let counter = if ring {
            &self.cache.ring_loads
        } else {
            &self.cache.blocking_reads
        };
        counter.set(counter.get() + 1);
        let path = self.dir.join(file_name(self.first * CQ_ENTRY_BYTES));
        let n = n.map_err(|e| StoreError::io("read", &path, e))?;
        if n < len {
            return Err(corrupt_entry(
                &self.dir,
                self.entries_per_file,
                self.from + (n as u64) / CQ_ENTRY_BYTES,
                "queue file too short",
            ));
        }
        let padding = CqEntry {
            phys: 0,
            size: 0,
            tag_code: 0,
        };
        let mut entries = vec![padding; (self.from - self.page) as usize];
        entries.reserve(len / CQ_ENTRY_BYTES as usize);
        for (i, raw) in raw[..len].chunks_exact(CQ_ENTRY_BYTES as usize).enumerate() {
            match CqEntry::decode(raw) {
                Some(entry) => entries.push(entry),
                None => {
                    return Err(corrupt_entry(
                        &self.dir,
                        self.entries_per_file,
                        self.from + i as u64,
                        "invalid entry in a written range",
                    ));
                }
            }
        }
        let entries: Rc<[CqEntry]> = entries.into();
        self.cache.put(self.uid, self.page, entries.clone());
        Ok(entries)
    }
}
