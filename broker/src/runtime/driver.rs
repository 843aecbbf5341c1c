//! The seam between the executor and the kernel: [`Driver`] is either the io_uring driver
//! ([`UringDriver`], the normal case) or the fallback driver ([`FallbackDriver`]: epoll for
//! sockets, blocking file I/O on helper threads) for hosts where io_uring is unavailable.
//! The executor and the operations (`op.rs`, `fs.rs`, `net.rs`, `time.rs`) only call
//! `push`, `push_chain`, `poll_op`, `abandon` and `park`; which driver answers is chosen once
//! per shard at startup ([`DriverChoice`]).
//!
//! Runs only on its shard's thread. Neither driver runs user code while it collects
//! completions: wakers and the parked resources of abandoned operations are handed to the
//! executor, which wakes (and drops) them after the driver is released.

use std::any::Any;
use std::io;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::error::RuntimeError;
use super::executor::Shared;
use super::fallback::FallbackDriver;
use super::io_op::IoOp;
use super::pool::LeaseTag;
use super::setup::RingFlavor;
use super::uring::UringDriver;

/// Counters of one shard, written only by the shard's thread (plain load+store, no locked
/// instructions), readable from any thread.
#[derive(Debug, Default)]
pub(crate) struct StatsCells {
    pub(crate) submitted: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) ring_full: AtomicU64,
    pub(crate) cancellations: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) tasks_spawned: AtomicU64,
    pub(crate) tasks_live: AtomicU64,
    pub(crate) fixed_fallback_ops: AtomicU64,
    /// [`DriverKind`] of the shard, as `DriverKind as u64`.
    pub(crate) driver: AtomicU64,
}

/// Adds `n` to a single-writer counter.
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Final result of an operation: the kernel's `res` and (io_uring) CQE `flags`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completion {
    pub(crate) res: i32,
    #[allow(dead_code)]
    pub(crate) flags: u32,
}

impl Completion {
    /// `res` as an io::Result (negative = errno).
    pub(crate) fn result(self) -> io::Result<u32> {
        if self.res < 0 {
            Err(io::Error::from_raw_os_error(-self.res))
        } else {
            Ok(self.res as u32)
        }
    }
}

/// Which driver a shard should run on (`runtime.driver` in the broker config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverChoice {
    /// io_uring when it is available; otherwise log one warning naming the cause (and that
    /// the fallback is slower) and run on the fallback driver.
    #[default]
    Auto,
    /// io_uring only: when it is unavailable, startup fails with the cause and the fix.
    IoUring,
    /// The fallback driver (epoll + blocking file I/O on helper threads), even where io_uring
    /// works (tests, A/B comparisons).
    Fallback,
}

impl DriverChoice {
    /// The config spelling: `auto`, `io_uring` or `fallback`.
    pub fn name(self) -> &'static str {
        match self {
            DriverChoice::Auto => "auto",
            DriverChoice::IoUring => "io_uring",
            DriverChoice::Fallback => "fallback",
        }
    }
}

impl FromStr for DriverChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DriverChoice::Auto),
            "io_uring" | "io-uring" | "uring" => Ok(DriverChoice::IoUring),
            "fallback" | "epoll" => Ok(DriverChoice::Fallback),
            other => Err(format!(
                "unknown runtime driver {other:?}: expected auto, io_uring or fallback"
            )),
        }
    }
}

/// Which driver a shard actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverKind {
    /// io_uring (the ring flavor is in [`Shard::ring_flavor`](super::Shard::ring_flavor)).
    #[default]
    IoUring,
    /// The fallback driver: epoll for sockets, blocking file I/O on helper threads.
    Fallback,
}

impl DriverKind {
    /// Short name for logs, stats and `GET_BROKER_RUNTIME_INFO`: `io_uring` or `fallback`.
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::IoUring => "io_uring",
            DriverKind::Fallback => "fallback",
        }
    }

    pub(crate) fn from_code(code: u64) -> Self {
        if code == DriverKind::Fallback as u64 {
            DriverKind::Fallback
        } else {
            DriverKind::IoUring
        }
    }
}

/// One shard's driver.
pub(crate) enum Driver {
    /// io_uring.
    Uring(UringDriver),
    /// epoll + file helper threads.
    Fallback(FallbackDriver),
}

impl Driver {
    /// Builds the driver `choice` asks for. `simulate_setup_errno` (tests) makes the io_uring
    /// setup fail with that errno, as a seccomp filter or the sysctl would.
    pub(crate) fn new(
        choice: DriverChoice,
        entries: u32,
        shared: Arc<Shared>,
        simulate_setup_errno: Option<i32>,
    ) -> Result<Self, RuntimeError> {
        let uring = || match simulate_setup_errno {
            Some(errno) => Err(super::setup::map_setup_error(
                io::Error::from_raw_os_error(errno),
                entries,
            )),
            None => UringDriver::new(entries, shared.clone()),
        };
        let driver = match choice {
            DriverChoice::IoUring => Driver::Uring(uring()?),
            DriverChoice::Fallback => Driver::Fallback(FallbackDriver::new(shared.clone())?),
            DriverChoice::Auto => match uring() {
                Ok(d) => Driver::Uring(d),
                Err(e) if e.fallback_applies() => {
                    super::fallback::warn_unavailable_once(&e);
                    Driver::Fallback(FallbackDriver::new(shared.clone())?)
                }
                Err(e) => return Err(e),
            },
        };
        shared
            .stats
            .driver
            .store(driver.kind() as u64, Ordering::Relaxed);
        Ok(driver)
    }

