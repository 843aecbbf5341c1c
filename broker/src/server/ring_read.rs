//! Reading single CommitLog records for queries (view by id, query by key, consume
//! directly) on the shard's io_uring, so that a cold read never stalls the shard thread.
//!
//! Two steps, so that the slow one borrows nothing from the store:
//! 1. [`locate`] (synchronous, no I/O): where the record at a CommitLog offset is: in the
//!    tail cache or the write buffers (bytes now), or on disk (the segment file opened, the
//!    position and the most bytes the record can span);
//! 2. [`read_on_ring`] (a `'static` future): reads the record with the ring's `Read` through
//!    the open descriptor, one read for records up to [`FIRST_READ_BYTES`] and a second for
//!    the rest of larger ones, then checks magic, size, position and body CRC. An open
//!    descriptor keeps a segment readable even if retention deletes the file meanwhile.
//!
//! Runs on the shard thread that owns the store; the futures must run on that shard's
//! runtime (they submit to its ring).

use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_wire::record::{RecordAt, decode_record_at};

use crate::runtime;
use crate::server::store::{ReadFuture, RecordRead, RecordsRead, StoreError};
use crate::store::Store;
use crate::store::io::StoreFs;

/// Bytes read first: most records fit, so most lookups take one read.
pub const FIRST_READ_BYTES: usize = 4096;

/// Where one record is.
pub enum Located {
    /// In memory (tail cache or write buffers): the stored bytes, checked.
    Memory(Bytes),
    /// On disk: read it with [`read_on_ring`].
    Disk(OnDisk),
    /// In the written part of the log but not safely locatable without the write buffers
    /// (it straddles the written offset): read it with the store's blocking path, which
    /// serves it from memory.
    Buffered,
    /// Nothing visible is stored there.
    NotFound,
}

impl std::fmt::Debug for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Located::Memory(b) => write!(f, "Memory({} bytes)", b.len()),
            Located::Disk(d) => write!(f, "Disk({} at {})", d.phys, d.file_pos),
            Located::Buffered => f.write_str("Buffered"),
            Located::NotFound => f.write_str("NotFound"),
        }
    }
}

/// A record on disk, with the segment file open.
pub struct OnDisk {
    file: Rc<runtime::File>,
    path: Rc<Path>,
    file_pos: u64,
    phys: u64,
    max_len: usize,
}

/// Finds the record at CommitLog offset `phys`; see the module docs. A record on disk has
/// its segment opened here (an `open(2)` of a cached path: queries are rare admin requests,
/// so no descriptor cache is kept for them).
pub fn locate<F: StoreFs>(store: &Store<F>, phys: u64) -> Result<Located, StoreError> {
    let log = store.commit_log();
    let visible = store.ack_offset();
    if phys < log.min_offset() || phys + 8 > visible {
        return Ok(Located::NotFound);
    }
    if let Some(head) = log.cached(phys, 8) {
        let size = record_size(&head);
        if size >= 8
            && let Some(bytes) = log.cached(phys, size)
        {
            check(&bytes, phys, size, &log_path(store, phys))?;
            return Ok(Located::Memory(bytes));
        }
    }
    if log.file_range(phys, 8).is_none() {
        return Ok(Located::Buffered);
    }
    let seg = log.segment_start(phys);
    let Some(segment) = log.segment(seg) else {
        return Ok(Located::NotFound);
    };
    let file_pos = phys - seg;
    let max_len = [
        store.config().max_record_bytes() as u64,
        visible - phys,
        log.written_offset() - phys,
        log.segment_bytes() - file_pos,
    ]
    .into_iter()
    .min()
    .unwrap_or(0) as usize;
    let file = runtime::File::open(&segment.path).map_err(|e| StoreError::Failed {
        context: format!("opening {} for a query read: {e}", segment.path.display()),
    })?;
    Ok(Located::Disk(OnDisk {
        file: Rc::new(file),
        path: Rc::from(segment.path.as_path()),
        file_pos,
        phys,
        max_len,
    }))
}

fn log_path<F: StoreFs>(store: &Store<F>, phys: u64) -> std::path::PathBuf {
    let log = store.commit_log();
    log.segment(log.segment_start(phys))
        .map(|s| s.path.clone())
        .unwrap_or_else(|| store.config().commit_log_dir())
}

