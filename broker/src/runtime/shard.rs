//! Shards: [`Shard`] (one executor + driver on the current thread) and [`Runtime`] (N pinned
//! shard threads, a bounded mailbox each, clean shutdown). [`ShardHandle`] is the `Send`
//! handle other threads use to run work on a shard and read its [`ShardStats`].

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::task::Poll;

use super::channel::{Receiver, Sender, TrySendError, channel};
use super::driver::{Driver, DriverChoice, DriverKind};
use super::error::RuntimeError;
use super::executor::{Core, Shared, core, spawn_local, stop_requested};
use super::pool::{BufPool, registration_budget_bytes};
use super::sys;

/// Logged once per process: registration failed and the pool runs unregistered.
static REGISTER_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Runtime configuration. Every size is fixed at startup.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Number of shards; `None` = every CPU in the affinity mask. Never more than that.
    pub shards: Option<usize>,
    /// Submission queue entries per ring (the completion queue gets twice as many).
    pub ring_entries: u32,
    /// Buffers in each shard's pool.
    pub pool_buffers: usize,
    /// Bytes per pool buffer (rounded up to 4 KiB).
    pub pool_buf_bytes: usize,
    /// Register the pool with the ring (within the memlock budget). `false` forces the plain
    /// Read/Write path, as after an `ENOMEM`.
    pub register_buffers: bool,
    /// Poison pool buffers on return and check before reuse (costs a fill and a scan).
    pub poison_buffers: bool,
    /// Use `SendZc` for [`TcpStream::send`](super::TcpStream::send) when supported. On
    /// loopback the kernel copies anyway; worth it only on a real NIC with large sends.
    pub send_zc: bool,
    /// Messages each shard's mailbox holds before senders wait.
    pub mailbox_capacity: usize,
    /// Pin shard i to the i-th CPU of the affinity mask.
    pub pin_threads: bool,
    /// Which driver the shards run on: io_uring, the fallback (epoll + file helper
    /// threads), or `Auto` (io_uring when available, else the fallback with one warning).
    pub driver: DriverChoice,
    /// Test seam: make the io_uring setup fail with this errno (e.g. `libc::EPERM`, as
    /// Docker's seccomp profile does), to exercise `Auto` and the startup errors.
    #[doc(hidden)]
    pub simulate_ring_setup_errno: Option<i32>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: None,
            ring_entries: 1024,
            pool_buffers: 32,
            pool_buf_bytes: 64 << 10,
            register_buffers: true,
            poison_buffers: cfg!(debug_assertions),
            send_zc: false,
            mailbox_capacity: 1024,
            pin_threads: true,
            driver: DriverChoice::Auto,
            simulate_ring_setup_errno: None,
        }
    }
}

impl RuntimeConfig {
    /// A small configuration for tests: 1 shard, 256 entries, 8 × 64 KiB buffers, poisoned,
    /// on io_uring, or on the driver named by the environment variable
    /// [`TEST_DRIVER_ENV`] (`auto`, `io_uring` or `fallback`), so that a whole test suite can
    /// be run on the fallback driver: `RINGMQ_TEST_DRIVER=fallback cargo nextest run`.
    pub fn for_tests() -> Self {
        let driver = std::env::var(TEST_DRIVER_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DriverChoice::IoUring);
        RuntimeConfig {
            shards: Some(1),
            ring_entries: 256,
            pool_buffers: 8,
            pool_buf_bytes: 64 << 10,
            poison_buffers: true,
            pin_threads: false,
            driver,
            ..RuntimeConfig::default()
        }
    }
}

/// Environment variable read by [`RuntimeConfig::for_tests`]: the driver test shards use.
pub const TEST_DRIVER_ENV: &str = "RINGMQ_TEST_DRIVER";

impl RuntimeConfig {}