    /// Which driver this is.
    pub(crate) fn kind(&self) -> DriverKind {
        match self {
            Driver::Uring(_) => DriverKind::IoUring,
            Driver::Fallback(_) => DriverKind::Fallback,
        }
    }

    /// The ring's setup flags; `None` on the fallback driver.
    pub(crate) fn flavor(&self) -> Option<RingFlavor> {
        match self {
            Driver::Uring(d) => Some(d.flavor()),
            Driver::Fallback(_) => None,
        }
    }

    /// The io_uring driver, for ring-only features (buffer registration).
    pub(crate) fn uring(&self) -> Option<&UringDriver> {
        match self {
            Driver::Uring(d) => Some(d),
            Driver::Fallback(_) => None,
        }
    }

    /// Whether `SendZc` can be used.
    pub(crate) fn supports_send_zc(&self) -> bool {
        match self {
            Driver::Uring(d) => d.supports_send_zc(),
            Driver::Fallback(_) => false,
        }
    }

    /// Queues `op` as a new operation and returns its index. The op's pointers must stay
    /// valid until it completes (callers keep the memory in the operation's data).
    pub(crate) fn push(&mut self, op: IoOp, tag: Option<LeaseTag>) -> io::Result<usize> {
        match self {
            Driver::Uring(d) => d.push(op, tag),
            Driver::Fallback(d) => d.push(op, tag),
        }
    }

    /// Queues `ops` as one linked chain: each starts only when the previous one completed in
    /// full; a failure or short result completes the rest with `ECANCELED`.
    pub(crate) fn push_chain(&mut self, ops: &[IoOp]) -> io::Result<Vec<usize>> {
        match self {
            Driver::Uring(d) => d.push_chain(ops),
            Driver::Fallback(d) => d.push_chain(ops),
        }
    }

    /// The longest chain [`push_chain`](Driver::push_chain) accepts.
    pub(crate) fn max_chain(&mut self) -> usize {
        match self {
            Driver::Uring(d) => d.max_chain(),
            Driver::Fallback(d) => d.max_chain(),
        }
    }

    /// Marks operation `idx` as returning a new fd, to be closed if its future is dropped.
    pub(crate) fn mark_fd_result(&mut self, idx: usize) {
        match self {
            Driver::Uring(d) => d.table().mark_fd_result(idx),
            Driver::Fallback(d) => d.table().mark_fd_result(idx),
        }
    }

    /// Polls operation `idx`: its completion, or registers the waker.
    pub(crate) fn poll_op(&mut self, idx: usize, cx: &mut Context<'_>) -> Poll<Completion> {
        match self {
            Driver::Uring(d) => d.poll_op(idx, cx),
            Driver::Fallback(d) => d.table().poll(idx, cx),
        }
    }

    /// The future of operation `idx` was dropped: cancel what can be cancelled, park `data`
    /// until the operation is over. Returns `data` when it may be dropped at once.
    pub(crate) fn abandon(&mut self, idx: usize, data: Box<dyn Any>) -> Option<Box<dyn Any>> {
        match self {
            Driver::Uring(d) => d.abandon(idx, data),
            Driver::Fallback(d) => d.abandon(idx, data),
        }
    }

    /// Starts queued work; waits for at least one completion (or a doorbell) when `wait`;
    /// collects completions.
    pub(crate) fn park(&mut self, wait: bool) -> io::Result<()> {
        match self {
            Driver::Uring(d) => d.park(wait),
            Driver::Fallback(d) => d.park(wait),
        }
    }

    /// Swaps out the wakers to wake and the abandoned resources to drop.
    pub(crate) fn swap_deferred(
        &mut self,
        wakes: &mut Vec<Waker>,
        graveyard: &mut Vec<Box<dyn Any>>,
    ) {
        match self {
            Driver::Uring(d) => d.swap_deferred(wakes, graveyard),
            Driver::Fallback(d) => d.table().swap_deferred(wakes, graveyard),
        }
    }

    pub(crate) fn has_deferred(&self) -> bool {
        match self {
            Driver::Uring(d) => d.has_deferred(),
            Driver::Fallback(d) => d.has_deferred(),
        }
    }

    /// At shutdown: cancels what is in flight and waits for it, up to `limit`; returns how
    /// many operations were still out at the deadline (their buffers are leaked).
    pub(crate) fn shutdown_drain(&mut self, limit: Duration) -> usize {
        match self {
            Driver::Uring(d) => d.shutdown_drain(limit),
            Driver::Fallback(d) => d.shutdown_drain(limit),
        }
    }

    /// Makes a new socket known to the driver (the fallback registers it with its epoll
    /// instance; io_uring needs nothing).
    pub(crate) fn register_socket(&mut self, fd: std::os::fd::RawFd) -> io::Result<()> {
        match self {
            Driver::Uring(_) => Ok(()),
            Driver::Fallback(d) => d.register_socket(fd),
        }
    }
}