fn record_size(head: &[u8]) -> usize {
    let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    usize::try_from(size).unwrap_or(0)
}

/// Why a record read on the ring found no usable record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingReadError {
    /// The record extends past what was written when it was located: read it again through
    /// the store (it is in the write buffers).
    #[error("record at {phys} extends past the written log")]
    PastWritten {
        /// Its CommitLog offset.
        phys: u64,
    },
}

/// Reads and checks the record of `disk` on the ring; see the module docs.
pub fn read_on_ring(disk: OnDisk) -> ReadFuture<Bytes> {
    Box::pin(async move {
        let first = FIRST_READ_BYTES.min(disk.max_len);
        let mut raw = read_exact(&disk, disk.file_pos, first).await?;
        let size = record_size(&raw);
        if size < 8 {
            return Err(StoreError::NotFound {
                offset: disk.phys as i64,
            });
        }
        if size > disk.max_len {
            return Err(StoreError::Failed {
                context: RingReadError::PastWritten { phys: disk.phys }.to_string(),
            });
        }
        if size > raw.len() {
            let rest =
                read_exact(&disk, disk.file_pos + raw.len() as u64, size - raw.len()).await?;
            raw.extend_from_slice(&rest);
        }
        raw.truncate(size);
        check(&raw, disk.phys, size, &disk.path)?;
        Ok(Bytes::from(raw))
    })
}

/// Whether an error from [`read_on_ring`] means "read it through the store instead".
pub fn is_past_written(error: &StoreError) -> bool {
    matches!(error, StoreError::Failed { context } if context.ends_with(PAST_WRITTEN))
}

const PAST_WRITTEN: &str = "extends past the written log";