/// A snapshot of one shard's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardStats {
    /// Shard index.
    pub shard: usize,
    /// Operations (SQEs) submitted, excluding internal cancel and doorbell requests.
    pub ops_submitted: u64,
    /// Operations completed (final CQE).
    pub ops_completed: u64,
    /// Operations currently in the kernel (including cancelled ones not yet returned).
    pub ops_in_flight: u64,
    /// Times the submission queue was full (or the kernel pushed back) and had to be flushed.
    pub ring_full_events: u64,
    /// Operations cancelled because their future was dropped.
    pub cancellations: u64,
    /// Tasks spawned since start.
    pub tasks_spawned: u64,
    /// Tasks alive now.
    pub tasks_live: u64,
    /// Pool buffers registered with the ring (0 = the plain Read/Write fallback).
    pub fixed_buffers_registered: u64,
    /// Operations on pool buffers that used plain Read/Write because they are unregistered
    /// (io_uring only: the fallback driver registers nothing and does not count them).
    pub fixed_fallback_ops: u64,
    /// The driver the shard runs on.
    pub driver: DriverKind,
}

fn snapshot(shared: &Shared, registered: u64) -> ShardStats {
    let s = &shared.stats;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    ShardStats {
        shard: shared.shard,
        ops_submitted: get(&s.submitted),
        ops_completed: get(&s.completed),
        ops_in_flight: get(&s.in_flight),
        ring_full_events: get(&s.ring_full),
        cancellations: get(&s.cancellations),
        tasks_spawned: get(&s.tasks_spawned),
        tasks_live: get(&s.tasks_live),
        fixed_buffers_registered: registered,
        fixed_fallback_ops: get(&s.fixed_fallback_ops),
        driver: DriverKind::from_code(get(&s.driver)),
    }
}

/// One shard on the current thread: an executor and its ring. `!Send`.
pub struct Shard {
    core: Rc<Core>,
    registered: u64,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Shard {
    /// A standalone shard (index 0 of 1) on this thread: driver (ring and startup checks, or
    /// the fallback), buffer pool.
    pub fn new(config: &RuntimeConfig) -> Result<Shard, RuntimeError> {
        Self::with_shared(config, Shared::new(0)?, 1)
    }

    fn with_shared(
        config: &RuntimeConfig,
        shared: Arc<Shared>,
        shards: usize,
    ) -> Result<Shard, RuntimeError> {
        if config.ring_entries == 0 || config.pool_buffers > u16::MAX as usize {
            return Err(RuntimeError::Config(
                "ring_entries must be > 0 and pool_buffers <= 65535".into(),
            ));
        }
        let driver = Driver::new(
            config.driver,
            config.ring_entries,
            shared.clone(),
            config.simulate_ring_setup_errno,
        )?;
        let pool = BufPool::new(
            config.pool_buffers,
            config.pool_buf_bytes,
            config.poison_buffers,
        );
        let registered = match driver.uring() {
            Some(uring) if config.register_buffers => register_pool(uring, &pool, shards),
            _ => 0,
        };
        pool.set_registered(registered);
        tracing::info!(
            target: "ringmq::runtime",
            shard = shared.shard,
            driver = driver.kind().name(),
            ring = driver.flavor().map_or("none", |f| f.name()),
            registered_buffers = registered,
            pool_buffers = config.pool_buffers,
            "shard ready"
        );
        let core = Core::new(shared, driver, pool, config.send_zc, shards);
        Ok(Shard {
            core,
            registered: registered as u64,
        })
    }

    /// Runs `future` to completion on this thread, with the shard's tasks and I/O.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.core.block_on(future)
    }

    /// Which setup flags the ring got; `None` on the fallback driver.
    pub fn ring_flavor(&self) -> Option<super::RingFlavor> {
        self.core.driver.borrow().flavor()
    }

    /// The driver this shard runs on.
    pub fn driver(&self) -> DriverKind {
        self.core.driver.borrow().kind()
    }

