//! Retention: delete whole CommitLog segments past `fileReservedTime` at `deleteWhen`, or
//! earlier when the disk fills (RocketMQ's 75 / 85 / 90 % thresholds), then drop the queue
//! and index entries that pointed into them.
//!
//! Deletion goes oldest first and stops at the first segment it must keep, so the log stays
//! one contiguous range; it never deletes the active segment nor a segment a reader has
//! pinned (a pull being spliced from it).

use super::Store;
use super::error::{StoreError, StoreResult};
use super::io::StoreFs;

/// What a retention run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionReport {
    /// Start offsets of the deleted segments.
    pub deleted_segments: Vec<u64>,
    /// Disk usage seen, percent.
    pub disk_used_percent: f64,
    /// Whether appends are now refused for lack of space.
    pub disk_full: bool,
}

impl<F: StoreFs> Store<F> {
    /// One retention run at wall-clock `now_ms` (RocketMQ runs it every 10 s).
    pub async fn retention_step(&mut self, now_ms: i64) -> StoreResult<RetentionReport> {
        let root = self.config.root.clone();
        let used = self
            .fs
            .disk_used_ratio(&root)
            .map_err(|e| StoreError::io("statvfs", &root, e))?
            * 100.0;
        let mut report = RetentionReport {
            disk_used_percent: used,
            ..RetentionReport::default()
        };
        let hour = (now_ms.div_euclid(3_600_000).rem_euclid(24)) as u32;
        let at_delete_hour = self.config.delete_when_hours.contains(&hour);
        let over_max = used >= f64::from(self.config.disk_max_used_percent);
        let forcibly = used >= f64::from(self.config.disk_clean_forcibly_percent);
        if at_delete_hour || over_max {
            let reserved_ms = i64::from(self.config.file_reserved_hours) * 3_600_000;
            let active = self.log.segment_start(self.log.append_offset());
            let candidates: Vec<u64> = self
                .log
                .segments()
                .map(|s| s.start)
                .filter(|s| *s != active)
                .collect();
            for start in candidates {
                if report.deleted_segments.len() >= self.config.delete_files_batch_max
                    || self.pins.is_pinned(start)
                {
                    break;
                }
                // A segment is older than its last write; everything in it is at least that old.
                let modified = self.log.segment_modified_ms(start)?;
                if !(forcibly || modified + reserved_ms <= now_ms) {
                    break;
                }
                // Keep what is not yet durable: never delete past the synced offset.
                if start + self.log.segment_bytes() > self.log.synced_offset() {
                    break;
                }
                if self.log.remove_segment(start)? {
                    tracing::info!(target: "store::retention", segment = start, forcibly, "deleted commit log segment");
                    report.deleted_segments.push(start);
                }
            }
        }
        if !report.deleted_segments.is_empty() {
            let min = self.log.min_offset();
            for queues in self.queues.values_mut() {
                for q in queues.values_mut() {
                    q.drop_below(&self.fs, min, &self.cq_pages).await?;
                }
            }
            self.index.drop_below(&self.fs, min)?;
        }
        self.disk_full = used >= f64::from(self.config.disk_warning_percent);
        report.disk_full = self.disk_full;
        if self.disk_full {
            tracing::warn!(target: "store::retention", used_percent = used, "disk full: appends are refused");
        }
        Ok(report)
    }
}
