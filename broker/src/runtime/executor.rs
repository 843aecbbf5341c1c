//! The single-threaded executor of one shard: task queue, wakers, `block_on`, `spawn_local`.
//!
//! Everything here runs on the shard's thread, except [`Shared`] and the wakers, which other
//! threads may use to wake a task: that pushes the task id onto a mutex-protected queue and
//! rings the shard's eventfd doorbell, which ends the shard's wait in `io_uring_enter` (or,
//! on the fallback driver, in `epoll_wait`).
//!
//! Loop: poll the root future if woken, run up to [`POLL_BUDGET`] ready tasks, take remote
//! wakes, then submit and (when idle) wait on the ring, harvest completions, and only after
//! the driver is released wake the tasks whose operations completed.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::driver::{Driver, StatsCells, bump};
use super::error::RuntimeError;
use super::pool::BufPool;

/// Task polls per loop turn before the ring is checked again (keeps I/O latency bounded when
/// many tasks are ready).
const POLL_BUDGET: usize = 128;
/// Task id of the root future passed to `block_on`.
const ROOT_TASK: usize = usize::MAX;
/// How long shutdown waits for cancelled operations to come back before leaking them.
const SHUTDOWN_DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// The part of a shard other threads may touch: remote wake queue, doorbell, stop flag and
/// counters.
pub(crate) struct Shared {
    pub(crate) shard: usize,
    pub(crate) doorbell: File,
    pub(crate) stats: StatsCells,
    remote: Mutex<Vec<usize>>,
    notified: AtomicBool,
    pub(crate) stop: AtomicBool,
    pub(crate) stop_waker: Mutex<Option<Waker>>,
}

impl Shared {
    pub(crate) fn new(shard: usize) -> Result<Arc<Self>, RuntimeError> {
        let doorbell = super::sys::eventfd()
            .map_err(|e| RuntimeError::io("creating the shard doorbell eventfd", e))?;
        Ok(Arc::new(Shared {
            shard,
            doorbell,
            stats: StatsCells::default(),
            remote: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            stop_waker: Mutex::new(None),
        }))
    }

    fn wake_remote(&self, task: usize) {
        self.remote
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        if !self.notified.swap(true, Ordering::AcqRel) {
            super::sys::eventfd_signal(&self.doorbell);
        }
    }

    /// Asks the shard to stop: its root future is dropped at the next turn.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        let w = self
            .stop_waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// A task's waker: usable from any thread.
struct TaskWaker {
    shared: Arc<Shared>,
    task: usize,
    scheduled: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let local = CURRENT
            .try_with(|c| match &*c.borrow() {
                Some(core) if Arc::ptr_eq(&core.shared, &self.shared) => {
                    core.ready.borrow_mut().push_back(self.task);
                    true
                }
                _ => false,
            })
            .unwrap_or(false);
        if !local {
            self.shared.wake_remote(self.task);
        }
    }
}

struct TaskSlot {
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
    waker: Waker,
    handle: Arc<TaskWaker>,
}

/// One shard's executor and driver.
pub(crate) struct Core {
    pub(crate) driver: RefCell<Driver>,
    tasks: RefCell<Vec<Option<TaskSlot>>>,
    free_tasks: RefCell<Vec<usize>>,
    ready: RefCell<VecDeque<usize>>,
    root_woken: Cell<bool>,
    /// Reused vectors for `run_deferred` (no allocation per loop turn).
    spare_wakes: RefCell<Vec<Waker>>,
    spare_graveyard: RefCell<Vec<Box<dyn Any>>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) pool: BufPool,
    pub(crate) send_zc: bool,
    pub(crate) shards: usize,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// The shard core running on this thread. Panics off a shard thread: the runtime's futures
/// are only meaningful inside a shard.
pub(crate) fn core() -> Rc<Core> {
    try_core().expect("ringmq runtime: this must be called on a shard thread (inside block_on)")
}

pub(crate) fn try_core() -> Option<Rc<Core>> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Sets `CURRENT` for the duration of a scope.
struct Enter {
    prev: Option<Rc<Core>>,
}

