//! IndexFile: message keys and unique keys → CommitLog offsets, in RocketMQ's layout.
//!
//! ```text
//! header (40 B): beginTimestamp i64 | endTimestamp i64 | beginPhyOffset i64 |
//!                endPhyOffset i64 | hashSlotCount i32 | indexCount i32 (starts at 1)
//! slots:   slot_count × i32, each the number of the newest entry of its bucket (0 = empty)
//! entries: entry_count × 20 B: keyHash i32 | phyOffset i64 | timeDiff i32 (seconds since
//!          beginTimestamp) | previous entry number in the bucket i32
//! ```
//!
//! Keys are `topic#UNIQ_KEY` and `topic#<each KEYS token>`; slot = `abs(hashCode) % slots`.
//! Files are named by their creation time `yyyyMMddHHmmssSSS` (UTC) under `index/`.
//!
//! Memory: only the active file's slot table (4 B × slots) and the entries not yet written
//! are held in memory; older files and written entries are read from disk by queries.
//! Entries are produced at append time and written behind the CommitLog; a query reads the
//! records it finds and keeps only those whose topic and key match, so an entry left
//! pointing at data lost in a crash can never produce a wrong answer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::error::{StoreError, StoreResult};
use super::io::{IO_ALIGN, OpenMode, StoreFile, StoreFs};
use super::persist_job::{IndexTarget, PersistBatch};

/// Bytes of the header.
pub const INDEX_HEADER_BYTES: u64 = 40;
/// Bytes of one entry.
pub const INDEX_ENTRY_BYTES: u64 = 20;
/// Default slot count (`maxHashSlotNum`).
pub const INDEX_SLOTS_DEFAULT: u32 = 5_000_000;
/// Default entry count per file (`maxIndexNum`).
pub const INDEX_ENTRIES_DEFAULT: u32 = 20_000_000;

/// Header of an index file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexHeader {
    /// Store time of the first entry.
    pub begin_timestamp: i64,
    /// Store time of the last entry.
    pub end_timestamp: i64,
    /// CommitLog offset of the first entry.
    pub begin_phy_offset: i64,
    /// CommitLog offset of the last entry.
    pub end_phy_offset: i64,
    /// Slots in use.
    pub hash_slot_count: i32,
    /// Next entry number (starts at 1).
    pub index_count: i32,
}

impl IndexHeader {
    fn encode(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0..8].copy_from_slice(&self.begin_timestamp.to_be_bytes());
        b[8..16].copy_from_slice(&self.end_timestamp.to_be_bytes());
        b[16..24].copy_from_slice(&self.begin_phy_offset.to_be_bytes());
        b[24..32].copy_from_slice(&self.end_phy_offset.to_be_bytes());
        b[32..36].copy_from_slice(&self.hash_slot_count.to_be_bytes());
        b[36..40].copy_from_slice(&self.index_count.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> IndexHeader {
        let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let i32_at = |at: usize| i32::from_be_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]));
        IndexHeader {
            begin_timestamp: i64_at(0),
            end_timestamp: i64_at(8),
            begin_phy_offset: i64_at(16),
            end_phy_offset: i64_at(24),
            hash_slot_count: i32_at(32),
            index_count: i32_at(36).max(1),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key_hash: i32,
    phys: i64,
    time_diff_s: i32,
    prev: i32,
}

impl Entry {
    fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.key_hash.to_be_bytes());
        out[4..12].copy_from_slice(&self.phys.to_be_bytes());
        out[12..16].copy_from_slice(&self.time_diff_s.to_be_bytes());
        out[16..20].copy_from_slice(&self.prev.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Entry {
        Entry {
            key_hash: i32::from_be_bytes(b[0..4].try_into().unwrap_or([0; 4])),
            phys: i64::from_be_bytes(b[4..12].try_into().unwrap_or([0; 8])),
            time_diff_s: i32::from_be_bytes(b[12..16].try_into().unwrap_or([0; 4])),
            prev: i32::from_be_bytes(b[16..20].try_into().unwrap_or([0; 4])),
        }
    }
}

/// One index file.
#[derive(Debug)]
struct IndexFile<File> {
    path: PathBuf,
    file: Rc<File>,
    header: IndexHeader,
    /// Slot table of the active file; `None` for sealed files (read from disk).
    slots: Option<Vec<i32>>,
    dirty_slot_pages: BTreeSet<u64>,
    /// Entries numbered `persisted_count..header.index_count`, not yet written.
    pending: Vec<Entry>,
    persisted_count: i32,
    slot_count: u32,
    entry_count: u32,
    /// Whether this file receives new keys (only the newest, until full).
    active: bool,
}

