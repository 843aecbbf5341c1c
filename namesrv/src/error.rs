//! The NameServer's error type.

use std::path::PathBuf;

/// What can stop the NameServer from starting or from persisting its state.
#[derive(Debug, thiserror::Error)]
pub enum NameServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The KV config file exists but cannot be read.
    #[error("cannot read the KV config file {path}: {source}")]
    KvRead {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The KV config file is not the JSON the NameServer writes.
    #[error("the KV config file {path} is corrupt ({reason}); fix or move it away")]
    KvCorrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The KV config file could not be written.
    #[error("cannot write the KV config file {path}: {source}")]
    KvWrite {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A configuration value is out of range or unknown.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The runtime thread of a background NameServer could not be started.
    #[error("cannot start the NameServer runtime: {0}")]
    Runtime(std::io::Error),
}
