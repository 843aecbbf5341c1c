//! The shard's buffer pool: [`BufPool`] of [`AlignedBuf`]s and the leases it hands out,
//! [`FixedBuf`]. Registered with the ring when the memlock budget allows (file operations then
//! use `ReadFixed`/`WriteFixed`). Shard-local (`!Send`).
//!
//! Safety net: a buffer returned to a pool is filled with [`POISON`]; before it is lent again
//! the poison is checked, and every completion of an operation that used a pool buffer checks
//! that the buffer's generation is still the one lent. Any mismatch is counted in
//! [`PoolStats::violations`] and logged.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::buf::{AlignedBuf, IoBuf, IoBufMut};

/// Byte written over a pool buffer when it comes back, checked before it is lent again.
pub const POISON: u8 = 0xA5;

/// Counters of a [`BufPool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers in the pool.
    pub buffers: usize,
    /// Bytes per buffer.
    pub buf_bytes: usize,
    /// How many buffers (the first ones) are registered with the ring.
    pub registered: usize,
    /// Buffers currently lent out.
    pub lent: usize,
    /// Poison or generation check failures: a buffer was touched after release. Must be 0.
    pub violations: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    Lent,
}

struct PoolInner {
    buf_bytes: usize,
    free: RefCell<Vec<(usize, AlignedBuf)>>,
    state: RefCell<Vec<SlotState>>,
    generation: RefCell<Vec<u32>>,
    registered: Cell<usize>,
    poison: bool,
    violations: Cell<u64>,
    waiters: RefCell<VecDeque<Waker>>,
}

/// A pool of [`AlignedBuf`]s of one size, sized once at startup (never grown). Shard-local
/// (`!Send`); clone it freely, clones share the pool.
#[derive(Clone)]
pub struct BufPool(Rc<PoolInner>);

impl fmt::Debug for BufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BufPool").field(&self.stats()).finish()
    }
}

impl BufPool {
    /// A pool of `count` buffers of `buf_bytes` (rounded up to [`BUF_ALIGN`](super::BUF_ALIGN)). With `poison`,
    /// returned buffers are poisoned and checked before reuse (costs a fill and a scan).
    pub fn new(count: usize, buf_bytes: usize, poison: bool) -> Self {
        assert!(
            count <= u16::MAX as usize,
            "registered buffer indexes are u16"
        );
        let mut free = Vec::with_capacity(count);
        for i in (0..count).rev() {
            let mut b = AlignedBuf::with_capacity(buf_bytes);
            if poison {
                b.as_full_mut().fill(POISON);
            }
            free.push((i, b));
        }
        let buf_bytes = free.first().map_or(buf_bytes, |(_, b)| b.capacity());
        BufPool(Rc::new(PoolInner {
            buf_bytes,
            free: RefCell::new(free),
            state: RefCell::new(vec![SlotState::Free; count]),
            generation: RefCell::new(vec![0; count]),
            registered: Cell::new(0),
            poison,
            violations: Cell::new(0),
            waiters: RefCell::new(VecDeque::new()),
        }))
    }

    /// The iovecs of every buffer, in index order, for `register_buffers`.
    pub(crate) fn iovecs(&self) -> Vec<libc::iovec> {
        let free = self.0.free.borrow();
        let mut v: Vec<(usize, libc::iovec)> = free
            .iter()
            .map(|(i, b)| {
                (
                    *i,
                    libc::iovec {
                        iov_base: b.stable_ptr() as *mut _,
                        iov_len: b.capacity(),
                    },
                )
            })
            .collect();
        v.sort_by_key(|(i, _)| *i);
        v.into_iter().map(|(_, io)| io).collect()
    }

    /// Records that the first `n` buffers are registered with the ring.
    pub(crate) fn set_registered(&self, n: usize) {
        self.0.registered.set(n);
    }

    /// Bytes per buffer.
    pub fn buf_bytes(&self) -> usize {
        self.0.buf_bytes
    }

    /// A free buffer (length 0), or `None` if all are lent.
    pub fn try_take(&self) -> Option<FixedBuf> {
        let (index, mut buf) = self.0.free.borrow_mut().pop()?;
        if self.0.poison && buf.as_full_mut().iter().any(|&b| b != POISON) {
            self.violation(index, "poison overwritten while the buffer was in the pool");
        }
        buf.clear();
        self.0.state.borrow_mut()[index] = SlotState::Lent;
        let generation = {
            let mut g = self.0.generation.borrow_mut();
            g[index] = g[index].wrapping_add(1);
            g[index]
        };
        Some(FixedBuf {
            buf: Some(buf),
            index,
            generation,
            pool: self.clone(),
        })
    }

