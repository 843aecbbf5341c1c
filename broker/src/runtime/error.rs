//! Typed startup errors of the shard runtime. Each variant names the cause and the fix, so the
//! broker binary can print it as is and exit non-zero.

use std::io;

/// Why the shard runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `kernel.io_uring_disabled` forbids io_uring for this process.
    #[error(
        "io_uring is disabled by the sysctl kernel.io_uring_disabled = {value}: \
         run `sysctl -w kernel.io_uring_disabled=0` (or, for value 1, add this user to \
         kernel.io_uring_group or grant CAP_SYS_ADMIN)"
    )]
    DisabledBySysctl {
        /// The value read from `/proc/sys/kernel/io_uring_disabled` (1 or 2).
        value: u8,
    },
    /// `io_uring_setup` returned `EPERM` although the sysctl allows io_uring: a seccomp filter.
    #[error(
        "io_uring_setup is blocked with EPERM, most likely by a seccomp profile (Docker's default \
         profile blocks io_uring since moby PR 46762): run the container with \
         `--security-opt seccomp=<profile allowing io_uring_setup, io_uring_enter, \
         io_uring_register>` or `--security-opt seccomp=unconfined`"
    )]
    BlockedBySeccomp,
    /// `io_uring_setup` returned `ENOSYS`: the kernel or sandbox has no io_uring.
    #[error(
        "io_uring is not available (ENOSYS): the kernel was built without CONFIG_IO_URING or the \
         sandbox (e.g. gVisor) does not implement it: run on Linux >= 6.1 with io_uring enabled"
    )]
    NotSupported,
    /// The ring could not be allocated.
    #[error(
        "io_uring_setup failed with ENOMEM for {entries} entries: lower `ring_entries` in the \
         runtime config or raise the memory available to this process (memcg limit)"
    )]
    RingMemory {
        /// The submission queue size that was requested.
        entries: u32,
    },
    /// The kernel lacks opcodes the runtime needs.
    #[error(
        "this kernel's io_uring lacks required opcodes {missing:?}: run on Linux >= 6.1 \
         (ringmq is tested on 6.18)"
    )]
    MissingOpcodes {
        /// Names of the missing opcodes.
        missing: Vec<&'static str>,
    },
    /// The configuration asks for something impossible.
    #[error("invalid runtime config: {0}")]
    Config(String),
    /// Any other system error at startup, with the step that failed.
    #[error("runtime startup failed while {context}: {source}")]
    Io {
        /// What the runtime was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A shard thread panicked.
    #[error("shard {shard} panicked: {message}")]
    ShardPanicked {
        /// The shard index.
        shard: usize,
        /// The panic payload, if it was a string.
        message: String,
    },
}

impl RuntimeError {
    /// Whether io_uring itself is unusable here (sysctl, seccomp, no kernel support, missing
    /// opcodes): the cases where `runtime.driver = "auto"` takes the fallback driver and
    /// `"io_uring"` refuses to start.
    pub fn io_uring_unavailable(&self) -> bool {
        matches!(
            self,
            RuntimeError::DisabledBySysctl { .. }
                | RuntimeError::BlockedBySeccomp
                | RuntimeError::NotSupported
                | RuntimeError::MissingOpcodes { .. }
        )
    }

    /// Whether `runtime.driver = "auto"` runs on the fallback driver after this error: io_uring
    /// is unavailable ([`io_uring_unavailable`](RuntimeError::io_uring_unavailable)), or the
    /// ring itself cannot be allocated (`ENOMEM`).
    pub fn fallback_applies(&self) -> bool {
        self.io_uring_unavailable() || matches!(self, RuntimeError::RingMemory { .. })
    }

    /// Wraps an I/O error with the startup step it came from.
    pub(crate) fn io(context: &'static str, source: io::Error) -> Self {
        RuntimeError::Io { context, source }
    }
}
