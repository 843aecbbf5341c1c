//! `RWF_DSYNC` writes on the shard's ring: one `Write`/`WriteFixed` SQE whose completion
//! means the bytes are on stable storage, as a write followed by `fdatasync` of its range
//! would promise (`pwritev2(2)`: "per-IO `O_DSYNC`"). On an `O_DIRECT` file the kernel
//! finishes the sync in its direct-I/O completion path (or with a FUA write when the write
//! needs no metadata change and the device supports it), without handing a separate `Fsync`
//! to an io-wq worker. Shard-local (`!Send`).

use std::io;

use super::buf::IoBuf;
use super::fs::File;

impl File {
    /// Writes all of `buf` at `pos` with `RWF_DSYNC`: when it completes, the bytes written
    /// (and the metadata needed to read them back) are durable. A short write is continued
    /// with `RWF_DSYNC` too. Uses `WriteFixed` for registered buffers.
    pub async fn write_all_dsync_at<B: IoBuf>(&self, buf: B, pos: u64) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        self.write_rest(buf, 0, total, pos, true).await
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::OpenOptionsExt;

    use super::*;
    use crate::runtime::{AlignedBuf, RuntimeConfig, Shard};

    #[test]
    fn dsync_writes_land_whole_on_direct_and_buffered_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shard = Shard::new(&RuntimeConfig::for_tests()).expect("shard");
        shard.block_on(async {
            for direct in [true, false] {
                let path = dir.path().join(format!("d{direct}"));
                let mut o = std::fs::OpenOptions::new();
                o.read(true).write(true).create(true).truncate(true);
                if direct {
                    o.custom_flags(libc::O_DIRECT);
                }
                // tmpfs refuses O_DIRECT at open: then the buffered case covers it.
                let Ok(f) = File::open_with(&path, &o) else {
                    continue;
                };
                f.fallocate(0, 1 << 20, 0).await.expect("fallocate");
                let data = AlignedBuf::from_slice(&[0x5A; 8192]);
                let (r, _) = f.write_all_dsync_at(data, 4096).await;
                r.expect("RWF_DSYNC write");
                let back = std::fs::read(&path).expect("read");
                assert!(back[4096..12288].iter().all(|b| *b == 0x5A));
                assert!(back[..4096].iter().all(|b| *b == 0));
            }
        });
    }
}