impl Enter {
    fn new(core: &Rc<Core>) -> Self {
        let prev = CURRENT.with(|c| c.replace(Some(core.clone())));
        if let Some(p) = &prev {
            assert!(
                !Rc::ptr_eq(p, core),
                "ringmq runtime: block_on called re-entrantly on the same shard"
            );
        }
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

impl Core {
    pub(crate) fn new(
        shared: Arc<Shared>,
        driver: Driver,
        pool: BufPool,
        send_zc: bool,
        shards: usize,
    ) -> Rc<Self> {
        Rc::new(Core {
            driver: RefCell::new(driver),
            tasks: RefCell::new(Vec::new()),
            free_tasks: RefCell::new(Vec::new()),
            ready: RefCell::new(VecDeque::new()),
            root_woken: Cell::new(false),
            spare_wakes: RefCell::new(Vec::new()),
            spare_graveyard: RefCell::new(Vec::new()),
            shared,
            pool,
            send_zc,
            shards,
        })
    }

    pub(crate) fn spawn(self: &Rc<Self>, future: Pin<Box<dyn Future<Output = ()>>>) {
        let id = self.free_tasks.borrow_mut().pop().unwrap_or_else(|| {
            let mut tasks = self.tasks.borrow_mut();
            tasks.push(None);
            tasks.len() - 1
        });
        let handle = Arc::new(TaskWaker {
            shared: self.shared.clone(),
            task: id,
            scheduled: AtomicBool::new(true),
        });
        let waker = Waker::from(handle.clone());
        self.tasks.borrow_mut()[id] = Some(TaskSlot {
            future: Some(future),
            waker,
            handle,
        });
        self.ready.borrow_mut().push_back(id);
        bump(&self.shared.stats.tasks_spawned, 1);
        bump(&self.shared.stats.tasks_live, 1);
    }

    fn run_task(&self, id: usize) {
        let taken = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks.get_mut(id).and_then(Option::as_mut) {
                Some(slot) => {
                    slot.handle.scheduled.store(false, Ordering::Release);
                    slot.future.take().map(|f| (f, slot.waker.clone()))
                }
                None => None,
            }
        };
        let Some((mut future, waker)) = taken else {
            return;
        };
        let mut cx = Context::from_waker(&waker);
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(()) => {
                let slot = self.tasks.borrow_mut()[id].take();
                self.free_tasks.borrow_mut().push(id);
                self.shared.stats.tasks_live.store(
                    self.shared
                        .stats
                        .tasks_live
                        .load(Ordering::Relaxed)
                        .saturating_sub(1),
                    Ordering::Relaxed,
                );
                // Dropped outside the borrows: drops may spawn or cancel operations.
                drop(future);
                drop(slot);
            }
            Poll::Pending => {
                if let Some(slot) = self.tasks.borrow_mut()[id].as_mut() {
                    slot.future = Some(future);
                }
            }
        }
    }

    fn run_ready(&self) {
        for _ in 0..POLL_BUDGET {
            let next = self.ready.borrow_mut().pop_front();
            match next {
                Some(ROOT_TASK) => self.root_woken.set(true),
                Some(id) => self.run_task(id),
                None => break,
            }
        }
    }

    fn take_remote(&self) {
        if !self.shared.notified.swap(false, Ordering::AcqRel) {
            return;
        }
        let ids =
            std::mem::take(&mut *self.shared.remote.lock().unwrap_or_else(|p| p.into_inner()));
        let mut ready = self.ready.borrow_mut();
        for id in ids {
            match id {
                ROOT_TASK => self.root_woken.set(true),
                id => ready.push_back(id),
            }
        }
    }

    /// Wakes the tasks whose operations completed, drops parked buffers of abandoned ones.
    fn run_deferred(&self) {
        let mut wakes = std::mem::take(&mut *self.spare_wakes.borrow_mut());
        let mut graveyard = std::mem::take(&mut *self.spare_graveyard.borrow_mut());
        self.driver
            .borrow_mut()
            .swap_deferred(&mut wakes, &mut graveyard);
        graveyard.clear();
        for w in wakes.drain(..) {
            w.wake();
        }
        *self.spare_wakes.borrow_mut() = wakes;
        *self.spare_graveyard.borrow_mut() = graveyard;
    }

