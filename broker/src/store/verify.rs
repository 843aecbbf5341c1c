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