    /// This shard's counters.
    pub fn stats(&self) -> ShardStats {
        snapshot(&self.core.shared, self.registered)
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        self.core.shutdown();
    }
}

/// Registers as many pool buffers as the memlock budget allows; `ENOMEM` (or any failure)
/// means none, logged once.
fn register_pool(driver: &super::uring::UringDriver, pool: &BufPool, shards: usize) -> usize {
    let cap = sys::has_cap_ipc_lock();
    let limit = sys::memlock_soft_limit_bytes().unwrap_or(Some(0));
    let budget = registration_budget_bytes(cap, limit, shards);
    let iovecs = pool.iovecs();
    let fit = (budget / pool.buf_bytes().max(1) as u64).min(iovecs.len() as u64) as usize;
    if fit == 0 {
        return 0;
    }
    // SAFETY: the iovecs describe the pool's buffers, which live (in the pool, or lent to an
    // operation that keeps them until its CQE) for as long as the shard, i.e. the ring.
    match unsafe { driver.ring().submitter().register_buffers(&iovecs[..fit]) } {
        Ok(()) => fit,
        Err(e) => {
            if !REGISTER_FAILURE_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "ringmq::runtime",
                    error = %e,
                    bytes = fit * pool.buf_bytes(),
                    cap_ipc_lock = cap,
                    memlock_soft = ?limit,
                    "register_buffers failed; using plain Read/Write on the same aligned buffers \
                     (grant CAP_IPC_LOCK or raise RLIMIT_MEMLOCK to get fixed buffers)"
                );
            }
            0
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A `Send + Clone` handle to a shard: run work there, read its counters.
#[derive(Clone)]
pub struct ShardHandle {
    id: usize,
    mailbox: Sender<Job>,
    shared: Arc<Shared>,
    registered: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for ShardHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardHandle").field("id", &self.id).finish()
    }
}

/// The target shard is gone (stopped) before the work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shard {0} stopped before the work finished")]
pub struct ShardGone(pub usize);

/// Why [`ShardHandle::try_run`] did not queue the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The shard's mailbox is full; try later or use [`ShardHandle::run`].
    #[error("shard {0} mailbox full")]
    Full(usize),
    /// The shard stopped.
    #[error("shard {0} stopped")]
    Gone(usize),
}

/// The result of work queued with [`ShardHandle::try_run`].
pub struct RemoteResult<T> {
    shard: usize,
    rx: Receiver<T>,
}

impl<T> std::fmt::Debug for RemoteResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteResult")
            .field("shard", &self.shard)
            .finish()
    }
}

impl<T: Send> RemoteResult<T> {
    /// Waits for the work's output.
    pub async fn result(self) -> Result<T, ShardGone> {
        self.rx.recv().await.ok_or(ShardGone(self.shard))
    }
}

fn job_for<F, Fut, T>(f: F) -> (Job, Receiver<T>)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (tx, rx) = channel::<T>(1);
    let job: Job = Box::new(move || {
        spawn_local(async move {
            let out = f().await;
            let _ = tx.try_send(out);
        });
    });
    (job, rx)
}

impl ShardHandle {
    /// The shard's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Queues `f` to run on the shard (it builds a future there, spawned as a task) if the
    /// mailbox has room. Callable from any thread.
    pub fn try_run<F, Fut, T>(&self, f: F) -> Result<RemoteResult<T>, RunError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (job, rx) = job_for(f);
        match self.mailbox.try_send(job) {
            Ok(()) => Ok(RemoteResult { shard: self.id, rx }),
            Err(TrySendError::Full(_)) => Err(RunError::Full(self.id)),
            Err(TrySendError::Closed(_)) => Err(RunError::Gone(self.id)),
        }
    }

    /// Runs `f` on the shard and waits for its output, waiting for mailbox room first.
    pub async fn run<F, Fut, T>(&self, f: F) -> Result<T, ShardGone>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (job, rx) = job_for(f);
        self.mailbox
            .send(job)
            .await
            .map_err(|_| ShardGone(self.id))?;
        RemoteResult { shard: self.id, rx }.result().await
    }

    /// Runs `f` on the shard and waits for its output from a thread that is not a shard
    /// (main, admin, tests). Panics on a shard thread: use [`run`](ShardHandle::run) there.
    pub fn run_blocking<F, Fut, T>(&self, f: F) -> Result<T, ShardGone>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        super::channel::block_on_thread(self.run(f))
    }

    /// The shard's counters.
    pub fn stats(&self) -> ShardStats {
        snapshot(&self.shared, self.registered.load(Ordering::Relaxed))
    }
}