async fn read_exact(disk: &OnDisk, pos: u64, len: usize) -> Result<Vec<u8>, StoreError> {
    let mut out: Vec<u8> = Vec::with_capacity(len);
    while out.len() < len {
        let want = len - out.len();
        let (result, buf) = disk
            .file
            .read_at(Vec::with_capacity(want), pos + out.len() as u64)
            .await;
        let n = result.map_err(|e| StoreError::Failed {
            context: format!(
                "reading {} bytes at {} of {}: {e}",
                want,
                pos + out.len() as u64,
                disk.path.display()
            ),
        })?;
        if n == 0 {
            return Err(StoreError::Failed {
                context: format!(
                    "{} ends at {} inside the record at commitlog offset {}",
                    disk.path.display(),
                    pos + out.len() as u64,
                    disk.phys
                ),
            });
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

fn check(raw: &[u8], phys: u64, size: usize, path: &Path) -> Result<(), StoreError> {
    match decode_record_at(raw, phys as usize, true) {
        Ok(RecordAt::Message(layout))
            if layout.physical_offset == phys as i64 && layout.total_size == size =>
        {
            Ok(())
        }
        Ok(_) => Err(StoreError::NotFound {
            offset: phys as i64,
        }),
        Err(e) => Err(StoreError::Failed {
            context: format!(
                "damaged record at commitlog offset {phys} in {}: {e}",
                path.display()
            ),
        }),
    }
}

/// [`crate::server::store::ShardStore::read_record`] for the real store: memory now, disk on
/// the ring (`on_ring`), anything else through `blocking` (the store's own read, which for
/// the cases left serves from memory).
pub fn read_record<F: StoreFs>(
    store: &Store<F>,
    on_ring: bool,
    physical_offset: i64,
    blocking: impl FnOnce() -> Result<Bytes, StoreError>,
) -> RecordRead {
    let Ok(phys) = u64::try_from(physical_offset) else {
        return RecordRead::Ready(Err(StoreError::NotFound {
            offset: physical_offset,
        }));
    };
    if !on_ring {
        return RecordRead::Ready(blocking());
    }
    match locate(store, phys) {
        Ok(Located::Memory(bytes)) => RecordRead::Ready(Ok(bytes)),
        Ok(Located::Disk(disk)) => RecordRead::Pending(read_on_ring(disk)),
        Ok(Located::Buffered) => RecordRead::Ready(blocking()),
        Ok(Located::NotFound) => RecordRead::Ready(Err(StoreError::NotFound {
            offset: physical_offset,
        })),
        Err(error) => RecordRead::Ready(Err(error)),
    }
}

/// Whether a stored record is a message of `topic` indexed under `key` (KEYS or UNIQ_KEY):
/// index entries are hashes, so candidates are checked.
pub fn matches_key(record: &Bytes, topic: &str, key: &str) -> bool {
    ringmq_wire::record::StoredMessage::decode(record, false).is_ok_and(|m| {
        m.topic() == topic && (m.uniq_key() == Some(key) || m.keys().any(|k| k == key))
    })
}

/// One candidate of a key query: its bytes now, or a read to await.
enum Candidate {
    Now(Bytes),
    Later(ReadFuture<Bytes>),
}

/// [`crate::server::store::ShardStore::query_by_key_read`] for the real store. The index
/// lookup itself still runs here, synchronously (it is the store's: see the module docs of
/// [`crate::server::deferred`]); the records are read like [`read_record`] does.
#[allow(clippy::too_many_arguments)]
pub fn query_by_key_read<F: StoreFs>(
    store: &Store<F>,
    on_ring: bool,
    topic: &str,
    key: &str,
    max: usize,
    (begin_ms, end_ms): (i64, i64),
    blocking: impl FnOnce() -> Result<Vec<Bytes>, StoreError>,
) -> RecordsRead {
    if !on_ring {
        return RecordsRead::Ready(blocking());
    }
    let max = max.min(store.config().pull_messages_max.max(64));
    let candidates = match crate::store::io::block_on(store.key_candidates(
        topic,
        key,
        max.saturating_mul(2),
        begin_ms,
        end_ms,
    )) {
        Ok(candidates) => candidates,
        Err(error) => {
            return RecordsRead::Ready(Err(StoreError::Failed {
                context: error.to_string(),
            }));
        }
    };
    let mut found = Vec::new();
    let mut pending = false;
    for phys in candidates {
        let candidate = match locate(store, phys) {
            Ok(Located::Memory(bytes)) => Candidate::Now(bytes),
            Ok(Located::Disk(disk)) => {
                pending = true;
                Candidate::Later(read_on_ring(disk))
            }
            Ok(Located::Buffered) => {
                match crate::store::io::block_on(store.read_message_at(phys)) {
                    Ok(Some(message)) => Candidate::Now(message.raw),
                    _ => continue,
                }
            }
            Ok(Located::NotFound) | Err(_) => continue,
        };
        found.push(candidate);
    }
    let (topic, key) = (topic.to_owned(), key.to_owned());
    if !pending {
        let records = found
            .into_iter()
            .filter_map(|c| match c {
                Candidate::Now(bytes) => Some(bytes),
                Candidate::Later(_) => None,
            })
            .filter(|b| matches_key(b, &topic, &key))
            .take(max)
            .collect();
        return RecordsRead::Ready(Ok(records));
    }
    RecordsRead::Pending(Box::pin(async move {
        let mut records = Vec::new();
        for candidate in found {
            if records.len() >= max {
                break;
            }
            let bytes = match candidate {
                Candidate::Now(bytes) => bytes,
                // A damaged or vanished candidate is skipped, as the blocking query does.
                Candidate::Later(read) => match read.await {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        tracing::warn!(target: "ringmq::server::query", %error,
                            "query candidate not readable; skipped");
                        continue;
                    }
                },
            };
            if matches_key(&bytes, &topic, &key) {
                records.push(bytes);
            }
        }
        Ok(records)
    }))
}

/// A ring read of `len` bytes at `offset` of the segment file `path` (a
/// [`crate::server::store::FileSpan`] of a queue read); the file is opened now, so the read
/// survives the segment's deletion.
pub fn read_span(path: &Path, offset: u64, len: u32) -> Result<ReadFuture<Bytes>, StoreError> {
    let file = runtime::File::open(path).map_err(|e| StoreError::Failed {
        context: format!("opening {} for a query read: {e}", path.display()),
    })?;
    let disk = OnDisk {
        file: Rc::new(file),
        path: Rc::from(path),
        file_pos: offset,
        phys: 0,
        max_len: len as usize,
    };
    Ok(Box::pin(async move {
        let raw = read_exact(&disk, disk.file_pos, disk.max_len).await?;
        Ok(Bytes::from(raw))
    }))
}
