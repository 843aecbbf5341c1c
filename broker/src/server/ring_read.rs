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
use crate::store::index::lookup::{IndexReader, KeyLookup};
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

/// [`crate::server::store::ShardStore::query_by_key_read`] for the real store: the index
/// entries held in memory are looked up now; entries and slots on disk are read on the ring
/// ([`RecordsRead::Index`], see [`index_read`]); the candidate records as
/// [`records_of_candidates`] reads them.
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
    let lookup = store.key_lookup(topic, key, max.saturating_mul(2), begin_ms, end_ms);
    if lookup.is_done() {
        return records_of_candidates(store, topic, key, max, lookup.found());
    }
    match index_read(lookup) {
        Ok(read) => RecordsRead::Index(read),
        Err(error) => RecordsRead::Ready(Err(error)),
    }
}

thread_local! {
    /// Index slots and entries read on this thread's ring (a counter for tests and metrics).
    static INDEX_RING_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many index slots and entries key queries read on this shard's ring so far.
pub fn index_ring_reads() -> u64 {
    INDEX_RING_READS.with(std::cell::Cell::get)
}

/// The index files of a lookup, open, read on the ring.
struct RingIndexReader {
    files: Vec<(usize, Rc<runtime::File>, Rc<Path>)>,
}

impl IndexReader for RingIndexReader {
    fn read<'a>(
        &'a mut self,
        file: usize,
        pos: u64,
        len: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = crate::store::StoreResult<Vec<u8>>> + 'a>>
    {
        Box::pin(async move {
            let Some((_, handle, path)) = self.files.iter().find(|(i, _, _)| *i == file) else {
                return Err(crate::store::StoreError::Failed(format!(
                    "index file {file} of the lookup was not opened"
                )));
            };
            INDEX_RING_READS.with(|c| c.set(c.get() + 1));
            let (result, buf) = handle.read_at(Vec::with_capacity(len), pos).await;
            let n = result.map_err(|e| {
                crate::store::StoreError::Failed(format!(
                    "reading {len} bytes at {pos} of {}: {e}",
                    path.display()
                ))
            })?;
            let mut buf = buf;
            buf.truncate(n);
            Ok(buf)
        })
    }
}

/// The disk part of a key lookup as a ring read. The index files it reads are opened now,
/// so that the read survives their deletion by retention meanwhile.
pub fn index_read(lookup: KeyLookup) -> Result<ReadFuture<Vec<u64>>, StoreError> {
    let mut files = Vec::new();
    for (i, path) in lookup.disk_files() {
        let file = runtime::File::open(path).map_err(|e| StoreError::Failed {
            context: format!("opening {} for a key query: {e}", path.display()),
        })?;
        files.push((i, Rc::new(file), Rc::from(path)));
    }
    let mut reader = RingIndexReader { files };
    Ok(Box::pin(async move {
        lookup
            .finish(&mut reader)
            .await
            .map_err(|e| StoreError::Failed {
                context: e.to_string(),
            })
    }))
}

/// The records of `topic` under `key` among `candidates`: those in memory now, those on
/// disk read like [`read_record`] does (one ring read each, as one task).
pub fn records_of_candidates<F: StoreFs>(
    store: &Store<F>,
    topic: &str,
    key: &str,
    max: usize,
    candidates: Vec<u64>,
) -> RecordsRead {
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

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::sync::Arc;

    use ringmq_wire::header::CommandHeader;
    use ringmq_wire::header::offset::{
        GetEarliestMsgStoretimeRequestHeader, GetEarliestMsgStoretimeResponseHeader,
    };
    use ringmq_wire::header::query::{QueryMessageRequestHeader, ViewMessageRequestHeader};
    use ringmq_wire::header::send::SendMessageResponseHeader;
    use ringmq_wire::msgid::parse_offset_msg_id;
    use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

    use crate::config::BrokerConfig;
    use crate::runtime::{RuntimeConfig, Shard, spawn_local, yield_now};
    use crate::server::handler::testing::{CONN, records, request_with, send_request};
    use crate::server::mem_store::test_addr;
    use crate::server::state::{ShardIdentity, ShardState};
    use crate::server::store::ShardStore;
    use crate::server::store_adapter::RealStore;
    use crate::store::StoreConfig;
    use crate::store::uring::UringFs;

    /// Ticks the state until a response with `opaque` is in the outbox.
    async fn answer_of(
        state: &mut ShardState<RealStore<UringFs>>,
        opaque: i32,
        now: u64,
    ) -> RemotingCommand {
        for _ in 0..100_000 {
            state.tick(now);
            if let Some(out) = state
                .take_outbox()
                .into_iter()
                .find(|o| o.command.opaque == opaque)
            {
                return out.command;
            }
            yield_now().await;
        }
        panic!("no answer to request {opaque}");
    }

    #[test]
    fn cold_records_are_read_on_the_ring_and_damage_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Ok(shard) = Shard::new(&RuntimeConfig::for_tests()) else {
            eprintln!("skipping: io_uring unavailable");
            return;
        };
        shard.block_on(async {
            let mut store_config = StoreConfig::for_tests(dir.path());
            store_config.tail_cache_bytes = 0;
            store_config.store_host = test_addr(10911);
            let log_dir = store_config.commit_log_dir();
            let store = RealStore::open_on_ring(UringFs::new(), store_config).expect("store");
            let config = BrokerConfig::standalone();
            let identity = ShardIdentity::of(&config, 0, test_addr(10911));
            let now = 1_700_000_000_000;
            let mut state = ShardState::new(identity, Arc::new(config), store, now);
            state
                .deferred
                .install(Rc::new(|task| drop(spawn_local(task))), Rc::new(|| {}));
            let send = send_request("T", 0, b"cold-body", &[]);
            let opaque = send.opaque;
            let sent = match state.handle(CONN, send, now) {
                Some(response) => response,
                None => {
                    state.after_requests(now);
                    answer_of(&mut state, opaque, now).await
                }
            };
            assert_eq!(sent.code, 0);
            let id = SendMessageResponseHeader::decode(&sent)
                .expect("header")
                .msg_id;
            let (_, offset) = parse_offset_msg_id(&id).expect("id");
            let view = || {
                request_with(
                    RequestCode::ViewMessageById,
                    &ViewMessageRequestHeader {
                        topic: None,
                        offset,
                    },
                )
            };
            // On disk and not cached: the read goes to the ring, the answer comes later.
            assert!(matches!(
                super::locate(state.store.inner(), offset as u64),
                Ok(super::Located::Disk(_))
            ));
            let request = view();
            let opaque = request.opaque;
            assert!(state.handle(CONN, request, now).is_none(), "deferred");
            let viewed = answer_of(&mut state, opaque, now).await;
            assert_eq!(viewed.code, 0, "{:?}", viewed.remark);
            assert_eq!(&records(&viewed.body)[0].body()[..], b"cold-body");

            // A flipped body byte is caught by the CRC check: an error, never the bytes.
            let segment = log_dir.join(crate::store::commit_log::file_name(0));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&segment)
                .expect("segment");
            // IPv4 hosts: the body starts 88 bytes into the record (spec §2.7).
            let body_at = offset as u64 + 88 + 2;
            let mut byte = [0u8; 1];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, body_at).expect("read");
            byte[0] ^= 0xFF;
            std::os::unix::fs::FileExt::write_all_at(&file, &byte, body_at).expect("write");
            let request = view();
            let opaque = request.opaque;
            assert!(state.handle(CONN, request, now).is_none(), "deferred");
            let damaged = answer_of(&mut state, opaque, now).await;
            assert_eq!(damaged.code, ResponseCode::SystemError.as_i32());
            assert!(damaged.body.is_empty());
            let remark = damaged.remark.unwrap_or_default();
            assert!(remark.contains("damaged record"), "{remark}");
        });
    }

    /// Sends `body` with key `k` to `T` and waits for its acknowledgement.
    async fn send_keyed(state: &mut ShardState<RealStore<UringFs>>, body: &[u8], now: u64) {
        let send = send_request("T", 0, body, &[("KEYS", "k")]);
        let opaque = send.opaque;
        let sent = match state.handle(CONN, send, now) {
            Some(response) => response,
            None => {
                state.after_requests(now);
                answer_of(state, opaque, now).await
            }
        };
        assert_eq!(sent.code, 0, "{:?}", sent.remark);
    }

    /// The bodies a key query answers (deferred or not), and whether it was deferred.
    async fn query_bodies(
        state: &mut ShardState<RealStore<UringFs>>,
        key: &str,
        now: u64,
    ) -> (Result<Vec<String>, i32>, bool) {
        let request = request_with(
            RequestCode::QueryMessage,
            &QueryMessageRequestHeader {
                topic: "T".into(),
                key: key.into(),
                max_num: 32,
                begin_timestamp: 0,
                end_timestamp: i64::MAX,
                unique_key_query: None,
                rpc: Default::default(),
            },
        );
        let opaque = request.opaque;
        let (response, deferred) = match state.handle(CONN, request, now) {
            Some(response) => (response, false),
            None => (answer_of(state, opaque, now).await, true),
        };
        let bodies = (response.code == 0)
            .then(|| {
                records(&response.body)
                    .iter()
                    .map(|m| String::from_utf8_lossy(&m.body()).into_owned())
                    .collect()
            })
            .ok_or(response.code);
        (bodies, deferred)
    }

    #[test]
    fn cold_index_entries_of_a_key_query_are_read_on_the_ring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Ok(shard) = Shard::new(&RuntimeConfig::for_tests()) else {
            eprintln!("skipping: io_uring unavailable");
            return;
        };
        shard.block_on(async {
            let mut store_config = StoreConfig::for_tests(dir.path());
            store_config.tail_cache_bytes = 0;
            store_config.store_host = test_addr(10911);
            // Three keys fill an index file: the first file is sealed, the second active.
            store_config.index = crate::store::index::IndexConfig {
                slots: 64,
                entries: 4,
            };
            let open = |config: StoreConfig| {
                let store = RealStore::open_on_ring(UringFs::new(), config).expect("store");
                let config = BrokerConfig::standalone();
                let identity = ShardIdentity::of(&config, 0, test_addr(10911));
                let mut state =
                    ShardState::new(identity, Arc::new(config), store, 1_700_000_000_000);
                state
                    .deferred
                    .install(Rc::new(|task| drop(spawn_local(task))), Rc::new(|| {}));
                state
            };
            let now = 1_700_000_000_000;
            let mut state = open(store_config.clone());
            for i in 0..5 {
                send_keyed(&mut state, format!("b{i}").as_bytes(), now).await;
            }
            let newest_first: Vec<String> = (0..5).rev().map(|i| format!("b{i}")).collect();
            // The entries are still in memory: no index read, only the cold records.
            let before = super::index_ring_reads();
            let (bodies, _) = query_bodies(&mut state, "k", now).await;
            assert_eq!(bodies, Ok(newest_first.clone()));
            assert_eq!(
                super::index_ring_reads(),
                before,
                "index answered from memory"
            );
            while state.store.drain_commits() {
                yield_now().await;
            }
            state.store.shutdown().expect("clean shutdown");
            drop(state);

            // Reopened: the sealed file's slots and every entry are on disk.
            let mut state = open(store_config);
            let lookup = state.store.inner().key_lookup("T", "k", 64, 0, i64::MAX);
            assert!(!lookup.is_done());
            assert_eq!(lookup.disk_files().len(), 2);
            let before = super::index_ring_reads();
            let (bodies, deferred) = query_bodies(&mut state, "k", now).await;
            assert!(deferred, "the index lookup ran as a deferred task");
            assert_eq!(bodies, Ok(newest_first.clone()));
            // Two slots (one from disk, one from memory) and five entries: six ring reads.
            assert_eq!(super::index_ring_reads() - before, 6);
            // The blocking lookup agrees.
            let blocking: Vec<String> = state
                .store
                .query_by_key("T", "k", 32, 0, i64::MAX)
                .expect("query")
                .iter()
                .map(|r| {
                    ringmq_wire::record::StoredMessage::decode(r, false)
                        .map(|m| String::from_utf8_lossy(&m.body()).into_owned())
                        .expect("record")
                })
                .collect();
            assert_eq!(blocking, newest_first);
            // The earliest store time probes the cold first record on the ring too.
            let request = request_with(
                RequestCode::GetEarliestMsgStoretime,
                &GetEarliestMsgStoretimeRequestHeader {
                    topic: "T".into(),
                    queue_id: 0,
                    rpc: Default::default(),
                },
            );
            let opaque = request.opaque;
            assert!(state.handle(CONN, request, now).is_none(), "deferred");
            let answer = answer_of(&mut state, opaque, now).await;
            let earliest = GetEarliestMsgStoretimeResponseHeader::decode(&answer)
                .expect("header")
                .timestamp;
            assert_eq!(Some(earliest), state.store.store_time("T", 0, 0));
            assert!(earliest > 0);
            // A key nobody used: not found, after the same kind of lookup.
            let (missing, _) = query_bodies(&mut state, "nope", now).await;
            assert_eq!(missing, Err(ResponseCode::QueryNotFound.as_i32()));
        });
    }
}
