//! The shard runtime: a per-core, single-threaded async executor driving one io_uring ring,
//! or, where io_uring is unavailable, the fallback driver (epoll for sockets, blocking file
//! I/O on helper threads; see [`DriverChoice`]). This is the only module that touches the
//! ring.
//!
//! # Threads
//! - [`Runtime::start`] spawns one thread per shard (default: every CPU in the affinity mask),
//!   pins it, and runs the shard's root future there. Everything `!Send` in this module
//!   ([`File`], [`TcpStream`], [`TcpListener`], [`BufPool`], [`FixedBuf`], [`JoinHandle`],
//!   the free functions) lives and runs on that one shard thread.
//! - [`ShardHandle`], [`Sender`]/[`Receiver`], [`AlignedBuf`] and the task wakers are `Send`:
//!   other threads use them to run work on a shard ([`ShardHandle::run`]) or pass messages
//!   over bounded channels; a wake from another thread rings the shard's eventfd doorbell.
//! - [`Shard`] runs one shard on the current thread (tests, tools, benchmarks).
//!
//! # Operations
//! Every I/O operation is a future that owns its buffers until the kernel returns them, and
//! hands them back with the result: `(io::Result<usize>, B)`. Dropping the future cancels the
//! operation (`AsyncCancel`; on the fallback driver, whatever is only waiting) and parks the
//! buffers in the driver until the completion arrives; no buffer is freed or reused while the
//! kernel (or a helper thread) may still write into it.
//!
//! See `docs/runtime.md` for the design and the startup checks.
//!
//! ```no_run
//! use ringmq_broker::runtime::{RuntimeConfig, Shard, TcpListener, spawn_local};
//! let shard = Shard::new(&RuntimeConfig::default()).expect("io_uring available");
//! shard.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
//!     let (conn, _) = listener.accept().await.unwrap();
//!     spawn_local(async move {
//!         let (n, buf) = conn.recv(Vec::with_capacity(4096)).await;
//!         if n.is_ok() {
//!             let _ = conn.send_all(buf).await;
//!         }
//!     })
//!     .await;
//! });
//! ```

mod buf;
mod channel;
mod driver;
mod error;
mod executor;
mod fallback;
mod fs;
mod fs_dsync;
mod fs_path;
mod io_op;
mod net;
mod op;
mod pool;
mod setup;
mod shard;
mod sys;
mod table;
mod time;
mod uring;

#[cfg(test)]
mod tests;

pub use buf::{AlignedBuf, BUF_ALIGN, IoBuf, IoBufMut};
pub use channel::{Receiver, SendError, Sender, TrySendError, channel};
pub use driver::{DriverChoice, DriverKind};
pub use error::RuntimeError;
pub use executor::{JoinHandle, spawn_local, yield_now};
pub use fs::{File, register_extra_buffers};
pub use fs_path::rename;
pub use net::{LISTEN_BACKLOG, TcpListener, TcpStream};
pub use pool::{BufPool, FixedBuf, POISON, PoolStats};
pub use setup::RingFlavor;
pub use shard::{
    RemoteResult, RunError, Runtime, RuntimeConfig, Shard, ShardContext, ShardGone, ShardHandle,
    ShardStats, TEST_DRIVER_ENV, buf_pool, current_driver, current_shard, current_stats,
    shard_count,
};
pub use time::{Elapsed, sleep, timeout};
