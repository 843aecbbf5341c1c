//! The fallback driver, for hosts where io_uring is unavailable (`io_uring_disabled=2`,
//! Docker's default seccomp profile → `EPERM`, gVisor → `ENOSYS`): the same operations,
//! completions and ownership rules as the io_uring driver, lowered to
//!
//! - **sockets**: non-blocking syscalls on the shard thread (`recv`, `send`, `accept4`,
//!   `connect`, pipe → socket `splice`), attempted at once; on `EAGAIN` the operation waits in
//!   its socket's FIFO (one per direction, so bytes keep their order) until the shard's epoll
//!   instance reports readiness (edge-triggered, registered once per socket at creation);
//! - **files**: blocking `pread`/`pwrite`/`fdatasync`/`fsync`/`fallocate`/`openat`/`renameat`
//!   and file → pipe
//!   `splice` on the shard's helper threads ([`helper`]), whose results wake the shard through
//!   an eventfd registered in the same epoll instance;
//! - **timers**: a deadline heap; `epoll_wait`'s timeout is the nearest deadline;
//! - **the doorbell** (wakes from other threads): the shard's eventfd, in the epoll instance.
//!
//! Links behave as in io_uring: the next operation of a chain starts when the previous one
//! completed in full; a failure or a short result completes the rest with `ECANCELED`.
//! No registered buffers (pool buffers are plain aligned memory, as after an `ENOMEM`), no
//! `SendZc`.
//!
//! Cancellation: a socket operation or a timer is cancelled at once (it is only waiting); a
//! file job still queued is cancelled; one already running on a helper cannot be, and its
//! buffers stay parked in the slot until the helper posts its result. Nothing is freed while
//! a helper may still touch it.
//!
//! Runs on its shard's thread (the helpers excepted); like the io_uring driver it runs no user
//! code: wakers and parked resources go to the executor.

mod helper;
mod syscall;

use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use self::helper::{Helpers, JobState};
use self::syscall::{Attempt, Dir, Epoll, attempt, eventfd_drain};
use super::driver::{Completion, bump};
use super::error::RuntimeError;
use super::executor::Shared;
use super::io_op::IoOp;
use super::pool::LeaseTag;
use super::table::OpTable;

pub(crate) use self::syscall::set_nonblocking;

/// epoll token of the shard's doorbell eventfd.
const DOORBELL_TOKEN: u64 = u64::MAX;
/// epoll token of the helpers' completion eventfd.
const HELPERS_TOKEN: u64 = u64::MAX - 1;
/// Events taken per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 256;
/// Longest chain [`FallbackDriver::push_chain`] takes (splice uses 16: 8 linked pairs).
const MAX_CHAIN: usize = 64;
/// Interest of every socket: edge-triggered, both directions, peer hang-up.
const SOCKET_EVENTS: u32 =
    (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
/// Events that make waiting readers try again.
const READ_READY: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLERR | libc::EPOLLHUP) as u32;
/// Events that make waiting writers try again.
const WRITE_READY: u32 = (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32;

/// Logged once per process: io_uring is unavailable and `auto` chose the fallback.
static UNAVAILABLE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Logs, once per process, why io_uring is unavailable (the startup error, which names the
/// fix) and that the broker runs on the slower fallback driver.
pub(crate) fn warn_unavailable_once(cause: &RuntimeError) {
    if !UNAVAILABLE_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "ringmq::runtime",
            cause = %cause,
            "io_uring is unavailable: running on the fallback driver (epoll for sockets, \
             blocking file I/O on helper threads), which is slower (no registered buffers, \
             a thread hop per file operation); fix the cause above to get io_uring back, or \
             set runtime.driver = \"fallback\" to silence this warning"
        );
    }
}

/// Where a fallback operation is.
enum State {
    /// A chain element waiting for its predecessor.
    Linked,
    /// Waiting in its socket's queue for readiness.
    Waiting(RawFd, Dir),
    /// Queued on or running on a helper thread.
    Helper(Arc<JobState>),
    /// A timer in the heap.
    Timer,
}

/// What the fallback driver keeps per in-flight operation, beside its table slot.
struct FbOp {
    op: IoOp,
    /// Distinguishes this operation from a later one reusing the slot index (timer heap
    /// entries and helper results carry it).
    seq: u64,
    state: State,
    /// The next operation of its chain.
    next: Option<usize>,
}

/// The readers and writers waiting on one socket, in submission order.
#[derive(Default)]
struct Waiters {
    read: VecDeque<usize>,
    write: VecDeque<usize>,
}

impl Waiters {
    fn queue(&mut self, dir: Dir) -> &mut VecDeque<usize> {
        match dir {
            Dir::Read => &mut self.read,
            Dir::Write => &mut self.write,
        }
    }
}

