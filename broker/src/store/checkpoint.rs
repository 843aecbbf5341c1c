//! The checkpoint: where recovery may start trusting the files.
//!
//! Two 4 KiB slots, written alternately, each with a sequence number and a CRC, so a torn
//! checkpoint write leaves the previous one readable:
//!
//! ```text
//!  0  u32 magic "RQCP"     4  u32 version (1)     8  u64 sequence
//! 16  i64 physic msg timestamp   24 i64 logics msg timestamp   32 i64 index msg timestamp
//! 40  u64 commit log synced offset: every byte below is on stable storage
//! 48  u64 dispatch persisted offset: every record below has its ConsumeQueue and index
//!         entries on stable storage
//! 56  u32 crc32 of bytes 0..56
//! ```
//!
//! The layout is ours (RocketMQ's holds only the timestamps); nothing outside reads it.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::error::{StoreError, StoreResult};
use super::io::{AlignedBuf, IO_ALIGN, OpenMode, StoreFile, StoreFs};
use super::persist_job::CheckpointWrite;

const MAGIC: u32 = u32::from_be_bytes(*b"RQCP");
const VERSION: u32 = 1;
const BODY_BYTES: usize = 56;

/// The checkpoint values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Monotonic write counter.
    pub sequence: u64,
    /// Store time of the last synced CommitLog record.
    pub physic_msg_timestamp: i64,
    /// Store time of the last persisted ConsumeQueue entry.
    pub logics_msg_timestamp: i64,
    /// Store time of the last persisted index entry.
    pub index_msg_timestamp: i64,
    /// CommitLog bytes below this are on stable storage.
    pub commit_log_synced: u64,
    /// Records below this have their queue and index entries on stable storage.
    pub dispatch_persisted: u64,
}

impl Checkpoint {
    fn encode(&self) -> [u8; BODY_BYTES + 4] {
        let mut b = [0u8; BODY_BYTES + 4];
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&VERSION.to_be_bytes());
        b[8..16].copy_from_slice(&self.sequence.to_be_bytes());
        b[16..24].copy_from_slice(&self.physic_msg_timestamp.to_be_bytes());
        b[24..32].copy_from_slice(&self.logics_msg_timestamp.to_be_bytes());
        b[32..40].copy_from_slice(&self.index_msg_timestamp.to_be_bytes());
        b[40..48].copy_from_slice(&self.commit_log_synced.to_be_bytes());
        b[48..56].copy_from_slice(&self.dispatch_persisted.to_be_bytes());
        let crc = crc32fast::hash(&b[..BODY_BYTES]);
        b[56..60].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Checkpoint> {
        if b.len() < BODY_BYTES + 4 {
            return None;
        }
        let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let crc = u32::from_be_bytes(b[56..60].try_into().ok()?);
        if u32::from_be_bytes(b[0..4].try_into().ok()?) != MAGIC
            || u32::from_be_bytes(b[4..8].try_into().ok()?) != VERSION
            || crc32fast::hash(&b[..BODY_BYTES]) != crc
        {
            return None;
        }
        Some(Checkpoint {
            sequence: u64_at(8),
            physic_msg_timestamp: u64_at(16) as i64,
            logics_msg_timestamp: u64_at(24) as i64,
            index_msg_timestamp: u64_at(32) as i64,
            commit_log_synced: u64_at(40),
            dispatch_persisted: u64_at(48),
        })
    }
}

/// The checkpoint file.
#[derive(Debug)]
pub struct CheckpointFile<File> {
    path: PathBuf,
    file: Rc<File>,
    last: Checkpoint,
}

impl<File: StoreFile> CheckpointFile<File> {
    /// Opens (creating if needed) and reads the newest valid slot; all zeros when none.
    pub async fn open<F: StoreFs<File = File>>(fs: &F, path: &Path) -> StoreResult<Self> {
        let file = fs
            .open(
                path,
                OpenMode {
                    create: true,
                    direct: false,
                },
            )
            .map_err(|e| StoreError::io("open", path, e))?;
        let (buf, n) = file.read_at(vec![0; 2 * IO_ALIGN], 0).await;
        let n = n.map_err(|e| StoreError::io("read", path, e))?;
        let slots = [&buf[..n.min(IO_ALIGN)], &buf[IO_ALIGN.min(n)..n]];
        let last = slots
            .iter()
            .filter_map(|s| Checkpoint::decode(s))
            .max_by_key(|c| c.sequence)
            .unwrap_or_default();
        Ok(CheckpointFile {
            path: path.to_path_buf(),
            file: Rc::new(file),
            last,
        })
    }

    /// The newest checkpoint read or written.
    pub fn get(&self) -> Checkpoint {
        self.last
    }

    /// Writes and syncs a new checkpoint into the older slot (blocking-safe; the store's
    /// persist jobs use [`Self::prepare`] and [`Self::stored`]).
    pub async fn store(&mut self, value: Checkpoint) -> StoreResult<()> {
        let PreparedCheckpoint { write, value } = self.prepare(value);
        let (_, res) = self.file.write_at(write.buf, write.len, write.offset).await;
        res.map_err(|e| StoreError::io("write", &self.path, e))?;
        self.file
            .sync_data()
            .await
            .map_err(|e| StoreError::io("fdatasync", &self.path, e))?;
        self.stored(value);
        Ok(())
    }

    /// Submit half: the write of `value` (its sequence assigned) into the older slot.
    pub(super) fn prepare(&self, mut value: Checkpoint) -> PreparedCheckpoint<File> {
        value.sequence = self.last.sequence + 1;
        PreparedCheckpoint {
            write: CheckpointWrite {
                file: self.file.clone(),
                path: self.path.clone(),
                buf: AlignedBuf::from_slice(&value.encode()),
                len: IO_ALIGN,
                offset: (value.sequence % 2) * IO_ALIGN as u64,
            },
            value,
        }
    }

    /// Complete half: `value` (from [`Self::prepare`]) is on disk.
    pub(super) fn stored(&mut self, value: Checkpoint) {
        if value.sequence > self.last.sequence {
            self.last = value;
        }
    }
}

/// A checkpoint write prepared by [`CheckpointFile::prepare`].
#[derive(Debug)]
pub(super) struct PreparedCheckpoint<File> {
    pub(super) write: CheckpointWrite<File>,
    pub(super) value: Checkpoint,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::io::block_on;
    use crate::store::sim::SimFs;

    #[test]
    fn round_trip_and_torn_slot_falls_back() {
        let fs = SimFs::new(1);
        let path = Path::new("/s/checkpoint");
        let mut cp = block_on(CheckpointFile::open(&fs, path)).unwrap();
        assert_eq!(cp.get(), Checkpoint::default());
        let v = Checkpoint {
            commit_log_synced: 100,
            dispatch_persisted: 90,
            ..Checkpoint::default()
        };
        block_on(cp.store(v)).unwrap();
        block_on(cp.store(Checkpoint {
            commit_log_synced: 200,
            ..v
        }))
        .unwrap();
        let again = block_on(CheckpointFile::open(&fs, path)).unwrap();
        assert_eq!(again.get().commit_log_synced, 200);
        // Damage the newest slot (sequence 2 → slot 0): the older one is used.
        fs.flip_random_bit(path, 0..56).unwrap();
        let again = block_on(CheckpointFile::open(&fs, path)).unwrap();
        assert_eq!(again.get().commit_log_synced, 100);
    }
}