impl<File: StoreFile> IndexFile<File> {
    fn entry_pos(&self, n: i32) -> u64 {
        INDEX_HEADER_BYTES + u64::from(self.slot_count) * 4 + n as u64 * INDEX_ENTRY_BYTES
    }

    fn is_full(&self) -> bool {
        self.header.index_count as u32 >= self.entry_count
    }

    async fn slot(&self, slot: u32) -> StoreResult<i32> {
        if let Some(slots) = &self.slots {
            return Ok(slots[slot as usize]);
        }
        let (b, n) = self
            .file
            .read_at(vec![0; 4], INDEX_HEADER_BYTES + u64::from(slot) * 4)
            .await;
        let n = n.map_err(|e| StoreError::io("read", &self.path, e))?;
        Ok(if n == 4 {
            i32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            0
        })
    }

    async fn entry(&self, n: i32) -> StoreResult<Option<Entry>> {
        if n >= self.persisted_count {
            return Ok(self
                .pending
                .get((n - self.persisted_count) as usize)
                .copied());
        }
        let (b, got) = self.file.read_at(vec![0; 20], self.entry_pos(n)).await;
        let got = got.map_err(|e| StoreError::io("read", &self.path, e))?;
        Ok((got == 20).then(|| Entry::decode(&b)))
    }

    fn put(&mut self, key_hash: i32, phys: u64, store_ts: i64) {
        let Some(slots) = self.slots.as_mut().filter(|_| self.active) else {
            return;
        };
        let slot = (key_hash as u32 % self.slot_count) as usize;
        let mut prev = slots[slot];
        if prev <= 0 || prev > self.header.index_count {
            prev = 0;
        }
        if self.header.index_count <= 1 {
            self.header.begin_phy_offset = phys as i64;
            self.header.begin_timestamp = store_ts;
        }
        let diff = ((store_ts - self.header.begin_timestamp) / 1000).clamp(0, i64::from(i32::MAX));
        let n = self.header.index_count;
        self.pending.push(Entry {
            key_hash,
            phys: phys as i64,
            time_diff_s: diff as i32,
            prev,
        });
        slots[slot] = n;
        self.dirty_slot_pages
            .insert((INDEX_HEADER_BYTES + slot as u64 * 4) / IO_ALIGN as u64);
        if prev == 0 {
            self.header.hash_slot_count += 1;
        }
        self.header.index_count += 1;
        self.header.end_phy_offset = phys as i64;
        self.header.end_timestamp = store_ts;
    }

    /// Submit half of a persist: queues the pending entries, the dirty slot-table pages and
    /// the header into `batch`. `None` when there is nothing to write.
    fn prepare_persist(&mut self, batch: &mut PersistBatch<File>) -> Option<IndexTarget> {
        if self.pending.is_empty() && self.dirty_slot_pages.is_empty() {
            return None;
        }
        if !self.pending.is_empty() {
            let mut raw = vec![0u8; self.pending.len() * INDEX_ENTRY_BYTES as usize];
            for (e, out) in self.pending.iter().zip(raw.chunks_exact_mut(20)) {
                e.encode(out);
            }
            let pos = self.entry_pos(self.persisted_count);
            batch.write(&self.file, &self.path, &raw, pos);
        }
        let mut slot_pages = Vec::new();
        if let Some(slots) = &self.slots {
            let table_end = INDEX_HEADER_BYTES + u64::from(self.slot_count) * 4;
            let mut raw = Vec::with_capacity(IO_ALIGN);
            for page in std::mem::take(&mut self.dirty_slot_pages) {
                let from = (page * IO_ALIGN as u64).max(INDEX_HEADER_BYTES);
                let to = ((page + 1) * IO_ALIGN as u64).min(table_end);
                let first = ((from - INDEX_HEADER_BYTES) / 4) as usize;
                let last = ((to - INDEX_HEADER_BYTES) / 4) as usize;
                raw.clear();
                for s in &slots[first..last] {
                    raw.extend_from_slice(&s.to_be_bytes());
                }
                batch.write(&self.file, &self.path, &raw, from);
                slot_pages.push(page);
            }
        }
        batch.write(&self.file, &self.path, &self.header.encode(), 0);
        Some(IndexTarget {
            path: self.path.clone(),
            entries: self.pending.len(),
            persisted_count: self.header.index_count,
            slot_pages,
        })
    }

