//! Work a handler starts and finishes later, off the request path: disk reads of queries
//! (`VIEW_MESSAGE_BY_ID`, `QUERY_MESSAGE`, `CONSUME_MESSAGE_DIRECTLY`) run as tasks of the
//! shard, on its io_uring, while the shard goes on serving other requests.
//!
//! A handler gives [`Deferred::spawn`] a future that owns everything it needs (an open
//! segment file, positions; never a borrow of the shard state) and resolves to a
//! [`Continuation`]: what to do with the shard state once the I/O is done (usually: answer
//! the request through the outbox). The task parks the continuation here and calls the
//! notifier (the server's `kick`); the next [`crate::server::state::ShardState::tick`] or
//! `after_requests` runs it. The handler returns `None` meanwhile, so the connection layer
//! counts the request as deferred and answers it by `opaque` when the response arrives.
//!
//! Bounded: at most [`DEFERRED_TASKS_MAX`] tasks run at once per shard; past that a query is
//! refused with `SYSTEM_BUSY` rather than queued without limit.
//!
//! Single-threaded: lives in its shard's state. Without a spawner (tests over the in-memory
//! store, offline tools) nothing is deferred: handlers answer from memory at once.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::server::state::ShardState;

/// Deferred tasks that may run at once on one shard: each holds an open file and a read
/// buffer of at most one record (4 MiB), so this bounds a shard's query memory to ~256 MiB
/// in the worst case and typically to a few MiB.
pub const DEFERRED_TASKS_MAX: usize = 64;

/// What to run on the shard state once a deferred task's I/O is done; gets the state and
/// the current time.
pub type Continuation<S> = Box<dyn FnOnce(&mut ShardState<S>, u64)>;

/// A boxed task future, as the shard runtime spawns it.
pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// Starts a task on the shard's executor (`crate::runtime::spawn_local` in the broker).
pub type Spawner = Rc<dyn Fn(Task)>;

/// Why a deferred task was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeferError {
    /// No spawner is installed: the caller must do the work synchronously.
    #[error("no task spawner on this shard")]
    NoSpawner,
    /// [`DEFERRED_TASKS_MAX`] tasks are running.
    #[error("too many queries in flight on this shard ({DEFERRED_TASKS_MAX}); retry later")]
    Busy,
}

/// The deferred tasks of one shard; see the module docs.
pub struct Deferred<S> {
    spawner: Option<Spawner>,
    notify: Option<Rc<dyn Fn()>>,
    done: Rc<RefCell<Vec<Continuation<S>>>>,
    running: Rc<Cell<usize>>,
}

impl<S> std::fmt::Debug for Deferred<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("spawner", &self.spawner.is_some())
            .field("running", &self.running.get())
            .field("done", &self.done.borrow().len())
            .finish()
    }
}

impl<S> Default for Deferred<S> {
    fn default() -> Self {
        Deferred {
            spawner: None,
            notify: None,
            done: Rc::new(RefCell::new(Vec::new())),
            running: Rc::new(Cell::new(0)),
        }
    }
}

impl<S> Deferred<S> {
    /// Installs how tasks are started and whom to tell when one finishes (the server's
    /// `kick`, so that its tick runs the continuation at once).
    pub fn install(&mut self, spawner: Spawner, notify: Rc<dyn Fn()>) {
        self.spawner = Some(spawner);
        self.notify = Some(notify);
    }

    /// Whether tasks can be deferred on this shard.
    pub fn enabled(&self) -> bool {
        self.spawner.is_some()
    }

    /// Tasks running now.
    pub fn running(&self) -> usize {
        self.running.get()
    }

    /// Takes the continuations of the tasks that finished, in completion order.
    pub fn take_done(&self) -> Vec<Continuation<S>> {
        std::mem::take(&mut *self.done.borrow_mut())
    }

