//! Key lookups in the IndexFiles without blocking the shard thread on the disk.
//!
//! A lookup walks, for each index file from the newest, the bucket chain of the key's hash:
//! the slot gives the newest entry, each entry the previous one. [`IndexService::lookup`]
//! (synchronous, no I/O) does the part held in memory — the active file's slot table, the
//! entries not yet written — and stops each file's walk at the first slot or entry that is
//! on disk; [`KeyLookup::finish`] (a `'static` future) does the rest through an
//! [`IndexReader`], which the server backs with reads on the shard's io_uring. A lookup that
//! found everything in memory is [`KeyLookup::is_done`] and needs no reader.
//!
//! The candidates are the same, in the same order (newest first), as
//! [`IndexService::query`]'s: CommitLog offsets only, hash collisions included; the caller
//! reads and checks the records.
//!
//! Runs on the shard thread that owns the index; the reads of a lookup run one at a time
//! (each entry names the next).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use super::{Entry, INDEX_ENTRY_BYTES, INDEX_HEADER_BYTES, IndexHeader, IndexService};
use crate::store::error::StoreResult;
use crate::store::io::StoreFile;

/// Reads `len` bytes at `pos` of file number `file` of a lookup ([`KeyLookup::disk_files`]).
pub trait IndexReader {
    /// The bytes read (fewer at the end of the file).
    fn read<'a>(
        &'a mut self,
        file: usize,
        pos: u64,
        len: usize,
    ) -> Pin<Box<dyn Future<Output = StoreResult<Vec<u8>>> + 'a>>;
}

/// Where a file's walk goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Finished.
    Done,
    /// The slot is on disk (a sealed file).
    Slot(u32),
    /// Entry number `n` is on disk.
    Entry(i32),
}

/// One index file's part of a lookup.
#[derive(Debug, Clone)]
struct FileWalk {
    path: PathBuf,
    header: IndexHeader,
    slot_count: u32,
    entry_count: u32,
    /// Candidates found in memory, newest first, before the walk reached the disk.
    found: Vec<u64>,
    next: Next,
    /// Entries visited so far (bounded by `entry_count`, against a looping chain).
    steps: u32,
}

impl FileWalk {
    fn entry_pos(&self, n: i32) -> u64 {
        INDEX_HEADER_BYTES + u64::from(self.slot_count) * 4 + n as u64 * INDEX_ENTRY_BYTES
    }
}

/// A key lookup prepared on the shard thread; see the module docs.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    hash: i32,
    max: usize,
    begin_ms: i64,
    end_ms: i64,
    files: Vec<FileWalk>,
}

/// Whether entry `e` of a file with header `h` is a candidate for the lookup.
fn matches(e: &Entry, h: &IndexHeader, hash: i32, begin_ms: i64, end_ms: i64) -> bool {
    let ts = h.begin_timestamp + i64::from(e.time_diff_s) * 1000;
    // Time diffs are whole seconds: widen the window by one second.
    e.key_hash == hash && ts + 1000 >= begin_ms && ts <= end_ms && e.phys >= 0
}

impl<File: StoreFile> IndexService<File> {
    /// Starts a lookup of `topic#key` stored within `[begin_ms, end_ms]`, at most `max`
    /// candidates; the in-memory part is done here.
    pub fn lookup(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> KeyLookup {
        let hash = ringmq_wire::record::index_key_hash(&format!("{topic}#{key}"));
        let mut lookup = KeyLookup {
            hash,
            max,
            begin_ms,
            end_ms,
            files: Vec::new(),
        };
        // Candidates found so far, in every file walked.
        let mut certain = 0usize;
        for f in self.files.iter().rev() {
            if certain >= max {
                break;
            }
            let h = f.header;
            if h.index_count <= 1 || h.end_timestamp < begin_ms || h.begin_timestamp > end_ms {
                continue;
            }
            let slot = hash as u32 % f.slot_count;
            let mut walk = FileWalk {
                path: f.path.clone(),
                header: h,
                slot_count: f.slot_count,
                entry_count: f.entry_count,
                found: Vec::new(),
                next: Next::Slot(slot),
                steps: 0,
            };
            if let Some(slots) = &f.slots {
                let mut n = slots[slot as usize];
                walk.next = Next::Done;
                while n > 0
                    && n < h.index_count
                    && certain + walk.found.len() < max
                    && walk.steps < f.entry_count
                {
                    if n < f.persisted_count {
                        walk.next = Next::Entry(n);
                        break;
                    }
                    walk.steps += 1;
                    let Some(e) = f.pending.get((n - f.persisted_count) as usize).copied() else {
                        break;
                    };
                    if matches(&e, &h, hash, begin_ms, end_ms) {
                        walk.found.push(e.phys as u64);
                    }
                    if e.prev >= n {
                        break;
                    }
                    n = e.prev;
                }
            }
            // A lower bound of the candidates before the next file: once it reaches `max`,
            // older files cannot be in the result.
            certain += walk.found.len();
            lookup.files.push(walk);
        }
        lookup
    }
}

impl KeyLookup {
    /// Whether every candidate was found in memory.
    pub fn is_done(&self) -> bool {
        self.files.iter().all(|f| f.next == Next::Done)
    }

    /// The files whose walk needs the disk, by the numbers an [`IndexReader`] is asked for.
    pub fn disk_files(&self) -> Vec<(usize, &Path)> {
        self.files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.next != Next::Done)
            .map(|(i, f)| (i, f.path.as_path()))
            .collect()
    }

    /// The candidates of a lookup that [`KeyLookup::is_done`].
    pub fn found(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .files
            .iter()
            .flat_map(|f| f.found.iter().copied())
            .collect();
        out.truncate(self.max);
        out
    }

    /// Walks what is left on disk with `reader` and returns every candidate, newest first,
    /// at most `max`.
    pub async fn finish(mut self, reader: &mut dyn IndexReader) -> StoreResult<Vec<u64>> {
        let mut out = Vec::new();
        for (i, walk) in self.files.iter_mut().enumerate() {
            if out.len() >= self.max {
                break;
            }
            out.extend(walk.found.iter().copied().take(self.max - out.len()));
            let h = walk.header;
            let mut n = match walk.next {
                Next::Done => continue,
                Next::Entry(n) => n,
                Next::Slot(slot) => {
                    let raw = reader
                        .read(i, INDEX_HEADER_BYTES + u64::from(slot) * 4, 4)
                        .await?;
                    match <[u8; 4]>::try_from(raw.as_slice()) {
                        Ok(b) => i32::from_be_bytes(b),
                        Err(_) => 0,
                    }
                }
            };
            while n > 0
                && n < h.index_count
                && out.len() < self.max
                && walk.steps < walk.entry_count
            {
                walk.steps += 1;
                let raw = reader
                    .read(i, walk.entry_pos(n), INDEX_ENTRY_BYTES as usize)
                    .await?;
                if raw.len() != INDEX_ENTRY_BYTES as usize {
                    break;
                }
                let e = Entry::decode(&raw);
                if matches(&e, &h, self.hash, self.begin_ms, self.end_ms) {
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
}
