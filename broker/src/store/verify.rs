//! Offline inspection of a store directory: `ringmq-broker store verify|dump`.
//!
//! `verify` walks every CommitLog segment record by record (magic, size, fields, body CRC,
//! physical offset) and every ConsumeQueue entry (pointing at a record of its own topic and
//! queue), and reports each problem with its file and offset. `dump` prints the messages of
//! one queue.

use std::path::{Path, PathBuf};

use ringmq_wire::record::{RecordAt, decode_record_at};

use super::commit_log::{file_name, list_segments};
use super::error::{StoreError, StoreResult};
use super::io::{OpenMode, StoreFile, StoreFs};

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The damaged file.
    pub path: PathBuf,
    /// Byte offset within it.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} @ {}: {}",
            self.path.display(),
            self.offset,
            self.reason
        )
    }
}

/// Totals of a [`verify`] run.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: usize,
    /// Valid records.
    pub records: u64,
    /// Bytes of valid records.
    pub record_bytes: u64,
    /// Problems found (at most [`DAMAGE_REPORTED_MAX`]).
    pub damage: Vec<Damage>,
}

/// Problems listed at most (a wholly garbage disk must not print gigabytes).
pub const DAMAGE_REPORTED_MAX: usize = 100;

/// Checks every CommitLog segment under `root/commitlog`; `segment_bytes` is the configured
/// segment size. A segment ends at its first unwritten (zero) bytes or its blank record.
pub async fn verify<F: StoreFs>(
    fs: &F,
    root: &Path,
    segment_bytes: u64,
) -> StoreResult<VerifyReport> {
    let dir = root.join("commitlog");
    let mut report = VerifyReport::default();
    let segs = list_segments(fs, &dir)?;
    // Where the log ended (zeros) before the last segment: damage only if data follows.
    let mut early_end: Option<Damage> = None;
    for seg in segs.iter().copied() {
        report.segments += 1;
        let path = dir.join(file_name(seg));
        let file = fs
            .open(
                &path,
                OpenMode {
                    create: false,
                    direct: false,
                },
            )
            .map_err(|e| StoreError::io("open", &path, e))?;
        let len = file
            .len()
            .map_err(|e| StoreError::io("stat", &path, e))?
            .min(segment_bytes);
        let (buf, n) = file.read_at(vec![0; len as usize], 0).await;
        let n = n.map_err(|e| StoreError::io("read", &path, e))?;
        let mut at = 0usize;
        while at + 8 <= n {
            if buf[at..at + 8].iter().all(|b| *b == 0) {
                early_end.get_or_insert(Damage {
                    path: path.clone(),
                    offset: at as u64,
                    reason: "the log has a hole: unwritten bytes, then data in a later segment"
                        .into(),
                });
                break;
            }
            if let Some(gap) = early_end.take() {
                report.damage.push(gap);
            }
            match decode_record_at(&buf[at..n], at, true) {
                Ok(RecordAt::Message(layout)) => {
                    if layout.physical_offset != (seg + at as u64) as i64 {
                        report.damage.push(Damage {
                            path: path.clone(),
                            offset: at as u64,
                            reason: format!(
                                "record says it is at {} but sits at {}",
                                layout.physical_offset,
                                seg + at as u64
                            ),
                        });
                        break;
                    }
                    report.records += 1;
                    report.record_bytes += layout.total_size as u64;
                    at += layout.total_size;
                }
                Ok(RecordAt::Blank { total_size }) => {
                    if (at + total_size) as u64 != segment_bytes {
                        report.damage.push(Damage {
                            path: path.clone(),
                            offset: at as u64,
                            reason: format!(
                                "blank record of {total_size} bytes does not end the segment"
                            ),
                        });
                    }
                    break;
                }
                Err(e) => {
                    report.damage.push(Damage {
                        path: path.clone(),
                        offset: at as u64,
                        reason: e.to_string(),
                    });
                    break;
                }
            }
            if report.damage.len() >= DAMAGE_REPORTED_MAX {
                return Ok(report);
            }
        }
    }
    verify_queues(fs, root, segment_bytes, &mut report).await?;
    Ok(report)
}