    /// Whether continuations wait to run.
    pub fn has_done(&self) -> bool {
        !self.done.borrow().is_empty()
    }
}

impl<S: 'static> Deferred<S> {
    /// Starts `task`; its continuation runs on the state at the next tick after it is done.
    pub fn spawn<F>(&self, task: F) -> Result<(), DeferError>
    where
        F: Future<Output = Continuation<S>> + 'static,
    {
        let spawner = self.spawner.as_ref().ok_or(DeferError::NoSpawner)?;
        if self.running.get() >= DEFERRED_TASKS_MAX {
            return Err(DeferError::Busy);
        }
        self.running.set(self.running.get() + 1);
        let done = self.done.clone();
        let running = self.running.clone();
        let notify = self.notify.clone();
        spawner(Box::pin(async move {
            let continuation = task.await;
            running.set(running.get().saturating_sub(1));
            done.borrow_mut().push(continuation);
            if let Some(notify) = notify {
                notify();
            }
        }));
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod test_spawner {
    //! A spawner for unit tests: tasks are kept and polled by hand.

    use super::*;
    use std::task::{Context, Poll, Waker};

    /// Spawned tasks, polled by [`ManualTasks::run`].
    #[derive(Default, Clone)]
    pub(crate) struct ManualTasks {
        tasks: Rc<RefCell<Vec<Task>>>,
    }

    impl ManualTasks {
        /// A spawner that keeps tasks here.
        pub(crate) fn spawner(&self) -> Spawner {
            let tasks = self.tasks.clone();
            Rc::new(move |task| tasks.borrow_mut().push(task))
        }

        /// Polls every task once; returns how many are still pending.
        pub(crate) fn run(&self) -> usize {
            let mut cx = Context::from_waker(Waker::noop());
            let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
            let mut pending = Vec::new();
            for mut task in tasks {
                if task.as_mut().poll(&mut cx) == Poll::Pending {
                    pending.push(task);
                }
            }
            let left = pending.len();
            self.tasks.borrow_mut().extend(pending);
            left
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_spawner::ManualTasks;
    use super::*;

    struct Fake;

    #[test]
    fn without_spawner_nothing_is_deferred() {
        let deferred: Deferred<Fake> = Deferred::default();
        assert!(!deferred.enabled());
        let result = deferred.spawn(async { Box::new(|_: &mut ShardState<Fake>, _| {}) as _ });
        assert_eq!(result, Err(DeferError::NoSpawner));
    }

    #[test]
    fn finished_tasks_park_their_continuation_and_notify() {
        let tasks = ManualTasks::default();
        let kicks = Rc::new(Cell::new(0));
        let mut deferred: Deferred<Fake> = Deferred::default();
        let k = kicks.clone();
        deferred.install(tasks.spawner(), Rc::new(move || k.set(k.get() + 1)));
        deferred
            .spawn(async { Box::new(|_: &mut ShardState<Fake>, _| {}) as _ })
            .expect("spawned");
        assert_eq!(deferred.running(), 1);
        assert!(!deferred.has_done());
        assert_eq!(tasks.run(), 0);
        assert_eq!(deferred.running(), 0);
        assert_eq!(kicks.get(), 1);
        assert_eq!(deferred.take_done().len(), 1);
        assert!(!deferred.has_done());
    }

    #[test]
    fn tasks_past_the_limit_are_refused() {
        let tasks = ManualTasks::default();
        let mut deferred: Deferred<Fake> = Deferred::default();
        deferred.install(tasks.spawner(), Rc::new(|| {}));
        for _ in 0..DEFERRED_TASKS_MAX {
            deferred
                .spawn(std::future::pending::<Continuation<Fake>>())
                .expect("under the limit");
        }
        assert_eq!(
            deferred.spawn(std::future::pending::<Continuation<Fake>>()),
            Err(DeferError::Busy)
        );
        assert_eq!(tasks.run(), DEFERRED_TASKS_MAX);
    }
}
