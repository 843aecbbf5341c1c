//! Owned I/O buffers. An operation takes its buffer by value, lends it to the kernel, and hands
//! it back with the result; nothing else can touch it meanwhile.
//!
//! - [`IoBuf`] / [`IoBufMut`]: what an operation may write from / read into (`Vec<u8>`,
//!   `Bytes`, `BytesMut`, [`AlignedBuf`], [`FixedBuf`]).
//! - [`AlignedBuf`]: a 4 KiB-aligned heap buffer, usable with `O_DIRECT`. `Send`.
//! - [`BufPool`] / [`FixedBuf`] (in `pool.rs`): the shard's pool of aligned buffers.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::pool::LeaseTag;

/// Alignment of every [`AlignedBuf`]: 4 KiB, the page size, which also satisfies the 512 B
/// `O_DIRECT` alignment of the disks we run on (`STATX_DIOALIGN`).
pub const BUF_ALIGN: usize = 4096;

/// A buffer an operation can write from. Implementations must keep the memory at
/// [`stable_ptr`](IoBuf::stable_ptr) valid and unmoved for as long as the value lives, even
/// when the value itself is moved (heap memory, not inline arrays).
///
/// # Safety
/// The pointer and lengths must describe memory owned by `self`, valid while `self` lives.
pub unsafe trait IoBuf: 'static {
    /// Start of the buffer.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialised bytes (what a write sends).
    fn bytes_init(&self) -> usize;
    /// Capacity in bytes (what a read may fill).
    fn bytes_total(&self) -> usize;
    /// Pool bookkeeping for the generation check; `None` for buffers outside a pool.
    #[doc(hidden)]
    fn lease_tag(&self) -> Option<LeaseTag> {
        None
    }
    /// Index of the registered buffer containing this memory, if registered.
    #[doc(hidden)]
    fn fixed_index(&self) -> Option<u16> {
        None
    }
}

/// A buffer an operation can read into: the kernel fills `[0, bytes_total)` and the operation
/// then calls [`set_filled`](IoBufMut::set_filled) with the count it wrote.
///
/// # Safety
/// `stable_mut_ptr` must point to `bytes_total` writable bytes owned by `self`.
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the writable memory.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Marks the first `n` bytes as the buffer's contents.
    ///
    /// # Safety
    /// The first `n` bytes (`n <= bytes_total`) must have been initialised.
    unsafe fn set_filled(&mut self, n: usize);
}

// SAFETY: a Vec's heap allocation does not move when the Vec is moved.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: see above; capacity bytes are allocated.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_filled(&mut self, n: usize) {
        // SAFETY: the caller guarantees the first n <= capacity bytes are initialised.
        unsafe { self.set_len(n) }
    }
}

// SAFETY: Bytes is an immutable, heap- or static-backed view that does not move its data.
unsafe impl IoBuf for bytes::Bytes {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: BytesMut owns a heap allocation that does not move with the value.
unsafe impl IoBuf for bytes::BytesMut {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as above; capacity bytes are allocated.
unsafe impl IoBufMut for bytes::BytesMut {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_filled(&mut self, n: usize) {
        // SAFETY: the caller guarantees the first n <= capacity bytes are initialised.
        unsafe { self.set_len(n) }
    }
}

/// A heap buffer aligned to [`BUF_ALIGN`], capacity a multiple of it, zero-initialised (so
/// every byte up to the capacity is always initialised). Suitable for `O_DIRECT`.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
}

// SAFETY: AlignedBuf uniquely owns its allocation, like Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of at least `capacity` bytes (rounded up to [`BUF_ALIGN`]), length 0.
    pub fn with_capacity(capacity: usize) -> Self {
        let cap = capacity.max(1).div_ceil(BUF_ALIGN) * BUF_ALIGN;
        let layout = Self::layout(cap);
        // SAFETY: layout has non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, cap, len: 0 }
    }

    /// A buffer holding a copy of `data`.
    pub fn from_slice(data: &[u8]) -> Self {
        let mut b = Self::with_capacity(data.len());
        b.extend_from_slice(data);
        b
    }

    fn layout(cap: usize) -> Layout {
        Layout::from_size_align(cap, BUF_ALIGN).expect("AlignedBuf capacity overflows a Layout")
    }

    /// Capacity in bytes (a multiple of [`BUF_ALIGN`]).
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends `data`. Panics if it does not fit in the capacity (buffers never grow: they may
    /// be registered with the ring).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        assert!(self.len + data.len() <= self.cap, "AlignedBuf overflow");
        // SAFETY: the destination range is inside our allocation and cannot overlap `data`,
        // which is borrowed immutably while we hold `&mut self`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                data.len(),
            )
        };
        self.len += data.len();
    }

    /// Sets the length; bytes past the old length keep whatever they held (always initialised).
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= self.cap, "AlignedBuf length beyond capacity");
        self.len = len;
    }

    /// Sets the length to 0.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The whole capacity as a mutable slice, regardless of the length.
    pub fn as_full_mut(&mut self) -> &mut [u8] {
        // SAFETY: all `cap` bytes are allocated and initialised (zeroed at allocation).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }

    fn full(&self) -> &[u8] {
        // SAFETY: as in `as_full_mut`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.cap) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `with_capacity` with this same layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.cap)) }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.full()[..self.len]
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.as_full_mut()[..len]
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .finish()
    }
}

// SAFETY: the allocation is owned and never moves or shrinks while the value lives.
unsafe impl IoBuf for AlignedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.cap
    }
}

// SAFETY: as above; all capacity bytes are writable.
unsafe impl IoBufMut for AlignedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    unsafe fn set_filled(&mut self, n: usize) {
        self.set_len(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buf_is_aligned_and_rounded() {
        let b = AlignedBuf::with_capacity(5000);
        assert_eq!(b.stable_ptr() as usize % BUF_ALIGN, 0);
        assert_eq!(b.capacity(), 8192);
        let c = AlignedBuf::from_slice(b"hello");
        assert_eq!(&c[..], b"hello");
    }
}