    /// Complete half of a persist.
    fn persisted(&mut self, target: IndexTarget, ok: bool) {
        if !ok {
            self.dirty_slot_pages.extend(target.slot_pages);
            return;
        }
        self.pending.drain(..target.entries.min(self.pending.len()));
        self.persisted_count = target.persisted_count;
        if !self.active && self.pending.is_empty() && self.dirty_slot_pages.is_empty() {
            self.slots = None;
        }
    }
}

/// Geometry of index files.
#[derive(Debug, Clone, Copy)]
pub struct IndexConfig {
    /// Hash slots per file.
    pub slots: u32,
    /// Entries per file.
    pub entries: u32,
}

/// All index files of a shard; the newest one receives new keys.
#[derive(Debug)]
pub struct IndexService<File> {
    /// Reused buffer for `topic#key`.
    key_buf: String,
    dir: PathBuf,
    config: IndexConfig,
    files: Vec<IndexFile<File>>,
}

/// `yyyyMMddHHmmssSSS` of a time in ms (UTC).
pub fn index_file_name(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

impl<File: StoreFile> IndexService<File> {
    /// Loads the index files of `dir`; the newest one's slot table goes to memory.
    pub async fn open<F: StoreFs<File = File>>(
        fs: &F,
        dir: &Path,
        config: IndexConfig,
    ) -> StoreResult<Self> {
        fs.create_dir_all(dir)
            .map_err(|e| StoreError::io("create directory", dir, e))?;
        let mut names: Vec<String> = fs
            .list_dir(dir)
            .map_err(|e| StoreError::io("list", dir, e))?
            .into_iter()
            .filter(|n| n.len() == 17 && n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        names.sort();
        let mut service = IndexService {
            key_buf: String::new(),
            dir: dir.to_path_buf(),
            config,
            files: Vec::new(),
        };
        let count = names.len();
        for (i, name) in names.into_iter().enumerate() {
            let path = dir.join(&name);
            let file = fs
                .open(
                    &path,
                    OpenMode {
                        create: false,
                        direct: false,
                    },
                )
                .map_err(|e| StoreError::io("open", &path, e))?;
            let (hb, n) = file.read_at(vec![0; 40], 0).await;
            let n = n.map_err(|e| StoreError::io("read", &path, e))?;
            let header = if n == 40 {
                IndexHeader::decode(&hb)
            } else {
                IndexHeader {
                    index_count: 1,
                    ..IndexHeader::default()
                }
            };
            let mut index = IndexFile {
                path,
                file: Rc::new(file),
                header,
                slots: None,
                dirty_slot_pages: BTreeSet::new(),
                pending: Vec::new(),
                persisted_count: header.index_count,
                slot_count: config.slots,
                entry_count: config.entries,
                active: false,
            };
            if i + 1 == count && !index.is_full() {
                let bytes = config.slots as usize * 4;
                let (raw, n) = index.file.read_at(vec![0; bytes], INDEX_HEADER_BYTES).await;
                let n = n.map_err(|e| StoreError::io("read", &index.path, e))?;
                let mut slots = vec![0i32; config.slots as usize];
                for (s, b) in slots.iter_mut().zip(raw[..n].chunks_exact(4)) {
                    *s = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                }
                index.slots = Some(slots);
                index.active = true;
            }
            service.files.push(index);
        }
        Ok(service)
    }

    /// CommitLog offset of the newest indexed record (`-1` when none): recovery re-indexes
    /// only records past it.
    pub fn end_phy_offset(&self) -> i64 {
        self.files
            .last()
            .filter(|f| f.header.index_count > 1)
            .map_or(-1, |f| f.header.end_phy_offset)
    }

    /// Adds the keys of one record.
    pub fn put<'k, F: StoreFs<File = File>>(
        &mut self,
        fs: &F,
        keys: impl Iterator<Item = &'k str>,
        topic: &str,
        phys: u64,
        store_ts: i64,
    ) -> StoreResult<()> {
        let mut full_key = std::mem::take(&mut self.key_buf);
        for key in keys {
            if key.is_empty() {
                continue;
            }
            full_key.clear();
            full_key.push_str(topic);
            full_key.push('#');
            full_key.push_str(key);
            let hash = ringmq_wire::record::index_key_hash(&full_key);
            match self.active(fs, store_ts) {
                Ok(index) => index.put(hash, phys, store_ts),
                Err(e) => {
                    self.key_buf = full_key;
                    return Err(e);
                }
            }
        }
        self.key_buf = full_key;
        Ok(())
    }

    fn active<F: StoreFs<File = File>>(
        &mut self,
        fs: &F,
        now_ms: i64,
    ) -> StoreResult<&mut IndexFile<File>> {
        let need_new = self.files.last().is_none_or(|f| f.is_full() || !f.active);
        if need_new {
            if let Some(last) = self.files.last_mut() {
                // A sealed file keeps its slot table until the next persist has written it.
                last.active = false;
            }
            let mut name = index_file_name(now_ms);
            while self.files.iter().any(|f| {
                f.path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy() == name)
            }) {
                name = index_file_name(now_ms + 1);
            }
            let path = self.dir.join(name);
            let file = fs
                .open(
                    &path,
                    OpenMode {
                        create: true,
                        direct: false,
                    },
                )
                .map_err(|e| StoreError::io("open", &path, e))?;
            self.files.push(IndexFile {
                path,
                file: Rc::new(file),
                header: IndexHeader {
                    index_count: 1,
                    ..IndexHeader::default()
                },
                slots: Some(vec![0; self.config.slots as usize]),
                dirty_slot_pages: BTreeSet::new(),
                pending: Vec::new(),
                persisted_count: 1,
                slot_count: self.config.slots,
                entry_count: self.config.entries,
                active: true,
            });
        }
        self.files
            .last_mut()
            .ok_or_else(|| StoreError::Failed("no index file".into()))
    }

    /// Stops adding to the current file; the next key starts a new one. Recovery calls this
    /// when the current file indexes records past the recovered end of the CommitLog, so
    /// that new records at those offsets are indexed afresh.
    pub fn seal_active(&mut self) {
        if let Some(last) = self.files.last_mut() {
            last.active = false;
        }
    }

    /// Submit half of a persist: queues pending entries, slot pages and headers of every
    /// file into `batch` (the directory synced first when a file is new).
    pub(super) fn prepare_persist(&mut self, batch: &mut PersistBatch<File>) -> Vec<IndexTarget> {
        if self
            .files
            .iter()
            .any(|f| f.persisted_count == 1 && !f.pending.is_empty())
        {
            batch.sync_dir(&self.dir);
        }
        self.files
            .iter_mut()
            .filter_map(|f| f.prepare_persist(batch))
            .collect()
    }

    /// Complete half of a persist: advances the files the job wrote (`ok`), or marks their
    /// slot pages dirty again. Files dropped meanwhile are skipped.
    pub(super) fn persisted(&mut self, targets: Vec<IndexTarget>, ok: bool) {
        for target in targets {
            if let Some(f) = self.files.iter_mut().find(|f| f.path == target.path) {
                f.persisted(target, ok);
            }
        }
    }

    /// CommitLog offsets of records indexed under `topic#key` stored within
    /// `[begin_ms, end_ms]`, newest first, at most `max`. Candidates only: the caller checks
    /// the records.
    pub async fn query(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> StoreResult<Vec<u64>> {
        let full_key = format!("{topic}#{key}");
        let hash = ringmq_wire::record::index_key_hash(&full_key);
        let mut out = Vec::new();
        for f in self.files.iter().rev() {
            if out.len() >= max {
                break;
            }
            let h = f.header;
            if h.index_count <= 1 || h.end_timestamp < begin_ms || h.begin_timestamp > end_ms {
                continue;
            }
            let mut n = f.slot(hash as u32 % f.slot_count).await?;
            let mut steps = 0u32;
            while n > 0 && n < h.index_count && out.len() < max && steps < f.entry_count {
                steps += 1;
                let Some(e) = f.entry(n).await? else { break };
                let ts = h.begin_timestamp + i64::from(e.time_diff_s) * 1000;
                // Time diffs are whole seconds: widen the window by one second.
                if e.key_hash == hash && ts + 1000 >= begin_ms && ts <= end_ms && e.phys >= 0 {
                    out.push(e.phys as u64);
                }
                if e.prev >= n {
                    break;
                }
                n = e.prev;
            }
        }
        Ok(out)
    }

    /// Deletes index files whose newest entry points below `cl_min` (retention).
    pub fn drop_below<F: StoreFs<File = File>>(&mut self, fs: &F, cl_min: u64) -> StoreResult<()> {
        while self.files.len() > 1
            && self.files[0].header.end_phy_offset < cl_min as i64
            && self.files[0].pending.is_empty()
        {
            let f = self.files.remove(0);
            fs.remove_file(&f.path)
                .map_err(|e| StoreError::io("remove", &f.path, e))?;
        }
        Ok(())
    }
}

#[path = "index_lookup.rs"]
pub mod lookup;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_is_utc_timestamp() {
        assert_eq!(index_file_name(0), "19700101000000000");
        assert_eq!(index_file_name(1_795_402_800_123), "20261123030000123");
    }
}