    /// A free buffer, waiting until one is returned if all are lent.
    pub async fn take(&self) -> FixedBuf {
        poll_fn(|cx| match self.try_take() {
            Some(b) => Poll::Ready(b),
            None => {
                self.0.waiters.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let buffers = self.0.state.borrow().len();
        PoolStats {
            buffers,
            buf_bytes: self.0.buf_bytes,
            registered: self.0.registered.get(),
            lent: buffers - self.0.free.borrow().len(),
            violations: self.0.violations.get(),
        }
    }

    fn violation(&self, index: usize, what: &str) {
        self.0.violations.set(self.0.violations.get() + 1);
        tracing::error!(target: "ringmq::runtime", index, what, "buffer pool invariant broken");
    }

    fn give_back(&self, index: usize, mut buf: AlignedBuf) {
        if self.0.state.borrow()[index] != SlotState::Lent {
            self.violation(index, "buffer returned twice");
        }
        if self.0.poison {
            buf.as_full_mut().fill(POISON);
        }
        self.0.state.borrow_mut()[index] = SlotState::Free;
        self.0.free.borrow_mut().push((index, buf));
        let waiter = self.0.waiters.borrow_mut().pop_front();
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

/// Identifies one lending of a pool buffer to the kernel (pool, index, generation); checked by
/// the driver when the operation's completion arrives.
#[doc(hidden)]
pub struct LeaseTag {
    pool: BufPool,
    index: usize,
    generation: u32,
}

impl LeaseTag {
    /// Checks that the buffer is still lent under the same generation.
    pub(crate) fn check(&self) {
        let state = self.pool.0.state.borrow()[self.index];
        let generation = self.pool.0.generation.borrow()[self.index];
        if state != SlotState::Lent || generation != self.generation {
            self.pool
                .violation(self.index, "completion for a buffer no longer lent");
        }
    }
}

/// A buffer leased from a [`BufPool`]; returns (poisoned) to the pool when dropped. When the
/// pool is registered, file operations use `ReadFixed`/`WriteFixed` on it.
pub struct FixedBuf {
    buf: Option<AlignedBuf>,
    index: usize,
    generation: u32,
    pool: BufPool,
}

impl FixedBuf {
    fn inner(&self) -> &AlignedBuf {
        self.buf
            .as_ref()
            .expect("FixedBuf holds its buffer until dropped")
    }
    fn inner_mut(&mut self) -> &mut AlignedBuf {
        self.buf
            .as_mut()
            .expect("FixedBuf holds its buffer until dropped")
    }
    /// Index of the buffer in its pool.
    pub fn index(&self) -> usize {
        self.index
    }
    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.inner().capacity()
    }
    /// Appends `data` (panics past the capacity).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.inner_mut().extend_from_slice(data);
    }
    /// Sets the length (bytes beyond the old length keep their content).
    pub fn set_len(&mut self, len: usize) {
        self.inner_mut().set_len(len);
    }
    /// Sets the length to 0.
    pub fn clear(&mut self) {
        self.inner_mut().clear();
    }
    /// The whole capacity as a mutable slice.
    pub fn as_full_mut(&mut self) -> &mut [u8] {
        self.inner_mut().as_full_mut()
    }
    /// Whether this buffer is registered with the ring.
    pub fn is_registered(&self) -> bool {
        self.index < self.pool.0.registered.get()
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.give_back(self.index, buf);
        }
    }
}

impl Deref for FixedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.inner()
    }
}

impl DerefMut for FixedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.inner_mut()
    }
}

impl fmt::Debug for FixedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBuf")
            .field("index", &self.index)
            .field("generation", &self.generation)
            .field("len", &self.len())
            .finish()
    }
}

// SAFETY: the inner AlignedBuf's allocation stays owned and in place until the FixedBuf drops.
unsafe impl IoBuf for FixedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.inner().stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.inner().bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.inner().bytes_total()
    }
    fn lease_tag(&self) -> Option<LeaseTag> {
        Some(LeaseTag {
            pool: self.pool.clone(),
            index: self.index,
            generation: self.generation,
        })
    }
    fn fixed_index(&self) -> Option<u16> {
        self.is_registered().then_some(self.index as u16)
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for FixedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.inner_mut().stable_mut_ptr()
    }
    unsafe fn set_filled(&mut self, n: usize) {
        self.inner_mut().set_len(n);
    }
}

/// How many bytes of registered buffers one shard may register: unlimited with
/// `CAP_IPC_LOCK`, else the soft memlock limit minus a 1 MiB margin (rings and other users
/// share it, per UID), split evenly between shards.
pub(crate) fn registration_budget_bytes(
    cap_ipc_lock: bool,
    memlock_soft: Option<u64>,
    shards: usize,
) -> u64 {
    const MARGIN_BYTES: u64 = 1 << 20;
    match (cap_ipc_lock, memlock_soft) {
        (true, _) | (false, None) => u64::MAX,
        (false, Some(limit)) => limit.saturating_sub(MARGIN_BYTES) / shards.max(1) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_poisons_and_detects_reuse_writes() {
        let pool = BufPool::new(2, 4096, true);
        let mut a = pool.try_take().expect("free");
        a.extend_from_slice(b"data");
        let ptr = a.stable_mut_ptr();
        drop(a);
        assert_eq!(pool.stats().violations, 0);
        // Simulate a late kernel write into a released buffer.
        // SAFETY: the allocation is alive inside the pool; this test deliberately scribbles.
        unsafe { *ptr = 0 };
        let _x = pool.try_take().expect("free");
        let _y = pool.try_take().expect("free");
        assert!(pool.try_take().is_none());
        assert_eq!(pool.stats().violations, 1);
    }

    #[test]
    fn budget_rules() {
        assert_eq!(registration_budget_bytes(true, Some(8 << 20), 2), u64::MAX);
        assert_eq!(registration_budget_bytes(false, None, 2), u64::MAX);
        assert_eq!(
            registration_budget_bytes(false, Some(8 << 20), 2),
            (7 << 20) / 2
        );
        assert_eq!(registration_budget_bytes(false, Some(512 << 10), 1), 0);
    }
}