/// One shard's fallback driver.
pub(crate) struct FallbackDriver {
    table: OpTable,
    epoll: Epoll,
    /// The shard's doorbell (a duplicate, switched to non-blocking).
    doorbell: File,
    helpers: Helpers,
    ops: Vec<Option<FbOp>>,
    waiters: HashMap<RawFd, Waiters>,
    timers: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    next_seq: u64,
    events: Vec<libc::epoll_event>,
    /// Reused buffer of helper results.
    done: Vec<(usize, u64, i32)>,
}

impl FallbackDriver {
    /// Creates the epoll instance, registers the doorbell and starts the file helpers.
    pub(crate) fn new(shared: Arc<Shared>) -> Result<Self, RuntimeError> {
        let epoll = Epoll::new().map_err(|e| RuntimeError::io("creating the epoll instance", e))?;
        let doorbell = shared
            .doorbell
            .try_clone()
            .map_err(|e| RuntimeError::io("duplicating the shard doorbell eventfd", e))?;
        // Only this driver reads the doorbell; other threads' writes ignore EAGAIN.
        set_nonblocking(doorbell.as_raw_fd())
            .map_err(|e| RuntimeError::io("making the doorbell eventfd non-blocking", e))?;
        let helpers = Helpers::start(shared.shard)
            .map_err(|e| RuntimeError::io("starting the file helper threads", e))?;
        let level_in = libc::EPOLLIN as u32;
        epoll
            .add(doorbell.as_raw_fd(), level_in, DOORBELL_TOKEN)
            .map_err(|e| RuntimeError::io("registering the doorbell with epoll", e))?;
        epoll
            .add(helpers.done_fd(), level_in, HELPERS_TOKEN)
            .map_err(|e| RuntimeError::io("registering the helper eventfd with epoll", e))?;
        tracing::debug!(target: "ringmq::runtime", shard = shared.shard,
            helpers = helper::FILE_HELPERS, "fallback driver ready");
        Ok(FallbackDriver {
            table: OpTable::new(shared),
            epoll,
            doorbell,
            helpers,
            ops: Vec::new(),
            waiters: HashMap::new(),
            timers: BinaryHeap::new(),
            next_seq: 0,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT],
            done: Vec::new(),
        })
    }

    pub(crate) fn table(&mut self) -> &mut OpTable {
        &mut self.table
    }

    pub(crate) fn has_deferred(&self) -> bool {
        self.table.has_deferred()
    }

    pub(crate) fn max_chain(&self) -> usize {
        MAX_CHAIN
    }

    /// Registers a new socket with the epoll instance (edge-triggered, both directions) and
    /// makes it non-blocking. Called once per socket, when it is created or wrapped.
    pub(crate) fn register_socket(&mut self, fd: RawFd) -> io::Result<()> {
        set_nonblocking(fd)?;
        self.epoll.add(fd, SOCKET_EVENTS, fd as u64)
    }

    fn insert(&mut self, op: IoOp, tag: Option<LeaseTag>) -> usize {
        let idx = self.table.alloc(tag);
        if self.ops.len() <= idx {
            self.ops.resize_with(idx + 1, || None);
        }
        self.next_seq += 1;
        self.ops[idx] = Some(FbOp {
            op,
            seq: self.next_seq,
            state: State::Linked,
            next: None,
        });
        idx
    }

    /// Queues and starts `op`.
    pub(crate) fn push(&mut self, op: IoOp, tag: Option<LeaseTag>) -> io::Result<usize> {
        let idx = self.insert(op, tag);
        self.start(idx);
        Ok(idx)
    }

    /// Queues `ops` as a chain and starts its first operation.
    pub(crate) fn push_chain(&mut self, ops: &[IoOp]) -> io::Result<Vec<usize>> {
        assert!(ops.len() <= MAX_CHAIN, "chain longer than {MAX_CHAIN}");
        let idxs: Vec<usize> = ops.iter().map(|op| self.insert(*op, None)).collect();
        for pair in idxs.windows(2) {
            if let Some(fb) = self.ops[pair[0]].as_mut() {
                fb.next = Some(pair[1]);
            }
        }
        if let Some(&first) = idxs.first() {
            self.start(first);
        }
        Ok(idxs)
    }

    /// Starts operation `idx`: on a helper, in the timer heap, or with a first attempt.
    fn start(&mut self, idx: usize) {
        let Some(fb) = self.ops[idx].as_ref() else {
            return;
        };
        let (op, seq) = (fb.op, fb.seq);
        if op.blocks_on_disk() {
            let (job, waited) = self.helpers.submit(idx, seq, op);
            if waited {
                bump(&self.table.stats().ring_full, 1);
            }
            self.set_state(idx, State::Helper(job));
            return;
        }
        if let IoOp::Timeout { duration, .. } = op {
            let deadline = Instant::now() + duration;
            self.timers.push(Reverse((deadline, seq, idx)));
            self.set_state(idx, State::Timer);
            return;
        }
        // Bytes keep their order: behind a waiting operation in the same direction, wait.
        let dir = direction(&op);
        let fd = wait_fd(&op);
        if self.waiters.get(&fd).is_some_and(|w| match dir {
            Dir::Read => !w.read.is_empty(),
            Dir::Write => !w.write.is_empty(),
        }) {
            self.enqueue(idx, fd, dir);
            return;
        }
        // SAFETY: the op's pointers point into its data, alive until it completes.
        match unsafe { attempt(&op) } {
            Attempt::Done(res) => self.complete(idx, res),
            Attempt::WouldBlock(fd, dir) => self.enqueue(idx, fd, dir),
        }
    }

    fn set_state(&mut self, idx: usize, state: State) {
        if let Some(fb) = self.ops[idx].as_mut() {
            fb.state = state;
        }
    }

    fn enqueue(&mut self, idx: usize, fd: RawFd, dir: Dir) {
        self.waiters
            .entry(fd)
            .or_default()
            .queue(dir)
            .push_back(idx);
        self.set_state(idx, State::Waiting(fd, dir));
    }

    /// Operation `idx` is over with `res`: continue or cancel its chain, then record the
    /// completion in the table (waking or dropping, deferred).
    fn complete(&mut self, idx: usize, res: i32) {
        let Some(fb) = self.ops.get_mut(idx).and_then(Option::take) else {
            return;
        };
        if let Some(next) = fb.next {
            let full = fb
                .op
                .full_len()
                .is_none_or(|len| res >= 0 && res as u32 >= len);
            if res >= 0 && full && !self.table.is_abandoned(next) {
                self.start(next);
            } else {
                self.cancel_chain(next);
            }
        }
        self.table.finish(idx, Completion { res, flags: 0 });
    }

    /// Completes `idx` and the rest of its chain with `ECANCELED` (none of them started).
    fn cancel_chain(&mut self, mut idx: usize) {
        loop {
            let next = self
                .ops
                .get_mut(idx)
                .and_then(Option::take)
                .and_then(|fb| fb.next);
            self.table.finish(
                idx,
                Completion {
                    res: -libc::ECANCELED,
                    flags: 0,
                },
            );
            match next {
                Some(n) => idx = n,
                None => return,
            }
        }
    }

    /// The future of `idx` was dropped: park `data` and cancel what can be cancelled now.
    pub(crate) fn abandon(&mut self, idx: usize, data: Box<dyn Any>) -> Option<Box<dyn Any>> {
        match self.table.abandon(idx, data) {
            Some(data) => Some(data),
            None => {
                self.cancel(idx);
                None
            }
        }
    }

    /// Cancels operation `idx` if it is only waiting (socket, timer, queued file job); a
    /// running file job and a chain element not started yet finish on their own.
    fn cancel(&mut self, idx: usize) {
        let Some(fb) = self.ops.get(idx).and_then(Option::as_ref) else {
            return;
        };
        match &fb.state {
            State::Waiting(fd, dir) => {
                let (fd, dir) = (*fd, *dir);
                let mut was_head = false;
                if let Some(w) = self.waiters.get_mut(&fd) {
                    let q = w.queue(dir);
                    was_head = q.front() == Some(&idx);
                    q.retain(|&i| i != idx);
                }
                self.complete(idx, -libc::ECANCELED);
                if was_head {
                    // The next waiter may never have been tried since the last edge.
                    self.service(fd, dir);
                }
                self.prune(fd);
            }
            State::Timer => self.complete(idx, -libc::ECANCELED),
            State::Helper(job) => {
                if job.cancel() {
                    self.complete(idx, -libc::ECANCELED);
                }
            }
            State::Linked => {}
        }
    }

    /// Tries the waiting operations of `fd` in direction `dir`, in order, until one would
    /// block.
    fn service(&mut self, fd: RawFd, dir: Dir) {
        loop {
            let Some(&idx) = self.waiters.get_mut(&fd).and_then(|w| w.queue(dir).front()) else {
                return;
            };
            let Some(op) = self.ops.get(idx).and_then(Option::as_ref).map(|fb| fb.op) else {
                // Stale entry (cannot happen: completion removes it first); drop it.
                if let Some(w) = self.waiters.get_mut(&fd) {
                    w.queue(dir).pop_front();
                }
                continue;
            };
            // SAFETY: the op's pointers point into its data, alive until it completes.
            match unsafe { attempt(&op) } {
                Attempt::Done(res) => {
                    if let Some(w) = self.waiters.get_mut(&fd) {
                        w.queue(dir).pop_front();
                    }
                    self.complete(idx, res);
                }
                Attempt::WouldBlock(..) => return,
            }
        }
    }

    /// Forgets `fd`'s waiter entry once nothing waits on it (its number may be reused).
    fn prune(&mut self, fd: RawFd) {
        if self
            .waiters
            .get(&fd)
            .is_some_and(|w| w.read.is_empty() && w.write.is_empty())
        {
            self.waiters.remove(&fd);
        }
    }

    /// Waits (when `wait`, until the nearest timer at most) for readiness, helper results or
    /// the doorbell; then completes what became possible and the expired timers.
    pub(crate) fn park(&mut self, wait: bool) -> io::Result<()> {
        let timeout_ms = if !wait || self.table.has_deferred() {
            0
        } else {
            match self.timers.peek() {
                Some(Reverse((deadline, _, _))) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    // Round up: waking early would only spin.
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
                None => -1,
            }
        };
        let mut events = std::mem::take(&mut self.events);
        let n = self.epoll.wait(&mut events, timeout_ms);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.events = events;
                return Err(e);
            }
        };
        for ev in &events[..n] {
            let (token, mask) = (ev.u64, ev.events);
            match token {
                DOORBELL_TOKEN => eventfd_drain(self.doorbell.as_raw_fd()),
                HELPERS_TOKEN => self.take_helper_results(),
                fd => {
                    let fd = fd as RawFd;
                    if mask & READ_READY != 0 {
                        self.service(fd, Dir::Read);
                    }
                    if mask & WRITE_READY != 0 {
                        self.service(fd, Dir::Write);
                    }
                    self.prune(fd);
                }
            }
        }
        self.events = events;
        self.fire_timers();
        Ok(())
    }

    fn take_helper_results(&mut self) {
        let mut done = std::mem::take(&mut self.done);
        self.helpers.take_done(&mut done);
        for (idx, seq, res) in done.drain(..) {
            let current = self
                .ops
                .get(idx)
                .and_then(Option::as_ref)
                .is_some_and(|fb| fb.seq == seq);
            if current {
                self.complete(idx, res);
            }
        }
        self.done = done;
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((deadline, seq, idx))) = self.timers.peek() {
            if deadline > now {
                return;
            }
            self.timers.pop();
            let live = self
                .ops
                .get(idx)
                .and_then(Option::as_ref)
                .is_some_and(|fb| fb.seq == seq && matches!(fb.state, State::Timer));
            if live {
                self.complete(idx, -libc::ETIME);
            }
        }
    }

    /// At shutdown, after every task was dropped: cancels what is still waiting and waits for
    /// the running file jobs, up to `limit`. Returns how many operations were still out at
    /// the deadline (their buffers are leaked, never freed).
    pub(crate) fn shutdown_drain(&mut self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        for idx in self.table.live_unfinished() {
            self.cancel(idx);
        }
        loop {
            self.table.free_unclaimed();
            if self.table.in_flight() == 0 {
                return 0;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            let mut events = std::mem::take(&mut self.events);
            let waited = self.epoll.wait(&mut events, wait.as_millis().max(1) as i32);
            self.events = events;
            if waited.is_err() {
                break;
            }
            self.take_helper_results();
            self.fire_timers();
        }
        let left = self.table.in_flight();
        tracing::error!(
            target: "ringmq::runtime",
            left,
            "shutdown: file operations still running at the deadline; leaking their buffers"
        );
        self.table.leak_all();
        for fb in self.ops.iter_mut().filter_map(Option::take) {
            std::mem::forget(fb);
        }
        left
    }
}

/// The readiness a socket operation waits for.
fn direction(op: &IoOp) -> Dir {
    match op {
        IoOp::Recv { .. } | IoOp::Accept { .. } => Dir::Read,
        _ => Dir::Write,
    }
}

/// The socket whose readiness a socket operation waits for.
fn wait_fd(op: &IoOp) -> RawFd {
    match *op {
        IoOp::Recv { fd, .. }
        | IoOp::Accept { fd, .. }
        | IoOp::Send { fd, .. }
        | IoOp::Connect { fd, .. }
        | IoOp::PollWritable { fd } => fd,
        IoOp::Splice { fd_out, .. } => fd_out,
        IoOp::Read { fd, .. }
        | IoOp::Write { fd, .. }
        | IoOp::WriteDsync { fd, .. }
        | IoOp::Fsync { fd, .. }
        | IoOp::Fallocate { fd, .. } => fd,
        IoOp::OpenAt { .. } | IoOp::RenameAt { .. } | IoOp::Timeout { .. } => -1,
    }
}
