//! Path operations on the shard's ring: opening (and creating) a file with `OpenAt` and
//! renaming one with `RenameAt`. `open(2)` with `O_CREAT` and `rename(2)` can wait on the
//! filesystem's journal; through the ring the shard goes on serving meanwhile (the kernel
//! runs them in its io-wq workers; on the fallback driver, a file helper thread runs them). The store creates its ConsumeQueue files and new
//! CommitLog segments and publishes its metadata snapshots with these.
//!
//! Shard-local (`!Send`). The path strings are owned by the operation until its completion:
//! dropping the future cancels the operation and parks them in the driver; an `OpenAt` that
//! completes after its future was dropped has its new descriptor closed by the driver.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::fs::File;
use super::io_op::IoOp;
use super::op::Op;

/// The NUL-terminated form of a path (a path with a NUL byte cannot name a file).
fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path contains a NUL byte: {}", path.display()),
        )
    })
}

impl File {
    /// Opens `path` through the ring (`OpenAt`; a relative path starts at the current
    /// directory) with the `open(2)` `flags` (`O_CLOEXEC` is always added) and, for a created
    /// file, `mode` (before the umask). E.g. `libc::O_RDWR | libc::O_CREAT`, `0o666`.
    pub async fn open_at(path: impl AsRef<Path>, flags: i32, mode: u32) -> io::Result<File> {
        let path = c_path(path.as_ref())?;
        let entry = IoOp::OpenAt {
            path: path.as_ptr(),
            flags: flags | libc::O_CLOEXEC,
            mode,
        };
        let op = match Op::submit(entry, path, None) {
            Ok(op) => op.returns_fd(),
            Err((e, _)) => return Err(e),
        };
        let (completion, _path) = op.await;
        let fd = completion.result()?;
        let fd =
            i32::try_from(fd).map_err(|_| io::Error::other("OpenAt returned no descriptor"))?;
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(File::from_std(std::fs::File::from(owned)))
    }
}

/// Renames `from` to `to` through the ring (`RenameAt`), replacing `to` atomically if it
/// exists, as `rename(2)` does. Not durable by itself: `fsync` the directory afterwards
/// (open it with [`File::open_at`] and `O_RDONLY | O_DIRECTORY`, then [`File::sync_all`]).
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let paths = (c_path(from.as_ref())?, c_path(to.as_ref())?);
    let entry = IoOp::RenameAt {
        from: paths.0.as_ptr(),
        to: paths.1.as_ptr(),
    };
    match Op::submit(entry, paths, None) {
        Ok(op) => op.await.0.result().map(drop),
        Err((e, _)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Shard;
    use crate::runtime::tests::on_both_drivers;

    on_both_drivers! {
    fn open_at_creates_and_rename_replaces_atomically(cfg) {
        let dir = tempfile::tempdir().expect("tempdir");
        let tmp = dir.path().join("snap.tmp");
        let target = dir.path().join("snap");
        std::fs::write(&target, b"old").expect("old snapshot");
        let shard = Shard::new(&cfg).expect("shard");
        shard.block_on(async {
            let f = File::open_at(&tmp, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC, 0o644)
                .await
                .expect("OpenAt creates");
            let (r, _) = f.write_all_at(b"new".to_vec(), 0).await;
            r.expect("write");
            f.sync_data().await.expect("fdatasync");
            drop(f);
            // The old file is intact until the rename.
            assert_eq!(std::fs::read(&target).expect("read"), b"old");
            rename(&tmp, &target).await.expect("RenameAt");
            let d = File::open_at(dir.path(), libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .await
                .expect("open directory");
            d.sync_all().await.expect("fsync directory");
            // Errors come back as the syscall's: a missing source, a missing file to open.
            let gone = rename(&tmp, &target).await.expect_err("source is gone");
            assert_eq!(gone.kind(), io::ErrorKind::NotFound);
            let missing = File::open_at(dir.path().join("nope"), libc::O_RDONLY, 0)
                .await
                .expect_err("no such file");
            assert_eq!(missing.kind(), io::ErrorKind::NotFound);
            let nul = File::open_at(Path::new("a\0b"), libc::O_RDONLY, 0).await;
            assert_eq!(
                nul.expect_err("NUL byte").kind(),
                io::ErrorKind::InvalidInput
            );
        });
        assert_eq!(std::fs::read(&target).expect("read"), b"new");
        assert!(!tmp.exists());
    }
    }

    on_both_drivers! {
    fn dropped_open_at_never_leaks_or_misuses_its_descriptor(cfg) {
        let dir = tempfile::tempdir().expect("tempdir");
        let shard = Shard::new(&cfg).expect("shard");
        shard.block_on(async {
            for i in 0..50 {
                let path = dir.path().join(format!("f{i}"));
                let open = File::open_at(&path, libc::O_RDWR | libc::O_CREAT, 0o644);
                // Dropped before or after the kernel ran it: either way nothing is left open
                // by the future, and the next open works.
                drop(crate::runtime::timeout(std::time::Duration::ZERO, open).await);
            }
            let f = File::open_at(dir.path().join("last"), libc::O_RDWR | libc::O_CREAT, 0o644)
                .await
                .expect("open after the storm");
            f.sync_all().await.expect("fsync");
        });
    }
    }
}