/// What a shard's root future gets: its index and handles to every shard.
#[derive(Debug, Clone)]
pub struct ShardContext {
    /// This shard's index.
    pub id: usize,
    /// Every shard, indexed by id (including this one).
    pub shards: Vec<ShardHandle>,
}

/// N shard threads, pinned, each running a root future; see the module docs.
#[derive(Debug)]
pub struct Runtime {
    handles: Vec<ShardHandle>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Picks the shard count: the configured one, capped by the CPUs in the affinity mask.
fn shard_cpus(config: &RuntimeConfig) -> Result<Vec<usize>, RuntimeError> {
    let cpus =
        sys::affinity_cpus().map_err(|e| RuntimeError::io("reading sched_getaffinity", e))?;
    let n = match config.shards {
        Some(0) => return Err(RuntimeError::Config("shards must be >= 1".into())),
        Some(n) if n > cpus.len() => {
            return Err(RuntimeError::Config(format!(
                "{n} shards requested but only {} CPUs are in this process's affinity mask",
                cpus.len()
            )));
        }
        Some(n) => n,
        None => cpus.len(),
    };
    Ok(cpus[..n].to_vec())
}

impl Runtime {
    /// Starts the shards. Each thread is pinned (if configured), sets up its ring and pool
    /// (any startup error is returned here, first shard's first), then runs
    /// `root(ShardContext)` until it returns or [`shutdown`](Runtime::shutdown) is called.
    pub fn start<F, Fut>(config: &RuntimeConfig, root: F) -> Result<Runtime, RuntimeError>
    where
        F: Fn(ShardContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let cpus = shard_cpus(config)?;
        let n = cpus.len();
        let root = Arc::new(root);
        let mut handles = Vec::with_capacity(n);
        let mut inboxes = Vec::with_capacity(n);
        for id in 0..n {
            let (tx, rx) = channel::<Job>(config.mailbox_capacity.max(1));
            handles.push(ShardHandle {
                id,
                mailbox: tx,
                shared: Shared::new(id)?,
                registered: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            });
            inboxes.push(rx);
        }
        let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<u64, RuntimeError>)>();
        let mut go_txs = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for ((id, inbox), cpu) in inboxes.into_iter().enumerate().zip(cpus) {
            let (go_tx, go_rx) = mpsc::channel::<Vec<ShardHandle>>();
            go_txs.push(go_tx);
            let shared = handles[id].shared.clone();
            let config = config.clone();
            let root = root.clone();
            let ready_tx = ready_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ringmq-shard-{id}"))
                .spawn(move || {
                    shard_main(id, cpu, n, &config, shared, inbox, ready_tx, go_rx, &*root)
                });
            threads.push(spawned.map_err(|e| RuntimeError::io("spawning a shard thread", e))?);
        }
        drop(ready_tx);
        let mut first_err: Option<(usize, RuntimeError)> = None;
        for _ in 0..n {
            match ready_rx.recv() {
                Ok((id, Ok(registered))) => {
                    handles[id].registered.store(registered, Ordering::Relaxed)
                }
                Ok((id, Err(e))) => {
                    if first_err.as_ref().is_none_or(|(i, _)| id < *i) {
                        first_err = Some((id, e));
                    }
                }
                Err(_) => break,
            }
        }
        if let Some((_, e)) = first_err {
            drop(go_txs);
            for t in threads {
                let _ = t.join();
            }
            return Err(e);
        }
        for tx in go_txs {
            let _ = tx.send(handles.clone());
        }
        Ok(Runtime { handles, threads })
    }