    /// Runs `future` to completion on this thread, driving spawned tasks and the ring.
    pub(crate) fn block_on<F: Future>(self: &Rc<Self>, future: F) -> F::Output {
        let _enter = Enter::new(self);
        let root = Arc::new(TaskWaker {
            shared: self.shared.clone(),
            task: ROOT_TASK,
            scheduled: AtomicBool::new(false),
        });
        let root_waker = Waker::from(root.clone());
        let mut future = pin!(future);
        self.root_woken.set(true);
        loop {
            if self.root_woken.replace(false) {
                root.scheduled.store(false, Ordering::Release);
                let mut cx = Context::from_waker(&root_waker);
                if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                    return v;
                }
            }
            self.run_ready();
            self.take_remote();
            self.run_deferred();
            let busy = self.root_woken.get()
                || !self.ready.borrow().is_empty()
                || self.shared.notified.load(Ordering::Acquire);
            let parked = self.driver.borrow_mut().park(!busy);
            if let Err(e) = parked {
                // A failing io_uring_enter or epoll_wait (EBADF, EFAULT) means the driver
                // itself is broken; nothing can make progress, and unwinding keeps buffers
                // parked (leaked).
                panic!(
                    "ringmq runtime: the driver's wait (io_uring_enter / epoll_wait) failed on \
                     shard {}: {e}",
                    self.shared.shard
                );
            }
            self.run_deferred();
        }
    }

    /// Drops every task (their operations cancel and park their buffers), then waits for the
    /// kernel to return every buffer. Called once, when the shard ends.
    pub(crate) fn shutdown(self: &Rc<Self>) {
        let _enter = Enter::new(self);
        // Drops may spawn more tasks; a few rounds settle it.
        for _ in 0..8 {
            let futures: Vec<_> = {
                let mut tasks = self.tasks.borrow_mut();
                tasks.iter_mut().filter_map(|s| s.take()).collect()
            };
            if futures.is_empty() {
                break;
            }
            drop(futures);
            self.run_deferred();
        }
        self.ready.borrow_mut().clear();
        self.free_tasks.borrow_mut().clear();
        self.tasks.borrow_mut().clear();
        self.shared.stats.tasks_live.store(0, Ordering::Relaxed);
        loop {
            let left = self
                .driver
                .borrow_mut()
                .shutdown_drain(SHUTDOWN_DRAIN_LIMIT);
            self.run_deferred();
            if left > 0 || !self.driver.borrow().has_deferred() {
                break;
            }
        }
    }
}

/// Handle to a task started with [`spawn_local`]; awaiting it yields the task's output.
/// Dropping it detaches the task (it keeps running).
pub struct JoinHandle<T> {
    state: Rc<JoinState<T>>,
}

struct JoinState<T> {
    value: RefCell<Option<T>>,
    done: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.state.done.get()
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(v) = self.state.value.borrow_mut().take() {
            return Poll::Ready(v);
        }
        assert!(
            !self.state.done.get(),
            "JoinHandle polled after it returned the output"
        );
        *self.state.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Spawns `future` on the current shard. It runs on this thread only (need not be `Send`).
/// Panics off a shard thread.
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let state = Rc::new(JoinState {
        value: RefCell::new(None),
        done: Cell::new(false),
        waker: RefCell::new(None),
    });
    let task_state = state.clone();
    core().spawn(Box::pin(async move {
        let v = future.await;
        *task_state.value.borrow_mut() = Some(v);
        task_state.done.set(true);
        let w = task_state.waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }));
    JoinHandle { state }
}

/// Yields once to the other ready tasks of this shard (and to the ring, when the budget of
/// task polls is spent).
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Resolves when the shard was asked to stop (used by the shard thread around its root).
pub(crate) async fn stop_requested(shared: Arc<Shared>) {
    std::future::poll_fn(|cx| {
        if shared.stop.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *shared.stop_waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        if shared.stop.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
