//! The store's error type. Every variant carries what an operator needs to find the
//! problem: the file, the offset, the topic and queue.

use std::io;
use std::path::PathBuf;

use ringmq_wire::WireError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store was shut down (the broker is stopping); nothing more is appended.
    #[error("the store is shutting down: the broker is stopping; send to another broker")]
    ShutDown,
    /// A file operation failed.
    #[error("{op} failed on {}: {source}", path.display())]
    Io {
        /// The operation (`write`, `fdatasync`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The disk is behind: the in-flight write budget is used up. Answer `SYSTEM_BUSY`.
    #[error(
        "store busy: {pending_bytes} bytes are waiting for the disk (budget {budget_bytes}); retry later"
    )]
    Busy {
        /// Bytes appended but not yet written.
        pending_bytes: u64,
        /// The configured budget.
        budget_bytes: u64,
    },
    /// The message cannot be encoded (too large, bad topic, …). Answer `MESSAGE_ILLEGAL`.
    #[error("message rejected: {0}")]
    Message(#[from] WireError),
    /// Stored bytes are damaged.
    #[error("corrupt {what} in {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// Which structure (`commit log record`, `consume queue`, `checkpoint`, …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Byte offset within the file (or the commit log offset for records).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A previous write failed; the store refuses appends until restarted (fail-stop, so
    /// nothing after a hole is ever acknowledged).
    #[error("store stopped after an earlier failure: {0}")]
    Failed(String),
    /// Disk usage is over the warning ratio; writes are refused until space is freed.
    #[error("disk full: {used_percent:.1}% used (limit {limit_percent}%)")]
    DiskFull {
        /// Current usage.
        used_percent: f64,
        /// `disk_warning_percent`.
        limit_percent: u32,
    },
    /// A configuration value is out of range.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// A config/offset snapshot could not be encoded or decoded.
    #[error("snapshot {}: {reason}", path.display())]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl StoreError {
    /// Wraps an I/O error with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the store.
pub type StoreResult<T> = Result<T, StoreError>;