    /// Handles to every shard, indexed by id.
    pub fn shards(&self) -> &[ShardHandle] {
        &self.handles
    }

    /// The driver the shards run on (shard 0's; every shard makes the same choice on one
    /// host).
    pub fn driver(&self) -> DriverKind {
        self.handles
            .first()
            .map(|h| h.stats().driver)
            .unwrap_or_default()
    }

    /// Counters of every shard.
    pub fn stats(&self) -> Vec<ShardStats> {
        self.handles.iter().map(ShardHandle::stats).collect()
    }

    /// Asks every shard to stop (their root futures and tasks are dropped, in-flight
    /// operations cancelled and drained), then joins the threads.
    pub fn shutdown(self) -> Result<(), RuntimeError> {
        for h in &self.handles {
            h.shared.request_stop();
        }
        self.join()
    }

    /// Waits until every shard's root future has returned (or the shard was stopped).
    pub fn join(mut self) -> Result<(), RuntimeError> {
        let mut first = Ok(());
        for (shard, t) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            if let Err(p) = t.join() {
                let message = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                if first.is_ok() {
                    first = Err(RuntimeError::ShardPanicked { shard, message });
                }
            }
        }
        first
    }
}

impl Drop for Runtime {
    /// A runtime dropped without [`shutdown`](Runtime::shutdown) stops its shards too.
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        for h in &self.handles {
            h.shared.request_stop();
        }
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn shard_main<F, Fut>(
    id: usize,
    cpu: usize,
    shards: usize,
    config: &RuntimeConfig,
    shared: Arc<Shared>,
    inbox: Receiver<Job>,
    ready: mpsc::Sender<(usize, Result<u64, RuntimeError>)>,
    go: mpsc::Receiver<Vec<ShardHandle>>,
    root: &F,
) where
    F: Fn(ShardContext) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    if config.pin_threads && !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        tracing::warn!(target: "ringmq::runtime", shard = id, cpu, "could not pin shard thread");
    }
    let shard = match Shard::with_shared(config, shared.clone(), shards) {
        Ok(s) => {
            let _ = ready.send((id, Ok(s.registered)));
            s
        }
        Err(e) => {
            let _ = ready.send((id, Err(e)));
            return;
        }
    };
    drop(ready);
    let Ok(handles) = go.recv() else { return };
    let ctx = ShardContext {
        id,
        shards: handles,
    };
    shard.block_on(async move {
        spawn_local(async move {
            while let Some(job) = inbox.recv().await {
                job();
            }
        });
        let mut root = pin!(root(ctx));
        let mut stop = pin!(stop_requested(shared));
        std::future::poll_fn(|cx| {
            if root.as_mut().poll(cx).is_ready() || stop.as_mut().poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    });
    // Dropping the shard drops every task and drains the ring.
    drop(shard);
}

/// The current shard's buffer pool. Panics off a shard thread.
pub fn buf_pool() -> BufPool {
    core().pool.clone()
}

/// The current shard's index (0 for a standalone [`Shard`]). Panics off a shard thread.
pub fn current_shard() -> usize {
    core().shared.shard
}

/// The number of shards of the runtime the current thread belongs to.
pub fn shard_count() -> usize {
    core().shards
}

/// The driver of the shard running on this thread; `None` off a shard thread.
pub fn current_driver() -> Option<DriverKind> {
    super::executor::try_core().map(|c| c.driver.borrow().kind())
}

/// The current shard's counters. Panics off a shard thread.
pub fn current_stats() -> ShardStats {
    let c = core();
    snapshot(&c.shared, c.pool.stats().registered as u64)
}
