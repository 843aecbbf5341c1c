//! Writing the metadata snapshots (topic configs, subscription groups, consumer offsets) as
//! one owned unit of work, the way [`super::persist_job`] does it for the queues:
//! [`super::Store::begin_meta_persist`] (submit half, on the shard thread) serializes every
//! changed table into an owned buffer; [`MetaJob::run`] writes them; and
//! [`super::Store::finish_meta_persist`] (complete half) marks the tables whose write failed
//! as changed again, so that the next job retries them. The store is not borrowed while the
//! disk works: in ring mode the broker spawns the job as a task of the shard.
//!
//! Each table is published the crash-safe way:
//! 1. its temp file `<name>.tmp` is created or emptied (`OpenAt` with `O_TRUNC` on the ring);
//! 2. the snapshot is written into it and `fdatasync`ed;
//! 3. the temp file is renamed over `<name>` (`RenameAt` on the ring);
//!
//! and once every table of the job is renamed, 4. the directory is `fsync`ed, which makes the
//! renames durable. Until its rename, the previous snapshot stays whole and is what a restart
//! reads; after it, the new one is complete on disk (it was synced before). A crash between
//! the rename and the directory sync leaves either file, both whole.
//!
//! One job at a time (they share the temp file names): while one is out, changes only mark
//! tables changed, and the job after it writes them (changes coalesce into one more write).
//!
//! With `ring == false` (tests, tools, `StdFs`/`SimFs`, and the broker's clean shutdown) the
//! same steps run with the blocking-safe calls. Runs on the shard's thread (`!Send`).

use std::path::{Path, PathBuf};

use super::error::{StoreError, StoreResult};
use super::io::{AlignedBuf, OpenMode, StoreFile, StoreFs};

/// One table's snapshot to publish.
#[derive(Debug)]
pub(super) struct SnapshotWrite {
    /// Which table (an index into the store's dirty flags).
    pub(super) table: usize,
    /// The snapshot file.
    pub(super) path: PathBuf,
    /// The encoded snapshot.
    pub(super) bytes: AlignedBuf,
    /// Its length.
    pub(super) len: usize,
}

/// Snapshots taken out of the store; see the module docs. Give its [`MetaDone`] back to
/// [`super::Store::finish_meta_persist`].
#[derive(Debug)]
pub struct MetaJob<F: StoreFs> {
    pub(super) fs: F,
    pub(super) ring: bool,
    pub(super) dir: PathBuf,
    pub(super) writes: Vec<SnapshotWrite>,
}

/// The outcome of a [`MetaJob`].
#[derive(Debug)]
pub struct MetaDone {
    /// Tables whose new snapshot is durable.
    pub(super) written: Vec<usize>,
    /// Tables to write again (their write, rename or the directory sync failed).
    pub(super) failed: Vec<usize>,
    pub(super) result: StoreResult<()>,
}

impl MetaDone {
    /// Whether every snapshot of the job was published durably.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// The temp file a snapshot is written to before its rename.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

impl<F: StoreFs> MetaJob<F> {
    /// Snapshots this job publishes.
    pub fn table_count(&self) -> usize {
        self.writes.len()
    }

    /// Whether the job runs its operations on the shard's ring.
    pub fn on_ring(&self) -> bool {
        self.ring
    }