async fn verify_queues<F: StoreFs>(
    fs: &F,
    root: &Path,
    segment_bytes: u64,
    report: &mut VerifyReport,
) -> StoreResult<()> {
    let cq_root = root.join("consumequeue");
    let Ok(topics) = fs.list_dir(&cq_root) else {
        return Ok(());
    };
    let cl_dir = root.join("commitlog");
    for topic in topics {
        let Ok(ids) = fs.list_dir(&cq_root.join(&topic)) else {
            continue;
        };
        for id in ids {
            let Ok(queue_id) = id.parse::<i32>() else {
                continue;
            };
            let qdir = cq_root.join(&topic).join(&id);
            let Ok(files) = fs.list_dir(&qdir) else {
                continue;
            };
            for name in files {
                let path = qdir.join(&name);
                let file = fs
                    .open(
                        &path,
                        OpenMode {
                            create: false,
                            direct: false,
                        },
                    )
                    .map_err(|e| StoreError::io("open", &path, e))?;
                let len = file.len().map_err(|e| StoreError::io("stat", &path, e))?;
                let (buf, n) = file.read_at(vec![0; len as usize], 0).await;
                let n = n.map_err(|e| StoreError::io("read", &path, e))?;
                for (i, e) in buf[..n].chunks_exact(20).enumerate() {
                    let phys = i64::from_be_bytes(e[0..8].try_into().unwrap_or([0; 8]));
                    let size = i32::from_be_bytes(e[8..12].try_into().unwrap_or([0; 4]));
                    if size == 0 {
                        break;
                    }
                    if size < 0 || phys < 0 {
                        continue;
                    }
                    let seg = phys as u64 / segment_bytes * segment_bytes;
                    let seg_path = cl_dir.join(file_name(seg));
                    if !fs.exists(&seg_path) {
                        continue; // deleted by retention
                    }
                    let Ok(seg_file) = fs.open(
                        &seg_path,
                        OpenMode {
                            create: false,
                            direct: false,
                        },
                    ) else {
                        continue;
                    };
                    let (rec, got) = seg_file
                        .read_at(vec![0; size as usize], phys as u64 - seg)
                        .await;
                    let got = got.map_err(|e| StoreError::io("read", &seg_path, e))?;
                    let ok = matches!(decode_record_at(&rec[..got], phys as usize, true),
                        Ok(RecordAt::Message(l)) if l.queue_id == queue_id && l.physical_offset == phys && rec[l.topic.clone()] == *topic.as_bytes());
                    if !ok {
                        report.damage.push(Damage {
                            path: path.clone(),
                            offset: i as u64 * 20,
                            reason: format!("entry points at commit log offset {phys} ({size} bytes), which is not a record of {topic}/{queue_id}"),
                        });
                        if report.damage.len() >= DAMAGE_REPORTED_MAX {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// One message printed by [`dump_queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpLine {
    /// Logical offset in the queue.
    pub queue_offset: u64,
    /// CommitLog offset.
    pub physical_offset: u64,
    /// Record size.
    pub size: u32,
    /// Store timestamp (ms).
    pub store_timestamp: i64,
    /// Offset msgId.
    pub msg_id: String,
    /// TAGS.
    pub tags: String,
    /// KEYS.
    pub keys: String,
    /// Body length.
    pub body_len: usize,
    /// Problem with this entry, if any.
    pub error: Option<String>,
}

/// Reads the messages of one queue straight from the files, without opening (or changing)
/// the store: ConsumeQueue entries, then each record, CRC checked. At most `limit` lines.
pub async fn dump_queue<F: StoreFs>(
    fs: &F,
    root: &Path,
    segment_bytes: u64,
    topic: &str,
    queue_id: i32,
    limit: usize,
) -> StoreResult<Vec<DumpLine>> {
    let qdir = root
        .join("consumequeue")
        .join(topic)
        .join(queue_id.to_string());
    let mut files: Vec<u64> = fs
        .list_dir(&qdir)
        .map_err(|e| StoreError::io("list", &qdir, e))?
        .iter()
        .filter_map(|n| super::commit_log::parse_file_name(n))
        .collect();
    files.sort_unstable();
    let cl_dir = root.join("commitlog");
    let mut out = Vec::new();
    for start in files {
        let path = qdir.join(file_name(start));
        let file = fs
            .open(
                &path,
                OpenMode {
                    create: false,
                    direct: false,
                },
            )
            .map_err(|e| StoreError::io("open", &path, e))?;
        let len = file.len().map_err(|e| StoreError::io("stat", &path, e))?;
        let (buf, n) = file.read_at(vec![0; len as usize], 0).await;
        let n = n.map_err(|e| StoreError::io("read", &path, e))?;
        for (i, e) in buf[..n].chunks_exact(20).enumerate() {
            if out.len() >= limit {
                return Ok(out);
            }
            let phys = i64::from_be_bytes(e[0..8].try_into().unwrap_or([0; 8]));
            let size = i32::from_be_bytes(e[8..12].try_into().unwrap_or([0; 4]));
            if size == 0 {
                return Ok(out);
            }
            if size < 0 || phys < 0 || size == i32::MAX {
                continue;
            }
            let mut line = DumpLine {
                queue_offset: start / 20 + i as u64,
                physical_offset: phys as u64,
                size: size as u32,
                store_timestamp: 0,
                msg_id: String::new(),
                tags: String::new(),
                keys: String::new(),
                body_len: 0,
                error: None,
            };
            let seg = phys as u64 / segment_bytes * segment_bytes;
            let seg_path = cl_dir.join(file_name(seg));
            match fs.open(
                &seg_path,
                OpenMode {
                    create: false,
                    direct: false,
                },
            ) {
                Err(_) => line.error = Some("segment deleted (retention)".into()),
                Ok(seg_file) => {
                    let (rec, got) = seg_file
                        .read_at(vec![0; size as usize], phys as u64 - seg)
                        .await;
                    let got = got.map_err(|e| StoreError::io("read", &seg_path, e))?;
                    let bytes = bytes::Bytes::from(rec).slice(..got);
                    match ringmq_wire::record::StoredMessage::decode(&bytes, true) {
                        Ok(m) => {
                            line.store_timestamp = m.layout.store_timestamp;
                            line.msg_id = m.offset_msg_id();
                            line.tags = m.tags().unwrap_or_default().to_owned();
                            line.keys = m
                                .property(ringmq_wire::record::property::KEYS)
                                .unwrap_or_default()
                                .to_owned();
                            line.body_len = m.layout.body.len();
                        }
                        Err(e) => line.error = Some(e.to_string()),
                    }
                }
            }
            out.push(line);
        }
    }
    Ok(out)
}

/// The segment size of a store, inferred from its first (preallocated) segment file; the
/// default (1 GiB) when there is none.
pub fn infer_segment_bytes<F: StoreFs>(fs: &F, root: &Path) -> StoreResult<u64> {
    let dir = root.join("commitlog");
    let segs = list_segments(fs, &dir)?;
    let Some(first) = segs.first() else {
        return Ok(1 << 30);
    };
    let path = dir.join(file_name(*first));
    let file = fs
        .open(
            &path,
            OpenMode {
                create: false,
                direct: false,
            },
        )
        .map_err(|e| StoreError::io("open", &path, e))?;
    let len = file.len().map_err(|e| StoreError::io("stat", &path, e))?;
    if len == 0 || !len.is_multiple_of(super::io::IO_ALIGN as u64) {
        return Err(StoreError::Corrupt {
            what: "commit log segment size",
            path,
            offset: len,
            reason: "cannot infer the segment size; pass --segment-bytes".into(),
        });
    }
    Ok(len)
}