    /// Publishes the snapshots. Never fails as a future: the outcome is in the [`MetaDone`].
    pub async fn run(self) -> MetaDone {
        let MetaJob {
            fs,
            ring,
            dir,
            writes,
        } = self;
        let mut done = MetaDone {
            written: Vec::with_capacity(writes.len()),
            failed: Vec::new(),
            result: Ok(()),
        };
        for w in writes {
            match publish(&fs, ring, w.bytes, w.len, &w.path).await {
                Ok(()) => done.written.push(w.table),
                Err(e) => {
                    done.failed.push(w.table);
                    if done.result.is_ok() {
                        done.result = Err(e);
                    }
                }
            }
        }
        if !done.written.is_empty() {
            let synced = if ring {
                fs.sync_dir_ring(&dir).await
            } else {
                fs.sync_dir(&dir)
            };
            if let Err(e) = synced {
                // The renames may not be durable: write those tables again.
                done.failed.append(&mut done.written);
                if done.result.is_ok() {
                    done.result = Err(StoreError::io("fsync directory", &dir, e));
                }
            }
        }
        if let Err(error) = &done.result {
            tracing::warn!(target: "store::meta", %error, failed = done.failed.len(),
                "writing metadata snapshots failed; retried at the next persist");
        }
        done
    }
}

/// Steps 1–3 of the module docs for one table.
async fn publish<F: StoreFs>(
    fs: &F,
    ring: bool,
    bytes: AlignedBuf,
    len: usize,
    path: &Path,
) -> StoreResult<()> {
    let tmp = tmp_path(path);
    let mode = OpenMode {
        create: true,
        direct: false,
    };
    let file = if ring {
        fs.open_ring(&tmp, mode, true).await
    } else {
        match fs.open(&tmp, mode) {
            Ok(file) => file.set_len(0).await.map(|()| file),
            Err(e) => Err(e),
        }
    }
    .map_err(|e| StoreError::io("create", &tmp, e))?;
    let (_, written) = if ring {
        file.write_at_ring(bytes, len, 0).await
    } else {
        file.write_at(bytes, len, 0).await
    };
    written.map_err(|e| StoreError::io("write", &tmp, e))?;
    let synced = if ring {
        file.sync_data_ring().await
    } else {
        file.sync_data().await
    };
    synced.map_err(|e| StoreError::io("fdatasync", &tmp, e))?;
    drop(file);
    let renamed = if ring {
        fs.rename_ring(&tmp, path).await
    } else {
        fs.rename(&tmp, path)
    };
    renamed.map_err(|e| StoreError::io("rename", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::io::block_on;
    use crate::store::sim::{RebootKind, SimFs};
    use crate::store::snapshot::{MetaStore, TopicConfig};

    fn topic(name: &str) -> TopicConfig {
        TopicConfig {
            topic_name: name.into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_filter_type: 0,
            topic_sys_flag: 0,
            order: false,
            attributes: vec![],
        }
    }

    fn names(meta: &MetaStore) -> Vec<String> {
        meta.topics().topics.keys().cloned().collect()
    }

    /// A crash at each step before the rename (emptying the temp file, the write, its sync,
    /// the rename itself), then a process kill or a power loss: the previous snapshot is what
    /// a restart reads, whole; and the next write after the restart publishes the new one.
    #[test]
    fn a_crash_before_the_rename_leaves_the_previous_snapshot_readable() {
        for seed in 0..8u64 {
            for crash_at in 0..4u64 {
                for kind in [RebootKind::ProcessKill, RebootKind::PowerLoss] {
                    let fs = SimFs::new(seed);
                    let dir = Path::new("/s/config");
                    fs.create_dir_all(dir).expect("dir");
                    let mut meta = block_on(MetaStore::open(&fs, dir)).expect("open");
                    meta.put_topic(topic("Old"), 1);
                    block_on(meta.persist(&fs)).expect("first snapshot");
                    meta.put_topic(topic("New"), 2);
                    fs.crash_after(crash_at);
                    let err = block_on(meta.persist(&fs)).expect_err("crashed");
                    assert!(fs.is_crashed(), "{err}");
                    fs.reboot(kind);
                    let context = format!("seed {seed}, crash at {crash_at}, {kind:?}");
                    let mut again = block_on(MetaStore::open(&fs, dir))
                        .unwrap_or_else(|e| panic!("{context}: {e}"));
                    assert_eq!(names(&again), ["Old"], "{context}");
                    again.put_topic(topic("New"), 3);
                    block_on(again.persist(&fs)).expect("write after the restart");
                    let last = block_on(MetaStore::open(&fs, dir)).expect("reopen");
                    assert_eq!(names(&last), ["New", "Old"], "{context}");
                }
            }
        }
    }

    #[test]
    fn a_failed_job_marks_its_tables_changed_again() {
        let fs = SimFs::new(1);
        let dir = Path::new("/s/config");
        fs.create_dir_all(dir).expect("dir");
        let mut meta = block_on(MetaStore::open(&fs, dir)).expect("open");
        meta.put_topic(topic("T"), 1);
        meta.commit_offset("T", "G", 0, 5);
        fs.crash_after(0);
        assert!(block_on(meta.persist(&fs)).is_err());
        assert!(meta.is_dirty() && meta.config_dirty());
        fs.reboot(RebootKind::ProcessKill);
        block_on(meta.persist(&fs)).expect("retried");
        assert!(!meta.is_dirty());
        let back = block_on(MetaStore::open(&fs, dir)).expect("reopen");
        assert_eq!(back.query_offset("T", "G", 0), Some(5));
        assert_eq!(names(&back), ["T"]);
    }
}
